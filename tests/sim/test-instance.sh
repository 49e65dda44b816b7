#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# One vtpmd per backend (issue 17): a second vtpmd on the same simulated host,
# with its own state directory and control socket, refuses to start with one
# line naming the first (pid, state directory) and touches nothing: the
# guest's vTPM keeps answering, its worker is never restarted, the first
# vtpmd keeps running. Once the first has stopped, a vtpmd starts again. (A
# vtpmd serving another backend domain on the same host may run alongside:
# test-tamper's PCR-policy case does.)
. "$(dirname "$0")/lib.sh"

check "vtpm-sim start: guest1 connected" "$VTPM_SIM" start --dir "$SIMDIR" --guests 1
T1=$(tcti guest1)
check "guest1's TPM answers" tpm2_getrandom -T "$T1" 8 --hex
FIRST=$(cat "$SIMDIR/vtpmd.pid")

second() {
	"$VTPMD" --platform "sim:$SIMDIR" --no-config --control "$SIMDIR/control2" --state-dir "$SIMDIR/state2" \
		--key-source "file:$SIMDIR/master.key" >"$SIMDIR/second.log" 2>&1
}
second
rc=$?
echo "# the second vtpmd: exit $rc; $(cat "$SIMDIR/second.log")"
check "a second vtpmd on the same host exits with an error" test "$rc" -ne 0
check "... saying which vtpmd serves it (pid, state directory)" \
	grep -qF "Another vtpmd serves domain 0's backends on sim:$SIMDIR (pid $FIRST, state in $SIMDIR/state," "$SIMDIR/second.log"
check "... in one line" test "$(grep -c . "$SIMDIR/second.log")" = 1
check "it opened no control socket" test ! -e "$SIMDIR/control2"
check "guest1's TPM still answers" tpm2_getrandom -T "$T1" 8 --hex
check "guest1's worker was never restarted" test "$(grep -c 'domid=1 .*confined' "$SIMDIR/vtpmd.log")" = 1
check "the first vtpmd still runs" kill -0 "$FIRST"
check "vtpm-sim restart-daemon: the lock goes with the first vtpmd" "$VTPM_SIM" restart-daemon --dir "$SIMDIR"
check "guest1's TPM answers the new vtpmd" tpm2_getrandom -T "$T1" 8 --hex
finish
