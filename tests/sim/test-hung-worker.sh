#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A hung worker (SIGSTOP) is killed by vtpmd itself when vtpmd stops, under
# the capability set of vtpmd.service when run as root (lib.sh): workers run
# as other uids, so this needs CAP_KILL (issue 16). vtpm-sim reports any
# process vtpmd left behind, as systemd's cgroup kill would clean it up.
# Then the guest's vTPM is served again by a new worker.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

if ! "$VTPM_SIM" start --dir "$SIMDIR" --guests 1; then
	fail "vtpm-sim start --guests 1"
	finish
fi
T1=$(tcti guest1)
answers() { tpm2_getrandom -T "$T1" 8 --hex >/dev/null; }
check "guest1's TPM answers" answers
one_worker() { [ "$(n_workers)" -eq 1 ]; }
check "guest1 has one worker" wait_for 10 one_worker
W=$(worker_pids)
check "SIGSTOP guest1's worker (pid $W)" kill -STOP "$W"

# vtpmd gives its workers 15 s to save their state, then kills the rest.
"$VTPM_SIM" restart-daemon --dir "$SIMDIR" >"$SIMDIR/restart.out" 2>&1
rc=$?
sed 's/^/# /' "$SIMDIR/restart.out"
check "vtpmd restarted" [ "$rc" -eq 0 ]
check "vtpmd says it killed the hung worker" grep -q "Worker pid $W did not stop in time, killing it" \
	"$SIMDIR/vtpmd.log"
check "vtpmd left no process behind for vtpm-sim to kill" bash -c "! grep -q 'still running, killing it' '$SIMDIR/restart.out'"
check "guest1's TPM answers through a new worker" answers
new_worker() { [ "$(n_workers)" -eq 1 ] && [ "$(worker_pids)" != "$W" ]; }
check "guest1's worker is a new process" wait_for 10 new_worker
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
finish
