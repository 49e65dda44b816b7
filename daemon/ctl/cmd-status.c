/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl status: the daemon and its host TPM. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        static const struct {
                const char *key, *label;
        } rows[] = {
                { "version", "Version" },       { "state_dir", "State directory" }, { "key_source", "Key source" },
                { "host_tpm", "Host TPM" },     { "host_tpm_error", "Host TPM error" }, { "vtpms", "vTPMs" },
                { "devices", "Devices" },       { "attached", "Attached" },   { "connected", "Connected" },
                { "failed", "Failed" },         { "auto_create", "Auto-create" },
                { "worker_spawn", "Worker start" },
        };
        CtlRequest req = { .op = CTL_OP_STATUS };
        CliReply reply = {};
        int r;

        r = cli_simple_args(ctx, &cmd_status, argc, argv, 0);
        if (r != CLI_CONTINUE)
                return r;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                        if (json_object_object_get_ex(reply.result, rows[i].key, NULL))
                                printf("%-16s %s\n", rows[i].label, cli_str(reply.result, rows[i].key));
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_status = {
        .name = "status",
        .usage = "",
        .summary = "show vtpmd's version, host TPM, and counts of vTPMs and devices",
        .run = run,
};
