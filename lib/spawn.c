/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

static int spawn_exec(const char *path, const char *arg, pid_t *ret_pid, int *ret_fd) {
        _cleanup_close_ int fd_parent = -1, fd_child = -1;
        char *argv[] = { (char *) path, (char *) arg, NULL };
        int pair[2];
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        fd_parent = pair[0];
        fd_child = pair[1];

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                sigset_t all;
                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                if (fd_child == WORKER_IPC_FD) {
                        if (fcntl(WORKER_IPC_FD, F_SETFD, 0) < 0)
                                _exit(127);
                } else if (dup2(fd_child, WORKER_IPC_FD) < 0)
                        _exit(127);
                execv(path, argv);
                _exit(127);
        }
        *ret_pid = pid;
        *ret_fd = TAKE_FD(fd_parent);
        return 0;
}

int spawn_worker(const char *path, pid_t *ret_pid, int *ret_fd) {
        return spawn_exec(path, NULL, ret_pid, ret_fd);
}

int spawn_fork_server(const char *path, pid_t *ret_pid, int *ret_fd) {
        return spawn_exec(path, "--fork-server", ret_pid, ret_fd);
}

static int send_request(int server_fd, int fd) {
        char byte = SPAWN_REQUEST;
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
        if (sendmsg(server_fd, &mh, MSG_NOSIGNAL) != 1)
                return negative_errno();
        return 0;
}

static int receive_reply(int server_fd, pid_t *ret_pid) {
        struct pollfd p = { .fd = server_fd, .events = POLLIN };
        SpawnReply reply;
        ssize_t n;
        int r;

        do
                r = poll(&p, 1, SPAWN_REPLY_TIMEOUT_MS);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return negative_errno();
        if (r == 0)
                return -ETIMEDOUT;
        n = recv(server_fd, &reply, sizeof(reply), MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return -ECONNRESET;
        if ((size_t) n != sizeof(reply) || reply.magic != SPAWN_REPLY_MAGIC)
                return -EBADMSG;
        if (reply.pid == 0)
                return reply.error > 0 && reply.error < 4096 ? -reply.error : -EBADMSG;
        if (reply.pid <= 1 || reply.error != 0)
                return -EBADMSG;
        *ret_pid = reply.pid;
        return 0;
}

int spawn_from_fork_server(int server_fd, pid_t *ret_pid, int *ret_fd) {
        _cleanup_close_ int fd_parent = -1, fd_child = -1;
        int pair[2], was_subreaper = 0, r;
        siginfo_t si = {};
        pid_t pid = 0;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
                return negative_errno();
        fd_parent = pair[0];
        fd_child = pair[1];

        /* Subreaper only while the worker is orphaned, so that no other
         * orphan (say a crashed manufacturing helper's worker) comes to us. */
        if (prctl(PR_GET_CHILD_SUBREAPER, &was_subreaper, 0, 0, 0) < 0 ||
            (!was_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0))
                return negative_errno();
        r = send_request(server_fd, fd_child);
        if (r >= 0)
                r = receive_reply(server_fd, &pid);
        if (!was_subreaper)
                (void) prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
        if (r < 0)
                return r;
        /* The server reaped the middle process before replying, so the
         * worker is our child by now; anything else is not a worker of ours. */
        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
                return errno == ECHILD ? -EBADMSG : negative_errno();
        *ret_pid = pid;
        *ret_fd = TAKE_FD(fd_parent);
        return 0;
}

/* Closes every fd a message carried. */
static void close_passed_fds(struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        safe_close(fd);
                }
        }
}

/* Receives one request: returns its fd, 0 on EOF, -EBADMSG for anything
 * but one SPAWN_REQUEST byte with exactly one fd (whatever it carried is
 * closed), or another negative errno. */
static int receive_request(int fd, int *ret_fd) {
        char byte[2];
        struct iovec iov = { .iov_base = byte, .iov_len = sizeof(byte) };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(4 * sizeof(int))];
        } control;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                             .msg_controllen = sizeof(control.buf) };
        struct cmsghdr *c;
        ssize_t n;

        do
                n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if (n == 0)
                return 0;
        c = CMSG_FIRSTHDR(&mh);
        if (n != 1 || byte[0] != SPAWN_REQUEST || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || !c ||
            c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)) ||
            CMSG_NXTHDR(&mh, c)) {
                close_passed_fds(&mh);
                return -EBADMSG;
        }
        memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
        return 1;
}

/* The worker side of a fork: fd 3 becomes its IPC socket (replacing the
 * server's), argv[1..] are blanked, child_main() runs. Never returns. */
static _Noreturn void become_worker(int ipc_fd, char **argv, int (*child_main)(void)) {
        if (ipc_fd == WORKER_IPC_FD) {
                if (fcntl(WORKER_IPC_FD, F_SETFD, 0) < 0)
                        _exit(127);
        } else {
                if (dup2(ipc_fd, WORKER_IPC_FD) < 0)
                        _exit(127);
                safe_close(ipc_fd);
        }
        for (int i = 1; argv[i]; i++)
                memset(argv[i], 0, strlen(argv[i]));
        exit(child_main());
}

/* Forks a worker through a middle process that exits at once, so the worker
 * is orphaned to the requester (a subreaper). Returns its pid. */
static int fork_worker(int ipc_fd, char **argv, int (*child_main)(void)) {
        _cleanup_close_ int rd = -1, wr = -1;
        int32_t pid = 0;
        int p[2], status;
        pid_t middle;
        ssize_t n;

        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        rd = p[0];
        wr = p[1];
        middle = fork();
        if (middle < 0)
                return negative_errno();
        if (middle == 0) {
                pid_t w = fork();
                if (w == 0) {
                        safe_close(wr);
                        safe_close(rd);
                        become_worker(ipc_fd, argv, child_main);
                }
                pid = w < 0 ? -errno : (int32_t) w;
                (void) !write(wr, &pid, sizeof(pid));
                _exit(0);
        }
        wr = safe_close(wr);
        do
                n = read(rd, &pid, sizeof(pid));
        while (n < 0 && errno == EINTR);
        while (waitpid(middle, &status, 0) < 0 && errno == EINTR)
                ;
        if (n != sizeof(pid))
                return -EIO;
        return pid;
}

static int send_reply(int fd, int32_t pid, int error) {
        SpawnReply reply = { .magic = SPAWN_REPLY_MAGIC, .pid = pid, .error = error };

        if (send(fd, &reply, sizeof(reply), MSG_NOSIGNAL) != (ssize_t) sizeof(reply))
                return negative_errno();
        return 0;
}

int spawn_fork_server_run(int fd, char **argv, int (*child_main)(void)) {
        for (;;) {
                int ipc_fd = -1, r;

                r = receive_request(fd, &ipc_fd);
                if (r == 0)
                        return 0;
                if (r == -EBADMSG) {
                        r = send_reply(fd, 0, EBADMSG);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (r < 0)
                        return r;
                r = fork_worker(ipc_fd, argv, child_main);
                safe_close(ipc_fd);
                r = r < 0 ? send_reply(fd, 0, -r) : send_reply(fd, r, 0);
                if (r < 0)
                        return r;
        }
}
