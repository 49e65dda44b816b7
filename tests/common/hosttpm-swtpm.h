/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A real swtpm as the host TPM 2.0 in tests (research tss-sealing.md §1.1):
 * unix sockets in a private mkdtemp directory, so tests run in parallel
 * without ports; a hex-dump log (level 20) of every command and response.
 * swtpm dies with the test process (PR_SET_PDEATHSIG) even if the test crashes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HostTpmSim HostTpmSim;

/* A fresh TPM (new seeds) in a new temporary directory; waits until it listens. */
int hosttpm_sim_start(HostTpmSim **ret);
/* Stops swtpm (SIGTERM, as a power loss: no TPM2_Shutdown) and starts it again
 * on the same state: PCRs are reset, NV and seeds are kept. */
int hosttpm_sim_restart(HostTpmSim *s);
/* Kills swtpm, waits for it and removes the directory. Accepts NULL. */
HostTpmSim *hosttpm_sim_stop(HostTpmSim *s);

const char *hosttpm_sim_tcti(const HostTpmSim *s); /* "swtpm:path=DIR/tpm.sock" */
const char *hosttpm_sim_dir(const HostTpmSim *s);
const char *hosttpm_sim_log_path(const HostTpmSim *s);

/* Runs a tpm2-tools command (argv[0] = tool name, "-T <tcti>" is appended).
 * Returns its exit status (>= 0) or a negative errno; *ret_out (may be NULL)
 * receives its stdout, NUL-terminated. */
int hosttpm_sim_tool(HostTpmSim *s, const char *const *argv, char **ret_out);

/* One command or response from the swtpm log. */
typedef struct HostTpmSimMsg {
        bool command; /* SWTPM_IO_Read: host -> TPM; else SWTPM_IO_Write: TPM -> host */
        uint8_t *data;
        size_t len;
} HostTpmSimMsg;

/* Parses the level-20 log: every TPM command and response, in order. */
int hosttpm_sim_log_messages(HostTpmSim *s, HostTpmSimMsg **ret, size_t *ret_n);
void hosttpm_sim_msgs_free(HostTpmSimMsg *m, size_t n);
