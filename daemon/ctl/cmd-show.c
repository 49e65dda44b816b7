/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl show UUID: one vTPM in detail. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        static const struct {
                const char *key, *label;
        } rows[] = {
                { "uuid", "UUID" },
                { "tpm", "TPM" },
                { "state", "State" },
                { "domid", "Domain" },
                { "devid", "Device" },
                { "commands", "Commands" },
                { "created", "Created" },
                { "state_size", "State size" },
                { "ek_rsa_sha256", "EK RSA SHA-256" },
                { "ek_ecc_sha256", "EK ECC SHA-256" },
                { "ek_rsa_cert", "EK RSA cert" },
                { "ek_ecc_cert", "EK ECC cert" },
                { "last_error", "Last error" },
        };
        CtlRequest req = { .op = CTL_OP_SHOW };
        CliReply reply = {};
        int r;

        r = cli_simple_args(ctx, &cmd_show, argc, argv, 1);
        if (r != CLI_CONTINUE)
                return r;
        if (cli_parse_uuid(argv[optind], req.uuid) < 0)
                return EXIT_FAILURE;
        req.has_uuid = true;
        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                        printf("%-15s %s%s\n", rows[i].label, cli_str(reply.result, rows[i].key),
                               streq(rows[i].key, "state_size") ? " bytes" : "");
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_show = {
        .name = "show",
        .usage = "UUID",
        .summary = "show a vTPM: the list fields, creation time, state size, EK hashes and certificates, last error",
        .run = run,
};
