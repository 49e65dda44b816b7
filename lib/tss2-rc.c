/* SPDX-License-Identifier: BSD-3-Clause */
/* TSS2_RC into errno (tss2-rc.h). */
#include <errno.h>
#include <stdbool.h>
#include <tss2/tss2_tpm2_types.h>

#include "tss2-rc.h"

uint32_t tss2_rc_base(TSS2_RC rc) {
        uint32_t layer = rc & TSS2_RC_LAYER_MASK;

        if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER)
                return UINT32_MAX;
        rc &= 0xFFFFu;
        if (rc & TPM2_RC_FMT1)
                return rc & (TPM2_RC_FMT1 | 0x3Fu);
        return rc;
}

bool tss2_rc_is_parameter_error(TSS2_RC rc) {
        return tss2_rc_base(rc) != UINT32_MAX && (rc & TPM2_RC_FMT1) && (rc & TPM2_RC_P);
}

int tss2_rc_errno(TSS2_RC rc) {
        uint32_t layer = rc & TSS2_RC_LAYER_MASK;

        if (layer == TSS2_TCTI_RC_LAYER)
                return -ENODEV;
        if (rc == TSS2_ESYS_RC_MEMORY)
                return -ENOMEM;

        switch (tss2_rc_base(rc)) {
        case TPM2_RC_NV_RATE:
        case TPM2_RC_RETRY:
        case TPM2_RC_YIELDED:
        case TPM2_RC_TESTING:
        case TPM2_RC_PCR_CHANGED:
                return -EAGAIN;
        case TPM2_RC_POLICY_FAIL:
                return -EPERM;
        case TPM2_RC_AUTH_FAIL:
        case TPM2_RC_BAD_AUTH:
                return -EACCES;
        case TPM2_RC_NV_UNINITIALIZED:
                return -ENOENT;
        default:
                return -EIO;
        }
}
