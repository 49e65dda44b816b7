/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "testlib.h"
#include "tpm-client.h"
#include "tpm.h"
#include "util.h"

int tpm_client_connect(const char *path) {
        return unix_connect(path);
}

int tpm_client_open(const char *prog, const char *path) {
        int fd = unix_connect(path);

        if (fd < 0)
                fprintf(stderr, "%s: connect %s: %s\n", prog, path, strerror(-fd));
        return fd;
}

static int read_full(int fd, uint8_t *buf, size_t n) {
        while (n > 0) {
                ssize_t k = read(fd, buf, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return k < 0 ? -errno : -EPIPE;
                buf += k;
                n -= (size_t) k;
        }
        return 0;
}

int tpm_client_transact(int fd, const uint8_t *cmd, size_t len, uint8_t *resp, size_t max, size_t *ret_len) {
        TpmHeader h;
        int r;

        if (max < TPM_HEADER_SIZE)
                return -ENOBUFS;
        if (write(fd, cmd, len) != (ssize_t) len)
                return negative_errno();
        r = read_full(fd, resp, TPM_HEADER_SIZE);
        if (r < 0)
                return r;
        if (tpm_header_parse(resp, TPM_HEADER_SIZE, &h) < 0 || h.size < TPM_HEADER_SIZE || h.size > max)
                return -EBADMSG;
        r = read_full(fd, resp + TPM_HEADER_SIZE, h.size - TPM_HEADER_SIZE);
        if (r < 0)
                return r;
        *ret_len = h.size;
        return 0;
}

int tpm_client_hex_decode(const char *s, uint8_t *out, size_t max, size_t *ret_len) {
        size_t n = strlen(s);

        if (n % 2 || n / 2 > max)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (!strchr("0123456789abcdefABCDEF", s[2 * i]) || !strchr("0123456789abcdefABCDEF", s[2 * i + 1]) ||
                    sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        *ret_len = n / 2;
        return 0;
}
