/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TSS2_RC, tpm2-tss' error family, for the lib/ files that speak ESAPI
 * (sealer.c, tss-client.c): the one translation into errno, and the TPM's
 * own code for the callers that tell particular TPM answers apart. Internal
 * to lib/: it includes tpm2-tss, which nothing above lib/ may.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <tss2/tss2_common.h>

/* The TPM's own code with the handle/session/parameter number stripped, or
 * UINT32_MAX for errors from the software layers. A resource manager
 * (tabrmd) forwards TPM codes in its own layer; the kernel's passes them as is. */
uint32_t tss2_rc_base(TSS2_RC rc);

/* Whether the TPM refused a parameter (format-one code with the P bit). */
bool tss2_rc_is_parameter_error(TSS2_RC rc);

/* The one place TSS2_RC becomes errno (rc is not TSS2_RC_SUCCESS):
 *   -ENODEV   the TCTI (the transport) failed
 *   -ENOMEM   ESAPI ran out of memory
 *   -EAGAIN   the TPM asked to retry later (TPM_RC_NV_RATE, RETRY, YIELDED, TESTING, PCR_CHANGED)
 *   -EPERM    a policy was not satisfied (TPM_RC_POLICY_FAIL)
 *   -EACCES   an authorization was refused (TPM_RC_AUTH_FAIL, TPM_RC_BAD_AUTH: a password is set)
 *   -ENOENT   the NV index was never written (TPM_RC_NV_UNINITIALIZED)
 *   -EIO      any other failure */
int tss2_rc_errno(TSS2_RC rc);
