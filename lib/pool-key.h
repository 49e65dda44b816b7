/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The pool key in transit: 32 random bytes that every member host of a pool
 * holds, wrapped by a member to a joining host's TPM transfer key
 * (host_tpm_transfer_public() in sealer.h) so that a copy of the traffic or of
 * the shared storage is useless without that host's TPM.
 *
 * ECIES over NIST P-256 (SEC 1 §5.1 in shape): the wrapping host makes an
 * ephemeral key pair, Z = ECDH(ephemeral, member point), and
 *   k = HKDF-SHA256(ikm = Z, salt = ephemeral point || member point,
 *                   info = "vtpmd pool key v1" || context)
 * encrypts the pool key with AES-256-GCM, the header being the associated
 * data. The unwrapping host gets the same Z from its TPM
 * (host_tpm_transfer_zgen() on the ephemeral point): the member's private key
 * never leaves the TPM, and this file needs no TPM, so its format is tested
 * with software keys. The context (the caller's choice, e.g. the pool id and
 * the member's host id) binds a blob to one pool and one member: a blob
 * copied into another place opens nowhere else.
 *
 * Blob (POOL_KEY_BLOB_SIZE bytes, big-endian):
 *   magic "VTPK" | u16 version (1) | ephemeral point (65) |
 *   SHA-256 fingerprint of the member point (32) | nonce (12) |
 *   ciphertext (32) | tag (16)
 *
 * Unwrapping is split so the TPM step sits with the caller:
 *   pool_key_parse()           -> the ephemeral point (checks the fingerprint)
 *   host_tpm_transfer_zgen()   -> Z
 *   pool_key_open()            -> the pool key
 *
 * Errors: -EBADMSG the blob is malformed (size, magic, version, a point not on
 * the curve); -EKEYREJECTED it was wrapped to another member point (another
 * TPM), or the tag does not verify (wrong Z, wrong context, altered blob);
 * -EINVAL a bad argument (a member point not on the curve); -ENOMEM; -EIO an
 * OpenSSL failure. Outputs are written only on success; keys, Z and derived
 * keys are wiped before return.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define POOL_KEY_SIZE 32u
#define POOL_KEY_POINT_SIZE 65u        /* SEC 1 uncompressed P-256 point: 0x04 || X || Y */
#define POOL_KEY_Z_SIZE 32u            /* the ECDH shared secret: the x-coordinate */
#define POOL_KEY_FINGERPRINT_SIZE 32u  /* SHA-256 of the point */
#define POOL_KEY_FINGERPRINT_HEX_SIZE (2u * POOL_KEY_FINGERPRINT_SIZE + 1u)
#define POOL_KEY_BLOB_SIZE (4u + 2u + POOL_KEY_POINT_SIZE + POOL_KEY_FINGERPRINT_SIZE + 12u + POOL_KEY_SIZE + 16u)

/* A host's identity in a pool, as an administrator compares it between hosts:
 * SHA-256 of its transfer point; _hex: lower-case, NUL-terminated. */
int pool_key_fingerprint(const uint8_t point[POOL_KEY_POINT_SIZE], uint8_t ret[POOL_KEY_FINGERPRINT_SIZE]);
int pool_key_fingerprint_hex(const uint8_t point[POOL_KEY_POINT_SIZE], char ret[POOL_KEY_FINGERPRINT_HEX_SIZE]);

/* *ret: a malloc'ed blob of *ret_len (POOL_KEY_BLOB_SIZE) bytes. */
int pool_key_wrap(const uint8_t pool_key[POOL_KEY_SIZE], const uint8_t member_point[POOL_KEY_POINT_SIZE],
                  const uint8_t *context, size_t context_len, uint8_t **ret, size_t *ret_len);

/* Checks the blob's format and that it was wrapped to member_point (this
 * host's transfer point); *ret_ephemeral: the point to give the TPM's ZGen. */
int pool_key_parse(const uint8_t *blob, size_t len, const uint8_t member_point[POOL_KEY_POINT_SIZE],
                   uint8_t ret_ephemeral[POOL_KEY_POINT_SIZE]);

/* The pool key from the blob and Z (host_tpm_transfer_zgen() on the ephemeral
 * point); context must be the wrapper's. */
int pool_key_open(const uint8_t *blob, size_t len, const uint8_t member_point[POOL_KEY_POINT_SIZE],
                  const uint8_t z[POOL_KEY_Z_SIZE], const uint8_t *context, size_t context_len,
                  uint8_t ret_key[POOL_KEY_SIZE]);
