#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Drives the stock xenstore-* tools (Debian xenstore-utils, the real
# libxenstore) against vtpm-xenstored and checks what they print.
# VTPM_XENSTORED names the daemon binary (meson sets it).
set -u

: "${VTPM_XENSTORED:?VTPM_XENSTORED must name the vtpm-xenstored binary}"
for t in xenstore-write xenstore-read xenstore-ls xenstore-rm xenstore-chmod \
	xenstore-list xenstore-exists xenstore-watch; do
	command -v "$t" >/dev/null || { echo "missing $t (install xenstore-utils)"; exit 1; }
done

. "$(dirname "$0")/lib.sh"
DIR=$SIMDIR
WATCH_PID=

alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*[ZX]' "/proc/$1/status" 2>/dev/null; }

on_exit() {
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
	if [ -f "$DIR/pid" ]; then
		local pid deadline
		pid=$(cat "$DIR/pid")
		kill "$pid" 2>/dev/null
		deadline=$(($(date +%s) + 5))
		while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
		alive "$pid" && kill -9 "$pid" 2>/dev/null
	fi
	if [ "$FAILED" -ne 0 ]; then
		echo "# daemon log:"; sed 's/^/#   /' "$DIR/log" 2>/dev/null | tail -n 30
	fi
	cleanup
}
trap on_exit EXIT

# expect "description" "expected output" command...
expect() {
	local what=$1 want=$2 got
	shift 2
	got=$("$@" 2>&1)
	if [ "$got" = "$want" ]; then ok "$what"; else
		fail "$what"; echo "#   expected: $(printf '%q' "$want")"; echo "#   got:      $(printf '%q' "$got")"
	fi
}
# check/check_not "description" command...: its output is not the test's.
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else fail "$what"; fi; }
check_not() { local what=$1; shift; if "$@" >/dev/null 2>&1; then fail "$what"; else ok "$what"; fi; }

if ! "$VTPM_XENSTORED" --dir "$DIR" --log "$DIR/log" --daemon --pidfile "$DIR/pid"; then
	echo "FAIL daemon did not start"; exit 1
fi
export XENSTORED_PATH="$DIR/socket"

expect "boot tree: dom0 name" "Domain-0" xenstore-read /local/domain/0/name
expect "relative path from the socket is dom0's" "Domain-0" xenstore-read name
check "write two keys at once" xenstore-write /t/a 1 /t/b "two words"
expect "read" "1" xenstore-read /t/a
expect "read with spaces" "two words" xenstore-read /t/b
expect "list" "$(printf 'a\nb')" xenstore-list /t
expect "ls" "$(printf 'a = "1"\nb = "two words"')" xenstore-ls /t
check "exists" xenstore-exists /t/a
check_not "exists: missing" xenstore-exists /t/missing
check_not "read: missing fails" xenstore-read /t/missing
check "chmod" xenstore-chmod /t/a n0 r5
expect "ls -p shows perms" 'a = "1"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5)' \
	bash -c 'xenstore-ls -p /t | head -n 1'
check "chmod: bad perm rejected" bash -c '! xenstore-chmod /t/a q0'
check "rm" xenstore-rm /t/a
check_not "rm: gone" xenstore-exists /t/a
check "rm: missing child of existing parent is fine" xenstore-rm /t/never
check_not "rm: missing parent fails" xenstore-rm /nothere/child
check_not "write: invalid path" xenstore-write '/bad path' x
expect "ls of a whole subtree" "$(printf 'x = ""\n y = "deep"')" \
	bash -c 'xenstore-write /s/x/y deep && xenstore-ls /s'

# xenstore-watch prints the watched path once at once, then one line per event.
xenstore-watch -n 3 /t/w >"$DIR/watch.out" 2>&1 &
WATCH_PID=$!
if wait_for 5 grep -qx /t/w "$DIR/watch.out"; then
	ok "watch: initial event"
	xenstore-write /t/w/x 1
	xenstore-rm /t/w
	if wait_for 5 bash -c "! kill -0 $WATCH_PID 2>/dev/null"; then
		WATCH_PID=
		expect "watch: events" "$(printf '/t/w\n/t/w/x\n/t/w')" cat "$DIR/watch.out"
	else
		fail "watch: events did not arrive"; cat "$DIR/watch.out"
	fi
else
	fail "watch: no initial event"
fi

finish
