/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

#define WORKER_IPC_FD 3

int spawn_worker(const char *path, pid_t *ret_pid, int *ret_fd) {
        _cleanup_close_ int fd_parent = -1, fd_child = -1;
        char *argv[] = { (char *) path, NULL };
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
