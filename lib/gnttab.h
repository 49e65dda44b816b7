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
 *
 * How "sim" works: DIR/hv/gnt-<domid>/table holds the domain's grant entries
 * (in use, writable, granted-to domid, generation); DIR/hv/gnt-<domid>/<ref>
 * is the page, a 4 KiB file mmap'ed MAP_SHARED by granter and mapper, so it
 * really is one page. Revoking unlinks the file: existing mappings keep the
 * (anonymous) page, new maps fail; a new grant never reuses an old file. The
 * granter holds a shared flock on each page it shares; a mapper that can
 * take an exclusive lock knows the granter died and revokes the grant.
 *
 * Where "sim" differs from Xen:
 *  - error codes: sim returns -EINVAL (unknown ref, no such domain, granter
 *    gone), -EPERM (granted to another domain, or restricted handle) and
 *    -EACCES (read-only grant mapped writable). On Xen, Linux's gntdev
 *    reports every failed grant map as -EINVAL: never branch on the code.
 *  - VTPM_SIM_GRANT_REFS (1024) refs per domain; refs are handed out from 8
 *    up (Linux reserves 0-7), lowest free first, so a revoked ref is reused
 *    at once (Xen/Linux take refs from a free list in another order).
 *  - revocation is immediate: on Xen a grant whose page is still mapped by
 *    the peer stays valid (end_foreign_access is deferred) and could be
 *    mapped again until the peer unmaps.
 *  - death of the granting process revokes its grants when a mapper next
 *    tries to map them (Linux gntalloc revokes on release).
 *  - no unmap notification (xengnttab_map_grant_ref_notify) and no
 *    multi-page maps.
 *  - restrict(domid) is enforced by this library in both implementations:
 *    gntdev has no per-handle restriction, and xentoolcore_restrict_all()
 *    replaces the gntdev fd with /dev/null (libxengnttab's restrict
 *    callback), after which xengnttab_unmap() fails. A second restrict to
 *    another domain fails with -EPERM.
 *  - the page files are plain files of the same uid: not a security boundary.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

#define VTPM_XEN_PAGE_SIZE 4096u
/* sim: grant refs per domain; refs below 8 are never handed out (Linux
 * reserves them for xenstore and the console). */
#define VTPM_SIM_GRANT_REFS 1024u

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
