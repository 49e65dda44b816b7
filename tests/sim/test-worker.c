/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-worker on the simulated hypervisor. This program is both the
 * supervisor (socketpair on the worker's fd 3, IPC messages) and the guest
 * (granting the page and driving it like Linux xen-tpmfront: fill, length,
 * barrier, SUBMIT, notify, then poll the state every millisecond).
 *
 *   VTPMD_WORKER=PATH-TO-vtpmd-worker test-worker [CASE]
 *
 * Every case starts from nothing (a new simulated hypervisor directory, guest
 * and worker), so one that fails leaves the others to run. The helpers end a
 * case with REQUIRE from any depth; what they hold lives in the globals below,
 * which case_begin() and the exit handler free.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <sched.h>
#include <sys/mount.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "../common/testlib.h"
#include "../common/tpm-cmd.h"
#include "evtchn.h"
#include "gnttab.h"
#include "crypto.h"
#include "ipc.h"
#include "ipc-socket.h"
#include "platform.h"
#include "statestore.h"
#include "test.h"
#include "tpmif.h"
#include "util.h"

#define GUEST_DOMID 7u
#define READY_TIMEOUT_MS 20000
#define COMMAND_TIMEOUT_MS 60000
#define TEST_UUID "0f4c2b57-6a1e-4c8e-9d3b-2a7f5e8c1d90"

#define SIM_DIR_TEMPLATE "/tmp/vtpmd-test-worker-XXXXXX"
#define STATE_ROOT_TEMPLATE "/tmp/vtpmd-test-worker-state-XXXXXX"
#define TMPFS_DIR_TEMPLATE "/tmp/vtpmd-test-worker-tmpfs-XXXXXX"

static const char *worker_path;
static char sim_dir[] = SIM_DIR_TEMPLATE;
static bool sim_dir_made;
static pid_t children[64];
static char state_root[] = STATE_ROOT_TEMPLATE;
static bool state_root_made;
static char tmpfs_dir[] = TMPFS_DIR_TEMPLATE;
static bool tmpfs_dir_made, tmpfs_mounted;
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

typedef struct Vtpm {
        const char *uuid;
        StateDir *dir; /* the "supervisor's" handle, unlocked while a worker runs */
        char path[256];
} Vtpm;

/* What the current case holds. */
static Guest guest;
static uint8_t data_key[CRYPTO_KEY_SIZE];
static StateRoot *root;
static Vtpm vtpms[2];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

/* Frees what a case left, whether it ended or was ended by REQUIRE. */
static void cleanup(void) {
        for (size_t i = 0; i < n_children; i++)
                if (children[i] > 0) {
                        kill(children[i], SIGKILL);
                        (void) waitpid(children[i], NULL, 0);
                }
        n_children = 0;
        for (size_t i = 0; i < ELEMENTSOF(vtpms); i++)
                statedir_close(vtpms[i].dir);
        memset(vtpms, 0, sizeof(vtpms));
        root = stateroot_close(root);
        explicit_wipe(data_key, sizeof(data_key));
        evtchn_close(guest.evtchn);
        gntshr_close(guest.gntshr);
        platform_free(guest.platform);
        guest = (Guest){};
        if (sim_dir_made)
                (void) nftw(sim_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (state_root_made)
                (void) nftw(state_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        if (tmpfs_mounted)
                (void) umount2(tmpfs_dir, MNT_DETACH);
        if (tmpfs_dir_made)
                (void) nftw(tmpfs_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        sim_dir_made = state_root_made = tmpfs_mounted = tmpfs_dir_made = false;
        memcpy(sim_dir, SIM_DIR_TEMPLATE, sizeof(sim_dir));
        memcpy(state_root, STATE_ROOT_TEMPLATE, sizeof(state_root));
        memcpy(tmpfs_dir, TMPFS_DIR_TEMPLATE, sizeof(tmpfs_dir));
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
        REQUIRE(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair: %m");
        REQUIRE(n_children < ELEMENTSOF(children), "too many children");
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork: %m");
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
        REQUIRE(n > 0, "encode");
        REQUIRE(send(c->fd, buf, n, MSG_NOSIGNAL) == (ssize_t) n, "send to worker: %m");
}

/* The IPC_STATE reports of the vTPM in use: what a supervisor records. */
typedef struct StateTrack {
        uint64_t max_seq;  /* newest seq reported for any kind */
        uint64_t perm_seq; /* newest durable permall */
        uint64_t vol_seq;  /* newest durable volatile */
        unsigned n_perm, n_vol, n_errors;
        int last_error;
} StateTrack;
static StateTrack track;

static void track_state(const IpcState *st) {
        if (st->error < 0) {
                track.n_errors++;
                track.last_error = st->error;
                return;
        }
        /* Every durable write of one vTPM uses a newer seq than any before. */
        REQUIRE(st->seq > track.max_seq, "STATE seq %" PRIu64 " not above %" PRIu64, st->seq, track.max_seq);
        track.max_seq = st->seq;
        if (st->kind == IPC_STATE_KIND_PERMANENT) {
                track.perm_seq = st->seq;
                track.n_perm++;
        } else {
                track.vol_seq = st->seq;
                track.n_vol++;
        }
}

/* 1 and *m, 0 on EOF; fails the test on timeout. IPC_STATE reports are
 * tracked (track_state) and never returned. */
static int recv_msg(const Child *c, IpcMsg *m, int timeout_ms) {
        for (;;) {
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                int r = poll(&p, 1, timeout_ms);
                REQUIRE(r >= 0, "poll: %m");
                REQUIRE(r > 0, "no message from the worker within %d ms", timeout_ms);
                uint8_t buf[IPC_MAX_PACKET];
                ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
                if (n == 0 || (n < 0 && errno == ECONNRESET))
                        return 0;
                REQUIRE(n > 0, "recv: %m");
                REQUIRE(ipc_decode(buf, (size_t) n, m) == 0, "worker sent an invalid message");
                if (m->type != IPC_STATE)
                        return 1;
                track_state(&m->state);
        }
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
        REQUIRE(recv_msg(c, &m, READY_TIMEOUT_MS) == 1, "worker closed the socket instead of READY");
        REQUIRE(m.type != IPC_FAILED, "worker FAILED at stage %s: %s", strempty(ipc_stage_to_string(m.failed.stage)),
                strerror(-m.failed.error));
        REQUIRE(m.type == IPC_READY, "expected READY, got type %u", m.type);
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
                REQUIRE(r >= 0, "waitpid: %m");
                if (r == c->pid)
                        break;
                REQUIRE(now_ms() < deadline, "worker %d did not exit within %d ms", (int) c->pid, timeout_ms);
                pause_1ms();
        }
        untrack(c->pid);
        c->fd = safe_close(c->fd);
        return status;
}

/* Waits for the child to exit with this status. */
static void expect_exit(Child *c, int code) {
        int status = wait_exit(c, COMMAND_TIMEOUT_MS);
        REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == code, "worker status 0x%x, expected exit %d", status, code);
}

static IpcStats get_stats(const Child *c) {
        IpcMsg m = { .type = IPC_STATS_REQ };
        send_msg(c, &m);
        REQUIRE(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 1, "EOF instead of STATS");
        REQUIRE(m.type == IPC_STATS, "expected STATS, got %u", m.type);
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
        REQUIRE_OK(evtchn_notify(g->evtchn, g->port));
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
                REQUIRE(now_ms() < deadline, "page still in state %u after %d ms", s, timeout_ms);
                guest_drain_events(g);
                pause_1ms();
        }
}

/* Reads a FINISHed response like vtpm_recv + tpm_try_transmit; returns the TPM rc. */
static uint32_t guest_response(Guest *g, uint32_t offset, uint8_t *resp, size_t *ret_len) {
        uint32_t len = page_length(g);
        TpmHeader h;
        REQUIRE(len >= TPM_HEADER_SIZE && len <= VTPM_XEN_PAGE_SIZE - offset, "response length %u out of range", len);
        memcpy(resp, g->page + offset, len);
        REQUIRE(tpm_header_parse(resp, len, &h) == 0, "unparsable response");
        REQUIRE(h.size == len, "response size field %u != length %u (Linux: -EFAULT)", h.size, len);
        *ret_len = len;
        return h.code;
}

static uint32_t guest_transact(Guest *g, const uint8_t *cmd, size_t len, uint8_t *resp, size_t *ret_len) {
        guest_submit(g, cmd, len);
        REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "command ended in IDLE, not FINISH");
        return guest_response(g, TPMIF_HEADER_SIZE, resp, ret_len);
}

static void expect_get_random(Guest *g, uint16_t bytes) {
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        int len = tpm2_build_get_random(bytes, cmd, sizeof(cmd));
        REQUIRE(len > 0, "build");
        uint32_t rc = guest_transact(g, cmd, (size_t) len, resp, &n);
        REQUIRE(rc == 0, "GetRandom answered 0x%x", rc);
        REQUIRE(n == TPM_HEADER_SIZE + 2u + bytes, "GetRandom response of %zu bytes", n);
        REQUIRE(tpm_be16(resp + TPM_HEADER_SIZE) == bytes, "GetRandom gave %u bytes", tpm_be16(resp + TPM_HEADER_SIZE));
}

static void flush_handle(Guest *g, uint32_t handle) {
        uint8_t cmd[14], resp[TPM_MAX_PACKET];
        size_t n;
        tpm_put_be16(cmd, TPM2_ST_NO_SESSIONS);
        tpm_put_be32(cmd + 2, sizeof(cmd));
        tpm_put_be32(cmd + 6, 0x165);
        tpm_put_be32(cmd + 10, handle);
        REQUIRE(guest_transact(g, cmd, sizeof(cmd), resp, &n) == 0, "FlushContext failed");
}

/* Submits a long command and returns once the worker has taken it (its event
 * counter moved past the notification), so what follows happens mid-command. */
static void submit_long_command(Guest *g, const Child *c, uint32_t unique) {
        uint8_t cmd[TPM_MAX_PACKET];
        uint64_t before = get_stats(c).events;
        size_t len = tpmcmd_create_primary(cmd, unique);
        guest_submit(g, cmd, len);
        uint64_t deadline = now_ms() + COMMAND_TIMEOUT_MS;
        while (get_stats(c).events <= before) {
                REQUIRE(now_ms() < deadline, "worker never saw the event");
                pause_1ms();
        }
}

/* A case's start: what the previous one left is gone, a new simulated
 * hypervisor directory holds a guest with its page granted and an unbound
 * event channel, and no worker runs yet. */
static Guest *case_begin(void) {
        static bool once;
        char spec[sizeof(sim_dir) + 8];
        Guest *g = &guest;

        if (!once) {
                setvbuf(stdout, NULL, _IOLBF, 0);
                signal(SIGPIPE, SIG_IGN);
                atexit(cleanup);
                once = true;
        }
        cleanup();
        track = (StateTrack){};
        worker_path = getenv("VTPMD_WORKER");
        REQUIRE(worker_path, "VTPMD_WORKER (the vtpmd-worker to test) is not set");
        REQUIRE(mkdtemp(sim_dir), "mkdtemp: %m");
        sim_dir_made = true;
        snprintf(spec, sizeof(spec), "sim:%s", sim_dir);
        REQUIRE_OK(platform_parse(spec, GUEST_DOMID, &g->platform));
        REQUIRE_OK(gntshr_open(g->platform, &g->gntshr));
        void *addr = NULL;
        REQUIRE_OK(gntshr_share(g->gntshr, 0, true, &g->ref, &addr));
        g->page = addr;
        REQUIRE_OK(evtchn_open(g->platform, &g->evtchn));
        REQUIRE_OK(evtchn_bind_unbound(g->evtchn, 0, &g->port));
        printf("  guest %u: ring-ref %u, event channel %u\n", GUEST_DOMID, g->ref, g->port);
        return g;
}

/* ---- cases ---- */

TEST(command_submitted_before_start_is_answered) {
        Guest *g = case_begin();
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        int len = tpm2_build_get_random(16, cmd, sizeof(cmd));

        /* Linux sends its first command before the backend connects: the
         * notification goes nowhere, only the page says SUBMIT. */
        guest_submit(g, cmd, (size_t) len);
        start_worker(g);
        REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "pre-start command not FINISHed");
        REQUIRE(guest_response(g, TPMIF_HEADER_SIZE, resp, &n) == 0, "pre-start GetRandom failed");
        REQUIRE(n == TPM_HEADER_SIZE + 2 + 16, "pre-start GetRandom: %zu bytes", n);
        printf("  ok   command submitted before IPC_START is answered (%zu bytes)\n", n);
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

TEST(get_random_size_field_matches_length) {
        Guest *g = case_begin();
        Child c = start_worker(g);

        expect_get_random(g, 32);
        printf("  ok   GetRandom(32): size field == length == 44\n");
        print_private_memory(c.pid);
}

TEST(invalid_headers_get_a_tpm_error_and_the_next_command_works) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;
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
                REQUIRE(tpm2_build_get_random(8, g->page + offset, TPM_HEADER_SIZE + 2) > 0, "build");
                g->page[TPMIF_OFF_NR_EXTRA] = cases[i].nr_extra;
                page_set_length(g, cases[i].length);
                page_set_state(g, cases[i].state);
                guest_notify(g);

                uint64_t deadline = now_ms() + COMMAND_TIMEOUT_MS;
                while (page_state(g) != TPMIF_STATE_FINISH) {
                        REQUIRE(now_ms() < deadline, "%s: page left in state %u", cases[i].what, page_state(g));
                        guest_drain_events(g);
                        pause_1ms();
                }
                uint32_t rc = guest_response(g, offset, resp, &n);
                REQUIRE(n == TPM_HEADER_SIZE, "%s: %zu-byte response", cases[i].what, n);
                REQUIRE(tpm_be16(resp) == TPM2_ST_NO_SESSIONS, "%s: tag 0x%x", cases[i].what, tpm_be16(resp));
                REQUIRE(rc == cases[i].rc, "%s: rc 0x%x, expected 0x%x", cases[i].what, rc, cases[i].rc);
                printf("  ok   %s -> FINISH, 10-byte error 0x%x\n", cases[i].what, rc);
        }
        g->page[TPMIF_OFF_NR_EXTRA] = 0;
        uint64_t rejected = get_stats(c).rejected - rejected0;
        REQUIRE(rejected == ELEMENTSOF(cases), "STATS counted %" PRIu64 " rejects", rejected);
        expect_get_random(g, 8);
        printf("  ok   after %zu rejects the next command works\n", ELEMENTSOF(cases));
}

TEST(cancel_while_idle_ends_in_idle) {
        Guest *g = case_begin();

        start_worker(g);
        page_set_state(g, TPMIF_STATE_CANCEL);
        guest_notify(g);
        REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_IDLE, "CANCEL while idle did not end in IDLE");
        printf("  ok   CANCEL while idle -> IDLE\n");
}

TEST(cancel_while_busy_finishes_and_the_next_command_works) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;
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
                REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH,
                        "cancelled command ended in IDLE, not FINISH");
                uint8_t resp[TPM_MAX_PACKET];
                size_t n = 0;
                uint32_t rc = guest_response(g, TPMIF_HEADER_SIZE, resp, &n);
                REQUIRE(rc == 0 || rc == TPM2_RC_CANCELED, "cancelled CreatePrimary answered 0x%x", rc);
                if (rc == TPM2_RC_CANCELED)
                        canceled++;
                else
                        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        }
        REQUIRE(hits > 0, "never managed to cancel while the command ran");
        printf("  ok   CANCEL during RSA-2048 CreatePrimary -> FINISH (%s, %d attempt(s))\n",
               canceled ? "TPM_RC_CANCELED" : "completed", attempts - 1);
        expect_get_random(g, 8);
        printf("  ok   GetRandom after the cancel\n");
}

TEST(notification_flood_leaves_the_worker_serving) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;
        uint64_t events0 = get_stats(c).events;
        for (int i = 0; i < 10000; i++)
                guest_notify(g);
        expect_get_random(g, 8);
        IpcStats s = get_stats(c);
        REQUIRE(s.events > events0, "no events counted");
        printf("  ok   10000 notifications (%" PRIu64 " events delivered), then GetRandom works\n", s.events - events0);
}

TEST(length_rewritten_mid_command_changes_nothing) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;
        uint64_t rejected0 = get_stats(c).rejected;
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;

        submit_long_command(g, c, 0x200u);
        page_set_length(g, 0xFFFFFFFFu);
        guest_notify(g);
        REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "not FINISHed");
        uint32_t rc = guest_response(g, TPMIF_HEADER_SIZE, resp, &n);
        REQUIRE(rc == 0, "CreatePrimary answered 0x%x", rc);
        REQUIRE(n > 100, "CreatePrimary response of %zu bytes", n);
        REQUIRE(get_stats(c).rejected == rejected0, "the flip was answered as a reject");
        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        printf("  ok   length flipped to 0xFFFFFFFF mid-command: response unchanged (%zu bytes)\n", n);
}

TEST(sigkill_mid_command_then_a_new_worker_answers_it) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;

        submit_long_command(g, c, 0x300u);
        REQUIRE(kill(c->pid, SIGKILL) == 0, "kill: %m");
        IpcMsg m;
        REQUIRE(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 0, "socket not at EOF after SIGKILL");
        int status = wait_exit(c, COMMAND_TIMEOUT_MS);
        REQUIRE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "worker status 0x%x", status);
        printf("  ok   SIGKILL mid-command: supervisor sees EOF and the child's death\n");

        /* The page still says SUBMIT; a new worker binds the same port and answers it. */
        *c = start_worker(g);
        REQUIRE(guest_wait_done(g, COMMAND_TIMEOUT_MS) == TPMIF_STATE_FINISH, "pending command not answered");
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;
        REQUIRE(guest_response(g, TPMIF_HEADER_SIZE, resp, &n) == 0, "re-run CreatePrimary failed");
        flush_handle(g, tpm_be32(resp + TPM_HEADER_SIZE));
        expect_get_random(g, 8);
        printf("  ok   new worker rebinds the guest port and answers the pending command\n");
}

TEST(stop_reset_answers_stopped_and_exits_0) {
        Guest *g = case_begin();
        Child w = start_worker(g), *c = &w;
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = IPC_STOP_RESET } };
        send_msg(c, &m);
        REQUIRE(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 1, "EOF instead of STOPPED");
        REQUIRE(m.type == IPC_STOPPED, "expected STOPPED, got %u", m.type);
        expect_exit(c, 0);
        printf("  ok   IPC_STOP{RESET} -> IPC_STOPPED, exit 0\n");
}

TEST(sigterm_answers_stopped_and_exits_0) {
        Guest *g = case_begin();
        Child c = start_worker(g);
        expect_get_random(g, 8);
        REQUIRE(kill(c.pid, SIGTERM) == 0, "kill: %m");
        IpcMsg m;
        REQUIRE(recv_msg(&c, &m, COMMAND_TIMEOUT_MS) == 1 && m.type == IPC_STOPPED, "no STOPPED after SIGTERM");
        expect_exit(&c, 0);
        printf("  ok   SIGTERM -> IPC_STOPPED, exit 0\n");
}

TEST(supervisor_gone_exits_0) {
        Guest *g = case_begin();
        Child c = start_worker(g);
        expect_get_random(g, 8);
        c.fd = safe_close(c.fd);
        expect_exit(&c, 0);
        printf("  ok   supervisor gone (EOF on fd 3) -> exit 0\n");
}

TEST(bad_start_fails_at_its_stage_and_exits_1) {
        Guest *g = case_begin();

        /* Garbage instead of IPC_START. */
        Child c = spawn_worker();
        static const uint8_t junk[12] = { 1, 0, 0, 0, 99, 0, 0, 0 };
        REQUIRE(send(c.fd, junk, sizeof(junk), MSG_NOSIGNAL) == sizeof(junk), "send: %m");
        IpcMsg m;
        REQUIRE(recv_msg(&c, &m, READY_TIMEOUT_MS) == 1, "EOF instead of FAILED");
        REQUIRE(m.type == IPC_FAILED && m.failed.stage == IPC_STAGE_PARAMS, "expected FAILED{PARAMS}");
        expect_exit(&c, 1);
        printf("  ok   invalid IPC_START -> FAILED{PARAMS}, exit 1\n");

        /* A grant reference the guest never made. */
        c = spawn_worker();
        send_start(&c, g, g->ref + 1000, IPC_START_TPM_STARTUP);
        REQUIRE(recv_msg(&c, &m, READY_TIMEOUT_MS) == 1, "EOF instead of FAILED");
        REQUIRE(m.type == IPC_FAILED && m.failed.stage == IPC_STAGE_MAP, "expected FAILED{MAP}, got type %u stage %u",
                m.type, m.failed.stage);
        expect_exit(&c, 1);
        printf("  ok   unknown ring-ref -> FAILED{MAP} (%s), exit 1\n", strerror(-m.failed.error));
}

/* ---- durable state (IPC_START_DURABLE) ---- */

#define UUID_A "6b0d7c1e-3f52-4a9b-8e27-5d4c3b2a1f00"
#define UUID_B "6b0d7c1e-3f52-4a9b-8e27-5d4c3b2a1f01"
#define UUID_C "6b0d7c1e-3f52-4a9b-8e27-5d4c3b2a1f02"
#define NV_INDEX 0x01500016u
#define NV_SIZE 32u
#define PCR_INDEX 16u
#define TPM2_CC_NV_DEFINE_SPACE 0x12au
#define TPM2_CC_NV_WRITE 0x137u
#define TPM2_CC_NV_READ 0x14eu
#define TPM2_CC_PCR_EXTEND 0x182u
#define TPM2_CC_GET_CAPABILITY 0x17au
#define TPM2_RH_OWNER 0x40000001u
#define TPM2_CAP_TPM_PROPERTIES 6u
#define TPM2_PT_LOCKOUT_COUNTER 0x20eu
#define TPMA_NV_AUTHWRITE (1u << 2)
#define TPMA_NV_AUTHREAD (1u << 18)
#define NV_AUTH "pw"
/* What the guest stores; it must never appear in a state file. */
static const char nv_marker[NV_SIZE + 1] = "GUEST-SECRET-NV-MARKER-31415926!";


DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* Runs a command; TPM_RC_RETRY (the first use of a DA-protected auth sets
 * daUsed, research libtpms-swtpm.md §1.7) is retried like a TSS does. */
static uint32_t tpm_run(Guest *g, TpmCmd *c, uint8_t *resp, size_t *ret_len) {
        tpmcmd_end(c);
        for (int i = 0;; i++) {
                uint32_t rc = guest_transact(g, c->b, c->n, resp, ret_len);
                if (rc != TPM2_RC_RETRY || i == 5)
                        return rc;
        }
}

static void nv_define(Guest *g) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n;
        TpmCmd c;
        tpmcmd_begin(&c, TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINE_SPACE);
        tpmcmd_u32(&c, TPM2_RH_OWNER);
        tpmcmd_pw_session(&c, "");
        tpmcmd_u16(&c, 2);
        tpmcmd_bytes(&c, NV_AUTH, 2);
        tpmcmd_u16(&c, 14); /* TPM2B_NV_PUBLIC */
        tpmcmd_u32(&c, NV_INDEX);
        tpmcmd_u16(&c, 0x000b); /* sha256 */
        tpmcmd_u32(&c, TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD); /* no NO_DA: DA-protected */
        tpmcmd_u16(&c, 0);
        tpmcmd_u16(&c, NV_SIZE);
        uint32_t rc = tpm_run(g, &c, resp, &n);
        REQUIRE(rc == 0, "NV_DefineSpace answered 0x%x", rc);
}

/* NV_Write and NV_Read of the whole index, authorized by its own password. */
static void nv_begin(TpmCmd *c, uint32_t cc) {
        tpmcmd_begin(c, TPM2_ST_SESSIONS, cc);
        tpmcmd_u32(c, NV_INDEX);
        tpmcmd_u32(c, NV_INDEX);
        tpmcmd_pw_session(c, NV_AUTH);
        tpmcmd_u16(c, NV_SIZE);
}

static uint32_t nv_write(Guest *g, const char *data) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n;
        TpmCmd c;
        nv_begin(&c, TPM2_CC_NV_WRITE);
        tpmcmd_bytes(&c, data, NV_SIZE);
        tpmcmd_u16(&c, 0);
        return tpm_run(g, &c, resp, &n);
}

static uint32_t nv_read(Guest *g, char out[NV_SIZE + 1]) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;
        TpmCmd c;
        nv_begin(&c, TPM2_CC_NV_READ);
        tpmcmd_u16(&c, 0);
        uint32_t rc = tpm_run(g, &c, resp, &n);
        if (rc != 0)
                return rc;
        /* header, parameterSize, TPM2B_MAX_NV_BUFFER */
        REQUIRE(n >= 16 + NV_SIZE && tpm_be16(resp + 14) == NV_SIZE, "NV_Read response of %zu bytes", n);
        memcpy(out, resp + 16, NV_SIZE);
        out[NV_SIZE] = 0;
        return 0;
}

static void expect_nv(Guest *g, const char *want) {
        char got[NV_SIZE + 1];
        uint32_t rc = nv_read(g, got);
        REQUIRE(rc == 0, "NV_Read answered 0x%x", rc);
        REQUIRE(memcmp(got, want, NV_SIZE) == 0, "NV index holds \"%s\", expected \"%s\"", got, want);
}

static void pcr_extend(Guest *g, uint8_t fill) {
        uint8_t resp[TPM_MAX_PACKET], digest[32];
        size_t n;
        TpmCmd c;
        memset(digest, fill, sizeof(digest));
        tpmcmd_begin(&c, TPM2_ST_SESSIONS, TPM2_CC_PCR_EXTEND);
        tpmcmd_u32(&c, PCR_INDEX);
        tpmcmd_pw_session(&c, "");
        tpmcmd_u32(&c, 1);
        tpmcmd_u16(&c, 0x000b);
        tpmcmd_bytes(&c, digest, sizeof(digest));
        uint32_t rc = tpm_run(g, &c, resp, &n);
        REQUIRE(rc == 0, "PCR_Extend answered 0x%x", rc);
}

static void pcr_read(Guest *g, uint8_t out[32]) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;
        TpmCmd c;
        tpmcmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_PCR_READ);
        tpmcmd_u32(&c, 1);
        tpmcmd_u16(&c, 0x000b);
        tpmcmd_u8(&c, 3);
        tpmcmd_u8(&c, 0);
        tpmcmd_u8(&c, 0);
        tpmcmd_u8(&c, 1u << (PCR_INDEX - 16)); /* PCR 16 */
        uint32_t rc = tpm_run(g, &c, resp, &n);
        REQUIRE(rc == 0, "PCR_Read answered 0x%x", rc);
        /* header, updateCounter, selection (4+6), TPML_DIGEST count, TPM2B size */
        REQUIRE(n >= 30 + 32 && tpm_be32(resp + 24) == 1 && tpm_be16(resp + 28) == 32, "PCR_Read response");
        memcpy(out, resp + 30, 32);
}

static uint32_t lockout_counter(Guest *g) {
        uint8_t resp[TPM_MAX_PACKET];
        size_t n = 0;
        TpmCmd c;
        tpmcmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GET_CAPABILITY);
        tpmcmd_u32(&c, TPM2_CAP_TPM_PROPERTIES);
        tpmcmd_u32(&c, TPM2_PT_LOCKOUT_COUNTER);
        tpmcmd_u32(&c, 1);
        uint32_t rc = tpm_run(g, &c, resp, &n);
        REQUIRE(rc == 0, "GetCapability answered 0x%x", rc);
        REQUIRE(n >= 27 && tpm_be32(resp + 15) == 1 && tpm_be32(resp + 19) == TPM2_PT_LOCKOUT_COUNTER,
                "GetCapability(TPM_PT_LOCKOUT_COUNTER) response");
        return tpm_be32(resp + 23);
}

static uint32_t get_random_rc(Guest *g) {
        uint8_t cmd[TPM_HEADER_SIZE + 2], resp[TPM_MAX_PACKET];
        size_t n = 0;
        int len = tpm2_build_get_random(8, cmd, sizeof(cmd));
        REQUIRE(len > 0, "build");
        return guest_transact(g, cmd, (size_t) len, resp, &n);
}

/* ---- files ---- */

static void vtpm_make(Vtpm *v, StateRoot *r, const char *uuid) {
        v->uuid = uuid;
        REQUIRE_OK(statedir_create(r, uuid, &v->dir));
        REQUIRE_OK(statedir_unlock(v->dir)); /* the worker takes it */
        snprintf(v->path, sizeof(v->path), "%s/%s", stateroot_path(r), uuid);
}

static bool file_read(const Vtpm *v, const char *name, uint8_t **ret, size_t *ret_len) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", v->path, name);
        _cleanup_fclose_ FILE *f = fopen(p, "re");
        if (!f)
                return false;
        uint8_t *buf = malloc(STATEFILE_MAX_PAYLOAD + STATEFILE_OVERHEAD);
        REQUIRE(buf, "malloc");
        *ret_len = fread(buf, 1, STATEFILE_MAX_PAYLOAD + STATEFILE_OVERHEAD, f);
        *ret = buf;
        return true;
}

static void file_write(const Vtpm *v, const char *name, const uint8_t *buf, size_t len) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", v->path, name);
        _cleanup_fclose_ FILE *f = fopen(p, "we");
        REQUIRE(f && fwrite(buf, 1, len, f) == len, "writing %s: %m", p);
}

static bool file_exists(const Vtpm *v, const char *name) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", v->path, name);
        return access(p, F_OK) == 0;
}

/* No file of the vTPM may hold the guest's NV data in plaintext. */
static void expect_no_plaintext(const Vtpm *v) {
        _cleanup_(closedirp) DIR *d = opendir(v->path);
        struct dirent *de;
        unsigned files = 0;
        REQUIRE(d, "opendir %s: %m", v->path);
        while ((de = readdir(d))) {
                uint8_t *buf = NULL;
                size_t len = 0;
                if (de->d_name[0] == '.' && (de->d_name[1] == 0 || de->d_name[1] == '.'))
                        continue;
                if (!file_read(v, de->d_name, &buf, &len))
                        continue;
                files++;
                REQUIRE(!memmem(buf, len, nv_marker, 16), "%s/%s holds the guest's NV data in plaintext", v->path,
                        de->d_name);
                free(buf);
        }
        REQUIRE(files > 0, "no state files in %s", v->path);
}

/* ---- worker lifecycle ---- */

static void send_start_durable(const Child *c, const Guest *g, const Vtpm *v, uint32_t flags, uint64_t min_perm_seq,
                               uint64_t vol_seq) {
        IpcMsg m = { .type = IPC_START };
        m.start.domid = GUEST_DOMID;
        m.start.ring_ref = g->ref;
        m.start.evtchn_port = g->port;
        m.start.family = TPM_FAMILY_2_0;
        m.start.flags = IPC_START_DURABLE | flags;
        snprintf(m.start.uuid, sizeof(m.start.uuid), "%s", v->uuid);
        snprintf(m.start.platform, sizeof(m.start.platform), "sim:%s", sim_dir);
        memcpy(m.start.data_key, data_key, sizeof(data_key));
        m.start.min_perm_seq = min_perm_seq;
        m.start.vol_seq = vol_seq;
        REQUIRE_OK(ipc_socket_send(c->fd, &m, statedir_fd(v->dir)));
        explicit_wipe(&m, sizeof(m));
}

/* A fresh power-on from permall (after a stop with RESET, a crash, or new). */
static Child start_cold(const Guest *g, const Vtpm *v) {
        Child c = spawn_worker();
        send_start_durable(&c, g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0);
        expect_ready(&c);
        return c;
}

/* The resume after a daemon stop, as the supervisor would ask for it. */
static Child start_resume(const Guest *g, const Vtpm *v) {
        Child c = spawn_worker();
        send_start_durable(&c, g, v, IPC_START_RESTORE_VOLATILE, track.perm_seq, track.vol_seq);
        expect_ready(&c);
        return c;
}

static void expect_start_refused(const Guest *g, const Vtpm *v, uint32_t flags, uint64_t min_perm_seq,
                                 uint64_t vol_seq, int error, const char *what) {
        Child c = spawn_worker();
        IpcMsg m;
        send_start_durable(&c, g, v, flags, min_perm_seq, vol_seq);
        REQUIRE(recv_msg(&c, &m, READY_TIMEOUT_MS) == 1, "%s: EOF instead of FAILED", what);
        REQUIRE(m.type == IPC_FAILED, "%s: started (type %u) instead of FAILED", what, m.type);
        REQUIRE(m.failed.stage == IPC_STAGE_STATE && m.failed.error == error,
                "%s: FAILED{%s, %s}, expected FAILED{state, %s}", what,
                strempty(ipc_stage_to_string(m.failed.stage)), strerror(-m.failed.error), strerror(-error));
        int status = wait_exit(&c, COMMAND_TIMEOUT_MS);
        REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 1, "%s: worker status 0x%x", what, status);
        printf("  ok   %s -> FAILED{state, %s}, exit 1\n", what, strerror(-error));
}

static void stop_with(Child *c, IpcStopMode mode) {
        unsigned perm0 = track.n_perm, vol0 = track.n_vol;
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = mode } };
        send_msg(c, &m);
        REQUIRE(recv_msg(c, &m, COMMAND_TIMEOUT_MS) == 1 && m.type == IPC_STOPPED, "no STOPPED");
        expect_exit(c, 0);
        if (mode == IPC_STOP_SUSPEND)
                REQUIRE(track.n_vol == vol0 + 1, "SUSPEND reported no durable volatile state");
        else
                /* TPM2_Shutdown(CLEAR) is an NV write: libtpms stores permall. */
                REQUIRE(track.n_perm > perm0, "RESET reported no permall write (no TPM2_Shutdown?)");
}

static void kill_worker(Child *c) {
        REQUIRE(kill(c->pid, SIGKILL) == 0, "kill: %m");
        int status = wait_exit(c, COMMAND_TIMEOUT_MS);
        REQUIRE(WIFSIGNALED(status), "worker status 0x%x", status);
}

/* A durable case's start: a state root with two vTPMs (UUID_A, UUID_B) of one data key. */
static Guest *durable_begin(void) {
        Guest *g = case_begin();

        REQUIRE(mkdtemp(state_root), "mkdtemp: %m");
        state_root_made = true;
        REQUIRE_OK(crypto_random(data_key, sizeof(data_key)));
        REQUIRE_OK(stateroot_open(state_root, &root));
        vtpm_make(&vtpms[0], root, UUID_A);
        vtpm_make(&vtpms[1], root, UUID_B);
        return g;
}

/* ---- cases ---- */

TEST(durable_vtpm_survives_daemon_stops_guest_reboots_and_crashes) {
        Guest *g = durable_begin();
        Vtpm *v = &vtpms[0];
        uint8_t pcr0[32], pcr1[32], pcr[32], zero[32] = {};
        uint32_t lockout;

        Child c = start_cold(g, v);
        REQUIRE(track.n_perm >= 1, "a new vTPM reported no permall write");
        REQUIRE(file_exists(v, "permall"), "no permall after manufacturing");
        nv_define(g);
        uint32_t rc = nv_write(g, nv_marker);
        REQUIRE(rc == 0, "NV_Write answered 0x%x", rc);
        expect_nv(g, nv_marker);
        pcr_read(g, pcr0);
        pcr_extend(g, 0x5a);
        pcr_read(g, pcr1);
        REQUIRE(memcmp(pcr0, pcr1, 32) != 0, "PCR_Extend changed nothing");
        lockout = lockout_counter(g);
        printf("  ok   new durable vTPM: NV index written (DA-protected, daUsed), PCR %u extended, "
               "lockout counter %u\n", PCR_INDEX, lockout);

        /* Daemon stop and start: the guest sees no reset. */
        for (int i = 0; i < 3; i++) {
                if (i == 1) {
                        /* SIGTERM is a daemon stop too */
                        REQUIRE(kill(c.pid, SIGTERM) == 0, "kill: %m");
                        unsigned vol0 = track.n_vol;
                        IpcMsg m;
                        REQUIRE(recv_msg(&c, &m, COMMAND_TIMEOUT_MS) == 1 && m.type == IPC_STOPPED, "no STOPPED");
                        expect_exit(&c, 0);
                        REQUIRE(track.n_vol == vol0 + 1, "SIGTERM saved no volatile state");
                } else
                        stop_with(&c, IPC_STOP_SUSPEND);
                REQUIRE(file_exists(v, "volatile"), "no volatile file after a daemon stop");
                if (i == 0)
                        expect_no_plaintext(v);
                c = start_resume(g, v);
                REQUIRE(!file_exists(v, "volatile"), "volatile file kept after the resume");
                expect_nv(g, nv_marker);
                pcr_read(g, pcr);
                REQUIRE(memcmp(pcr, pcr1, 32) == 0, "PCR %u changed across a daemon stop", PCR_INDEX);
                REQUIRE(lockout_counter(g) == lockout, "lockout counter rose across a daemon stop");
        }
        printf("  ok   3 daemon stops (SUSPEND, SIGTERM) and resumes: NV kept, PCR %u unchanged, lockout counter %u\n",
               PCR_INDEX, lockout);

        /* Guest reboots: orderly resets. */
        for (int i = 0; i < 5; i++) {
                stop_with(&c, IPC_STOP_RESET);
                c = start_cold(g, v);
                expect_nv(g, nv_marker);
                pcr_read(g, pcr);
                REQUIRE(memcmp(pcr, zero, 32) == 0, "PCR %u not reset by a guest reboot", PCR_INDEX);
                REQUIRE(lockout_counter(g) == lockout, "lockout counter rose across a RESET (cycle %d)", i + 1);
                pcr_extend(g, (uint8_t) i);
        }
        printf("  ok   5 RESET+restart cycles: NV kept, PCR %u reset, lockout counter unchanged (%u)\n", PCR_INDEX,
               lockout);

        /* A crash is a power loss: volatile state gone, and (the control that
         * shows the DA setup above is real) the lockout counter rises. */
        kill_worker(&c);
        c = start_cold(g, v);
        expect_nv(g, nv_marker);
        pcr_read(g, pcr);
        REQUIRE(memcmp(pcr, zero, 32) == 0, "PCR %u survived a worker crash", PCR_INDEX);
        uint32_t after_crash = lockout_counter(g);
        REQUIRE(after_crash == lockout + 1, "lockout counter %u after a crash, expected %u", after_crash, lockout + 1);
        printf("  ok   SIGKILL then cold start: NV kept, PCR reset, lockout counter %u -> %u (non-orderly)\n", lockout,
               after_crash);

        stop_with(&c, IPC_STOP_RESET);
        expect_no_plaintext(v);
        printf("  ok   no state file holds the guest's NV data in plaintext; STATE seqs grew (newest %" PRIu64 ")\n",
               track.max_seq);
}

TEST(durable_start_refuses_state_that_is_not_the_recorded_one) {
        Guest *g = durable_begin();
        Vtpm *v = &vtpms[0], *other = &vtpms[1];
        uint8_t *orig = NULL, *buf = NULL;
        size_t orig_len = 0, len = 0;
        StateTrack saved;

        /* The guest's data in a vTPM shut down by a guest reboot. */
        Child c = start_cold(g, v);
        nv_define(g);
        REQUIRE(nv_write(g, nv_marker) == 0, "NV_Write failed");
        stop_with(&c, IPC_STOP_RESET);

        REQUIRE(file_read(v, "permall", &orig, &orig_len), "no permall");

        /* Rollback: the supervisor knows of a newer permall. */
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq + 1, 0, -ESTALE,
                             "permall older than min_perm_seq");

        /* A permall copied from another vTPM (same data key, so only the UUID tells). */
        saved = track;
        track = (StateTrack){};
        c = start_cold(g, other);
        stop_with(&c, IPC_STOP_RESET);
        track = saved;
        REQUIRE(file_read(other, "permall", &buf, &len), "no permall in the other vTPM");
        file_write(v, "permall", buf, len);
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0, -EXDEV, "permall of another vTPM");
        uint8_t *now = NULL;
        size_t now_len = 0;
        REQUIRE(file_read(v, "permall", &now, &now_len) && now_len == len && memcmp(now, buf, len) == 0,
                "the refused file was modified");
        free(now);
        free(buf);

        /* Truncated. */
        file_write(v, "permall", orig, orig_len - 5);
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0, -EBADMSG, "truncated permall");
        REQUIRE(file_read(v, "permall", &now, &now_len) && now_len == orig_len - 5, "the truncated file was modified");
        free(now);

        /* One bit of the ciphertext flipped. */
        buf = malloc(orig_len);
        REQUIRE(buf, "malloc");
        memcpy(buf, orig, orig_len);
        buf[STATEFILE_HEADER_SIZE + 7] ^= 0x10;
        file_write(v, "permall", buf, orig_len);
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0, -EKEYREJECTED, "bit-flipped permall");
        REQUIRE(file_read(v, "permall", &now, &now_len) && now_len == orig_len && memcmp(now, buf, orig_len) == 0,
                "the bit-flipped file was modified");
        free(now);
        free(buf);

        /* Deleted although the supervisor has a record of it: no silent new TPM. */
        char p[512];
        snprintf(p, sizeof(p), "%s/permall", v->path);
        REQUIRE(unlink(p) == 0, "unlink: %m");
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0, -ENOENT, "permall missing");

        /* Back to the good file: it starts. */
        file_write(v, "permall", orig, orig_len);
        free(orig);

        /* Locked by another process (a second owner). */
        StateDir *second = NULL;
        REQUIRE_OK(statedir_open(root, v->uuid, &second));
        expect_start_refused(g, v, IPC_START_TPM_STARTUP, track.perm_seq, 0, -EBUSY, "state directory locked");
        statedir_close(second);

        /* A volatile file whose seq is not the recorded one, or none where one is
         * recorded, is never resumed: the vTPM starts as after a power loss. */
        static const struct {
                int64_t seq_delta;  /* recorded seq = the file's + this */
                bool remove;        /* the file is gone (resumed already) */
                const char *what;
        } vol_cases[] = {
                { 3, false, "volatile older than the recorded seq" },
                { -1, false, "volatile newer than the recorded seq" },
                { 0, true, "recorded volatile gone" },
        };
        uint8_t zero_pcr[32] = {}, pcr_now[32];
        for (size_t i = 0; i < ELEMENTSOF(vol_cases); i++) {
                c = start_cold(g, v);
                expect_nv(g, nv_marker);
                pcr_extend(g, 0x3c);
                stop_with(&c, IPC_STOP_SUSPEND);
                REQUIRE(file_exists(v, "volatile"), "%s: no volatile file", vol_cases[i].what);
                if (vol_cases[i].remove) {
                        snprintf(p, sizeof(p), "%s/volatile", v->path);
                        REQUIRE(unlink(p) == 0, "unlink: %m");
                }
                c = spawn_worker();
                send_start_durable(&c, g, v, IPC_START_RESTORE_VOLATILE | IPC_START_TPM_STARTUP, track.perm_seq,
                                   (uint64_t) ((int64_t) track.vol_seq + vol_cases[i].seq_delta));
                expect_ready(&c);
                pcr_read(g, pcr_now);
                REQUIRE(memcmp(pcr_now, zero_pcr, 32) == 0, "%s: PCR %u was resumed", vol_cases[i].what,
                        PCR_INDEX);
                /* Only the first: each power loss counts against the DA-protected index, and a
                 * third locks it out, as on a real TPM. */
                if (i == 0)
                        expect_nv(g, nv_marker);
                REQUIRE(!file_exists(v, "volatile"), "%s: the unresumed volatile file is kept",
                        vol_cases[i].what);
                stop_with(&c, IPC_STOP_RESET);
                printf("  ok   %s: started as after a power loss (PCR %u reset)\n", vol_cases[i].what,
                       PCR_INDEX);
        }
        /* A cold start removes a stale volatile file. */
        c = start_cold(g, v);
        stop_with(&c, IPC_STOP_SUSPEND);
        REQUIRE(file_exists(v, "volatile"), "no volatile file");
        c = start_cold(g, v);
        REQUIRE(!file_exists(v, "volatile"), "a cold start kept a stale volatile file");
        stop_with(&c, IPC_STOP_RESET);
        printf("  ok   a cold start removes a stale volatile file; NV intact\n");
}

/* Mount a small tmpfs in a mount namespace of our own, so the mount goes
 * away with the test and never shows up for other tests. */
static void mount_small_tmpfs(const char *path) {
        if (unshare(CLONE_NEWNS) < 0) {
                REQUIRE(errno == EPERM, "unshare(CLONE_NEWNS): %m");
                uid_t uid = geteuid();
                gid_t gid = getegid();
                REQUIRE(unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0,
                        "cannot mount a tmpfs for the full-disk case: not root and no user namespaces: %m");
                char map[64];
                FILE *f;
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) uid);
                REQUIRE((f = fopen("/proc/self/uid_map", "we")) && fputs(map, f) >= 0 && fclose(f) == 0, "uid_map");
                REQUIRE((f = fopen("/proc/self/setgroups", "we")) && fputs("deny", f) >= 0 && fclose(f) == 0,
                        "setgroups");
                snprintf(map, sizeof(map), "0 %u 1", (unsigned) gid);
                REQUIRE((f = fopen("/proc/self/gid_map", "we")) && fputs(map, f) >= 0 && fclose(f) == 0, "gid_map");
        }
        REQUIRE(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0, "making mounts private: %m");
        REQUIRE(mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=128k,mode=0700") == 0, "mount tmpfs: %m");
        tmpfs_mounted = true;
}

/* Last: the test stays in the mount namespace this case makes. */
TEST(full_disk_fails_the_write_keeps_the_old_state_and_recovers) {
        static const char value_a[NV_SIZE + 1] = "value-a-before-the-disk-filled-!";
        static const char value_b[NV_SIZE + 1] = "value-b-written-when-it-was-full";
        char rootpath[sizeof(tmpfs_dir) + 8], filler[sizeof(tmpfs_dir) + 16];
        Guest *g = case_begin();
        Vtpm *v = &vtpms[0];

        REQUIRE(mkdtemp(tmpfs_dir), "mkdtemp: %m");
        tmpfs_dir_made = true;
        mount_small_tmpfs(tmpfs_dir);
        snprintf(rootpath, sizeof(rootpath), "%s/root", tmpfs_dir);
        snprintf(filler, sizeof(filler), "%s/filler", tmpfs_dir);
        REQUIRE_OK(crypto_random(data_key, sizeof(data_key)));
        REQUIRE_OK(stateroot_open(rootpath, &root));
        vtpm_make(v, root, UUID_C);

        Child c = start_cold(g, v);
        nv_define(g);
        REQUIRE(nv_write(g, value_a) == 0, "NV_Write failed");
        uint8_t *before = NULL, *after = NULL;
        size_t before_len = 0, after_len = 0;
        REQUIRE(file_read(v, "permall", &before, &before_len), "no permall");

        /* Fill the file system to the last byte. */
        int fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(fd >= 0, "open filler: %m");
        static uint8_t chunk[4096];
        for (size_t sz = sizeof(chunk); sz > 0; sz /= 2)
                while (write(fd, chunk, sz) == (ssize_t) sz)
                        ;
        REQUIRE(errno == ENOSPC, "filling the tmpfs: %m");
        close(fd);

        unsigned errors0 = track.n_errors;
        uint32_t rc = nv_write(g, value_b);
        REQUIRE(rc == TPM2_RC_FAILURE, "NV_Write on a full disk answered 0x%x, expected TPM_RC_FAILURE", rc);
        rc = get_random_rc(g);
        REQUIRE(rc == TPM2_RC_FAILURE, "GetRandom while the disk is still full answered 0x%x", rc);
        get_stats(&c); /* the STATE reports before this answer are in now */
        REQUIRE(track.n_errors > errors0 && track.last_error == -ENOSPC, "no STATE{permanent, -ENOSPC} report");
        REQUIRE(file_read(v, "permall", &after, &after_len) && after_len == before_len &&
                memcmp(before, after, before_len) == 0, "permall changed by a failed write");
        free(after);
        /* The directory's files are fixed (statedir_fix_files): the tmp file stays, emptied. */
        after = NULL;
        REQUIRE(!file_exists(v, "permall.tmp") || (file_read(v, "permall.tmp", &after, &after_len) && after_len == 0),
                "a failed write left data in permall.tmp");
        free(after);
        printf("  ok   disk full: NV_Write -> TPM_RC_FAILURE, STATE{permanent, -ENOSPC}, previous permall intact\n");

        REQUIRE(unlink(filler) == 0, "unlink filler: %m");
        rc = get_random_rc(g);
        REQUIRE(rc == 0, "GetRandom after space returned answered 0x%x", rc);
        expect_nv(g, value_a);
        REQUIRE(nv_write(g, value_b) == 0, "NV_Write after recovery failed");
        expect_nv(g, value_b);
        stop_with(&c, IPC_STOP_RESET);
        c = start_cold(g, v);
        expect_nv(g, value_b);
        stop_with(&c, IPC_STOP_RESET);
        free(before);
        printf("  ok   space back: the vTPM re-initialises from permall, the failed write is not there, "
               "new writes are durable\n");

        v->dir = statedir_close(v->dir);
        root = stateroot_close(root);
        REQUIRE(umount2(tmpfs_dir, MNT_DETACH) == 0, "umount: %m");
        tmpfs_mounted = false;
}
