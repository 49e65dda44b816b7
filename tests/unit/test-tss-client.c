/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * lib/tss-client.h against an in-process libtpms (lib/tpm-instance.h) as the
 * transport: the EKs, certificate indices, PCR banks and the clear that
 * manufacturing and `vtpmd-ctl reset` make, seen as a guest would see them.
 */
#include "../lib/tpm-instance.h"
#include "test.h"
#include "tss-client.h"
#include "util.h"

/* One fresh TPM per case: a memory store, started, with a client over it. */
typedef struct Rig {
        TpmStore *store;
        TpmInstance *tpm;
        TssClient *tss;
        int fail_with; /* the transport answers this instead of the TPM, when set */
        unsigned commands;
} Rig;

static int rig_transport(void *userdata, const uint8_t *cmd, size_t len, uint8_t *resp, size_t resp_max,
                         size_t *ret_len) {
        Rig *r = userdata;

        if (r->fail_with)
                return r->fail_with;
        r->commands++;
        return tpm_instance_process(r->tpm, cmd, len, resp, resp_max, ret_len, 0);
}

static void rig_done(Rig *r) {
        tss_client_free(r->tss);
        tpm_instance_free(r->tpm);
        tpm_store_free(r->store);
}

static int rig_up(Rig *r) {
        int k;

        *r = (Rig){};
        k = tpm_store_memory_new(&r->store);
        if (k >= 0)
                k = tpm_instance_new(TPM_FAMILY_2_0, r->store, &r->tpm);
        if (k >= 0)
                k = tpm_instance_startup(r->tpm, NULL);
        if (k >= 0)
                k = tss_client_new(rig_transport, r, &r->tss);
        return k;
}

/* A power cycle: what the worker that serves the guest after manufacturing sees. */
static int rig_power_cycle(Rig *r) {
        int k = tpm_instance_shutdown(r->tpm, NULL);

        if (k >= 0)
                k = tpm_instance_reinit(r->tpm);
        if (k >= 0)
                k = tpm_instance_startup(r->tpm, NULL);
        return k;
}

#define RIG(r)                               \
        _cleanup_(rig_done) Rig r = {};      \
        ASSERT_OK(rig_up(&r))

static bool is_hex64(const char *s) {
        return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

TEST(properties_name_libtpms) {
        RIG(r);
        TssTpmProperties p;

        ASSERT_OK(tss_client_properties(r.tss, &p));
        ASSERT_EQ(p.manufacturer, 0x49424D00u); /* "IBM": libtpms */
        ASSERT_TRUE(p.nv_buffer_max >= 64 && p.nv_buffer_max <= 1024);
        ASSERT_TRUE(p.spec_revision >= 116);
        ASSERT_STREQ(tss_client_last_error(r.tss), "");
}

/* Per EK kind: the key sizes its template fixes. */
static const struct {
        TssEk ek;
        const char *name;
        size_t rsa_len, ecc_len;
} eks[] = {
        { TSS_EK_RSA2048, "RSA 2048 EK", 256, 0 },
        { TSS_EK_ECC_P256, "ECC P-256 EK", 0, 32 },
};

TEST(ek_is_the_template_key_and_persists) {
        RIG(r);

        for (size_t i = 0; i < ELEMENTSOF(eks); i++) {
                TssEkPublic pub, again;

                ASSERT_STREQ(tss_ek_to_string(eks[i].ek), eks[i].name);
                ASSERT_OK(tss_client_create_ek(r.tss, eks[i].ek, true, &pub));
                ASSERT_TRUE(is_hex64(pub.sha256));
                ASSERT_EQ(pub.rsa_modulus_len, eks[i].rsa_len);
                ASSERT_EQ(pub.ecc_x_len, eks[i].ecc_len);
                ASSERT_EQ(pub.ecc_y_len, eks[i].ecc_len);
                ASSERT_EQ(pub.rsa_exponent, 0); /* the TPM default, 65537 */
                /* The endorsement seed makes the same key again: the identity reset checks. */
                ASSERT_OK(tss_client_create_ek(r.tss, eks[i].ek, false, &again));
                ASSERT_STREQ(again.sha256, pub.sha256);
                /* Its TCG handle is taken now. */
                ASSERT_TRUE(tss_client_create_ek(r.tss, eks[i].ek, true, &again) < 0);
                ASSERT_TRUE(strstr(tss_client_last_error(r.tss), "TPM2_EvictControl") != NULL);
        }
}

TEST(cert_reads_back_write_locked) {
        RIG(r);
        static const TssCert certs[] = { TSS_CERT_EK_RSA2048, TSS_CERT_EK_ECC_P256, TSS_CERT_PLATFORM };
        TssTpmProperties p;
        uint8_t der[1500]; /* more than one NV_Write chunk */

        ASSERT_OK(tss_client_properties(r.tss, &p));
        for (size_t i = 0; i < sizeof(der); i++)
                der[i] = (uint8_t) (i * 7 + 1);
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                _cleanup_free_ uint8_t *back = NULL;
                size_t len = 0;
                bool locked = false;

                ASSERT_ERR(tss_client_read_cert(r.tss, certs[i], &back, &len, &locked), -ENOENT);
                der[0] = (uint8_t) i;
                ASSERT_OK(tss_client_write_cert(r.tss, certs[i], der, sizeof(der)));
                ASSERT_OK(tss_client_read_cert(r.tss, certs[i], &back, &len, &locked));
                ASSERT_EQ(len, sizeof(der));
                ASSERT_MEMEQ(back, der, sizeof(der));
                ASSERT_TRUE(locked);
                /* Written once: a second certificate for the index is refused. */
                ASSERT_TRUE(tss_client_write_cert(r.tss, certs[i], der, sizeof(der)) < 0);
                ASSERT_TRUE(strstr(tss_client_last_error(r.tss), "TPM2_NV_DefineSpace") != NULL);
        }
        ASSERT_ERR(tss_client_write_cert(r.tss, TSS_CERT_PLATFORM, der, 0), -EINVAL);
}

TEST(pcr_banks_take_effect_at_power_on) {
        RIG(r);
        unsigned before = 0, banks = 0;

        ASSERT_OK(tss_client_pcr_banks(r.tss, &before));
        ASSERT_TRUE(before != 0);
        ASSERT_OK(tss_client_allocate_pcrs(r.tss, TSS_PCR_BANK_SHA256 | TSS_PCR_BANK_SHA384));
        ASSERT_OK(tss_client_pcr_banks(r.tss, &banks));
        ASSERT_EQ(banks, before);
        ASSERT_OK(rig_power_cycle(&r));
        ASSERT_OK(tss_client_pcr_banks(r.tss, &banks));
        ASSERT_EQ(banks, TSS_PCR_BANK_SHA256 | TSS_PCR_BANK_SHA384);
}

TEST(clear_keeps_the_identity) {
        RIG(r);
        TssEkPublic ek, again;
        uint8_t der[64] = { 0x30 };
        _cleanup_free_ uint8_t *back = NULL;
        size_t len = 0;
        bool locked = false;

        ASSERT_OK(tss_client_create_ek(r.tss, TSS_EK_RSA2048, true, &ek));
        ASSERT_OK(tss_client_write_cert(r.tss, TSS_CERT_EK_RSA2048, der, sizeof(der)));
        ASSERT_OK(tss_client_clear(r.tss));
        /* The persistent EK went with the endorsement objects: the handle is free again ... */
        ASSERT_OK(tss_client_create_ek(r.tss, TSS_EK_RSA2048, true, &again));
        /* ... and the seed makes the same EK; the platform's certificate stays. */
        ASSERT_STREQ(again.sha256, ek.sha256);
        ASSERT_OK(tss_client_read_cert(r.tss, TSS_CERT_EK_RSA2048, &back, &len, &locked));
        ASSERT_EQ(len, sizeof(der));
        ASSERT_MEMEQ(back, der, sizeof(der));
}

TEST(transport_failure_is_its_errno) {
        RIG(r);
        TssEkPublic ek;
        unsigned n;

        r.fail_with = -ETIMEDOUT;
        n = r.commands;
        ASSERT_ERR(tss_client_create_ek(r.tss, TSS_EK_ECC_P256, true, &ek), -ETIMEDOUT);
        ASSERT_TRUE(strstr(tss_client_last_error(r.tss), "TPM2_CreatePrimary of the ECC P-256 EK failed") != NULL);
        ASSERT_EQ(r.commands, n);
        /* ESAPI's context is spent: nothing more is sent, even when the transport would work. */
        r.fail_with = 0;
        ASSERT_ERR(tss_client_clear(r.tss), -ETIMEDOUT);
        ASSERT_TRUE(strstr(tss_client_last_error(r.tss), "TPM2_CreatePrimary") != NULL);
        ASSERT_EQ(r.commands, n);
}
