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

typedef struct Toolstack {
        struct xs_handle *xs;
        Platform *platform;            /* NULL: no event-channel/grant teardown */
        unsigned init_timeout_ms;      /* wait for backend InitWait on add */
        unsigned destroy_timeout_ms;   /* wait for backend Closed on remove */
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
 * with libxl's permissions, then xs_introduce_domain. */
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
