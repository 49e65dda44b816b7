/* SPDX-License-Identifier: BSD-3-Clause */
#include "test.h"
#include "tpm.h"

TEST(header_parse_big_endian) {
        const uint8_t cmd[] = { 0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x00, 0x20 };
        TpmHeader h;

        ASSERT_OK(tpm_header_parse(cmd, sizeof(cmd), &h));
        ASSERT_EQ(h.tag, 0x8001);
        ASSERT_EQ(h.size, 12);
        ASSERT_EQ(h.code, 0x17b);
}

TEST(header_parse_exactly_ten) {
        const uint8_t rsp[] = { 0x00, 0xc4, 0x12, 0x34, 0x56, 0x78, 0xde, 0xad, 0xbe, 0xef };
        TpmHeader h;

        ASSERT_OK(tpm_header_parse(rsp, sizeof(rsp), &h));
        ASSERT_EQ(h.tag, 0x00c4);
        ASSERT_EQ(h.size, 0x12345678u);
        ASSERT_EQ(h.code, 0xdeadbeefu);
}

TEST(header_parse_short_input) {
        const uint8_t buf[10] = { 0x80, 0x01 };
        TpmHeader h = { .tag = 0x1111, .size = 0x2222, .code = 0x3333 };

        for (size_t n = 0; n < 10; n++)
                ASSERT_ERR(tpm_header_parse(buf, n, &h), -EBADMSG);
        ASSERT_ERR(tpm_header_parse(NULL, 10, &h), -EBADMSG);
        /* output untouched on failure */
        ASSERT_EQ(h.tag, 0x1111);
        ASSERT_EQ(h.size, 0x2222);
        ASSERT_EQ(h.code, 0x3333);
}

TEST(error_response_tpm2) {
        const uint8_t want[] = { 0x80, 0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x01 };
        uint8_t out[TPM_HEADER_SIZE];

        tpm_error_response(TPM_FAMILY_2_0, TPM2_RC_FAILURE, out);
        ASSERT_MEMEQ(out, want, sizeof(want));
}

TEST(error_response_tpm12) {
        const uint8_t want[] = { 0x00, 0xc4, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x19 };
        uint8_t out[TPM_HEADER_SIZE];

        tpm_error_response(TPM_FAMILY_1_2, TPM12_BAD_PARAM_SIZE, out);
        ASSERT_MEMEQ(out, want, sizeof(want));
}

/* What the Linux TPM core checks on a response: len >= 10 and len == be32 size. */
TEST(error_response_passes_linux_check) {
        const uint32_t rcs[] = { 0, 1, TPM2_RC_RETRY, TPM2_RC_CANCELED, 0xffffffffu };
        uint8_t out[TPM_HEADER_SIZE];
        TpmHeader h;

        for (size_t i = 0; i < sizeof(rcs) / sizeof(rcs[0]); i++) {
                tpm_error_response(TPM_FAMILY_2_0, rcs[i], out);
                ASSERT_OK(tpm_header_parse(out, sizeof(out), &h));
                ASSERT_EQ(h.size, sizeof(out));
                ASSERT_EQ(h.code, rcs[i]);
        }
}

TEST(rc_per_family) {
        ASSERT_EQ(tpm_rc_failure(TPM_FAMILY_2_0), 0x101);
        ASSERT_EQ(tpm_rc_failure(TPM_FAMILY_1_2), 0x09);
        ASSERT_EQ(tpm_rc_command_size(TPM_FAMILY_2_0), 0x142);
        ASSERT_EQ(tpm_rc_command_size(TPM_FAMILY_1_2), 0x19);
}

TEST(build_tpm2_startup) {
        const uint8_t want[] = { 0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x01 };
        uint8_t buf[64];

        memset(buf, 0xee, sizeof(buf));
        ASSERT_EQ(tpm2_build_startup(TPM2_SU_STATE, buf, sizeof(buf)), 12);
        ASSERT_MEMEQ(buf, want, sizeof(want));
        ASSERT_EQ(buf[12], 0xee); /* nothing written past the command */
}

/* A builder wrote exactly the 12 bytes of want. */
static void expect_command(int len, const uint8_t *buf, const uint8_t want[12]) {
        ASSERT_EQ(len, 12);
        ASSERT_MEMEQ(buf, want, 12);
}

TEST(build_tpm2_shutdown) {
        const uint8_t want[] = { 0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x45, 0x00, 0x00 };
        uint8_t buf[12];

        expect_command(tpm2_build_shutdown(TPM2_SU_CLEAR, buf, sizeof(buf)), buf, want);
}

TEST(build_tpm2_get_random) {
        const uint8_t want[] = { 0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x7b, 0x12, 0x34 };
        uint8_t buf[12];

        expect_command(tpm2_build_get_random(0x1234, buf, sizeof(buf)), buf, want);
}

TEST(build_tpm12_startup) {
        const uint8_t want[] = { 0x00, 0xc1, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x99, 0x00, 0x01 };
        uint8_t buf[12];

        expect_command(tpm12_build_startup(TPM12_ST_CLEAR, buf, sizeof(buf)), buf, want);
}

TEST(builders_enobufs) {
        uint8_t buf[12];

        for (size_t n = 0; n < 12; n++) {
                memset(buf, 0xee, sizeof(buf));
                ASSERT_ERR(tpm2_build_startup(0, buf, n), -ENOBUFS);
                ASSERT_ERR(tpm2_build_shutdown(0, buf, n), -ENOBUFS);
                ASSERT_ERR(tpm2_build_get_random(8, buf, n), -ENOBUFS);
                ASSERT_ERR(tpm12_build_startup(1, buf, n), -ENOBUFS);
                for (size_t i = 0; i < sizeof(buf); i++)
                        ASSERT_EQ(buf[i], 0xee);
        }
        ASSERT_ERR(tpm2_build_startup(0, NULL, 0), -ENOBUFS);
}

TEST(family_strings) {
        TpmFamily f = TPM_FAMILY_1_2;

        ASSERT_STREQ(tpm_family_to_string(TPM_FAMILY_2_0), "2.0");
        ASSERT_STREQ(tpm_family_to_string(TPM_FAMILY_1_2), "1.2");
        ASSERT_TRUE(tpm_family_to_string((TpmFamily) 7) == NULL);

        ASSERT_OK(tpm_family_from_string("2.0", &f));
        ASSERT_EQ(f, TPM_FAMILY_2_0);
        ASSERT_OK(tpm_family_from_string("1.2", &f));
        ASSERT_EQ(f, TPM_FAMILY_1_2);
}

TEST(family_from_string_exact) {
        const char *bad[] = { "", "2", "2.0 ", " 2.0", "2.00", "20", "1.2\n", "1.20", "2.0x", "TPM2", "1,2" };
        TpmFamily f = TPM_FAMILY_1_2;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ASSERT_ERR(tpm_family_from_string(bad[i], &f), -EINVAL);
        ASSERT_ERR(tpm_family_from_string(NULL, &f), -EINVAL);
        ASSERT_EQ(f, TPM_FAMILY_1_2); /* untouched */
}

TEST(be_helpers) {
        uint8_t b[4];

        tpm_put_be32(b, 0x01020304);
        ASSERT_EQ(b[0], 1);
        ASSERT_EQ(b[3], 4);
        ASSERT_EQ(tpm_be32(b), 0x01020304);
        tpm_put_be16(b, 0xfffe);
        ASSERT_EQ(tpm_be16(b), 0xfffe);
        tpm_put_be32(b, 0xffffffffu);
        ASSERT_EQ(tpm_be32(b), 0xffffffffu);
}

/* Quick commands run on the worker's I/O thread (no cancel): never one that
 * can take long, never anything malformed or TPM 1.2. */
TEST(quick_commands) {
        uint8_t cmd[12];

        ASSERT_OK(tpm2_build_get_random(8, cmd, sizeof(cmd)));
        ASSERT_TRUE(tpm_command_is_quick(TPM_FAMILY_2_0, cmd, sizeof(cmd)));
        ASSERT_TRUE(!tpm_command_is_quick(TPM_FAMILY_1_2, cmd, sizeof(cmd)));
        ASSERT_TRUE(!tpm_command_is_quick(TPM_FAMILY_2_0, cmd, 9));
        static const uint32_t slow[] = { 0x131 /* CreatePrimary */, 0x153 /* Create */, 0x176 /* StartAuthSession */,
                                         0x157 /* Load */, 0x158 /* Quote */, 0x15d /* Sign */, 0x143 /* SelfTest */,
                                         0x191 /* CreateLoaded */, 0x126 /* Clear */ };
        for (size_t i = 0; i < sizeof(slow) / sizeof(slow[0]); i++) {
                tpm_put_be32(cmd + 6, slow[i]);
                ASSERT_TRUE(!tpm_command_is_quick(TPM_FAMILY_2_0, cmd, sizeof(cmd)));
        }
        static const uint32_t quick[] = { 0x182 /* PCR_Extend */, 0x137 /* NV_Write */, 0x14e /* NV_Read */,
                                          0x17a /* GetCapability */, 0x13c /* PCR_Event */ };
        for (size_t i = 0; i < sizeof(quick) / sizeof(quick[0]); i++) {
                tpm_put_be32(cmd + 6, quick[i]);
                ASSERT_TRUE(tpm_command_is_quick(TPM_FAMILY_2_0, cmd, sizeof(cmd)));
        }
}

TEST(pcr_read_build_and_parse) {
        uint8_t cmd[32], resp[128], d[TPM2_PCR_COUNT][TPM2_MAX_DIGEST];
        uint32_t got = 0, rc = 0;
        size_t off;
        int n;

        n = tpm2_build_pcr_read(TPM2_ALG_SHA256, (1u << 0) | (1u << 16), cmd, sizeof(cmd));
        ASSERT_EQ(n, 20);
        ASSERT_EQ(tpm_be32(cmd + 2), 20u);
        ASSERT_EQ(tpm_be32(cmd + 6), TPM2_CC_PCR_READ);
        ASSERT_EQ(cmd[16], 3);
        ASSERT_EQ(cmd[17], 0x01);
        ASSERT_EQ(cmd[18], 0x00);
        ASSERT_EQ(cmd[19], 0x01);
        ASSERT_ERR(tpm2_build_pcr_read(0x0012, 1, cmd, sizeof(cmd)), -EINVAL);
        ASSERT_ERR(tpm2_build_pcr_read(TPM2_ALG_SHA256, 1u << 24, cmd, sizeof(cmd)), -EINVAL);

        /* A response with PCR 16 only (sha1, 20 bytes). */
        memset(resp, 0, sizeof(resp));
        tpm_put_be16(resp, TPM2_ST_NO_SESSIONS);
        tpm_put_be32(resp + 6, 0);
        off = 10;
        tpm_put_be32(resp + off, 7); /* update counter */
        tpm_put_be32(resp + off + 4, 1);
        tpm_put_be16(resp + off + 8, TPM2_ALG_SHA1);
        resp[off + 10] = 3;
        resp[off + 13] = 0x01; /* PCR 16 */
        tpm_put_be32(resp + off + 14, 1);
        tpm_put_be16(resp + off + 18, 20);
        memset(resp + off + 20, 0xab, 20);
        off += 40;
        tpm_put_be32(resp + 2, (uint32_t) off);
        ASSERT_OK(tpm2_parse_pcr_read(resp, off, TPM2_ALG_SHA1, 1u << 16, &got, d, &rc));
        ASSERT_EQ(got, 1u << 16);
        ASSERT_EQ(d[16][19], 0xab);
        /* Not asked for, another bank, a trailing byte, a short digest. */
        ASSERT_ERR(tpm2_parse_pcr_read(resp, off, TPM2_ALG_SHA1, 1u << 15, &got, d, &rc), -EBADMSG);
        ASSERT_ERR(tpm2_parse_pcr_read(resp, off, TPM2_ALG_SHA256, 1u << 16, &got, d, &rc), -EBADMSG);
        tpm_put_be32(resp + 2, (uint32_t) off + 1);
        ASSERT_ERR(tpm2_parse_pcr_read(resp, off + 1, TPM2_ALG_SHA1, 1u << 16, &got, d, &rc), -EBADMSG);
        tpm_put_be32(resp + 2, (uint32_t) off);
        tpm_put_be16(resp + 28, 19);
        ASSERT_ERR(tpm2_parse_pcr_read(resp, off, TPM2_ALG_SHA1, 1u << 16, &got, d, &rc), -EBADMSG);
        /* A TPM error. */
        tpm_error_response(TPM_FAMILY_2_0, TPM2_RC_RETRY, resp);
        ASSERT_ERR(tpm2_parse_pcr_read(resp, 10, TPM2_ALG_SHA1, 1, &got, d, &rc), -EPROTO);
        ASSERT_EQ(rc, TPM2_RC_RETRY);
}
