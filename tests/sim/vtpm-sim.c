/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-sim: starts and drives a whole simulated Xen host in a directory: the
 * simulated xenstored, vtpmd, and simulated guests, and plays xl for them
 * (toolstack.h does what libxl does).
 *
 *   vtpm-sim start   --dir DIR [--guests N] [--tpm 2.0|1.2] [--no-host-tpm] [--pool-dir PATH]
 *   vtpm-sim attach  --dir DIR NAME [--uuid UUID] [--tpm 2.0|1.2] [--tcp-port P]
 *   vtpm-sim detach  --dir DIR NAME [--uuid UUID | --devid N]
 *   vtpm-sim reboot  --dir DIR NAME
 *   vtpm-sim destroy --dir DIR NAME
 *   vtpm-sim save    --dir DIR NAME FILE
 *   vtpm-sim restore --dir DIR FILE
 *   vtpm-sim migrate --dir DIR NAME [--to DIR2] [--fail]
 *   vtpm-sim rename  --dir DIR OLD NEW
 *   vtpm-sim status  --dir DIR [--json]
 *   vtpm-sim stop    --dir DIR
 *   vtpm-sim restart-daemon   --dir DIR
 *   vtpm-sim restart-host-tpm --dir DIR
 *
 * save is xl save: the guest suspends (control/shutdown, toolstack.h), FILE
 * gets the domain's name, domain UUID and vTPM UUIDs and families (JSON), the
 * domain is destroyed while it reads suspended (its vtpm devices removed as
 * libxl's FORCE_ON removal does), and the guest process ends. The record
 * remembers FILE: start does not boot a saved guest (xendomains restores it).
 * restore is xl restore: refused while a domain has the name; otherwise a
 * new domid with the saved domain UUID and name, the vtpm devices with the
 * saved UUIDs (each waited for to be InitWait; vTPMs are never created here),
 * and a guest process started as a restored kernel (vtpm-sim-guest
 * --resumed). The same FILE can be restored again once the name is free.
 * migrate is xl migrate to this host, in xl's order: the destination domain
 * NAME--incoming (new domid, same domain UUID, same vTPM UUIDs, InitWait)
 * while the source runs; the source suspended; with --fail the destination is
 * destroyed, the source resumed (a cancelled suspend) and migrate exits 1;
 * else the source becomes NAME--migratedaway, the destination NAME, the guest
 * process continues as the destination domid (resume on DIR/NAME.domctl),
 * and once its frontends are Connected the source is destroyed (its last line
 * says how long after the source's suspend began the destination was Connected). The guest
 * process and its files keep NAME throughout.
 * migrate --to DIR2 is xl migrate to the host simulated in DIR2 (its own
 * xenstored, host TPM and vtpmd), the same steps with DIR2's toolstack as the
 * receiver: NAME--incoming is created there, and instead of continuing, a new
 * guest process starts in DIR2 as a resumed kernel once the source is
 * NAME--migratedaway (no memory is copied). After the source's destruction its
 * process ends and DIR forgets the guest: its record and DIR2/NAME.tcti are
 * DIR2's. Refused if DIR2 has a guest or domain NAME. Both DIRs are locked,
 * in path order.
 * rename is xl rename; the guest's files DIR/OLD.* and its record follow.
 *
 * The host TPM is a real swtpm with its state in DIR/hosttpm (kept across stop
 * and start, so it keeps its seeds, like a machine's TPM across reboots);
 * vtpmd keeps its vTPM state in DIR/state. With --no-host-tpm (fixed by the
 * first start of a DIR) vtpmd uses the key file DIR/master.key instead.
 * --pool-dir PATH gives vtpmd --pool-dir PATH (the pool's shared state root;
 * several DIRs may share it); it is recorded once vtpmd started with it, so
 * restart-daemon and later starts of DIR pass it again.
 * restart-daemon does not wait for a save, restore or migrate that is running
 * (they wait for vtpmd), as systemd restarting vtpmd does not wait for xl.
 *
 * Environment: VTPMD, VTPM_XENSTORED, VTPM_SIM_GUEST (binaries; default: the
 * build tree next to this program), VTPM_SIM_SWTPM (default: swtpm from PATH),
 * VTPM_SIM_SWTPM_LOGLEVEL (swtpm's --log level; 20 dumps every command),
 * VTPMD_LOG_LEVEL (passed as --log-level), VTPMD_WORKER_SPAWN (as --worker-spawn),
 * VTPM_SIM_TIMEOUT_SCALE (multiplies libxl's 10 s timeouts),
 * VTPM_SIM_CONNECT_TIMEOUT (seconds to wait for Connected, default 30),
 * VTPM_SIM_GUEST_TIMEOUT_SCALE (passed to the guests as --timeout-scale; they
 * otherwise read VTPM_SIM_TIMEOUT_SCALE themselves).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "../common/testlib.h"
#include "domain.h"
#include "launcher-state.h"
#include "parse.h"
#include "toolstack.h"
#include "util.h"

#define READY_TIMEOUT_MS 30000u
/* start without --guests: every guest the DIR knows, or one (--guests 0: none, a host without guests). */
#define START_GUESTS_KNOWN UINT32_MAX
#define XENSTORED_START_TIMEOUT_MS 30000u
#define GUEST_SHUTDOWN_TIMEOUT_MS 10000u /* the guest waits 5 s for backend Closing */
#define DAEMON_STOP_TIMEOUT_MS 15000u
/* Like a unit's TimeoutStopSec: longer than vtpmd's own 15 s for its workers
 * to save their state, so a SIGKILL means vtpmd itself hung. */
#define DAEMON_RESTART_STOP_TIMEOUT_MS 20000u
#define SWTPM_START_TIMEOUT_MS 10000u
#define KILL_TIMEOUT_MS 5000u
#define LOG_TAIL_LINES 20

typedef struct Sim {
        char *dir;
        char *xsdir;
        char *xs_socket;
        char *hosttpm_dir;
        char *swtpm_socket;
        char *self_dir;
        int lock_fd;
        int daemon_lock_fd;     /* DIR/sim/vtpmd.lock: who may stop or start vtpmd */
        double scale;
        unsigned connect_timeout_ms;
} Sim;

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static inline void strv_freep(char ***l) {
        sim_strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)

static const char *const state_names[] = {
        "Unknown", "Initialising", "InitWait", "Initialised", "Connected",
        "Closing", "Closed", "Reconfiguring", "Reconfigured",
};

static const char *state_name(int s) {
        if (s < 0)
                return "missing";
        if ((size_t) s < ELEMENTSOF(state_names))
                return state_names[s];
        return "invalid";
}

_printf_(1, 2) static char *xasprintf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = vstrprintf(fmt, ap);
        va_end(ap);
        if (!s) {
                fputs("vtpm-sim: out of memory\n", stderr);
                exit(1);
        }
        return s;
}

/* The condition loops below re-check every 10 ms until their deadline. */
static void tick(void) {
        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

static void print_log_tail(const char *what, const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        char *ring[LOG_TAIL_LINES] = {};
        size_t cap = 0, n = 0;
        ssize_t len;

        fprintf(stderr, "vtpm-sim: --- last %d lines of %s (%s) ---\n", LOG_TAIL_LINES, path, what);
        if (!f) {
                fprintf(stderr, "vtpm-sim: (cannot open: %m)\n");
                return;
        }
        while ((len = getline(&line, &cap, f)) > 0) {
                free(ring[n % LOG_TAIL_LINES]);
                ring[n % LOG_TAIL_LINES] = strdup(line);
                n++;
        }
        for (size_t i = n > LOG_TAIL_LINES ? n - LOG_TAIL_LINES : 0; i < n; i++) {
                const char *l = ring[i % LOG_TAIL_LINES];
                fprintf(stderr, "  %s%s", strempty(l), l && l[strlen(l) - 1] == '\n' ? "" : "\n");
        }
        for (size_t i = 0; i < LOG_TAIL_LINES; i++)
                free(ring[i]);
        fprintf(stderr, "vtpm-sim: --- end of %s ---\n", path);
}

/* Binary next to this program (or as the env var says). */
static char *find_binary(const Sim *s, const char *env, const char *rel) {
        const char *e = getenv(env);

        if (e && *e)
                return xasprintf("%s", e);
        return xasprintf("%s/%s", s->self_dir, rel);
}

/* fork + setsid + stdio to log + exec; an exec failure is reported through a
 * close-on-exec pipe so the caller gets errno instead of a dead child. */
static int spawn(char *const argv[], const char *log, char *const env_set[],
                 const char *const env_unset[], pid_t *ret) {
        int p[2], err = 0;
        pid_t pid;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                safe_close(p[0]);
                safe_close(p[1]);
                return r;
        }
        if (pid == 0) {
                sigset_t all;
                int fd;

                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                (void) setsid();
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0 || dup2(fd, 0) < 0)
                        goto fail;
                fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        goto fail;
                for (size_t i = 0; env_set && env_set[i]; i++)
                        if (putenv(env_set[i]) < 0)
                                goto fail;
                for (size_t i = 0; env_unset && env_unset[i]; i++)
                        unsetenv(env_unset[i]);
                execv(argv[0], argv);
        fail:
                err = errno;
                (void) !write(p[1], &err, sizeof(err));
                _exit(127);
        }
        safe_close(p[1]);
        n = read(p[0], &err, sizeof(err));
        safe_close(p[0]);
        if (n == (ssize_t) sizeof(err)) {
                (void) waitpid(pid, NULL, 0);
                return -err;
        }
        *ret = pid;
        return 0;
}

/* Makes sure vtpmd knows the vTPM, the way an admin does before xl attaches
 * it (vtpmd refuses unknown UUIDs): `vtpmd-ctl show`, else `vtpmd-ctl create`.
 * Its output goes to DIR/vtpmd-ctl.log. VTPM_SIM_NO_CTL=1 skips it (a fake
 * backend without a control socket). */
static int run_ctl(const Sim *s, char *const args[]) {
        _cleanup_free_ char *bin = find_binary(s, "VTPMD_CTL", "../../daemon/vtpmd-ctl");
        _cleanup_free_ char *log = xasprintf("%s/vtpmd-ctl.log", s->dir);
        _cleanup_free_ char *ctl = xasprintf("%s/control", s->dir);
        char *argv[16] = { bin, "--control", ctl };
        size_t n = 3;
        int status;
        pid_t pid;

        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        if (spawn(argv, log, NULL, NULL, &pid) < 0)
                return -1;
        if (waitpid(pid, &status, 0) < 0)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* tell: the UUID is the user's (attach --uuid): creating it is said, so that it
 * does not look as if vtpmd had accepted an unknown UUID (AutoCreate=no). */
static int ensure_vtpm(const Sim *s, const char *uuid, const char *family, bool tell) {
        const char *skip = getenv("VTPM_SIM_NO_CTL");

        if (skip && streq(skip, "1"))
                return 0;
        if (run_ctl(s, (char *[]){ "show", (char *) uuid, NULL }) == 0)
                return 0;
        if (run_ctl(s, (char *[]){ "create", "--uuid", (char *) uuid, "--tpm", (char *) (family ?: "2.0"), NULL }) ==
            0) {
                if (tell)
                        fprintf(stderr, "vtpm-sim: vTPM %s did not exist: created it with vtpmd-ctl create --uuid "
                                "%s, as an admin does before xl vtpm-attach (VTPM_SIM_NO_CTL=1 attaches the "
                                "UUID as it is, which vtpmd refuses unless AutoCreate=yes)\n", uuid, uuid);
                return 0;
        }
        fprintf(stderr, "vtpm-sim: vtpmd-ctl create --uuid %s failed (see %s/vtpmd-ctl.log)\n", uuid, s->dir);
        return -EIO;
}

/* Waits for a process to be gone; reaps it if it is our child. */
static bool wait_gone(const SimProc *p, unsigned timeout_ms) {
        uint64_t deadline = now_ms() + timeout_ms;

        for (;;) {
                (void) waitpid(p->pid, NULL, WNOHANG);
                if (!sim_proc_alive(p))
                        return true;
                if (now_ms() >= deadline)
                        return false;
                tick();
        }
}

/* sig to every live process, wait, then SIGKILL the stragglers. Returns the
 * number still alive at the end (0 = all gone). */
static size_t terminate(SimProc *procs, size_t n, int sig, unsigned timeout_ms) {
        uint64_t deadline = now_ms() + timeout_ms;
        size_t left = 0;

        for (size_t i = 0; i < n; i++)
                if (sim_proc_alive(&procs[i]))
                        (void) kill(procs[i].pid, sig);
        for (size_t i = 0; i < n; i++) {
                uint64_t now = now_ms();
                if (!wait_gone(&procs[i], now < deadline ? (unsigned) (deadline - now) : 0)) {
                        fprintf(stderr, "vtpm-sim: pid %d did not exit after signal %d, killing it\n",
                                (int) procs[i].pid, sig);
                        (void) kill(procs[i].pid, SIGKILL);
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!wait_gone(&procs[i], KILL_TIMEOUT_MS)) {
                        fprintf(stderr, "vtpm-sim: pid %d survived SIGKILL\n", (int) procs[i].pid);
                        left++;
                }
        return left;
}

/* Opens (creates) path into *fd and flocks it (how). */
static int lock_path(const char *path, int how, int *fd) {
        *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (*fd < 0)
                return negative_errno();
        while (flock(*fd, how) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return 0;
}

static int sim_lock(Sim *s, int how) {
        _cleanup_free_ char *p = xasprintf("%s/sim.lock", s->dir);

        return lock_path(p, how, &s->lock_fd);
}

/* vtpmd's own lock, apart from the DIR lock: restart-daemon takes only this
 * one, so it does not wait for a save, restore or migration that holds the DIR
 * lock while it waits for vtpmd (systemd restarts vtpmd without waiting for
 * xl either). Order: the DIR lock first. Held until the command exits. */
static int daemon_lock(Sim *s) {
        _cleanup_free_ char *p = xasprintf("%s/sim/vtpmd.lock", s->dir);

        if (s->daemon_lock_fd >= 0)
                return 0;
        return lock_path(p, LOCK_EX, &s->daemon_lock_fd);
}

static bool daemon_alive(const Sim *s, const char *key, SimProc *ret) {
        SimProc p = {};

        if (sim_proc_load(s->dir, key, &p) < 0 || !sim_proc_alive(&p))
                return false;
        if (ret)
                *ret = p;
        return true;
}

/* Why DIR counts as in use, or NULL. */
static char *in_use_reason(const Sim *s) {
        _cleanup_strv_free_ char **names = NULL;
        SimProc p;

        if (daemon_alive(s, "xenstored", &p))
                return xasprintf("vtpm-xenstored (pid %d) is running", (int) p.pid);
        if (daemon_alive(s, "vtpmd", &p))
                return xasprintf("vtpmd (pid %d) is running", (int) p.pid);
        if (daemon_alive(s, "swtpm", &p))
                return xasprintf("swtpm (pid %d) is running", (int) p.pid);
        if (sim_guest_list(s->dir, &names) < 0)
                return NULL;
        for (size_t i = 0; names[i]; i++) {
                _cleanup_(sim_guest_freep) SimGuest *g = NULL;
                if (sim_guest_load(s->dir, names[i], &g) >= 0 && sim_proc_alive(&g->proc))
                        return xasprintf("guest %s (pid %d) is running", g->name, (int) g->proc.pid);
        }
        return NULL;
}

static int toolstack_for(const Sim *s, bool with_platform, Toolstack **ret) {
        int r = toolstack_open(s->xs_socket, with_platform ? s->dir : NULL, s->scale, ret);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: cannot connect to xenstore at %s: %s\n", s->xs_socket,
                        strerror(-r));
        return r;
}

static int alloc_domid(const Sim *s, uint32_t *ret) {
        uint32_t d = 1;
        int r;

        r = sim_u32_load(s->dir, "next-domid", &d);
        if (r < 0 && r != -ENOENT)
                return r;
        /* DOMID_FIRST_RESERVED is 0x7FF0; never wrap into reused domids. */
        if (d == 0 || d >= 0x7FF0)
                return -ENOSPC;
        r = sim_u32_save(s->dir, "next-domid", d + 1);
        if (r < 0)
                return r;
        *ret = d;
        return 0;
}

/* What a guest process leaves in DIR (guest.c's header); its sockets too, as
 * one killed on a host it left must not seem to listen there. */
static void guest_files_reset(const Sim *s, const char *name) {
        static const char *const suffixes[] = { "tcti", "guest-state", "sock", "sock.ctrl", "domctl" };

        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                _cleanup_free_ char *p = xasprintf("%s/%s.%s", s->dir, name, suffixes[i]);
                (void) unlink(p);
        }
}

/* The backend's xenbus error node for a device, or NULL. */
static char *backend_error(Toolstack *ts, uint32_t domid, uint32_t devid) {
        _cleanup_free_ char *p = xasprintf("/local/domain/0/error/backend/vtpm/%u/%u/error", domid, devid);
        unsigned len;

        return xs_read(ts->xs, XBT_NULL, p, &len);
}

static void print_backend_error(Toolstack *ts, uint32_t domid, uint32_t devid) {
        _cleanup_free_ char *e = backend_error(ts, domid, devid);

        if (e)
                fprintf(stderr, "vtpm-sim: backend error for domain %u devid %u: %s\n", domid, devid, e);
}

/* libxl__domain_make with every vTPM of the record (each add waits for
 * InitWait; the devids are written back to g). ensure: make sure vtpmd knows
 * each vTPM first (xl create); a restored or migrated-in domain brings its
 * vTPM UUIDs and creates none. On failure the domain is destroyed. */
static int create_domain(const Sim *s, Toolstack *ts, SimGuest *g, const char *xs_name, bool ensure,
                         uint32_t *ret_domid) {
        uint32_t domid;
        int r;

        r = alloc_domid(s, &domid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot allocate a domid: %s\n", strerror(-r));
                return r;
        }
        r = toolstack_domain_create(ts, domid, xs_name, g->domain_uuid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: creating domain %u (%s) failed: %s\n", domid, xs_name,
                        strerror(-r));
                (void) toolstack_domain_destroy(ts, domid);
                return r;
        }
        for (size_t i = 0; i < g->n_vtpms; i++) {
                uint32_t devid = 0;

                r = ensure ? ensure_vtpm(s, g->vtpms[i].uuid, g->vtpms[i].family, false) : 0;
                if (r >= 0)
                        r = toolstack_vtpm_add(ts, domid, g->vtpms[i].uuid, &devid);
                if (r < 0) {
                        fprintf(stderr, "vtpm-sim: adding vTPM %s to %s (domain %u) failed: %s\n",
                                g->vtpms[i].uuid, xs_name, domid, strerror(-r));
                        print_backend_error(ts, domid, devid);
                        _cleanup_free_ char *vlog = xasprintf("%s/vtpmd.log", s->dir);
                        print_log_tail("vtpmd", vlog);
                        (void) toolstack_domain_destroy(ts, domid);
                        return r;
                }
                g->vtpms[i].devid = devid;
        }
        *ret_domid = domid;
        return 0;
}

/* "Unpause": the guest process for g->domid; resumed: as a restored kernel. */
static int spawn_guest(const Sim *s, SimGuest *g, bool resumed) {
        _cleanup_free_ char *guest_bin = find_binary(s, "VTPM_SIM_GUEST", "vtpm-sim-guest");
        _cleanup_free_ char *log = xasprintf("%s/%s.log", s->dir, g->name);
        const char *gscale = getenv("VTPM_SIM_GUEST_TIMEOUT_SCALE");
        static const char *const unset[] = { "NOTIFY_SOCKET", "XENSTORED_PATH", NULL };
        char domid_s[16], devid_s[16], port_s[16];
        char *argv[16];
        size_t n = 0;
        pid_t pid;
        int r;

        guest_files_reset(s, g->name);
        snprintf(domid_s, sizeof(domid_s), "%u", g->domid);
        snprintf(devid_s, sizeof(devid_s), "%u", g->n_vtpms > 0 ? g->vtpms[0].devid : 0);
        argv[n++] = guest_bin;
        argv[n++] = "--dir";
        argv[n++] = s->dir;
        argv[n++] = "--domid";
        argv[n++] = domid_s;
        argv[n++] = "--name";
        argv[n++] = g->name;
        argv[n++] = "--devid";
        argv[n++] = devid_s;
        if (gscale) {
                argv[n++] = "--timeout-scale";
                argv[n++] = (char *) gscale;
        }
        if (resumed)
                argv[n++] = "--resumed";
        if (g->tcp_port) {
                /* For TPM clients that speak only TCP (mssim's protocol: IBM's TSS, tpm2-tss mssim TCTI). */
                snprintf(port_s, sizeof(port_s), "%u", g->tcp_port);
                argv[n++] = "--tcp-port";
                argv[n++] = port_s;
        }
        argv[n] = NULL;
        r = spawn(argv, log, NULL, unset, &pid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot start %s: %s\n", guest_bin, strerror(-r));
                return r;
        }
        if (sim_proc_from_pid(pid, &g->proc) < 0) {
                fprintf(stderr, "vtpm-sim: guest %s exited at once\n", g->name);
                print_log_tail(g->name, log);
                g->proc = (SimProc) { .pid = pid };
                return -ECHILD;
        }
        return 0;
}

/* xl create (resumed: xl restore): a new domain with every vTPM of the
 * record, then "unpause" (start the guest process). On failure the domain is
 * destroyed like xl does. */
static int launch_guest(const Sim *s, Toolstack *ts, SimGuest *g, bool resumed) {
        uint32_t domid;
        int r;

        g->domid = 0;
        g->proc = (SimProc) {};
        r = create_domain(s, ts, g, g->name, !resumed, &domid);
        if (r < 0) {
                (void) sim_guest_save(s->dir, g);
                return r;
        }
        g->domid = domid;
        r = spawn_guest(s, g, resumed);
        if (r < 0) {
                if (g->proc.pid > 0)
                        (void) terminate(&g->proc, 1, SIGKILL, KILL_TIMEOUT_MS);
                (void) toolstack_domain_destroy(ts, domid);
                g->domid = 0;
                g->proc = (SimProc) {};
                (void) sim_guest_save(s->dir, g);
                return r;
        }
        (void) sim_guest_set_saved(g, NULL);
        r = sim_guest_save(s->dir, g);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: cannot save guest %s: %s\n", g->name, strerror(-r));
        return r;
}

/* 1 connected, 0 not yet. */
static int vtpm_connected(const Sim *s, Toolstack *ts, const SimGuest *g, const SimVtpm *v) {
        _cleanup_free_ char *p = xasprintf("/local/domain/%u/device/vtpm/%u/state", g->domid, v->devid);
        _cleanup_free_ char *tcti = xasprintf("%s/%s.tcti", s->dir, g->name);
        int st;

        if (toolstack_read_state(ts, p, &st) < 0 || st != 4)
                return 0;
        return access(tcti, F_OK) == 0;
}

/* Waits until every listed device's frontend is Connected and the guest's
 * .tcti exists; fails early if a guest process dies. */
static int wait_connected(const Sim *s, Toolstack *ts, SimGuest **gs, const ssize_t *only_vtpm,
                          size_t n) {
        uint64_t deadline = now_ms() + s->connect_timeout_ms;

        for (;;) {
                bool all = true;

                for (size_t i = 0; i < n; i++) {
                        SimGuest *g = gs[i];

                        if (!sim_proc_alive(&g->proc)) {
                                _cleanup_free_ char *log = xasprintf("%s/%s.log", s->dir, g->name);
                                (void) waitpid(g->proc.pid, NULL, WNOHANG);
                                fprintf(stderr, "vtpm-sim: guest %s (pid %d) died before Connected\n",
                                        g->name, (int) g->proc.pid);
                                print_log_tail(g->name, log);
                                return -ECHILD;
                        }
                        for (size_t j = 0; j < g->n_vtpms; j++) {
                                if (only_vtpm && only_vtpm[i] >= 0 && (size_t) only_vtpm[i] != j)
                                        continue;
                                if (!vtpm_connected(s, ts, g, &g->vtpms[j]))
                                        all = false;
                        }
                }
                if (all)
                        return 0;
                if (now_ms() >= deadline)
                        break;
                tick();
        }

        for (size_t i = 0; i < n; i++) {
                SimGuest *g = gs[i];
                _cleanup_free_ char *log = xasprintf("%s/%s.log", s->dir, g->name);

                for (size_t j = 0; j < g->n_vtpms; j++) {
                        _cleanup_free_ char *fe = xasprintf("/local/domain/%u/device/vtpm/%u/state", g->domid, g->vtpms[j].devid);
                        _cleanup_free_ char *be = xasprintf("/local/domain/0/backend/vtpm/%u/%u/state", g->domid, g->vtpms[j].devid);
                        _cleanup_free_ char *tcti = xasprintf("%s/%s.tcti", s->dir, g->name);
                        int fs = -1, bs = -1;

                        if (vtpm_connected(s, ts, g, &g->vtpms[j]))
                                continue;
                        (void) toolstack_read_state(ts, fe, &fs);
                        (void) toolstack_read_state(ts, be, &bs);
                        fprintf(stderr, "vtpm-sim: guest %s devid %u not Connected after %u ms "
                                "(frontend %s, backend %s, .tcti %s)\n",
                                g->name, g->vtpms[j].devid, s->connect_timeout_ms, state_name(fs),
                                state_name(bs),
                                access(tcti, F_OK) == 0 ? "present" : "missing");
                        print_backend_error(ts, g->domid, g->vtpms[j].devid);
                        print_log_tail(g->name, log);
                }
        }
        {
                _cleanup_free_ char *log = xasprintf("%s/vtpmd.log", s->dir);
                print_log_tail("vtpmd", log);
        }
        return -ETIMEDOUT;
}

/* Live processes in session sid (every process vtpm-sim starts leads its own
 * session, so this finds what it started in turn, e.g. vtpmd's workers). */
static size_t session_members(pid_t sid, SimProc *out, size_t max) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        size_t n = 0;

        while (d && (de = readdir(d))) {
                char path[64], buf[1024], *p;
                _cleanup_close_ int fd = -1;
                ssize_t len;
                int session = 0;
                uint32_t pid;
                SimProc proc;

                if (parse_u32(de->d_name, &pid) < 0 || (pid_t) pid == sid)
                        continue;
                snprintf(path, sizeof(path), "/proc/%u/stat", pid);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                /* Bounded: the stat line of a process is far shorter. */
                len = read(fd, buf, sizeof(buf) - 1);
                if (len <= 0)
                        continue;
                buf[len] = '\0';
                p = strrchr(buf, ')');
                if (!p || sscanf(p + 1, " %*c %*d %*d %d", &session) != 1 || session != sid)
                        continue;
                if (sim_proc_from_pid((pid_t) pid, &proc) < 0)
                        continue;
                if (n < max)
                        out[n++] = proc;
        }
        if (d)
                closedir(d);
        return n;
}

/* After a session leader is gone: its session's other members get until the
 * deadline to exit on their own, then SIGKILL. Returns how many survive. */
static size_t reap_session(pid_t sid, unsigned timeout_ms) {
        /* A simulation runs at most a few hundred processes per session. */
        SimProc members[1024];
        uint64_t deadline = now_ms() + timeout_ms;
        size_t n;

        while ((n = session_members(sid, members, ELEMENTSOF(members))) > 0 && now_ms() < deadline)
                tick();
        if (n == 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                fprintf(stderr, "vtpm-sim: pid %d (session of %d) still running, killing it\n",
                        (int) members[i].pid, (int) sid);
        return terminate(members, n, SIGKILL, KILL_TIMEOUT_MS);
}

/* Stops everything this DIR's simulation runs. Returns 0 if nothing is left. */
static int stop_all(Sim *s) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        SimGuest **gs = NULL;
        SimProc *procs = NULL;
        size_t n = 0, np = 0, left = 0;
        SimProc xsd = {}, vtpmd = {}, swtpm = {};
        bool have_xsd, have_vtpmd, have_swtpm;
        int r;

        /* A DIR that never ran has no DIR/sim yet: nothing to exclude then. */
        (void) daemon_lock(s);
        have_xsd = daemon_alive(s, "xenstored", &xsd);
        have_vtpmd = daemon_alive(s, "vtpmd", &vtpmd);
        have_swtpm = daemon_alive(s, "swtpm", &swtpm);

        r = sim_guest_list(s->dir, &names);
        if (r < 0)
                return r;
        for (size_t i = 0; names[i]; i++) {
                SimGuest *g;
                if (sim_guest_load(s->dir, names[i], &g) < 0)
                        continue;
                gs = reallocarray(gs, n + 1, sizeof(*gs));
                procs = reallocarray(procs, n + 1, sizeof(*procs));
                if (!gs || !procs) {
                        fputs("vtpm-sim: out of memory\n", stderr);
                        exit(1);
                }
                gs[n++] = g;
                if (sim_proc_alive(&g->proc))
                        procs[np++] = g->proc;
        }

        /* Guests shut down like on host shutdown: frontends close first. */
        left += terminate(procs, np, SIGTERM, GUEST_SHUTDOWN_TIMEOUT_MS);

        /* Then their domains are destroyed, so the backend sees the orderly
         * removal. Without a backend every device would cost a timeout. */
        if (have_xsd && toolstack_for(s, true, &ts) >= 0) {
                for (size_t i = 0; i < n; i++) {
                        if (gs[i]->domid == 0)
                                continue;
                        if (have_vtpmd)
                                (void) toolstack_domain_destroy(ts, gs[i]->domid);
                        else {
                                /* Nothing would answer; skip straight to the release. */
                                if (ts->platform)
                                        (void) platform_sim_destroy_domain(ts->platform, gs[i]->domid);
                                (void) xs_release_domain(ts->xs, gs[i]->domid);
                        }
                }
        }
        ts = toolstack_free(ts);
        for (size_t i = 0; i < n; i++) {
                gs[i]->domid = 0;
                gs[i]->proc = (SimProc) {};
                (void) sim_guest_save(s->dir, gs[i]);
                sim_guest_free(gs[i]);
        }
        free(gs);

        for (size_t i = 0; i < np; i++)
                left += reap_session(procs[i].pid, KILL_TIMEOUT_MS);
        free(procs);
        if (have_vtpmd) {
                left += terminate(&vtpmd, 1, SIGTERM, DAEMON_STOP_TIMEOUT_MS);
                left += reap_session(vtpmd.pid, DAEMON_STOP_TIMEOUT_MS);
        }
        /* After vtpmd, like a host TPM that outlives the daemon using it. */
        if (have_swtpm) {
                left += terminate(&swtpm, 1, SIGTERM, DAEMON_STOP_TIMEOUT_MS);
                left += reap_session(swtpm.pid, KILL_TIMEOUT_MS);
        }
        if (have_xsd) {
                left += terminate(&xsd, 1, SIGTERM, DAEMON_STOP_TIMEOUT_MS);
                left += reap_session(xsd.pid, KILL_TIMEOUT_MS);
        }
        {
                _cleanup_free_ char *a = xasprintf("%s/sim/vtpmd", s->dir);
                _cleanup_free_ char *b = xasprintf("%s/sim/xenstored", s->dir);
                _cleanup_free_ char *c = xasprintf("%s/vtpmd.pid", s->dir);
                _cleanup_free_ char *d = xasprintf("%s/notify.sock", s->dir);
                _cleanup_free_ char *e = xasprintf("%s/sim/swtpm", s->dir);
                if (left == 0) {
                        (void) unlink(a);
                        (void) unlink(b);
                        (void) unlink(c);
                        (void) unlink(e);
                }
                (void) unlink(d);
        }
        return left == 0 ? 0 : -EBUSY;
}

static int start_xenstored(Sim *s) {
        _cleanup_free_ char *bin = find_binary(s, "VTPM_XENSTORED", "vtpm-xenstored");
        _cleanup_free_ char *log = xasprintf("%s/xenstored.log", s->dir);
        _cleanup_free_ char *pidfile = xasprintf("%s/xenstored.pid", s->dir);
        char *argv[] = { bin, "--dir", s->xsdir, "--log", log, "--daemon", "--pidfile", pidfile, NULL };
        uint64_t deadline = now_ms() + XENSTORED_START_TIMEOUT_MS;
        SimProc proc;
        pid_t pid;
        int status = 0, r;

        (void) unlink(pidfile);
        r = spawn(argv, log, NULL, (const char *const[]) { "NOTIFY_SOCKET", NULL }, &pid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot start %s: %s\n", bin, strerror(-r));
                return r;
        }
        /* --daemon: the parent exits 0 once the socket listens. */
        for (;;) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                if (now_ms() >= deadline) {
                        fprintf(stderr, "vtpm-sim: vtpm-xenstored did not daemonise within %u ms\n",
                                XENSTORED_START_TIMEOUT_MS);
                        (void) kill(pid, SIGKILL);
                        (void) waitpid(pid, NULL, 0);
                        print_log_tail("vtpm-xenstored", log);
                        return -ETIMEDOUT;
                }
                tick();
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "vtpm-sim: vtpm-xenstored failed to start (status 0x%x)\n", status);
                print_log_tail("vtpm-xenstored", log);
                return -EIO;
        }
        for (;;) {
                uint32_t xpid;
                if (sim_u32_load(s->dir, "../xenstored.pid", &xpid) >= 0 &&
                    sim_proc_from_pid((pid_t) xpid, &proc) >= 0)
                        break;
                if (now_ms() >= deadline) {
                        fprintf(stderr, "vtpm-sim: vtpm-xenstored is not running (no live pid in %s)\n",
                                pidfile);
                        print_log_tail("vtpm-xenstored", log);
                        return -ESRCH;
                }
                tick();
        }
        r = sim_proc_save(s->dir, "xenstored", &proc);
        if (r < 0)
                return r;
        if (access(s->xs_socket, F_OK) < 0) {
                fprintf(stderr, "vtpm-sim: vtpm-xenstored runs but %s does not exist\n", s->xs_socket);
                print_log_tail("vtpm-xenstored", log);
                return -ENOENT;
        }
        return 0;
}

/* Unix socket paths are bounded by sun_path; swtpm and vtpmd fail obscurely
 * on a longer one, so say it here. */
static int check_socket_path(const char *path) {
        struct sockaddr_un sa;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "vtpm-sim: %s is too long for a socket path (max %zu bytes); "
                        "use a shorter --dir\n", path, sizeof(sa.sun_path) - 1);
                return -ENAMETOOLONG;
        }
        return 0;
}

/* 0 once something accepts connections on the Unix socket at path. */
static int socket_connectable(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (check_socket_path(path) < 0)
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        return 0;
}

static char *find_swtpm(void) {
        const char *e = getenv("VTPM_SIM_SWTPM"), *path = getenv("PATH");
        _cleanup_free_ char *copy = NULL;

        if (e && *e)
                return xasprintf("%s", e);
        copy = xasprintf("%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
        for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char *c = xasprintf("%s/swtpm", d);
                if (access(c, X_OK) == 0)
                        return c;
                free(c);
        }
        /* spawn() then reports ENOENT naming it. */
        return xasprintf("swtpm");
}

/* The host TPM: swtpm on DIR/hosttpm, which persists, so every start (and
 * restart-host-tpm) brings back the same TPM with the same seeds. */
static int start_swtpm(Sim *s) {
        _cleanup_free_ char *bin = find_swtpm();
        _cleanup_free_ char *log = xasprintf("%s/swtpm.log", s->hosttpm_dir);
        _cleanup_free_ char *ctrl = xasprintf("%s.ctrl", s->swtpm_socket);
        _cleanup_free_ char *server_arg = xasprintf("type=unixio,path=%s", s->swtpm_socket);
        _cleanup_free_ char *ctrl_arg = xasprintf("type=unixio,path=%s", ctrl);
        _cleanup_free_ char *state_arg = xasprintf("dir=%s", s->hosttpm_dir);
        _cleanup_free_ char *log_arg = NULL;
        const char *level = getenv("VTPM_SIM_SWTPM_LOGLEVEL");
        static const char *const unset[] = { "NOTIFY_SOCKET", "XENSTORED_PATH", NULL };
        uint64_t deadline;
        SimProc proc = {};
        uint32_t lv;
        pid_t pid;
        int r;

        if (level && *level) {
                if (parse_u32_max(level, 1000, &lv) < 0) {
                        fprintf(stderr, "vtpm-sim: invalid VTPM_SIM_SWTPM_LOGLEVEL '%s'\n", level);
                        return -EINVAL;
                }
                log_arg = xasprintf("file=%s,level=%u", log, lv);
        } else
                log_arg = xasprintf("file=%s", log);
        if (check_socket_path(ctrl) < 0)
                return -ENAMETOOLONG;
        if (mkdir(s->hosttpm_dir, 0700) < 0 && errno != EEXIST) {
                r = negative_errno();
                fprintf(stderr, "vtpm-sim: cannot create %s: %s\n", s->hosttpm_dir, strerror(-r));
                return r;
        }
        /* Left behind by a swtpm that was killed; a live one holds
         * DIR/hosttpm/.lock, and the caller made sure none runs. */
        (void) unlink(s->swtpm_socket);
        (void) unlink(ctrl);

        {
                char *argv[] = { bin, "socket", "--tpm2", "--server", server_arg, "--ctrl", ctrl_arg,
                                 "--tpmstate", state_arg, "--flags", "startup-clear", "--log", log_arg,
                                 NULL };
                r = spawn(argv, log, NULL, unset, &pid);
        }
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot start swtpm (%s): %s\n", bin, strerror(-r));
                return r;
        }
        (void) sim_proc_from_pid(pid, &proc);
        proc.pid = pid;
        r = sim_proc_save(s->dir, "swtpm", &proc);
        if (r < 0) {
                (void) terminate(&proc, 1, SIGKILL, KILL_TIMEOUT_MS);
                return r;
        }

        /* Both sockets accept once swtpm entered its main loop; the swtpm
         * TCTI needs both. */
        deadline = now_ms() + SWTPM_START_TIMEOUT_MS;
        for (;;) {
                int status;

                if (waitpid(pid, &status, WNOHANG) == pid) {
                        fprintf(stderr, "vtpm-sim: swtpm (%s) exited before its socket %s was ready "
                                "(status 0x%x)\n", bin, s->swtpm_socket, status);
                        print_log_tail("swtpm", log);
                        return -ECHILD;
                }
                if (socket_connectable(s->swtpm_socket) == 0 && socket_connectable(ctrl) == 0)
                        return 0;
                if (now_ms() >= deadline) {
                        fprintf(stderr, "vtpm-sim: swtpm did not open %s within %u ms\n",
                                s->swtpm_socket, SWTPM_START_TIMEOUT_MS);
                        print_log_tail("swtpm", log);
                        (void) terminate(&proc, 1, SIGKILL, KILL_TIMEOUT_MS);
                        return -ETIMEDOUT;
                }
                tick();
        }
}

/* SIGTERM: swtpm saves its state and exits cleanly. */
static int stop_swtpm(Sim *s) {
        _cleanup_free_ char *key = xasprintf("%s/sim/swtpm", s->dir);
        SimProc p;

        if (!daemon_alive(s, "swtpm", &p))
                return 0;
        if (terminate(&p, 1, SIGTERM, DAEMON_STOP_TIMEOUT_MS) > 0 ||
            reap_session(p.pid, KILL_TIMEOUT_MS) > 0) {
                fprintf(stderr, "vtpm-sim: swtpm (pid %d) cannot be stopped\n", (int) p.pid);
                return -EBUSY;
        }
        (void) unlink(key);
        return 0;
}

static bool host_tpm_enabled(const Sim *s) {
        _cleanup_free_ char *m = NULL;

        /* Before the first start the default applies. */
        return sim_str_load(s->dir, "host-tpm", &m) < 0 || !streq(m, "none");
}

/* The key source is fixed by the first start of DIR: vtpmd's state there is
 * sealed to that host TPM, or wrapped with that key file. */
static int resolve_host_tpm(const Sim *s, bool no_host_tpm) {
        _cleanup_free_ char *m = NULL;
        int r;

        r = sim_str_load(s->dir, "host-tpm", &m);
        if (r == -ENOENT) {
                r = sim_str_save(s->dir, "host-tpm", no_host_tpm ? "none" : "swtpm");
                if (r < 0)
                        fprintf(stderr, "vtpm-sim: cannot record the host TPM mode: %s\n", strerror(-r));
                return r;
        }
        if (r < 0 || (!streq(m, "swtpm") && !streq(m, "none"))) {
                fprintf(stderr, "vtpm-sim: %s/sim/host-tpm is unreadable\n", s->dir);
                return r < 0 ? r : -EBADMSG;
        }
        if (no_host_tpm && streq(m, "swtpm")) {
                fprintf(stderr, "vtpm-sim: %s was first started with a host TPM (swtpm in %s); its vTPM "
                        "state is sealed to it, so --no-host-tpm cannot be used on it\n",
                        s->dir, s->hosttpm_dir);
                return -EINVAL;
        }
        return 0;
}

/* vtpmd's arguments after the binary. Until vTPMs carry their own metadata
 * (vtpmd-ctl create --tpm), the family given to `start` is vtpmd's default
 * for every vTPM of the simulation. */
static char **vtpmd_args(const Sim *s, const char *family, const char *pool_dir) {
        const char *level = getenv("VTPMD_LOG_LEVEL"), *spawn = getenv("VTPMD_WORKER_SPAWN");
        char **a = calloc(20, sizeof(char *));
        size_t n = 0;

        if (!a) {
                fputs("vtpm-sim: out of memory\n", stderr);
                exit(1);
        }
        a[n++] = xasprintf("--platform");
        a[n++] = xasprintf("sim:%s", s->dir);
        /* Never the host's /etc/vtpmd/vtpmd.conf or /run/vtpmd/control: simulations run side by side. */
        a[n++] = xasprintf("--no-config");
        a[n++] = xasprintf("--control");
        a[n++] = xasprintf("%s/control", s->dir);
        a[n++] = xasprintf("--state-dir");
        a[n++] = xasprintf("%s/state", s->dir);
        /* Only when asked for: a vtpmd without pool support refuses the option. */
        if (pool_dir) {
                a[n++] = xasprintf("--pool-dir");
                a[n++] = xasprintf("%s", pool_dir);
        }
        if (host_tpm_enabled(s)) {
                a[n++] = xasprintf("--host-tpm");
                a[n++] = xasprintf("swtpm:path=%s", s->swtpm_socket);
        } else {
                a[n++] = xasprintf("--key-source");
                a[n++] = xasprintf("file:%s/master.key", s->dir);
        }
        if (family) {
                a[n++] = xasprintf("--default-tpm");
                a[n++] = xasprintf("%s", family);
        }
        if (level) {
                a[n++] = xasprintf("--log-level");
                a[n++] = xasprintf("%s", level);
        }
        if (spawn) {
                a[n++] = xasprintf("--worker-spawn");
                a[n++] = xasprintf("%s", spawn);
        }
        return a;
}

/* args: as recorded in DIR/sim/vtpmd-args. The binary is looked up anew, so
 * VTPMD=new-build restart-daemon is an upgrade. */
static int start_vtpmd(Sim *s, char *const *args) {
        _cleanup_free_ char *bin = find_binary(s, "VTPMD", "../../daemon/vtpmd");
        _cleanup_free_ char *log = xasprintf("%s/vtpmd.log", s->dir);
        _cleanup_free_ char *sock = xasprintf("%s/notify.sock", s->dir);
        _cleanup_free_ char *env_notify = xasprintf("NOTIFY_SOCKET=%s", sock);
        _cleanup_free_ char *env_xs = xasprintf("XENSTORED_PATH=%s", s->xs_socket);
        _cleanup_free_ char *pidfile = xasprintf("%s/vtpmd.pid", s->dir);
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char **argv = NULL;
        size_t argc = 0;
        char *envs[] = { env_notify, env_xs, NULL };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint64_t deadline;
        SimProc proc = {};
        pid_t pid;
        int r;

        while (args[argc])
                argc++;
        argv = calloc(argc + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[0] = bin;
        memcpy(argv + 1, args, argc * sizeof(char *));
        if (strlen(sock) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "vtpm-sim: %s is too long for a socket path\n", sock);
                return -ENAMETOOLONG;
        }
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        (void) unlink(sock);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = negative_errno();
                fprintf(stderr, "vtpm-sim: notify socket %s: %s\n", sock, strerror(-r));
                return r;
        }

        r = spawn(argv, log, envs, NULL, &pid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot start vtpmd %s: %s\n", bin, strerror(-r));
                return r;
        }
        (void) sim_proc_from_pid(pid, &proc);
        proc.pid = pid;
        r = sim_proc_save(s->dir, "vtpmd", &proc);
        if (r < 0)
                return r;
        {
                char buf[32];
                snprintf(buf, sizeof(buf), "%d\n", (int) pid);
                (void) sim_write_file_atomic(pidfile, buf);
        }

        deadline = now_ms() + READY_TIMEOUT_MS;
        for (;;) {
                /* sd_notify datagrams are small; 4 KiB holds any we care about. */
                char msg[4096];
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                uint64_t now = now_ms();
                int status;
                ssize_t n;

                if (waitpid(pid, &status, WNOHANG) == pid) {
                        fprintf(stderr, "vtpm-sim: vtpmd (%s) exited before READY=1 (status 0x%x)\n",
                                bin, status);
                        print_log_tail("vtpmd", log);
                        (void) unlink(sock);
                        return -ECHILD;
                }
                if (now >= deadline) {
                        fprintf(stderr, "vtpm-sim: vtpmd did not send READY=1 within %u ms\n",
                                READY_TIMEOUT_MS);
                        print_log_tail("vtpmd", log);
                        (void) unlink(sock);
                        return -ETIMEDOUT;
                }
                /* Short slices so a dying vtpmd is noticed quickly. */
                if (poll(&pfd, 1, (int) MIN(deadline - now, 100u)) <= 0)
                        continue;
                n = recv(fd, msg, sizeof(msg) - 1, 0);
                if (n <= 0)
                        continue;
                msg[n] = '\0';
                for (char *save = NULL, *l = strtok_r(msg, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                        if (streq(l, "READY=1")) {
                                (void) unlink(sock);
                                return 0;
                        }
        }
}

/* DIR/env, for a shell: `. DIR/env` and vtpmd-ctl, vtpm-sim and xenstore-* reach this host. */
static int write_env(const Sim *s) {
        _cleanup_free_ char *p = xasprintf("%s/env", s->dir);
        _cleanup_free_ char *ctl = find_binary(s, "VTPMD_CTL", "../../daemon/vtpmd-ctl");
        _cleanup_free_ char *ctl_dir = realpath(dirname(ctl), NULL);
        _cleanup_free_ char *c = xasprintf("export XENSTORED_PATH=%s\nexport VTPMD_CONTROL=%s/control\n"
                                            "export PATH=\"%s%s%s:$PATH\"\n",
                                            s->xs_socket, s->dir, ctl_dir ? ctl_dir : "", ctl_dir ? ":" : "",
                                            s->self_dir);

        return sim_write_file_atomic(p, c);
}

static int load_or_new_guest(const Sim *s, const char *name, SimGuest **ret) {
        int r = sim_guest_load(s->dir, name, ret);

        if (r == -ENOENT)
                return sim_guest_new(name, ret);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: guest record %s/sim/guests/%s is unreadable: %s\n", s->dir,
                        name, strerror(-r));
        return r;
}

/* The pool's shared state root (--pool-dir) is part of the host's set-up, like
 * its host TPM: a later start without the option keeps the recorded one. *ret
 * is NULL for a host outside any pool. */
static int resolve_pool_dir(const Sim *s, const char *given, char **ret) {
        _cleanup_free_ char *abs = NULL;
        struct stat st;
        int r;

        if (!given) {
                r = sim_str_load(s->dir, "pool-dir", ret);
                if (r == -ENOENT) {
                        *ret = NULL;
                        return 0;
                }
                if (r < 0)
                        fprintf(stderr, "vtpm-sim: %s/sim/pool-dir is unreadable: %s\n", s->dir, strerror(-r));
                return r;
        }
        abs = realpath(given, NULL);
        if (!abs || stat(abs, &st) < 0) {
                r = negative_errno();
                fprintf(stderr, "vtpm-sim: --pool-dir %s: %s\n", given, strerror(-r));
                return r;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "vtpm-sim: --pool-dir %s is not a directory\n", given);
                return -ENOTDIR;
        }
        *ret = TAKE_PTR(abs);
        return 0;
}

static int cmd_start(Sim *s, unsigned n_guests, const char *family, bool no_host_tpm, const char *pool_dir) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_strv_free_ char **args = NULL;
        _cleanup_free_ char *pool = NULL;
        _cleanup_free_ char *state_dir = xasprintf("%s/state", s->dir);
        _cleanup_free_ char *why = NULL;
        _cleanup_free_ char *guests_dir = xasprintf("%s/sim/guests", s->dir);
        _cleanup_free_ char *simdir = xasprintf("%s/sim", s->dir);
        SimGuest **gs;
        size_t n = 0;
        int r;

        if ((mkdir(simdir, 0755) < 0 && errno != EEXIST) ||
            (mkdir(guests_dir, 0755) < 0 && errno != EEXIST) ||
            (mkdir(s->xsdir, 0755) < 0 && errno != EEXIST)) {
                fprintf(stderr, "vtpm-sim: cannot create directories in %s: %m\n", s->dir);
                return 1;
        }
        r = sim_lock(s, LOCK_EX);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot lock %s: %s\n", s->dir, strerror(-r));
                return 1;
        }
        why = in_use_reason(s);
        if (why) {
                fprintf(stderr, "vtpm-sim: %s is in use by a running simulation: %s. "
                        "Run 'vtpm-sim stop --dir %s' first.\n", s->dir, why, s->dir);
                return 1;
        }
        if (resolve_host_tpm(s, no_host_tpm) < 0 || resolve_pool_dir(s, pool_dir, &pool) < 0)
                return 1;
        /* tpm2-tss splits a TCTI config at ',' (key=value pairs). */
        if (host_tpm_enabled(s) && strchr(s->swtpm_socket, ',')) {
                fprintf(stderr, "vtpm-sim: %s contains ',', which the swtpm TCTI cannot take\n",
                        s->swtpm_socket);
                return 1;
        }
        /* A fresh xenstored knows no domains: leftovers of a crashed run go. */
        (void) stop_all(s);
        {
                _cleanup_free_ char *sock = xasprintf("%s/socket", s->xsdir);
                (void) unlink(sock);
        }
        r = sim_u32_save(s->dir, "next-domid", 1);
        if (r < 0)
                goto fail;

        /* Kept across stop and start: the vTPMs' state lives there. */
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
                fprintf(stderr, "vtpm-sim: cannot create %s: %m\n", state_dir);
                goto fail;
        }
        if (host_tpm_enabled(s) && start_swtpm(s) < 0)
                goto fail;
        if (start_xenstored(s) < 0)
                goto fail;
        args = vtpmd_args(s, family, pool);
        r = sim_strv_save(s->dir, "vtpmd-args", args);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot record vtpmd's arguments: %s\n", strerror(-r));
                goto fail;
        }
        if (daemon_lock(s) < 0 || start_vtpmd(s, args) < 0)
                goto fail;
        /* Recorded once vtpmd took it, so a refused pool is not kept. */
        r = pool ? sim_str_save(s->dir, "pool-dir", pool) : 0;
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot record the pool directory: %s\n", strerror(-r));
                goto fail;
        }
        r = write_env(s);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot write %s/env: %s\n", s->dir, strerror(-r));
                goto fail;
        }
        if (toolstack_for(s, true, &ts) < 0)
                goto fail;

        if (n_guests == START_GUESTS_KNOWN) {
                /* A DIR that ran before comes back with all its guests. */
                n_guests = 0;
                char **names = NULL;
                if (sim_guest_list(s->dir, &names) >= 0 && names)
                        for (char **p = names; *p; p++) {
                                unsigned k;
                                if (sscanf(*p, "guest%u", &k) == 1 && k > n_guests && k <= 1000)
                                        n_guests = k;
                        }
                sim_strv_free(names);
                if (n_guests == 0)
                        n_guests = 1;
        }
        gs = calloc(n_guests + 1, sizeof(*gs));
        if (!gs)
                goto fail;
        for (unsigned i = 1; i <= n_guests; i++) {
                _cleanup_free_ char *name = xasprintf("guest%u", i);
                SimGuest *g;

                if (load_or_new_guest(s, name, &g) < 0)
                        goto fail_guests;
                if (g->saved_image) {
                        /* xendomains: a saved guest comes back with restore, not a boot. */
                        printf("%s saved in %s (vtpm-sim restore --dir %s %s)\n", g->name, g->saved_image,
                               s->dir, g->saved_image);
                        sim_guest_free(g);
                        continue;
                }
                gs[n++] = g;
                if (g->n_vtpms == 0) {
                        char uuid[37];
                        if (sim_uuid_random(uuid) < 0 ||
                            sim_guest_add_vtpm(g, 0, uuid, family ?: "2.0") < 0)
                                goto fail_guests;
                } else if (family)
                        for (size_t j = 0; j < g->n_vtpms; j++)
                                snprintf(g->vtpms[j].family, sizeof(g->vtpms[j].family), "%s", family);
                g->domid = 0;
                g->proc = (SimProc) {};
                if (sim_guest_save(s->dir, g) < 0 || launch_guest(s, ts, g, false) < 0)
                        goto fail_guests;
        }
        if (wait_connected(s, ts, gs, NULL, n) < 0)
                goto fail_guests;
        for (size_t i = 0; i < n; i++) {
                printf("%s domid=%u pid=%d uuid=%s tcti=%s/%s.tcti\n", gs[i]->name, gs[i]->domid,
                       (int) gs[i]->proc.pid, gs[i]->n_vtpms ? gs[i]->vtpms[0].uuid : "-", s->dir,
                       gs[i]->name);
                sim_guest_free(gs[i]);
        }
        free(gs);
        printf("source %s/env\n", s->dir);
        return 0;

fail_guests:
        for (size_t i = 0; i < n; i++)
                sim_guest_free(gs[i]);
        free(gs);
fail:
        ts = toolstack_free(ts);
        fprintf(stderr, "vtpm-sim: start failed, stopping what was started\n");
        (void) stop_all(s);
        return 1;
}

static int require_running(const Sim *s) {
        if (!daemon_alive(s, "xenstored", NULL)) {
                fprintf(stderr, "vtpm-sim: no simulation is running in %s (vtpm-sim start first)\n",
                        s->dir);
                return -ESRCH;
        }
        return 0;
}

/* A guest whose domain exists; prints why not. */
static int load_running_guest(const Sim *s, const char *name, SimGuest **ret) {
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        int r;

        r = sim_guest_load(s->dir, name, &g);
        if (r < 0 || g->domid == 0) {
                fprintf(stderr, "vtpm-sim: guest %s is not running\n", name);
                return r < 0 ? r : -ESRCH;
        }
        *ret = TAKE_PTR(g);
        return 0;
}

/* Under the DIR lock: the running guest NAME and a toolstack; prints why not. */
static int lock_running_guest(Sim *s, const char *name, bool with_platform, SimGuest **ret_g, Toolstack **ret_ts) {
        int r;

        if ((r = sim_lock(s, LOCK_EX)) < 0 || (r = require_running(s)) < 0)
                return r;
        r = load_running_guest(s, name, ret_g);
        if (r < 0)
                return r;
        return toolstack_for(s, with_platform, ret_ts);
}

static int cmd_attach(Sim *s, const char *name, const char *uuid, const char *family, uint32_t tcp_port) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        char canon[37];
        int r;

        if (uuid && parse_uuid(uuid, canon) < 0) {
                fprintf(stderr, "vtpm-sim: invalid uuid '%s'\n", uuid);
                return 2;
        }
        if (sim_lock(s, LOCK_EX) < 0 || require_running(s) < 0)
                return 1;
        if (toolstack_for(s, true, &ts) < 0)
                return 1;
        if (load_or_new_guest(s, name, &g) < 0)
                return 1;

        if (g->domid != 0 && sim_proc_alive(&g->proc) && tcp_port) {
                fprintf(stderr, "vtpm-sim: guest %s is running: --tcp-port applies when attach starts it\n", name);
                return 2;
        }
        if (g->domid != 0 && sim_proc_alive(&g->proc)) {
                /* xl vtpm-attach */
                uint32_t devid;
                ssize_t only[1];
                SimGuest *list[1] = { g };

                if (!uuid && sim_uuid_random(canon) < 0)
                        return 1;
                if (ensure_vtpm(s, canon, family, uuid != NULL) < 0)
                        return 1;
                r = toolstack_vtpm_add(ts, g->domid, canon, &devid);
                if (r < 0) {
                        fprintf(stderr, "vtpm-sim: libxl_device_vtpm_add failed (domain %u): %s\n",
                                g->domid, strerror(-r));
                        if (r == -ETIMEDOUT) {
                                _cleanup_free_ char *log = xasprintf("%s/vtpmd.log", s->dir);
                                print_log_tail("vtpmd", log);
                        }
                        return 1;
                }
                r = sim_guest_add_vtpm(g, devid, canon, family ?: "2.0");
                if (r >= 0)
                        r = sim_guest_save(s->dir, g);
                if (r < 0)
                        return 1;
                only[0] = (ssize_t) g->n_vtpms - 1;
                if (wait_connected(s, ts, list, only, 1) < 0)
                        return 1;
                printf("%s domid=%u devid=%u uuid=%s\n", g->name, g->domid, devid, canon);
                return 0;
        }

        /* xl create. A record with a domain but no guest process is a crashed
         * guest: its domain goes first. */
        if (g->domid != 0) {
                (void) terminate(&g->proc, 1, SIGKILL, KILL_TIMEOUT_MS);
                (void) toolstack_domain_destroy(ts, g->domid);
                g->domid = 0;
                g->proc = (SimProc) {};
        }
        if (uuid || g->n_vtpms == 0) {
                if (!uuid && sim_uuid_random(canon) < 0)
                        return 1;
                g->n_vtpms = 0;
                if (sim_guest_add_vtpm(g, 0, canon, family ?: "2.0") < 0)
                        return 1;
        } else if (family)
                for (size_t j = 0; j < g->n_vtpms; j++)
                        snprintf(g->vtpms[j].family, sizeof(g->vtpms[j].family), "%s", family);
        if (uuid && ensure_vtpm(s, canon, family, true) < 0)
                return 1;
        if (tcp_port)
                g->tcp_port = tcp_port;
        if (sim_guest_save(s->dir, g) < 0 || launch_guest(s, ts, g, false) < 0)
                return 1;
        {
                SimGuest *list[1] = { g };
                if (wait_connected(s, ts, list, NULL, 1) < 0)
                        return 1;
        }
        printf("%s domid=%u pid=%d uuid=%s\n", g->name, g->domid, (int) g->proc.pid,
               g->n_vtpms ? g->vtpms[0].uuid : "-");
        return 0;
}

static int cmd_detach(Sim *s, const char *name, const char *uuid, int64_t devid) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        char canon[37];
        ssize_t idx = -1;
        int r;

        if (uuid && parse_uuid(uuid, canon) < 0) {
                fprintf(stderr, "vtpm-sim: invalid uuid '%s'\n", uuid);
                return 2;
        }
        if (sim_lock(s, LOCK_EX) < 0 || require_running(s) < 0)
                return 1;
        if (load_running_guest(s, name, &g) < 0)
                return 1;
        for (size_t i = 0; i < g->n_vtpms; i++) {
                if (uuid ? streq(g->vtpms[i].uuid, canon)
                         : devid >= 0 ? g->vtpms[i].devid == (uint32_t) devid
                                      : (idx < 0 || g->vtpms[i].devid > g->vtpms[idx].devid))
                        idx = (ssize_t) i;
        }
        if (idx < 0) {
                fprintf(stderr, "vtpm-sim: guest %s has no such vTPM\n", name);
                return 1;
        }
        if (toolstack_for(s, false, &ts) < 0)
                return 1;
        r = toolstack_vtpm_remove(ts, g->domid, g->vtpms[idx].devid, false);
        /* Removal without an error, or forced after a timeout, leaves no nodes. */
        if (r >= 0 || r == -ETIMEDOUT || r == -ENOENT) {
                uint32_t d = g->vtpms[idx].devid;
                sim_guest_remove_vtpm(g, (size_t) idx);
                (void) sim_guest_save(s->dir, g);
                if (r >= 0)
                        printf("%s domid=%u devid=%u detached\n", g->name, g->domid, d);
        }
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: libxl_device_vtpm_remove failed: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

/* The guest process is stopped (sig), then its domain destroyed. */
static int domain_teardown(Sim *s, Toolstack *ts, SimGuest *g, int sig) {
        int r;

        if (sim_proc_alive(&g->proc) &&
            terminate(&g->proc, 1, sig, sig == SIGKILL ? KILL_TIMEOUT_MS : GUEST_SHUTDOWN_TIMEOUT_MS) > 0) {
                fprintf(stderr, "vtpm-sim: guest %s (pid %d) cannot be stopped\n", g->name,
                        (int) g->proc.pid);
                return -EBUSY;
        }
        r = toolstack_domain_destroy(ts, g->domid);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: destroying domain %u (%s): %s\n", g->domid, g->name,
                        strerror(-r));
        g->domid = 0;
        g->proc = (SimProc) {};
        (void) sim_guest_save(s->dir, g);
        return r;
}

static int cmd_destroy(Sim *s, const char *name) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        uint32_t domid;

        if (lock_running_guest(s, name, true, &g, &ts) < 0)
                return 1;
        domid = g->domid;
        if (domain_teardown(s, ts, g, SIGKILL) < 0)
                return 1;
        printf("%s domid=%u destroyed\n", name, domid);
        return 0;
}

static int cmd_reboot(Sim *s, const char *name) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        SimGuest *list[1];

        if (lock_running_guest(s, name, true, &g, &ts) < 0)
                return 1;
        /* The guest shuts down (frontends 5 -> 6); xl then destroys the
         * domain and creates it again from the same config. */
        if (domain_teardown(s, ts, g, SIGTERM) < 0)
                return 1;
        if (launch_guest(s, ts, g, false) < 0)
                return 1;
        list[0] = g;
        if (wait_connected(s, ts, list, NULL, 1) < 0)
                return 1;
        printf("%s domid=%u pid=%d rebooted\n", g->name, g->domid, (int) g->proc.pid);
        return 0;
}

/* Like systemctl restart vtpmd: SIGTERM, up to 20 s to exit, then SIGKILL;
 * the guests, xenstored and swtpm stay up. */
static int cmd_restart_daemon(Sim *s) {
        _cleanup_strv_free_ char **args = NULL;
        SimProc old = {};
        uint64_t t_term, t_gone, t_ready;
        bool was_up;
        int r;

        if (daemon_lock(s) < 0 || require_running(s) < 0)
                return 1;
        r = sim_strv_load(s->dir, "vtpmd-args", &args);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: no recorded vtpmd arguments in %s/sim/vtpmd-args: %s "
                        "(started by an older vtpm-sim? stop and start it)\n", s->dir, strerror(-r));
                return 1;
        }
        t_term = now_ms();
        was_up = daemon_alive(s, "vtpmd", &old);
        if (was_up) {
                (void) kill(old.pid, SIGTERM);
                if (!wait_gone(&old, DAEMON_RESTART_STOP_TIMEOUT_MS)) {
                        fprintf(stderr, "vtpm-sim: vtpmd (pid %d) did not exit within %u ms of SIGTERM, "
                                "sending SIGKILL\n", (int) old.pid, DAEMON_RESTART_STOP_TIMEOUT_MS);
                        (void) kill(old.pid, SIGKILL);
                        if (!wait_gone(&old, KILL_TIMEOUT_MS)) {
                                fprintf(stderr, "vtpm-sim: vtpmd (pid %d) survived SIGKILL\n", (int) old.pid);
                                return 1;
                        }
                }
                /* What systemd's cgroup kill would do to workers left behind. */
                if (reap_session(old.pid, KILL_TIMEOUT_MS) > 0)
                        return 1;
        } else
                fprintf(stderr, "vtpm-sim: vtpmd was not running; starting it\n");
        t_gone = now_ms();
        if (start_vtpmd(s, args) < 0) {
                fprintf(stderr, "vtpm-sim: vtpmd did not come back; the guests are still running "
                        "without a backend\n");
                return 1;
        }
        t_ready = now_ms();
        {
                SimProc now = {};
                (void) sim_proc_load(s->dir, "vtpmd", &now);
                printf("vtpmd restarted: pid %d (was %d), down %llu ms (stop %llu ms, start to READY=1 %llu ms)\n",
                       (int) now.pid, (int) old.pid, (unsigned long long) (t_ready - t_term),
                       (unsigned long long) (t_gone - t_term), (unsigned long long) (t_ready - t_gone));
        }
        return 0;
}

/* vtpmd holds no host-TPM connection once started, so this is safe while it
 * runs; its next start must unseal from the restarted swtpm. */
static int cmd_restart_host_tpm(Sim *s) {
        SimProc old = {}, now = {};

        if (sim_lock(s, LOCK_EX) < 0 || require_running(s) < 0)
                return 1;
        if (!host_tpm_enabled(s)) {
                fprintf(stderr, "vtpm-sim: %s runs without a host TPM (--no-host-tpm)\n", s->dir);
                return 1;
        }
        (void) daemon_alive(s, "swtpm", &old);
        if (stop_swtpm(s) < 0 || start_swtpm(s) < 0)
                return 1;
        (void) sim_proc_load(s->dir, "swtpm", &now);
        printf("swtpm restarted: pid %d (was %d), state %s\n", (int) now.pid, (int) old.pid,
               s->hosttpm_dir);
        return 0;
}

static int cmd_status(Sim *s, bool json) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        SimProc xsd = {}, vtpmd = {}, swtpm = {};
        bool xsd_up, vtpmd_up, swtpm_up, host_tpm;
        json_object *root = NULL, *jg = NULL;
        _cleanup_free_ char *pool = NULL;

        if (sim_lock(s, LOCK_SH) < 0) {
                fprintf(stderr, "vtpm-sim: cannot lock %s: %m\n", s->dir);
                return 1;
        }
        (void) sim_proc_load(s->dir, "xenstored", &xsd);
        (void) sim_proc_load(s->dir, "vtpmd", &vtpmd);
        (void) sim_proc_load(s->dir, "swtpm", &swtpm);
        xsd_up = sim_proc_alive(&xsd);
        vtpmd_up = sim_proc_alive(&vtpmd);
        swtpm_up = sim_proc_alive(&swtpm);
        host_tpm = host_tpm_enabled(s);
        (void) sim_str_load(s->dir, "pool-dir", &pool);
        if (xsd_up)
                (void) toolstack_for(s, false, &ts);
        if (sim_guest_list(s->dir, &names) < 0)
                return 1;

        if (json) {
                json_object *o;
                root = json_object_new_object();
                json_object_object_add(root, "dir", json_object_new_string(s->dir));
                o = json_object_new_object();
                json_object_object_add(o, "pid", json_object_new_int(xsd.pid));
                json_object_object_add(o, "running", json_object_new_boolean(xsd_up));
                json_object_object_add(root, "xenstored", o);
                o = json_object_new_object();
                json_object_object_add(o, "pid", json_object_new_int(vtpmd.pid));
                json_object_object_add(o, "running", json_object_new_boolean(vtpmd_up));
                json_object_object_add(root, "vtpmd", o);
                o = json_object_new_object();
                json_object_object_add(o, "pid", json_object_new_int(swtpm.pid));
                json_object_object_add(o, "running", json_object_new_boolean(swtpm_up));
                json_object_object_add(o, "enabled", json_object_new_boolean(host_tpm));
                if (host_tpm) {
                        _cleanup_free_ char *t = xasprintf("swtpm:path=%s", s->swtpm_socket);
                        json_object_object_add(o, "tcti", json_object_new_string(t));
                        json_object_object_add(o, "state_dir", json_object_new_string(s->hosttpm_dir));
                }
                json_object_object_add(root, "swtpm", o);
                json_object_object_add(root, "pool_dir", pool ? json_object_new_string(pool) : NULL);
                jg = json_object_new_array();
                json_object_object_add(root, "guests", jg);
        } else {
                printf("xenstored pid %d %s\n", (int) xsd.pid, xsd_up ? "running" : "stopped");
                printf("vtpmd     pid %d %s\n", (int) vtpmd.pid, vtpmd_up ? "running" : "stopped");
                if (host_tpm)
                        printf("swtpm     pid %d %s (host TPM swtpm:path=%s)\n", (int) swtpm.pid,
                               swtpm_up ? "running" : "stopped", s->swtpm_socket);
                else
                        printf("swtpm     none (--no-host-tpm: key file %s/master.key)\n", s->dir);
                if (pool)
                        printf("pool      %s\n", pool);
                printf("%-12s %5s %7s %-8s %5s %-36s %-3s %-14s %-14s\n", "NAME", "DOMID", "PID",
                       "STATE", "DEVID", "UUID", "TPM", "FRONTEND", "BACKEND");
        }

        for (size_t i = 0; names[i]; i++) {
                _cleanup_(sim_guest_freep) SimGuest *g = NULL;
                bool up;
                json_object *o = NULL, *vs = NULL;

                if (sim_guest_load(s->dir, names[i], &g) < 0)
                        continue;
                up = sim_proc_alive(&g->proc);
                const char *st = up ? "running" : g->saved_image ? "saved" : "stopped";
                if (json) {
                        o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(g->name));
                        json_object_object_add(o, "domid", json_object_new_int64(g->domid));
                        json_object_object_add(o, "pid", json_object_new_int(g->proc.pid));
                        json_object_object_add(o, "running", json_object_new_boolean(up));
                        if (g->saved_image)
                                json_object_object_add(o, "saved_image", json_object_new_string(g->saved_image));
                        json_object_object_add(o, "domain_uuid", json_object_new_string(g->domain_uuid));
                        {
                                _cleanup_free_ char *t = xasprintf("%s/%s.tcti", s->dir, g->name);
                                json_object_object_add(o, "tcti", json_object_new_string(t));
                        }
                        vs = json_object_new_array();
                        json_object_object_add(o, "vtpms", vs);
                        json_object_array_add(jg, o);
                }
                if (g->n_vtpms == 0 && !json)
                        printf("%-12s %5u %7d %-8s %5s %-36s %-3s %-14s %-14s\n", g->name, g->domid,
                               (int) g->proc.pid, st, "-", "-", "-", "-", "-");
                for (size_t j = 0; j < g->n_vtpms; j++) {
                        const SimVtpm *v = &g->vtpms[j];
                        int fs = -1, bs = -1;

                        if (ts && g->domid != 0) {
                                _cleanup_free_ char *fe = xasprintf("/local/domain/%u/device/vtpm/%u/state", g->domid, v->devid);
                                _cleanup_free_ char *be = xasprintf("/local/domain/0/backend/vtpm/%u/%u/state", g->domid, v->devid);
                                (void) toolstack_read_state(ts, fe, &fs);
                                (void) toolstack_read_state(ts, be, &bs);
                        }
                        if (json) {
                                json_object *jv = json_object_new_object();
                                json_object_object_add(jv, "devid", json_object_new_int64(v->devid));
                                json_object_object_add(jv, "uuid", json_object_new_string(v->uuid));
                                json_object_object_add(jv, "tpm", json_object_new_string(v->family));
                                json_object_object_add(jv, "frontend_state", json_object_new_int(fs));
                                json_object_object_add(jv, "frontend", json_object_new_string(state_name(fs)));
                                json_object_object_add(jv, "backend_state", json_object_new_int(bs));
                                json_object_object_add(jv, "backend", json_object_new_string(state_name(bs)));
                                json_object_array_add(vs, jv);
                        } else {
                                char f[24], b[24];
                                snprintf(f, sizeof(f), "%d/%s", fs, state_name(fs));
                                snprintf(b, sizeof(b), "%d/%s", bs, state_name(bs));
                                printf("%-12s %5u %7d %-8s %5u %-36s %-3s %-14s %-14s\n", g->name,
                                       g->domid, (int) g->proc.pid, st,
                                       v->devid, v->uuid, v->family, fs < 0 ? "-" : f, bs < 0 ? "-" : b);
                        }
                }
        }
        if (json) {
                puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
                json_object_put(root);
        }
        return 0;
}

static int cmd_stop(Sim *s) {
        if (access(s->dir, F_OK) < 0) {
                fprintf(stderr, "vtpm-sim: %s: %m\n", s->dir);
                return 1;
        }
        if (sim_lock(s, LOCK_EX) < 0) {
                fprintf(stderr, "vtpm-sim: cannot lock %s: %m\n", s->dir);
                return 1;
        }
        if (stop_all(s) < 0) {
                fprintf(stderr, "vtpm-sim: some processes could not be stopped\n");
                return 1;
        }
        return 0;
}

static char *guest_ctl(const Sim *s, const char *name) {
        return xasprintf("%s/%s.domctl", s->dir, name);
}

/* After a failed suspend: a domain that did suspend runs on (xl: "Failed to
 * save domain, resuming domain"). */
static void resume_if_suspended(const Sim *s, Toolstack *ts, const SimGuest *g) {
        _cleanup_free_ char *ctl = guest_ctl(s, g->name);
        DomainCtl *dc = NULL;
        DomainInfo info;
        int r;

        if (domainctl_open(ts->platform, &dc) < 0)
                return;
        r = domainctl_info(dc, g->domid, &info);
        domainctl_free(dc);
        if (r >= 0 && domain_info_suspended(&info)) {
                fprintf(stderr, "vtpm-sim: resuming domain %u\n", g->domid);
                (void) toolstack_domain_resume(ts, g->domid, ctl);
        }
}

/* The saved image: what libxl_retrieve_domain_configuration gives xl save
 * (name, domain UUID, the vtpm devices with their UUIDs); the guest's memory
 * is not in it (a restored guest is a new process that resumes). */
static char *image_json(const SimGuest *g) {
        json_object *root = json_object_new_object(), *vs = json_object_new_array();
        char *text;

        json_object_object_add(root, "format", json_object_new_string("vtpm-sim-save-1"));
        json_object_object_add(root, "name", json_object_new_string(g->name));
        json_object_object_add(root, "domain_uuid", json_object_new_string(g->domain_uuid));
        json_object_object_add(root, "domid", json_object_new_int64(g->domid));
        for (size_t i = 0; i < g->n_vtpms; i++) {
                json_object *v = json_object_new_object();

                json_object_object_add(v, "devid", json_object_new_int64(g->vtpms[i].devid));
                json_object_object_add(v, "uuid", json_object_new_string(g->vtpms[i].uuid));
                json_object_object_add(v, "tpm", json_object_new_string(g->vtpms[i].family));
                json_object_array_add(vs, v);
        }
        json_object_object_add(root, "vtpms", vs);
        text = xasprintf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
        json_object_put(root);
        return text;
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Parses a saved image into a fresh record (domid 0). */
static int image_load(const char *file, SimGuest **ret) {
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        json_object *root = json_object_from_file(file), *vs = NULL;
        const char *format, *name, *uuid;
        int r = -EBADMSG;

        if (!root) {
                fprintf(stderr, "vtpm-sim: cannot read the saved image %s: %s\n", file, json_util_get_last_err());
                return -EIO;
        }
        format = json_str(root, "format");
        name = json_str(root, "name");
        uuid = json_str(root, "domain_uuid");
        if (!format || !streq(format, "vtpm-sim-save-1") || !name || !sim_name_valid(name) || !uuid ||
            !json_object_object_get_ex(root, "vtpms", &vs) || !json_object_is_type(vs, json_type_array))
                goto out;
        r = sim_guest_new(name, &g);
        if (r < 0)
                goto out;
        r = -EBADMSG;
        if (parse_uuid(uuid, g->domain_uuid) < 0)
                goto out;
        for (size_t i = 0; i < json_object_array_length(vs); i++) {
                json_object *v = json_object_array_get_idx(vs, i);
                const char *vu = json_str(v, "uuid"), *fam = json_str(v, "tpm");

                if (!vu || !fam || sim_guest_add_vtpm(g, 0, vu, fam) < 0)
                        goto out;
        }
        *ret = TAKE_PTR(g);
        r = 0;
out:
        json_object_put(root);
        if (r == -EBADMSG)
                fprintf(stderr, "vtpm-sim: %s is not a vtpm-sim saved image\n", file);
        return r;
}

/* xl save: suspend, write the image, destroy the domain (its devices are
 * removed while it exists and reads suspended), end the guest process. */
static int cmd_save(Sim *s, const char *name, const char *file) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        _cleanup_free_ char *text = NULL, *abs = NULL;
        uint32_t domid;
        int r;

        if (lock_running_guest(s, name, true, &g, &ts) < 0)
                return 1;
        domid = g->domid;
        r = toolstack_domain_suspend(ts, domid);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: suspending %s (domain %u) failed: %s\n", name, domid, strerror(-r));
                resume_if_suspended(s, ts, g);
                return 1;
        }
        text = image_json(g);
        r = sim_write_file_atomic(file, text);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: cannot write %s: %s; resuming domain %u\n", file, strerror(-r), domid);
                resume_if_suspended(s, ts, g);
                return 1;
        }
        abs = realpath(file, NULL);
        r = toolstack_domain_destroy(ts, domid);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: destroying domain %u (%s): %s\n", domid, name, strerror(-r));
        if (sim_proc_alive(&g->proc) && terminate(&g->proc, 1, SIGKILL, KILL_TIMEOUT_MS) > 0)
                fprintf(stderr, "vtpm-sim: guest %s (pid %d) cannot be stopped\n", name, (int) g->proc.pid);
        g->domid = 0;
        g->proc = (SimProc) {};
        if (sim_guest_set_saved(g, abs ?: file) < 0 || sim_guest_save(s->dir, g) < 0)
                return 1;
        printf("%s domid=%u saved to %s\n", name, domid, file);
        return r < 0 ? 1 : 0;
}

/* xl restore: a new domain with the saved name, domain UUID and vTPM UUIDs;
 * the guest starts as a restored kernel. */
static int cmd_restore(Sim *s, const char *file) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *img = NULL, *g = NULL;
        SimGuest *list[1];
        uint32_t other;
        int r;

        if (image_load(file, &img) < 0)
                return 1;
        if (sim_lock(s, LOCK_EX) < 0 || require_running(s) < 0)
                return 1;
        if (toolstack_for(s, true, &ts) < 0)
                return 1;
        /* libxl__domain_make refuses a name in use. */
        if (toolstack_domain_by_name(ts, img->name, &other) >= 0) {
                fprintf(stderr, "vtpm-sim: domain with name \"%s\" already exists (domain %u)\n", img->name, other);
                return 1;
        }
        r = sim_guest_load(s->dir, img->name, &g);
        if (r >= 0 && sim_proc_alive(&g->proc)) {
                fprintf(stderr, "vtpm-sim: guest %s (pid %d) is running\n", g->name, (int) g->proc.pid);
                return 1;
        }
        if (r < 0 && r != -ENOENT) {
                fprintf(stderr, "vtpm-sim: guest record %s/sim/guests/%s is unreadable: %s\n", s->dir, img->name,
                        strerror(-r));
                return 1;
        }
        if (launch_guest(s, ts, img, true) < 0)
                return 1;
        list[0] = img;
        if (wait_connected(s, ts, list, NULL, 1) < 0)
                return 1;
        printf("%s domid=%u pid=%d restored from %s\n", img->name, img->domid, (int) img->proc.pid, file);
        return 0;
}

static void set_devids(SimGuest *g, const uint32_t *devids) {
        for (size_t i = 0; i < g->n_vtpms; i++)
                g->vtpms[i].devid = devids[i];
}

/* One xl migrate: the sender's host and toolstack (from) and the receiver's
 * (to); both are the same for a migration to this host. */
typedef struct Migration {
        Sim *from, *to;
        Toolstack *ts_from, *ts_to;
        SimGuest *g;            /* its devids are the destination's from create_domain on */
        const char *name;
        const char *hosts;      /* "" or " (host DIR1 to host DIR2)", for the messages */
        const char *ctl;        /* the source guest process's DIR/NAME.domctl */
        const char *incoming, *away;
        const uint32_t *src_devids;
        SimProc src_proc;
        uint32_t src, dst;
} Migration;

/* The receiver gives up and destroys its domain. */
static void destination_destroy(Migration *m) {
        int r = toolstack_domain_destroy(m->ts_to, m->dst);

        set_devids(m->g, m->src_devids);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: destroying the destination domain %u: %s\n", m->dst, strerror(-r));
}

/* Once the receiver has destroyed its domain, the sender takes the source back
 * under its name (libxl_domain_resume, suspend_cancel=1). */
static int source_take_back(Migration *m) {
        (void) toolstack_domain_rename(m->ts_from, m->src, NULL, m->name);
        return toolstack_domain_resume(m->ts_from, m->src, m->ctl);
}

/* Unpausing the destination on this host: the guest process continues as
 * that domain (resume on DIR/NAME.domctl). */
static int continue_in_destination(Migration *m) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = toolstack_guest_resume(m->ctl, m->dst, m->ts_from->suspend_ack_timeout_ms, &err);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: the guest did not resume in domain %u: %s\n", m->dst, err ?: strerror(-r));
                return r;
        }
        m->g->domid = m->dst;
        return sim_guest_save(m->to->dir, m->g);
}

/* Unpausing the destination on another host: a guest process of that host
 * starts as a resumed kernel (no memory is copied, as in xl restore). If it
 * cannot start, the receiver destroys its domain and the sender takes the
 * source back, as xl does when the target reports a startup failure. */
static int start_in_destination(Migration *m) {
        int r;

        m->g->domid = m->dst;
        r = spawn_guest(m->to, m->g, true);
        if (r >= 0)
                return sim_guest_save(m->to->dir, m->g);
        if (m->g->proc.pid > 0)
                (void) terminate(&m->g->proc, 1, SIGKILL, KILL_TIMEOUT_MS);
        m->g->domid = m->src;
        m->g->proc = m->src_proc;
        destination_destroy(m);
        r = source_take_back(m);
        fprintf(stderr, "vtpm-sim: migration of %s failed: the guest did not start in domain %u%s; "
                "source domain %u %s\n", m->name, m->dst, m->hosts, m->src, r < 0 ? "NOT resumed" : "resumed");
        return -ECHILD;
}

/* libxl_domain_destroy of the source once the destination runs. On another
 * host the source's guest process ends with its domain, and the sender's
 * host forgets the guest: its record and TCTI file are the receiver's now. */
static void source_destroy(Migration *m) {
        if (toolstack_domain_destroy(m->ts_from, m->src) < 0)
                fprintf(stderr, "vtpm-sim: destroying the source domain %u failed\n", m->src);
        if (m->from == m->to)
                return;
        if (sim_proc_alive(&m->src_proc) && terminate(&m->src_proc, 1, SIGKILL, KILL_TIMEOUT_MS) > 0)
                fprintf(stderr, "vtpm-sim: guest %s (pid %d) cannot be stopped\n", m->name, (int) m->src_proc.pid);
        guest_files_reset(m->from, m->name);
        (void) sim_guest_delete(m->from->dir, m->name);
}

/* xl migrate (xl_migrate.c migrate_domain, and migrate_receive on the
 * receiver): the destination NAME--incoming with its devices while the source
 * runs, the source suspended, then either (--fail) the destination destroyed
 * and the source resumed, or the source renamed NAME--migratedaway, the
 * destination NAME and unpaused, and the source destroyed once the
 * destination's frontends are Connected. Returns the exit code. */
static int migrate_steps(Migration *m, bool fail) {
        SimGuest *list[1] = { m->g };
        uint64_t suspend_ms;
        int r;

        /* migrate-receive: libxl_domain_create_restore builds the domain. */
        if (create_domain(m->to, m->ts_to, m->g, m->incoming, false, &m->dst) < 0) {
                fprintf(stderr, "vtpm-sim: migration of %s failed: cannot create the destination domain\n", m->name);
                return 1;
        }
        suspend_ms = now_ms();
        r = toolstack_domain_suspend(m->ts_from, m->src);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: migration of %s failed: suspending domain %u: %s\n", m->name, m->src,
                        strerror(-r));
                destination_destroy(m);
                resume_if_suspended(m->from, m->ts_from, m->g);
                return 1;
        }
        if (fail) {
                destination_destroy(m);
                r = toolstack_domain_resume(m->ts_from, m->src, m->ctl);
                fprintf(stderr, "vtpm-sim: migration of %s failed (--fail): destination domain %u destroyed, "
                        "source domain %u %s%s\n", m->name, m->dst, m->src, r < 0 ? "NOT resumed" : "resumed",
                        m->hosts);
                return 1;
        }
        if (toolstack_domain_rename(m->ts_from, m->src, m->name, m->away) < 0 ||
            toolstack_domain_rename(m->ts_to, m->dst, m->incoming, m->name) < 0) {
                fprintf(stderr, "vtpm-sim: migration of %s failed: renaming the domains\n", m->name);
                destination_destroy(m);
                (void) source_take_back(m);
                return 1;
        }
        r = m->from == m->to ? continue_in_destination(m) : start_in_destination(m);
        if (r < 0)
                return 1;
        r = wait_connected(m->to, m->ts_to, list, NULL, 1);
        suspend_ms = now_ms() - suspend_ms;
        source_destroy(m);
        if (r < 0)
                return 1;
        printf("%s domid=%u migrated from domain %u%s, Connected %llu ms after the source's suspend began\n", m->name,
               m->dst, m->src, m->hosts, (unsigned long long) suspend_ms);
        return 0;
}

/* Both hosts' locks, always in the same order, so that two migrations in
 * opposite directions cannot deadlock. */
static int lock_hosts(Sim *a, Sim *b) {
        Sim *first = strcmp(a->dir, b->dir) < 0 ? a : b;
        int r;

        r = sim_lock(first, LOCK_EX);
        if (r >= 0)
                r = sim_lock(first == a ? b : a, LOCK_EX);
        if (r < 0)
                fprintf(stderr, "vtpm-sim: cannot lock %s and %s: %s\n", a->dir, b->dir, strerror(-r));
        return r;
}

/* The receiver's host has no guest of that name: none of its domains, saved
 * guests or records (they would be overwritten). */
static int destination_free(const Sim *to, Toolstack *ts, const char *name, const char *incoming) {
        _cleanup_(sim_guest_freep) SimGuest *other = NULL;
        uint32_t domid;

        if (toolstack_domain_by_name(ts, name, &domid) >= 0 || toolstack_domain_by_name(ts, incoming, &domid) >= 0) {
                fprintf(stderr, "vtpm-sim: %s already has a domain named %s (domain %u)\n", to->dir, name, domid);
                return -EEXIST;
        }
        if (sim_guest_load(to->dir, name, &other) != -ENOENT) {
                fprintf(stderr, "vtpm-sim: %s already has a guest %s\n", to->dir, name);
                return -EEXIST;
        }
        return 0;
}

/* xl migrate to this host (dest NULL: xl migrate -s '' NAME 'xl
 * migrate-receive'), or to the host in dest's DIR, whose toolstack is the
 * receiver's. */
static int cmd_migrate(Sim *s, const char *name, bool fail, Sim *dest) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL, *ts_dest = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL;
        _cleanup_free_ char *ctl = guest_ctl(s, name), *incoming = xasprintf("%s--incoming", name);
        _cleanup_free_ char *away = xasprintf("%s--migratedaway", name), *hosts = NULL;
        _cleanup_free_ uint32_t *src_devids = NULL;
        Migration m;

        if (!dest) {
                if (lock_running_guest(s, name, true, &g, &ts) < 0)
                        return 1;
                hosts = xasprintf("%s", "");
        } else {
                if (lock_hosts(s, dest) < 0 || require_running(s) < 0 || require_running(dest) < 0 ||
                    load_running_guest(s, name, &g) < 0 || toolstack_for(s, true, &ts) < 0 ||
                    toolstack_for(dest, true, &ts_dest) < 0 || destination_free(dest, ts_dest, name, incoming) < 0)
                        return 1;
                hosts = xasprintf(" (host %s to host %s)", s->dir, dest->dir);
        }
        src_devids = calloc(g->n_vtpms + 1, sizeof(*src_devids));
        if (!src_devids)
                return 1;
        for (size_t i = 0; i < g->n_vtpms; i++)
                src_devids[i] = g->vtpms[i].devid;
        m = (Migration) {
                .from = s,
                .to = dest ?: s,
                .ts_from = ts,
                .ts_to = ts_dest ?: ts,
                .g = g,
                .name = name,
                .hosts = hosts,
                .ctl = ctl,
                .incoming = incoming,
                .away = away,
                .src_devids = src_devids,
                .src_proc = g->proc,
                .src = g->domid,
        };
        return migrate_steps(&m, fail);
}

/* xl rename; the guest's files (DIR/NAME.*) and record follow. */
static int cmd_rename(Sim *s, const char *old, const char *new) {
        _cleanup_(toolstack_freep) Toolstack *ts = NULL;
        _cleanup_(sim_guest_freep) SimGuest *g = NULL, *other = NULL;
        _cleanup_free_ char *ctl = guest_ctl(s, old), *err = NULL;
        _cleanup_free_ char *oldlog = xasprintf("%s/%s.log", s->dir, old);
        _cleanup_free_ char *newlog = xasprintf("%s/%s.log", s->dir, new);
        int r;

        if (lock_running_guest(s, old, false, &g, &ts) < 0)
                return 1;
        if (sim_guest_load(s->dir, new, &other) >= 0 && (other->domid != 0 || sim_proc_alive(&other->proc))) {
                fprintf(stderr, "vtpm-sim: guest %s exists (domain %u)\n", new, other->domid);
                return 1;
        }
        r = toolstack_domain_rename(ts, g->domid, old, new);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: libxl_domain_rename failed: %s\n", strerror(-r));
                return 1;
        }
        r = toolstack_guest_rename(ctl, new, KILL_TIMEOUT_MS, &err);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: the guest's files cannot follow the rename: %s\n", err ?: strerror(-r));
                (void) toolstack_domain_rename(ts, g->domid, new, old);
                return 1;
        }
        (void) rename(oldlog, newlog);
        snprintf(g->name, sizeof(g->name), "%s", new);
        if (sim_guest_save(s->dir, g) < 0 || sim_guest_delete(s->dir, old) < 0)
                return 1;
        printf("%s domid=%u renamed to %s\n", old, g->domid, new);
        return 0;
}

_noreturn_ static void usage(int code) {
        fputs("usage: vtpm-sim start   --dir DIR [--guests N] [--tpm 2.0|1.2] [--no-host-tpm] [--pool-dir PATH]\n"
              "       vtpm-sim attach  --dir DIR NAME [--uuid UUID] [--tpm 2.0|1.2] [--tcp-port P]\n"
              "       vtpm-sim detach  --dir DIR NAME [--uuid UUID | --devid N]\n"
              "       vtpm-sim reboot  --dir DIR NAME\n"
              "       vtpm-sim destroy --dir DIR NAME\n"
              "       vtpm-sim save    --dir DIR NAME FILE\n"
              "       vtpm-sim restore --dir DIR FILE\n"
              "       vtpm-sim migrate --dir DIR NAME [--to DIR2] [--fail]\n"
              "       vtpm-sim rename  --dir DIR OLD NEW\n"
              "       vtpm-sim status  --dir DIR [--json]\n"
              "       vtpm-sim stop    --dir DIR\n"
              "       vtpm-sim restart-daemon   --dir DIR\n"
              "       vtpm-sim restart-host-tpm --dir DIR\n",
              code ? stderr : stdout);
        exit(code);
}

/* The paths of the simulation in dir (which exists). */
static int sim_open(Sim *s, const char *dir) {
        s->dir = realpath(dir, NULL);
        if (!s->dir) {
                int r = negative_errno();
                fprintf(stderr, "vtpm-sim: %s: %s\n", dir, strerror(-r));
                return r;
        }
        s->xsdir = xasprintf("%s/xenstore", s->dir);
        s->xs_socket = xasprintf("%s/socket", s->xsdir);
        s->hosttpm_dir = xasprintf("%s/hosttpm", s->dir);
        s->swtpm_socket = xasprintf("%s/tpm.sock", s->hosttpm_dir);
        return 0;
}

static void sim_close(Sim *s) {
        safe_close(s->lock_fd);
        safe_close(s->daemon_lock_fd);
        free(s->dir);
        free(s->xsdir);
        free(s->xs_socket);
        free(s->hosttpm_dir);
        free(s->swtpm_socket);
        free(s->self_dir);
}

static int self_dir(char **ret) {
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

        if (n < 0)
                return negative_errno();
        buf[n] = '\0';
        *ret = xasprintf("%s", dirname(buf));
        return 0;
}

int main(int argc, char **argv) {
        enum { OPT_DIR = 1, OPT_GUESTS, OPT_TPM, OPT_UUID, OPT_JSON, OPT_DEVID, OPT_NO_HOST_TPM, OPT_FAIL, OPT_TO,
               OPT_POOL_DIR, OPT_TCP_PORT };
        static const struct option opts[] = {
                { "dir", required_argument, NULL, OPT_DIR },
                { "guests", required_argument, NULL, OPT_GUESTS },
                { "tpm", required_argument, NULL, OPT_TPM },
                { "uuid", required_argument, NULL, OPT_UUID },
                { "devid", required_argument, NULL, OPT_DEVID },
                { "json", no_argument, NULL, OPT_JSON },
                { "no-host-tpm", no_argument, NULL, OPT_NO_HOST_TPM },
                { "fail", no_argument, NULL, OPT_FAIL },
                { "to", required_argument, NULL, OPT_TO },
                { "pool-dir", required_argument, NULL, OPT_POOL_DIR },
                { "tcp-port", required_argument, NULL, OPT_TCP_PORT },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        const char *cmd, *dir = NULL, *family = NULL, *uuid = NULL, *name = NULL, *arg2 = NULL, *to = NULL;
        const char *pool_dir = NULL;
        uint32_t guests = START_GUESTS_KNOWN, tcp_port = 0;
        int64_t devid = -1;
        bool json = false, no_host_tpm = false, fail = false;
        Sim s = { .lock_fd = -1, .daemon_lock_fd = -1 }, dest = { .lock_fd = -1, .daemon_lock_fd = -1 };
        int c, r;

        if (argc < 2)
                usage(2);
        cmd = argv[1];
        if (streq(cmd, "--help") || streq(cmd, "-h"))
                usage(0);
        optind = 2;
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                uint32_t v;
                switch (c) {
                case OPT_DIR:
                        dir = optarg;
                        break;
                case OPT_GUESTS:
                        if (parse_u32_max(optarg, 1000, &guests) < 0) {
                                fprintf(stderr, "vtpm-sim: invalid --guests '%s'\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_TPM:
                        if (!streq(optarg, "2.0") && !streq(optarg, "1.2")) {
                                fprintf(stderr, "vtpm-sim: --tpm must be 2.0 or 1.2\n");
                                return 2;
                        }
                        family = optarg;
                        break;
                case OPT_UUID:
                        uuid = optarg;
                        break;
                case OPT_TCP_PORT:
                        if (parse_u32(optarg, &tcp_port) < 0 || tcp_port == 0 || tcp_port > 65534) {
                                fprintf(stderr, "vtpm-sim: invalid --tcp-port '%s' (1-65534: the guest listens "
                                        "on P and P+1)\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_DEVID:
                        if (parse_u32(optarg, &v) < 0) {
                                fprintf(stderr, "vtpm-sim: invalid --devid '%s'\n", optarg);
                                return 2;
                        }
                        devid = v;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_NO_HOST_TPM:
                        no_host_tpm = true;
                        break;
                case OPT_FAIL:
                        fail = true;
                        break;
                case OPT_TO:
                        to = optarg;
                        break;
                case OPT_POOL_DIR:
                        pool_dir = optarg;
                        break;
                case 'h':
                        usage(0);
                default:
                        usage(2);
                }
        }
        if (optind < argc)
                name = argv[optind++];
        if (optind < argc)
                arg2 = argv[optind++];
        if (optind < argc || !dir)
                usage(2);

        /* restore's one argument is a FILE, not a guest name. */
        if (streq(cmd, "restore")) {
                arg2 = name;
                name = NULL;
                if (!arg2)
                        usage(2);
        }
        bool needs_name = streq(cmd, "attach") || streq(cmd, "detach") || streq(cmd, "reboot") ||
                          streq(cmd, "destroy") || streq(cmd, "save") || streq(cmd, "migrate") ||
                          streq(cmd, "rename");
        bool needs_arg2 = streq(cmd, "save") || streq(cmd, "rename") || streq(cmd, "restore");
        if (needs_name != !!name || needs_arg2 != !!arg2)
                usage(2);
        if (tcp_port && !streq(cmd, "attach")) {
                fprintf(stderr, "vtpm-sim: --tcp-port only applies to attach\n");
                return 2;
        }
        if (fail && !streq(cmd, "migrate")) {
                fprintf(stderr, "vtpm-sim: --fail only applies to migrate\n");
                return 2;
        }
        if (streq(cmd, "rename") && !sim_name_valid(arg2)) {
                fprintf(stderr, "vtpm-sim: invalid guest name '%s'\n", arg2);
                return 2;
        }
        if (no_host_tpm && !streq(cmd, "start")) {
                fprintf(stderr, "vtpm-sim: --no-host-tpm only applies to start\n");
                return 2;
        }
        if (pool_dir && !streq(cmd, "start")) {
                fprintf(stderr, "vtpm-sim: --pool-dir only applies to start\n");
                return 2;
        }
        if (to && !streq(cmd, "migrate")) {
                fprintf(stderr, "vtpm-sim: --to only applies to migrate\n");
                return 2;
        }
        if (name && !sim_name_valid(name)) {
                fprintf(stderr, "vtpm-sim: invalid guest name '%s'\n", name);
                return 2;
        }

        if (streq(cmd, "start") && mkdir(dir, 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "vtpm-sim: cannot create %s: %m\n", dir);
                return 1;
        }
        if (sim_open(&s, dir) < 0 || (to && sim_open(&dest, to) < 0))
                return 1;
        if (self_dir(&s.self_dir) < 0) {
                fprintf(stderr, "vtpm-sim: cannot find my own binary: %m\n");
                return 1;
        }
        r = toolstack_timeout_scale_from_env(&s.scale);
        if (r < 0) {
                fprintf(stderr, "vtpm-sim: invalid VTPM_SIM_TIMEOUT_SCALE\n");
                return 2;
        }
        s.connect_timeout_ms = 30000;
        {
                const char *e = getenv("VTPM_SIM_CONNECT_TIMEOUT");
                uint32_t v;
                if (e && parse_u32_max(e, 3600, &v) >= 0 && v > 0)
                        s.connect_timeout_ms = v * 1000;
        }
        dest.self_dir = xasprintf("%s", s.self_dir);
        dest.scale = s.scale;
        dest.connect_timeout_ms = s.connect_timeout_ms;
        /* A guest or daemon that dies must not take us with it. */
        signal(SIGPIPE, SIG_IGN);

        if (streq(cmd, "start"))
                r = cmd_start(&s, guests, family, no_host_tpm, pool_dir);
        else if (streq(cmd, "attach"))
                r = cmd_attach(&s, name, uuid, family, tcp_port);
        else if (streq(cmd, "detach"))
                r = cmd_detach(&s, name, uuid, devid);
        else if (streq(cmd, "reboot"))
                r = cmd_reboot(&s, name);
        else if (streq(cmd, "destroy"))
                r = cmd_destroy(&s, name);
        else if (streq(cmd, "save"))
                r = cmd_save(&s, name, arg2);
        else if (streq(cmd, "restore"))
                r = cmd_restore(&s, arg2);
        else if (streq(cmd, "migrate"))
                /* --to this host's DIR is a migration to this host. */
                r = cmd_migrate(&s, name, fail, to && !streq(dest.dir, s.dir) ? &dest : NULL);
        else if (streq(cmd, "rename"))
                r = cmd_rename(&s, name, arg2);
        else if (streq(cmd, "status"))
                r = cmd_status(&s, json);
        else if (streq(cmd, "stop"))
                r = cmd_stop(&s);
        else if (streq(cmd, "restart-daemon"))
                r = cmd_restart_daemon(&s);
        else if (streq(cmd, "restart-host-tpm"))
                r = cmd_restart_host_tpm(&s);
        else
                usage(2);

        sim_close(&s);
        sim_close(&dest);
        return r;
}
