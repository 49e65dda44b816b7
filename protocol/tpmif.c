/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "tpmif.h"

/* The layout is fixed by Xen's public header; the decoder below depends on it. */
_Static_assert(sizeof(TpmifHeader) == TPMIF_HEADER_SIZE, "tpmif header layout");

void tpmif_header_decode(const uint8_t raw[TPMIF_HEADER_SIZE], TpmifHeader *ret) {
        TpmifHeader h;

        /* length is in the guest's native byte order, which is ours (same host);
         * memcpy because raw need not be aligned. */
        memcpy(&h.length, raw + TPMIF_OFF_LENGTH, sizeof(h.length));
        h.state = raw[TPMIF_OFF_STATE];
        h.locality = raw[TPMIF_OFF_LOCALITY];
        h.pad = raw[TPMIF_OFF_PAD];
        h.nr_extra_pages = raw[TPMIF_OFF_NR_EXTRA];
        *ret = h;
}

size_t tpmif_response_room(uint32_t offset, size_t mapped_size) {
        return offset <= mapped_size ? mapped_size - offset : 0;
}

int tpmif_request_classify(const TpmifHeader *h, size_t mapped_size, TpmifRequest *ret) {
        /* size_t arithmetic: 8 + 4*255 = 1028 cannot wrap, and it always fits
         * the uint32_t field below. */
        size_t offset = TPMIF_HEADER_SIZE + 4u * (size_t) h->nr_extra_pages;
        TpmifRequest r = {
                .action = TPMIF_ACTION_REJECT,
                .reject = TPMIF_REJECT_NONE,
                .offset = (uint32_t) offset,
                .length = 0,
                .locality = h->locality,
        };

        if (mapped_size < TPMIF_HEADER_SIZE) {
                /* Not even the header fits: nothing could be answered in place. */
                r.reject = TPMIF_REJECT_TOO_LONG;
                *ret = r;
                return -EINVAL;
        }

        switch (h->state) {
        case TPMIF_STATE_IDLE:
        case TPMIF_STATE_FINISH:
                r.action = TPMIF_ACTION_NONE;
                break;
        case TPMIF_STATE_CANCEL:
                r.action = TPMIF_ACTION_CANCEL;
                break;
        case TPMIF_STATE_SUBMIT:
                /* No known frontend uses extra pages and no backend maps them, yet
                 * the count still moves the data offset (mini-os bug 4): refuse. */
                if (h->nr_extra_pages != 0)
                        r.reject = TPMIF_REJECT_EXTRA_PAGES;
                else if (h->length < TPMIF_MIN_COMMAND)
                        r.reject = TPMIF_REJECT_TOO_SHORT;
                /* By subtraction, after checking the minuend: an addition of a
                 * guest length near 2^32 wraps (mini-os bug 1). */
                else if (offset > mapped_size || (size_t) h->length > mapped_size - offset)
                        r.reject = TPMIF_REJECT_TOO_LONG;
                else {
                        r.action = TPMIF_ACTION_COMMAND;
                        r.length = h->length;
                }
                break;
        default:
                /* h->state is a raw guest byte, not our enum. */
                r.reject = TPMIF_REJECT_BAD_STATE;
                break;
        }

        *ret = r;
        return 0;
}

const char *tpmif_reject_to_string(TpmifReject r) {
        switch (r) {
        case TPMIF_REJECT_NONE:
                return "none";
        case TPMIF_REJECT_EXTRA_PAGES:
                return "extra-pages";
        case TPMIF_REJECT_TOO_SHORT:
                return "too-short";
        case TPMIF_REJECT_TOO_LONG:
                return "too-long";
        case TPMIF_REJECT_BAD_STATE:
                return "bad-state";
        }
        return NULL;
}
