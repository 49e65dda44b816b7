/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "bench-cmds.h"
#include "tpm.h"
#include "util.h"

#define TPM2_RH_OWNER 0x40000001u
#define TPM2_RS_PW 0x40000009u
#define TPM2_ALG_SHA256 0x000bu
#define TPM2_ALG_ECC 0x0023u
#define TPM2_ALG_AES 0x0006u
#define TPM2_ALG_CFB 0x0043u
#define TPM2_ALG_NULL 0x0010u
#define TPM2_ECC_NIST_P256 0x0003u

/* A cursor over a caller's buffer: overflow is remembered, not written. */
typedef struct Writer {
        uint8_t *buf;
        size_t len, pos;
} Writer;

static void put_u8(Writer *w, uint8_t v) {
        if (w->pos < w->len)
                w->buf[w->pos] = v;
        w->pos++;
}

static void put_u16(Writer *w, uint16_t v) {
        put_u8(w, (uint8_t) (v >> 8));
        put_u8(w, (uint8_t) v);
}

static void put_u32(Writer *w, uint32_t v) {
        put_u16(w, (uint16_t) (v >> 16));
        put_u16(w, (uint16_t) v);
}

static void begin(Writer *w, uint16_t tag, uint32_t cc) {
        put_u16(w, tag);
        put_u32(w, 0); /* size, patched by finish() */
        put_u32(w, cc);
}

/* The authorisation area: one TPM_RS_PW session, empty nonce and password. */
static void put_password_session(Writer *w) {
        put_u32(w, 9);          /* authorizationSize */
        put_u32(w, TPM2_RS_PW); /* sessionHandle */
        put_u16(w, 0);          /* nonceCaller */
        put_u8(w, 0);           /* sessionAttributes */
        put_u16(w, 0);          /* hmac = password */
}

static int finish(Writer *w) {
        if (w->pos > w->len || w->pos > INT32_MAX)
                return -ENOBUFS;
        tpm_put_be32(w->buf + 2, (uint32_t) w->pos);
        return (int) w->pos;
}

static const char *const op_names[_BENCH_OP_MAX] = {
        [BENCH_OP_GET_RANDOM] = "getrandom",
        [BENCH_OP_PCR_EXTEND] = "pcrextend",
        [BENCH_OP_NV_WRITE] = "nvwrite",
        [BENCH_OP_CREATE_PRIMARY] = "createprimary",
};

const char *bench_op_to_string(BenchOp op) {
        if ((unsigned) op >= _BENCH_OP_MAX)
                return NULL;
        return op_names[op];
}

int bench_op_from_string(const char *s, BenchOp *ret) {
        for (unsigned i = 0; i < _BENCH_OP_MAX; i++)
                if (streq(s, op_names[i])) {
                        *ret = (BenchOp) i;
                        return 0;
                }
        return -EINVAL;
}

static void build_pcr_extend(Writer *w) {
        begin(w, TPM2_ST_SESSIONS, TPM2_CC_PCR_EXTEND);
        put_u32(w, 16); /* pcrHandle: a resettable debug PCR */
        put_password_session(w);
        put_u32(w, 1); /* TPML_DIGEST_VALUES.count */
        put_u16(w, TPM2_ALG_SHA256);
        for (unsigned i = 0; i < 32; i++)
                put_u8(w, (uint8_t) i);
}

static void build_nv_write(Writer *w, uint32_t seq) {
        begin(w, TPM2_ST_SESSIONS, TPM2_CC_NV_WRITE);
        put_u32(w, TPM2_RH_OWNER); /* authHandle */
        put_u32(w, BENCH_NV_INDEX);
        put_password_session(w);
        put_u16(w, BENCH_NV_SIZE); /* TPM2B_MAX_NV_BUFFER */
        for (unsigned i = 0; i < BENCH_NV_SIZE / 4; i++)
                put_u32(w, seq);
        put_u16(w, 0); /* offset */
}

/* The shape of the TCG EK/SRK ECC templates: a restricted decryption key. */
static void build_create_primary(Writer *w) {
        begin(w, TPM2_ST_SESSIONS, TPM2_CC_CREATE_PRIMARY);
        put_u32(w, TPM2_RH_OWNER);
        put_password_session(w);
        put_u16(w, 4); /* TPM2B_SENSITIVE_CREATE: empty userAuth and data */
        put_u16(w, 0);
        put_u16(w, 0);
        put_u16(w, 26); /* TPM2B_PUBLIC */
        put_u16(w, TPM2_ALG_ECC);
        put_u16(w, TPM2_ALG_SHA256);
        /* fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|decrypt */
        put_u32(w, 0x00030072u);
        put_u16(w, 0); /* authPolicy */
        put_u16(w, TPM2_ALG_AES);
        put_u16(w, 128);
        put_u16(w, TPM2_ALG_CFB);
        put_u16(w, TPM2_ALG_NULL); /* scheme */
        put_u16(w, TPM2_ECC_NIST_P256);
        put_u16(w, TPM2_ALG_NULL); /* kdf */
        put_u16(w, 0);             /* unique.x */
        put_u16(w, 0);             /* unique.y */
        put_u16(w, 0);             /* outsideInfo */
        put_u32(w, 0);             /* creationPCR: no selection */
}

int bench_build_op(BenchOp op, uint32_t seq, uint8_t *buf, size_t len) {
        Writer w = { .buf = buf, .len = len };

        if (len < TPM_HEADER_SIZE)
                return -ENOBUFS;
        switch (op) {
        case BENCH_OP_GET_RANDOM:
                return tpm2_build_get_random(8, buf, len);
        case BENCH_OP_PCR_EXTEND:
                build_pcr_extend(&w);
                break;
        case BENCH_OP_NV_WRITE:
                build_nv_write(&w, seq);
                break;
        case BENCH_OP_CREATE_PRIMARY:
                build_create_primary(&w);
                break;
        case _BENCH_OP_MAX:
                return -EINVAL;
        }
        return finish(&w);
}

int bench_build_nv_define(uint8_t *buf, size_t len) {
        Writer w = { .buf = buf, .len = len };

        if (len < TPM_HEADER_SIZE)
                return -ENOBUFS;
        begin(&w, TPM2_ST_SESSIONS, TPM2_CC_NV_DEFINE_SPACE);
        put_u32(&w, TPM2_RH_OWNER);
        put_password_session(&w);
        put_u16(&w, 0);  /* auth of the new index */
        put_u16(&w, 14); /* TPM2B_NV_PUBLIC */
        put_u32(&w, BENCH_NV_INDEX);
        put_u16(&w, TPM2_ALG_SHA256);
        /* OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD|NO_DA, ordinary index */
        put_u32(&w, 0x02060006u);
        put_u16(&w, 0); /* authPolicy */
        put_u16(&w, BENCH_NV_SIZE);
        return finish(&w);
}

int bench_build_flush(uint32_t handle, uint8_t *buf, size_t len) {
        Writer w = { .buf = buf, .len = len };

        if (len < TPM_HEADER_SIZE)
                return -ENOBUFS;
        begin(&w, TPM2_ST_NO_SESSIONS, TPM2_CC_FLUSH_CONTEXT);
        put_u32(&w, handle);
        return finish(&w);
}
