/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd: the supervisor. Owns every xenstore read and write and the lifecycle
 * of the workers (one vtpmd-worker process per connected vtpm device). It
 * never maps guest memory and never runs libtpms.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>
#include <unistd.h>
#include <xenstore.h>

#include "config.h"
#include "log.h"
#include "parse.h"
#include "platform.h"
#include "state.h"
#include "util.h"
#include "vtpmd.h"

#define DEFAULT_INITWAIT_DWELL_MS 100u
#define DEFAULT_COUNTER_INTERVAL_S 60u
#define COMMIT_DELAY_USEC (1000ull * 1000ull)
#define STOP_TIMEOUT_USEC (15ull * 1000000ull)

static void help(void) {
        printf("Usage: vtpmd [OPTIONS]\n"
               "\n"
               "Xen vTPM backend: serves every guest's vtpm device with its own libtpms instance.\n"
               "\n"
               "  --platform xen|sim:DIR   Xen to talk to (default: xen)\n"
               "  --domid N                the backend domain this daemon serves (default: 0)\n"
               "  --default-tpm 2.0|1.2    TPM family of new vTPMs (default: 2.0)\n"
               "  --log-level LEVEL        err, warning, notice, info, debug (default: info)\n"
               "  --trace                  log TPM payloads at debug level (contains guest secrets)\n"
               "  --initwait-ms MS         keep InitWait visible at least this long (default: %u)\n"
               "  --worker PATH            the vtpmd-worker binary\n"
               "  --state-dir PATH         vTPM state root (default: " VTPMD_STATEDIR ")\n"
               "  --key-source tpm|file:PATH  master key sealed to the host TPM (default), or a key file\n"
               "  --host-tpm TCTI          host TPM 2.0 (default: " HOST_TPM_DEFAULT_TCTI ")\n"
               "  --srk-handle HANDLE      persistent SRK (default: create the TCG template primary)\n"
               "  --pcr-policy LIST        seal the master key to these sha256 PCRs, e.g. 0,2,7 (default: none)\n"
               "  --nv-index HANDLE        host NV counter for rollback protection (default: 0x%08x)\n"
               "  --counter-interval SEC   at most one counter increment per interval (default: %u)\n"
               "  --auto-create yes|no     create state for unknown vTPM UUIDs (default: yes)\n"
               "  -h, --help               show this help\n"
               "  --version                show the version\n",
               DEFAULT_INITWAIT_DWELL_MS, HOST_TPM_DEFAULT_NV_INDEX, DEFAULT_COUNTER_INTERVAL_S);
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

static int commit_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        (void) vtpm_state_commit(d->state, false);
        /* Still owing a rate-limited counter increment: look again later. */
        if (d->state->dirty || d->state->manifest.counter == d->state->committed_counter + 1) {
                (void) sd_event_source_set_time_relative(s, COMMIT_DELAY_USEC);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

/* Something in the manifest changed: write it soon, batched. */
void daemon_state_changed(Daemon *d) {
        int enabled = SD_EVENT_OFF;

        if (!d->commit_source) {
                if (sd_event_add_time_relative(d->event, &d->commit_source, CLOCK_MONOTONIC, COMMIT_DELAY_USEC, 0,
                                               commit_cb, d) < 0)
                        (void) vtpm_state_commit(d->state, false);
                return;
        }
        (void) sd_event_source_get_enabled(d->commit_source, &enabled);
        if (enabled == SD_EVENT_OFF) {
                (void) sd_event_source_set_time_relative(d->commit_source, COMMIT_DELAY_USEC);
                (void) sd_event_source_set_enabled(d->commit_source, SD_EVENT_ONESHOT);
        }
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

int main(int argc, char **argv) {
        enum { OPT_PLATFORM = 0x100, OPT_DOMID, OPT_DEFAULT_TPM, OPT_LOG_LEVEL, OPT_TRACE, OPT_INITWAIT, OPT_WORKER,
               OPT_VERSION, OPT_STATE_DIR, OPT_KEY_SOURCE, OPT_HOST_TPM, OPT_SRK_HANDLE, OPT_PCR_POLICY,
               OPT_NV_INDEX, OPT_COUNTER_INTERVAL, OPT_AUTO_CREATE };
        static const struct option options[] = {
                { "platform", required_argument, NULL, OPT_PLATFORM },
                { "domid", required_argument, NULL, OPT_DOMID },
                { "default-tpm", required_argument, NULL, OPT_DEFAULT_TPM },
                { "log-level", required_argument, NULL, OPT_LOG_LEVEL },
                { "trace", no_argument, NULL, OPT_TRACE },
                { "initwait-ms", required_argument, NULL, OPT_INITWAIT },
                { "worker", required_argument, NULL, OPT_WORKER },
                { "state-dir", required_argument, NULL, OPT_STATE_DIR },
                { "key-source", required_argument, NULL, OPT_KEY_SOURCE },
                { "host-tpm", required_argument, NULL, OPT_HOST_TPM },
                { "srk-handle", required_argument, NULL, OPT_SRK_HANDLE },
                { "pcr-policy", required_argument, NULL, OPT_PCR_POLICY },
                { "nv-index", required_argument, NULL, OPT_NV_INDEX },
                { "counter-interval", required_argument, NULL, OPT_COUNTER_INTERVAL },
                { "auto-create", required_argument, NULL, OPT_AUTO_CREATE },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        Daemon d = {
                .default_family = TPM_FAMILY_2_0,
                .initwait_dwell_ns = DEFAULT_INITWAIT_DWELL_MS * 1000000ull,
                .auto_create = true,
        };
        StateConfig sc = {
                .state_dir = VTPMD_STATEDIR,
                .key_source = KEY_SOURCE_TPM,
                .counter_interval_ns = DEFAULT_COUNTER_INTERVAL_S * 1000000000ull,
        };
        const char *platform_spec = "xen";
        Platform *platform = NULL;
        sigset_t mask;
        uint32_t v;
        int c, r;

        log_open("vtpmd");
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_PLATFORM:
                        platform_spec = optarg;
                        break;
                case OPT_DOMID:
                        if (parse_u32_max(optarg, UINT16_MAX, &d.self_domid) < 0) {
                                fprintf(stderr, "vtpmd: --domid: not a domain id: %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_DEFAULT_TPM:
                        if (tpm_family_from_string(optarg, &d.default_family) < 0) {
                                fprintf(stderr, "vtpmd: --default-tpm: expected 2.0 or 1.2, got %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_LOG_LEVEL:
                        r = log_level_from_string(optarg);
                        if (r < 0) {
                                fprintf(stderr, "vtpmd: --log-level: unknown level %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        log_set_max_level(r);
                        break;
                case OPT_TRACE:
                        d.trace = true;
                        break;
                case OPT_INITWAIT:
                        if (parse_u32_max(optarg, 60000, &v) < 0) {
                                fprintf(stderr, "vtpmd: --initwait-ms: expected 0..60000, got %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        d.initwait_dwell_ns = (uint64_t) v * 1000000ull;
                        break;
                case OPT_WORKER:
                        d.worker_path = strdup(optarg);
                        break;
                case OPT_STATE_DIR:
                        if (optarg[0] != '/') {
                                fprintf(stderr, "vtpmd: --state-dir: must be an absolute path: %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        sc.state_dir = optarg;
                        break;
                case OPT_KEY_SOURCE:
                        if (streq(optarg, "tpm"))
                                sc.key_source = KEY_SOURCE_TPM;
                        else if (strncmp(optarg, "file:", 5) == 0 && optarg[5] == '/') {
                                sc.key_source = KEY_SOURCE_FILE;
                                sc.key_file = optarg + 5;
                        } else {
                                fprintf(stderr, "vtpmd: --key-source: expected tpm or file:/ABSOLUTE/PATH, got %s\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_HOST_TPM:
                        if (!*optarg) {
                                fprintf(stderr, "vtpmd: --host-tpm: empty TCTI\n");
                                return EXIT_FAILURE;
                        }
                        sc.host_tpm.tcti = optarg;
                        break;
                case OPT_SRK_HANDLE:
                        if (parse_u32_hex_or_dec(optarg, &sc.host_tpm.srk_handle) < 0 ||
                            (sc.host_tpm.srk_handle >> 24) != 0x81) {
                                fprintf(stderr, "vtpmd: --srk-handle: expected a persistent handle 0x81xxxxxx, got %s\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_PCR_POLICY:
                        r = parse_pcr_list(optarg, 24, sc.host_tpm.pcrs, HOST_TPM_MAX_PCRS, &sc.host_tpm.n_pcrs);
                        if (r < 0) {
                                fprintf(stderr, "vtpmd: --pcr-policy: expected distinct PCRs 0-23 like 0,2,7, got %s\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_NV_INDEX:
                        if (parse_u32_hex_or_dec(optarg, &sc.host_tpm.nv_index) < 0 ||
                            sc.host_tpm.nv_index < 0x01800000u || sc.host_tpm.nv_index > 0x01bfffffu) {
                                fprintf(stderr, "vtpmd: --nv-index: expected an owner NV index 0x01800000-0x01bfffff, "
                                        "got %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        break;
                case OPT_COUNTER_INTERVAL:
                        if (parse_u32_max(optarg, 86400, &v) < 0) {
                                fprintf(stderr, "vtpmd: --counter-interval: expected 0..86400 seconds, got %s\n",
                                        optarg);
                                return EXIT_FAILURE;
                        }
                        sc.counter_interval_ns = (uint64_t) v * 1000000000ull;
                        break;
                case OPT_AUTO_CREATE:
                        if (!streq(optarg, "yes") && !streq(optarg, "no")) {
                                fprintf(stderr, "vtpmd: --auto-create: expected yes or no, got %s\n", optarg);
                                return EXIT_FAILURE;
                        }
                        d.auto_create = streq(optarg, "yes");
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case OPT_VERSION:
                        printf("vtpmd " VTPMD_VERSION "\n");
                        return EXIT_SUCCESS;
                default:
                        fprintf(stderr, "Try 'vtpmd --help'.\n");
                        return EXIT_FAILURE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "vtpmd: unexpected argument: %s\n", argv[optind]);
                return EXIT_FAILURE;
        }

        r = platform_parse(platform_spec, d.self_domid, &platform);
        if (r < 0) {
                log_msg(LOG_ERR, "Invalid --platform \"%s\": %s (expected xen or sim:DIR)", platform_spec,
                        strerror(-r));
                return EXIT_FAILURE;
        }
        d.platform_spec = strdup(platform_describe(platform));
        platform_free(platform);
        if (!d.worker_path)
                d.worker_path = find_worker();
        if (!d.platform_spec || !d.worker_path)
                return log_error_errno(-ENOMEM, "Out of memory"), EXIT_FAILURE;
        if (access(d.worker_path, X_OK) < 0) {
                log_error_errno(-errno, "Worker binary %s is not executable", d.worker_path);
                return EXIT_FAILURE;
        }
        snprintf(d.be_root, sizeof(d.be_root), "/local/domain/%u/backend/vtpm", d.self_domid);

        /* Before any thread exists (libxenstore starts one for watches). */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        sc.default_family = d.default_family;
        r = vtpm_state_open(&sc, &d.state);
        if (r < 0)
                return EXIT_FAILURE;

        r = sd_event_default(&d.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create event loop"), EXIT_FAILURE;

        d.xs = xs_open(0);
        if (!d.xs) {
                log_error_errno(-errno, "Failed to connect to xenstore%s%s", getenv("XENSTORED_PATH") ? " at " : "",
                                strempty(getenv("XENSTORED_PATH")));
                return EXIT_FAILURE;
        }
        if (!xs_watch(d.xs, d.be_root, "be") || !xs_watch(d.xs, "@releaseDomain", "rel")) {
                log_error_errno(-errno, "Failed to watch %s", d.be_root);
                return EXIT_FAILURE;
        }
        r = sd_event_add_io(d.event, &d.xs_source, xs_fileno(d.xs), EPOLLIN, xs_io_cb, &d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch the xenstore connection"), EXIT_FAILURE;
        (void) sd_event_add_signal(d.event, NULL, SIGTERM, signal_cb, &d);
        (void) sd_event_add_signal(d.event, NULL, SIGINT, signal_cb, &d);
        (void) sd_event_add_post(d.event, NULL, stop_check_cb, &d);
        (void) sd_event_add_time_relative(d.event, NULL, CLOCK_MONOTONIC, 5 * 1000000ull, 0, status_timer_cb, &d);
        (void) sd_event_set_watchdog(d.event, true);

        /* Replay what already exists (the watch's first fire does it again, harmlessly). */
        device_scan_all(&d);

        log_msg(LOG_INFO, "vtpmd " VTPMD_VERSION " serving %s on %s, %u device(s) found; state in %s, %u host-TPM "
                "command(s) at start", d.be_root, d.platform_spec, d.n_devices, sc.state_dir,
                d.state->host_tpm_commands);
        sd_notify(false, "READY=1");
        update_status(&d);

        r = sd_event_loop(d.event);

        d.state = vtpm_state_close(d.state);
        xs_close(d.xs);
        sd_event_unref(d.event);
        free(d.platform_spec);
        free(d.worker_path);
        return r < 0 ? EXIT_FAILURE : r;
}
