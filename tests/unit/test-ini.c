/* SPDX-License-Identifier: BSD-3-Clause */
#include "ini.h"
#include "test.h"

static Ini *parse_ok(const char *s, size_t n) {
        IniError e = { 0 };
        Ini *ini = NULL;
        int r = ini_parse(s, n, &ini, &e);

        if (r < 0)
                fprintf(stderr, "  unexpected error %d at line %u: %s\n", r, e.line, e.message ? e.message : "");
        return ini;
}
#define PARSE_OK(lit) parse_ok(lit, sizeof(lit) - 1)

/* Expects -EBADMSG at line `line` with a message starting with `msg`. */
#define ASSERT_SYNTAX(data, n, want_line, want_msg)                                         \
        do {                                                                                \
                IniError _e = { 0 };                                                        \
                Ini *_ini = NULL;                                                           \
                ASSERT_ERR(ini_parse((data), (n), &_ini, &_e), -EBADMSG);                   \
                ASSERT_TRUE(_ini == NULL);                                                  \
                ASSERT_EQ(_e.line, (want_line));                                            \
                ASSERT_TRUE(_e.message != NULL);                                            \
                if (strncmp(_e.message, (want_msg), strlen(want_msg)) != 0)                 \
                        TEST_FAIL_("message \"%s\" does not start with \"%s\"", _e.message, \
                                   (want_msg));                                             \
        } while (0)
#define ASSERT_SYNTAX_LIT(lit, want_line, want_msg) ASSERT_SYNTAX(lit, sizeof(lit) - 1, want_line, want_msg)

TEST(sections_keys_and_line_numbers) {
        Ini *ini = PARSE_OK("[vtpmd]\n"
                            "StateDirectory=/var/lib/vtpmd\n"
                            "\n"
                            "[other.sect-1]\n"
                            "LogLevel=debug\n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 2);
        ASSERT_STREQ(ini->entries[0].section, "vtpmd");
        ASSERT_STREQ(ini->entries[0].key, "StateDirectory");
        ASSERT_STREQ(ini->entries[0].value, "/var/lib/vtpmd");
        ASSERT_EQ(ini->entries[0].line, 2);
        ASSERT_STREQ(ini->entries[1].section, "other.sect-1");
        ASSERT_STREQ(ini->entries[1].key, "LogLevel");
        ASSERT_STREQ(ini->entries[1].value, "debug");
        ASSERT_EQ(ini->entries[1].line, 5);
        ini_free(ini);
}

TEST(comments_and_blank_lines) {
        Ini *ini = PARSE_OK("# leading comment\n"
                            "; also a comment = with an equals sign\n"
                            "   \t\n"
                            "[vtpmd]\n"
                            "  # indented comment\n"
                            "A=1\n"
                            ";B=2\n"
                            "#C=3\n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 1);
        ASSERT_STREQ(ini->entries[0].key, "A");
        ASSERT_EQ(ini->entries[0].line, 6);
        ini_free(ini);
}

TEST(whitespace_is_trimmed_but_inner_kept) {
        Ini *ini = PARSE_OK("  [vtpmd]  \n"
                            "\tKey \t=  \t value with  spaces \t \n"
                            "Crlf=yes\r\n"
                            "Eq = a=b = c\n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 3);
        ASSERT_STREQ(ini->entries[0].key, "Key");
        ASSERT_STREQ(ini->entries[0].value, "value with  spaces");
        ASSERT_STREQ(ini->entries[1].value, "yes");
        ASSERT_STREQ(ini->entries[2].value, "a=b = c");
        ini_free(ini);
}

TEST(inline_hash_is_part_of_the_value) {
        /* as in systemd: a value is taken literally */
        Ini *ini = PARSE_OK("[s]\nK=v # not a comment\n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_STREQ(ini->entries[0].value, "v # not a comment");
        ini_free(ini);
}

TEST(empty_values) {
        Ini *ini = PARSE_OK("[s]\nA=\nB =   \n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 2);
        ASSERT_STREQ(ini->entries[0].value, "");
        ASSERT_STREQ(ini->entries[1].value, "");
        ini_free(ini);
}

TEST(empty_input_and_no_final_newline) {
        Ini *ini = parse_ok("", 0);
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 0);
        ini_free(ini);

        ini = PARSE_OK("[s]\nLast=x");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 1);
        ASSERT_STREQ(ini->entries[0].value, "x");
        ASSERT_EQ(ini->entries[0].line, 2);
        ini_free(ini);
}

TEST(input_need_not_be_terminated) {
        /* only the first 9 bytes are the file */
        Ini *ini = parse_ok("[s]\nK=abcGARBAGE", 9);
        ASSERT_TRUE(ini != NULL);
        ASSERT_STREQ(ini->entries[0].value, "abc");
        ini_free(ini);
}

TEST(repeated_section_and_repeated_keys_are_returned) {
        /* duplicates are the caller's business: it knows what they mean */
        Ini *ini = PARSE_OK("[a]\nK=1\n[b]\nK=2\n[a]\nK=3\n");
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 3);
        ASSERT_STREQ(ini->entries[2].section, "a");
        ASSERT_STREQ(ini->entries[2].value, "3");
        ASSERT_EQ(ini->entries[2].line, 6);
        ini_free(ini);
}

TEST(very_long_line) {
        size_t n = 200000;
        char *buf = malloc(n + 16);
        Ini *ini;

        ASSERT_TRUE(buf != NULL);
        memcpy(buf, "[s]\nK=", 6);
        memset(buf + 6, 'x', n);
        memcpy(buf + 6 + n, "\nL=y\n", 5);
        ini = parse_ok(buf, n + 11);
        free(buf);
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, 2);
        ASSERT_EQ(strlen(ini->entries[0].value), n);
        ASSERT_EQ(ini->entries[1].line, 3);
        ini_free(ini);
}

TEST(many_entries) {
        size_t n = 5000, len = 0;
        char *buf = malloc(n * 16 + 8);
        Ini *ini;

        ASSERT_TRUE(buf != NULL);
        len += (size_t) sprintf(buf, "[s]\n");
        for (size_t i = 0; i < n; i++)
                len += (size_t) sprintf(buf + len, "K%zu=%zu\n", i, i);
        ini = parse_ok(buf, len);
        free(buf);
        ASSERT_TRUE(ini != NULL);
        ASSERT_EQ(ini->n_entries, n);
        ASSERT_STREQ(ini->entries[n - 1].key, "K4999");
        ASSERT_EQ(ini->entries[n - 1].line, n + 1);
        ini_free(ini);
}

TEST(syntax_errors_with_line_numbers) {
        ASSERT_SYNTAX_LIT("K=v\n", 1, "assignment before the first [Section]");
        ASSERT_SYNTAX_LIT("# c\n\nK=v\n", 3, "assignment before the first [Section]");
        ASSERT_SYNTAX_LIT("[s]\njunk\n", 2, "expected [Section], Key=Value or a comment");
        ASSERT_SYNTAX_LIT("[s]\n\n\nK\n", 4, "expected [Section], Key=Value or a comment");
        ASSERT_SYNTAX_LIT("[s\n", 1, "expected ']' at the end of the section header");
        ASSERT_SYNTAX_LIT("[s]x\n", 1, "expected ']' at the end of the section header");
        ASSERT_SYNTAX_LIT("[s] # comment\n", 1, "expected ']' at the end of the section header");
        ASSERT_SYNTAX_LIT("[]\n", 1, "invalid section name");
        ASSERT_SYNTAX_LIT("[a b]\n", 1, "invalid section name");
        ASSERT_SYNTAX_LIT("[ s ]\n", 1, "invalid section name");
        ASSERT_SYNTAX_LIT("[s]\n=v\n", 2, "missing key before '='");
        ASSERT_SYNTAX_LIT("[s]\n  = v\n", 2, "missing key before '='");
        ASSERT_SYNTAX_LIT("[s]\nLog Level=info\n", 2, "invalid key name");
        ASSERT_SYNTAX_LIT("[s]\nK.x=1\n", 2, "invalid key name");
        ASSERT_SYNTAX_LIT("[s]\nK\xc3\xa9=1\n", 2, "invalid key name");
        ASSERT_SYNTAX_LIT("[s]\nK=a \\\n b\n", 2, "'\\' at the end of a line");
}

TEST(nul_byte_is_an_error) {
        ASSERT_SYNTAX("[s]\nK=a\0b\n", 10, 2, "NUL byte");
        ASSERT_SYNTAX("[s]\n\n# x\0\n", 10, 3, "NUL byte");
        ASSERT_SYNTAX("\0", 1, 1, "NUL byte");
}

TEST(control_characters_are_errors) {
        ASSERT_SYNTAX_LIT("[s]\nK=a\x1b[0m\n", 2, "control character");
        ASSERT_SYNTAX_LIT("[s]\nK=a\rb\n", 2, "control character");
        ASSERT_SYNTAX_LIT("[s]\nK=a\x7f\n", 2, "control character");
        ASSERT_SYNTAX_LIT("[s]\n\vK=a\n", 2, "control character");
}

TEST(error_pointer_optional) {
        Ini *ini = NULL;
        ASSERT_ERR(ini_parse("junk", 4, &ini, NULL), -EBADMSG);
        ASSERT_TRUE(ini == NULL);
        ini_free(NULL);
}
