/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl status: the daemon and its host TPM. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        static const struct option options[] = { CLI_COMMON_OPTIONS, {} };
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
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = cli_common_option(ctx, &cmd_status, c, argv);
                if (r == CLI_CONTINUE)
                        continue;
                return r >= 0 ? r : cli_fail("status: unexpected option");
        }
        if (cli_positional(&cmd_status, argc, argv, 0) < 0)
                return EXIT_FAILURE;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                        json_object *v;
                        if (json_object_object_get_ex(reply.result, rows[i].key, &v))
                                printf("%-16s %s\n", rows[i].label, cli_str(reply.result, rows[i].key));
                }
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_status = {
        .name = "status",
        .usage = "",
        .summary = "show vtpmd's version, host TPM, and counts of vTPMs and devices",
        .run = run,
};
