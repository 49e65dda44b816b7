/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * emu-data: a data channel to an emulator-protocol server, on stdin and
 * stdout, as QEMU makes one: a socketpair whose one end goes to the server
 * with CMD_SET_DATAFD over its control socket. For tpm2-tools' "cmd" TCTI:
 *
 *   tpm2_getrandom -T "cmd:emu-data --socket PATH" 8
 *
 * Relays whole TPM commands from stdin to the server and whole responses
 * back, until stdin ends.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "emulator.h"
#include "tpm.h"

/* All n bytes read (out false) or written (out true): -1 on EOF or error. */
static int all(int fd, uint8_t *p, size_t n, bool out) {
        while (n > 0) {
                ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int read_all(int fd, uint8_t *p, size_t n) {
        return all(fd, p, n, false);
}

static int write_all(int fd, const uint8_t *p, size_t n) {
        return all(fd, (uint8_t *) p, n, true);
}

/* One whole TPM packet: the header's size, at most TPM_MAX_PACKET. */
static int relay(int from, int to) {
        uint8_t buf[TPM_MAX_PACKET];
        uint32_t size;

        if (read_all(from, buf, TPM_HEADER_SIZE) < 0)
                return -1;
        size = tpm_be32(buf + 2);
        if (size < TPM_HEADER_SIZE || size > sizeof(buf) || read_all(from, buf + TPM_HEADER_SIZE,
                                                                      size - TPM_HEADER_SIZE) < 0)
                return -1;
        return write_all(to, buf, size);
}

int main(int argc, char **argv) {
        static const struct option options[] = { { "socket", required_argument, NULL, 's' }, {} };
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = NULL;
        uint8_t req[4], res[4];
        int c, ctrl, sv[2];

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                if (c == 's')
                        path = optarg;
                else
                        return 2;
        if (!path || strlen(path) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: emu-data --socket PATH\n");
                return 2;
        }
        strcpy(sa.sun_path, path);
        ctrl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (ctrl < 0 || connect(ctrl, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                fprintf(stderr, "emu-data: %s: %s\n", path, strerror(errno));
                return 1;
        }

        tpm_put_be32(req, EMU_CMD_SET_DATAFD);
        union {
                struct cmsghdr h;
                uint8_t b[CMSG_SPACE(sizeof(int))];
        } cm = { 0 };
        struct iovec iov = { .iov_base = req, .iov_len = sizeof(req) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &cm, .msg_controllen = sizeof(cm) };
        struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
        ch->cmsg_level = SOL_SOCKET;
        ch->cmsg_type = SCM_RIGHTS;
        ch->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(ch), &sv[1], sizeof(int));
        if (sendmsg(ctrl, &mh, 0) != sizeof(req) || read_all(ctrl, res, sizeof(res)) < 0 || tpm_be32(res) != 0) {
                fprintf(stderr, "emu-data: SET_DATAFD refused\n");
                return 1;
        }
        close(sv[1]);
        while (relay(STDIN_FILENO, sv[0]) == 0)
                if (relay(sv[0], STDOUT_FILENO) < 0) {
                        fprintf(stderr, "emu-data: the server closed the data channel\n");
                        return 1;
                }
        return 0;
}
