/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl create: a new vTPM, optionally manufactured (EKs, certificates, PCR banks). */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "util.h"
#include "vtpmd-ctl.h"

static int run(CliContext *ctx, int argc, char **argv) {
        enum { OPT_TPM = 0x100, OPT_UUID, OPT_EK, OPT_BANKS, OPT_EK_CERT, OPT_PLATFORM_CERT };
        static const struct option options[] = {
                CLI_COMMON_OPTIONS,
                { "tpm", required_argument, NULL, OPT_TPM },
                { "uuid", required_argument, NULL, OPT_UUID },
                { "ek", required_argument, NULL, OPT_EK },
                { "pcr-banks", required_argument, NULL, OPT_BANKS },
                { "ek-cert", no_argument, NULL, OPT_EK_CERT },
                { "platform-cert", no_argument, NULL, OPT_PLATFORM_CERT },
                {},
        };
        CtlRequest req = { .op = CTL_OP_CREATE };
        CliReply reply = {};
        int c, r;

        while ((c = getopt_long(argc, argv, ":h", options, NULL)) >= 0) {
                r = cli_common_option(ctx, &cmd_create, c, argv);
                if (r == CLI_CONTINUE)
                        continue;
                if (r >= 0)
                        return r;
                switch (c) {
                case OPT_TPM:
                        if (tpm_family_from_string(optarg, &req.family) < 0)
                                return cli_fail("create: --tpm: expected 2.0 or 1.2, got \"%.16s\"", optarg);
                        req.has_family = true;
                        break;
                case OPT_UUID:
                        if (cli_parse_uuid(optarg, req.uuid) < 0)
                                return EXIT_FAILURE;
                        req.has_uuid = true;
                        break;
                case OPT_EK:
                        if (ctl_parse_ek_list(optarg, &req.eks) < 0)
                                return cli_fail("create: --ek: expected rsa2048, ecc-p256 or both, got \"%.32s\"",
                                                optarg);
                        break;
                case OPT_BANKS:
                        if (ctl_parse_bank_list(optarg, &req.pcr_banks) < 0)
                                return cli_fail("create: --pcr-banks: expected a list of sha1, sha256, sha384, "
                                                "sha512, got \"%.64s\"", optarg);
                        break;
                case OPT_EK_CERT:
                        req.ek_cert = true;
                        break;
                case OPT_PLATFORM_CERT:
                        req.platform_cert = true;
                        break;
                default:
                        return cli_fail("create: unexpected option");
                }
        }
        if (cli_positional(&cmd_create, argc, argv, 0) < 0)
                return EXIT_FAILURE;
        if (req.ek_cert && !req.eks)
                req.eks = CTL_EK_RSA2048 | CTL_EK_ECC_P256; /* a certificate needs its EK */
        /* Only TPM 2.0 vTPMs are manufactured: vtpmd says so, as it also knows its default family. */

        if (cli_call(ctx, &req, -1, &reply) < 0)
                return EXIT_FAILURE;
        if (ctx->json)
                cli_print_json(reply.result);
        else
                printf("%s\n", cli_str(reply.result, "uuid"));
        cli_reply_done(&reply);
        return EXIT_SUCCESS;
}

const Command cmd_create = {
        .name = "create",
        .usage = "[--tpm 2.0|1.2] [--uuid UUID] [--ek rsa2048|ecc-p256|both] [--pcr-banks LIST] [--ek-cert] "
                 "[--platform-cert]",
        .summary = "create a vTPM and print its UUID",
        .run = run,
};
