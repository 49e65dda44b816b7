/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl list: every vTPM, attached or not. */
#include <json-c/json.h>
#include <stdio.h>

#include "vtpmd-ctl.h"

#define ROW "%-36s  %-3s  %5s  %-16s  %5s  %-10s  %s\n"

static void print(const CliReply *reply) {
        printf(ROW, "UUID", "TPM", "DOMID", "NAME", "DEVID", "STATE", "COMMANDS");
        for (size_t i = 0; i < json_object_array_length(reply->items); i++) {
                json_object *o = json_object_array_get_idx(reply->items, i);
                printf(ROW, cli_str(o, "uuid"), cli_str(o, "tpm"), cli_str(o, "domid"), cli_str(o, "name"),
                       cli_str(o, "devid"),
                       cli_str(o, "state"), cli_str(o, "commands"));
        }
}

const Command cmd_list = {
        .name = "list",
        .usage = "",
        .summary = "list the vTPMs: UUID, TPM family, attached domain (its id and name)/device, state, commands served",
        .op = CTL_OP_LIST,
        .replies_list = true,
        .print = print,
};
