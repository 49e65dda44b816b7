#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Crash consistency of durable vTPM state. A guest writes a counter into an
# 8-byte NV index with tpm2_nvwrite, one value per command, while vtpmd is
# killed with SIGKILL at random moments: in phase 1 the guest's
# vtpmd-worker, in phase 2 the whole daemon (the supervisor alone, or the
# supervisor and its workers at once). After every kill, once the vTPM is
# back (frontend Connected, commands answered), the index must hold exactly
# the last value whose tpm2_nvwrite succeeded, or the one after it (written
# durably, but its response lost), never anything else, and the vTPM's state
# must always load.
#
# A failed write is retried with the same value, as an application would, so
# the value in flight is always "last success + 1" and the rule above is exact.
#
# vtpmd gives up on a device after 5 worker crashes within 60 s (vtpmd(8)),
# so phase 1 restarts vtpmd gracefully (vtpm-sim restart-daemon: SIGTERM,
# what systemctl restart does) after every 4 worker kills, which starts a
# fresh crash budget and also stops the daemon in the middle of writes.
#
# Environment: VTPM_SIM, VTPMD, VTPMD_WORKER, VTPM_XENSTORED, VTPM_SIM_GUEST
# (meson sets them); VTPM_CRASH_WRITES (default 300) for a quicker run.
source "$(dirname "$0")/lib.sh"

WRITES=${VTPM_CRASH_WRITES:-300}
NV=0x1500016
KILLS=$SIMDIR/kills.log   # one line per fault the killer caused
STOP=$SIMDIR/killer.stop
KILLER=

on_exit() {
	if [ -n "$KILLER" ]; then
		touch "$STOP"
		wait "$KILLER" 2>/dev/null
	fi
	cleanup
}
trap on_exit EXIT

if ! "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 >"$SIMDIR/start.out" 2>&1; then
	sed 's/^/# /' "$SIMDIR/start.out"
	fail "vtpm-sim start --guests 1"
	finish
fi
ok "guest1 connected, host TPM swtpm"
T=$(tcti guest1)
DOMID=$("$VTPM_SIM" status --dir "$SIMDIR" | awk '$1 == "guest1" {print $2}')
BE_STATE=/local/domain/0/backend/vtpm/$DOMID/0/state

vtpmd_pid() { cat "$SIMDIR/vtpmd.pid"; }
worker_pid() { worker_pids | head -1; }
have_worker() { [ -n "$(worker_pid)" ]; }
writes_done() { wc -l <"$SIMDIR/writes.log"; }
# The moment of the next kill: after 1-8 more completed writes (so the guest
# makes progress between kills and recovery does not eat the time budget),
# then a random 20-200 ms, which lands inside a write or between two.
# The sleep is the random moment itself, not a synchronisation.
next_moment() {
	local target=$(($(writes_done) + 1 + RANDOM % 8))
	while [ "$(writes_done)" -lt "$target" ] && [ ! -e "$STOP" ]; do
		sleep 0.05
	done
	sleep "0.$(printf '%03d' $((20 + RANDOM % 181)))"
}

# ---- the killer (background) ----

# Phase 1: SIGKILL the worker, 4 times per daemon lifetime, then a graceful
# restart-daemon.
kill_workers() {
	local n=0 w
	while [ ! -e "$STOP" ]; do
		# The next worker (the restarted one) must exist before it can be killed.
		wait_for 30 have_worker || { echo "no-worker" >>"$KILLS"; return; }
		next_moment
		[ -e "$STOP" ] && break
		w=$(worker_pid)
		[ -n "$w" ] || continue
		if kill -KILL "$w" 2>/dev/null; then
			echo "worker $w" >>"$KILLS"
			n=$((n + 1))
		fi
		if [ "$n" -eq 4 ]; then
			n=0
			if "$VTPM_SIM" restart-daemon --dir "$SIMDIR" >>"$SIMDIR/restarts.out" 2>&1; then
				echo "restart" >>"$KILLS"
			else
				echo "restart-failed" >>"$KILLS"
				return
			fi
		fi
	done
}

# Phase 2: SIGKILL the supervisor (its workers notice and exit on their own),
# or its whole process group (supervisor and workers in the same instant),
# then start it again the way the launcher does for a dead daemon.
kill_daemon() {
	local p how
	while [ ! -e "$STOP" ]; do
		next_moment
		[ -e "$STOP" ] && break
		p=$(vtpmd_pid)
		if [ $((RANDOM % 2)) -eq 0 ]; then
			how=supervisor
			kill -KILL "$p" 2>/dev/null
		else
			how=group
			kill -KILL -- "-$p" 2>/dev/null
		fi
		echo "daemon-$how $p $(date +%s%N | cut -c1-13)" >>"$KILLS"
		# restart-daemon finds vtpmd gone and starts it with the recorded
		# arguments; it returns once vtpmd sent READY=1.
		if ! "$VTPM_SIM" restart-daemon --dir "$SIMDIR" >>"$SIMDIR/restarts.out" 2>&1; then
			echo "restart-failed" >>"$KILLS"
			return
		fi
		# A killed supervisor's workers save their volatile state and exit:
		# none may outlive it for long (a leftover would hold the vTPM's lock).
		if ! wait_for 30 bash -c "! pgrep -s $p >/dev/null"; then
			echo "orphans-left $p" >>"$KILLS"
			for q in $(pgrep -s "$p"); do kill -KILL "$q"; done
		fi
	done
}

# ---- the writer (foreground) ----

nv_value() {
	local hex
	hex=$(timeout 60 tpm2_nvread -T "$T" -C o -s 8 $NV 2>/dev/null | od -An -tx1 | tr -d ' \n')
	[ ${#hex} -eq 16 ] || return 1
	echo $((16#$hex))
}
kills() { wc -l <"$KILLS"; }

LAST_OK=0    # the last value whose tpm2_nvwrite returned success
ATTEMPTS=0
FAILS=0
CHECKS=0
SEEN_NEXT=0  # checks that found LAST_OK + 1 (durable, response lost)
BAD=0

# verify WHY: waits until the vTPM answers again, then checks the index.
verify() {
	local v="" deadline=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		v=$(nv_value) && break
		v=""
		sleep 0.05
	done
	CHECKS=$((CHECKS + 1))
	if [ -z "$v" ]; then
		BAD=$((BAD + 1))
		echo "# after $1: the NV index cannot be read within 60 s (the state did not load?)"
		return
	fi
	if [ "$v" -eq "$LAST_OK" ]; then
		:
	elif [ "$v" -eq $((LAST_OK + 1)) ]; then
		SEEN_NEXT=$((SEEN_NEXT + 1))
	else
		BAD=$((BAD + 1))
		echo "# after $1: the index holds $v, last successful write $LAST_OK"
	fi
	local fe be
	fe=$(cat "$SIMDIR/guest1.guest-state" 2>/dev/null)
	be=$(XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-read "$BE_STATE" 2>/dev/null)
	# The reading command itself proves the vTPM is serving; the guest and the
	# backend must also say Connected (a kill may already be pending again, but
	# xenbus state never moves for a worker or daemon restart).
	if [ "$fe" != "frontend=4 tpm=ready" ] || [ "$be" != 4 ]; then
		BAD=$((BAD + 1))
		echo "# after $1: guest '$fe', backend state '$be' (not Connected)"
	fi
}

# write_loop N: N tpm2_nvwrite commands of LAST_OK + 1, checking after every
# kill and every failure.
write_loop() {
	local n=$1 seen v wrote t0
	seen=$(kills)
	for _ in $(seq "$n"); do
		v=$((LAST_OK + 1))
		printf '%016x' "$v" | xxd -r -p >"$SIMDIR/v.bin"
		ATTEMPTS=$((ATTEMPTS + 1))
		t0=$(date +%s%N)
		if timeout 60 tpm2_nvwrite -T "$T" -C o -i "$SIMDIR/v.bin" $NV 2>>"$SIMDIR/nvwrite.err"; then
			LAST_OK=$v
			wrote=ok
		else
			FAILS=$((FAILS + 1))
			wrote=failed
		fi
		echo "$(date +%s%N | cut -c1-13) $((($(date +%s%N) - t0) / 1000000)) $v $wrote" >>"$SIMDIR/writes.log"
		if [ "$wrote" = failed ] || [ "$(kills)" -ne "$seen" ]; then
			seen=$(kills)
			verify "write $v ($wrote), fault #$seen"
		fi
	done
}

: >"$KILLS"
: >"$SIMDIR/writes.log"
check "nvdefine an 8-byte ownerread|ownerwrite index" \
	tpm2_nvdefine -T "$T" -C o -s 8 -a "ownerread|ownerwrite" $NV
printf '%016x' 0 | xxd -r -p >"$SIMDIR/v.bin"
check "initial write of 0" tpm2_nvwrite -T "$T" -C o -i "$SIMDIR/v.bin" $NV

phase() {
	local name=$1 fn=$2 n=$3 min=$4 kind=$5 t0 bad0=$BAD ok0=$LAST_OK att0=$ATTEMPTS fail0=$FAILS k0 extra=0
	k0=$(kills)
	rm -f "$STOP"
	t0=$(date +%s%N)
	$fn &
	KILLER=$!
	write_loop "$n"
	# On a fast (or slow) machine the kills per write vary: keep writing, up
	# to 3n more, until the phase has seen its minimum number of faults.
	while [ "$(tail -n +$((k0 + 1)) "$KILLS" | grep -c "^$kind")" -lt "$min" ] && [ "$extra" -lt $((3 * n)) ]; do
		write_loop 10
		extra=$((extra + 10))
	done
	touch "$STOP"
	wait "$KILLER"
	KILLER=
	# The killer may have struck after the last check: one more.
	verify "end of $name"
	local k=$(($(kills) - k0))
	echo "# $name: $((ATTEMPTS - att0)) writes ($((FAILS - fail0)) failed), values $ok0 -> $LAST_OK," \
		"$(tail -n "$k" "$KILLS" | awk '{print $1}' | sort | uniq -c | awk '{printf "%s %s, ", $1, $2}')" \
		"$(((($(date +%s%N) - t0) / 1000000)))" ms
	check "$name: the killer never failed to restart vtpmd or find its worker" \
		bash -c "! tail -n $k '$KILLS' | grep -qE 'restart-failed|no-worker|orphans-left'"
	check "$name: every check found the last successful value or the one after it" test "$BAD" -eq "$bad0"
}

half=$((WRITES / 2))
phase "phase 1 (worker SIGKILL)" kill_workers "$half" $((half / 15)) worker
w1=$(grep -c '^worker' "$KILLS")
check "phase 1 killed the worker at least $((half / 15)) times" test "$w1" -ge $((half / 15))
phase "phase 2 (daemon SIGKILL)" kill_daemon "$((WRITES - half))" $(((WRITES - half) / 15)) daemon
d2=$(grep -c '^daemon' "$KILLS")
check "phase 2 killed vtpmd at least $(((WRITES - half) / 15)) times" test "$d2" -ge $(((WRITES - half) / 15))

check "the last value reads back" test "$(nv_value)" = "$LAST_OK"
check "vtpmd never refused this vTPM's state" \
	bash -c "! grep -E 'not starting this vTPM|Refusing to start|giving up|rolled back' '$SIMDIR/vtpmd.log'"
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
check "start again" "$VTPM_SIM" start --dir "$SIMDIR" --guests 1
check "after stop/start the index holds the last successful value" test "$(nv_value)" = "$LAST_OK"

echo "# summary: $ATTEMPTS tpm2_nvwrite ($FAILS failed, last value $LAST_OK)," \
	"$w1 worker kills, $d2 daemon kills ($(grep -c '^daemon-supervisor' "$KILLS") supervisor only," \
	"$(grep -c '^daemon-group' "$KILLS") with its workers), $(grep -c '^restart$' "$KILLS") graceful restarts;" \
	"$CHECKS checks, $SEEN_NEXT found the write after the last success, $BAD bad"
finish
