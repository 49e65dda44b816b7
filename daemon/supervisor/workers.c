/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The workers (workers.h): a Worker is what a device asked for; a Process
 * is one vtpmd-worker serving it, or one that was asked to stop and has
 * not exited yet. Processes hold their vTPM's directory lock and their uid
 * until they exit, so both are allocated against every Process listed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "clock.h"
#include "ipc-socket.h"
#include "log.h"
#include "ratelimit.h"
#include "spawn.h"
#include "state.h"
#include "util.h"
#include "vtpmd-config.h"
#include "workers.h"

#define RESTART_BASE_NS (100ull * 1000000ull)
#define RESTART_MAX_NS (5ull * 1000000000ull)
#define BUSY_RETRY_NS (50ull * 1000000ull)
/* A deadline, not a count: each try may spawn a worker, which takes a while on a loaded host. */
#define BUSY_WAIT_NS (10ull * 1000000000ull)
/* The pool's shared storage cannot be reached: tried again at this interval for
 * as long as the device exists (a hard NFS mount waits the same way). */
#define STORAGE_RETRY_NS (1000ull * 1000000ull)
/* A pool host that let go of a vTPM writes its grant right after its worker exited. A lock
 * found free without a grant after this long was not handed over: that host's vtpmd died. */
#define HANDOVER_GRACE_NS (2ull * 1000000000ull)
/* The worker fork server (spawn.h). Started with the daemon, restarted by
 * the next worker start after it exits, but not within FORK_SERVER_RETRY_NS
 * of a failure: workers are exec'ed meanwhile. */
#define FORK_SERVER_RETRY_NS (10ull * 1000000000ull)
/* A worker's last messages can be dispatched after its exit: read at most so many first. */
#define EXIT_DRAIN_MAX 64

typedef struct Process Process;

struct Process {
        Workers *workers;
        Worker *owner; /* NULL once it was asked to stop or failed */
        pid_t pid;
        int fd; /* our end of the SOCK_SEQPACKET pair */
        sd_event_source *io_source;
        sd_event_source *child_source;
        bool ready;
        bool stopping; /* its exit is expected */
        char uuid[IPC_UUID_LEN];
        uint32_t uid; /* 0: runs as vtpmd's uid */
        WorkerCommandDone cmd_done; /* a COMMAND of vtpmd-ctl awaits its RESPONSE */
        void *cmd_userdata;
        unsigned cmd_stale; /* RESPONSEs still to come of cancelled commands: dropped */
        Process *next;
};

struct Worker {
        Workers *workers;
        WorkerParams params;
        const WorkerEvents *events;
        void *userdata;
        Process *process;             /* NULL between processes */
        sd_event_source *retry_source; /* crash back-off, or the state directory still locked */
        WorkerBackoff backoff;
        uint64_t busy_since_ns; /* 0: not waiting for the vTPM's lock */
        uint64_t storage_since_ns; /* 0: not waiting for the pool's shared storage */
        sd_event_source *storage_source; /* probes the storage after a failed state write */
        bool handover_asked;    /* another pool host holds the vTPM: its handover request is written */
        uint64_t free_since_ns; /* with handover_asked: the lock was first seen free (no grant yet) */
        bool waiting; /* starts once the vTPM's previous process has exited */
        RateLimit log_limit;
        Worker *next;
};

struct Workers {
        const VtpmdConfig *config;
        sd_event *event;
        VtpmState *state;
        Process *processes;
        Worker *workers;
        bool stopping_all;
        int fork_server_fd;                  /* -1: none running */
        pid_t fork_server_pid;               /* 0: none to wait for */
        sd_event_source *fork_server_source; /* its exit */
        uint64_t fork_server_retry_ns;       /* no new one before (CLOCK_MONOTONIC) */
        void (*released)(void *userdata, const char *uuid);
        void *released_userdata;
};

#define worker_log(w, level, ...) \
        log_dev(level, (w)->params.domid, (w)->params.devid, (w)->params.uuid, __VA_ARGS__)
#define worker_log_errno(w, level, err, ...) \
        log_dev_errno(level, err, (w)->params.domid, (w)->params.devid, (w)->params.uuid, __VA_ARGS__)

/* A worker or the fork server must go. A failure is logged: without CAP_KILL (a
 * unit whose capability set lacks it) root cannot signal the workers' uids. */
static void sigkill(pid_t pid) {
        if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
                log_msg(LOG_ERR, "Cannot kill process %d: %s", (int) pid, strerror(errno));
}

bool worker_backoff_crashed(WorkerBackoff *b, uint64_t now_ns, uint64_t *ret_delay_ns) {
        uint64_t delay;

        if (now_ns - b->window_start_ns > WORKER_CRASH_WINDOW_NS) {
                b->window_start_ns = now_ns;
                b->crashes = 0;
        }
        b->crashes++;
        if (b->crashes >= WORKER_CRASH_LIMIT)
                return false;
        delay = RESTART_BASE_NS << (b->crashes - 1);
        *ret_delay_ns = delay > RESTART_MAX_NS ? RESTART_MAX_NS : delay;
        return true;
}

void worker_unknown_vtpm_message(const char *uuid, char *buf, size_t size) {
        snprintf(buf, size, "unknown vTPM %s: create it with vtpmd-ctl create --uuid %s", uuid, uuid);
}

static double suspend_age_s(const StateSuspend *su) {
        struct timespec ts;
        uint64_t now;

        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000u;
        return now > su->usec ? (double) (now - su->usec) / 1e6 : 0.0;
}

void worker_suspended_message(const char *uuid, const StateSuspend *su, char *buf, size_t size) {
        char when[32] = "?", handle[37];
        time_t t = (time_t) (su->usec / 1000000u);
        struct tm tm;

        if (gmtime_r(&t, &tm))
                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        statefile_uuid_to_string(su->handle, handle);
        snprintf(buf, size,
                 "vTPM %s is suspended: domain %u (uuid %s) device %u was saved at %s; only that domain's "
                 "restore or migration resumes it",
                 uuid, su->domid, handle, su->devid, when);
}

/* ---- the fork server ---- */

static int fork_server_exit_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Workers *ws = userdata;

        if (ws->fork_server_fd >= 0) {
                /* Not asked to: it failed. */
                if (si->si_code == CLD_EXITED)
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) exited with status %d; exec'ing workers "
                                "until it is restarted", (int) si->si_pid, si->si_status);
                else
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) killed by signal %s; exec'ing workers "
                                "until it is restarted", (int) si->si_pid, strsignal(si->si_status));
                ws->fork_server_fd = safe_close(ws->fork_server_fd);
                ws->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
        }
        ws->fork_server_source = sd_event_source_unref(s);
        ws->fork_server_pid = 0;
        return 0;
}

void workers_start_fork_server(Workers *ws) {
        _cleanup_close_ int fd = -1;
        pid_t pid;
        int r;

        r = spawn_fork_server(ws->config->worker_path, &pid, &fd);
        if (r >= 0) {
                r = sd_event_add_child(ws->event, &ws->fork_server_source, pid, WEXITED, fork_server_exit_cb, ws);
                if (r < 0) {
                        sigkill(pid);
                        (void) waitpid(pid, NULL, 0);
                }
        }
        if (r < 0) {
                log_msg(LOG_WARNING, "Failed to start the worker fork server %s --fork-server: %s; exec'ing workers",
                        ws->config->worker_path, strerror(-r));
                ws->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
                return;
        }
        ws->fork_server_fd = TAKE_FD(fd);
        ws->fork_server_pid = pid;
        log_msg(LOG_DEBUG, "Worker fork server started, pid %d", (int) pid);
}

/* Kills it; its exit callback reaps it. */
static void fork_server_stop(Workers *ws) {
        ws->fork_server_fd = safe_close(ws->fork_server_fd);
        if (ws->fork_server_pid > 0)
                sigkill(ws->fork_server_pid);
}

/* A new vtpmd-worker, from the fork server if WorkerSpawn=fork-server and
 * it works, else by exec; as spawn_worker() (spawn.h). */
static int spawn_process(Workers *ws, pid_t *ret_pid, int *ret_fd) {
        if (ws->config->worker_fork_server) {
                if (ws->fork_server_fd < 0 && ws->fork_server_pid == 0 && now_ns() >= ws->fork_server_retry_ns)
                        workers_start_fork_server(ws);
                if (ws->fork_server_fd >= 0) {
                        int r = spawn_from_fork_server(ws->fork_server_fd, ret_pid, ret_fd);
                        if (r >= 0)
                                return 0;
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) failed to fork a worker: %s; stopping it, "
                                "exec'ing workers for %llu s", (int) ws->fork_server_pid, strerror(-r),
                                FORK_SERVER_RETRY_NS / 1000000000ull);
                        fork_server_stop(ws);
                        ws->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
                }
        }
        return spawn_worker(ws->config->worker_path, ret_pid, ret_fd);
}

const char *workers_spawn_mode(Workers *ws) {
        if (!ws->config->worker_fork_server)
                return "exec";
        return ws->fork_server_fd >= 0 ? "fork-server" : "exec (fork server failed; restarted at a later worker start)";
}

/* ---- processes ---- */

static void process_free(Process *p) {
        Workers *ws = p->workers;
        WorkerCommandDone done = p->cmd_done;
        void *userdata = p->cmd_userdata;

        if (p->owner && p->owner->process == p)
                p->owner->process = NULL;
        for (Process **q = &ws->processes; *q; q = &(*q)->next)
                if (*q == p) {
                        *q = p->next;
                        break;
                }
        sd_event_source_disable_unref(p->io_source);
        sd_event_source_disable_unref(p->child_source);
        safe_close(p->fd);
        free(p);
        if (done)
                done(userdata, -EIO, NULL, 0);
}

/* The owner lets go of it: its exit is no crash any more. */
static void process_detach(Process *p) {
        p->stopping = true;
        if (p->owner && p->owner->process == p)
                p->owner->process = NULL;
        p->owner = NULL;
}

static int process_send(Process *p, const IpcMsg *m) {
        return ipc_socket_send_nowait(p->fd, m, -1);
}

static void process_stop(Process *p, IpcStopMode mode) {
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = mode } };

        if (p->stopping)
                return;
        process_detach(p);
        if (process_send(p, &m) < 0)
                sigkill(p->pid);
}

/* One uid per running guest worker, so that workers cannot signal, trace or
 * read each other even without their seccomp filter: the lowest of the range
 * that no listed process (running, or exited and not yet reaped) has.
 * 0: no uid (WorkerIDs=no or not running as root); -EUSERS when every uid
 * of the range is in use. */
static int uid_alloc(Workers *ws, uint32_t *ret) {
        const VtpmdConfig *c = ws->config;

        if (!c->worker_id_first) {
                *ret = 0;
                return 0;
        }
        for (uint32_t uid = c->worker_id_first + 2; uid <= c->worker_id_last; uid++) {
                bool used = false;
                for (Process *p = ws->processes; p && !used; p = p->next)
                        used = p->uid == uid;
                if (!used) {
                        *ret = uid;
                        return 0;
                }
        }
        return -EUSERS;
}

static bool previous_process_running(Workers *ws, const char *uuid) {
        for (Process *p = ws->processes; p; p = p->next)
                if (p->stopping && streq(p->uuid, uuid))
                        return true;
        return false;
}

bool workers_has_vtpm(Workers *ws, const char *uuid) {
        for (Process *p = ws->processes; p; p = p->next)
                if (streq(p->uuid, uuid))
                        return true;
        return false;
}

/* ---- one worker ---- */

static void worker_spawn(Worker *w);

/* The owner hears of it last: it may stop w inside. */
/* The wait for another pool host's vTPM ends: its request goes. */
static void handover_end(Worker *w) {
        if (w->handover_asked)
                vtpm_state_handover_cancel(w->workers->state, w->params.uuid);
        w->handover_asked = false;
        w->free_since_ns = 0;
}

static void worker_fail(Worker *w, const WorkerFailure *f) {
        w->busy_since_ns = 0; /* a later wait for the lock gets its full time */
        w->storage_since_ns = 0;
        handover_end(w);
        w->events->failed(w->userdata, f);
}

static int retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;

        w->retry_source = sd_event_source_disable_unref(w->retry_source);
        if (!w->process && !w->workers->stopping_all)
                worker_spawn(w);
        return 0;
}

static int worker_retry_at(Worker *w, uint64_t when_ns) {
        w->retry_source = sd_event_source_disable_unref(w->retry_source);
        return sd_event_add_time(w->workers->event, &w->retry_source, CLOCK_MONOTONIC, when_ns / 1000, 0, retry_cb,
                                 w);
}

/* The vTPM's state is still locked by another process (a previous worker
 * finishing its stop): try again shortly, for a bounded time. */
static void worker_retry_busy(Worker *w) {
        uint64_t now = now_ns();
        int r;

        if (!w->busy_since_ns)
                w->busy_since_ns = now;
        if (now - w->busy_since_ns >= BUSY_WAIT_NS) {
                char why[160];
                snprintf(why, sizeof(why), "vTPM %s is in use by another process%s and was not released within %llu s",
                         w->params.uuid, vtpm_state_pool(w->workers->state, NULL, NULL) ? " or pool host" : "",
                         (unsigned long long) (BUSY_WAIT_NS / 1000000000ull));
                worker_log(w, LOG_ERR, "%s; giving up", why);
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = -EBUSY, .detail = why,
                                                 .detail_code = EBUSY });
                return;
        }
        r = worker_retry_at(w, now + BUSY_RETRY_NS);
        if (r < 0) {
                worker_log_errno(w, LOG_ERR, r, "Failed to arm the retry timer");
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = r });
        }
}

/* Errors of a shared file system that is away (its server or its client), or
 * of a lock it dropped meanwhile: not a verdict on the vTPM, so no failure. */
static bool storage_away_error(int r) {
        return r == -ENOTCONN || r == -ENOLCK || r == -EBADFD || r == -ETIMEDOUT || r == -EHOSTDOWN ||
               r == -EHOSTUNREACH || r == -ECONNABORTED;
}

/* Returns true if the start is retried because the pool's storage is away. */
static bool worker_retry_storage(Worker *w, int error) {
        uint64_t now = now_ns();

        if (!storage_away_error(error) || !vtpm_state_pool(w->workers->state, NULL, NULL))
                return false;
        if (!w->storage_since_ns) {
                w->storage_since_ns = now;
                worker_log_errno(w, LOG_ERR, error, "The pool's shared storage cannot be reached; the guest's TPM "
                                 "waits for it (tried every %llu s)",
                                 (unsigned long long) (STORAGE_RETRY_NS / 1000000000ull));
        }
        if (worker_retry_at(w, now + STORAGE_RETRY_NS) < 0)
                return false;
        return true;
}

/* A worker whose state write failed because the pool's storage is away (or
 * dropped its lock) answers TPM failure; once the storage answers again it
 * is replaced, so that a new worker locks the vTPM again (or finds another
 * host owning it) and starts from the durable state. */
static int storage_probe_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Worker *w = userdata;
        int r;

        if (!w->process) {
                w->storage_source = sd_event_source_disable_unref(w->storage_source);
                return 0;
        }
        r = vtpm_state_storage_probe(w->workers->state, w->params.uuid);
        if (r < 0) {
                (void) sd_event_source_set_time_relative(s, STORAGE_RETRY_NS / 1000);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
                return 0;
        }
        w->storage_source = sd_event_source_disable_unref(w->storage_source);
        worker_log(w, LOG_NOTICE, "The pool's shared storage answers again after %.1f s: replacing the worker "
                   "(pid %d), which lost its lock, by one started from the durable state (PCRs and sessions reset)",
                   (double) (now_ns() - w->storage_since_ns) / 1e9, (int) w->process->pid);
        sigkill(w->process->pid);
        return 0;
}

static void worker_watch_storage(Worker *w, int error) {
        if (w->storage_source || !storage_away_error(error) || !vtpm_state_pool(w->workers->state, NULL, NULL))
                return;
        if (!w->storage_since_ns)
                w->storage_since_ns = now_ns();
        worker_log_errno(w, LOG_ERR, error, "A state write failed on the pool's shared storage: the guest's TPM "
                         "answers failure until the storage answers again");
        if (sd_event_add_time_relative(w->workers->event, &w->storage_source, CLOCK_MONOTONIC,
                                       STORAGE_RETRY_NS / 1000, 0, storage_probe_cb, w) < 0)
                worker_log(w, LOG_ERR, "Failed to arm the storage probe timer");
}

static void worker_crashed(Worker *w, const siginfo_t *si) {
        uint64_t delay;
        char why[96];

        if (si->si_code == CLD_EXITED)
                snprintf(why, sizeof(why), "exited with status %d", si->si_status);
        else if (si->si_status == SIGSYS)
                /* The kernel's audit log has the system call's number. */
                snprintf(why, sizeof(why), "killed by its seccomp filter (SIGSYS: a system call not allowed)");
        else
                snprintf(why, sizeof(why), "killed by signal %s", strsignal(si->si_status));

        if (!worker_backoff_crashed(&w->backoff, now_ns(), &delay)) {
                worker_log(w, LOG_ERR, "Worker (pid %d) %s; %u crashes within %llus, giving up", (int) si->si_pid,
                           why, w->backoff.crashes, (unsigned long long) (WORKER_CRASH_WINDOW_NS / 1000000000ull));
                w->events->gave_up(w->userdata);
                return;
        }
        worker_log(w, LOG_ERR, "Worker (pid %d) %s; restarting in %llums", (int) si->si_pid, why,
                   (unsigned long long) (delay / 1000000ull));
        if (worker_retry_at(w, now_ns() + delay) < 0) {
                w->events->gave_up(w->userdata);
                return;
        }
        w->events->exited(w->userdata);
}

/* Returns 1 if a message was read (more may follow), else 0. */
static int process_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Process *p = userdata;
        Workers *ws = p->workers;
        Worker *w = p->owner;
        uint8_t buf[IPC_MAX_PACKET + 1];
        IpcMsg m;
        ssize_t n;

        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* EOF: the process is ending; its exit is handled by the child source. */
                p->io_source = sd_event_source_disable_unref(p->io_source);
                return 0;
        }
        if (ipc_decode(buf, (size_t) n, &m) < 0) {
                log_msg(LOG_ERR, "Worker (pid %d) sent a malformed message (%zd bytes), killing it", (int) p->pid, n);
                sigkill(p->pid);
                return 0;
        }
        if (m.type == IPC_STATE) {
                /* Also from a worker that is stopping: its volatile state is the one to resume. */
                vtpm_state_write_result(ws->state, p->uuid, (StateKind) m.state.kind, m.state.error);
                if (m.state.error == 0) {
                        vtpm_state_record(ws->state, p->uuid, (StateKind) m.state.kind, m.state.seq);
                        /* Where the file system cannot exchange names each write took a spare. */
                        int k = vtpm_state_top_up_spares(ws->state, p->uuid, p->uid,
                                                         p->uid ? ws->config->worker_id_first : 0);
                        if (k < 0 && w)
                                worker_log_errno(w, LOG_WARNING, k, "Cannot make the vTPM's spare files again; its "
                                                 "next state writes may fail");
                        vtpm_state_changed(ws->state);
                        /* A suspended guest's state is committed at once, not batched: it is what its
                         * restore resumes, and a host often shuts down right after xl save. */
                        if (m.state.kind == STATE_KIND_VOLATILE && vtpm_state_suspended(ws->state, p->uuid, NULL))
                                (void) vtpm_state_commit(ws->state, false);
                } else if (w) {
                        if (log_ratelimit(&w->log_limit, "worker", w->params.domid, w->params.devid, w->params.uuid))
                                worker_log(w, LOG_ERR, "Failed to store %s state: %s; the guest's command failed, "
                                           "the previous state is intact",
                                           state_kind_to_string((StateKind) m.state.kind), strerror(-m.state.error));
                        worker_watch_storage(w, m.state.error);
                }
                return 1;
        }
        if (m.type == IPC_RESPONSE) {
                /* Also from a stopping worker: the command was answered. */
                WorkerCommandDone done = p->cmd_done;
                if (p->cmd_stale > 0) {
                        p->cmd_stale--;
                        return 1;
                }
                p->cmd_done = NULL;
                if (done)
                        done(p->cmd_userdata, 0, m.tpm.data, m.tpm.len);
                return 1;
        }
        if (m.type == IPC_READY) {
                /* The worker consumed (or, when not resuming, discarded) any saved
                 * volatile state: also a superseded one, the file is gone either way.
                 * The end of a suspend is committed at once: until then a restart after
                 * a SIGKILL would see the vTPM suspended still (and its file gone). */
                bool resumed = vtpm_state_suspended(ws->state, p->uuid, NULL);
                if (vtpm_state_volatile_consumed(ws->state, p->uuid) && resumed)
                        (void) vtpm_state_commit(ws->state, false);
                vtpm_state_changed(ws->state);
        }
        if (!w)
                return 1;
        switch (m.type) {
        case IPC_READY:
                p->ready = true;
                worker_log(w, LOG_DEBUG, "Worker (pid %d) mapped ring-ref %u and bound port %u (local %u)",
                           (int) p->pid, w->params.ring_ref, w->params.evtchn, m.ready.local_port);
                w->busy_since_ns = 0;
                if (w->storage_since_ns)
                        worker_log(w, LOG_NOTICE, "The pool's shared storage answers again: serving after %.1f s",
                                   (double) (now_ns() - w->storage_since_ns) / 1e9);
                w->storage_since_ns = 0;
                handover_end(w);
                w->params.quiet = false;
                w->events->ready(w->userdata);
                break;
        case IPC_FAILED:
                /* It ends by itself. */
                process_detach(p);
                if (m.failed.stage == IPC_STAGE_STATE && m.failed.error == -EBUSY) {
                        /* A previous worker of this vTPM still holds its state: try again shortly. */
                        worker_retry_busy(w);
                        break;
                }
                if (m.failed.stage == IPC_STAGE_STATE && worker_retry_storage(w, m.failed.error))
                        break;
                worker_fail(w, &(WorkerFailure){
                                       .state = m.failed.stage == IPC_STAGE_STATE,
                                       .pid = p->pid,
                                       .stage = (IpcStage) m.failed.stage,
                                       .error = m.failed.error,
                               });
                break;
        case IPC_STATS:
                w->events->stats(w->userdata, &m.stats);
                break;
        case IPC_STOPPED:
        case IPC_START:
        case IPC_STOP:
        case IPC_STATS_REQ:
        case IPC_STATE:
        case IPC_COMMAND:
        case IPC_RESPONSE:
                break;
        }
        return 1;
}

static int process_exit_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Process *p = userdata;
        Workers *ws = p->workers;
        Worker *crashed = NULL;
        char uuid[IPC_UUID_LEN];

        /* The exit can be dispatched before the worker's last messages (IPC_FAILED,
         * IPC_STATE of its volatile state) are read: read them first. */
        for (int i = 0; i < EXIT_DRAIN_MAX && p->io_source; i++)
                if (process_io_cb(p->io_source, p->fd, EPOLLIN, p) <= 0)
                        break;
        memcpy(uuid, p->uuid, sizeof(uuid));

        if (p->owner && !p->stopping)
                crashed = p->owner;
        else if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_msg(LOG_WARNING, "Stopped worker (pid %d) ended with %s %d", (int) si->si_pid,
                        si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        bool stopped = !crashed;
        process_free(p);
        if (stopped && ws->released)
                ws->released(ws->released_userdata, uuid);

        /* A worker waiting for this vTPM's previous process to let go of its state. */
        for (Worker *o = ws->workers; o; o = o->next)
                if (o->waiting && streq(o->params.uuid, uuid)) {
                        o->waiting = false;
                        if (!o->process && !ws->stopping_all)
                                worker_spawn(o);
                        break;
                }
        if (crashed)
                worker_crashed(crashed, si);
        return 0;
}

/* ---- the destination of a live migration between pool hosts (docs/pool.md) ---- */

/* A grant for this domain: the manifest then says suspended with the holder's state, and the
 * worker resumes from it as after a same-host migration. < 0: failed (w's owner told). */
static int handover_take(Worker *w) {
        char from[POOL_KEY_FINGERPRINT_HEX_SIZE];
        StateHandover g;
        int r;

        r = vtpm_state_handover_take(w->workers->state, w->params.uuid, w->params.handle, &g);
        if (r == 0)
                return 0;
        if (r < 0) {
                if (worker_retry_storage(w, r))
                        return r;
                worker_log_errno(w, LOG_ERR, r, "Cannot take over the vTPM from the pool host that held it");
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = r });
                return r;
        }
        state_handover_host_hex(&g, from);
        worker_log(w, LOG_NOTICE, "Pool host %s handed the vTPM over (suspended from its domain %u device %u)", from,
                   g.su.domid, g.su.devid);
        w->handover_asked = false;
        w->free_since_ns = 0;
        return 1;
}

/* The lock is held elsewhere: in a pool, possibly by the host this domain migrates from. */
static void handover_ask(Worker *w) {
        const WorkerParams *wp = &w->params;
        int r;

        if (w->handover_asked || !wp->handle_known || !vtpm_state_pool(w->workers->state, NULL, NULL))
                return;
        r = vtpm_state_handover_request(w->workers->state, wp->uuid, wp->handle, wp->domid, wp->devid);
        if (r == -ENOKEY)
                return;
        if (r < 0) {
                worker_log_errno(w, LOG_WARNING, r, "Cannot ask the pool host holding the vTPM to hand it over");
                return;
        }
        worker_log(w, LOG_INFO, "The vTPM is held by another process or pool host: asked for a handover");
        w->handover_asked = true;
}

/* The lock is free, but the grant may be on its way: wait for it a little. */
static bool handover_lock_free(Worker *w) {
        uint64_t now = now_ns();

        if (!w->free_since_ns)
                w->free_since_ns = now;
        if (now - w->free_since_ns < HANDOVER_GRACE_NS)
                return false;
        worker_log(w, LOG_WARNING, "The pool host holding the vTPM let go of it without handing it over (its vtpmd "
                   "was killed?): the guest's TPM is starting as after a power loss (PCRs and sessions reset, NV kept)");
        handover_end(w);
        return true;
}

/* A process for w; what goes wrong reaches w's owner as a failure (logged). */
static void worker_spawn(Worker *w) {
        Workers *ws = w->workers;
        const VtpmdConfig *c = ws->config;
        const WorkerParams *wp = &w->params;
        _cleanup_close_ int fd_parent = -1;
        VtpmKeys keys = { .dir_fd = -1 };
        IpcMsg m = { .type = IPC_START };
        bool restore;
        uint32_t uid = 0;
        Process *p = NULL;
        pid_t pid = 0;
        int r;

        if (previous_process_running(ws, wp->uuid)) {
                /* Its volatile state and its lock must be released first. */
                w->waiting = true;
                return;
        }
        if (wp->handle_known && handover_take(w) < 0)
                return;
        r = vtpm_state_prepare(ws->state, wp->uuid, c->auto_create, c->default_family, wp->domid, wp->devid, &keys);
        if (r == -EBUSY) {
                handover_ask(w);
                worker_retry_busy(w);
                return;
        }
        if (r >= 0 && w->handover_asked && !handover_lock_free(w)) {
                vtpm_keys_done(&keys);
                worker_retry_busy(w);
                return;
        }
        if (r == -ENOENT && !c->auto_create) {
                /* libxl invents a random UUID per boot when none is configured: never a fresh vTPM silently. */
                char why[160];
                worker_unknown_vtpm_message(wp->uuid, why, sizeof(why));
                worker_log(w, LOG_ERR, "%s", why);
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = r, .detail = why,
                                                 .detail_code = ENOENT });
                return;
        }
        if (r == -ENOKEY) {
                /* A pool whose key this host does not have yet: the guest's error node says so. */
                const char *why = "this host is not a member of the vTPM pool yet (vtpmd-ctl pool join)";
                worker_log(w, LOG_ERR, "Refusing the device: %s", why);
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = r, .detail = why,
                                                 .detail_code = ENOKEY });
                return;
        }
        if (r < 0) {
                if (worker_retry_storage(w, r))
                        return;
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = r });
                return;
        }
        if (keys.suspend.usec && wp->handle_known &&
            memcmp(keys.suspend.handle, wp->handle, DOMAIN_HANDLE_SIZE) != 0) {
                /* A fresh boot of another domain must not continue a saved guest's PCRs and sessions,
                 * and must not destroy what that guest's restore needs. */
                char why[256];
                worker_suspended_message(wp->uuid, &keys.suspend, why, sizeof(why));
                worker_log(w, LOG_ERR, "%s", why);
                vtpm_keys_done(&keys);
                worker_fail(w, &(WorkerFailure){ .state = true, .logged = true, .error = -EBUSY, .detail = why,
                                                 .detail_code = EBUSY });
                return;
        }
        /* Resume from saved volatile state only when the guest must not see a
         * reset: a daemon restart re-attaching, a frontend resume, or the
         * restore or migration of a suspended guest. */
        restore = keys.vol_seq != 0 && (wp->quiet || wp->resume || keys.suspend.usec);
        if (restore && keys.suspend.usec)
                worker_log(w, LOG_NOTICE, "Resuming the vTPM suspended from domain %u device %u %.1f s ago",
                           keys.suspend.domid, keys.suspend.devid, suspend_age_s(&keys.suspend));
        w->params.resume = false;
        if (wp->quiet && !restore)
                /* A running guest re-attached with nothing saved: vtpmd and its workers were killed. */
                worker_log(w, LOG_WARNING, "No saved volatile state (vtpmd was killed, or its stop could not save it): the guest's "
                           "TPM is starting as after a power loss (PCRs and sessions reset, NV kept)");
        if (keys.vol_seq != 0 && !restore) {
                /* A fresh power-on: the worker discards the saved volatile state
                 * before anything else, even if it then fails to map the ring. */
                vtpm_state_volatile_consumed(ws->state, wp->uuid);
                vtpm_state_changed(ws->state);
        }

        r = uid_alloc(ws, &uid);
        if (r < 0)
                r = worker_log_errno(w, LOG_ERR, r, "No uid left for a worker in WorkerIDs=%u-%u", c->worker_id_first,
                                     c->worker_id_last);
        else {
                r = spawn_process(ws, &pid, &fd_parent);
                if (r < 0)
                        r = worker_log_errno(w, LOG_ERR, r, "Failed to start worker %s", c->worker_path);
        }
        if (r >= 0) {
                p = calloc(1, sizeof(*p));
                if (!p) {
                        sigkill(pid);
                        (void) waitpid(pid, NULL, 0);
                        r = worker_log_errno(w, LOG_ERR, -ENOMEM, "Failed to start worker %s", c->worker_path);
                }
        }
        if (r < 0) {
                vtpm_keys_done(&keys);
                worker_fail(w, &(WorkerFailure){ .logged = true, .error = r });
                return;
        }
        *p = (Process){ .workers = ws, .owner = w, .pid = pid, .fd = TAKE_FD(fd_parent), .uid = uid };
        memcpy(p->uuid, wp->uuid, sizeof(p->uuid));
        p->next = ws->processes;
        ws->processes = p;
        w->process = p;

        r = sd_event_add_child(ws->event, &p->child_source, pid, WEXITED, process_exit_cb, p);
        if (r >= 0)
                r = sd_event_add_io(ws->event, &p->io_source, p->fd, EPOLLIN, process_io_cb, p);
        if (r < 0) {
                worker_log_errno(w, LOG_ERR, r, "Failed to watch worker");
                sigkill(pid);
                (void) waitpid(pid, NULL, 0);
                process_free(p);
                vtpm_keys_done(&keys);
                worker_fail(w, &(WorkerFailure){ .logged = true, .error = r });
                return;
        }

        m.start = (IpcStart){
                .domid = wp->domid,
                .devid = wp->devid,
                .ring_ref = wp->ring_ref,
                .evtchn_port = wp->evtchn,
                .family = keys.family,
                .flags = IPC_START_DURABLE | (c->trace ? IPC_START_TRACE : 0) |
                         (restore ? IPC_START_RESTORE_VOLATILE : 0) |
                         /* Only if nothing is resumed (a save the worker cannot resume is a power loss). */
                         (keys.family == TPM_FAMILY_2_0 ? IPC_START_TPM_STARTUP : 0),
                .min_perm_seq = keys.min_perm_seq,
                .vol_seq = restore ? keys.vol_seq : 0,
                .uid = uid,
                .gid = uid ? c->worker_id_first : 0,
                .memory_max = c->worker_memory_max,
        };
        memcpy(m.start.uuid, wp->uuid, sizeof(m.start.uuid));
        memcpy(m.start.data_key, keys.data_key, sizeof(m.start.data_key));
        snprintf(m.start.platform, sizeof(m.start.platform), "%s", c->platform_spec);
        /* START carries the vTPM's state directory as SCM_RIGHTS. */
        r = ipc_socket_send_nowait(p->fd, &m, keys.dir_fd);
        crypto_wipe(&m, sizeof(m));
        vtpm_keys_done(&keys);
        if (r < 0) {
                worker_log_errno(w, LOG_ERR, r, "Failed to send parameters to worker");
                /* its exit is a crash: the back-off restarts it */
                sigkill(pid);
                return;
        }
        worker_log(w, LOG_DEBUG, "Started worker pid %d for ring-ref %u port %u%s", (int) pid, wp->ring_ref,
                   wp->evtchn, restore ? ", resuming saved volatile state" : "");
}

/* ---- the device driver's operations ---- */

static int ops_start(void *ctx, const WorkerParams *params, const WorkerEvents *events, void *userdata,
                     Worker **ret) {
        Workers *ws = ctx;
        Worker *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        *w = (Worker){
                .workers = ws,
                .params = *params,
                .events = events,
                .userdata = userdata,
                .log_limit = RATELIMIT_INIT(10ull * 1000000000ull, 10),
        };
        w->next = ws->workers;
        ws->workers = w;
        /* Its owner may hear of a failure before this returns. */
        *ret = w;
        worker_spawn(w);
        return 0;
}

static void worker_unlink(Worker *w) {
        for (Worker **q = &w->workers->workers; *q; q = &(*q)->next)
                if (*q == w) {
                        *q = w->next;
                        break;
                }
}

static Worker *ops_stop(Worker *w, IpcStopMode mode) {
        if (!w)
                return NULL;
        w->retry_source = sd_event_source_disable_unref(w->retry_source);
        w->storage_source = sd_event_source_disable_unref(w->storage_source);
        if (w->process)
                process_stop(w->process, mode);
        worker_unlink(w);
        free(w);
        return NULL;
}

static int ops_request_stats(Worker *w) {
        IpcMsg m = { .type = IPC_STATS_REQ };

        if (!w || !w->process || !w->process->ready)
                return -EAGAIN;
        return process_send(w->process, &m);
}

int workers_restart_vtpm(Workers *ws, const char *uuid) {
        for (Worker *w = ws->workers; w; w = w->next) {
                if (!streq(w->params.uuid, uuid))
                        continue;
                if (!w->process || !w->process->ready)
                        return -EAGAIN;
                /* Like a daemon restart's re-attach: the new process resumes the volatile state the old one
                 * saves as it stops; worker_spawn waits for the old one to exit (and let go of the lock). */
                w->params.quiet = true;
                process_stop(w->process, IPC_STOP_SUSPEND);
                worker_spawn(w);
                return 0;
        }
        return -ENOENT;
}

int workers_vtpm_command(Workers *ws, const char *uuid, const uint8_t *cmd, size_t len, WorkerCommandDone done,
                         void *userdata) {
        IpcMsg m = { .type = IPC_COMMAND };
        int r;

        if (len < TPM_HEADER_SIZE || len > sizeof(m.tpm.data))
                return -EINVAL;
        for (Worker *w = ws->workers; w; w = w->next) {
                if (!streq(w->params.uuid, uuid))
                        continue;
                if (!w->process || !w->process->ready)
                        return -EAGAIN;
                if (w->process->cmd_done || w->process->cmd_stale)
                        return -EBUSY;
                memcpy(m.tpm.data, cmd, len);
                m.tpm.len = (uint32_t) len;
                r = process_send(w->process, &m);
                if (r < 0)
                        return r;
                w->process->cmd_done = done;
                w->process->cmd_userdata = userdata;
                return 0;
        }
        return -ENOENT;
}

void workers_vtpm_command_cancel(Workers *ws, void *userdata) {
        for (Process *p = ws->processes; p; p = p->next)
                if (p->cmd_done && p->cmd_userdata == userdata) {
                        p->cmd_done = NULL;
                        p->cmd_stale++; /* its answer must not be taken for the next command's */
                }
}

bool workers_vtpm_ready(Workers *ws, const char *uuid) {
        for (Worker *w = ws->workers; w; w = w->next)
                if (streq(w->params.uuid, uuid) && w->process && w->process->ready)
                        return true;
        return false;
}

static void ops_suspend_vtpm(void *ctx, const char *uuid, const StateSuspend *su) {
        Workers *ws = ctx;

        vtpm_state_suspend(ws->state, uuid, su);
        vtpm_state_changed(ws->state);
}

const WorkerOps workers_ops = {
        .start = ops_start,
        .stop = ops_stop,
        .request_stats = ops_request_stats,
        .suspend_vtpm = ops_suspend_vtpm,
};

/* ---- all of them ---- */

void workers_on_released(Workers *ws, void (*cb)(void *userdata, const char *uuid), void *userdata) {
        ws->released = cb;
        ws->released_userdata = userdata;
}

int workers_new(const VtpmdConfig *c, sd_event *event, VtpmState *state, Workers **ret) {
        Workers *ws = calloc(1, sizeof(*ws));

        if (!ws)
                return -ENOMEM;
        *ws = (Workers){ .config = c, .event = event, .state = state, .fork_server_fd = -1 };
        *ret = ws;
        return 0;
}

Workers *workers_free(Workers *ws) {
        if (!ws)
                return NULL;
        fork_server_stop(ws); /* it exits on EOF anyway */
        ws->fork_server_source = sd_event_source_unref(ws->fork_server_source);
        while (ws->workers) {
                Worker *w = ws->workers;
                ws->workers = w->next;
                sd_event_source_disable_unref(w->retry_source);
                sd_event_source_disable_unref(w->storage_source);
                free(w);
        }
        while (ws->processes) {
                ws->processes->owner = NULL;
                process_free(ws->processes);
        }
        free(ws);
        return NULL;
}

void workers_stop_all(Workers *ws, IpcStopMode mode) {
        ws->stopping_all = true;
        for (Process *p = ws->processes; p; p = p->next)
                process_stop(p, mode);
}

void workers_kill_all(Workers *ws) {
        for (Process *p = ws->processes; p; p = p->next) {
                log_msg(LOG_WARNING, "Worker pid %d did not stop in time, killing it", (int) p->pid);
                sigkill(p->pid);
        }
}

int workers_kill_vtpm(Workers *ws, const char *uuid) {
        int n = 0;

        for (Process *p = ws->processes; p; p = p->next)
                if (streq(p->uuid, uuid) && p->stopping) {
                        log_msg(LOG_WARNING, "Worker pid %d of vTPM %s did not stop in time, killing it",
                                (int) p->pid, uuid);
                        sigkill(p->pid);
                        n++;
                }
        return n;
}

bool workers_idle(Workers *ws) {
        return !ws->processes;
}

bool workers_attached(Workers *ws) {
        return ws->workers;
}
