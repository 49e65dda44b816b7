/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LD_PRELOAD'ed into vtpmd (and so its workers) by test-seccomp.sh. The
 * worker of domain $FORBIDDEN_SYSCALL_DOMID, recognised by its first log
 * line, makes a system call outside its allow-list (ptrace) the first time
 * it waits in its serving loop (a poll over four fds: eventfd, event
 * channel, IPC, signalfd), that is once confined and serving its guest, as a
 * worker taken over by its guest would. Its filter must kill it; vtpmd must
 * report and restart it; the other guests must not notice.
 */
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static int armed;

/* Exported for the dynamic linker only. */
ssize_t writev(int fd, const struct iovec *iov, int n);
int poll(struct pollfd *fds, nfds_t n, int timeout);

ssize_t writev(int fd, const struct iovec *iov, int n) {
        static ssize_t (*real)(int, const struct iovec *, int);
        const char *target = getenv("FORBIDDEN_SYSCALL_DOMID");

        if (!real)
                real = (ssize_t (*)(int, const struct iovec *, int)) dlsym(RTLD_NEXT, "writev");
        if (fd == STDERR_FILENO && target && !armed && strcmp(program_invocation_short_name, "vtpmd-worker") == 0) {
                char want[32];
                snprintf(want, sizeof(want), "domid=%s ", target);
                for (int i = 0; i < n; i++)
                        if (memmem(iov[i].iov_base, iov[i].iov_len, want, strlen(want)))
                                armed = 1;
        }
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(fd, iov, n);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        static int (*real)(struct pollfd *, nfds_t, int);

        if (!real)
                real = (int (*)(struct pollfd *, nfds_t, int)) dlsym(RTLD_NEXT, "poll");
        if (n == 4 && armed)
                (void) syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(fds, n, timeout);
}
