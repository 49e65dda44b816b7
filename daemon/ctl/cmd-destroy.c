/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl destroy UUID [--force]: erase the vTPM's key, then its files. */
#include <getopt.h>
#include <stdlib.h>

#include "vtpmd-ctl.h"

enum { OPT_FORCE = 0x100 };

static int option(CliCall *call, int c, const char *arg) {
        /* --force is the only option of its own. */
        call->req.force = true;
        return 0;
}

const Command cmd_destroy = {
        .name = "destroy",
        .usage = "UUID|GUEST [--force]",
        .summary = "destroy a vTPM for good (--force: even while attached; the guest loses its TPM)",
        .op = CTL_OP_DESTROY,
        .n_positional = 1,
        .uuid_argument = true,
        .options = (const struct option[]){ { "force", no_argument, NULL, OPT_FORCE }, {} },
        .option = option,
};
