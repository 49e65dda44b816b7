/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LD_PRELOAD'ed into vtpmd (and so its workers) by test-seccomp.sh. The
 * worker of domain $FORBIDDEN_SYSCALL_DOMID, recognised by its first log
 * line, makes a system call outside its allow-list (ptrace) the first time
 * it waits in its serving loop (a poll over four fds: eventfd, event
 * channel, IPC, signalfd), that is once confined and serving its guest, as a
 * worker taken over by its guest would. Its filter must kill it; vtpmd must
 * report and restart it; the other guests must not notice.
 *
 * Before that it tries what a taken-over worker would to reach beyond its
 * guest, and logs each outcome as "forbidden-syscall: WHAT: refused (ERROR)"
 * or "forbidden-syscall: WHAT: reached": a new socket; connecting, sending
 * to and passing its fds (SCM_RIGHTS) to the world-writable datagram socket
 * $FORBIDDEN_SYSCALL_SOCKET through the sockets it holds; passing an fd over
 * its IPC socket; opening domain $FORBIDDEN_SYSCALL_OTHER's event-channel
 * table and grant table through any directory fd it holds.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#define PRELOAD_ARM_ENV "FORBIDDEN_SYSCALL_DOMID"
#include "preload-arm.h"

/* Exported for the dynamic linker only. */
int poll(struct pollfd *fds, nfds_t n, int timeout);

#define MAX_FD 64

static void report(const char *what, int r) {
        if (r >= 0)
                fprintf(stderr, "forbidden-syscall: %s: reached\n", what);
        else
                fprintf(stderr, "forbidden-syscall: %s: refused (%s)\n", what, strerror(errno));
}

static bool is_type(int fd, mode_t type) {
        struct stat st;
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/* sendmsg on sock to addr (NULL: its peer), with fd attached. */
static int pass_fd(int sock, const struct sockaddr_un *addr, int fd) {
        union {
                struct cmsghdr align;
                char raw[CMSG_SPACE(sizeof(int))];
        } control = {};
        char byte = 'x';
        struct iovec iov = { &byte, 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.raw,
                             .msg_controllen = sizeof(control.raw) };
        if (addr) {
                mh.msg_name = (void *) addr;
                mh.msg_namelen = sizeof(*addr);
        }
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        return (int) sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Every socket it holds gets each attempt: one of them is unconnected (the
 * simulated event channel's), one is the IPC socket to vtpmd. */
static void probe_sockets(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int r = socket(AF_UNIX, SOCK_DGRAM, 0);
        report("socket(AF_UNIX)", r);
        for (int fd = 3; fd < MAX_FD; fd++) {
                if (!is_type(fd, S_IFSOCK))
                        continue;
                char what[96];
                snprintf(what, sizeof(what), "connect fd %d to %s", fd, path);
                report(what, connect(fd, (struct sockaddr *) &sa, sizeof(sa)));
                snprintf(what, sizeof(what), "sendto fd %d to %s", fd, path);
                report(what, (int) sendto(fd, "x", 1, MSG_DONTWAIT, (struct sockaddr *) &sa, sizeof(sa)));
                snprintf(what, sizeof(what), "SCM_RIGHTS on fd %d to %s", fd, path);
                report(what, pass_fd(fd, &sa, fd));
                snprintf(what, sizeof(what), "SCM_RIGHTS on fd %d to its peer", fd);
                report(what, pass_fd(fd, NULL, fd));
        }
}

/* Only a success through some directory fd counts as reached; ENOENT from
 * one that is not the simulated hypervisor's is no answer. */
static void probe_file(const char *name) {
        int r = -1, error = ENOENT;
        for (int fd = 3; fd < MAX_FD && r < 0; fd++) {
                if (!is_type(fd, S_IFDIR))
                        continue;
                r = openat(fd, name, O_RDONLY | O_CLOEXEC);
                if (r < 0 && errno != ENOENT)
                        error = errno;
        }
        char what[64];
        snprintf(what, sizeof(what), "open %s", name);
        errno = error;
        report(what, r);
}

static void probe(void) {
        const char *path = getenv("FORBIDDEN_SYSCALL_SOCKET"), *other = getenv("FORBIDDEN_SYSCALL_OTHER");
        if (path)
                probe_sockets(path);
        if (other) {
                char name[48];
                snprintf(name, sizeof(name), "evtchn-%s", other);
                probe_file(name);
                snprintf(name, sizeof(name), "gnt-%s/table", other);
                probe_file(name);
        }
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        static int (*real)(struct pollfd *, nfds_t, int);

        if (!real)
                real = (int (*)(struct pollfd *, nfds_t, int)) dlsym(RTLD_NEXT, "poll");
        if (n == 4 && armed) {
                probe();
                (void) syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
        }
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(fds, n, timeout);
}
