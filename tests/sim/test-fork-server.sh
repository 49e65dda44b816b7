#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The worker fork server (WorkerSpawn=, vtpmd(8)). Workers it forks are
# vtpmd's own children, show as plain vtpmd-worker, run under their own
# uids and serve their guests. If the server dies, running guests do not
# notice, vtpmd says so, new workers are exec'ed and a later worker start
# brings the server back. With WorkerSpawn=exec there is no server at all.
. "$(dirname "$0")/lib.sh"

EXECDIR=$SIMDIR.exec
on_exit() {
	"$VTPM_SIM" stop --dir "$EXECDIR" >/dev/null 2>&1 || true
	rm -rf "$EXECDIR"
	cleanup
}
trap on_exit EXIT

answers() { [ "$(tpm2_getrandom -T "$(tcti "$1")" 8 | wc -c)" -eq 8 ]; }
n_servers() { vtpmd_children | awk '$NF == "--fork-server"' | wc -l; }
# gone PID: the process exited (a zombie not yet reaped by init counts as gone).
gone() { [ -n "$1" ] && { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }; }

if ! "$VTPM_SIM" start --dir "$SIMDIR" --guests 2 >"$SIMDIR/start.out" 2>&1; then
	sed 's/^/# /' "$SIMDIR/start.out"
	fail "vtpm-sim start --guests 2"
	finish
fi
ok "two guests connected"

check "vtpmd runs one worker fork server" [ "$(n_servers)" -eq 1 ]
check "both guests' workers are vtpmd's children" [ "$(n_workers)" -eq 2 ]
distinct_uids() {
	local uids
	uids=$(for p in $(worker_pids); do ps -o uid= -p "$p"; done | sort -u | wc -l)
	[ "$uids" -eq 2 ]
}
if [ "$(id -u)" -eq 0 ]; then
	check "forked workers run under distinct uids" distinct_uids
else
	skip "forked workers run under distinct uids # not root: workers keep the test's uid"
fi
check "guest1's TPM answers" answers guest1
check "guest2's TPM answers" answers guest2
spawn_mode() { "$VTPMD_CTL" --control "$SIMDIR/control" status --json | jq -r .worker_spawn; }
check "vtpmd-ctl status says workers are forked" [ "$(spawn_mode)" = fork-server ]

# The server dies: nobody running notices; the next worker is exec'ed.
fs=$(fork_server_pid)
kill -KILL "$fs"
check "vtpmd reports the fork server's death" \
	wait_for 10 grep -q "Worker fork server (pid $fs) killed by signal" "$SIMDIR/vtpmd.log"
check "guest1's TPM still answers" answers guest1
exec_meanwhile() { [[ "$(spawn_mode)" == "exec (fork server failed"* ]]; }
check "vtpmd-ctl status says workers are exec'ed meanwhile" exec_meanwhile
w1=$(worker_pids | sort)
check "reboot guest2 while there is no fork server" "$VTPM_SIM" reboot --dir "$SIMDIR" guest2
new_worker() { [ "$(worker_pids | sort)" != "$w1" ]; }
check "guest2 got a new worker" new_worker
check "guest2's TPM answers after its reboot" answers guest2

# vtpmd starts a new server at a worker start 10 s after the failure.
reboot_until_server() {
	"$VTPM_SIM" reboot --dir "$SIMDIR" guest2 >/dev/null 2>&1 && [ "$(n_servers)" -eq 1 ]
}
check "a later worker start restarts the fork server" wait_for 60 reboot_until_server
check "guest2's TPM answers with a worker from the new server" answers guest2
check "the old server is gone" gone "$fs"

# vtpmd's stop takes the server with it.
fs=$(fork_server_pid)
check "the current fork server is known before the stop" test -n "$fs"
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
check "no fork server outlives vtpmd" wait_for 10 gone "$fs"

# WorkerSpawn=exec: no server; workers exec'ed.
if ! VTPMD_WORKER_SPAWN=exec "$VTPM_SIM" start --dir "$EXECDIR" --guests 1 >"$SIMDIR/start-exec.out" 2>&1; then
	sed 's/^/# /' "$SIMDIR/start-exec.out"
	fail "vtpm-sim start with WorkerSpawn=exec"
else
	SIMDIR_SAVED=$SIMDIR
	SIMDIR=$EXECDIR
	check "WorkerSpawn=exec: no fork server" [ "$(n_servers)" -eq 0 ]
	check "WorkerSpawn=exec: one worker" [ "$(n_workers)" -eq 1 ]
	check "WorkerSpawn=exec: the guest's TPM answers" answers guest1
	check "WorkerSpawn=exec: vtpmd-ctl status says exec" [ "$(spawn_mode)" = exec ]
	SIMDIR=$SIMDIR_SAVED
fi

finish
