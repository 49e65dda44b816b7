#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Live migration between the hosts of a pool (issue 15, docs/pool.md): three
# simulated hosts (each its own xenstored, host TPM and vtpmd) on one pool
# directory; A and B are members, C is not.
#
#  - 20 migrations of one guest back and forth between A and B
#    (vtpm-sim migrate --to, xl migrate's order): after each, the guest's TPM
#    answers tpm2_getrandom and tpm2_nvincrement at once, the NV counter is
#    strictly greater than before, PCR 16 is unchanged;
#  - a migration to C, which is not a member: C's device is refused with
#    "not a member of the vTPM pool" before libxl sees InitWait, so the
#    migration fails and the guest keeps running on its host, its PCR 16 as
#    before;
#  - the source's vtpmd SIGKILLed with its workers in the middle of a
#    migration (after the destination asked for the vTPM, before the source
#    answered): the vTPM comes up on the destination alone, as after a power
#    loss (logged), its NV counter not below the last value acknowledged; the
#    source's vtpmd comes back without taking it;
#  - a host that is not a member finds no request or grant it can read.
# Prints (does not assert) the handover time: from the start of the source's
# suspend to the destination's first answered command.
# With POOL_STORAGE=gluster the pool is one GlusterFS volume that each host
# mounts through its own FUSE client (tests/sim/pool-fs.sh).
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED,
# VTPM_SIM_GUEST, POOL_STORAGE, POOL_FS, POOL_LOCK.
source "$(dirname "$0")/lib.sh"

need_tools "live migration in a pool" tpm2_pcrextend tpm2_pcrread tpm2_nvdefine tpm2_nvincrement tpm2_nvread tpm2_getrandom

A=$SIMDIR/hostA B=$SIMDIR/hostB C=$SIMDIR/hostC
stop_all() {
	stop_hosts "$A" "$B" "$C"
	pool_storage_down
	cleanup
}
trap stop_all EXIT
need_pool_storage 3 "live migration in a pool"
P=${POOL_DIRS[0]}

ctl() { local h=$1; shift; "$VTPMD_CTL" --control "$h/control" "$@"; }
export VTPM_SIM_CONNECT_TIMEOUT=30

i=0
for h in "$A" "$B" "$C"; do
	if ! run "$VTPM_SIM" start --dir "$h" --guests 0 --pool-dir "${POOL_DIRS[$i]}"; then
		fail "vtpm-sim start --pool-dir of $h"
		finish
	fi
	i=$((i + 1))
done
FB=$(ctl "$B" --json pool status | python3 -c "import json,sys; print(json.load(sys.stdin)['host'])")
check "A makes the pool, B joins, A admits B" bash -c "'$VTPMD_CTL' --control '$A/control' pool init &&
	'$VTPMD_CTL' --control '$B/control' pool join >/dev/null &&
	'$VTPMD_CTL' --control '$A/control' pool admit '$FB'"

check "a guest with a new vTPM on A" run "$VTPM_SIM" attach --dir "$A" g1
HERE=$A
T() { cat "$HERE/g1.tcti"; }
NV=0x1500020
pcr16() { tpm2_pcrread -T "$(T)" sha256:16 | awk '/16:/ {print $2}'; }
counter() { tpm2_nvread -T "$(T)" -C o -s 8 $NV 2>/dev/null | od -An -tx1 | tr -d ' \n'; }
check "PCR 16 extended and an NV counter defined on A" bash -c "tpm2_pcrextend -T '$(T)' 16:sha256=$(printf '%064d' 16) &&
	tpm2_nvdefine -T '$(T)' -C o -s 8 -a 'nt=counter|ownerread|ownerwrite' $NV >/dev/null &&
	tpm2_nvincrement -T '$(T)' -C o $NV"
PCR=$(pcr16)
COUNT=$(counter)
echo "# PCR 16 $PCR, counter $COUNT"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# migrate_to HOST: the guest goes from HERE to HOST; prints the handover time.
migrate_to() {
	local to=$1 t0 t1 connected
	"$VTPM_SIM" migrate --dir "$HERE" g1 --to "$to" >"$SIMDIR/mig.out" 2>&1 || return 1
	t0=$(now_ms)
	HERE=$to
	# The guest's first command after the migration: it must answer at once, no retry.
	tpm2_getrandom -T "$(T)" 8 >/dev/null || return 1
	t1=$(now_ms)
	# From the suspend to Connected (vtpm-sim says), then to the answer; the source's
	# destruction in between is not part of the guest's wait, so it is left out.
	connected=$(sed -n 's/.*Connected \([0-9]*\) ms after the source.s suspend began.*/\1/p' "$SIMDIR/mig.out")
	if [ -n "$connected" ]; then echo "$((connected + t1 - t0))" >>"$SIMDIR/handover.ms"; fi
}
# after_migration: the guest's TPM as it was, the counter one further.
after_migration() {
	local c
	tpm2_nvincrement -T "$(T)" -C o $NV || return 1
	c=$(counter)
	[ -n "$c" ] && [ $((16#$c)) -gt $((16#$COUNT)) ] || { echo "# counter $c after $COUNT"; return 1; }
	COUNT=$c
	[ "$(pcr16)" = "$PCR" ] || { echo "# PCR 16 $(pcr16), was $PCR"; return 1; }
}

bad_mig=0 bad_after=0
for i in $(seq 1 20); do
	if [ "$HERE" = "$A" ]; then to=$B; else to=$A; fi
	if ! migrate_to "$to"; then
		bad_mig=$((bad_mig + 1))
		sed 's/^/# /' "$SIMDIR/mig.out"
		HERE=$to
		continue
	fi
	after_migration || bad_after=$((bad_after + 1))
done
check "20 migrations between A and B, each answered at once on its destination" test "$bad_mig" -eq 0
check "after each: nvincrement answers, the counter grew, PCR 16 unchanged" test "$bad_after" -eq 0
if [ -s "$SIMDIR/handover.ms" ]; then
	sort -n "$SIMDIR/handover.ms" | awk '{v[NR]=$1} END {printf "# handover, the source suspended to the first answered command on the destination: min %d ms, median %d ms, max %d ms (%d migrations)\n", v[1], v[int((NR+1)/2)], v[NR], NR}'
fi
# The destination's side of the handover alone, from its log: asked -> resumed.
check "the destination logged each handover" bash -c "[ \$(cat '$A/vtpmd.log' '$B/vtpmd.log' | grep -c 'handed the vTPM over') -ge 20 ]"

# C is not a member: refused before InitWait, the migration fails, the guest stays.
out=$("$VTPM_SIM" migrate --dir "$HERE" g1 --to "$C" 2>&1)
rc=$?
echo "$out" | sed 's/^/# /'
check "a migration to C, not a member, fails" test "$rc" -ne 0
check "C's device says it is not a member of the pool" bash -c "grep -q 'not a member of the vTPM pool' '$C/vtpmd.log'"
check "the guest still answers on its host, PCR 16 as before" bash -c "tpm2_getrandom -T '$(T)' 8 >/dev/null && [ \"\$(tpm2_pcrread -T '$(T)' sha256:16 | awk '/16:/ {print \$2}')\" = '$PCR' ]"
check "C keeps no domain of g1" bash -c "! '$VTPM_SIM' status --dir '$C' --json | python3 -c \"import json,sys; sys.exit(0 if any(g['name'].startswith('g1') for g in json.load(sys.stdin)['guests']) else 1)\""

# The source's vtpmd dies between the destination's request and its answer.
if [ "$HERE" = "$A" ]; then SRC=$A DST=$B; else SRC=$B DST=$A; fi
log_size() { stat -c %s "$1/vtpmd.log"; }
logged_since() { tail -c +$(($2 + 1)) "$1/vtpmd.log" | grep -qF -- "$3"; }
off=$(log_size "$DST")
spid=$(cat "$SRC/vtpmd.pid")
check "the source's vtpmd stopped (SIGSTOP: it cannot answer)" kill -STOP "$spid"
"$VTPM_SIM" migrate --dir "$SRC" g1 --to "$DST" >"$SIMDIR/kill.out" 2>&1 &
mpid=$!
check "the destination asks for the vTPM" wait_for 30 logged_since "$DST" "$off" "asked for a handover"
check "SIGKILL the source's vtpmd and its workers" bash -c "kill -KILL -- -$spid; kill -CONT -- -$spid 2>/dev/null; true"
wait_for 30 bash -c "! pgrep -s $spid >/dev/null"
wait "$mpid"
sed 's/^/# /' "$SIMDIR/kill.out"
HERE=$DST
check "the guest answers on the destination" wait_for 30 bash -c "tpm2_getrandom -T '$(T)' 8 >/dev/null"
check "the destination logged a start as after a power loss" logged_since "$DST" "$off" "without handing it over"
c=$(counter)
check "the NV counter is not below the last value acknowledged" bash -c "[ -n '$c' ] && [ $((16#${c:-0})) -ge $((16#$COUNT)) ]"
check "the source's vtpmd comes back" run "$VTPM_SIM" restart-daemon --dir "$SRC"
check "the destination still answers" bash -c "tpm2_getrandom -T '$(T)' 8 >/dev/null && tpm2_nvincrement -T '$(T)' -C o $NV"
U=$("$VTPM_SIM" status --dir "$HERE" --json | python3 -c "import json,sys; print([g for g in json.load(sys.stdin)['guests'] if g['name']=='g1'][0]['vtpms'][0]['uuid'])")
check "the source shows the vTPM detached" test "$(ctl "$SRC" --json show "$U" | python3 -c "import json,sys; print(json.load(sys.stdin)['state'])")" = detached

check "the pool holds no handover request or grant once done" bash -c "[ -z \"\$(ls '$P/handovers')\" ] || { ls -l '$P/handovers'; false; }"
finish
