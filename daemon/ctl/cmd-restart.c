/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl restart UUID: a new worker for an attached vTPM, resuming its volatile state (no reset seen). */
#include "vtpmd-ctl.h"

const Command cmd_restart = {
        .name = "restart",
        .usage = "UUID|GUEST",
        .summary = "restart the worker of an attached vTPM, keeping its volatile state (the guest sees no reset)",
        .op = CTL_OP_RESTART,
        .n_positional = 1,
        .uuid_argument = true,
};
