/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "guest-chip.h"
#include "tpm.h"
#include "tpmif.h"

/* Linux include/linux/tpm.h and tpm.h */
#define TPM_BUFSIZE 4096u
#define TPM_TIMEOUT_MS 5u      /* wait_for_tpm_stat polling period */
#define TPM_TIMEOUT_POLL_MS 1u /* tpm_try_transmit polling period */
#define TPM2_DURATION_SHORT_MS 20u
#define TPM2_DURATION_LONG_MS 2000u
#define TPM2_RC_TESTING 0x90au
#define TPM_UNKNOWN_DURATION_US (2ull * 60 * 1000 * 1000) /* tpm1_calc_ordinal_duration fallback */
#define TPM_MAX_ORDINAL 243u

/* TPM 1.2 (TPM Main Part 2) */
#define TPM12_ORD_GET_CAPABILITY 101u
#define TPM12_ORD_CONTINUE_SELFTEST 83u
#define TPM12_ORD_PCR_READ 21u
#define TPM12_ORD_EXTEND 20u
#define TPM12_CAP_PROP 5u
#define TPM12_CAP_PROP_TIS_TIMEOUT 0x115u
#define TPM12_CAP_PROP_TIS_DURATION 0x120u

/* vtpm_status() bits */
enum {
        VTPM_STATUS_RUNNING = 0x1,
        VTPM_STATUS_IDLE = 0x2,
        VTPM_STATUS_RESULT = 0x4,
        VTPM_STATUS_CANCELED = 0x8,
};

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000u, .tv_nsec = (long) (ms % 1000u) * 1000000L };
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
                ;
}

static uint64_t scaled(const GuestChip *c, uint64_t us) {
        double v = ceil((double) us * c->timeout_scale);
        return v < 0 ? 0 : (uint64_t) v;
}

void guest_chip_init(GuestChip *c, Evtchn *e, Gntshr *s, GuestWait wait, double timeout_scale) {
        *c = (GuestChip){ .evtchn = e, .gntshr = s, .wait = wait, .timeout_scale = timeout_scale };
        pthread_mutex_init(&c->lock, NULL);
}

void guest_chip_set_locality(GuestChip *c, uint8_t locality) {
        __atomic_store_n(&c->locality, locality, __ATOMIC_RELAXED);
}

/* The page is the backend's memory as much as ours: every access is a single
 * load or store, and nothing read from it is trusted twice. */
static uint8_t shr_state(const GuestChip *c) {
        return __atomic_load_n(&c->shr[TPMIF_OFF_STATE], __ATOMIC_ACQUIRE);
}

static void shr_set_state(GuestChip *c, uint8_t state) {
        __atomic_store_n(&c->shr[TPMIF_OFF_STATE], state, __ATOMIC_RELEASE);
}

static size_t shr_data_offset(const GuestChip *c) {
        return TPMIF_HEADER_SIZE + 4u * __atomic_load_n(&c->shr[TPMIF_OFF_NR_EXTRA], __ATOMIC_RELAXED);
}

static uint32_t shr_length(const GuestChip *c) {
        uint32_t v;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        memcpy(&v, c->shr + TPMIF_OFF_LENGTH, sizeof(v)); /* native byte order */
        return v;
}

static uint8_t vtpm_status(const GuestChip *c) {
        switch (shr_state(c)) {
        case TPMIF_STATE_IDLE:
                return VTPM_STATUS_IDLE | VTPM_STATUS_CANCELED;
        case TPMIF_STATE_FINISH:
                return VTPM_STATUS_IDLE | VTPM_STATUS_RESULT;
        case TPMIF_STATE_SUBMIT:
        case TPMIF_STATE_CANCEL:
                return VTPM_STATUS_RUNNING;
        default:
                return 0;
        }
}

/* What tpmif_interrupt() and the evtchn core do with an event: take it off
 * the port and unmask, so the next notification raises a new one. */
static void drain_events(GuestChip *c) {
        struct pollfd p = { .fd = evtchn_fd(c->evtchn), .events = POLLIN };
        uint32_t port;

        while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
                if (evtchn_pending(c->evtchn, &port) < 0)
                        break;
                (void) evtchn_unmask(c->evtchn, port);
        }
}

static void vtpm_cancel(GuestChip *c) {
        shr_set_state(c, TPMIF_STATE_CANCEL);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        (void) evtchn_notify(c->evtchn, c->port);
        c->cancels++;
}

/* wait_for_tpm_stat(). Poll mode sleeps TPM_TIMEOUT between looks, so even a
 * zero timeout looks twice (the do/while of the real loop). Event mode is the
 * TPM_CHIP_FLAG_IRQ branch: sleep on the event channel until the condition
 * holds or the deadline passes. */
static int wait_for_stat(GuestChip *c, uint8_t mask, uint64_t timeout_us, bool check_cancel) {
        uint64_t stop;
        uint8_t status;

        status = vtpm_status(c);
        if ((status & mask) == mask)
                return 0;

        stop = now_us() + timeout_us;

        if (c->wait == GUEST_WAIT_EVENT) {
                for (;;) {
                        uint64_t now = now_us();
                        struct pollfd p = { .fd = evtchn_fd(c->evtchn), .events = POLLIN };
                        uint32_t port;
                        int r;

                        status = vtpm_status(c);
                        if ((status & mask) == mask)
                                return 0;
                        if (check_cancel && (status & VTPM_STATUS_CANCELED))
                                return -ECANCELED;
                        if (now >= stop)
                                return -ETIME;
                        r = poll(&p, 1, (int) ((stop - now + 999) / 1000));
                        if (r > 0 && (p.revents & POLLIN) && evtchn_pending(c->evtchn, &port) >= 0)
                                (void) evtchn_unmask(c->evtchn, port);
                }
        }

        do {
                sleep_ms(TPM_TIMEOUT_MS);
                drain_events(c);
                status = vtpm_status(c);
                if ((status & mask) == mask)
                        return 0;
        } while (now_us() < stop);
        return -ETIME;
}

/* tpm1_calc_ordinal_duration(). Linux classifies every TPM 1.2 ordinal below
 * 243 (TPM Main Part 2, §17 durations); this simulation knows the class of the
 * ordinals it sends itself and uses the long duration for the rest, which is
 * never shorter than what Linux allows. Anything else, and everything while
 * the TPM has not reported its durations, gets two minutes. */
static uint64_t ordinal_duration_us(const GuestChip *c, uint32_t ordinal) {
        uint64_t d = 0;

        if (ordinal < TPM_MAX_ORDINAL) {
                switch (ordinal) {
                case TPM12_ORD_GET_CAPABILITY:
                case TPM12_ORD_STARTUP:
                case TPM12_ORD_GET_RANDOM:
                case TPM12_ORD_PCR_READ:
                case TPM12_ORD_EXTEND:
                        d = c->duration_us[GUEST_DURATION_SHORT];
                        break;
                case TPM12_ORD_CONTINUE_SELFTEST:
                default:
                        d = c->duration_us[GUEST_DURATION_LONG];
                        break;
                }
        }
        if (d == 0)
                d = TPM_UNKNOWN_DURATION_US;
        return scaled(c, d);
}

static int vtpm_send(GuestChip *c, const uint8_t *buf, size_t count) {
        size_t offset = shr_data_offset(c);
        uint8_t locality;
        uint32_t len32 = (uint32_t) count;
        uint32_t ordinal;

        if (offset > VTPM_XEN_PAGE_SIZE || count > VTPM_XEN_PAGE_SIZE - offset)
                return -EINVAL;

        /* Wait for completion of any earlier command or cancellation. */
        if (wait_for_stat(c, VTPM_STATUS_IDLE, scaled(c, c->timeout_us[2]), true) < 0) {
                vtpm_cancel(c);
                return -ETIME;
        }

        memcpy(c->shr + offset, buf, count);
        memcpy(c->shr + TPMIF_OFF_LENGTH, &len32, sizeof(len32));
        locality = __atomic_load_n(&c->locality, __ATOMIC_RELAXED);
        if (locality != 0 || c->locality_used) {
                c->shr[TPMIF_OFF_LOCALITY] = locality;
                c->locality_used = true;
        }
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        shr_set_state(c, TPMIF_STATE_SUBMIT);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        (void) evtchn_notify(c->evtchn, c->port);

        ordinal = tpm_be32(buf + 6);
        if (wait_for_stat(c, VTPM_STATUS_IDLE, ordinal_duration_us(c, ordinal), true) < 0) {
                vtpm_cancel(c);
                return -ETIME;
        }
        return 0;
}

static int vtpm_recv(GuestChip *c, uint8_t *buf, size_t count, size_t *ret_len) {
        size_t offset = shr_data_offset(c);
        size_t length = shr_length(c); /* read before the state, like Linux */

        if (shr_state(c) == TPMIF_STATE_IDLE)
                return -ECANCELED;

        if (wait_for_stat(c, VTPM_STATUS_RESULT, scaled(c, c->timeout_us[2]), true) < 0) {
                vtpm_cancel(c);
                return -ETIME;
        }

        if (offset > VTPM_XEN_PAGE_SIZE)
                return -EIO;
        if (length > VTPM_XEN_PAGE_SIZE - offset)
                length = VTPM_XEN_PAGE_SIZE - offset;
        if (length > count)
                length = count;

        memcpy(buf, c->shr + offset, length);
        *ret_len = length;
        return 0;
}

/* tpm_try_transmit() */
static int try_transmit(GuestChip *c, uint8_t *buf, size_t bufsiz, size_t *ret_len) {
        uint32_t count, ordinal;
        size_t len = 0;
        int r;

        if (bufsiz < TPM_HEADER_SIZE)
                return -EINVAL;
        if (bufsiz > TPM_BUFSIZE)
                bufsiz = TPM_BUFSIZE;

        count = tpm_be32(buf + 2);
        ordinal = tpm_be32(buf + 6);
        if (count == 0)
                return -ENODATA;
        if (count > bufsiz)
                return -E2BIG;
        if (!c->shr)
                return -ENODEV;

        c->commands++;
        r = vtpm_send(c, buf, count);
        if (r < 0) {
                guest_log("tpm: send(): error %d", r);
                if (r == -ETIME)
                        c->timeouts++;
                return r;
        }

        if (c->wait == GUEST_WAIT_POLL) {
                uint64_t stop = now_us() + ordinal_duration_us(c, ordinal);
                bool done = false;

                do {
                        uint8_t status = vtpm_status(c);
                        if ((status & (VTPM_STATUS_IDLE | VTPM_STATUS_RESULT)) ==
                            (VTPM_STATUS_IDLE | VTPM_STATUS_RESULT)) {
                                done = true;
                                break;
                        }
                        if (status & VTPM_STATUS_CANCELED) {
                                guest_log("tpm: Operation Canceled");
                                return -ECANCELED;
                        }
                        sleep_ms(TPM_TIMEOUT_POLL_MS);
                } while (now_us() < stop);

                if (!done && (vtpm_status(c) & (VTPM_STATUS_IDLE | VTPM_STATUS_RESULT)) !=
                                     (VTPM_STATUS_IDLE | VTPM_STATUS_RESULT)) {
                        vtpm_cancel(c);
                        c->timeouts++;
                        guest_log("tpm: Operation Timed out");
                        return -ETIME;
                }
        }

        r = vtpm_recv(c, buf, bufsiz, &len);
        if (r < 0) {
                guest_log("tpm: tpm_transmit: tpm_recv: error %d", r);
                return r;
        }
        if (len < TPM_HEADER_SIZE || len != tpm_be32(buf + 2))
                return -EFAULT;

        *ret_len = len;
        return 0;
}

int guest_chip_transmit(GuestChip *c, uint8_t *buf, size_t bufsiz, size_t *ret_len) {
        /* Header and handles, restored before each retry (tpm_transmit). */
        uint8_t save[TPM_HEADER_SIZE + 3 * 4];
        size_t save_size = bufsiz < sizeof(save) ? bufsiz : sizeof(save);
        unsigned delay_ms = TPM2_DURATION_SHORT_MS;
        uint32_t cc = bufsiz >= TPM_HEADER_SIZE ? tpm_be32(buf + 6) : 0;
        size_t len = 0;
        int r;

        memcpy(save, buf, save_size);
        for (;;) {
                uint32_t rc;

                r = try_transmit(c, buf, bufsiz, &len);
                if (r < 0)
                        return r;
                rc = tpm_be32(buf + 6);
                if (rc != TPM2_RC_RETRY && rc != TPM2_RC_TESTING)
                        break;
                if (rc == TPM2_RC_TESTING && cc == 0x143u /* TPM2_CC_SelfTest */)
                        break;
                if (delay_ms > TPM2_DURATION_LONG_MS) {
                        guest_log("tpm: %s", rc == TPM2_RC_RETRY ? "in retry loop" : "self test is still running");
                        break;
                }
                sleep_ms(delay_ms);
                delay_ms *= 2;
                memcpy(buf, save, save_size);
        }
        *ret_len = len;
        return 0;
}

int guest_chip_transmit_cmd(GuestChip *c, uint8_t *buf, size_t bufsiz, size_t min_body,
                            const char *desc, size_t *ret_len) {
        size_t len = 0;
        uint32_t err;
        int r;

        r = guest_chip_transmit(c, buf, bufsiz, &len);
        if (r < 0)
                return r;

        err = tpm_be32(buf + 6);
        if (err != 0 && desc)
                guest_log("tpm: A TPM error (%u) occurred %s", err, desc);
        if (err != 0)
                return (int) (err & 0x7fffffffu);
        if (len < min_body + TPM_HEADER_SIZE)
                return -EFAULT;
        if (ret_len)
                *ret_len = len;
        return 0;
}

/* tpm1_getcap() with TPM_CAP_PROP; the capability starts 4 bytes (its size
 * field) after the header. Linux reads it from its command buffer without
 * checking that the response was that long; so do we (buf is zero-filled). */
static int tpm1_getcap(GuestChip *c, uint32_t subcap, uint8_t *cap, size_t cap_len, const char *desc) {
        uint8_t buf[TPM_BUFSIZE] = {};
        int r;

        tpm_put_be16(buf, TPM12_TAG_RQU_COMMAND);
        tpm_put_be32(buf + 2, 22);
        tpm_put_be32(buf + 6, TPM12_ORD_GET_CAPABILITY);
        tpm_put_be32(buf + 10, TPM12_CAP_PROP);
        tpm_put_be32(buf + 14, 4);
        tpm_put_be32(buf + 18, subcap);

        r = guest_chip_transmit_cmd(c, buf, sizeof(buf), cap_len, desc, NULL);
        if (r == 0)
                memcpy(cap, buf + TPM_HEADER_SIZE + 4, cap_len);
        return r;
}

static int tpm1_startup(GuestChip *c) {
        uint8_t buf[TPM_BUFSIZE] = {};
        int r;

        guest_log("tpm: starting up the TPM manually");
        r = tpm12_build_startup(TPM12_ST_CLEAR, buf, sizeof(buf));
        if (r < 0)
                return r;
        return guest_chip_transmit_cmd(c, buf, sizeof(buf), 0, "attempting to start the TPM", NULL);
}

int guest_chip_get_timeouts(GuestChip *c) {
        uint8_t cap[16];
        uint64_t old[4], chip[4], eff[4];
        int r;

        if (c->have_timeouts)
                return 0;

        r = tpm1_getcap(c, TPM12_CAP_PROP_TIS_TIMEOUT, cap, 16, NULL);
        if (r == TPM12_INVALID_POSTINIT) {
                if (tpm1_startup(c) != 0)
                        return r;
                r = tpm1_getcap(c, TPM12_CAP_PROP_TIS_TIMEOUT, cap, 16, "attempting to determine the timeouts");
        }
        if (r != 0) {
                guest_log("tpm: A TPM error (%d) occurred attempting to determine the timeouts", r);
                return r;
        }

        for (size_t i = 0; i < 4; i++) {
                old[i] = c->timeout_us[i];
                chip[i] = eff[i] = tpm_be32(cap + 4 * i);
        }
        if (!c->timeout_adjusted) {
                for (size_t i = 0; i < 4; i++) {
                        if (eff[i])
                                continue;
                        eff[i] = old[i];
                        c->timeout_adjusted = true;
                }
                if (eff[0] != 0 && eff[0] < 1000) { /* msec rather than usec */
                        for (size_t i = 0; i < 4; i++)
                                eff[i] *= 1000;
                        c->timeout_adjusted = true;
                }
        }
        if (c->timeout_adjusted)
                guest_log("tpm: Adjusting reported timeouts: A %llu->%lluus B %llu->%lluus C %llu->%lluus D %llu->%lluus",
                          (unsigned long long) chip[0], (unsigned long long) eff[0],
                          (unsigned long long) chip[1], (unsigned long long) eff[1],
                          (unsigned long long) chip[2], (unsigned long long) eff[2],
                          (unsigned long long) chip[3], (unsigned long long) eff[3]);
        memcpy(c->timeout_us, eff, sizeof(eff));

        r = tpm1_getcap(c, TPM12_CAP_PROP_TIS_DURATION, cap, 12, "attempting to determine the durations");
        if (r != 0)
                return r;

        for (size_t i = 0; i < _GUEST_DURATION_MAX; i++)
                c->duration_us[i] = tpm_be32(cap + 4 * i);
        /* Linux: a short duration below HZ/100 was reported in msec. */
        if (c->duration_us[GUEST_DURATION_SHORT] < 10000) {
                c->duration_us[GUEST_DURATION_SHORT] = 1000000;
                c->duration_us[GUEST_DURATION_MEDIUM] *= 1000;
                c->duration_us[GUEST_DURATION_LONG] *= 1000;
                guest_log("tpm: Adjusting TPM timeout parameters.");
        }
        c->have_timeouts = true;
        return 0;
}

int guest_chip_setup_ring(GuestChip *c, uint32_t backend_domid, const char **ret_what) {
        void *page = NULL;
        uint32_t ref = 0, port = 0;
        int r;

        r = gntshr_share(c->gntshr, backend_domid, true, &ref, &page);
        if (r < 0) {
                if (ret_what)
                        *ret_what = "granting access to ring page";
                return r;
        }
        r = evtchn_bind_unbound(c->evtchn, backend_domid, &port);
        if (r < 0) {
                (void) gntshr_unshare(c->gntshr, page);
                if (ret_what)
                        *ret_what = "allocating event channel";
                return r;
        }

        c->shr = page;
        c->ring_ref = ref;
        c->port = port;
        /* A new struct tpm_chip (tpmm_chip_alloc) knows no timeouts. */
        c->have_timeouts = false;
        c->timeout_adjusted = false;
        memset(c->timeout_us, 0, sizeof(c->timeout_us));
        memset(c->duration_us, 0, sizeof(c->duration_us));
        c->locality_used = false;
        return 0;
}

void guest_chip_free_ring(GuestChip *c) {
        if (!c->shr)
                return;
        (void) gntshr_unshare(c->gntshr, c->shr);
        (void) evtchn_unbind(c->evtchn, c->port);
        c->shr = NULL;
        c->ring_ref = 0;
        c->port = 0;
}
