/* SPDX-License-Identifier: BSD-3-Clause */
/* IPC over a real SOCK_SEQPACKET socketpair: the fd rules of ipc-socket.h. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc-socket.h"
#include "test.h"
#include "util.h"

#define UUID "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c"

static IpcMsg start_msg(uint32_t flags) {
        IpcMsg m = { .type = IPC_START, .start = {
                .domid = 3, .ring_ref = 8, .evtchn_port = 42, .family = TPM_FAMILY_2_0, .flags = flags,
                .uuid = UUID, .platform = "xen", .min_perm_seq = 11, .vol_seq = 12,
        } };

        memset(m.start.data_key, 0x5c, sizeof(m.start.data_key));
        return m;
}

static int open_fds(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -1;
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* Sends a raw packet with any number of fds attached. */
static int send_raw(int sock, const void *buf, size_t len, const int *fds, size_t nfds) {
        union {
                struct cmsghdr align;
                uint8_t raw[CMSG_SPACE(4 * sizeof(int))];
        } control;
        struct iovec iov = { (void *) buf, len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

        if (nfds > 4)
                return -EINVAL;
        if (nfds > 0) {
                memset(&control, 0, sizeof(control));
                mh.msg_control = control.raw;
                mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t) len ? 0 : -errno;
}

static int pair(int sv[2]) {
        return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0;
}

TEST(durable_start_carries_the_directory_fd) {
        _cleanup_close_ int a = -1, b = -1, dir = -1;
        int sv[2], fd = -1;
        struct stat st1, st2;
        IpcMsg m = start_msg(IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE), d;

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dir >= 0);
        ASSERT_OK(ipc_socket_send(a, &m, dir));
        ASSERT_EQ(ipc_socket_recv(b, &d, &fd), 1);
        ASSERT_TRUE(fd >= 0 && fd != dir);
        ASSERT_EQ(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ASSERT_OK(fstat(dir, &st1));
        ASSERT_OK(fstat(fd, &st2));
        ASSERT_TRUE(st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev);
        ASSERT_EQ(d.start.flags, IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE);
        ASSERT_MEMEQ(d.start.data_key, m.start.data_key, 32);
        ASSERT_EQ(d.start.min_perm_seq, 11);
        ASSERT_EQ(d.start.vol_seq, 12);
        close(fd);
}

TEST(durable_start_without_fd_is_refused) {
        _cleanup_close_ int a = -1, b = -1;
        int sv[2], fd = 1234;
        IpcMsg m = start_msg(IPC_START_DURABLE), d;

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        ASSERT_OK(ipc_socket_send(a, &m, -1));
        ASSERT_ERR(ipc_socket_recv(b, &d, &fd), -EBADMSG);
        ASSERT_EQ(fd, 1234); /* untouched on failure */
}

TEST(durable_start_with_two_fds_is_refused_and_both_closed) {
        _cleanup_close_ int a = -1, b = -1;
        int sv[2], fd = -1, before;
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg m = start_msg(IPC_START_DURABLE), d;

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        size_t n = ipc_encode(&m, buf);
        int fds[2] = { open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC), open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) };
        ASSERT_TRUE(fds[0] >= 0 && fds[1] >= 0);
        ASSERT_OK(send_raw(a, buf, n, fds, 2));
        close(fds[0]);
        close(fds[1]);
        before = open_fds();
        ASSERT_ERR(ipc_socket_recv(b, &d, &fd), -EBADMSG);
        ASSERT_EQ(open_fds(), before);
}

TEST(durable_start_refused_where_no_fd_is_expected) {
        _cleanup_close_ int a = -1, b = -1, dir = -1;
        int sv[2], before;
        IpcMsg m = start_msg(IPC_START_DURABLE), d;

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_OK(ipc_socket_send(a, &m, dir));
        before = open_fds();
        ASSERT_ERR(ipc_socket_recv(b, &d, NULL), -EBADMSG);
        ASSERT_EQ(open_fds(), before);
}

TEST(fds_with_other_messages_are_closed) {
        _cleanup_close_ int a = -1, b = -1, dir = -1;
        int sv[2], fd = 99, before;
        IpcMsg stats = { .type = IPC_STATS_REQ }, plain = start_msg(IPC_START_TPM_STARTUP), d;

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        before = open_fds();

        ASSERT_OK(ipc_socket_send(a, &stats, dir));
        ASSERT_EQ(ipc_socket_recv(b, &d, &fd), 1);
        ASSERT_EQ(d.type, IPC_STATS_REQ);
        ASSERT_EQ(fd, -1);
        ASSERT_EQ(open_fds(), before);

        /* a START without DURABLE has no use for one either */
        ASSERT_OK(ipc_socket_send(a, &plain, dir));
        ASSERT_EQ(ipc_socket_recv(b, &d, &fd), 1);
        ASSERT_EQ(d.type, IPC_START);
        ASSERT_EQ(fd, -1);
        ASSERT_EQ(open_fds(), before);

        /* an invalid packet with an fd */
        static const uint8_t junk[12] = { 1, 0, 0, 0, 99 };
        ASSERT_OK(send_raw(a, junk, sizeof(junk), &dir, 1));
        ASSERT_ERR(ipc_socket_recv(b, &d, &fd), -EBADMSG);
        ASSERT_EQ(open_fds(), before);
}

TEST(oversized_packet_and_eof) {
        _cleanup_close_ int b = -1;
        int sv[2], fd = -1;
        uint8_t big[IPC_MAX_PACKET + 16];
        IpcMsg d, stopped = { .type = IPC_STOPPED };

        ASSERT_OK(pair(sv));
        b = sv[1];
        memset(big, 0, sizeof(big));
        ASSERT_OK(send_raw(sv[0], big, sizeof(big), NULL, 0));
        ASSERT_ERR(ipc_socket_recv(b, &d, &fd), -EBADMSG);
        ASSERT_OK(ipc_socket_send(sv[0], &stopped, -1));
        ASSERT_EQ(ipc_socket_recv(b, &d, &fd), 1);
        ASSERT_EQ(d.type, IPC_STOPPED);
        close(sv[0]);
        ASSERT_EQ(ipc_socket_recv(b, &d, &fd), 0);
        ASSERT_ERR(ipc_socket_send(b, &stopped, -1), -EPIPE);
}

TEST(unencodable_message) {
        _cleanup_close_ int a = -1, b = -1;
        int sv[2];
        IpcMsg m = { .type = (IpcType) 77 };

        ASSERT_OK(pair(sv));
        a = sv[0], b = sv[1];
        ASSERT_ERR(ipc_socket_send(a, &m, -1), -EINVAL);
}
