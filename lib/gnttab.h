/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Grant tables behind one ops table: "xen" (libxengnttab/libxengntshr) and "sim".
 *
 * Mapping side (backend, Gnttab):
 *  - map(domid, ref) maps exactly one 4 KiB page that `domid` granted to us;
 *    the mapping is the guest's actual page: writes by either side are seen by
 *    the other at once. An unknown ref, a ref granted to another domain, or a
 *    read-only grant mapped writable fails (-EINVAL / -EPERM / -EACCES).
 *  - unmap(addr) releases it. Process death releases it too.
 * Granting side (frontend, Gntshr):
 *  - share() allocates one zeroed page and grants it to `domid`.
 *  - unshare() revokes it; while the peer still has it mapped the page stays
 *    valid for the peer (Linux defers the free the same way).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

#define VTPM_XEN_PAGE_SIZE 4096u

typedef struct Gnttab Gnttab;
typedef struct Gntshr Gntshr;

int gnttab_open(const Platform *p, Gnttab **ret);
Gnttab *gnttab_close(Gnttab *g); /* accepts NULL; unmaps everything; returns NULL */
int gnttab_map(Gnttab *g, uint32_t domid, uint32_t ref, bool writable, void **ret_addr);
int gnttab_unmap(Gnttab *g, void *addr);
/* Restrict to one domain (xentoolcore). sim: enforced on later maps. */
int gnttab_restrict(Gnttab *g, uint32_t domid);

int gntshr_open(const Platform *p, Gntshr **ret);
Gntshr *gntshr_close(Gntshr *s);
int gntshr_share(Gntshr *s, uint32_t domid, bool writable, uint32_t *ret_ref, void **ret_addr);
int gntshr_unshare(Gntshr *s, void *addr);
