/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl show UUID: one vTPM in detail. */
#include "util.h"
#include "vtpmd-ctl.h"

static void print(const CliReply *reply) {
        static const CliRow rows[] = {
                { "uuid", "UUID" },
                { "tpm", "TPM" },
                { "state", "State" },
                { "domid", "Domain" },
                { "name", "Guest name" },
                { "devid", "Device" },
                { "commands", "Commands" },
                { "created", "Created" },
                { "state_size", "State size", " bytes" },
                { "suspended_at", "Suspended at" },
                { "suspended_from", "Suspended from" },
                { "ek_rsa_sha256", "EK RSA SHA-256" },
                { "ek_ecc_sha256", "EK ECC SHA-256" },
                { "ek_rsa_cert", "EK RSA cert" },
                { "ek_ecc_cert", "EK ECC cert" },
                { "last_error", "Last error" },
        };
        cli_print_rows(reply->result, rows, ELEMENTSOF(rows), 15, false);
}

const Command cmd_show = {
        .name = "show",
        .usage = "UUID|GUEST",
        .summary = "show a vTPM: the list fields, creation time, state size, EK hashes and certificates, last error",
        .op = CTL_OP_SHOW,
        .n_positional = 1,
        .uuid_argument = true,
        .print = print,
};
