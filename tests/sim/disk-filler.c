/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * LD_PRELOAD'ed into vtpmd (and so its workers) by test-disk-budget.sh. The
 * worker of domain $DISK_FILLER_DOMID, recognised by its first log line,
 * tries to fill the disk the first time it waits in its serving loop (a poll
 * over four fds), that is once confined and serving its guest, as a worker
 * taken over by its guest would:
 *
 *   - through every directory fd it holds, create new files (O_CREAT, and
 *     O_TMPFILE): "disk-filler: create in fd N: refused (ERROR)" or "reached";
 *   - write every regular file it finds in those directories from offset 0
 *     until a write fails: "disk-filler: wrote B bytes into F files of fd N,
 *     the last write failed: ERROR";
 *   - rename its spare and tmp files to names of its own, so that the store
 *     has no file left to write to: "disk-filler: hoarded N ...";
 *
 * then "disk-filler: done", and it serves its guest on.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#define PRELOAD_ARM_ENV "DISK_FILLER_DOMID"
#include "preload-arm.h"

static int done;

/* Exported for the dynamic linker only. */
int poll(struct pollfd *fds, nfds_t n, int timeout);

#define MAX_FD 64
#define CHUNK (1u << 20)

static bool is_dir(int fd) {
        struct stat st;
        return fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

static void report(const char *what, int fd, int r) {
        if (r >= 0)
                fprintf(stderr, "disk-filler: %s in fd %d: reached\n", what, fd);
        else
                fprintf(stderr, "disk-filler: %s in fd %d: refused (%s)\n", what, fd, strerror(errno));
}

/* Names in a directory without taking its fd (fdopendir would close it):
 * getdents64 on the fd itself, from the start. */
struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

static void fill_dir(int dir, uint8_t *junk) {
        static char buf[16384];
        unsigned long long total = 0;
        unsigned files = 0;
        int last_error = 0;

        if (lseek(dir, 0, SEEK_SET) < 0)
                return;
        for (;;) {
                long n = syscall(SYS_getdents64, dir, buf, sizeof(buf));
                if (n <= 0)
                        break;
                for (long off = 0; off < n;) {
                        struct linux_dirent64 *de = (struct linux_dirent64 *) (buf + off);
                        off += de->d_reclen;
                        int fd = openat(dir, de->d_name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
                        if (fd < 0)
                                continue;
                        struct stat st;
                        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                                close(fd);
                                continue;
                        }
                        files++;
                        for (off_t pos = 0;; pos += CHUNK) {
                                ssize_t k = pwrite(fd, junk, CHUNK, pos);
                                if (k > 0)
                                        total += (unsigned long long) k;
                                if (k < (ssize_t) CHUNK) {
                                        last_error = k < 0 ? errno : 0;
                                        break;
                                }
                        }
                        close(fd);
                }
        }
        fprintf(stderr, "disk-filler: wrote %llu bytes into %u files of fd %d, the last write failed: %s\n", total,
                files, dir, last_error ? strerror(last_error) : "no error (a short write)");
}

/* Its spares and tmp files renamed to names of its own: a hoard the store
 * cannot draw on, so its next durable write has no file to go to. */
static void hoard(int dir) {
        static char buf[16384];
        unsigned n = 0;

        if (lseek(dir, 0, SEEK_SET) < 0)
                return;
        long got = syscall(SYS_getdents64, dir, buf, sizeof(buf));
        for (long off = 0; off < got;) {
                struct linux_dirent64 *de = (struct linux_dirent64 *) (buf + off);
                off += de->d_reclen;
                size_t k = strlen(de->d_name);
                if (strncmp(de->d_name, ".spare-", 7) != 0 && !(k > 4 && strcmp(de->d_name + k - 4, ".tmp") == 0))
                        continue;
                char name[32];
                snprintf(name, sizeof(name), "hoard-%u", n);
                if (renameat(dir, de->d_name, dir, name) == 0)
                        n++;
        }
        if (n)
                fprintf(stderr, "disk-filler: hoarded %u spare and tmp files of fd %d\n", n, dir);
}

static void fill(void) {
        uint8_t *junk = malloc(CHUNK);
        if (!junk)
                return;
        memset(junk, 0xa5, CHUNK);
        for (int fd = 3; fd < MAX_FD; fd++) {
                if (!is_dir(fd))
                        continue;
                for (unsigned i = 0; i < 4; i++) {
                        char name[32];
                        snprintf(name, sizeof(name), "filler-%u", i);
                        int r = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                        report("create", fd, r);
                        if (r >= 0)
                                close(r);
                }
                int r = openat(fd, ".", O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
                report("O_TMPFILE", fd, r);
                if (r >= 0)
                        close(r);
                fill_dir(fd, junk);
                hoard(fd);
        }
        free(junk);
        fprintf(stderr, "disk-filler: done\n");
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
        static int (*real)(struct pollfd *, nfds_t, int);

        if (!real)
                real = (int (*)(struct pollfd *, nfds_t, int)) dlsym(RTLD_NEXT, "poll");
        if (n == 4 && armed && !done) {
                done = 1;
                fill();
        }
        if (!real) {
                errno = ENOSYS;
                return -1;
        }
        return real(fds, n, timeout);
}
