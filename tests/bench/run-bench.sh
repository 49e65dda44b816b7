#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The benchmark harness (issue 7; keys and method in tests/bench/README.md).
#
#   run-bench.sh [--quick] [--out DIR] [--reps N] [--build DIR]
#
# Measures vtpmd on the simulated Xen host against libtpms in-process and
# swtpm on its socket, interleaving the contenders in every repetition, and
# writes DIR/results.json, DIR/report.md and DIR/*.png (default DIR:
# build/bench). --quick runs few iterations with few guests and then asserts
# that every figure was produced (never its value). Binaries come from --build
# (default build-bench) unless VTPM_BENCH, VTPM_SIM, ... are set (meson does).
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
QUICK=0
OUT=$top/build/bench
BUILD=$top/build-bench
REPS=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=$2; shift ;;
	--reps) REPS=$2; shift ;;
	--build) BUILD=$2; shift ;;
	*) echo "usage: run-bench.sh [--quick] [--out DIR] [--reps N] [--build DIR]" >&2; exit 2 ;;
	esac
	shift
done

: "${VTPM_BENCH:=$BUILD/tests/bench/vtpm-bench}"
: "${VTPM_SIM:=$BUILD/tests/sim/vtpm-sim}"
: "${VTPMD:=$BUILD/daemon/vtpmd}"
: "${VTPMD_WORKER:=$BUILD/daemon/vtpmd-worker}"
: "${VTPM_XENSTORED:=$BUILD/tests/sim/vtpm-xenstored}"
: "${VTPM_SIM_GUEST:=$BUILD/tests/sim/vtpm-sim-guest}"
export VTPMD VTPMD_WORKER VTPM_XENSTORED VTPM_SIM_GUEST
# Counts the host TPM's commands by code (swtpm dumps each one at level 20).
export VTPM_SIM_SWTPM_LOGLEVEL=20
for b in "$VTPM_BENCH" "$VTPM_SIM" "$VTPMD" "$VTPMD_WORKER" "$VTPM_XENSTORED" "$VTPM_SIM_GUEST"; do
	[ -x "$b" ] || { echo "run-bench: $b is missing (build first)" >&2; exit 1; }
done
command -v swtpm >/dev/null || { echo "run-bench: swtpm is not installed" >&2; exit 1; }

if [ "$QUICK" = 1 ]; then
	: "${REPS:=2}"
	N_GR=50 N_PCR=30 N_NV=10 N_CP=5 N_CPU=3000
	LEVELS="1 2"
	SCALE_GUESTS=3 SCALE_REPS=1 TP_MS=200
else
	: "${REPS:=5}"
	N_GR=2000 N_PCR=1000 N_NV=200 N_CP=100 N_CPU=10000
	LEVELS="1 2 8 32"
	SCALE_GUESTS=200 SCALE_REPS=3 TP_MS=2000
fi
# Throughput needs one guest per client.
MAXLEVEL=$(echo $LEVELS | tr ' ' '\n' | sort -n | tail -1)
[ "$SCALE_GUESTS" -ge "$MAXLEVEL" ] || SCALE_GUESTS=$MAXLEVEL

mkdir -p "$OUT" || exit 1
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "$OUT/work.XXXXXX") || exit 1
RAW=$WORK/raw.jsonl
: >"$RAW"
SIMS=""
PIDS=""

cleanup() {
	for s in $SIMS; do "$VTPM_SIM" stop --dir "$s" >/dev/null 2>&1; done
	for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if [ "${KEEP_WORK:-}" ] || [ "${FAILED:-0}" != 0 ]; then
		echo "run-bench: work directory kept: $WORK" >&2
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

FAILED=0
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
die() { FAILED=1; echo "run-bench: $*" >&2; exit 1; }
log() { echo "run-bench: $*" >&2; }
# raw FIG KEY=VALUE... JSON: appends one record (JSON values) to raw.jsonl.
raw() {
	local fig=$1 extra json
	shift
	extra=""
	while [ $# -gt 1 ]; do extra="$extra,\"$1\":$2"; shift 2; done
	json=$1
	echo "{\"fig\":\"$fig\"$extra,\"data\":$json}" >>"$RAW"
}

ticks() { # utime+stime of a process (all its threads), in clock ticks
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
uss_kib() { awk '/^Private_(Clean|Dirty):/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps_rollup"; }
rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
pss_kib() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
vtpmd_pid() { "$VTPM_SIM" status --dir "$1" --json | jq -r .vtpmd.pid; }
# vtpmd's children but the worker fork server (command line ends in --fork-server).
workers_of() { ps -o pid=,args= --ppid "$1" | awk '$NF != "--fork-server" {print $1}'; }
fork_server_of() { ps -o pid=,args= --ppid "$1" | awk '$NF == "--fork-server" {print $1}'; }
sock_ready() { "$VTPM_BENCH" latency --op getrandom --count 1 --socket "$1" >/dev/null 2>&1; }

# wait_for SECONDS command...: polls until it succeeds or the deadline passes.
wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000))
	shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.02
	done
}

# start_swtpm DIR: swtpm as KVM users run it, state on the same disk as vtpmd's.
SWTPM_PID=
start_swtpm() {
	mkdir -p "$1/state"
	swtpm socket --tpm2 --server "type=unixio,path=$1/tpm.sock" --ctrl "type=unixio,path=$1/tpm.sock.ctrl" \
		--tpmstate "dir=$1/state" --flags startup-clear --log "file=$1/swtpm.log" &
	SWTPM_PID=$!
	PIDS="$PIDS $SWTPM_PID"
	wait_for 10 sock_ready "$1/tpm.sock" || die "swtpm in $1 did not start"
}
stop_swtpm() { kill "$SWTPM_PID"; wait "$SWTPM_PID" 2>/dev/null; }

sim_start() { # DIR N [watch]
	SIMS="$SIMS $1"
	"$VTPM_SIM" start --dir "$1" --guests "$2" >"$1.start.log" 2>&1 || { cat "$1.start.log" >&2; die "vtpm-sim start --guests $2 failed"; }
}

machine_info() {
	local cpu cores
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	cores=$(nproc)
	jq -n --arg cpu "$cpu" --argjson cores "$cores" --arg kernel "$(uname -sr)" \
		--arg libtpms "$(dpkg-query -W -f='${Version}' libtpms0 2>/dev/null)" \
		--arg swtpm "$(dpkg-query -W -f='${Version}' swtpm 2>/dev/null)" \
		--arg tss "$(dpkg-query -W -f='${Version}' libtss2-esys-3.0.2-0 2>/dev/null)" \
		--arg fs "$(df -T "$WORK" | awk 'NR == 2 { print $2 " on " $1 }')" \
		--argjson load0 "$LOAD_START" --argjson load1 "$(cut -d' ' -f1 /proc/loadavg)" \
		'{cpu: $cpu, cores: $cores, kernel: $kernel, libtpms: $libtpms, swtpm: $swtpm, tpm2_tss: $tss, state_fs: $fs,
		  loadavg_start: $load0, loadavg_end: $load1}'
}

# The simulated guest models Linux xen-tpmfront, which has no interrupt-driven
# completion: it polls the shared page's status with 1 ms and 5 ms sleeps
# (guest-chip.c), so a command's round trip is rounded up to those sleeps
# whatever the backend does. To measure the backend, the guests run in the
# interrupt-driven mode (--wait event: woken by the event channel, as the
# TPM_CHIP_FLAG_IRQ path of the Linux TPM core). The Linux-faithful polling
# guest is measured too, for GetRandom, as "vtpmd_poll".
GUEST_REAL=$VTPM_SIM_GUEST
GUEST_EVENT=$WORK/vtpm-sim-guest-event
printf '#!/bin/sh\nexec "%s" --wait event "$@"\n' "$GUEST_REAL" >"$GUEST_EVENT"
chmod +x "$GUEST_EVENT"
export VTPM_SIM_GUEST=$GUEST_EVENT

# ---------------------------------------------------------------------------
# Figures 1, 2, 7: one guest, one swtpm, libtpms in-process, interleaved
# (NV_Write also as vtpmd_bare, for figure 7).
log "latency: one simulated guest, swtpm, in-process libtpms; $REPS repetitions"
A=$WORK/a
sim_start "$A" 1
P=$WORK/p
VTPM_SIM_GUEST=$GUEST_REAL sim_start "$P" 1
SW=$WORK/sw
start_swtpm "$SW"
GSOCK=$A/guest1.sock
BARE=$WORK/bare
mkdir -p "$BARE"
VPID=$(vtpmd_pid "$A")
WPID=$(workers_of "$VPID" | head -1)
[ -n "$WPID" ] || die "no vtpmd-worker under vtpmd $VPID"
HZ=$(getconf CLK_TCK)
PERM=$(find "$A/state" -name permall -type f -printf '%s\n' 2>/dev/null | sort -n | tail -1)
[ -n "$PERM" ] || die "no permall in $A/state: is vTPM state durable?"
OPS="getrandom pcrextend nvwrite createprimary"
# Inode and mtime of the contender's permanent-state file.
state_stamp() {
	case $1 in
	vtpmd | vtpmd_bare) find "$A/state" -name permall -type f -printf '%i %T@\n' 2>/dev/null | sort | tr '\n' ' ' ;;
	swtpm) find "$SW/state" -name 'tpm2-00.permall' -type f -printf '%i %T@\n' 2>/dev/null ;;
	esac
}
count_of() { case $1 in getrandom) echo $N_GR ;; pcrextend) echo $N_PCR ;; nvwrite) echo $N_NV ;; createprimary) echo $N_CP ;; esac; }

for rep in $(seq 1 "$REPS"); do
	# Rotate the order each repetition so drift does not favour one contender.
	case $((rep % 3)) in
	0) order="vtpmd swtpm inproc" ;;
	1) order="swtpm inproc vtpmd" ;;
	2) order="inproc vtpmd swtpm" ;;
	esac
	for op in $OPS; do
		n=$(count_of "$op")
		who_list=$order
		[ "$op" = getrandom ] && who_list="$order vtpmd_poll"
		[ "$op" = nvwrite ] && who_list="$order vtpmd_bare"
		for who in $who_list; do
			case $who in
			vtpmd) args="--socket $GSOCK" ;;
			# Figure 7 only: each NV_Write through vtpmd followed by a bare
			# durable write of a file of the vTPM's permall size, in the same
			# directory tree (figure 1 uses the plain vtpmd run above).
			vtpmd_bare) args="--socket $GSOCK --dir $BARE --size $PERM" ;;
			vtpmd_poll) args="--socket $P/guest1.sock" ;;
			swtpm) args="--socket $SW/tpm.sock" ;;
			inproc) args="--inproc" ;;
			esac
			before=$(state_stamp "$who")
			j=$("$VTPM_BENCH" latency --op "$op" --count "$n" --warmup 3 $args) || die "latency $op $who failed"
			raw latency rep "$rep" contender "\"$who\"" op "\"$op\"" "$j"
			if [ "$who" = vtpmd_bare ]; then
				raw bare rep "$rep" "$(echo "$j" | jq -c .bare)"
			fi
			# Did the NV_Writes reach the disk? (A replaced or rewritten state file.)
			if [ "$op" = nvwrite ] && [ "$who" != inproc ]; then
				[ "$before" != "$(state_stamp "$who")" ] && w=true || w=false
				raw nv_durable rep "$rep" contender "\"$who\"" "{\"state_file_written\":$w}"
			fi
		done
	done

	# The bare transport floor, same moment: 2 wake-ups (swtpm's shape) and
	# 4 (the simulation's: client, guest, worker), no work.
	for k in 0 1; do
		j=$("$VTPM_BENCH" hops --relays "$k" --count "$N_GR" --warmup 3) || die "hops --relays $k failed"
		raw hops rep "$rep" relays "$k" "$j"
	done

	# Figure 2: CPU per GetRandom, vtpmd (supervisor + worker) and swtpm.
	for who in $order; do
		case $who in
		vtpmd)
			b=$(($(ticks "$VPID") + $(ticks "$WPID")))
			bs=$(ticks "$VPID")
			"$VTPM_BENCH" latency --op getrandom --count "$N_CPU" --socket "$GSOCK" >/dev/null || die "cpu run vtpmd"
			a=$(($(ticks "$VPID") + $(ticks "$WPID")))
			as=$(ticks "$VPID")
			raw cpu rep "$rep" contender '"vtpmd"' "{\"commands\":$N_CPU,\"ticks\":$((a - b)),\"supervisor_ticks\":$((as - bs)),\"hz\":$HZ}"
			;;
		swtpm)
			b=$(ticks "$SWTPM_PID")
			"$VTPM_BENCH" latency --op getrandom --count "$N_CPU" --socket "$SW/tpm.sock" >/dev/null || die "cpu run swtpm"
			a=$(ticks "$SWTPM_PID")
			raw cpu rep "$rep" contender '"swtpm"' "{\"commands\":$N_CPU,\"ticks\":$((a - b)),\"hz\":$HZ}"
			;;
		inproc) ;;
		esac
	done
done
stop_swtpm
"$VTPM_SIM" stop --dir "$A" >/dev/null 2>&1
"$VTPM_SIM" stop --dir "$P" >/dev/null 2>&1

# Figure 4's swtpm: a fresh one, idle after its startup.
S2=$WORK/sw2
start_swtpm "$S2"
raw memory_swtpm "{\"uss_kib\":$(uss_kib "$SWTPM_PID"),\"rss_kib\":$(rss_kib "$SWTPM_PID")}"
stop_swtpm

# ---------------------------------------------------------------------------
# Figure 5: SCALE_GUESTS guests attached at once (vtpm-sim start creates every
# domain, then waits for all), watched from xenstore. The last repetition's
# simulation stays up for figures 4, 3 and 6.
for rep in $(seq 1 "$SCALE_REPS"); do
	B=$WORK/b$rep
	mkdir -p "$B"
	log "attach: $SCALE_GUESTS guests at once (repetition $rep of $SCALE_REPS)"
	"$VTPM_BENCH" watch-connect --xs-socket "$B/xenstore/socket" --guests "$SCALE_GUESTS" \
		--timeout-ms 600000 >"$B.watch" 2>"$B.watch.err" &
	wpid=$!
	PIDS="$PIDS $wpid"
	t0=$(date +%s%N)
	sim_start "$B" "$SCALE_GUESTS"
	t1=$(date +%s%N)
	wait "$wpid" || { cat "$B.watch.err" >&2; die "watching $SCALE_GUESTS guests connect failed"; }
	raw attach rep "$rep" launcher_ms "$(((t1 - t0) / 1000000))" "$(cat "$B.watch")"
	if [ "$rep" -lt "$SCALE_REPS" ]; then
		"$VTPM_SIM" stop --dir "$B" >/dev/null 2>&1
		rm -rf "$B"
	fi
done

# Figure 4: idle workers with SCALE_GUESTS guests attached, and the supervisor.
VPID=$(vtpmd_pid "$B")
for w in $(workers_of "$VPID"); do
	raw memory_worker "{\"pid\":$w,\"uss_kib\":$(uss_kib "$w"),\"rss_kib\":$(rss_kib "$w"),\"pss_kib\":$(pss_kib "$w")}"
done
for f in $(fork_server_of "$VPID"); do
	raw memory_fork_server "{\"uss_kib\":$(uss_kib "$f"),\"rss_kib\":$(rss_kib "$f")}"
done
raw memory_supervisor guests "$SCALE_GUESTS" "{\"uss_kib\":$(uss_kib "$VPID"),\"rss_kib\":$(rss_kib "$VPID")}"

# Figure 3: throughput with 1, 2, 8, 32 guests sending at once.
log "throughput: $LEVELS guests sending at once"
for rep in $(seq 1 "$REPS"); do
	lv=$LEVELS
	[ $((rep % 2)) = 0 ] && lv=$(echo $LEVELS | tr ' ' '\n' | sort -rn | tr '\n' ' ')
	for k in $lv; do
		socks=""
		for i in $(seq 1 "$k"); do socks="$socks $B/guest$i.sock"; done
		j=$("$VTPM_BENCH" throughput --duration-ms "$TP_MS" $socks) || die "throughput with $k guests failed"
		raw throughput rep "$rep" guests "$k" "$j"
	done
done

# Figure 6: boot storm: vtpmd restarts with SCALE_GUESTS sealed vTPMs in use.
log "boot storm: vtpmd restart with $SCALE_GUESTS vTPMs"
HLOG=$B/hosttpm/swtpm.log
for rep in $(seq 1 "$REPS"); do
	hl0=$(wc -l <"$HLOG" 2>/dev/null || echo 0)
	t0=$(date +%s%N)
	out=$("$VTPM_SIM" restart-daemon --dir "$B" 2>&1) || { echo "$out" >&2; die "restart-daemon failed"; }
	# Serving again: every guest answers a GetRandom.
	for i in $(seq 1 "$SCALE_GUESTS"); do
		wait_for 60 sock_ready "$B/guest$i.sock" || die "guest$i does not answer after the restart"
	done
	t1=$(date +%s%N)
	ready=$(echo "$out" | sed -n 's/.*start to READY=1 \([0-9]*\) ms.*/\1/p')
	down=$(echo "$out" | sed -n 's/.*down \([0-9]*\) ms.*/\1/p')
	cmds=$(grep 'host-TPM command' "$B/vtpmd.log" | tail -1 | sed -n 's/.* \([0-9]*\) host-TPM command.*/\1/p')
	# TPM2_Unseal is command code 0x15e; swtpm dumps each request's bytes.
	unseals=$(tail -n +"$((hl0 + 1))" "$HLOG" 2>/dev/null | awk '
		/SWTPM_IO_Read:/ { want = 1; next }
		want && /^ *[0-9a-fA-F][0-9a-fA-F]( |$)/ { if ($7 $8 $9 $10 == "0000015e" || $7 $8 $9 $10 == "0000015E") n++; want = 0 }
		END { print n + 0 }')
	[ -n "$ready" ] && [ -n "$cmds" ] || { echo "$out" >&2; die "cannot read the restart figures"; }
	raw boot_storm rep "$rep" vtpms "$SCALE_GUESTS" \
		"{\"ready_ms\":$ready,\"down_ms\":${down:-0},\"all_serving_ms\":$(((t1 - t0) / 1000000)),\"host_tpm_commands\":$cmds,\"host_tpm_unseals\":$unseals}"
done
"$VTPM_SIM" stop --dir "$B" >/dev/null 2>&1

# ---------------------------------------------------------------------------
machine_info >"$WORK/machine.json" || die "machine info"
python3 "$here/report.py" --raw "$RAW" --machine "$WORK/machine.json" --out "$OUT" \
	--notes "$here/profile.md" $([ "$QUICK" = 1 ] && echo --quick) || die "report failed"
if [ "$QUICK" = 1 ]; then
	python3 "$here/report.py" --check "$OUT/results.json" || die "results.json is incomplete"
fi
log "wrote $OUT/results.json, $OUT/report.md and plots"
