/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * IPC messages (protocol/ipc.h) over the supervisor<->worker SOCK_SEQPACKET
 * socket, with the one fd an IPC_START{DURABLE} carries (SCM_RIGHTS).
 * Both ends use these, so the fd rules are enforced in one place.
 */
#pragma once

#include "ipc.h"

/* Sends one message; pass_fd >= 0 is attached with SCM_RIGHTS (the caller
 * keeps its copy). Never raises SIGPIPE. -EINVAL for an unencodable message,
 * -EPIPE/-ECONNRESET when the peer is gone, other negative errno. */
int ipc_socket_send(int sock, const IpcMsg *m, int pass_fd);
/* The same without ever blocking (MSG_DONTWAIT): the supervisor does not wait
 * for a worker that stops reading; -EAGAIN when the socket's queue is full. */
int ipc_socket_send_nowait(int sock, const IpcMsg *m, int pass_fd);

/* Receives one packet. Returns 1 and the message, 0 on EOF (peer gone),
 * -EBADMSG for a packet that is not a valid message, or negative errno.
 * ret_fd may be NULL only for a peer that never passes fds (the supervisor
 * side). Fd rules: an IPC_START with IPC_START_DURABLE must carry exactly
 * one fd, which is returned in *ret_fd (O_CLOEXEC) and owned by the caller;
 * every fd that arrives with any other message, in excess, or with an
 * invalid packet is closed, and then *ret_fd = -1. The receive buffer is
 * wiped (a START carries a key). */
int ipc_socket_recv(int sock, IpcMsg *ret, int *ret_fd);
