/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket (vtpmd-ctl's way in): a SOCK_SEQPACKET Unix socket,
 * 0600 root-only, or 0660 with an admin group. A peer is served if it is
 * root, vtpmd's own user, or has the admin group as its primary group or
 * (SO_PEERGROUPS) a supplementary one. Served from the event loop without
 * blocking it: one request at a time per client, replies queued and sent as
 * the client reads them, idle clients closed, at most CONTROL_MAX_CLIENTS
 * at once. Messages: protocol/ctl.h.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct AdminContext AdminContext;
typedef struct Control Control;

/* Clients connected at once; the next is told "too many control clients". */
#define CONTROL_MAX_CLIENTS 64u
/* A client that sends no request, or does not read its reply, for this
 * long is closed (a running request does not count). vtpmd-ctl sends its
 * request at once and reads until the last reply. */
#define CONTROL_IDLE_USEC (10u * 1000000u)

/* Creates the socket (and its directory, 0755, if missing), serving
 * requests with admin (borrowed). -EADDRINUSE if another process is
 * listening on it. Logs on failure. */
int control_open(const AdminContext *admin, const char *path, gid_t gid, bool have_gid, Control **ret);
/* Closes the socket and every client, and removes the socket file. */
Control *control_close(Control *c);
