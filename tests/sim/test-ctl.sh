#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# vtpmd-ctl against the real vtpmd on two simulated hosts (each with its own
# swtpm as the host TPM): every subcommand in human and JSON form; export on
# host A and import on host B with a guest's NV index intact; reset clears
# the owner's NV index (EKs kept: test-manufacture.sh); destroy shreds
# the key and removes the directory; unknown UUIDs refused with
# --auto-create no; bad input (malformed/unknown UUID, missing file, corrupt
# blob, wrong passphrase, daemon not running) is one line on stderr, a
# non-zero exit and no change on disk; clients sending garbage or vanishing
# mid-request do not disturb the daemon or other clients.
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

A=$SIMDIR/a
B=$SIMDIR/b
on_exit() {
	# Both hosts live below SIMDIR, so cleanup's own stop of SIMDIR finds neither.
	"$VTPM_SIM" stop --dir "$A" >/dev/null 2>&1
	"$VTPM_SIM" stop --dir "$B" >/dev/null 2>&1
	cleanup
}
trap on_exit EXIT

# vtpm-sim starts $VTPMD with a clean environment, --platform sim:DIR and
# --control DIR/control: the wrapper adds DIR.extra's arguments.
cat >"$SIMDIR/vtpmd-wrap" <<EOF
#!/bin/sh
dir=
for a in "\$@"; do case "\$a" in sim:*) dir=\${a#sim:} ;; esac; done
extra=
[ -f "\$dir.extra" ] && extra=\$(cat "\$dir.extra")
exec "$VTPMD" \$extra "\$@"
EOF
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"
export VTPM_SIM_CONNECT_TIMEOUT=10
export VTPMD_CTL_KDF_ITERATIONS=20000 # the default (600000) works too; this keeps the test quick
CTL=$VTPMD_CTL

pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
tcti_of() { cat "$1/$2.tcti"; }
NV=0x1500016
# The state root's files and their contents: "nothing changed on disk".
# The manifest is left out: vtpmd rewrites it on its own schedule (batched, 1 s
# later, and again for a rate-limited counter increment) after earlier steps,
# so it can change in the middle of an unrelated refused command.
snap() {
	(cd "$1/state" && find . ! -name 'manifest*' -print | sort &&
		find . -type f ! -name 'manifest*' -print0 | sort -z | xargs -0 sha256sum)
}
# bad WHAT PATTERN ARGS...: vtpmd-ctl ARGS fails with exactly one line on
# stderr matching PATTERN, nothing on stdout, and host A's state unchanged.
bad() {
	local what=$1 pat=$2 before after rc
	shift 2
	before=$(snap "$A")
	"$CTL" "$@" >"$SIMDIR/out" 2>"$SIMDIR/err"
	rc=$?
	after=$(snap "$A")
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$SIMDIR/err")" -eq 1 ] && grep -q -- "$pat" "$SIMDIR/err" &&
		[ ! -s "$SIMDIR/out" ] && [ "$before" = "$after" ]; then
		ok "$what: $(cat "$SIMDIR/err")"
	else
		fail "$what (rc=$rc, state $([ "$before" = "$after" ] && echo unchanged || echo CHANGED)): $(cat "$SIMDIR/err" "$SIMDIR/out")"
	fi
}

# ---- the daemon not running ----
export VTPMD_CONTROL=$A/control
for cmd in "list" "status" "create" "show 00000000-0000-0000-0000-000000000001" \
	"destroy 00000000-0000-0000-0000-000000000001" "reset 00000000-0000-0000-0000-000000000001" "ca-cert"; do
	"$CTL" $cmd >"$SIMDIR/out" 2>"$SIMDIR/err"
	rc=$?
	check "$cmd without a daemon: one line, non-zero" \
		test "$rc" -ne 0 -a "$(wc -l <"$SIMDIR/err")" -eq 1 -a ! -s "$SIMDIR/out"
done
check "the message names the socket and asks whether vtpmd runs" \
	grep -qx "vtpmd-ctl: cannot connect to $A/control: No such file or directory (is vtpmd running?)" "$SIMDIR/err"

if ! out=$("$VTPM_SIM" start --dir "$A" --guests 1 2>&1); then
	echo "$out" | sed 's/^/# /'
	fail "vtpm-sim start (host A)"
	finish
fi
ok "host A started with one guest (auto-create yes: its vTPM was created on attach)"
G1=$("$VTPM_SIM" status --dir "$A" --json | pyjson "print(d['guests'][0]['vtpms'][0]['uuid'])")

# ---- status, list, show ----
check "the control socket is 0600 root-only by default" test "$(stat -c '%a %U' "$A/control")" = "600 root"
check "status (human)" bash -c "'$CTL' status | grep -q '^Host TPM *reachable'"
check "status --json" bash -c "'$CTL' --json status | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['version'] and d['host_tpm']=='reachable' and d['key_source']=='tpm' and d['vtpms']==1 and \
d['connected']==1 and d['failed']==0 and 'ok' not in d\""
check "list (human) shows guest1's vTPM connected, with its name" \
	bash -c "'$CTL' list | grep -qE '^$G1 +2\\.0 +1 +guest1 +0 +connected'"
tpm2_getrandom -T "$(tcti_of "$A" guest1)" 8 >/dev/null
served() { [ "$("$CTL" list --json | pyjson "print([x for x in d if x['uuid']=='$G1'][0]['commands'])")" -gt 0 ]; }
check "list --json reports the commands served (workers report on request)" wait_for 10 served
check "VTPMD_CONTROL is honoured, --control wins" bash -c "VTPMD_CONTROL=/nonexistent '$CTL' --control '$A/control' list >/dev/null"

U=$("$CTL" create)
check "create prints a UUID" bash -c "echo '$U' | grep -qxE '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'"
check "its directory exists" test -d "$A/state/$U"
U12=$("$CTL" --json create --tpm 1.2 | pyjson "assert d['tpm']=='1.2'; print(d['uuid'])")
check "create --json --tpm 1.2" test -n "$U12" -a -d "$A/state/$U12"
UG=6a2b3c4d-1111-4222-8333-444455556666
check "create --uuid U prints U" test "$("$CTL" create --uuid 6A2B3C4D-1111-4222-8333-444455556666)" = "$UG"
check "show (human)" bash -c "'$CTL' show $U | grep -q '^State *detached' && '$CTL' show $U | grep -q '^Created *20'"
check "show --json" bash -c "'$CTL' show --json $U12 | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['uuid']=='$U12' and d['tpm']=='1.2' and d['state']=='detached' and d['domid'] is None and \
d['state_size']>0 and d['created'].endswith('Z') and d['last_error'] is None and \
set(['ek_rsa_sha256','ek_ecc_sha256','commands']) <= set(d)\""
check "show of an attached vTPM" bash -c "'$CTL' --json show $G1 | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['domid']==1 and d['devid']==0 and d['state']=='connected'\""
check "list --json has all three vTPMs and guest1's" test "$("$CTL" --json list | pyjson "print(len(d))")" = 4
# A command line that cannot be parsed exits 2 (any other failure 1), naming what is wrong.
usage_error() {
	local pat=$1 rc
	shift
	"$CTL" "$@" >/dev/null 2>"$SIMDIR/err"
	rc=$?
	[ "$rc" -eq 2 ] && grep -q -- "$pat" "$SIMDIR/err"
}
check "--control without a value: exit 2, missing argument" usage_error "missing argument to option --control" --control
check "an unknown command: exit 2" usage_error 'unknown command "frobnicate"' frobnicate
check "an unknown option of a command: exit 2" usage_error "create: unknown option --bogus" create --bogus
check "show without its UUID: exit 2" usage_error "show: missing argument" show
check "a failure that is no usage error still exits 1" bash -c "'$CTL' show 0badc0de-0000-4000-8000-000000000001 2>/dev/null; [ \$? -eq 1 ]"
# Output that cannot be written (a full disk): a failure, and the new vTPM's UUID is not lost.
"$CTL" create >/dev/full 2>"$SIMDIR/err"
rc=$?
UF=$(grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}' "$SIMDIR/err")
check "create >/dev/full exits non-zero" test "$rc" -ne 0
check "... says the output could not be written" grep -q "cannot write the output: No space left on device" "$SIMDIR/err"
check "... and names the vTPM it created, which exists" test -n "$UF" -a -d "$A/state/$UF"
check "list --json >/dev/full exits non-zero" bash -c "! '$CTL' --json list >/dev/full 2>/dev/null"
check "destroy the vTPM made for /dev/full" "$CTL" destroy "$UF"
check "--help of a subcommand" bash -c "'$CTL' export --help | grep -q -- '--passphrase-file'"
check "--help shows every command's whole usage (create's last option too)" bash -c "'$CTL' --help | grep -q -- '--pcr-banks LIST\] \[--ek-cert\] \[--platform-cert\]$'"
check "--version" bash -c "'$CTL' --version | grep -q '^vtpmd-ctl '"

# ---- bad input ----
echo "a passphrase" >"$SIMDIR/pass"
echo "not it" >"$SIMDIR/wrong"
head -c 32 /dev/urandom >"$SIMDIR/key"
UNK=0badc0de-0000-4000-8000-000000000000
bad "create --uuid of an existing vTPM" "already exists" create --uuid "$U"
bad "create --uuid malformed" "not a UUID" create --uuid 1234
bad "create --tpm 3.0" "expected 2.0 or 1.2" create --tpm 3.0
bad "create --ek bogus" "--ek" create --ek dsa
bad "show malformed UUID" "not a UUID" show 6a2b3c4d-1111-4222-8333-44445555666
bad "show unknown UUID" "unknown vTPM $UNK" show "$UNK"
bad "destroy malformed UUID" "not a UUID" destroy "$U/.."
bad "destroy unknown UUID" "unknown vTPM $UNK" destroy "$UNK"
bad "reset malformed UUID" "not a UUID" reset zz
bad "reset unknown UUID" "unknown vTPM $UNK" reset "$UNK"
bad "export malformed UUID" "not a UUID" export x --to "$SIMDIR/e1" --passphrase-file "$SIMDIR/pass"
bad "export unknown UUID" "unknown vTPM $UNK" export "$UNK" --to "$SIMDIR/e1" --passphrase-file "$SIMDIR/pass"
check "a failed export leaves no file" test ! -e "$SIMDIR/e1" -a -z "$(ls "$SIMDIR" | grep '^e1')"
bad "export with a missing passphrase file" "No such file" export "$U" --to "$SIMDIR/e1" --passphrase-file "$SIMDIR/none"
bad "export of an attached vTPM" "attached to domain 1 device 0" export "$G1" --to "$SIMDIR/e1" --key-file "$SIMDIR/key"
bad "export over an existing file" "already exists" export "$U" --to "$SIMDIR/pass" --key-file "$SIMDIR/key"
bad "export without a key" "exactly one of" export "$U" --to "$SIMDIR/e1"
bad "import of a missing file" "No such file" import "$SIMDIR/none" --passphrase-file "$SIMDIR/pass"
bad "import of something else" "not a vtpmd export" import "$SIMDIR/pass" --passphrase-file "$SIMDIR/pass"
bad "reset of an attached vTPM" "attached to domain 1" reset "$G1"
bad "reset of a TPM 1.2 vTPM" "is a TPM 1.2" reset "$U12"
bad "destroy of an attached vTPM without --force" "attached to domain 1 device 0" destroy "$G1"
bad "an unknown subcommand" "unknown command" frobnicate
bad "an unknown option" "unknown option" list --frob
bad "a missing argument" "missing argument" show
bad "create --ek for TPM 1.2" "only TPM 2.0 vTPMs are manufactured" create --tpm 1.2 --ek rsa2048

# ---- manufacturing at create (daemon/manufacture.c) and the local CA ----
check "create --ek both --ek-cert --pcr-banks (manufactured) reports the EK hashes" bash -c "'$CTL' --json create \
--ek both --ek-cert --pcr-banks sha256,sha384 | python3 -c \"import json,sys,re; d=json.load(sys.stdin); \
assert re.fullmatch('[0-9a-f]{64}', d['ek_rsa_sha256']) and re.fullmatch('[0-9a-f]{64}', d['ek_ecc_sha256'])\""
check "ca-cert (human) prints the PEM" bash -c "'$CTL' ca-cert | openssl x509 -noout"
check "ca-cert --json" bash -c "'$CTL' --json ca-cert | python3 -c \"import json,sys; assert 'BEGIN CERTIFICATE' in json.load(sys.stdin)['pem']\""

# ---- NV data across hosts: write on A, export, import on B, read ----
check "attach guest2 on A with the created vTPM" "$VTPM_SIM" attach --dir "$A" guest2 --uuid "$U"
printf 'written-on-host-A' >"$SIMDIR/nv.in"
T2=$(tcti_of "$A" guest2)
check "guest2 writes an NV index" bash -c "tpm2_nvdefine -T '$T2' -C o -s 32 -a 'ownerread|ownerwrite' $NV >/dev/null && \
tpm2_nvwrite -T '$T2' -C o -i '$SIMDIR/nv.in' $NV"
# (the guest's own writes are still being committed: no snapshot here)
"$CTL" export "$U" --to "$SIMDIR/e1" --passphrase-file "$SIMDIR/pass" >"$SIMDIR/out" 2>"$SIMDIR/err"
check "export while attached: refused in one line, no file" bash -c "[ $? -ne 0 ] && [ \$(wc -l <'$SIMDIR/err') -eq 1 ] && \
grep -q 'attached to domain' '$SIMDIR/err' && [ ! -e '$SIMDIR/e1' ]"
check "detach guest2" "$VTPM_SIM" detach --dir "$A" guest2
out=$("$CTL" export "$U" --to "$SIMDIR/u.pass" --passphrase-file "$SIMDIR/pass")
check "export --passphrase-file (human: silent)" test $? -eq 0 -a -z "$out" -a -s "$SIMDIR/u.pass"
check "export --key-file --json" bash -c "'$CTL' --json export '$U' --to '$SIMDIR/u.key' --key-file '$SIMDIR/key' | \
python3 -c \"import json,sys; d=json.load(sys.stdin); assert d['uuid']=='$U' and d['size']>0\""
check "the export files are 0600" test "$(stat -c %a "$SIMDIR/u.pass")" = 600
check "the NV contents are not in the export in the clear" bash -c "! grep -q written-on-host-A '$SIMDIR/u.pass'"

if ! out=$("$VTPM_SIM" start --dir "$B" --guests 1 2>&1); then
	echo "$out" | sed 's/^/# /'
	fail "vtpm-sim start (host B)"
	finish
fi
ok "host B started (another swtpm, another master key)"
check "the two hosts have different host TPMs" differ "$A/hosttpm/tpm2-00.permall" "$B/hosttpm/tpm2-00.permall"
CB="$CTL --control $B/control"
# B runs a guest of its own whose files change as it likes: what must not change is the set of vTPMs.
# (vtpmd rewrites its manifest through manifest.tmp whenever B's own guest writes state.)
snapB() { find "$B/state" -mindepth 1 -maxdepth 1 ! -name manifest.tmp | sort; find "$B/state" -name "*.tmp" ! -name manifest.tmp; }
cp "$SIMDIR/u.pass" "$SIMDIR/corrupt"
# Flip (not set) a byte, so the copy always differs from the original.
b=$(od -An -tu1 -j100 -N1 "$SIMDIR/u.pass" | tr -d ' ')
printf "\\$(printf '%03o' $((b ^ 0x5a)))" | dd of="$SIMDIR/corrupt" bs=1 seek=100 conv=notrunc 2>/dev/null
head -c 120 "$SIMDIR/u.pass" >"$SIMDIR/truncated"
before=$(snapB)
bad "import with a wrong passphrase" "wrong passphrase or key" --control "$B/control" import "$SIMDIR/u.pass" --passphrase-file "$SIMDIR/wrong"
bad "import with a key where a passphrase is needed" "use --passphrase-file" --control "$B/control" import "$SIMDIR/u.pass" --key-file "$SIMDIR/key"
bad "import of a corrupt export" "corrupt" --control "$B/control" import "$SIMDIR/corrupt" --passphrase-file "$SIMDIR/pass"
bad "import of a truncated export" "not a vtpmd export" --control "$B/control" import "$SIMDIR/truncated" --passphrase-file "$SIMDIR/pass"
check "host B's state is unchanged by the refused imports" test "$before" = "$(snapB)"
check "import on B prints the UUID" test "$($CB import "$SIMDIR/u.pass" --passphrase-file "$SIMDIR/pass")" = "$U"
$CB import "$SIMDIR/u.key" --key-file "$SIMDIR/key" >"$SIMDIR/out" 2>"$SIMDIR/err"
rc=$?
check "a second import of the same vTPM is refused: it already exists" bash -c "[ $rc -ne 0 ] && \
grep -qF 'vTPM $U already exists on this host; destroy it first' '$SIMDIR/err'"
check "attach a guest on B with the imported vTPM" "$VTPM_SIM" attach --dir "$B" guest2 --uuid "$U"
check "the guest on B reads the NV index written on A" \
	test "$(tpm2_nvread -T "$(tcti_of "$B" guest2)" -C o -s 17 $NV 2>/dev/null)" = written-on-host-A
check "B's vtpmd re-wrapped the key under its own master key (A's key blob differs)" \
	differ "$A/state/$U/key" "$B/state/$U/key"

# ---- reset on B ----
check "detach guest2 on B" "$VTPM_SIM" detach --dir "$B" guest2
check "reset" $CB reset "$U"
check "reattach after reset" "$VTPM_SIM" attach --dir "$B" guest2 --uuid "$U"
check "after reset the NV index is gone (a new TPM, same UUID)" \
	bash -c "! tpm2_nvread -T '$(tcti_of "$B" guest2)' -C o -s 17 $NV >/dev/null 2>&1"
check "... and the vTPM works" bash -c "tpm2_getrandom -T '$(tcti_of "$B" guest2)' 8 | wc -c | grep -qx 8"

# ---- destroy ----
check "keep a hard link to its key blob, and a copy" bash -c "ln '$A/state/$U/key' '$SIMDIR/key.link' && \
cp '$A/state/$U/key' '$SIMDIR/key.copy'"
check "destroy a detached vTPM" "$CTL" destroy "$U"
check "its directory is gone" test ! -e "$A/state/$U"
check "its key blob was overwritten before it was unlinked" differ "$SIMDIR/key.link" "$SIMDIR/key.copy"
check "list succeeds and no longer shows it" bash -c "'$CTL' list >'$SIMDIR/list' && ! grep -q '$U' '$SIMDIR/list'"
bad "show after destroy" "unknown vTPM $U" show "$U"
check "destroy --force of an attached vTPM" "$CTL" destroy --force "$G1"
be_state() { XENSTORED_PATH=$A/xenstore/socket xenstore-read /local/domain/0/backend/vtpm/1/0/state; }
be_closed() { [ "$(be_state)" = 6 ]; }
check "its device is closed (backend state 6)" wait_for 10 be_closed
check "with the error node saying why" bash -c "XENSTORED_PATH='$A/xenstore/socket' xenstore-read \
/local/domain/0/error/backend/vtpm/1/0/error | grep -q 'destroyed by the administrator'"
check "and its directory is gone" test ! -e "$A/state/$G1"

# ---- the control socket under abuse ----
cat >"$SIMDIR/abuse.py" <<'EOF'
import os, socket, sys, time
path, ready, done = sys.argv[1:4]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    return s
idle = [conn() for _ in range(10)]           # clients that never send anything
open(ready, "w").close()                     # the shell's other client starts now
s = conn()
for junk in [b"\x00\xff" * 50, b"{", b"[]", b'{"op":"list","x":1}', b'{"op":"nope"}',
             b'{"op":"show","uuid":"../../etc"}', b"x" * 20000, os.urandom(3000)]:
    s.send(junk)
    r = s.recv(65536)
    assert b'"ok":false' in r, (junk[:20], r)
# an fd the request does not take
r, w = os.pipe()
socket.send_fds(s, [b'{"op":"list"}'], [r])
assert b'"ok":false' in s.recv(65536)
# the same connection still serves a good request
s.send(b'{"op":"status"}')
assert b'"ok":true' in s.recv(65536)
# requests whose client vanishes before the reply
for _ in range(20):
    t = conn(); t.send(b'{"op":"list"}'); t.close()
    t = conn(); t.close()
# the idle clients stay connected until the other client is done
deadline = time.monotonic() + 300
while not os.path.exists(done):
    assert time.monotonic() < deadline, "the other client never finished"
    time.sleep(0.05)
print("abuse done")
EOF
python3 "$SIMDIR/abuse.py" "$A/control" "$SIMDIR/abuse.ready" "$SIMDIR/abuse.done" >"$SIMDIR/abuse.out" 2>&1 &
abuse=$!
check "the abusive client has its idle connections open" wait_for 10 test -e "$SIMDIR/abuse.ready"
good=0
for i in $(seq 20); do timeout 10 "$CTL" list >/dev/null && good=$((good + 1)); done
touch "$SIMDIR/abuse.done"
check "garbage, oversized, fd-carrying and vanishing clients each got their answer" wait "$abuse"
sed 's/^/# /' "$SIMDIR/abuse.out"
check "another client kept working next to 10 idle connections (20/20 list)" test "$good" -eq 20
check "the daemon still serves" bash -c "'$CTL' status >/dev/null"
check "a non-root user is refused" bash -c "! setpriv --reuid=65534 --regid=65534 --clear-groups '$CTL' list 2>'$SIMDIR/err' && \
grep -q 'Permission denied' '$SIMDIR/err'"

# ---- unknown UUIDs: refused with --auto-create no ----
echo "--auto-create no" >"$A.extra"
check "restart A's vtpmd with --auto-create no" "$VTPM_SIM" restart-daemon --dir "$A"
NEWU=7d1e5a00-2222-4333-8444-555566667777
# (VTPM_SIM_NO_CTL: the launcher must not create it with vtpmd-ctl first, as it normally does)
VTPM_SIM_NO_CTL=1 VTPM_SIM_CONNECT_TIMEOUT=3 "$VTPM_SIM" attach --dir "$A" guest3 --uuid "$NEWU" >/dev/null 2>&1
check "an unknown UUID is refused with a clear log line" \
	grep -q "unknown vTPM $NEWU: create it with vtpmd-ctl create --uuid $NEWU" "$A/vtpmd.log"
dom3=$("$VTPM_SIM" status --dir "$A" --json | pyjson "print([g for g in d['guests'] if g['name']=='guest3'][0]['domid'])")
check "and the xenbus error node" bash -c "XENSTORED_PATH='$A/xenstore/socket' xenstore-read \
/local/domain/0/error/backend/vtpm/$dom3/0/error | grep -q 'unknown vTPM $NEWU'"
check "no state was created for it" test ! -e "$A/state/$NEWU"
U4=$("$CTL" create)
check "a vTPM created with vtpmd-ctl is served with --auto-create no" "$VTPM_SIM" attach --dir "$A" guest4 --uuid "$U4"
check "... and answers" bash -c "tpm2_getrandom -T '$(tcti_of "$A" guest4)' 8 | wc -c | grep -qx 8"

finish
