/* SPDX-License-Identifier: BSD-3-Clause */
/* Event channels on real Xen: a thin layer over libxenevtchn. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <xenevtchn.h>
#include <xentoollog.h>

#include "evtchn.h"
#include "util.h"
#include "xenops-internal.h"

static void null_vmessage(struct xentoollog_logger *logger, xentoollog_level level, int errnoval,
                          const char *context, const char *format, va_list al) {
}
static void null_progress(struct xentoollog_logger *logger, const char *context, const char *doing_what,
                          int percent, unsigned long done, unsigned long total) {
}
static void null_destroy(struct xentoollog_logger *logger) {
}

static struct xentoollog_logger null_logger = {
        .vmessage = null_vmessage,
        .progress = null_progress,
        .destroy = null_destroy,
};

struct xentoollog_logger *vtpm_xen_null_logger(void) {
        return &null_logger;
}

typedef struct EvtchnXen {
        Evtchn base;
        xenevtchn_handle *xce;
} EvtchnXen;

static xenevtchn_handle *xce_of(Evtchn *e) {
        return ((EvtchnXen *) e)->xce;
}

static Evtchn *xen_close(Evtchn *e) {
        EvtchnXen *x = (EvtchnXen *) e;
        /* The kernel unbinds every port of the handle on close. */
        if (x->xce)
                xenevtchn_close(x->xce);
        free(x);
        return NULL;
}

static int xen_fd(Evtchn *e) {
        return xenevtchn_fd(xce_of(e));
}

static int xen_bind_interdomain(Evtchn *e, uint32_t domid, uint32_t remote_port, uint32_t *ret_local_port) {
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(xce_of(e), domid, remote_port);
        if (p < 0)
                return negative_errno();
        *ret_local_port = (uint32_t) p;
        return 0;
}

static int xen_bind_unbound(Evtchn *e, uint32_t remote_domid, uint32_t *ret_port) {
        if (remote_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        xenevtchn_port_or_error_t p = xenevtchn_bind_unbound_port(xce_of(e), remote_domid);
        if (p < 0)
                return negative_errno();
        *ret_port = (uint32_t) p;
        return 0;
}

static int xen_pending(Evtchn *e, uint32_t *ret_port) {
        xenevtchn_port_or_error_t p = xenevtchn_pending(xce_of(e));
        if (p < 0)
                return negative_errno();
        *ret_port = (uint32_t) p;
        return 0;
}

static int xen_unmask(Evtchn *e, uint32_t port) {
        return xenevtchn_unmask(xce_of(e), port) < 0 ? negative_errno() : 0;
}

static int xen_notify(Evtchn *e, uint32_t port) {
        return xenevtchn_notify(xce_of(e), port) < 0 ? negative_errno() : 0;
}

static int xen_unbind(Evtchn *e, uint32_t port) {
        return xenevtchn_unbind(xce_of(e), port) < 0 ? negative_errno() : 0;
}

static int xen_restrict(Evtchn *e, uint32_t domid) {
        if (domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        /* Per handle (IOCTL_EVTCHN_RESTRICT_DOMID): ports already bound keep
         * working, new interdomain binds must name domid. */
        return xenevtchn_restrict(xce_of(e), (domid_t) domid) < 0 ? negative_errno() : 0;
}

static const EvtchnOps xen_ops = {
        .close = xen_close,
        .fd = xen_fd,
        .bind_interdomain = xen_bind_interdomain,
        .bind_unbound = xen_bind_unbound,
        .pending = xen_pending,
        .unmask = xen_unmask,
        .notify = xen_notify,
        .unbind = xen_unbind,
        .restrict_domid = xen_restrict,
};

int evtchn_xen_open(const Platform *p, Evtchn **ret) {
        EvtchnXen *x = calloc(1, sizeof(*x));
        if (!x)
                return -ENOMEM;
        x->base.ops = &xen_ops;
        /* flags 0: the library opens /dev/xen/evtchn with O_CLOEXEC. */
        x->xce = xenevtchn_open(vtpm_xen_null_logger(), 0);
        if (!x->xce) {
                int r = negative_errno();
                free(x);
                return r;
        }
        *ret = &x->base;
        return 0;
}
