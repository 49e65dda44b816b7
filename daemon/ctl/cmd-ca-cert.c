/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl ca-cert: the local CA's certificate (PEM), to verify EK certificates against. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        CtlRequest req = { .op = CTL_OP_CA_CERT };
        CliReply reply = {};
        int r;

        r = cli_simple_args(ctx, &cmd_ca_cert, argc, argv, 0);
        if (r != CLI_CONTINUE)
                return r;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                fputs(cli_str(reply.result, "pem"), stdout);
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_ca_cert = {
        .name = "ca-cert",
        .usage = "",
        .summary = "print the certificate of vtpmd's local CA (PEM), which issues the EK certificates",
        .run = run,
};
