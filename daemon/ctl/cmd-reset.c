/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl reset UUID: a TPM clear of a detached vTPM, keeping its identity (UUID, EKs, certificates). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        CtlRequest req = { .op = CTL_OP_RESET };
        CliReply reply = {};
        int r;

        r = cli_simple_args(ctx, &cmd_reset, argc, argv, 1);
        if (r != CLI_CONTINUE)
                return r;
        if (cli_parse_uuid(argv[optind], req.uuid) < 0)
                return EXIT_FAILURE;
        req.has_uuid = true;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_reset = {
        .name = "reset",
        .usage = "UUID",
        .summary = "clear a detached TPM 2.0 vTPM (owner hierarchy, owner NV, keys), keeping its EKs and certificates",
        .run = run,
};
