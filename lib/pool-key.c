/* SPDX-License-Identifier: BSD-3-Clause */
/* The pool key wrapped to a member host's TPM transfer key (pool-key.h): OpenSSL EVP, no TPM. */
#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "pool-key.h"
#include "util.h"

#define BLOB_MAGIC "VTPK"
#define BLOB_MAGIC_LEN 4u
#define BLOB_VERSION 1u
#define KDF_LABEL "vtpmd pool key v1"

/* Field offsets in the blob (pool-key.h); the header is the AEAD's associated data. */
#define OFF_VERSION BLOB_MAGIC_LEN
#define OFF_EPHEMERAL (OFF_VERSION + 2u)
#define OFF_FINGERPRINT (OFF_EPHEMERAL + POOL_KEY_POINT_SIZE)
#define OFF_NONCE (OFF_FINGERPRINT + POOL_KEY_FINGERPRINT_SIZE)
#define OFF_CIPHERTEXT (OFF_NONCE + CRYPTO_NONCE_SIZE)
#define OFF_TAG (OFF_CIPHERTEXT + POOL_KEY_SIZE)
#define HEADER_LEN OFF_CIPHERTEXT

_Static_assert(OFF_TAG + CRYPTO_TAG_SIZE == POOL_KEY_BLOB_SIZE, "the blob layout and its size disagree");

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF *, EVP_KDF_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF_CTX *, EVP_KDF_CTX_free)

/* The one translation of OpenSSL failures into errno: -ENOMEM if OpenSSL ran
 * out of memory, else r. The error queue is emptied, so no stale entry is
 * blamed for a later, unrelated failure. */
static int ossl_error(int r) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE)
                r = -ENOMEM;
        ERR_clear_error();
        return r;
}

int pool_key_fingerprint(const uint8_t point[POOL_KEY_POINT_SIZE], uint8_t ret[POOL_KEY_FINGERPRINT_SIZE]) {
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (!point || !ret)
                return -EINVAL;
        if (EVP_Digest(point, POOL_KEY_POINT_SIZE, md, &n, EVP_sha256(), NULL) != 1 ||
            n != POOL_KEY_FINGERPRINT_SIZE)
                return ossl_error(-EIO);
        memcpy(ret, md, POOL_KEY_FINGERPRINT_SIZE);
        return 0;
}

int pool_key_fingerprint_hex(const uint8_t point[POOL_KEY_POINT_SIZE], char ret[POOL_KEY_FINGERPRINT_HEX_SIZE]) {
        uint8_t fp[POOL_KEY_FINGERPRINT_SIZE];
        char hex[POOL_KEY_FINGERPRINT_HEX_SIZE];
        int r;

        if (!ret)
                return -EINVAL;
        r = pool_key_fingerprint(point, fp);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof(fp); i++)
                snprintf(hex + 2 * i, 3, "%02x", fp[i]);
        memcpy(ret, hex, sizeof(hex));
        return 0;
}

/* A public P-256 key from an uncompressed point; refuses a point off the
 * curve (an invalid-curve point would leak the private scalar bit by bit). */
static int point_import(const uint8_t point[POOL_KEY_POINT_SIZE], EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL, *check = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *) "P-256", 0),
                OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *) point, POOL_KEY_POINT_SIZE),
                OSSL_PARAM_END,
        };

        if (point[0] != 0x04)
                return -EBADMSG;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
        if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1)
                return ossl_error(-EIO);
        if (EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1)
                return ossl_error(-EBADMSG);
        check = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        if (!check)
                return ossl_error(-EIO);
        if (EVP_PKEY_public_check(check) != 1)
                return ossl_error(-EBADMSG);
        *ret = TAKE_PTR(k);
        return 0;
}

/* k = HKDF-SHA256(Z, salt = ephemeral || member, info = label || context). */
static int derive_key(const uint8_t z[POOL_KEY_Z_SIZE], const uint8_t ephemeral[POOL_KEY_POINT_SIZE],
                      const uint8_t member[POOL_KEY_POINT_SIZE], const uint8_t *context, size_t context_len,
                      uint8_t ret[CRYPTO_KEY_SIZE]) {
        _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = NULL;
        _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *ctx = NULL;
        _cleanup_free_ uint8_t *info = NULL;
        uint8_t salt[2 * POOL_KEY_POINT_SIZE], k[CRYPTO_KEY_SIZE];
        size_t info_len = strlen(KDF_LABEL) + context_len;
        OSSL_PARAM params[5];
        int r = 0;

        info = malloc(info_len);
        if (!info)
                return -ENOMEM;
        memcpy(info, KDF_LABEL, strlen(KDF_LABEL));
        if (context_len)
                memcpy(info + strlen(KDF_LABEL), context, context_len);
        memcpy(salt, ephemeral, POOL_KEY_POINT_SIZE);
        memcpy(salt + POOL_KEY_POINT_SIZE, member, POOL_KEY_POINT_SIZE);

        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
        params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) z, POOL_KEY_Z_SIZE);
        params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, sizeof(salt));
        params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, info_len);
        params[4] = OSSL_PARAM_construct_end();
        kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        if (!ctx || EVP_KDF_derive(ctx, k, sizeof(k), params) != 1)
                r = ossl_error(-EIO);
        else
                memcpy(ret, k, sizeof(k));
        crypto_wipe(k, sizeof(k));
        return r;
}

/* Z = ECDH(ephemeral private, member public), and the ephemeral public point. */
static int ephemeral_agree(EVP_PKEY *member, uint8_t ret_point[POOL_KEY_POINT_SIZE], uint8_t ret_z[POOL_KEY_Z_SIZE]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = EVP_EC_gen("P-256");
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = NULL;
        uint8_t point[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        size_t point_len = 0, z_len = sizeof(z);
        int r = 0;

        if (!eph)
                return ossl_error(-EIO);
        /* OpenSSL's EC keys encode their public point uncompressed by default. */
        if (EVP_PKEY_get_octet_string_param(eph, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point),
                                            &point_len) != 1 ||
            point_len != sizeof(point) || point[0] != 0x04)
                return ossl_error(-EIO);
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL);
        if (!ctx || EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, member) != 1 ||
            EVP_PKEY_derive(ctx, z, &z_len) != 1 || z_len != sizeof(z))
                r = ossl_error(-EIO);
        else {
                memcpy(ret_point, point, sizeof(point));
                memcpy(ret_z, z, sizeof(z));
        }
        crypto_wipe(z, sizeof(z));
        return r;
}

int pool_key_wrap(const uint8_t pool_key[POOL_KEY_SIZE], const uint8_t member_point[POOL_KEY_POINT_SIZE],
                  const uint8_t *context, size_t context_len, uint8_t **ret, size_t *ret_len) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *member = NULL;
        _cleanup_free_ uint8_t *b = NULL;
        uint8_t z[POOL_KEY_Z_SIZE], k[CRYPTO_KEY_SIZE];
        int r;

        if (!pool_key || !member_point || (!context && context_len) || !ret || !ret_len)
                return -EINVAL;
        r = point_import(member_point, &member);
        if (r == -EBADMSG)
                return -EINVAL; /* the caller's argument, not a received blob */
        if (r < 0)
                return r;
        b = malloc(POOL_KEY_BLOB_SIZE);
        if (!b)
                return -ENOMEM;

        memcpy(b, BLOB_MAGIC, BLOB_MAGIC_LEN);
        b[OFF_VERSION] = BLOB_VERSION >> 8;
        b[OFF_VERSION + 1] = BLOB_VERSION & 0xFF;
        r = ephemeral_agree(member, b + OFF_EPHEMERAL, z);
        if (r < 0)
                return r;
        r = pool_key_fingerprint(member_point, b + OFF_FINGERPRINT);
        if (r >= 0)
                r = crypto_random(b + OFF_NONCE, CRYPTO_NONCE_SIZE);
        if (r >= 0)
                r = derive_key(z, b + OFF_EPHEMERAL, member_point, context, context_len, k);
        if (r >= 0)
                r = crypto_aead_encrypt(k, b + OFF_NONCE, b, HEADER_LEN, pool_key, POOL_KEY_SIZE,
                                        b + OFF_CIPHERTEXT, b + OFF_TAG);
        crypto_wipe(z, sizeof(z));
        crypto_wipe(k, sizeof(k));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        *ret_len = POOL_KEY_BLOB_SIZE;
        return 0;
}

int pool_key_parse(const uint8_t *blob, size_t len, const uint8_t member_point[POOL_KEY_POINT_SIZE],
                   uint8_t ret_ephemeral[POOL_KEY_POINT_SIZE]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = NULL;
        uint8_t fp[POOL_KEY_FINGERPRINT_SIZE];
        int r;

        if (!member_point || !ret_ephemeral)
                return -EINVAL;
        if (!blob || len != POOL_KEY_BLOB_SIZE || memcmp(blob, BLOB_MAGIC, BLOB_MAGIC_LEN) != 0 ||
            blob[OFF_VERSION] != (BLOB_VERSION >> 8) || blob[OFF_VERSION + 1] != (BLOB_VERSION & 0xFF))
                return -EBADMSG;
        r = point_import(blob + OFF_EPHEMERAL, &eph);
        if (r < 0)
                return r;
        r = pool_key_fingerprint(member_point, fp);
        if (r < 0)
                return r;
        if (memcmp(fp, blob + OFF_FINGERPRINT, sizeof(fp)) != 0)
                return -EKEYREJECTED;
        memcpy(ret_ephemeral, blob + OFF_EPHEMERAL, POOL_KEY_POINT_SIZE);
        return 0;
}

int pool_key_open(const uint8_t *blob, size_t len, const uint8_t member_point[POOL_KEY_POINT_SIZE],
                  const uint8_t z[POOL_KEY_Z_SIZE], const uint8_t *context, size_t context_len,
                  uint8_t ret_key[POOL_KEY_SIZE]) {
        uint8_t eph[POOL_KEY_POINT_SIZE], k[CRYPTO_KEY_SIZE], key[POOL_KEY_SIZE];
        int r;

        if (!z || (!context && context_len) || !ret_key)
                return -EINVAL;
        r = pool_key_parse(blob, len, member_point, eph);
        if (r < 0)
                return r;
        r = derive_key(z, eph, member_point, context, context_len, k);
        if (r >= 0)
                r = crypto_aead_decrypt(k, blob + OFF_NONCE, blob, HEADER_LEN, blob + OFF_CIPHERTEXT, POOL_KEY_SIZE,
                                        blob + OFF_TAG, key);
        if (r >= 0)
                memcpy(ret_key, key, sizeof(key));
        crypto_wipe(k, sizeof(k));
        crypto_wipe(key, sizeof(key));
        return r;
}
