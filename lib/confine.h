/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Confining a worker once it holds everything it needs from the privileged
 * world (the mapped grant, the bound event channel, its state directory fd),
 * before it reads a single byte a guest wrote. In this order:
 *
 *   1. resource limits (address space, open files, file size, no core dumps);
 *   2. (before: its state directory lent to its uid, statedir_lend());
 *   3. the uid/gid change (no supplementary groups; every capability goes
 *      with uid 0), then PR_SET_DUMPABLE 0 and PR_SET_NO_NEW_PRIVS;
 *   4. Landlock: files only beneath the listed directories, no TCP, no
 *      signals or abstract sockets outside the process (as far as the kernel's
 *      Landlock ABI goes);
 *   5. a seccomp allow-list; any other system call kills the process, except
 *      the socket calls in confine_refused, which fail with EPERM, and (with
 *      no_create) creating a file: no open(at) with O_CREAT or O_TMPFILE, so
 *      that with RLIMIT_FSIZE the worker's disk use is bounded by the files
 *      that exist when it confines itself (linkat, mknodat and symlinkat are
 *      not on the list at all).
 *
 * Landlock, seccomp and no_new_privs are per thread: confine before creating
 * threads (new threads inherit all of it).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFINE_MAX_DIRS 4

typedef struct ConfinePolicy {
        uid_t uid;                       /* 0: keep the uid (not running as root) */
        gid_t gid;
        uint64_t address_space_max;      /* RLIMIT_AS; 0: unchanged */
        uint64_t open_files_max;         /* RLIMIT_NOFILE; 0: unchanged */
        uint64_t file_size_max;          /* RLIMIT_FSIZE; 0: unchanged */
        int dir_fds[CONFINE_MAX_DIRS];   /* Landlock: trees in which files may be opened, */
        size_t n_dir_fds;                /* created, renamed and removed */
        bool seccomp;
        bool no_create;                  /* seccomp: open(at) with O_CREAT or O_TMPFILE fails with
                                          * EPERM (the state directory's files are fixed,
                                          * statedir_fix_files) */
} ConfinePolicy;

typedef struct ConfineResult {
        int landlock_abi;     /* 0: the kernel has no Landlock, nothing restricted */
        size_t n_syscalls;    /* in the allow-list as loaded (0: no filter) */
} ConfineResult;

/* Applies the policy to the calling thread (and the threads it creates
 * afterwards). On failure the process may be partly confined and must exit. */
int confine_apply(const ConfinePolicy *p, ConfineResult *ret);

/* The allow-list, NULL-terminated, for documentation and tests. */
extern const char *const confine_syscalls[];
/* Refused with EPERM (no new sockets, connections or fd passing), NULL-terminated. */
extern const char *const confine_refused[];
/* The only ioctl requests allowed, 0-terminated. */
extern const unsigned long confine_ioctls[];
