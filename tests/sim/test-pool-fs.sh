#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# The shared storage of the simulated pool (tests/sim/pool-fs.sh: GlusterFS
# over loopback through FUSE) gives the semantics vtpmd's pool relies on,
# seen through two mounts as two hosts would see it (docs/pool-storage.md):
#
#  - an OFD write lock taken through mnt1 is refused through mnt2, and granted
#    there once its holder closes it or is SIGKILLed;
#  - a file replaced durably through mnt1 (write, fsync, rename, fsync of the
#    directory) reads back new through mnt2 at once, every time;
#  - fencing: when the storage goes away under a lock holder (the brick is
#    killed and restarted), the lock is gone, mnt2 takes it, and the old
#    holder's fd never writes again; when the holder's own FUSE client dies,
#    the lock is released and the holder's fd fails; while it only hangs,
#    the lock stays its own.
#
# The measured times are printed as "# measured:" lines.
#
# Environment (meson sets it): POOL_LOCK (tests/sim/pool-lock), POOL_FS
# (tests/sim/pool-fs.sh).
source "$(dirname "$0")/lib.sh"

: "${POOL_LOCK:?POOL_LOCK must name the pool-lock helper}"
POOL_FS=${POOL_FS:-$(dirname "$0")/pool-fs.sh}
export POOL_LOCK
P=$SIMDIR/pool
M1=$P/mnt1
M2=$P/mnt2

# The file system first: cleanup removes SIMDIR, brick and mount points included.
trap '"$POOL_FS" down "$P" >&2 || echo "# pool-fs.sh down failed"; cleanup' EXIT

"$POOL_FS" up "$P" 2
rc=$?
if [ "$rc" -eq 77 ]; then
	skip "the shared file system # pool-fs.sh up: no FUSE or GlusterFS here"
	finish
fi
[ "$rc" -eq 0 ] || { fail "pool-fs.sh up $P 2 (exit $rc)"; finish; }
ok "pool-fs.sh up: two FUSE mounts of one GlusterFS volume"

# One lock holder at a time, driven through two fifos (pool-lock hold); its
# last answer is in $ANSWER. Not run in $(...): the holder is this shell's child.
HPID="" HW="" HR="" ANSWER=""
holder_start() {
	rm -f "$SIMDIR/h.in" "$SIMDIR/h.out"
	mkfifo "$SIMDIR/h.in" "$SIMDIR/h.out"
	"$POOL_LOCK" hold "$1" <"$SIMDIR/h.in" >"$SIMDIR/h.out" &
	HPID=$!
	exec {HW}>"$SIMDIR/h.in" {HR}<"$SIMDIR/h.out"
	holder_answer
}
holder_answer() { read -r -t 30 -u "$HR" ANSWER || ANSWER="no answer"; }
holder_say() {
	if echo "$1" >&"$HW" 2>/dev/null; then holder_answer; else ANSWER="holder gone"; fi
}
holder_end() {
	exec {HW}>&- {HR}<&-
	wait "$HPID" 2>/dev/null
	HPID=""
}
failed() { [ "${ANSWER#error }" != "$ANSWER" ]; }
# new_holder FILE: a holder that got the lock, trying for up to 10 s: a lock
# that another process released is freed by the brick a moment after that
# process's close returned (FUSE sends the release asynchronously).
new_holder() {
	local deadline=$(($(date +%s%N) + 10000000000))
	while :; do
		holder_start "$1"
		[ "$ANSWER" = locked ] && return 0
		holder_end
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
	done
}

# wait_lock MOUNT FILE: waits up to 60 s for the lock through MOUNT; prints the milliseconds.
wait_lock() { "$POOL_LOCK" wait "$1/$2" 60000; }

holder_start "$M1/vtpm.lock"
check "holder takes the lock through mnt1" test "$ANSWER" = locked
check "the lock is refused through mnt2 (EAGAIN)" test "$("$POOL_LOCK" try "$M2/vtpm.lock")" = EAGAIN
check "the lock is refused through another open of mnt1 (EAGAIN)" \
	test "$("$POOL_LOCK" try "$M1/vtpm.lock")" = EAGAIN
holder_say write
check "the holder writes through its locked fd" test "$ANSWER" = ok
holder_say close
check "the holder closes its fd" test "$ANSWER" = closed
if ms=$(wait_lock "$M2" vtpm.lock); then
	ok "the lock is granted through mnt2 after the holder closed it"
	echo "# measured: lock granted through mnt2 $ms ms after the holder's close"
else
	fail "the lock is granted through mnt2 after the holder closed it ($ms)"
fi
holder_end

new_holder "$M1/vtpm.lock"
check "a new holder takes the lock through mnt1 (once mnt2's waiter has let go)" test "$ANSWER" = locked
{
	kill -KILL "$HPID"
	wait "$HPID"
} 2>/dev/null
if ms=$(wait_lock "$M2" vtpm.lock); then
	ok "the lock is released when its holder is SIGKILLed"
	echo "# measured: lock granted through mnt2 $ms ms after the holder's SIGKILL"
else
	fail "the lock is released when its holder is SIGKILLed ($ms)"
fi
holder_end

# Durable replace through mnt1, read through mnt2 right after, 20 times: the
# first creates the file, the others replace it.
stale=0
for i in $(seq 1 20); do
	"$POOL_LOCK" publish "$M1" state "generation $i" >/dev/null || { stale=$((stale + 100)); break; }
	got=$(cat "$M2/state" 2>&1)
	[ "$got" = "generation $i" ] || { stale=$((stale + 1)); echo "# generation $i read through mnt2: $got"; }
done
check "a file replaced durably through mnt1 reads back new through mnt2 at once (20 of 20)" test "$stale" -eq 0
check "the temporary file of the replace is gone through mnt2" test ! -e "$M2/.state.tmp"

# Fencing 1: the storage goes away under the holder and comes back.
holder_start "$M1/fence.lock"
check "a holder takes the lock through mnt1 before the storage goes away" test "$ANSWER" = locked
holder_say write
check "... and writes" test "$ANSWER" = ok
if "$POOL_FS" storage-down "$P"; then
	ok "pool-fs.sh storage-down"
else
	fail "pool-fs.sh storage-down"
fi
holder_say write
echo "# measured: the holder's write while the storage is gone: $ANSWER"
check "the holder's write fails while the storage is gone" failed
got=$("$POOL_LOCK" try "$M2/fence.lock")
echo "# measured: a lock attempt through mnt2 while the storage is gone: $got"
check "no lock is granted through mnt2 while the storage is gone" test "$got" != granted
t0=$(date +%s%N)
if "$POOL_FS" storage-up "$P"; then
	ok "pool-fs.sh storage-up"
else
	fail "pool-fs.sh storage-up"
fi
if ms=$(wait_lock "$M2" fence.lock); then
	ok "after the storage returns, the lost lock is granted through mnt2"
	echo "# measured: storage-up to lock granted through mnt2: $((($(date +%s%N) - t0) / 1000000)) ms"
else
	fail "after the storage returns, the lost lock is granted through mnt2 ($ms)"
fi
# The new owner writes through mnt2; nothing of the old holder's may land.
printf 'new owner' >"$M2/fence.lock"
for op in write read write; do
	holder_say "$op"
	echo "# measured: the old holder's $op after the storage returned: $ANSWER"
	check "the old holder's $op fails after the storage returned (fenced)" failed
done
check "the new owner's data is intact through mnt1 and mnt2" \
	test "$(cat "$M1/fence.lock")/$(cat "$M2/fence.lock")" = "new owner/new owner"
# Fencing is per locked fd: a file opened afresh through mnt1 is written.
echo "# measured: a fresh replace through mnt1 after the storage returned: $("$POOL_LOCK" publish "$M1" fresh x)"
holder_end

# A hung host: its FUSE client stopped, not dead. The brick keeps the lock
# for it (nothing closes the connection), so nobody takes over a vTPM the hung
# host may still write once it runs again.
holder_start "$M1/hung.lock"
check "a holder takes the lock through mnt1 before its FUSE client hangs" test "$ANSWER" = locked
kill -STOP "$(cat "$P/mnt1.pid")"
got=$("$POOL_LOCK" wait "$M2/hung.lock" 5000)
check "the lock of a hung client is not granted through mnt2 within 5 s" test "$got" = timeout
kill -CONT "$(cat "$P/mnt1.pid")"
holder_say write
check "the holder writes again once its client runs" test "$ANSWER" = ok
check "... and still holds the lock" test "$("$POOL_LOCK" try "$M2/hung.lock")" = EAGAIN
holder_end

# Fencing 2: the holder's own FUSE client (its host's mount) dies.
holder_start "$M1/client.lock"
check "a holder takes the lock through mnt1 before its FUSE client dies" test "$ANSWER" = locked
check "the lock is refused through mnt2 before" test "$("$POOL_LOCK" try "$M2/client.lock")" = EAGAIN
kill -KILL "$(cat "$P/mnt1.pid")"
if ms=$(wait_lock "$M2" client.lock); then
	ok "the lock is released when the holder's FUSE client is SIGKILLed"
	echo "# measured: lock granted through mnt2 $ms ms after mnt1's FUSE client was SIGKILLed"
else
	fail "the lock is released when the holder's FUSE client is SIGKILLed ($ms)"
fi
for op in write read; do
	holder_say "$op"
	echo "# measured: the holder's $op after its FUSE client died: $ANSWER"
	check "the holder's $op fails after its FUSE client died" failed
done
holder_end

# down must leave nothing mounted or running, dead mount included; a second down is a no-op.
check "pool-fs.sh down" "$POOL_FS" down "$P"
check "nothing of the pool is mounted" test -z "$(awk -v p="$P/" 'index($2, p) == 1' /proc/mounts)"
# Command lines read by bash itself: a grep would find its own.
pool_processes() {
	local f args
	for f in /proc/[0-9]*/cmdline; do
		mapfile -d '' args 2>/dev/null <"$f" || continue
		[[ "${args[*]}" == *"$P/"* ]] && echo "$f: ${args[*]}"
	done
}
check "no process of the pool runs" test -z "$(pool_processes)"
check "pool-fs.sh down again is a no-op" "$POOL_FS" down "$P"

# A failed up (no step may take any time) tears down what it started.
POOL_FS_DEADLINE=0 "$POOL_FS" up "$P" 1 2>/dev/null
check "a failed up exits 1" test $? -eq 1
check "a failed up leaves nothing mounted" test -z "$(awk -v p="$P/" 'index($2, p) == 1' /proc/mounts)"
check "a failed up leaves no process running" test -z "$(pool_processes)"
finish
