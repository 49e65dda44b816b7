/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "parse.h"
#include "subid.h"
#include "util.h"

/* Longest line we parse: a user name (at most 32 bytes on Linux, useradd's
 * limit) and two 32-bit decimals fit many times over; a longer line cannot
 * be a valid entry. */
#define SUBID_LINE_MAX 256

/* Parses one line (without its newline) into name, first and count. */
static int parse_line(const char *line, size_t n, char name[static 64], uint32_t *ret_first, uint32_t *ret_count) {
        char buf[SUBID_LINE_MAX + 1];
        char *c1, *c2;
        uint32_t first, count;

        if (n == 0 || n > SUBID_LINE_MAX)
                return -EINVAL;
        memcpy(buf, line, n);
        buf[n] = 0;
        if (buf[0] == '#')
                return -EINVAL;
        c1 = strchr(buf, ':');
        if (!c1 || c1 == buf)
                return -EINVAL;
        *c1 = 0;
        c2 = strchr(c1 + 1, ':');
        if (!c2)
                return -EINVAL;
        *c2 = 0;
        if (parse_u32(c1 + 1, &first) < 0 || parse_u32(c2 + 1, &count) < 0 || count == 0)
                return -EINVAL;
        /* cut to fit: the name is only for the message */
        size_t k = strnlen(buf, 63);
        memcpy(name, buf, k);
        name[k] = 0;
        *ret_first = first;
        *ret_count = count;
        return 0;
}

int subid_find_overlap(const char *buf, size_t len, uint32_t first, uint32_t last, SubidOverlap *ret) {
        unsigned line = 0;
        size_t i = 0;

        while (i < len) {
                const char *start = buf + i;
                const char *nl = memchr(start, '\n', len - i);
                size_t n = nl ? (size_t) (nl - start) : len - i;
                char name[64];
                uint32_t f, count;

                line++;
                i += n + (nl ? 1 : 0);
                if (parse_line(start, n, name, &f, &count) < 0)
                        continue;
                /* f + count - 1 without overflow: ids past 2^32-1 do not exist. */
                uint32_t l = count - 1 > UINT32_MAX - f ? UINT32_MAX : f + (count - 1);
                if (f > last || l < first)
                        continue;
                if (ret) {
                        *ret = (SubidOverlap){ .line = line, .first = f, .last = l };
                        memcpy(ret->name, name, sizeof(ret->name));
                }
                return 1;
        }
        return 0;
}
