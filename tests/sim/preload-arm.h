/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * For the LD_PRELOAD'ed attackers of the hostile suite (forbidden-syscall.c,
 * disk-filler.c): arms the module in the worker of one domain, recognised by
 * its first log line ("domid=N ..." on stderr), whose number is in the
 * environment variable the includer names. Defines writev(); the includer
 * reads `armed` (in its poll() hook: the worker is then confined and
 * serving) and defines PRELOAD_ARM_ENV before including this.
 */
#pragma once

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef PRELOAD_ARM_ENV
#error "define PRELOAD_ARM_ENV (the variable naming the target domid) first"
#endif

static int armed;

/* Exported for the dynamic linker only. */
ssize_t writev(int fd, const struct iovec *iov, int n);

ssize_t writev(int fd, const struct iovec *iov, int n) {
        static ssize_t (*real)(int, const struct iovec *, int);
        const char *target = getenv(PRELOAD_ARM_ENV);

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
