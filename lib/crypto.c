/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "crypto.h"
#include "statefile.h"
#include "util.h"

/* EVP lengths are int: feed larger buffers in pieces. */
#define EVP_CHUNK ((size_t) INT_MAX & ~(size_t) 0xfff)

static void evp_ctx_freep(EVP_CIPHER_CTX **p) {
        EVP_CIPHER_CTX_free(*p);
}
#define _cleanup_evp_ctx_ _cleanup_(evp_ctx_freep)

/* The one place where OpenSSL's error family becomes an errno. Its queue is
 * emptied so a later, unrelated OpenSSL user does not inherit our failure. */
static int openssl_error(void) {
        ERR_clear_error();
        return -EIO;
}

int crypto_warm_up(void) {
        EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
        EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
        int r = cipher && md ? 0 : openssl_error();

        /* The stores keep what was fetched; these references are not needed. */
        EVP_MD_free(md);
        EVP_CIPHER_free(cipher);
        return r;
}

int crypto_random(void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = getrandom(p, n, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -EIO;
                }
                if (k == 0)
                        return -EIO; /* cannot happen for n > 0; never spin on it */
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int feed_aad(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *aad, size_t aad_len) {
        while (aad_len > 0) {
                size_t c = aad_len < EVP_CHUNK ? aad_len : EVP_CHUNK;
                int outl;
                if ((enc ? EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int) c)
                         : EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int) c)) != 1)
                        return openssl_error();
                aad += c;
                aad_len -= c;
        }
        return 0;
}

static int feed_data(EVP_CIPHER_CTX *ctx, bool enc, const uint8_t *in, size_t len, uint8_t *out) {
        while (len > 0) {
                size_t c = len < EVP_CHUNK ? len : EVP_CHUNK;
                int outl;
                if ((enc ? EVP_EncryptUpdate(ctx, out, &outl, in, (int) c)
                         : EVP_DecryptUpdate(ctx, out, &outl, in, (int) c)) != 1)
                        return openssl_error();
                /* GCM is a stream mode: OpenSSL emits exactly what it was fed. */
                if ((size_t) outl != c)
                        return openssl_error();
                in += c;
                out += c;
                len -= c;
        }
        return 0;
}

int crypto_aead_encrypt(const uint8_t key[CRYPTO_KEY_SIZE], const uint8_t nonce[CRYPTO_NONCE_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
                        uint8_t tag[CRYPTO_TAG_SIZE]) {
        _cleanup_evp_ctx_ EVP_CIPHER_CTX *ctx = NULL;
        uint8_t t[CRYPTO_TAG_SIZE], fin[CRYPTO_TAG_SIZE]; /* GCM's final step emits nothing */
        int outl, r;

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return openssl_error();
        if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCE_SIZE, NULL) != 1 ||
            EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
                return openssl_error();
        r = feed_aad(ctx, true, aad, aad_len);
        if (r < 0)
                return r;
        r = feed_data(ctx, true, pt, len, ct);
        if (r < 0)
                return r;
        if (EVP_EncryptFinal_ex(ctx, fin, &outl) != 1 || outl != 0)
                return openssl_error();
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_SIZE, t) != 1)
                return openssl_error();
        memcpy(tag, t, sizeof(t));
        return 0;
}

int crypto_aead_decrypt(const uint8_t key[CRYPTO_KEY_SIZE], const uint8_t nonce[CRYPTO_NONCE_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
                        const uint8_t tag[CRYPTO_TAG_SIZE], uint8_t *pt) {
        _cleanup_evp_ctx_ EVP_CIPHER_CTX *ctx = NULL;
        uint8_t t[CRYPTO_TAG_SIZE], fin[CRYPTO_TAG_SIZE]; /* GCM's final step emits nothing */
        int outl, r;

        /* EVP wants a mutable tag buffer. */
        memcpy(t, tag, sizeof(t));

        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return openssl_error();
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCE_SIZE, NULL) != 1 ||
            EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1)
                return openssl_error();
        r = feed_aad(ctx, false, aad, aad_len);
        if (r < 0)
                return r;
        r = feed_data(ctx, false, ct, len, pt);
        if (r < 0) {
                crypto_wipe(pt, len);
                return r;
        }
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_SIZE, t) != 1)
                return openssl_error();
        /* For GCM the final step fails only when the tag does not verify. */
        if (EVP_DecryptFinal_ex(ctx, fin, &outl) != 1) {
                ERR_clear_error();
                /* With the right key and a modified tag this is the real plaintext. */
                crypto_wipe(pt, len);
                return -EKEYREJECTED;
        }
        return 0;
}

void crypto_wipe(void *p, size_t n) {
        if (p && n)
                OPENSSL_cleanse(p, n);
}

int crypto_random_uuid(char ret[37]) {
        uint8_t u[STATEFILE_UUID_SIZE];
        int r = crypto_random(u, sizeof(u));

        if (r < 0)
                return r;
        u[6] = (uint8_t) ((u[6] & 0x0f) | 0x40); /* version 4 */
        u[8] = (uint8_t) ((u[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        statefile_uuid_to_string(u, ret);
        return 0;
}

const char *crypto_library_version(void) {
        return OpenSSL_version(OPENSSL_VERSION);
}
