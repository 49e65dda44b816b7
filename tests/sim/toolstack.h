/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The simulated toolstack: what libxl (Xen 4.17, tools/libs/light) writes to
 * xenstore and waits for when it creates a domain, adds and removes a vtpm
 * device and destroys a domain. Research xen-protocol.md §3 has the sources.
 *
 * Differences from libxl, on purpose:
 *   - No hypervisor: "creating a domain" is writing its xenstore nodes and
 *     introducing it to the (simulated) xenstored; "destroying" it asks the
 *     simulated platform to tear down its event channels and grants, then
 *     releases it from xenstored (on Xen the hypervisor does the first in
 *     domain_kill and xenstored fires @releaseDomain after it noticed).
 *   - Only the nodes a PV guest with vtpm devices needs are written (no
 *     memory/cpu/platform keys, no JSON domain config under /var/lib/xen).
 *   - Devices of one domain are removed one after the other, not in parallel,
 *     so destroying a domain with N unresponsive backends takes N timeouts.
 *
 * Suspend and resume (xl save, xl restore, xl migrate to the same host): the
 * toolstack asks a PV guest to suspend through xenstore control/shutdown, as
 * libxl does; the guest acknowledges and then, where a real kernel makes the
 * SCHEDOP_shutdown(SHUTDOWN_suspend) hypercall, writes its own domain file
 * (lib/domain.h, domain_sim_set). What the hypervisor does when the toolstack
 * resumes a domain (xc_domain_resume) or unpauses a migrated-in one is done
 * through the guest process's control socket DIR/NAME.domctl (guest.c's
 * header has the protocol): "resume <domid>" with the guest's current domid is
 * a cancelled suspend, with another domid the guest continues as that domain.
 *
 * Errors are returned as negative errno; what libxl would log at error level
 * goes to Toolstack.log (stderr by default), prefixed "libxl: error: ".
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "platform.h"
#include "util.h"

struct xs_handle;

/* Xen 4.17 libxl_internal.h: LIBXL_INIT_TIMEOUT and LIBXL_DESTROY_TIMEOUT. */
#define TOOLSTACK_INIT_TIMEOUT_MS 10000u
#define TOOLSTACK_DESTROY_TIMEOUT_MS 10000u
/* Xen 4.17 libxl_dom_suspend.c: 60 s for the guest to acknowledge the
 * control/shutdown request (domain_suspend_common_pvcontrol_suspending) and
 * 60 s more for it to have suspended (suspend_common_wait_guest). */
#define TOOLSTACK_SUSPEND_ACK_TIMEOUT_MS 60000u
#define TOOLSTACK_SUSPEND_TIMEOUT_MS 60000u

typedef struct Toolstack {
        struct xs_handle *xs;
        Platform *platform;            /* NULL: no event-channel/grant teardown */
        unsigned init_timeout_ms;      /* wait for backend InitWait on add */
        unsigned destroy_timeout_ms;   /* wait for backend Closed on remove */
        unsigned suspend_ack_timeout_ms; /* wait for the guest to clear control/shutdown */
        unsigned suspend_timeout_ms;   /* then for its domain to read suspended */
        FILE *log;                     /* libxl-style error messages; NULL = stderr */
        unsigned watch_seq;            /* makes watch tokens unique per handle */
} Toolstack;

/* Opens the dom0 xenstore connection at xenstored_path (NULL: libxenstore's
 * default, honouring $XENSTORED_PATH) and, if sim_dir is not NULL, the
 * simulated platform "sim:<sim_dir>". Timeouts are libxl's multiplied by
 * timeout_scale (> 0). */
int toolstack_open(const char *xenstored_path, const char *sim_dir, double timeout_scale,
                   Toolstack **ret);
Toolstack *toolstack_free(Toolstack *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Toolstack *, toolstack_free);

/* Reads $VTPM_SIM_TIMEOUT_SCALE (a positive decimal, e.g. "0.1"); 1.0 if unset.
 * Returns -EINVAL for a malformed value. */
int toolstack_timeout_scale_from_env(double *ret);

/* libxl__domain_make + libxl__build_post: /local/domain/<domid> (name, domid,
 * vm, device, control, error, data, ...), /vm/<domain_uuid>, /libxl/<domid>
 * with libxl's permissions, then xs_introduce_domain; with a platform, the
 * simulated hypervisor's domain file (handle = domain_uuid, running). */
int toolstack_domain_create(Toolstack *t, uint32_t domid, const char *name,
                            const char *domain_uuid);

/* libxl_device_vtpm_add with backend dom0: devid = next free under
 * /libxl/<domid>/device/vtpm, one transaction writing the backend, frontend and
 * /libxl dirs, then a wait for backend state to read exactly 2. On timeout
 * returns -ETIMEDOUT and, like libxl, leaves the nodes in place (the caller
 * destroys the domain when this was part of creating it). *ret_devid (may be
 * NULL) is written on success and on -ETIMEDOUT, so the caller can clean up. */
int toolstack_vtpm_add(Toolstack *t, uint32_t domid, const char *vtpm_uuid, uint32_t *ret_devid);

/* libxl_device_vtpm_remove (force=false: LIBXL__FORCE_AUTO, a timeout retries
 * with force) or the FORCE_ON removal of domain destroy (force=true). The nodes
 * are always removed when forced; returns -ETIMEDOUT if the backend never
 * reached Closed, -ENOENT if the device does not exist. */
int toolstack_vtpm_remove(Toolstack *t, uint32_t domid, uint32_t devid, bool force);

/* Devids under /libxl/<domid>/device/vtpm, ascending. */
int toolstack_vtpm_list(Toolstack *t, uint32_t domid, uint32_t **ret_devids, size_t *ret_n);

/* libxl_domain_destroy: FORCE removal of every vtpm device, removal of the
 * vm, domain and /libxl paths, then the simulated hypervisor's teardown and
 * xs_release_domain (which fires @releaseDomain). Keeps going after errors and
 * returns the first one. The guest process must already be stopped (paused). */
int toolstack_domain_destroy(Toolstack *t, uint32_t domid);

/* Reads a xenstore node as a decimal xenbus state; -ENOENT if missing. */
int toolstack_read_state(Toolstack *t, const char *path, int *ret);

/* libxl_name_to_domid: the domain whose /local/domain/<domid>/name is name;
 * -ENOENT if none. */
int toolstack_domain_by_name(Toolstack *t, const char *name, uint32_t *ret_domid);

/* libxl_domain_rename (libxl__domain_rename): refuses with -EEXIST ("domain
 * with name ... already exists") a name another domain has, with -EINVAL an
 * old_name (may be NULL) the domain does not have; then writes
 * /local/domain/<domid>/name and /vm/<uuid>/name in one transaction. */
int toolstack_domain_rename(Toolstack *t, uint32_t domid, const char *old_name, const char *new_name);

/* libxl__domain_suspend for a PV guest without a suspend event channel
 * (libxl__domain_pvcontrol_write "suspend", libxl__xswait for the guest to
 * clear it, then the wait for the domain to shut down with reason suspend).
 * -ETIMEDOUT if the guest did not acknowledge (the request is withdrawn, as
 * libxl does when the node still reads "suspend") or did not suspend;
 * -EOPNOTSUPP without a platform. */
int toolstack_domain_suspend(Toolstack *t, uint32_t domid);

/* libxl_domain_resume(suspend_cancel=1) after a suspend that is not followed
 * by a destroy (a failed migration): the domain reads running again
 * (xc_domain_resume), then the guest process is told to continue on its old
 * ring (toolstack_guest_resume with domid itself). guest_ctl: DIR/NAME.domctl. */
int toolstack_domain_resume(Toolstack *t, uint32_t domid, const char *guest_ctl);

/* The hypervisor's side of running a suspended guest again: "resume <domid>"
 * on the guest process's control socket, answered "ok" once the guest has
 * taken the request (before it re-probes its devices). -EPROTO with the
 * guest's "error ..." reply in *ret_error (may be NULL; free it). */
int toolstack_guest_resume(const char *guest_ctl, uint32_t domid, unsigned timeout_ms, char **ret_error);

/* The simulation's counterpart of the guest's files following an xl rename
 * (vtpm-sim rename): "rename <name>" on the control socket; the guest moves
 * DIR/OLD.{sock,sock.ctrl,tcti,guest-state,domctl} to NEW and answers "ok". */
int toolstack_guest_rename(const char *guest_ctl, const char *new_name, unsigned timeout_ms, char **ret_error);
