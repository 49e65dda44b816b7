/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the hypervisor says about a domain: whether it has shut down, why, and
 * its handle (the domain UUID libxl keeps across save, restore and migration).
 * The supervisor asks when a guest's device goes away (a suspend for xl save
 * or xl migrate is not an end: the vTPM is suspended instead of reset) and
 * when a device wants a vTPM another device holds (the holder's domain must
 * have suspended for a migration to take it over).
 *
 *   "xen"      libxenctrl's xc_domain_getinfo (XEN_DOMCTL_getdomaininfo).
 *   "sim:DIR"  DIR/hv/domain-<domid>, written with domain_sim_set by the
 *              simulated toolstack at create and at a cancelled suspend's
 *              resume, and by the simulated guest when it suspends (its
 *              SCHEDOP_shutdown(suspend)); removed at destroy
 *              (platform_sim_destroy_domain). Differences from Xen: a domain
 *              that no toolstack call created has no file and reads as absent
 *              (-ENOENT); a guest process that dies leaves its domain "running"
 *              (no crash or poweroff reason is ever recorded).
 *
 * The file, one "key=value" per line, written atomically:
 *   uuid=<canonical UUID>
 *   shutdown=<none|poweroff|reboot|suspend|crash|watchdog|soft_reset>
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct Platform Platform;
typedef struct DomainCtl DomainCtl;

/* Xen's SHUTDOWN_* codes (public/sched.h). */
typedef enum DomainShutdown {
        DOMAIN_SHUTDOWN_POWEROFF = 0,
        DOMAIN_SHUTDOWN_REBOOT = 1,
        DOMAIN_SHUTDOWN_SUSPEND = 2,
        DOMAIN_SHUTDOWN_CRASH = 3,
        DOMAIN_SHUTDOWN_WATCHDOG = 4,
        DOMAIN_SHUTDOWN_SOFT_RESET = 5,
} DomainShutdown;

#define DOMAIN_HANDLE_SIZE 16u

typedef struct DomainInfo {
        bool shutdown;         /* the domain has shut down (it still exists) ... */
        DomainShutdown reason; /* ... for this reason (only when shutdown) */
        bool dying;            /* being destroyed */
        uint8_t handle[DOMAIN_HANDLE_SIZE];
} DomainInfo;

/* -EOPNOTSUPP for "xen" in a build without libxenctrl; -errno if the
 * hypervisor interface cannot be opened. p is borrowed. */
int domainctl_open(const Platform *p, DomainCtl **ret);
DomainCtl *domainctl_free(DomainCtl *d);

/* -ENOENT: no such domain; -EBADMSG: a malformed simulation file; other -errno. */
int domainctl_info(DomainCtl *d, uint32_t domid, DomainInfo *ret);

/* Suspended for save or migration: shut down with reason suspend and not dying. */
bool domain_info_suspended(const DomainInfo *i);

/* "poweroff", "reboot", "suspend", ...; "unknown" for anything else. */
const char *domain_shutdown_to_string(DomainShutdown r);
/* The inverse; -EINVAL. */
int domain_shutdown_from_string(const char *s, DomainShutdown *ret);

/* Simulation only (-EOPNOTSUPP for xen): what the toolstack makes the
 * simulated hypervisor say about domid. info->dying is not stored. */
int domain_sim_set(const Platform *p, uint32_t domid, const DomainInfo *info);
/* Removes domid's file; a domain without one is not an error. */
int domain_sim_remove(const Platform *p, uint32_t domid);
