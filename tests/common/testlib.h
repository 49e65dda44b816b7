/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the test programs and simulation tools each wrote again: the
 * monotonic clock in milliseconds, a formatted string, a file replaced
 * atomically, an AF_UNIX stream socket for a path. Header-only, so any of them includes it as
 * "../common/testlib.h" without linking another library.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in milliseconds: what every deadline below tests/ counts in. */
static inline uint64_t now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

/* A malloc'ed string, or NULL when out of memory. */
__attribute__((format(printf, 1, 0))) static inline char *vstrprintf(const char *fmt, va_list ap) {
        char *s;

        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

__attribute__((format(printf, 1, 2))) static inline char *strprintf(const char *fmt, ...) {
        va_list ap;
        char *s;

        va_start(ap, fmt);
        s = vstrprintf(fmt, ap);
        va_end(ap);
        return s;
}

/* Replaces path with data (a string) through a temporary file and rename(), so
 * that a reader polling for it sees the old content or all of the new. */
static inline int write_file_atomic(const char *path, const char *data) {
        size_t len = strlen(data);
        char *tmp = strprintf("%s.tmp.%d", path, (int) getpid());
        int fd, r = 0;

        if (!tmp)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                return r;
        }
        for (size_t off = 0; off < len && r == 0;) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0)
                        r = -errno;
                else
                        off += (size_t) n;
        }
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void) unlink(tmp);
        free(tmp);
        return r;
}

/* A new stream socket and the address of path for it; the fd or a negative
 * errno (-ENAMETOOLONG when path does not fit sun_path). */
static inline int unix_socket_for(const char *path, struct sockaddr_un *ret_sa) {
        size_t len = strlen(path);
        int fd;

        if (len >= sizeof(ret_sa->sun_path))
                return -ENAMETOOLONG;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        memset(ret_sa, 0, sizeof(*ret_sa));
        ret_sa->sun_family = AF_UNIX;
        memcpy(ret_sa->sun_path, path, len + 1);
        return fd;
}

/* A stream socket connected to path: the fd or a negative errno. */
static inline int unix_connect(const char *path) {
        struct sockaddr_un sa;
        int fd = unix_socket_for(path, &sa);

        if (fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        return fd;
}
