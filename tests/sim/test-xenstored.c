/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Drives vtpm-xenstored with the real libxenstore: dom0 through XSDIR/socket,
 * guests through XSDIR/domain-<domid>.sock. Each case starts its own daemon
 * in its own temporary directory. VTPM_XENSTORED names the binary.
 */
#include <fcntl.h>
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

#include "test.h"

static char dir[64];
static pid_t daemon_pid;

static int streq_(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static long long now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* A daemon reparented to a non-reaping init stays a zombie: count it dead. */
static bool alive(pid_t pid) {
        char path[64], buf[256], *p;
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        f = fopen(path, "re");
        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        p = strrchr(buf, ')');
        return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void stop_daemon(void) {
        char cmd[128];

        if (daemon_pid > 0) {
                long long deadline = now_ms() + 5000;

                kill(daemon_pid, SIGTERM);
                while (alive(daemon_pid) && now_ms() < deadline)
                        poll(NULL, 0, 10);
                if (alive(daemon_pid))
                        kill(daemon_pid, SIGKILL);
                daemon_pid = 0;
        }
        if (dir[0]) {
                snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
                if (system(cmd) != 0)
                        fprintf(stderr, "could not remove %s\n", dir);
                dir[0] = 0;
        }
}

/* Starts a fresh daemon; any daemon a failed case left behind is stopped. */
static int start_daemon(void) {
        const char *bin = getenv("VTPM_XENSTORED");
        char logp[96], pidp[96];
        int status;
        pid_t p;
        FILE *f;

        stop_daemon();
        if (!bin)
                return -ENOENT;
        snprintf(dir, sizeof(dir), "/tmp/test-xenstored.XXXXXX");
        if (!mkdtemp(dir))
                return -errno;
        snprintf(logp, sizeof(logp), "%s/log", dir);
        snprintf(pidp, sizeof(pidp), "%s/pid", dir);
        p = fork();
        if (p < 0)
                return -errno;
        if (p == 0) {
                execl(bin, bin, "--dir", dir, "--log", logp, "--daemon", "--pidfile", pidp, (char *) NULL);
                _exit(127);
        }
        if (waitpid(p, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        f = fopen(pidp, "re");
        if (!f)
                return -errno;
        if (fscanf(f, "%d", &daemon_pid) != 1)
                daemon_pid = 0;
        fclose(f);
        return daemon_pid > 0 ? 0 : -EIO;
}

__attribute__((destructor)) static void cleanup_at_exit(void) {
        stop_daemon();
}

/* A meson timeout (SIGTERM) or a crash must not leave a daemon behind. */
static void on_fatal_signal(int sig) {
        if (daemon_pid > 0)
                kill(daemon_pid, SIGKILL);
        signal(sig, SIG_DFL);
        raise(sig);
}

__attribute__((constructor)) static void install_signal_handlers(void) {
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGSEGV, SIGABRT, SIGBUS };

        signal(SIGPIPE, SIG_IGN); /* raw sockets: a dropped peer is EPIPE */
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                signal(sigs[i], on_fatal_signal);
}

static struct xs_handle *open_path(const char *name) {
        char path[128];

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        setenv("XENSTORED_PATH", path, 1);
        return xs_open(0);
}

static struct xs_handle *open_dom0(void) {
        return open_path("socket");
}

static struct xs_handle *open_domain(unsigned domid) {
        char name[32];

        snprintf(name, sizeof(name), "domain-%u.sock", domid);
        return open_path(name);
}

static bool sock_exists(unsigned domid) {
        char path[128];
        struct stat st;

        snprintf(path, sizeof(path), "%s/domain-%u.sock", dir, domid);
        return stat(path, &st) == 0;
}

static bool wr(struct xs_handle *h, const char *path, const char *v) {
        return xs_write(h, XBT_NULL, path, v, strlen(v));
}

/* Reads a value as a string; NULL with errno set on failure. */
static char *rd(struct xs_handle *h, const char *path) {
        unsigned len;

        return xs_read(h, XBT_NULL, path, &len);
}

static bool value_is(struct xs_handle *h, const char *path, const char *want) {
        char *v = rd(h, path);
        bool ok = v && streq_(v, want);

        free(v);
        return ok;
}

static bool set_perms(struct xs_handle *h, const char *path, const char *spec) {
        struct xs_permissions p[8];
        unsigned n = 0;
        char buf[128], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", spec);
        for (char *t = strtok_r(buf, " ", &save); t && n < 8; t = strtok_r(NULL, " ", &save)) {
                if (!xs_strings_to_perms(&p[n], 1, t))
                        return false;
                n++;
        }
        return xs_set_permissions(h, XBT_NULL, path, p, n);
}

/* First perm entry as a string ("n5"), or "" on failure. */
static const char *owner_of(struct xs_handle *h, const char *path) {
        static char out[32];
        struct xs_permissions *p;
        unsigned n;

        out[0] = 0;
        p = xs_get_permissions(h, XBT_NULL, path, &n);
        if (p && n > 0)
                snprintf(out, sizeof(out), "%c%u", "nrwb"[p[0].perms & (XS_PERM_READ | XS_PERM_WRITE)],
                         p[0].id);
        free(p);
        return out;
}

/* Next watch event within timeout_ms: returns true and copies path/token. */
static bool next_event(struct xs_handle *h, int timeout_ms, char *path, size_t plen, char *tok, size_t tlen) {
        long long deadline = now_ms() + timeout_ms;
        int fd = xs_fileno(h);

        for (;;) {
                char **ev = xs_check_watch(h);
                long long left;

                if (ev) {
                        snprintf(path, plen, "%s", ev[XS_WATCH_PATH]);
                        snprintf(tok, tlen, "%s", ev[XS_WATCH_TOKEN]);
                        free(ev);
                        return true;
                }
                left = deadline - now_ms();
                if (left <= 0)
                        return false;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                poll(&pfd, 1, (int) left);
        }
}

/* Waits for an event with exactly this path and token, skipping others. */
static bool wait_event(struct xs_handle *h, const char *want_path, const char *want_tok) {
        char p[256], t[64];

        while (next_event(h, 5000, p, sizeof(p), t, sizeof(t)))
                if (streq_(p, want_path) && streq_(t, want_tok))
                        return true;
        return false;
}

/* Collects events until the sync token arrives (the caller triggers it after
 * the action under test, so anything the action caused has arrived by then).
 * Returns how many events with token tok came in before it. */
static int events_before_sync(struct xs_handle *h, const char *tok, const char *sync_tok) {
        char p[256], t[64];
        int n = 0;

        while (next_event(h, 5000, p, sizeof(p), t, sizeof(t))) {
                if (streq_(t, sync_tok))
                        return n;
                if (streq_(t, tok))
                        n++;
        }
        return -1;
}

static bool introduce(struct xs_handle *h0, unsigned domid) {
        return xs_introduce_domain(h0, domid, 0x1000 + domid, 1);
}

/* What libxl does for a new guest: /local/domain/<d> readable by it, with a
 * few subdirectories it owns. */
static bool make_guest_home(struct xs_handle *h0, unsigned domid) {
        char path[64], perms[32];

        snprintf(path, sizeof(path), "/local/domain/%u", domid);
        snprintf(perms, sizeof(perms), "n0 r%u", domid);
        if (!xs_mkdir(h0, XBT_NULL, path) || !set_perms(h0, path, perms))
                return false;
        snprintf(path, sizeof(path), "/local/domain/%u/data", domid);
        snprintf(perms, sizeof(perms), "n%u", domid);
        return xs_mkdir(h0, XBT_NULL, path) && set_perms(h0, path, perms);
}

TEST(initial_tree) {
        struct xs_handle *h;
        char **d;
        unsigned n;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(value_is(h, "/local/domain/0/name", "Domain-0"));
        ASSERT_TRUE(value_is(h, "/local/domain/0/domid", "0"));
        ASSERT_STREQ(owner_of(h, "/"), "n0");
        ASSERT_STREQ(owner_of(h, "/local/domain/0"), "n0");
        d = xs_directory(h, XBT_NULL, "/", &n);
        ASSERT_TRUE(d);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(d[0], "tool");
        ASSERT_STREQ(d[1], "local");
        ASSERT_STREQ(d[2], "vm");
        free(d);
        /* socket clients resolve relative paths against dom0's home */
        ASSERT_TRUE(value_is(h, "name", "Domain-0"));
        xs_close(h);
}

TEST(read_write_mkdir_rm_directory) {
        struct xs_handle *h;
        char **d, *v;
        unsigned n, len;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(wr(h, "/a/b/c", "hello"));
        ASSERT_TRUE(value_is(h, "/a/b/c", "hello"));
        ASSERT_TRUE(value_is(h, "/a/b", "")); /* parents created empty */
        ASSERT_TRUE(xs_write(h, XBT_NULL, "/a/bin", "x\0y", 3));
        v = xs_read(h, XBT_NULL, "/a/bin", &len);
        ASSERT_TRUE(v);
        ASSERT_EQ(len, 3);
        ASSERT_MEMEQ(v, "x\0y", 3);
        free(v);
        ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/a/b")); /* existing: fine, value kept */
        ASSERT_TRUE(xs_mkdir(h, XBT_NULL, "/a/m"));
        d = xs_directory(h, XBT_NULL, "/a", &n);
        ASSERT_TRUE(d);
        ASSERT_EQ(n, 3);
        ASSERT_STREQ(d[0], "b"); /* creation order */
        ASSERT_STREQ(d[1], "bin");
        ASSERT_STREQ(d[2], "m");
        free(d);
        ASSERT_TRUE(rd(h, "/nope") == NULL);
        ASSERT_EQ(errno, ENOENT);
        ASSERT_TRUE(xs_rm(h, XBT_NULL, "/a/b"));
        ASSERT_TRUE(rd(h, "/a/b/c") == NULL);
        ASSERT_EQ(errno, ENOENT);
        ASSERT_TRUE(xs_rm(h, XBT_NULL, "/a/missing")); /* parent exists: OK */
        ASSERT_FALSE(xs_rm(h, XBT_NULL, "/nope/missing"));
        ASSERT_EQ(errno, ENOENT);
        ASSERT_FALSE(xs_rm(h, XBT_NULL, "/"));
        ASSERT_EQ(errno, EINVAL);
        ASSERT_FALSE(wr(h, "/bad//path", "x"));
        ASSERT_EQ(errno, EINVAL);
        ASSERT_FALSE(wr(h, "/bad path", "x"));
        ASSERT_EQ(errno, EINVAL);
        xs_close(h);
}

TEST(long_directory_uses_directory_part) {
        struct xs_handle *h;
        char path[128], **d;
        unsigned n;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        /* 200 names of 40 bytes: far more than one 4096-byte reply */
        for (int i = 0; i < 200; i++) {
                snprintf(path, sizeof(path), "/big/child-%04d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
                ASSERT_TRUE(xs_mkdir(h, XBT_NULL, path));
        }
        d = xs_directory(h, XBT_NULL, "/big", &n);
        ASSERT_TRUE(d);
        ASSERT_EQ(n, 200);
        ASSERT_STREQ(d[199], "child-0199-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        free(d);
        xs_close(h);
}

TEST(guest_permissions) {
        struct xs_handle *h0, *g;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        ASSERT_TRUE(introduce(h0, 5));
        ASSERT_TRUE(make_guest_home(h0, 5));
        ASSERT_TRUE(wr(h0, "/local/domain/0/backend/vtpm/5/0/state", "2"));
        ASSERT_TRUE(set_perms(h0, "/local/domain/0/backend/vtpm/5/0/state", "n0 r5"));
        ASSERT_TRUE(g = open_domain(5));

        /* dom0-owned nodes: no access */
        ASSERT_TRUE(rd(g, "/local/domain/0/name") == NULL);
        ASSERT_EQ(errno, EACCES);
        ASSERT_FALSE(wr(g, "/tool/x", "1"));
        ASSERT_EQ(errno, EACCES);
        /* a missing node under an unreadable parent is EACCES, not ENOENT */
        ASSERT_TRUE(rd(g, "/local/domain/0/nonexistent") == NULL);
        ASSERT_EQ(errno, EACCES);
        /* backend node with r5: readable, not writable */
        ASSERT_TRUE(value_is(g, "/local/domain/0/backend/vtpm/5/0/state", "2"));
        ASSERT_FALSE(wr(g, "/local/domain/0/backend/vtpm/5/0/state", "4"));
        ASSERT_EQ(errno, EACCES);
        /* its home is read-only, its data dir is its own */
        ASSERT_FALSE(wr(g, "/local/domain/5/foo", "1"));
        ASSERT_EQ(errno, EACCES);
        ASSERT_TRUE(wr(g, "/local/domain/5/data/x", "1"));
        ASSERT_STREQ(owner_of(h0, "/local/domain/5/data/x"), "n5");
        /* dom0 writing under a guest-owned dir: the node stays the guest's */
        ASSERT_TRUE(wr(h0, "/local/domain/5/data/fromdom0", "1"));
        ASSERT_STREQ(owner_of(h0, "/local/domain/5/data/fromdom0"), "n5");
        ASSERT_TRUE(value_is(g, "/local/domain/5/data/fromdom0", "1"));
        /* a guest may not give its node away */
        ASSERT_FALSE(set_perms(g, "/local/domain/5/data/x", "n0"));
        ASSERT_EQ(errno, EPERM);
        ASSERT_TRUE(set_perms(g, "/local/domain/5/data/x", "n5 r0"));
        /* privileged operations */
        ASSERT_FALSE(introduce(g, 6));
        ASSERT_EQ(errno, EACCES);
        ASSERT_FALSE(xs_release_domain(g, 5));
        ASSERT_EQ(errno, EACCES);
        xs_close(g);
        xs_close(h0);
}

TEST(guest_entry_quota) {
        struct xs_handle *h0, *g;
        char big[2100];

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        ASSERT_TRUE(introduce(h0, 5));
        ASSERT_TRUE(make_guest_home(h0, 5));
        ASSERT_TRUE(g = open_domain(5));
        memset(big, 'v', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT_FALSE(wr(g, "/local/domain/5/data/big", big));
        ASSERT_EQ(errno, ENOSPC);
        ASSERT_TRUE(rd(h0, "/local/domain/5/data/big") == NULL);
        ASSERT_TRUE(wr(h0, "/local/domain/5/data/big", big)); /* dom0 has no quota */
        xs_close(g);
        xs_close(h0);
}

TEST(relative_paths_from_guest) {
        struct xs_handle *h0, *g;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        ASSERT_TRUE(introduce(h0, 7));
        ASSERT_TRUE(make_guest_home(h0, 7));
        ASSERT_TRUE(g = open_domain(7));
        ASSERT_TRUE(wr(g, "data/rel", "r"));
        ASSERT_TRUE(value_is(h0, "/local/domain/7/data/rel", "r"));
        ASSERT_TRUE(value_is(g, "data/rel", "r"));
        ASSERT_TRUE(xs_watch(g, "data", "rel"));
        ASSERT_TRUE(wait_event(g, "data", "rel")); /* initial fire, relative */
        ASSERT_TRUE(wr(h0, "/local/domain/7/data/other", "o"));
        ASSERT_TRUE(wait_event(g, "data/other", "rel"));
        xs_close(g);
        xs_close(h0);
}

TEST(watch_fire_write_rm_unwatch) {
        struct xs_handle *h, *w;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(w = open_dom0());
        ASSERT_TRUE(wr(h, "/w/x/y", "1"));
        ASSERT_TRUE(xs_watch(w, "/w", "top"));
        ASSERT_TRUE(wait_event(w, "/w", "top")); /* fires once at once */
        ASSERT_TRUE(xs_watch(w, "/w/x/y", "deep"));
        ASSERT_TRUE(wait_event(w, "/w/x/y", "deep"));
        ASSERT_TRUE(xs_watch(w, "/sync", "sync"));
        ASSERT_TRUE(wait_event(w, "/sync", "sync"));

        ASSERT_TRUE(wr(h, "/w/new", "1"));
        ASSERT_TRUE(wait_event(w, "/w/new", "top"));
        /* removing a parent fires the watch on the removed child itself */
        ASSERT_TRUE(xs_rm(h, XBT_NULL, "/w/x"));
        ASSERT_TRUE(wait_event(w, "/w/x/y", "deep"));
        ASSERT_TRUE(wait_event(w, "/w/x", "top"));

        ASSERT_TRUE(xs_unwatch(w, "/w", "top"));
        ASSERT_TRUE(wr(h, "/w/after", "1"));
        ASSERT_TRUE(wr(h, "/sync", "1"));
        ASSERT_EQ(events_before_sync(w, "top", "sync"), 0);
        xs_close(w);
        xs_close(h);
}

TEST(watch_not_delivered_without_read_permission) {
        struct xs_handle *h0, *g;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        ASSERT_TRUE(introduce(h0, 5));
        ASSERT_TRUE(make_guest_home(h0, 5));
        ASSERT_TRUE(g = open_domain(5));
        ASSERT_TRUE(xs_watch(g, "/local/domain/0", "spy"));
        ASSERT_TRUE(wait_event(g, "/local/domain/0", "spy")); /* the initial fire is unconditional */
        ASSERT_TRUE(xs_watch(g, "/local/domain/5/data", "sync"));
        ASSERT_TRUE(wait_event(g, "/local/domain/5/data", "sync"));
        ASSERT_TRUE(wr(h0, "/local/domain/0/secret", "s"));
        ASSERT_TRUE(wr(h0, "/local/domain/5/data/tick", "1"));
        ASSERT_EQ(events_before_sync(g, "spy", "sync"), 0);
        /* made readable: delivered */
        ASSERT_TRUE(wr(h0, "/local/domain/0/open", "o"));
        ASSERT_TRUE(set_perms(h0, "/local/domain/0/open", "n0 r5"));
        ASSERT_TRUE(wait_event(g, "/local/domain/0/open", "spy"));
        xs_close(g);
        xs_close(h0);
}

TEST(transactions) {
        struct xs_handle *h, *w;
        xs_transaction_t t1, t2, t3;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(w = open_dom0());
        ASSERT_TRUE(wr(h, "/tx/a", "0"));
        ASSERT_TRUE(wr(h, "/tx/c", "0"));
        ASSERT_TRUE(wr(h, "/tx/d", "0"));

        /* conflict: t1 read /tx/a, somebody else changed it */
        ASSERT_TRUE((t1 = xs_transaction_start(h)) != XBT_NULL);
        free(xs_read(h, t1, "/tx/a", &(unsigned){ 0 }));
        ASSERT_TRUE(xs_write(h, t1, "/tx/b", "1", 1));
        ASSERT_TRUE(wr(w, "/tx/a", "changed"));
        ASSERT_FALSE(xs_transaction_end(h, t1, false));
        ASSERT_EQ(errno, EAGAIN);
        ASSERT_TRUE(rd(h, "/tx/b") == NULL);

        /* no conflict between transactions on unrelated nodes */
        ASSERT_TRUE((t2 = xs_transaction_start(h)) != XBT_NULL);
        ASSERT_TRUE((t3 = xs_transaction_start(w)) != XBT_NULL);
        ASSERT_TRUE(xs_write(h, t2, "/tx/c", "2", 1));
        ASSERT_TRUE(xs_write(w, t3, "/tx/d", "3", 1));
        ASSERT_TRUE(value_is(h, "/tx/c", "0")); /* invisible outside until commit */
        ASSERT_TRUE(xs_transaction_end(h, t2, false));
        ASSERT_TRUE(xs_transaction_end(w, t3, false));
        ASSERT_TRUE(value_is(h, "/tx/c", "2"));
        ASSERT_TRUE(value_is(h, "/tx/d", "3"));

        /* watch events of a transaction fire at commit, not before */
        ASSERT_TRUE(xs_watch(w, "/tx/c", "c"));
        ASSERT_TRUE(wait_event(w, "/tx/c", "c"));
        ASSERT_TRUE(xs_watch(w, "/sync", "sync"));
        ASSERT_TRUE(wait_event(w, "/sync", "sync"));
        ASSERT_TRUE((t1 = xs_transaction_start(h)) != XBT_NULL);
        ASSERT_TRUE(xs_write(h, t1, "/tx/c", "4", 1));
        ASSERT_TRUE(wr(h, "/sync", "1"));
        ASSERT_EQ(events_before_sync(w, "c", "sync"), 0);
        ASSERT_TRUE(xs_transaction_end(h, t1, false));
        ASSERT_TRUE(wait_event(w, "/tx/c", "c"));

        /* an aborted transaction leaves nothing behind */
        ASSERT_TRUE((t1 = xs_transaction_start(h)) != XBT_NULL);
        ASSERT_TRUE(xs_write(h, t1, "/tx/gone", "1", 1));
        ASSERT_TRUE(xs_transaction_end(h, t1, true));
        ASSERT_TRUE(rd(h, "/tx/gone") == NULL);
        xs_close(w);
        xs_close(h);
}

TEST(get_domain_path) {
        struct xs_handle *h;
        char *p;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        p = xs_get_domain_path(h, 7);
        ASSERT_STREQ(p, "/local/domain/7");
        free(p);
        xs_close(h);
}

TEST(introduce_release) {
        struct xs_handle *h0, *w, *g;
        char *v;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        ASSERT_TRUE(w = open_dom0());
        ASSERT_TRUE(xs_watch(w, "@introduceDomain", "intro"));
        ASSERT_TRUE(wait_event(w, "@introduceDomain", "intro"));
        ASSERT_TRUE(xs_watch(w, "@releaseDomain", "rel"));
        ASSERT_TRUE(wait_event(w, "@releaseDomain", "rel"));
        ASSERT_TRUE(xs_watch(w, "/local/domain/9", "home"));
        ASSERT_TRUE(wait_event(w, "/local/domain/9", "home"));

        ASSERT_TRUE(xs_is_domain_introduced(h0, 0));
        ASSERT_FALSE(xs_is_domain_introduced(h0, 9));
        ASSERT_FALSE(sock_exists(9));
        ASSERT_TRUE(introduce(h0, 9));
        ASSERT_TRUE(wait_event(w, "@introduceDomain", "intro"));
        ASSERT_TRUE(xs_is_domain_introduced(h0, 9));
        ASSERT_TRUE(sock_exists(9));

        /* libxl gives the guest its home; nodes it owns go away with it */
        ASSERT_TRUE(xs_mkdir(h0, XBT_NULL, "/local/domain/9"));
        ASSERT_TRUE(set_perms(h0, "/local/domain/9", "n9"));
        ASSERT_TRUE(g = open_domain(9));
        ASSERT_TRUE(wr(g, "/local/domain/9/hello", "1"));
        ASSERT_TRUE(xs_watch(w, "/sync", "sync"));
        ASSERT_TRUE(wait_event(w, "/sync", "sync")); /* everything before is consumed */

        ASSERT_TRUE(xs_release_domain(h0, 9));
        /* its nodes are removed first, then @releaseDomain fires */
        ASSERT_TRUE(wait_event(w, "/local/domain/9", "home"));
        ASSERT_TRUE(wait_event(w, "@releaseDomain", "rel"));
        ASSERT_FALSE(xs_is_domain_introduced(h0, 9));
        ASSERT_FALSE(sock_exists(9));
        ASSERT_TRUE(rd(h0, "/local/domain/9") == NULL);
        ASSERT_EQ(errno, ENOENT);
        /* the guest's connection is gone */
        v = rd(g, "/local/domain/9/hello");
        ASSERT_TRUE(v == NULL);
        xs_close(g);
        /* releasing an unknown domain */
        ASSERT_FALSE(xs_release_domain(h0, 9));
        ASSERT_EQ(errno, ENOENT);
        xs_close(w);
        xs_close(h0);
}

/* ---- raw wire ---- */

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/socket", dir);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

static bool raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t len, const void *p, size_t plen) {
        uint32_t hdr[4] = { type, req_id, 0, len };

        return write(fd, hdr, sizeof(hdr)) == (ssize_t) sizeof(hdr) &&
               (plen == 0 || write(fd, p, plen) == (ssize_t) plen);
}

/* Reads one reply; returns its payload length or -1. */
static int raw_recv(int fd, uint32_t hdr[4], char *p, size_t psize) {
        size_t got = 0;

        while (got < 16) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (poll(&pfd, 1, 5000) <= 0)
                        return -1;
                n = read(fd, (char *) hdr + got, 16 - got);
                if (n <= 0)
                        return -1;
                got += (size_t) n;
        }
        if (hdr[3] > psize)
                return -1;
        for (got = 0; got < hdr[3];) {
                ssize_t n = read(fd, p + got, hdr[3] - got);

                if (n <= 0)
                        return -1;
                got += (size_t) n;
        }
        return (int) hdr[3];
}

static bool raw_closed(int fd) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char c;

        return poll(&pfd, 1, 5000) == 1 && read(fd, &c, 1) == 0;
}

TEST(raw_errors_echo_request) {
        uint32_t hdr[4];
        char p[4096];
        int fd;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE((fd = raw_connect()) >= 0);
        /* unknown type: ENOSYS, like 4.17 */
        ASSERT_TRUE(raw_send(fd, 20, 41, 1, "", 1));
        ASSERT_EQ(raw_recv(fd, hdr, p, sizeof(p)), 7);
        ASSERT_EQ(hdr[0], XS_ERROR);
        ASSERT_EQ(hdr[1], 41);
        ASSERT_STREQ(p, "ENOSYS");
        /* missing NUL */
        ASSERT_TRUE(raw_send(fd, XS_READ, 42, 2, "/a", 2));
        ASSERT_EQ(raw_recv(fd, hdr, p, sizeof(p)), 7);
        ASSERT_EQ(hdr[1], 42);
        ASSERT_STREQ(p, "EINVAL");
        /* unknown transaction */
        {
                uint32_t h2[4] = { XS_READ, 43, 99, 3 };
                ASSERT_TRUE(write(fd, h2, 16) == 16 && write(fd, "/a", 3) == 3);
        }
        ASSERT_EQ(raw_recv(fd, hdr, p, sizeof(p)), 7);
        ASSERT_EQ(hdr[1], 43);
        ASSERT_EQ(hdr[2], 99);
        ASSERT_STREQ(p, "ENOENT");
        /* a good request still works, reply type echoes the request */
        ASSERT_TRUE(raw_send(fd, XS_READ, 44, 21, "/local/domain/0/name", 21));
        ASSERT_EQ(raw_recv(fd, hdr, p, sizeof(p)), 8);
        ASSERT_EQ(hdr[0], XS_READ);
        ASSERT_EQ(hdr[1], 44);
        ASSERT_MEMEQ(p, "Domain-0", 8);
        close(fd);
}

TEST(oversized_frame_closes_only_that_connection) {
        struct xs_handle *h;
        int bad;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(wr(h, "/before", "1"));
        ASSERT_TRUE((bad = raw_connect()) >= 0);
        ASSERT_TRUE(raw_send(bad, XS_WRITE, 1, XENSTORE_PAYLOAD_MAX + 1, NULL, 0));
        ASSERT_TRUE(raw_closed(bad));
        close(bad);
        ASSERT_TRUE(wr(h, "/after", "1"));
        ASSERT_TRUE(value_is(h, "/before", "1"));
        xs_close(h);
}

TEST(sigterm_removes_sockets) {
        struct xs_handle *h;
        char path[128];
        struct stat st;
        long long deadline;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        ASSERT_TRUE(introduce(h, 3));
        xs_close(h);
        ASSERT_TRUE(sock_exists(3));
        kill(daemon_pid, SIGTERM);
        deadline = now_ms() + 5000;
        while (alive(daemon_pid) && now_ms() < deadline)
                poll(NULL, 0, 10);
        ASSERT_FALSE(alive(daemon_pid));
        daemon_pid = 0;
        snprintf(path, sizeof(path), "%s/socket", dir);
        ASSERT_TRUE(stat(path, &st) < 0);
        ASSERT_FALSE(sock_exists(3));
}

TEST(client_that_never_reads_is_dropped_not_waited_for) {
        struct xs_handle *h;
        char big[4000], req[32 + 16];
        uint32_t hdr[4] = { XS_READ, 0, 0, 5 };
        long long deadline;
        int fd;

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h = open_dom0());
        memset(big, 'b', sizeof(big));
        ASSERT_TRUE(xs_write(h, XBT_NULL, "/big", big, sizeof(big)));
        ASSERT_TRUE((fd = raw_connect()) >= 0);
        /* pipeline 4000-byte replies and never read them */
        memcpy(req, hdr, 16);
        memcpy(req + 16, "/big", 5);
        for (int i = 0; i < 3000; i++) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };

                if (poll(&pfd, 1, 5000) != 1 || send(fd, req, 21, MSG_NOSIGNAL) != 21)
                        break; /* dropped already */
        }
        /* meanwhile the daemon keeps serving others */
        ASSERT_TRUE(wr(h, "/alive", "1"));
        /* and the reader-less client is eventually cut off */
        deadline = now_ms() + 10000;
        for (;;) {
                char buf[65536];
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                ssize_t n;

                ASSERT_TRUE(now_ms() < deadline);
                if (poll(&pfd, 1, 1000) != 1)
                        continue;
                n = read(fd, buf, sizeof(buf));
                if (n <= 0)
                        break;
        }
        close(fd);
        ASSERT_TRUE(value_is(h, "/alive", "1"));
        xs_close(h);
}

TEST(hundreds_of_domains) {
        struct xs_handle *h0, *g;
        char path[64];
        long long t0 = now_ms();

        ASSERT_OK(start_daemon());
        ASSERT_TRUE(h0 = open_dom0());
        for (unsigned d = 1; d <= 300; d++) {
                ASSERT_TRUE(introduce(h0, d));
                ASSERT_TRUE(make_guest_home(h0, d));
                for (int i = 0; i < 10; i++) {
                        snprintf(path, sizeof(path), "/local/domain/%u/data/n%d", d, i);
                        ASSERT_TRUE(wr(h0, path, "v"));
                }
        }
        ASSERT_TRUE(g = open_domain(300));
        ASSERT_TRUE(value_is(g, "data/n9", "v"));
        xs_close(g);
        for (unsigned d = 1; d <= 300; d++)
                ASSERT_TRUE(xs_release_domain(h0, d));
        ASSERT_TRUE(rd(h0, "/local/domain/150/data/n0") == NULL);
        /* generous: this is about complexity, not speed */
        ASSERT_TRUE(now_ms() - t0 < 60000);
        fprintf(stderr, "  300 domains, 3600 nodes: %lld ms\n", now_ms() - t0);
        xs_close(h0);
}
