/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "ipc-socket.h"
#include "util.h"

/* Room for more fds than we accept, so that a sender who attaches several
 * still gets them all closed rather than leaked into MSG_CTRUNC. */
#define IPC_SOCKET_MAX_FDS 8

static int send_message(int sock, const IpcMsg *m, int pass_fd, int flags) {
        uint8_t buf[IPC_MAX_PACKET]; /* the largest valid packet (ipc.h) */
        union {
                struct cmsghdr align;
                uint8_t raw[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        size_t n = ipc_encode(m, buf);
        ssize_t k;

        if (n == 0)
                return -EINVAL;
        iov = (struct iovec) { buf, n };
        if (pass_fd >= 0) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.raw;
                mh.msg_controllen = sizeof(control.raw);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        /* Without an fd, send(): a confined worker may not call sendmsg
         * (lib/confine.h), which is what could pass fds. */
        do
                k = pass_fd >= 0 ? sendmsg(sock, &mh, MSG_NOSIGNAL | flags) : send(sock, buf, n, MSG_NOSIGNAL | flags);
        while (k < 0 && errno == EINTR);
        explicit_wipe(buf, n);
        if (k < 0)
                return negative_errno();
        return (size_t) k == n ? 0 : -EIO;
}

int ipc_socket_send(int sock, const IpcMsg *m, int pass_fd) {
        return send_message(sock, m, pass_fd, 0);
}

int ipc_socket_send_nowait(int sock, const IpcMsg *m, int pass_fd) {
        return send_message(sock, m, pass_fd, MSG_DONTWAIT);
}

/* Collects the fds of every SCM_RIGHTS message: returns how many (at most
 * max are stored; the rest are closed at once). */
static size_t take_fds(struct msghdr *mh, int *fds, size_t max) {
        size_t n = 0;

        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
                        continue;
                size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < count; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n < max)
                                fds[n] = fd;
                        else
                                safe_close(fd);
                        n++;
                }
        }
        return n;
}

int ipc_socket_recv(int sock, IpcMsg *ret, int *ret_fd) {
        uint8_t buf[IPC_MAX_PACKET]; /* the largest valid packet (ipc.h) */
        union {
                struct cmsghdr align;
                uint8_t raw[CMSG_SPACE(IPC_SOCKET_MAX_FDS * sizeof(int))];
        } control;
        struct iovec iov = { buf, sizeof(buf) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.raw,
                .msg_controllen = sizeof(control.raw),
        };
        int fds[IPC_SOCKET_MAX_FDS];
        size_t nfds;
        ssize_t n;
        IpcMsg m;
        int r;

        do
                n = recvmsg(sock, &mh, MSG_TRUNC | MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();

        nfds = take_fds(&mh, fds, ELEMENTSOF(fds));
        if (nfds > ELEMENTSOF(fds))
                nfds = ELEMENTSOF(fds); /* the excess is closed already */

        if (n == 0 && nfds == 0)
                return 0;
        if ((size_t) n > sizeof(buf) || (mh.msg_flags & MSG_CTRUNC))
                r = -EBADMSG; /* larger than any valid message, or fds lost */
        else
                r = ipc_decode(buf, (size_t) n, &m);
        explicit_wipe(buf, sizeof(buf));

        bool want_fd = r >= 0 && m.type == IPC_START && (m.start.flags & IPC_START_DURABLE);
        if (want_fd && (nfds != 1 || !ret_fd))
                r = -EBADMSG;
        if (r < 0 || !want_fd)
                for (size_t i = 0; i < nfds; i++)
                        safe_close(fds[i]);
        if (r < 0) {
                explicit_wipe(&m, sizeof(m));
                return r;
        }

        if (ret_fd)
                *ret_fd = want_fd ? fds[0] : -1;
        *ret = m;
        explicit_wipe(&m, sizeof(m));
        return 1;
}
