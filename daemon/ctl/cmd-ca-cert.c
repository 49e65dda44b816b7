/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl ca-cert: the local CA's certificate (PEM), to verify EK certificates against. */
#include <stdio.h>

#include "vtpmd-ctl.h"

static void print(const CliReply *reply) {
        fputs(cli_str(reply->result, "pem"), stdout);
}

const Command cmd_ca_cert = {
        .name = "ca-cert",
        .usage = "",
        .summary = "print the certificate of vtpmd's local CA (PEM), which issues the EK certificates",
        .op = CTL_OP_CA_CERT,
        .print = print,
};
