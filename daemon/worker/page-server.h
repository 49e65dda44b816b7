/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page server: DESIGN.md's data path from the moment the page may be
 * looked at (the caller has done pending -> unmask) to FINISH or IDLE and
 * the notify. It takes the guest's page as a byte buffer of its mapped size
 * and a table of operations, so a test drives it with byte arrays and a fake
 * TPM (tests/unit/test-page-server.c), and the worker with the grant mapping
 * and libtpms.
 *
 *   page_server_check()     look at the page once: a new command is copied
 *                           into the server's private buffer and run; a bad
 *                           request gets a TPM error response; a CANCEL is
 *                           passed on (busy) or answered with IDLE (idle)
 *   page_server_complete()  a command handed to the TPM thread is done
 *
 * The guest may rewrite the page at any moment: the header is read once into
 * a local copy, the command copied once, and the page is always left in
 * FINISH or IDLE (never SUBMIT or CANCEL, which would wedge the frontend).
 * One command at a time; the I/O thread only.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "ratelimit.h"
#include "tpm.h"

typedef struct PageServer PageServer;

typedef struct PageServerOps {
        /* Runs the command (the server's private copy, valid until the
         * response is posted). quick: tpm_command_is_quick(), nothing worth
         * cancelling: answer it now. Returns 0 with the response in
         * ret_resp and ret_len (or a negative errno: the guest gets a TPM
         * failure response), or PAGE_SERVER_PENDING once the command is handed
         * on: page_server_complete() delivers its result later. */
        int (*run)(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                   const uint8_t **ret_resp, size_t *ret_len);
        /* The guest asked to cancel the pending command (repeated on every
         * CANCEL event: a cancel that reaches the TPM before the command starts
         * is lost). */
        void (*cancel)(void *userdata);
        /* The page was handed back (FINISH or IDLE): raise the event. */
        void (*notify)(void *userdata);
} PageServerOps;

#define PAGE_SERVER_PENDING 1

typedef struct PageServerConfig {
        uint8_t *page;    /* the guest's page: it changes under us */
        size_t page_size; /* its mapped size (VTPM_XEN_PAGE_SIZE) */
        size_t command_max; /* the largest command run accepts (its buffer) */
        TpmFamily family;   /* for the error responses */
        bool trace;       /* log the command and response bytes */
        const PageServerOps *ops;
        void *userdata;
} PageServerConfig;

int page_server_new(const PageServerConfig *c, PageServer **ret);
PageServer *page_server_free(PageServer *ps);

void page_server_check(PageServer *ps);
/* r, resp, len as PageServerOps.run would have returned them. */
void page_server_complete(PageServer *ps, int r, const uint8_t *resp, size_t len);

/* A command is pending (between run's PAGE_SERVER_PENDING and complete). */
bool page_server_busy(const PageServer *ps);
/* events is the caller's; commands, rejected and cancels are counted here. */
IpcStats *page_server_stats(PageServer *ps);

/* The answer to a command that run gave r, *io_resp and len for: that
 * response if it is one whole TPM response of at most room bytes, else a
 * TPM failure response built in err (*io_resp then points there). Returns
 * its length. Shared with the worker's offline path. */
size_t page_server_answer(TpmFamily family, RateLimit *rl, IpcStats *stats, int r, const uint8_t **io_resp,
                          size_t len, size_t room, uint8_t err[TPM_HEADER_SIZE]);
