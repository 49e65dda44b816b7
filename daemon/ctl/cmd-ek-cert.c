/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl ek-cert UUID: the vTPM's EK certificates (PEM), as manufactured (create --ek-cert). */
#include <json-c/json.h>
#include <stdio.h>

#include "vtpmd-ctl.h"

static void print(const CliReply *reply) {
        static const char *const keys[] = { "rsa2048", "ecc_p256" };

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                json_object *v;
                if (json_object_object_get_ex(reply->result, keys[i], &v) && v)
                        fputs(json_object_get_string(v), stdout);
        }
}

const Command cmd_ek_cert = {
        .name = "ek-cert",
        .usage = "UUID|GUEST",
        .summary = "print the vTPM's EK certificates (PEM: RSA 2048, then ECC P-256), attached or not",
        .op = CTL_OP_EK_CERT,
        .n_positional = 1,
        .uuid_argument = true,
        .print = print,
};
