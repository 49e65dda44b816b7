/* SPDX-License-Identifier: BSD-3-Clause */
#include "test.h"
#include "tpmif.h"

#define PAGE 4096u

static void make_raw(uint8_t raw[TPMIF_HEADER_SIZE], uint32_t length, uint8_t state, uint8_t locality,
                     uint8_t nr_extra) {
        memcpy(raw, &length, sizeof(length)); /* guest native order = ours */
        raw[4] = state;
        raw[5] = locality;
        raw[6] = 0;
        raw[7] = nr_extra;
}

static TpmifRequest classify(uint32_t length, uint8_t state, uint8_t nr_extra, size_t mapped, int *r) {
        uint8_t raw[TPMIF_HEADER_SIZE];
        TpmifHeader h;
        TpmifRequest req;

        memset(&req, 0xAA, sizeof(req));
        make_raw(raw, length, state, 0, nr_extra);
        tpmif_header_decode(raw, &h);
        *r = tpmif_request_classify(&h, mapped, &req);
        return req;
}

TEST(header_decode_fields) {
        uint8_t raw[8];
        TpmifHeader h;

        make_raw(raw, 0x01020304, TPMIF_STATE_SUBMIT, 3, 7);
        raw[6] = 0x55;
        tpmif_header_decode(raw, &h);
        ASSERT_EQ(h.length, 0x01020304);
        ASSERT_EQ(h.state, 1);
        ASSERT_EQ(h.locality, 3);
        ASSERT_EQ(h.pad, 0x55);
        ASSERT_EQ(h.nr_extra_pages, 7);
}

TEST(header_decode_unaligned) {
        uint8_t buf[9];
        TpmifHeader h;

        make_raw(buf + 1, 4088, TPMIF_STATE_CANCEL, 0, 0);
        tpmif_header_decode(buf + 1, &h);
        ASSERT_EQ(h.length, 4088);
        ASSERT_EQ(h.state, TPMIF_STATE_CANCEL);
}

TEST(valid_submit_is_command) {
        int r;
        TpmifRequest q = classify(12, TPMIF_STATE_SUBMIT, 0, PAGE, &r);

        ASSERT_EQ(r, 0);
        ASSERT_EQ(q.action, TPMIF_ACTION_COMMAND);
        ASSERT_EQ(q.reject, TPMIF_REJECT_NONE);
        ASSERT_EQ(q.offset, 8);
        ASSERT_EQ(q.length, 12);
}

TEST(locality_passed_through) {
        uint8_t raw[8];
        TpmifHeader h;
        TpmifRequest q;

        make_raw(raw, 10, TPMIF_STATE_SUBMIT, 0xff, 0);
        tpmif_header_decode(raw, &h);
        ASSERT_OK(tpmif_request_classify(&h, PAGE, &q));
        ASSERT_EQ(q.action, TPMIF_ACTION_COMMAND);
        ASSERT_EQ(q.locality, 0xff);
}

TEST(length_bounds_exact) {
        struct {
                uint32_t length;
                TpmifAction action;
                TpmifReject reject;
        } cases[] = {
                { 0, TPMIF_ACTION_REJECT, TPMIF_REJECT_TOO_SHORT },
                { 9, TPMIF_ACTION_REJECT, TPMIF_REJECT_TOO_SHORT },
                { 10, TPMIF_ACTION_COMMAND, TPMIF_REJECT_NONE },
                { 4087, TPMIF_ACTION_COMMAND, TPMIF_REJECT_NONE },
                { 4088, TPMIF_ACTION_COMMAND, TPMIF_REJECT_NONE },
                { 4089, TPMIF_ACTION_REJECT, TPMIF_REJECT_TOO_LONG },
                { 4096, TPMIF_ACTION_REJECT, TPMIF_REJECT_TOO_LONG },
                { 65536, TPMIF_ACTION_REJECT, TPMIF_REJECT_TOO_LONG },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int r;
                TpmifRequest q = classify(cases[i].length, TPMIF_STATE_SUBMIT, 0, PAGE, &r);

                ASSERT_EQ(r, 0);
                ASSERT_EQ(q.action, cases[i].action);
                ASSERT_EQ(q.reject, cases[i].reject);
                ASSERT_EQ(q.offset, 8);
                ASSERT_EQ(q.length, cases[i].action == TPMIF_ACTION_COMMAND ? cases[i].length : 0);
        }
}

/* The mini-os tpmback bug: offset + length in 32 bits wraps for these. */
TEST(length_32bit_wrap_rejected) {
        const uint32_t lengths[] = { 0xFFFFFFF8u, 0xFFFFFFF9u, 0xFFFFFFFFu, 0xFFFFF000u, 0x80000000u,
                                     0xFFFFFFF8u - 4u * 255u };

        for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
                int r;
                TpmifRequest q = classify(lengths[i], TPMIF_STATE_SUBMIT, 0, PAGE, &r);

                ASSERT_EQ(r, 0);
                ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
                ASSERT_EQ(q.reject, TPMIF_REJECT_TOO_LONG);
                /* also against a huge mapping, where size_t addition would not wrap */
                q = classify(lengths[i], TPMIF_STATE_SUBMIT, 0, 64 * 1024, &r);
                ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
        }
}

TEST(extra_pages_always_refused_and_move_offset) {
        for (unsigned n = 1; n <= 255; n++) {
                int r;
                /* a length that would fit after the moved offset is still refused */
                TpmifRequest q = classify(10, TPMIF_STATE_SUBMIT, (uint8_t) n, PAGE, &r);

                ASSERT_EQ(r, 0);
                ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
                ASSERT_EQ(q.reject, TPMIF_REJECT_EXTRA_PAGES);
                ASSERT_EQ(q.offset, 8 + 4 * n);
                ASSERT_EQ(q.length, 0);
                /* the error response goes where the guest will read it */
                ASSERT_EQ(tpmif_response_room(q.offset, PAGE), PAGE - 8 - 4 * n);

                /* wrap-sized lengths do not change the verdict either */
                q = classify(0xFFFFFFF8u, TPMIF_STATE_SUBMIT, (uint8_t) n, PAGE, &r);
                ASSERT_EQ(q.reject, TPMIF_REJECT_EXTRA_PAGES);
        }
}

TEST(offset_255_extra_pages) {
        int r;
        TpmifRequest q = classify(4096 - 1028, TPMIF_STATE_SUBMIT, 255, PAGE, &r);

        ASSERT_EQ(r, 0);
        ASSERT_EQ(q.offset, 1028);
        ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
        ASSERT_EQ(q.reject, TPMIF_REJECT_EXTRA_PAGES);
        ASSERT_EQ(tpmif_response_room(q.offset, PAGE), 3068);
        /* offset beyond a small mapping: no room, and no wrap in the room */
        ASSERT_EQ(tpmif_response_room(1028, 1000), 0);
}

TEST(every_state_byte) {
        for (unsigned s = 0; s <= 255; s++) {
                int r;
                TpmifRequest q = classify(10, (uint8_t) s, 0, PAGE, &r);

                ASSERT_EQ(r, 0);
                ASSERT_EQ(q.offset, 8);
                switch (s) {
                case TPMIF_STATE_IDLE:
                case TPMIF_STATE_FINISH:
                        ASSERT_EQ(q.action, TPMIF_ACTION_NONE);
                        ASSERT_EQ(q.length, 0);
                        break;
                case TPMIF_STATE_SUBMIT:
                        ASSERT_EQ(q.action, TPMIF_ACTION_COMMAND);
                        break;
                case TPMIF_STATE_CANCEL:
                        ASSERT_EQ(q.action, TPMIF_ACTION_CANCEL);
                        ASSERT_EQ(q.length, 0);
                        break;
                default:
                        ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
                        ASSERT_EQ(q.reject, TPMIF_REJECT_BAD_STATE);
                        ASSERT_EQ(q.length, 0);
                        break;
                }
        }
}

/* Only SUBMIT looks at length: an IDLE/FINISH/CANCEL page with junk in it is not an error. */
TEST(non_submit_ignores_length_and_extra) {
        const uint8_t states[] = { TPMIF_STATE_IDLE, TPMIF_STATE_FINISH, TPMIF_STATE_CANCEL };

        for (size_t i = 0; i < sizeof(states); i++) {
                int r;
                TpmifRequest q = classify(0xFFFFFFFFu, states[i], 200, PAGE, &r);

                ASSERT_EQ(r, 0);
                ASSERT_EQ(q.action, states[i] == TPMIF_STATE_CANCEL ? TPMIF_ACTION_CANCEL : TPMIF_ACTION_NONE);
                ASSERT_EQ(q.reject, TPMIF_REJECT_NONE);
                ASSERT_EQ(q.offset, 8 + 4 * 200);
        }
}

TEST(mapped_size_smaller_than_header) {
        for (size_t m = 0; m < TPMIF_HEADER_SIZE; m++) {
                int r;
                TpmifRequest q = classify(10, TPMIF_STATE_SUBMIT, 0, m, &r);

                ASSERT_EQ(r, -EINVAL);
                /* still filled: never a COMMAND */
                ASSERT_EQ(q.action, TPMIF_ACTION_REJECT);
                ASSERT_EQ(tpmif_response_room(q.offset, m), 0);
        }
}

TEST(mapped_size_small_pages) {
        int r;
        TpmifRequest q;

        /* exactly a header: nothing fits */
        q = classify(10, TPMIF_STATE_SUBMIT, 0, 8, &r);
        ASSERT_EQ(r, 0);
        ASSERT_EQ(q.reject, TPMIF_REJECT_TOO_LONG);
        /* header + a minimal command */
        q = classify(10, TPMIF_STATE_SUBMIT, 0, 18, &r);
        ASSERT_EQ(q.action, TPMIF_ACTION_COMMAND);
        q = classify(11, TPMIF_STATE_SUBMIT, 0, 18, &r);
        ASSERT_EQ(q.reject, TPMIF_REJECT_TOO_LONG);
        /* TOO_SHORT wins over TOO_LONG when both apply */
        q = classify(9, TPMIF_STATE_SUBMIT, 0, 8, &r);
        ASSERT_EQ(q.reject, TPMIF_REJECT_TOO_SHORT);
}

TEST(response_room) {
        ASSERT_EQ(tpmif_response_room(8, PAGE), 4088);
        ASSERT_EQ(tpmif_response_room(PAGE, PAGE), 0);
        ASSERT_EQ(tpmif_response_room(PAGE + 1, PAGE), 0);
        ASSERT_EQ(tpmif_response_room(UINT32_MAX, PAGE), 0);
        ASSERT_EQ(tpmif_response_room(8, 0), 0);
}

TEST(reject_strings) {
        ASSERT_STREQ(tpmif_reject_to_string(TPMIF_REJECT_NONE), "none");
        ASSERT_STREQ(tpmif_reject_to_string(TPMIF_REJECT_EXTRA_PAGES), "extra-pages");
        ASSERT_STREQ(tpmif_reject_to_string(TPMIF_REJECT_TOO_SHORT), "too-short");
        ASSERT_STREQ(tpmif_reject_to_string(TPMIF_REJECT_TOO_LONG), "too-long");
        ASSERT_STREQ(tpmif_reject_to_string(TPMIF_REJECT_BAD_STATE), "bad-state");
        ASSERT_TRUE(tpmif_reject_to_string((TpmifReject) 99) == NULL);
}
