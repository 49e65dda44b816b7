/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Small helpers used everywhere: cleanup attributes, ownership transfer,
 * array sizes, errno-preserving close. Header-only on purpose.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno and accepts -1. Returns -1 so "fd = safe_close(fd)" works. */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Take ownership away from a cleanup variable. */
#define TAKE_PTR(p)                                   \
        ({                                            \
                __typeof__(p) _ptr_ = (p);            \
                (p) = NULL;                           \
                _ptr_;                                \
        })
#define TAKE_FD(fd)                                   \
        ({                                            \
                int _fd_ = (fd);                      \
                (fd) = -1;                            \
                _fd_;                                 \
        })

/* Declares a cleanup function "namep" for a type with destructor "name" (accepts NULL). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)       \
        static inline void func##p(type *p) {         \
                if (*p)                               \
                        func(*p);                     \
        }

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}
static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline const char *strempty(const char *s) {
        return s ?: "";
}

/* Negative errno from the current errno, never 0. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

/* Wipes memory in a way the compiler cannot elide. */
static inline void explicit_wipe(void *p, size_t n) {
        if (p && n)
                explicit_bzero(p, n);
}
