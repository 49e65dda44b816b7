/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd: the supervisor. Owns every xenstore read and write and the lifecycle
 * of the workers (one vtpmd-worker process per connected vtpm device). It
 * never maps guest memory and never runs libtpms.
 *
 * This file only puts the pieces together on one sd-event loop: the
 * configuration (config.c), the state (state.c), the xenstore view
 * (xs-view.c), the workers (workers.c), the device driver (device.c) and
 * the control socket (control.c, admin.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "device.h"
#include "journal.h"
#include "log.h"
#include "manufacture.h"
#include "domain.h"
#include "platform.h"
#include "state.h"
#include "util.h"
#include "vtpmd-config.h"
#include "worker-ids.h"
#include "workers.h"
#include "xs-view.h"

#define STOP_TIMEOUT_USEC (15ull * 1000000ull)
/* LSB's and systemd's "program is not configured": vtpmd.service does not
 * restart on it (RestartPreventExitStatus=), a fix of the file is needed. */
#define EXIT_NOTCONFIGURED 6
#define STATUS_INTERVAL_USEC (5ull * 1000000ull)
/* How often a pool host looks for other hosts' handover requests (docs/pool.md): shared
 * file systems notify no other client, and a migration's destination waits this long at most. */
#define HANDOVER_POLL_USEC (100ull * 1000ull)

typedef struct Daemon {
        VtpmdConfig *config; /* as parsed, with the worker path, platform and WorkerIDs= resolved */
        char *worker_path;
        char *platform;
        Platform *platform_obj;
        DomainCtl *domains; /* NULL: no way to tell a suspend (then every end is a reset) */
        sd_event *event;
        VtpmState *state;
        XsConnection *xs_conn;
        XsView *xs;
        sd_event_source *xs_source;
        sd_event_source *timer_source; /* the devices' timers */
        Workers *workers;
        Devices *devices;
        ManufactureContext manufacture;
        AdminContext admin;
        Control *control;
        bool shutting_down;
} Daemon;

static void daemon_done(Daemon *d) {
        d->control = control_close(d->control);
        d->devices = devices_free(d->devices);
        d->workers = workers_free(d->workers);
        d->state = vtpm_state_close(d->state); /* commits what is left */
        d->timer_source = sd_event_source_disable_unref(d->timer_source);
        d->xs_source = sd_event_source_disable_unref(d->xs_source);
        d->xs = xs_view_free(d->xs);
        d->xs_conn = xs_connection_close(d->xs_conn);
        d->event = sd_event_unref(d->event);
        d->domains = domainctl_free(d->domains);
        d->platform_obj = platform_free(d->platform_obj);
        free(d->platform);
        free(d->worker_path);
}

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

/* The platform as workers are told it, and the worker binary. */
static int resolve_config(Daemon *d) {
        VtpmdConfig *c = d->config;
        Platform *platform = NULL;
        int r;

        r = platform_parse(c->platform_spec, c->self_domid, &platform);
        if (r < 0) {
                log_msg(LOG_ERR, "Invalid --platform \"%s\": %s (expected xen or sim:DIR)", c->platform_spec,
                        strerror(-r));
                return r;
        }
        d->platform = strdup(platform_describe(platform));
        d->platform_obj = platform;
        r = domainctl_open(platform, &d->domains);
        if (r < 0)
                log_msg(LOG_WARNING, "Cannot ask the hypervisor why domains shut down (%s); a saved or migrated "
                        "guest's vTPM will be reset instead of suspended", strerror(-r));
        d->worker_path = c->worker_path ? strdup(c->worker_path) : find_worker();
        if (!d->platform || !d->worker_path)
                return log_error_errno(-ENOMEM, "Out of memory");
        if (access(d->worker_path, X_OK) < 0)
                return log_error_errno(-errno, "Worker binary %s is not executable", d->worker_path);
        c->platform_spec = d->platform;
        c->worker_path = d->worker_path;
        return 0;
}

/* ---- the loop's callbacks ---- */

static void watch_cb(void *userdata, const char *path, const char *token) {
        Daemon *d = userdata;
        devices_handle_watch(d->devices, path, token);
}

static int xs_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Daemon *d = userdata;
        int r = xs_connection_dispatch(d->xs_conn, watch_cb, d);

        if (r < 0) {
                log_error_errno(r, "Lost the connection to xenstore");
                sd_event_exit(d->event, EXIT_FAILURE);
        }
        return 0;
}

static uint64_t clock_cb(void *userdata) {
        return now_ns();
}

static uint64_t realtime_cb(void *userdata) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ull + (uint64_t) ts.tv_nsec / 1000u;
}

static bool vtpm_refused_cb(void *userdata, const char *uuid, char *why, size_t size) {
        Daemon *d = userdata;
        bool member;

        if (!vtpm_state_pool(d->state, NULL, &member) || member || vtpm_state_pool_refresh(d->state) > 0)
                return false;
        snprintf(why, size, "this host is not a member of the vTPM pool yet (vtpmd-ctl pool join)");
        return true;
}

static int domain_info_cb(void *userdata, uint32_t domid, DomainInfo *ret) {
        Daemon *d = userdata;

        if (!d->domains)
                return -EOPNOTSUPP;
        return domainctl_info(d->domains, domid, ret);
}

static int devices_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        devices_run_timers(d->devices);
        return 0;
}

static void schedule_cb(void *userdata, uint64_t when_ns) {
        Daemon *d = userdata;
        /* Rounded up: the devices' timers are due at the nanosecond. */
        uint64_t usec = (when_ns + 999) / 1000;
        int r;

        if (d->timer_source) {
                r = sd_event_source_set_time(d->timer_source, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(d->timer_source, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time(d->event, &d->timer_source, CLOCK_MONOTONIC, usec, 0, devices_timer_cb, d);
        if (r < 0)
                log_error_errno(r, "Failed to arm timer");
}

static void update_status(Daemon *d) {
        sd_notifyf(false, "STATUS=%u devices, %u connected, %u failed", devices_count(d->devices),
                   devices_count_phase(d->devices, DEV_CONNECTED), devices_count_phase(d->devices, DEV_FAILED));
}

static int status_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        update_status(d);
        (void) sd_event_source_set_time_relative(s, STATUS_INTERVAL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* ---- live migration between pool hosts ---- */

static void handover_answer(Daemon *d, const char *uuid) {
        char to[POOL_KEY_FINGERPRINT_HEX_SIZE];
        StateHandover req;
        bool own;
        int r;

        if (vtpm_state_handover_read_request(d->state, uuid, &req, &own) < 0 || own)
                return;
        state_handover_host_hex(&req, to);
        if (devices_hand_over(d->devices, uuid, req.su.handle, to)) {
                /* The grant follows once the worker has saved and exited (vtpm_released). */
                if (vtpm_state_handover_begin(d->state, uuid, req.su.handle) < 0)
                        log_msg(LOG_ERR, "Too many handovers at once: vTPM %s is saved but not granted to %s", uuid, to);
                return;
        }
        if (workers_has_vtpm(d->workers, uuid))
                return;
        /* Suspended here with no worker (its domain gone, or vtpmd restarted since): grant it as saved. */
        r = vtpm_state_handover_grant(d->state, uuid, req.su.handle);
        if (r > 0)
                log_msg(LOG_NOTICE, "Handed the suspended vTPM %s over to pool host %s", uuid, to);
        else if (r < 0)
                log_msg(LOG_ERR, "Cannot hand the vTPM %s over to pool host %s: %s", uuid, to, strerror(-r));
}

static int handover_poll_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        char **uuids = NULL;

        if (!d->shutting_down && vtpm_state_handover_requests(d->state, &uuids) >= 0) {
                for (char **u = uuids; *u; u++) {
                        handover_answer(d, *u);
                        free(*u);
                }
                free(uuids);
        }
        (void) sd_event_source_set_time_relative(s, HANDOVER_POLL_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* A stopped worker exited: a handover it let go for is granted, then devices waiting for it go on. */
static void vtpm_released(void *userdata, const char *uuid) {
        Daemon *d = userdata;
        int r;

        r = vtpm_state_handover_released(d->state, uuid);
        if (r > 0)
                log_msg(LOG_NOTICE, "Handed vTPM %s over to the pool host that asked for it", uuid);
        else if (r < 0)
                log_msg(LOG_ERR, "Cannot write the handover of vTPM %s: %s; it stays suspended here", uuid,
                        strerror(-r));
        devices_vtpm_released(d->devices, uuid);
}

static int stop_check_cb(sd_event_source *s, void *userdata) {
        Daemon *d = userdata;
        if (d->shutting_down && workers_idle(d->workers))
                sd_event_exit(d->event, EXIT_SUCCESS);
        return 0;
}

static int stop_timeout_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        workers_kill_all(d->workers);
        sd_event_exit(d->event, EXIT_SUCCESS);
        return 0;
}

static int signal_cb(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;

        if (d->shutting_down)
                return 0;
        unsigned n = devices_count_attached(d->devices);
        if (n > 0)
                log_msg(LOG_INFO, "Received %s, stopping %u worker(s); guests stay connected",
                        strsignal((int) si->ssi_signo), n);
        else
                log_msg(LOG_INFO, "Received %s, stopping (no guest attached)", strsignal((int) si->ssi_signo));
        sd_notify(false, "STOPPING=1");
        d->shutting_down = true;
        /* A daemon stop must not move any xenbus state: workers save and exit quietly. */
        devices_shutdown(d->devices);
        workers_stop_all(d->workers, IPC_STOP_SUSPEND);
        (void) sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, STOP_TIMEOUT_USEC, 0, stop_timeout_cb, d);
        return 0;
}

/* ---- putting it together ---- */

/* The state, the loop and the objects on it; nothing touches a guest yet. */
static int daemon_open(Daemon *d) {
        VtpmdConfig *c = d->config;
        int r;

        r = vtpm_state_open(&c->state, &d->state);
        if (r < 0)
                return r;
        r = sd_event_default(&d->event);
        if (r < 0)
                return log_error_errno(r, "Failed to create event loop");
        (void) vtpm_state_attach_event(d->state, d->event);

        r = xs_connection_open(&d->xs_conn);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to xenstore%s%s", getenv("XENSTORED_PATH") ? " at " : "",
                                       strempty(getenv("XENSTORED_PATH")));
        r = xs_view_new(c->self_domid, &xs_connection_ops, d->xs_conn, &d->xs);
        if (r >= 0)
                r = workers_new(c, d->event, d->state, &d->workers);
        if (r >= 0)
                r = devices_new(&(DevicesEnv){ .xs = d->xs,
                                               .worker_ops = &workers_ops,
                                               .worker_ctx = d->workers,
                                               .initwait_dwell_ns = c->initwait_dwell_ns,
                                               .now = clock_cb,
                                               .schedule = schedule_cb,
                                               .domain_info = domain_info_cb,
                                               .realtime_usec = realtime_cb,
                                               .vtpm_refused = vtpm_refused_cb,
                                               .userdata = d },
                                &d->devices);
        if (r < 0)
                return log_error_errno(r, "Out of memory");
        workers_on_released(d->workers, vtpm_released, d);
        if (c->state.pool_dir)
                (void) sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, HANDOVER_POLL_USEC, 0,
                                                  handover_poll_cb, d);

        r = devices_watch(d->devices);
        if (r < 0)
                return r;
        r = sd_event_add_io(d->event, &d->xs_source, xs_connection_fd(d->xs_conn), EPOLLIN, xs_io_cb, d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the xenstore connection");
        (void) sd_event_add_signal(d->event, NULL, SIGTERM, signal_cb, d);
        (void) sd_event_add_signal(d->event, NULL, SIGINT, signal_cb, d);
        (void) sd_event_add_post(d->event, NULL, stop_check_cb, d);
        (void) sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, STATUS_INTERVAL_USEC, 0, status_timer_cb,
                                          d);
        (void) sd_event_set_watchdog(d->event, true);

        /* The offline worker of manufacturing and reset runs as the first worker uid. */
        uint32_t manufacture_uid = c->worker_id_first ? c->worker_id_first + 1 : 0;
        d->manufacture = (ManufactureContext){
                .event = d->event,
                .state = d->state,
                .worker_path = c->worker_path,
                .platform = c->platform_spec,
                .trace = c->trace,
                .worker_uid = manufacture_uid,
                .worker_gid = manufacture_uid ? c->worker_id_first : 0,
                .worker_memory_max = c->worker_memory_max,
                .ca_cert_file = c->ek_ca_cert,
                .ca_key_file = c->ek_ca_key,
        };
        /* The admin's CA must be usable from the start (a key file others can read is refused). */
        r = manufacture_check_ca(&d->manufacture);
        if (r < 0)
                return r;
        d->admin = (AdminContext){
                .event = d->event,
                .config = c,
                .state = d->state,
                .devices = d->devices,
                .workers = d->workers,
                .manufacture = &d->manufacture,
        };
        return 0;
}

/* Xen's locks, one per backend domain's tree in this host's xenstore. */
#define BACKEND_LOCK_DIR "/run/vtpmd"

/* One vtpmd per backend tree (/local/domain/<domid>/backend/vtpm): a second one would re-attach the first one's
 * devices (and fail them with "unknown vTPM"), share the host NV counter and
 * hand out the same worker uids. The lock is held until vtpmd exits; the
 * file names its holder for the next one that tries. */
static int lock_backend(const VtpmdConfig *c, int *ret_fd) {
        _cleanup_free_ char *path = NULL;
        const char *sim = strncmp(c->platform_spec, "sim:", 4) == 0 ? c->platform_spec + 4 : NULL;
        int r;

        if (sim)
                r = asprintf(&path, "%s/vtpmd-backend-%" PRIu32 ".lock", sim, c->self_domid);
        else {
                if (mkdir(BACKEND_LOCK_DIR, 0755) < 0 && errno != EEXIST)
                        return log_error_errno(-errno, "Cannot create %s", BACKEND_LOCK_DIR);
                r = asprintf(&path, "%s/backend-%" PRIu32 ".lock", BACKEND_LOCK_DIR, c->self_domid);
        }
        if (r < 0) {
                path = NULL;
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot open %s", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno != EWOULDBLOCK)
                        return log_error_errno(-errno, "Cannot lock %s", path);
                char holder[PATH_MAX + 64] = "";
                ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
                holder[n > 0 ? n : 0] = 0;
                holder[strcspn(holder, "\n")] = 0;
                log_msg(LOG_ERR, "Another vtpmd serves domain %" PRIu32 "'s backends on %s (%s, lock %s); not starting",
                        c->self_domid, sim ? c->platform_spec : "this host", holder[0] ? holder : "pid unknown", path);
                return -EBUSY;
        }
        char line[PATH_MAX + 96];
        int len;
        /* The range its workers will run under (none when not root: worker_ids_join_groups). */
        if (c->worker_id_first && geteuid() == 0)
                len = snprintf(line, sizeof(line), "pid %d, state in %s, workers %u-%u\n", (int) getpid(),
                               c->state.state_dir, c->worker_id_first, c->worker_id_last);
        else
                len = snprintf(line, sizeof(line), "pid %d, state in %s\n", (int) getpid(), c->state.state_dir);
        if (len < 0 || (size_t) len >= sizeof(line) || ftruncate(fd, 0) < 0 ||
            pwrite(fd, line, (size_t) len, 0) != (ssize_t) len)
                return log_error_errno(-EIO, "Cannot write %s", path);
        /* After our line is written: of two vtpmds starting at once, the later check sees the other. */
        r = sim ? worker_ids_check_instances(c, sim, "vtpmd-backend-", path)
                : worker_ids_check_instances(c, BACKEND_LOCK_DIR, "backend-", path);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int run(VtpmdConfig *config) {
        _cleanup_(daemon_done) Daemon d = { .config = config };
        _cleanup_close_ int backend_lock = -1;
        sigset_t mask;
        int r;

        r = resolve_config(&d);
        if (r < 0)
                return EXIT_FAILURE;
        /* Before anything of the host is touched. */
        r = lock_backend(config, &backend_lock);
        if (r < 0)
                return r == -ENOTUNIQ ? EXIT_NOTCONFIGURED : EXIT_FAILURE;
        /* vtpmd holds the master key: no core dump, no ptrace by its uid. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        /* Workers run under their own uids (WorkerIDs=) and own their vTPM's
         * files; vtpmd reads and manages them through the workers' group. */
        r = worker_ids_check(config);
        if (r < 0)
                return r == -ENOTUNIQ ? EXIT_NOTCONFIGURED : EXIT_FAILURE;
        if (worker_ids_join_groups(config) < 0)
                return EXIT_FAILURE;

        /* Before any thread exists (libxenstore starts one for watches). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (daemon_open(&d) < 0)
                return EXIT_FAILURE;
        /* Before anything touches a guest's devices: a vtpmd that cannot
         * serve its control socket (another one running?) must change nothing. */
        if (control_open(&d.admin, config->control_path, config->control_gid, config->have_control_gid, &d.control) < 0)
                return EXIT_FAILURE;
        /* Loads libtpms and OpenSSL while we read xenstore. */
        if (config->worker_fork_server)
                workers_start_fork_server(d.workers);
        devices_scan(d.devices);

        log_msg(LOG_INFO, "vtpmd " VTPMD_VERSION " serving %s on %s, %u device(s) found; state in %s, %u host-TPM "
                "command(s) at start", xs_view_backend_root(d.xs), config->platform_spec, devices_count(d.devices),
                config->state.state_dir, vtpm_state_host_tpm_commands(d.state));
        sd_notify(false, "READY=1");
        update_status(&d);

        /* Its exit code: sd_event_exit() above. */
        r = sd_event_loop(d.event);
        return r < 0 ? EXIT_FAILURE : r;
}

int main(int argc, char **argv) {
        _cleanup_(config_done) VtpmdConfig config;
        _cleanup_free_ char *error = NULL;
        int r;

        config_init(&config);
        log_open("vtpmd", LOG_STYLE_DAEMON);
        if (journal_is_stderr())
                log_set_sink(journal_log_sink);
        r = config_parse_argv(&config, argc, argv, &error);
        if (r < 0)
                fprintf(stderr, "vtpmd: %s\n", error ?: strerror(-r));
        if (r < 0)
                return r == -ENOMEM ? EXIT_FAILURE : EXIT_NOTCONFIGURED;
        if (r > 0)
                return EXIT_SUCCESS;
        log_set_max_level(config.log_level);
        config.state.default_family = config.default_family;
        return run(&config);
}
