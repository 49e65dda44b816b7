/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fuzzes the xenstore wire codec the way the simulated xenstored uses it: the
 * input is a client byte stream, cut into frames, and every payload goes
 * through every payload parser, whatever its type says.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "xs-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void payload(const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *vec[3], *s, *path;
        const uint8_t *val;
        XsWirePerm *perms = NULL, perm;
        size_t n, vlen;
        char *c = NULL, *parent = NULL;
        uint8_t frame[XSWIRE_FRAME_MAX], ev[XSWIRE_PAYLOAD_MAX];
        char pbuf[XSWIRE_PERM_STRLEN_MAX];
        XsWireHeader back;

        (void) xswire_type_name(h->type);
        n = xswire_strings(p, len, vec, 3);
        assert(n == xswire_count_strings(p, len));
        if (xswire_onearg(p, len, &s) == 0) {
                assert(n == 1);
                (void) xswire_atoi(s);
                (void) xswire_error_parse(s);
                if (xswire_perm_parse(s, &perm) == 0)
                        assert(xswire_perm_format(&perm, pbuf) > 0);
                if (xswire_path_canonicalize(s, "/local/domain/7", &c) == 0) {
                        if (xswire_path_valid(c) && xswire_path_parent(c, &parent) == 0) {
                                assert(xswire_path_valid(parent));
                                assert(xswire_path_is_child(c, parent));
                                free(parent);
                        }
                        free(c);
                }
        }
        if (n >= 2) {
                if (xswire_event_payload(vec[0], vec[1], ev) >= 0)
                        assert(memcmp(ev, vec[0], strlen(vec[0]) + 1) == 0);
                (void) xswire_path_is_child(vec[0], vec[1]);
        }
        if (xswire_write_args(p, len, &path, &val, &vlen) == 0)
                assert(val + vlen == p + len);
        if (xswire_set_perms_args(p, len, &path, &perms, &n) == 0) {
                for (size_t i = 0; i < n; i++)
                        assert(xswire_perm_format(&perms[i], pbuf) > 0);
                free(perms);
        }
        /* a decoded frame re-encodes to itself */
        assert(xswire_frame_build(h, p, len, frame, sizeof(frame)) == (int) (XSWIRE_HDR_SIZE + len));
        assert(xswire_frame_peek(frame, XSWIRE_HDR_SIZE + len, &back) == 1);
        assert(memcmp(&back, h, sizeof(back)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        size_t off = 0;
        XsWireHeader h;
        int r;

        while ((r = xswire_frame_peek(data + off, size - off, &h)) == 1) {
                /* a private copy, as the daemon parses its own buffer */
                uint8_t *p = malloc(h.len ? h.len : 1);

                if (!p)
                        return 0;
                memcpy(p, data + off + XSWIRE_HDR_SIZE, h.len);
                payload(&h, p, h.len);
                free(p);
                off += XSWIRE_HDR_SIZE + h.len;
        }
        return 0;
}
