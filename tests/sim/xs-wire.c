/* SPDX-License-Identifier: BSD-3-Clause */
#include "xs-wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xswire_frame_peek(const uint8_t *buf, size_t avail, XsWireHeader *ret) {
        XsWireHeader h;

        if (avail < XSWIRE_HDR_SIZE)
                return 0;
        memcpy(&h, buf, sizeof(h));
        if (h.len > XSWIRE_PAYLOAD_MAX)
                return -E2BIG;
        if (avail - XSWIRE_HDR_SIZE < h.len)
                return 0;
        *ret = h;
        return 1;
}

void xswire_header_encode(const XsWireHeader *h, uint8_t out[static XSWIRE_HDR_SIZE]) {
        memcpy(out, h, XSWIRE_HDR_SIZE);
}

int xswire_frame_build(const XsWireHeader *h, const void *payload, size_t len, uint8_t *out,
                       size_t out_size) {
        XsWireHeader hh = *h;

        if (len > XSWIRE_PAYLOAD_MAX)
                return -E2BIG;
        if (out_size < XSWIRE_HDR_SIZE || out_size - XSWIRE_HDR_SIZE < len)
                return -ENOBUFS;
        hh.len = (uint32_t) len;
        xswire_header_encode(&hh, out);
        if (len)
                memcpy(out + XSWIRE_HDR_SIZE, payload, len);
        return (int) (XSWIRE_HDR_SIZE + len);
}

size_t xswire_count_strings(const uint8_t *p, size_t len) {
        size_t n = 0;

        for (size_t i = 0; i < len; i++)
                if (p[i] == 0)
                        n++;
        return n;
}

int xswire_onearg(const uint8_t *p, size_t len, const char **ret) {
        const uint8_t *nul;

        if (len == 0)
                return -EINVAL;
        nul = memchr(p, 0, len);
        if (!nul || (size_t) (nul - p) != len - 1)
                return -EINVAL;
        *ret = (const char *) p;
        return 0;
}

size_t xswire_strings(const uint8_t *p, size_t len, const char **vec, size_t n) {
        size_t off = 0, count = 0;

        while (off < len) {
                const uint8_t *nul = memchr(p + off, 0, len - off);

                if (!nul)
                        break;
                if (count < n)
                        vec[count] = (const char *) p + off;
                count++;
                off = (size_t) (nul - p) + 1;
        }
        return count;
}

int xswire_write_args(const uint8_t *p, size_t len, const char **ret_path,
                      const uint8_t **ret_value, size_t *ret_value_len) {
        const uint8_t *nul = len ? memchr(p, 0, len) : NULL;
        size_t off;

        if (!nul)
                return -EINVAL;
        off = (size_t) (nul - p) + 1;
        *ret_path = (const char *) p;
        *ret_value = p + off;
        *ret_value_len = len - off;
        return 0;
}

int xswire_perm_parse(const char *s, XsWirePerm *ret) {
        uint32_t perms;
        char *end;
        long id;

        switch (s[0]) {
        case 'r':
                perms = XSWIRE_PERM_READ;
                break;
        case 'w':
                perms = XSWIRE_PERM_WRITE;
                break;
        case 'b':
                perms = XSWIRE_PERM_READ | XSWIRE_PERM_WRITE;
                break;
        case 'n':
                perms = XSWIRE_PERM_NONE;
                break;
        default:
                return -EINVAL;
        }
        if (!s[1])
                return -EINVAL;
        /* xs_strings_to_perms() truncates strtol()'s long into an unsigned int;
         * keep that, since clients can observe it through GET_PERMS. */
        id = strtol(s + 1, &end, 0);
        if (*end)
                return -EINVAL;
        *ret = (XsWirePerm){ .domid = (uint32_t) id, .perms = perms };
        return 0;
}

int xswire_set_perms_args(const uint8_t *p, size_t len, const char **ret_path,
                          XsWirePerm **ret_perms, size_t *ret_n) {
        size_t n = xswire_count_strings(p, len), off;
        XsWirePerm *perms;

        if (n < 2)
                return -EINVAL;
        n--;
        perms = calloc(n, sizeof(*perms));
        if (!perms)
                return -ENOMEM;
        off = strlen((const char *) p) + 1;
        for (size_t i = 0; i < n; i++) {
                const char *s = (const char *) p + off;
                int r = xswire_perm_parse(s, &perms[i]);

                if (r < 0) {
                        free(perms);
                        return r;
                }
                off += strlen(s) + 1;
        }
        *ret_path = (const char *) p;
        *ret_perms = perms;
        *ret_n = n;
        return 0;
}

int xswire_perm_format(const XsWirePerm *perm, char buf[static XSWIRE_PERM_STRLEN_MAX]) {
        char c;

        switch (perm->perms & ~XSWIRE_PERM_IGNORE) {
        case XSWIRE_PERM_WRITE:
                c = 'w';
                break;
        case XSWIRE_PERM_READ:
                c = 'r';
                break;
        case XSWIRE_PERM_READ | XSWIRE_PERM_WRITE:
                c = 'b';
                break;
        case XSWIRE_PERM_NONE:
                c = 'n';
                break;
        default:
                return -EINVAL;
        }
        return snprintf(buf, XSWIRE_PERM_STRLEN_MAX, "%c%i", c, (int) perm->domid);
}

static bool valid_chars(const char *s) {
        static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz"
                                 "0123456789-/_@";

        return strspn(s, ok) == strlen(s);
}

/* Offset after "/local/domain/<id>/" where the id is what sscanf("%5u")
 * accepts (optional sign, at most 5 characters); 0 if there is none. Only
 * [0-9-] can reach here as valid, so '+' and blanks need no care. */
static size_t local_offset(const char *path) {
        static const char prefix[] = "/local/domain/";
        const char *p = path + sizeof(prefix) - 1, *digits;
        size_t width = 0;

        if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
                return 0;
        if (*p == '-' || *p == '+') {
                p++;
                width++;
        }
        digits = p;
        while (width < 5 && *p >= '0' && *p <= '9') {
                p++;
                width++;
        }
        if (p == digits || *p != '/')
                return 0;
        return (size_t) (p + 1 - path);
}

bool xswire_path_valid(const char *path) {
        size_t len;

        if (!path || path[0] != '/')
                return false;
        len = strlen(path);
        if (len > 1 && path[len - 1] == '/')
                return false;
        if (strstr(path, "//"))
                return false;
        if (len > local_offset(path) + XSWIRE_REL_PATH_MAX)
                return false;
        return valid_chars(path);
}

int xswire_path_canonicalize(const char *path, const char *prefix, char **ret) {
        char *s;

        if (path[0] == '/' || path[0] == '@')
                s = strdup(path);
        else if (asprintf(&s, "%s/%s", prefix, path) < 0)
                s = NULL;
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int xswire_path_parent(const char *path, char **ret) {
        const char *slash = path[0] ? strrchr(path + 1, '/') : NULL;
        char *s;

        s = slash ? strndup(path, (size_t) (slash - path)) : strdup("/");
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

bool xswire_path_is_child(const char *child, const char *parent) {
        size_t len = strlen(parent);

        if (strcmp(parent, "/") == 0)
                return true;
        if (strncmp(child, parent, len) != 0)
                return false;
        return child[len] == '/' || child[len] == '\0';
}

/* xsd_errors[] in the order of xs_wire.h; index 0 doubles as the fallback. */
static const struct {
        int errnum;
        const char *name;
} errors[] = {
        { EINVAL, "EINVAL" },     { EACCES, "EACCES" }, { EEXIST, "EEXIST" },
        { EISDIR, "EISDIR" },     { ENOENT, "ENOENT" }, { ENOMEM, "ENOMEM" },
        { ENOSPC, "ENOSPC" },     { EIO, "EIO" },       { ENOTEMPTY, "ENOTEMPTY" },
        { ENOSYS, "ENOSYS" },     { EROFS, "EROFS" },   { EBUSY, "EBUSY" },
        { EAGAIN, "EAGAIN" },     { EISCONN, "EISCONN" }, { E2BIG, "E2BIG" },
        { EPERM, "EPERM" },
};

const char *xswire_error_name(int errnum) {
        for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
                if (errors[i].errnum == errnum)
                        return errors[i].name;
        return errors[0].name;
}

int xswire_error_parse(const char *name) {
        for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
                if (strcmp(errors[i].name, name) == 0)
                        return errors[i].errnum;
        return -EINVAL;
}

const char *xswire_type_name(uint32_t type) {
        static const char *const names[XSWIRE_TYPE_COUNT] = {
                [XSWIRE_CONTROL] = "CONTROL",
                [XSWIRE_DIRECTORY] = "DIRECTORY",
                [XSWIRE_READ] = "READ",
                [XSWIRE_GET_PERMS] = "GET_PERMS",
                [XSWIRE_WATCH] = "WATCH",
                [XSWIRE_UNWATCH] = "UNWATCH",
                [XSWIRE_TRANSACTION_START] = "TRANSACTION_START",
                [XSWIRE_TRANSACTION_END] = "TRANSACTION_END",
                [XSWIRE_INTRODUCE] = "INTRODUCE",
                [XSWIRE_RELEASE] = "RELEASE",
                [XSWIRE_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
                [XSWIRE_WRITE] = "WRITE",
                [XSWIRE_MKDIR] = "MKDIR",
                [XSWIRE_RM] = "RM",
                [XSWIRE_SET_PERMS] = "SET_PERMS",
                [XSWIRE_WATCH_EVENT] = "WATCH_EVENT",
                [XSWIRE_ERROR] = "ERROR",
                [XSWIRE_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
                [XSWIRE_RESUME] = "RESUME",
                [XSWIRE_SET_TARGET] = "SET_TARGET",
                [XSWIRE_RESET_WATCHES] = "RESET_WATCHES",
                [XSWIRE_DIRECTORY_PART] = "DIRECTORY_PART",
        };

        if (type < XSWIRE_TYPE_COUNT && names[type])
                return names[type];
        return "UNKNOWN";
}

int xswire_event_payload(const char *path, const char *token, uint8_t out[static XSWIRE_PAYLOAD_MAX]) {
        size_t pl = strlen(path), tl = strlen(token);

        if (pl + 1 + tl + 1 > XSWIRE_PAYLOAD_MAX)
                return -E2BIG;
        memcpy(out, path, pl + 1);
        memcpy(out + pl + 1, token, tl + 1);
        return (int) (pl + 1 + tl + 1);
}

int xswire_atoi(const char *s) {
        return (int) strtol(s, NULL, 10);
}
