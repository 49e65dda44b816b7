#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Durable vTPM state on the simulated host, with the real vtpmd and a real
# swtpm as the host TPM: NV data survives a stop/start of the whole host and a
# host-TPM restart; a daemon restart is invisible to Connected guests (PCRs
# kept, frontend never leaves Connected, dictionary-attack counter unchanged,
# also across guest reboots); the --no-host-tpm key-file mode works and warns.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

D2=$SIMDIR/nohost
WATCHERS=()
on_exit() {
	local p
	for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null; done
	"$VTPM_SIM" stop --dir "$D2" >/dev/null 2>&1
	if [ "$FAILED" -ne 0 ] && [ -f "$SIMDIR/hosttpm/swtpm.log" ]; then
		echo "# --- last lines of $SIMDIR/hosttpm/swtpm.log"
		tail -n 25 "$SIMDIR/hosttpm/swtpm.log" | sed 's/^/#   /'
	fi
	cleanup
}
trap on_exit EXIT

json() { "$VTPM_SIM" status --dir "$1" --json; }
field() {
	json "$SIMDIR" | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$1'][0]; print($2)"
}
xs() { XENSTORED_PATH="$SIMDIR/xenstore/socket" "$@"; }
pcr16() { tpm2_pcrread -T "$(tcti "$1")" sha256:16 | awk '/16:/ {print $2}'; }
lockout() {
	tpm2_getcap -T "$(tcti "$1")" properties-variable | awk '/TPM2_PT_LOCKOUT_COUNTER/ {print $2}'
}
ZERO=0x0000000000000000000000000000000000000000000000000000000000000000
NV=0x1500016
NV_DA=0x1500020

# nv_write TCTI TEXT: (re)defines the owner index $NV and writes TEXT.
nv_write() {
	printf '%s' "$2" >"$SIMDIR/nv.in"
	tpm2_nvundefine -T "$1" -C o $NV >/dev/null 2>&1
	tpm2_nvdefine -T "$1" -C o -s 32 -a "ownerread|ownerwrite" $NV >/dev/null &&
		tpm2_nvwrite -T "$1" -C o -i "$SIMDIR/nv.in" $NV
}
# nv_is TCTI TEXT: the index holds TEXT.
nv_is() { [ "$(tpm2_nvread -T "$1" -C o -s "${#2}" $NV 2>/dev/null)" = "$2" ]; }

start() {
	local out
	out=$("$VTPM_SIM" start "$@" 2>&1)
	local rc=$?
	echo "$out" | sed 's/^/# /'
	return $rc
}

if ! start --dir "$SIMDIR" --guests 2; then
	fail "vtpm-sim start --guests 2 with swtpm as the host TPM"
	finish
fi
ok "two guests connected, host TPM swtpm"
uuid1=$(field guest1 "g['vtpms'][0]['uuid']")

# (a) NV round trip across a stop and start of the whole simulated host.
check "nvwrite in guest1" nv_write "$(tcti guest1)" before-stop
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
check "start again" start --dir "$SIMDIR" --guests 2
check "guest1 has the same vTPM" test "$(field guest1 "g['vtpms'][0]['uuid']")" = "$uuid1"
check "the NV index reads back after stop/start" nv_is "$(tcti guest1)" before-stop

# (b) ... and across a restart of the host TPM.
check "nvwrite a new value" nv_write "$(tcti guest1)" across-host-tpm
check "restart-host-tpm" "$VTPM_SIM" restart-host-tpm --dir "$SIMDIR"
check "the guest keeps working after the host TPM restart" nv_is "$(tcti guest1)" across-host-tpm
check "restart-daemon after restart-host-tpm (unseals from the new swtpm)" \
	"$VTPM_SIM" restart-daemon --dir "$SIMDIR"
check "the NV index reads back after restart-host-tpm + restart-daemon" nv_is "$(tcti guest1)" across-host-tpm
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
check "start after restart-host-tpm" start --dir "$SIMDIR" --guests 2
check "the NV index reads back after restart-host-tpm + stop/start" nv_is "$(tcti guest1)" across-host-tpm

# (c) Daemon restarts while the guests are Connected: nothing moves.
T1=$(tcti guest1)
dom1=$(field guest1 "g['domid']")
fe=/local/domain/$dom1/device/vtpm/0
be=/local/domain/0/backend/vtpm/$dom1/0
tpm2_pcrextend -T "$T1" 16:sha256=$(printf '%064d' 7)
pcr=$(pcr16 guest1)
check "PCR 16 extended" test -n "$pcr" -a "$pcr" != "$ZERO"
# Every write under the frontend dir is an event (the first one is the watch's
# own initial fire); every value the states take is recorded by a poller.
XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-watch "$fe" >"$SIMDIR/fe.events" 2>&1 &
WATCHERS+=($!)
XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-watch "$be/state" >"$SIMDIR/be.events" 2>&1 &
WATCHERS+=($!)
while :; do
	echo "guest $(cat "$SIMDIR/guest1.guest-state" 2>/dev/null)"
	echo "fe $(xs xenstore-read "$fe/state" 2>&1)"
	echo "be $(xs xenstore-read "$be/state" 2>&1)"
done >"$SIMDIR/states.raw" &
WATCHERS+=($!)
wait_for 10 grep -q '^be ' "$SIMDIR/states.raw"
wait_for 10 test -s "$SIMDIR/fe.events"
restarts_ok=0
pcr_ok=0
for i in $(seq 10); do
	if out=$("$VTPM_SIM" restart-daemon --dir "$SIMDIR" 2>&1); then
		restarts_ok=$((restarts_ok + 1))
		echo "# $out"
	else
		echo "$out" | sed 's/^/# /'
	fi
	[ "$(pcr16 guest1)" = "$pcr" ] && pcr_ok=$((pcr_ok + 1))
done
check "ten daemon restarts in a row" test "$restarts_ok" -eq 10
check "PCR 16 unchanged after each of them" test "$pcr_ok" -eq 10
# One more, with the guest busy while vtpmd is down.
"$VTPM_SIM" restart-daemon --dir "$SIMDIR" >"$SIMDIR/restart.out" 2>&1 &
rpid=$!
busy_ok=0
for i in $(seq 20); do
	[ "$(timeout 120 tpm2_getrandom -T "$T1" 8 | wc -c)" -eq 8 ] && busy_ok=$((busy_ok + 1))
done
check "restart-daemon while the guest sends commands" wait "$rpid"
check "every command sent around the restart succeeded" test "$busy_ok" -eq 20
check "PCR 16 unchanged after it" test "$(pcr16 guest1)" = "$pcr"
for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null; done
wait "${WATCHERS[@]}" 2>/dev/null
WATCHERS=()
# Every distinct value, in the order first seen.
awk '!seen[$0]++' "$SIMDIR/states.raw" >"$SIMDIR/states.seen"
echo "# $(wc -l <"$SIMDIR/states.raw") state samples taken during the restarts"
sed 's/^/# seen: /' "$SIMDIR/states.seen"
check "the guest's frontend never left Connected (guest view)" \
	test "$(grep '^guest' "$SIMDIR/states.seen")" = "guest frontend=4 tpm=ready"
check "the frontend state node never left 4" test "$(grep '^fe' "$SIMDIR/states.seen")" = "fe 4"
check "the backend state node never left 4" test "$(grep '^be' "$SIMDIR/states.seen")" = "be 4"
check "the guest wrote nothing to its frontend dir (no reconnect)" test "$(wc -l <"$SIMDIR/fe.events")" -eq 1
echo "# backend state node events (1 = only the watch's initial fire): $(wc -l <"$SIMDIR/be.events")"

# (d) The dictionary-attack counter of a vTPM with a DA-protected object does
# not move across daemon restarts and guest reboots.
T2=$(tcti guest2)
printf '12345678' >"$SIMDIR/da.in"
check "define a DA-protected NV index (auth value, no no_da)" \
	tpm2_nvdefine -T "$T2" -C o -s 8 -a "authread|authwrite" -p da-secret $NV_DA
check "write it once with its auth" tpm2_nvwrite -T "$T2" -P da-secret -i "$SIMDIR/da.in" $NV_DA
lc0=$(lockout guest2)
echo "# TPM2_PT_LOCKOUT_COUNTER before: $lc0"
check "the lockout counter is readable" test -n "$lc0"
da_use() { [ "$(tpm2_nvread -T "$(tcti guest2)" -P da-secret -s 8 $NV_DA)" = 12345678 ]; }
bad=0
for i in $(seq 10); do
	da_use || bad=$((bad + 1))
	"$VTPM_SIM" restart-daemon --dir "$SIMDIR" >/dev/null || bad=$((bad + 1))
	lc=$(lockout guest2)
	[ "$lc" = "$lc0" ] || { bad=$((bad + 1)); echo "# after daemon restart $i: $lc"; }
done
check "lockout counter unchanged across ten daemon restarts" test "$bad" -eq 0
bad=0
for i in $(seq 10); do
	da_use || bad=$((bad + 1))
	"$VTPM_SIM" reboot --dir "$SIMDIR" guest2 >/dev/null || bad=$((bad + 1))
	lc=$(lockout guest2)
	[ "$lc" = "$lc0" ] || { bad=$((bad + 1)); echo "# after guest reboot $i: $lc"; }
done
check "lockout counter unchanged across ten guest reboots" test "$bad" -eq 0
check "the DA-protected index still reads with its auth" da_use
check "a guest reboot is still a TPM reset (PCR 16 zero)" bash -c "[ \"\$(tpm2_pcrread -T '$(tcti guest2)' sha256:16 | awk '/16:/ {print \$2}')\" = $ZERO ]"
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"

# (e) --no-host-tpm: the key-file mode, loudly.
if start --dir "$D2" --guests 1 --no-host-tpm; then
	ok "start --no-host-tpm"
	TD=$(cat "$D2/guest1.tcti")
	check "no swtpm runs for it" test "$(json "$D2" | python3 -c "import json,sys; print(json.load(sys.stdin)['swtpm']['running'])")" = False
	check "the key file was created 0600" test "$(stat -c %a "$D2/master.key" 2>/dev/null)" = 600
	check "vtpmd.log warns about the key file" grep -qiE "warn.*$D2/master.key|$D2/master.key.*(warn|not sealed|insecure|development)" "$D2/vtpmd.log"
	warnings() { grep -ciE "warn.*$D2/master.key|$D2/master.key.*(warn|not sealed|insecure|development)" "$D2/vtpmd.log"; }
	n_warn=$(warnings)
	check "nvwrite (key-file mode)" nv_write "$TD" key-file-mode
	check "restart-daemon (key-file mode)" "$VTPM_SIM" restart-daemon --dir "$D2"
	check "the NV index reads back after the restart" nv_is "$TD" key-file-mode
	check "vtpmd.log warns again at the restart" test "$(warnings)" -gt "$n_warn"
	"$VTPM_SIM" stop --dir "$D2"
	check "start again without the flag (the mode sticks)" start --dir "$D2" --guests 1
	check "the NV index reads back after stop/start" nv_is "$(cat "$D2/guest1.tcti")" key-file-mode
	check "stop (key-file mode)" "$VTPM_SIM" stop --dir "$D2"
else
	fail "start --no-host-tpm"
fi

finish
