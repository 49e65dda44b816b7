/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * hostile-guest: a guest domain that attacks vtpmd on a running simulation
 * (vtpm-sim start). It creates its own domain with the simulated toolstack,
 * attaches a vTPM with a fresh UUID, plays the frontend itself (grant, event
 * channel, xenstore handshake, the shared page), and then abuses it in one of
 * the ways below. Each run is one case; it prints what it got, the vtpmd log
 * lines about its domain, and exits 0 (case passed) or 1 (failed).
 *
 *   hostile-guest --dir DIR --case NAME [--domid N] [--seconds S]
 *
 * Cases: malformed-headers, cancel-idle, page-change, flood, never-read,
 * cpu-hog, rewrite-frontend, backend-write, uuid-steal, reopen-loop,
 * worker-crash.
 *
 * The test plays dom0 too where it needs to (reading another guest's ring-ref
 * through the dom0 xenstore connection, looking at /proc): that is the test's
 * vantage point, not something the hostile domain could do.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "../common/testlib.h"
#include "../common/tpm-cmd.h"
#include "evtchn.h"
#include "gnttab.h"
#include "parse.h"
#include "platform.h"
#include "toolstack.h"
#include "tpm.h"
#include "tpmif.h"
#include "util.h"

#define DEFAULT_DOMID_BASE 900u
#define CONNECT_TIMEOUT_MS 30000
#define COMMAND_TIMEOUT_MS 30000
#define REJECT_TIMEOUT_MS 5000 /* an invalid header is answered at once */
#define MAX_LOG_LINES 40

typedef struct Ring {
        uint8_t *page;
        uint32_t ref, port;
} Ring;

/* One hostile domain per process. */
static struct {
        char *dir;
        uint32_t domid, devid;
        bool domain_created, log_printed;
        Toolstack *ts;             /* dom0's view: the toolstack and the test's eyes */
        struct xs_handle *gxs;     /* the hostile domain's own xenstore connection */
        Platform *platform;        /* as the hostile domain */
        Gntshr *gntshr;
        Evtchn *evtchn;
        Ring ring;
        char uuid[37];
        char fe[128], be[128];
        long log_offset; /* vtpmd.log size when we started */
        pid_t vtpmd;
} H;

/* ---- helpers ---- */

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* The poll loops below re-check their condition every millisecond, like the
 * Linux TPM core polls the page. */
static void pause_1ms(void) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
}

static void print_log(void);

_printf_(1, 2) _noreturn_ static void fail(const char *fmt, ...) {
        va_list ap;
        printf("FAIL: ");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        fflush(stdout);
        exit(1);
}

#define CHECK(cond, ...)                                     \
        do {                                                 \
                if (!(cond))                                 \
                        fail(__VA_ARGS__);                   \
        } while (0)
#define CHECK_OK(expr)                                       \
        do {                                                 \
                int _r = (expr);                             \
                if (_r < 0)                                  \
                        fail("%s: %s", #expr, strerror(-_r)); \
        } while (0)

static char *xs_get(struct xs_handle *xs, const char *path) {
        unsigned len;
        return xs_read(xs, XBT_NULL, path, &len);
}

static bool xs_put(struct xs_handle *xs, const char *path, const char *val) {
        return xs_write(xs, XBT_NULL, path, val, strlen(val));
}

/* -1 when missing or not a number. */
static int xs_get_int(struct xs_handle *xs, const char *path) {
        _cleanup_free_ char *s = xs_get(xs, path);
        uint32_t v;
        if (!s || parse_u32_max(s, INT32_MAX, &v) < 0)
                return -1;
        return (int) v;
}

static int be_state(void) {
        char p[160];
        snprintf(p, sizeof(p), "%s/state", H.be);
        return xs_get_int(H.ts->xs, p);
}

static void fe_write(const char *key, const char *val) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", H.fe, key);
        CHECK(xs_put(H.gxs, p, val), "writing %s=%s from the guest: %m", p, val);
}

static void fe_set_state(int s) {
        char v[16];
        snprintf(v, sizeof(v), "%d", s);
        fe_write("state", v);
}

static bool wait_be_state(int want, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        while (be_state() != want) {
                if (now_ms() >= deadline)
                        return false;
                pause_1ms();
        }
        return true;
}

static void random_uuid(char out[static 37]) {
        uint8_t b[16];
        _cleanup_close_ int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0 && read(fd, b, sizeof(b)) == (ssize_t) sizeof(b), "reading /dev/urandom: %m");
        b[6] = (uint8_t) ((b[6] & 0x0f) | 0x40);
        b[8] = (uint8_t) ((b[8] & 0x3f) | 0x80);
        snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int getrandom_u32(uint32_t *ret) {
        uint32_t v;
        if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
                return -EIO;
        *ret = v;
        return 0;
}

static long file_size(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? 0 : (long) st.st_size;
}

/* ---- vtpmd.log and /proc: what dom0 sees ---- */

static char *log_path(void) {
        char *p;
        CHECK(asprintf(&p, "%s/vtpmd.log", H.dir) >= 0, "oom");
        return p;
}

/* Calls fn for every line of vtpmd.log written since we started that is
 * about our domain. */
static void log_foreach(void (*fn)(const char *line, void *userdata), void *userdata) {
        _cleanup_free_ char *path = log_path(), *line = NULL;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char tag[48];
        size_t cap = 0;

        if (!f)
                return;
        if (fseek(f, H.log_offset, SEEK_SET) < 0)
                return;
        snprintf(tag, sizeof(tag), "domid=%u ", H.domid);
        while (getline(&line, &cap, f) > 0)
                if (strstr(line, tag))
                        fn(line, userdata);
}

typedef struct LogCount {
        const char *needle;
        const char *prefix;
        unsigned n;
} LogCount;

static void count_cb(const char *line, void *userdata) {
        LogCount *c = userdata;
        if ((!c->needle || strstr(line, c->needle)) && (!c->prefix || strncmp(line, c->prefix, strlen(c->prefix)) == 0))
                c->n++;
}

/* Lines about our domain since we started that begin with prefix. */
static unsigned log_count_prefix(const char *prefix) {
        LogCount c = { .prefix = prefix };
        log_foreach(count_cb, &c);
        return c.n;
}

/* Lines about our domain since we started that contain needle (NULL: all). */
static unsigned log_count(const char *needle) {
        LogCount c = { .needle = needle };
        log_foreach(count_cb, &c);
        return c.n;
}

static void print_cb(const char *line, void *userdata) {
        unsigned *n = userdata;
        if ((*n)++ < MAX_LOG_LINES)
                printf("  vtpmd.log: %s%s", line, line[strlen(line) - 1] == '\n' ? "" : "\n");
}

static void print_log(void) {
        unsigned n = 0;
        if (H.log_printed)
                return;
        H.log_printed = true;
        log_foreach(print_cb, &n);
        if (n > MAX_LOG_LINES)
                printf("  vtpmd.log: ... %u more lines about domain %u\n", n - MAX_LOG_LINES, H.domid);
        if (n == 0)
                printf("  vtpmd.log: (no lines about domain %u)\n", H.domid);
}

/* Parent pid of a process, or -1. */
static pid_t proc_ppid(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -1;
        buf[n] = 0;
        /* "pid (comm) S ppid": comm may contain anything, so look after the last ')'. */
        char *p = strrchr(buf, ')');
        int ppid;
        char st;
        if (!p || sscanf(p + 1, " %c %d", &st, &ppid) != 2 || st == 'Z')
                return -1;
        return ppid;
}

/* The vtpmd-worker children of vtpmd (live ones). */
static unsigned count_workers(void) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;
        unsigned n = 0;

        d = opendir("/proc");
        if (!d)
                return 0;
        while ((de = readdir(d))) {
                uint32_t pid;
                if (parse_u32(de->d_name, &pid) < 0)
                        continue;
                if (proc_ppid((pid_t) pid) == H.vtpmd)
                        n++;
        }
        return n;
}

typedef struct FindWorker {
        char tag[80];
        pid_t pid;
} FindWorker;

static void find_worker_cb(const char *line, void *userdata) {
        FindWorker *f = userdata;
        int pid;
        char rest[96];
        if (sscanf(line, "vtpmd-worker[%d]: %95[^\n]", &pid, rest) == 2 && strncmp(rest, f->tag, strlen(f->tag)) == 0 &&
            strstr(rest, ": ready: "))
                f->pid = pid;
}

/* The newest worker that reported ready for our device and still runs, or 0. */
static pid_t our_worker(void) {
        FindWorker f = {};
        snprintf(f.tag, sizeof(f.tag), "domid=%u devid=%u ", H.domid, H.devid);
        log_foreach(find_worker_cb, &f);
        if (f.pid > 0 && proc_ppid(f.pid) == H.vtpmd)
                return f.pid;
        return 0;
}

static pid_t wait_worker(pid_t not_this, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        for (;;) {
                pid_t p = our_worker();
                if (p > 0 && p != not_this)
                        return p;
                if (now_ms() >= deadline)
                        return 0;
                pause_1ms();
        }
}

static long proc_status_kb(pid_t pid, const char *key) {
        char path[64], line[256];
        long v = -1;
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':')
                        v = strtol(line + strlen(key) + 1, NULL, 10);
        return v;
}

/* CPU time of a process's threads other than its main one, by thread id. */
#define MAX_THREADS 16
typedef struct ThreadTimes {
        size_t n;
        pid_t tid[MAX_THREADS];
        uint64_t ns[MAX_THREADS];
} ThreadTimes;

/* How long a thread has run, in ns: the first field of its schedstat. */
static int thread_cpu_ns(pid_t pid, pid_t tid, uint64_t *ret) {
        char path[96], buf[128];
        uint64_t ns;

        snprintf(path, sizeof(path), "/proc/%d/task/%d/schedstat", (int) pid, (int) tid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return -EIO;
        buf[n] = 0;
        if (sscanf(buf, "%" SCNu64, &ns) != 1)
                return -EIO;
        *ret = ns;
        return 0;
}

static void thread_times(pid_t pid, ThreadTimes *ret) {
        char path[64];
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *de;

        *ret = (ThreadTimes){};
        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        d = opendir(path);
        if (!d)
                return;
        while ((de = readdir(d)) && ret->n < MAX_THREADS) {
                uint32_t tid;
                if (parse_u32(de->d_name, &tid) < 0 || (pid_t) tid == pid ||
                    thread_cpu_ns(pid, (pid_t) tid, &ret->ns[ret->n]) < 0)
                        continue;
                ret->tid[ret->n++] = (pid_t) tid;
        }
}

/* The worker's TPM thread sleeps on a condition variable until the I/O thread
 * hands it a command, which the I/O thread does only after copying the command
 * out of the page and marking the page server busy (page-server.c submit()).
 * Waking up and going back to sleep costs it microseconds; an RSA-2048
 * CreatePrimary costs it tens of milliseconds or more. So a thread that was
 * there before the submit and has run this long since is the TPM thread
 * executing our command, whatever else runs on the machine. */
#define TPM_THREAD_WORK_NS (2u * 1000000u)

static bool thread_ran_since(pid_t pid, const ThreadTimes *before) {
        for (size_t i = 0; i < before->n; i++) {
                uint64_t ns;
                if (thread_cpu_ns(pid, before->tid[i], &ns) == 0 && ns - before->ns[i] >= TPM_THREAD_WORK_NS)
                        return true;
        }
        return false;
}

/* Lines in vtpmd.log saying the worker of our device died unexpectedly. */
static unsigned crash_lines(void) {
        return log_count("killed by signal") + log_count("exited with status");
}

/* ---- the frontend ---- */

static void ring_alloc(Ring *r) {
        void *addr = NULL;
        CHECK_OK(gntshr_share(H.gntshr, 0, true, &r->ref, &addr));
        r->page = addr;
        CHECK_OK(evtchn_bind_unbound(H.evtchn, 0, &r->port));
}

static void ring_free(Ring *r) {
        if (!r->page)
                return;
        (void) gntshr_unshare(H.gntshr, r->page);
        (void) evtchn_unbind(H.evtchn, r->port);
        *r = (Ring){};
}

/* setup_ring(): ring-ref, event-channel, feature-protocol-v2 in one transaction, then the state. */
static void publish_ring(const Ring *r, int state) {
        char p[160], v[16];

        for (int attempt = 0;; attempt++) {
                xs_transaction_t t = xs_transaction_start(H.gxs);
                bool ok;

                CHECK(t != XBT_NULL, "transaction: %m");
                snprintf(p, sizeof(p), "%s/ring-ref", H.fe);
                snprintf(v, sizeof(v), "%u", r->ref);
                ok = xs_write(H.gxs, t, p, v, strlen(v));
                snprintf(p, sizeof(p), "%s/event-channel", H.fe);
                snprintf(v, sizeof(v), "%u", r->port);
                ok = ok && xs_write(H.gxs, t, p, v, strlen(v));
                snprintf(p, sizeof(p), "%s/feature-protocol-v2", H.fe);
                ok = ok && xs_write(H.gxs, t, p, "1", 1);
                snprintf(p, sizeof(p), "%s/state", H.fe);
                snprintf(v, sizeof(v), "%d", state);
                ok = ok && xs_write(H.gxs, t, p, v, strlen(v));
                CHECK(ok, "publishing the ring: %m");
                if (xs_transaction_end(H.gxs, t, false))
                        return;
                CHECK(errno == EAGAIN && attempt < 100, "committing the ring: %m");
        }
}

static void drain_events(void) {
        struct pollfd p = { .fd = evtchn_fd(H.evtchn), .events = POLLIN };
        while (poll(&p, 1, 0) > 0) {
                uint32_t port;
                if (evtchn_pending(H.evtchn, &port) < 0)
                        return;
                (void) evtchn_unmask(H.evtchn, port);
        }
}

static uint8_t page_state(void) {
        return __atomic_load_n(H.ring.page + TPMIF_OFF_STATE, __ATOMIC_ACQUIRE);
}
static uint32_t page_length(void) {
        return __atomic_load_n((uint32_t *) (void *) H.ring.page, __ATOMIC_ACQUIRE);
}
static void page_set_length(uint32_t len) {
        __atomic_store_n((uint32_t *) (void *) H.ring.page, len, __ATOMIC_RELAXED);
}
static void page_set_state(uint8_t s) {
        __atomic_thread_fence(__ATOMIC_RELEASE); /* Linux: wmb() before SUBMIT/CANCEL */
        __atomic_store_n(H.ring.page + TPMIF_OFF_STATE, s, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
static void notify(void) {
        CHECK_OK(evtchn_notify(H.evtchn, H.ring.port));
}

/* vtpm_send: command at offset 8, length, barrier, SUBMIT, notify. */
static void submit(const uint8_t *cmd, size_t len) {
        memcpy(H.ring.page + TPMIF_HEADER_SIZE, cmd, len);
        page_set_length((uint32_t) len);
        page_set_state(TPMIF_STATE_SUBMIT);
        notify();
}

/* Polls until IDLE or FINISH; fails the case at the deadline (a hang). */
static uint8_t wait_done(int timeout_ms, const char *what) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        for (;;) {
                uint8_t s = page_state();
                if (s == TPMIF_STATE_IDLE || s == TPMIF_STATE_FINISH)
                        return s;
                CHECK(now_ms() < deadline, "%s: page still in state %u after %d ms (a hang)", what, s, timeout_ms);
                drain_events();
                pause_1ms();
        }
}

/* vtpm_recv + tpm_try_transmit's checks; returns the TPM response code. */
static uint32_t read_response(uint32_t offset, uint8_t *resp, size_t *ret_len, const char *what) {
        uint32_t len = page_length();
        TpmHeader h;
        CHECK(len >= TPM_HEADER_SIZE && len <= VTPM_XEN_PAGE_SIZE - offset, "%s: response length %u out of range",
              what, len);
        memcpy(resp, H.ring.page + offset, len);
        CHECK(tpm_header_parse(resp, len, &h) == 0, "%s: unparsable response", what);
        CHECK(h.size == len, "%s: response size field %u != length %u (Linux: -EFAULT)", what, h.size, len);
        *ret_len = len;
        return h.code;
}

static uint32_t transact(const uint8_t *cmd, size_t len, uint8_t *resp, size_t *ret_len, const char *what) {
        submit(cmd, len);
        CHECK(wait_done(COMMAND_TIMEOUT_MS, what) == TPMIF_STATE_FINISH, "%s: ended in IDLE, not FINISH", what);
        return read_response(TPMIF_HEADER_SIZE, resp, ret_len, what);
}

static void expect_get_random(uint16_t bytes, const char *what) {
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        CHECK(tpm2_build_get_random(bytes, cmd, sizeof(cmd)) > 0, "build");
        uint32_t rc = transact(cmd, sizeof(cmd), resp, &n, what);
        CHECK(rc == 0, "%s: GetRandom answered 0x%x", what, rc);
        CHECK(n == TPM_HEADER_SIZE + 2u + bytes && tpm_be16(resp + TPM_HEADER_SIZE) == bytes,
              "%s: GetRandom gave a %zu-byte response", what, n);
}

static void flush_handle(uint32_t handle) {
        uint8_t cmd[14], resp[TPM_MAX_PACKET];
        size_t n;
        tpm_put_be16(cmd, TPM2_ST_NO_SESSIONS);
        tpm_put_be32(cmd + 2, sizeof(cmd));
        tpm_put_be32(cmd + 6, 0x165); /* TPM2_CC_FlushContext */
        tpm_put_be32(cmd + 10, handle);
        CHECK(transact(cmd, sizeof(cmd), resp, &n, "FlushContext") == 0, "FlushContext(0x%x) failed", handle);
}

/* A successful CreatePrimary response: tag ST_SESSIONS, a transient handle,
 * and a public area far larger than any error. */
static bool is_create_primary_response(const uint8_t *resp, size_t n) {
        return n > 300 && tpm_be16(resp) == TPM2_ST_SESSIONS && tpm_be32(resp + 6) == 0 &&
               (tpm_be32(resp + TPM_HEADER_SIZE) >> 24) == 0x80;
}

/* Submits a long command and waits until the worker is executing it (true) or
 * has answered it already (false). */
static bool submit_until_taken(pid_t worker, const uint8_t *cmd, size_t len) {
        uint64_t deadline = now_ms() + COMMAND_TIMEOUT_MS;
        ThreadTimes before;

        /* A worker restarted a moment ago may not have its TPM thread yet. */
        for (thread_times(worker, &before); !(before.n > 0 && before.ns[0] > 0); thread_times(worker, &before)) {
                CHECK(now_ms() < deadline, "no CPU times of worker %d's threads in /proc/%d/task/*/schedstat",
                      (int) worker, (int) worker);
                pause_1ms();
        }
        submit(cmd, len);
        while (page_state() == TPMIF_STATE_SUBMIT) {
                if (thread_ran_since(worker, &before))
                        return true;
                CHECK(now_ms() < deadline, "the worker never started the command");
                pause_1ms();
        }
        return false;
}

/* A retried attempt's CreatePrimary answered: its object must not fill the TPM's few transient slots. */
static void flush_if_created(const char *what) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;

        if (page_state() == TPMIF_STATE_FINISH && read_response(TPMIF_HEADER_SIZE, resp, &n, what) == 0 &&
            is_create_primary_response(resp, n))
                flush_handle(tpm_be32(resp + TPM_HEADER_SIZE));
}

/* ---- the domain ---- */

static uint32_t other_domid(void) {
        unsigned n = 0;
        _cleanup_free_ char **doms = xs_directory(H.ts->xs, XBT_NULL, "/local/domain/0/backend/vtpm", &n);
        uint32_t best = UINT32_MAX;
        for (unsigned i = 0; doms && i < n; i++) {
                uint32_t d;
                if (parse_u32(doms[i], &d) >= 0 && d != H.domid && d < best)
                        best = d;
        }
        CHECK(best != UINT32_MAX, "no other guest with a vTPM is running");
        return best;
}

/* xl create + the frontend's probe: domain, device, ring, handshake to Connected. */
static void connect_device(void) {
        _cleanup_free_ char *xs_sock = NULL, *gsock = NULL, *spec = NULL;
        char name[32], dom_uuid[37];

        CHECK(asprintf(&xs_sock, "%s/xenstore/socket", H.dir) >= 0, "oom");
        CHECK(asprintf(&gsock, "%s/xenstore/domain-%u.sock", H.dir, H.domid) >= 0, "oom");
        CHECK(asprintf(&spec, "sim:%s", H.dir) >= 0, "oom");

        snprintf(name, sizeof(name), "hostile-%u", H.domid);
        random_uuid(dom_uuid);
        random_uuid(H.uuid);
        H.domain_created = true;
        CHECK_OK(toolstack_domain_create(H.ts, H.domid, name, dom_uuid));

        CHECK_OK(platform_parse(spec, H.domid, &H.platform));
        CHECK_OK(gntshr_open(H.platform, &H.gntshr));
        CHECK_OK(evtchn_open(H.platform, &H.evtchn));
        /* The guest's own xenstore connection: only what a domain may do. */
        CHECK(setenv("XENSTORED_PATH", gsock, 1) == 0, "setenv");
        H.gxs = xs_open(0);
        CHECK(H.gxs, "connecting to xenstore as domain %u at %s: %m", H.domid, gsock);

        /* vtpmd serves only vTPMs the admin created (auto-create is off). */
        {
                const char *ctl = getenv("VTPMD_CTL");
                _cleanup_free_ char *cmd = NULL;
                CHECK(ctl && *ctl, "VTPMD_CTL is not set (the path of vtpmd-ctl)");
                CHECK(asprintf(&cmd, "'%s' --control '%s/control' create --uuid %s >/dev/null", ctl, H.dir, H.uuid) >= 0,
                      "oom");
                CHECK(system(cmd) == 0, "vtpmd-ctl create --uuid %s failed", H.uuid);
        }
        CHECK_OK(toolstack_vtpm_add(H.ts, H.domid, H.uuid, &H.devid));
        snprintf(H.fe, sizeof(H.fe), "/local/domain/%u/device/vtpm/%u", H.domid, H.devid);
        snprintf(H.be, sizeof(H.be), "/local/domain/0/backend/vtpm/%u/%u", H.domid, H.devid);

        ring_alloc(&H.ring);
        publish_ring(&H.ring, 3);
        CHECK(wait_be_state(4, CONNECT_TIMEOUT_MS), "backend never reached Connected (state %d)", be_state());
        fe_set_state(4);
        expect_get_random(16, "first command");
        printf("  hostile domain %u: vTPM %s devid %u, ring-ref %u, event channel %u, Connected\n", H.domid, H.uuid,
               H.devid, H.ring.ref, H.ring.port);
}

static void teardown(void) {
        print_log();
        fflush(stdout);
        if (H.gxs)
                xs_close(H.gxs);
        H.gxs = NULL;
        if (H.ts && H.domain_created) {
                int r = toolstack_domain_destroy(H.ts, H.domid);
                if (r < 0)
                        printf("  (destroying domain %u: %s)\n", H.domid, strerror(-r));
        }
        H.evtchn = evtchn_close(H.evtchn);
        H.gntshr = gntshr_close(H.gntshr);
        H.platform = platform_free(H.platform);
        H.ts = toolstack_free(H.ts);
        fflush(stdout);
}

/* ---- cases ---- */

static void check_no_crash(pid_t worker, unsigned crashes0, const char *what) {
        CHECK(crash_lines() == crashes0, "%s: vtpmd logged a worker crash for domain %u", what, H.domid);
        CHECK(our_worker() == worker, "%s: the worker changed (was pid %d, now %d)", what, (int) worker,
              (int) our_worker());
}

static void case_malformed_headers(void) {
        static const struct {
                const char *what;
                uint8_t state;
                uint32_t length;
                uint8_t nr_extra;
        } cases[] = {
                { "state 4", 4, 12, 0 },
                { "state 7", 7, 12, 0 },
                { "state 255", 255, 12, 0 },
                { "length 0", TPMIF_STATE_SUBMIT, 0, 0 },
                { "length 9", TPMIF_STATE_SUBMIT, 9, 0 },
                { "length 4089", TPMIF_STATE_SUBMIT, 4089, 0 },
                { "length 0xFFFFFFFF", TPMIF_STATE_SUBMIT, 0xFFFFFFFFu, 0 },
                { "length 0xFFFFFFF8", TPMIF_STATE_SUBMIT, 0xFFFFFFF8u, 0 },
                { "nr_extra_pages 1", TPMIF_STATE_SUBMIT, 12, 1 },
                { "nr_extra_pages 255", TPMIF_STATE_SUBMIT, 12, 255 },
        };
        pid_t worker = our_worker();
        unsigned crashes0 = crash_lines();

        CHECK(worker > 0, "no worker found for domain %u", H.domid);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t resp[TPM_MAX_PACKET];
                size_t n = 0;
                uint32_t offset = TPMIF_HEADER_SIZE + 4u * cases[i].nr_extra;
                uint64_t t0 = now_us();

                /* A valid GetRandom behind the bad header: only the header lies. */
                memset(H.ring.page + TPMIF_HEADER_SIZE, 0, 4u * cases[i].nr_extra);
                CHECK(tpm2_build_get_random(8, H.ring.page + offset, TPM_HEADER_SIZE + 2) > 0, "build");
                H.ring.page[TPMIF_OFF_NR_EXTRA] = cases[i].nr_extra;
                page_set_length(cases[i].length);
                page_set_state(cases[i].state);
                notify();

                uint64_t deadline = now_ms() + REJECT_TIMEOUT_MS;
                while (page_state() != TPMIF_STATE_FINISH) {
                        CHECK(now_ms() < deadline, "%s: page left in state %u after %d ms", cases[i].what,
                              page_state(), REJECT_TIMEOUT_MS);
                        drain_events();
                        pause_1ms();
                }
                uint64_t us = now_us() - t0;
                uint32_t rc = read_response(offset, resp, &n, cases[i].what);
                CHECK(n == TPM_HEADER_SIZE, "%s: %zu-byte response, expected 10", cases[i].what, n);
                CHECK(tpm_be16(resp) == TPM2_ST_NO_SESSIONS, "%s: tag 0x%x", cases[i].what, tpm_be16(resp));
                CHECK(rc != 0, "%s: answered success", cases[i].what);
                check_no_crash(worker, crashes0, cases[i].what);
                printf("  %-20s -> FINISH in %" PRIu64 " us, length 10, TPM rc 0x%03x; worker %d alive\n",
                       cases[i].what, us, rc, (int) worker);
        }
        H.ring.page[TPMIF_OFF_NR_EXTRA] = 0;
        expect_get_random(8, "GetRandom after the malformed headers");
        check_no_crash(worker, crashes0, "after all headers");
        printf("  after %zu malformed headers: GetRandom works, same worker, no crash logged\n", ELEMENTSOF(cases));
}

static void case_cancel_idle(void) {
        pid_t worker = our_worker();
        uint64_t t0 = now_us();
        page_set_state(TPMIF_STATE_CANCEL);
        notify();
        CHECK(wait_done(REJECT_TIMEOUT_MS, "CANCEL while idle") == TPMIF_STATE_IDLE,
              "CANCEL while idle ended in FINISH, not IDLE");
        printf("  CANCEL while idle -> IDLE in %" PRIu64 " us\n", now_us() - t0);
        expect_get_random(8, "GetRandom after the cancel");
        CHECK(our_worker() == worker, "the worker changed");
        printf("  GetRandom after the cancel works\n");
}

static void case_page_change(void) {
        pid_t worker = our_worker();
        uint32_t base;
        int attempt;

        CHECK(worker > 0, "no worker found");
        CHECK(getrandom_u32(&base) == 0, "random");
        for (attempt = 1; attempt <= 10; attempt++) {
                uint8_t cmd[TPM_MAX_PACKET], resp[TPM_MAX_PACKET];
                size_t len = tpmcmd_create_primary(cmd, base + (uint32_t) attempt), n = 0;

                /* Wait until the TPM thread works on it: the worker has its copy. */
                if (!submit_until_taken(worker, cmd, len)) {
                        printf("  attempt %d: finished before the page could be changed, again\n", attempt);
                        flush_if_created("the answered attempt");
                        continue;
                }
                /* The hostile part: a length that wraps any addition, and the command
                 * bytes replaced, while the command runs; then tell the backend. */
                page_set_length(0xFFFFFFFFu);
                memset(H.ring.page + TPMIF_HEADER_SIZE, 0xA5, len);
                notify();
                CHECK(wait_done(COMMAND_TIMEOUT_MS, "changed page") == TPMIF_STATE_FINISH, "ended in IDLE");
                uint32_t plen = page_length();
                if (plen == 0xFFFFFFFFu || tpm_be32(H.ring.page + TPMIF_HEADER_SIZE + 2) == 0xA5A5A5A5u) {
                        /* The response was posted between our check and our writes. */
                        printf("  attempt %d: response posted before the change landed, again\n", attempt);
                        continue;
                }
                uint32_t rc = read_response(TPMIF_HEADER_SIZE, resp, &n, "changed page");
                CHECK(rc == 0, "the response is TPM rc 0x%x, not the original CreatePrimary's", rc);
                CHECK(is_create_primary_response(resp, n), "a %zu-byte response that is not a CreatePrimary's", n);
                printf("  attempt %d: length flipped to 0xFFFFFFFF and command bytes overwritten mid-command\n",
                       attempt);
                printf("  -> FINISH with the original command's response: rc 0, %zu bytes, handle 0x%08x\n", n,
                       tpm_be32(resp + TPM_HEADER_SIZE));
                flush_handle(tpm_be32(resp + TPM_HEADER_SIZE));
                break;
        }
        CHECK(attempt <= 10, "never managed to change the page while the command ran");
        CHECK(our_worker() == worker, "the worker changed");
        expect_get_random(8, "GetRandom after the change");
        printf("  GetRandom afterwards works, same worker\n");
}

static void case_flood(void) {
        pid_t worker = our_worker();
        unsigned crashes0 = crash_lines();
        uint64_t t0 = now_us();
        unsigned dropped = 0;

        for (int i = 0; i < 100000; i++)
                if (evtchn_notify(H.evtchn, H.ring.port) < 0)
                        dropped++;
        uint64_t t1 = now_us();
        expect_get_random(8, "GetRandom after the flood");
        uint64_t t2 = now_us();
        printf("  100000 notifications in %" PRIu64 " ms (%u failed locally); GetRandom answered %" PRIu64
               " ms later\n",
               (t1 - t0) / 1000, dropped, (t2 - t1) / 1000);
        check_no_crash(worker, crashes0, "flood");
        printf("  worker %d alive, no crash logged\n", (int) worker);
}

static void case_never_read(void) {
        pid_t worker = our_worker();
        unsigned crashes0 = crash_lines();
        uint8_t cmd[TPM_HEADER_SIZE + 2];
        unsigned answered = 0;

        CHECK(tpm2_build_get_random(32, cmd, sizeof(cmd)) > 0, "build");
        /* Warm-up, so first-use allocations are not counted as growth. */
        for (int i = 0; i < 200; i++) {
                submit(cmd, sizeof(cmd));
                (void) wait_done(COMMAND_TIMEOUT_MS, "warm-up");
        }
        long rss0 = proc_status_kb(worker, "VmRSS");

        /* Blind: SUBMIT over SUBMIT over FINISH, never waiting, never reading. */
        for (int i = 0; i < 2000; i++)
                submit(cmd, sizeof(cmd));
        CHECK(wait_done(COMMAND_TIMEOUT_MS, "after 2000 blind submits") == TPMIF_STATE_FINISH, "IDLE");
        /* Each SUBMIT over an unread FINISH is answered: watch only the state byte. */
        for (int i = 0; i < 2000; i++) {
                submit(cmd, sizeof(cmd));
                if (wait_done(COMMAND_TIMEOUT_MS, "SUBMIT over FINISH") == TPMIF_STATE_FINISH)
                        answered++;
        }
        long rss1 = proc_status_kb(worker, "VmRSS");
        printf("  2000 blind submits, then 2000 submits over unread FINISH: %u answered\n", answered);
        printf("  worker %d RSS %ld KiB before, %ld KiB after (%+ld KiB)\n", (int) worker, rss0, rss1, rss1 - rss0);
        CHECK(answered == 2000, "only %u of 2000 submits over FINISH were answered", answered);
        CHECK(rss0 > 0 && rss1 > 0 && rss1 - rss0 <= 512, "worker RSS grew by %ld KiB", rss1 - rss0);
        check_no_crash(worker, crashes0, "never-read");
        uint8_t resp[TPM_MAX_PACKET];
        size_t n;
        CHECK(read_response(TPMIF_HEADER_SIZE, resp, &n, "last response") == 0, "the last response is an error");
        expect_get_random(8, "GetRandom afterwards");
        printf("  the last response is well-formed and GetRandom works afterwards\n");
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static void case_cpu_hog(unsigned seconds) {
        pid_t worker = our_worker();
        uint64_t end = now_ms() + seconds * 1000ull, lat[4096];
        size_t n_lat = 0;
        uint32_t base;

        CHECK(getrandom_u32(&base) == 0, "random");
        while (now_ms() < end && n_lat < ELEMENTSOF(lat)) {
                uint8_t cmd[TPM_MAX_PACKET], resp[TPM_MAX_PACKET];
                size_t len = tpmcmd_create_primary(cmd, base + (uint32_t) n_lat), n = 0;
                uint64_t t0 = now_us();
                uint32_t rc = transact(cmd, len, resp, &n, "CreatePrimary");
                lat[n_lat++] = now_us() - t0;
                CHECK(rc == 0 && is_create_primary_response(resp, n), "CreatePrimary answered 0x%x", rc);
                flush_handle(tpm_be32(resp + TPM_HEADER_SIZE));
        }
        qsort(lat, n_lat, sizeof(lat[0]), cmp_u64);
        printf("  %zu RSA-2048 CreatePrimary in %u s: latency p50 %" PRIu64 " ms, max %" PRIu64 " ms\n", n_lat,
               seconds, lat[n_lat / 2] / 1000, lat[n_lat - 1] / 1000);
        CHECK(n_lat > 0, "no command completed");
        CHECK(our_worker() == worker, "the worker changed");
}

static void case_rewrite_frontend(void) {
        uint32_t other = other_domid();
        char p[160], v[160], gpath[PATH_MAX];
        _cleanup_free_ char *oref = NULL, *oport = NULL;

        snprintf(p, sizeof(p), "/local/domain/%u/device/vtpm/0/ring-ref", other);
        oref = xs_get(H.ts->xs, p);
        snprintf(p, sizeof(p), "/local/domain/%u/device/vtpm/0/event-channel", other);
        oport = xs_get(H.ts->xs, p);
        CHECK(oref && oport, "cannot read domain %u's ring-ref/event-channel through dom0", other);
        uint32_t oref_n;
        CHECK(parse_u32(oref, &oref_n) == 0, "ring-ref %s", oref);
        printf("  domain %u (a normal guest) has ring-ref %s, event-channel %s\n", other, oref, oport);

        /* Make the other domain's ref number a hole in our own grant table, so
         * the only page it could name is the other domain's. */
        if (H.ring.ref == oref_n) {
                Ring r2;
                ring_alloc(&r2);
                ring_free(&H.ring);
                H.ring = r2;
                publish_ring(&H.ring, 4);
                expect_get_random(8, "GetRandom on the moved ring");
                printf("  moved our own ring to ref %u so that ref %u is not ours\n", H.ring.ref, oref_n);
        }
        pid_t other_worker = 0;
        {
                /* The other guest's worker, to prove it is left alone. */
                uint32_t save_dom = H.domid, save_dev = H.devid;
                H.domid = other;
                H.devid = 0;
                long save_off = H.log_offset;
                H.log_offset = 0;
                other_worker = our_worker();
                H.domid = save_dom;
                H.devid = save_dev;
                H.log_offset = save_off;
        }
        CHECK(other_worker > 0, "no worker found for domain %u", other);
        snprintf(gpath, sizeof(gpath), "%s/hv/gnt-%u/%u", H.dir, other, oref_n);

        /* The hostile part, from the guest's own connection, while Connected. */
        fe_write("backend-id", "5");
        snprintf(v, sizeof(v), "/local/domain/0/backend/vtpm/%u/0", other);
        fe_write("backend", v);
        fe_write("ring-ref", oref);
        fe_write("event-channel", oport);
        printf("  wrote backend-id=5 backend=%s ring-ref=%s event-channel=%s into our frontend dir\n", v, oref, oport);

        /* vtpmd reacts (a resume); wait for its verdict: the device fails or serves our own space. */
        uint64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
        while (log_count("Worker failed") == 0 && be_state() != 6) {
                CHECK(now_ms() < deadline, "vtpmd did not react to the rewritten frontend dir (backend %d)",
                      be_state());
                pause_1ms();
        }
        /* Which processes map the other domain's page (the sim keeps it in a file)? */
        unsigned mappers = 0;
        bool other_ok = false;
        {
                _cleanup_(closedirp) DIR *d = opendir("/proc");
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        uint32_t pid;
                        char mp[64], line[PATH_MAX + 256];
                        if (parse_u32(de->d_name, &pid) < 0 || proc_ppid((pid_t) pid) != H.vtpmd)
                                continue;
                        snprintf(mp, sizeof(mp), "/proc/%u/maps", pid);
                        _cleanup_fclose_ FILE *f = fopen(mp, "re");
                        while (f && fgets(line, sizeof(line), f)) {
                                char *nl = strchr(line, '\n');
                                if (nl)
                                        *nl = 0;
                                size_t gl = strlen(gpath), ll = strlen(line);
                                if (ll >= gl && streq(line + ll - gl, gpath)) {
                                        if ((pid_t) pid == other_worker)
                                                other_ok = true;
                                        else
                                                mappers++;
                                        break;
                                }
                        }
                }
        }
        int st = be_state();
        snprintf(p, sizeof(p), "/local/domain/0/error/backend/vtpm/%u/%u/error", H.domid, H.devid);
        _cleanup_free_ char *err = xs_get(H.ts->xs, p);
        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/state", other);
        int ost = xs_get_int(H.ts->xs, p);
        printf("  hostile device: backend state %d, error node \"%s\"\n", st, strempty(err));
        printf("  domain %u's page %s is mapped by its own worker (%s) and by %u other worker(s)\n", other, gpath,
               other_ok ? "yes" : "no", mappers);
        printf("  domain %u's backend state %d, its worker pid %d %s\n", other, ost, (int) other_worker,
               proc_ppid(other_worker) == H.vtpmd ? "still running" : "GONE");
        CHECK(mappers == 0, "a worker other than domain %u's own maps its page", other);
        CHECK(proc_ppid(other_worker) == H.vtpmd, "domain %u's worker was disturbed", other);
        CHECK(ost == 4, "domain %u's backend left Connected", other);
        CHECK(log_count("Worker failed") > 0 || our_worker() > 0, "vtpmd logged nothing about the rewrite");
        /* A worker that could not start is a refusal, not a crash to retry. */
        CHECK(crash_lines() == 0, "the failed start was logged as a worker crash");
}

static void case_backend_write(void) {
        uint32_t other = other_domid();
        static const char *const keys[] = { "state", "uuid", "frontend", "frontend-id", "online" };
        char p[160];
        unsigned refused = 0, total = 0;

        for (int which = 0; which < 2; which++) {
                const char *dir = H.be;
                char odir[128];
                if (which == 1) {
                        snprintf(odir, sizeof(odir), "/local/domain/0/backend/vtpm/%u/0", other);
                        dir = odir;
                }
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        _cleanup_free_ char *before = NULL, *after = NULL;
                        snprintf(p, sizeof(p), "%s/%s", dir, keys[i]);
                        before = xs_get(H.ts->xs, p);
                        errno = 0;
                        bool ok = xs_put(H.gxs, p, streq(keys[i], "state") ? "6" : "/local/domain/1/device/vtpm/0");
                        int e = errno;
                        after = xs_get(H.ts->xs, p);
                        total++;
                        printf("  write %s from domain %u: %s%s\n", p, H.domid, ok ? "ACCEPTED" : strerror(e),
                               streq_ptr(before, after) ? "" : " (value CHANGED)");
                        if (!ok && e == EACCES && streq_ptr(before, after))
                                refused++;
                }
                snprintf(p, sizeof(p), "%s", dir);
                errno = 0;
                bool ok = xs_rm(H.gxs, XBT_NULL, p);
                int e = errno;
                total++;
                printf("  rm %s from domain %u: %s\n", p, H.domid, ok ? "ACCEPTED" : strerror(e));
                if (!ok && e == EACCES)
                        refused++;
        }
        CHECK(refused == total, "%u of %u writes to backend dirs were not refused with EACCES", total - refused,
              total);
        CHECK(be_state() == 4, "our backend left Connected");
        expect_get_random(8, "GetRandom afterwards");
        printf("  all %u refused with EACCES; our device still Connected and answering\n", total);
}

static void case_uuid_steal(void) {
        uint32_t other = other_domid(), devid = UINT32_MAX;
        char p[160];
        _cleanup_free_ char *ouuid = NULL, *err = NULL;

        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/uuid", other);
        ouuid = xs_get(H.ts->xs, p);
        CHECK(ouuid, "cannot read domain %u's vTPM uuid", other);
        /* A second device on the hostile domain, naming the other guest's vTPM.
         * libxl waits for InitWait; the backend refuses instead. */
        H.ts->init_timeout_ms = 3000;
        int r = toolstack_vtpm_add(H.ts, H.domid, ouuid, &devid);
        printf("  vtpm-attach uuid=%s (domain %u's) to domain %u: %s, devid %d\n", ouuid, other, H.domid,
               r < 0 ? strerror(-r) : "accepted", (int) devid);
        CHECK(devid != UINT32_MAX, "no device was created");
        snprintf(p, sizeof(p), "/local/domain/0/error/backend/vtpm/%u/%u/error", H.domid, devid);
        uint64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
        while (!(err = xs_get(H.ts->xs, p))) {
                CHECK(now_ms() < deadline, "no xenbus error node at %s", p);
                pause_1ms();
        }
        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/%u/state", H.domid, devid);
        int st = xs_get_int(H.ts->xs, p);
        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/state", other);
        int ost = xs_get_int(H.ts->xs, p);
        printf("  error node: \"%s\"; second device backend state %d; domain %u backend state %d\n", err, st, other,
               ost);
        CHECK(r < 0, "the toolstack saw the second attach succeed");
        CHECK(strstr(err, "already attached"), "the error node does not say why");
        CHECK(st != 2 && st != 4, "the second device is in state %d", st);
        CHECK(ost == 4, "domain %u's backend left Connected", other);
        CHECK(log_count("already attached") > 0, "vtpmd did not log the refusal");
        (void) toolstack_vtpm_remove(H.ts, H.domid, devid, true);
        expect_get_random(8, "our own vTPM afterwards");
}

static void case_reopen_loop(unsigned cycles) {
        unsigned max_workers = 0, base_workers = count_workers();
        unsigned sup0 = log_count_prefix("vtpmd: "), wrk0 = log_count_prefix("vtpmd-worker[");
        uint64_t t0 = now_ms();

        for (unsigned i = 0; i < cycles; i++) {
                Ring next;
                /* Module unload + load: Closed, a new ring (a new grant and port,
                 * allocated before the old ones are freed so the numbers move),
                 * Initialised; never waiting for the backend. */
                fe_set_state(6);
                ring_alloc(&next);
                ring_free(&H.ring);
                H.ring = next;
                publish_ring(&H.ring, 3);
                unsigned w = count_workers();
                if (w > max_workers)
                        max_workers = w;
        }
        uint64_t t1 = now_ms();
        /* The last ring must be served: Linux sends its first command at once. */
        CHECK(wait_be_state(4, CONNECT_TIMEOUT_MS), "backend never reached Connected after the loop (state %d)",
              be_state());
        fe_set_state(4);
        expect_get_random(8, "GetRandom on the final ring");
        uint64_t t2 = now_ms();
        uint64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
        while (count_workers() > base_workers) {
                CHECK(now_ms() < deadline, "%u workers still running (%u before)", count_workers(), base_workers);
                pause_1ms();
        }
        unsigned sup = log_count_prefix("vtpmd: ") - sup0, wrk = log_count_prefix("vtpmd-worker[") - wrk0;
        printf("  %u close/reopen cycles in %" PRIu64 " ms; final ring answered %" PRIu64 " ms later\n", cycles,
               t1 - t0, t2 - t1);
        printf("  vtpmd-worker processes: %u before, at most %u during, %u after; %u workers started\n",
               base_workers, max_workers, count_workers(), log_count(": starting: "));
        printf("  vtpmd.log lines about domain %u during the loop: %u from vtpmd (%u suppression notes), "
               "%u from its workers\n",
               H.domid, sup, log_count("suppressed"), wrk);
        CHECK(max_workers <= base_workers + 8, "up to %u workers for one device", max_workers);
        /* vtpmd rate-limits what a guest can trigger: a burst, then a note. */
        CHECK(sup <= 40, "vtpmd wrote %u lines for %u guest-triggered cycles: not rate-limited", sup, cycles);
}

static void case_worker_crash(void) {
        pid_t worker = our_worker();
        unsigned crashes0 = crash_lines();
        uint8_t cmd[TPM_MAX_PACKET], resp[TPM_MAX_PACKET];
        uint32_t base;
        size_t n = 0;

        CHECK(worker > 0, "no worker found");
        CHECK(getrandom_u32(&base) == 0, "random");
        size_t len = tpmcmd_create_primary(cmd, base);
        bool in_flight = submit_until_taken(worker, cmd, len);
        CHECK(kill(worker, SIGKILL) == 0, "kill: %m");
        printf("  SIGKILL to worker %d with a CreatePrimary %s\n", (int) worker,
               in_flight ? "in flight" : "just finished");
        pid_t w2 = wait_worker(worker, COMMAND_TIMEOUT_MS);
        CHECK(w2 > 0, "no new worker for domain %u", H.domid);
        CHECK(wait_done(COMMAND_TIMEOUT_MS, "the command in flight") == TPMIF_STATE_FINISH, "ended in IDLE");
        uint32_t rc = read_response(TPMIF_HEADER_SIZE, resp, &n, "the command in flight");
        printf("  new worker %d; the command in flight was answered: rc 0x%x, %zu bytes\n", (int) w2, rc, n);
        if (rc == 0 && is_create_primary_response(resp, n))
                flush_handle(tpm_be32(resp + TPM_HEADER_SIZE));
        expect_get_random(8, "the next command");
        printf("  the next command (GetRandom) works; backend state %d\n", be_state());
        CHECK(be_state() == 4, "the backend left Connected");
        CHECK(crash_lines() > crashes0, "vtpmd did not log the crash");
        CHECK(log_count("killed by signal Killed") > 0, "the log does not give the cause (SIGKILL)");
}

/* ---- main ---- */

static _noreturn_ void usage(int code) {
        fprintf(code ? stderr : stdout,
                "usage: hostile-guest --dir DIR --case NAME [--domid N] [--seconds S]\n"
                "cases: malformed-headers cancel-idle page-change flood never-read cpu-hog\n"
                "       rewrite-frontend backend-write uuid-steal reopen-loop worker-crash\n");
        exit(code);
}

/* A number from 1 to max, or the usage message. */
static uint32_t positive_arg(const char *arg, uint32_t max) {
        uint32_t v;

        if (parse_u32_max(arg, max, &v) < 0 || v == 0)
                usage(2);
        return v;
}

int main(int argc, char **argv) {
        static const char *const cases[] = {
                "malformed-headers", "cancel-idle", "page-change",   "flood",       "never-read",   "cpu-hog",
                "rewrite-frontend",  "backend-write", "uuid-steal", "reopen-loop", "worker-crash",
        };
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' },
                { "case", required_argument, NULL, 'c' },
                { "domid", required_argument, NULL, 'D' },
                { "seconds", required_argument, NULL, 's' },
                { "cycles", required_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *dir = NULL, *name = NULL;
        uint32_t domid = 0, seconds = 10, cycles = 200;
        size_t idx = ELEMENTSOF(cases);
        double scale = 1.0;
        int c;

        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0)
                switch (c) {
                case 'd':
                        dir = optarg;
                        break;
                case 'c':
                        name = optarg;
                        break;
                case 'D':
                        domid = positive_arg(optarg, 0x7FEF);
                        break;
                case 's':
                        seconds = positive_arg(optarg, 3600);
                        break;
                case 'n':
                        cycles = positive_arg(optarg, 100000);
                        break;
                case 'h':
                        usage(0);
                default:
                        usage(2);
                }
        if (!dir || !name || optind < argc)
                usage(2);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (streq(name, cases[i]))
                        idx = i;
        if (idx == ELEMENTSOF(cases)) {
                fprintf(stderr, "hostile-guest: unknown case %s\n", name);
                usage(2);
        }
        H.domid = domid ?: DEFAULT_DOMID_BASE + (uint32_t) idx;
        H.dir = realpath(dir, NULL);
        CHECK(H.dir, "--dir %s: %m", dir);

        {
                _cleanup_free_ char *pidfile = NULL, *lp = log_path(), *xs_sock = NULL;
                _cleanup_fclose_ FILE *f = NULL;
                int pid = 0;
                CHECK(asprintf(&pidfile, "%s/vtpmd.pid", H.dir) >= 0, "oom");
                f = fopen(pidfile, "re");
                CHECK(f && fscanf(f, "%d", &pid) == 1 && pid > 0, "no vtpmd.pid in %s: is the simulation running?",
                      H.dir);
                H.vtpmd = pid;
                H.log_offset = file_size(lp);
                CHECK(toolstack_timeout_scale_from_env(&scale) == 0, "bad VTPM_SIM_TIMEOUT_SCALE");
                CHECK(asprintf(&xs_sock, "%s/xenstore/socket", H.dir) >= 0, "oom");
                CHECK_OK(toolstack_open(xs_sock, H.dir, scale, &H.ts));
        }
        atexit(teardown);

        printf("case %s: hostile domain %u against vtpmd pid %d\n", name, H.domid, (int) H.vtpmd);
        connect_device();

        switch (idx) {
        case 0:
                case_malformed_headers();
                break;
        case 1:
                case_cancel_idle();
                break;
        case 2:
                case_page_change();
                break;
        case 3:
                case_flood();
                break;
        case 4:
                case_never_read();
                break;
        case 5:
                case_cpu_hog(seconds);
                break;
        case 6:
                case_rewrite_frontend();
                break;
        case 7:
                case_backend_write();
                break;
        case 8:
                case_uuid_steal();
                break;
        case 9:
                case_reopen_loop(cycles);
                break;
        case 10:
                case_worker_crash();
                break;
        }
        CHECK(proc_ppid(H.vtpmd) >= 0, "vtpmd (pid %d) is gone", (int) H.vtpmd);
        print_log();
        printf("ok   %s\n", name);
        return 0;
}
