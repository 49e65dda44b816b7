# SPDX-License-Identifier: BSD-3-Clause
# Shared helpers for the simulated-host test scripts. Source it; the scripts
# that start a simulated host expect VTPM_SIM (the launcher) and TPM_SEND in
# the environment (meson sets them).
set -u

SIMDIR=$(mktemp -d /tmp/vtpm-test.XXXXXX)
PASSED=0
FAILED=0
SKIPPED=0

cleanup() {
	[ -z "${VTPM_SIM:-}" ] || "$VTPM_SIM" stop --dir "$SIMDIR" >/dev/null 2>&1 || true
	if [ "$FAILED" -ne 0 ] || [ -n "${KEEP_SIMDIR:-}" ]; then
		echo "# simulation directory kept: $SIMDIR"
		for f in "$SIMDIR"/*.log; do
			[ -f "$f" ] || continue
			echo "# --- last lines of $f"
			tail -n 25 "$f" | sed 's/^/#   /'
		done
	else
		rm -rf "$SIMDIR"
	fi
}
trap cleanup EXIT

ok() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# skip "description # why": a check that cannot run here; neither a pass nor a
# failure, but the whole test ends as skipped (exit 77, meson's SKIP) unless
# another check failed. The reason goes to stderr.
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $*" >&2; }

# check "description" command...: runs the command, records the result.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

# wait_for SECONDS command...: polls the command every 50 ms until it succeeds or the deadline passes.
wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# differ A B: both files exist and their contents differ (cmp -s alone
# also "differs" when a file is missing: it exits 2 then).
differ() {
	cmp -s "$1" "$2"
	[ $? -eq 1 ]
}

tcti() { cat "$SIMDIR/$1.tcti"; }

# vtpmd's guest workers: its children but the worker fork server, the one
# whose command line ends in --fork-server (a forked worker blanks it).
vtpmd_children() { ps -o pid=,args= --ppid "$(cat "$SIMDIR/vtpmd.pid")" 2>/dev/null; }
worker_pids() { vtpmd_children | awk '$NF != "--fork-server" {print $1}'; }
fork_server_pid() { vtpmd_children | awk '$NF == "--fork-server" {print $1}'; }
n_workers() { worker_pids | wc -l; }

# Ends the test: exit 1 if a check failed, else exit 77 (meson's SKIP) if one
# was skipped, else exit 0.
finish() {
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ] || exit 1
	[ "$SKIPPED" -eq 0 ] || exit 77
	exit 0
}
