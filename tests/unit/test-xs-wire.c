/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdint.h>
/* after errno.h: xs_wire.h defines xsd_errors[] only when EINVAL is known */
#include <xen/io/xs_wire.h>

#include "test.h"
#include "xs-wire.h"

static size_t frame(uint8_t *buf, uint32_t type, uint32_t req_id, uint32_t tx_id, const void *p, size_t len) {
        XsWireHeader h = { .type = type, .req_id = req_id, .tx_id = tx_id };
        int n = xswire_frame_build(&h, p, len, buf, XSWIRE_FRAME_MAX);

        return n < 0 ? 0 : (size_t) n;
}

TEST(constants_match_xen_headers) {
        ASSERT_EQ(XSWIRE_PAYLOAD_MAX, XENSTORE_PAYLOAD_MAX);
        ASSERT_EQ(XSWIRE_REL_PATH_MAX, XENSTORE_REL_PATH_MAX);
        ASSERT_EQ(XSWIRE_HDR_SIZE, sizeof(struct xsd_sockmsg));
        ASSERT_EQ(XSWIRE_WATCH_EVENT, XS_WATCH_EVENT);
        ASSERT_EQ(XSWIRE_ERROR, XS_ERROR);
        ASSERT_EQ(XSWIRE_RESET_WATCHES, XS_RESET_WATCHES);
        ASSERT_EQ(XSWIRE_DIRECTORY_PART, XS_DIRECTORY_PART);
        ASSERT_EQ(XSWIRE_TYPE_COUNT, XS_TYPE_COUNT);
}

TEST(frame_roundtrip) {
        uint8_t buf[XSWIRE_FRAME_MAX];
        XsWireHeader h;
        size_t n = frame(buf, XSWIRE_READ, 7, 3, "/a\0", 3);

        ASSERT_EQ(n, 19);
        ASSERT_EQ(xswire_frame_peek(buf, n, &h), 1);
        ASSERT_EQ(h.type, XSWIRE_READ);
        ASSERT_EQ(h.req_id, 7);
        ASSERT_EQ(h.tx_id, 3);
        ASSERT_EQ(h.len, 3);
        ASSERT_MEMEQ(buf + XSWIRE_HDR_SIZE, "/a\0", 3);
}

TEST(frame_incomplete_needs_more) {
        uint8_t buf[XSWIRE_FRAME_MAX];
        XsWireHeader h = { .type = 99 };
        size_t n = frame(buf, XSWIRE_WRITE, 1, 0, "/a\0value", 8);

        for (size_t i = 0; i < n; i++)
                ASSERT_EQ(xswire_frame_peek(buf, i, &h), 0);
        ASSERT_EQ(h.type, 99); /* untouched until complete */
        ASSERT_EQ(xswire_frame_peek(buf, n + 5, &h), 1);
        ASSERT_EQ(h.len, 8);
}

TEST(frame_payload_limit) {
        uint8_t buf[XSWIRE_FRAME_MAX + 1] = {};
        XsWireHeader h = { .type = XSWIRE_WRITE, .len = XSWIRE_PAYLOAD_MAX }, out;

        xswire_header_encode(&h, buf);
        ASSERT_EQ(xswire_frame_peek(buf, XSWIRE_HDR_SIZE, &out), 0);
        ASSERT_EQ(xswire_frame_peek(buf, XSWIRE_FRAME_MAX, &out), 1);
        h.len = XSWIRE_PAYLOAD_MAX + 1;
        xswire_header_encode(&h, buf);
        /* rejected as soon as the header is in, before any payload */
        ASSERT_ERR(xswire_frame_peek(buf, XSWIRE_HDR_SIZE, &out), -E2BIG);
        h.len = UINT32_MAX;
        xswire_header_encode(&h, buf);
        ASSERT_ERR(xswire_frame_peek(buf, XSWIRE_HDR_SIZE, &out), -E2BIG);
}

TEST(frame_build_limits) {
        static uint8_t big[XSWIRE_PAYLOAD_MAX + 1];
        uint8_t buf[XSWIRE_FRAME_MAX + 1];
        XsWireHeader h = { .type = XSWIRE_READ };

        ASSERT_EQ(xswire_frame_build(&h, big, XSWIRE_PAYLOAD_MAX, buf, sizeof(buf)), (int) XSWIRE_FRAME_MAX);
        ASSERT_ERR(xswire_frame_build(&h, big, XSWIRE_PAYLOAD_MAX + 1, buf, sizeof(buf)), -E2BIG);
        ASSERT_ERR(xswire_frame_build(&h, big, 10, buf, XSWIRE_HDR_SIZE + 9), -ENOBUFS);
        ASSERT_EQ(xswire_frame_build(&h, NULL, 0, buf, XSWIRE_HDR_SIZE), (int) XSWIRE_HDR_SIZE);
}

TEST(onearg_shapes) {
        const char *s = NULL;

        ASSERT_OK(xswire_onearg((const uint8_t *) "/a\0", 3, &s));
        ASSERT_STREQ(s, "/a");
        ASSERT_OK(xswire_onearg((const uint8_t *) "\0", 1, &s));
        ASSERT_STREQ(s, "");
        ASSERT_ERR(xswire_onearg((const uint8_t *) "/a", 2, &s), -EINVAL);
        ASSERT_ERR(xswire_onearg((const uint8_t *) "/a\0b\0", 5, &s), -EINVAL);
        ASSERT_ERR(xswire_onearg((const uint8_t *) "/a\0b", 4, &s), -EINVAL);
        ASSERT_ERR(xswire_onearg((const uint8_t *) "", 0, &s), -EINVAL);
}

TEST(strings_split) {
        const char *v[2] = {};

        ASSERT_EQ(xswire_strings((const uint8_t *) "/w\0tok\0", 7, v, 2), 2);
        ASSERT_STREQ(v[0], "/w");
        ASSERT_STREQ(v[1], "tok");
        /* bytes after the last NUL are ignored, like get_strings() */
        ASSERT_EQ(xswire_strings((const uint8_t *) "/w\0tok\0junk", 11, v, 2), 2);
        /* more strings than slots are still counted */
        ASSERT_EQ(xswire_strings((const uint8_t *) "a\0b\0c\0", 6, v, 2), 3);
        ASSERT_EQ(xswire_strings((const uint8_t *) "abc", 3, v, 2), 0);
        ASSERT_EQ(xswire_count_strings((const uint8_t *) "a\0\0b\0", 5), 3);
}

TEST(write_args_value_is_binary) {
        const char *path;
        const uint8_t *val;
        size_t vlen;

        ASSERT_OK(xswire_write_args((const uint8_t *) "/a\0v\0l", 6, &path, &val, &vlen));
        ASSERT_STREQ(path, "/a");
        ASSERT_EQ(vlen, 3);
        ASSERT_MEMEQ(val, "v\0l", 3);
        ASSERT_OK(xswire_write_args((const uint8_t *) "/a\0", 3, &path, &val, &vlen));
        ASSERT_EQ(vlen, 0);
        ASSERT_ERR(xswire_write_args((const uint8_t *) "/a", 2, &path, &val, &vlen), -EINVAL);
        ASSERT_ERR(xswire_write_args((const uint8_t *) "", 0, &path, &val, &vlen), -EINVAL);
}

TEST(perm_parse) {
        XsWirePerm p;

        ASSERT_OK(xswire_perm_parse("r5", &p));
        ASSERT_EQ(p.perms, XSWIRE_PERM_READ);
        ASSERT_EQ(p.domid, 5);
        ASSERT_OK(xswire_perm_parse("b0", &p));
        ASSERT_EQ(p.perms, XSWIRE_PERM_READ | XSWIRE_PERM_WRITE);
        ASSERT_OK(xswire_perm_parse("w7", &p));
        ASSERT_EQ(p.perms, XSWIRE_PERM_WRITE);
        ASSERT_OK(xswire_perm_parse("n0x10", &p)); /* strtol base 0, as in xs_lib.c */
        ASSERT_EQ(p.perms, XSWIRE_PERM_NONE);
        ASSERT_EQ(p.domid, 16);
        ASSERT_OK(xswire_perm_parse("r-1", &p));
        ASSERT_EQ(p.domid, UINT32_MAX);
        ASSERT_ERR(xswire_perm_parse("x5", &p), -EINVAL);
        ASSERT_ERR(xswire_perm_parse("r", &p), -EINVAL);
        ASSERT_ERR(xswire_perm_parse("r5a", &p), -EINVAL);
        ASSERT_ERR(xswire_perm_parse("", &p), -EINVAL);
}

TEST(set_perms_args) {
        XsWirePerm *perms = NULL;
        const char *path;
        size_t n = 0;

        ASSERT_OK(xswire_set_perms_args((const uint8_t *) "/a\0n0\0r5\0", 9, &path, &perms, &n));
        ASSERT_STREQ(path, "/a");
        ASSERT_EQ(n, 2);
        ASSERT_EQ(perms[1].domid, 5);
        ASSERT_EQ(perms[1].perms, XSWIRE_PERM_READ);
        free(perms);
        ASSERT_ERR(xswire_set_perms_args((const uint8_t *) "/a\0", 3, &path, &perms, &n), -EINVAL);
        ASSERT_ERR(xswire_set_perms_args((const uint8_t *) "/a\0n0\0q1\0", 9, &path, &perms, &n), -EINVAL);
        ASSERT_ERR(xswire_set_perms_args((const uint8_t *) "/a", 2, &path, &perms, &n), -EINVAL);
}

TEST(perm_format) {
        char buf[XSWIRE_PERM_STRLEN_MAX];
        XsWirePerm p = { .domid = 7, .perms = XSWIRE_PERM_READ | XSWIRE_PERM_WRITE };

        ASSERT_EQ(xswire_perm_format(&p, buf), 2);
        ASSERT_STREQ(buf, "b7");
        p.perms |= XSWIRE_PERM_IGNORE;
        ASSERT_EQ(xswire_perm_format(&p, buf), 2);
        ASSERT_STREQ(buf, "b7");
        p = (XsWirePerm){ .domid = UINT32_MAX, .perms = XSWIRE_PERM_NONE };
        ASSERT_EQ(xswire_perm_format(&p, buf), 3);
        ASSERT_STREQ(buf, "n-1");
        p = (XsWirePerm){ .domid = 2147483648u, .perms = XSWIRE_PERM_WRITE };
        ASSERT_OK(xswire_perm_format(&p, buf));
        ASSERT_STREQ(buf, "w-2147483648");
        p.perms = XSWIRE_PERM_OWNER;
        ASSERT_ERR(xswire_perm_format(&p, buf), -EINVAL);
}

static char *repeat(const char *prefix, char c, size_t total) {
        size_t pl = strlen(prefix);
        char *s = malloc(total + 1);

        memcpy(s, prefix, pl);
        memset(s + pl, c, total - pl);
        s[total] = 0;
        return s;
}

TEST(path_validity) {
        ASSERT_TRUE(xswire_path_valid("/"));
        ASSERT_TRUE(xswire_path_valid("/local/domain/0/backend/vtpm/3/0/state"));
        ASSERT_TRUE(xswire_path_valid("/a-b_c@d/9"));
        ASSERT_FALSE(xswire_path_valid("a"));
        ASSERT_FALSE(xswire_path_valid(""));
        ASSERT_FALSE(xswire_path_valid("/a/"));
        ASSERT_FALSE(xswire_path_valid("/a//b"));
        ASSERT_FALSE(xswire_path_valid("/a b"));
        ASSERT_FALSE(xswire_path_valid("/a.b"));
        ASSERT_FALSE(xswire_path_valid("/a\n"));
        ASSERT_FALSE(xswire_path_valid("@releaseDomain"));
        ASSERT_FALSE(xswire_path_valid(NULL));
}

TEST(path_length_limits) {
        /* The longest valid path behind each prefix; one byte more is invalid. */
        static const struct {
                const char *prefix;
                size_t longest;
        } limits[] = {
                { "/", XSWIRE_REL_PATH_MAX },
                /* under /local/domain/<id>/ the limit counts only what follows */
                { "/local/domain/12345/", sizeof("/local/domain/12345/") - 1 + XSWIRE_REL_PATH_MAX },
                /* a six-digit id is not a domain prefix for sscanf("%5u/") */
                { "/local/domain/123456/", XSWIRE_REL_PATH_MAX },
        };

        for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
                char *ok = repeat(limits[i].prefix, 'x', limits[i].longest);
                char *over = repeat(limits[i].prefix, 'x', limits[i].longest + 1);
                bool valid = xswire_path_valid(ok), over_valid = xswire_path_valid(over);

                free(ok);
                free(over);
                ASSERT_TRUE(valid);
                ASSERT_FALSE(over_valid);
        }
}

TEST(canonicalize_and_parent) {
        char *s = NULL;

        ASSERT_OK(xswire_path_canonicalize("device/vtpm/0", "/local/domain/3", &s));
        ASSERT_STREQ(s, "/local/domain/3/device/vtpm/0");
        free(s);
        ASSERT_OK(xswire_path_canonicalize("/abs", "/local/domain/3", &s));
        ASSERT_STREQ(s, "/abs");
        free(s);
        ASSERT_OK(xswire_path_canonicalize("@releaseDomain", "/local/domain/3", &s));
        ASSERT_STREQ(s, "@releaseDomain");
        free(s);
        ASSERT_OK(xswire_path_canonicalize("", "/local/domain/3", &s));
        ASSERT_FALSE(xswire_path_valid(s)); /* trailing slash */
        free(s);

        ASSERT_OK(xswire_path_parent("/a/b", &s));
        ASSERT_STREQ(s, "/a");
        free(s);
        ASSERT_OK(xswire_path_parent("/a", &s));
        ASSERT_STREQ(s, "/");
        free(s);
        ASSERT_OK(xswire_path_parent("/", &s));
        ASSERT_STREQ(s, "/");
        free(s);
}

TEST(watch_matching) {
        ASSERT_TRUE(xswire_path_is_child("/a/b", "/a"));
        ASSERT_TRUE(xswire_path_is_child("/a", "/a"));
        ASSERT_TRUE(xswire_path_is_child("/anything", "/"));
        ASSERT_FALSE(xswire_path_is_child("/ab", "/a"));
        ASSERT_FALSE(xswire_path_is_child("/a", "/a/b"));
}

TEST(error_names) {
        ASSERT_STREQ(xswire_error_name(ENOENT), "ENOENT");
        ASSERT_STREQ(xswire_error_name(EACCES), "EACCES");
        ASSERT_STREQ(xswire_error_name(EAGAIN), "EAGAIN");
        ASSERT_STREQ(xswire_error_name(EPERM), "EPERM");
        ASSERT_STREQ(xswire_error_name(ENOTDIR), "EINVAL"); /* not in xsd_errors */
        for (size_t i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++) {
                ASSERT_STREQ(xswire_error_name(xsd_errors[i].errnum), xsd_errors[i].errstring);
                ASSERT_EQ(xswire_error_parse(xsd_errors[i].errstring), xsd_errors[i].errnum);
        }
        ASSERT_ERR(xswire_error_parse("EFOO"), -EINVAL);
}

TEST(type_names) {
        ASSERT_STREQ(xswire_type_name(XSWIRE_READ), "READ");
        ASSERT_STREQ(xswire_type_name(XSWIRE_DIRECTORY_PART), "DIRECTORY_PART");
        ASSERT_STREQ(xswire_type_name(20), "UNKNOWN");
        ASSERT_STREQ(xswire_type_name(XSWIRE_TYPE_COUNT), "UNKNOWN");
        ASSERT_STREQ(xswire_type_name(UINT32_MAX), "UNKNOWN");
}

TEST(event_payload) {
        uint8_t out[XSWIRE_PAYLOAD_MAX];
        char *path;

        ASSERT_EQ(xswire_event_payload("/a/b", "tok", out), 9);
        ASSERT_MEMEQ(out, "/a/b\0tok\0", 9);
        path = repeat("/", 'x', XSWIRE_PAYLOAD_MAX - 3);
        ASSERT_EQ(xswire_event_payload(path, "t", out), (int) XSWIRE_PAYLOAD_MAX);
        ASSERT_ERR(xswire_event_payload(path, "tt", out), -E2BIG);
        free(path);
}

TEST(atoi_like_xenstored) {
        ASSERT_EQ(xswire_atoi("5"), 5);
        ASSERT_EQ(xswire_atoi("12abc"), 12);
        ASSERT_EQ(xswire_atoi("abc"), 0);
        ASSERT_EQ(xswire_atoi("-1"), -1);
}
