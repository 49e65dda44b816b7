#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What an admin reaches for (issue 18), through the real vtpmd-ctl and real
# tpm2-tools in a simulated guest, one check per defect fixed:
#  1. export/import carries the EK records: the imported vTPM shows its EK
#     hashes and certificates, and a reset keeps its persistent EKs;
#  2. destroy --force of a vTPM whose worker hangs (SIGSTOP) completes: the
#     worker is killed, the vTPM is gone;
#  3. list and show right after guest commands show them counted;
#  4. a durable write that fails (a full disk) is in show's Last error and
#     makes status say degraded, until writes succeed again;
#  6. messages: status --json without a daemon prints a JSON error; an unknown
#     TCTI is called one; a permission error on the control socket names
#     ControlGroup=; a rolled-back state root's refusal says how to recover;
#  7. vtpmd(8) names the journal fields vtpmd sends;
#  8. the simulation as the demo and README use it: DIR/env puts vtpmd-ctl on
#     PATH; attach --uuid of an unknown vTPM says that it created it; attach
#     --tcp-port serves the guest's TPM over TCP; a stop without guests does
#     not speak of stopping workers.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

# vtpm-sim starts $VTPMD with --platform sim:DIR: the wrapper adds the control
# socket DIR/control and DIR/vtpmd.extra's arguments.
cat >"$SIMDIR/vtpmd-wrap" <<EOF
#!/bin/sh
dir=
for a in "\$@"; do case "\$a" in sim:*) dir=\${a#sim:} ;; esac; done
extra=
[ -f "\$dir/vtpmd.extra" ] && extra=\$(cat "\$dir/vtpmd.extra")
exec "$VTPMD" --control "\$dir/control" \$extra "\$@"
EOF
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"
export VTPM_SIM_CONNECT_TIMEOUT=10
export VTPMD_CTL_KDF_ITERATIONS=20000 # the default works too; this keeps the test quick
CTL=$VTPMD_CTL
H=$SIMDIR # the simulated host: lib.sh's worker_pids and cleanup know it
W=$SIMDIR/work
mkdir -p "$W"

pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
field() { "$CTL" --json show "$1" | pyjson "v=d.get('$2'); print('' if v is None else v)"; }

# The state directory on a small file system of its own, so that the test can
# fill it (defect 4): a tmpfs, as root.
TMPFS=
if [ "$(id -u)" -eq 0 ] && mkdir -p "$H/state" && mount -t tmpfs -o size=16m,mode=0700 vtpmd-test "$H/state"; then
	TMPFS=$H/state
fi
on_exit() {
	"$VTPM_SIM" stop --dir "$H" >/dev/null 2>&1
	[ -z "$TMPFS" ] || umount "$TMPFS"
	cleanup
}
trap on_exit EXIT

# ---- defect 6: messages ----
"$CTL" --control "$H/control" --json status >"$W/out" 2>"$W/err"
rc=$?
check "status --json without a daemon exits non-zero" test "$rc" -ne 0
check "... and prints a JSON error object ($(cat "$W/out" | tr -d '\n'))" bash -c "python3 -c \"import json,sys; \
d=json.load(sys.stdin); assert 'is vtpmd running?' in d['error'] and d['errno']==2\" <'$W/out'"
check "... with the message on stderr too" grep -q "cannot connect to $H/control: No such file or directory" "$W/err"
mkdir -p "$W/ht"
timeout 30 "$VTPMD" --platform "sim:$W/ht" --state-dir "$W/ht/state" --control "$W/ht/control" \
	--host-tpm bogus:foo >"$W/ht.out" 2>&1
check "vtpmd --host-tpm bogus:foo says unknown TCTI ($(tail -n 1 "$W/ht.out"))" \
	grep -q 'Cannot use the host TPM at bogus:foo: unknown TCTI "bogus"' "$W/ht.out"

if ! "$VTPM_SIM" start --dir "$H" --guests 1 >"$W/start.out" 2>&1; then
	sed 's/^/# /' "$W/start.out"
	fail "vtpm-sim start"
	finish
fi
export VTPMD_CONTROL=$H/control
ok "simulated host running with guest1"

# ---- defect 1: export/import keeps the EK records ----
if "$CTL" --json create --ek both --ek-cert --platform-cert >"$W/create.json" 2>"$W/create.err"; then
	ok "create --ek both --ek-cert --platform-cert"
else
	fail "create --ek both --ek-cert --platform-cert: $(cat "$W/create.err")"
fi
U=$(pyjson "print(d['uuid'])" <"$W/create.json")
RSA=$(pyjson "print(d['ek_rsa_sha256'])" <"$W/create.json")
ECC=$(pyjson "print(d['ek_ecc_sha256'])" <"$W/create.json")
cp "$H/state/$U/ek-rsa2048.pem" "$W/rsa.pem"
cp "$H/state/$U/ek-ecc-p256.pem" "$W/ecc.pem"
head -c 32 /dev/urandom >"$W/key"
check "export it" "$CTL" export "$U" --to "$W/u.export" --key-file "$W/key"
check "destroy it" "$CTL" destroy "$U"
check "import it" test "$("$CTL" import "$W/u.export" --key-file "$W/key")" = "$U"
check "show of the imported vTPM has both EK hashes" \
	test "$(field "$U" ek_rsa_sha256) $(field "$U" ek_ecc_sha256)" = "$RSA $ECC"
check "... and both EK certificates, as exported" \
	bash -c "cmp -s '$(field "$U" ek_rsa_cert)' '$W/rsa.pem' && cmp -s '$(field "$U" ek_ecc_cert)' '$W/ecc.pem'"
check "reset of the imported vTPM" "$CTL" reset "$U"
check "attach a guest to it" "$VTPM_SIM" attach --dir "$H" imp --uuid "$U"
TI=$(cat "$H/imp.tcti")
ek_hash() { tpm2_readpublic -T "$TI" -c "$1" -o "$W/ek.pub" >/dev/null 2>&1 && sha256sum "$W/ek.pub" | cut -d' ' -f1; }
check "after the reset the RSA EK is still persistent at 0x81010001" test "$(ek_hash 0x81010001)" = "$RSA"
check "after the reset the ECC EK is still persistent at 0x81010002" test "$(ek_hash 0x81010002)" = "$ECC"
check "detach it" "$VTPM_SIM" detach --dir "$H" imp

# ---- defect 3: list and show count the commands just served ----
UC=$("$CTL" create)
check "attach guest cnt to a new vTPM" "$VTPM_SIM" attach --dir "$H" cnt --uuid "$UC"
TC=$(cat "$H/cnt.tcti")
commands() { "$CTL" --json list | pyjson "print([x for x in d if x['uuid']=='$UC'][0]['commands'])"; }
check "cnt's guest runs TPM commands" bash -c "tpm2_getrandom -T '$TC' 8 >/dev/null && tpm2_pcrread -T '$TC' sha256:0 >/dev/null"
C1=$(commands)
check "the first list after them counts them (commands $C1)" test "$C1" -gt 0
check "cnt's guest runs more" bash -c "tpm2_getrandom -T '$TC' 8 >/dev/null"
C2=$(field "$UC" commands)
check "show right after them counts them too ($C1 -> $C2)" test "$C2" -gt "$C1"
check "detach cnt" "$VTPM_SIM" detach --dir "$H" cnt

# ---- defect 4: a full disk is visible ----
status_json() { "$CTL" --json status | pyjson "print(d['health'], d['degraded'] or '')"; }
check "status says healthy to begin with" test "$(status_json)" = "ok "
check "status (human) says so" bash -c "'$CTL' status | grep -qx 'Health *ok'"
if [ -n "$TMPFS" ]; then
	UD=$("$CTL" create)
	check "attach guest disk to a new vTPM" "$VTPM_SIM" attach --dir "$H" disk --uuid "$UD"
	TD=$(cat "$H/disk.tcti")
	check "disk's guest defines an NV index" tpm2_nvdefine -T "$TD" -C o -s 32 -a 'ownerread|ownerwrite' 0x1500016
	dd if=/dev/zero of="$TMPFS/filler" bs=64k >/dev/null 2>&1
	check "the state directory's file system is full" bash -c "! head -c 4096 /dev/zero >'$TMPFS/probe' 2>/dev/null"
	rm -f "$TMPFS/probe"
	check "a guest command that changes the state fails (TPM_RC_FAILURE)" \
		bash -c "! tpm2_nvdefine -T '$TD' -C o -s 32 -a 'ownerread|ownerwrite' 0x1500017 2>/dev/null"
	last_error_full() { field "$UD" last_error | grep -q "^durable write failed: No space left on device"; }
	check "show gives the write failure as Last error ($(field "$UD" last_error))" wait_for 5 last_error_full
	check "... in its human form too" bash -c "'$CTL' show '$UD' | grep -q '^Last error *durable write failed: No space left on device'"
	degraded() { status_json | grep -q "^degraded .*No space left on device"; }
	check "status --json says degraded, and why ($(status_json))" wait_for 5 degraded
	check "status (human) says so" bash -c "'$CTL' status | grep -qx 'Health *degraded' && '$CTL' status | grep -q '^Degraded .*No space left on device'"
	rm -f "$TMPFS/filler"
	check "with space again, the guest's command succeeds" \
		tpm2_nvdefine -T "$TD" -C o -s 32 -a 'ownerread|ownerwrite' 0x1500017
	no_error() { [ -z "$(field "$UD" last_error)" ]; }
	check "show has no Last error any more" wait_for 5 no_error
	healthy() { [ "$(status_json)" = "ok " ]; }
	check "status is healthy again" wait_for 5 healthy
	check "detach disk" "$VTPM_SIM" detach --dir "$H" disk
else
	skip "a full disk in show and status # needs root for a tmpfs state directory"
fi

# ---- defect 2: destroy --force with a hung worker completes ----
G1=$("$VTPM_SIM" status --dir "$H" --json | pyjson "print([g for g in d['guests'] if g['name']=='guest1'][0]['vtpms'][0]['uuid'])")
T1=$(tcti guest1)
check "guest1's TPM answers" bash -c "tpm2_getrandom -T '$T1' 8 | wc -c | grep -qx 8"
one_worker() { [ "$(n_workers)" -eq 1 ]; }
check "guest1 has one worker" wait_for 10 one_worker
WP=$(worker_pids)
check "SIGSTOP guest1's worker (pid $WP)" kill -STOP "$WP"
"$CTL" destroy --force "$G1" >"$W/out" 2>"$W/err"
rc=$?
check "destroy --force of the hung worker's vTPM succeeds ($(cat "$W/err"))" test "$rc" -eq 0
check "its state directory is gone" test ! -e "$H/state/$G1"
check "show no longer knows it" bash -c "! '$CTL' show '$G1' 2>&1 | grep -q '^State'"
check "the hung worker was killed" bash -c "! kill -0 '$WP' 2>/dev/null || [ \"\$(ps -o stat= -p '$WP')\" = Z ]"
check "vtpmd says it killed it" grep -q "Worker pid $WP of vTPM $G1 did not stop in time, killing it" "$H/vtpmd.log"

# ---- defect 7: the journal fields are documented ----
SRC=$(cd "$(dirname "$0")/../.." && pwd)
fields=$(grep -o '"VTPM_[A-Z]*=' "$SRC/daemon/supervisor/journal.c" | tr -d '"=' | sort -u)
check "vtpmd sends journal fields ($(echo $fields))" test -n "$fields"
for f in $fields; do
	check "vtpmd(8) LOGGING names $f" bash -c "sed -n '/^\.Sh LOGGING/,/^\.Sh /p' '$SRC/man/vtpmd.8' | grep -q '$f'"
done

# ---- defect 6: the control socket's permissions, a rolled-back state root ----
if [ "$(id -u)" -eq 0 ]; then
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" list >/dev/null 2>"$W/err"
	check "a user outside ControlGroup= is told about it ($(cat "$W/err"))" \
		grep -q "Permission denied (the socket is for root and the group ControlGroup= of vtpmd.conf(5) names" "$W/err"
else
	skip "the control socket refuses another user # needs root"
fi
check "rollback: stop" "$VTPM_SIM" stop --dir "$H"
rm -rf "$W/state.old"
cp -a "$H/state" "$W/state.old"
check "rollback: start" "$VTPM_SIM" start --dir "$H" --guests 0
check "rollback: a change (create)" "$CTL" create
check "rollback: stop (increments the host counter)" "$VTPM_SIM" stop --dir "$H"
rm -rf "$W/state.new"
cp -a "$H/state" "$W/state.new"
find "$H/state" -mindepth 1 -delete
cp -a "$W/state.old/." "$H/state/"
check "rollback: vtpmd refuses the older state root" bash -c "! '$VTPM_SIM' start --dir '$H' --guests 0 >'$W/rb.out' 2>&1"
check "... saying so" grep -q "the state root was rolled back to an older copy. Refusing to start." "$H/vtpmd.log"
check "... and how to recover: put back the newest copy" grep -q "To recover, put back the newest copy of $H/state" "$H/vtpmd.log"
find "$H/state" -mindepth 1 -delete
cp -a "$W/state.new/." "$H/state/"
check "rollback: with the newest copy back, vtpmd starts" "$VTPM_SIM" start --dir "$H" --guests 0


# ---- defect 8: the simulation as an admin tries it ----
check ". DIR/env, then vtpmd-ctl list works (PATH and VTPMD_CONTROL)" \
	env -i PATH=/usr/bin:/bin bash -c ". '$H/env' && vtpmd-ctl list >/dev/null"
NEWU=5e1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b
check "attach --uuid of an unknown vTPM" bash -c "'$VTPM_SIM' attach --dir '$H' newg --uuid $NEWU >/dev/null 2>'$W/err'"
check "... says it created it, as an admin would ($(head -c 100 "$W/err"))" \
	grep -q "vTPM $NEWU did not exist: created it with vtpmd-ctl create --uuid $NEWU" "$W/err"
PORT=$((20000 + ($$ % 10000) * 2))
check "attach --tcp-port $PORT starts the guest with its TPM on TCP" \
	"$VTPM_SIM" attach --dir "$H" tcpg --tcp-port "$PORT"
check "a TCP-only client reaches the guest's TPM" \
	bash -c "tpm2_getrandom -T 'swtpm:host=127.0.0.1,port=$PORT' 8 | wc -c | grep -qx 8"
for g in $("$VTPM_SIM" status --dir "$H" --json | pyjson "print(' '.join(g['name'] for g in d['guests']))"); do
	"$VTPM_SIM" destroy --dir "$H" "$g" >/dev/null 2>&1
done
no_attached() { [ "$("$CTL" --json status | pyjson "print(d['attached'])")" = 0 ]; }
check "every guest destroyed" wait_for 10 no_attached
check "stop" "$VTPM_SIM" stop --dir "$H"
check "vtpmd's stop without guests says so ($(grep 'Received' "$H/vtpmd.log" | tail -n 1))" \
	bash -c "grep 'Received' '$H/vtpmd.log' | tail -n 1 | grep -q 'stopping (no guest attached)'"

finish
