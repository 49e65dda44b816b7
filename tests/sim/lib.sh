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

# unit_setpriv_args UNIT: setpriv's options for the capability sets systemd
# gives a root service from UNIT's CapabilityBoundingSet=, AmbientCapabilities=
# and NoNewPrivileges= (repeated lines add up, an empty one empties the set,
# no CapabilityBoundingSet= at all leaves it whole, as in systemd.exec(5)); an
# inverted list (~) is refused rather than misread.
unit_setpriv_args() {
	local key val caps bounding=none ambient="" nnp=""
	while IFS='=' read -r key val; do
		case $key in
		CapabilityBoundingSet | AmbientCapabilities) ;;
		NoNewPrivileges)
			case $val in yes | true | on | 1) nnp=--no-new-privs ;; *) nnp="" ;; esac
			continue
			;;
		*) continue ;;
		esac
		case $val in "~"*)
			echo "lib.sh: $1: $key=~... is not supported here" >&2
			return 1
			;;
		esac
		# "CAP_KILL CAP_CHOWN" -> ",+kill,+chown" (setpriv's names)
		caps=$(printf '%s\n' $val | tr 'A-Z' 'a-z' | sed -n 's/^cap_\(.*\)/,+\1/p' | tr -d '\n')
		if [ "$key" = CapabilityBoundingSet ]; then
			[ "$bounding" != none ] && [ -n "$val" ] || bounding=""
			bounding=$bounding$caps
		elif [ -z "$val" ]; then
			ambient=""
		else
			ambient=$ambient$caps
		fi
	done <"$1"
	# Root keeps every capability of its bounding set across exec; ambient
	# ones must also be inheritable (systemd makes them so).
	[ "$bounding" = none ] && bounding="" || bounding="--bounding-set -all$bounding "
	echo "$bounding--inh-caps -all$ambient --ambient-caps -all$ambient $nnp"
}

# As root, vtpmd runs under exactly the capabilities vtpmd.service gives it,
# so that a capability the unit lacks fails a sim test on every machine, not
# only under systemd on a real dom0 (issue 16). This wrapper is the innermost
# one: a script that wraps $VTPMD again execs it.
if [ "$(id -u)" -eq 0 ] && [ -n "${VTPMD:-}" ]; then
	VTPMD_UNIT=${VTPMD_UNIT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/systemd/vtpmd.service.in}
	setpriv_args=$(unit_setpriv_args "$VTPMD_UNIT") || exit 1
	printf '#!/bin/sh\n# vtpmd under the capability set of %s\nexec setpriv %s -- "%s" "$@"\n' \
		"$VTPMD_UNIT" "$setpriv_args" "$VTPMD" >"$SIMDIR/vtpmd-unit-caps"
	chmod +x "$SIMDIR/vtpmd-unit-caps"
	export VTPMD="$SIMDIR/vtpmd-unit-caps"
	unset setpriv_args
fi

# vtpmd's guest workers: its children but the worker fork server, the one
# whose command line ends in --fork-server (a forked worker blanks it).
vtpmd_children() { ps -o pid=,args= --ppid "$(cat "$SIMDIR/vtpmd.pid")" 2>/dev/null; }
worker_pids() { vtpmd_children | awk '$NF != "--fork-server" {print $1}'; }
fork_server_pid() { vtpmd_children | awk '$NF == "--fork-server" {print $1}'; }
n_workers() { worker_pids | wc -l; }

# run COMMAND...: runs it, shows its output as comments, returns its status.
run() {
	local out rc
	out=$("$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	return $rc
}

# pool_storage_up N: a pool directory for N simulated hosts, one path per host
# in POOL_DIRS: with POOL_STORAGE=gluster one GlusterFS volume that each host
# mounts through its own FUSE client (pool-fs.sh, POOL_FS), else one plain
# directory. Returns pool-fs.sh's status: 77 where GlusterFS cannot run here.
pool_storage_up() {
	local n=$1 i rc
	POOL_DIRS=()
	if [ "${POOL_STORAGE:-dir}" = gluster ]; then
		POOL_FS=${POOL_FS:-$(dirname "$0")/pool-fs.sh}
		export POOL_LOCK
		"$POOL_FS" up "$SIMDIR/gl" "$n"
		rc=$?
		[ "$rc" -eq 0 ] || return "$rc"
		for i in $(seq 1 "$n"); do POOL_DIRS+=("$SIMDIR/gl/mnt$i/pool"); done
	else
		for i in $(seq 1 "$n"); do POOL_DIRS+=("$SIMDIR/pool"); done
	fi
	mkdir -p "${POOL_DIRS[0]}" # on GlusterFS through one mount: the others see it
}
# need_tools WHAT TOOL...: every TOOL is on PATH, or the test ends as a skip
# ("WHAT # TOOL not installed").
need_tools() {
	local what=$1 t
	shift
	for t in "$@"; do
		if ! command -v "$t" >/dev/null; then
			skip "$what # $t not installed"
			finish
		fi
	done
}

# stop_hosts DIR...: stops the simulated hosts that run; after a failure
# first shows the end of each one's vtpmd log.
stop_hosts() {
	local h
	for h in "$@"; do
		if [ "$FAILED" -ne 0 ] && [ -f "$h/vtpmd.log" ]; then
			echo "# --- $h/vtpmd.log (last 40 lines, no debug)"
			grep -v ' debug: ' "$h/vtpmd.log" | tail -n 40 | sed 's/^/#   /'
		fi
		[ -e "$h/vtpmd.pid" ] && "$VTPM_SIM" stop --dir "$h" >/dev/null 2>&1
	done
}

# need_pool_storage N WHAT: pool_storage_up N, or end the test: a skip (77)
# where GlusterFS cannot run here, a failure if it could not be set up.
need_pool_storage() {
	local rc
	pool_storage_up "$1"
	rc=$?
	if [ "$rc" -eq 77 ]; then
		skip "$2 on GlusterFS # pool-fs.sh up: no FUSE or GlusterFS here"
		finish
	fi
	[ "$rc" -eq 0 ] || { fail "pool-fs.sh up (exit $rc)"; finish; }
}
pool_storage_down() {
	if [ "${POOL_STORAGE:-dir}" = gluster ]; then
		"$POOL_FS" down "$SIMDIR/gl" >&2 || echo "# pool-fs.sh down failed"
	fi
}

# Bystanders: guests that run a steady tpm2-tools workload (getrandom,
# pcrextend, pcrread and an NV write, which is durable) while a test attacks
# vtpmd from elsewhere; not one of their commands may fail.
# bystanders_start NAME...: defines each guest's NV index and starts its loop;
# each command is a line in by-NAME.log and each failure one in by-NAME.err.
# bystanders_stop ends the loops (call it before finish); bystander_errors
# and bystander_commands count over all of them.
BY_NV=0x1500018
BY_PIDS=()
BY_NAMES=()
bystander_loop() {
	local name=$1 t i=0 rc
	t=$(tcti "$name")
	while [ ! -e "$SIMDIR/bystanders.stop" ]; do
		i=$((i + 1))
		tpm2_getrandom -T "$t" 16 >/dev/null 2>>"$SIMDIR/by-$name.out"
		rc=$?
		echo "getrandom $rc" >>"$SIMDIR/by-$name.log"
		[ "$rc" -eq 0 ] || echo "$i getrandom rc=$rc" >>"$SIMDIR/by-$name.err"
		tpm2_pcrextend -T "$t" "16:sha256=$(printf '%064d' "$i")" 2>>"$SIMDIR/by-$name.out"
		rc=$?
		echo "pcrextend $rc" >>"$SIMDIR/by-$name.log"
		[ "$rc" -eq 0 ] || echo "$i pcrextend rc=$rc" >>"$SIMDIR/by-$name.err"
		printf '%08d' "$i" | tpm2_nvwrite -T "$t" "$BY_NV" -C o -i - 2>>"$SIMDIR/by-$name.out"
		rc=$?
		echo "nvwrite $rc" >>"$SIMDIR/by-$name.log"
		[ "$rc" -eq 0 ] || echo "$i nvwrite rc=$rc" >>"$SIMDIR/by-$name.err"
	done
}
bystanders_start() {
	local name
	rm -f "$SIMDIR/bystanders.stop"
	for name in "$@"; do
		: >"$SIMDIR/by-$name.err"
		: >"$SIMDIR/by-$name.log"
		tpm2_nvdefine -T "$(tcti "$name")" "$BY_NV" -C o -s 8 -a 'ownerread|ownerwrite' >/dev/null 2>&1 ||
			echo "nvdefine failed" >>"$SIMDIR/by-$name.err"
		bystander_loop "$name" &
		BY_PIDS+=($!)
		BY_NAMES+=("$name")
	done
}
bystanders_stop() {
	local p
	touch "$SIMDIR/bystanders.stop"
	for p in "${BY_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	BY_PIDS=()
}
bystander_errors() { local n; for n in "${BY_NAMES[@]}"; do cat "$SIMDIR/by-$n.err"; done | wc -l; }
bystander_commands() { local n; for n in "${BY_NAMES[@]}"; do cat "$SIMDIR/by-$n.log"; done | wc -l; }
# bystanders_ran N: at least N commands since the start (a condition to wait for).
bystanders_ran() { [ "$(bystander_commands)" -ge "$1" ]; }
# bystanders_check: the bystanders still run (a dozen more commands), then
# they stop, and none of them saw an error.
bystanders_check() {
	local c0
	c0=$(bystander_commands)
	check "the bystanders still run" wait_for 60 bystanders_ran $((c0 + 12))
	bystanders_stop
	echo "# bystanders: $(bystander_commands) commands, $(bystander_errors) errors"
	cat "$SIMDIR"/by-*.err 2>/dev/null | head -5 | sed 's/^/#   /'
	check "the bystanders saw no error" test "$(bystander_errors)" = 0
}

# Ends the test: exit 1 if a check failed, else exit 77 (meson's SKIP) if one
# was skipped, else exit 0.
finish() {
	echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
	[ "$FAILED" -eq 0 ] || exit 1
	[ "$SKIPPED" -eq 0 ] || exit 77
	exit 0
}
