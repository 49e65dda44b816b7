#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Control-socket abuse (issue 17), with two bystander guests running
# tpm2-tools the whole time: a non-root client, garbage, oversized and empty
# packets, 200 clients at once, a client that never reads its reply. Each
# gets a clear error (or is refused cleanly at connect), vtpmd serves at most
# 64 clients and closes idle ones after 10 s, and neither vtpmd nor the
# bystanders notice. Clients: tests/sim/ctl-abuse.py.
. "$(dirname "$0")/lib.sh"

ABUSE="python3 $(dirname "$0")/ctl-abuse.py"
MAX_CLIENTS=64 # CONTROL_MAX_CLIENTS (daemon/supervisor/control.h)
trap 'bystanders_stop; cleanup' EXIT

if ! run "$VTPM_SIM" start --dir "$SIMDIR" --guests 2; then
	fail "vtpm-sim start: guest1 and guest2 connected"
	finish
fi
ok "vtpm-sim start: guest1 and guest2 connected"
CTL=$SIMDIR/control
bystanders_start guest1 guest2
check "the bystanders' workload runs" wait_for 60 bystanders_ran 12

# ---- a non-root client
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$VTPMD_CTL" --control "$CTL" status; }
out=$(as_nobody 2>&1)
rc=$?
echo "# nobody, socket 0600: exit $rc: $out"
check "a non-root vtpmd-ctl cannot even connect (the socket is root's, 0600)" \
	bash -c "[ $rc -ne 0 ] && grep -q 'Permission denied' <<<'$out'"
chmod 711 "$SIMDIR"
chmod 666 "$CTL"
out=$(as_nobody 2>&1)
rc=$?
chmod 600 "$CTL"
chmod 700 "$SIMDIR"
echo "# nobody, socket made 0666 by mistake: exit $rc: $out"
check "... and where the socket's mode lets it connect, vtpmd refuses it by its credentials" \
	bash -c "[ $rc -ne 0 ] && grep -qF \"permission denied: vtpmd-ctl needs root or vtpmd's admin group\" <<<\"\$1\"" _ "$out"

# ---- garbage, empty and oversized packets
$ABUSE garbage "$CTL" >"$SIMDIR/garbage.out" 2>&1
sed 's/^/# /' "$SIMDIR/garbage.out"
for c in binary empty not-json not-an-object unknown-op wrong-type deep-nesting; do
	check "garbage ($c): the reply says malformed request" grep -qE "^reply $c errno=74 error=malformed request" "$SIMDIR/garbage.out"
done
check "a packet over 16 KiB: the reply says request too large" \
	grep -qE '^reply over-16KiB errno=90 error=request too large' "$SIMDIR/garbage.out"
for c in 200KiB 1MiB; do
	check "a $c packet: request too large, or refused by the kernel at send (EMSGSIZE)" \
		grep -qE "^(reply $c errno=90 error=request too large|send-failed $c EMSGSIZE)" "$SIMDIR/garbage.out"
done
check "every garbage client got an answer" bash -c "! grep -qE '^(eof|timeout|reset) ' '$SIMDIR/garbage.out'"

# ---- a client that never reads its reply
$ABUSE noread "$CTL" >"$SIMDIR/noread.out" 2>&1
sed 's/^/# /' "$SIMDIR/noread.out"
check "the client that never read: its reply and the idle notice are queued, then the end" \
	grep -q '^noread after [0-9]* s: reply idle eof$' "$SIMDIR/noread.out"

# ---- 200 clients at once
$ABUSE flood "$CTL" 200 "$MAX_CLIENTS" "$VTPMD_CTL" --control "$CTL" status >"$SIMDIR/flood.out" 2>&1
sed 's/^/# /' "$SIMDIR/flood.out"
count() { sed -n "s/^$1 \\([0-9]*\\)\$/\\1/p" "$SIMDIR/flood.out" | awk '{ s += $1 } END { print s + 0 }'; }
held=$(sed -n 's/^held //p' "$SIMDIR/flood.out")
turned=$(($(count refused) + $(count 'connect-failed-[A-Z]*')))
check "200 clients: $MAX_CLIENTS served at once ($held held)" test "$held" = "$MAX_CLIENTS"
check "... every other one told 'too many control clients' or refused at connect ($turned)" test "$turned" = $((200 - MAX_CLIENTS))
check "... vtpmd-ctl while they are held fails with 'too many control clients'" \
	grep -qE '^ctl-while-held exit=[1-9].*too many control clients' "$SIMDIR/flood.out"
check "... each held one told it was idle, then closed" test "$(count idle-closed)" = "$held"
check "... and no client saw anything else" bash -c "! grep -qE '^(other-|no-eof|still-open)' '$SIMDIR/flood.out'"
check "vtpmd logged the refusals (rate-limited)" grep -q 'clients connected, refusing another' "$SIMDIR/vtpmd.log"
check "vtpmd logged the idle clients" grep -q 'sent no request for 10 s: closing' "$SIMDIR/vtpmd.log"

# ---- afterwards
check "vtpmd-ctl status answers again" run "$VTPMD_CTL" --control "$CTL" status
bystanders_check
check "vtpmd itself is still running" kill -0 "$(cat "$SIMDIR/vtpmd.pid")"
finish
