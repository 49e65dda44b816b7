/* SPDX-License-Identifier: BSD-3-Clause */
/* A throw-away simulation directory and a "sim:DIR" platform for the Xen-ops unit tests. */
#pragma once

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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
