/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-sim-guest against the simulated xenstored. The test is the toolstack
 * (it writes the nodes libxl writes, research xen-protocol.md §3.2) and the
 * backend (it maps the guest's page from dom0 and answers with canned TPM
 * responses), and checks what a backend author relies on: the frontend's
 * xenstore keys and states, the probe-time TPM 1.2 commands, the error node,
 * the close and shutdown handshakes, resume, timeouts, and that a TPM command
 * sent to the swtpm-style socket comes out on the page and back. Also the
 * simulated host's side of suspend (control/shutdown acknowledged,
 * TPM_SaveState, the domain file), a cancelled resume, a resume as another
 * domid (migration: a new ring in the new domain) and the swtpm control
 * channel's CMD_INIT power cycle.
 *
 * Environment (set by meson): VTPM_XENSTORED, VTPM_SIM_GUEST.
 */
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "../common/testlib.h"
#include "domain.h"
#include "evtchn.h"
#include "gnttab.h"
#include "platform.h"
#include "test.h"
#include "toolstack.h"
#include "tpm.h"
#include "tpmif.h"
#include "util.h"

#define DOMID 9u
#define FE "/local/domain/9/device/vtpm/0"
#define BE "/local/domain/0/backend/vtpm/9/0"
#define ERROR_NODE "/local/domain/9/error/device/vtpm/0/error"
#define WAIT_MS 10000
#define TEST_UUID "6e1f3a52-8f44-4b0e-9c55-0d2b7d5e0a11"

typedef struct Fx {
        char dir[64];
        pid_t xenstored;
        pid_t guest;
        struct xs_handle *xs;
        Platform *platform;
        Gnttab *gnttab;
        Evtchn *evtchn;
        uint8_t *page;
        uint32_t ref, remote_port, port;
        bool bound;
        uint32_t domid; /* the guest's domain: DOMID until it migrates */
} Fx;

static void pause_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) ms * 1000000L };
        nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static void stop_child(pid_t *pid) {
        if (*pid <= 0)
                return;
        kill(*pid, SIGKILL);
        (void) waitpid(*pid, NULL, 0);
        *pid = 0;
}

static void dump_file(const char *dir, const char *name) {
        char path[PATH_MAX], line[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "re");
        if (!f)
                return;
        fprintf(stderr, "---- %s\n", path);
        while (fgets(line, sizeof(line), f))
                fputs(line, stderr);
        fclose(f);
}

static void fx_done(Fx *fx) {
        if (fx->page)
                (void) gnttab_unmap(fx->gnttab, fx->page);
        gnttab_close(fx->gnttab);
        evtchn_close(fx->evtchn);
        platform_free(fx->platform);
        stop_child(&fx->guest);
        if (fx->xs)
                xs_close(fx->xs);
        stop_child(&fx->xenstored);
        if (fx->dir[0]) {
                if (test_failed_current) {
                        dump_file(fx->dir, "guest.log");
                        dump_file(fx->dir, "xenstored.log");
                }
                (void) nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        }
}

/* output (may be NULL) receives the child's stdout and stderr. */
static pid_t spawn_to(char *const argv[], const char *output) {
        pid_t pid = fork();
        if (pid == 0) {
                if (output) {
                        int fd = open(output, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                                _exit(126);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static pid_t spawn(char *const argv[]) {
        return spawn_to(argv, NULL);
}

static char *xs_get(Fx *fx, const char *path) {
        unsigned len;
        return xs_read(fx->xs, XBT_NULL, path, &len);
}

static bool xs_put(Fx *fx, const char *path, const char *value) {
        return xs_write(fx->xs, XBT_NULL, path, value, strlen(value));
}

static bool xs_is(Fx *fx, const char *path, const char *value) {
        _cleanup_free_ char *v = xs_get(fx, path);
        return v ? streq(v, value) : value == NULL;
}

/* Reads the frontend's ring keys and state as one snapshot (a read-only
 * transaction that fails with EAGAIN if any of them changed meanwhile) and
 * says whether the keys are only partly there, or missing in state 3. */
static bool torn_view(Fx *fx) {
        for (;;) {
                xs_transaction_t t = xs_transaction_start(fx->xs);
                unsigned len;
                char *v[4];
                static const char *const keys[4] = { FE "/ring-ref", FE "/event-channel",
                                                     FE "/feature-protocol-v2", FE "/state" };
                bool torn;
                int n;

                if (t == XBT_NULL)
                        return false;
                for (size_t i = 0; i < 4; i++)
                        v[i] = xs_read(fx->xs, t, keys[i], &len);
                n = !!v[0] + !!v[1] + !!v[2];
                torn = (n != 0 && n != 3) || (v[3] && streq(v[3], "3") && n != 3);
                for (size_t i = 0; i < 4; i++)
                        free(v[i]);
                if (xs_transaction_end(fx->xs, t, false))
                        return torn;
                if (errno != EAGAIN)
                        return false;
        }
}

/* Waits until path reads value; also checks at every look that the
 * frontend's ring keys appear together and before state 3. */
static bool wait_xs(Fx *fx, const char *path, const char *value, int ms, bool *ret_torn) {
        uint64_t deadline = now_ms() + (uint64_t) ms;

        for (;;) {
                if (ret_torn && torn_view(fx))
                        *ret_torn = true;
                if (xs_is(fx, path, value))
                        return true;
                if (now_ms() >= deadline)
                        return false;
                pause_ms(1);
        }
}

static bool read_text(Fx *fx, const char *name, char *buf, size_t size) {
        char path[PATH_MAX];
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, size - 1);
        close(fd);
        if (n < 0)
                return false;
        buf[n] = '\0';
        return true;
}

static bool wait_guest_state(Fx *fx, const char *want, int ms) {
        uint64_t deadline = now_ms() + (uint64_t) ms;
        char buf[128];

        for (;;) {
                if (read_text(fx, "g.guest-state", buf, sizeof(buf)) && streq(buf, want))
                        return true;
                if (now_ms() >= deadline)
                        return false;
                pause_ms(1);
        }
}

static bool set_perms(Fx *fx, xs_transaction_t t, const char *path, unsigned owner, unsigned other,
                      unsigned other_perm) {
        struct xs_permissions p[2] = { { .id = owner, .perms = XS_PERM_NONE }, { .id = other, .perms = other_perm } };
        return xs_set_permissions(fx->xs, t, path, p, 2);
}

/* libxl__device_add: frontend and backend dirs in one transaction. */
static bool add_vtpm_for(Fx *fx, uint32_t domid, const char *fe_state) {
        char fe[64], be[64], fev[96], bev[96], id[16];

        snprintf(fe, sizeof(fe), "/local/domain/%u/device/vtpm/0", domid);
        snprintf(be, sizeof(be), "/local/domain/0/backend/vtpm/%u/0", domid);
        snprintf(id, sizeof(id), "%u", domid);
#define FEK(k) (snprintf(fev, sizeof(fev), "%s/%s", fe, k), fev)
#define BEK(k) (snprintf(bev, sizeof(bev), "%s/%s", be, k), bev)
        for (;;) {
                xs_transaction_t t = xs_transaction_start(fx->xs);
                bool ok;

                if (t == XBT_NULL)
                        return false;
                (void) xs_rm(fx->xs, t, fe);
                (void) xs_rm(fx->xs, t, be);
                ok = xs_mkdir(fx->xs, t, fe) && set_perms(fx, t, fe, domid, 0, XS_PERM_READ) &&
                     xs_mkdir(fx->xs, t, be) && set_perms(fx, t, be, 0, domid, XS_PERM_READ) &&
                     xs_write(fx->xs, t, FEK("backend"), be, strlen(be)) &&
                     xs_write(fx->xs, t, FEK("backend-id"), "0", 1) &&
                     xs_write(fx->xs, t, FEK("state"), fe_state, strlen(fe_state)) &&
                     xs_write(fx->xs, t, FEK("handle"), "0", 1) &&
                     xs_write(fx->xs, t, BEK("frontend"), fe, strlen(fe)) &&
                     xs_write(fx->xs, t, BEK("frontend-id"), id, strlen(id)) &&
                     xs_write(fx->xs, t, BEK("online"), "1", 1) &&
                     xs_write(fx->xs, t, BEK("state"), "1", 1) &&
                     xs_write(fx->xs, t, BEK("handle"), "0", 1) &&
                     xs_write(fx->xs, t, BEK("uuid"), TEST_UUID, strlen(TEST_UUID)) &&
                     xs_write(fx->xs, t, BEK("resume"), "False", 5);
                if (!ok) {
                        (void) xs_transaction_end(fx->xs, t, true);
                        return false;
                }
                if (xs_transaction_end(fx->xs, t, false))
                        return true;
                if (errno != EAGAIN)
                        return false;
        }
#undef FEK
#undef BEK
}

static bool toolstack_add_vtpm(Fx *fx, const char *fe_state) {
        return add_vtpm_for(fx, DOMID, fe_state);
}

/* libxl__domain_make's nodes the guest uses (the domain dir is dom0's and
 * readable by the guest; device/, error/ and control/shutdown are the
 * guest's), the introduction, and the hypervisor's domain file. */
static bool make_domain(Fx *fx, uint32_t domid) {
        char d[64], p[96];
        DomainInfo info = { .shutdown = false };
        Platform *plat = NULL;
        bool ok;

        snprintf(d, sizeof(d), "/local/domain/%u", domid);
#define DK(k) (snprintf(p, sizeof(p), "%s/%s", d, k), p)
        ok = xs_put(fx, DK("name"), "g") && set_perms(fx, XBT_NULL, d, 0, domid, XS_PERM_READ) &&
             xs_mkdir(fx->xs, XBT_NULL, DK("device")) && set_perms(fx, XBT_NULL, DK("device"), domid, 0, XS_PERM_NONE) &&
             xs_mkdir(fx->xs, XBT_NULL, DK("error")) && set_perms(fx, XBT_NULL, DK("error"), domid, 0, XS_PERM_NONE) &&
             xs_put(fx, DK("control/shutdown"), "") &&
             set_perms(fx, XBT_NULL, DK("control/shutdown"), domid, 0, XS_PERM_NONE) &&
             xs_introduce_domain(fx->xs, domid, 1, 1);
#undef DK
        memset(info.handle, 0x5a, sizeof(info.handle));
        snprintf(p, sizeof(p), "sim:%s", fx->dir);
        ok = ok && platform_parse(p, 0, &plat) >= 0 && domain_sim_set(plat, domid, &info) >= 0;
        platform_free(plat);
        return ok;
}

/* xenstored, domain 9 with libxl's basic nodes, the vtpm device in fe_state,
 * the backend's platform handles, then the guest. */
static int fx_start(Fx *fx, const char *fe_state, const char *wait_mode) {
        const char *xsd = getenv("VTPM_XENSTORED"), *guest = getenv("VTPM_SIM_GUEST");
        char xsdir[128], sock[PATH_MAX], log[PATH_MAX], glog[PATH_MAX], spec[PATH_MAX];
        uint64_t deadline;

        if (!xsd || !guest) {
                fprintf(stderr, "VTPM_XENSTORED and VTPM_SIM_GUEST must be set\n");
                return -EINVAL;
        }
        strcpy(fx->dir, "/tmp/vtpm-test-guest-XXXXXX");
        if (!mkdtemp(fx->dir)) {
                fx->dir[0] = '\0';
                return -errno;
        }
        snprintf(xsdir, sizeof(xsdir), "%s/xenstore", fx->dir);
        snprintf(sock, sizeof(sock), "%s/socket", xsdir);
        snprintf(log, sizeof(log), "%s/xenstored.log", fx->dir);
        if (mkdir(xsdir, 0755) < 0)
                return -errno;
        {
                char *argv[] = { (char *) xsd, "--dir", xsdir, "--log", log, NULL };
                fx->xenstored = spawn(argv);
        }
        if (fx->xenstored < 0)
                return -errno;

        if (setenv("XENSTORED_PATH", sock, 1) < 0)
                return -errno;
        deadline = now_ms() + WAIT_MS;
        while (!fx->xs) {
                struct stat st;
                if (stat(sock, &st) == 0)
                        fx->xs = xs_open(0);
                if (fx->xs)
                        break;
                if (now_ms() >= deadline)
                        return -ETIMEDOUT;
                pause_ms(2);
        }

        fx->domid = DOMID;
        if (!make_domain(fx, DOMID))
                return -EIO;
        if (!toolstack_add_vtpm(fx, fe_state))
                return -EIO;

        snprintf(spec, sizeof(spec), "sim:%s", fx->dir);
        if (platform_parse(spec, 0, &fx->platform) < 0 || gnttab_open(fx->platform, &fx->gnttab) < 0 ||
            evtchn_open(fx->platform, &fx->evtchn) < 0)
                return -EIO;

        snprintf(glog, sizeof(glog), "%s/guest.log", fx->dir);
        {
                char *argv[] = { (char *) guest, "--dir", fx->dir, "--domid", "9", "--name", "g",
                                 "--log", glog, "--timeout-scale", "0.05", "--wait", (char *) wait_mode, NULL };
                fx->guest = spawn(argv);
        }
        return fx->guest < 0 ? -errno : 0;
}

/* The backend maps the ring and binds the event channel the frontend wrote. */
static int be_connect(Fx *fx) {
        char p1[96], p2[96];
        int r;

        snprintf(p1, sizeof(p1), "/local/domain/%u/device/vtpm/0/ring-ref", fx->domid);
        snprintf(p2, sizeof(p2), "/local/domain/%u/device/vtpm/0/event-channel", fx->domid);
        _cleanup_free_ char *ref = xs_get(fx, p1), *port = xs_get(fx, p2);

        if (!ref || !port)
                return -ENOENT;
        if (fx->page) {
                (void) gnttab_unmap(fx->gnttab, fx->page);
                fx->page = NULL;
        }
        if (fx->bound) {
                (void) evtchn_unbind(fx->evtchn, fx->port);
                fx->bound = false;
        }
        fx->ref = (uint32_t) strtoul(ref, NULL, 10);
        fx->remote_port = (uint32_t) strtoul(port, NULL, 10);
        r = gnttab_map(fx->gnttab, fx->domid, fx->ref, true, (void **) &fx->page);
        if (r < 0)
                return r;
        r = evtchn_bind_interdomain(fx->evtchn, fx->domid, fx->remote_port, &fx->port);
        if (r < 0)
                return r;
        fx->bound = true;
        return 0;
}

static uint8_t page_state(Fx *fx) {
        return __atomic_load_n(&fx->page[TPMIF_OFF_STATE], __ATOMIC_ACQUIRE);
}

static bool wait_page_state(Fx *fx, uint8_t state, int ms) {
        uint64_t deadline = now_ms() + (uint64_t) ms;

        while (page_state(fx) != state) {
                if (now_ms() >= deadline)
                        return false;
                pause_ms(1);
        }
        return true;
}

/* Waits for a SUBMIT and returns the command's length (0 on timeout). */
static uint32_t be_wait_command(Fx *fx, uint8_t *cmd, size_t size) {
        uint32_t len;

        if (!wait_page_state(fx, TPMIF_STATE_SUBMIT, WAIT_MS))
                return 0;
        memcpy(&len, fx->page, sizeof(len));
        if (len > size || len > VTPM_XEN_PAGE_SIZE - TPMIF_HEADER_SIZE)
                return 0;
        memcpy(cmd, fx->page + TPMIF_HEADER_SIZE, len);
        return len;
}

/* length_field lets a test lie about the length (0: the real one). */
static void be_respond(Fx *fx, const uint8_t *resp, uint32_t len, uint32_t length_field) {
        uint32_t l = length_field ? length_field : len;

        memcpy(fx->page + TPMIF_HEADER_SIZE, resp, len);
        memcpy(fx->page, &l, sizeof(l));
        __atomic_store_n(&fx->page[TPMIF_OFF_STATE], TPMIF_STATE_FINISH, __ATOMIC_RELEASE);
        (void) evtchn_notify(fx->evtchn, fx->port);
}

/* Linux tpm1_getcap(TPM_CAP_PROP, subcap) */
static void getcap_cmd(uint32_t subcap, uint8_t out[22]) {
        tpm_put_be16(out, 0x00c1);
        tpm_put_be32(out + 2, 22);
        tpm_put_be32(out + 6, 101);
        tpm_put_be32(out + 10, 5);
        tpm_put_be32(out + 14, 4);
        tpm_put_be32(out + 18, subcap);
}

static uint32_t tpm12_response(uint32_t rc, const uint32_t *vals, size_t n, uint8_t *out) {
        uint32_t len = TPM_HEADER_SIZE + (n ? 4 + 4 * (uint32_t) n : 0);

        tpm_put_be16(out, 0x00c4);
        tpm_put_be32(out + 2, len);
        tpm_put_be32(out + 6, rc);
        if (n) {
                tpm_put_be32(out + 10, 4 * (uint32_t) n);
                for (size_t i = 0; i < n; i++)
                        tpm_put_be32(out + 14 + 4 * i, vals[i]);
        }
        return len;
}

/* Answers Linux's tpm1_get_timeouts() on the page; returns false if any
 * command is not what Linux sends. With postinit, the first GetCapability is
 * refused with TPM_INVALID_POSTINIT, so Linux must send TPM_Startup(ST_CLEAR)
 * and ask again. */
static bool be_answer_probe(Fx *fx, bool postinit) {
        static const uint32_t timeouts[4] = { 750000, 2000000, 750000, 750000 };
        static const uint32_t durations[3] = { 2000000, 20000000, 300000000 };
        static const uint8_t startup[12] = { 0x00, 0xc1, 0, 0, 0, 12, 0, 0, 0, 0x99, 0, 1 };
        uint8_t cmd[4096], want[22], resp[64];
        uint32_t len;

        getcap_cmd(0x115, want);
        len = be_wait_command(fx, cmd, sizeof(cmd));
        if (len != 22 || memcmp(cmd, want, 22) != 0)
                return false;
        if (postinit) {
                be_respond(fx, resp, tpm12_response(TPM12_INVALID_POSTINIT, NULL, 0, resp), 0);
                len = be_wait_command(fx, cmd, sizeof(cmd));
                if (len != sizeof(startup) || memcmp(cmd, startup, sizeof(startup)) != 0)
                        return false;
                be_respond(fx, resp, tpm12_response(0, NULL, 0, resp), 0);
                len = be_wait_command(fx, cmd, sizeof(cmd));
                if (len != 22 || memcmp(cmd, want, 22) != 0)
                        return false;
        }
        be_respond(fx, resp, tpm12_response(0, timeouts, 4, resp), 0);

        getcap_cmd(0x120, want);
        len = be_wait_command(fx, cmd, sizeof(cmd));
        if (len != 22 || memcmp(cmd, want, 22) != 0)
                return false;
        be_respond(fx, resp, tpm12_response(0, durations, 3, resp), 0);
        return true;
}

/* Up to fe=4: probe, answer the probe commands, backend InitWait->Connected. */
static bool fx_connect(Fx *fx) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s", BE "/feature-protocol-v2");
        if (!xs_put(fx, path, "1") || !xs_put(fx, BE "/state", "2"))
                return false;
        if (!wait_xs(fx, FE "/state", "3", WAIT_MS, NULL) || be_connect(fx) < 0 || !be_answer_probe(fx, false))
                return false;
        if (!xs_put(fx, BE "/state", "4"))
                return false;
        return wait_xs(fx, FE "/state", "4", WAIT_MS, NULL) && wait_guest_state(fx, "frontend=4 tpm=ready\n", WAIT_MS);
}

static int connect_unix(Fx *fx, const char *name) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
        return unix_connect(path);
}

/* Reads exactly n bytes, or fewer if the peer closes; -ETIMEDOUT at the deadline. */
static ssize_t read_n(int fd, uint8_t *buf, size_t n, int ms) {
        uint64_t deadline = now_ms() + (uint64_t) ms;
        size_t got = 0;

        while (got < n) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_ms();
                ssize_t k;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) (deadline - now)) <= 0)
                        continue;
                k = read(fd, buf + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return errno == ECONNRESET ? (ssize_t) got : -errno;
                if (k == 0)
                        break;
                got += (size_t) k;
        }
        return (ssize_t) got;
}

/* One swtpm control command: code + payload, then the reply. */
static ssize_t ctrl_cmd(Fx *fx, uint32_t code, const uint8_t *payload, size_t plen, uint8_t *reply, size_t rlen) {
        _cleanup_close_ int fd = connect_unix(fx, "g.sock.ctrl");
        uint8_t msg[16];

        if (fd < 0 || plen > sizeof(msg) - 4)
                return -EIO;
        tpm_put_be32(msg, code);
        if (plen > 0) /* callers without a payload pass NULL, which memcpy may not get */
                memcpy(msg + 4, payload, plen);
        if (write(fd, msg, 4 + plen) != (ssize_t) (4 + plen))
                return -EIO;
        return read_n(fd, reply, rlen, WAIT_MS);
}

/* ---- the cases ---------------------------------------------------------- */

TEST(probe_writes_ring_then_initialised_and_sends_tpm12_probe_before_connected) {
        _cleanup_(fx_done) Fx fx = {};
        bool torn = false;
        char buf[64];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, &torn));
        ASSERT_FALSE(torn);
        ASSERT_TRUE(xs_is(&fx, FE "/feature-protocol-v2", "1"));
        /* The backend is still in 1: Linux does not wait for InitWait. */
        ASSERT_TRUE(xs_is(&fx, BE "/state", "1"));
        ASSERT_OK(be_connect(&fx));
        /* First GetCapability refused as before TPM_Startup: Linux starts the TPM itself. */
        ASSERT_TRUE(be_answer_probe(&fx, true));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=3 tpm=ready\n", WAIT_MS));
        ASSERT_TRUE(xs_is(&fx, FE "/state", "3"));
        ASSERT_TRUE(read_text(&fx, "g.tcti", buf, sizeof(buf)));
        {
                char want[128];
                snprintf(want, sizeof(want), "swtpm:path=%s/g.sock", fx.dir);
                ASSERT_STREQ(buf, want);
        }
}

TEST(backend_without_protocol_v2_is_refused) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_free_ char *err = NULL;

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "2"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, NULL));
        ASSERT_OK(be_connect(&fx));
        ASSERT_TRUE(be_answer_probe(&fx, false));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "4"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "5", WAIT_MS, NULL));
        err = xs_get(&fx, ERROR_NODE);
        ASSERT_STREQ(err, "22 vTPM protocol 2 required");
}

static void forward_command(const char *wait_mode) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        uint8_t cmd[12], seen[4096], resp[64], got[64], reply[8];
        uint8_t canned[20] = { 0x80, 0x01, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
        uint32_t len;

        ASSERT_OK(fx_start(&fx, "1", wait_mode));
        ASSERT_TRUE(fx_connect(&fx));

        /* CMD_SET_LOCALITY (the swtpm TCTI sends it at init) sets the page byte. */
        ASSERT_EQ(ctrl_cmd(&fx, 0x05, (const uint8_t[]){ 3 }, 1, reply, 4), 4);
        ASSERT_EQ(tpm_be32(reply), 0);
        ASSERT_EQ(ctrl_cmd(&fx, 0x01, NULL, 0, reply, 8), 8);
        ASSERT_TRUE(tpm_be32(reply + 4) & (1u << 3)); /* PTM_CAP_SET_LOCALITY */
        ASSERT_EQ(ctrl_cmd(&fx, 0x0e, NULL, 0, reply, 4), 4); /* CMD_STOP: not supported */
        ASSERT_EQ(tpm_be32(reply), 0x0a);

        ASSERT_EQ(tpm2_build_get_random(8, cmd, sizeof(cmd)), 12);
        fd = connect_unix(&fx, "g.sock");
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, cmd, sizeof(cmd)), (ssize_t) sizeof(cmd));
        len = be_wait_command(&fx, seen, sizeof(seen));
        ASSERT_EQ(len, sizeof(cmd));
        ASSERT_MEMEQ(seen, cmd, sizeof(cmd));
        ASSERT_EQ(fx.page[TPMIF_OFF_LOCALITY], 3);
        be_respond(&fx, canned, sizeof(canned), 0);
        ASSERT_EQ(read_n(fd, got, sizeof(canned), WAIT_MS), (ssize_t) sizeof(canned));
        ASSERT_MEMEQ(got, canned, sizeof(canned));

        /* A response whose length disagrees with its TPM header is refused
         * (-EFAULT in Linux): the client gets a TPM failure, on the same connection. */
        ASSERT_EQ(write(fd, cmd, sizeof(cmd)), (ssize_t) sizeof(cmd));
        ASSERT_EQ(be_wait_command(&fx, seen, sizeof(seen)), sizeof(cmd));
        be_respond(&fx, canned, sizeof(canned), 16);
        ASSERT_EQ(read_n(fd, resp, 10, WAIT_MS), 10);
        ASSERT_EQ(tpm_be16(resp), 0x8001);
        ASSERT_EQ(tpm_be32(resp + 2), 10);
        ASSERT_EQ(tpm_be32(resp + 6), TPM2_RC_FAILURE);
}

TEST(raw_command_on_socket_goes_over_page_poll) {
        forward_command("poll");
}

TEST(raw_command_on_socket_goes_over_page_event) {
        forward_command("event");
}

TEST(timeout_cancels_and_fails_the_command) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        uint8_t cmd[12], seen[4096], resp[16];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        ASSERT_EQ(tpm2_build_get_random(8, cmd, sizeof(cmd)), 12);
        fd = connect_unix(&fx, "g.sock");
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write(fd, cmd, sizeof(cmd)), (ssize_t) sizeof(cmd));
        ASSERT_EQ(be_wait_command(&fx, seen, sizeof(seen)), sizeof(cmd));
        /* No answer: after 2 min x 0.05 the frontend cancels. */
        ASSERT_TRUE(wait_page_state(&fx, TPMIF_STATE_CANCEL, WAIT_MS));
        ASSERT_EQ(read_n(fd, resp, 10, WAIT_MS), 10);
        ASSERT_EQ(tpm_be32(resp + 6), TPM2_RC_FAILURE);
        /* The backend completes the cancel; the next command works. */
        __atomic_store_n(&fx.page[TPMIF_OFF_STATE], TPMIF_STATE_IDLE, __ATOMIC_RELEASE);
        (void) evtchn_notify(fx.evtchn, fx.port);
        ASSERT_EQ(write(fd, cmd, sizeof(cmd)), (ssize_t) sizeof(cmd));
        ASSERT_EQ(be_wait_command(&fx, seen, sizeof(seen)), sizeof(cmd));
        {
                uint8_t ok[10] = { 0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0 };
                be_respond(&fx, ok, sizeof(ok), 0);
                ASSERT_EQ(read_n(fd, resp, 10, WAIT_MS), 10);
                ASSERT_MEMEQ(resp, ok, 10);
        }
}

TEST(backend_closing_unregisters_tpm_and_closes_frontend) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        uint8_t cmd[12], buf[16];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "5"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "6", WAIT_MS, NULL));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=6 tpm=none\n", WAIT_MS));

        /* No /dev/tpm0: a command is not answered, the connection is closed. */
        ASSERT_EQ(tpm2_build_get_random(8, cmd, sizeof(cmd)), 12);
        fd = connect_unix(&fx, "g.sock");
        ASSERT_TRUE(fd >= 0);
        (void) send(fd, cmd, sizeof(cmd), MSG_NOSIGNAL);
        ASSERT_EQ(read_n(fd, buf, sizeof(buf), WAIT_MS), 0);
        ASSERT_EQ(page_state(&fx), TPMIF_STATE_FINISH); /* nothing new on the page */

        /* The backend going back to InitWait does not bring the device back. */
        ASSERT_TRUE(xs_put(&fx, BE "/state", "2"));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "4"));
        /* Barrier: a rewrite of the frontend dir in 1 is what re-probes. */
        ASSERT_TRUE(toolstack_add_vtpm(&fx, "1"));
        ASSERT_TRUE(xs_put(&fx, BE "/feature-protocol-v2", "1"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, NULL));
}

TEST(frontend_left_closed_is_not_probed) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_free_ char *ref = NULL;

        ASSERT_OK(fx_start(&fx, "6", "poll"));
        /* The guest reports what it read, so this is a barrier. */
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=6 tpm=none\n", WAIT_MS));
        ref = xs_get(&fx, FE "/ring-ref");
        ASSERT_TRUE(ref == NULL);
        ASSERT_TRUE(xs_is(&fx, FE "/state", "6"));

        /* The toolstack rewriting the dir in Initialising probes it. */
        ASSERT_TRUE(toolstack_add_vtpm(&fx, "1"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, NULL));
}

TEST(sigterm_shutdown_closes_through_closing) {
        _cleanup_(fx_done) Fx fx = {};
        char path[PATH_MAX];
        uint64_t deadline;
        int status = 0;
        pid_t r;

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        ASSERT_OK(kill(fx.guest, SIGTERM));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "5", WAIT_MS, NULL));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=5 tpm=none\n", WAIT_MS));
        /* Only the backend's Closing completes it. */
        ASSERT_TRUE(xs_put(&fx, BE "/state", "5"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "6", WAIT_MS, NULL));

        deadline = now_ms() + WAIT_MS;
        while ((r = waitpid(fx.guest, &status, WNOHANG)) == 0 && now_ms() < deadline)
                pause_ms(1);
        ASSERT_EQ(r, fx.guest);
        fx.guest = 0;
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        snprintf(path, sizeof(path), "%s/g.tcti", fx.dir);
        ASSERT_TRUE(access(path, F_OK) < 0);
}

TEST(resume_brings_a_new_ring_and_reconnects) {
        _cleanup_(fx_done) Fx fx = {};
        uint8_t *old_page;
        bool torn = false;

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        /* Keep the old mapping: the backend has not noticed anything yet. */
        old_page = fx.page;
        fx.page = NULL;

        ASSERT_OK(kill(fx.guest, SIGUSR1));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, &torn));
        ASSERT_FALSE(torn);
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=3 tpm=none\n", WAIT_MS));

        /* The probe commands go to a new page; the old one is left alone. */
        ASSERT_OK(be_connect(&fx));
        ASSERT_TRUE(fx.page != old_page);
        ASSERT_TRUE(be_answer_probe(&fx, false));
        ASSERT_EQ(old_page[TPMIF_OFF_STATE], TPMIF_STATE_FINISH);
        (void) gnttab_unmap(fx.gnttab, old_page);

        /* The backend never left Connected: the frontend goes straight to 4. */
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "4", WAIT_MS, NULL));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=4 tpm=ready\n", WAIT_MS));
}

/* Reads one TPM response (header, then the rest) from a stream. */
static ssize_t read_tpm_response(int fd, uint8_t *buf, size_t size) {
        ssize_t n = read_n(fd, buf, TPM_HEADER_SIZE, WAIT_MS);
        uint32_t len;

        if (n != TPM_HEADER_SIZE)
                return -EIO;
        len = tpm_be32(buf + 2);
        if (len < TPM_HEADER_SIZE || len > size)
                return -EBADMSG;
        n = read_n(fd, buf + TPM_HEADER_SIZE, len - TPM_HEADER_SIZE, WAIT_MS);
        if (n != (ssize_t) (len - TPM_HEADER_SIZE))
                return -EIO;
        return (ssize_t) len;
}

/* The real tool through the real swtpm TCTI: the test's backend relays every
 * command on the page to a real swtpm (TPM 2.0), like vtpmd relays to libtpms. */
TEST(tpm2_getrandom_works_through_the_tcti) {
        _cleanup_(fx_done) Fx fx = {};
        pid_t swtpm = 0, tool = 0;
        char sw_sock[PATH_MAX], sw_ctrl[PATH_MAX], sw_state[PATH_MAX], tcti[PATH_MAX], out[PATH_MAX], buf[128];
        uint64_t deadline;
        int status = -1;
        bool relayed = false;
        struct stat st;

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));

        snprintf(sw_sock, sizeof(sw_sock), "type=unixio,path=%s/swtpm.sock", fx.dir);
        snprintf(sw_ctrl, sizeof(sw_ctrl), "type=unixio,path=%s/swtpm.ctrl", fx.dir);
        snprintf(sw_state, sizeof(sw_state), "dir=%s", fx.dir);
        {
                char *argv[] = { "/usr/bin/swtpm", "socket", "--tpm2", "--server", sw_sock, "--ctrl", sw_ctrl,
                                 "--tpmstate", sw_state, "--flags", "not-need-init,startup-clear", NULL };
                char log[PATH_MAX];
                snprintf(log, sizeof(log), "%s/swtpm.log", fx.dir);
                swtpm = spawn_to(argv, log);
        }
        ASSERT_TRUE(swtpm > 0);
        snprintf(sw_sock, sizeof(sw_sock), "%s/swtpm.sock", fx.dir);
        deadline = now_ms() + WAIT_MS;
        while (stat(sw_sock, &st) < 0 && now_ms() < deadline)
                pause_ms(2);

        ASSERT_TRUE(read_text(&fx, "g.tcti", tcti, sizeof(tcti)));
        snprintf(out, sizeof(out), "%s/random.out", fx.dir);
        tool = fork();
        if (tool == 0) {
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
                        _exit(126);
                execl("/usr/bin/tpm2_getrandom", "tpm2_getrandom", "-T", tcti, "--hex", "8", (char *) NULL);
                _exit(127);
        }
        ASSERT_TRUE(tool > 0);

        deadline = now_ms() + 30000;
        while (now_ms() < deadline) {
                pid_t r = waitpid(tool, &status, WNOHANG);
                if (r == tool) {
                        tool = 0;
                        break;
                }
                if (page_state(&fx) == TPMIF_STATE_SUBMIT) {
                        uint8_t cmd[4096], resp[4096];
                        uint32_t len = be_wait_command(&fx, cmd, sizeof(cmd));
                        struct sockaddr_un sa = { .sun_family = AF_UNIX };
                        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        ssize_t n = -1;

                        if (strlen(sw_sock) < sizeof(sa.sun_path))
                                memcpy(sa.sun_path, sw_sock, strlen(sw_sock) + 1);
                        if (len > 0 && fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
                            write(fd, cmd, len) == (ssize_t) len)
                                n = read_tpm_response(fd, resp, sizeof(resp) - TPMIF_HEADER_SIZE);
                        if (n < 0) {
                                tpm_error_response(TPM_FAMILY_2_0, TPM2_RC_FAILURE, resp);
                                n = TPM_HEADER_SIZE;
                        }
                        be_respond(&fx, resp, (uint32_t) n, 0);
                        relayed = true;
                        continue;
                }
                pause_ms(1);
        }
        if (tool > 0) {
                kill(tool, SIGKILL);
                (void) waitpid(tool, NULL, 0);
        }
        stop_child(&swtpm);
        ASSERT_TRUE(relayed);
        ASSERT_TRUE(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 0);
        ASSERT_TRUE(read_text(&fx, "random.out", buf, sizeof(buf)));
        ASSERT_EQ(strlen(buf), 16);
        ASSERT_EQ(strspn(buf, "0123456789abcdef"), 16);
}

/* ---- suspend, resume, migration, CMD_INIT -------------------------------- */

static bool domain_reads(Fx *fx, uint32_t domid, bool suspended, int ms) {
        uint64_t deadline = now_ms() + (uint64_t) ms;
        DomainCtl *dc = NULL;
        bool ok = false;

        if (domainctl_open(fx->platform, &dc) < 0)
                return false;
        for (;;) {
                DomainInfo info;

                if (domainctl_info(dc, domid, &info) >= 0 && domain_info_suspended(&info) == suspended) {
                        ok = true;
                        break;
                }
                if (now_ms() >= deadline)
                        break;
                pause_ms(1);
        }
        domainctl_free(dc);
        return ok;
}

/* The toolstack's request; the guest acknowledges, sends TPM_SaveState
 * (answered here with TPM_SUCCESS), and its domain reads suspended. */
static bool fx_suspend(Fx *fx) {
        static const uint8_t save_state[10] = { 0x00, 0xc1, 0, 0, 0, 10, 0, 0, 0, 0x98 };
        char path[64];
        uint8_t cmd[4096], resp[16];

        snprintf(path, sizeof(path), "/local/domain/%u/control/shutdown", fx->domid);
        if (!xs_put(fx, path, "suspend") || !wait_xs(fx, path, "", WAIT_MS, NULL))
                return false;
        if (be_wait_command(fx, cmd, sizeof(cmd)) != sizeof(save_state) || memcmp(cmd, save_state, sizeof(save_state)))
                return false;
        be_respond(fx, resp, tpm12_response(0, NULL, 0, resp), 0);
        return domain_reads(fx, fx->domid, true, WAIT_MS);
}

static int guest_resume(Fx *fx, uint32_t domid) {
        char ctl[PATH_MAX];

        snprintf(ctl, sizeof(ctl), "%s/g.domctl", fx->dir);
        return toolstack_guest_resume(ctl, domid, WAIT_MS, NULL);
}

/* A TPM2_GetRandom written to the data socket while the guest is frozen; the
 * caller reads the answer. */
static int send_getrandom(Fx *fx) {
        uint8_t cmd[12];
        int fd = connect_unix(fx, "g.sock");

        if (fd < 0 || tpm2_build_get_random(8, cmd, sizeof(cmd)) != 12 || write(fd, cmd, sizeof(cmd)) != 12) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* The backend answers one command and the client gets the answer. */
static bool relay_one(Fx *fx, int fd) {
        static const uint8_t canned[20] = { 0x80, 0x01, 0, 0, 0, 20, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
        uint8_t cmd[4096], reply[32];

        if (be_wait_command(fx, cmd, sizeof(cmd)) != 12)
                return false;
        be_respond(fx, canned, sizeof(canned), 0);
        return read_n(fd, reply, sizeof(canned), WAIT_MS) == (ssize_t) sizeof(canned) &&
               memcmp(reply, canned, sizeof(canned)) == 0;
}

/* migrate-receive or restore: domain domid with a fresh device whose
 * backend is in InitWait. */
static bool prepare_domain(Fx *fx, uint32_t domid) {
        char p[96];

        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/feature-protocol-v2", domid);
        if (!make_domain(fx, domid) || !add_vtpm_for(fx, domid, "1") || !xs_put(fx, p, "1"))
                return false;
        snprintf(p, sizeof(p), "/local/domain/0/backend/vtpm/%u/0/state", domid);
        return xs_put(fx, p, "2");
}

/* The resume probe in domain domid up to Connected; the grant and port are
 * that domain's (the backend maps them from there). *ret_torn as wait_xs. */
static bool connect_in(Fx *fx, uint32_t domid, bool *ret_torn) {
        char fe[96], be[96];

        snprintf(fe, sizeof(fe), "/local/domain/%u/device/vtpm/0/state", domid);
        snprintf(be, sizeof(be), "/local/domain/0/backend/vtpm/%u/0/state", domid);
        fx->domid = domid;
        return wait_xs(fx, fe, "3", WAIT_MS, ret_torn) && be_connect(fx) >= 0 && be_answer_probe(fx, false) &&
               xs_put(fx, be, "4") && wait_xs(fx, fe, "4", WAIT_MS, NULL) &&
               wait_guest_state(fx, "frontend=4 tpm=ready\n", WAIT_MS);
}

TEST(suspend_acknowledges_saves_state_and_cancelled_resume_keeps_the_ring) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *ref = NULL;
        char err[PATH_MAX];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        ref = xs_get(&fx, FE "/ring-ref");
        ASSERT_TRUE(ref);
        /* Not suspended: the hypervisor cannot resume it. */
        snprintf(err, sizeof(err), "%s/g.domctl", fx.dir);
        ASSERT_EQ(toolstack_guest_resume(err, DOMID, WAIT_MS, NULL), -EPROTO);

        ASSERT_TRUE(fx_suspend(&fx));
        /* User space is frozen: a command waits and does not reach the page
         * (watched for 200 ms). */
        fd = send_getrandom(&fx);
        ASSERT_TRUE(fd >= 0);
        ASSERT_FALSE(wait_page_state(&fx, TPMIF_STATE_SUBMIT, 200));

        /* Cancelled (xl migrate failed): the same ring, nothing re-probed,
         * and the waiting command goes through. */
        ASSERT_OK(guest_resume(&fx, DOMID));
        ASSERT_TRUE(relay_one(&fx, fd));
        ASSERT_TRUE(xs_is(&fx, FE "/ring-ref", ref));
        ASSERT_TRUE(xs_is(&fx, FE "/state", "4"));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=4 tpm=ready\n", WAIT_MS));
}

TEST(resume_as_a_new_domid_probes_a_new_ring_there) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *old_ref = NULL;
        bool torn = false;

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        old_ref = xs_get(&fx, FE "/ring-ref");
        ASSERT_TRUE(fx_suspend(&fx));
        fd = send_getrandom(&fx);
        ASSERT_TRUE(fd >= 0);

        ASSERT_TRUE(prepare_domain(&fx, 10));
        ASSERT_OK(guest_resume(&fx, 10));
        /* tpmfront_resume in domain 10: a ring of its own, state 3, the probe. */
        ASSERT_TRUE(connect_in(&fx, 10, &torn));
        ASSERT_FALSE(torn);
        /* The old domain's frontend is left as it was. */
        ASSERT_TRUE(xs_is(&fx, FE "/state", "4"));
        ASSERT_TRUE(xs_is(&fx, FE "/ring-ref", old_ref));
        /* The command that waited through the migration is served in the new domain. */
        ASSERT_TRUE(relay_one(&fx, fd));
}

TEST(resumed_start_probes_like_a_restored_kernel) {
        _cleanup_(fx_done) Fx fx = {};
        const char *guest = getenv("VTPM_SIM_GUEST");
        char glog[PATH_MAX];

        /* The guest of domain 9 is gone (saved); domain 11 gets the device
         * first, then a guest started --resumed: no boot, the resume probe. */
        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        stop_child(&fx.guest);
        ASSERT_TRUE(prepare_domain(&fx, 11));
        snprintf(glog, sizeof(glog), "%s/guest.log", fx.dir);
        {
                char *argv[] = { (char *) guest, "--dir", fx.dir, "--domid", "11", "--name", "g", "--log", glog,
                                 "--timeout-scale", "0.05", "--resumed", NULL };
                fx.guest = spawn(argv);
        }
        ASSERT_TRUE(fx.guest > 0);
        ASSERT_TRUE(connect_in(&fx, 11, NULL));
}

TEST(cmd_init_power_cycles_the_device_and_answers_once_connected) {
        _cleanup_(fx_done) Fx fx = {};
        _cleanup_close_ int fd = -1;
        uint8_t msg[8], reply[4];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(fx_connect(&fx));
        fd = connect_unix(&fx, "g.sock.ctrl");
        ASSERT_TRUE(fd >= 0);
        tpm_put_be32(msg, 0x02); /* CMD_INIT */
        tpm_put_be32(msg + 4, 0);
        ASSERT_EQ(write(fd, msg, sizeof(msg)), (ssize_t) sizeof(msg));

        /* The frontend closes as at shutdown; the backend follows and goes
         * back to InitWait, as vtpmd does after its orderly reset. */
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "5", WAIT_MS, NULL));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "5"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "6", WAIT_MS, NULL));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=6 tpm=none\n", WAIT_MS));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "2"));
        /* Probed again: a new ring, the probe commands, then Connected. */
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, NULL));
        ASSERT_OK(be_connect(&fx));
        ASSERT_TRUE(be_answer_probe(&fx, false));
        ASSERT_TRUE(xs_put(&fx, BE "/state", "4"));
        ASSERT_EQ(read_n(fd, reply, 4, WAIT_MS), 4);
        ASSERT_EQ(tpm_be32(reply), 0);
        ASSERT_TRUE(xs_is(&fx, FE "/state", "4"));
        ASSERT_TRUE(wait_guest_state(&fx, "frontend=4 tpm=ready\n", WAIT_MS));
}

TEST(cmd_init_without_a_connected_device_and_cmd_shutdown_answer_an_error) {
        _cleanup_(fx_done) Fx fx = {};
        uint8_t reply[8];

        ASSERT_OK(fx_start(&fx, "1", "poll"));
        ASSERT_TRUE(wait_xs(&fx, FE "/state", "3", WAIT_MS, NULL));
        ASSERT_EQ(ctrl_cmd(&fx, 0x02, (const uint8_t[]){ 0, 0, 0, 0 }, 4, reply, 4), 4);
        ASSERT_EQ(tpm_be32(reply), 0x09); /* TPM_FAIL */
        ASSERT_EQ(ctrl_cmd(&fx, 0x03, NULL, 0, reply, 4), 4); /* CMD_SHUTDOWN: not modelled */
        ASSERT_EQ(tpm_be32(reply), 0x09);
        ASSERT_EQ(ctrl_cmd(&fx, 0x01, NULL, 0, reply, 8), 8);
        ASSERT_FALSE(tpm_be32(reply + 4) & (1u << 1)); /* no PTM_CAP_SHUTDOWN */
        ASSERT_TRUE(tpm_be32(reply + 4) & (1u << 0)); /* PTM_CAP_INIT */
}
