/* SPDX-License-Identifier: BSD-3-Clause */
/* protocol/ctl: control requests, replies and the export blob. */
#include <json-c/json.h>

#include "ctl.h"
#include "test.h"

#define U "6a2b3c4d-1111-4222-8333-444455556666"
#define KEY64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static int parse(const char *s, CtlRequest *q) {
        return ctl_request_parse((const uint8_t *) s, strlen(s), q);
}

TEST(request_create_full) {
        CtlRequest q;
        ASSERT_OK(parse("{\"op\":\"create\",\"tpm\":\"2.0\",\"uuid\":\"6A2B3C4D-1111-4222-8333-444455556666\","
                        "\"ek\":[\"ecc-p256\",\"rsa2048\"],\"pcr_banks\":[\"sha256\"],\"ek_cert\":true}",
                        &q));
        ASSERT_EQ(q.op, CTL_OP_CREATE);
        ASSERT_TRUE(q.has_uuid);
        ASSERT_STREQ(q.uuid, U); /* canonical lowercase */
        ASSERT_EQ(q.eks, CTL_EK_RSA2048 | CTL_EK_ECC_P256);
        ASSERT_EQ(q.pcr_banks, CTL_BANK_SHA256);
        ASSERT_TRUE(q.ek_cert);
        ASSERT_FALSE(q.platform_cert);
}

TEST(request_rejects_bad_members) {
        CtlRequest q;
        static const char *const bad[] = {
                "{\"op\":\"list\",\"uuid\":\"" U "\"}",                /* a member list does not take */
                "{\"op\":\"show\"}",                                   /* missing uuid */
                "{\"op\":\"ek-cert\"}",
                "{\"op\":\"restart\"}",
                "{\"op\":\"restart\",\"uuid\":\"" U "\",\"force\":true}",
                "{\"op\":\"show\",\"uuid\":\"" U "x\"}",               /* malformed uuid */
                "{\"op\":\"show\",\"uuid\":5}",                        /* wrong type */
                "{\"op\":\"destroy\",\"uuid\":\"" U "\",\"force\":1}", /* not a boolean */
                "{\"op\":\"frob\"}",
                "{\"uuid\":\"" U "\"}",
                "{\"op\":\"create\",\"ek\":[\"rsa2048\",\"rsa2048\"]}", /* duplicate */
                "{\"op\":\"create\",\"ek\":[]}",
                "{\"op\":\"create\",\"ek_cert\":true}",                 /* a certificate needs its EK */
                "{\"op\":\"import\",\"key\":\"00\"}",                   /* short key */
                "{\"op\":\"import\",\"key\":\"" KEY64 "\",\"kdf\":{\"alg\":\"none\"}}",
                "{\"op\":\"export\",\"uuid\":\"" U "\",\"key\":\"" KEY64 "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\","
                "\"iterations\":10,\"salt\":\"00112233445566778899aabbccddeeff\"}}", /* too few iterations */
                "{\"op\":\"list\"}x",
                "[\"op\",\"list\"]",
                "",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (parse(bad[i], &q) != -EBADMSG)
                        TEST_FAIL_("accepted: %s", bad[i]);
        ASSERT_ERR(ctl_request_parse((const uint8_t *) "{\"op\":\"list\"}\0", 14, &q), -EBADMSG);
}

/* Which families are manufactured is vtpmd's decision (daemon/admin.c), not syntax. */
TEST(request_tpm12_with_manufacturing_parses) {
        CtlRequest q;
        ASSERT_OK(parse("{\"op\":\"create\",\"tpm\":\"1.2\",\"pcr_banks\":[\"sha1\"],\"ek\":[\"rsa2048\"],"
                        "\"ek_cert\":true,\"platform_cert\":true}",
                        &q));
        ASSERT_TRUE(q.has_family);
        ASSERT_EQ(q.family, TPM_FAMILY_1_2);
        ASSERT_EQ(q.pcr_banks, CTL_BANK_SHA1);
        ASSERT_EQ(q.eks, CTL_EK_RSA2048);
        ASSERT_TRUE(q.ek_cert);
        ASSERT_TRUE(q.platform_cert);
}

/* s without each "\\u0000" and the rest of its string. */
static void strip_nul_escapes(const char *s, char *out, size_t size) {
        size_t o = 0;

        for (; *s && o + 1 < size; s++) {
                if (strncmp(s, "\\u0000", 6) == 0) {
                        s += 6;
                        while (*s != '"')
                                s++;
                }
                out[o++] = *s;
        }
        out[o] = '\0';
}

/* JSON's "\u0000" puts a NUL inside a string: "list\u0000junk" is not "list". */
TEST(request_rejects_embedded_nul) {
        static const char nul_error[] = "{\"ok\":false,\"errno\":2,\"error\":\"x\\u0000y\"}";
        CtlRequest q;
        CtlReply reply;
        static const char *const bad[] = {
                "{\"op\":\"list\\u0000junk\"}",
                "{\"op\":\"list\\u0000\"}",
                "{\"op\\u0000x\":\"list\"}", /* json-c would see a member "op" */
                "{\"op\":\"show\",\"uuid\\u0000\":\"" U "\"}",
                "{\"op\":\"show\",\"uuid\":\"" U "\\u0000\"}",
                "{\"op\":\"create\",\"tpm\":\"2.0\\u0000x\"}",
                "{\"op\":\"create\",\"ek\":[\"rsa2048\\u0000x\"]}",
                "{\"op\":\"create\",\"pcr_banks\":[\"sha256\\u0000\"]}",
                "{\"op\":\"import\",\"key\":\"" KEY64 "\\u0000\"}",
                "{\"op\":\"export\",\"uuid\":\"" U "\",\"key\":\"" KEY64 "\",\"kdf\":{\"alg\":\"none\\u0000x\"}}",
                "{\"op\":\"export\",\"uuid\":\"" U "\",\"key\":\"" KEY64 "\",\"kdf\":{\"alg\":\"pbkdf2-sha256\","
                "\"iterations\":1000,\"salt\":\"00112233445566778899aabbccddeeff\\u0000\"}}",
        };
        json_object *o = json_tokener_parse("\"a\\u0000b\"");

        /* The premise: json-c keeps the NUL and the bytes after it. */
        ASSERT_TRUE(o != NULL);
        ASSERT_EQ(json_object_get_string_len(o), 3);
        json_object_put(o);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char good[512];

                if (parse(bad[i], &q) != -EBADMSG)
                        TEST_FAIL_("accepted: %s", bad[i]);
                /* The control: cut at the NUL, the same request is fine. */
                strip_nul_escapes(bad[i], good, sizeof(good));
                if (parse(good, &q) < 0)
                        TEST_FAIL_("refused: %s", good);
        }
        /* Nor in a reply's error text. */
        ASSERT_ERR(ctl_reply_parse((const uint8_t *) nul_error, strlen(nul_error), &reply), -EBADMSG);
}

TEST(request_key_hex_either_case) {
        CtlRequest q;
        ASSERT_OK(parse("{\"op\":\"import\",\"key\":"
                        "\"00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\"}",
                        &q));
        ASSERT_EQ(q.key[10], 0xaa);
        ASSERT_EQ(q.key[31], 0xff);
        ASSERT_ERR(parse("{\"op\":\"import\",\"key\":\"" KEY64 "0\"}", &q), -EBADMSG);
        ASSERT_ERR(parse("{\"op\":\"import\",\"key\":\"" KEY64 "00\"}", &q), -EBADMSG);
}

TEST(request_roundtrip_export) {
        CtlRequest q = { .op = CTL_OP_EXPORT, .has_uuid = true, .has_key = true,
                         .kdf = { .alg = CTL_KDF_PBKDF2_SHA256, .iterations = 600000 } };
        CtlRequest p;
        char *s = NULL;
        size_t n = 0;

        memcpy(q.uuid, U, sizeof(U));
        for (unsigned i = 0; i < CTL_KEY_SIZE; i++)
                q.key[i] = (uint8_t) i;
        for (unsigned i = 0; i < CTL_SALT_SIZE; i++)
                q.kdf.salt[i] = (uint8_t) (0xf0 + i);
        ASSERT_OK(ctl_request_encode(&q, &s, &n));
        ASSERT_OK(ctl_request_parse((const uint8_t *) s, n, &p));
        free(s);
        ASSERT_EQ(p.op, CTL_OP_EXPORT);
        ASSERT_STREQ(p.uuid, U);
        ASSERT_MEMEQ(p.key, q.key, CTL_KEY_SIZE);
        ASSERT_EQ(p.kdf.alg, CTL_KDF_PBKDF2_SHA256);
        ASSERT_EQ(p.kdf.iterations, 600000);
        ASSERT_MEMEQ(p.kdf.salt, q.kdf.salt, CTL_SALT_SIZE);
}

TEST(encode_refuses_incomplete) {
        CtlRequest q = { .op = CTL_OP_SHOW };
        char *s = NULL;
        size_t n;
        ASSERT_ERR(ctl_request_encode(&q, &s, &n), -EINVAL);
}

TEST(cli_lists) {
        unsigned m;
        ASSERT_OK(ctl_parse_ek_list("both", &m));
        ASSERT_EQ(m, CTL_EK_RSA2048 | CTL_EK_ECC_P256);
        ASSERT_OK(ctl_parse_ek_list("ecc-p256", &m));
        ASSERT_EQ(m, CTL_EK_ECC_P256);
        ASSERT_ERR(ctl_parse_ek_list("rsa2048,", &m), -EINVAL);
        ASSERT_OK(ctl_parse_bank_list("sha1,sha512", &m));
        ASSERT_EQ(m, CTL_BANK_SHA1 | CTL_BANK_SHA512);
        ASSERT_ERR(ctl_parse_bank_list("sha256,sha256", &m), -EINVAL);
        ASSERT_ERR(ctl_parse_bank_list("", &m), -EINVAL);
        ASSERT_ERR(ctl_parse_bank_list("both", &m), -EINVAL);
}

TEST(reply_error_roundtrip_and_sanitised) {
        char *s = NULL;
        size_t n;
        CtlReply r;

        ASSERT_OK(ctl_reply_encode_error(-ENOENT, "unknown\nvTPM", &s, &n));
        ASSERT_OK(ctl_reply_parse((const uint8_t *) s, n, &r));
        free(s);
        ASSERT_EQ(r.kind, CTL_REPLY_ERROR);
        ASSERT_EQ(r.error, -ENOENT);
        ASSERT_STREQ(r.message, "unknown vTPM"); /* one line, whatever the daemon passed */
        ctl_reply_done(&r);
}

TEST(reply_item_and_ok) {
        json_object *o = json_object_new_object();
        char *s = NULL;
        size_t n;
        CtlReply r;

        json_object_object_add(o, "uuid", json_object_new_string(U));
        ASSERT_OK(ctl_reply_encode_item(o, &s, &n));
        ASSERT_OK(ctl_reply_parse((const uint8_t *) s, n, &r));
        free(s);
        ASSERT_EQ(r.kind, CTL_REPLY_ITEM);
        ASSERT_STREQ(json_object_get_string(json_object_object_get(r.obj, "uuid")), U);
        ctl_reply_done(&r);
        ASSERT_OK(ctl_reply_encode_ok(o, &s, &n));
        ASSERT_OK(ctl_reply_parse((const uint8_t *) s, n, &r));
        free(s);
        ASSERT_EQ(r.kind, CTL_REPLY_OK);
        ctl_reply_done(&r);
        json_object_put(o);
        ASSERT_ERR(ctl_reply_parse((const uint8_t *) "{\"ok\":false,\"errno\":0,\"error\":\"x\"}", 34, &r), -EBADMSG);
}

TEST(export_header_roundtrip_and_checks) {
        CtlExportHeader h = { .kdf = { .alg = CTL_KDF_PBKDF2_SHA256, .iterations = 1000 }, .length = 40 };
        uint8_t buf[CTL_EXPORT_HEADER_SIZE + 40 + CTL_EXPORT_TAG_SIZE] = {};
        CtlExportHeader p;

        h.uuid[0] = 0xab;
        h.key_check[15] = 7;
        ctl_export_header_encode(&h, buf);
        ASSERT_OK(ctl_export_header_parse(buf, sizeof(buf), false, &p));
        ASSERT_EQ(p.length, 40);
        ASSERT_EQ(p.kdf.iterations, 1000);
        ASSERT_EQ(p.uuid[0], 0xab);
        ASSERT_EQ(p.key_check[15], 7);
        ASSERT_OK(ctl_export_header_parse(buf, CTL_EXPORT_HEADER_SIZE, true, &p));
        ASSERT_ERR(ctl_export_header_parse(buf, sizeof(buf) - 1, false, &p), -EBADMSG); /* truncated */
        ASSERT_ERR(ctl_export_header_parse(buf, CTL_EXPORT_HEADER_SIZE, false, &p), -EBADMSG);
        ASSERT_EQ(p.version, CTL_EXPORT_VERSION);
        buf[9] = CTL_EXPORT_VERSION + 1;
        ASSERT_ERR(ctl_export_header_parse(buf, sizeof(buf), false, &p), -EPROTONOSUPPORT);
        buf[9] = 0;
        ASSERT_ERR(ctl_export_header_parse(buf, sizeof(buf), false, &p), -EPROTONOSUPPORT);
        buf[9] = 1; /* an export of vtpmd before the EK records: still read */
        ASSERT_OK(ctl_export_header_parse(buf, sizeof(buf), false, &p));
        ASSERT_EQ(p.version, 1);
        buf[0] = 'X';
        ASSERT_ERR(ctl_export_header_parse(buf, sizeof(buf), false, &p), -EBADMSG);
}

TEST(export_payload) {
        uint8_t meta[CTL_EXPORT_META_SIZE] = { 1, 2, 3 }, *b = NULL;
        CtlExportPayload in = { .meta = meta, .permall = (const uint8_t *) "perm", .permall_len = 4 }, out;
        size_t n = 0;

        in.rec[CTL_EXPORT_REC_EK_HASHES] = (const uint8_t *) "rsa2048 x\n";
        in.rec_len[CTL_EXPORT_REC_EK_HASHES] = 10;
        in.rec[CTL_EXPORT_REC_EK_CERT_ECC_P256] = (const uint8_t *) "PEM";
        in.rec_len[CTL_EXPORT_REC_EK_CERT_ECC_P256] = 3;
        ASSERT_OK(ctl_export_payload_encode(&in, &b, &n));
        ASSERT_EQ(n, CTL_EXPORT_META_SIZE + 4 + 4 + 3 * 4 + 10 + 3);
        ASSERT_OK(ctl_export_payload_parse(b, n, CTL_EXPORT_VERSION, &out));
        ASSERT_EQ(out.permall_len, 4);
        ASSERT_MEMEQ(out.permall, "perm", 4);
        ASSERT_MEMEQ(out.meta, meta, sizeof(meta));
        ASSERT_EQ(out.rec_len[CTL_EXPORT_REC_EK_HASHES], 10);
        ASSERT_MEMEQ(out.rec[CTL_EXPORT_REC_EK_HASHES], "rsa2048 x\n", 10);
        ASSERT_EQ(out.rec_len[CTL_EXPORT_REC_EK_CERT_RSA2048], 0);
        ASSERT_EQ(out.rec_len[CTL_EXPORT_REC_EK_CERT_ECC_P256], 3);
        ASSERT_MEMEQ(out.rec[CTL_EXPORT_REC_EK_CERT_ECC_P256], "PEM", 3);
        ASSERT_ERR(ctl_export_payload_parse(b, n - 1, CTL_EXPORT_VERSION, &out), -EBADMSG);
        ASSERT_ERR(ctl_export_payload_parse(b, n + 0, 1, &out), -EBADMSG); /* records where v1 ends */
        ASSERT_ERR(ctl_export_payload_parse(b, n, CTL_EXPORT_VERSION + 1, &out), -EPROTONOSUPPORT);
        /* A version 1 payload (meta, permall, nothing after): no records. */
        ASSERT_OK(ctl_export_payload_parse(b, CTL_EXPORT_META_SIZE + 4 + 4, 1, &out));
        ASSERT_EQ(out.permall_len, 4);
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++)
                ASSERT_EQ(out.rec_len[i], 0);
        free(b);
        in.rec_len[CTL_EXPORT_REC_EK_HASHES] = CTL_EXPORT_MAX_RECORD + 1;
        ASSERT_ERR(ctl_export_payload_encode(&in, &b, &n), -E2BIG);
}

TEST(guest_name_valid) {
        char long_name[CTL_NAME_MAX + 1];

        ASSERT_TRUE(ctl_guest_name_valid("guest1"));
        ASSERT_TRUE(ctl_guest_name_valid("web-01.example_b"));
        ASSERT_FALSE(ctl_guest_name_valid(NULL));
        ASSERT_FALSE(ctl_guest_name_valid(""));
        ASSERT_FALSE(ctl_guest_name_valid("two words"));
        ASSERT_FALSE(ctl_guest_name_valid("esc\x1b[2J"));
        ASSERT_FALSE(ctl_guest_name_valid("caf\xc3\xa9"));
        ASSERT_FALSE(ctl_guest_name_valid("12345678-1234-4234-8234-123456789abc")); /* that is a UUID */
        memset(long_name, 'a', CTL_NAME_MAX - 1);
        long_name[CTL_NAME_MAX - 1] = '\0';
        ASSERT_TRUE(ctl_guest_name_valid(long_name));
        long_name[CTL_NAME_MAX - 1] = 'a';
        long_name[CTL_NAME_MAX] = '\0';
        ASSERT_FALSE(ctl_guest_name_valid(long_name));
}

TEST(request_ek_cert_restart) {
        CtlRequest q;
        char *buf = NULL;
        size_t n = 0;

        ASSERT_OK(parse("{\"op\":\"ek-cert\",\"uuid\":\"" U "\"}", &q));
        ASSERT_EQ(q.op, CTL_OP_EK_CERT);
        ASSERT_TRUE(q.has_uuid);
        ASSERT_OK(parse("{\"op\":\"restart\",\"uuid\":\"" U "\"}", &q));
        ASSERT_EQ(q.op, CTL_OP_RESTART);
        ASSERT_OK(ctl_request_encode(&q, &buf, &n));
        ASSERT_OK(ctl_request_parse((const uint8_t *) buf, n, &q));
        ASSERT_EQ(q.op, CTL_OP_RESTART);
        free(buf);
        q = (CtlRequest){ .op = CTL_OP_EK_CERT };
        ASSERT_ERR(ctl_request_encode(&q, &buf, &n), -EINVAL);
}

TEST(pcr_selection) {
        unsigned bank = 0;
        uint32_t pcrs = 0;
        CtlRequest q;

        ASSERT_OK(ctl_parse_pcr_selection("sha256", &bank, &pcrs));
        ASSERT_EQ(bank, CTL_BANK_SHA256);
        ASSERT_EQ(pcrs, 0xffffffu);
        ASSERT_OK(ctl_parse_pcr_selection("sha1:all", &bank, &pcrs));
        ASSERT_EQ(bank, CTL_BANK_SHA1);
        ASSERT_EQ(pcrs, 0xffffffu);
        ASSERT_OK(ctl_parse_pcr_selection("sha512:0,1,16", &bank, &pcrs));
        ASSERT_EQ(bank, CTL_BANK_SHA512);
        ASSERT_EQ(pcrs, (1u << 0) | (1u << 1) | (1u << 16));
        ASSERT_OK(ctl_parse_pcr_selection("sha384:23", &bank, &pcrs));
        ASSERT_EQ(pcrs, 1u << 23);
        static const char *const bad[] = { "", "sha256:", "sha256:24", "sha256:1,,2", "sha256:1,1", "md5:0",
                                           "sha256:0,", "sha256:-1", "sha256:0001", ":0", "sha256,sha1" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                if (ctl_parse_pcr_selection(bad[i], &bank, &pcrs) != -EINVAL)
                        TEST_FAIL_("accepted: %s", bad[i]);
        ASSERT_STREQ(ctl_bank_to_string(CTL_BANK_SHA384), "sha384");
        ASSERT_TRUE(ctl_bank_to_string(CTL_BANK_SHA1 | CTL_BANK_SHA256) == NULL);

        ASSERT_OK(parse("{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"bank\":\"sha1\",\"pcrs\":[0,16,23]}", &q));
        ASSERT_EQ(q.bank, CTL_BANK_SHA1);
        ASSERT_EQ(q.pcrs, (1u << 0) | (1u << 16) | (1u << 23));
        ASSERT_OK(parse("{\"op\":\"pcrread\",\"uuid\":\"" U "\"}", &q));
        ASSERT_EQ(q.bank, 0u);
        ASSERT_EQ(q.pcrs, 0u);
        static const char *const bad_req[] = {
                "{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"bank\":\"sha1,sha256\"}",
                "{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"pcrs\":[24]}",
                "{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"pcrs\":[1,1]}",
                "{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"pcrs\":[]}",
                "{\"op\":\"pcrread\",\"uuid\":\"" U "\",\"pcrs\":[\"1\"]}",
                "{\"op\":\"show\",\"uuid\":\"" U "\",\"bank\":\"sha1\"}",
        };
        for (size_t i = 0; i < sizeof(bad_req) / sizeof(bad_req[0]); i++)
                if (parse(bad_req[i], &q) != -EBADMSG)
                        TEST_FAIL_("accepted: %s", bad_req[i]);
}

TEST(request_backup_is_an_export) {
        CtlRequest q;

        ASSERT_OK(parse("{\"op\":\"backup\",\"uuid\":\"" U "\",\"key\":\"" KEY64 "\",\"kdf\":{\"alg\":\"none\"}}", &q));
        ASSERT_EQ(q.op, CTL_OP_BACKUP);
        ASSERT_TRUE(q.has_key);
        ASSERT_TRUE(ctl_op_takes_fd(CTL_OP_BACKUP));
        ASSERT_ERR(parse("{\"op\":\"backup\",\"uuid\":\"" U "\"}", &q), -EBADMSG);
        ctl_request_done(&q);
}
