/* SPDX-License-Identifier: BSD-3-Clause */
/* The data path from the page's header to FINISH or IDLE (page-server.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "page-server.h"
#include "tpmif.h"
#include "util.h"

/* Anything a guest can trigger is rate-limited: at most 10 lines per 10 s of each kind. */
#define PAGE_LOG_INTERVAL_NS (10ull * 1000000000ull)
#define PAGE_LOG_BURST 10u

struct PageServer {
        PageServerConfig c;
        bool busy;
        uint32_t busy_offset;
        bool cancel_seen;
        IpcStats stats;
        RateLimit rl_reject, rl_cancel, rl_bad_response;
        /* Our one copy of what the guest wrote: at most a page (TPM_MAX_PACKET). */
        uint8_t cmd[TPM_MAX_PACKET];
};

int page_server_new(const PageServerConfig *c, PageServer **ret) {
        PageServer *ps;

        if (!c->page || c->page_size < TPMIF_HEADER_SIZE + TPM_HEADER_SIZE || !c->ops || !c->ops->run ||
            !c->ops->notify || c->command_max == 0)
                return -EINVAL;
        ps = calloc(1, sizeof(*ps));
        if (!ps)
                return -ENOMEM;
        ps->c = *c;
        if (ps->c.command_max > sizeof(ps->cmd))
                ps->c.command_max = sizeof(ps->cmd);
        ps->rl_reject = ps->rl_cancel = ps->rl_bad_response = RATELIMIT_INIT(PAGE_LOG_INTERVAL_NS, PAGE_LOG_BURST);
        *ret = ps;
        return 0;
}

PageServer *page_server_free(PageServer *ps) {
        free(ps);
        return NULL;
}

bool page_server_busy(const PageServer *ps) {
        return ps->busy;
}

IpcStats *page_server_stats(PageServer *ps) {
        return &ps->stats;
}

static bool limited(RateLimit *rl, const char *kind) {
        return log_ratelimit(rl, kind, UINT32_MAX, UINT32_MAX, NULL);
}

/* Step 2: the header, once, into a local copy. */
static void read_header(const PageServer *ps, uint8_t raw[TPMIF_HEADER_SIZE]) {
        const volatile uint8_t *v = ps->c.page;
        for (size_t i = 0; i < TPMIF_HEADER_SIZE; i++)
                raw[i] = v[i];
        /* Nothing after this (the command copy) may be read before the header. */
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Step 4: the response, its length, then the state; notify. */
static void post(PageServer *ps, uint32_t offset, const uint8_t *resp, size_t len, uint8_t state) {
        uint8_t *page = ps->c.page;

        if (len > 0)
                memcpy(page + offset, resp, len);
        __atomic_store_n((uint32_t *) (void *) (page + TPMIF_OFF_LENGTH), (uint32_t) len, __ATOMIC_RELAXED);
        /* The guest must see the response and length before the state. */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(page + TPMIF_OFF_STATE, state, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        ps->c.ops->notify(ps->c.userdata);
}

/* Step 5: a well-formed TPM error response, where it fits. */
static void post_error(PageServer *ps, uint32_t offset, uint32_t rc) {
        uint8_t err[TPM_HEADER_SIZE];

        if (tpmif_response_room(offset, ps->c.page_size) < TPM_HEADER_SIZE)
                offset = TPMIF_HEADER_SIZE;
        tpm_error_response(ps->c.family, rc, err);
        post(ps, offset, err, sizeof(err), TPMIF_STATE_FINISH);
}

size_t page_server_answer(TpmFamily family, RateLimit *rl, IpcStats *stats, int r, const uint8_t **io_resp,
                          size_t len, size_t room, uint8_t err[TPM_HEADER_SIZE]) {
        TpmHeader h;

        if (r < 0 || !*io_resp || tpm_header_parse(*io_resp, len, &h) < 0 || h.size != len || len > room) {
                if (limited(rl, "bad-response"))
                        log_msg(LOG_INFO, "TPM gave no usable response (%s, %zu bytes); answering TPM failure",
                                r < 0 ? strerror(-r) : "bad size", len);
                tpm_error_response(family, tpm_rc_failure(family), err);
                *io_resp = err;
                return TPM_HEADER_SIZE;
        }
        stats->commands++;
        return len;
}

static void post_result(PageServer *ps, int r, const uint8_t *resp, size_t len) {
        uint8_t err[TPM_HEADER_SIZE];

        len = page_server_answer(ps->c.family, &ps->rl_bad_response, &ps->stats, r, &resp, len,
                                 tpmif_response_room(ps->busy_offset, ps->c.page_size), err);
        if (ps->c.trace)
                log_hex("response", resp, len);
        ps->busy = false;
        post(ps, ps->busy_offset, resp, len, TPMIF_STATE_FINISH);
}

/* Step 3: the command into our buffer, then to the TPM. */
static void submit(PageServer *ps, const TpmifRequest *req) {
        const uint8_t *resp = NULL;
        size_t len = 0;
        int r;

        memcpy(ps->cmd, ps->c.page + req->offset, req->length);
        ps->busy = true;
        ps->busy_offset = req->offset;
        ps->cancel_seen = false;
        if (ps->c.trace)
                log_hex("command", ps->cmd, req->length);
        /* A quick command is answered here. Any event that came meanwhile is
         * still pending on the event channel, so the page is looked at again
         * from the caller's poll loop (never by recursion: a guest that keeps
         * submitting must not grow our stack or starve the IPC socket). */
        r = ps->c.ops->run(ps->c.userdata, ps->cmd, req->length, req->locality,
                           tpm_command_is_quick(ps->c.family, ps->cmd, req->length), &resp, &len);
        if (r != PAGE_SERVER_PENDING)
                post_result(ps, r, resp, len);
}

void page_server_complete(PageServer *ps, int r, const uint8_t *resp, size_t len) {
        if (!ps->busy)
                return;
        post_result(ps, r, resp, len);
}

void page_server_check(PageServer *ps) {
        uint8_t raw[TPMIF_HEADER_SIZE];
        TpmifHeader h;
        TpmifRequest req;

        read_header(ps, raw);
        tpmif_header_decode(raw, &h);
        if (tpmif_request_classify(&h, ps->c.page_size, &req) < 0)
                return;

        switch (req.action) {
        case TPMIF_ACTION_NONE:
                return;

        case TPMIF_ACTION_COMMAND:
                /* While busy the page still says SUBMIT for the command we run. */
                if (ps->busy)
                        return;
                if (req.length > ps->c.command_max) {
                        /* classify() already bounds it by the page; never trust that silently. */
                        ps->stats.rejected++;
                        post_error(ps, req.offset, tpm_rc_command_size(ps->c.family));
                        return;
                }
                submit(ps, &req);
                return;

        case TPMIF_ACTION_REJECT: {
                /* The guest rewrote the header of a command we are running: its
                 * answer is what the TPM returns; the reject waits for nothing. */
                if (ps->busy)
                        return;
                ps->stats.rejected++;
                bool size_problem = req.reject == TPMIF_REJECT_TOO_SHORT || req.reject == TPMIF_REJECT_TOO_LONG;
                if (limited(&ps->rl_reject, "reject"))
                        log_msg(LOG_INFO, "rejected request: %s (length %u, state %u, nr_extra_pages %u)",
                                strempty(tpmif_reject_to_string(req.reject)), h.length, h.state, h.nr_extra_pages);
                post_error(ps, req.offset,
                           size_problem ? tpm_rc_command_size(ps->c.family) : tpm_rc_failure(ps->c.family));
                return;
        }

        case TPMIF_ACTION_CANCEL:
                if (ps->busy) {
                        /* Finish normally afterwards: the TPM answers the command. */
                        if (ps->c.ops->cancel)
                                ps->c.ops->cancel(ps->c.userdata);
                        if (!ps->cancel_seen) {
                                ps->cancel_seen = true;
                                ps->stats.cancels++;
                                if (limited(&ps->rl_cancel, "cancel"))
                                        log_msg(LOG_INFO, "guest cancelled the running command");
                        }
                        return;
                }
                ps->stats.cancels++;
                if (limited(&ps->rl_cancel, "cancel"))
                        log_msg(LOG_INFO, "guest cancelled while idle");
                post(ps, req.offset, NULL, 0, TPMIF_STATE_IDLE);
                return;
        }
}
