/* SPDX-License-Identifier: BSD-3-Clause */
/* AES-256-GCM and randomness through OpenSSL 3 EVP; the only file that includes OpenSSL's crypto headers for state. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_SIZE 32u
#define CRYPTO_NONCE_SIZE 12u
#define CRYPTO_TAG_SIZE 16u

/* getrandom(2); never a weaker source. -EIO if the kernel cannot deliver. */
int crypto_random(void *buf, size_t n);
/* A random (version 4) UUID in canonical form. */
int crypto_random_uuid(char ret[37]);

/* AES-256-GCM. ct may equal pt. Returns 0 or -EIO (OpenSSL failure). */
int crypto_aead_encrypt(const uint8_t key[CRYPTO_KEY_SIZE], const uint8_t nonce[CRYPTO_NONCE_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct,
                        uint8_t tag[CRYPTO_TAG_SIZE]);
/* -EKEYREJECTED if the tag does not verify (wrong key, tampered data); pt untouched then is not
 * guaranteed, callers must discard it. */
int crypto_aead_decrypt(const uint8_t key[CRYPTO_KEY_SIZE], const uint8_t nonce[CRYPTO_NONCE_SIZE],
                        const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t len,
                        const uint8_t tag[CRYPTO_TAG_SIZE], uint8_t *pt);

/* Builds OpenSSL's process-wide tables (its name map, the default provider's
 * ciphers and digests) that the first use of any algorithm would build, so
 * that processes forked afterwards share them instead of each building its
 * own copy. Returns 0 or -EIO. */
int crypto_warm_up(void);

/* OPENSSL_cleanse */
void crypto_wipe(void *p, size_t n);

/* The OpenSSL this process runs with ("OpenSSL 3.0.15 3 Sep 2024"). */
const char *crypto_library_version(void);
