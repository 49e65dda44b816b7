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
