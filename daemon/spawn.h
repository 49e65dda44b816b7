/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting a vtpmd-worker: the one place that forks and execs it. */
#pragma once

#include <sys/types.h>

/* Starts the worker at path with fd 3 = its end of a new SOCK_SEQPACKET
 * socketpair (protocol/ipc.h), every signal unblocked, nothing else
 * inherited (every other fd is O_CLOEXEC). Between fork and exec only
 * async-signal-safe calls: the caller may have threads. Returns the pid and
 * our end of the pair (O_CLOEXEC), or a negative errno; nothing to clean up
 * then. */
int spawn_worker(const char *path, pid_t *ret_pid, int *ret_fd);
