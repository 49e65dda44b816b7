#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A worker that makes a system call outside its seccomp allow-list (ptrace,
# through tests/sim/forbidden-syscall.c, once it serves its guest) is killed
# by the kernel; vtpmd reports why, restarts it with back-off and gives up
# after five crashes, while vtpmd, its control socket and another guest's
# vTPM carry on. Before the forbidden call, the worker tries to reach beyond
# its guest (issue 17): a new socket; connecting, sending and passing fds
# (SCM_RIGHTS) to a world-writable socket through the sockets it holds;
# passing an fd to vtpmd; opening domain 1's event channel and grant table.
# Each must be refused, and the socket must receive nothing.
. "$(dirname "$0")/lib.sh"

# The world-writable socket a taken-over worker would hand its fds to, in a
# directory the worker's uid can reach; it records whatever arrives.
chmod 711 "$SIMDIR"
mkdir -m 777 "$SIMDIR/ww"
WW="$SIMDIR/ww/sock"
python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
out = open(sys.argv[2], "a", buffering=1)
while True:
    msg, anc, flags, addr = s.recvmsg(64, socket.CMSG_SPACE(64))
    print("datagram of %d bytes, %d bytes of control" % (len(msg), len(anc)), file=out)
' "$WW" "$SIMDIR/ww/received" &
LISTENER=$!
trap 'kill "$LISTENER" 2>/dev/null; cleanup' EXIT
check "a world-writable socket listens at $WW" wait_for 10 test -S "$WW"

# vtpm-sim starts $VTPMD with a clean environment: a wrapper preloads the
# library into vtpmd, whose workers inherit it; only domain 2's worker fires.
# ASan builds insist on coming first in the library list; ours is not
# instrumented.
cat >"$SIMDIR/vtpmd-wrap" <<EOF2
#!/bin/sh
export LD_PRELOAD="$FORBIDDEN_SYSCALL_LIB" FORBIDDEN_SYSCALL_DOMID=2
export FORBIDDEN_SYSCALL_SOCKET="$WW" FORBIDDEN_SYSCALL_OTHER=1
export ASAN_OPTIONS="\${ASAN_OPTIONS:+\$ASAN_OPTIONS:}verify_asan_link_order=0"
exec "$VTPMD" "\$@"
EOF2
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"

check "vtpm-sim start: guest1 (domain 1) connected" "$VTPM_SIM" start --dir "$SIMDIR" --guests 1
T1=$(tcti guest1)
check "guest1's TPM answers" tpm2_getrandom -T "$T1" 8 --hex

VTPM_SIM_CONNECT_TIMEOUT=30 "$VTPM_SIM" attach --dir "$SIMDIR" guest2 >"$SIMDIR/attach.out" 2>&1
echo "# vtpm-sim attach guest2 (domain 2): exit $? (its worker is killed whenever it starts serving)"

check "vtpmd reports guest2's worker killed by its seccomp filter" \
	wait_for 60 grep -q 'domid=2 .*killed by its seccomp filter (SIGSYS' "$SIMDIR/vtpmd.log"
check "vtpmd restarts it with back-off" grep -q 'domid=2 .*seccomp filter.*restarting in' "$SIMDIR/vtpmd.log"
check "vtpmd gives up on it after repeated kills" wait_for 60 grep -q 'domid=2 .*seccomp filter.*giving up' "$SIMDIR/vtpmd.log"
# probed: "forbidden-syscall: WHAT: refused (ERROR)" or "...: reached".
probed() { grep -E "forbidden-syscall: $1: refused \\($2\\)" "$SIMDIR/vtpmd.log"; }
check "the worker could not create a socket" probed 'socket\(AF_UNIX\)' 'Operation not permitted'
check "nor connect one it holds to the world-writable socket" probed "connect fd [0-9]+ to $WW" 'Operation not permitted'
check "nor send to it by address" probed "sendto fd [0-9]+ to $WW" 'Operation not permitted'
check "nor pass it an fd (SCM_RIGHTS)" probed "SCM_RIGHTS on fd [0-9]+ to $WW" 'Operation not permitted'
check "nor pass vtpmd an fd over its IPC socket" probed 'SCM_RIGHTS on fd [0-9]+ to its peer' 'Operation not permitted'
check "nor open guest1's event-channel table" probed 'open evtchn-1' 'Permission denied'
check "nor open guest1's grant table" probed 'open gnt-1/table' 'Permission denied'
check "no attempt reached anything" bash -c "! grep 'forbidden-syscall: .*: reached' '$SIMDIR/vtpmd.log'"
check "the world-writable socket received nothing" test ! -s "$SIMDIR/ww/received"
echo "# vtpmd's log:"
grep -E 'domid=2 .*(seccomp|confined)' "$SIMDIR/vtpmd.log" | head -4 | sed 's/^/#   /'
check "guest1's worker was never restarted" test "$(grep -c 'domid=1 .*confined' "$SIMDIR/vtpmd.log")" = 1
check "guest1's TPM still answers" tpm2_getrandom -T "$T1" 8 --hex
check "vtpmd itself is still running" kill -0 "$(cat "$SIMDIR/vtpmd.pid")"
check "its control socket still answers" "$VTPMD_CTL" --control "$SIMDIR/control" status
if dmesg 2>/dev/null | grep -q 'comm="vtpmd-worker".*sig=31'; then
	echo "# kernel audit: $(dmesg | grep 'comm="vtpmd-worker".*sig=31' | tail -1 | grep -o 'syscall=[0-9]*') (101 = ptrace on x86-64)"
fi
finish
