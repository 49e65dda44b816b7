/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd: the supervisor. Owns every xenstore read and write and the lifecycle
 * of the workers (one vtpmd-worker process per connected vtpm device). It
 * never maps guest memory and never runs libtpms.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>
#include <xenstore.h>

#include "config.h"
#include "control.h"
#include "journal.h"
#include "log.h"
#include "parse.h"
#include "platform.h"
#include "spawn.h"
#include "state.h"
#include "util.h"
#include "vtpmd-config.h"
#include "vtpmd.h"

#define STOP_TIMEOUT_USEC (15ull * 1000000ull)

static char *find_worker(void) {
        const char *env = getenv("VTPMD_WORKER");
        char self[PATH_MAX], *slash, *p;
        ssize_t n;

        if (env && *env)
                return strdup(env);
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = '\0';
                slash = strrchr(self, '/');
                if (slash) {
                        *slash = '\0';
                        if (asprintf(&p, "%s/vtpmd-worker", self) >= 0) {
                                if (access(p, X_OK) == 0)
                                        return p;
                                free(p);
                        }
                }
        }
        return strdup(VTPMD_LIBEXECDIR "/vtpmd-worker");
}

static int xs_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        char **vec;

        /* Drain every queued watch event; xs_check_watch does not block. */
        while ((vec = xs_check_watch(d->xs))) {
                device_handle_watch(d, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
                free(vec);
        }
        if (errno != EAGAIN) {
                log_error_errno(-errno, "Lost the connection to xenstore");
                sd_event_exit(d->event, EXIT_FAILURE);
        }
        return 0;
}

static void update_status(Daemon *d) {
        sd_notifyf(false, "STATUS=%u devices, %u connected, %u failed", d->n_devices,
                   daemon_count_phase(d, DEV_CONNECTED), daemon_count_phase(d, DEV_FAILED));
}

static int status_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        update_status(d);
        (void) sd_event_source_set_time_relative(s, 5 * 1000000ull);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int stop_check_cb(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;
        if (d->shutting_down && !d->workers)
                sd_event_exit(d->event, EXIT_SUCCESS);
        return 0;
}

static int stop_timeout_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        for (Worker *w = d->workers; w; w = w->next) {
                log_msg(LOG_WARNING, "Worker pid %d did not stop in time, killing it", (int) w->pid);
                (void) kill(w->pid, SIGKILL);
        }
        sd_event_exit(d->event, EXIT_SUCCESS);
        return 0;
}

static int signal_cb(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        if (d->shutting_down)
                return 0;
        log_msg(LOG_INFO, "Received %s, stopping %u worker(s); guests stay connected", strsignal((int) si->ssi_signo),
                d->n_devices);
        sd_notify(false, "STOPPING=1");
        d->shutting_down = true;
        /* A daemon stop must not move any xenbus state: workers save and exit quietly. */
        workers_stop_all(d, IPC_STOP_SUSPEND);
        (void) sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0, stop_timeout_cb, d);
        return 0;
}

/* The worker fork server (spawn.h). Started with the daemon, restarted by
 * the next worker start after it exits, but not within FORK_SERVER_RETRY_NS
 * of a failure: workers are exec'ed meanwhile. */
#define FORK_SERVER_RETRY_NS (10ull * 1000000000ull)

static int fork_server_exit_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Daemon *d = userdata;

        if (d->fork_server_fd >= 0) {
                /* Not asked to: it failed. */
                if (si->si_code == CLD_EXITED)
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) exited with status %d; exec'ing workers "
                                "until it is restarted", (int) si->si_pid, si->si_status);
                else
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) killed by signal %s; exec'ing workers "
                                "until it is restarted", (int) si->si_pid, strsignal(si->si_status));
                d->fork_server_fd = safe_close(d->fork_server_fd);
                d->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
        }
        d->fork_server_source = sd_event_source_unref(s);
        d->fork_server_pid = 0;
        return 0;
}

static void fork_server_start(Daemon *d) {
        _cleanup_close_ int fd = -1;
        pid_t pid;
        int r;

        r = spawn_fork_server(d->worker_path, &pid, &fd);
        if (r >= 0) {
                r = sd_event_add_child(d->event, &d->fork_server_source, pid, WEXITED, fork_server_exit_cb, d);
                if (r < 0) {
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                }
        }
        if (r < 0) {
                log_msg(LOG_WARNING, "Failed to start the worker fork server %s --fork-server: %s; exec'ing workers",
                        d->worker_path, strerror(-r));
                d->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
                return;
        }
        d->fork_server_fd = TAKE_FD(fd);
        d->fork_server_pid = pid;
        log_msg(LOG_DEBUG, "Worker fork server started, pid %d", (int) pid);
}

/* Kills it; its exit callback reaps it. */
static void fork_server_stop(Daemon *d) {
        d->fork_server_fd = safe_close(d->fork_server_fd);
        if (d->fork_server_pid > 0)
                (void) kill(d->fork_server_pid, SIGKILL);
}

int daemon_spawn_worker(Daemon *d, pid_t *ret_pid, int *ret_fd) {
        if (d->worker_fork_server) {
                if (d->fork_server_fd < 0 && d->fork_server_pid == 0 && now_ns() >= d->fork_server_retry_ns)
                        fork_server_start(d);
                if (d->fork_server_fd >= 0) {
                        int r = spawn_from_fork_server(d->fork_server_fd, ret_pid, ret_fd);
                        if (r >= 0)
                                return 0;
                        log_msg(LOG_WARNING, "Worker fork server (pid %d) failed to fork a worker: %s; stopping it, "
                                "exec'ing workers for %llu s", (int) d->fork_server_pid, strerror(-r),
                                FORK_SERVER_RETRY_NS / 1000000000ull);
                        fork_server_stop(d);
                        d->fork_server_retry_ns = now_ns() + FORK_SERVER_RETRY_NS;
                }
        }
        return spawn_worker(d->worker_path, ret_pid, ret_fd);
}

/* Workers run under their own uids (WorkerIDs=) and own their vTPM's files;
 * vtpmd reads and manages them through the workers' group. */
static int join_worker_group(Daemon *d) {
        if (!d->worker_id_first)
                return 0;
        if (geteuid() != 0) {
                log_msg(LOG_NOTICE, "Not running as root: workers keep uid %u (WorkerIDs= needs root)",
                        (unsigned) geteuid());
                d->worker_id_first = d->worker_id_last = 0;
                return 0;
        }
        gid_t gid = (gid_t) d->worker_id_first;
        int n = getgroups(0, NULL);
        if (n < 0)
                return log_error_errno(-errno, "Cannot read the supplementary groups");
        _cleanup_free_ gid_t *groups = calloc((size_t) n + 1, sizeof(gid_t));
        if (!groups)
                return log_error_errno(-ENOMEM, "Out of memory");
        n = getgroups(n, groups);
        if (n < 0)
                return log_error_errno(-errno, "Cannot read the supplementary groups");
        for (int i = 0; i < n; i++)
                if (groups[i] == gid)
                        return 0;
        groups[n++] = gid;
        if (setgroups((size_t) n, groups) < 0)
                return log_error_errno(-errno, "Cannot join group %u, the workers' group (WorkerIDs=%u-%u; "
                                       "vtpmd.service needs CAP_SETGID)", (unsigned) gid, d->worker_id_first,
                                       d->worker_id_last);
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *config_error = NULL;
        VtpmdConfig cfg;
        Daemon d = {};
        StateConfig sc;
        Platform *platform = NULL;
        sigset_t mask;
        int r;

        log_open("vtpmd", LOG_STYLE_DAEMON);
        if (journal_is_stderr())
                log_set_sink(journal_log_sink);
        config_init(&cfg);
        r = config_parse_argv(&cfg, argc, argv, &config_error);
        if (r != 0) {
                if (r < 0)
                        fprintf(stderr, "vtpmd: %s\n", config_error ?: strerror(-r));
                config_done(&cfg);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        log_set_max_level(cfg.log_level);
        d.self_domid = cfg.self_domid;
        d.default_family = cfg.default_family;
        d.initwait_dwell_ns = cfg.initwait_dwell_ns;
        d.auto_create = cfg.auto_create;
        d.trace = cfg.trace;
        d.worker_id_first = cfg.worker_id_first;
        d.worker_id_last = cfg.worker_id_last;
        d.worker_memory_max = cfg.worker_memory_max;
        d.worker_fork_server = cfg.worker_fork_server;
        d.fork_server_fd = -1;
        if (cfg.worker_path)
                d.worker_path = strdup(cfg.worker_path);
        sc = cfg.state;

        r = platform_parse(cfg.platform_spec, d.self_domid, &platform);
        if (r < 0) {
                log_msg(LOG_ERR, "Invalid --platform \"%s\": %s (expected xen or sim:DIR)", cfg.platform_spec,
                        strerror(-r));
                r = EXIT_FAILURE;
                goto finish;
        }
        d.platform_spec = strdup(platform_describe(platform));
        platform_free(platform);
        if (!d.worker_path)
                d.worker_path = find_worker();
        if (!d.platform_spec || !d.worker_path) {
                (void) log_error_errno(-ENOMEM, "Out of memory");
                r = EXIT_FAILURE;
                goto finish;
        }
        if (access(d.worker_path, X_OK) < 0) {
                log_error_errno(-errno, "Worker binary %s is not executable", d.worker_path);
                r = EXIT_FAILURE;
                goto finish;
        }
        snprintf(d.be_root, sizeof(d.be_root), "/local/domain/%u/backend/vtpm", d.self_domid);

        /* vtpmd holds the master key: no core dump, no ptrace by its uid. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        r = join_worker_group(&d);
        if (r < 0) {
                r = EXIT_FAILURE;
                goto finish;
        }

        /* Before any thread exists (libxenstore starts one for watches). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        sc.default_family = d.default_family;
        r = vtpm_state_open(&sc, &d.state);
        if (r < 0) {
                r = EXIT_FAILURE;
                goto finish;
        }

        r = sd_event_default(&d.event);
        if (r < 0) {
                (void) log_error_errno(r, "Failed to create event loop");
                r = EXIT_FAILURE;
                goto finish;
        }
        (void) vtpm_state_attach_event(d.state, d.event);
        d.manufacture = (ManufactureContext){
                .event = d.event,
                .state = d.state,
                .worker_path = d.worker_path,
                .platform = d.platform_spec,
                .trace = d.trace,
                .worker_uid = WORKER_UID_MANUFACTURE(&d),
                .worker_gid = WORKER_UID_MANUFACTURE(&d) ? WORKER_GID(&d) : 0,
                .worker_memory_max = d.worker_memory_max,
        };

        d.xs = xs_open(0);
        if (!d.xs) {
                log_error_errno(-errno, "Failed to connect to xenstore%s%s", getenv("XENSTORED_PATH") ? " at " : "",
                                strempty(getenv("XENSTORED_PATH")));
                r = EXIT_FAILURE;
                goto finish;
        }
        if (!xs_watch(d.xs, d.be_root, "be") || !xs_watch(d.xs, "@releaseDomain", "rel")) {
                log_error_errno(-errno, "Failed to watch %s", d.be_root);
                r = EXIT_FAILURE;
                goto finish;
        }
        r = sd_event_add_io(d.event, &d.xs_source, xs_fileno(d.xs), EPOLLIN, xs_io_cb, &d);
        if (r < 0) {
                (void) log_error_errno(r, "Failed to watch the xenstore connection");
                r = EXIT_FAILURE;
                goto finish;
        }
        (void) sd_event_add_signal(d.event, NULL, SIGTERM, signal_cb, &d);
        (void) sd_event_add_signal(d.event, NULL, SIGINT, signal_cb, &d);
        (void) sd_event_add_post(d.event, NULL, stop_check_cb, &d);
        (void) sd_event_add_time_relative(d.event, NULL, CLOCK_MONOTONIC, 5 * 1000000ull, 0, status_timer_cb, &d);
        (void) sd_event_set_watchdog(d.event, true);

        /* Before anything touches a guest's devices: a vtpmd that cannot
         * serve its control socket (another one running?) must change nothing. */
        r = control_open(&d, cfg.control_path, cfg.control_gid, cfg.have_control_gid, &d.control);
        if (r < 0) {
                r = EXIT_FAILURE;
                goto finish;
        }

        /* Loads libtpms and OpenSSL while we read xenstore. */
        if (d.worker_fork_server)
                fork_server_start(&d);

        /* Replay what already exists (the watch's first fire does it again, harmlessly). */
        device_scan_all(&d);

        log_msg(LOG_INFO, "vtpmd " VTPMD_VERSION " serving %s on %s, %u device(s) found; state in %s, %u host-TPM "
                "command(s) at start", d.be_root, d.platform_spec, d.n_devices, sc.state_dir,
                d.state->host_tpm_commands);
        sd_notify(false, "READY=1");
        update_status(&d);

        r = sd_event_loop(d.event);
        if (r < 0)
                r = EXIT_FAILURE;

finish:
        d.control = control_close(d.control);
        fork_server_stop(&d); /* it exits on EOF anyway */
        d.fork_server_source = sd_event_source_unref(d.fork_server_source);
        devices_release_all(&d);
        d.state = vtpm_state_close(d.state); /* commits what is left */
        d.xs_source = sd_event_source_disable_unref(d.xs_source);
        if (d.xs)
                xs_close(d.xs);
        sd_event_unref(d.event);
        free(d.platform_spec);
        free(d.worker_path);
        config_done(&cfg);
        return r;
}
