/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Which Xen the process talks to.
 *
 *   "xen"      real hypervisor: libxenevtchn / libxengnttab / libxengntshr.
 *   "sim:DIR"  the simulated hypervisor of tests/sim: event channels and grants
 *              implemented with shared memory and sockets under DIR (see
 *              evtchn.h and gnttab.h for every way it differs from Xen).
 *
 * xenstore is not part of this: every mode uses the real libxenstore, pointed
 * at the simulated xenstored with XENSTORED_PATH in sim mode.
 */
#pragma once

#include <stdint.h>

typedef enum PlatformKind {
        PLATFORM_XEN,
        PLATFORM_SIM,
} PlatformKind;

typedef struct Platform {
        PlatformKind kind;
        char *sim_dir;       /* PLATFORM_SIM only: absolute path of the simulation directory */
        uint32_t self_domid; /* the domain this process acts as; 0 (dom0) for vtpmd */
} Platform;

/* Parses "xen" or "sim:DIR" (DIR made absolute with realpath(), or the cwd
 * when DIR does not exist yet). self_domid is the domain the caller acts as
 * (only meaningful for sim; xen ignores it). -EINVAL for anything else,
 * -EOPNOTSUPP for "xen" in a build without libxen. Platform objects must come
 * from here (platform_describe/platform_free rely on it); DIR itself must
 * exist before the first evtchn/gnttab handle is opened. */
int platform_parse(const char *spec, uint32_t self_domid, Platform **ret);
Platform *platform_free(Platform *p);
/* "xen" or "sim:DIR"; static or p-owned string. */
const char *platform_describe(const Platform *p);

/*
 * Simulation only: what Xen does to a domain's event channels and grants when
 * the domain is destroyed. Every port of the domain is closed (remote ends go
 * back to unbound), and every grant the domain made is revoked; a grant that
 * another domain still has mapped stays readable by that mapper until it
 * unmaps (like a zombie domain's pages in Xen). Returns -EOPNOTSUPP for xen.
 * Destroying a domain that does not exist is not an error. The domain can be
 * "created" again by opening a handle as it (see evtchn.h). Its domain info
 * (domain.h) goes too.
 */
int platform_sim_destroy_domain(const Platform *p, uint32_t domid);
