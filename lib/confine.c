/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xen/xen.h> /* domid_t, for the ioctl headers */
#include <xen/sys/evtchn.h>
#include <xen/sys/gntdev.h>

#include "config.h"
#include "confine.h"
#include "util.h"

/* Debian 12's headers stop at Landlock ABI 2; the kernel tells us what it has. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#define LL_ACCESS_NET_BIND_TCP (1ULL << 0)    /* ABI 4 */
#define LL_ACCESS_NET_CONNECT_TCP (1ULL << 1) /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LL_SCOPE_SIGNAL (1ULL << 1)               /* ABI 6 */

/* struct landlock_ruleset_attr as of ABI 6; the kernel takes a prefix. */
typedef struct LandlockAttr {
        uint64_t handled_access_fs;
        uint64_t handled_access_net;
        uint64_t scoped;
} LandlockAttr;

/* What the serving loop (and the TPM thread it starts) calls once confined,
 * found by strace over the test suites on x86-64 with glibc 2.36; the
 * conditional ones are added below with their argument filters. Names the
 * architecture lacks are skipped. */
const char *const confine_syscalls[] = {
        /* I/O on fds it already holds: the IPC socket, event channel, eventfd, signalfd */
        "read", "write", "readv", "writev", "pread64", "pwrite64", "close",
        "poll", "ppoll", "recvmsg", "recvfrom",
        /* the durable store, inside the state directory (Landlock limits where) */
        "openat", "newfstatat", "fstat", "statx", "lseek", "fsync", "fdatasync",
        "renameat", "renameat2", "unlinkat", "fcntl", "ftruncate", "fchmod", "getdents64", "flock",
        /* memory (mmap/mprotect without PROT_EXEC, see below) */
        "munmap", "mremap", "madvise", "brk",
        /* threads and time */
        "futex", "set_robust_list", "rseq", "sched_yield", "gettid", "getpid",
        "clock_gettime", "clock_nanosleep", "nanosleep", "getrandom",
        /* signals and exit */
        "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "restart_syscall", "exit", "exit_group",
#ifdef VTPMD_SANITIZED
        /* AddressSanitizer's own run-time (reports, thread set-up) */
        "sigaltstack", "prctl", "readlink", "readlinkat", "sched_getaffinity", "prlimit64", "getrlimit",
        "uname", "getppid", "dup", "dup2", "dup3", "open", "pipe2",
#endif
        /* with argument filters: */
        "mmap", "mprotect", "clone", "sendto", "tgkill", "ioctl",
        NULL,
};

/* Refused with EPERM rather than killing, so that a library's fallback (the
 * simulated event channel notifying a peer it has no connected socket for)
 * fails like a lost notification. No new sockets, no connecting or binding
 * the ones it holds, and no sendmsg: SCM_RIGHTS would hand its fds (the
 * grant mapping, gntdev on Xen, its state directory) to whoever listens on a
 * world-writable socket, which Landlock does not cover. sendto without an
 * address (send() on a connected socket) cannot carry fds and stays. */
const char *const confine_refused[] = {
        "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendmsg", "sendmmsg",
        NULL,
};

/* The ioctl requests a confined worker makes: notify and unbind on its
 * event channel, unmapping its guest's page (libxengnttab looks the mapping
 * up first), and isatty() on stdio. Not IOCTL_GNTDEV_MAP_GRANT_REF: gntdev
 * cannot be restricted to a domain, so a taken-over worker could otherwise
 * map another guest's grants; nor TIOCSTI on a terminal it logs to. */
const unsigned long confine_ioctls[] = {
        IOCTL_EVTCHN_NOTIFY,
        IOCTL_EVTCHN_UNBIND,
        IOCTL_GNTDEV_GET_OFFSET_FOR_VADDR,
        IOCTL_GNTDEV_UNMAP_GRANT_REF,
        TCGETS,
        0,
};

static int landlock_abi(void) {
        long r = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
        return r < 0 ? 0 : (int) r;
}

static int apply_landlock(const ConfinePolicy *p, int *ret_abi) {
        int abi = landlock_abi();
        if (abi <= 0) {
                *ret_abi = 0;
                return 0;
        }

        uint64_t fs = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |
                      LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                      LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
                      LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
                      LANDLOCK_ACCESS_FS_MAKE_SYM;
        if (abi >= 2)
                fs |= LANDLOCK_ACCESS_FS_REFER;
        if (abi >= 3)
                fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
        if (abi >= 5)
                fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
        LandlockAttr attr = { .handled_access_fs = fs };
        size_t size = sizeof(attr.handled_access_fs);
        if (abi >= 4) {
                attr.handled_access_net = LL_ACCESS_NET_BIND_TCP | LL_ACCESS_NET_CONNECT_TCP;
                size = offsetof(LandlockAttr, scoped);
        }
        if (abi >= 6) {
                attr.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
                size = sizeof(attr);
        }

        _cleanup_close_ int ruleset = (int) syscall(SYS_landlock_create_ruleset, &attr, size, 0);
        if (ruleset < 0)
                return negative_errno();

        /* The store's whole life: read, replace (tmp + rename), truncate, remove.
         * MAKE_REG also covers renames within the directory; the seccomp filter
         * (no_create) is what stops new files. */
        uint64_t allowed = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                           LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                           LANDLOCK_ACCESS_FS_MAKE_REG;
        if (abi >= 3)
                allowed |= LANDLOCK_ACCESS_FS_TRUNCATE;
        for (size_t i = 0; i < p->n_dir_fds; i++) {
                struct landlock_path_beneath_attr pb = { .allowed_access = allowed, .parent_fd = p->dir_fds[i] };
                if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
                        return negative_errno();
        }
        if (syscall(SYS_landlock_restrict_self, ruleset, 0) < 0)
                return negative_errno();
        *ret_abi = abi;
        return 0;
}

static int deny(scmp_filter_ctx ctx, const char *name, int error) {
        int nr = seccomp_syscall_resolve_name(name);
        if (nr == __NR_SCMP_ERROR)
                return 0;
        return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), nr, 0);
}

/* No new files: O_TMPFILE includes O_DIRECTORY, its own bit is __O_TMPFILE. */
#define CONFINE_CREATE_FLAGS ((scmp_datum_t) (O_CREAT | __O_TMPFILE))

static int allow_open(scmp_filter_ctx ctx, int nr, unsigned flags_arg, bool no_create) {
        if (!no_create)
                return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        struct scmp_arg_cmp none = { .arg = flags_arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = CONFINE_CREATE_FLAGS,
                                     .datum_b = 0 };
        struct scmp_arg_cmp creat = { .arg = flags_arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = O_CREAT,
                                      .datum_b = O_CREAT };
        struct scmp_arg_cmp tmpfile = { .arg = flags_arg, .op = SCMP_CMP_MASKED_EQ, .datum_a = __O_TMPFILE,
                                        .datum_b = __O_TMPFILE };
        int r = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, &none);
        if (r >= 0)
                r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, &creat);
        if (r >= 0)
                r = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, &tmpfile);
        return r;
}

static int apply_seccomp(bool no_create, size_t *ret_n) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        size_t n = 0;
        int r;

        if (!ctx)
                return -ENOMEM;
        for (const char *const *s = confine_syscalls; *s; s++) {
                int nr = seccomp_syscall_resolve_name(*s);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                if (streq(*s, "mmap") || streq(*s, "mprotect")) {
#ifdef VTPMD_SANITIZED
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
#else
                        /* No new executable memory: nothing here generates code. */
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
#endif
                } else if (streq(*s, "openat"))
                        r = allow_open(ctx, nr, 2, no_create);
                else if (streq(*s, "open"))
                        r = allow_open(ctx, nr, 1, no_create);
                else if (streq(*s, "clone"))
                        /* Threads only: no new processes. */
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1,
                                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
                else if (streq(*s, "sendto")) {
                        /* Connected sockets only: no address, so not to a socket of its choosing. */
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A4(SCMP_CMP_EQ, 0));
                        if (r >= 0)
                                r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, SCMP_A4(SCMP_CMP_NE, 0));
                }
                else if (streq(*s, "ioctl")) {
                        r = 0;
                        for (const unsigned long *q = confine_ioctls; *q && r >= 0; q++)
                                r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A1(SCMP_CMP_EQ, *q));
                } else if (streq(*s, "tgkill"))
                        /* abort() signals itself; nobody else. */
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t) getpid()));
                else
                        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
                if (r < 0)
                        goto out;
                n++;
        }
        /* clone3's flags sit in memory the filter cannot read: glibc falls
         * back to clone when told the kernel has no clone3. */
        r = deny(ctx, "clone3", ENOSYS);
        for (const char *const *s = confine_refused; *s && r >= 0; s++)
                r = deny(ctx, *s, EPERM);
        if (r < 0)
                goto out;
        r = seccomp_load(ctx);
        if (r >= 0)
                *ret_n = n;
out:
        seccomp_release(ctx);
        return r < 0 ? r : 0;
}

static int set_limit(int resource, uint64_t max) {
        if (max == 0)
                return 0;
        struct rlimit rl = { .rlim_cur = (rlim_t) max, .rlim_max = (rlim_t) max };
        return setrlimit(resource, &rl) < 0 ? negative_errno() : 0;
}

int confine_apply(const ConfinePolicy *p, ConfineResult *ret) {
        ConfineResult res = {};
        int r;

        /* Core dumps would hold the vTPM's keys and the guest's secrets. */
        struct rlimit zero = {};
        if (setrlimit(RLIMIT_CORE, &zero) < 0)
                return negative_errno();
#ifndef VTPMD_SANITIZED
        /* AddressSanitizer reserves terabytes of address space. */
        r = set_limit(RLIMIT_AS, p->address_space_max);
        if (r < 0)
                return r;
#endif
        r = set_limit(RLIMIT_NOFILE, p->open_files_max);
        if (r < 0)
                return r;
        r = set_limit(RLIMIT_FSIZE, p->file_size_max);
        if (r < 0)
                return r;
        /* Over the limit a write fails with EFBIG (the store reports it, the
         * TPM answers failure) instead of SIGXFSZ killing the process. */
        if (signal(SIGXFSZ, SIG_IGN) == SIG_ERR)
                return negative_errno();

        if (p->uid != 0) {
                if (setgroups(0, NULL) < 0)
                        return negative_errno();
                if (setresgid(p->gid, p->gid, p->gid) < 0)
                        return negative_errno();
                if (setresuid(p->uid, p->uid, p->uid) < 0)
                        return negative_errno();
                /* Paranoia: there must be no way back. */
                if (setresuid(0, 0, 0) == 0)
                        return -EPERM;
        }
        /* After the uid change, which resets it: not dumpable means no core,
         * no ptrace by the same uid, /proc/PID owned by root. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return negative_errno();
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return negative_errno();

        r = apply_landlock(p, &res.landlock_abi);
        if (r < 0)
                return r;

        if (p->seccomp) {
                r = apply_seccomp(p->no_create, &res.n_syscalls);
                if (r < 0)
                        return r;
        }
        *ret = res;
        return 0;
}
