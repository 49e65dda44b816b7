/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdint.h>

#include "statefile-offsets.h"
#include "statefile.h"
#include "test.h"
#include "util.h"

#define UUID_A "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c"


static const StateKind all_kinds[] = {
        STATE_KIND_PERMANENT, STATE_KIND_VOLATILE, STATE_KIND_DATA_KEY, STATE_KIND_META, STATE_KIND_MANIFEST,
        STATE_KIND_CA_KEY,
};

/* A structurally valid blob (ciphertext and tag are arbitrary bytes: parsing does not decrypt). */
static uint8_t *make_blob(StateKind kind, uint32_t length, size_t *ret_len) {
        StateHeader h = {
                .version = STATEFILE_VERSION,
                .kind = kind,
                .seq = 0x0102030405060708ull,
                .length = length,
        };
        size_t len = STATEFILE_OVERHEAD + (size_t) length;
        uint8_t *b = malloc(len);

        if (!b)
                abort();
        for (size_t i = 0; i < STATEFILE_UUID_SIZE; i++)
                h.uuid[i] = (uint8_t) (0xa0 + i);
        for (size_t i = 0; i < STATEFILE_NONCE_SIZE; i++)
                h.nonce[i] = (uint8_t) (0x10 + i);
        memset(b, 0x5a, len);
        statefile_header_encode(&h, b);
        *ret_len = len;
        return b;
}

TEST(header_layout_is_big_endian_at_documented_offsets) {
        size_t len;
        uint8_t *b = make_blob(STATE_KIND_VOLATILE, 0x0304, &len);
        static const uint8_t seq[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

        ASSERT_MEMEQ(b, "VTPMD\0ST", 8);
        ASSERT_EQ(b[OFF_VERSION], 0);
        ASSERT_EQ(b[OFF_VERSION + 1], 1);
        ASSERT_EQ(b[OFF_KIND], 0);
        ASSERT_EQ(b[OFF_KIND + 1], 2);
        ASSERT_MEMEQ(b + OFF_SEQ, seq, 8);
        ASSERT_EQ(b[OFF_UUID], 0xa0);
        ASSERT_EQ(b[OFF_NONCE], 0x10);
        ASSERT_EQ(b[OFF_LENGTH + 2], 3);
        ASSERT_EQ(b[OFF_LENGTH + 3], 4);
        free(b);
}

TEST(parse_roundtrip_every_kind) {
        for (size_t k = 0; k < sizeof(all_kinds) / sizeof(all_kinds[0]); k++) {
                static const uint32_t lengths[] = { 0, 1, 1299, STATEFILE_MAX_PAYLOAD };
                for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
                        uint8_t again[STATEFILE_HEADER_SIZE];
                        StateHeader h;
                        size_t len;
                        uint8_t *b = make_blob(all_kinds[k], lengths[l], &len);

                        h.length = 0xdeadbeef;
                        ASSERT_OK(statefile_parse(b, len, &h));
                        ASSERT_EQ(h.kind, all_kinds[k]);
                        ASSERT_EQ(h.version, STATEFILE_VERSION);
                        ASSERT_EQ(h.flags, 0);
                        ASSERT_EQ(h.seq, 0x0102030405060708ull);
                        ASSERT_EQ(h.length, lengths[l]);
                        ASSERT_EQ(h.uuid[15], 0xaf);
                        ASSERT_EQ(h.nonce[11], 0x1b);
                        statefile_header_encode(&h, again);
                        ASSERT_MEMEQ(again, b, STATEFILE_HEADER_SIZE);
                        free(b);
                }
        }
}

static int parse_modified(StateKind kind, size_t off, uint8_t val) {
        StateHeader h;
        size_t len;
        uint8_t *b = make_blob(kind, 32, &len);
        int r;

        b[off] = val;
        r = statefile_parse(b, len, &h);
        free(b);
        return r;
}

TEST(parse_rejects_short_and_truncated) {
        StateHeader h;
        size_t len;
        uint8_t *b = make_blob(STATE_KIND_PERMANENT, 100, &len);

        ASSERT_ERR(statefile_parse(NULL, 0, &h), -EBADMSG);
        ASSERT_ERR(statefile_parse(b, 0, &h), -EBADMSG);
        ASSERT_ERR(statefile_parse(b, 8, &h), -EBADMSG);
        ASSERT_ERR(statefile_parse(b, STATEFILE_HEADER_SIZE - 1, &h), -EBADMSG);
        ASSERT_ERR(statefile_parse(b, STATEFILE_HEADER_SIZE, &h), -EBADMSG);
        ASSERT_ERR(statefile_parse(b, STATEFILE_OVERHEAD - 1, &h), -EBADMSG);
        /* every truncation of a valid blob */
        for (size_t n = 0; n < len; n++)
                ASSERT_ERR(statefile_parse(b, n, &h), -EBADMSG);
        ASSERT_OK(statefile_parse(b, len, &h));
        free(b);
}

TEST(parse_rejects_trailing_bytes) {
        StateHeader h;
        size_t len;
        uint8_t *b = make_blob(STATE_KIND_META, 16, &len);
        uint8_t *big = calloc(1, len + 1);

        ASSERT_TRUE(big != NULL);
        memcpy(big, b, len);
        ASSERT_ERR(statefile_parse(big, len + 1, &h), -EBADMSG);
        free(big);
        free(b);
}

TEST(parse_rejects_bad_magic) {
        for (size_t i = 0; i < STATEFILE_MAGIC_SIZE; i++)
                ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, i, 'x'), -EBADMSG);
}

TEST(parse_rejects_other_versions) {
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_VERSION + 1, 0), -EPROTONOSUPPORT);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_VERSION + 1, 2), -EPROTONOSUPPORT);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_VERSION, 1), -EPROTONOSUPPORT);
}

TEST(parse_rejects_unknown_kinds) {
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_KIND + 1, 0), -EMEDIUMTYPE);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_KIND + 1, 9), -EMEDIUMTYPE);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_KIND, 1), -EMEDIUMTYPE);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_KIND + 1, 0xff), -EMEDIUMTYPE);
}

TEST(parse_rejects_flags) {
        for (size_t i = 0; i < 4; i++) {
                ASSERT_ERR(parse_modified(STATE_KIND_VOLATILE, OFF_FLAGS + i, 1), -EBADMSG);
                ASSERT_ERR(parse_modified(STATE_KIND_VOLATILE, OFF_FLAGS + i, 0x80), -EBADMSG);
        }
}

TEST(parse_rejects_length_mismatch) {
        /* blob has 32 payload bytes */
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_LENGTH + 3, 31), -EBADMSG);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_LENGTH + 3, 33), -EBADMSG);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_LENGTH, 0xff), -EBADMSG);
        ASSERT_ERR(parse_modified(STATE_KIND_PERMANENT, OFF_LENGTH + 3, 32), 0);
}

TEST(parse_rejects_length_over_max_even_if_size_matches) {
        StateHeader h = { .version = STATEFILE_VERSION, .kind = STATE_KIND_PERMANENT,
                          .length = STATEFILE_MAX_PAYLOAD + 1 };
        size_t len = STATEFILE_OVERHEAD + (size_t) STATEFILE_MAX_PAYLOAD + 1;
        uint8_t *b = calloc(1, len);
        StateHeader out;

        ASSERT_TRUE(b != NULL);
        statefile_header_encode(&h, b);
        ASSERT_ERR(statefile_parse(b, len, &out), -EBADMSG);
        /* the largest allowed payload is fine */
        h.length = STATEFILE_MAX_PAYLOAD;
        statefile_header_encode(&h, b);
        ASSERT_OK(statefile_parse(b, len - 1, &out));
        free(b);
}

TEST(parse_ignores_seq_uuid_nonce_contents) {
        /* Those are authenticated by the AEAD, not validated by the parser. */
        ASSERT_OK(parse_modified(STATE_KIND_PERMANENT, OFF_SEQ, 0xff));
        ASSERT_OK(parse_modified(STATE_KIND_PERMANENT, OFF_UUID + 3, 0));
        ASSERT_OK(parse_modified(STATE_KIND_PERMANENT, OFF_NONCE + 11, 0));
}

TEST(uuid_roundtrip) {
        uint8_t bin[STATEFILE_UUID_SIZE];
        char s[37];
        static const uint8_t want[STATEFILE_UUID_SIZE] = { 0x0c, 0x6c, 0x33, 0xb2, 0x4f, 0x6a, 0x4d, 0x35,
                                                           0x9d, 0x7b, 0x8d, 0x0e, 0x4f, 0x2a, 0x1b, 0x3c };

        ASSERT_OK(statefile_uuid_from_string(UUID_A, bin));
        ASSERT_MEMEQ(bin, want, sizeof(want));
        statefile_uuid_to_string(bin, s);
        ASSERT_STREQ(s, UUID_A);

        ASSERT_OK(statefile_uuid_from_string("0C6C33B2-4F6A-4D35-9D7B-8D0E4F2A1B3C", bin));
        ASSERT_MEMEQ(bin, want, sizeof(want));
}

TEST(uuid_rejects_malformed) {
        uint8_t bin[STATEFILE_UUID_SIZE] = { 0 };
        static const uint8_t zero[STATEFILE_UUID_SIZE] = { 0 };

        ASSERT_ERR(statefile_uuid_from_string(NULL, bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("", bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("0c6c33b24f6a4d359d7b8d0e4f2a1b3c", bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3", bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3cc", bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3g", bin), -EINVAL);
        ASSERT_ERR(statefile_uuid_from_string("0c6c33b2+4f6a-4d35-9d7b-8d0e4f2a1b3c", bin), -EINVAL);
        ASSERT_MEMEQ(bin, zero, sizeof(zero)); /* untouched on failure */
}

TEST(kind_names) {
        static const struct {
                StateKind kind;
                const char *name, *filename;
        } names[] = {
                { STATE_KIND_PERMANENT, "permanent", "permall" }, { STATE_KIND_VOLATILE, "volatile", "volatile" },
                { STATE_KIND_DATA_KEY, "data key", "key" },       { STATE_KIND_META, "metadata", "meta" },
                { STATE_KIND_MANIFEST, "manifest", "manifest" }, { STATE_KIND_CA_KEY, "CA key", "ca-key" },
                { STATE_KIND_HANDOVER_REQUEST, "handover request", "request" },
                { STATE_KIND_HANDOVER_GRANT, "handover", "grant" },
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                ASSERT_STREQ(state_kind_to_string(names[i].kind), names[i].name);
                ASSERT_STREQ(state_kind_filename(names[i].kind), names[i].filename);
        }
        ASSERT_TRUE(state_kind_to_string((StateKind) 0) == NULL);
        ASSERT_TRUE(state_kind_filename((StateKind) 9) == NULL);
}

TEST(meta_roundtrip) {
        StateMeta m = { .family = TPM_FAMILY_1_2, .created_usec = 1700000000123456ull }, out;
        uint8_t b[STATE_META_SIZE];

        state_meta_encode(&m, b);
        ASSERT_OK(state_meta_parse(b, sizeof(b), &out));
        ASSERT_EQ(out.family, TPM_FAMILY_1_2);
        ASSERT_EQ(out.created_usec, 1700000000123456ull);

        m.family = TPM_FAMILY_2_0;
        state_meta_encode(&m, b);
        ASSERT_OK(state_meta_parse(b, sizeof(b), &out));
        ASSERT_EQ(out.family, TPM_FAMILY_2_0);
}

TEST(handover_roundtrip) {
        StateHandover h = { .su = { .usec = 1700000000123456ull, .domid = 7, .devid = 1 }, .vol_seq = 42,
                            .perm_seq = 0x0102030405060708ull },
                      out;
        uint8_t b[STATE_HANDOVER_SIZE];

        memset(h.host, 0xab, sizeof(h.host));
        memset(h.su.handle, 0x5c, sizeof(h.su.handle));
        state_handover_encode(&h, b);
        ASSERT_OK(state_handover_parse(b, sizeof(b), &out));
        ASSERT_MEMEQ(out.host, h.host, sizeof(h.host));
        ASSERT_MEMEQ(out.su.handle, h.su.handle, sizeof(h.su.handle));
        ASSERT_EQ(out.su.usec, h.su.usec);
        ASSERT_EQ(out.su.domid, 7u);
        ASSERT_EQ(out.su.devid, 1u);
        ASSERT_EQ(out.vol_seq, 42u);
        ASSERT_EQ(out.perm_seq, 0x0102030405060708ull);
}

TEST(handover_rejects_malformed) {
        StateHandover h = { .vol_seq = 1 }, out;
        uint8_t b[STATE_HANDOVER_SIZE + 1];

        state_handover_encode(&h, b);
        b[STATE_HANDOVER_SIZE] = 0;
        ASSERT_ERR(state_handover_parse(b, STATE_HANDOVER_SIZE - 1, &out), -EBADMSG);
        ASSERT_ERR(state_handover_parse(b, STATE_HANDOVER_SIZE + 1, &out), -EBADMSG);
        ASSERT_ERR(state_handover_parse(NULL, 0, &out), -EBADMSG);
        b[STATE_HANDOVER_SIZE - 1] = 1; /* reserved */
        ASSERT_ERR(state_handover_parse(b, STATE_HANDOVER_SIZE, &out), -EBADMSG);
}

TEST(meta_rejects_malformed) {
        StateMeta m = { .family = TPM_FAMILY_2_0, .created_usec = 5 }, out;
        uint8_t b[STATE_META_SIZE + 1];

        state_meta_encode(&m, b);
        b[STATE_META_SIZE] = 0;
        ASSERT_ERR(state_meta_parse(b, STATE_META_SIZE - 1, &out), -EBADMSG);
        ASSERT_ERR(state_meta_parse(b, STATE_META_SIZE + 1, &out), -EBADMSG);
        ASSERT_ERR(state_meta_parse(NULL, 0, &out), -EBADMSG);
        b[7] = 1; /* reserved */
        ASSERT_ERR(state_meta_parse(b, STATE_META_SIZE, &out), -EBADMSG);
        b[7] = 0;
        b[3] = 0x77; /* unknown family */
        ASSERT_ERR(state_meta_parse(b, STATE_META_SIZE, &out), -EBADMSG);
}

static StateManifestEntry entry(uint8_t first, uint64_t perm, uint64_t vol) {
        StateManifestEntry e;

        memset(&e, 0, sizeof(e));
        memset(e.uuid, 0x11, sizeof(e.uuid));
        e.uuid[0] = first;
        e.perm_seq = perm;
        e.vol_seq = vol;
        return e;
}

TEST(manifest_roundtrip) {
        StateManifestEntry es[3] = { entry(1, 10, 0), entry(2, 20, 21), entry(0xff, UINT64_MAX, 1) };
        StateManifest m = { .counter = 0x1122334455667788ull, .n = 3, .entries = es }, out = { 0 };
        uint8_t *b = NULL;
        size_t len = 0;

        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_EQ(len, 12 + 3 * 32);
        ASSERT_EQ(b[0], 0x11);
        ASSERT_EQ(b[11], 3);
        ASSERT_OK(state_manifest_parse(b, len, &out));
        ASSERT_EQ(out.counter, 0x1122334455667788ull);
        ASSERT_EQ(out.n, 3);
        ASSERT_MEMEQ(out.entries, es, sizeof(es));
        state_manifest_done(&out);
        ASSERT_TRUE(out.entries == NULL);
        free(b);

        /* empty manifest */
        m.n = 0;
        m.entries = NULL;
        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_EQ(len, 12);
        ASSERT_OK(state_manifest_parse(b, len, &out));
        ASSERT_EQ(out.n, 0);
        state_manifest_done(&out);
        free(b);
}

static StateManifestEntry suspended(uint8_t first, uint64_t vol, uint64_t usec) {
        StateManifestEntry e = entry(first, 5, vol);

        e.suspend = (StateSuspend){ .usec = usec, .domid = 7u + first, .devid = first };
        memset(e.suspend.handle, 0xa0 + first, sizeof(e.suspend.handle));
        return e;
}

TEST(manifest_suspend_records_roundtrip_and_only_when_needed) {
        StateManifestEntry es[4] = { entry(1, 10, 0), suspended(2, 21, 1700000000000000ull), entry(3, 5, 9),
                                     suspended(0xfe, 1, 1) };
        StateManifest m = { .counter = 9, .n = 4, .entries = es }, out = { 0 };
        uint8_t *b = NULL;
        size_t len = 0;

        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_EQ(len, 12 + 4 * 32 + 8 + 2 * 48);
        ASSERT_MEMEQ(b + 12 + 4 * 32, "SUSP", 4);
        ASSERT_OK(state_manifest_parse(b, len, &out));
        ASSERT_EQ(out.n, 4);
        ASSERT_MEMEQ(out.entries, es, sizeof(es));
        state_manifest_done(&out);
        free(b);

        /* Nothing suspended: the format of earlier versions, byte for byte. */
        es[1].suspend = (StateSuspend){ 0 };
        es[3].suspend = (StateSuspend){ 0 };
        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_EQ(len, 12 + 4 * 32);
        free(b);

        /* A suspend whose volatile state was never saved is no suspend: not written. */
        es[1] = suspended(2, 0, 5);
        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_EQ(len, 12 + 4 * 32);
        free(b);
}

TEST(manifest_parse_rejects_malformed_suspend_records) {
        StateManifestEntry es[2] = { suspended(1, 3, 100), entry(2, 1, 4) };
        StateManifest m = { .counter = 7, .n = 2, .entries = es }, out;
        const size_t rec = 12 + 2 * 32 + 8;
        uint8_t *b = NULL, *copy;
        size_t len = 0;

        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        copy = malloc(len);
        REQUIRE(copy, "out of memory");
#define MUTATED(off, val)                                                               \
        do {                                                                            \
                memcpy(copy, b, len);                                                   \
                copy[off] = (val);                                                      \
                ASSERT_ERR(state_manifest_parse(copy, len, &out), -EBADMSG);            \
        } while (0)
        MUTATED(12 + 2 * 32, 'X');          /* magic */
        MUTATED(12 + 2 * 32 + 7, 2);        /* m says two records, one follows */
        MUTATED(12 + 2 * 32 + 7, 0);        /* m == 0 */
        MUTATED(rec, 9);                    /* a record of no entry */
        MUTATED(rec + 16 + 7, 0);           /* suspended at time 0 */
        MUTATED(12 + 31, 0);                /* its entry's vol_seq becomes 0 */
#undef MUTATED
        /* Truncated trailers, and bytes after it. */
        ASSERT_ERR(state_manifest_parse(b, len - 1, &out), -EBADMSG);
        ASSERT_ERR(state_manifest_parse(b, 12 + 2 * 32 + 4, &out), -EBADMSG);
        memcpy(copy, b, len);
        copy[rec] = 2; /* the record moves to the other entry, which has volatile state: accepted */
        ASSERT_OK(state_manifest_parse(copy, len, &out));
        ASSERT_EQ(out.entries[1].suspend.usec, 100);
        ASSERT_EQ(out.entries[0].suspend.usec, 0);
        state_manifest_done(&out);
        free(copy);
        free(b);
}

TEST(manifest_encode_rejects_unsorted_and_duplicates) {
        StateManifestEntry unsorted[2] = { entry(2, 1, 0), entry(1, 1, 0) };
        StateManifestEntry dup[2] = { entry(1, 1, 0), entry(1, 2, 0) };
        StateManifest m = { .n = 2, .entries = unsorted };
        uint8_t *b = NULL;
        size_t len = 0;

        ASSERT_ERR(state_manifest_encode(&m, &b, &len), -EINVAL);
        m.entries = dup;
        ASSERT_ERR(state_manifest_encode(&m, &b, &len), -EINVAL);
        m.entries = NULL;
        ASSERT_ERR(state_manifest_encode(&m, &b, &len), -EINVAL);
        ASSERT_TRUE(b == NULL);
}

TEST(manifest_parse_rejects_malformed) {
        StateManifestEntry es[2] = { entry(1, 1, 0), entry(2, 1, 0) };
        StateManifest m = { .counter = 7, .n = 2, .entries = es }, out;
        uint8_t *b = NULL, *big;
        size_t len = 0;

        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        ASSERT_ERR(state_manifest_parse(b, 11, &out), -EBADMSG);
        ASSERT_ERR(state_manifest_parse(b, len - 1, &out), -EBADMSG);
        ASSERT_ERR(state_manifest_parse(b, len - 32, &out), -EBADMSG);
        ASSERT_ERR(state_manifest_parse(NULL, 0, &out), -EBADMSG);
        /* swap order */
        b[12] = 3;
        ASSERT_ERR(state_manifest_parse(b, len, &out), -EBADMSG);
        /* duplicate */
        b[12] = 2;
        ASSERT_ERR(state_manifest_parse(b, len, &out), -EBADMSG);
        b[12] = 1;
        ASSERT_OK(state_manifest_parse(b, len, &out));
        state_manifest_done(&out);
        /* count too large for the size */
        b[11] = 3;
        ASSERT_ERR(state_manifest_parse(b, len, &out), -EBADMSG);
        free(b);

        /* count over the maximum, with a size that matches it */
        len = 12 + ((size_t) STATE_MANIFEST_MAX_ENTRIES + 1) * 32;
        big = calloc(1, len);
        ASSERT_TRUE(big != NULL);
        big[8] = 0x00;
        big[9] = 0x01;
        big[10] = 0x00;
        big[11] = 0x01; /* 65537 */
        for (size_t i = 0; i < (size_t) STATE_MANIFEST_MAX_ENTRIES + 1; i++) {
                uint8_t *e = big + 12 + i * 32;
                e[12] = (uint8_t) (i >> 24);
                e[13] = (uint8_t) (i >> 16);
                e[14] = (uint8_t) (i >> 8);
                e[15] = (uint8_t) i;
        }
        ASSERT_ERR(state_manifest_parse(big, len, &out), -EBADMSG);
        /* one fewer is exactly the maximum and parses */
        big[11] = 0x00;
        ASSERT_OK(state_manifest_parse(big, len - 32, &out));
        ASSERT_EQ(out.n, STATE_MANIFEST_MAX_ENTRIES);
        state_manifest_done(&out);
        free(big);
}

TEST(manifest_set_find_remove_keep_order) {
        StateManifest m = { 0 };
        StateManifestEntry e;
        uint8_t *b = NULL;
        size_t len = 0;
        static const uint8_t order[] = { 5, 1, 9, 3, 7 };

        for (size_t i = 0; i < sizeof(order); i++) {
                e = entry(order[i], order[i], 0);
                ASSERT_OK(state_manifest_set(&m, &e));
        }
        ASSERT_EQ(m.n, 5);
        for (uint32_t i = 0; i < m.n; i++)
                ASSERT_EQ(m.entries[i].uuid[0], 1 + 2 * i);
        /* sorted, so it encodes */
        ASSERT_OK(state_manifest_encode(&m, &b, &len));
        free(b);

        /* update in place */
        e = entry(7, 70, 71);
        ASSERT_OK(state_manifest_set(&m, &e));
        ASSERT_EQ(m.n, 5);
        e = entry(7, 0, 0);
        ASSERT_TRUE(state_manifest_find(&m, e.uuid) != NULL);
        ASSERT_EQ(state_manifest_find(&m, e.uuid)->perm_seq, 70);
        ASSERT_EQ(state_manifest_find(&m, e.uuid)->vol_seq, 71);
        e = entry(4, 0, 0);
        ASSERT_TRUE(state_manifest_find(&m, e.uuid) == NULL);

        /* remove: present -> 1, absent -> 0 */
        e = entry(5, 0, 0);
        ASSERT_EQ(state_manifest_remove(&m, e.uuid), 1);
        ASSERT_EQ(state_manifest_remove(&m, e.uuid), 0);
        ASSERT_EQ(m.n, 4);
        ASSERT_TRUE(state_manifest_find(&m, e.uuid) == NULL);
        ASSERT_EQ(m.entries[2].uuid[0], 7);
        e = entry(1, 0, 0);
        ASSERT_EQ(state_manifest_remove(&m, e.uuid), 1);
        e = entry(9, 0, 0);
        ASSERT_EQ(state_manifest_remove(&m, e.uuid), 1);
        ASSERT_EQ(m.n, 2);
        ASSERT_EQ(m.entries[0].uuid[0], 3);
        ASSERT_EQ(m.entries[1].uuid[0], 7);
        state_manifest_done(&m);
        ASSERT_EQ(m.n, 0);
        ASSERT_TRUE(state_manifest_find(&m, e.uuid) == NULL);
        state_manifest_done(&m); /* idempotent */
}

TEST(manifest_set_refuses_over_max) {
        StateManifest m = { 0 };
        StateManifestEntry e;

        m.entries = calloc(STATE_MANIFEST_MAX_ENTRIES, sizeof(*m.entries));
        ASSERT_TRUE(m.entries != NULL);
        for (uint32_t i = 0; i < STATE_MANIFEST_MAX_ENTRIES; i++) {
                m.entries[i].uuid[12] = (uint8_t) (i >> 24);
                m.entries[i].uuid[13] = (uint8_t) (i >> 16);
                m.entries[i].uuid[14] = (uint8_t) (i >> 8);
                m.entries[i].uuid[15] = (uint8_t) i;
        }
        m.n = STATE_MANIFEST_MAX_ENTRIES;
        e = entry(0xff, 1, 1);
        ASSERT_ERR(state_manifest_set(&m, &e), -E2BIG);
        /* updating an existing entry is still fine when full */
        e = m.entries[100];
        e.perm_seq = 99;
        ASSERT_OK(state_manifest_set(&m, &e));
        ASSERT_EQ(m.entries[100].perm_seq, 99);
        state_manifest_done(&m);
}
