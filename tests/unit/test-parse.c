/* SPDX-License-Identifier: BSD-3-Clause */
#include "parse.h"
#include "test.h"
#include "util.h"

TEST(u32_accepts) {
        struct {
                const char *s;
                uint32_t v;
        } ok[] = {
                { "0", 0 }, { "1", 1 }, { "42", 42 }, { "4088", 4088 },
                { "2147483648", 2147483648u }, { "4294967295", 4294967295u },
        };

        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                uint32_t v = 7;
                ASSERT_OK(parse_u32(ok[i].s, &v));
                ASSERT_EQ(v, ok[i].v);
        }
}

TEST(u32_rejects_syntax) {
        const char *bad[] = {
                "", "00", "01", "007", "-1", "+1", "-0", " 1", "1 ", "1\n", "\t1",
                "0x10", "1e3", "1.0", "1,000", "a", "12a", "4294967295x",
                "99999999999999999999x", /* junk after an overflowing prefix is still junk */
                "\xd9\xa3", /* a non-ASCII digit (ARABIC-INDIC THREE) */
        };
        uint32_t v = 7;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ASSERT_ERR(parse_u32(bad[i], &v), -EINVAL);
        ASSERT_ERR(parse_u32(NULL, &v), -EINVAL);
        ASSERT_EQ(v, 7); /* untouched on failure */
}

TEST(u32_rejects_overflow) {
        const char *big[] = { "4294967296", "4294967300", "10000000000", "18446744073709551616",
                              "99999999999999999999999999999999999999" };
        uint32_t v = 7;

        for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
                ASSERT_ERR(parse_u32(big[i], &v), -ERANGE);
        ASSERT_EQ(v, 7);
}

TEST(u32_max) {
        uint32_t v = 7;

        ASSERT_OK(parse_u32_max("65535", 65535, &v));
        ASSERT_EQ(v, 65535);
        ASSERT_ERR(parse_u32_max("65536", 65535, &v), -ERANGE);
        ASSERT_OK(parse_u32_max("0", 0, &v));
        ASSERT_EQ(v, 0);
        ASSERT_ERR(parse_u32_max("1", 0, &v), -ERANGE);
        ASSERT_ERR(parse_u32_max("x", 0, &v), -EINVAL);
        ASSERT_EQ(v, 0);
}

TEST(uuid_accepts_and_lowercases) {
        char out[37];

        memset(out, 'z', sizeof(out));
        ASSERT_OK(parse_uuid("0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c", out));
        ASSERT_STREQ(out, "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c");
        ASSERT_OK(parse_uuid("0C6C33B2-4F6A-4D35-9D7B-8D0E4F2A1B3C", out));
        ASSERT_STREQ(out, "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c");
        ASSERT_OK(parse_uuid("00000000-0000-0000-0000-000000000000", out));
        ASSERT_STREQ(out, "00000000-0000-0000-0000-000000000000");
        ASSERT_OK(parse_uuid("FFFFFFFF-ffff-FFFF-ffff-AbCdEf012345", out));
        ASSERT_STREQ(out, "ffffffff-ffff-ffff-ffff-abcdef012345");
}

TEST(uuid_rejects) {
        const char *bad[] = {
                "",
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3",    /* 35 chars */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3cd",  /* 37 chars */
                "0c6c33b24f6a4d359d7b8d0e4f2a1b3c",       /* no dashes */
                "0c6c33b2-4f6a-4d35-9d7b8-d0e4f2a1b3c",   /* dash moved */
                "0c6c33b2_4f6a-4d35-9d7b-8d0e4f2a1b3c",   /* wrong separator */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3g",   /* not hex */
                "{c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3}",   /* braces */
                " 0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3",   /* leading space */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3\n",  /* trailing newline */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b\xc3\xa9", /* non-ASCII */
                "0c6c33b2--f6a-4d35-9d7b-8d0e4f2a1b3c",   /* dash in a hex slot */
        };
        char out[37];

        memset(out, 'z', sizeof(out));
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ASSERT_ERR(parse_uuid(bad[i], out), -EINVAL);
        ASSERT_ERR(parse_uuid(NULL, out), -EINVAL);
        ASSERT_EQ(out[0], 'z'); /* untouched on failure */
}

TEST(hex_accepts) {
        static const uint8_t want[4] = { 0x00, 0x9a, 0xbf, 0xff };
        uint8_t out[4] = {};

        ASSERT_OK(parse_hex("009abfff", out, 4));
        ASSERT_MEMEQ(out, want, 4);
        memset(out, 0, sizeof(out));
        ASSERT_OK(parse_hex("009ABFfF", out, 4)); /* either case */
        ASSERT_MEMEQ(out, want, 4);
        ASSERT_OK(parse_hex("", out, 0));
}

TEST(hex_rejects) {
        static const char *const bad[] = {
                "009abff",             /* odd length */
                "009abf",              /* too short */
                "009abfff0",           /* odd, too long */
                "009abfff00",          /* too long */
                "009abffg",            /* not hex */
                "009abff ",            /* trailing space */
                " 009abff",            /* leading space */
                "0x9abfff",            /* a prefix */
                "-09abfff",            /* a sign */
                "009a\xd9\xa3" "ff", /* a non-ASCII digit */
                "",
        };
        uint8_t out[4] = { 7, 7, 7, 7 };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                ASSERT_ERR(parse_hex(bad[i], out, 4), -EINVAL);
        /* An embedded NUL: "009a" is 4 digits, not 8, whatever follows the NUL. */
        ASSERT_ERR(parse_hex("009a\0bfff", out, 4), -EINVAL);
        ASSERT_ERR(parse_hex(NULL, out, 4), -EINVAL);
        ASSERT_EQ(out[0], 7); /* untouched on failure */
        ASSERT_EQ(out[3], 7);
        /* Valid digits but a bad one late: nothing written either. */
        ASSERT_ERR(parse_hex("11223x44", out, 4), -EINVAL);
        ASSERT_EQ(out[0], 7);
}

TEST(hex_or_decimal_handles) {
        uint32_t v;
        ASSERT_OK(parse_u32_hex_or_dec("0x81000001", &v));
        ASSERT_EQ(v, 0x81000001u);
        ASSERT_OK(parse_u32_hex_or_dec("0X1800156", &v));
        ASSERT_EQ(v, 0x1800156u);
        ASSERT_OK(parse_u32_hex_or_dec("42", &v));
        ASSERT_EQ(v, 42);
        ASSERT_ERR(parse_u32_hex_or_dec("0x", &v), -EINVAL);
        ASSERT_ERR(parse_u32_hex_or_dec("0x123456789", &v), -ERANGE);
        ASSERT_ERR(parse_u32_hex_or_dec("0xg1", &v), -EINVAL);
        ASSERT_ERR(parse_u32_hex_or_dec("-1", &v), -EINVAL);
}

TEST(pcr_lists) {
        uint32_t p[24];
        size_t n;
        ASSERT_OK(parse_pcr_list("7,0,2", 24, p, 24, &n));
        ASSERT_EQ(n, 3);
        ASSERT_EQ(p[0], 0);
        ASSERT_EQ(p[1], 2);
        ASSERT_EQ(p[2], 7);
        ASSERT_OK(parse_pcr_list("", 24, p, 24, &n));
        ASSERT_EQ(n, 0);
        ASSERT_ERR(parse_pcr_list("0,0", 24, p, 24, &n), -EINVAL);
        ASSERT_ERR(parse_pcr_list("24", 24, p, 24, &n), -ERANGE);
        ASSERT_ERR(parse_pcr_list("1,,2", 24, p, 24, &n), -EINVAL);
        ASSERT_ERR(parse_pcr_list("1,", 24, p, 24, &n), -EINVAL);
        ASSERT_ERR(parse_pcr_list(" 1", 24, p, 24, &n), -EINVAL);
        ASSERT_ERR(parse_pcr_list("1,2,3", 24, p, 2, &n), -E2BIG);
}

TEST(size) {
        /* error 0: parses to want */
        static const struct {
                const char *s;
                uint64_t want;
                int error;
        } cases[] = {
                { "0", 0, 0 },
                { "65536", 65536, 0 },
                { "512M", 512ull << 20, 0 },
                { "4294967295G", 4294967295ull << 30, 0 },
                { "2K", 2048, 0 },
                { "", 0, -EINVAL },
                { "M", 0, -EINVAL },
                { "1m", 0, -EINVAL },
                { "1MB", 0, -EINVAL },
                { "-1M", 0, -EINVAL },
                { " 1M", 0, -EINVAL },
                { "4294967296", 0, -ERANGE },
                { "99999999999999M", 0, -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0;

                ASSERT_ERR(parse_size(cases[i].s, &v), cases[i].error);
                if (cases[i].error == 0)
                        ASSERT_EQ(v, cases[i].want);
        }
}

TEST(u32_range) {
        uint32_t a, b;

        ASSERT_OK(parse_u32_range("300000-365535", &a, &b));
        ASSERT_EQ(a, 300000);
        ASSERT_EQ(b, 365535);
        ASSERT_ERR(parse_u32_range("5-5", &a, &b), -ERANGE);
        ASSERT_ERR(parse_u32_range("6-5", &a, &b), -ERANGE);
        ASSERT_ERR(parse_u32_range("5", &a, &b), -EINVAL);
        ASSERT_ERR(parse_u32_range("-5", &a, &b), -EINVAL);
        ASSERT_ERR(parse_u32_range("5-", &a, &b), -EINVAL);
        ASSERT_ERR(parse_u32_range("5--6", &a, &b), -EINVAL);
        ASSERT_ERR(parse_u32_range("5-6-7", &a, &b), -EINVAL);
        ASSERT_ERR(parse_u32_range("99999999999-1", &a, &b), -EINVAL);
}
