/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The supervisor's side of vTPM state: the master key (sealed to the host TPM,
 * or a development key file), the rollback manifest and the host-TPM counter,
 * and the per-vTPM directory and data key handed to each worker.
 *
 * Threat model (what is protected, and the window) is in docs/state.md.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"
#include "pool.h"
#include "sealer.h"
#include "statestore.h"
#include "tpm.h"

typedef enum KeySource {
        KEY_SOURCE_TPM,
        KEY_SOURCE_FILE,
} KeySource;

typedef struct StateConfig {
        const char *state_dir;
        const char *pool_dir;       /* NULL: no pool; else vTPM directories on this shared file system */
        KeySource key_source;
        const char *key_file;       /* KEY_SOURCE_FILE */
        HostTpmConfig host_tpm;     /* KEY_SOURCE_TPM */
        uint64_t counter_interval_ns; /* at most one host-TPM counter increment per interval */
        TpmFamily default_family;
} StateConfig;

typedef struct sd_event sd_event;
typedef struct VtpmState VtpmState;

/* What a worker needs for one vTPM. */
typedef struct VtpmKeys {
        int dir_fd;                        /* O_DIRECTORY of <root>/<uuid>, unlocked, owned by the caller */
        uint8_t data_key[CRYPTO_KEY_SIZE]; /* wipe after use */
        TpmFamily family;
        uint64_t min_perm_seq;
        uint64_t vol_seq; /* 0: no saved volatile state */
        StateSuspend suspend; /* .usec != 0: suspended (with vol_seq): only a resume may use it */
        bool created;     /* the vTPM was created just now */
} VtpmKeys;

/* Opens the state root, obtains the master key, checks the manifest against
 * the host counter. On failure logs one clear line and returns < 0 (the daemon
 * exits); nothing on disk has been changed then. */
int vtpm_state_open(const StateConfig *c, VtpmState **ret);
/* Commits the manifest (and the counter) and frees everything. */
VtpmState *vtpm_state_close(VtpmState *s);
/* From now on vtpm_state_changed() batches its commits on this loop. */
int vtpm_state_attach_event(VtpmState *s, sd_event *event);

/* Where the vTPM directories are: the state root, or in a pool its shared vtpms/. */
StateRoot *vtpm_state_root(VtpmState *s);
/* What wraps the vTPMs' data keys (CRYPTO_KEY_SIZE bytes): the master key, or in a pool
 * the pool key; NULL while this host is not a member of its pool. */
const uint8_t *vtpm_state_master_key(VtpmState *s);
/* The host's own root and master key (the CA, the manifest): never shared. */
StateRoot *vtpm_state_local_root(VtpmState *s);
const uint8_t *vtpm_state_local_key(VtpmState *s);

/* The pool (StateConfig.pool_dir), or NULL; this host's fingerprint and whether it is a member. */
Pool *vtpm_state_pool(VtpmState *s, const char **ret_fp, bool *ret_member);
/* Whether the storage of a vTPM's directory answers (opened afresh, its permanent
 * state's header read): 0, or the error a new worker would meet. */
int vtpm_state_storage_probe(VtpmState *s, const char *uuid);
/* After a worker's state write: the spares of its directory made again
 * (statedir_top_up_spares), for the worker's uid:gid. */
int vtpm_state_top_up_spares(VtpmState *s, const char *uuid, uint32_t uid, uint32_t gid);
/* pool init: the first member (-EEXIST: a member already, or the pool exists). */
int vtpm_state_pool_init(VtpmState *s);
/* pool join: this host asks (its point in requests/); -EEXIST if it is a member. */
int vtpm_state_pool_join(VtpmState *s);
/* Looks again whether this host was admitted: 1 a member (the key unlocked), 0 not yet. */
int vtpm_state_pool_refresh(VtpmState *s);
/* pool admit FP / pool remove FP; -ENOKEY: this host is not a member itself.
 * Removing this host itself (pool leave) also forgets the pool key here.
 * -ENOTEMPTY: FP is the only member (the pool key, and with it every vTPM in
 * the pool, would be lost). */
int vtpm_state_pool_admit(VtpmState *s, const char *fp);
int vtpm_state_pool_remove(VtpmState *s, const char *fp);
/* The host TPM, or NULL in key-file mode. */
HostTpm *vtpm_state_host_tpm(VtpmState *s);
/* How many commands the host TPM was sent while opening (the boot-storm figure). */
unsigned vtpm_state_host_tpm_commands(VtpmState *s);

/* Opens (or, with create, creates) the vTPM's directory and unwraps its data key.
 * Logs the exact file and reason on failure (with domid/devid), but for
 * -EBUSY: a worker still holds the directory, the caller tries again. */
int vtpm_state_prepare(VtpmState *s, const char *uuid, bool create, TpmFamily family, uint32_t domid,
                       uint32_t devid, VtpmKeys *ret);
void vtpm_keys_done(VtpmKeys *k);

/* A worker reported a durable write (kind PERMANENT or VOLATILE, seq). */
void vtpm_state_record(VtpmState *s, const char *uuid, StateKind kind, uint64_t seq);
/* The saved volatile state was consumed by a worker (it removed the file); a suspend ends with it.
 * Returns whether there was anything to consume. */
bool vtpm_state_volatile_consumed(VtpmState *s, const char *uuid);
/* The vTPM's guest was suspended (xl save, xendomains, xl migrate): the
 * volatile state its worker saves next is kept for a resume. Takes effect
 * once that save is recorded (vtpm_state_record VOLATILE). */
void vtpm_state_suspend(VtpmState *s, const char *uuid, const StateSuspend *su);
/* True with *ret if uuid is suspended (its suspend record and saved volatile state). */
bool vtpm_state_suspended(VtpmState *s, const char *uuid, StateSuspend *ret);
/* The permanent state's sequence number the manifest records for uuid (0: none). */
uint64_t vtpm_state_perm_seq(VtpmState *s, const char *uuid);
/* How a durable write of uuid's state of kind went (a worker's IPC_STATE): 0, or the
 * negative errno of its failure (a full disk, EIO), which show and status report until
 * a later write of that kind succeeds or the vTPM is forgotten. */
void vtpm_state_write_result(VtpmState *s, const char *uuid, StateKind kind, int error);
/* The failure of uuid's last durable write (its kind in *ret_kind), or 0. */
int vtpm_state_write_error(VtpmState *s, const char *uuid, StateKind *ret_kind);
/* For status: how many vTPMs have a failed write outstanding (*ret_error: one of the errors),
 * and the last manifest commit's error (0: it succeeded). */
unsigned vtpm_state_write_errors(VtpmState *s, int *ret_error, int *ret_commit_error);
/* Drops uuid's manifest record (the vTPM is gone, or is about to be created afresh). */
void vtpm_state_forget(VtpmState *s, const char *uuid);
/* Something in the manifest changed: it is written soon, batched (at once
 * without an event loop). */
void vtpm_state_changed(VtpmState *s);
/* ---- live migration between pool hosts (docs/pool.md) ----
 * Destination: a device whose vTPM another pool host holds asks for it
 * (POOL/handovers/<uuid>.request), and resumes from the holder's grant.
 * Source: a request whose domain handle is that of a local suspended domain
 * is answered by letting the worker go and writing the grant (the suspend,
 * the saved volatile state's and the permanent state's sequence numbers). */
int vtpm_state_handover_request(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE],
                                uint32_t domid, uint32_t devid);
void vtpm_state_handover_cancel(VtpmState *s, const char *uuid);
/* A grant for the domain handle: 1 with *ret, the manifest then records the vTPM as
 * suspended with the grant's state (a resume follows), the grant and request removed;
 * 0 none (or another domain's). */
int vtpm_state_handover_take(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE],
                             StateHandover *ret);
/* The uuids that hosts asked for; -ENOKEY without a pool key. */
int vtpm_state_handover_requests(VtpmState *s, char ***ret);
/* One request; *ret_own: this host wrote it. */
int vtpm_state_handover_read_request(VtpmState *s, const char *uuid, StateHandover *ret, bool *ret_own);
/* Grants uuid if it is suspended here for handle: 1 done, 0 not suspended so. */
int vtpm_state_handover_grant(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE]);
/* The worker of uuid was told to let go for handle: once it exited (vtpm_state_handover_released),
 * what it saved is granted. 1 noted, 0 already, -EBUSY too many at once. */
int vtpm_state_handover_begin(VtpmState *s, const char *uuid, const uint8_t handle[STATEFILE_UUID_SIZE]);
int vtpm_state_handover_released(VtpmState *s, const char *uuid);
/* The writer's fingerprint in hex. */
void state_handover_host_hex(const StateHandover *h, char ret[POOL_KEY_FINGERPRINT_HEX_SIZE]);

/* Writes the manifest if dirty; increments the host counter if the interval
 * allows it or force is set. Returns < 0 on failure (logged). */
int vtpm_state_commit(VtpmState *s, bool force);
