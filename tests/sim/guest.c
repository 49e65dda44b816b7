/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-sim-guest: one simulated Linux guest with xen-tpmfront.
 *
 *   vtpm-sim-guest --dir DIR --domid N --name NAME [--devid 0] [--wait poll|event]
 *                  [--tcp-port P] [--log FILE] [--timeout-scale X]
 *                  [--no-shutdown-on-exit] [--resumed]
 *
 * The main thread is the guest kernel's xenwatch thread: it follows the
 * frontend dir and the backend state like the Linux xenbus core
 * (xenbus_probe.c, xenbus_probe_frontend.c, xenbus_client.c) and
 * xen-tpmfront.c do, and runs the probe-time TPM commands. A second thread is
 * "user space": it serves swtpm-compatible sockets (what the tpm2-tss swtpm
 * TCTI and swtpm_ioctl speak) and forwards each TPM command through the
 * shared page as if written to /dev/tpm0.
 *
 * Files in DIR: NAME.sock (data), NAME.sock.ctrl (control), NAME.tcti
 * ("swtpm:path=DIR/NAME.sock", written once both sockets listen),
 * NAME.guest-state ("frontend=<n> tpm=<ready|none>", rewritten atomically on
 * every change) and NAME.domctl (below).
 *
 * Signals: SIGTERM/SIGINT = guest shutdown (xenbus_frontend_dev_shutdown),
 * SIGUSR1 = resume in place without a suspend (xenbus_dev_resume ->
 * tpmfront_resume: remove + probe, a checkpoint's resume), SIGKILL = domain
 * destroyed.
 *
 * Suspend (xl save, xl migrate), like Linux drivers/xen/manage.c: the guest
 * watches control/shutdown; on "suspend" it acknowledges (clears the node),
 * freezes user space (commands on the sockets stay connected and wait; one in
 * flight completes first), sends TPM_SaveState and ignores the answer
 * (tpm_pm_suspend -> tpm1_pm_suspend: xen-tpmfront registers a TPM 1.2 chip),
 * and makes its SCHEDOP_shutdown(SHUTDOWN_suspend) hypercall by writing its
 * domain file DIR/hv/domain-<domid> with shutdown=suspend (lib/domain.h). It
 * then runs nothing until the "hypervisor" resumes it through NAME.domctl.
 *
 * NAME.domctl is the simulated hypervisor's handle on the guest's vCPUs, a
 * Unix stream socket served by the xenwatch thread: one request line, one
 * reply line ("ok" or "error <why>"), then the guest closes the connection.
 *   resume <domid>  only while suspended; answered "ok" before the guest runs.
 *                   <domid> = its own: a cancelled suspend (xen_suspend returns
 *                   with si.cancelled=1: the old ring and the old xenstore
 *                   connection stay, nothing is re-probed, tpm_pm_resume sends
 *                   nothing). Another domid: the guest was migrated into that
 *                   domain: it opens the new domain's xenstore connection,
 *                   event channels and grants, re-registers its watches
 *                   (xs_resume) and runs xenbus_dev_resume -> tpmfront_resume =
 *                   remove + probe (a new page, grant and event channel, state
 *                   3, the probe-time commands). Then user space thaws.
 *   rename <name>   the guest's files follow an xl rename (vtpm-sim rename):
 *                   DIR/OLD.{sock,sock.ctrl,domctl,guest-state} are renamed,
 *                   NEW.tcti written and OLD.tcti removed.
 *
 * --resumed starts the guest as xl restore does a restored kernel: it does not
 * boot; its first xenbus action is the resume probe of device/vtpm/<devid>
 * (which the toolstack created before starting it), with user space frozen
 * until that is done, as after case "another domid" above.
 *
 * The swtpm control channel's CMD_INIT power-cycles the TPM device as a guest
 * would on a real host: the TPM is unregistered, the frontend closes (5, then
 * 6 once the backend is Closing: the backend gives the vTPM its orderly
 * reset), the driver probes again, and CMD_INIT answers success only once the
 * device is Connected again (TPM_FAIL otherwise). Control commands the
 * simulation does not model answer an error.
 *
 * The differences from a real Linux guest are listed at the end of this file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "../common/testlib.h"
#include "domain.h"
#include "evtchn.h"
#include "gnttab.h"
#include "guest-chip.h"
#include "parse.h"
#include "platform.h"
#include "tpm.h"
#include "util.h"

/* Linux include/xen/interface/io/xenbus.h */
enum {
        XB_UNKNOWN = 0,
        XB_INITIALISING = 1,
        XB_INITWAIT = 2,
        XB_INITIALISED = 3,
        XB_CONNECTED = 4,
        XB_CLOSING = 5,
        XB_CLOSED = 6,
};

#define SHUTDOWN_WAIT_MS 5000u  /* xenbus_frontend_dev_shutdown: 5 * HZ */
/* CMD_INIT: how long the re-probed device may take to be Connected again. */
#define REPROBE_CONNECT_MS 10000u
#define DOMCTL_IO_TIMEOUT_MS 1000
#define TPM12_ORD_SAVESTATE 0x98u
#define CLIENT_IO_TIMEOUT_MS 10000
/* swtpm control messages: the largest request is ptm_hdata (4 + 4 + 4096). */
#define CTRL_MAX_MSG (4u + 4u + 4096u)

/* swtpm include/swtpm/tpm_ioctl.h */
#define CMD_GET_CAPABILITY 0x01u
#define CMD_INIT 0x02u
#define CMD_SHUTDOWN 0x03u
#define CMD_SET_LOCALITY 0x05u
#define CMD_CANCEL_TPM_CMD 0x09u
#define PTM_CAP_INIT (1u << 0)
#define PTM_CAP_SET_LOCALITY (1u << 3)
#define PTM_CAP_CANCEL_TPM_CMD (1u << 5)
/* TPM 1.2 result codes swtpm's control channel answers with */
#define TPM12_BAD_PARAMETER 0x03u
#define TPM12_FAIL 0x09u
#define TPM12_BAD_ORDINAL 0x0au
#define TPM12_BAD_LOCALITY 0x3du

typedef struct Options {
        char *dir;
        uint32_t domid;
        char *name;
        uint32_t devid;
        GuestWait wait;
        uint32_t tcp_port; /* 0 = none */
        char *log_path;
        double timeout_scale;
        bool shutdown_on_exit;
        bool resumed;
} Options;

typedef struct Guest {
        Options opt;
        Platform *platform;
        Evtchn *evtchn;
        Gntshr *gntshr;
        GuestChip chip;
        struct xs_handle *xs;

        char *nodename;   /* "device/vtpm/<devid>" */
        char *dir;        /* DIR, absolute */
        char *data_path;  /* DIR/NAME.sock */
        char *ctrl_path;  /* DIR/NAME.sock.ctrl */
        char *tcti_path;
        char *state_path;
        char *domctl_path; /* DIR/NAME.domctl */
        int listen_fd[4]; /* unix data, unix ctrl, tcp data, tcp ctrl */
        int domctl_fd;    /* listening on domctl_path */
        int req_pipe[2];  /* socket thread -> xenwatch thread: a CMD_INIT is waiting */

        /* The freezer (kernel/power/process.c) and the socket thread's
         * CMD_INIT request, under freeze_lock. */
        pthread_mutex_t freeze_lock;
        pthread_cond_t freeze_cond;
        bool frozen;        /* user space must not start a command */
        unsigned active;    /* socket-thread messages being served */
        bool req_pending;   /* a CMD_INIT waits for the xenwatch thread */
        bool req_done;
        int req_result;

        bool suspended;     /* SCHEDOP_shutdown(suspend) done, not resumed */
        bool ctl_pending;   /* control/shutdown changed, not looked at yet */

        /* struct xenbus_device */
        bool present;       /* device object exists (probed, bound or not) */
        bool bound;         /* tpmfront bound to it */
        int state;          /* dev->state */
        char *otherend;     /* backend path */
        uint32_t otherend_id;
        char *otherend_token; /* current otherend watch token, NULL if none */
        unsigned watch_seq;
        int seen_state;     /* frontend state node as last read, -1 if missing */

        bool shutting_down; /* system_state > SYSTEM_RUNNING */
        bool down;          /* completion dev->down */

        int reported_fe;
        int reported_tpm;
} Guest;

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

static FILE *log_file;
static uint32_t log_domid;

void guest_log(const char *fmt, ...) {
        struct timespec ts;
        va_list ap;

        clock_gettime(CLOCK_REALTIME, &ts);
        flockfile(log_file);
        fprintf(log_file, "[%lld.%03ld] vtpm-sim-guest dom%" PRIu32 ": ", (long long) ts.tv_sec,
                ts.tv_nsec / 1000000L, log_domid);
        va_start(ap, fmt);
        vfprintf(log_file, fmt, ap);
        va_end(ap);
        fputc('\n', log_file);
        fflush(log_file);
        funlockfile(log_file);
}

/* ---- files for the launcher and tests ---------------------------------- */

static void report(Guest *g) {
        int fe = g->present ? g->state : (g->seen_state < 0 ? XB_UNKNOWN : g->seen_state);
        int tpm;
        char line[64];
        int r;

        /* Not under the chip lock: a command in flight must not hold up xenbus. */
        tpm = __atomic_load_n(&g->chip.registered, __ATOMIC_ACQUIRE);

        if (fe == g->reported_fe && tpm == g->reported_tpm)
                return;
        snprintf(line, sizeof(line), "frontend=%d tpm=%s\n", fe, tpm ? "ready" : "none");
        r = write_file_atomic(g->state_path, line);
        if (r < 0) {
                guest_log("failed to write %s: %s", g->state_path, strerror(-r));
                return;
        }
        g->reported_fe = fe;
        g->reported_tpm = tpm;
}

/* ---- xenstore helpers (xenbus_client.c) -------------------------------- */

static char *xs_read_str(Guest *g, xs_transaction_t t, const char *dir, const char *key) {
        _cleanup_free_ char *path = NULL;
        unsigned len;

        if (asprintf(&path, "%s/%s", dir, key) < 0)
                return NULL;
        return xs_read(g->xs, t, path, &len);
}

static bool xs_exists(Guest *g, const char *path) {
        _cleanup_free_ char **d = NULL;
        unsigned n;

        d = xs_directory(g->xs, XBT_NULL, path, &n);
        return d != NULL;
}

/* xenbus_read_driver_state(): Unknown when missing or unreadable. */
static int read_driver_state(Guest *g, const char *dir) {
        _cleanup_free_ char *v = xs_read_str(g, XBT_NULL, dir, "state");
        int s;

        if (!v || sscanf(v, "%d", &s) != 1)
                return XB_UNKNOWN;
        return s;
}

/* xenbus_va_dev_error(): error/<nodename>/error = "<errno> <message>". */
static void dev_error(Guest *g, int err, const char *fmt, ...) _printf_(3, 4);
static void dev_error(Guest *g, int err, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *text = NULL, *path = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0)
                return;
        if (asprintf(&text, "%i %s", -err, msg) < 0 || asprintf(&path, "error/%s/error", g->nodename) < 0)
                return;
        guest_log("xenbus: %s %s", g->nodename, text);
        if (!xs_write(g->xs, XBT_NULL, path, text, strlen(text)))
                guest_log("xenbus: failed to write %s: %m", path);
}

static void switch_state_depth(Guest *g, int state, int depth);

/* xenbus_switch_fatal() */
static void switch_fatal(Guest *g, int depth, int err, const char *what) {
        dev_error(g, err, "%s", what);
        if (depth == 0)
                switch_state_depth(g, XB_CLOSING, 1);
}

/* __xenbus_switch_state(): only if the state node still exists (the
 * toolstack may have removed the dir), inside a transaction. */
static void switch_state_depth(Guest *g, int state, int depth) {
        if (state == g->state)
                return;

        for (;;) {
                _cleanup_free_ char *cur = NULL;
                xs_transaction_t t;
                bool abort_tx = true;
                int dummy;

                t = xs_transaction_start(g->xs);
                if (t == XBT_NULL) {
                        switch_fatal(g, depth, -errno, "starting transaction");
                        break;
                }
                cur = xs_read_str(g, t, g->nodename, "state");
                if (cur && sscanf(cur, "%d", &dummy) == 1) {
                        _cleanup_free_ char *path = NULL;
                        char v[16];

                        snprintf(v, sizeof(v), "%d", state);
                        if (asprintf(&path, "%s/state", g->nodename) >= 0 &&
                            xs_write(g->xs, t, path, v, strlen(v)))
                                abort_tx = false;
                        else
                                switch_fatal(g, depth, -errno, "writing new state");
                }
                if (!xs_transaction_end(g->xs, t, abort_tx)) {
                        if (errno == EAGAIN && !abort_tx)
                                continue;
                        switch_fatal(g, depth, -errno, "ending transaction");
                }
                break;
        }
        guest_log("xenbus: %s state %d -> %d", g->nodename, g->state, state);
        g->state = state;
        report(g);
}

static void switch_state(Guest *g, int state) {
        switch_state_depth(g, state, 0);
}

/* xenbus_dev_fatal() */
static void dev_fatal(Guest *g, int err, const char *fmt, ...) _printf_(3, 4);
static void dev_fatal(Guest *g, int err, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r >= 0)
                dev_error(g, err, "%s", msg);
        switch_state(g, XB_CLOSING);
}

/* ---- the otherend watch (xenbus_probe.c) ------------------------------- */

static void free_otherend_watch(Guest *g) {
        if (!g->otherend_token)
                return;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/state", g->otherend) >= 0)
                (void) xs_unwatch(g->xs, path, g->otherend_token);
        g->otherend_token = mfree_str(g->otherend_token);
}

static void free_otherend_details(Guest *g) {
        g->otherend = mfree_str(g->otherend);
        g->otherend_id = 0;
}

/* talk_to_otherend() -> xenbus_read_otherend_details("backend-id", "backend") */
static int talk_to_otherend(Guest *g) {
        _cleanup_free_ char *id = NULL, *path = NULL;
        int domid;

        free_otherend_watch(g);
        free_otherend_details(g);

        id = xs_read_str(g, XBT_NULL, g->nodename, "backend-id");
        path = xs_read_str(g, XBT_NULL, g->nodename, "backend");
        if (!id || !path || sscanf(id, "%i", &domid) != 1) {
                int err = (!id || !path) ? -(errno ?: ENOENT) : -EINVAL;
                dev_fatal(g, err, "reading other end details from %s", g->nodename);
                return err;
        }
        if (path[0] == '\0' || !xs_exists(g, path)) {
                dev_fatal(g, -ENOENT, "unable to read other end from %s.  missing or inaccessible.",
                          g->nodename);
                return -ENOENT;
        }
        g->otherend = TAKE_PTR(path);
        g->otherend_id = (uint32_t) domid;
        return 0;
}

static int watch_otherend(Guest *g) {
        _cleanup_free_ char *path = NULL, *token = NULL;

        if (asprintf(&path, "%s/state", g->otherend) < 0 || asprintf(&token, "be%u", ++g->watch_seq) < 0)
                return -ENOMEM;
        if (!xs_watch(g->xs, path, token)) {
                int r = negative_errno();
                dev_fatal(g, r, "adding watch on %s", path);
                return r;
        }
        g->otherend_token = TAKE_PTR(token);
        return 0;
}

/* ---- xen-tpmfront.c ----------------------------------------------------- */

static void chip_register(Guest *g) {
        pthread_mutex_lock(&g->chip.lock);
        __atomic_store_n(&g->chip.registered, true, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&g->chip.lock);
        guest_log("tpm: /dev/tpm0 registered");
        report(g);
}

/* tpm_chip_unregister(): waits for a command in flight (the chip lock). */
static void chip_unregister(Guest *g) {
        bool was;

        pthread_mutex_lock(&g->chip.lock);
        was = g->chip.registered;
        __atomic_store_n(&g->chip.registered, false, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&g->chip.lock);
        if (was)
                guest_log("tpm: /dev/tpm0 unregistered");
        report(g);
}

/* setup_ring() */
static int setup_ring(Guest *g) {
        const char *what = NULL;
        int r;

        pthread_mutex_lock(&g->chip.lock);
        r = guest_chip_setup_ring(&g->chip, g->otherend_id, &what);
        pthread_mutex_unlock(&g->chip.lock);
        if (r < 0) {
                dev_fatal(g, r, "%s", what ?: "setting up ring");
                return r;
        }
        guest_log("tpmfront: ring-ref %" PRIu32 " event-channel %" PRIu32 " for backend domain %" PRIu32,
                  g->chip.ring_ref, g->chip.port, g->otherend_id);

        for (;;) {
                const char *message = NULL;
                xs_transaction_t t;
                char ref[16], port[16];
                _cleanup_free_ char *p1 = NULL, *p2 = NULL, *p3 = NULL;

                t = xs_transaction_start(g->xs);
                if (t == XBT_NULL) {
                        r = negative_errno();
                        dev_fatal(g, r, "starting transaction");
                        return r;
                }
                snprintf(ref, sizeof(ref), "%u", g->chip.ring_ref);
                snprintf(port, sizeof(port), "%u", g->chip.port);
                if (asprintf(&p1, "%s/ring-ref", g->nodename) < 0 ||
                    asprintf(&p2, "%s/event-channel", g->nodename) < 0 ||
                    asprintf(&p3, "%s/feature-protocol-v2", g->nodename) < 0) {
                        (void) xs_transaction_end(g->xs, t, true);
                        return -ENOMEM;
                }
                if (!xs_write(g->xs, t, p1, ref, strlen(ref)))
                        message = "writing ring-ref";
                else if (!xs_write(g->xs, t, p2, port, strlen(port)))
                        message = "writing event-channel";
                else if (!xs_write(g->xs, t, p3, "1", 1))
                        message = "writing feature-protocol-v2";
                if (message) {
                        r = negative_errno();
                        (void) xs_transaction_end(g->xs, t, true);
                        dev_error(g, r, "%s", message);
                        return r;
                }
                if (!xs_transaction_end(g->xs, t, false)) {
                        if (errno == EAGAIN)
                                continue;
                        r = negative_errno();
                        dev_fatal(g, r, "completing transaction");
                        return r;
                }
                break;
        }

        switch_state(g, XB_INITIALISED);
        return 0;
}

static void ring_free(Guest *g) {
        pthread_mutex_lock(&g->chip.lock);
        guest_chip_free_ring(&g->chip);
        pthread_mutex_unlock(&g->chip.lock);
}

/* tpmfront_probe(): the ring, then at once (without waiting for the backend)
 * tpm_get_timeouts() and tpm_chip_register(). */
static int tpmfront_probe(Guest *g) {
        int r;

        r = setup_ring(g);
        if (r < 0) {
                ring_free(g);
                return r;
        }

        pthread_mutex_lock(&g->chip.lock);
        r = guest_chip_get_timeouts(&g->chip);
        pthread_mutex_unlock(&g->chip.lock);
        if (r != 0)
                guest_log("tpm: tpm_get_timeouts failed: %d (ignored, like Linux)", r);
        else
                guest_log("tpm: timeouts A-D %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
                          " us, durations %" PRIu64 "/%" PRIu64 "/%" PRIu64 " us",
                          g->chip.timeout_us[0], g->chip.timeout_us[1], g->chip.timeout_us[2],
                          g->chip.timeout_us[3], g->chip.duration_us[0], g->chip.duration_us[1],
                          g->chip.duration_us[2]);

        chip_register(g);
        return 0;
}

static void tpmfront_remove(Guest *g) {
        chip_unregister(g);
        ring_free(g);
}

/* xenbus_dev_remove(), run by device_unregister(). */
static void device_unregister(Guest *g) {
        if (g->bound) {
                free_otherend_watch(g);
                tpmfront_remove(g);
                free_otherend_details(g);
                /* tpmfront has no allow_rebind */
                switch_state(g, XB_CLOSED);
        }
        g->present = false;
        g->bound = false;
        report(g);
}

/* xenbus_frontend_closed() */
static void frontend_closed(Guest *g) {
        switch_state(g, XB_CLOSED);
        g->down = true;
}

/* backend_changed() */
static void backend_changed(Guest *g, int be) {
        switch (be) {
        case XB_INITIALISED:
        case XB_CONNECTED: {
                _cleanup_free_ char *v = NULL;
                unsigned feat = 0;

                if (g->state == XB_CONNECTED)
                        break;
                v = xs_read_str(g, XBT_NULL, g->otherend, "feature-protocol-v2");
                if (!v || sscanf(v, "%u", &feat) != 1)
                        feat = 0;
                if (!feat) {
                        dev_fatal(g, -EINVAL, "vTPM protocol 2 required");
                        return;
                }
                switch_state(g, XB_CONNECTED);
                break;
        }
        case XB_CLOSING:
        case XB_CLOSED:
                device_unregister(g);
                frontend_closed(g);
                break;
        default:
                break;
        }
}

/* xenbus_otherend_changed() */
static void otherend_changed(Guest *g, const char *path, const char *token) {
        int be;

        if (!g->bound || !g->otherend_token || !streq(token, g->otherend_token) || !g->otherend ||
            strncmp(g->otherend, path, strlen(g->otherend)) != 0)
                return;

        be = read_driver_state(g, g->otherend);
        guest_log("xenbus: backend %s state %d (frontend %d)", g->otherend, be, g->state);

        if (g->shutting_down) {
                if (be == XB_CLOSING)
                        frontend_closed(g);
                return;
        }
        backend_changed(g, be);
}

/* xenbus_dev_probe() */
static void dev_probe(Guest *g) {
        int r;

        r = talk_to_otherend(g);
        if (r < 0)
                goto fail;
        r = tpmfront_probe(g);
        if (r < 0)
                goto fail;
        g->bound = true;
        (void) watch_otherend(g);
        return;
fail:
        dev_error(g, r, "xenbus_dev_probe on %s", g->nodename);
}

/* xenbus_dev_changed() for our device: probe a new node in Initialising,
 * unregister the device when its dir is gone. */
static void dev_changed(Guest *g) {
        if (!xs_exists(g, g->nodename)) {
                g->seen_state = -1;
                if (g->present) {
                        guest_log("xenbus: %s removed", g->nodename);
                        device_unregister(g);
                }
                report(g);
                return;
        }
        if (g->present)
                return;

        /* xenbus_probe_node(): a device that is not new is ignored. */
        g->seen_state = read_driver_state(g, g->nodename);
        if (g->seen_state != XB_INITIALISING) {
                report(g);
                return;
        }
        guest_log("xenbus: probing %s", g->nodename);
        g->present = true;
        g->state = XB_INITIALISING;
        report(g);
        dev_probe(g);
}

/* xenbus_dev_resume() -> tpmfront_resume() */
static void dev_resume(Guest *g) {
        int r;

        if (!g->bound) {
                guest_log("xenbus: resume: no bound device");
                return;
        }
        guest_log("xenbus: resuming %s", g->nodename);
        r = talk_to_otherend(g);
        if (r < 0) {
                guest_log("xenbus: resume (talk_to_otherend) %s failed: %d", g->nodename, r);
                return;
        }
        g->state = XB_INITIALISING;
        tpmfront_remove(g);
        r = tpmfront_probe(g);
        if (r < 0) {
                guest_log("xenbus: resume %s failed: %d", g->nodename, r);
                return;
        }
        (void) watch_otherend(g);
}

static void handle_watch(Guest *g, const char *path, const char *token) {
        size_t n = strlen(g->nodename);

        if (streq(token, "ctl")) {
                /* Looked at by the main loop, not inside a wait for the backend. */
                g->ctl_pending = true;
                return;
        }
        if (streq(token, "fe")) {
                /* Anything at or below our device dir, or a parent going away. */
                if (strncmp(path, g->nodename, strlen(path)) == 0 ||
                    (strncmp(path, g->nodename, n) == 0 && (path[n] == '\0' || path[n] == '/')))
                        dev_changed(g);
                return;
        }
        otherend_changed(g, path, token);
}

static int drain_watches(Guest *g) {
        char **vec;

        while ((vec = xs_check_watch(g->xs))) {
                handle_watch(g, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
                free(vec);
        }
        if (errno != EAGAIN) {
                guest_log("xenstore connection lost: %m");
                return -errno;
        }
        return 0;
}

/* xenbus_frontend_dev_shutdown()'s handshake: Closing, then up to 5 s for
 * the backend to be Closing too (frontend_closed sets Closed). */
static bool close_device(Guest *g) {
        uint64_t deadline;

        g->down = false;
        switch_state(g, XB_CLOSING);

        deadline = now_ms() + SHUTDOWN_WAIT_MS;
        while (!g->down) {
                struct pollfd p = { .fd = xs_fileno(g->xs), .events = POLLIN };
                uint64_t now = now_ms();

                if (now >= deadline) {
                        guest_log("xenbus: %s timeout closing device", g->nodename);
                        return false;
                }
                if (poll(&p, 1, (int) (deadline - now)) < 0 && errno != EINTR)
                        return false;
                if (drain_watches(g) < 0)
                        return false;
        }
        return true;
}

/* xenbus_frontend_dev_shutdown(), after device_shutdown() has shut the TPM
 * chip (a child device) down: tpm_class_shutdown() leaves no ops, and a
 * TPM 1.2 chip gets no command. */
static void guest_shutdown(Guest *g) {
        g->shutting_down = true;
        chip_unregister(g);

        if (!g->bound || g->state != XB_CONNECTED) {
                guest_log("xenbus: %s: %d != Connected, skipping", g->nodename, g->state);
                return;
        }
        (void) close_device(g);
}

/* ---- power management: CMD_INIT, suspend and resume --------------------- */

static int write_full(int fd, const uint8_t *buf, size_t len);

/* The socket thread's messages run between freezer_enter and freezer_leave;
 * a frozen guest lets none start (freeze_processes). */
static void freezer_enter(Guest *g) {
        pthread_mutex_lock(&g->freeze_lock);
        while (g->frozen)
                pthread_cond_wait(&g->freeze_cond, &g->freeze_lock);
        g->active++;
        pthread_mutex_unlock(&g->freeze_lock);
}

static void freezer_leave(Guest *g) {
        pthread_mutex_lock(&g->freeze_lock);
        g->active--;
        pthread_cond_broadcast(&g->freeze_cond);
        pthread_mutex_unlock(&g->freeze_lock);
}

/* Waits for the message being served to finish. A CMD_INIT that waits for
 * this thread fails (-EBUSY): the suspend goes first. */
static void freezer_freeze(Guest *g) {
        pthread_mutex_lock(&g->freeze_lock);
        g->frozen = true;
        while (g->active > 0) {
                if (g->req_pending && !g->req_done) {
                        g->req_result = -EBUSY;
                        g->req_done = true;
                        pthread_cond_broadcast(&g->freeze_cond);
                }
                pthread_cond_wait(&g->freeze_cond, &g->freeze_lock);
        }
        pthread_mutex_unlock(&g->freeze_lock);
}

static void freezer_thaw(Guest *g) {
        pthread_mutex_lock(&g->freeze_lock);
        g->frozen = false;
        pthread_cond_broadcast(&g->freeze_cond);
        pthread_mutex_unlock(&g->freeze_lock);
}

/* Socket thread: asks the xenwatch thread to power-cycle the device and
 * waits for the result. */
static int request_power_cycle(Guest *g) {
        int r;

        pthread_mutex_lock(&g->freeze_lock);
        g->req_pending = true;
        g->req_done = false;
        if (write(g->req_pipe[1], "i", 1) != 1) {
                g->req_pending = false;
                pthread_mutex_unlock(&g->freeze_lock);
                return -EIO;
        }
        while (!g->req_done)
                pthread_cond_wait(&g->freeze_cond, &g->freeze_lock);
        r = g->req_result;
        g->req_pending = false;
        pthread_mutex_unlock(&g->freeze_lock);
        return r;
}

/* Waits until the device is Connected, handling xenstore events. */
static int wait_connected(Guest *g, unsigned timeout_ms) {
        uint64_t deadline = now_ms() + timeout_ms;

        while (!(g->bound && g->state == XB_CONNECTED)) {
                struct pollfd p = { .fd = xs_fileno(g->xs), .events = POLLIN };
                uint64_t now = now_ms();

                if (!g->present)
                        return -ENODEV;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) (deadline - now)) < 0 && errno != EINTR)
                        return negative_errno();
                if (drain_watches(g) < 0)
                        return -EIO;
        }
        return 0;
}

/* CMD_INIT: what a guest that power-cycles its TPM does on a real host. The
 * chip goes away and the frontend closes as at shutdown (the backend's
 * orderly reset of the vTPM), then the driver is bound again (xenbus_dev_probe,
 * like rmmod + modprobe xen-tpmfront) once the backend is ready for a new
 * connection, and the device must reach Connected. */
static int power_cycle(Guest *g) {
        _cleanup_free_ char *be = NULL;
        uint64_t deadline;
        int r, s;

        if (!g->bound || g->state != XB_CONNECTED || !g->otherend)
                return -ENODEV;
        be = strdup(g->otherend);
        if (!be)
                return -ENOMEM;
        guest_log("ctrl: CMD_INIT: power-cycling %s", g->nodename);
        chip_unregister(g);
        g->shutting_down = true;
        if (!close_device(g)) {
                g->shutting_down = false;
                return -ETIMEDOUT;
        }
        g->shutting_down = false;
        /* The node reads Closed until the probe: report that, not the state
         * seen at the first probe. */
        g->seen_state = g->state;
        device_unregister(g);

        /* A backend still Closing or Closed would unbind the new probe at
         * once (backend_changed); vtpmd goes back to InitWait after fe 6. */
        deadline = now_ms() + SHUTDOWN_WAIT_MS;
        while ((s = read_driver_state(g, be)) == XB_CLOSING || s == XB_CLOSED) {
                struct timespec ts = { .tv_nsec = 5 * 1000 * 1000 };

                if (now_ms() >= deadline) {
                        guest_log("ctrl: CMD_INIT: backend %s stays in state %d", be, s);
                        return -ETIMEDOUT;
                }
                nanosleep(&ts, NULL);
        }
        if (!xs_exists(g, g->nodename))
                return -ENODEV;
        guest_log("xenbus: probing %s again", g->nodename);
        g->present = true;
        report(g);
        dev_probe(g);
        r = wait_connected(g, REPROBE_CONNECT_MS);
        if (r < 0)
                guest_log("ctrl: CMD_INIT: %s not Connected again: %s", g->nodename, strerror(-r));
        return r;
}

static void serve_power_cycle(Guest *g) {
        char c;
        int r;

        while (read(g->req_pipe[0], &c, 1) == 1)
                ;
        pthread_mutex_lock(&g->freeze_lock);
        if (!g->req_pending || g->req_done) {
                pthread_mutex_unlock(&g->freeze_lock);
                return;
        }
        pthread_mutex_unlock(&g->freeze_lock);
        r = power_cycle(g);
        pthread_mutex_lock(&g->freeze_lock);
        g->req_result = r;
        g->req_done = true;
        pthread_cond_broadcast(&g->freeze_cond);
        pthread_mutex_unlock(&g->freeze_lock);
}

/* tpm1_pm_suspend() without PCR extend: TPM_SaveState, answer ignored. */
static void tpm_save_state(Guest *g) {
        uint8_t buf[TPM_HEADER_SIZE];
        size_t len = 0;
        int r;

        if (!__atomic_load_n(&g->chip.registered, __ATOMIC_ACQUIRE))
                return;
        tpm_put_be16(buf, 0x00c1); /* TPM_TAG_RQU_COMMAND */
        tpm_put_be32(buf + 2, TPM_HEADER_SIZE);
        tpm_put_be32(buf + 6, TPM12_ORD_SAVESTATE);
        pthread_mutex_lock(&g->chip.lock);
        r = guest_chip_transmit_cmd(&g->chip, buf, sizeof(buf), 0, "attempting to save state", &len);
        pthread_mutex_unlock(&g->chip.lock);
        if (r != 0)
                guest_log("tpm: TPM_SaveState before suspend: %d (ignored, like Linux)", r);
        else
                guest_log("tpm: TPM_SaveState before suspend: ok");
}

/* HYPERVISOR_suspend: SCHEDOP_shutdown(SHUTDOWN_suspend). */
static int hypercall_shutdown_suspend(Guest *g) {
        DomainCtl *dc = NULL;
        DomainInfo info;
        int r;

        r = domainctl_open(g->platform, &dc);
        if (r >= 0)
                r = domainctl_info(dc, g->opt.domid, &info);
        domainctl_free(dc);
        if (r >= 0) {
                info.shutdown = true;
                info.reason = DOMAIN_SHUTDOWN_SUSPEND;
                r = domain_sim_set(g->platform, g->opt.domid, &info);
        }
        return r;
}

/* drivers/xen/manage.c do_suspend(), up to the hypercall. */
static void do_suspend(Guest *g) {
        int r;

        guest_log("suspend: freezing user space");
        freezer_freeze(g);
        /* dpm_suspend_start(PMSG_FREEZE): the TPM class's pm ops; xenbus's
         * suspend calls tpmfront's suspend op, which it has none of. */
        tpm_save_state(g);
        r = hypercall_shutdown_suspend(g);
        if (r < 0) {
                /* The hypercall failing is a cancelled suspend: run on. */
                guest_log("suspend: SCHEDOP_shutdown(suspend) failed: %s; resuming", strerror(-r));
                freezer_thaw(g);
                return;
        }
        g->suspended = true;
        guest_log("suspend: domain %" PRIu32 " suspended", g->opt.domid);
}

/* shutdown_handler(): only "suspend" is acknowledged and handled. */
static void shutdown_handler(Guest *g) {
        for (;;) {
                _cleanup_free_ char *v = NULL;
                xs_transaction_t t;
                bool handled;

                t = xs_transaction_start(g->xs);
                if (t == XBT_NULL)
                        return;
                v = xs_read_str(g, t, "control", "shutdown");
                if (!v || !*v) {
                        (void) xs_transaction_end(g->xs, t, true);
                        return;
                }
                handled = streq(v, "suspend");
                if (handled && !xs_write(g->xs, t, "control/shutdown", "", 0)) {
                        (void) xs_transaction_end(g->xs, t, true);
                        return;
                }
                if (!xs_transaction_end(g->xs, t, false)) {
                        if (errno == EAGAIN)
                                continue;
                        return;
                }
                if (!handled) {
                        guest_log("Ignoring shutdown request: %s", v);
                        return;
                }
                do_suspend(g);
                return;
        }
}

static int add_watches(Guest *g) {
        if (!xs_watch(g->xs, "device/vtpm", "fe") || !xs_watch(g->xs, "control/shutdown", "ctl"))
                return negative_errno();
        return 0;
}

/* A migrated guest continues in domain domid: the old domain's event
 * channels, grants and xenstore connection are left behind (after the old
 * ring is freed, as tpmfront_resume's remove would), the new domain's are
 * opened. */
static int move_to_domain(Guest *g, uint32_t domid) {
        _cleanup_free_ char *spec = NULL, *xs_path = NULL;
        int r;

        free_otherend_watch(g);
        tpmfront_remove(g);
        g->chip.evtchn = g->evtchn = evtchn_close(g->evtchn);
        g->chip.gntshr = g->gntshr = gntshr_close(g->gntshr);
        g->platform = platform_free(g->platform);
        xs_close(g->xs);
        g->xs = NULL;

        guest_log("resume: continuing as domain %" PRIu32, domid);
        g->opt.domid = log_domid = domid;
        if (asprintf(&spec, "sim:%s", g->dir) < 0 ||
            asprintf(&xs_path, "%s/xenstore/domain-%" PRIu32 ".sock", g->dir, domid) < 0)
                return -ENOMEM;
        r = platform_parse(spec, domid, &g->platform);
        if (r >= 0)
                r = evtchn_open(g->platform, &g->evtchn);
        if (r >= 0)
                r = gntshr_open(g->platform, &g->gntshr);
        if (r < 0)
                return r;
        g->chip.evtchn = g->evtchn;
        g->chip.gntshr = g->gntshr;
        if (setenv("XENSTORED_PATH", xs_path, 1) < 0)
                return negative_errno();
        g->xs = xs_open(0);
        if (!g->xs)
                return negative_errno();
        /* xs_resume: every watch again (each fires once). */
        return add_watches(g);
}

/* xen_suspend() returned: a cancelled suspend, or a resume in domid. */
static void resume_domain(Guest *g, uint32_t domid) {
        if (domid == g->opt.domid)
                guest_log("resume: suspend cancelled, continuing on the old ring");
        else {
                int r = move_to_domain(g, domid);

                if (r < 0) {
                        guest_log("resume: cannot attach to domain %" PRIu32 ": %s", domid, strerror(-r));
                        _exit(1);
                }
                if (g->bound)
                        dev_resume(g);
        }
        g->suspended = false;
        freezer_thaw(g);
        guest_log("resume: user space thawed");
}

static int set_paths(Guest *g, const char *name) {
        char *d = NULL, *c = NULL, *t = NULL, *st = NULL, *dc = NULL;

        if (asprintf(&d, "%s/%s.sock", g->dir, name) < 0 || asprintf(&c, "%s/%s.sock.ctrl", g->dir, name) < 0 ||
            asprintf(&t, "%s/%s.tcti", g->dir, name) < 0 || asprintf(&st, "%s/%s.guest-state", g->dir, name) < 0 ||
            asprintf(&dc, "%s/%s.domctl", g->dir, name) < 0) {
                free(d);
                free(c);
                free(t);
                free(st);
                return -ENOMEM;
        }
        free(g->data_path);
        free(g->ctrl_path);
        free(g->tcti_path);
        free(g->state_path);
        free(g->domctl_path);
        g->data_path = d;
        g->ctrl_path = c;
        g->tcti_path = t;
        g->state_path = st;
        g->domctl_path = dc;
        return 0;
}

static int write_tcti(Guest *g) {
        _cleanup_free_ char *tcti = NULL;

        if (asprintf(&tcti, "swtpm:path=%s", g->data_path) < 0)
                return -ENOMEM;
        return write_file_atomic(g->tcti_path, tcti);
}

/* The files follow the domain's new name. */
static int rename_files(Guest *g, const char *name) {
        _cleanup_free_ char *od = g->data_path, *oc = g->ctrl_path, *ot = g->tcti_path, *os = g->state_path,
                            *odc = g->domctl_path;
        int r;

        g->data_path = g->ctrl_path = g->tcti_path = g->state_path = g->domctl_path = NULL;
        r = set_paths(g, name);
        if (r < 0) {
                g->data_path = TAKE_PTR(od);
                g->ctrl_path = TAKE_PTR(oc);
                g->tcti_path = TAKE_PTR(ot);
                g->state_path = TAKE_PTR(os);
                g->domctl_path = TAKE_PTR(odc);
                return r;
        }
        if (rename(od, g->data_path) < 0 || rename(oc, g->ctrl_path) < 0 || rename(odc, g->domctl_path) < 0 ||
            (rename(os, g->state_path) < 0 && errno != ENOENT))
                return negative_errno();
        r = write_tcti(g);
        if (r < 0)
                return r;
        (void) unlink(ot);
        guest_log("renamed: files now %s/%s.*", g->dir, name);
        return 0;
}

/* One request on NAME.domctl (header comment). */
static void serve_domctl(Guest *g) {
        _cleanup_close_ int fd = accept4(g->domctl_fd, NULL, NULL, SOCK_CLOEXEC);
        char line[128], reply[160];
        size_t got = 0;
        uint32_t domid = 0;
        bool resume = false;

        if (fd < 0)
                return;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (got == sizeof(line) - 1 || poll(&p, 1, DOMCTL_IO_TIMEOUT_MS) <= 0)
                        break;
                n = read(fd, line + got, sizeof(line) - 1 - got);
                if (n <= 0)
                        break;
                got += (size_t) n;
                if (memchr(line, '\n', got))
                        break;
        }
        line[got] = '\0';
        line[strcspn(line, "\n")] = '\0';

        if (strncmp(line, "resume ", 7) == 0) {
                if (parse_u32_max(line + 7, 0x7fefu, &domid) < 0 || domid == 0)
                        snprintf(reply, sizeof(reply), "error bad domid\n");
                else if (!g->suspended)
                        snprintf(reply, sizeof(reply), "error not suspended\n");
                else {
                        snprintf(reply, sizeof(reply), "ok\n");
                        resume = true;
                }
        } else if (strncmp(line, "rename ", 7) == 0) {
                const char *name = line + 7;
                int r = (!*name || strchr(name, '/')) ? -EINVAL : rename_files(g, name);

                if (r < 0)
                        snprintf(reply, sizeof(reply), "error %s\n", strerror(-r));
                else
                        snprintf(reply, sizeof(reply), "ok\n");
        } else
                snprintf(reply, sizeof(reply), "error unknown request\n");
        (void) write_full(fd, (const uint8_t *) reply, strlen(reply));
        if (resume)
                resume_domain(g, domid);
}

/* ---- user space: the swtpm-compatible sockets --------------------------- */

static int read_full(int fd, uint8_t *buf, size_t len, size_t *ret_got) {
        uint64_t deadline = now_ms() + CLIENT_IO_TIMEOUT_MS;
        size_t got = 0;

        while (got < len) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_ms();
                ssize_t n;
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) (deadline - now));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return negative_errno();
                if (r == 0)
                        continue;
                n = read(fd, buf + got, len - got);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        *ret_got = got;
        return 0;
}

static int write_full(int fd, const uint8_t *buf, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                buf += n;
                len -= (size_t) n;
        }
        return 0;
}

static TpmFamily family_of(const uint8_t *cmd) {
        uint16_t tag = tpm_be16(cmd);
        return (tag == TPM2_ST_NO_SESSIONS || tag == TPM2_ST_SESSIONS) ? TPM_FAMILY_2_0 : TPM_FAMILY_1_2;
}

/* One command on a data connection, like a write()+read() on /dev/tpm0.
 * Returns < 0 to close the connection. */
static int serve_data(Guest *g, int fd) {
        uint8_t buf[4096]; /* TPM_BUFSIZE: /dev/tpm0 refuses larger writes */
        uint8_t err[TPM_HEADER_SIZE];
        size_t got = 0, len = 0;
        uint32_t size;
        int r;

        r = read_full(fd, buf, TPM_HEADER_SIZE, &got);
        if (r < 0 || got == 0)
                return -EPIPE;
        if (got < TPM_HEADER_SIZE)
                return -EBADMSG;
        size = tpm_be32(buf + 2);
        if (size < TPM_HEADER_SIZE || size > sizeof(buf)) {
                /* tpm_common_write: -E2BIG / -EINVAL; the stream cannot be resynchronised */
                guest_log("tpm0: refusing a command of %" PRIu32 " bytes", size);
                tpm_error_response(family_of(buf), tpm_rc_command_size(family_of(buf)), err);
                (void) write_full(fd, err, sizeof(err));
                return -EBADMSG;
        }
        r = read_full(fd, buf + TPM_HEADER_SIZE, size - TPM_HEADER_SIZE, &got);
        if (r < 0 || got < size - TPM_HEADER_SIZE)
                return -EPIPE;

        pthread_mutex_lock(&g->chip.lock);
        if (!g->chip.registered) {
                pthread_mutex_unlock(&g->chip.lock);
                return -ENODEV; /* no /dev/tpm0 any more */
        }
        {
                TpmFamily fam = family_of(buf);
                r = guest_chip_transmit(&g->chip, buf, sizeof(buf), &len);
                pthread_mutex_unlock(&g->chip.lock);
                if (r < 0) {
                        guest_log("tpm0: command failed: %s", strerror(-r));
                        tpm_error_response(fam, tpm_rc_failure(fam), err);
                        return write_full(fd, err, sizeof(err));
                }
        }
        return write_full(fd, buf, len);
}

static void put_res(uint8_t *out, uint32_t res) {
        tpm_put_be32(out, res);
}

/* One swtpm control message (one read, like swtpm's ctrlchannel). Returns < 0
 * to close the connection. */
static int serve_ctrl(Guest *g, int fd) {
        uint8_t in[CTRL_MAX_MSG], out[8];
        size_t out_len = 4;
        bool close_after = false;
        ssize_t n;
        uint32_t cmd;

        n = recv(fd, in, sizeof(in), 0);
        if (n <= 0)
                return -EPIPE;
        if (n < 4) {
                put_res(out, TPM12_BAD_PARAMETER);
                return write_full(fd, out, 4);
        }
        cmd = tpm_be32(in);
        n -= 4;

        switch (cmd) {
        case CMD_GET_CAPABILITY: {
                uint32_t caps = PTM_CAP_INIT | PTM_CAP_SET_LOCALITY | PTM_CAP_CANCEL_TPM_CMD;
                /* ptm_cap is a big-endian uint64_t, without a result code */
                tpm_put_be32(out, 0);
                tpm_put_be32(out + 4, caps);
                out_len = 8;
                break;
        }
        case CMD_INIT: {
                int r;

                if (n != 4) {
                        put_res(out, TPM12_BAD_PARAMETER);
                        break;
                }
                r = request_power_cycle(g);
                if (r < 0) {
                        guest_log("ctrl: CMD_INIT flags=0x%" PRIx32 ": power cycle failed: %s, answering TPM_FAIL",
                                  tpm_be32(in + 4), strerror(-r));
                        put_res(out, TPM12_FAIL);
                } else {
                        guest_log("ctrl: CMD_INIT flags=0x%" PRIx32 ": TPM power-cycled, device Connected again",
                                  tpm_be32(in + 4));
                        put_res(out, 0);
                }
                break;
        }
        case CMD_SHUTDOWN:
                if (n != 0) {
                        put_res(out, TPM12_BAD_PARAMETER);
                        break;
                }
                guest_log("ctrl: CMD_SHUTDOWN not modelled, answering TPM_FAIL");
                put_res(out, TPM12_FAIL);
                break;
        case CMD_SET_LOCALITY:
                if (n < 1) {
                        put_res(out, TPM12_BAD_PARAMETER);
                        break;
                }
                if (in[4] > 4) {
                        put_res(out, TPM12_BAD_LOCALITY);
                        break;
                }
                guest_chip_set_locality(&g->chip, in[4]);
                put_res(out, 0);
                break;
        case CMD_CANCEL_TPM_CMD:
                /* Commands run on this thread, so none is in flight now: like
                 * swtpm's single-threaded front ends this has no effect. */
                put_res(out, n == 0 ? 0 : TPM12_BAD_PARAMETER);
                break;
        default:
                guest_log("ctrl: unsupported command 0x%08" PRIx32, cmd);
                put_res(out, TPM12_BAD_ORDINAL);
                close_after = true; /* its payload size is unknown to us */
                break;
        }
        if (write_full(fd, out, out_len) < 0 || close_after)
                return -EPIPE;
        return 0;
}

typedef struct Conn {
        int fd;
        bool ctrl;
} Conn;

static void *io_thread(void *arg) {
        Guest *g = arg;
        Conn *conns = NULL;
        size_t n_conns = 0;

        for (;;) {
                _cleanup_free_ struct pollfd *p = NULL;
                size_t np = 0;

                p = calloc(4 + n_conns, sizeof(*p));
                if (!p) {
                        guest_log("out of memory");
                        abort();
                }
                for (size_t i = 0; i < 4; i++)
                        if (g->listen_fd[i] >= 0)
                                p[np++] = (struct pollfd){ .fd = g->listen_fd[i], .events = POLLIN };
                size_t nl = np;
                for (size_t i = 0; i < n_conns; i++)
                        p[np++] = (struct pollfd){ .fd = conns[i].fd, .events = POLLIN };

                if (poll(p, np, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        guest_log("poll: %m");
                        abort();
                }

                /* Clients first, so indices stay valid; then new connections. */
                for (size_t i = n_conns; i-- > 0;) {
                        int r;

                        if (!(p[nl + i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        freezer_enter(g);
                        r = conns[i].ctrl ? serve_ctrl(g, conns[i].fd) : serve_data(g, conns[i].fd);
                        freezer_leave(g);
                        if (r < 0) {
                                safe_close(conns[i].fd);
                                conns[i] = conns[--n_conns];
                        }
                }
                for (size_t i = 0; i < nl; i++) {
                        bool ctrl = p[i].fd == g->listen_fd[1] || p[i].fd == g->listen_fd[3];
                        Conn *nc;
                        int fd;

                        if (!(p[i].revents & POLLIN))
                                continue;
                        fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
                        if (fd < 0)
                                continue;
                        nc = realloc(conns, (n_conns + 1) * sizeof(*conns));
                        if (!nc) {
                                safe_close(fd);
                                continue;
                        }
                        conns = nc;
                        conns[n_conns++] = (Conn){ .fd = fd, .ctrl = ctrl };
                }
        }
        return NULL;
}

static int listen_unix(const char *path, int *ret) {
        struct sockaddr_un sa;
        _cleanup_close_ int fd = unix_socket_for(path, &sa);

        if (fd < 0)
                return fd;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

static int listen_tcp(uint32_t port, int *ret) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        _cleanup_close_ int fd = -1;
        int one = 1;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
                return negative_errno();
        *ret = TAKE_FD(fd);
        return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f) {
        fprintf(f,
                "Usage: vtpm-sim-guest --dir DIR --domid N --name NAME [--devid 0]\n"
                "                      [--wait poll|event] [--tcp-port P] [--log FILE]\n"
                "                      [--timeout-scale X] [--no-shutdown-on-exit] [--resumed]\n"
                "A simulated Linux guest running xen-tpmfront against the simulated Xen in DIR.\n"
                "--resumed: start as a restored kernel (the first xenbus action is the resume probe).\n"
                "TPM timeouts are multiplied by X (default: $VTPM_SIM_TIMEOUT_SCALE or 1).\n");
}

static int parse_scale(const char *s, double *ret) {
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || !end || *end != '\0' || end == s || !(v > 0) || v > 1000)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_options(int argc, char **argv, Options *o) {
        enum { OPT_SCALE = 0x100, OPT_NO_SHUTDOWN, OPT_SHUTDOWN, OPT_RESUMED };
        static const struct option longopts[] = {
                { "dir", required_argument, NULL, 'd' },
                { "domid", required_argument, NULL, 'n' },
                { "name", required_argument, NULL, 'N' },
                { "devid", required_argument, NULL, 'D' },
                { "wait", required_argument, NULL, 'w' },
                { "tcp-port", required_argument, NULL, 'p' },
                { "log", required_argument, NULL, 'l' },
                { "timeout-scale", required_argument, NULL, OPT_SCALE },
                { "shutdown-on-exit", no_argument, NULL, OPT_SHUTDOWN },
                { "no-shutdown-on-exit", no_argument, NULL, OPT_NO_SHUTDOWN },
                { "resumed", no_argument, NULL, OPT_RESUMED },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *env;
        bool have_domid = false;
        int c;

        *o = (Options){ .wait = GUEST_WAIT_POLL, .timeout_scale = 1.0, .shutdown_on_exit = true };
        env = getenv("VTPM_SIM_TIMEOUT_SCALE");
        if (env && parse_scale(env, &o->timeout_scale) < 0) {
                fprintf(stderr, "vtpm-sim-guest: bad VTPM_SIM_TIMEOUT_SCALE '%s'\n", env);
                return -EINVAL;
        }

        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'd':
                        o->dir = optarg;
                        break;
                case 'n':
                        if (parse_u32_max(optarg, 0x7fefu, &o->domid) < 0 || o->domid == 0) {
                                fprintf(stderr, "vtpm-sim-guest: bad --domid '%s'\n", optarg);
                                return -EINVAL;
                        }
                        have_domid = true;
                        break;
                case 'N':
                        if (optarg[0] == '\0' || strchr(optarg, '/')) {
                                fprintf(stderr, "vtpm-sim-guest: bad --name '%s'\n", optarg);
                                return -EINVAL;
                        }
                        o->name = optarg;
                        break;
                case 'D':
                        if (parse_u32(optarg, &o->devid) < 0) {
                                fprintf(stderr, "vtpm-sim-guest: bad --devid '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'w':
                        if (streq(optarg, "poll"))
                                o->wait = GUEST_WAIT_POLL;
                        else if (streq(optarg, "event"))
                                o->wait = GUEST_WAIT_EVENT;
                        else {
                                fprintf(stderr, "vtpm-sim-guest: --wait must be poll or event\n");
                                return -EINVAL;
                        }
                        break;
                case 'p':
                        if (parse_u32_max(optarg, 65534, &o->tcp_port) < 0 || o->tcp_port == 0) {
                                fprintf(stderr, "vtpm-sim-guest: bad --tcp-port '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case 'l':
                        o->log_path = optarg;
                        break;
                case OPT_SCALE:
                        if (parse_scale(optarg, &o->timeout_scale) < 0) {
                                fprintf(stderr, "vtpm-sim-guest: bad --timeout-scale '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case OPT_SHUTDOWN:
                        o->shutdown_on_exit = true;
                        break;
                case OPT_NO_SHUTDOWN:
                        o->shutdown_on_exit = false;
                        break;
                case OPT_RESUMED:
                        o->resumed = true;
                        break;
                case 'h':
                        usage(stdout);
                        exit(EXIT_SUCCESS);
                default:
                        usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind != argc || !o->dir || !have_domid || !o->name) {
                usage(stderr);
                return -EINVAL;
        }
        return 0;
}

static void cleanup_files(Guest *g) {
        (void) unlink(g->tcti_path);
        (void) unlink(g->data_path);
        (void) unlink(g->ctrl_path);
        (void) unlink(g->domctl_path);
}

int main(int argc, char **argv) {
        Guest g = { .listen_fd = { -1, -1, -1, -1 }, .domctl_fd = -1, .req_pipe = { -1, -1 }, .seen_state = -1,
                    .reported_fe = -1, .reported_tpm = -1, .freeze_lock = PTHREAD_MUTEX_INITIALIZER,
                    .freeze_cond = PTHREAD_COND_INITIALIZER };
        _cleanup_free_ char *xs_path = NULL, *spec = NULL;
        _cleanup_close_ int sfd = -1;
        pthread_t io;
        sigset_t mask;
        int r;

        log_file = stderr;
        if (parse_options(argc, argv, &g.opt) < 0)
                return 2;
        log_domid = g.opt.domid;
        if (g.opt.log_path) {
                FILE *f = fopen(g.opt.log_path, "ae");
                if (!f) {
                        fprintf(stderr, "vtpm-sim-guest: cannot open log %s: %m\n", g.opt.log_path);
                        return 1;
                }
                log_file = f;
        }

        g.dir = realpath(g.opt.dir, NULL);
        if (!g.dir) {
                guest_log("cannot resolve --dir %s: %m", g.opt.dir);
                return 1;
        }
        if (asprintf(&g.nodename, "device/vtpm/%" PRIu32, g.opt.devid) < 0 || set_paths(&g, g.opt.name) < 0 ||
            asprintf(&xs_path, "%s/xenstore/domain-%" PRIu32 ".sock", g.dir, g.opt.domid) < 0 ||
            asprintf(&spec, "sim:%s", g.dir) < 0)
                return 1;
        if (pipe2(g.req_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return 1;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return 1;
        signal(SIGPIPE, SIG_IGN);
        sfd = signalfd(-1, &mask, SFD_CLOEXEC);
        if (sfd < 0) {
                guest_log("signalfd: %m");
                return 1;
        }

        r = platform_parse(spec, g.opt.domid, &g.platform);
        if (r >= 0)
                r = evtchn_open(g.platform, &g.evtchn);
        if (r >= 0)
                r = gntshr_open(g.platform, &g.gntshr);
        if (r < 0) {
                guest_log("cannot open the simulated platform %s: %s", spec, strerror(-r));
                return 1;
        }
        guest_chip_init(&g.chip, g.evtchn, g.gntshr, g.opt.wait, g.opt.timeout_scale);

        if (setenv("XENSTORED_PATH", xs_path, 1) < 0)
                return 1;
        g.xs = xs_open(0);
        if (!g.xs) {
                guest_log("cannot connect to xenstore at %s: %m", xs_path);
                return 1;
        }

        report(&g);

        r = listen_unix(g.data_path, &g.listen_fd[0]);
        if (r >= 0)
                r = listen_unix(g.ctrl_path, &g.listen_fd[1]);
        if (r >= 0)
                r = listen_unix(g.domctl_path, &g.domctl_fd);
        if (r >= 0 && g.opt.tcp_port) {
                r = listen_tcp(g.opt.tcp_port, &g.listen_fd[2]);
                if (r >= 0)
                        r = listen_tcp(g.opt.tcp_port + 1, &g.listen_fd[3]);
        }
        if (r < 0) {
                guest_log("cannot listen: %s", strerror(-r));
                cleanup_files(&g);
                return 1;
        }
        r = write_tcti(&g);
        if (r < 0) {
                guest_log("cannot write %s: %s", g.tcti_path, strerror(-r));
                cleanup_files(&g);
                return 1;
        }
        /* A restored kernel's user space stays frozen until its devices resumed. */
        g.frozen = g.opt.resumed;
        r = pthread_create(&io, NULL, io_thread, &g);
        if (r != 0) {
                guest_log("pthread_create: %s", strerror(r));
                cleanup_files(&g);
                return 1;
        }

        if (add_watches(&g) < 0) {
                guest_log("cannot watch device/vtpm and control/shutdown: %m");
                cleanup_files(&g);
                return 1;
        }
        guest_log("up: %s, wait=%s, timeout scale %g%s", g.nodename,
                  g.opt.wait == GUEST_WAIT_POLL ? "poll" : "event", g.opt.timeout_scale,
                  g.opt.resumed ? ", resumed" : "");
        if (g.opt.resumed) {
                if (xs_exists(&g, g.nodename)) {
                        g.present = true;
                        g.bound = true;
                        dev_resume(&g);
                } else
                        guest_log("resumed: %s does not exist", g.nodename);
                freezer_thaw(&g);
        }

        for (;;) {
                /* A suspended domain runs nothing: only the hypervisor's
                 * control socket (and signals) are looked at. */
                struct pollfd p[4] = {
                        { .fd = sfd, .events = POLLIN },
                        { .fd = g.domctl_fd, .events = POLLIN },
                        { .fd = g.req_pipe[0], .events = POLLIN },
                        { .fd = xs_fileno(g.xs), .events = POLLIN },
                };

                if (poll(p, g.suspended ? 2 : 4, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        guest_log("poll: %m");
                        break;
                }
                if (p[0].revents & POLLIN) {
                        struct signalfd_siginfo si;

                        if (read(sfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                if (si.ssi_signo == SIGUSR1) {
                                        if (!g.suspended)
                                                dev_resume(&g);
                                        continue;
                                }
                                guest_log("signal %u: shutting down", si.ssi_signo);
                                if (g.opt.shutdown_on_exit && !g.suspended)
                                        guest_shutdown(&g);
                                break;
                        }
                }
                if (p[1].revents & POLLIN) {
                        serve_domctl(&g);
                        continue;
                }
                if (g.suspended)
                        continue;
                if (p[2].revents & POLLIN)
                        serve_power_cycle(&g);
                if (p[3].revents & (POLLIN | POLLHUP | POLLERR)) {
                        if (drain_watches(&g) < 0)
                                break;
                }
                if (g.ctl_pending) {
                        g.ctl_pending = false;
                        shutdown_handler(&g);
                }
        }

        cleanup_files(&g);
        guest_log("exit (frontend state %d)", g.present ? g.state : g.seen_state);
        fflush(log_file);
        /* The socket thread may be inside a command; the process ends it. */
        _exit(0);
}

/*
 * Where this differs from a Linux guest with xen-tpmfront (Linux 6.x):
 *  - One device: only device/vtpm/<--devid> is handled (Linux probes all).
 *  - The bus watch is on device/vtpm, not on device.
 *  - TPM 1.2 ordinal durations: short for the ordinals this program sends
 *    itself (GetCapability, Startup, GetRandom, PCRRead, Extend), long for
 *    every other ordinal below 243; Linux has a per-ordinal table.
 *  - Timeouts are in milliseconds, not jiffies, and all of them can be scaled.
 *  - tpm_chip_register sends nothing (true for a TPM 1.2 chip on kernels
 *    with CONFIG_PM_SLEEP, where the TPM hwrng is not registered; older
 *    kernels also read 32 random bytes through TPM_GetRandom).
 *  - /dev/tpm0 is a pair of swtpm-style sockets; a failed command (timeout,
 *    cancel, bad response length) is answered with a 10-byte TPM failure
 *    response instead of a write() error; when the chip is unregistered
 *    connections are closed instead of open() failing.
 *  - The locality byte is written once a client set a non-zero locality via
 *    the control channel (mini-os tpmfront style); Linux never writes it.
 *  - A probe-time command blocks SIGTERM/SIGUSR1 handling until it finishes
 *    or times out, like the kernel's xenwatch thread blocks.
 *  - Suspend: only "suspend" is handled on control/shutdown (poweroff, reboot
 *    etc. are ignored, not acknowledged); no suspend event channel
 *    (device/suspend/event-channel); TPM_SaveState is sent once, without
 *    tpm1_pm_suspend's retries on TPM_WARN_RETRY and without its optional PCR
 *    extend (tpm_suspend_pcr). A CMD_INIT still waiting for the xenwatch
 *    thread when a suspend starts fails with TPM_FAIL instead of waiting.
 *  - A /dev/tpm0 user's connection survives tpmfront_resume's remove + probe
 *    (after a migration or restore) and its next command goes to the new
 *    chip; on Linux the old file descriptor is dead after the chip was
 *    unregistered (tools that open the device per command, like tpm2-tools,
 *    see no difference).
 *  - CMD_INIT is a power cycle of the device (close, then the driver bound
 *    again, as rmmod + modprobe xen-tpmfront would); a Linux guest has no
 *    such control channel. Control commands the simulation does not model
 *    (CMD_SHUTDOWN, ...) answer TPM_FAIL, unknown ones TPM_BAD_ORDINAL.
 *  - The migrated guest's memory is not copied: the same process continues
 *    in the new domain (resume <domid> on NAME.domctl); a restored guest is a
 *    new process started with --resumed, with none of the old process's
 *    user-space connections.
 */
