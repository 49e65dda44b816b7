/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The wrapped pool key (lib/pool-key.c) with OpenSSL software keys standing in
 * for the member's TPM transfer key: test-sealer.c runs the same exchange
 * against swtpm. A known answer made with an independent implementation
 * (Python's cryptography: ECDH, HKDF-SHA256, AES-256-GCM) pins the format, so
 * hosts running different vtpmd builds keep understanding each other.
 */
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <string.h>

#include "pool-key.h"
#include "test.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
#define _cleanup_pkey_ _cleanup_(EVP_PKEY_freep)

#define CONTEXT "pool 0123/host b"
#define CTX (const uint8_t *) CONTEXT, strlen(CONTEXT)

/* Member d = 0x11..11, ephemeral e = 0x22..22, nonce 00..0b, pool key 40..5f,
 * context "pool 0123/host b". */
static const uint8_t kat_key[POOL_KEY_SIZE] = {
        0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
        0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
};
static const uint8_t kat_member[65] = {
        0x04, 0x02, 0x17, 0xe6, 0x17, 0xf0, 0xb6, 0x44, 0x39, 0x28, 0x27, 0x8f,
        0x96, 0x99, 0x9e, 0x69, 0xa2, 0x3a, 0x4f, 0x2c, 0x15, 0x2b, 0xdf, 0x6d,
        0x6c, 0xdf, 0x66, 0xe5, 0xb8, 0x02, 0x82, 0xd4, 0xed, 0x19, 0x4a, 0x7d,
        0xeb, 0xcb, 0x97, 0x71, 0x2d, 0x2d, 0xda, 0x3c, 0xa8, 0x5a, 0xa8, 0x76,
        0x5a, 0x56, 0xf4, 0x5f, 0xc7, 0x58, 0x59, 0x96, 0x52, 0xf2, 0x89, 0x7c,
        0x65, 0x30, 0x6e, 0x57, 0x94,
};
static const uint8_t kat_z[32] = {
        0xcc, 0xfc, 0x26, 0x1f, 0x58, 0x19, 0x3c, 0x98, 0xca, 0x4a, 0xd4, 0xa5,
        0x3b, 0xba, 0xc6, 0xf0, 0xee, 0x29, 0xbc, 0x4d, 0x48, 0x43, 0x80, 0x90,
        0x44, 0x69, 0x08, 0x62, 0x2c, 0xa7, 0x9a, 0xf6,
};
static const uint8_t kat_blob[163] = {
        0x56, 0x54, 0x50, 0x4b, 0x00, 0x01, 0x04, 0xd6, 0x5a, 0x93, 0x97, 0x7c,
        0xaa, 0x3d, 0x1b, 0x08, 0x18, 0x52, 0xff, 0x57, 0xa7, 0x9e, 0x46, 0x5f,
        0x16, 0x60, 0x57, 0x73, 0x04, 0xba, 0xea, 0xd5, 0x05, 0xdd, 0x3a, 0x48,
        0x58, 0x9c, 0xf3, 0x50, 0x18, 0x5e, 0x89, 0x53, 0x72, 0xdf, 0x62, 0x21,
        0xea, 0x3a, 0x13, 0x75, 0x57, 0xe4, 0x73, 0xfd, 0xdb, 0x67, 0x55, 0xf0,
        0x5b, 0xd5, 0x07, 0xc3, 0xc5, 0x33, 0xfc, 0xe9, 0xc9, 0x12, 0x85, 0x2b,
        0xad, 0x0f, 0xd6, 0x10, 0xd9, 0x9e, 0xae, 0x44, 0x3e, 0x93, 0x2a, 0x26,
        0x14, 0x2b, 0xca, 0x1e, 0x5f, 0xa9, 0x95, 0xb4, 0x51, 0x84, 0x52, 0x82,
        0x7e, 0x78, 0xef, 0x1f, 0x31, 0x7f, 0xf0, 0x00, 0x01, 0x02, 0x03, 0x04,
        0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x68, 0x56, 0x5f, 0x07, 0xf1,
        0xd8, 0x4f, 0xfc, 0x44, 0xaa, 0x3c, 0xf1, 0x22, 0xbf, 0xe0, 0x5e, 0x83,
        0xac, 0x96, 0xde, 0x47, 0x31, 0xe1, 0x2f, 0x40, 0x08, 0x62, 0x84, 0x09,
        0x40, 0x3f, 0xcb, 0x43, 0x61, 0x41, 0x04, 0x17, 0xdb, 0x6a, 0x74, 0xe6,
        0x49, 0x92, 0xf1, 0xbe, 0x2c, 0x1e, 0xdf,
};

/* A member host: a software P-256 key in place of the TPM's transfer key. */
typedef struct Member {
        EVP_PKEY *key;
        uint8_t point[POOL_KEY_POINT_SIZE];
} Member;

static void member_new(Member *m) {
        size_t n = 0;

        m->key = EVP_EC_gen("P-256");
        REQUIRE(m->key, "EVP_EC_gen failed");
        REQUIRE(EVP_PKEY_get_octet_string_param(m->key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, m->point,
                                                sizeof(m->point), &n) == 1 && n == sizeof(m->point),
                "cannot encode the member's point");
}

static void member_free(Member *m) {
        EVP_PKEY_free(m->key);
        m->key = NULL;
}
#define _cleanup_member_ _cleanup_(member_free)

/* What the member's TPM computes: ECDH_ZGen on the ephemeral point. */
static void member_zgen(const Member *m, const uint8_t ephemeral[POOL_KEY_POINT_SIZE], uint8_t ret_z[POOL_KEY_Z_SIZE]) {
        OSSL_PARAM params[] = {
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) "P-256", 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *) ephemeral, POOL_KEY_POINT_SIZE),
                OSSL_PARAM_END,
        };
        _cleanup_pkey_ EVP_PKEY *peer = NULL;
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        size_t n = POOL_KEY_Z_SIZE;
        int ok;

        REQUIRE(ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
                EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) == 1, "cannot import the ephemeral point");
        EVP_PKEY_CTX_free(ctx);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, m->key, NULL);
        ok = ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer) == 1 &&
             EVP_PKEY_derive(ctx, ret_z, &n) == 1 && n == POOL_KEY_Z_SIZE;
        EVP_PKEY_CTX_free(ctx);
        REQUIRE(ok, "ECDH failed");
}

/* The whole unwrap as a member host runs it: parse, ZGen, open. */
static int unwrap(const Member *m, const uint8_t *blob, size_t len, const uint8_t *ctx, size_t ctx_len,
                  uint8_t ret[POOL_KEY_SIZE]) {
        uint8_t eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        int r = pool_key_parse(blob, len, m->point, eph);

        if (r < 0)
                return r;
        member_zgen(m, eph, z);
        return pool_key_open(blob, len, m->point, z, ctx, ctx_len, ret);
}

TEST(known_answer_opens) {
        uint8_t eph[POOL_KEY_POINT_SIZE], got[POOL_KEY_SIZE];

        ASSERT_OK(pool_key_parse(kat_blob, sizeof(kat_blob), kat_member, eph));
        ASSERT_MEMEQ(eph, kat_blob + 6, POOL_KEY_POINT_SIZE);
        ASSERT_OK(pool_key_open(kat_blob, sizeof(kat_blob), kat_member, kat_z, CTX, got));
        ASSERT_MEMEQ(got, kat_key, POOL_KEY_SIZE);
}

TEST(wrap_then_unwrap) {
        _cleanup_member_ Member m = { 0 };
        _cleanup_free_ uint8_t *blob = NULL, *again = NULL;
        size_t len = 0, len2 = 0;
        uint8_t got[POOL_KEY_SIZE];

        member_new(&m);
        ASSERT_OK(pool_key_wrap(kat_key, m.point, CTX, &blob, &len));
        ASSERT_EQ(len, POOL_KEY_BLOB_SIZE);
        ASSERT_MEMEQ(blob, "VTPK\0\1", 6);
        ASSERT_TRUE(memmem(blob, len, kat_key, 8) == NULL);
        ASSERT_OK(unwrap(&m, blob, len, CTX, got));
        ASSERT_MEMEQ(got, kat_key, POOL_KEY_SIZE);

        /* A fresh ephemeral key and nonce every time: two wraps share nothing secret. */
        ASSERT_OK(pool_key_wrap(kat_key, m.point, CTX, &again, &len2));
        ASSERT_FALSE(memcmp(blob + 6, again + 6, POOL_KEY_POINT_SIZE) == 0);
        ASSERT_FALSE(memcmp(blob + len - 48, again + len - 48, 48) == 0);

        /* An empty context is a context too. */
        free(again);
        again = NULL;
        ASSERT_OK(pool_key_wrap(kat_key, m.point, NULL, 0, &again, &len2));
        ASSERT_OK(unwrap(&m, again, len2, NULL, 0, got));
        ASSERT_MEMEQ(got, kat_key, POOL_KEY_SIZE);
}

TEST(wrong_context_or_member_is_rejected) {
        static const struct {
                const char *what;
                const char *context; /* NULL: the right one */
                bool other_member;   /* unwrapped by a host it was not wrapped to */
                bool other_z;        /* the right point claimed, but another TPM's Z */
        } cases[] = {
                { "another pool or host id", "pool 0123/host c", false, false },
                { "empty context", "", false, false },
                { "another member", NULL, true, false },
                { "the right point, another TPM's Z", NULL, false, true },
        };
        _cleanup_member_ Member m = { 0 }, other = { 0 };
        _cleanup_free_ uint8_t *blob = NULL;
        size_t len = 0;

        member_new(&m);
        member_new(&other);
        ASSERT_OK(pool_key_wrap(kat_key, m.point, CTX, &blob, &len));
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *c = cases[i].context ?: CONTEXT;
                uint8_t got[POOL_KEY_SIZE], eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
                int r;

                memset(got, 0xAA, sizeof(got));
                if (cases[i].other_z) {
                        ASSERT_OK(pool_key_parse(blob, len, m.point, eph));
                        member_zgen(&other, eph, z);
                        r = pool_key_open(blob, len, m.point, z, (const uint8_t *) c, strlen(c), got);
                } else
                        r = unwrap(cases[i].other_member ? &other : &m, blob, len, (const uint8_t *) c, strlen(c),
                                   got);
                if (r != -EKEYREJECTED)
                        TEST_FAIL_("%s: got %d, not -EKEYREJECTED", cases[i].what, r);
                for (size_t j = 0; j < sizeof(got); j++)
                        if (got[j] != 0xAA)
                                TEST_FAIL_("%s: the output was written", cases[i].what);
        }
}

TEST(malformed_lengths_are_ebadmsg) {
        static const long deltas[] = { -(long) POOL_KEY_BLOB_SIZE, -(long) POOL_KEY_BLOB_SIZE + 1, -17, -1, 1, 100 };
        uint8_t big[POOL_KEY_BLOB_SIZE + 100] = { 0 }, got[POOL_KEY_SIZE], eph[POOL_KEY_POINT_SIZE];

        memcpy(big, kat_blob, sizeof(kat_blob));
        for (size_t i = 0; i < ELEMENTSOF(deltas); i++) {
                size_t n = (size_t) ((long) sizeof(kat_blob) + deltas[i]);
                ASSERT_ERR(pool_key_parse(big, n, kat_member, eph), -EBADMSG);
                ASSERT_ERR(pool_key_open(big, n, kat_member, kat_z, CTX, got), -EBADMSG);
        }
        ASSERT_ERR(pool_key_parse(NULL, 0, kat_member, eph), -EBADMSG);
}

TEST(every_flipped_byte_is_refused) {
        /* What a flipped byte in each field is: the header fields are format,
         * the rest (and the fingerprint) decide whose key it is. */
        static const struct {
                size_t end;
                int err;
        } fields[] = {
                { 4, -EBADMSG },                        /* magic */
                { 6, -EBADMSG },                        /* version */
                { 6 + POOL_KEY_POINT_SIZE, -EBADMSG },  /* ephemeral point: off the curve */
                { POOL_KEY_BLOB_SIZE, -EKEYREJECTED },  /* fingerprint, nonce, ciphertext, tag */
        };
        uint8_t bad[POOL_KEY_BLOB_SIZE], got[POOL_KEY_SIZE];
        size_t f = 0;

        for (size_t i = 0; i < sizeof(kat_blob); i++) {
                int r;
                while (i >= fields[f].end)
                        f++;
                memcpy(bad, kat_blob, sizeof(bad));
                bad[i] ^= 0x01;
                memset(got, 0xAA, sizeof(got));
                r = pool_key_open(bad, sizeof(bad), kat_member, kat_z, CTX, got);
                if (r != fields[f].err)
                        TEST_FAIL_("byte %zu flipped: got %d, expected %d", i, r, fields[f].err);
                ASSERT_EQ(got[0], 0xAA);
        }
}

TEST(ephemeral_swapped_for_a_valid_point_is_rejected) {
        /* The generator G: on the curve, so only the tag can tell. */
        static const uint8_t g[POOL_KEY_POINT_SIZE] = {
                0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
                0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
                0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
                0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
                0xf5,
        };
        uint8_t bad[POOL_KEY_BLOB_SIZE], got[POOL_KEY_SIZE], eph[POOL_KEY_POINT_SIZE];
        char hex[POOL_KEY_FINGERPRINT_HEX_SIZE];

        memcpy(bad, kat_blob, sizeof(bad));
        memcpy(bad + 6, g, sizeof(g));
        ASSERT_OK(pool_key_parse(bad, sizeof(bad), kat_member, eph));
        ASSERT_ERR(pool_key_open(bad, sizeof(bad), kat_member, kat_z, CTX, got), -EKEYREJECTED);

        /* sha256sum of those 65 bytes */
        ASSERT_OK(pool_key_fingerprint_hex(g, hex));
        ASSERT_STREQ(hex, "698bea63dc44a344663ff1429aea10842df27b6b991ef25866b2c6c02cdcc5be");
}

TEST(wrap_refuses_a_point_off_the_curve) {
        _cleanup_member_ Member m = { 0 };
        uint8_t *blob = NULL, bad[POOL_KEY_POINT_SIZE];
        size_t len = 0;

        member_new(&m);
        memcpy(bad, m.point, sizeof(bad));
        bad[64] ^= 0x01;
        ASSERT_ERR(pool_key_wrap(kat_key, bad, CTX, &blob, &len), -EINVAL);
        memcpy(bad, m.point, sizeof(bad));
        bad[0] = 0x02; /* compressed form: not what a transfer point is */
        ASSERT_ERR(pool_key_wrap(kat_key, bad, CTX, &blob, &len), -EINVAL);
        memset(bad, 0, sizeof(bad));
        bad[0] = 0x04;
        ASSERT_ERR(pool_key_wrap(kat_key, bad, CTX, &blob, &len), -EINVAL);
        ASSERT_TRUE(blob == NULL);
        ASSERT_EQ(len, 0);
}
