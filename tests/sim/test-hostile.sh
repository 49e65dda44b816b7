#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The hostile-guest suite: two normal guests run a steady tpm2-tools workload
# while hostile-guest attacks vtpmd one case at a time from its own domain.
# Each case must pass, and the workload must not see a single error.
. "$(dirname "$0")/lib.sh"

: "${HOSTILE_GUEST:?HOSTILE_GUEST must name the hostile-guest binary}"
CPU_HOG_SECONDS=${CPU_HOG_SECONDS:-10}
STOP=$SIMDIR/workload.stop
WL_PIDS=()

stop_workload() {
	touch "$STOP"
	for p in "${WL_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	WL_PIDS=()
}
# lib.sh's trap stops the simulation; stop the workload loops before it.
trap 'stop_workload; cleanup' EXIT

now_ns() { date +%s%N; }

# One guest's workload: getrandom, pcrextend, pcrread in a loop until $STOP
# exists. Every command is one line "start_ns end_ns rc name" in wl-NAME.lat;
# every failure is also a line in wl-NAME.err.
workload() {
	local name=$1 t
	t=$(tcti "$name")
	local lat=$SIMDIR/wl-$name.lat err=$SIMDIR/wl-$name.err
	: >"$err"
	while [ ! -e "$STOP" ]; do
		for cmd in getrandom pcrextend pcrread; do
			local s e rc
			s=$(now_ns)
			case $cmd in
			getrandom) tpm2_getrandom -T "$t" 16 >/dev/null 2>>"$err.out" ;;
			pcrextend) tpm2_pcrextend -T "$t" 16:sha256=$(printf '%064d' 7) 2>>"$err.out" ;;
			pcrread) tpm2_pcrread -T "$t" sha256:16 >/dev/null 2>>"$err.out" ;;
			esac
			rc=$?
			e=$(now_ns)
			echo "$s $e $rc $cmd" >>"$lat"
			[ "$rc" -eq 0 ] || echo "$s $cmd rc=$rc" >>"$err"
		done
	done
}

errors() { cat "$SIMDIR"/wl-guest1.err "$SIMDIR"/wl-guest2.err 2>/dev/null | wc -l; }
commands() { cat "$SIMDIR"/wl-guest1.lat "$SIMDIR"/wl-guest2.lat 2>/dev/null | wc -l; }

# latency FROM_NS TO_NS: "N commands, p50 X ms, max Y ms" of the workload
# commands that started in the window.
latency() {
	cat "$SIMDIR"/wl-guest1.lat "$SIMDIR"/wl-guest2.lat 2>/dev/null |
		awk -v a="$1" -v b="$2" '$1 >= a && $1 <= b { print ($2 - $1) / 1e6 }' | sort -n |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "0 commands"; exit }
			printf "%d commands, p50 %.1f ms, max %.1f ms\n", NR, v[int((NR + 1) / 2)], v[NR] }'
}

workers() { n_workers; }
fe_state() { XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-read "/local/domain/$1/device/vtpm/0/state"; }
domid_of() { "$VTPM_SIM" status --dir "$SIMDIR" | awk -v n="$1" '$1 == n {print $2}'; }

# run_case NAME [ARGS...]: one hostile-guest invocation, its output indented,
# then what the two normal guests saw while it ran.
run_case() {
	local name=$1
	shift
	local e0 c0 t0 t1 rc
	e0=$(errors)
	c0=$(commands)
	t0=$(now_ns)
	echo "# --- case $name"
	"$HOSTILE_GUEST" --dir "$SIMDIR" --case "$name" "$@" >"$SIMDIR/case-$name.out" 2>&1
	rc=$?
	t1=$(now_ns)
	sed 's/^/#   /' "$SIMDIR/case-$name.out"
	echo "#   others: $(latency "$t0" "$t1") during the case (baseline: $BASELINE), $(($(errors) - e0)) errors"
	check "hostile case $name" [ "$rc" -eq 0 ]
	check "the other guests saw no error during $name" [ "$(errors)" -eq "$e0" ]
	check "vtpmd still runs after $name" kill -0 "$(cat "$SIMDIR/vtpmd.pid")"
	[ "$(commands)" -gt "$c0" ] || echo "#   (note: the workload completed no command during $name)"
}

if ! "$VTPM_SIM" start --dir "$SIMDIR" --guests 2 >/dev/null; then
	fail "vtpm-sim start --guests 2"
	finish
fi
ok "two guests connected"
DOM1=$(domid_of guest1)
DOM2=$(domid_of guest2)
VTPMD_PID=$(cat "$SIMDIR/vtpmd.pid")

workload guest1 &
WL_PIDS+=($!)
workload guest2 &
WL_PIDS+=($!)

# A baseline: both guests have run their workload for a while.
t_base=$(now_ns)
check "the workload runs in both guests" wait_for 30 bash -c \
	"[ \$(wc -l <'$SIMDIR/wl-guest1.lat') -ge 30 ] && [ \$(wc -l <'$SIMDIR/wl-guest2.lat') -ge 30 ]"
BASELINE=$(latency "$t_base" "$(now_ns)")
echo "# baseline workload: $BASELINE"

run_case malformed-headers
run_case cancel-idle
run_case page-change
run_case flood
run_case never-read
run_case cpu-hog --seconds "$CPU_HOG_SECONDS"
run_case rewrite-frontend
run_case backend-write
run_case uuid-steal
run_case reopen-loop --cycles 200
run_case worker-crash

stop_workload
total=$(commands)
errs=$(errors)
echo "# workload: $total commands in guest1 and guest2, $errs errors"
[ "$errs" -eq 0 ] || sed 's/^/#   /' "$SIMDIR"/wl-guest*.err "$SIMDIR"/wl-guest*.err.out | tail -n 20
check "the workload saw zero errors over $total commands" [ "$errs" -eq 0 -a "$total" -gt 0 ]
check "vtpmd is still the same process" bash -c "[ \"\$(cat '$SIMDIR/vtpmd.pid')\" = $VTPMD_PID ] && kill -0 $VTPMD_PID"
check "guest1's frontend is still Connected" [ "$(fe_state "$DOM1")" = 4 ]
check "guest2's frontend is still Connected" [ "$(fe_state "$DOM2")" = 4 ]
check "guest1 reports a ready TPM" grep -q 'frontend=4 tpm=ready' "$SIMDIR/guest1.guest-state"
check "guest2 reports a ready TPM" grep -q 'frontend=4 tpm=ready' "$SIMDIR/guest2.guest-state"
check "vtpmd never logged a crash of guest1's or guest2's worker" \
	bash -c "! grep -E 'domid=($DOM1|$DOM2) .*(killed by signal|exited with status)' '$SIMDIR/vtpmd.log'"
two_workers() { [ "$(n_workers)" -eq 2 ]; }
check "only the two normal guests' workers remain" wait_for 10 two_workers
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
finish
