/* SPDX-License-Identifier: BSD-3-Clause */
/* TPM packet helpers (TPM 1.2 and 2.0 headers are both 10 bytes, big-endian). Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPM_HEADER_SIZE 10u
#define TPM_MAX_PACKET 4096u

typedef enum TpmFamily {
        TPM_FAMILY_2_0,
        TPM_FAMILY_1_2,
} TpmFamily;

/* Tags */
#define TPM2_ST_NO_SESSIONS 0x8001u
#define TPM2_ST_SESSIONS 0x8002u
#define TPM12_TAG_RQU_COMMAND 0x00c1u
#define TPM12_TAG_RSP_COMMAND 0x00c4u

/* Command codes / ordinals we build or recognise */
#define TPM2_CC_STARTUP 0x00000144u
#define TPM2_CC_SHUTDOWN 0x00000145u
#define TPM2_CC_GET_RANDOM 0x0000017bu
#define TPM2_CC_CREATE_PRIMARY 0x00000131u
#define TPM2_CC_PCR_READ 0x0000017eu
#define TPM2_SU_CLEAR 0x0000u
#define TPM2_SU_STATE 0x0001u
#define TPM12_ORD_STARTUP 0x00000099u
#define TPM12_ORD_GET_RANDOM 0x00000046u
#define TPM12_ST_CLEAR 0x0001u

/* Response codes we generate */
#define TPM2_RC_SUCCESS 0x000u
#define TPM2_RC_INITIALIZE 0x100u
#define TPM2_RC_FAILURE 0x101u
#define TPM2_RC_COMMAND_SIZE 0x142u
#define TPM2_RC_CANCELED 0x909u
#define TPM2_RC_RETRY 0x922u
#define TPM12_SUCCESS 0x00u
#define TPM12_FAIL 0x09u
#define TPM12_BAD_PARAM_SIZE 0x19u
#define TPM12_INVALID_POSTINIT 0x26u

typedef struct TpmHeader {
        uint16_t tag;
        uint32_t size;
        uint32_t code; /* command code / ordinal, or response code */
} TpmHeader;

/* Parses the first 10 bytes of buf. -EBADMSG if len < 10. Does not check size == len. */
int tpm_header_parse(const uint8_t *buf, size_t len, TpmHeader *ret);

/* Writes a 10-byte error response of the family (TPM 2.0: tag 0x8001; 1.2: 0x00c4). */
void tpm_error_response(TpmFamily family, uint32_t rc, uint8_t out[TPM_HEADER_SIZE]);

/* Generic failure and command-size codes of a family. */
uint32_t tpm_rc_failure(TpmFamily family);
uint32_t tpm_rc_command_size(TpmFamily family);

/* Command builders; return the command length, or -ENOBUFS if len is too small. */
int tpm2_build_startup(uint16_t su, uint8_t *buf, size_t len);
int tpm2_build_shutdown(uint16_t su, uint8_t *buf, size_t len);
int tpm2_build_get_random(uint16_t bytes, uint8_t *buf, size_t len);
int tpm12_build_startup(uint16_t st, uint8_t *buf, size_t len);

/* TPM2_PCR_Read of one bank: the PCRs 0..23 whose bits are set in select. */
#define TPM2_PCR_COUNT 24u
#define TPM2_MAX_DIGEST 64u
#define TPM2_ALG_SHA1 0x0004u
#define TPM2_ALG_SHA256 0x000bu
#define TPM2_ALG_SHA384 0x000cu
#define TPM2_ALG_SHA512 0x000du
/* The digest size of a hash algorithm above; 0 for another. */
size_t tpm2_hash_size(uint16_t alg);
int tpm2_build_pcr_read(uint16_t alg, uint32_t select, uint8_t *buf, size_t len);
/* Its response: *ret_select the PCRs it returned (a TPM returns at most 8 per call, and none of a
 * bank that is not allocated), their digests in digests[pcr]. -EPROTO with *ret_rc for a TPM error
 * response, -EBADMSG for anything malformed (sizes, a PCR not asked for, another bank). */
int tpm2_parse_pcr_read(const uint8_t *buf, size_t len, uint16_t alg, uint32_t asked, uint32_t *ret_select,
                        uint8_t digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST], uint32_t *ret_rc);

/* "2.0" / "1.2" exactly; to_string gives NULL outside the enum, from_string -EINVAL. */
/* True for a command whose work is bounded and small whatever its
 * parameters (no key generation, no asymmetric operation, no loops over
 * guest-sized input beyond one 4 KiB packet): the worker runs it on its I/O
 * thread instead of handing it to the TPM thread, which only exists so that
 * a long command can be cancelled. `cmd` is a whole command, header first;
 * anything malformed is not quick (the TPM thread answers it). */
bool tpm_command_is_quick(TpmFamily family, const uint8_t *cmd, size_t len);

const char *tpm_family_to_string(TpmFamily f);
int tpm_family_from_string(const char *s, TpmFamily *ret);

/* Big-endian helpers */
static inline uint16_t tpm_be16(const uint8_t *p) {
        return (uint16_t) ((p[0] << 8) | p[1]);
}
static inline uint32_t tpm_be32(const uint8_t *p) {
        return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3];
}
static inline void tpm_put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}
static inline void tpm_put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}
