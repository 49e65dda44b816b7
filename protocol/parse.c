/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "parse.h"

int parse_u32(const char *s, uint32_t *ret) {
        return parse_u32_max(s, UINT32_MAX, ret);
}

int parse_u32_max(const char *s, uint32_t max, uint32_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        if (s[0] == '0' && s[1] != '\0')
                return -EINVAL;
        /* Syntax first, so "99999999999x" is -EINVAL (junk), not -ERANGE. */
        for (const char *p = s; *p; p++)
                if (*p < '0' || *p > '9')
                        return -EINVAL;
        for (const char *p = s; *p; p++) {
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > max)
                        return -ERANGE;
        }
        *ret = (uint32_t) v;
        return 0;
}

int parse_uuid(const char *s, char ret[static 37]) {
        char buf[37];

        if (!s || strlen(s) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36; i++) {
                char c = s[i];
                if (i == 8 || i == 13 || i == 18 || i == 23) {
                        if (c != '-')
                                return -EINVAL;
                        buf[i] = c;
                        continue;
                }
                /* Not isxdigit()/tolower(): those follow the locale. */
                if (c >= '0' && c <= '9')
                        buf[i] = c;
                else if (c >= 'a' && c <= 'f')
                        buf[i] = c;
                else if (c >= 'A' && c <= 'F')
                        buf[i] = (char) (c - 'A' + 'a');
                else
                        return -EINVAL;
        }
        buf[36] = '\0';
        memcpy(ret, buf, sizeof(buf));
        return 0;
}

static int hex_digit(char c) {
        /* Not isxdigit(): that follows the locale. */
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int parse_hex(const char *s, uint8_t *out, size_t n) {
        if (!s || n > SIZE_MAX / 2 || strnlen(s, 2 * n + 1) != 2 * n)
                return -EINVAL;
        /* Check everything first: out is written only on success. */
        for (size_t i = 0; i < 2 * n; i++)
                if (hex_digit(s[i]) < 0)
                        return -EINVAL;
        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) (hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
        return 0;
}

int parse_u32_hex_or_dec(const char *s, uint32_t *ret) {
        uint32_t v = 0;
        size_t n;

        if (!s || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
                return parse_u32(s, ret);
        n = strlen(s + 2);
        if (n == 0 || n > 8)
                return n ? -ERANGE : -EINVAL;
        for (const char *p = s + 2; *p; p++) {
                int d = hex_digit(*p);
                if (d < 0)
                        return -EINVAL;
                v = v << 4 | (uint32_t) d;
        }
        *ret = v;
        return 0;
}

int parse_pcr_list(const char *s, uint32_t max_pcr, uint32_t *ret, size_t max_n, size_t *ret_n) {
        uint32_t seen[64] = {}, out[64];
        size_t n = 0;
        const char *p = s;

        if (!s || max_pcr > 64)
                return -EINVAL;
        if (!*s) {
                *ret_n = 0;
                return 0;
        }
        for (;;) {
                char num[4];
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t) (comma - p) : strlen(p);
                uint32_t v;
                int r;

                if (len == 0 || len >= sizeof(num))
                        return -EINVAL;
                memcpy(num, p, len);
                num[len] = '\0';
                r = parse_u32(num, &v);
                if (r < 0)
                        return r;
                if (v >= max_pcr)
                        return -ERANGE;
                if (seen[v])
                        return -EINVAL;
                seen[v] = 1;
                if (n >= max_n)
                        return -E2BIG;
                n++;
                if (!comma)
                        break;
                p = comma + 1;
        }
        n = 0;
        for (uint32_t i = 0; i < max_pcr; i++)
                if (seen[i])
                        out[n++] = i;
        memcpy(ret, out, n * sizeof(*ret));
        *ret_n = n;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        char digits[11]; /* 4294967295 and its NUL */
        unsigned shift = 0;
        uint32_t v;
        size_t n;

        if (!s || !*s)
                return -EINVAL;
        n = strlen(s);
        switch (s[n - 1]) {
        case 'K':
                shift = 10;
                n--;
                break;
        case 'M':
                shift = 20;
                n--;
                break;
        case 'G':
                shift = 30;
                n--;
                break;
        }
        if (n == 0 || n >= sizeof(digits))
                return n == 0 ? -EINVAL : -ERANGE;
        memcpy(digits, s, n);
        digits[n] = '\0';
        int r = parse_u32(digits, &v);
        if (r < 0)
                return r;
        *ret = (uint64_t) v << shift;
        return 0;
}

int parse_u32_range(const char *s, uint32_t *ret_first, uint32_t *ret_last) {
        char first[11];
        uint32_t a, b;

        if (!s)
                return -EINVAL;
        const char *dash = strchr(s, '-');
        if (!dash || (size_t) (dash - s) >= sizeof(first))
                return -EINVAL;
        memcpy(first, s, (size_t) (dash - s));
        first[dash - s] = '\0';
        if (parse_u32(first, &a) < 0 || parse_u32(dash + 1, &b) < 0)
                return -EINVAL;
        if (a >= b)
                return -ERANGE;
        *ret_first = a;
        *ret_last = b;
        return 0;
}
