#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A pool of three simulated hosts (issue 15, docs/pool.md), each with its own
# xenstored, host TPM (swtpm) and vtpmd, and one shared pool directory: a
# plain directory, or with POOL_STORAGE=gluster one GlusterFS volume that
# each host mounts through its own FUSE client (tests/sim/pool-fs.sh).
#
#  - membership: host A makes the pool; B asks to join and is refused its
#    vTPMs until A admits B's fingerprint; C never joins: its device and its
#    vtpmd-ctl commands get "not a member", and its own TPM cannot open the
#    key file of B copied to C's name;
#  - a vTPM made on A, with PCR 16 extended and an NV index written, moves to
#    B once its guest stopped on A: the NV index reads back on B;
#  - one owner at a time: while B's guest uses it, a guest of the same vTPM
#    on A gets "in use by another process or pool host", and B's guest still
#    answers;
#  - the shared storage holds no NV contents in the clear;
#  - pool remove and pool leave: a removed host is no member after its
#    restart; the only member cannot leave or remove itself; a host with a
#    vTPM running cannot leave; a host that left refuses the pool's vTPMs at
#    once and is no longer listed.
# Live migration between members is test-pool-migrate.sh (docs/pool.md).
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, POOL_STORAGE,
# POOL_FS, POOL_LOCK.
source "$(dirname "$0")/lib.sh"

need_tools "the vTPM pool" tpm2_pcrextend tpm2_nvdefine tpm2_nvread tpm2_getrandom

A=$SIMDIR/hostA B=$SIMDIR/hostB C=$SIMDIR/hostC
stop_all() {
	stop_hosts "$A" "$B" "$C"
	pool_storage_down
	cleanup
}
trap stop_all EXIT

need_pool_storage 3 "the vTPM pool"
[ "${POOL_STORAGE:-dir}" != gluster ] || ok "GlusterFS volume mounted three times (one FUSE client per host)"
PA=${POOL_DIRS[0]} PB=${POOL_DIRS[1]} PC=${POOL_DIRS[2]}

ctl() { local h=$1; shift; "$VTPMD_CTL" --control "$h/control" "$@"; }
pool_json() { ctl "$1" --json pool status | python3 -c "import json,sys; d=json.load(sys.stdin); print($2)"; }
export VTPM_SIM_CONNECT_TIMEOUT=20

for h in "$A:$PA" "$B:$PB" "$C:$PC"; do
	if ! run "$VTPM_SIM" start --dir "${h%%:*}" --guests 0 --pool-dir "${h#*:}"; then
		fail "vtpm-sim start --pool-dir of ${h%%:*}"
		finish
	fi
done
ok "three simulated hosts up on one pool directory"

FA=$(pool_json "$A" "d['host']") FB=$(pool_json "$B" "d['host']") FC=$(pool_json "$C" "d['host']")
check "each host has its own fingerprint" bash -c "[ '$FA' != '$FB' ] && [ '$FB' != '$FC' ] && [ \${#1} -eq 64 ]" _ "$FA"
check "before pool init no host is a member" test "$(pool_json "$A" "d['member']")" = False
check "pool init on A" run ctl "$A" pool init
check "A is a member" test "$(pool_json "$A" "d['member']")" = True
check "a second pool init is refused" bash -c "! '$VTPMD_CTL' --control '$B/control' pool init 2>/dev/null"

out=$(ctl "$B" create 2>&1)
rc=$?
echo "# $out"
check "B, not a member, cannot create a vTPM" test "$rc" -ne 0
check "and is told it is not a member" grep -q "not a member of the pool" <<<"$out"

out=$(ctl "$B" pool join 2>&1)
echo "$out" | sed 's/^/# /'
check "pool join on B prints its fingerprint and the admit command" grep -q "pool admit $FB" <<<"$out"
check "A lists B as asking to join" bash -c "'$VTPMD_CTL' --control '$A/control' pool status | grep '$FB' | grep -q 'asked to join'"
check "admitting an unknown fingerprint is refused" bash -c "! '$VTPMD_CTL' --control '$A/control' pool admit '$FC' 2>/dev/null"
check "A admits B" run ctl "$A" pool admit "$FB"
check "B is a member now" test "$(pool_json "$B" "d['member']")" = True

# A vTPM made on A, used, then moved to B once its guest stopped on A.
check "a guest with a new vTPM on A" run "$VTPM_SIM" attach --dir "$A" ga
U=$("$VTPM_SIM" status --dir "$A" --json | python3 -c "import json,sys; print([g for g in json.load(sys.stdin)['guests'] if g['name']=='ga'][0]['vtpms'][0]['uuid'])")
check "its vTPM lives in the pool directory" test -d "$PA/vtpms/$U"
TA=$(cat "$A/ga.tcti")
MARKER=pool-nv-$RANDOM$RANDOM
printf '%s' "$MARKER" >"$SIMDIR/nv.in"
check "PCR 16 extended and an NV index written on A" bash -c "tpm2_pcrextend -T '$TA' 16:sha256=$(printf '%064d' 16) &&
	tpm2_nvdefine -T '$TA' -C o -s 32 -a 'ownerread|ownerwrite' 0x1500016 >/dev/null &&
	tpm2_nvwrite -T '$TA' -C o -i '$SIMDIR/nv.in' 0x1500016"
check "the guest on A stops" run "$VTPM_SIM" destroy --dir "$A" ga
check "a guest of the same vTPM on B" run "$VTPM_SIM" attach --dir "$B" gb --uuid "$U"
TB=$(cat "$B/gb.tcti")
check "the NV index reads back on B" test "$(tpm2_nvread -T "$TB" -C o -s ${#MARKER} 0x1500016 2>/dev/null)" = "$MARKER"

# One owner at a time.
out=$("$VTPM_SIM" attach --dir "$A" ga2 --uuid "$U" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "a second guest of the vTPM, on A while B serves it, is not Connected" test "$rc" -ne 0
check "its error node says the vTPM is in use by another pool host" grep -q "in use by another process or pool host" <<<"$out"
check "B's guest still answers" bash -c "tpm2_getrandom -T '$TB' 8 >/dev/null"

# C was never admitted.
out=$(ctl "$C" show "$U" 2>&1)
echo "# $out"
check "C, not a member, cannot read the vTPM" grep -q "not a member of the pool" <<<"$out"
# Straight to the device (vtpm-sim would otherwise make the vTPM first with vtpmd-ctl).
out=$(VTPM_SIM_NO_CTL=1 VTPM_SIM_CONNECT_TIMEOUT=5 "$VTPM_SIM" attach --dir "$C" gc --uuid "$U" 2>&1)
echo "$out" | sed 's/^/# /'
check "C's device is refused as not a member" grep -q "not a member of the vTPM pool" <<<"$out"
cp "$PA/members/$FB.key" "$PA/members/$FC.key"
out=$(ctl "$C" pool status 2>&1)
check "with B's key file copied to its name, C is still no member" test "$(pool_json "$C" "d['member']")" = False
check "and vtpmd says the key is not for this host's TPM" grep -q "not wrapped to this host's TPM" "$C/vtpmd.log"
rm -f "$PA/members/$FC.key"

check "the pool directory holds no NV contents in the clear" bash -c "! grep -r -a -q -F '$MARKER' '$PA'"

# B leaves: its next start cannot unlock the pool.
check "A removes B" run ctl "$A" pool remove "$FB"
check "B stops its guest" run "$VTPM_SIM" destroy --dir "$B" gb
check "B's vtpmd restarts" run "$VTPM_SIM" restart-daemon --dir "$B"
check "after its removal B is no member" test "$(pool_json "$B" "d['member']")" = False

# pool leave: never the last member, never with vTPMs running here.
refused() { # refused TEXT HOST ARGS...: the command fails and says TEXT
	local text=$1 out
	shift
	out=$(ctl "$@" 2>&1) && { echo "# succeeded: $out"; return 1; }
	echo "# $out"
	grep -q -- "$text" <<<"$out"
}
check "A, the only member, cannot leave" refused "only member" "$A" pool leave
check "nor remove itself" refused "only member" "$A" pool remove "$FA"
check "A is still a member" test "$(pool_json "$A" "d['member']")" = True
check "B joins again and A admits it" bash -c "'$VTPMD_CTL' --control '$B/control' pool join >/dev/null &&
	'$VTPMD_CTL' --control '$A/control' pool admit '$FB'"
check "a guest of the vTPM on B" run "$VTPM_SIM" attach --dir "$B" gb2 --uuid "$U"
check "B cannot leave while its vTPM runs" refused "vTPMs are running on this host" "$B" pool leave
check "B's guest stops" run "$VTPM_SIM" destroy --dir "$B" gb2
check "B leaves (once vtpmd has seen the device go)" wait_for 10 ctl "$B" pool leave
check "B is no member at once (no restart)" test "$(pool_json "$B" "d['member']")" = False
check "A no longer lists B" bash -c "! '$VTPMD_CTL' --control '$A/control' pool status | grep -q '$FB'"
check "B's vTPM commands are refused as not a member" refused "not a member of the pool" "$B" show "$U"
check "leaving twice says it is no member" refused "not a member" "$B" pool leave
finish
