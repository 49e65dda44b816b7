/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The input is a guest page: the first 8 bytes are the tpmif header, the rest
 * the packet area. It is classified twice: against a mapping exactly as long
 * as the input (capped at one page, so ASan sees any read past it) and against
 * a full page. Every invariant the data path relies on is checked with abort().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tpm.h"
#include "tpmif.h"

#define PAGE 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *page, size_t mapped) {
        uint8_t raw[TPMIF_HEADER_SIZE] = { 0 };
        uint8_t cmd[PAGE];
        TpmifHeader h;
        TpmifRequest q;
        size_t expect_offset;
        int r;

        /* the local copy the data path makes (zero-filled if the page is short) */
        memcpy(raw, page, mapped < sizeof(raw) ? mapped : sizeof(raw));
        tpmif_header_decode(raw, &h);
        r = tpmif_request_classify(&h, mapped, &q);

        if ((r < 0) != (mapped < TPMIF_HEADER_SIZE) || (r < 0 && r != -EINVAL))
                abort();
        if (r < 0 && q.action == TPMIF_ACTION_COMMAND)
                abort();

        expect_offset = TPMIF_HEADER_SIZE + 4u * (size_t) h.nr_extra_pages;
        if (q.offset != expect_offset || q.locality != h.locality)
                abort();
        if (tpmif_response_room(q.offset, mapped) != (q.offset <= mapped ? mapped - q.offset : 0))
                abort();
        if (!tpmif_reject_to_string(q.reject))
                abort();
        if (r < 0)
                return;

        switch (q.action) {
        case TPMIF_ACTION_NONE:
                if (h.state != TPMIF_STATE_IDLE && h.state != TPMIF_STATE_FINISH)
                        abort();
                break;
        case TPMIF_ACTION_CANCEL:
                if (h.state != TPMIF_STATE_CANCEL)
                        abort();
                break;
        case TPMIF_ACTION_REJECT:
                if (q.reject == TPMIF_REJECT_NONE)
                        abort();
                if ((q.reject == TPMIF_REJECT_BAD_STATE) != (h.state > TPMIF_STATE_CANCEL))
                        abort();
                if (q.reject != TPMIF_REJECT_BAD_STATE && h.state != TPMIF_STATE_SUBMIT)
                        abort();
                if ((q.reject == TPMIF_REJECT_EXTRA_PAGES) != (h.state == TPMIF_STATE_SUBMIT && h.nr_extra_pages))
                        abort();
                if (q.reject == TPMIF_REJECT_TOO_SHORT && h.length >= TPMIF_MIN_COMMAND)
                        abort();
                if (q.reject == TPMIF_REJECT_TOO_LONG && (uint64_t) q.offset + h.length <= mapped)
                        abort();
                break;
        case TPMIF_ACTION_COMMAND: {
                TpmHeader th;

                if (h.state != TPMIF_STATE_SUBMIT || h.nr_extra_pages != 0 || q.reject != TPMIF_REJECT_NONE)
                        abort();
                if (q.length != h.length || q.length < TPMIF_MIN_COMMAND)
                        abort();
                if ((uint64_t) q.offset + q.length > mapped || q.length > sizeof(cmd))
                        abort();
                /* the copy the data path makes; ASan checks the bound */
                memcpy(cmd, page + q.offset, q.length);
                if (tpm_header_parse(cmd, q.length, &th) < 0)
                        abort();
                break;
        }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t mapped = size < PAGE ? size : PAGE;
        uint8_t *exact, *full;

        /* malloc(0) may return NULL: an empty input gets one (unread) byte. */
        exact = malloc(mapped ? mapped : 1);
        full = calloc(1, PAGE);
        if (!exact || !full)
                abort();
        memcpy(exact, data, mapped);
        memcpy(full, data, mapped);

        check(exact, mapped);
        check(full, PAGE);

        free(exact);
        free(full);
        return 0;
}
