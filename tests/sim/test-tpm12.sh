#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
# A TPM 1.2 vTPM: the simulated Linux guest's probe starts it (TPM_Startup),
# and a raw TPM 1.2 command from the guest's user is answered.
. "$(dirname "$0")/lib.sh"

check "vtpm-sim start --tpm 1.2" "$VTPM_SIM" start --dir "$SIMDIR" --guests 1 --tpm 1.2
# TPM_GetRandom(8): tag 00c1, size 14, ordinal 0x46, bytesRequested 8
resp=$("$TPM_SEND" "$SIMDIR/guest1.sock" 00c10000000e0000004600000008)
echo "# TPM_GetRandom response: $resp"
check "TPM_GetRandom answered with TPM_SUCCESS and 8 bytes" \
	bash -c "[[ '$resp' =~ ^00c4000000160000000000000008[0-9a-f]{16}$ ]]"
# TPM2_GetRandom to a 1.2 vTPM gets a TPM 1.2 error, not a TPM 2.0 answer.
resp=$("$TPM_SEND" "$SIMDIR/guest1.sock" 80010000000c0000017b0008)
echo "# TPM2_GetRandom response: $resp"
check "a TPM 2.0 command gets a TPM 1.2 error" bash -c "[[ '$resp' =~ ^00c4 ]] && [[ '$resp' != 00c4????????00000000* ]]"
check "vtpmd started the worker as TPM 1.2" grep -q 'TPM 1.2' "$SIMDIR/vtpmd.log"
check "stop" "$VTPM_SIM" stop --dir "$SIMDIR"
finish
