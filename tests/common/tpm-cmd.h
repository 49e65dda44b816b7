/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * TPM 2.0 commands as the tests send them, built byte by byte: a command
 * buffer with big-endian appenders, the password session, and the one
 * long-running command the tests need (RSA-2048 CreatePrimary). Header-only.
 */
#pragma once

#include <stdint.h>
#include <string.h>

#include "tpm.h"

#define TPMCMD_RS_PW 0x40000009u

typedef struct TpmCmd {
        uint8_t b[TPM_MAX_PACKET];
        size_t n;
} TpmCmd;

static inline void tpmcmd_u8(TpmCmd *c, uint8_t v) {
        c->b[c->n++] = v;
}
static inline void tpmcmd_u16(TpmCmd *c, uint16_t v) {
        tpm_put_be16(c->b + c->n, v);
        c->n += 2;
}
static inline void tpmcmd_u32(TpmCmd *c, uint32_t v) {
        tpm_put_be32(c->b + c->n, v);
        c->n += 4;
}
static inline void tpmcmd_bytes(TpmCmd *c, const void *p, size_t n) {
        memcpy(c->b + c->n, p, n);
        c->n += n;
}
/* The header with a size of 0, which tpmcmd_end() fills in. */
static inline void tpmcmd_begin(TpmCmd *c, uint16_t tag, uint32_t cc) {
        c->n = 0;
        tpmcmd_u16(c, tag);
        tpmcmd_u32(c, 0);
        tpmcmd_u32(c, cc);
}
static inline void tpmcmd_end(TpmCmd *c) {
        tpm_put_be32(c->b + 2, (uint32_t) c->n);
}
/* One password session (TPM_RS_PW) as the authorization area. */
static inline void tpmcmd_pw_session(TpmCmd *c, const char *pw) {
        size_t len = strlen(pw);

        tpmcmd_u32(c, (uint32_t) (4 + 2 + 1 + 2 + len));
        tpmcmd_u32(c, TPMCMD_RS_PW);
        tpmcmd_u16(c, 0);
        tpmcmd_u8(c, 0);
        tpmcmd_u16(c, (uint16_t) len);
        tpmcmd_bytes(c, pw, len);
}

/* TPM2_CreatePrimary RSA-2048 restricted decrypt key under the owner
 * hierarchy (15-100 ms of key generation); `unique` makes every key a new
 * one, so nothing can be cached. Returns the command's length. */
static inline size_t tpmcmd_create_primary(uint8_t *b, uint32_t unique) {
        static const uint8_t tmpl[] = {
                0x80, 0x02, 0, 0, 0, 0, 0x00, 0x00, 0x01, 0x31, /* header, size below */
                0x40, 0x00, 0x00, 0x01,                         /* TPM_RH_OWNER */
                0x00, 0x00, 0x00, 0x09, 0x40, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, /* empty password */
                0x00, 0x04, 0x00, 0x00, 0x00, 0x00,             /* inSensitive */
                0x00, 0x1e,                                     /* inPublic: 30 bytes */
                0x00, 0x01, 0x00, 0x0b, 0x00, 0x03, 0x00, 0x72, /* RSA, sha256, restricted decrypt key */
                0x00, 0x00,                                     /* authPolicy */
                0x00, 0x06, 0x00, 0x80, 0x00, 0x43,             /* AES-128-CFB */
                0x00, 0x10, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, /* no scheme, 2048 bits, exponent */
                0x00, 0x04, 0, 0, 0, 0,                         /* unique (4 bytes, below) */
                0x00, 0x00,                                     /* outsideInfo */
                0x00, 0x00, 0x00, 0x00,                         /* creationPCR */
        };

        memcpy(b, tmpl, sizeof(tmpl));
        tpm_put_be32(b + 2, sizeof(tmpl));
        tpm_put_be32(b + sizeof(tmpl) - 10, unique);
        return sizeof(tmpl);
}
