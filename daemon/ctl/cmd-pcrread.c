/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl pcrread UUID [BANK:PCRS]: an attached vTPM's PCRs, read between two of its guest's commands;
 * a detached one's from a read-only copy of its state (those its guest resumes with, or of a TPM reset). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vtpmd-ctl.h"

static int second(CliCall *call, const char *arg) {
        if (ctl_parse_pcr_selection(arg, &call->req.bank, &call->req.pcrs) < 0)
                return cli_usage_error("pcrread: not a PCR selection: \"%.64s\" (expected BANK or BANK:all or "
                                       "BANK:N,N,... with BANK sha1, sha256, sha384 or sha512 and N 0..23)", arg);
        return 0;
}

/* As tpm2_pcrread prints them. */
static void print(const CliReply *reply) {
        json_object *pcrs;

        json_object *state;

        /* A detached vTPM that is not suspended has no values of its own yet. */
        if (json_object_object_get_ex(reply->result, "state", &state) &&
            strcmp(json_object_get_string(state), "reset") == 0)
                printf("# %s is detached: the values of its next start (a TPM reset)\n",
                       cli_str(reply->result, "uuid"));
        printf("  %s:\n", cli_str(reply->result, "bank"));
        if (!json_object_object_get_ex(reply->result, "pcrs", &pcrs))
                return;
        for (unsigned i = 0; i < CTL_PCR_COUNT; i++) {
                char key[4];
                json_object *v;

                snprintf(key, sizeof(key), "%u", i);
                if (json_object_object_get_ex(pcrs, key, &v) && v)
                        printf("    %-2u: 0x%s\n", i, json_object_get_string(v));
        }
}

const Command cmd_pcrread = {
        .name = "pcrread",
        .usage = "UUID|GUEST [BANK:PCRS]",
        .summary = "print the PCRs of a vTPM as tpm2_pcrread does (default sha256:all), without disturbing "
                   "its guest or changing its state",
        .op = CTL_OP_PCRREAD,
        .n_positional = 1,
        .uuid_argument = true,
        .second = second,
        .print = print,
};
