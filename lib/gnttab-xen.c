/* SPDX-License-Identifier: BSD-3-Clause */
/* Grant tables on real Xen: libxengnttab (gntdev) and libxengntshr (gntalloc). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <xengnttab.h>

#include "gnttab.h"
#include "util.h"
#include "xenops-internal.h"

typedef struct GnttabXen {
        Gnttab base;
        xengnttab_handle *xgt;
        bool restricted;
        uint32_t restrict_domid;
} GnttabXen;

static Gnttab *xen_gnttab_close(Gnttab *g) {
        GnttabXen *x = (GnttabXen *) g;
        /* Closing gntdev releases every grant; the mappings of this process
         * die with it or with munmap. */
        if (x->xgt)
                xengnttab_close(x->xgt);
        free(x);
        return NULL;
}

static int xen_gnttab_map(Gnttab *g, uint32_t domid, uint32_t ref, bool writable, void **ret_addr) {
        GnttabXen *x = (GnttabXen *) g;
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        if (x->restricted && domid != x->restrict_domid)
                return -EPERM;
        void *a = xengnttab_map_grant_ref(x->xgt, domid, ref, PROT_READ | (writable ? PROT_WRITE : 0));
        if (!a)
                return negative_errno();
        *ret_addr = a;
        return 0;
}

static int xen_gnttab_unmap(Gnttab *g, void *addr) {
        GnttabXen *x = (GnttabXen *) g;
        return xengnttab_unmap(x->xgt, addr, 1) < 0 ? negative_errno() : 0;
}

/* gntdev has no per-handle restriction, and xentoolcore_restrict_all() would
 * replace its fd with /dev/null (so our own unmap would fail). gntdev can
 * only map grants a domain made to us anyway; we refuse other domains here,
 * and a confined worker cannot open a new gntdev: /dev/xen/gntdev is root's
 * (0600) and the worker's uid is not, and Landlock lets it open files only
 * in its state directory (lib/confine.h). */
static int xen_gnttab_restrict(Gnttab *g, uint32_t domid) {
        GnttabXen *x = (GnttabXen *) g;
        if (x->restricted)
                return x->restrict_domid == domid ? 0 : -EPERM;
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        x->restricted = true;
        x->restrict_domid = domid;
        return 0;
}

static const GnttabOps xen_gnttab_ops = {
        .close = xen_gnttab_close,
        .map = xen_gnttab_map,
        .unmap = xen_gnttab_unmap,
        .restrict_domid = xen_gnttab_restrict,
};

int gnttab_xen_open(const Platform *p, Gnttab **ret) {
        GnttabXen *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &xen_gnttab_ops;
        x->xgt = xengnttab_open(vtpm_xen_null_logger(), 0);
        if (!x->xgt) {
                int r = negative_errno();
                free(x);
                return r;
        }
        *ret = &x->base;
        return 0;
}

typedef struct GntshrXen {
        Gntshr base;
        xengntshr_handle *xgs;
} GntshrXen;

static Gntshr *xen_gntshr_close(Gntshr *s) {
        GntshrXen *x = (GntshrXen *) s;
        if (x->xgs)
                xengntshr_close(x->xgs);
        free(x);
        return NULL;
}

static int xen_gntshr_share(Gntshr *s, uint32_t domid, bool writable, uint32_t *ret_ref, void **ret_addr) {
        GntshrXen *x = (GntshrXen *) s;
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        uint32_t ref;
        /* gntalloc hands out zeroed pages. */
        void *a = xengntshr_share_pages(x->xgs, domid, 1, &ref, writable);
        if (!a)
                return negative_errno();
        *ret_ref = ref;
        *ret_addr = a;
        return 0;
}

static int xen_gntshr_unshare(Gntshr *s, void *addr) {
        GntshrXen *x = (GntshrXen *) s;
        return xengntshr_unshare(x->xgs, addr, 1) < 0 ? negative_errno() : 0;
}

static const GntshrOps xen_gntshr_ops = {
        .close = xen_gntshr_close,
        .share = xen_gntshr_share,
        .unshare = xen_gntshr_unshare,
};

int gntshr_xen_open(const Platform *p, Gntshr **ret) {
        GntshrXen *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &xen_gntshr_ops;
        x->xgs = xengntshr_open(vtpm_xen_null_logger(), 0);
        if (!x->xgs) {
                int r = negative_errno();
                free(x);
                return r;
        }
        /* libxengntshr (4.17) opens /dev/xen/gntalloc without O_CLOEXEC. */
        if (fcntl(xengntshr_fd(x->xgs), F_SETFD, FD_CLOEXEC) < 0) {
                int r = negative_errno();
                xen_gntshr_close(&x->base);
                return r;
        }
        *ret = &x->base;
        return 0;
}
