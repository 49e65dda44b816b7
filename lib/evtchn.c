/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stddef.h>

#include "evtchn.h"
#include "xenops-internal.h"

int evtchn_open(const Platform *p, Evtchn **ret) {
        if (!p || !ret)
                return -EINVAL;
        switch (p->kind) {
        case PLATFORM_XEN:
#if HAVE_XEN
                return evtchn_xen_open(p, ret);
#else
                return -EOPNOTSUPP;
#endif
        case PLATFORM_SIM:
                return evtchn_sim_open(p, ret);
        }
        return -EINVAL;
}

Evtchn *evtchn_close(Evtchn *e) {
        if (!e)
                return NULL;
        return e->ops->close(e);
}

int evtchn_fd(Evtchn *e) {
        if (!e)
                return -EINVAL;
        return e->ops->fd(e);
}

int evtchn_bind_interdomain(Evtchn *e, uint32_t domid, uint32_t remote_port, uint32_t *ret_local_port) {
        if (!e || !ret_local_port)
                return -EINVAL;
        return e->ops->bind_interdomain(e, domid, remote_port, ret_local_port);
}

int evtchn_bind_unbound(Evtchn *e, uint32_t remote_domid, uint32_t *ret_port) {
        if (!e || !ret_port)
                return -EINVAL;
        return e->ops->bind_unbound(e, remote_domid, ret_port);
}

int evtchn_pending(Evtchn *e, uint32_t *ret_port) {
        if (!e || !ret_port)
                return -EINVAL;
        return e->ops->pending(e, ret_port);
}

int evtchn_unmask(Evtchn *e, uint32_t port) {
        if (!e)
                return -EINVAL;
        return e->ops->unmask(e, port);
}

int evtchn_notify(Evtchn *e, uint32_t port) {
        if (!e)
                return -EINVAL;
        return e->ops->notify(e, port);
}

int evtchn_unbind(Evtchn *e, uint32_t port) {
        if (!e)
                return -EINVAL;
        return e->ops->unbind(e, port);
}

int evtchn_restrict(Evtchn *e, uint32_t domid) {
        if (!e)
                return -EINVAL;
        return e->ops->restrict_domid(e, domid);
}
