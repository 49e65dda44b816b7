/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-worker: one guest's vTPM. Started by vtpmd with fd 3 = its end of a
 * SOCK_SEQPACKET socketpair (protocol/ipc.h), by exec or forked by
 * `vtpmd-worker --fork-server` (spawn.h). It waits for START, sets itself up
 * (setup.h: the guest's page and event channel, the state, libtpms and the
 * TPM thread, confinement), and serves the page (DESIGN.md "Data path",
 * page-server.h) from the I/O thread (main thread), which also owns the event
 * channel and the IPC socket; the commands run on the TPM thread
 * (tpm-thread.h). Offline (manufacturing) it answers COMMAND messages
 * instead. A STOP, a signal or the supervisor going away ends it in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "ipc.h"
#include "ipc-socket.h"
#include "log.h"
#include "page-server.h"
#include "ratelimit.h"
#include "setup.h"
#include "spawn.h"
#include "tpm-thread.h"
#include "worker-state.h"
#include "util.h"

#define IPC_FD WORKER_IPC_FD

/* Anything a guest can trigger is rate-limited: at most 10 lines per 10 s. */
#define WORKER_LOG_INTERVAL_NS (10ull * 1000000000ull)
#define WORKER_LOG_BURST 10u

typedef struct Worker {
        IpcStart start;
        int ipc_fd;
        int signal_fd;
        int state_fd; /* from START until the Setup takes it */
        Setup *setup;
        IpcStats stats; /* offline, and events; the page server counts the rest */
        RateLimit rl_bad_response;
} Worker;

static bool worker_trace(const Worker *w) {
        return w->start.flags & IPC_START_TRACE;
}

/* No guest: the supervisor manufactures the vTPM over COMMAND/RESPONSE. */
static bool worker_offline(const Worker *w) {
        return w->start.flags & IPC_START_OFFLINE;
}

/* What the supervisor is told (STATS) and the last line says. */
static IpcStats worker_stats(Worker *w) {
        IpcStats s = w->stats;
        PageServer *server = w->setup ? setup_server(w->setup) : NULL;
        if (server) {
                const IpcStats *p = page_server_stats(server);
                s.commands += p->commands;
                s.rejected += p->rejected;
                s.cancels += p->cancels;
        }
        return s;
}

static int ipc_send(int fd, const IpcMsg *m) {
        return ipc_socket_send(fd, m, -1);
}

/* The start failed: said once in the log (unless the reason is logged
 * already) and once to the supervisor. */
static void ipc_send_failed(int fd, IpcStage stage, int error, bool logged) {
        IpcMsg m = { .type = IPC_FAILED, .failed = { .stage = stage, .error = error < 0 ? error : -EIO } };
        if (!logged)
                log_msg(LOG_INFO, "start failed at stage %s: %s", strempty(ipc_stage_to_string(stage)),
                        strerror(-m.failed.error));
        (void) ipc_send(fd, &m);
}

/* Receives one packet. Returns 1 and the decoded message, 0 on EOF,
 * -EBADMSG for an invalid packet, other negative errno on errors. Only a
 * START{DURABLE} may carry an fd (into *ret_fd; with ret_fd NULL such a
 * START is invalid); any other is closed (lib/ipc-socket.h). */
static int ipc_recv(int fd, IpcMsg *ret, int *ret_fd) {
        return ipc_socket_recv(fd, ret, ret_fd);
}

/* A command handed to the TPM thread is done: post its response (or a failure response). */
static void worker_finish(Worker *w, bool recheck) {
        PageServer *server = setup_server(w->setup);
        const uint8_t *out;
        size_t len;
        int r;

        if (!tpm_thread_take_result(setup_tpm(w->setup), &r, &out, &len))
                return;
        page_server_complete(server, r, out, len);

        /* A request may already be waiting; its event may have come while busy. */
        if (recheck)
                page_server_check(server);
}

/* Waits for an in-flight command (used when stopping). */
static void worker_drain(Worker *w) {
        PageServer *server = setup_server(w->setup);
        while (server && page_server_busy(server)) {
                uint64_t v;
                ssize_t n = read(tpm_thread_done_fd(setup_tpm(w->setup)), &v, sizeof(v)); /* blocking eventfd */
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        log_msg(LOG_INFO, "waiting for the TPM thread failed: %m");
                        return;
                }
                worker_finish(w, false);
        }
}

static void worker_release(Worker *w) {
        w->setup = setup_free(w->setup);
        w->state_fd = safe_close(w->state_fd);
        explicit_wipe(w->start.data_key, sizeof(w->start.data_key));
}

/* Orderly stop: finish the in-flight command, then reset or save the TPM. */
static void worker_stop(Worker *w, IpcStopMode mode, const char *why, bool tell_supervisor) {
        TpmThread *t = setup_tpm(w->setup);
        int r;

        log_msg(LOG_INFO, "stopping (%s, %s)", why, mode == IPC_STOP_RESET ? "reset" : "suspend");
        worker_drain(w);
        tpm_thread_stop(t);

        switch (mode) {
        case IPC_STOP_RESET:
                tpm_thread_shutdown(t);
                break;
        case IPC_STOP_SUSPEND: {
                /* No Shutdown: the guest must see no reset. */
                TpmInstance *tpm = tpm_thread_instance(t);
                if (tpm)
                        worker_state_save_volatile(setup_state(w->setup), tpm);
                break;
        }
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

/* Waits for one of p to be ready. Returns 0, or a negative errno (logged). */
static int worker_poll(struct pollfd *p, nfds_t n) {
        while (poll(p, n, -1) < 0) {
                int r = -errno;
                if (r != -EINTR) {
                        log_msg(LOG_INFO, "poll failed: %s", strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* The IPC socket (p[0]) and the signalfd (p[1]): before start, and offline. */
static int worker_poll_ipc(Worker *w, struct pollfd p[static 2]) {
        p[0] = (struct pollfd){ .fd = w->ipc_fd, .events = POLLIN };
        p[1] = (struct pollfd){ .fd = w->signal_fd, .events = POLLIN };
        return worker_poll(p, 2);
}

/* The signalfd is readable (SIGTERM, SIGINT): stop. Returns true once stopped. */
static bool worker_on_signal(Worker *w, IpcStopMode mode) {
        struct signalfd_siginfo si;
        if (read(w->signal_fd, &si, sizeof(si)) != sizeof(si))
                return false;
        worker_stop(w, mode, strsignal((int) si.ssi_signo), true);
        return true;
}

/* Waits for IPC_START. Returns 1 with w->start filled, 0 to exit quietly. */
static int worker_wait_start(Worker *w) {
        for (;;) {
                struct pollfd p[2];
                int r = worker_poll_ipc(w, p);
                if (r < 0)
                        return r;
                if (p[1].revents) {
                        log_msg(LOG_INFO, "signalled before start; exiting");
                        return 0;
                }
                if (!p[0].revents)
                        continue;

                IpcMsg m;
                int fd = -1;
                r = ipc_recv(w->ipc_fd, &m, &fd);
                if (r == 0) {
                        log_msg(LOG_INFO, "supervisor went away before start; exiting");
                        return 0;
                }
                if (r < 0 || m.type != IPC_START) {
                        safe_close(fd);
                        explicit_wipe(&m, sizeof(m));
                        ipc_send_failed(w->ipc_fd, IPC_STAGE_PARAMS, r < 0 ? r : -EBADMSG, false);
                        return -EBADMSG;
                }
                w->start = m.start;
                w->state_fd = fd;
                explicit_wipe(&m, sizeof(m));
                return 1;
        }
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
        int r = tpm_thread_run(setup_tpm(w->setup), cmd->data, cmd->len, 0, &out, &n);
        n = page_server_answer((TpmFamily) w->start.family, &w->rl_bad_response, &w->stats, r, &out, n, sizeof(resp.tpm.data), err);
        if (worker_trace(w))
                log_hex("response", out, n);
        memcpy(resp.tpm.data, out, n);
        resp.tpm.len = (uint32_t) n;
        return ipc_send(w->ipc_fd, &resp);
}

/* A COMMAND while serving a guest (vtpmd-ctl pcrread): only TPM2_PCR_Read, which changes nothing the
 * guest could notice, and only between two of the guest's commands; while one is in flight the
 * answer is TPM_RC_RETRY and the supervisor asks again. Not counted in the guest's figures. */
static int worker_online_command(Worker *w, const IpcTpm *cmd) {
        IpcMsg resp = { .type = IPC_RESPONSE };
        uint8_t err[TPM_HEADER_SIZE];
        const uint8_t *out = err;
        IpcStats scratch = {};
        TpmHeader h;
        size_t n = TPM_HEADER_SIZE;
        int r;

        if ((TpmFamily) w->start.family != TPM_FAMILY_2_0 || tpm_header_parse(cmd->data, cmd->len, &h) < 0 ||
            h.code != TPM2_CC_PCR_READ)
                tpm_error_response((TpmFamily) w->start.family, tpm_rc_failure((TpmFamily) w->start.family), err);
        else if (page_server_busy(setup_server(w->setup)))
                tpm_error_response(TPM_FAMILY_2_0, TPM2_RC_RETRY, err);
        else {
                r = tpm_thread_run(setup_tpm(w->setup), cmd->data, cmd->len, 0, &out, &n);
                n = page_server_answer(TPM_FAMILY_2_0, &w->rl_bad_response, &scratch, r, &out, n,
                                       sizeof(resp.tpm.data), err);
        }
        memcpy(resp.tpm.data, out, n);
        resp.tpm.len = (uint32_t) n;
        return ipc_send(w->ipc_fd, &resp);
}

/* One message from the supervisor. Returns true when the worker should exit. */
static bool worker_on_ipc(Worker *w) {
        bool offline = worker_offline(w);
        IpcMsg m;
        int r = ipc_recv(w->ipc_fd, &m, NULL);
        if (r == -EAGAIN || r == -EINTR)
                return false;
        if (r == 0 || (r < 0 && r != -EBADMSG)) {
                /* Supervisor gone: keep what a restart can resume from. There
                 * is nothing to resume for a vTPM being manufactured: an orderly
                 * shutdown keeps what was written. */
                worker_stop(w, offline ? IPC_STOP_RESET : IPC_STOP_SUSPEND, "supervisor gone", false);
                return true;
        }
        if (r < 0) {
                log_msg(LOG_INFO, "ignoring invalid message from the supervisor");
                return false;
        }
        switch (m.type) {
        case IPC_COMMAND:
                r = offline ? worker_offline_command(w, &m.tpm) : worker_online_command(w, &m.tpm);
                if (r < 0) {
                        log_msg(LOG_INFO, "sending RESPONSE failed: %s", strerror(-r));
                        worker_stop(w, IPC_STOP_RESET, "supervisor gone", false);
                        return true;
                }
                return false;
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
        case IPC_RESPONSE:
                break;
        }
        log_msg(LOG_INFO, "ignoring unexpected %s message", strempty(ipc_type_to_string(m.type)));
        return false;
}

static int worker_serve_offline(Worker *w) {
        for (;;) {
                struct pollfd p[2];
                int r = worker_poll_ipc(w, p);
                if (r < 0)
                        return r;
                if (p[1].revents && worker_on_signal(w, IPC_STOP_RESET))
                        return 0;
                if (p[0].revents && worker_on_ipc(w))
                        return 0;
        }
}

static int worker_serve(Worker *w) {
        Setup *s = w->setup;
        int done_fd = tpm_thread_done_fd(setup_tpm(s));

        /* The Linux frontend sends its first command before we connect. */
        page_server_check(setup_server(s));

        for (;;) {
                struct pollfd p[4] = {
                        { .fd = done_fd, .events = POLLIN },
                        { .fd = setup_event_fd(s), .events = POLLIN },
                        { .fd = w->ipc_fd, .events = POLLIN },
                        { .fd = w->signal_fd, .events = POLLIN },
                };
                int r = worker_poll(p, ELEMENTSOF(p));
                if (r < 0)
                        return r;
                if (p[0].revents & POLLIN) {
                        uint64_t v;
                        if (read(done_fd, &v, sizeof(v)) == sizeof(v))
                                worker_finish(w, true);
                }
                if (p[1].revents & (POLLERR | POLLNVAL)) {
                        log_msg(LOG_INFO, "event channel failed (revents 0x%x)", (unsigned) p[1].revents);
                        return -EIO;
                }
                if (p[1].revents & POLLIN) {
                        r = setup_on_event(s, &w->stats.events);
                        if (r < 0) {
                                log_msg(LOG_INFO, "event channel failed: %s", strerror(-r));
                                return r;
                        }
                }
                if (p[2].revents && worker_on_ipc(w))
                        return 0;
                if (p[3].revents && worker_on_signal(w, IPC_STOP_SUSPEND))
                        return 0;
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
        w->state_fd = -1;
        w->rl_bad_response = RATELIMIT_INIT(WORKER_LOG_INTERVAL_NS, WORKER_LOG_BURST);
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

        SetupFailure failure = {};
        r = setup_new(&w->start, w->ipc_fd, TAKE_FD(w->state_fd), &w->setup);
        if (r < 0)
                failure = (SetupFailure){ .stage = IPC_STAGE_PARAMS, .error = r };
        else
                r = setup_run(w->setup, &failure);
        if (r < 0) {
                ipc_send_failed(w->ipc_fd, failure.stage, failure.error, failure.logged);
                worker_release(w);
                return 1;
        }

        /* Manufacturing and OpenSSL set-up leave freed heap behind; idle
         * private memory is a benchmark target (<= 1 MiB per worker). */
        (void) malloc_trim(0);

        uint32_t port = setup_local_port(w->setup);
        IpcMsg ready = { .type = IPC_READY, .ready = { .local_port = port } };
        r = ipc_send(w->ipc_fd, &ready);
        if (r < 0)
                log_msg(LOG_INFO, "sending READY failed: %s", strerror(-r));
        log_msg(LOG_INFO, "ready: local port %u", port);

        r = worker_offline(w) ? worker_serve_offline(w) : worker_serve(w);
        if (r < 0) {
                worker_release(w);
                return 1;
        }
        return 0;
}
