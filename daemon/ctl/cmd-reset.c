/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl reset UUID: a TPM clear of a detached vTPM, keeping its identity (UUID, EKs, certificates). */
#include "vtpmd-ctl.h"

const Command cmd_reset = {
        .name = "reset",
        .usage = "UUID",
        .summary = "clear a detached TPM 2.0 vTPM (owner hierarchy, owner NV, keys), keeping its EKs and certificates",
        .op = CTL_OP_RESET,
        .n_positional = 1,
        .uuid_argument = true,
};
