/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The simulated hypervisor's set-up for the Xen-ops unit tests: a throw-away
 * simulation directory, a "sim:DIR" platform, and peers: forked processes
 * that are other domains (or other dom0 processes) with handles of their own,
 * driven over pipes with requests of four int32 (op, a, b, c) answered by one.
 */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform.h"

typedef struct SimDir {
        char path[64];
} SimDir;

static inline int simdir_rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
        (void) st;
        (void) flag;
        (void) f;
        return remove(p);
}

static inline void simdir_cleanup(SimDir *d) {
        if (d->path[0])
                nftw(d->path, simdir_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
#define _cleanup_simdir_ __attribute__((cleanup(simdir_cleanup)))

static inline int simdir_make(SimDir *d) {
        snprintf(d->path, sizeof(d->path), "/tmp/vtpm-ops-test-XXXXXX");
        if (!mkdtemp(d->path)) {
                d->path[0] = 0;
                return -errno;
        }
        return 0;
}

/* The platform "sim:DIR" acting as domid; NULL on failure. */
static inline Platform *plat(const SimDir *d, uint32_t domid) {
        char spec[96];
        Platform *p = NULL;

        snprintf(spec, sizeof(spec), "sim:%s", d->path);
        if (platform_parse(spec, domid, &p) < 0)
                return NULL;
        return p;
}

static inline void platformp(Platform **p) {
        platform_free(*p);
}
#define _cleanup_platform_ __attribute__((cleanup(platformp)))

/* ---- peers ---- */

typedef struct SimPeer {
        pid_t pid;
        int cmd;
        int rep;
} SimPeer;

/* What a peer's process runs: open() once for its platform (a failure ends
 * the process with status 2), then handle() for every request. */
typedef struct SimPeerOps {
        int (*open)(Platform *p);
        int32_t (*handle)(const int32_t m[4]);
} SimPeerOps;

static inline _Noreturn void simpeer_serve(const SimDir *d, uint32_t domid, const SimPeerOps *ops, int cmd, int rep) {
        Platform *p = plat(d, domid);
        int32_t m[4];

        if (!p || ops->open(p) < 0)
                _exit(2);
        while (read(cmd, m, sizeof(m)) == (ssize_t) sizeof(m)) {
                int32_t r = ops->handle(m);
                if (write(rep, &r, sizeof(r)) != (ssize_t) sizeof(r))
                        break;
        }
        _exit(0);
}

/* Forks before the caller opens any handle, so the child inherits none. */
static inline int simpeer_start(const SimDir *d, uint32_t domid, const SimPeerOps *ops, SimPeer *ret) {
        int c[2], r[2];
        if (pipe2(c, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(r, O_CLOEXEC) < 0) {
                close(c[0]);
                close(c[1]);
                return -errno;
        }
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(c[1]);
                close(r[0]);
                simpeer_serve(d, domid, ops, c[0], r[1]);
        }
        close(c[0]);
        close(r[1]);
        *ret = (SimPeer){ .pid = pid, .cmd = c[1], .rep = r[0] };
        return 0;
}

static inline void simpeer_kill(SimPeer *p) {
        if (p->pid > 0) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                p->pid = 0;
        }
        if (p->cmd >= 0)
                close(p->cmd);
        if (p->rep >= 0)
                close(p->rep);
        p->cmd = p->rep = -1;
}

/* Sends one request and waits (at most 5 s) for the answer. */
static inline int32_t simpeer_call(SimPeer *p, int32_t op, int32_t a, int32_t b, int32_t c) {
        int32_t m[4] = { op, a, b, c };
        if (write(p->cmd, m, sizeof(m)) != (ssize_t) sizeof(m))
                return -EPIPE;
        struct pollfd pfd = { .fd = p->rep, .events = POLLIN };
        if (poll(&pfd, 1, 5000) != 1)
                return -ETIMEDOUT;
        int32_t r;
        if (read(p->rep, &r, sizeof(r)) != (ssize_t) sizeof(r))
                return -EPIPE;
        return r;
}

/* ---- a case's set-up ---- */

#define SIMFX_MAX_PEERS 4

/* A directory, peers for the given domids (started in that order, before
 * this process opens anything) and dom0's platform for this process. */
typedef struct SimFx {
        SimDir dir;
        SimPeer peer[SIMFX_MAX_PEERS];
        size_t n_peers;
        Platform *dom0;
} SimFx;

static inline void simfx_done(SimFx *f) {
        for (size_t i = 0; i < f->n_peers; i++)
                simpeer_kill(&f->peer[i]);
        platform_free(f->dom0);
        simdir_cleanup(&f->dir);
}
#define _cleanup_simfx_ __attribute__((cleanup(simfx_done)))

static inline int simfx_init(SimFx *f, const SimPeerOps *ops, const uint32_t *domids, size_t n) {
        int r = simdir_make(&f->dir);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && i < SIMFX_MAX_PEERS; i++) {
                f->peer[i] = (SimPeer){ .cmd = -1, .rep = -1 };
                f->n_peers = i + 1;
                r = simpeer_start(&f->dir, domids[i], ops, &f->peer[i]);
                if (r < 0)
                        return r;
        }
        f->dom0 = plat(&f->dir, 0);
        return f->dom0 ? 0 : -EINVAL;
}
/* SIMFX_INIT(&f, &ops, GUEST, OTHER_GUEST): f.peer[0] is GUEST, f.peer[1] OTHER_GUEST. */
#define SIMFX_INIT(f, ops, ...)                                                                    \
        simfx_init((f), (ops), (const uint32_t[]){ __VA_ARGS__ },                                   \
                   sizeof((uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
