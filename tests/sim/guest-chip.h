/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM side of the simulated guest: Linux xen-tpmfront.c (the shared page,
 * vtpm_send/vtpm_recv/vtpm_cancel/vtpm_status) together with the parts of the
 * Linux TPM core it runs under (tpm_transmit/tpm_try_transmit in
 * tpm-interface.c, tpm1_get_timeouts and tpm1_calc_ordinal_duration in
 * tpm1-cmd.c). Research xen-protocol.md §2.3-2.9.
 *
 * One GuestChip is the "struct tpm_chip + struct tpm_private" of one device.
 * `lock` plays chip->tpm_mutex: every function below except init expects the
 * caller to hold it, so commands from the probe (xenwatch thread) and from
 * /dev/tpm0 users (socket thread) go over the page one at a time.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evtchn.h"
#include "gnttab.h"
#include "util.h"

typedef enum GuestWait {
        GUEST_WAIT_POLL,  /* Linux: no TPM_CHIP_FLAG_IRQ, polls the page every 1-5 ms */
        GUEST_WAIT_EVENT, /* Linux code paths with TPM_CHIP_FLAG_IRQ: block on the event channel */
} GuestWait;

/* Linux enum tpm_duration indices. */
enum {
        GUEST_DURATION_SHORT,
        GUEST_DURATION_MEDIUM,
        GUEST_DURATION_LONG,
        _GUEST_DURATION_MAX,
};

typedef struct GuestChip {
        pthread_mutex_t lock;
        Evtchn *evtchn;
        Gntshr *gntshr;
        GuestWait wait;
        double timeout_scale; /* multiplies every TPM timeout and duration */

        /* The ring (xenbus_setup_ring + xenbus_alloc_evtchn). */
        uint8_t *shr; /* NULL when there is none */
        uint32_t ring_ref;
        uint32_t port;

        bool registered; /* tpm_chip_register done: "/dev/tpm0" exists; written
                          * under lock, read atomically without it */

        /* struct tpm_chip: all zero for a fresh chip, like tpm_chip_alloc. */
        bool have_timeouts;
        bool timeout_adjusted;
        uint64_t timeout_us[4]; /* timeout_a..d */
        uint64_t duration_us[_GUEST_DURATION_MAX];

        /* Set by the swtpm control channel (CMD_SET_LOCALITY); written to the
         * page's locality byte like mini-os tpmfront once it is not 0. Linux
         * never writes that byte. Accessed atomically. */
        uint8_t locality;
        bool locality_used;

        /* Counters for logs and tests. */
        uint64_t commands, timeouts, cancels;
} GuestChip;

/* Logging is the program's business (guest.c). */
void guest_log(const char *fmt, ...) _printf_(1, 2);

void guest_chip_init(GuestChip *c, Evtchn *e, Gntshr *s, GuestWait wait, double timeout_scale);

/* xenbus_setup_ring + xenbus_alloc_evtchn for backend_domid; also resets the
 * chip to a freshly allocated one (no timeouts known). On failure nothing is
 * left allocated. `what` (may be NULL) gets the xenbus_dev_fatal message. */
int guest_chip_setup_ring(GuestChip *c, uint32_t backend_domid, const char **ret_what);
/* ring_free: revoke the grant (the backend keeps its mapping until it unmaps)
 * and close the port (the backend's end goes back to unbound). */
void guest_chip_free_ring(GuestChip *c);

/* tpm_transmit(): buf holds a command (its header size field says how long);
 * on success the response replaces it and *ret_len is its length. bufsiz is
 * the buffer size (Linux: TPM_BUFSIZE 4096). Returns -EINVAL, -ENODATA,
 * -E2BIG, -ETIME (timed out: CANCEL was set), -ECANCELED (backend set IDLE),
 * -EFAULT (response length disagrees with its header), -EIO. */
int guest_chip_transmit(GuestChip *c, uint8_t *buf, size_t bufsiz, size_t *ret_len);

/* tpm_transmit_cmd(): as above, then 0, a positive TPM return code, or
 * -EFAULT if the body is shorter than min_body. */
int guest_chip_transmit_cmd(GuestChip *c, uint8_t *buf, size_t bufsiz, size_t min_body,
                            const char *desc, size_t *ret_len);

/* tpm1_get_timeouts(): TPM_GetCapability(TIS_TIMEOUT), TPM_Startup(ST_CLEAR)
 * and a retry on TPM_INVALID_POSTINIT, then TPM_GetCapability(TIS_DURATION). */
int guest_chip_get_timeouts(GuestChip *c);

void guest_chip_set_locality(GuestChip *c, uint8_t locality);
