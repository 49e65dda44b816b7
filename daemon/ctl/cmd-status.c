/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd-ctl status: the daemon and its host TPM. */
#include "util.h"
#include "vtpmd-ctl.h"

static void print(const CliReply *reply) {
        static const CliRow rows[] = {
                { "version", "Version" },       { "libtpms", "libtpms" },     { "openssl", "OpenSSL" },
                { "tpm2_tss", "tpm2-tss" },     { "state_dir", "State directory" }, { "key_source", "Key source" },
                { "host_tpm", "Host TPM" },     { "host_tpm_error", "Host TPM error" },
                { "host_tpm_tcti", "Host TPM TCTI" }, { "srk", "SRK" },     { "pcr_policy", "PCR policy" },
                { "counter_index", "Counter index" }, { "counter", "Counter" }, { "vtpms", "vTPMs" },
                { "devices", "Devices" },       { "attached", "Attached" },   { "connected", "Connected" },
                { "failed", "Failed" },         { "health", "Health" },     { "degraded", "Degraded" },
                { "auto_create", "Auto-create" },
                { "worker_spawn", "Worker start" },
        };
        /* Only what this vtpmd reports (a key-file host has no host TPM rows). */
        cli_print_rows(reply->result, rows, ELEMENTSOF(rows), 16, true);
}

const Command cmd_status = {
        .name = "status",
        .usage = "",
        .summary = "show vtpmd's version, host TPM, and counts of vTPMs and devices",
        .op = CTL_OP_STATUS,
        .print = print,
};
