/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The simulated toolstack against the simulated xenstored and a fake backend:
 * the nodes, values and permissions libxl writes, and how it waits.
 *
 * Environment (meson sets it): VTPM_XENSTORED, TOOLSTACK_FAKE_BACKEND.
 */
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <xenstore.h>

#include "../common/testlib.h"
#include "domain.h"
#include "statefile.h"
#include "test.h"
#include "toolstack.h"
#include "util.h"

#define DOMID 5u
#define VTPM_UUID "2c1f0e34-9b7a-4d1e-8f3c-5a6b7c8d9e0f"
#define DOM_UUID "7e57d0c5-1111-4222-8333-444455556666"
#define BE "/local/domain/0/backend/vtpm/5/0"
#define FE "/local/domain/5/device/vtpm/0"
#define LX "/libxl/5/device/vtpm/0"
/* libxl's 10 s timeouts become 1 s here. */
#define SCALE 0.1
#define DEADLINE_MS 10000

typedef struct Env {
        char dir[64];
        char *xs_socket;
        pid_t backend;
        pid_t xenstored;
        char *backend_log;
        Toolstack *ts;
        struct xs_handle *xs; /* the test's own dom0 view */
        FILE *tslog;
        char *tslog_buf;
        size_t tslog_len;
} Env;

static void tick(void) {
        struct timespec ts = { .tv_nsec = 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) remove(path);
        return 0;
}

static pid_t spawn(char *const argv[], const char *log, const char *xs_socket) {
        pid_t pid = fork();

        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                if (xs_socket)
                        setenv("XENSTORED_PATH", xs_socket, 1);
                unsetenv("NOTIFY_SOCKET");
                execv(argv[0], argv);
                _exit(127);
        }
        return pid;
}

static bool file_has(const char *path, const char *needle) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;

        while (f && getline(&line, &cap, f) > 0)
                if (strstr(line, needle))
                        return true;
        return false;
}

/* The fake backend logs a transition right after its write commits, so the
 * toolstack may see the state before the line is in the file: poll for it,
 * with a deadline. */
static bool file_gets(const char *path, const char *needle) {
        for (int i = 0; i < 500; i++) {
                if (file_has(path, needle))
                        return true;
                (void) poll(NULL, 0, 10);
        }
        return false;
}

static char *xs_get(Env *e, const char *path) {
        unsigned len;
        return xs_read(e->xs, XBT_NULL, path, &len);
}

static bool xs_exists(Env *e, const char *path) {
        _cleanup_free_ char *v = xs_get(e, path);
        return v != NULL;
}

/* "n5,r0" style rendering of a node's permissions, like xenstore-ls -p. */
static char *perms_of(Env *e, const char *path) {
        _cleanup_free_ struct xs_permissions *p = NULL;
        unsigned n;
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        p = xs_get_permissions(e->xs, XBT_NULL, path, &n);
        if (!p)
                return NULL;
        f = open_memstream(&out, &len);
        for (unsigned i = 0; i < n; i++) {
                char c = p[i].perms == XS_PERM_NONE ? 'n'
                       : p[i].perms == XS_PERM_READ ? 'r'
                       : p[i].perms == XS_PERM_WRITE ? 'w' : 'b';
                fprintf(f, "%s%c%u", i ? "," : "", c, p[i].id);
        }
        fclose(f);
        return out;
}

static int env_start_backend(Env *e, const char *extra) {
        const char *bin = getenv("TOOLSTACK_FAKE_BACKEND");
        char *argv[] = { (char *) bin, (char *) extra, NULL };
        uint64_t deadline = now_ms() + DEADLINE_MS;

        if (!bin)
                return -ENOENT;
        e->backend = spawn(argv, e->backend_log, e->xs_socket);
        if (e->backend < 0)
                return -errno;
        while (!file_has(e->backend_log, "fake-backend: ready")) {
                if (now_ms() > deadline)
                        return -ETIMEDOUT;
                tick();
        }
        return 0;
}

/* backend: NULL = none, "" = cooperative, else an extra flag. */
static int env_setup(Env *e, const char *backend) {
        const char *xsd = getenv("VTPM_XENSTORED");
        _cleanup_free_ char *xsdir = NULL, *pidfile = NULL, *log = NULL;
        int status, r;

        *e = (Env) { .backend = -1, .xenstored = -1 };
        snprintf(e->dir, sizeof(e->dir), "/tmp/vtpm-test-toolstack-XXXXXX");
        if (!xsd || !mkdtemp(e->dir))
                return -ENOENT;
        if (asprintf(&xsdir, "%s/xenstore", e->dir) < 0 || asprintf(&pidfile, "%s/xs.pid", e->dir) < 0 ||
            asprintf(&log, "%s/xenstored.log", e->dir) < 0 ||
            asprintf(&e->xs_socket, "%s/socket", xsdir) < 0 ||
            asprintf(&e->backend_log, "%s/backend.log", e->dir) < 0)
                return -ENOMEM;
        mkdir(xsdir, 0755);
        {
                char *argv[] = { (char *) xsd, "--dir", xsdir, "--log", log, "--daemon", "--pidfile", pidfile, NULL };
                pid_t p = spawn(argv, log, NULL);
                if (p < 0 || waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        return -EIO;
        }
        {
                _cleanup_fclose_ FILE *f = fopen(pidfile, "re");
                int pid;
                if (!f || fscanf(f, "%d", &pid) != 1)
                        return -EIO;
                e->xenstored = pid;
        }
        if (backend) {
                r = env_start_backend(e, *backend ? backend : NULL);
                if (r < 0)
                        return r;
        }
        e->tslog = open_memstream(&e->tslog_buf, &e->tslog_len);
        r = toolstack_open(e->xs_socket, e->dir, SCALE, &e->ts);
        if (r < 0)
                return r;
        e->ts->log = e->tslog;
        e->xs = xs_open(0);
        return e->xs ? 0 : -errno;
}

static void env_teardown(Env *e) {
        if (e->backend > 0) {
                kill(e->backend, SIGKILL);
                (void) waitpid(e->backend, NULL, 0);
        }
        toolstack_free(e->ts);
        if (e->xs)
                xs_close(e->xs);
        if (e->xenstored > 0) {
                uint64_t deadline = now_ms() + DEADLINE_MS;
                kill(e->xenstored, SIGTERM);
                while (kill(e->xenstored, 0) == 0 && now_ms() < deadline)
                        tick();
                kill(e->xenstored, SIGKILL);
        }
        if (e->tslog)
                fclose(e->tslog);
        free(e->tslog_buf);
        if (e->dir[0] && !getenv("KEEP_SIMDIR"))
                (void) nftw(e->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(e->xs_socket);
        free(e->backend_log);
}

static const char *tslog(Env *e) {
        fflush(e->tslog);
        return e->tslog_buf ? e->tslog_buf : "";
}

#define ASSERT_NODE(e, path, value)                                   \
        do {                                                          \
                _cleanup_free_ char *_v = xs_get(e, path);            \
                ASSERT_STREQ(_v, value);                              \
        } while (0)
#define ASSERT_PERMS(e, path, value)                                  \
        do {                                                          \
                _cleanup_free_ char *_p = perms_of(e, path);          \
                ASSERT_STREQ(_p, value);                              \
        } while (0)

static void check_attach_nodes(Env *e) {
        uint32_t devid = 99;

        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_TRUE(xs_is_domain_introduced(e->xs, DOMID));
        ASSERT_NODE(e, "/local/domain/5/name", "guestA");
        ASSERT_NODE(e, "/local/domain/5/domid", "5");
        ASSERT_NODE(e, "/local/domain/5/vm", "/vm/" DOM_UUID);
        ASSERT_NODE(e, "/vm/" DOM_UUID "/name", "guestA");
        ASSERT_NODE(e, "/vm/" DOM_UUID "/uuid", DOM_UUID);
        /* libxl__domain_make: dom0-owned, the guest may read. */
        ASSERT_PERMS(e, "/local/domain/5", "n0,r5");
        ASSERT_PERMS(e, "/local/domain/5/device", "n0,r5");
        ASSERT_PERMS(e, "/local/domain/5/error", "n5");
        ASSERT_PERMS(e, "/libxl/5", "n0");

        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, &devid));
        ASSERT_EQ(devid, 0);

        ASSERT_PERMS(e, BE, "n0,r5");
        ASSERT_NODE(e, BE "/frontend", FE);
        ASSERT_NODE(e, BE "/frontend-id", "5");
        ASSERT_NODE(e, BE "/online", "1");
        ASSERT_NODE(e, BE "/state", "2"); /* the fake backend's InitWait */
        ASSERT_NODE(e, BE "/handle", "0");
        ASSERT_NODE(e, BE "/uuid", VTPM_UUID);
        ASSERT_NODE(e, BE "/resume", "False");
        ASSERT_PERMS(e, BE "/uuid", "n0,r5");

        ASSERT_PERMS(e, FE, "n5,r0");
        ASSERT_NODE(e, FE "/backend", BE);
        ASSERT_NODE(e, FE "/backend-id", "0");
        ASSERT_NODE(e, FE "/state", "1");
        ASSERT_NODE(e, FE "/handle", "0");
        ASSERT_PERMS(e, FE "/state", "n5,r0");

        ASSERT_NODE(e, LX "/frontend", FE);
        ASSERT_NODE(e, LX "/backend", BE);
        ASSERT_NODE(e, LX "/frontend-id", "5");
        ASSERT_NODE(e, LX "/online", "1");
        ASSERT_NODE(e, LX "/state", "1"); /* a copy, never updated */
        ASSERT_NODE(e, LX "/handle", "0");
        ASSERT_NODE(e, LX "/uuid", VTPM_UUID);
        ASSERT_NODE(e, LX "/resume", "False");

        /* libxl__device_nextid */
        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, "3c1f0e34-9b7a-4d1e-8f3c-5a6b7c8d9e0f", &devid));
        ASSERT_EQ(devid, 1);
        ASSERT_NODE(e, "/local/domain/0/backend/vtpm/5/1/handle", "1");
        ASSERT_NODE(e, "/local/domain/5/device/vtpm/1/handle", "1");
}

TEST(attach_writes_libxl_nodes_and_permissions) {
        Env e;
        int r = env_setup(&e, "");
        if (r < 0) {
                env_teardown(&e);
                TEST_FAIL_("setup: %s", strerror(-r));
        }
        check_attach_nodes(&e);
        env_teardown(&e);
}

static void check_no_backend(Env *e) {
        uint64_t t0;
        uint32_t devid = 99;
        int r;

        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        t0 = now_ms();
        r = toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, &devid);
        ASSERT_ERR(r, -ETIMEDOUT);
        ASSERT_TRUE(now_ms() - t0 >= 1000);
        ASSERT_TRUE(now_ms() - t0 < 5000);
        ASSERT_EQ(devid, 0);
        ASSERT_TRUE(strstr(tslog(e), "timed out waiting for backend InitWait"));
        ASSERT_TRUE(strstr(tslog(e), BE));
        /* Like libxl's hot-attach: the failed device's nodes stay... */
        ASSERT_NODE(e, BE "/state", "1");
        ASSERT_TRUE(xs_exists(e, FE));
        /* ...until the domain is destroyed, as xl create does after a failed
         * add: FORCE removal times out too, and still removes everything. */
        t0 = now_ms();
        ASSERT_ERR(toolstack_domain_destroy(e->ts, DOMID), -ETIMEDOUT);
        ASSERT_TRUE(now_ms() - t0 >= 1000);
        ASSERT_TRUE(strstr(tslog(e), "timed out waiting for backend Closed"));
        ASSERT_FALSE(xs_exists(e, BE));
        ASSERT_FALSE(xs_exists(e, "/local/domain/0/backend/vtpm/5"));
        ASSERT_FALSE(xs_exists(e, "/local/domain/5"));
        ASSERT_FALSE(xs_exists(e, "/libxl/5"));
        ASSERT_FALSE(xs_exists(e, "/vm/" DOM_UUID));
        ASSERT_FALSE(xs_is_domain_introduced(e->xs, DOMID));
}

TEST(attach_without_backend_times_out_like_libxl) {
        Env e;
        int r = env_setup(&e, NULL);
        if (r < 0) {
                env_teardown(&e);
                TEST_FAIL_("setup: %s", strerror(-r));
        }
        check_no_backend(&e);
        env_teardown(&e);
}

static void check_detach(Env *e) {
        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, NULL));
        ASSERT_OK(toolstack_vtpm_remove(e->ts, DOMID, 0, false));
        /* The backend saw online=0 and state 5 written by the toolstack and
         * answered 6, with the frontend dir still present (no force). */
        ASSERT_TRUE(file_gets(e->backend_log, "be 5/0 5 -> 6 (fe=1 online=0)"));
        ASSERT_FALSE(xs_exists(e, BE));
        ASSERT_FALSE(xs_exists(e, FE));
        ASSERT_FALSE(xs_exists(e, LX));
        /* libxl__xs_path_cleanup removes the emptied parents too. */
        ASSERT_FALSE(xs_exists(e, "/local/domain/0/backend/vtpm"));
        ASSERT_FALSE(xs_exists(e, "/local/domain/5/device/vtpm"));
        ASSERT_TRUE(xs_exists(e, "/local/domain/5"));
        ASSERT_EQ(strlen(tslog(e)), 0);
        /* The devid is free again. */
        uint32_t devid = 9;
        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, &devid));
        ASSERT_EQ(devid, 0);
        ASSERT_ERR(toolstack_vtpm_remove(e->ts, DOMID, 7, false), -ENOENT);
}

TEST(detach_writes_online_0_state_5_and_waits_for_6) {
        Env e;
        int r = env_setup(&e, "");
        if (r < 0) {
                env_teardown(&e);
                TEST_FAIL_("setup: %s", strerror(-r));
        }
        check_detach(&e);
        env_teardown(&e);
}

struct remove_job {
        Toolstack *ts;
        int r;
        uint64_t ms;
};

static void *remove_thread(void *p) {
        struct remove_job *j = p;
        uint64_t t0 = now_ms();
        j->r = toolstack_vtpm_remove(j->ts, DOMID, 0, false);
        j->ms = now_ms() - t0;
        return NULL;
}

static void check_detach_unresponsive(Env *e) {
        struct remove_job job = { .ts = e->ts };
        pthread_t th;
        uint64_t deadline;
        bool seen_closing_with_fe = false;

        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, NULL));
        ASSERT_EQ(pthread_create(&th, NULL, remove_thread, &job), 0);
        deadline = now_ms() + DEADLINE_MS;
        while (now_ms() < deadline) {
                _cleanup_free_ char *on = xs_get(e, BE "/online");
                _cleanup_free_ char *st = xs_get(e, BE "/state");
                if (on && st && streq(on, "0") && streq(st, "5")) {
                        seen_closing_with_fe = xs_exists(e, FE);
                        break;
                }
                tick();
        }
        pthread_join(th, NULL);
        ASSERT_TRUE(seen_closing_with_fe);
        /* FORCE_AUTO timed out, the forced retry timed out as well: two
         * timeouts, an error, and no nodes left behind. */
        ASSERT_ERR(job.r, -ETIMEDOUT);
        ASSERT_TRUE(job.ms >= 2000);
        ASSERT_TRUE(strstr(tslog(e), "timed out waiting for backend Closed"));
        ASSERT_FALSE(xs_exists(e, BE));
        ASSERT_FALSE(xs_exists(e, FE));
        ASSERT_FALSE(xs_exists(e, LX));
}

TEST(detach_unresponsive_backend_forces_after_timeout) {
        Env e;
        int r = env_setup(&e, "--no-close");
        if (r < 0) {
                env_teardown(&e);
                TEST_FAIL_("setup: %s", strerror(-r));
        }
        check_detach_unresponsive(&e);
        env_teardown(&e);
}

static void check_destroy(Env *e) {
        struct xs_handle *w = xs_open(0);
        struct pollfd pfd;
        uint64_t deadline;
        bool released = false;
        char **ev;

        ASSERT_TRUE(w);
        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_OK(toolstack_vtpm_add(e->ts, DOMID, VTPM_UUID, NULL));
        ASSERT_TRUE(xs_watch(w, "@releaseDomain", "rel"));
        pfd = (struct pollfd) { .fd = xs_fileno(w), .events = POLLIN };
        /* The watch's own initial fire. */
        deadline = now_ms() + DEADLINE_MS;
        while (!(ev = xs_check_watch(w)) && now_ms() < deadline)
                (void) poll(&pfd, 1, 100);
        ASSERT_TRUE(ev);
        free(ev);

        ASSERT_OK(toolstack_domain_destroy(e->ts, DOMID));
        ASSERT_TRUE(file_gets(e->backend_log, "be 5/0 5 -> 6 (fe=-1 online=0)"));
        deadline = now_ms() + DEADLINE_MS;
        while (!released && now_ms() < deadline) {
                while ((ev = xs_check_watch(w))) {
                        if (streq(ev[XS_WATCH_PATH], "@releaseDomain"))
                                released = true;
                        free(ev);
                }
                if (!released)
                        (void) poll(&pfd, 1, 100);
        }
        xs_close(w);
        ASSERT_TRUE(released);
        ASSERT_FALSE(xs_is_domain_introduced(e->xs, DOMID));
        ASSERT_FALSE(xs_exists(e, "/local/domain/5"));
        ASSERT_FALSE(xs_exists(e, "/libxl/5"));
        ASSERT_FALSE(xs_exists(e, "/vm/" DOM_UUID));
        ASSERT_FALSE(xs_exists(e, BE));
        ASSERT_TRUE(xs_exists(e, "/local/domain/0"));
        ASSERT_EQ(strlen(tslog(e)), 0);
}

TEST(destroy_forces_removal_and_fires_release_domain) {
        Env e;
        int r = env_setup(&e, "");
        if (r < 0) {
                env_teardown(&e);
                TEST_FAIL_("setup: %s", strerror(-r));
        }
        check_destroy(&e);
        env_teardown(&e);
}

/* ---- suspend, resume, rename (no backend needed) ------------------------ */

#define CONTROL "/local/domain/5/control/shutdown"

/* The guest's part of a suspend: it clears control/shutdown and makes the
 * SCHEDOP_shutdown(suspend) hypercall (its domain file). */
typedef struct FakeGuest {
        Env *e;
        bool ack;    /* false: never acknowledges */
        bool done;
} FakeGuest;

static void *fake_guest(void *p) {
        FakeGuest *fg = p;
        uint64_t deadline = now_ms() + DEADLINE_MS;

        while (now_ms() < deadline) {
                _cleanup_free_ char *v = xs_get(fg->e, CONTROL);
                DomainCtl *dc = NULL;
                DomainInfo info;

                if (!v || !streq(v, "suspend")) {
                        tick();
                        continue;
                }
                if (!fg->ack)
                        break;
                (void) xs_write(fg->e->xs, XBT_NULL, CONTROL, "", 0);
                if (domainctl_open(fg->e->ts->platform, &dc) >= 0 && domainctl_info(dc, DOMID, &info) >= 0) {
                        info.shutdown = true;
                        info.reason = DOMAIN_SHUTDOWN_SUSPEND;
                        fg->done = domain_sim_set(fg->e->ts->platform, DOMID, &info) >= 0;
                }
                domainctl_free(dc);
                break;
        }
        return NULL;
}

/* 1 suspended, 0 running, -errno unreadable. */
static int domain_suspended(Env *e, uint32_t domid, uint8_t *ret_handle) {
        DomainCtl *dc = NULL;
        DomainInfo info;
        int r = domainctl_open(e->ts->platform, &dc);

        if (r >= 0)
                r = domainctl_info(dc, domid, &info);
        domainctl_free(dc);
        if (r < 0)
                return r;
        if (ret_handle)
                memcpy(ret_handle, info.handle, sizeof(info.handle));
        return domain_info_suspended(&info) ? 1 : 0;
}

/* The hypervisor's end of DIR/NAME.domctl: one request, answered "ok". */
typedef struct FakeCtl {
        int fd;
        char line[64];
} FakeCtl;

static void *fake_ctl(void *p) {
        FakeCtl *fc = p;
        _cleanup_close_ int c = accept4(fc->fd, NULL, NULL, SOCK_CLOEXEC);
        ssize_t n;

        if (c < 0)
                return NULL;
        n = read(c, fc->line, sizeof(fc->line) - 1);
        if (n > 0)
                fc->line[n] = '\0';
        (void) !write(c, "ok\n", 3);
        return NULL;
}

static void check_suspend_resume(Env *e) {
        FakeGuest fg = { .e = e, .ack = true };
        FakeCtl fc = { .fd = -1 };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        uint8_t handle[DOMAIN_HANDLE_SIZE], want[DOMAIN_HANDLE_SIZE];
        pthread_t th;

        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        /* The hypervisor knows the domain, running, with its handle. */
        ASSERT_EQ(domain_suspended(e, DOMID, handle), 0);
        ASSERT_OK(statefile_uuid_from_string(DOM_UUID, want));
        ASSERT_MEMEQ(handle, want, sizeof(want));

        ASSERT_EQ(pthread_create(&th, NULL, fake_guest, &fg), 0);
        ASSERT_OK(toolstack_domain_suspend(e->ts, DOMID));
        pthread_join(th, NULL);
        ASSERT_TRUE(fg.done);
        ASSERT_NODE(e, CONTROL, "");
        ASSERT_EQ(domain_suspended(e, DOMID, NULL), 1);

        /* libxl_domain_resume(suspend_cancel): running again, and the guest
         * told to continue in its own domain. */
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/g.domctl", e->dir);
        fc.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(fc.fd >= 0);
        ASSERT_OK(bind(fc.fd, (struct sockaddr *) &sa, sizeof(sa)));
        ASSERT_OK(listen(fc.fd, 1));
        ASSERT_EQ(pthread_create(&th, NULL, fake_ctl, &fc), 0);
        ASSERT_OK(toolstack_domain_resume(e->ts, DOMID, sa.sun_path));
        pthread_join(th, NULL);
        close(fc.fd);
        ASSERT_STREQ(fc.line, "resume 5\n");
        ASSERT_EQ(domain_suspended(e, DOMID, NULL), 0);
        ASSERT_EQ(strlen(tslog(e)), 0);

        /* Destroy removes the domain file. */
        ASSERT_OK(toolstack_domain_destroy(e->ts, DOMID));
        ASSERT_EQ(domain_suspended(e, DOMID, NULL), -ENOENT);
}

static void check_suspend_no_ack(Env *e) {
        FakeGuest fg = { .e = e, .ack = false };
        pthread_t th;

        e->ts->suspend_ack_timeout_ms = 300;
        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_EQ(pthread_create(&th, NULL, fake_guest, &fg), 0);
        ASSERT_EQ(toolstack_domain_suspend(e->ts, DOMID), -ETIMEDOUT);
        pthread_join(th, NULL);
        /* The request is withdrawn and the domain still runs. */
        ASSERT_NODE(e, CONTROL, "");
        ASSERT_EQ(domain_suspended(e, DOMID, NULL), 0);
        ASSERT_TRUE(strstr(tslog(e), "guest didn't acknowledge suspend, cancelling request"));
}

static void check_rename(Env *e) {
        uint32_t d = 0;

        ASSERT_OK(toolstack_domain_create(e->ts, DOMID, "guestA", DOM_UUID));
        ASSERT_OK(toolstack_domain_create(e->ts, 6, "guestB", "7e57d0c5-1111-4222-8333-444455556667"));
        ASSERT_OK(toolstack_domain_by_name(e->ts, "guestB", &d));
        ASSERT_EQ(d, 6);
        ASSERT_EQ(toolstack_domain_by_name(e->ts, "nobody", &d), -ENOENT);

        ASSERT_EQ(toolstack_domain_rename(e->ts, DOMID, "guestA", "guestB"), -EEXIST);
        ASSERT_TRUE(strstr(tslog(e), "domain with name \"guestB\" already exists."));
        ASSERT_EQ(toolstack_domain_rename(e->ts, DOMID, "wrong", "guestC"), -EINVAL);
        ASSERT_NODE(e, "/local/domain/5/name", "guestA");

        ASSERT_OK(toolstack_domain_rename(e->ts, DOMID, "guestA", "guestA--migratedaway"));
        ASSERT_NODE(e, "/local/domain/5/name", "guestA--migratedaway");
        ASSERT_NODE(e, "/vm/" DOM_UUID "/name", "guestA--migratedaway");
        ASSERT_OK(toolstack_domain_by_name(e->ts, "guestA--migratedaway", &d));
        ASSERT_EQ(d, DOMID);
        ASSERT_EQ(toolstack_domain_by_name(e->ts, "guestA", &d), -ENOENT);
}

#define ENV_TEST(name, backend, check)                                  \
        TEST(name) {                                                    \
                Env e;                                                  \
                int r = env_setup(&e, backend);                         \
                if (r < 0) {                                            \
                        env_teardown(&e);                               \
                        TEST_FAIL_("setup: %s", strerror(-r));          \
                }                                                       \
                check(&e);                                              \
                env_teardown(&e);                                       \
        }

ENV_TEST(suspend_waits_for_ack_and_suspended_domain_and_resume_runs_it, NULL, check_suspend_resume)
ENV_TEST(suspend_without_ack_is_withdrawn_after_the_timeout, NULL, check_suspend_no_ack)
ENV_TEST(rename_refuses_a_name_in_use_and_renames_both_nodes, NULL, check_rename)
