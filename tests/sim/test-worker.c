/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-worker on the simulated hypervisor. This program is both the
 * supervisor (socketpair on the worker's fd 3, IPC messages) and the guest
 * (granting the page and driving it like Linux xen-tpmfront: fill, length,
 * barrier, SUBMIT, notify, then poll the state every millisecond).
 *
 *   test-worker PATH-TO-vtpmd-worker
 */
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "evtchn.h"
#include "gnttab.h"
#include "ipc.h"
#include "platform.h"
#include "tpmif.h"
#include "util.h"

#define GUEST_DOMID 7u
#define READY_TIMEOUT_MS 20000
#define COMMAND_TIMEOUT_MS 60000
#define TEST_UUID "0f4c2b57-6a1e-4c8e-9d3b-2a7f5e8c1d90"

static const char *worker_path;
static char sim_dir[] = "/tmp/vtpmd-test-worker-XXXXXX";
static bool sim_dir_made;
static pid_t children[8];
static size_t n_children;

typedef struct Guest {
        Platform *platform;
        Gntshr *gntshr;
        Evtchn *evtchn;
        uint8_t *page;
        uint32_t ref, port;
} Guest;

typedef struct Child {
        pid_t pid;
        int fd; /* supervisor end of the socketpair */
} Child;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void cleanup(void) {
        for (size_t i = 0; i < n_children; i++)
                if (children[i] > 0) {
                        kill(children[i], SIGKILL);
                        (void) waitpid(children[i], NULL, 0);
                }
        if (sim_dir_made)
                (void) nftw(sim_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

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

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static void pause_1ms(void) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
}

/* ---- supervisor side ---- */

static void untrack(pid_t pid) {
        for (size_t i = 0; i < n_children; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static Child spawn_worker(void) {
        int sv[2];
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %m");
        CHECK(n_children < ELEMENTSOF(children), "too many children");
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: %m");
        if (pid == 0) {
                if (sv[1] == 3)
                        (void) fcntl(3, F_SETFD, 0);
                else if (dup2(sv[1], 3) < 0)
                        _exit(127);
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDIN_FILENO) < 0)
                        _exit(127);
                execl(worker_path, worker_path, (char *) NULL);
                _exit(127);
        }
        children[n_children++] = pid;
        close(sv[1]);
        return (Child){ .pid = pid, .fd = sv[0] };
}

static void send_msg(const Child *c, const IpcMsg *m) {
        uint8_t buf[IPC_MAX_PACKET];
        size_t n = ipc_encode(m, buf);
        CHECK(n > 0, "encode");
        CHECK(send(c->fd, buf, n, MSG_NOSIGNAL) == (ssize_t) n, "send to worker: %m");
}

/* 1 and *m, 0 on EOF; fails the test on timeout. */
static int recv_msg(const Child *c, IpcMsg *m, int timeout_ms) {
        struct pollfd p = { .fd = c->fd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        CHECK(r >= 0, "poll: %m");
        CHECK(r > 0, "no message from the worker within %d ms", timeout_ms);
        uint8_t buf[IPC_MAX_PACKET];
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
                return 0;
        CHECK(n > 0, "recv: %m");
        CHECK(ipc_decode(buf, (size_t) n, m) == 0, "worker sent an invalid message");
        return 1;
}

static void send_start(const Child *c, const Guest *g, uint32_t ring_ref, uint32_t flags) {
        IpcMsg m = { .type = IPC_START };
        m.start.domid = GUEST_DOMID;
        m.start.devid = 0;
        m.start.ring_ref = ring_ref;
        m.start.evtchn_port = g->port;
        m.start.family = TPM_FAMILY_2_0;
        m.start.flags = flags;
        memcpy(m.start.uuid, TEST_UUID, sizeof(TEST_UUID));
        snprintf(m.start.platform, sizeof(m.start.platform), "sim:%s", sim_dir);
        send_msg(c, &m);
}

static uint32_t expect_ready(const Child *c) {
        IpcMsg m;
        CHECK(recv_msg(c, &m, READY_TIMEOUT_MS) == 1, "worker closed the socket instead of READY");
        if (m.type == IPC_FAILED)
                fail("worker FAILED at stage %s: %s", strempty(ipc_stage_to_string(m.failed.stage)),
                     strerror(-m.failed.error));
        CHECK(m.type == IPC_READY, "expected READY, got type %u", m.type);
        return m.ready.local_port;
}

static Child start_worker(const Guest *g) {
        Child c = spawn_worker();
        send_start(&c, g, g->ref, IPC_START_TPM_STARTUP);
        uint32_t port = expect_ready(&c);
        printf("  worker %d ready, local port %u\n", (int) c.pid, port);
        return c;
}

/* Waits for the child to exit; returns its wait status. */
static int wait_exit(Child *c, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        int status = 0;
        for (;;) {
                pid_t r = waitpid(c->pid, &status, WNOHANG);
                CHECK(r >= 0, "waitpid: %m");
                if (r == c->pid)
                        break;
                CHECK(now_ms() < deadline, "worker %d did not exit within %d ms", (int) c->pid, timeout_ms);
                pause_1ms();
        }
        untrack(c->pid);
        c->fd = safe_close(c->fd);
        return status;
}

static IpcStats get_stats(const Child *c) {
        IpcMsg m = { .type = IPC_STATS_REQ };
        send_msg(c, &m);
        CHECK(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 1, "EOF instead of STATS");
        CHECK(m.type == IPC_STATS, "expected STATS, got %u", m.type);
        return m.stats;
}

/* ---- guest side ---- */

static void guest_drain_events(Guest *g) {
        struct pollfd p = { .fd = evtchn_fd(g->evtchn), .events = POLLIN };
        while (poll(&p, 1, 0) > 0) {
                uint32_t port;
                if (evtchn_pending(g->evtchn, &port) < 0)
                        return;
                (void) evtchn_unmask(g->evtchn, port);
        }
}

static uint8_t page_state(const Guest *g) {
        return __atomic_load_n(g->page + TPMIF_OFF_STATE, __ATOMIC_ACQUIRE);
}
static uint32_t page_length(const Guest *g) {
        return __atomic_load_n((uint32_t *) (void *) g->page, __ATOMIC_ACQUIRE);
}
static void page_set_state(Guest *g, uint8_t s) {
        __atomic_thread_fence(__ATOMIC_RELEASE); /* Linux: wmb() before SUBMIT/CANCEL */
        __atomic_store_n(g->page + TPMIF_OFF_STATE, s, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
static void page_set_length(Guest *g, uint32_t len) {
        __atomic_store_n((uint32_t *) (void *) g->page, len, __ATOMIC_RELAXED);
}

static void guest_notify(Guest *g) {
        CHECK_OK(evtchn_notify(g->evtchn, g->port));
}

/* Like vtpm_send: command at offset 8, length, barrier, SUBMIT, notify. */
static void guest_submit(Guest *g, const uint8_t *cmd, size_t len) {
        memcpy(g->page + TPMIF_HEADER_SIZE, cmd, len);
        page_set_length(g, (uint32_t) len);
        page_set_state(g, TPMIF_STATE_SUBMIT);
        guest_notify(g);
}

/* Polls like the Linux TPM core until the state is IDLE or FINISH. */
static uint8_t guest_wait_done(Guest *g, int timeout_ms) {
        uint64_t deadline = now_ms() + (uint64_t) timeout_ms;
        for (;;) {
                uint8_t s = page_state(g);
                if (s == TPMIF_STATE_IDLE || s == TPMIF_STATE_FINISH)
                        return s;
                CHECK(now_ms() < deadline, "page still in state %u after %d ms", s, timeout_ms);
                guest_drain_events(g);
                pause_1ms();
        }
}

/* Reads a FINISHed response like vtpm_recv + tpm_try_transmit; returns the TPM rc. */
static uint32_t guest_response(Guest *g, uint32_t offset, uint8_t *resp, size_t *ret_len) {
        uint32_t len = page_length(g);
        TpmHeader h;
        CHECK(len >= TPM_HEADER_SIZE && len <= VTPM_XEN_PAGE_SIZE - offset, "response length %u out of range", len);
        memcpy(resp, g->page + offset, len);
        CHECK(tpm_header_parse(resp, len, &h) == 0, "unparsable response");
        CHECK(h.size == len, "response size field %u != length %u (Linux: -EFAULT)", h.size, len);
        *ret_len = len;
        return h.code;
}

static uint32_t guest_transact(Guest *g, const uint8_t *cmd, size_t len, uint8_t *resp, size_t *ret_len) {
        guest_submit(g, cmd, len);
        CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "command ended in IDLE, not FINISH");
        return guest_response(g, TPMIF_HEADER_SIZE, resp, ret_len);
}

static void expect_get_random(Guest *g, uint16_t bytes) {
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        int len = tpm2_build_get_random(bytes, cmd, sizeof(cmd));
        CHECK(len > 0, "build");
        uint32_t rc = guest_transact(g, cmd, (size_t) len, resp, &n);
        CHECK(rc == 0, "GetRandom answered 0x%x", rc);
        CHECK(n == TPM_HEADER_SIZE + 2u + bytes, "GetRandom response of %zu bytes", n);
        CHECK(tpm_be16(resp + TPM_HEADER_SIZE) == bytes, "GetRandom gave %u bytes", tpm_be16(resp + TPM_HEADER_SIZE));
}

/* TPM2_CreatePrimary RSA-2048 under the owner hierarchy (15-100 ms of key
 * generation); `unique` makes every key a new one. */
static size_t build_create_primary(uint8_t *b, uint32_t unique) {
        static const uint8_t tmpl[] = {
                0x80, 0x02, 0, 0, 0, 0, 0x00, 0x00, 0x01, 0x31, /* header, size below */
                0x40, 0x00, 0x00, 0x01,                         /* TPM_RH_OWNER */
                0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, /* empty password */
                0x00, 0x04, 0x00, 0x00, 0x00, 0x00,             /* inSensitive */
                0x00, 0x1e,                                     /* inPublic: 30 bytes */
                0x00, 0x01, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x72, /* RSA, sha256, restricted decrypt key */
                0x00, 0x00,                                     /* authPolicy */
                0x00, 0x06, 0x00, 0x80, 0x00, 0x43,             /* AES-128-CFB */
                0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, /* no scheme, 2048 bits, exponent */
                0x00, 0x04, 0, 0, 0, 0,                         /* unique (4 bytes, below) */
                0x00, 0x00,                                     /* outsideInfo */
                0x00, 0x00, 0x00, 0x00,                         /* creationPCR */
        };
        memcpy(b, tmpl, sizeof(tmpl));
        tpm_put_be32(b + 2, sizeof(tmpl));
        tpm_put_be32(b + sizeof(tmpl) - 10, unique);
        return sizeof(tmpl);
}

static void flush_handle(Guest *g, uint32_t handle) {
        uint8_t cmd[14], resp[TPM_MAX_PACKET];
        size_t n;
        tpm_put_be16(cmd, TPM2_ST_NO_SESSIONS);
        tpm_put_be32(cmd + 2, sizeof(cmd));
        tpm_put_be32(cmd + 6, 0x165);
        tpm_put_be32(cmd + 10, handle);
        CHECK(guest_transact(g, cmd, sizeof(cmd), resp, &n) == 0, "FlushContext failed");
}

/* Submits a long command and returns once the worker has taken it (its event
 * counter moved past the notification), so what follows happens mid-command. */
static void submit_long_command(Guest *g, const Child *c, uint32_t unique) {
        uint8_t cmd[TPM_MAX_PACKET];
        uint64_t before = get_stats(c).events;
        size_t len = build_create_primary(cmd, unique);
        guest_submit(g, cmd, len);
        uint64_t deadline = now_ms() + COMMAND_TIMEOUT_MS;
        while (get_stats(c).events <= before) {
                CHECK(now_ms() < deadline, "worker never saw the event");
                pause_1ms();
        }
}

static void guest_setup(Guest *g) {
        char spec[sizeof(sim_dir) + 8];
        snprintf(spec, sizeof(spec), "sim:%s", sim_dir);
        CHECK_OK(platform_parse(spec, GUEST_DOMID, &g->platform));
        CHECK_OK(gntshr_open(g->platform, &g->gntshr));
        void *addr = NULL;
        CHECK_OK(gntshr_share(g->gntshr, 0, true, &g->ref, &addr));
        g->page = addr;
        CHECK_OK(evtchn_open(g->platform, &g->evtchn));
        CHECK_OK(evtchn_bind_unbound(g->evtchn, 0, &g->port));
        printf("  guest %u: ring-ref %u, event channel %u\n", GUEST_DOMID, g->ref, g->port);
}

/* ---- cases ---- */

static void case_command_before_start(Guest *g, Child *c) {
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        int len = tpm2_build_get_random(16, cmd, sizeof(cmd));

        /* Linux sends its first command before the backend connects: the
         * notification goes nowhere, only the page says SUBMIT. */
        guest_submit(g, cmd, (size_t) len);
        *c = start_worker(g);
        CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "pre-start command not FINISHed");
        CHECK(guest_response(g, TPMIF_HEADER_SIZE, resp, &n) == 0, "pre-start GetRandom failed");
        CHECK(n == TPM_HEADER_SIZE + 2 + 16, "pre-start GetRandom: %zu bytes", n);
        printf("ok   command submitted before IPC_START is answered (%zu bytes)\n", n);
}

/* Informational: the worker's private memory (benchmark target: <= 1 MiB
 * idle). Private_Clean is mostly library text that becomes shared as soon as
 * a second worker runs; Private_Dirty is the real per-worker cost. */
static void print_private_memory(pid_t pid) {
        char path[64], line[256];
        unsigned long clean = 0, dirty = 0, v;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "Private_Clean: %lu kB", &v) == 1)
                        clean += v;
                else if (sscanf(line, "Private_Dirty: %lu kB", &v) == 1)
                        dirty += v;
        printf("  worker private memory after a command: %lu KiB dirty + %lu KiB clean\n", dirty, clean);
}

static void case_get_random(Guest *g, const Child *c) {
        expect_get_random(g, 32);
        printf("ok   GetRandom(32): size field == length == 44\n");
        print_private_memory(c->pid);
}

static void case_invalid_headers(Guest *g, const Child *c) {
        static const struct {
                const char *what;
                uint8_t state;
                uint32_t length;
                uint8_t nr_extra;
                uint32_t rc;
        } cases[] = {
                { "state 7", 7, 12, 0, TPM2_RC_FAILURE },
                { "state 255", 255, 12, 0, TPM2_RC_FAILURE },
                { "length 0", TPMIF_STATE_SUBMIT, 0, 0, TPM2_RC_COMMAND_SIZE },
                { "length 9", TPMIF_STATE_SUBMIT, 9, 0, TPM2_RC_COMMAND_SIZE },
                { "length 4089", TPMIF_STATE_SUBMIT, 4089, 0, TPM2_RC_COMMAND_SIZE },
                { "length 0xFFFFFFFF", TPMIF_STATE_SUBMIT, 0xFFFFFFFFu, 0, TPM2_RC_COMMAND_SIZE },
                { "length 0xFFFFFFF8", TPMIF_STATE_SUBMIT, 0xFFFFFFF8u, 0, TPM2_RC_COMMAND_SIZE },
                { "nr_extra_pages 1", TPMIF_STATE_SUBMIT, 12, 1, TPM2_RC_FAILURE },
                { "nr_extra_pages 255", TPMIF_STATE_SUBMIT, 12, 255, TPM2_RC_FAILURE },
        };
        uint64_t rejected0 = get_stats(c).rejected;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint8_t resp[TPM_MAX_PACKET];
                size_t n = 0;
                uint32_t offset = TPMIF_HEADER_SIZE + 4u * cases[i].nr_extra;

                /* A valid GetRandom behind the bad header: only the header is wrong. */
                memset(g->page + TPMIF_HEADER_SIZE, 0, 4u * cases[i].nr_extra);
                CHECK(tpm2_build_get_random(8, g->page + offset, TPM_HEADER_SIZE + 2) > 0, "build");
                g->page[TPMIF_OFF_NR_EXTRA] = cases[i].nr_extra;
                page_set_length(g, cases[i].length);
                page_set_state(g, cases[i].state);
                guest_notify(g);

                uint64_t deadline = now_ms() + COMMAND_TIMEOUT_MS;
                while (page_state(g) != TPMIF_STATE_FINISH) {
                        CHECK(now_ms() < deadline, "%s: page left in state %u", cases[i].what, page_state(g));
                        guest_drain_events(g);
                        pause_1ms();
                }
                uint32_t rc = guest_response(g, offset, resp, &n);
                CHECK(n == TPM_HEADER_SIZE, "%s: %zu-byte response", cases[i].what, n);
                CHECK(tpm_be16(resp) == TPM2_ST_NO_SESSIONS, "%s: tag 0x%x", cases[i].what, tpm_be16(resp));
                CHECK(rc == cases[i].rc, "%s: rc 0x%x, expected 0x%x", cases[i].what, rc, cases[i].rc);
                printf("ok   %s -> FINISH, 10-byte error 0x%x\n", cases[i].what, rc);
        }
        g->page[TPMIF_OFF_NR_EXTRA] = 0;
        uint64_t rejected = get_stats(c).rejected - rejected0;
        CHECK(rejected == ELEMENTSOF(cases), "STATS counted %" PRIu64 " rejects", rejected);
        expect_get_random(g, 8);
        printf("ok   after %zu rejects the next command works\n", ELEMENTSOF(cases));
}

static void case_cancel_idle(Guest *g) {
        page_set_state(g, TPMIF_STATE_CANCEL);
        guest_notify(g);
        CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_IDLE, "CANCEL while idle did not end in IDLE");
        printf("ok   CANCEL while idle -> IDLE\n");
}

static void case_cancel_busy(Guest *g, const Child *c) {
        int hits = 0, canceled = 0, attempts;

        for (attempts = 1; attempts <= 10 && hits == 0; attempts++) {
                submit_long_command(g, c, 0x100u + (uint32_t) attempts);
                /* Cancel only if the command is still running; compare-and-swap so a
                 * FINISH posted in between is not overwritten (that would be the
                 * idle-cancel case above). */
                uint8_t expected = TPMIF_STATE_SUBMIT;
                bool hit = __atomic_compare_exchange_n(g->page + TPMIF_OFF_STATE, &expected, TPMIF_STATE_CANCEL,
                                                       false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
                if (hit) {
                        hits++;
                        guest_notify(g);
                }
                CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH,
                      "cancelled command ended in IDLE, not FINISH");
                uint8_t resp[TPM_MAX_PACKET];
                size_t n = 0;
                uint32_t rc = guest_response(g, TPMIF_HEADER_SIZE, resp, &n);
                CHECK(rc == 0 || rc == TPM2_RC_CANCELED, "cancelled CreatePrimary answered 0x%x", rc);
                if (rc == TPM2_RC_CANCELED)
                        canceled++;
                else
                        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        }
        CHECK(hits > 0, "never managed to cancel while the command ran");
        printf("ok   CANCEL during RSA-2048 CreatePrimary -> FINISH (%s, %d attempt(s))\n",
               canceled ? "TPM_RC_CANCELED" : "completed", attempts - 1);
        expect_get_random(g, 8);
        printf("ok   GetRandom after the cancel\n");
}

static void case_flood(Guest *g, const Child *c) {
        uint64_t events0 = get_stats(c).events;
        for (int i = 0; i < 10000; i++)
                guest_notify(g);
        expect_get_random(g, 8);
        IpcStats s = get_stats(c);
        CHECK(s.events > events0, "no events counted");
        printf("ok   10000 notifications (%" PRIu64 " events delivered), then GetRandom works\n", s.events - events0);
}

static void case_length_flip(Guest *g, const Child *c) {
        uint64_t rejected0 = get_stats(c).rejected;
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;

        submit_long_command(g, c, 0x200u);
        page_set_length(g, 0xFFFFFFFFu);
        guest_notify(g);
        CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "not FINISHed");
        uint32_t rc = guest_response(g, TPMIF_HEADER_SIZE, resp, &n);
        CHECK(rc == 0, "CreatePrimary answered 0x%x", rc);
        CHECK(n > 100, "CreatePrimary response of %zu bytes", n);
        CHECK(get_stats(c).rejected == rejected0, "the flip was answered as a reject");
        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        printf("ok   length flipped to 0xFFFFFFFF mid-command: response unchanged (%zu bytes)\n", n);
}

static void case_sigkill(Guest *g, Child *c) {
        submit_long_command(g, c, 0x300u);
        CHECK(kill(c->pid, SIGKILL) == 0, "kill: %m");
        IpcMsg m;
        CHECK(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 0, "socket not at EOF after SIGKILL");
        int status = wait_exit(c, COMMAND_TIMEOUT_MS);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "worker status 0x%x", status);
        printf("ok   SIGKILL mid-command: supervisor sees EOF and the child's death\n");

        /* The page still says SUBMIT; a new worker binds the same port and answers it. */
        *c = start_worker(g);
        CHECK(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "pending command not answered");
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;
        CHECK(guest_response(g, TPMIF_HEADER_SIZE, resp, &n) == 0, "re-run CreatePrimary failed");
        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        expect_get_random(g, 8);
        printf("ok   new worker rebinds the guest port and answers the pending command\n");
}

static void case_stop_reset(Child *c) {
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = IPC_STOP_RESET } };
        send_msg(c, &m);
        CHECK(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 1, "EOF instead of STOPPED");
        CHECK(m.type == IPC_STOPPED, "expected STOPPED, got %u", m.type);
        int status = wait_exit(c, COMMAND_TIMEOUT_MS);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status 0x%x", status);
        printf("ok   IPC_STOP{RESET} -> IPC_STOPPED, exit 0\n");
}

static void case_sigterm(Guest *g) {
        Child c = start_worker(g);
        expect_get_random(g, 8);
        CHECK(kill(c.pid, SIGTERM) == 0, "kill: %m");
        IpcMsg m;
        CHECK(recv_msg(&c, &m, COMMAND_TIMEOUT_MS) == 1 && m.type == IPC_STOPPED, "no STOPPED after SIGTERM");
        int status = wait_exit(&c, COMMAND_TIMEOUT_MS);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status 0x%x", status);
        printf("ok   SIGTERM -> IPC_STOPPED, exit 0\n");
}

static void case_supervisor_eof(Guest *g) {
        Child c = start_worker(g);
        expect_get_random(g, 8);
        c.fd = safe_close(c.fd);
        int status = wait_exit(&c, COMMAND_TIMEOUT_MS);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker status 0x%x", status);
        printf("ok   supervisor gone (EOF on fd 3) -> exit 0\n");
}

static void case_start_failures(Guest *g) {
        /* Garbage instead of IPC_START. */
        Child c = spawn_worker();
        static const uint8_t junk[12] = { 1, 0, 0, 0, 99, 0, 0, 0 };
        CHECK(send(c.fd, junk, sizeof(junk), MSG_NOSIGNAL) == sizeof(junk), "send: %m");
        IpcMsg m;
        CHECK(recv_msg(&c, &m, READY_TIMEOUT_MS) == 1, "EOF instead of FAILED");
        CHECK(m.type == IPC_FAILED && m.failed.stage == IPC_STAGE_PARAMS, "expected FAILED{PARAMS}");
        int status = wait_exit(&c, COMMAND_TIMEOUT_MS);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "worker status 0x%x", status);
        printf("ok   invalid IPC_START -> FAILED{PARAMS}, exit 1\n");

        /* A grant reference the guest never made. */
        c = spawn_worker();
        send_start(&c, g, g->ref + 1000, IPC_START_TPM_STARTUP);
        CHECK(recv_msg(&c, &m, READY_TIMEOUT_MS) == 1, "EOF instead of FAILED");
        CHECK(m.type == IPC_FAILED && m.failed.stage == IPC_STAGE_MAP, "expected FAILED{MAP}, got type %u stage %u",
              m.type, m.failed.stage);
        status = wait_exit(&c, COMMAND_TIMEOUT_MS);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "worker status 0x%x", status);
        printf("ok   unknown ring-ref -> FAILED{MAP} (%s), exit 1\n", strerror(-m.failed.error));
}

int main(int argc, char **argv) {
        Guest g = {};
        Child c;

        if (argc != 2) {
                fprintf(stderr, "usage: %s PATH-TO-vtpmd-worker\n", argv[0]);
                return 2;
        }
        worker_path = argv[1];
        setvbuf(stdout, NULL, _IOLBF, 0);
        signal(SIGPIPE, SIG_IGN);
        atexit(cleanup);
        CHECK(mkdtemp(sim_dir), "mkdtemp: %m");
        sim_dir_made = true;

        guest_setup(&g);
        case_command_before_start(&g, &c);
        case_get_random(&g, &c);
        case_invalid_headers(&g, &c);
        case_cancel_idle(&g);
        case_cancel_busy(&g, &c);
        case_flood(&g, &c);
        case_length_flip(&g, &c);
        case_sigkill(&g, &c);
        case_stop_reset(&c);
        case_sigterm(&g);
        case_supervisor_eof(&g);
        case_start_failures(&g);

        evtchn_close(g.evtchn);
        gntshr_close(g.gntshr);
        platform_free(g.platform);
        printf("all worker cases passed\n");
        return 0;
}
