#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What an admin expects of vtpmd-ctl (issue 18's features), through the real
# vtpmd-ctl and real tpm2-tools in simulated guests:
#  - names: list and show give the guest's name beside its domid; a guest's
#    name is taken where a UUID is expected, when it names one vTPM.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

export VTPM_SIM_CONNECT_TIMEOUT=10
CTL=$VTPMD_CTL
H=$SIMDIR
W=$SIMDIR/work
mkdir -p "$W"
pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
field() { "$CTL" --json show "$1" | pyjson "v=d.get('$2'); print('' if v is None else v)"; }

if ! "$VTPM_SIM" start --dir "$H" --guests 0 >"$W/start.out" 2>&1; then
	sed 's/^/# /' "$W/start.out"
	fail "vtpm-sim start"
	finish
fi
export VTPMD_CONTROL=$H/control
ok "simulated host running"

# ---- names ----
UA=$("$CTL" create)
check "attach guest web1 to a new vTPM" "$VTPM_SIM" attach --dir "$H" web1 --uuid "$UA"
DOMID=$("$VTPM_SIM" status --dir "$H" --json | pyjson "print([g for g in d['guests'] if g['name']=='web1'][0]['domid'])")
row() { "$CTL" --json list | pyjson "r=[x for x in d if x['uuid']=='$UA'][0]; print(r['domid'], r['name'])"; }
check "list --json gives web1's domid and name ($(row))" test "$(row)" = "$DOMID web1"
check "list gives them side by side" bash -c "'$CTL' list | grep -E '^$UA +2\.0 +$DOMID +web1 +0 +connected'"
check "list's header names the column" bash -c "'$CTL' list | head -n 1 | grep -qE 'DOMID +NAME +DEVID'"
check "show gives the name" bash -c "'$CTL' show '$UA' | grep -qx 'Guest name *web1'"
check "show web1 shows web1's vTPM" test "$(field web1 uuid)" = "$UA"
check "show --json's name is web1" test "$(field "$UA" name)" = web1
UD=$("$CTL" create)
check "a detached vTPM has no name in show --json" test "$(field "$UD" name)" = ""
"$CTL" show nosuchguest >"$W/out" 2>"$W/err"
rc=$?
check "show of an unknown name fails (exit $rc)" test "$rc" -eq 1
check "... saying it is neither a UUID nor a guest's name ($(cat "$W/err"))" \
	grep -q '"nosuchguest" is neither a UUID nor the name of a guest with a vTPM attached' "$W/err"
"$CTL" show 'bad name' >"$W/out" 2>"$W/err"
check "show of something no name can be is not a UUID ($(cat "$W/err"))" grep -q 'not a UUID: "bad name"' "$W/err"
UB=$("$CTL" create)
# The simulated guest's kernel does not hotplug a second frontend: the device
# stays in InitWait, which is attached as far as vtpmd is concerned.
"$VTPM_SIM" attach --dir "$H" web1 --uuid "$UB" >/dev/null 2>&1
two_named() { [ "$("$CTL" --json list | pyjson "print(sum(x['name']=='web1' for x in d))")" = 2 ]; }
check "a second vTPM device of web1 is listed with its name" wait_for 10 two_named
"$CTL" show web1 >"$W/out" 2>"$W/err"
rc=$?
check "show web1 with two vTPMs attached fails (exit $rc)" test "$rc" -eq 1
check "... as ambiguous, naming both ($(cat "$W/err"))" \
	bash -c "grep -q 'guest \"web1\" has 2 vTPMs attached' '$W/err' && grep -q '$UA' '$W/err' && grep -q '$UB' '$W/err'"
check "detach web1's second vTPM" "$VTPM_SIM" detach --dir "$H" web1 --uuid "$UB"
check "destroy --force web1 destroys web1's one vTPM" "$CTL" destroy --force web1
check "... which is gone" test ! -e "$H/state/$UA"

finish
