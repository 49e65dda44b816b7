/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl destroy UUID [--force]: erase the vTPM's key, then its files. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        enum { OPT_FORCE = 0x100 };
        static const struct option options[] = { CLI_COMMON_OPTIONS, { "force", no_argument, NULL, OPT_FORCE }, {} };
        CtlRequest req = { .op = CTL_OP_DESTROY };
        CliReply reply = {};
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = cli_common_option(ctx, &cmd_destroy, c, argv);
                if (r == CLI_CONTINUE)
                        continue;
                if (r >= 0)
                        return r;
                if (c != OPT_FORCE)
                        return cli_fail("destroy: unexpected option");
                req.force = true;
        }
        if (cli_positional(&cmd_destroy, argc, argv, 1) < 0 || cli_parse_uuid(argv[optind], req.uuid) < 0)
                return EXIT_FAILURE;
        req.has_uuid = true;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_destroy = {
        .name = "destroy",
        .usage = "UUID [--force]",
        .summary = "destroy a vTPM for good (--force: even while attached; the guest loses its TPM)",
        .run = run,
};
