#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vtpm-sim's CLI contract with the real simulated xenstored and guests and a
# fake backend (toolstack-fake-backend as $VTPMD: the xenbus state machine
# without a data path), so it does not depend on vtpmd.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST.
# The host TPM is a real swtpm (from PATH).
source "$(dirname "$0")/lib.sh"

# $VTPMD becomes a wrapper that records the arguments vtpm-sim gives the
# backend (in $WRAP/args.PID; exec keeps the pid) and drops the ones the fake
# backend does not know. With $WRAP/ignore-term present it starts a backend
# that ignores SIGTERM instead, to see restart-daemon's SIGKILL.
FAKE_BACKEND=$VTPMD
WRAP=$SIMDIR/wrap
mkdir "$WRAP"
cat >"$WRAP/backend" <<WRAPPER
#!/bin/bash
printf '%s\n' "\$@" >"$WRAP/args.\$\$"
if [ -e "$WRAP/ignore-term" ]; then
	trap '' TERM
	python3 -c 'import os, socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])'
	while :; do sleep 1; done
fi
args=()
while [ \$# -gt 0 ]; do
	case \$1 in
	--state-dir | --host-tpm | --key-source | --control) shift 2 ;;
	--no-config) shift ;;
	*) args+=("\$1"); shift ;;
	esac
done
exec "$FAKE_BACKEND" "\${args[@]}"
WRAPPER
chmod +x "$WRAP/backend"
export VTPMD=$WRAP/backend
# The fake backend has no control socket: vtpm-sim must not try vtpmd-ctl.
export VTPM_SIM_NO_CTL=1

export VTPM_SIM_TIMEOUT_SCALE=0.2
export VTPM_SIM_CONNECT_TIMEOUT=30
# The fake backend never answers the guests' probe-time TPM commands; a guest
# goes Connected only after they time out (2 min * scale, like Linux).
export VTPM_SIM_GUEST_TIMEOUT_SCALE=0.01

json() { "$VTPM_SIM" status --dir "$SIMDIR" --json; }
# field GUEST EXPR: a python expression over g (the guest's JSON object).
field() {
	json | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$1'][0]; print($2)"
}
daemon_pid() { json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1']['pid'])"; }
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
xs() { XENSTORED_PATH="$SIMDIR/xenstore/socket" "$@"; }
connected() { [ "$(field "$1" "g['vtpms'][0]['frontend']")" = Connected ]; }
swtpm_field() { json | python3 -c "import json,sys; print(json.load(sys.stdin)['swtpm']['$1'])"; }
# The arguments the running backend was started with, one per line.
backend_args() { cat "$WRAP/args.$(daemon_pid vtpmd)"; }
has_args() { backend_args | tr '\n' ' ' | grep -qF -- "$*"; }
HOST_TCTI="swtpm:path=$SIMDIR/hosttpm/tpm.sock"
# The public point of the host TPM's ECC storage primary: derived from its seed, so it
# names the TPM (a new swtpm state would have a new seed).
host_primary() {
	tpm2_createprimary -T "$HOST_TCTI" -C o -G ecc256 -c "$WRAP/hp.ctx" | awk '/^x:/ {print $2}'
	tpm2_flushcontext -T "$HOST_TCTI" -t >/dev/null
}

out=$("$VTPM_SIM" start --dir "$SIMDIR" --guests 2 2>&1)
check "start --guests 2 succeeds" test $? -eq 0
echo "$out" | sed 's/^/# /'
check "both guests Connected" connected guest1
check "guest2 Connected" connected guest2
check "status text shows Connected" bash -c "'$VTPM_SIM' status --dir '$SIMDIR' | grep '^guest1 ' | grep -q '4/Connected'"
check "guest1.tcti exists" test -s "$SIMDIR/guest1.tcti"
check "env file exports XENSTORED_PATH" grep -qx "export XENSTORED_PATH=$SIMDIR/xenstore/socket" "$SIMDIR/env"
check "backend InitWait->Connected seen by the fake backend" grep -q -- '-> 4' "$SIMDIR/vtpmd.log"

# The host TPM and how the backend is pointed at it.
check "status: swtpm running" test "$(swtpm_field running)" = True
check "status text shows swtpm" bash -c "'$VTPM_SIM' status --dir '$SIMDIR' | grep -q '^swtpm .* running'"
check "backend gets --state-dir DIR/state" has_args --state-dir "$SIMDIR/state"
check "backend gets --host-tpm swtpm:path=DIR/hosttpm/tpm.sock" has_args --host-tpm "$HOST_TCTI"
check "backend gets no --key-source" bash -c "! grep -qx -- --key-source '$WRAP/args.$(daemon_pid vtpmd)'"
check "the state dir exists, mode 0700" test "$(stat -c %a "$SIMDIR/state")" = 700
check "the host TPM answers tpm2-tools" bash -c "[ \$(tpm2_getrandom -T '$HOST_TCTI' 8 | wc -c) -eq 8 ]"
primary=$(host_primary)
check "the host TPM has a storage primary" test -n "$primary"

# restart-daemon: only the backend is replaced.
g1=$(field guest1 "g['pid']")
g2=$(field guest2 "g['pid']")
xsd=$(daemon_pid xenstored)
sw=$(daemon_pid swtpm)
be=$(daemon_pid vtpmd)
args_before=$(backend_args)
out=$("$VTPM_SIM" restart-daemon --dir "$SIMDIR" 2>&1)
check "restart-daemon succeeds" test $? -eq 0
echo "$out" | sed 's/^/# /'
check "restart-daemon says how long vtpmd was down" bash -c "echo '$out' | grep -Eq 'down [0-9]+ ms'"
check "restart-daemon: a new backend" test "$(daemon_pid vtpmd)" != "$be"
check "restart-daemon: the old backend is gone" dead "$be"
check "restart-daemon: the new backend runs" alive "$(daemon_pid vtpmd)"
check "restart-daemon: the same arguments" test "$(backend_args)" = "$args_before"
check "restart-daemon: guests untouched" test "$(field guest1 "g['pid']") $(field guest2 "g['pid']")" = "$g1 $g2"
check "restart-daemon: xenstored and swtpm untouched" test "$(daemon_pid xenstored) $(daemon_pid swtpm)" = "$xsd $sw"
check "restart-daemon: guests still Connected" connected guest1

# A backend that ignores SIGTERM is killed after 20 s, like systemd does.
touch "$WRAP/ignore-term"
"$VTPM_SIM" restart-daemon --dir "$SIMDIR" >/dev/null
check "restart-daemon to a backend that ignores SIGTERM" test $? -eq 0
rm "$WRAP/ignore-term"
stubborn=$(daemon_pid vtpmd)
t0=$(date +%s)
out=$("$VTPM_SIM" restart-daemon --dir "$SIMDIR" 2>&1)
rc=$?
t1=$(date +%s)
check "restart-daemon of a backend ignoring SIGTERM succeeds" test $rc -eq 0
check "... after the 20 s deadline" test $((t1 - t0)) -ge 19 -a $((t1 - t0)) -le 40
check "... saying it sent SIGKILL" bash -c "echo '$out' | grep -q SIGKILL"
check "... and the stubborn backend is gone" dead "$stubborn"
check "... guests still Connected" connected guest2

# restart-host-tpm: a new swtpm process, the same TPM.
out=$("$VTPM_SIM" restart-host-tpm --dir "$SIMDIR" 2>&1)
check "restart-host-tpm succeeds" test $? -eq 0
check "restart-host-tpm: a new swtpm" test "$(daemon_pid swtpm)" != "$sw"
check "restart-host-tpm: the old swtpm is gone" dead "$sw"
check "restart-host-tpm: the same host TPM (same primary)" test "$(host_primary)" = "$primary"
be=$(daemon_pid vtpmd)
check "restart-host-tpm: backend and guests untouched" \
	test "$(daemon_pid vtpmd) $(field guest1 "g['pid']")" = "$be $g1"

uuid1=$(field guest1 "g['vtpms'][0]['uuid']")
uuid2=$(field guest2 "g['vtpms'][0]['uuid']")
dom1=$(field guest1 "g['domid']")
xsd_pid=$(daemon_pid xenstored)
be_pid=$(daemon_pid vtpmd)
g1_pid=$(field guest1 "g['pid']")
check "xenstore has the libxl uuid node" test "$(xs xenstore-read /local/domain/0/backend/vtpm/$dom1/0/uuid)" = "$uuid1"

out=$("$VTPM_SIM" start --dir "$SIMDIR" --guests 1 2>&1)
rc=$?
check "second start on a busy DIR is refused" test $rc -ne 0
check "refusal says the DIR is in use" bash -c "echo '$out' | grep -q 'in use'"
check "refusal left the running simulation alone" alive "$xsd_pid"

"$VTPM_SIM" reboot --dir "$SIMDIR" guest1 >/dev/null
check "reboot succeeds" test $? -eq 0
dom1b=$(field guest1 "g['domid']")
check "reboot gives a new domid" test "$dom1b" != "$dom1"
check "reboot keeps the vTPM uuid" test "$(field guest1 "g['vtpms'][0]['uuid']")" = "$uuid1"
check "rebooted guest Connected" connected guest1
check "old guest process gone" dead "$g1_pid"
check "old domain's nodes gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom1"
check "guest shut its frontend down through Closing" grep -q "be $dom1/0 4 -> 5" "$SIMDIR/vtpmd.log"

dom2=$(field guest2 "g['domid']")
g2_pid=$(field guest2 "g['pid']")
"$VTPM_SIM" destroy --dir "$SIMDIR" guest2 >/dev/null
check "destroy succeeds" test $? -eq 0
check "destroyed guest process gone" dead "$g2_pid"
check "destroyed domain's nodes gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom2"
check "destroyed domain's backend dir gone" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/0/backend/vtpm/$dom2"
check "status shows guest2 stopped" test "$(field guest2 "g['running']")" = False

"$VTPM_SIM" attach --dir "$SIMDIR" guest2 >/dev/null
check "attach recreates guest2" test $? -eq 0
check "guest2 keeps its uuid" test "$(field guest2 "g['vtpms'][0]['uuid']")" = "$uuid2"
check "guest2 Connected again" connected guest2
dom2=$(field guest2 "g['domid']")

"$VTPM_SIM" detach --dir "$SIMDIR" guest2 >/dev/null
check "detach succeeds" test $? -eq 0
check "detach: backend saw online=0/state=5 and closed" grep -q "be $dom2/0 5 -> 6 (fe=6 online=0)\|be $dom2/0 5 -> 6 (fe=1 online=0)\|be $dom2/0 5 -> 6 (fe=4 online=0)\|be $dom2/0 5 -> 6 (fe=5 online=0)" "$SIMDIR/vtpmd.log"
check "detach removed the frontend dir" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /local/domain/$dom2/device/vtpm/0"
check "detach removed the /libxl dir" bash -c "! XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-exists /libxl/$dom2/device/vtpm/0"

"$VTPM_SIM" attach --dir "$SIMDIR" guest2 --uuid 0a0b0c0d-0000-4000-8000-000000000001 >/dev/null
check "hot-attach to the running guest2" test $? -eq 0
check "hot-attached device reuses devid 0" test "$(field guest2 "g['vtpms'][0]['devid']")" = 0
check "hot-attached device Connected" connected guest2

"$VTPM_SIM" attach --dir "$SIMDIR" guest3 --uuid 0A0B0C0D-0000-4000-8000-000000000003 --tpm 1.2 >/dev/null
check "attach creates guest3" test $? -eq 0
check "guest3 uuid canonical" test "$(field guest3 "g['vtpms'][0]['uuid']")" = 0a0b0c0d-0000-4000-8000-000000000003
check "guest3 family recorded" test "$(field guest3 "g['vtpms'][0]['tpm']")" = 1.2

"$VTPM_SIM" attach --dir "$SIMDIR" guest4 >/dev/null 2>&1 &
a4=$!
"$VTPM_SIM" attach --dir "$SIMDIR" guest5 >/dev/null 2>&1 &
a5=$!
wait $a4; r4=$?
wait $a5; r5=$?
check "two concurrent attaches both succeed" test "$r4$r5" = 00
check "concurrent attaches got distinct domids" test "$(field guest4 "g['domid']")" != "$(field guest5 "g['domid']")"
check "guest4 Connected" connected guest4
check "guest5 Connected" connected guest5

pids="$xsd_pid $(daemon_pid vtpmd) $(daemon_pid swtpm)"
for g in guest1 guest2 guest3 guest4 guest5; do pids="$pids $(field $g "g['pid']")"; done
"$VTPM_SIM" stop --dir "$SIMDIR"
check "stop succeeds" test $? -eq 0
for p in $pids; do check "pid $p gone after stop" dead "$p"; done

"$VTPM_SIM" start --dir "$SIMDIR" --guests 2 >/dev/null
check "restart on the same DIR" test $? -eq 0
check "restart keeps guest1's uuid" test "$(field guest1 "g['vtpms'][0]['uuid']")" = "$uuid1"
check "restart keeps the host TPM (same primary)" test "$(host_primary)" = "$primary"
check "restart: the same backend arguments" test "$(backend_args)" = "$args_before"
"$VTPM_SIM" stop --dir "$SIMDIR"

out=$("$VTPM_SIM" start --dir "$SIMDIR" --no-host-tpm 2>&1)
check "--no-host-tpm on a DIR sealed to a host TPM is refused" test $? -ne 0
check "the refusal says why" bash -c "echo '$out' | grep -q 'first started with a host TPM'"
check "the refusal started nothing" test "$(daemon_pid xenstored)" = 0

VTPM_SIM_SWTPM_LOGLEVEL=20 "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 >/dev/null
check "start with VTPM_SIM_SWTPM_LOGLEVEL=20" test $? -eq 0
check "swtpm runs with --log level=20" \
	bash -c "tr '\\0' ' ' </proc/$(daemon_pid swtpm)/cmdline | grep -q 'file=$SIMDIR/hosttpm/swtpm.log,level=20'"
tpm2_getrandom -T "$HOST_TCTI" 8 >/dev/null
# TPM2_GetRandom(8): tag 8001, size 0C, code 17B, bytesRequested 8.
check "swtpm's log has the command in hex" grep -qi '80 01 00 00 00 0c 00 00 01 7b 00 08' "$SIMDIR/hosttpm/swtpm.log"
"$VTPM_SIM" stop --dir "$SIMDIR"

# --no-host-tpm: no swtpm, the key file instead; the mode sticks to its DIR.
D2=$SIMDIR/nohost
trap '"$VTPM_SIM" stop --dir "$D2" >/dev/null 2>&1; cleanup' EXIT
"$VTPM_SIM" start --dir "$D2" --guests 1 --no-host-tpm >/dev/null
check "start --no-host-tpm" test $? -eq 0
json2() { "$VTPM_SIM" status --dir "$D2" --json; }
be2() { json2 | python3 -c "import json,sys; print(json.load(sys.stdin)['vtpmd']['pid'])"; }
check "--no-host-tpm: no swtpm" \
	test "$(json2 | python3 -c "import json,sys; s=json.load(sys.stdin)['swtpm']; print(s['enabled'], s['running'])")" = "False False"
check "--no-host-tpm: no host TPM socket" test ! -e "$D2/hosttpm/tpm.sock"
check "--no-host-tpm: backend gets --key-source file:DIR/master.key" \
	bash -c "tr '\\n' ' ' <'$WRAP/args.$(be2)' | grep -qF -- '--key-source file:$D2/master.key'"
check "--no-host-tpm: backend gets --state-dir" grep -qx -- "$D2/state" "$WRAP/args.$(be2)"
check "--no-host-tpm: backend gets no --host-tpm" bash -c "! grep -qx -- --host-tpm '$WRAP/args.$(be2)'"
check "--no-host-tpm: status text says so" bash -c "'$VTPM_SIM' status --dir '$D2' | grep -q '^swtpm .*no-host-tpm'"
a2=$(cat "$WRAP/args.$(be2)")
out=$("$VTPM_SIM" restart-host-tpm --dir "$D2" 2>&1)
check "--no-host-tpm: restart-host-tpm is refused" test $? -ne 0
check "--no-host-tpm: ... saying why" bash -c "echo '$out' | grep -q 'without a host TPM'"
check "--no-host-tpm: restart-daemon" "$VTPM_SIM" restart-daemon --dir "$D2"
check "--no-host-tpm: restart-daemon keeps the key file" test "$(cat "$WRAP/args.$(be2)")" = "$a2"
"$VTPM_SIM" stop --dir "$D2"
"$VTPM_SIM" start --dir "$D2" --guests 1 >/dev/null
check "a later start without the flag" test $? -eq 0
check "... keeps the key-file mode" test "$(cat "$WRAP/args.$(be2)")" = "$a2"
check "... and starts no swtpm" test ! -e "$D2/hosttpm"
"$VTPM_SIM" stop --dir "$D2"

out=$(VTPM_SIM_SWTPM=/bin/false "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 2>&1)
rc=$?
check "start with a failing swtpm fails" test $rc -ne 0
check "the failure names swtpm" bash -c "echo '$out' | grep -q 'swtpm'"
check "failed swtpm start left nothing running" \
	test "$(daemon_pid xenstored) $(daemon_pid vtpmd) $(swtpm_field running)" = "0 0 False"

out=$(VTPMD=/bin/false "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 2>&1)
rc=$?
check "start with a failing backend fails" test $rc -ne 0
check "the failure names vtpmd" bash -c "echo '$out' | grep -q 'vtpmd'"
xsd_pid=$(daemon_pid xenstored)
check "failed start left nothing running" bash -c "[ '$xsd_pid' = 0 ] || ! [ -d /proc/$xsd_pid ]"

finish
