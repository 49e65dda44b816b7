/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Starting a vtpmd-worker, the one place that forks it: by exec, or from the
 * worker fork server.
 *
 * The fork server is one `vtpmd-worker --fork-server` that vtpmd starts by
 * exec. It loads libtpms and OpenSSL and builds OpenSSL's algorithm tables
 * once, then forks a worker for every request. A forked worker shares those
 * pages with the server and every other worker until it writes them (about
 * 0.6 MiB of relocated libcrypto and OpenSSL heap that an exec'ed worker
 * keeps privately), and starts without dynamic linking. Workers forked so
 * share the server's address-space layout, which exec would randomise per
 * worker (WorkerSpawn=exec).
 *
 * The server double-forks, so the worker is orphaned and re-parented to the
 * caller, a child subreaper while it waits for the reply: the worker is the
 * caller's child as if it had been forked by it, and the caller waits for it
 * as for any other child.
 *
 * Wire (SOCK_SEQPACKET): request = one byte SPAWN_REQUEST with exactly one
 * fd (SCM_RIGHTS), the worker's end of its IPC socketpair; reply =
 * SpawnReply. Nothing else is accepted.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#define WORKER_IPC_FD 3
#define SPAWN_REQUEST 'W'
#define SPAWN_REPLY_MAGIC 0x76747066u /* "vtpf" */
#define SPAWN_REPLY_TIMEOUT_MS 5000

typedef struct SpawnReply {
        uint32_t magic;
        int32_t pid;   /* > 1 on success */
        int32_t error; /* positive errno when pid is 0 */
} SpawnReply;

/* Starts the worker at path with fd 3 = its end of a new SOCK_SEQPACKET
 * socketpair (protocol/ipc.h), every signal unblocked, nothing else
 * inherited (every other fd is O_CLOEXEC). Between fork and exec only
 * async-signal-safe calls: the caller may have threads. Returns the pid and
 * our end of the pair (O_CLOEXEC), or a negative errno; nothing to clean up
 * then. */
int spawn_worker(const char *path, pid_t *ret_pid, int *ret_fd);

/* Starts `path --fork-server` the same way; *ret_fd is the server's socket. */
int spawn_fork_server(const char *path, pid_t *ret_pid, int *ret_fd);

/* Asks the fork server on server_fd for a worker, waiting at most
 * SPAWN_REPLY_TIMEOUT_MS for its reply. Returns what spawn_worker() returns.
 * On any error the server's socket may hold a late reply: stop using it.
 * The caller must not have other threads that fork (it is a child subreaper
 * while it waits). */
int spawn_from_fork_server(int server_fd, pid_t *ret_pid, int *ret_fd);

/* The fork server's loop, run in `vtpmd-worker --fork-server` on fd (its
 * socket to vtpmd). Each worker child gets fd 3 = the fd it was sent, has
 * argv[1..] blanked (so it does not show as the server in ps) and exits
 * with child_main()'s return value. Returns 0 when vtpmd closes the socket,
 * a negative errno if reading it fails; bad requests get an EBADMSG reply. */
int spawn_fork_server_run(int fd, char **argv, int (*child_main)(void));
