/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl list: every vTPM, attached or not. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        CtlRequest req = { .op = CTL_OP_LIST };
        CliReply reply = {};
        int r;

        r = cli_simple_args(ctx, &cmd_list, argc, argv, 0);
        if (r != CLI_CONTINUE)
                return r;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.items);
        else {
                printf("%-36s  %-3s  %5s  %5s  %-10s  %s\n", "UUID", "TPM", "DOMID", "DEVID", "STATE", "COMMANDS");
                for (size_t i = 0; i < json_object_array_length(reply.items); i++) {
                        json_object *o = json_object_array_get_idx(reply.items, i);
                        printf("%-36s  %-3s  %5s  %5s  %-10s  %s\n", cli_str(o, "uuid"), cli_str(o, "tpm"),
                               cli_str(o, "domid"), cli_str(o, "devid"), cli_str(o, "state"), cli_str(o, "commands"));
                }
        }
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_list = {
        .name = "list",
        .usage = "",
        .summary = "list the vTPMs: UUID, TPM family, attached domain/device, state, commands served",
        .run = run,
};
