/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-worker: one guest's vTPM. Started by vtpmd with fd 3 = its end of a
 * SOCK_SEQPACKET socketpair (protocol/ipc.h), by exec or forked by
 * `vtpmd-worker --fork-server` (spawn.h). It maps the guest's tpmif page,
 * binds the guest's event channel, runs libtpms on a TPM thread, and serves
 * the page (DESIGN.md "Data path") from the I/O thread (main thread), which
 * also owns the event channel and the IPC socket.
 *
 * Threads: the I/O thread hands a private copy of a command to the TPM thread
 * under a mutex; the TPM thread signals completion on an eventfd. libtpms is
 * touched only by the TPM thread while a command is in flight, except for
 * TPMLIB_CancelCommand from the I/O thread (the pattern libtpms supports).
 * Quick commands (tpm_command_is_quick(): GetRandom, PCR_Extend, NV_Write...)
 * have nothing worth cancelling and run on the I/O thread itself while the
 * TPM thread is idle, which saves two thread hand-offs per command.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "confine.h"
#include "crypto.h"
#include "tpm-instance.h"
#include "evtchn.h"
#include "gnttab.h"
#include "ipc.h"
#include "ipc-socket.h"
#include "platform.h"
#include "spawn.h"
#include "statestore.h"
#include "tpmstore-durable.h"
#include "tpmif.h"
#include "log.h"
#include "page-server.h"
#include "ratelimit.h"
#include "util.h"

#define IPC_FD WORKER_IPC_FD
#define WORKER_OPEN_FILES_MAX 64u
#define WORKER_FILE_SIZE_MAX (16u << 20)

/* ---- the worker ---- */

typedef struct Worker {
        IpcStart start;
        TpmFamily family;
        int ipc_fd;
        int signal_fd;
        int done_fd; /* eventfd: the TPM thread finished a command */

        Platform *platform;
        Gnttab *gnttab;
        Evtchn *evtchn;
        uint8_t *page; /* the guest's page: it changes under us */
        uint32_t local_port;
        bool bound;

        TpmStore *store;
        TpmInstance *tpm;
        /* IPC_START_DURABLE: the state directory (its fd arrives with START,
         * -1 once statedir owns it) and the blobs read at start, freed once
         * libtpms has them. The data key lives only in the store. */
        int state_fd;
        StateDir *statedir;
        uint8_t *perm_blob, *vol_blob;
        size_t perm_len, vol_len;
        /* libtpms is in failure mode (a state write failed): the TPM thread
         * re-initialises it from the durable state before the next command.
         * TPM thread while serving; I/O thread once it has joined. */
        bool tpm_broken;

        pthread_t thread;
        bool thread_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Under lock. */
        bool job, job_done, quit;
        /* The job: written by the I/O thread before setting `job`, read by the
         * TPM thread; the result the other way round. The command is the page
         * server's one copy of what the guest wrote; the response stays in
         * libtpms' buffer until it is posted to the page. */
        const uint8_t *cmd;
        size_t cmd_len;
        uint8_t locality;
        const uint8_t *resp;
        size_t resp_len;
        int resp_r;

        /* I/O thread only. */
        PageServer *server; /* the guest's page; NULL offline */
        IpcStats stats;     /* offline, and events; the page server counts the rest */
        RateLimit rl_bad_response;
        RateLimit rl_store; /* TPM thread while serving; I/O thread after */
} Worker;

static bool worker_trace(const Worker *w) {
        return w->start.flags & IPC_START_TRACE;
}

static bool worker_durable(const Worker *w) {
        return w->start.flags & IPC_START_DURABLE;
}

/* No guest: the supervisor manufactures the vTPM over COMMAND/RESPONSE. */
static bool worker_offline(const Worker *w) {
        return w->start.flags & IPC_START_OFFLINE;
}

/* What the supervisor is told (STATS) and the last line says. */
static IpcStats worker_stats(Worker *w) {
        IpcStats s = w->stats;
        if (w->server) {
                const IpcStats *p = page_server_stats(w->server);
                s.commands += p->commands;
                s.rejected += p->rejected;
                s.cancels += p->cancels;
        }
        return s;
}

/* Debug lines (state housekeeping) go with the trace switch. */
#define log_debug(w, ...)                               \
        do {                                            \
                if (worker_trace(w))                    \
                        log_msg(LOG_INFO, __VA_ARGS__); \
        } while (0)

#define WORKER_LOG_INTERVAL_NS (10ull * 1000000000ull)
#define WORKER_LOG_BURST 10u

static bool store_log_ok(Worker *w) {
        return log_ratelimit(&w->rl_store, "state-write", UINT32_MAX, UINT32_MAX, NULL);
}

static int ipc_send(int fd, const IpcMsg *m) {
        return ipc_socket_send(fd, m, -1);
}

static void ipc_send_failed(int fd, IpcStage stage, int error) {
        IpcMsg m = { .type = IPC_FAILED, .failed = { .stage = stage, .error = error < 0 ? error : -EIO } };
        log_msg(LOG_INFO, "start failed at stage %s: %s", strempty(ipc_stage_to_string(stage)), strerror(-m.failed.error));
        (void) ipc_send(fd, &m);
}

/* Receives one packet. Returns 1 and the decoded message, 0 on EOF,
 * -EBADMSG for an invalid packet, other negative errno on errors. Only a
 * START{DURABLE} may carry an fd (into *ret_fd; with ret_fd NULL such a
 * START is invalid); any other is closed (lib/ipc-socket.h). */
static int ipc_recv(int fd, IpcMsg *ret, int *ret_fd) {
        return ipc_socket_recv(fd, ret, ret_fd);
}

/* ---- durable state ---- */

static void log_state_refused(const Worker *w, StateKind kind, int error) {
        if (error == -ENOENT) {
                log_msg(LOG_INFO, "state file %s/%s: missing although the supervisor has a record of it; "
                         "not starting this vTPM (never a silent reset to a new TPM)",
                         w->start.uuid, strempty(state_kind_filename(kind)));
                return;
        }
        log_msg(LOG_INFO, "state file %s/%s: %s; not starting this vTPM, the file is kept for inspection", w->start.uuid,
                 strempty(state_kind_filename(kind)), statestore_strerror(error));
}

/* The store's report of every write: tell the supervisor (it records the
 * newest seq for rollback detection and vol_seq for the next start). */
static void worker_on_state(void *userdata, StateKind kind, int error, uint64_t seq) {
        Worker *w = userdata;
        IpcMsg m = {
                .type = IPC_STATE,
                .state = { .kind = kind == STATE_KIND_VOLATILE ? IPC_STATE_KIND_VOLATILE : IPC_STATE_KIND_PERMANENT,
                           .error = error < 0 ? (error >= -4095 ? error : -EIO) : 0,
                           .seq = error < 0 ? 0 : seq },
        };

        if (error < 0 && store_log_ok(w))
                log_msg(LOG_INFO, "writing state file %s/%s failed: %s; the previous file is intact%s", w->start.uuid,
                         strempty(state_kind_filename(kind)), strerror(-error),
                         kind == STATE_KIND_PERMANENT ? ", the TPM answers failure until a write succeeds" : "");
        else if (error >= 0)
                log_debug(w, "state file %s/%s written, seq %" PRIu64, w->start.uuid,
                          strempty(state_kind_filename(kind)), seq);
        int r = ipc_send(w->ipc_fd, &m);
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                log_msg(LOG_INFO, "sending STATE failed: %s", strerror(-r));
}

/* Takes the state directory, reads what the TPM will start from, and
 * refuses anything it cannot trust. Returns 0 or a negative errno for
 * FAILED{STATE}; the reason is logged here. */
static int worker_load_state(Worker *w) {
        StateDir *d = NULL;
        uint64_t seq = 0;
        int r;

        r = statedir_from_fd(w->state_fd, w->start.uuid, &d);
        w->state_fd = -1; /* statedir_from_fd owns it, whatever the result */
        if (r < 0) {
                log_msg(LOG_INFO, "state directory %s: %s", w->start.uuid,
                         r == -EBUSY ? "locked by another process" : strerror(-r));
                return r;
        }
        w->statedir = d;
        /* Under the lock (a previous worker has let go), before the store
         * writes: the worker's files are its uid's and the workers' group's. */
        if (w->start.uid != 0) {
                r = statedir_lend(d, w->start.uid, w->start.gid);
                if (r < 0) {
                        log_msg(LOG_INFO, "lending the state directory to uid %u failed: %s", w->start.uid, strerror(-r));
                        return r;
                }
        }

        r = tpm_store_durable_new(w->statedir, w->start.data_key, w->start.min_perm_seq, worker_on_state, w,
                                  &w->store);
        explicit_wipe(w->start.data_key, sizeof(w->start.data_key));
        if (r < 0)
                return r;
        tpm_store_durable_raise_seq(w->store, w->start.vol_seq);

        r = tpm_store_durable_read(w->store, STATE_KIND_PERMANENT, &w->perm_blob, &w->perm_len, &seq);
        if (r == -ENOENT && w->start.min_perm_seq == 0 && !(w->start.flags & IPC_START_RESTORE_VOLATILE)) {
                /* A new vTPM: libtpms manufactures it and stores permall. */
                log_msg(LOG_INFO, "no permanent state yet: manufacturing a new TPM");
        } else if (r < 0) {
                /* A missing permall the supervisor has a record of is a
                 * deletion, not a new vTPM: never a silent reset. */
                log_state_refused(w, STATE_KIND_PERMANENT, r);
                return r;
        } else
                log_debug(w, "permanent state: %zu bytes, seq %" PRIu64, w->perm_len, seq);

        if (w->start.flags & IPC_START_RESTORE_VOLATILE) {
                r = tpm_store_durable_read(w->store, STATE_KIND_VOLATILE, &w->vol_blob, &w->vol_len, &seq);
                if (r >= 0 && seq != w->start.vol_seq) {
                        log_msg(LOG_INFO, "state file %s/volatile: seq %" PRIu64 ", expected %" PRIu64
                                 "; not resuming from it, the file is kept for inspection",
                                 w->start.uuid, seq, w->start.vol_seq);
                        return -ESTALE;
                }
                if (r < 0) {
                        log_state_refused(w, STATE_KIND_VOLATILE, r);
                        return r;
                }
        } else {
                /* A leftover (a crash after a stop, or a start without resume)
                 * must never be resumed later. */
                StateHeader h;
                if (statedir_peek(w->statedir, STATE_KIND_VOLATILE, &h) >= 0) {
                        /* Its seq was used: later writes must still be newer. */
                        tpm_store_durable_raise_seq(w->store, h.seq);
                        r = statedir_remove(w->statedir, STATE_KIND_VOLATILE);
                        if (r < 0) {
                                log_msg(LOG_INFO, "removing stale state file %s/volatile failed: %s", w->start.uuid,
                                         strerror(-r));
                                return r;
                        }
                        log_debug(w, "removed stale state file %s/volatile (seq %" PRIu64 ")", w->start.uuid,
                                  h.seq);
                }
        }
        return 0;
}

static void worker_free_blobs(Worker *w) {
        explicit_wipe(w->perm_blob, w->perm_len);
        explicit_wipe(w->vol_blob, w->vol_len);
        free(w->perm_blob);
        free(w->vol_blob);
        w->perm_blob = w->vol_blob = NULL;
        w->perm_len = w->vol_len = 0;
}

/* TPM thread: the way out of failure mode. A power cycle from the durable
 * state (research libtpms-swtpm.md §1.3: a failed store is fatal to the
 * instance until re-init). Returns true if the TPM works again. */
static bool worker_recover(Worker *w) {
        uint32_t rc = 0;
        int r;

        (void) tpm_store_durable_take_error(w->store);
        r = tpm_instance_reinit(w->tpm);
        if (r >= 0 && w->family == TPM_FAMILY_2_0)
                r = tpm_instance_startup(w->tpm, &rc);
        if (r >= 0 && tpm_store_durable_take_error(w->store) < 0)
                r = -EIO;
        if (r < 0) {
                if (store_log_ok(w))
                        log_msg(LOG_INFO, "re-initialising the TPM from its durable state failed (%s, rc 0x%x); "
                                 "answering TPM failure", strerror(-r), rc);
                return false;
        }
        log_msg(LOG_INFO, "TPM re-initialised from its durable state after a failed write (PCRs and sessions reset)");
        return true;
}

/* ---- TPM thread ---- */

/* Runs a command through libtpms, on whichever thread owns it (the TPM
 * thread; the I/O thread for a quick command while the TPM thread is idle,
 * or offline). Returns what tpm_instance_process_view() returned; the
 * response is libtpms' until the next command. */
static int worker_run(Worker *w, const uint8_t *cmd, size_t len, uint8_t locality, const uint8_t **ret_resp,
                      size_t *ret_n) {
        int r = -EIO;

        *ret_resp = NULL;
        *ret_n = 0;
        if (w->tpm_broken && worker_recover(w))
                w->tpm_broken = false;
        if (!w->tpm_broken) {
                r = tpm_instance_process_view(w->tpm, cmd, len, ret_resp, ret_n, locality);
                /* The command's store write failed: libtpms is in failure
                 * mode and has answered TPM_RC_FAILURE. */
                if (tpm_store_durable_take_error(w->store) < 0)
                        w->tpm_broken = true;
        }
        return r;
}

static void *tpm_thread(void *userdata) {
        Worker *w = userdata;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->job && !w->quit)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (!w->job)
                        break;
                pthread_mutex_unlock(&w->lock);

                const uint8_t *out;
                size_t n;
                int r = worker_run(w, w->cmd, w->cmd_len, w->locality, &out, &n);

                pthread_mutex_lock(&w->lock);
                w->resp_r = r;
                w->resp = out;
                w->resp_len = n;
                w->job = false;
                w->job_done = true;
                uint64_t one = 1;
                (void) !write(w->done_fd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* ---- the page ---- */

static int page_run(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                    const uint8_t **ret_resp, size_t *ret_len) {
        Worker *w = userdata;

        /* Nothing to cancel in a quick command: answered here, sparing two
         * thread hand-offs; the TPM thread is idle (the server is not busy). */
        if (quick)
                return worker_run(w, cmd, len, locality, ret_resp, ret_len);
        pthread_mutex_lock(&w->lock);
        w->cmd = cmd;
        w->cmd_len = len;
        w->locality = locality;
        w->job = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return PAGE_SERVER_PENDING;
}

static void page_cancel(void *userdata) {
        Worker *w = userdata;
        tpm_instance_cancel(w->tpm);
}

static void page_notify(void *userdata) {
        Worker *w = userdata;
        int r = evtchn_notify(w->evtchn, w->local_port);
        if (r < 0)
                log_msg(LOG_INFO, "notify on port %u failed: %s", w->local_port, strerror(-r));
}

static const PageServerOps page_ops = {
        .run = page_run,
        .cancel = page_cancel,
        .notify = page_notify,
};

/* The TPM thread is done: post its response (or a failure response). */
static void worker_finish(Worker *w, bool recheck) {
        const uint8_t *out;
        size_t len;
        int r;

        pthread_mutex_lock(&w->lock);
        if (!w->job_done) {
                pthread_mutex_unlock(&w->lock);
                return;
        }
        w->job_done = false;
        r = w->resp_r;
        out = w->resp;
        len = w->resp_len;
        pthread_mutex_unlock(&w->lock);

        page_server_complete(w->server, r, out, len);

        /* A request may already be waiting; its event may have come while busy. */
        if (recheck)
                page_server_check(w->server);
}

/* Event-channel fd readable: pending -> unmask -> only then look at the page
 * (research §7: a change after our look then raises a new event). */
static int worker_on_event(Worker *w) {
        uint32_t port;
        int r = evtchn_pending(w->evtchn, &port);
        if (r == -EAGAIN || r == -EINTR)
                return 0;
        if (r < 0)
                return r;
        w->stats.events++;
        r = evtchn_unmask(w->evtchn, port);
        if (r < 0)
                return r;
        if (port == w->local_port)
                page_server_check(w->server);
        return 0;
}

/* Waits for an in-flight command (used when stopping). */
static void worker_drain(Worker *w) {
        while (w->server && page_server_busy(w->server)) {
                uint64_t v;
                ssize_t n = read(w->done_fd, &v, sizeof(v)); /* blocking eventfd */
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_msg(LOG_INFO, "waiting for the TPM thread failed: %m");
                        return;
                }
                worker_finish(w, false);
        }
}

static void worker_stop_thread(Worker *w) {
        if (!w->thread_started)
                return;
        pthread_mutex_lock(&w->lock);
        w->quit = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        w->thread_started = false;
}

static void worker_release(Worker *w) {
        worker_stop_thread(w);
        w->tpm = tpm_instance_free(w->tpm);
        w->store = tpm_store_free(w->store); /* wipes the data key */
        w->statedir = statedir_close(w->statedir);
        w->state_fd = safe_close(w->state_fd);
        worker_free_blobs(w);
        explicit_wipe(w->start.data_key, sizeof(w->start.data_key));
        w->server = page_server_free(w->server);
        if (w->page) {
                int r = gnttab_unmap(w->gnttab, w->page);
                if (r < 0)
                        log_msg(LOG_INFO, "unmapping grant %u failed: %s", w->start.ring_ref, strerror(-r));
                w->page = NULL;
        }
        if (w->bound) {
                int r = evtchn_unbind(w->evtchn, w->local_port);
                if (r < 0)
                        log_msg(LOG_INFO, "unbinding port %u failed: %s", w->local_port, strerror(-r));
                w->bound = false;
        }
        w->evtchn = evtchn_close(w->evtchn);
        w->gnttab = gnttab_close(w->gnttab);
        w->platform = platform_free(w->platform);
        w->done_fd = safe_close(w->done_fd);
}

/* Orderly stop: finish the in-flight command, then reset or save the TPM. */
static void worker_stop(Worker *w, IpcStopMode mode, const char *why, bool tell_supervisor) {
        int r;

        log_msg(LOG_INFO, "stopping (%s, %s)", why, mode == IPC_STOP_RESET ? "reset" : "suspend");
        worker_drain(w);
        worker_stop_thread(w);

        switch (mode) {
        case IPC_STOP_RESET:
                /* An orderly shutdown, so the next Startup does not count a
                 * dictionary-attack failure; libtpms writes permall for it. */
                if (w->tpm && !w->tpm_broken) {
                        uint32_t rc = 0;
                        r = tpm_instance_shutdown(w->tpm, &rc);
                        if (r < 0)
                                log_msg(LOG_INFO, "TPM shutdown failed: %s (rc 0x%x)", strerror(-r), rc);
                }
                break;
        case IPC_STOP_SUSPEND:
                /* No Shutdown: the guest must see no reset. A TPM in failure
                 * mode has nothing worth resuming: the next start is a power-on
                 * from permall. */
                if (w->tpm && !w->tpm_broken) {
                        _cleanup_free_ uint8_t *v = NULL;
                        size_t len = 0;
                        r = tpm_instance_save_volatile(w->tpm, &v, &len);
                        if (r < 0)
                                log_msg(LOG_INFO, "saving volatile state failed: %s", strerror(-r));
                        else {
                                if (worker_durable(w)) {
                                        uint64_t seq = 0;
                                        r = tpm_store_durable_write(w->store, STATE_KIND_VOLATILE, v, len, &seq);
                                        if (r >= 0)
                                                log_msg(LOG_INFO, "volatile state saved (%zu bytes, seq %" PRIu64 ")", len,
                                                         seq);
                                }
                                explicit_wipe(v, len);
                        }
                }
                break;
        }

        IpcStats st = worker_stats(w);
        worker_release(w);
        if (tell_supervisor) {
                IpcMsg m = { .type = IPC_STOPPED };
                r = ipc_send(w->ipc_fd, &m);
                if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                        log_msg(LOG_INFO, "sending STOPPED failed: %s", strerror(-r));
        }
        log_msg(LOG_INFO, "stopped: %" PRIu64 " commands, %" PRIu64 " rejected, %" PRIu64 " cancels, %" PRIu64 " events",
                st.commands, st.rejected, st.cancels, st.events);
}

/* Everything privileged is done (grant mapped, event channel bound, state
 * read, libtpms and OpenSSL initialised); nothing the guest wrote has been
 * read yet. From here on the worker holds only what lib/confine.h leaves. */
static int worker_confine(Worker *w) {
        _cleanup_close_ int hv_fd = -1, san_fd = -1;
        ConfinePolicy p = {
                .uid = w->start.uid,
                .gid = w->start.gid,
                .address_space_max = w->start.memory_max,
                /* ~10 in use: IPC, signalfd, eventfd, event channel, grant,
                 * state directory and its lock, a state file being replaced. */
                .open_files_max = WORKER_OPEN_FILES_MAX,
                /* The largest state file is a few hundred KiB (libtpms NV). */
                .file_size_max = WORKER_FILE_SIZE_MAX,
                .seccomp = true,
        };
        ConfineResult res = {};
        int r;

        int dir_fd = w->statedir ? statedir_fd(w->statedir) : -1;
        if (dir_fd >= 0)
                p.dir_fds[p.n_dir_fds++] = dir_fd;
        if (w->platform && w->platform->kind == PLATFORM_SIM) {
                /* The simulated hypervisor's event-channel table and sockets. */
                char path[PATH_MAX];
                snprintf(path, sizeof(path), "%s/hv", w->platform->sim_dir);
                hv_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (hv_fd < 0)
                        return negative_errno();
                p.dir_fds[p.n_dir_fds++] = hv_fd;
        }
#ifdef VTPMD_SANITIZED
        /* Sanitizer reports must reach their log directory (tests only). */
        const char *san = getenv("VTPMD_SANITIZER_LOG_DIR");
        if (san && (san_fd = open(san, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0)
                p.dir_fds[p.n_dir_fds++] = san_fd;
#endif
        /* Read now: getuid is not on the allow-list. */
        unsigned uid = p.uid != 0 ? p.uid : (unsigned) getuid(), gid = p.uid != 0 ? p.gid : (unsigned) getgid();
        r = confine_apply(&p, &res);
        if (r < 0) {
                log_msg(LOG_INFO, "confinement failed: %s", strerror(-r));
                return r;
        }
        log_msg(LOG_INFO, "confined: uid %u gid %u, Landlock %s%.0d, seccomp allow-list of %zu system calls", uid, gid,
                 res.landlock_abi > 0 ? "ABI " : "unavailable (file-system view not reduced)",
                 res.landlock_abi, res.n_syscalls);
        return 0;
}

/* Returns the stage that failed (and its error in *ret_error), or 0. */
static IpcStage worker_setup(Worker *w, int *ret_error) {
        int r;

#define FAIL(stage, err)               \
        do {                           \
                *ret_error = (err);    \
                return (stage);        \
        } while (0)

        /* ipc_decode() checked it; a wire value is still not trusted blindly. */
        if (w->start.family != TPM_FAMILY_2_0 && w->start.family != TPM_FAMILY_1_2)
                FAIL(IPC_STAGE_PARAMS, -EINVAL);
        w->family = (TpmFamily) w->start.family;

        if (!worker_offline(w)) {
                r = platform_parse(w->start.platform, 0, &w->platform);
                if (r < 0)
                        FAIL(IPC_STAGE_PARAMS, r);
        }

        /* Before the guest's page: a vTPM whose state is refused is not started. */
        if (worker_durable(w)) {
                r = worker_load_state(w);
                if (r < 0)
                        FAIL(IPC_STAGE_STATE, r);
        }

        if (worker_offline(w))
                goto tpm;

        r = gnttab_open(w->platform, &w->gnttab);
        if (r < 0)
                FAIL(IPC_STAGE_MAP, r);
        r = evtchn_open(w->platform, &w->evtchn);
        if (r < 0)
                FAIL(IPC_STAGE_BIND, r);
        /* Before a single guest byte is read, the handles reach only this guest. */
        r = gnttab_restrict(w->gnttab, w->start.domid);
        if (r < 0)
                FAIL(IPC_STAGE_CONFINE, r);
        r = evtchn_restrict(w->evtchn, w->start.domid);
        if (r < 0)
                FAIL(IPC_STAGE_CONFINE, r);

        void *addr = NULL;
        r = gnttab_map(w->gnttab, w->start.domid, w->start.ring_ref, true, &addr);
        if (r < 0)
                FAIL(IPC_STAGE_MAP, r);
        w->page = addr;

        r = evtchn_bind_interdomain(w->evtchn, w->start.domid, w->start.evtchn_port, &w->local_port);
        if (r < 0)
                FAIL(IPC_STAGE_BIND, r);
        w->bound = true;

tpm:
        if (!w->store) {
                r = tpm_store_memory_new(&w->store);
                if (r < 0)
                        FAIL(IPC_STAGE_TPM, r);
        }
        r = tpm_instance_restore(w->family, w->store, w->perm_blob, w->perm_len, w->vol_blob, w->vol_len,
                                 &w->tpm);
        bool resumed = w->vol_blob;
        worker_free_blobs(w);
        if (r < 0) {
                int e = tpm_store_durable_take_error(w->store);
                if (e < 0)
                        FAIL(IPC_STAGE_STATE, e);
                FAIL(IPC_STAGE_TPM, r);
        }
        if (resumed) {
                /* Resumed: the file must never be resumed again (a crash after
                 * this point is a power loss, not a second resume). */
                r = tpm_store_durable_remove(w->store, STATE_KIND_VOLATILE);
                if (r < 0)
                        FAIL(IPC_STAGE_STATE, r);
                log_msg(LOG_INFO, "resumed from the saved volatile state (seq %" PRIu64 ")", w->start.vol_seq);
        } else if (w->family == TPM_FAMILY_2_0 && (w->start.flags & IPC_START_TPM_STARTUP)) {
                /* The Linux frontend never sends TPM2_Startup (research §2.9). */
                uint32_t rc = 0;
                r = tpm_instance_startup(w->tpm, &rc);
                if (r < 0) {
                        log_msg(LOG_INFO, "TPM2_Startup(CLEAR) answered 0x%x", rc);
                        FAIL(IPC_STAGE_TPM, r);
                }
        }

        if (!worker_offline(w)) {
                w->done_fd = eventfd(0, EFD_CLOEXEC);
                if (w->done_fd < 0)
                        FAIL(IPC_STAGE_TPM, negative_errno());
                PageServerConfig pc = {
                        .page = w->page,
                        .page_size = VTPM_XEN_PAGE_SIZE,
                        .command_max = TPM_INSTANCE_BUFFER_SIZE,
                        .family = w->family,
                        .trace = worker_trace(w),
                        .ops = &page_ops,
                        .userdata = w,
                };
                r = page_server_new(&pc, &w->server);
                if (r < 0)
                        FAIL(IPC_STAGE_TPM, r);
        }

        r = worker_confine(w);
        if (r < 0)
                FAIL(IPC_STAGE_CONFINE, r);

        /* Offline, the I/O thread runs each command itself: there is no
         * guest to stay responsive to, and no cancel. */
        if (worker_offline(w))
                return 0;

        /* After confinement: the TPM thread inherits it (Landlock and
         * seccomp apply per thread, from creation on). */
        r = -pthread_create(&w->thread, NULL, tpm_thread, w);
        if (r < 0)
                FAIL(IPC_STAGE_TPM, r);
        w->thread_started = true;
        return 0;
#undef FAIL
}

/* Waits for IPC_START. Returns 1 with w->start filled, 0 to exit quietly. */
static int worker_wait_start(Worker *w) {
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = w->ipc_fd, .events = POLLIN },
                        { .fd = w->signal_fd, .events = POLLIN },
                };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg(LOG_INFO, "poll failed: %m");
                        return -errno;
                }
                if (p[1].revents) {
                        log_msg(LOG_INFO, "signalled before start; exiting");
                        return 0;
                }
                if (!p[0].revents)
                        continue;

                IpcMsg m;
                int fd = -1;
                int r = ipc_recv(w->ipc_fd, &m, &fd);
                if (r == 0) {
                        log_msg(LOG_INFO, "supervisor went away before start; exiting");
                        return 0;
                }
                if (r < 0 || m.type != IPC_START) {
                        safe_close(fd);
                        explicit_wipe(&m, sizeof(m));
                        ipc_send_failed(w->ipc_fd, IPC_STAGE_PARAMS, r < 0 ? r : -EBADMSG);
                        return -EBADMSG;
                }
                w->start = m.start;
                w->state_fd = fd;
                explicit_wipe(&m, sizeof(m));
                return 1;
        }
}

/* Returns true when the worker should exit. */
static bool worker_on_ipc(Worker *w) {
        IpcMsg m;
        int r = ipc_recv(w->ipc_fd, &m, NULL);
        if (r == -EAGAIN)
                return false;
        if (r == 0 || (r < 0 && r != -EBADMSG)) {
                /* Supervisor gone: keep what a restart can resume from. */
                worker_stop(w, IPC_STOP_SUSPEND, "supervisor gone", false);
                return true;
        }
        if (r < 0) {
                log_msg(LOG_INFO, "ignoring invalid message from the supervisor");
                return false;
        }
        switch (m.type) {
        case IPC_STOP:
                worker_stop(w, (IpcStopMode) m.stop.mode, "requested", true);
                return true;
        case IPC_STATS_REQ: {
                IpcMsg s = { .type = IPC_STATS, .stats = worker_stats(w) };
                r = ipc_send(w->ipc_fd, &s);
                if (r < 0)
                        log_msg(LOG_INFO, "sending STATS failed: %s", strerror(-r));
                return false;
        }
        case IPC_START:
        case IPC_READY:
        case IPC_FAILED:
        case IPC_STATS:
        case IPC_STOPPED:
        case IPC_STATE:
        case IPC_COMMAND:
        case IPC_RESPONSE:
                break;
        }
        log_msg(LOG_INFO, "ignoring unexpected %s message", strempty(ipc_type_to_string(m.type)));
        return false;
}

/* ---- offline: manufacturing by the supervisor ---- */

/* One COMMAND: always answered by exactly one RESPONSE (a TPM failure
 * response if the TPM gave nothing usable), so the supervisor's TSS never
 * waits for an answer that does not come. */
static int worker_offline_command(Worker *w, const IpcTpm *cmd) {
        IpcMsg resp = { .type = IPC_RESPONSE };
        uint8_t err[TPM_HEADER_SIZE];
        const uint8_t *out;
        size_t n;

        if (worker_trace(w))
                log_hex("command", cmd->data, cmd->len);
        int r = worker_run(w, cmd->data, cmd->len, 0, &out, &n);
        n = page_server_answer(w->family, &w->rl_bad_response, &w->stats, r, &out, n, sizeof(resp.tpm.data), err);
        if (worker_trace(w))
                log_hex("response", out, n);
        memcpy(resp.tpm.data, out, n);
        resp.tpm.len = (uint32_t) n;
        return ipc_send(w->ipc_fd, &resp);
}

static int worker_serve_offline(Worker *w) {
        for (;;) {
                struct pollfd p[2] = {
                        { .fd = w->ipc_fd, .events = POLLIN },
                        { .fd = w->signal_fd, .events = POLLIN },
                };
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg(LOG_INFO, "poll failed: %m");
                        return -errno;
                }
                if (p[1].revents) {
                        struct signalfd_siginfo si;
                        if (read(w->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                                worker_stop(w, IPC_STOP_RESET, strsignal((int) si.ssi_signo), true);
                                return 0;
                        }
                }
                if (!p[0].revents)
                        continue;

                IpcMsg m;
                int r = ipc_recv(w->ipc_fd, &m, NULL);
                if (r == -EAGAIN || r == -EINTR)
                        continue;
                if (r == 0 || (r < 0 && r != -EBADMSG)) {
                        /* Nothing to resume for a vTPM being manufactured: an orderly
                         * shutdown keeps what was written. */
                        worker_stop(w, IPC_STOP_RESET, "supervisor gone", false);
                        return 0;
                }
                if (r < 0) {
                        log_msg(LOG_INFO, "ignoring invalid message from the supervisor");
                        continue;
                }
                switch (m.type) {
                case IPC_COMMAND:
                        r = worker_offline_command(w, &m.tpm);
                        if (r < 0) {
                                log_msg(LOG_INFO, "sending RESPONSE failed: %s", strerror(-r));
                                worker_stop(w, IPC_STOP_RESET, "supervisor gone", false);
                                return 0;
                        }
                        break;
                case IPC_STOP:
                        worker_stop(w, (IpcStopMode) m.stop.mode, "requested", true);
                        return 0;
                case IPC_STATS_REQ: {
                        IpcMsg s = { .type = IPC_STATS, .stats = worker_stats(w) };
                        (void) ipc_send(w->ipc_fd, &s);
                        break;
                }
                case IPC_START:
                case IPC_READY:
                case IPC_FAILED:
                case IPC_STATS:
                case IPC_STOPPED:
                case IPC_STATE:
                case IPC_RESPONSE:
                        log_msg(LOG_INFO, "ignoring unexpected %s message", strempty(ipc_type_to_string(m.type)));
                        break;
                }
        }
}

static int worker_serve(Worker *w) {
        /* The Linux frontend sends its first command before we connect. */
        page_server_check(w->server);

        for (;;) {
                struct pollfd p[4] = {
                        { .fd = w->done_fd, .events = POLLIN },
                        { .fd = evtchn_fd(w->evtchn), .events = POLLIN },
                        { .fd = w->ipc_fd, .events = POLLIN },
                        { .fd = w->signal_fd, .events = POLLIN },
                };
                if (poll(p, ELEMENTSOF(p), -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg(LOG_INFO, "poll failed: %m");
                        return -errno;
                }
                if (p[0].revents & POLLIN) {
                        uint64_t v;
                        if (read(w->done_fd, &v, sizeof(v)) == sizeof(v))
                                worker_finish(w, true);
                }
                if (p[1].revents & (POLLERR | POLLNVAL)) {
                        log_msg(LOG_INFO, "event channel failed (revents 0x%x)", (unsigned) p[1].revents);
                        return -EIO;
                }
                if (p[1].revents & POLLIN) {
                        int r = worker_on_event(w);
                        if (r < 0) {
                                log_msg(LOG_INFO, "event channel failed: %s", strerror(-r));
                                return r;
                        }
                }
                if (p[2].revents && worker_on_ipc(w))
                        return 0;
                if (p[3].revents) {
                        struct signalfd_siginfo si;
                        if (read(w->signal_fd, &si, sizeof(si)) == sizeof(si)) {
                                worker_stop(w, IPC_STOP_SUSPEND, strsignal((int) si.ssi_signo), true);
                                return 0;
                        }
                }
        }
}

static void help(void) {
        printf("Usage: vtpmd-worker\n"
               "\n"
               "One guest's vTPM, started by vtpmd. Everything it needs arrives as an\n"
               "IPC_START message on fd 3 (a SOCK_SEQPACKET socket); it is not meant to be\n"
               "run by hand.\n"
               "\n"
               "  -h --help         show this help\n"
               "     --version      show the version\n"
               "     --fork-server  fork workers for vtpmd on request instead (fd 3)\n");
}

#ifdef VTPMD_SANITIZED
/* LeakSanitizer stops the world with ptrace at exit, which a confined worker
 * (seccomp, not dumpable) cannot allow; vtpmd and the tools keep it. */
int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void) {
        return 1;
}
#endif

static int worker_main(void);
static bool ipc_fd_is_ours(void);

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "fork-server", no_argument, NULL, 'F' },
                {},
        };
        bool fork_server = false;
        int c;

        log_open("vtpmd-worker", LOG_STYLE_WORKER);
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("vtpmd-worker " VTPMD_VERSION "\n");
                        return 0;
                case 'F':
                        fork_server = true;
                        break;
                default:
                        return 2;
                }
        if (optind < argc) {
                log_msg(LOG_INFO, "unexpected argument: %s", argv[optind]);
                return 2;
        }
        if (!fork_server)
                return worker_main();

        if (!ipc_fd_is_ours())
                return 1;
        (void) fcntl(IPC_FD, F_SETFD, FD_CLOEXEC);
        /* Built once here, shared by every worker forked below. */
        int r = crypto_warm_up();
        if (r < 0)
                log_msg(LOG_INFO, "warming up OpenSSL failed: %s", strerror(-r));
        r = spawn_fork_server_run(IPC_FD, argv, worker_main);
        if (r < 0) {
                log_msg(LOG_INFO, "fork server: reading requests failed: %s", strerror(-r));
                return 1;
        }
        return 0;
}

static bool ipc_fd_is_ours(void) {
        int type = 0;
        socklen_t sl = sizeof(type);
        if (getsockopt(IPC_FD, SOL_SOCKET, SO_TYPE, &type, &sl) < 0 || type != SOCK_SEQPACKET) {
                log_msg(LOG_INFO, "fd %d is not a SOCK_SEQPACKET socket; run by vtpmd only", IPC_FD);
                return false;
        }
        return true;
}

/* One worker: by exec, or forked by the fork server with fd 3 set up. */
static int worker_main(void) {
        int r;

        if (!ipc_fd_is_ours())
                return 1;
        (void) fcntl(IPC_FD, F_SETFD, FD_CLOEXEC);

        /* Blocked before the TPM thread exists, so only the I/O thread sees them. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return 1;
        signal(SIGPIPE, SIG_IGN);

        static Worker worker; /* one per process; zero-initialised */
        Worker *w = &worker;
        w->ipc_fd = IPC_FD;
        w->done_fd = -1;
        w->state_fd = -1;
        w->rl_store = w->rl_bad_response = RATELIMIT_INIT(WORKER_LOG_INTERVAL_NS, WORKER_LOG_BURST);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (w->signal_fd < 0) {
                log_msg(LOG_INFO, "signalfd failed: %m");
                return 1;
        }

        r = worker_wait_start(w);
        if (r <= 0)
                return r < 0 ? 1 : 0;

        log_set_guest(w->start.domid, w->start.devid, w->start.uuid);
        if (worker_trace(w))
                log_set_max_level(LOG_DEBUG); /* the command and response bytes (log_hex) */
        if (worker_offline(w))
                log_msg(LOG_INFO, "starting offline (manufacturing), TPM %s",
                         strempty(tpm_family_to_string((TpmFamily) w->start.family)));
        else
                log_msg(LOG_INFO, "starting: platform %s, ring-ref %u, port %u, TPM %s", w->start.platform,
                         w->start.ring_ref, w->start.evtchn_port,
                         strempty(tpm_family_to_string((TpmFamily) w->start.family)));

        int error = 0;
        IpcStage stage = worker_setup(w, &error);
        if (stage != 0) {
                ipc_send_failed(w->ipc_fd, stage, error);
                worker_release(w);
                return 1;
        }

        /* Manufacturing and OpenSSL set-up leave freed heap behind; idle
         * private memory is a benchmark target (<= 1 MiB per worker). */
        (void) malloc_trim(0);

        IpcMsg ready = { .type = IPC_READY, .ready = { .local_port = w->local_port } };
        r = ipc_send(w->ipc_fd, &ready);
        if (r < 0)
                log_msg(LOG_INFO, "sending READY failed: %s", strerror(-r));
        log_msg(LOG_INFO, "ready: local port %u", w->local_port);

        r = worker_offline(w) ? worker_serve_offline(w) : worker_serve(w);
        if (r < 0) {
                worker_release(w);
                return 1;
        }
        return 0;
}
