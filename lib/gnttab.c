/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stddef.h>

#include "gnttab.h"
#include "xenops-internal.h"

int gnttab_open(const Platform *p, Gnttab **ret) {
        if (!p || !ret)
                return -EINVAL;
        switch (p->kind) {
        case PLATFORM_XEN:
#if HAVE_XEN
                return gnttab_xen_open(p, ret);
#else
                return -EOPNOTSUPP;
#endif
        case PLATFORM_SIM:
                return gnttab_sim_open(p, ret);
        }
        return -EINVAL;
}

Gnttab *gnttab_close(Gnttab *g) {
        if (!g)
                return NULL;
        return g->ops->close(g);
}

int gnttab_map(Gnttab *g, uint32_t domid, uint32_t ref, bool writable, void **ret_addr) {
        if (!g || !ret_addr)
                return -EINVAL;
        return g->ops->map(g, domid, ref, writable, ret_addr);
}

int gnttab_unmap(Gnttab *g, void *addr) {
        if (!g || !addr)
                return -EINVAL;
        return g->ops->unmap(g, addr);
}

int gnttab_restrict(Gnttab *g, uint32_t domid) {
        if (!g)
                return -EINVAL;
        return g->ops->restrict_domid(g, domid);
}

int gntshr_open(const Platform *p, Gntshr **ret) {
        if (!p || !ret)
                return -EINVAL;
        switch (p->kind) {
        case PLATFORM_XEN:
#if HAVE_XEN
                return gntshr_xen_open(p, ret);
#else
                return -EOPNOTSUPP;
#endif
        case PLATFORM_SIM:
                return gntshr_sim_open(p, ret);
        }
        return -EINVAL;
}

Gntshr *gntshr_close(Gntshr *s) {
        if (!s)
                return NULL;
        return s->ops->close(s);
}

int gntshr_share(Gntshr *s, uint32_t domid, bool writable, uint32_t *ret_ref, void **ret_addr) {
        if (!s || !ret_ref || !ret_addr)
                return -EINVAL;
        return s->ops->share(s, domid, writable, ret_ref, ret_addr);
}

int gntshr_unshare(Gntshr *s, void *addr) {
        if (!s || !addr)
                return -EINVAL;
        return s->ops->unshare(s, addr);
}
