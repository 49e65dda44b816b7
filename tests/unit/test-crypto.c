/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdint.h>
#include <stdlib.h>

#include "crypto.h"
#include "test.h"
#include "util.h"

static void unhex(const char *s, uint8_t *out) {
        for (size_t i = 0; s[2 * i]; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        abort();
                out[i] = (uint8_t) v;
        }
}

/* "The Galois/Counter Mode of Operation (GCM)", McGrew & Viega, test case 16
 * (AES-256, 96-bit IV, AAD, 60-byte plaintext). */
#define TC16_KEY "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define TC16_IV "cafebabefacedbaddecaf888"
#define TC16_AAD "feedfacedeadbeeffeedfacedeadbeefabaddad2"
#define TC16_PT                                                                                          \
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525" \
        "b16aedf5aa0de657ba637b39"
#define TC16_CT                                                                                          \
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838" \
        "c5f61e6393ba7a0abcc9f662"
#define TC16_TAG "76fc6ece0f4e1768cddf8853bb2d551b"

typedef struct Tc16 {
        uint8_t key[32], iv[12], aad[20], pt[60], ct[60], tag[16];
} Tc16;

static Tc16 tc16(void) {
        Tc16 t;
        unhex(TC16_KEY, t.key);
        unhex(TC16_IV, t.iv);
        unhex(TC16_AAD, t.aad);
        unhex(TC16_PT, t.pt);
        unhex(TC16_CT, t.ct);
        unhex(TC16_TAG, t.tag);
        return t;
}

TEST(gcm_known_answer_encrypt) {
        Tc16 t = tc16();
        uint8_t ct[60], tag[16];

        ASSERT_OK(crypto_aead_encrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.pt, sizeof(t.pt), ct, tag));
        ASSERT_MEMEQ(ct, t.ct, sizeof(ct));
        ASSERT_MEMEQ(tag, t.tag, sizeof(tag));
}

TEST(gcm_known_answer_decrypt) {
        Tc16 t = tc16();
        uint8_t pt[60];

        ASSERT_OK(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct), t.tag, pt));
        ASSERT_MEMEQ(pt, t.pt, sizeof(pt));
}

TEST(gcm_in_place) {
        Tc16 t = tc16();
        uint8_t buf[60], tag[16];

        memcpy(buf, t.pt, sizeof(buf));
        ASSERT_OK(crypto_aead_encrypt(t.key, t.iv, t.aad, sizeof(t.aad), buf, sizeof(buf), buf, tag));
        ASSERT_MEMEQ(buf, t.ct, sizeof(buf));
        ASSERT_OK(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), buf, sizeof(buf), tag, buf));
        ASSERT_MEMEQ(buf, t.pt, sizeof(buf));
}

TEST(gcm_empty_plaintext_and_aad) {
        /* test case 13: all-zero key and IV, nothing else */
        uint8_t key[32] = { 0 }, iv[12] = { 0 }, tag[16], want[16];

        unhex("530f8afbc74536b9a963b4f1c4cb738b", want);
        ASSERT_OK(crypto_aead_encrypt(key, iv, NULL, 0, NULL, 0, NULL, tag));
        ASSERT_MEMEQ(tag, want, sizeof(tag));
        ASSERT_OK(crypto_aead_decrypt(key, iv, NULL, 0, NULL, 0, tag, NULL));
        tag[0] ^= 1;
        ASSERT_ERR(crypto_aead_decrypt(key, iv, NULL, 0, NULL, 0, tag, NULL), -EKEYREJECTED);
}

TEST(gcm_rejects_every_modified_byte) {
        Tc16 t = tc16();
        uint8_t pt[60];

        /* Every byte of each input, flipped by its own mask. */
        const struct {
                uint8_t *p;
                size_t n;
                uint8_t mask;
        } inputs[] = {
                { t.ct, sizeof(t.ct), 0x01 },
                { t.tag, sizeof(t.tag), 0x80 },
                { t.aad, sizeof(t.aad), 0x10 },
                { t.iv, sizeof(t.iv), 0x02 },
        };

        for (size_t k = 0; k < ELEMENTSOF(inputs); k++)
                for (size_t i = 0; i < inputs[k].n; i++) {
                        inputs[k].p[i] ^= inputs[k].mask;
                        memset(pt, 0xee, sizeof(pt));
                        ASSERT_ERR(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct), t.tag,
                                                       pt),
                                   -EKEYREJECTED);
                        inputs[k].p[i] ^= inputs[k].mask;
                }
        /* shorter AAD or ciphertext */
        ASSERT_ERR(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad) - 1, t.ct, sizeof(t.ct), t.tag, pt),
                   -EKEYREJECTED);
        ASSERT_ERR(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct) - 1, t.tag, pt),
                   -EKEYREJECTED);
        /* and unmodified it still works */
        ASSERT_OK(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct), t.tag, pt));
}

TEST(gcm_wrong_key_rejected_and_output_wiped) {
        Tc16 t = tc16();
        uint8_t pt[60], zero[60] = { 0 };

        /* A modified tag with the right key: the decrypted bytes are the real plaintext and must not survive. */
        t.tag[15] ^= 1;
        memset(pt, 0xee, sizeof(pt));
        ASSERT_ERR(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct), t.tag, pt),
                   -EKEYREJECTED);
        ASSERT_MEMEQ(pt, zero, sizeof(pt));
        t.tag[15] ^= 1;

        for (size_t i = 0; i < sizeof(t.key); i++) {
                t.key[i] ^= 0x40;
                ASSERT_ERR(crypto_aead_decrypt(t.key, t.iv, t.aad, sizeof(t.aad), t.ct, sizeof(t.ct), t.tag, pt),
                           -EKEYREJECTED);
                t.key[i] ^= 0x40;
        }
}

TEST(gcm_large_roundtrip) {
        size_t n = 1024 * 1024 + 13;
        uint8_t *pt = malloc(n), *ct = malloc(n), *back = malloc(n);
        uint8_t key[32], nonce[12], tag[16], aad[56];

        ASSERT_TRUE(pt && ct && back);
        ASSERT_OK(crypto_random(pt, n));
        ASSERT_OK(crypto_random(key, sizeof(key)));
        ASSERT_OK(crypto_random(nonce, sizeof(nonce)));
        ASSERT_OK(crypto_random(aad, sizeof(aad)));
        ASSERT_OK(crypto_aead_encrypt(key, nonce, aad, sizeof(aad), pt, n, ct, tag));
        ASSERT_TRUE(memcmp(pt, ct, 4096) != 0);
        ASSERT_OK(crypto_aead_decrypt(key, nonce, aad, sizeof(aad), ct, n, tag, back));
        ASSERT_MEMEQ(back, pt, n);
        ct[n - 1] ^= 1;
        ASSERT_ERR(crypto_aead_decrypt(key, nonce, aad, sizeof(aad), ct, n, tag, back), -EKEYREJECTED);
        free(pt);
        free(ct);
        free(back);
}

TEST(random_fills_and_differs) {
        uint8_t a[64], b[64], zero[64] = { 0 };

        memset(a, 0, sizeof(a));
        memset(b, 0, sizeof(b));
        ASSERT_OK(crypto_random(a, sizeof(a)));
        ASSERT_OK(crypto_random(b, sizeof(b)));
        ASSERT_TRUE(memcmp(a, zero, sizeof(a)) != 0);
        ASSERT_TRUE(memcmp(a, b, sizeof(a)) != 0);
        ASSERT_OK(crypto_random(NULL, 0));
}

TEST(random_large_request_loops_over_short_reads) {
        /* getrandom(2) returns at most 32 MiB - 1 per call: 40 MiB needs the loop. */
        size_t n = 40u * 1024 * 1024;
        uint8_t *p = calloc(1, n), zero[4096] = { 0 };

        ASSERT_TRUE(p != NULL);
        ASSERT_OK(crypto_random(p, n));
        /* the tail was filled too */
        ASSERT_TRUE(memcmp(p + n - sizeof(zero), zero, sizeof(zero)) != 0);
        free(p);
}

TEST(wipe_zeroes) {
        uint8_t k[32], zero[32] = { 0 };

        memset(k, 0xa5, sizeof(k));
        crypto_wipe(k, sizeof(k));
        ASSERT_MEMEQ(k, zero, sizeof(k));
        crypto_wipe(NULL, 0);
}
