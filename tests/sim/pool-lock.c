/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * pool-lock: the shared-storage operations a pool of hosts relies on, one
 * command each, for tests/sim/test-pool-fs.sh to run through different mounts
 * of one shared file system (docs/pool-storage.md):
 *
 *   pool-lock hold FILE         takes an OFD write lock on the whole file and
 *                               says "locked" (or "error EAGAIN" and exits 1),
 *                               then obeys lines on stdin: "write" (pwrite +
 *                               fsync through the locked fd: "ok" or "error
 *                               ENAME"), "read" (pread: the same answers),
 *                               "close" ("closed"); exits at EOF
 *   pool-lock try FILE          one F_OFD_SETLK: "granted" (exit 0), "EAGAIN"
 *                               (exit 2), "error ENAME" (exit 1)
 *   pool-lock wait FILE MS      F_OFD_SETLK every millisecond until granted or
 *                               MS pass: prints the milliseconds it took
 *                               (exit 0) or "timeout" (exit 2)
 *   pool-lock publish DIR NAME TEXT
 *                               the durable replace vtpmd does: DIR/.NAME.tmp
 *                               written, fsync, renamed over DIR/NAME, fsync DIR
 *   pool-lock reap CMD [ARG...]  runs CMD as a child subreaper and reaps every
 *                               descendant until none is left (GlusterFS's
 *                               daemons fork away from their parent; where
 *                               PID 1 reaps nothing, a killed brick would stay
 *                               a zombie that glusterd takes for a live one)
 *
 * Answers go to stdout, one line each, flushed at once (the test reads them
 * through a pipe while the holder lives).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int say(const char *fmt, const char *arg) {
        printf(fmt, arg);
        putchar('\n');
        fflush(stdout);
        return 0;
}

static int say_errno(int e) {
        return say("error %s", strerrorname_np(e) ?: "unknown");
}

/* An OFD lock belongs to the open file description, not the process: two
 * opens in one process conflict as two hosts' would. */
static int lock_fd(int fd) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

        return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

static int open_rw(const char *path) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        return fd < 0 ? -errno : fd;
}

static int cmd_hold(const char *path) {
        _cleanup_close_ int fd = open_rw(path);
        char line[64];
        int r;

        if (fd < 0)
                return say_errno(-fd), 1;
        r = lock_fd(fd);
        if (r < 0)
                return say_errno(-r), 1;
        say("%s", "locked");
        while (fgets(line, sizeof(line), stdin)) {
                if (streq(line, "write\n")) {
                        if (fd < 0)
                                say_errno(EBADF);
                        else if (pwrite(fd, "x", 1, 0) != 1 || fsync(fd) < 0)
                                say_errno(errno);
                        else
                                say("%s", "ok");
                } else if (streq(line, "read\n")) {
                        char c;
                        if (fd < 0)
                                say_errno(EBADF);
                        else if (pread(fd, &c, 1, 0) < 0)
                                say_errno(errno);
                        else
                                say("%s", "ok");
                } else if (streq(line, "close\n")) {
                        fd = safe_close(fd);
                        say("%s", "closed");
                } else
                        say("unknown command %s", line);
        }
        return 0;
}

static int cmd_try(const char *path) {
        _cleanup_close_ int fd = open_rw(path);
        int r;

        if (fd < 0)
                return say_errno(-fd), 1;
        r = lock_fd(fd);
        if (r == -EAGAIN)
                return say("%s", "EAGAIN"), 2;
        if (r < 0)
                return say_errno(-r), 1;
        return say("%s", "granted"), 0;
}

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_wait(const char *path, const char *ms) {
        _cleanup_close_ int fd = open_rw(path);
        long long start = now_ms(), deadline = start + atoll(ms);
        char buf[32];

        if (fd < 0)
                return say_errno(-fd), 1;
        for (;;) {
                int r = lock_fd(fd);
                if (r == 0)
                        break;
                if (r != -EAGAIN)
                        return say_errno(-r), 1;
                if (now_ms() >= deadline)
                        return say("%s", "timeout"), 2;
                /* Polling, not synchronisation: the file system gives no
                 * notification, and 1 ms is the resolution of the figure. */
                nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
        }
        snprintf(buf, sizeof(buf), "%lld", now_ms() - start);
        return say("%s", buf), 0;
}

static int cmd_publish(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *tmp = NULL, *dst = NULL;
        _cleanup_close_ int fd = -1, dfd = -1;
        size_t len = strlen(text);

        if (asprintf(&tmp, "%s/.%s.tmp", dir, name) < 0 || asprintf(&dst, "%s/%s", dir, name) < 0)
                return say_errno(ENOMEM), 1;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, text, len) != (ssize_t) len || fsync(fd) < 0 || close(TAKE_FD(fd)) < 0 ||
            rename(tmp, dst) < 0)
                return say_errno(errno), 1;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return say_errno(errno), 1;
        return say("%s", "published"), 0;
}

static int cmd_reap(char **argv) {
        int status, rc = 0;
        pid_t child, p;

        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return say_errno(errno), 1;
        child = fork();
        if (child < 0)
                return say_errno(errno), 1;
        if (child == 0) {
                execvp(argv[0], argv);
                _exit(127);
        }
        while ((p = waitpid(-1, &status, 0)) != -1 || errno == EINTR)
                if (p == child)
                        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return rc;
}

int main(int argc, char **argv) {
        if (argc == 3 && streq(argv[1], "hold"))
                return cmd_hold(argv[2]);
        if (argc == 3 && streq(argv[1], "try"))
                return cmd_try(argv[2]);
        if (argc == 4 && streq(argv[1], "wait"))
                return cmd_wait(argv[2], argv[3]);
        if (argc == 5 && streq(argv[1], "publish"))
                return cmd_publish(argv[2], argv[3], argv[4]);
        if (argc >= 3 && streq(argv[1], "reap"))
                return cmd_reap(argv + 2);
        fprintf(stderr, "usage: pool-lock hold FILE | try FILE | wait FILE MS | publish DIR NAME TEXT | reap CMD...\n");
        return 64;
}
