/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * /etc/subuid and /etc/subgid (subuid(5), subgid(5)): lines "NAME:FIRST:COUNT"
 * that give a user (by name or uid) the ids FIRST..FIRST+COUNT-1 to map into
 * its user namespaces (rootless podman, LXC, newuidmap). vtpmd's workers must
 * not run under such an id: a container's root would own their files and
 * could signal them. Pure: the caller reads the file.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct SubidOverlap {
        unsigned line;   /* 1-based */
        char name[64];   /* the user, cut to fit */
        uint32_t first, last;
} SubidOverlap;

/* Looks for the first line whose ids overlap first..last (inclusive).
 * Returns 1 and fills *ret if one does, 0 if none does. Lines that are
 * empty, comments ('#') or not NAME:FIRST:COUNT with COUNT > 0 give nobody
 * any ids (newuidmap ignores them too) and are skipped. */
int subid_find_overlap(const char *buf, size_t len, uint32_t first, uint32_t last, SubidOverlap *ret);
