/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Event channels behind one ops table: "xen" (libxenevtchn) and "sim".
 *
 * Semantics both implementations honour (research xen-protocol.md §7):
 *  - bind_interdomain(domid, remote_port) needs the remote port to be unbound
 *    and to name our domain as its remote; it returns a new LOCAL port. Use the
 *    local port for notify/unmask/unbind.
 *  - a freshly bound port starts pending (Xen makes up for notifications lost
 *    while the remote was unbound): expect one event right after bind.
 *  - pending() returns one pending port and masks it; it is not delivered
 *    again until unmask(). Required order: poll fd -> pending -> unmask ->
 *    look at shared memory; then a change after the look raises a new event.
 *  - notify on a port whose remote end is unbound or closed is silently dropped.
 *  - unbind (or close of the handle, or the death of the process) returns the
 *    remote end to unbound, naming us as remote, so it can be bound again.
 *  - a handle must not be used across fork(); one thread per handle.
 *
 * pending() may return -EAGAIN when the fd was readable but no port is
 * deliverable (sim: a notification for a masked port; xen: never expected).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

typedef struct Evtchn Evtchn;

int evtchn_open(const Platform *p, Evtchn **ret);
Evtchn *evtchn_close(Evtchn *e); /* accepts NULL; unbinds every port; returns NULL */

int evtchn_fd(Evtchn *e); /* pollable: POLLIN when a port may be pending */

/* Backend side: bind to a guest's unbound port. */
int evtchn_bind_interdomain(Evtchn *e, uint32_t domid, uint32_t remote_port, uint32_t *ret_local_port);
/* Frontend side: allocate a port that remote_domid may bind to. */
int evtchn_bind_unbound(Evtchn *e, uint32_t remote_domid, uint32_t *ret_port);

int evtchn_pending(Evtchn *e, uint32_t *ret_port);
int evtchn_unmask(Evtchn *e, uint32_t port);
int evtchn_notify(Evtchn *e, uint32_t port);
int evtchn_unbind(Evtchn *e, uint32_t port);

/* Restrict the handle to one domain (xenevtchn_restrict). sim: recorded and
 * enforced on later binds. */
int evtchn_restrict(Evtchn *e, uint32_t domid);
