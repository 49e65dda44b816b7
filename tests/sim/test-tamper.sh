#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# Tampered vTPM state and a hostile or changed host TPM, on the simulated host
# with the real vtpmd and a real swtpm as the host TPM.
#
# Part 1, one vTPM's files (one victim guest per case, guest7 and guest8 are
# bystanders): the victim's vTPM is detached, a file is tampered with, the
# vTPM is attached again. vtpmd must log the file and the reason, keep the
# file untouched, not start the vTPM (backend Closed, frontend never
# Connected, the xenbus error node written), and every other vTPM keeps
# working and starts normally across a daemon restart.
#
# Part 2, the host TPM (a second simulation, DIR/host): missing, a different
# TPM, the state root or the manifest rolled back against the host counter, a
# PCR policy no longer satisfied. Each time vtpmd says so in one error line,
# exits non-zero, and nothing under the state directory changes.
#
# Part 3, no plaintext: a guest's NV marker is in no state file and not in the
# host swtpm's hex-dump log. The master key itself cannot be known from
# outside vtpmd; tests/unit/test-sealer.c TEST(key_never_crosses_the_wire)
# checks that no 8-byte window of it appears on the host TPM's wire or in
# swtpm's log (binary or hex) across seal and unseal, with and without a PCR
# policy.
#
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_WORKER, VTPM_XENSTORED,
# VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

H=$SIMDIR/host
PCRD=$SIMDIR/pcr
PCR_PID=
on_exit() {
	if [ -n "$PCR_PID" ]; then
		kill -TERM "$PCR_PID" 2>/dev/null
		wait "$PCR_PID" 2>/dev/null
	fi
	"$VTPM_SIM" stop --dir "$H" >/dev/null 2>&1
	cleanup
}
trap on_exit EXIT

NV=0x1500016
MARKER="vtpmd-plaintext-marker-$RANDOM$RANDOM"

json() { "$VTPM_SIM" status --dir "$1" --json; }
# gfield DIR GUEST EXPR: a field of a guest from the launcher's status.
gfield() {
	json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); g=[x for x in d['guests'] if x['name']=='$2'][0]; print($3)"
}
xsread() { XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-read "$1" 2>/dev/null; }
xsexists() { XENSTORED_PATH="$SIMDIR/xenstore/socket" xenstore-exists "$1" 2>/dev/null; }

# nv_put TCTI TEXT: defines the owner index $NV (if needed) and writes TEXT.
nv_put() {
	printf '%s' "$2" >"$SIMDIR/nv.in"
	tpm2_nvundefine -T "$1" -C o $NV >/dev/null 2>&1
	tpm2_nvdefine -T "$1" -C o -s ${#2} -a "ownerread|ownerwrite" $NV >/dev/null &&
		tpm2_nvwrite -T "$1" -C o -i "$SIMDIR/nv.in" $NV
}
nv_is() { [ "$(tpm2_nvread -T "$1" -C o -s "${#2}" $NV 2>/dev/null)" = "$2" ]; }
answers() { [ "$(tpm2_getrandom -T "$1" 8 | wc -c)" -eq 8 ]; }

# Lines appended to FILE since byte offset OFF.
log_since() { tail -c +"$(($2 + 1))" "$1"; }
# gone PID: the process exited (a zombie not yet reaped by init counts as gone).
gone() { [ ! -d "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
# Checksums of every file under a directory (names and contents).
tree_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

start_sim() {
	local out rc
	out=$("$VTPM_SIM" start "$@" 2>&1)
	rc=$?
	echo "$out" | sed 's/^/# /'
	return $rc
}

# ================= part 1: one vTPM's files =================

if ! VTPM_SIM_SWTPM_LOGLEVEL=20 start_sim --dir "$SIMDIR" --guests 8; then
	fail "vtpm-sim start --guests 8 (swtpm log level 20)"
	finish
fi
ok "eight guests connected, host swtpm logging hex dumps"
for g in 1 2 3 4 5 6 7 8; do
	eval "U$g=$(gfield "$SIMDIR" guest$g "g['vtpms'][0]['uuid']")"
	eval "DOM$g=$(gfield "$SIMDIR" guest$g "g['domid']")"
done
check "guest7 writes a marker into NV" nv_put "$(tcti guest7)" "$MARKER"
for g in 1 2 3 4 5 6; do
	nv_put "$(tcti guest$g)" "victim-$g" || fail "NV write in guest$g"
done

bystanders_ok() { nv_is "$(tcti guest7)" "$MARKER" && answers "$(tcti guest8)"; }

# tamper_case NAME N FILE EXPECTED TAMPER_FN: detaches guestN's vTPM, runs
# TAMPER_FN on its state directory, attaches it again and checks the refusal.
# EXPECTED is what vtpmd must log (an extended regex: the file, the reason).
tamper_case() {
	local name=$1 n=$2 file=$3 expected=$4 fn=$5
	local u dom sdir sum off attach_pid fe be err
	eval "u=\$U$n dom=\$DOM$n"
	sdir=$SIMDIR/state/$u
	echo "# --- $name (guest$n, $u/$file)"
	if ! "$VTPM_SIM" detach --dir "$SIMDIR" "guest$n" >/dev/null; then
		fail "$name: detach guest$n"
		return
	fi
	$fn "$sdir" "$file"
	sum=$(sha256sum <"$sdir/$file")
	off=$(size_of "$SIMDIR/vtpmd.log")
	# The attach cannot succeed; it is stopped once vtpmd has given its verdict.
	VTPM_SIM_CONNECT_TIMEOUT=60 "$VTPM_SIM" attach --dir "$SIMDIR" "guest$n" --uuid "$u" \
		>"$SIMDIR/attach-$n.out" 2>&1 &
	attach_pid=$!
	err=/local/domain/0/error/backend/vtpm/$dom/0/error
	if wait_for 30 bash -c "[ \"\$(XENSTORED_PATH='$SIMDIR/xenstore/socket' xenstore-read /local/domain/0/backend/vtpm/$dom/0/state)\" = 6 ]"; then
		ok "$name: the backend gave up on the device (Closed)"
	else
		fail "$name: the backend gave up on the device (Closed)"
	fi
	fe=$(xsread "/local/domain/$dom/device/vtpm/0/state")
	be=$(xsread "/local/domain/0/backend/vtpm/$dom/0/state")
	echo "# frontend state $fe, backend state $be, error node: $(xsread "$err")"
	check "$name: the frontend did not reach Connected" test "$fe" != 4
	check "$name: the xenbus error node exists" xsexists "$err"
	kill "$attach_pid" 2>/dev/null
	wait "$attach_pid" 2>/dev/null
	log_since "$SIMDIR/vtpmd.log" "$off" >"$SIMDIR/case.log"
	grep -F "$u/$file" "$SIMDIR/case.log" | sed 's/^/# logged: /'
	check "$name: vtpmd names the file and the reason" grep -qE -- "$expected" "$SIMDIR/case.log"
	check "$name: vtpmd keeps the file for inspection (says so)" \
		grep -qF "not starting this vTPM, the file is kept for inspection" "$SIMDIR/case.log"
	check "$name: vtpmd did not manufacture a new TPM for it" \
		bash -c "! grep -q 'uuid=$u.*manufacturing a new TPM' '$SIMDIR/case.log'"
	check "$name: the file is unchanged" test "$(sha256sum <"$sdir/$file")" = "$sum"
	check "$name: the other vTPMs keep working" bystanders_ok
	echo "$sdir/$file $sum" >>"$SIMDIR/tampered.sums"
}

flip_byte() { # FILE OFFSET: inverts one bit of the byte at OFFSET.
	python3 - "$1" "$2" <<'EOF'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[off] ^= 0x10
open(p, 'r+b').write(b)
EOF
}
t_truncate() { truncate -s $(($(size_of "$1/$2") / 2)) "$1/$2"; }
# Past the 56-byte header: the ciphertext, which only the GCM tag protects.
t_flip() { flip_byte "$1/$2" 100; }
t_foreign() { cp "$SIMDIR/state/$U7/permall" "$1/$2"; }
t_key_over_meta() { cp "$1/key" "$1/meta"; }
# Rolls permall back to the copy saved before the last NV write.
t_old() { cp "$SIMDIR/permall-4.old" "$1/$2"; }

tamper_case "truncated permall" 1 permall "$U1/permall: truncated or malformed" t_truncate
tamper_case "bit-flipped permall" 2 permall \
	"$U2/permall: authentication failed" t_flip
tamper_case "permall from another vTPM" 3 permall "$U3/permall: belongs to another vTPM" t_foreign
cp "$SIMDIR/state/$U4/permall" "$SIMDIR/permall-4.old"
check "guest4 writes NV again (a newer permall is recorded)" nv_put "$(tcti guest4)" "victim-4-newer"
check "the saved permall differs from the current one" \
	differ "$SIMDIR/permall-4.old" "$SIMDIR/state/$U4/permall"
tamper_case "permall older than recorded" 4 permall \
	"$U4/permall: older than the newest state recorded" t_old
tamper_case "bit-flipped key" 5 key "$U5/key:? authentication failed" t_flip
tamper_case "meta replaced by the key file" 6 meta "$U6/meta:? [^;]*another kind" t_key_over_meta

# Every other vTPM starts normally next to the refused ones.
off=$(size_of "$SIMDIR/vtpmd.log")
check "restart-daemon with six refused vTPMs in the state root" \
	"$VTPM_SIM" restart-daemon --dir "$SIMDIR"
check "after the restart guest7's NV marker reads back" nv_is "$(tcti guest7)" "$MARKER"
check "after the restart guest8 answers" answers "$(tcti guest8)"
check "both bystanders re-attached" \
	test "$(log_since "$SIMDIR/vtpmd.log" "$off" | grep -cE "uuid=($U7|$U8): re-attached")" -eq 2
bad=0
while read -r f s; do
	[ "$(sha256sum <"$f")" = "$s" ] || { bad=$((bad + 1)); echo "# changed: $f"; }
done <"$SIMDIR/tampered.sums"
check "all six tampered files are still as the tamperer left them" test "$bad" -eq 0

# ================= part 3 (on part 1's host): no plaintext =================

check "stop (the state of eight vTPMs, with volatile files, stays)" "$VTPM_SIM" stop --dir "$SIMDIR"
check "the state files exist" test "$(find "$SIMDIR/state" -type f -name permall | wc -l)" -eq 8
check "no state file contains guest7's NV marker" \
	bash -c "! grep -r -a -l -F '$MARKER' '$SIMDIR/state'"
SWLOG=$SIMDIR/hosttpm/swtpm.log
# Positive control: the log is a dump of the commands (TPM2_CC_Unseal = 0x15e).
check "the host swtpm log holds hex dumps of the commands" \
	grep -qiE '80 0[12] 00 00 00 [0-9a-f]{2} 00 00 01 5e' "$SWLOG"
mhex=$(printf '%s' "$MARKER" | od -An -tx1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
check "the host swtpm log contains no marker, as text or as hex" \
	bash -c "! grep -a -i -q -e '$MARKER' -e '$mhex' -e '${mhex// /}' '$SWLOG'"

# ================= part 2: the host TPM =================

if ! start_sim --dir "$H" --guests 1; then
	fail "vtpm-sim start of a second simulation (DIR/host)"
	finish
fi
ok "second simulation (DIR/host) up"
check "nvwrite in DIR/host's guest" nv_put "$(cat "$H/guest1.tcti")" host-nv-1

# refused_start NAME EXPECTED COMMAND...: COMMAND (a vtpm-sim start or
# restart-daemon of DIR/host) fails; vtpmd's run logged exactly one error, the
# EXPECTED one; the launcher's output shows vtpmd exited non-zero and its log
# tail; nothing under DIR/host/state changed.
refused_start() {
	local name=$1 expected=$2 out=$SIMDIR/out sums off st
	shift 2
	sums=$(tree_sums "$H/state")
	off=$(size_of "$H/vtpmd.log")
	if "$@" >"$out" 2>&1; then
		fail "$name: vtpm-sim $2 fails (it succeeded)"
	else
		ok "$name: vtpm-sim $2 fails"
	fi
	log_since "$H/vtpmd.log" "$off" >"$SIMDIR/case.log"
	grep -E 'vtpmd: (error|crit|alert|emerg):' "$SIMDIR/case.log" | sed 's/^/# logged: /'
	check "$name: one error line" test "$(grep -cE 'vtpmd: (error|crit|alert|emerg):' "$SIMDIR/case.log")" -eq 1
	check "$name: it says why" grep -qF -- "$expected" "$SIMDIR/case.log"
	st=$(sed -n 's/.*exited before READY=1 (status \(0x[0-9a-f]*\)).*/\1/p' "$out" | tail -1)
	echo "# vtpmd wait status: ${st:-none}"
	check "$name: vtpmd exited non-zero" test -n "$st" -a $((st & 0x7f)) -eq 0 -a $(((st >> 8) & 0xff)) -ne 0
	check "$name: the launcher printed vtpmd's log tail" grep -qF -- "$expected" "$out"
	check "$name: nothing under DIR/host/state changed" test "$(tree_sums "$H/state")" = "$sums"
}

# (a) The host TPM is missing: swtpm is gone when vtpmd starts.
vpid=$(cat "$H/vtpmd.pid")
swpid=$(json "$H" | python3 -c "import json,sys; print(json.load(sys.stdin)['swtpm']['pid'])")
kill -TERM "$vpid"
check "host TPM missing: vtpmd stopped (SIGTERM)" wait_for 30 gone "$vpid"
kill -TERM "$swpid"
check "host TPM missing: swtpm stopped" wait_for 30 gone "$swpid"
refused_start "host TPM missing" "Cannot use the host TPM at swtpm:path=$H/hosttpm/tpm.sock: no TPM answers there" \
	"$VTPM_SIM" restart-daemon --dir "$H"
check "host TPM back: restart-host-tpm" "$VTPM_SIM" restart-host-tpm --dir "$H"
check "host TPM back: vtpmd starts" "$VTPM_SIM" restart-daemon --dir "$H"
check "host TPM back: the NV index reads back" nv_is "$(cat "$H/guest1.tcti")" host-nv-1

# (b) master.sealed under a different TPM: a fresh swtpm state directory.
check "another TPM: stop" "$VTPM_SIM" stop --dir "$H"
mv "$H/hosttpm" "$H/hosttpm.orig"
refused_start "another TPM" "master.sealed: it was sealed to another TPM, or this TPM was cleared" \
	"$VTPM_SIM" start --dir "$H"
rm -rf "$H/hosttpm"
mv "$H/hosttpm.orig" "$H/hosttpm"
check "the original TPM back: start" start_sim --dir "$H"
check "the original TPM back: the NV index reads back" nv_is "$(cat "$H/guest1.tcti")" host-nv-1

# (c) The state root rolled back: a copy from before the last stop (which
# incremented the host counter) is put back.
check "rollback: stop" "$VTPM_SIM" stop --dir "$H"
cp -a "$H/state" "$H/state.old"
check "rollback: start" start_sim --dir "$H"
check "rollback: write newer NV data" nv_put "$(cat "$H/guest1.tcti")" host-nv-2
check "rollback: stop (increments the host counter)" "$VTPM_SIM" stop --dir "$H"
mv "$H/state" "$H/state.new"
cp -a "$H/state.old" "$H/state"
refused_start "rollback of the state root" "the state root was rolled back to an older copy. Refusing to start." \
	"$VTPM_SIM" start --dir "$H"
# Only the manifest rolled back, the vTPMs' files current.
rm -rf "$H/state"
cp -a "$H/state.new" "$H/state"
cp "$H/state.old/manifest" "$H/state/manifest"
refused_start "rollback of the manifest" "the state root was rolled back to an older copy. Refusing to start." \
	"$VTPM_SIM" start --dir "$H"
rm -rf "$H/state"
mv "$H/state.new" "$H/state"
check "current state back: start" start_sim --dir "$H"
check "current state back: the newer NV data reads back" nv_is "$(cat "$H/guest1.tcti")" host-nv-2

# (d) PCR policy: a vtpmd of its own (state in DIR/pcr, its own counter
# index, serving backend domain 99 where no device exists) seals to PCR 16
# of DIR/host's swtpm; PCR 16 is extended; the next start must refuse.
HOSTTCTI="swtpm:path=$H/hosttpm/tpm.sock"
PCR_ARGS=(--no-config --control "$PCRD/control" --platform "sim:$H" --domid 99 --state-dir "$PCRD/state" --host-tpm "$HOSTTCTI"
	--pcr-policy 16 --nv-index 0x01800157 --worker-ids 2147300000-2147365535)
mkdir -p "$PCRD"
serving() { test "$(grep -c 'serving /local/domain/99/backend/vtpm' "$PCRD/vtpmd.log")" -eq "$1"; }
XENSTORED_PATH="$H/xenstore/socket" "$VTPMD" "${PCR_ARGS[@]}" >>"$PCRD/vtpmd.log" 2>&1 &
PCR_PID=$!
check "PCR policy: vtpmd --pcr-policy 16 starts (seals a new master key)" wait_for 30 serving 1
check "PCR policy: master.sealed was written" test -s "$PCRD/state/master.sealed"
kill -TERM "$PCR_PID"
wait "$PCR_PID"
check "PCR policy: vtpmd stops cleanly" test $? -eq 0
XENSTORED_PATH="$H/xenstore/socket" "$VTPMD" "${PCR_ARGS[@]}" >>"$PCRD/vtpmd.log" 2>&1 &
PCR_PID=$!
check "PCR policy: it starts again while PCR 16 is unchanged (unseals)" wait_for 30 serving 2
kill -TERM "$PCR_PID"
wait "$PCR_PID"
PCR_PID=
check "PCR policy: extend PCR 16 of the host TPM" \
	tpm2_pcrextend -T "$HOSTTCTI" "16:sha256=$(printf '%064d' 16)"
sums=$(tree_sums "$PCRD/state")
off=$(size_of "$PCRD/vtpmd.log")
XENSTORED_PATH="$H/xenstore/socket" timeout 60 "$VTPMD" "${PCR_ARGS[@]}" >>"$PCRD/vtpmd.log" 2>&1
rc=$?
echo "# vtpmd exit status: $rc"
check "PCR policy: vtpmd exits non-zero (and did not keep running)" test "$rc" -ne 0 -a "$rc" -ne 124
log_since "$PCRD/vtpmd.log" "$off" >"$SIMDIR/case.log"
grep -E 'vtpmd: error:' "$SIMDIR/case.log" | sed 's/^/# logged: /'
check "PCR policy: one error line" test "$(grep -cE 'vtpmd: (error|crit|alert|emerg):' "$SIMDIR/case.log")" -eq 1
check "PCR policy: it says the PCRs no longer match" \
	grep -qF "the host's PCRs no longer match the sealing policy" "$SIMDIR/case.log"
check "PCR policy: nothing under its state directory changed" test "$(tree_sums "$PCRD/state")" = "$sums"
check "DIR/host (no PCR policy) is not affected by PCR 16" "$VTPM_SIM" restart-daemon --dir "$H"
check "stop DIR/host" "$VTPM_SIM" stop --dir "$H"

finish
