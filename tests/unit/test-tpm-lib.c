/* SPDX-License-Identifier: BSD-3-Clause */
/* The libtpms wrapper against the real libtpms (one instance at a time). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "../common/tpm-cmd.h"
#include "tpm-instance.h"
#include "test.h"
#include "util.h"

/* ---- a store that counts writes, on top of the memory store ---- */

typedef struct CountingStore {
        TpmStore base;
        TpmStore *inner;
        unsigned permall_writes;
        bool fail_stores;
} CountingStore;

static int counting_load(TpmStore *s, const char *name, uint8_t **ret, size_t *ret_len) {
        CountingStore *c = (CountingStore *) s;
        return c->inner->ops->load(c->inner, name, ret, ret_len);
}
static int counting_store(TpmStore *s, const char *name, const uint8_t *buf, size_t len) {
        CountingStore *c = (CountingStore *) s;
        if (c->fail_stores)
                return -EIO;
        if (strcmp(name, TPM_STORE_PERMALL) == 0)
                c->permall_writes++;
        return c->inner->ops->store(c->inner, name, buf, len);
}
static int counting_remove(TpmStore *s, const char *name) {
        CountingStore *c = (CountingStore *) s;
        return c->inner->ops->remove(c->inner, name);
}
static void counting_free(TpmStore *s) {
        CountingStore *c = (CountingStore *) s;
        tpm_store_free(c->inner);
        free(c);
}
static const TpmStoreOps counting_ops = {
        .load = counting_load, .store = counting_store, .remove = counting_remove, .free = counting_free,
};
static CountingStore *counting_new(void) {
        CountingStore *c = calloc(1, sizeof(*c));
        if (!c)
                abort();
        c->base.ops = &counting_ops;
        if (tpm_store_memory_new(&c->inner) < 0)
                abort();
        return c;
}

/* ---- TPM 2.0 command builders for the tests ---- */

static void build_pcr_extend(TpmCmd *b, uint32_t pcr, uint8_t fill) {
        tpmcmd_begin(b, TPM2_ST_SESSIONS, 0x182);
        tpmcmd_u32(b, pcr);
        tpmcmd_pw_session(b, "");
        tpmcmd_u32(b, 1);      /* one digest */
        tpmcmd_u16(b, 0x000b); /* sha256 */
        for (int i = 0; i < 32; i++)
                tpmcmd_u8(b, fill);
        tpmcmd_end(b);
}
static void build_pcr_read16(TpmCmd *b) {
        tpmcmd_begin(b, TPM2_ST_NO_SESSIONS, 0x17e);
        tpmcmd_u32(b, 1);
        tpmcmd_u16(b, 0x000b);
        tpmcmd_u8(b, 3);
        tpmcmd_u8(b, 0x00);
        tpmcmd_u8(b, 0x00);
        tpmcmd_u8(b, 0x01); /* PCR 16 */
        tpmcmd_end(b);
}
static void build_nv_define(TpmCmd *b, uint32_t index) {
        tpmcmd_begin(b, TPM2_ST_SESSIONS, 0x12a);
        tpmcmd_u32(b, 0x40000001); /* TPM_RH_OWNER */
        tpmcmd_pw_session(b, "");
        tpmcmd_u16(b, 0);  /* auth */
        tpmcmd_u16(b, 14); /* TPM2B_NV_PUBLIC */
        tpmcmd_u32(b, index);
        tpmcmd_u16(b, 0x000b);
        tpmcmd_u32(b, 0x00060006); /* OWNERWRITE|AUTHWRITE|OWNERREAD|AUTHREAD */
        tpmcmd_u16(b, 0);          /* authPolicy */
        tpmcmd_u16(b, 16);         /* dataSize */
        tpmcmd_end(b);
}
static void build_get_cap_sizes(TpmCmd *b) {
        tpmcmd_begin(b, TPM2_ST_NO_SESSIONS, 0x17a);
        tpmcmd_u32(b, 6);     /* TPM_CAP_TPM_PROPERTIES */
        tpmcmd_u32(b, 0x11e); /* TPM_PT_MAX_COMMAND_SIZE, then TPM_PT_MAX_RESPONSE_SIZE */
        tpmcmd_u32(b, 2);
        tpmcmd_end(b);
}
/* RSA-2048 restricted decryption primary; `unique` makes every key different. */
static void build_create_primary_rsa(TpmCmd *b, uint32_t unique) {
        tpmcmd_begin(b, TPM2_ST_SESSIONS, TPM2_CC_CREATE_PRIMARY);
        tpmcmd_u32(b, 0x40000001);
        tpmcmd_pw_session(b, "");
        tpmcmd_u16(b, 4); /* inSensitive */
        tpmcmd_u16(b, 0);
        tpmcmd_u16(b, 0);
        size_t at = b->n;
        tpmcmd_u16(b, 0); /* inPublic size, below */
        tpmcmd_u16(b, 0x0001);     /* RSA */
        tpmcmd_u16(b, 0x000b);     /* sha256 */
        tpmcmd_u32(b, 0x00030072); /* fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|decrypt */
        tpmcmd_u16(b, 0);          /* authPolicy */
        tpmcmd_u16(b, 0x0006);     /* AES */
        tpmcmd_u16(b, 128);
        tpmcmd_u16(b, 0x0043); /* CFB */
        tpmcmd_u16(b, 0x0010); /* scheme NULL */
        tpmcmd_u16(b, 2048);
        tpmcmd_u32(b, 0);
        tpmcmd_u16(b, 4);
        tpmcmd_u32(b, unique);
        tpm_put_be16(b->b + at, (uint16_t) (b->n - at - 2));
        tpmcmd_u16(b, 0); /* outsideInfo */
        tpmcmd_u32(b, 0); /* creationPCR */
        tpmcmd_end(b);
}
static void build_flush(TpmCmd *b, uint32_t handle) {
        tpmcmd_begin(b, TPM2_ST_NO_SESSIONS, 0x165);
        tpmcmd_u32(b, handle);
        tpmcmd_end(b);
}

/* Runs a command; returns the response code, or a negative errno. The
 * response's own size must equal its length. */
static long long run(TpmInstance *t, const TpmCmd *cmd, TpmCmd *resp) {
        TpmHeader h;
        int r = tpm_instance_process(t, cmd->b, cmd->n, resp->b, sizeof(resp->b), &resp->n, 0);
        if (r < 0)
                return r;
        if (tpm_header_parse(resp->b, resp->n, &h) < 0 || h.size != resp->n)
                return -EBADMSG;
        return h.code;
}

static TpmInstance *new2(CountingStore **ret_store) {
        CountingStore *c = counting_new();
        TpmInstance *t = NULL;
        if (tpm_instance_new(TPM_FAMILY_2_0, &c->base, &t) < 0)
                abort();
        *ret_store = c;
        return t;
}
/* The same, after TPM2_Startup. */
static TpmInstance *started2(CountingStore **ret_store) {
        TpmInstance *t = new2(ret_store);
        if (tpm_instance_startup(t, NULL) < 0)
                abort();
        return t;
}
static void free_both(TpmInstance *t, CountingStore *c) {
        tpm_instance_free(t);
        tpm_store_free(&c->base);
}

TEST(tpm2_startup_then_get_random) {
        CountingStore *c;
        TpmInstance *t = new2(&c);
        TpmCmd cmd, resp;
        uint32_t rc = 1;

        cmd.n = (size_t) tpm2_build_get_random(8, cmd.b, sizeof(cmd.b));
        /* Before Startup every command is refused. */
        ASSERT_EQ(run(t, &cmd, &resp), TPM2_RC_INITIALIZE);

        ASSERT_OK(tpm_instance_startup(t, &rc));
        ASSERT_EQ(rc, 0);
        ASSERT_ERR(tpm_instance_startup(t, &rc), -EALREADY);
        ASSERT_EQ(rc, TPM2_RC_INITIALIZE);

        ASSERT_EQ(run(t, &cmd, &resp), TPM2_RC_SUCCESS);
        ASSERT_EQ(resp.n, TPM_HEADER_SIZE + 2 + 8);
        ASSERT_EQ(tpm_be16(resp.b + 10), 8);
        ASSERT_OK(tpm_instance_shutdown(t, &rc));
        free_both(t, c);
}

TEST(tpm2_only_one_instance_per_process) {
        CountingStore *c;
        TpmInstance *t = new2(&c), *t2 = NULL;
        TpmStore *s2;
        ASSERT_OK(tpm_store_memory_new(&s2));
        ASSERT_ERR(tpm_instance_new(TPM_FAMILY_2_0, s2, &t2), -EBUSY);
        ASSERT_TRUE(t2 == NULL);
        tpm_store_free(s2);
        free_both(t, c);
}

TEST(tpm2_pcr_extend_changes_pcr_read) {
        CountingStore *c;
        TpmInstance *t = started2(&c);
        TpmCmd cmd, before, after, resp;

        build_pcr_read16(&cmd);
        ASSERT_EQ(run(t, &cmd, &before), 0);
        /* header, updateCounter, selection(10), count, TPM2B size 32, digest */
        ASSERT_EQ(before.n, 30 + 32);
        ASSERT_EQ(tpm_be16(before.b + 28), 32);

        build_pcr_extend(&cmd, 16, 0xab);
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        build_pcr_read16(&cmd);
        ASSERT_EQ(run(t, &cmd, &after), 0);
        ASSERT_EQ(after.n, before.n);
        ASSERT_TRUE(memcmp(before.b + 30, after.b + 30, 32) != 0);
        free_both(t, c);
}

TEST(tpm2_store_sees_permall_writes) {
        CountingStore *c = counting_new();
        TpmInstance *t = NULL;
        TpmCmd cmd, resp;

        ASSERT_OK(tpm_instance_new(TPM_FAMILY_2_0, &c->base, &t));
        /* Manufacturing writes the first image. */
        ASSERT_TRUE(c->permall_writes >= 1);
        unsigned n = c->permall_writes;

        ASSERT_OK(tpm_instance_startup(t, NULL));
        ASSERT_EQ(c->permall_writes, n + 1);

        cmd.n = (size_t) tpm2_build_get_random(8, cmd.b, sizeof(cmd.b));
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        ASSERT_EQ(c->permall_writes, n + 1); /* reads do not write */

        build_nv_define(&cmd, 0x01500000);
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        ASSERT_EQ(c->permall_writes, n + 2);

        /* The stored image is what a new instance starts from: the index exists. */
        ASSERT_OK(tpm_instance_shutdown(t, NULL));
        t = tpm_instance_free(t);
        ASSERT_OK(tpm_instance_new(TPM_FAMILY_2_0, &c->base, &t));
        ASSERT_OK(tpm_instance_startup(t, NULL));
        build_nv_define(&cmd, 0x01500000);
        ASSERT_EQ(run(t, &cmd, &resp), 0x14c); /* TPM_RC_NV_DEFINED */
        free_both(t, c);
}

TEST(tpm2_store_failure_is_an_error_not_a_silent_loss) {
        CountingStore *c;
        TpmInstance *t = started2(&c);
        TpmCmd cmd, resp;

        c->fail_stores = true;
        build_nv_define(&cmd, 0x01500001);
        long long rc = run(t, &cmd, &resp);
        ASSERT_TRUE(rc != 0);
        cmd.n = (size_t) tpm2_build_get_random(8, cmd.b, sizeof(cmd.b));
        ASSERT_EQ(run(t, &cmd, &resp), TPM2_RC_FAILURE);
        free_both(t, c);
}

TEST(tpm2_buffer_size_is_one_page_minus_tpmif_header) {
        CountingStore *c;
        TpmInstance *t = started2(&c);
        TpmCmd cmd, resp;

        build_get_cap_sizes(&cmd);
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        ASSERT_EQ(resp.n, 35);
        ASSERT_EQ(tpm_be32(resp.b + 15), 2);
        ASSERT_EQ(tpm_be32(resp.b + 19), 0x11e);
        ASSERT_EQ(tpm_be32(resp.b + 23), 4088);
        ASSERT_EQ(tpm_be32(resp.b + 27), 0x11f);
        ASSERT_EQ(tpm_be32(resp.b + 31), 4088);

        /* Commands longer than that never reach libtpms. */
        uint8_t big[4089] = { 0 };
        size_t n = 0;
        ASSERT_ERR(tpm_instance_process(t, big, sizeof(big), resp.b, sizeof(resp.b), &n, 0), -EMSGSIZE);
        /* A response that does not fit the caller's buffer is refused. */
        cmd.n = (size_t) tpm2_build_get_random(8, cmd.b, sizeof(cmd.b));
        ASSERT_ERR(tpm_instance_process(t, cmd.b, cmd.n, resp.b, 12, &n, 0), -ENOBUFS);
        free_both(t, c);
}

TEST(tpm2_any_locality_gets_a_well_formed_answer) {
        CountingStore *c;
        TpmInstance *t = new2(&c);
        TpmCmd cmd, resp;
        TpmHeader h;

        ASSERT_OK(tpm_instance_startup(t, NULL));
        cmd.n = (size_t) tpm2_build_get_random(8, cmd.b, sizeof(cmd.b));
        const uint8_t localities[] = { 0, 3, 4, 5, 31, 32, 255 };
        for (size_t i = 0; i < ELEMENTSOF(localities); i++) {
                ASSERT_OK(tpm_instance_process(t, cmd.b, cmd.n, resp.b, sizeof(resp.b), &resp.n, localities[i]));
                ASSERT_OK(tpm_header_parse(resp.b, resp.n, &h));
                ASSERT_EQ(h.size, resp.n);
        }
        free_both(t, c);
}

typedef struct CancelRun {
        TpmInstance *t;
        TpmCmd cmd, resp;
        long long rc;
        atomic_bool done;
} CancelRun;

static void *cancel_worker(void *p) {
        CancelRun *cr = p;
        cr->rc = run(cr->t, &cr->cmd, &cr->resp);
        atomic_store(&cr->done, true);
        return NULL;
}

TEST(tpm2_cancel_from_another_thread_stops_rsa_keygen) {
        CountingStore *c;
        TpmInstance *t = new2(&c);
        static CancelRun cr;
        TpmCmd cmd, resp;
        int canceled = 0, attempts;

        ASSERT_OK(tpm_instance_startup(t, NULL));
        /* A cancel before TPMLIB_Process starts is lost, so keep cancelling
         * until the command returns; a few attempts must produce a hit. */
        for (attempts = 0; attempts < 20 && !canceled; attempts++) {
                pthread_t th;
                cr.t = t;
                build_create_primary_rsa(&cr.cmd, 0x1000u + (uint32_t) attempts);
                atomic_store(&cr.done, false);
                ASSERT_EQ(pthread_create(&th, NULL, cancel_worker, &cr), 0);
                while (!atomic_load(&cr.done)) {
                        tpm_instance_cancel(t);
                        sched_yield();
                }
                pthread_join(th, NULL);
                if (cr.rc == TPM2_RC_CANCELED)
                        canceled++;
                else {
                        ASSERT_EQ(cr.rc, 0);
                        build_flush(&cmd, tpm_be32(cr.resp.b + 10));
                        ASSERT_EQ(run(t, &cmd, &resp), 0);
                }
        }
        printf("  canceled after %d attempt(s)\n", attempts);
        ASSERT_EQ(canceled, 1);

        /* Without a cancel the same command completes, and the TPM still works. */
        build_create_primary_rsa(&cmd, 0x2000u);
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        free_both(t, c);
}

TEST(tpm12_startup_and_get_random) {
        CountingStore *c = counting_new();
        TpmInstance *t = NULL;
        TpmCmd cmd, resp;
        uint32_t rc = 1;

        ASSERT_OK(tpm_instance_new(TPM_FAMILY_1_2, &c->base, &t));
        ASSERT_EQ(tpm_instance_family(t), TPM_FAMILY_1_2);

        tpmcmd_begin(&cmd, TPM12_TAG_RQU_COMMAND, TPM12_ORD_GET_RANDOM);
        tpmcmd_u32(&cmd, 8);
        tpmcmd_end(&cmd);
        ASSERT_EQ(run(t, &cmd, &resp), TPM12_INVALID_POSTINIT);

        ASSERT_OK(tpm_instance_startup(t, &rc));
        ASSERT_EQ(rc, 0);
        ASSERT_EQ(run(t, &cmd, &resp), 0);
        ASSERT_EQ(tpm_be16(resp.b), TPM12_TAG_RSP_COMMAND);
        ASSERT_EQ(tpm_be32(resp.b + 10), 8);
        ASSERT_EQ(resp.n, 14 + 8);
        ASSERT_OK(tpm_instance_shutdown(t, NULL)); /* nothing to do for 1.2 */
        free_both(t, c);
}

TEST(tpm2_save_volatile) {
        CountingStore *c;
        TpmInstance *t = new2(&c);
        _cleanup_free_ uint8_t *v = NULL;
        size_t n = 0;

        ASSERT_OK(tpm_instance_startup(t, NULL));
        ASSERT_OK(tpm_instance_save_volatile(t, &v, &n));
        ASSERT_TRUE(n > 1000);
        free_both(t, c);
}

TEST(memory_store_roundtrip) {
        TpmStore *s;
        uint8_t *buf = NULL;
        size_t n = 0;

        ASSERT_OK(tpm_store_memory_new(&s));
        ASSERT_ERR(s->ops->load(s, "permall", &buf, &n), -ENOENT);
        ASSERT_OK(s->ops->store(s, "permall", (const uint8_t *) "abc", 3));
        ASSERT_OK(s->ops->store(s, "permall", (const uint8_t *) "defg", 4));
        ASSERT_OK(s->ops->load(s, "permall", &buf, &n));
        ASSERT_EQ(n, 4);
        ASSERT_MEMEQ(buf, "defg", 4);
        free(buf);
        ASSERT_OK(s->ops->remove(s, "permall"));
        ASSERT_ERR(s->ops->remove(s, "permall"), -ENOENT);
        tpm_store_free(s);
}
