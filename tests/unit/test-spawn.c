/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker fork server's protocol (daemon/spawn.c): workers it forks are
 * the requester's children with fd 3 set up; bad requests and bad replies
 * are refused without harm. */
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "test.h"
#include "util.h"

static char arg0[] = "vtpmd-worker", arg1[] = "--fork-server";
static char *server_argv[] = { arg0, arg1, NULL };

/* A "worker": tells its IPC peer its pid and whether its argv was blanked. */
static int child_main(void) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "hello %d blank=%d", (int) getpid(), arg1[0] == 0);
        return write(WORKER_IPC_FD, msg, (size_t) n) == n ? 7 : 1;
}

static pid_t start_server(int *ret_fd) {
        int pair[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -1;
        pid = fork();
        if (pid == 0) {
                close(pair[0]);
                _exit(spawn_fork_server_run(pair[1], server_argv, child_main) < 0 ? 1 : 0);
        }
        close(pair[1]);
        *ret_fd = pair[0];
        return pid;
}

static int exit_status(pid_t pid) {
        int st;
        if (waitpid(pid, &st, 0) != pid)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Sends raw bytes with n_fds copies of fd attached. */
static int send_raw(int sock, const char *bytes, size_t len, int fd, int n_fds) {
        struct iovec iov = { .iov_base = (void *) bytes, .iov_len = len };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(2 * sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int fds[2] = { fd, fd };

        if (n_fds > 0) {
                mh.msg_control = control.buf;
                mh.msg_controllen = CMSG_SPACE((size_t) n_fds * sizeof(int));
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN((size_t) n_fds * sizeof(int));
                memcpy(CMSG_DATA(c), fds, (size_t) n_fds * sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t) len ? 0 : -errno;
}

static int read_reply(int sock, SpawnReply *reply) {
        struct pollfd p = { .fd = sock, .events = POLLIN };
        if (poll(&p, 1, 10000) != 1)
                return -ETIMEDOUT;
        return recv(sock, reply, sizeof(*reply), 0) == (ssize_t) sizeof(*reply) ? 0 : -EBADMSG;
}

/* True once the peer of fd is gone (every copy of the other end closed). */
static bool peer_closed(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char b;
        return poll(&p, 1, 10000) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) == 0;
}

TEST(workers_are_the_requesters_children_with_fd_3) {
        int server_fd = -1;
        pid_t server = start_server(&server_fd);
        ASSERT_TRUE(server > 0);

        for (int i = 0; i < 2; i++) {
                pid_t pid = 0;
                int fd = -1;
                char msg[64] = {}, want[64];

                ASSERT_OK(spawn_from_fork_server(server_fd, &pid, &fd));
                ASSERT_TRUE(pid > 1 && pid != server);
                ASSERT_TRUE(read(fd, msg, sizeof(msg) - 1) > 0);
                snprintf(want, sizeof(want), "hello %d blank=1", (int) pid);
                ASSERT_STREQ(msg, want);
                ASSERT_EQ(exit_status(pid), 7); /* ours to wait for, not the server's */
                close(fd);
        }
        /* No child of ours is left but the server. */
        ASSERT_EQ(waitpid(-1, NULL, WNOHANG), 0);
        close(server_fd);
        ASSERT_EQ(exit_status(server), 0); /* EOF ends it */
}

TEST(bad_requests_get_ebadmsg_and_the_server_goes_on) {
        int server_fd = -1;
        pid_t server = start_server(&server_fd);
        SpawnReply reply;
        struct {
                const char *bytes;
                size_t len;
                int n_fds;
        } bad[] = {
                { "W", 1, 0 },  /* no fd */
                { "X", 1, 1 },  /* wrong request */
                { "WW", 2, 1 }, /* trailing bytes */
                { "W", 1, 2 },  /* two fds */
        };

        ASSERT_TRUE(server > 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int pair[2];
                ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair));
                ASSERT_OK(send_raw(server_fd, bad[i].bytes, bad[i].len, pair[1], bad[i].n_fds));
                close(pair[1]);
                ASSERT_OK(read_reply(server_fd, &reply));
                ASSERT_EQ(reply.magic, SPAWN_REPLY_MAGIC);
                ASSERT_EQ(reply.pid, 0);
                ASSERT_EQ(reply.error, EBADMSG);
                /* Whatever fds it carried were closed, and no worker got them. */
                ASSERT_TRUE(peer_closed(pair[0]));
                close(pair[0]);
        }

        pid_t pid = 0;
        int fd = -1;
        ASSERT_OK(spawn_from_fork_server(server_fd, &pid, &fd));
        ASSERT_EQ(exit_status(pid), 7);
        close(fd);
        close(server_fd);
        ASSERT_EQ(exit_status(server), 0);
}

/* A reply written in advance by a fake server on the other end. */
static int spawn_with_reply(const void *reply, size_t len, bool close_peer) {
        int pair[2], fd = -1, r;
        pid_t pid = 0;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return -errno;
        if (len > 0 && send(pair[1], reply, len, 0) != (ssize_t) len)
                return -errno;
        if (close_peer)
                pair[1] = (close(pair[1]), -1);
        r = spawn_from_fork_server(pair[0], &pid, &fd);
        close(pair[0]);
        if (pair[1] >= 0)
                close(pair[1]);
        if (r >= 0)
                close(fd);
        return r;
}

TEST(bad_replies_are_refused) {
        SpawnReply not_ours = { .magic = SPAWN_REPLY_MAGIC, .pid = (int32_t) getppid() };
        SpawnReply init = { .magic = SPAWN_REPLY_MAGIC, .pid = 1 };
        SpawnReply wrong_magic = { .magic = 0, .pid = (int32_t) getppid() };
        SpawnReply enomem = { .magic = SPAWN_REPLY_MAGIC, .pid = 0, .error = ENOMEM };
        SpawnReply huge = { .magic = SPAWN_REPLY_MAGIC, .pid = 0, .error = 1 << 20 };

        ASSERT_ERR(spawn_with_reply(&not_ours, sizeof(not_ours), false), -EBADMSG);
        ASSERT_ERR(spawn_with_reply(&init, sizeof(init), false), -EBADMSG);
        ASSERT_ERR(spawn_with_reply(&wrong_magic, sizeof(wrong_magic), false), -EBADMSG);
        ASSERT_ERR(spawn_with_reply(&not_ours, sizeof(not_ours) - 1, false), -EBADMSG);
        ASSERT_ERR(spawn_with_reply(&enomem, sizeof(enomem), false), -ENOMEM);
        ASSERT_ERR(spawn_with_reply(&huge, sizeof(huge), false), -EBADMSG);
        ASSERT_ERR(spawn_with_reply(NULL, 0, true), -EPIPE); /* server gone */
}
