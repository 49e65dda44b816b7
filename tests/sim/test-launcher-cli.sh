#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vtpm-sim's CLI contract with the real simulated xenstored and guests and a
# fake backend (toolstack-fake-backend as $VTPMD: the xenbus state machine
# without a data path), so it does not depend on vtpmd.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

export VTPM_SIM_TIMEOUT_SCALE=0.2
export VTPM_SIM_CONNECT_TIMEOUT=30
# The fake backend never answers the guests' probe-time TPM commands; a guest
# goes Connected only after they time out (2 min * scale, like Linux).
export VTPM_SIM_GUEST_TIMEOUT_SCALE=0.01

json() { "$VTPM_SIM" status --dir "$SIMDIR" --json; }
# field GUEST EXPR: a python expression over g (the guest's JSON object).
field() {
	json | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$1'][0]; print($2)"
}
daemon_pid() { json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1']['pid'])"; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
xs() { XENSTORED_PATH="$SIMDIR/xenstore/socket" "$@"; }
connected() { [ "$(field "$1" "g['vtpms'][0]['frontend']")" = Connected ]; }

out=$("$VTPM_SIM" start --dir "$SIMDIR" --guests 2 2>&1)
check "start --guests 2 succeeds" test $? -eq 0
echo "$out" | sed 's/^/# /'
check "both guests Connected" connected guest1
check "guest2 Connected" connected guest2
check "status text shows Connected" bash -c "'$VTPM_SIM' status --dir '$SIMDIR' | grep '^guest1 ' | grep -q '4/Connected'"
check "guest1.tcti exists" test -s "$SIMDIR/guest1.tcti"
check "env file exports XENSTORED_PATH" grep -qx "export XENSTORED_PATH=$SIMDIR/xenstore/socket" "$SIMDIR/env"
check "backend InitWait->Connected seen by the fake backend" grep -q -- '-> 4' "$SIMDIR/vtpmd.log"

uuid1=$(field guest1 "g['vtpms'][0]['uuid']")
uuid2=$(field guest2 "g['vtpms'][0]['uuid']")
dom1=$(field guest1 "g['domid']")
xsd_pid=$(daemon_pid xenstored)
be_pid=$(daemon_pid vtpmd)
g1_pid=$(field guest1 "g['pid']")
check "xenstore has the libxl uuid node" test "$(xs xenstore-read /local/domain/0/backend/vtpm/$dom1/0/uuid)" = "$uuid1"

out=$("$VTPM_SIM" start --dir "$SIMDIR" --guests 1 2>&1)
rc=$?
check "second start on a busy DIR is refused" test $rc -ne 0
check "refusal says the DIR is in use" bash -c "echo '$out' | grep -q 'in use'"
check "refusal left the running simulation alone" alive "$xsd_pid"

"$VTPM_SIM" reboot --dir "$SIMDIR" guest1 >/dev/null
check "reboot succeeds" test $? -eq 0
dom1b=$(field guest1 "g['domid']")
check "reboot gives a new domid" test "$dom1b" != "$dom1"
check "reboot keeps the vTPM uuid" test "$(field guest1 "g['vtpms'][0]['uuid']")" = "$uuid1"
check "rebooted guest Connected" connected guest1
check "old guest process gone" dead "$g1_pid"
check "old domain's nodes gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom1"
check "guest shut its frontend down through Closing" grep -q "be $dom1/0 4 -> 5" "$SIMDIR/vtpmd.log"

dom2=$(field guest2 "g['domid']")
g2_pid=$(field guest2 "g['pid']")
"$VTPM_SIM" destroy --dir "$SIMDIR" guest2 >/dev/null
check "destroy succeeds" test $? -eq 0
check "destroyed guest process gone" dead "$g2_pid"
check "destroyed domain's nodes gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom2"
check "destroyed domain's backend dir gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/0/backend/vtpm/$dom2"
check "status shows guest2 stopped" test "$(field guest2 "g['running']")" = False

"$VTPM_SIM" attach --dir "$SIMDIR" guest2 >/dev/null
check "attach recreates guest2" test $? -eq 0
check "guest2 keeps its uuid" test "$(field guest2 "g['vtpms'][0]['uuid']")" = "$uuid2"
check "guest2 Connected again" connected guest2
dom2=$(field guest2 "g['domid']")

"$VTPM_SIM" detach --dir "$SIMDIR" guest2 >/dev/null
check "detach succeeds" test $? -eq 0
check "detach: backend saw online=0/state=5 and closed" grep -q "be $dom2/0 5 -> 6 (fe=6 online=0)\|be $dom2/0 5 -> 6 (fe=1 online=0)\|be $dom2/0 5 -> 6 (fe=4 online=0)\|be $dom2/0 5 -> 6 (fe=5 online=0)" "$SIMDIR/vtpmd.log"
check "detach removed the frontend dir" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom2/device/vtpm/0"
check "detach removed the /libxl dir" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /libxl/$dom2/device/vtpm/0"

"$VTPM_SIM" attach --dir "$SIMDIR" guest2 --uuid 0a0b0c0d-0000-4000-8000-000000000001 >/dev/null
check "hot-attach to the running guest2" test $? -eq 0
check "hot-attached device reuses devid 0" test "$(field guest2 "g['vtpms'][0]['devid']")" = 0
check "hot-attached device Connected" connected guest2

"$VTPM_SIM" attach --dir "$SIMDIR" guest3 --uuid 0A0B0C0D-0000-4000-8000-000000000003 --tpm 1.2 >/dev/null
check "attach creates guest3" test $? -eq 0
check "guest3 uuid canonical" test "$(field guest3 "g['vtpms'][0]['uuid']")" = 0a0b0c0d-0000-4000-8000-000000000003
check "guest3 family recorded" test "$(field guest3 "g['vtpms'][0]['tpm']")" = 1.2

"$VTPM_SIM" attach --dir "$SIMDIR" guest4 >/dev/null 2>&1 &
a4=$!
"$VTPM_SIM" attach --dir "$SIMDIR" guest5 >/dev/null 2>&1 &
a5=$!
wait $a4; r4=$?
wait $a5; r5=$?
check "two concurrent attaches both succeed" test "$r4$r5" = 00
check "concurrent attaches got distinct domids" test "$(field guest4 "g['domid']")" != "$(field guest5 "g['domid']")"
check "guest4 Connected" connected guest4
check "guest5 Connected" connected guest5

pids="$xsd_pid $be_pid"
for g in guest1 guest2 guest3 guest4 guest5; do pids="$pids $(field $g "g['pid']")"; done
"$VTPM_SIM" stop --dir "$SIMDIR"
check "stop succeeds" test $? -eq 0
for p in $pids; do check "pid $p gone after stop" dead "$p"; done

"$VTPM_SIM" start --dir "$SIMDIR" --guests 2 >/dev/null
check "restart on the same DIR" test $? -eq 0
check "restart keeps guest1's uuid" test "$(field guest1 "g['vtpms'][0]['uuid']")" = "$uuid1"
"$VTPM_SIM" stop --dir "$SIMDIR"

out=$(VTPMD=/bin/false "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 2>&1)
rc=$?
check "start with a failing backend fails" test $rc -ne 0
check "the failure names vtpmd" bash -c "echo '$out' | grep -q 'vtpmd'"
xsd_pid=$(daemon_pid xenstored)
check "failed start left nothing running" bash -c "[ '$xsd_pid' = 0 ] || ! [ -d /proc/$xsd_pid ]"

finish
