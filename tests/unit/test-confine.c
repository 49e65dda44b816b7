/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/confine.c in forked children: what a confined worker can still do
 * (its own directory, its fds) and what it cannot (other files, other
 * system calls, root). The uid checks need root: without it that case
 * is skipped (TEST_SKIP, exit 77) with the reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <stdint.h>
#include <unistd.h>
#include <xen/xen.h>
#include <xen/sys/gntdev.h>

#include "confine.h"
#include "simdir.h"
#include "test.h"
#include "util.h"

#define TEST_UID 300999u
#define TEST_GID 300998u

/* Exit codes of the child's checks. */
enum { OK = 0, E_APPLY = 10, E_WRITE, E_RENAME, E_OUTSIDE, E_ROOT, E_IOCTL, E_SEND, E_SOCKET, E_CREATE, E_FSIZE };

static int child(const char *dir, bool drop) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ConfinePolicy p = {
                .uid = drop ? TEST_UID : 0,
                .gid = drop ? TEST_GID : 0,
                .address_space_max = 1ull << 30,
                .open_files_max = 64,
                .file_size_max = 1 << 20,
                .seccomp = true,
        };
        ConfineResult res;
        if (dfd < 0)
                return E_APPLY;
        p.dir_fds[p.n_dir_fds++] = dfd;
        if (confine_apply(&p, &res) < 0 || res.n_syscalls == 0)
                return E_APPLY;

        /* The store's pattern works inside the directory... */
        int fd = openat(dfd, "permall.tmp", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
        if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) < 0)
                return E_WRITE;
        close(fd);
        if (renameat(dfd, "permall.tmp", dfd, "permall") < 0 || unlinkat(dfd, "permall", 0) < 0)
                return E_RENAME;
        /* ...and nothing outside it, when the kernel has Landlock. */
        if (res.landlock_abi > 0 && (fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC)) >= 0)
                return E_OUTSIDE;
        if (drop && (setresuid(0, 0, 0) == 0 || syscall(SYS_getuid) >= 0))
                return E_ROOT; /* getuid is not on the list: we must be dead by now */
        return OK;
}

static int run(const char *dir, bool drop, int *ret_status) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                _exit(child(dir, drop));
        int st = 0;
        if (waitpid(pid, &st, 0) < 0)
                return -errno;
        *ret_status = st;
        return 0;
}

TEST(confined_worker_keeps_its_directory_and_loses_the_rest) {
        _cleanup_simdir_ SimDir d = {};
        int st = 0;

        ASSERT_OK(simdir_make(&d));
        ASSERT_OK(run(d.path, false, &st));
        ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), OK);
}

/* no_create (the disk budget): no new file by any open flag, while the
 * fixed files' pattern (write an existing tmp, exchange it with the file)
 * still works, and RLIMIT_FSIZE stops each file from growing. */
static int no_create_child(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return E_APPLY;
        for (const char *n = "permall"; n; n = n[7] ? NULL : "permall.tmp") {
                int fd = openat(dfd, n, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0 || write(fd, "old", 3) != 3)
                        return E_APPLY;
                close(fd);
        }
        ConfinePolicy p = { .seccomp = true, .no_create = true, .file_size_max = 1 << 16, .dir_fds = { dfd },
                            .n_dir_fds = 1 };
        ConfineResult res;
        if (confine_apply(&p, &res) < 0)
                return E_APPLY;
        int fd = openat(dfd, "new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EPERM)
                return E_CREATE;
        /* O_CREAT on an existing name is refused too: the filter cannot tell */
        fd = openat(dfd, "permall.tmp", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EPERM)
                return E_CREATE;
        fd = openat(dfd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EPERM)
                return E_CREATE;
        fd = openat(dfd, "permall.tmp", O_WRONLY | O_TRUNC | O_CLOEXEC);
        static char big[1 << 16];
        if (fd < 0 || pwrite(fd, big, sizeof(big), 0) != (ssize_t) sizeof(big))
                return E_WRITE;
        if (pwrite(fd, "x", 1, sizeof(big)) >= 0 || errno != EFBIG)
                return E_FSIZE;
        if (ftruncate(fd, 0) < 0 || pwrite(fd, "new", 3, 0) != 3 || fsync(fd) < 0)
                return E_WRITE;
        close(fd);
        if (renameat2(dfd, "permall.tmp", dfd, "permall", RENAME_EXCHANGE) < 0)
                return E_RENAME;
        char b[4] = {};
        fd = openat(dfd, "permall", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, b, 3) != 3 || memcmp(b, "new", 3) != 0)
                return E_RENAME;
        close(fd);
        /* open is on the list only in sanitized builds, filtered the same; elsewhere it kills */
        fd = (int) syscall(SYS_open, "/tmp/confine-no-create", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        return fd < 0 && errno == EPERM ? OK : E_CREATE;
}

TEST(no_create_refuses_every_new_file_and_keeps_the_fixed_files_pattern) {
        _cleanup_simdir_ SimDir d = {};
        ASSERT_OK(simdir_make(&d));
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(no_create_child(d.path));
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        /* every check passed, then SYS_open was refused or (not on the list) killed */
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (code != OK && code != 128 + SIGSYS)
                TEST_FAIL_("the confined child ended with %d", code);
}

/* A system call outside the list kills the whole process, not just the thread. */
TEST(unlisted_syscall_kills_with_sigsys) {
        _cleanup_simdir_ SimDir d = {};
        ASSERT_OK(simdir_make(&d));
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                _cleanup_close_ int dfd = open(d.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ConfinePolicy p = { .seccomp = true, .dir_fds = { dfd }, .n_dir_fds = 1 };
                ConfineResult res;
                if (confine_apply(&p, &res) < 0)
                        _exit(E_APPLY);
                (void) syscall(SYS_ptrace, 0, 0, 0, 0);
                _exit(OK);
        }
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_EQ(WTERMSIG(st), SIGSYS);
}

/* ioctl is allowed for its few requests only: isatty() answers, mapping
 * another domain's grant on gntdev (here any fd: the filter runs first)
 * kills, as would TIOCSTI on a terminal. */
static void ioctl_child(unsigned long request) {
        int p[2];
        char t[128]; /* more than a struct termios */
        ConfinePolicy pol = { .seccomp = true };
        ConfineResult res;

        if (pipe(p) < 0 || confine_apply(&pol, &res) < 0)
                _exit(E_APPLY);
        if (ioctl(p[0], TCGETS, t) == 0 || errno != ENOTTY)
                _exit(E_IOCTL);
        char buf[64] = {};
        (void) ioctl(p[0], request, buf);
        _exit(OK);
}

TEST(ioctl_outside_its_list_kills_with_sigsys) {
        const unsigned long forbidden[] = { IOCTL_GNTDEV_MAP_GRANT_REF, TIOCSTI, FIONREAD };
        for (size_t i = 0; i < ELEMENTSOF(forbidden); i++) {
                pid_t pid = fork();
                ASSERT_TRUE(pid >= 0);
                if (pid == 0)
                        ioctl_child(forbidden[i]);
                int st = 0;
                ASSERT_EQ(waitpid(pid, &st, 0), pid);
                if (!WIFSIGNALED(st))
                        TEST_FAIL_("ioctl %#lx: child exited with %d", forbidden[i], WEXITSTATUS(st));
                ASSERT_EQ(WTERMSIG(st), SIGSYS);
        }
}

/* A confined process keeps send() on sockets connected before, and every
 * way to a new peer or to passing fds fails with EPERM. */
static bool refused_eperm(long r) {
        return r == -1 && errno == EPERM;
}

static int socket_child(void) {
        int sp[2];
        ConfinePolicy pol = { .seccomp = true };
        ConfineResult res;
        struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = "/run/vtpmd-test-none" };
        union {
                struct cmsghdr align;
                char raw[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { "x", 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.raw,
                             .msg_controllen = sizeof(control.raw) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) < 0 || confine_apply(&pol, &res) < 0)
                return E_APPLY;
        if (send(sp[0], "x", 1, 0) != 1)
                return E_SEND;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &sp[1], sizeof(int));
        /* Each initializer is evaluated whole before or after the others. */
        bool refused[] = {
                refused_eperm(socket(AF_UNIX, SOCK_STREAM, 0)),
                refused_eperm(socketpair(AF_UNIX, SOCK_DGRAM, 0, sp)),
                refused_eperm(connect(sp[0], (struct sockaddr *) &sa, sizeof(sa))),
                refused_eperm(bind(sp[0], (struct sockaddr *) &sa, sizeof(sa))),
                refused_eperm(sendto(sp[0], "x", 1, 0, (struct sockaddr *) &sa, sizeof(sa))),
                refused_eperm(sendmsg(sp[0], &mh, 0)),
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (!refused[i])
                        return E_SOCKET + (int) i;
        return OK;
}

TEST(confined_sockets_send_but_never_reach_a_new_peer_or_pass_fds) {
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0)
                _exit(socket_child());
        int st = 0;
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        ASSERT_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), OK);
}

TEST(dropped_worker_keeps_its_directory_and_cannot_regain_root) {
        _cleanup_simdir_ SimDir d = {};
        int st = 0;

        if (geteuid() != 0)
                TEST_SKIP("dropping to another uid needs root");
        ASSERT_OK(simdir_make(&d));
        /* What statedir_lend() does for a worker (tested in test-statestore). */
        ASSERT_OK(chown(d.path, TEST_UID, TEST_GID));
        /* The child checks what it can; getuid() finally kills it. */
        ASSERT_OK(run(d.path, true, &st));
        ASSERT_TRUE(WIFSIGNALED(st));
        ASSERT_EQ(WTERMSIG(st), SIGSYS);
}

TEST(allow_list_names_only_known_calls) {
        size_t n = 0;
        for (const char *const *s = confine_syscalls; *s; s++, n++) {
                ASSERT_TRUE(!streq(*s, "execve"));
                ASSERT_TRUE(!streq(*s, "ptrace"));
                ASSERT_TRUE(!streq(*s, "kill"));
        }
        ASSERT_TRUE(n > 40);
        for (const unsigned long *q = confine_ioctls; *q; q++) {
                ASSERT_TRUE(*q != IOCTL_GNTDEV_MAP_GRANT_REF);
                ASSERT_TRUE(*q != TIOCSTI);
        }
}
