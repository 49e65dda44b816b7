/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM 2.0 command byte sequences every benchmark contender receives
 * (vtpmd through the simulated transport, libtpms in-process, swtpm on its
 * socket), built once here so all three see exactly the same bytes.
 *
 * Commands that need authorisation carry one password session with an empty
 * password (TPM_RS_PW), the layout of TPM 2.0 Part 1 §18.6 and Part 3's
 * command tables; no HMAC, so the bytes are fixed.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum BenchOp {
        BENCH_OP_GET_RANDOM,     /* TPM2_GetRandom(8) */
        BENCH_OP_PCR_EXTEND,     /* TPM2_PCR_Extend(PCR 16, one SHA-256 digest) */
        BENCH_OP_NV_WRITE,       /* TPM2_NV_Write of 16 bytes at offset 0 of BENCH_NV_INDEX */
        BENCH_OP_CREATE_PRIMARY, /* TPM2_CreatePrimary, owner hierarchy, ECC NIST P-256 */
        _BENCH_OP_MAX,
} BenchOp;

/* An owner-range NV index no test or tool of ours uses. */
#define BENCH_NV_INDEX 0x01500016u
#define BENCH_NV_SIZE 16u

#define TPM2_CC_PCR_EXTEND 0x00000182u
#define TPM2_CC_NV_DEFINE_SPACE 0x0000012au
#define TPM2_CC_NV_WRITE 0x00000137u
#define TPM2_CC_FLUSH_CONTEXT 0x00000165u
#define TPM2_RC_NV_DEFINED 0x0000014cu

/* Largest command built here (CreatePrimary, 67 bytes) with room to spare. */
#define BENCH_CMD_MAX 128u

/* "getrandom", "pcrextend", "nvwrite", "createprimary"; NULL outside the enum. */
const char *bench_op_to_string(BenchOp op);
int bench_op_from_string(const char *s, BenchOp *ret);

/* The timed command of op, number seq of a run. Returns its length or
 * -ENOBUFS. Only NV_Write depends on seq: its data is seq repeated, because
 * libtpms skips the NV commit (and so the durable write) when a write leaves
 * the index unchanged; every NV_Write of a run must change the data. */
int bench_build_op(BenchOp op, uint32_t seq, uint8_t *buf, size_t len);
/* TPM2_NV_DefineSpace of BENCH_NV_INDEX (owner auth, OWNERREAD|OWNERWRITE|
 * AUTHREAD|AUTHWRITE|NO_DA, SHA-256 name, BENCH_NV_SIZE bytes). */
int bench_build_nv_define(uint8_t *buf, size_t len);
/* TPM2_FlushContext(handle), to drop each CreatePrimary's object. */
int bench_build_flush(uint32_t handle, uint8_t *buf, size_t len);
