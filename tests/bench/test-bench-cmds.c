/* SPDX-License-Identifier: BSD-3-Clause */
/* The benchmark's hand-built commands are accepted by libtpms as the real TPM would: each one succeeds. */
#include "../../lib/tpm-instance.h"
#include "bench-cmds.h"
#include "test.h"
#include "util.h"

typedef struct Fixture {
        TpmStore *store;
        TpmInstance *tpm;
} Fixture;

static void fixture_done(Fixture *f) {
        f->tpm = tpm_instance_free(f->tpm);
        f->store = tpm_store_free(f->store);
}

/* Runs cmd; the response code, or a negative errno. */
static long long run(Fixture *f, const uint8_t *cmd, int len, uint8_t *resp, size_t *ret_len) {
        int r;

        if (len < 0)
                return len;
        r = tpm_instance_process(f->tpm, cmd, (size_t) len, resp, TPM_MAX_PACKET, ret_len, 0);
        if (r < 0)
                return r;
        return tpm_be32(resp + 6);
}

#define FIXTURE(f)                                                              \
        _cleanup_(fixture_done) Fixture f = {};                                 \
        ASSERT_OK(tpm_store_memory_new(&f.store));                              \
        ASSERT_OK(tpm_instance_new(TPM_FAMILY_2_0, f.store, &f.tpm));           \
        ASSERT_OK(tpm_instance_startup(f.tpm, NULL))

TEST(op_names_round_trip) {
        for (unsigned i = 0; i < _BENCH_OP_MAX; i++) {
                BenchOp op;
                ASSERT_OK(bench_op_from_string(bench_op_to_string((BenchOp) i), &op));
                ASSERT_EQ(op, i);
        }
        BenchOp op;
        ASSERT_ERR(bench_op_from_string("GetRandom", &op), -EINVAL);
        ASSERT_TRUE(bench_op_to_string(_BENCH_OP_MAX) == NULL);
}

TEST(short_buffer_is_refused) {
        uint8_t buf[BENCH_CMD_MAX];
        for (unsigned i = 0; i < _BENCH_OP_MAX; i++)
                ASSERT_ERR(bench_build_op((BenchOp) i, 0, buf, 11), -ENOBUFS);
        ASSERT_ERR(bench_build_nv_define(buf, 20), -ENOBUFS);
        ASSERT_EQ(bench_build_flush(0x80000000u, buf, sizeof(buf)), 14);
}

TEST(size_field_matches_length) {
        uint8_t buf[BENCH_CMD_MAX];
        for (unsigned i = 0; i < _BENCH_OP_MAX; i++) {
                int len = bench_build_op((BenchOp) i, 0, buf, sizeof(buf));
                ASSERT_TRUE(len >= 10);
                ASSERT_EQ(tpm_be32(buf + 2), len);
        }
}

TEST(get_random_pcr_extend_succeed) {
        uint8_t cmd[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        size_t rlen;
        FIXTURE(f);
        ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_GET_RANDOM, 0, cmd, sizeof(cmd)), resp, &rlen), 0);
        ASSERT_EQ(rlen, 10 + 2 + 8);
        for (int i = 0; i < 3; i++)
                ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_PCR_EXTEND, 0, cmd, sizeof(cmd)), resp, &rlen), 0);
}

TEST(nv_write_needs_define_and_define_twice_is_nv_defined) {
        uint8_t cmd[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        size_t rlen;
        FIXTURE(f);
        /* Without the index the write must fail, so success below means the index was written. */
        ASSERT_TRUE(run(&f, cmd, bench_build_op(BENCH_OP_NV_WRITE, 0, cmd, sizeof(cmd)), resp, &rlen) > 0);
        ASSERT_EQ(run(&f, cmd, bench_build_nv_define(cmd, sizeof(cmd)), resp, &rlen), 0);
        ASSERT_EQ(run(&f, cmd, bench_build_nv_define(cmd, sizeof(cmd)), resp, &rlen), TPM2_RC_NV_DEFINED);
        for (uint32_t i = 0; i < 3; i++)
                ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_NV_WRITE, i, cmd, sizeof(cmd)), resp, &rlen), 0);
}

TEST(create_primary_gives_a_transient_ecc_key_that_flushes) {
        uint8_t cmd[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        size_t rlen;
        FIXTURE(f);
        for (int i = 0; i < 2; i++) {
                ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_CREATE_PRIMARY, 0, cmd, sizeof(cmd)), resp, &rlen), 0);
                ASSERT_TRUE(rlen > 14 + 4);
                uint32_t handle = tpm_be32(resp + 10);
                ASSERT_EQ(handle >> 24, 0x80);
                /* outPublic.publicArea.type follows parameterSize and the TPM2B size */
                ASSERT_EQ(tpm_be16(resp + 10 + 4 + 4 + 2), 0x0023);
                ASSERT_EQ(run(&f, cmd, bench_build_flush(handle, cmd, sizeof(cmd)), resp, &rlen), 0);
                /* flushed: a second flush of the same handle is an error */
                ASSERT_TRUE(run(&f, cmd, bench_build_flush(handle, cmd, sizeof(cmd)), resp, &rlen) > 0);
        }
}

/* A store that counts what libtpms writes, over the memory store. */
typedef struct CountingStore {
        TpmStore base;
        TpmStore *inner;
        unsigned stores;
} CountingStore;

static int cs_load(TpmStore *s, const char *name, uint8_t **ret, size_t *ret_len) {
        TpmStore *in = ((CountingStore *) s)->inner;
        return in->ops->load(in, name, ret, ret_len);
}
static int cs_store(TpmStore *s, const char *name, const uint8_t *buf, size_t len) {
        CountingStore *c = (CountingStore *) s;
        c->stores++;
        return c->inner->ops->store(c->inner, name, buf, len);
}
static int cs_remove(TpmStore *s, const char *name) {
        TpmStore *in = ((CountingStore *) s)->inner;
        return in->ops->remove(in, name);
}
static void cs_free(TpmStore *s) {
}
static const TpmStoreOps counting_ops = { cs_load, cs_store, cs_remove, cs_free };

/* Figure 7 measures a durable write per NV_Write: that holds only if every
 * NV_Write of a run changes the index (libtpms skips the commit otherwise). */
TEST(every_nv_write_of_a_run_reaches_the_store) {
        uint8_t cmd[BENCH_CMD_MAX], resp[TPM_MAX_PACKET];
        size_t rlen;
        _cleanup_(fixture_done) Fixture f = {};
        CountingStore cs = { .base = { &counting_ops } };
        unsigned before;

        ASSERT_OK(tpm_store_memory_new(&cs.inner));
        f.store = cs.inner;
        ASSERT_OK(tpm_instance_new(TPM_FAMILY_2_0, &cs.base, &f.tpm));
        ASSERT_OK(tpm_instance_startup(f.tpm, NULL));
        ASSERT_EQ(run(&f, cmd, bench_build_nv_define(cmd, sizeof(cmd)), resp, &rlen), 0);
        ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_NV_WRITE, 7, cmd, sizeof(cmd)), resp, &rlen), 0);
        before = cs.stores;
        for (uint32_t i = 8; i < 13; i++)
                ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_NV_WRITE, i, cmd, sizeof(cmd)), resp, &rlen), 0);
        ASSERT_EQ(cs.stores - before, 5);
        /* The same data again changes nothing, so libtpms stores nothing. */
        before = cs.stores;
        ASSERT_EQ(run(&f, cmd, bench_build_op(BENCH_OP_NV_WRITE, 12, cmd, sizeof(cmd)), resp, &rlen), 0);
        ASSERT_EQ(cs.stores - before, 0);
}
