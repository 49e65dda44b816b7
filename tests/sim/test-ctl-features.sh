#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# What an admin expects of vtpmd-ctl (issue 18's features), through the real
# vtpmd-ctl and real tpm2-tools in simulated guests:
#  - names: list and show give the guest's name beside its domid; a guest's
#    name is taken where a UUID is expected, when it names one vTPM;
#  - pcrread prints an attached vTPM's PCRs as the guest's tpm2_pcrread does,
#    also while the guest is busy; a suspended (saved) vTPM's, those its guest
#    resumes with, without changing its state; a detached one's reset values;
#  - ek-cert prints the EK certificates, the ones the guest reads from NV;
#  - --version of vtpmd and vtpmd-ctl names libtpms, OpenSSL and tpm2-tss;
#    status gives the host TPM's details;
#  - bash completion completes commands, options, and the UUIDs and guest
#    names vtpmd-ctl list --json gives;
#  - EK certificates from the admin's own CA (EkCaCertificate=, EkCaKey=),
#    whose key file must be the owner's alone;
#  - backup of an attached vTPM while its guest runs, restored by import;
#  - restart gives an attached vTPM a new worker without the guest seeing a
#    reset (PCR 16 kept) or an error (a tpm2_getrandom loop across it).
# Environment (meson sets it): VTPM_SIM, VTPMD, VTPMD_CTL, VTPM_XENSTORED, VTPM_SIM_GUEST.
source "$(dirname "$0")/lib.sh"

export VTPM_SIM_CONNECT_TIMEOUT=10
VTPMD_REAL=$VTPMD
# vtpm-sim starts $VTPMD: the wrapper adds DIR/vtpmd.extra's arguments (the admin's CA).
cat >"$SIMDIR/vtpmd-wrap" <<EOF2
#!/bin/sh
extra=
[ -f "$SIMDIR/vtpmd.extra" ] && extra=\$(cat "$SIMDIR/vtpmd.extra")
exec "$VTPMD_REAL" \$extra "\$@"
EOF2
chmod +x "$SIMDIR/vtpmd-wrap"
export VTPMD="$SIMDIR/vtpmd-wrap"
CTL=$VTPMD_CTL
H=$SIMDIR
W=$SIMDIR/work
mkdir -p "$W"
pyjson() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; }
field() { "$CTL" --json show "$1" | pyjson "v=d.get('$2'); print('' if v is None else v)"; }

if ! "$VTPM_SIM" start --dir "$H" --guests 0 >"$W/start.out" 2>&1; then
	sed 's/^/# /' "$W/start.out"
	fail "vtpm-sim start"
	finish
fi
export VTPMD_CONTROL=$H/control
ok "simulated host running"

# ---- names ----
UA=$("$CTL" create)
check "attach guest web1 to a new vTPM" "$VTPM_SIM" attach --dir "$H" web1 --uuid "$UA"
DOMID=$("$VTPM_SIM" status --dir "$H" --json | pyjson "print([g for g in d['guests'] if g['name']=='web1'][0]['domid'])")
row() { "$CTL" --json list | pyjson "r=[x for x in d if x['uuid']=='$UA'][0]; print(r['domid'], r['name'])"; }
check "list --json gives web1's domid and name ($(row))" test "$(row)" = "$DOMID web1"
check "list gives them side by side" bash -c "'$CTL' list | grep -E '^$UA +2\.0 +$DOMID +web1 +0 +connected'"
check "list's header names the column" bash -c "'$CTL' list | head -n 1 | grep -qE 'DOMID +NAME +DEVID'"
check "show gives the name" bash -c "'$CTL' show '$UA' | grep -qx 'Guest name *web1'"
check "show web1 shows web1's vTPM" test "$(field web1 uuid)" = "$UA"
check "show --json's name is web1" test "$(field "$UA" name)" = web1
UD=$("$CTL" create)
check "a detached vTPM has no name in show --json" test "$(field "$UD" name)" = ""
"$CTL" show nosuchguest >"$W/out" 2>"$W/err"
rc=$?
check "show of an unknown name fails (exit $rc)" test "$rc" -eq 1
check "... saying it is neither a UUID nor a guest's name ($(cat "$W/err"))" \
	grep -q 'not a UUID, and no guest with a vTPM attached is named "nosuchguest"' "$W/err"
check "... with --json, as a JSON error object" bash -c "'$CTL' --json show nosuchguest 2>/dev/null | python3 -c \"import json,sys; \
d=json.load(sys.stdin); assert 'nosuchguest' in d['error'] and d['errno'] > 0\""
"$CTL" show 'bad name' >"$W/out" 2>"$W/err"
check "show of something no name can be is not a UUID ($(cat "$W/err"))" grep -q 'not a UUID: "bad name"' "$W/err"
UB=$("$CTL" create)
# The simulated guest's kernel does not hotplug a second frontend: the device
# stays in InitWait, which is attached as far as vtpmd is concerned.
"$VTPM_SIM" attach --dir "$H" web1 --uuid "$UB" >/dev/null 2>&1
two_named() { [ "$("$CTL" --json list | pyjson "print(sum(x['name']=='web1' for x in d))")" = 2 ]; }
check "a second vTPM device of web1 is listed with its name" wait_for 10 two_named
"$CTL" show web1 >"$W/out" 2>"$W/err"
rc=$?
check "show web1 with two vTPMs attached fails (exit $rc)" test "$rc" -eq 1
check "... as ambiguous, naming both ($(cat "$W/err"))" \
	bash -c "grep -q 'guest \"web1\" has 2 vTPMs attached' '$W/err' && grep -q '$UA' '$W/err' && grep -q '$UB' '$W/err'"
check "detach web1's second vTPM" "$VTPM_SIM" detach --dir "$H" web1 --uuid "$UB"
check "destroy --force web1 destroys web1's one vTPM" "$CTL" destroy --force web1
check "... which is gone" test ! -e "$H/state/$UA"
degraded_failed() { "$CTL" --json status | pyjson "assert d['health']=='degraded' and '1 device failed' in d['degraded'], d"; }
check "status says degraded: web1's device failed ($("$CTL" --json status | pyjson "print(d['degraded'])"))" degraded_failed

# ---- pcrread ----
UP=$("$CTL" create --pcr-banks sha1,sha256)
check "attach guest pr to a vTPM with sha1 and sha256 banks" "$VTPM_SIM" attach --dir "$H" pr --uuid "$UP"
TP=$(cat "$H/pr.tcti")
check "pr extends PCRs 16 and 23" bash -c "tpm2_pcrextend -T '$TP' 16:sha256=$(printf '%064d' 1),sha1=$(printf '%040d' 2) && \
tpm2_pcrextend -T '$TP' 23:sha256=$(printf '%064d' 3)"
tpm2_pcrread -T "$TP" sha256 >"$W/guest.pcr" 2>&1
"$CTL" pcrread pr >"$W/ctl.pcr" 2>"$W/err"
check "pcrread pr (default: sha256, every PCR) prints what the guest's tpm2_pcrread sha256 does" \
	bash -c "cmp -s '$W/guest.pcr' '$W/ctl.pcr' || { diff '$W/guest.pcr' '$W/ctl.pcr' | head -n 6 | sed 's/^/# /'; cat '$W/err'; false; }"
check "... 24 PCRs" test "$(grep -c ': 0x' "$W/ctl.pcr")" = 24
for sel in sha256:0,1,16 sha1:16,23 sha256:all; do
	tpm2_pcrread -T "$TP" "$sel" >"$W/guest.pcr" 2>&1
	check "pcrread pr $sel is the guest's tpm2_pcrread $sel" bash -c "'$CTL' pcrread '$UP' '$sel' | cmp -s - '$W/guest.pcr'"
done
check "pcrread --json gives the bank and the PCRs by number" \
	bash -c "'$CTL' --json pcrread '$UP' sha256:16 | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['bank']=='sha256' and list(d['pcrs'])==['16'] and len(d['pcrs']['16'])==64, d\""
"$CTL" pcrread "$UP" sha384 >"$W/out" 2>"$W/err"
check "pcrread of a bank the vTPM has not allocated fails ($(cat "$W/err"))" grep -q "has no sha384 PCR bank allocated" "$W/err"
"$CTL" pcrread "$UP" sha256:24 >"$W/out" 2>"$W/err"
rc=$?
check "pcrread of PCR 24 is a usage error (exit $rc)" test "$rc" -eq 2
check "pcrread --json of an attached vTPM says so" \
	bash -c "'$CTL' --json pcrread '$UP' sha256:16 | python3 -c \"import json,sys; assert json.load(sys.stdin)['state']=='attached'\""
# While the guest keeps its TPM busy with long commands (an RSA primary key each, which its worker
# runs on its TPM thread): pcrread waits for a gap between them.
rm -f "$W/busy.stop"
( while [ ! -e "$W/busy.stop" ]; do
	{ tpm2_createprimary -T "$TP" -C o -G rsa2048 -c "$W/prim.ctx" >/dev/null && tpm2_flushcontext -T "$TP" -t; } \
		2>>"$W/busy.err" || echo FAIL >>"$W/busy.err"
done ) &
BUSY=$!
ok_reads=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	"$CTL" pcrread "$UP" sha256:16 >/dev/null 2>>"$W/busy.ctl" && ok_reads=$((ok_reads + 1))
done
# Two at once: the second waits for the first's command.
"$CTL" pcrread "$UP" sha256:16 >"$W/par1" 2>&1 &
P1=$!
"$CTL" pcrread "$UP" sha256:16 >"$W/par2" 2>&1
r2=$?
wait "$P1"
r1=$?
touch "$W/busy.stop"
wait "$BUSY"
check "two pcrreads at once both succeed ($r1 $r2; $(cat "$W/par1" "$W/par2" | grep -v ':' | head -c 200))" \
	bash -c "[ $r1 -eq 0 ] && [ $r2 -eq 0 ] && cmp -s '$W/par1' '$W/par2'"
check "10 pcrreads while the guest creates RSA keys in a loop all succeed ($ok_reads; $(head -c 200 "$W/busy.ctl" 2>/dev/null))" test "$ok_reads" = 10
check "... and none of the guest's commands failed" test ! -s "$W/busy.err"

# ---- pcrread of detached vTPMs ----
Z64=$(printf '%064d' 0)
F64=$(printf 'F%.0s' $(seq 64))
# A never-used vTPM: its first start is a TPM reset (PCRs 0-16 and 23 zero, 17-22 all ones).
"$CTL" pcrread "$UD" sha256:0,16,17,23 >"$W/ud.pcr" 2>"$W/err"
check "pcrread of a never-used detached vTPM gives the values of a TPM reset ($(tr '\n' ' ' <"$W/ud.pcr"; cat "$W/err"))" \
	bash -c "grep -qx '    0 : 0x$Z64' '$W/ud.pcr' && grep -qx '    16: 0x$Z64' '$W/ud.pcr' && \
grep -qx '    17: 0x$F64' '$W/ud.pcr' && grep -qx '    23: 0x$Z64' '$W/ud.pcr'"
check "... and says that they are those of its next start" grep -q "detached: the values of its next start (a TPM reset)" "$W/ud.pcr"
check "... --json: state reset" \
	bash -c "'$CTL' --json pcrread '$UD' sha256:16 | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['state']=='reset' and d['pcrs']['16']=='$Z64', d\""
check "... and the vTPM is still never used (no permanent state written)" test ! -e "$H/state/$UD/permall"
# A suspended guest (xl save): the values it resumes with, read without consuming its saved state.
US=$("$CTL" create)
check "attach guest sv" "$VTPM_SIM" attach --dir "$H" sv --uuid "$US"
TS=$(cat "$H/sv.tcti")
check "sv extends PCR 16" tpm2_pcrextend -T "$TS" 16:sha256=$(printf '%064d' 7)
tpm2_pcrread -T "$TS" sha256:16 >"$W/sv.pcr" 2>&1
check "save sv (xl save)" "$VTPM_SIM" save --dir "$H" sv "$W/sv.save"
sv_suspended() { "$CTL" list | grep "$US" | grep -q suspended; }
check "... vtpmd-ctl list shows it suspended" sv_suspended
state_sums() { (cd "$H/state/$US" && ls -la --time-style=+%s.%N . | grep -v -e ' \.lock$' -e ' \.\.$' && sha256sum -- *); }
state_sums >"$W/sv.before"
"$CTL" pcrread "$US" sha256:16 >"$W/sv-ctl.pcr" 2>"$W/err"
check "pcrread of the suspended vTPM gives its extended PCR 16, as the guest read it before the save ($(cat "$W/sv-ctl.pcr" "$W/err" | tr '\n' ' '))" \
	cmp -s "$W/sv.pcr" "$W/sv-ctl.pcr"
check "... --json: state suspended" \
	bash -c "'$CTL' --json pcrread '$US' sha256:16 | python3 -c \"import json,sys; assert json.load(sys.stdin)['state']=='suspended'\""
state_sums >"$W/sv.after"
check "... and its state directory is unchanged (no file written, removed or renamed)" \
	bash -c "cmp -s '$W/sv.before' '$W/sv.after' || { diff '$W/sv.before' '$W/sv.after' | head -n 8 | sed 's/^/# /'; false; }"
check "... it is still listed suspended" sv_suspended
check "restore sv" "$VTPM_SIM" restore --dir "$H" "$W/sv.save"
TS=$(cat "$H/sv.tcti")
tpm2_pcrread -T "$TS" sha256:16 >"$W/sv-after.pcr" 2>&1
check "the restored guest reads the same PCR 16 (it resumed from the saved state)" cmp -s "$W/sv.pcr" "$W/sv-after.pcr"
check "... and vtpmd-ctl list no longer shows it suspended" bash -c "! '$CTL' list | grep '$US' | grep -q suspended"
# Its guest destroyed: its next start is a TPM reset, whatever its PCRs were.
check "destroy guest sv" "$VTPM_SIM" destroy --dir "$H" sv
"$CTL" pcrread "$US" sha256:16 >"$W/sv-gone.pcr" 2>"$W/err"
check "pcrread of the vTPM of a destroyed guest gives PCR 16 of a TPM reset ($(cat "$W/sv-gone.pcr" "$W/err" | tr '\n' ' '))" \
	bash -c "grep -qx '    16: 0x$Z64' '$W/sv-gone.pcr' && grep -q 'a TPM reset' '$W/sv-gone.pcr'"

# ---- ek-cert ----
UE=$("$CTL" create --ek both --ek-cert)
check "ek-cert prints both EK certificates, as stored" \
	bash -c "'$CTL' ek-cert '$UE' >'$W/ek.pem' && cat '$H/state/$UE/ek-rsa2048.pem' '$H/state/$UE/ek-ecc-p256.pem' | cmp -s - '$W/ek.pem'"
check "... two PEM certificates" test "$(grep -c 'BEGIN CERTIFICATE' "$W/ek.pem")" = 2
check "ek-cert --json has them as rsa2048 and ecc_p256" \
	bash -c "'$CTL' --json ek-cert '$UE' | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['rsa2048'].startswith('-----BEGIN CERTIFICATE') and d['ecc_p256'].startswith('-----BEGIN CERTIFICATE')\""
check "attach guest ekg to it" "$VTPM_SIM" attach --dir "$H" ekg --uuid "$UE"
TE=$(cat "$H/ekg.tcti")
check "the guest reads its RSA EK certificate from NV 0x01c00002" \
	bash -c "tpm2_nvread -T '$TE' -C o -o '$W/nv-rsa.der' 0x01c00002 >/dev/null 2>&1"
check "... the one ek-cert ekg prints first (by the guest's name, while attached)" \
	bash -c "'$CTL' ek-cert ekg | openssl x509 -outform DER -out '$W/ctl-rsa.der' && cmp -s '$W/nv-rsa.der' '$W/ctl-rsa.der'"
"$CTL" ek-cert "$UD" >"$W/out" 2>"$W/err"
rc=$?
check "ek-cert of a vTPM without certificates fails (exit $rc): $(cat "$W/err")" \
	bash -c "[ $rc -eq 1 ] && grep -q 'has no EK certificate' '$W/err' && [ ! -s '$W/out' ]"

# ---- --version ----
"$VTPMD_REAL" --version >"$W/v.out"
check "vtpmd --version: its version, libtpms, OpenSSL, tpm2-tss ($(tr '\n' ';' <"$W/v.out"))" \
	bash -c "sed -n 1p '$W/v.out' | grep -q '^vtpmd ' && grep -q '^libtpms [0-9]' '$W/v.out' && \
grep -q '^OpenSSL [0-9]' '$W/v.out' && grep -q '^tpm2-tss [0-9]' '$W/v.out'"
if command -v pkg-config >/dev/null && pkg-config --exists libtpms tss2-esys; then
	check "... the versions built with" bash -c "grep -qx 'libtpms $(pkg-config --modversion libtpms)' '$W/v.out' && \
grep -qx 'tpm2-tss $(pkg-config --modversion tss2-esys)' '$W/v.out'"
fi
"$CTL" --version >"$W/cv.out"
check "vtpmd-ctl --version: its own and OpenSSL's ($(head -n 1 "$W/cv.out"))" grep -q '^vtpmd-ctl [0-9.]* (OpenSSL [0-9]' "$W/cv.out"
check "... and vtpmd's libraries, asked through status ($(sed -n 2p "$W/cv.out"))" \
	grep -q "^vtpmd [0-9.]* at $H/control: libtpms $(sed -n 's/^libtpms //p' "$W/v.out"), OpenSSL [0-9].*, tpm2-tss $(sed -n 's/^tpm2-tss //p' "$W/v.out")$" "$W/cv.out"
check "vtpmd-ctl --version without vtpmd says so, exit 0" \
	bash -c "'$CTL' --control '$W/none' --version 2>&1 | sed -n 2p | grep -qx 'vtpmd at $W/none: not reachable'"
check "status --json gives the host TPM's details: TCTI, SRK, PCR policy, counter index and value" \
	bash -c "'$CTL' --json status | python3 -c \"import json,sys; d=json.load(sys.stdin); \
assert d['host_tpm_tcti'].startswith('swtpm:') and d['srk']=='TCG template primary' and d['pcr_policy']=='none' \
and d['counter_index']=='0x01800156' and isinstance(d['counter'], int) and d['counter'] >= 1, d\""
check "... status too" bash -c "'$CTL' status | grep -qE '^Counter +[0-9]+$' && '$CTL' status | grep -qE '^PCR policy +none$'"
check "status --json has libtpms, openssl, tpm2_tss" \
	bash -c "'$CTL' --json status | python3 -c \"import json,sys; d=json.load(sys.stdin); assert d['libtpms'] and d['openssl'].startswith('OpenSSL') and d['tpm2_tss']\""

# ---- bash completion ----
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(dirname "$CTL")
# complete WORDS...: what completing the last word of "vtpmd-ctl WORDS" offers, one per line.
complete_words() {
	PATH="$BIN:$PATH" VTPMD_CONTROL="$VTPMD_CONTROL" bash -c '
		source "$0"
		COMP_WORDS=(vtpmd-ctl "$@")
		COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
		_vtpmd_ctl
		printf "%s\n" "${COMPREPLY[@]}"' "$SRC/completion/vtpmd-ctl" "$@" | sort
}
check "completion: the commands (pc -> pcrread)" test "$(complete_words pc)" = pcrread
check "... every command" test "$(complete_words '' | wc -l)" -eq 14
check "... global options" test "$(complete_words --v)" = --version
check "... a command's options" test "$(complete_words create --ek-)" = --ek-cert
check "... option values" test "$(complete_words create --ek e)" = ecc-p256
check "... pool's verbs" test "$(complete_words pool ad)" = admit
complete_words show "${UP:0:8}" >"$W/c.out"
check "... a vTPM's UUID from its first digits (${UP:0:8}: $(tr '\n' ' ' <"$W/c.out"))" test "$(cat "$W/c.out")" = "$UP"
complete_words pcrread p >"$W/c.out"
check "... and an attached guest's name (pcrread p: $(tr '\n' ' ' <"$W/c.out"))" test "$(cat "$W/c.out")" = pr
check "... pcrread's bank after the vTPM" test "$(complete_words pcrread pr sha2 | head -n 1)" = sha256
check "... nothing from a vtpmd that is not there" test -z "$(complete_words --control "$W/none" show a)"

# ---- restart ----
UR=$("$CTL" create)
check "attach guest rs to a new vTPM" "$VTPM_SIM" attach --dir "$H" rs --uuid "$UR"
TR=$(cat "$H/rs.tcti")
check "rs extends PCR 16" tpm2_pcrextend -T "$TR" 16:sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
pcr16() { tpm2_pcrread -T "$TR" sha256:16 2>/dev/null | awk '/16 *:/ {print $NF}'; }
P16=$(pcr16)
check "PCR 16 is extended ($P16)" test -n "$P16" -a "$P16" != 0x0000000000000000000000000000000000000000000000000000000000000000
# The worker serving rs: the last one vtpmd's log saw get ready for its UUID.
rs_worker() { grep -o "vtpmd-worker\[[0-9]*\]: domid=[0-9]* devid=[0-9]* uuid=$UR: ready" "$H/vtpmd.log" | tail -n 1 | sed 's/.*\[\([0-9]*\)\].*/\1/'; }
WP=$(rs_worker)
# A loop of GetRandom, across the restart: any failed command is counted.
: >"$W/loop.count"
: >"$W/loop.err"
(
	while [ ! -e "$W/loop.stop" ]; do
		if tpm2_getrandom -T "$TR" 8 >/dev/null 2>>"$W/loop.err"; then echo >>"$W/loop.count"; else echo FAIL >>"$W/loop.err"; fi
	done
) &
LOOP=$!
loop_ran() { [ "$(wc -l <"$W/loop.count")" -ge "$1" ]; }
check "the guest's GetRandom loop runs" wait_for 10 loop_ran 5
"$CTL" restart rs >"$W/out" 2>"$W/err"
rc=$?
check "restart rs (by name) succeeds (exit $rc) $(cat "$W/err")" test "$rc" -eq 0
N=$(wc -l <"$W/loop.count")
check "the loop goes on after it" wait_for 10 loop_ran $((N + 5))
touch "$W/loop.stop"
wait "$LOOP"
check "no GetRandom failed across the restart ($(wc -l <"$W/loop.count") ran; $(head -c 200 "$W/loop.err"))" test ! -s "$W/loop.err"
NP=$(rs_worker)
check "a new worker serves rs (pid $WP -> $NP)" test -n "$NP" -a "$NP" != "$WP"
check "... and the old one is gone" bash -c "! kill -0 '$WP' 2>/dev/null"
check "PCR 16 is as before: no reset ($(pcr16))" test "$(pcr16)" = "$P16"
check "vtpmd logged the restart" grep -q "uuid=$UR: Restarting the worker on request of vtpmd-ctl" "$H/vtpmd.log"
U12=$("$CTL" create --tpm 1.2)
check "attach guest t12 to a TPM 1.2 vTPM" "$VTPM_SIM" attach --dir "$H" t12 --uuid "$U12"
"$CTL" pcrread t12 >"$W/out" 2>"$W/err"
check "pcrread of a TPM 1.2 says it reads TPM 2.0 banks only ($(cat "$W/err"))" grep -q "is a TPM 1.2: pcrread reads TPM 2.0" "$W/err"
U12D=$("$CTL" create --tpm 1.2)
"$CTL" pcrread "$U12D" >"$W/out" 2>"$W/err"
rc=$?
check "pcrread of a detached TPM 1.2 is refused the same way (exit $rc: $(cat "$W/err"))" \
	bash -c "[ $rc -ne 0 ] && grep -q 'is a TPM 1.2: pcrread reads TPM 2.0' '$W/err' && [ ! -s '$W/out' ]"
check "restart t12 (TPM 1.2) succeeds" "$CTL" restart t12
# TPM_GetRandom(8) from the guest: answered with TPM_SUCCESS and 8 bytes.
check "... and its guest's TPM 1.2 answers after it" \
	bash -c "[[ \"\$('$TPM_SEND' '$H/t12.sock' 00c10000000e0000004600000008)\" =~ ^00c4000000160000000000000008[0-9a-f]{16}$ ]]"
"$CTL" restart "$UD" >"$W/out" 2>"$W/err"
check "restart of a detached vTPM is refused ($(cat "$W/err"))" grep -q "has no worker: it is not attached" "$W/err"

# ---- backup ----
UK=$("$CTL" create)
check "attach guest bk to a new vTPM" "$VTPM_SIM" attach --dir "$H" bk --uuid "$UK"
TK=$(cat "$H/bk.tcti")
check "bk defines NV 0x1500020 and writes 'one' into it" bash -c "tpm2_nvdefine -T '$TK' -C o -s 3 -a 'ownerread|ownerwrite' 0x1500020 >/dev/null && \
printf one | tpm2_nvwrite -T '$TK' -C o -i - 0x1500020"
head -c 32 /dev/urandom >"$W/bk.key"
rm -f "$W/bk.stop"
: >"$W/bk.err"
( while [ ! -e "$W/bk.stop" ]; do tpm2_getrandom -T "$TK" 8 >/dev/null 2>>"$W/bk.err" || echo FAIL >>"$W/bk.err"; done ) &
BKL=$!
check "backup bk (by name) while its guest runs GetRandom" "$CTL" backup bk --to "$W/bk.backup" --key-file "$W/bk.key"
touch "$W/bk.stop"
wait "$BKL"
check "... no guest command failed" test ! -s "$W/bk.err"
check "... bk is still attached and connected" bash -c "'$CTL' --json show '$UK' | grep -q '\"state\":\"connected\"\|\"state\": \"connected\"'"
check "bk then writes 'two'" bash -c "printf two | tpm2_nvwrite -T '$TK' -C o -i - 0x1500020"
check "vtpmd logged the backup" grep -q "uuid=$UK: Backed up the attached vTPM on request of vtpmd-ctl" "$H/vtpmd.log"
check "backup will not overwrite a file" bash -c "! '$CTL' backup '$UK' --to '$W/bk.backup' --key-file '$W/bk.key' 2>/dev/null"
check "detach bk" "$VTPM_SIM" detach --dir "$H" bk
check "restoring is an explicit destroy and import" bash -c "'$CTL' destroy '$UK' && [ \"\$('$CTL' import '$W/bk.backup' --key-file '$W/bk.key')\" = '$UK' ]"
check "attach guest bk2 to the restored vTPM" "$VTPM_SIM" attach --dir "$H" bk2 --uuid "$UK"
check "its NV holds 'one', as at the backup" bash -c "[ \"\$(tpm2_nvread -T '$(cat "$H/bk2.tcti" 2>/dev/null)' -C o 0x1500020 2>/dev/null)\" = one ]"
mkdir -p "$W/all"
check "vtpmd-ctl(8)'s loop backs up every vTPM, attached or not" bash -c "for u in \$('$CTL' list | awk 'NR > 1 {print \$1}'); do \
'$CTL' backup \"\$u\" --to '$W/all/'\"\$u\".vtpm --key-file '$W/bk.key' || exit 1; done; \
[ \$(ls '$W/all' | wc -l) -eq \$('$CTL' --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"vtpms\"])') ]"
check "backup of a detached vTPM is its export" bash -c "'$CTL' backup '$UD' --to '$W/ud.backup' --key-file '$W/bk.key' && \
'$CTL' destroy '$UD' && [ \"\$('$CTL' import '$W/ud.backup' --key-file '$W/bk.key')\" = '$UD' ]"

# ---- EK certificates from the admin's own CA ----
CA=$W/adminca
mkdir -p "$CA"
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CA/ca.key" -out "$CA/ca.pem" \
	-subj "/O=Example Org/CN=Example EK CA" -days 30 >/dev/null 2>&1; then
	ok "openssl makes the admin's CA"
else
	fail "openssl makes the admin's CA"
fi
chmod 644 "$CA/ca.key"
echo "--ek-ca-cert $CA/ca.pem --ek-ca-key $CA/ca.key" >"$SIMDIR/vtpmd.extra"
check "vtpmd refuses an EK CA key file others can read" bash -c "! '$VTPM_SIM' restart-daemon --dir '$H' >'$W/rd.out' 2>&1"
check "... saying why ($(grep 'EK CA file' "$H/vtpmd.log" | tail -n 1))" \
	grep -q "EK CA file $CA/ca.key: its group or other users may read or write it: chmod 600 it" "$H/vtpmd.log"
chmod 600 "$CA/ca.key"
check "with mode 0600 vtpmd starts with the admin's CA" "$VTPM_SIM" restart-daemon --dir "$H"
UC=$("$CTL" create --ek both --ek-cert)
check "create --ek-cert with the admin's CA" test -n "$UC"
check "its EK certificates verify against the admin's CA" \
	bash -c "'$CTL' ek-cert '$UC' >'$W/ek2.pem' && csplit -s -z -f '$W/ek2-' '$W/ek2.pem' '/BEGIN CERT/' '{*}' && \
openssl verify -CAfile '$CA/ca.pem' '$W'/ek2-0* >/dev/null"
check "... and name it as issuer" bash -c "openssl x509 -in '$W/ek2-00' -noout -issuer | grep -q 'Example EK CA'"
check "ca-cert prints the admin's CA certificate" bash -c "'$CTL' ca-cert | cmp -s - <(openssl x509 -in '$CA/ca.pem')"
rm -f "$SIMDIR/vtpmd.extra"

finish
