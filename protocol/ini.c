/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"
#include "util.h"

/* Not isalnum(): that follows the locale. */
static bool is_name_char(char c, bool allow_dot) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
               c == '-' || (allow_dot && c == '.');
}

static bool is_name(const char *s, bool allow_dot) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!is_name_char(*s, allow_dot))
                        return false;
        return true;
}

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

Ini *ini_free(Ini *ini) {
        if (!ini)
                return NULL;
        free(ini->entries);
        free(ini->strings);
        free(ini);
        return NULL;
}

static int fail(IniError *ret_error, unsigned line, const char *message) {
        if (ret_error)
                *ret_error = (IniError){ .line = line, .message = message };
        return -EBADMSG;
}

/* Returns NULL if the line is fine, else why not. [s, e) excludes the '\n'. */
static const char *check_bytes(const char *s, const char *e) {
        const char *last = e;

        while (last > s && is_blank(last[-1]))
                last--;
        for (const char *p = s; p < e; p++) {
                unsigned char c = (unsigned char) *p;
                if (c == '\0')
                        return "NUL byte";
                /* '\r' only as part of the trailing blanks (a "\r\n" line end) */
                if ((c < 0x20 && c != '\t' && !(c == '\r' && p >= last)) || c == 0x7f)
                        return "control character";
        }
        return NULL;
}

int ini_parse(const char *data, size_t size, Ini **ret, IniError *ret_error) {
        _cleanup_(ini_freep) Ini *ini = NULL;
        const char *section = NULL;
        size_t allocated = 0;
        unsigned line = 1;
        char *buf;

        ini = calloc(1, sizeof(*ini));
        if (!ini)
                return -ENOMEM;
        if (size == SIZE_MAX)
                return -ENOMEM;
        ini->strings = buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        if (size)
                memcpy(buf, data, size);
        buf[size] = '\0';

        for (size_t pos = 0; pos < size; line = line < UINT_MAX ? line + 1 : line) {
                char *s = buf + pos, *nl = memchr(s, '\n', size - pos), *e = nl ? nl : buf + size, *eq, *k_end;
                const char *why = check_bytes(s, e);

                if (why)
                        return fail(ret_error, line, why);
                pos = (size_t) (e - buf) + 1;
                while (e > s && is_blank(e[-1]))
                        e--;
                *e = '\0';
                while (s < e && is_blank(*s))
                        s++;

                if (s == e || *s == '#' || *s == ';')
                        continue;

                if (*s == '[') {
                        if (e[-1] != ']')
                                return fail(ret_error, line, "expected ']' at the end of the section header");
                        e[-1] = '\0';
                        if (!is_name(s + 1, true))
                                return fail(ret_error, line, "invalid section name");
                        section = s + 1;
                        continue;
                }

                eq = strchr(s, '=');
                if (!eq)
                        return fail(ret_error, line, "expected [Section], Key=Value or a comment");
                k_end = eq;
                while (k_end > s && is_blank(k_end[-1]))
                        k_end--;
                *k_end = '\0';
                if (!*s)
                        return fail(ret_error, line, "missing key before '='");
                if (!is_name(s, false))
                        return fail(ret_error, line, "invalid key name");
                eq++;
                while (*eq && is_blank(*eq))
                        eq++;
                if (e > eq && e[-1] == '\\')
                        return fail(ret_error, line, "'\\' at the end of a line: continuation lines are not supported");
                if (!section)
                        return fail(ret_error, line, "assignment before the first [Section]");

                if (ini->n_entries == allocated) {
                        size_t n = allocated ? allocated * 2 : 16;
                        IniEntry *p;

                        if (n > SIZE_MAX / sizeof(IniEntry))
                                return -ENOMEM;
                        p = realloc(ini->entries, n * sizeof(IniEntry));
                        if (!p)
                                return -ENOMEM;
                        ini->entries = p;
                        allocated = n;
                }
                ini->entries[ini->n_entries++] = (IniEntry){
                        .section = section,
                        .key = s,
                        .value = eq,
                        .line = line,
                };
        }

        *ret = TAKE_PTR(ini);
        return 0;
}
