/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker's durable state: load at start, restore, write reports, volatile save (worker-state.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ipc-socket.h"
#include "log.h"
#include "ratelimit.h"
#include "statestore.h"
#include "tpmstore-durable.h"
#include "util.h"
#include "worker-state.h"

/* A guest can make state writes fail: at most 10 lines per 10 s. */
#define STATE_LOG_INTERVAL_NS (10ull * 1000000000ull)
#define STATE_LOG_BURST 10u

struct WorkerState {
        /* What START said, less the data key (the store holds the one copy). */
        char uuid[IPC_UUID_LEN];
        uint32_t flags;
        uint32_t uid, gid;
        uint64_t min_perm_seq, vol_seq;
        int ipc_fd;

        /* The state directory's fd from START until statedir owns it (-1 after). */
        int state_fd;
        StateDir *statedir;
        bool files_fixed;
        TpmStore *store;
        /* Read at start, wiped once libtpms has them. */
        uint8_t *perm_blob, *vol_blob;
        size_t perm_len, vol_len;
        RateLimit rl_store;
};

/* Debug lines (state housekeeping) go with the trace switch. */
#define state_debug(s, ...)                             \
        do {                                            \
                if ((s)->flags & IPC_START_TRACE)       \
                        log_msg(LOG_INFO, __VA_ARGS__); \
        } while (0)

int worker_state_new(const IpcStart *start, int ipc_fd, int state_fd, WorkerState **ret) {
        _cleanup_close_ int fd = state_fd;
        WorkerState *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        memcpy(s->uuid, start->uuid, sizeof(s->uuid));
        s->flags = start->flags;
        s->uid = start->uid;
        s->gid = start->gid;
        s->min_perm_seq = start->min_perm_seq;
        s->vol_seq = start->vol_seq;
        s->ipc_fd = ipc_fd;
        s->state_fd = TAKE_FD(fd);
        s->rl_store = RATELIMIT_INIT(STATE_LOG_INTERVAL_NS, STATE_LOG_BURST);
        *ret = s;
        return 0;
}

static void worker_state_free_blobs(WorkerState *s) {
        explicit_wipe(s->perm_blob, s->perm_len);
        explicit_wipe(s->vol_blob, s->vol_len);
        free(s->perm_blob);
        free(s->vol_blob);
        s->perm_blob = s->vol_blob = NULL;
        s->perm_len = s->vol_len = 0;
}

WorkerState *worker_state_free(WorkerState *s) {
        if (!s)
                return NULL;
        s->store = tpm_store_free(s->store); /* wipes the data key */
        s->statedir = statedir_close(s->statedir);
        s->state_fd = safe_close(s->state_fd);
        worker_state_free_blobs(s);
        free(s);
        return NULL;
}

TpmStore *worker_state_store(WorkerState *s) {
        return s->store;
}

int worker_state_dir_fd(const WorkerState *s) {
        return s->statedir ? statedir_fd(s->statedir) : -1;
}

bool worker_state_files_fixed(const WorkerState *s) {
        return s->files_fixed;
}

bool worker_state_log_ok(WorkerState *s) {
        return log_ratelimit(&s->rl_store, "state-write", UINT32_MAX, UINT32_MAX, NULL);
}

static void log_state_refused(const WorkerState *s, StateKind kind, int error) {
        if (error == -ENOENT) {
                log_msg(LOG_INFO, "state file %s/%s: missing although the supervisor has a record of it; "
                         "not starting this vTPM (never a silent reset to a new TPM)",
                         s->uuid, strempty(state_kind_filename(kind)));
                return;
        }
        if (error == -ESTALE) {
                log_msg(LOG_INFO, "state file %s/%s: %s; not starting this vTPM, the file is kept for inspection. "
                         "To recover, put back the vTPM's newest %s, or vtpmd-ctl destroy %s and import it from "
                         "an export (vtpmd-ctl import)", s->uuid, strempty(state_kind_filename(kind)),
                         statestore_strerror(error), strempty(state_kind_filename(kind)), s->uuid);
                return;
        }
        log_msg(LOG_INFO, "state file %s/%s: %s; not starting this vTPM, the file is kept for inspection", s->uuid,
                 strempty(state_kind_filename(kind)), statestore_strerror(error));
}

/* The store's report of every write: tell the supervisor (it records the
 * newest seq for rollback detection and vol_seq for the next start). */
static void worker_on_state(void *userdata, StateKind kind, int error, uint64_t seq) {
        WorkerState *s = userdata;
        IpcMsg m = {
                .type = IPC_STATE,
                .state = { .kind = kind == STATE_KIND_VOLATILE ? IPC_STATE_KIND_VOLATILE : IPC_STATE_KIND_PERMANENT,
                           .error = error < 0 ? (error >= -4095 ? error : -EIO) : 0,
                           .seq = error < 0 ? 0 : seq },
        };

        if (error < 0 && worker_state_log_ok(s))
                log_msg(LOG_INFO, "writing state file %s/%s failed: %s; the previous file is intact%s", s->uuid,
                         strempty(state_kind_filename(kind)), strerror(-error),
                         kind == STATE_KIND_PERMANENT ? ", the TPM answers failure until a write succeeds" : "");
        else if (error >= 0)
                state_debug(s, "state file %s/%s written, seq %" PRIu64, s->uuid, strempty(state_kind_filename(kind)),
                            seq);
        int r = ipc_socket_send(s->ipc_fd, &m, -1);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                log_msg(LOG_INFO, "sending STATE failed: %s", strerror(-r));
}

/* A leftover volatile file (a crash after a stop, or a start without
 * resume) must never be resumed later. */
static int worker_state_remove_stale(WorkerState *s) {
        StateHeader h;
        if (statedir_peek(s->statedir, STATE_KIND_VOLATILE, &h) < 0)
                return 0;
        /* Its seq was used: later writes must still be newer. */
        tpm_store_durable_raise_seq(s->store, h.seq);
        int r = statedir_remove(s->statedir, STATE_KIND_VOLATILE);
        if (r < 0) {
                log_msg(LOG_INFO, "removing stale state file %s/volatile failed: %s", s->uuid, strerror(-r));
                return r;
        }
        state_debug(s, "removed stale state file %s/volatile (seq %" PRIu64 ")", s->uuid, h.seq);
        return 0;
}

/* IPC_START_PEEK (vtpmd-ctl pcrread of a detached vTPM): the blobs are read and checked as for a
 * start (authenticated, the rollback floor, the recorded volatile seq), then the directory is let go
 * at once. Nothing in it is prepared, lent, written or removed: worker_state_restore() runs libtpms
 * on a store in memory, so a saved volatile state stays for the guest's restore. */
static int worker_state_load_peek(WorkerState *s, uint8_t data_key[IPC_DATA_KEY_SIZE]) {
        StateDir *d = NULL;
        uint64_t seq = 0;
        int r;

        r = statedir_from_fd(s->state_fd, s->uuid, &d);
        s->state_fd = -1;
        if (r < 0) {
                explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
                if (r != -EBUSY)
                        log_msg(LOG_INFO, "state directory %s: %s", s->uuid, strerror(-r));
                return r;
        }
        s->statedir = d;
        r = tpm_store_durable_new(s->statedir, data_key, s->min_perm_seq, worker_on_state, s, &s->store);
        explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
        if (r >= 0) {
                r = tpm_store_durable_read(s->store, STATE_KIND_PERMANENT, &s->perm_blob, &s->perm_len, &seq);
                /* Never started: its first start manufactures it, as libtpms does here in memory. */
                if (r == -ENOENT && s->min_perm_seq == 0 && !(s->flags & IPC_START_RESTORE_VOLATILE))
                        r = 0;
                else if (r < 0)
                        log_state_refused(s, STATE_KIND_PERMANENT, r);
        }
        if (r >= 0 && (s->flags & IPC_START_RESTORE_VOLATILE)) {
                r = tpm_store_durable_read(s->store, STATE_KIND_VOLATILE, &s->vol_blob, &s->vol_len, &seq);
                if (r >= 0 && seq != s->vol_seq) {
                        /* Its restore would not resume from it (worker_state_load): no values to show. */
                        log_msg(LOG_INFO, "state file %s/volatile: seq %" PRIu64 ", expected %" PRIu64, s->uuid,
                                seq, s->vol_seq);
                        r = -ESTALE;
                } else if (r < 0)
                        log_state_refused(s, STATE_KIND_VOLATILE, r);
        }
        s->store = tpm_store_free(s->store);
        s->statedir = statedir_close(s->statedir);
        /* Nothing to create, and no directory to create it in. */
        s->files_fixed = true;
        if (r < 0)
                worker_state_free_blobs(s);
        return r;
}

int worker_state_load(WorkerState *s, uint8_t data_key[IPC_DATA_KEY_SIZE]) {
        StateDir *d = NULL;
        uint64_t seq = 0;
        int r;

        if (s->flags & IPC_START_PEEK)
                return worker_state_load_peek(s, data_key);
        r = statedir_from_fd(s->state_fd, s->uuid, &d);
        s->state_fd = -1; /* statedir_from_fd owns it, whatever the result */
        if (r < 0) {
                explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
                log_msg(LOG_INFO, "state directory %s: %s", s->uuid,
                         r == -EBUSY ? "locked by another process" : strerror(-r));
                return r;
        }
        s->statedir = d;
        /* The disk budget (docs/security.md): the files the worker may ever
         * write exist from now on, so confinement can take away creating more. */
        r = statedir_fix_files(d);
        if (r < 0) {
                explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
                log_msg(LOG_INFO, "preparing the state directory %s: %s", s->uuid, strerror(-r));
                return r;
        }
        s->files_fixed = r > 0;
        if (r == 2)
                log_msg(LOG_DEBUG, "the file system of state directory %s cannot exchange names (RENAME_EXCHANGE): "
                        "each state write takes a spare file, which vtpmd makes again", s->uuid);
        /* Under the lock (a previous worker has let go), before the store
         * writes: the worker's files are its uid's and the workers' group's. */
        if (s->uid != 0) {
                r = statedir_lend(d, s->uid, s->gid);
                if (r < 0) {
                        explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
                        log_msg(LOG_INFO, "lending the state directory to uid %u failed: %s", s->uid, strerror(-r));
                        return r;
                }
        }

        r = tpm_store_durable_new(s->statedir, data_key, s->min_perm_seq, worker_on_state, s, &s->store);
        explicit_wipe(data_key, IPC_DATA_KEY_SIZE);
        if (r < 0) {
                log_msg(LOG_INFO, "opening the state store of %s failed: %s", s->uuid, strerror(-r));
                return r;
        }
        tpm_store_durable_raise_seq(s->store, s->vol_seq);

        r = tpm_store_durable_read(s->store, STATE_KIND_PERMANENT, &s->perm_blob, &s->perm_len, &seq);
        if (r == -ENOENT && s->min_perm_seq == 0 && !(s->flags & IPC_START_RESTORE_VOLATILE)) {
                /* A new vTPM: libtpms manufactures it and stores permall. */
                log_msg(LOG_INFO, "no permanent state yet: manufacturing a new TPM");
        } else if (r < 0) {
                /* A missing permall the supervisor has a record of is a
                 * deletion, not a new vTPM: never a silent reset. */
                log_state_refused(s, STATE_KIND_PERMANENT, r);
                return r;
        } else
                state_debug(s, "permanent state: %zu bytes, seq %" PRIu64, s->perm_len, seq);

        if (!(s->flags & IPC_START_RESTORE_VOLATILE))
                return worker_state_remove_stale(s);

        r = tpm_store_durable_read(s->store, STATE_KIND_VOLATILE, &s->vol_blob, &s->vol_len, &seq);
        if ((r >= 0 && seq != s->vol_seq) || r == -ENOENT) {
                /* Not the recorded save: gone (resumed once already, vtpmd killed before it
                 * recorded that) or another one (saved after the supervisor died, or a copy
                 * put back). Resuming it could roll PCRs back; refusing would leave the guest
                 * without a TPM. A power loss is what a real TPM would give. */
                if (r >= 0)
                        log_msg(LOG_WARNING, "state file %s/volatile: seq %" PRIu64 ", expected %" PRIu64
                                 "; not resuming from it: starting as after a power loss (PCRs and sessions "
                                 "reset, NV kept)", s->uuid, seq, s->vol_seq);
                else
                        log_msg(LOG_WARNING, "state file %s/volatile (seq %" PRIu64 ") is gone; starting as "
                                 "after a power loss (PCRs and sessions reset, NV kept)", s->uuid, s->vol_seq);
                explicit_wipe(s->vol_blob, s->vol_len);
                free(s->vol_blob);
                s->vol_blob = NULL;
                s->vol_len = 0;
                s->flags &= ~(uint32_t) IPC_START_RESTORE_VOLATILE;
                return worker_state_remove_stale(s);
        }
        if (r < 0) {
                log_state_refused(s, STATE_KIND_VOLATILE, r);
                return r;
        }
        return 0;
}

int worker_state_restore(WorkerState *s, TpmFamily family, TpmInstance **ret, IpcStage *ret_stage) {
        TpmInstance *tpm = NULL;
        int r;

        if (!s->store) {
                r = tpm_store_memory_new(&s->store);
                if (r < 0) {
                        *ret_stage = IPC_STAGE_TPM;
                        return r;
                }
        }
        r = tpm_instance_restore(family, s->store, s->perm_blob, s->perm_len, s->vol_blob, s->vol_len, &tpm);
        bool resumed = s->vol_blob;
        worker_state_free_blobs(s);
        if (r < 0) {
                int e = tpm_store_durable_take_error(s->store);
                *ret_stage = e < 0 ? IPC_STAGE_STATE : IPC_STAGE_TPM;
                return e < 0 ? e : r;
        }
        if (resumed && !(s->flags & IPC_START_PEEK)) {
                /* The file must never be resumed again (a crash after this
                 * point is a power loss, not a second resume). */
                r = tpm_store_durable_remove(s->store, STATE_KIND_VOLATILE);
                if (r < 0) {
                        log_msg(LOG_INFO, "removing state file %s/volatile after resuming from it failed: %s", s->uuid,
                                 strerror(-r));
                        tpm_instance_free(tpm);
                        *ret_stage = IPC_STAGE_STATE;
                        return r;
                }
                log_msg(LOG_INFO, "resumed from the saved volatile state (seq %" PRIu64 ")", s->vol_seq);
        }
        *ret = tpm;
        return resumed;
}

void worker_state_save_volatile(WorkerState *s, TpmInstance *tpm) {
        _cleanup_free_ uint8_t *v = NULL;
        size_t len = 0;
        int r = tpm_instance_save_volatile(tpm, &v, &len);
        if (r < 0) {
                log_msg(LOG_INFO, "saving volatile state failed: %s", strerror(-r));
                return;
        }
        if (s->flags & IPC_START_DURABLE) {
                uint64_t seq = 0;
                r = tpm_store_durable_write(s->store, STATE_KIND_VOLATILE, v, len, &seq);
                if (r >= 0)
                        log_msg(LOG_INFO, "volatile state saved (%zu bytes, seq %" PRIu64 ")", len, seq);
        }
        explicit_wipe(v, len);
}
