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
 *
 * Errors both honour: bind_interdomain -EINVAL (remote port not unbound for
 * us), -ESRCH (no such domain), -EACCES (handle restricted to another domain);
 * notify/unbind of a port not bound on this handle -ENOTCONN (sim; xen passes
 * the kernel's errno through).
 *
 * How "sim" works: everything lives under DIR/hv/. DIR/hv/evtchn-<domid> is
 * the domain's port table, mmap'ed by every process that talks to the
 * domain: one 64-bit word per port (free/unbound/interdomain, remote domid,
 * remote port, owning handle id), changed only under the flock of
 * DIR/hv/lock and read lock-free on notify, plus a pending flag per port.
 * Each handle owns a Unix datagram socket DIR/hv/evh-<id>.sock (its fd); a
 * notify sets the peer port's pending flag and, on its 0->1 edge only, sends
 * one 12-byte wakeup {port, src domid, src port}, which the receiver checks
 * against the table before delivering (stale wakeups after a re-bind are
 * dropped). notify costs one sendto(). A handle whose process died is
 * detected by connect() to its socket failing with ECONNREFUSED; its ports
 * are closed (peer back to unbound) the next time anybody binds that port,
 * opens a handle, or runs out of ports.
 *
 * Where "sim" differs from Xen:
 *  - VTPM_SIM_EVTCHN_PORTS (1024) ports per domain; port numbers start at 1
 *    in dom0 and at 16 + domid % 48 elsewhere (Xen: wherever the domain's
 *    free ports are). Port 0 is never used, as in Xen.
 *  - a domain exists once any process opened a handle as that domain, and
 *    until platform_sim_destroy_domain(); there is no domain creation op.
 *  - ports belong to the handle that bound them, in every domain: when the
 *    process holding a guest-side handle dies, the guest's ports close (in
 *    Xen a guest's ports die only with the guest). A handle stays alive as
 *    long as any process holds its socket: a child forked without exec keeps
 *    the parent's ports bound (Linux: the same with an inherited evtchn fd).
 *  - closing the ports of a dead process is lazy (see above); until then
 *    notifies to it are dropped, as on Xen.
 *  - unmask() of a port not bound on this handle fails with -EINVAL (xen's
 *    write() to the evtchn device silently ignores it).
 *  - restrict(domid): the same rules as Linux (-EINVAL for domid 0, -EACCES
 *    when already restricted or for bind_unbound and binds to other domains),
 *    enforced by this library, not by a kernel.
 *  - xen: restrict uses xenevtchn_restrict (IOCTL_EVTCHN_RESTRICT_DOMID, per
 *    handle), not xentoolcore_restrict_all, which would also disable every
 *    other Xen handle of the process (see gnttab.h).
 *  - no ring overflow (POLLERR) as with the Linux evtchn device: a full
 *    socket queue loses only the wakeup, never the pending flag.
 *  - any process of the same uid that can reach DIR can forge notifications
 *    or rewrite the tables: the simulation is not a security boundary.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "platform.h"

/* sim: ports per domain (port 0 is never used, as in Xen). */
#define VTPM_SIM_EVTCHN_PORTS 1024u

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
