/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl create: a new vTPM, optionally manufactured (EKs, certificates, PCR banks). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "vtpmd-ctl.h"

enum { OPT_TPM = 0x100, OPT_UUID, OPT_EK, OPT_BANKS, OPT_EK_CERT, OPT_PLATFORM_CERT };

static int option(CliCall *call, int c, const char *arg) {
        CtlRequest *req = &call->req;

        switch (c) {
        case OPT_TPM:
                if (tpm_family_from_string(arg, &req->family) < 0)
                        return cli_fail("create: --tpm: expected 2.0 or 1.2, got \"%.16s\"", arg);
                req->has_family = true;
                return 0;
        case OPT_UUID:
                if (cli_parse_uuid(arg, req->uuid) < 0)
                        return EXIT_FAILURE;
                req->has_uuid = true;
                return 0;
        case OPT_EK:
                if (ctl_parse_ek_list(arg, &req->eks) < 0)
                        return cli_fail("create: --ek: expected rsa2048, ecc-p256 or both, got \"%.32s\"", arg);
                return 0;
        case OPT_BANKS:
                if (ctl_parse_bank_list(arg, &req->pcr_banks) < 0)
                        return cli_fail("create: --pcr-banks: expected a list of sha1, sha256, sha384, sha512, "
                                        "got \"%.64s\"", arg);
                return 0;
        case OPT_EK_CERT:
                req->ek_cert = true;
                return 0;
        case OPT_PLATFORM_CERT:
                req->platform_cert = true;
                return 0;
        }
        return cli_fail("create: unexpected option");
}

static int prepare(CliCall *call, const char *arg) {
        if (call->req.ek_cert && !call->req.eks)
                call->req.eks = CTL_EK_RSA2048 | CTL_EK_ECC_P256; /* a certificate needs its EK */
        /* Only TPM 2.0 vTPMs are manufactured: vtpmd says so, as it also knows its default family. */
        return 0;
}

static void print(const CliReply *reply) {
        printf("%s\n", cli_str(reply->result, "uuid"));
}

const Command cmd_create = {
        .name = "create",
        .usage = "[--tpm 2.0|1.2] [--uuid UUID] [--ek rsa2048|ecc-p256|both] [--pcr-banks LIST] [--ek-cert] "
                 "[--platform-cert]",
        .summary = "create a vTPM and print its UUID",
        .op = CTL_OP_CREATE,
        .options = (const struct option[]){
                { "tpm", required_argument, NULL, OPT_TPM },
                { "uuid", required_argument, NULL, OPT_UUID },
                { "ek", required_argument, NULL, OPT_EK },
                { "pcr-banks", required_argument, NULL, OPT_BANKS },
                { "ek-cert", no_argument, NULL, OPT_EK_CERT },
                { "platform-cert", no_argument, NULL, OPT_PLATFORM_CERT },
                {},
        },
        .option = option,
        .prepare = prepare,
        .print = print,
};
