#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A hostile guest through its own TPM (issue 17), while two bystander guests
# run tpm2-tools (durable NV writes included) and must see no error: guest3
# fills its NV until the TPM answers TPM_RC_NV_SPACE, loads objects and
# starts sessions until the TPM runs out of slots, sends an NV_Write far
# larger than any NV buffer, hashes 4 MiB in one sequence and leaves hash
# sequences open until none is left. Each gets a TPM error for guest3 alone
# (or the right answer); guest3's worker is never restarted, stays far below
# its WorkerMemoryMax=, and its vTPM keeps the full NV across a restart.
. "$(dirname "$0")/lib.sh"

trap 'bystanders_stop; cleanup' EXIT
if ! run "$VTPM_SIM" start --dir "$SIMDIR" --guests 3; then
	fail "vtpm-sim start: three guests connected"
	finish
fi
ok "vtpm-sim start: three guests connected"
bystanders_start guest1 guest2
check "the bystanders' workload runs" wait_for 60 bystanders_ran 12
T3=$(tcti guest3)
W3=$(sed -n 's/.*vtpmd-worker\[\([0-9]*\)\]: domid=3 .*confined.*/\1/p' "$SIMDIR/vtpmd.log" | tail -n 1)
echo "# guest3's worker: pid $W3"

# ---- NV until full
n=0
for i in $(seq 0 999); do
	h=$(printf '0x%08x' $((0x01500100 + i)))
	if ! tpm2_nvdefine -T "$T3" "$h" -C o -s 2048 -a 'ownerread|ownerwrite' >/dev/null 2>"$SIMDIR/nv.err"; then
		break
	fi
	n=$((n + 1))
done
echo "# guest3 defined $n NV indices of 2048 bytes; then: $(grep -o 'ERROR: Esys.*' "$SIMDIR/nv.err")"
check "guest3 fills its NV: the TPM answers TPM_RC_NV_SPACE (0x14b) after $n indices" \
	bash -c "[ $n -gt 0 ] && [ $n -lt 1000 ] && grep -q '(0x14B)' '$SIMDIR/nv.err'"
LAST=$(printf '0x%08x' $((0x01500100 + n - 1)))
head -c 2048 /dev/urandom >"$SIMDIR/nv-last.bin"
check "its NV, full, still takes a write to an index it has" \
	tpm2_nvwrite -T "$T3" "$LAST" -C o -i "$SIMDIR/nv-last.bin"
check "guest3's TPM still answers" tpm2_getrandom -T "$T3" 8 --hex
bytes=$(find "$SIMDIR/state" -maxdepth 2 -name permall -printf '%s\n' | sort -n | tail -n 1)
echo "# the largest permall: $bytes bytes"
check "the full NV is a permall far below the 1 MiB a state blob may have" test "$bytes" -lt $((1 << 20))

# ---- objects and sessions until the TPM has no slot left
rc=0
for i in 1 2 3 4 5 6; do
	tpm2_createprimary -T "$T3" -C o -G ecc -c "$SIMDIR/p$i.ctx" >/dev/null 2>"$SIMDIR/obj.err" || { rc=$i; break; }
done
echo "# createprimary $rc failed: $(grep -o 'ERROR: Esys.*' "$SIMDIR/obj.err")"
check "loading objects until none fits: TPM_RC_OBJECT_MEMORY (0x902)" \
	bash -c "[ $rc -gt 1 ] && grep -q '(0x902)' '$SIMDIR/obj.err'"
check "tpm2_flushcontext frees them" tpm2_flushcontext -T "$T3" -t
rc=0
for i in $(seq 1 100); do
	tpm2_startauthsession -T "$T3" -S "$SIMDIR/s$i.ctx" 2>"$SIMDIR/sess.err" || { rc=$i; break; }
done
echo "# startauthsession $rc failed: $(grep -o 'ERROR: Esys.*' "$SIMDIR/sess.err")"
check "starting sessions until none is left: TPM_RC_SESSION_HANDLES (0x905)" \
	bash -c "[ $rc -gt 1 ] && grep -q '(0x905)' '$SIMDIR/sess.err'"
check "tpm2_flushcontext frees them" tpm2_flushcontext -T "$T3" -s

# ---- an NV_Write of 4000 bytes in one command (an NV buffer holds 1024)
# TPM2_NV_Write(owner, LAST, password session) with a TPM2B of 4000 bytes, offset 0.
data=$(head -c 4000 /dev/zero | od -An -tx1 -v | tr -d ' \n')
cmd=$(printf '80020000%04x00000137400000010%07x000000094000000900000000000fa0%s0000' \
	$((10 + 4 + 4 + 4 + 9 + 2 + 4000 + 2)) $((LAST)) "$data")
resp=$("$TPM_SEND" "$SIMDIR/guest3.sock" "$cmd" 2>&1)
echo "# NV_Write of 4000 bytes answered ${resp:0:20}"
check "an NV_Write far over the NV buffer: TPM_RC_SIZE for its data (0x1d5)" test "$resp" = 80010000000a000001d5
check "... and the index still holds what was written before" \
	bash -c "tpm2_nvread -T '$T3' '$LAST' -C o -s 2048 2>/dev/null | cmp -s - '$SIMDIR/nv-last.bin'"

# ---- hash sequences: one of 4 MiB, then open ones until none is left
head -c $((4 << 20)) /dev/urandom >"$SIMDIR/big.bin"
want=$(sha256sum "$SIMDIR/big.bin" | cut -c1-64)
got=$(tpm2_hash -T "$T3" -g sha256 --hex "$SIMDIR/big.bin" 2>"$SIMDIR/hash.err")
echo "# 4 MiB through one hash sequence: $got"
check "a 4 MiB hash sequence (4096 SequenceUpdates) gives the right digest" test "$got" = "$want"
start=$(printf '80010000000e00000186%s' 0000000b)
resp=$("$TPM_SEND" "$SIMDIR/guest3.sock" "$start" "$start" "$start" "$start" "$start" 2>&1 | xargs)
echo "# five HashSequenceStart: $resp"
check "hash sequences left open until none fits: TPM_RC_OBJECT_MEMORY (0x902)" \
	bash -c "grep -q '80010000000a00000902' <<<'$resp'"
# FlushContext of each (tpm2_flushcontext -t reads every transient's public part, which a sequence has not).
flushes=()
for h in $(grep -oE '80010000000e00000000(80[0-9a-f]{6})' <<<"$resp" | cut -c21-); do
	flushes+=("80010000000e00000165$h")
done
resp=$("$TPM_SEND" "$SIMDIR/guest3.sock" "${flushes[@]}" 2>&1 | xargs)
check "FlushContext frees them (${#flushes[@]})" bash -c "[ ${#flushes[@]} -gt 0 ] && [ \"\$(tr ' ' '\n' <<<'$resp' | sort -u)\" = 80010000000a00000000 ]"

# ---- guest3's worker
check "guest3's worker was never restarted" test "$(grep -c 'domid=3 .*confined' "$SIMDIR/vtpmd.log")" = 1
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$W3/status" 2>/dev/null)
echo "# guest3's worker: VmHWM ${hwm:-?} kB, WorkerMemoryMax= 512M of address space"
check "its memory stayed far below its limit (under 64 MiB resident)" bash -c "[ -n '$hwm' ] && [ '$hwm' -lt 65536 ]"
check "its worker killed: restarted from its full NV" kill -KILL "$W3"
check "guest3's TPM answers its new worker" wait_for 60 tpm2_getrandom -T "$T3" 8 --hex
check "... with the full NV: the last index reads back" \
	bash -c "tpm2_nvread -T '$T3' '$LAST' -C o -s 2048 2>/dev/null | cmp -s - '$SIMDIR/nv-last.bin'"
check "... and it is still full" bash -c "tpm2_nvdefine -T '$T3' 0x01500fff -C o -s 2048 -a 'ownerread|ownerwrite' 2>&1 |
	grep -q '(0x14B)'"

# ---- the bystanders
bystanders_check
for g in guest1 guest2; do
	check "$g's workers were never restarted" test "$(grep -c "domid=${g#guest} .*confined" "$SIMDIR/vtpmd.log")" = 1
done
check "vtpmd itself is still running" kill -0 "$(cat "$SIMDIR/vtpmd.pid")"
finish
