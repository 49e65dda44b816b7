/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to lib/: the ops tables behind evtchn.h and gnttab.h, and the few
 * helpers the simulated implementations share. Every object starts with its
 * ops pointer so the public functions can dispatch without knowing the
 * implementation.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Declared, not included: the public headers include nothing back, so the
 * ops stay below the modules that dispatch through them (no include cycle,
 * scripts/check-layering). */
typedef struct Evtchn Evtchn;
typedef struct Gnttab Gnttab;
typedef struct Gntshr Gntshr;
typedef struct Platform Platform;

typedef struct EvtchnOps {
        Evtchn *(*close)(Evtchn *e);
        int (*fd)(Evtchn *e);
        int (*bind_interdomain)(Evtchn *e, uint32_t domid, uint32_t remote_port, uint32_t *ret_local_port);
        int (*bind_unbound)(Evtchn *e, uint32_t remote_domid, uint32_t *ret_port);
        int (*pending)(Evtchn *e, uint32_t *ret_port);
        int (*unmask)(Evtchn *e, uint32_t port);
        int (*notify)(Evtchn *e, uint32_t port);
        int (*unbind)(Evtchn *e, uint32_t port);
        int (*restrict_domid)(Evtchn *e, uint32_t domid);
} EvtchnOps;

struct Evtchn {
        const EvtchnOps *ops;
};

typedef struct GnttabOps {
        Gnttab *(*close)(Gnttab *g);
        int (*map)(Gnttab *g, uint32_t domid, uint32_t ref, bool writable, void **ret_addr);
        int (*unmap)(Gnttab *g, void *addr);
        int (*restrict_domid)(Gnttab *g, uint32_t domid);
} GnttabOps;

struct Gnttab {
        const GnttabOps *ops;
};

typedef struct GntshrOps {
        Gntshr *(*close)(Gntshr *s);
        int (*share)(Gntshr *s, uint32_t domid, bool writable, uint32_t *ret_ref, void **ret_addr);
        int (*unshare)(Gntshr *s, void *addr);
} GntshrOps;

struct Gntshr {
        const GntshrOps *ops;
};

int evtchn_sim_open(const Platform *p, Evtchn **ret);
int gnttab_sim_open(const Platform *p, Gnttab **ret);
int gntshr_sim_open(const Platform *p, Gntshr **ret);

#if HAVE_XEN
int evtchn_xen_open(const Platform *p, Evtchn **ret);
int gnttab_xen_open(const Platform *p, Gnttab **ret);
int gntshr_xen_open(const Platform *p, Gntshr **ret);
struct xentoollog_logger;
/* A logger that drops everything: lib/ returns errors and never logs. */
struct xentoollog_logger *vtpm_xen_null_logger(void);
#endif
#if HAVE_XENCTRL
typedef struct DomainInfo DomainInfo;
/* domain-xen.c: an xc_interface behind a void pointer (domain.c never sees xenctrl.h). */
int domain_xen_open(void **ret);
void domain_xen_close(void *h);
int domain_xen_info(void *h, uint32_t domid, DomainInfo *ret);
#endif

/* Xen's DOMID_FIRST_RESERVED: domids at or above it are never real domains. */
#define VTPM_DOMID_FIRST_RESERVED 0x7FF0u

/*
 * Simulation helpers (platform.c). Everything lives under DIR/hv/; one lock
 * file, DIR/hv/lock, serialises every change to event-channel and grant
 * state across processes (flock). Its first 8 bytes are the counter that
 * hands out handle ids.
 */
/* Opens (creating it if needed) DIR/hv; O_DIRECTORY|O_CLOEXEC. */
int sim_hv_open(const Platform *p, int *ret_fd);
/* Opens DIR/hv/lock; O_CLOEXEC. */
int sim_lock_open(int hv_fd, int *ret_fd);
int sim_lock(int lock_fd, bool exclusive);
void sim_unlock(int lock_fd);

/* Called by platform_sim_destroy_domain with the global lock held. */
int evtchn_sim_destroy_domain_locked(int hv_fd, uint32_t domid);
int gnttab_sim_destroy_domain_locked(int hv_fd, uint32_t domid);

/* domain.c: removes DIR/hv/domain-<domid> (the simulated domain's info); absent is not an error. */
int domain_sim_file_remove(int hv_fd, uint32_t domid);
