/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd's settings: defaults, then the configuration file (vtpmd.conf(5),
 * /etc/vtpmd/vtpmd.conf unless --config says otherwise), then the command line,
 * which wins. Every file key has a command-line flag, and both go through the
 * same per-option parser, so a value means the same in both places.
 *
 * Note: the header name config.h is taken by meson's generated build
 * configuration, hence vtpmd-config.h.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "state.h"
#include "tpm.h"

#define VTPMD_DEFAULT_CONTROL_PATH "/run/vtpmd/control"
#define VTPMD_DEFAULT_INITWAIT_MS 100u
#define VTPMD_DEFAULT_COUNTER_INTERVAL_S 60u
/* Workers' uids and the group shared with vtpmd (vtpmd.conf(5) WorkerIDs=):
 * 0x7FFC0000-0x7FFCFFFF, in the range systemd leaves unused between the
 * container ranges systemd-nspawn hands out (524288-1879048191) and its
 * foreign-uid range (2147352576-2147418111), far above its dynamic users
 * (61184-65519) and above every block useradd writes to /etc/subuid
 * (100000 up to SUB_UID_MAX, 600100000 by default). Below 2^31, where ids
 * stop being safe in signed 32-bit fields. */
#define VTPMD_DEFAULT_WORKER_ID_FIRST 2147221504u
#define VTPMD_DEFAULT_WORKER_ID_LAST 2147287039u
/* The default before it (300000-365535), which overlapped Debian's fourth
 * /etc/subuid block: vTPM directories lent under it are taken back. */
#define VTPMD_PREVIOUS_WORKER_ID_FIRST 300000u
#define VTPMD_DEFAULT_SUBUID_FILE "/etc/subuid"
#define VTPMD_DEFAULT_SUBGID_FILE "/etc/subgid"
#define VTPMD_DEFAULT_WORKER_MEMORY_MAX (512ull << 20)
/* A configuration file is a few hundred bytes; refuse to slurp /dev/zero. */
#define VTPMD_CONFIG_MAX_SIZE (1024u * 1024u)

typedef struct VtpmdConfig {
        /* command line only: development and tests */
        const char *platform_spec; /* "xen" or "sim:DIR" */
        uint32_t self_domid;
        bool trace;
        const char *worker_path; /* NULL: next to vtpmd, else the libexec directory */
        const char *subuid_path, *subgid_path; /* WorkerIDs= must not overlap them */

        /* file and command line */
        TpmFamily default_family;
        int log_level;
        uint64_t initwait_dwell_ns;
        bool auto_create;
        const char *control_path;
        gid_t control_gid;
        bool have_control_gid;
        StateConfig state; /* default_family is copied in by the caller */
        uint32_t worker_id_first, worker_id_last; /* both 0: workers keep vtpmd's uid */
        uint64_t worker_memory_max;               /* 0: no limit */
        bool worker_fork_server;                  /* WorkerSpawn=fork-server (spawn.h) */
        const char *ek_ca_cert;                   /* EkCaCertificate=, EkCaKey=: the admin's CA, both or */
        const char *ek_ca_key;                    /* neither (NULL: vtpmd's local CA) */

        /* every string above that is not a literal, freed by config_done() */
        char **strings;
        size_t n_strings;
} VtpmdConfig;

void config_init(VtpmdConfig *c);
void config_done(VtpmdConfig *c);

/* Applies `path` on top of c. A missing file is fine unless must_exist. On
 * error returns < 0 with *ret_error = "PATH:LINE: message" (or "PATH: reason"
 * for I/O errors), to be freed by the caller; c may then be partly updated. */
int config_load_file(VtpmdConfig *c, const char *path, bool must_exist, char **ret_error);

/* The whole command line: --config/--no-config first, then the file, then
 * every other flag in order. Returns 0 to run, 1 if --help or --version was
 * printed (exit 0), or < 0 with *ret_error (without a "vtpmd: " prefix). */
int config_parse_argv(VtpmdConfig *c, int argc, char **argv, char **ret_error);
