/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The xenstore view: the one place that knows where a vtpm device's nodes
 * are, reads a device's backend and frontend dirs into a DevView
 * (protocol/xenbus.h) and makes the backend's writes (state,
 * feature-protocol-v2, the xenbus error node), each state write in a
 * transaction that first checks the device still exists, so that a removed
 * device is never re-created.
 *
 * It runs on a small table of xenstore operations (XsOps): libxenstore's
 * (xs-view-xenstore.c; the simulated hypervisor's xenstored speaks the same
 * wire protocol), or a unit test's in-memory tree. Where a fake must behave
 * like xenstored: a read of a directory node succeeds (empty value); a watch
 * fires for its path and everything below it, once when it is set, and is
 * delivered later, never from inside the write that caused it.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "xenbus.h"

typedef struct XsView XsView;

typedef struct XsWrite {
        const char *path;
        const char *value;
} XsWrite;

typedef struct XsOps {
        /* The node's value (malloc'ed, NUL-terminated), or NULL with errno set (ENOENT: no such node). */
        char *(*read)(void *userdata, const char *path);
        /* The node's children as one malloc'ed block like xs_directory(), or NULL. */
        char **(*directory)(void *userdata, const char *path, unsigned *ret_n);
        int (*write)(void *userdata, const char *path, const char *value);
        /* In one transaction: -ENOENT if `guard` does not exist, else every write. */
        int (*write_guarded)(void *userdata, const char *guard, const XsWrite *writes, size_t n_writes);
        int (*watch)(void *userdata, const char *path, const char *token);
        int (*unwatch)(void *userdata, const char *path, const char *token);
        bool (*domain_introduced)(void *userdata, uint32_t domid);
} XsOps;

/* The view of our backend, /local/domain/<self_domid>/backend/vtpm, over ops. */
int xs_view_new(uint32_t self_domid, const XsOps *ops, void *userdata, XsView **ret);
XsView *xs_view_free(XsView *x);

const char *xs_view_backend_root(XsView *x);

/* Watches the backend root (token "be") and @releaseDomain ("rel"). */
int xs_view_watch_backends(XsView *x);
/* The frontend dir of domid/devid (state, ring-ref, event-channel: resume). */
int xs_view_watch_frontend(XsView *x, uint32_t domid, uint32_t devid);
void xs_view_unwatch_frontend(XsView *x, uint32_t domid, uint32_t devid);

typedef enum XsEvent {
        XS_EVENT_NONE,     /* not ours */
        XS_EVENT_SCAN,     /* the backend root itself (first fire, removed or re-created): look at everything */
        XS_EVENT_DEVICE,   /* something of the device (ret_domid, ret_devid) changed */
        XS_EVENT_RELEASED, /* a domain was destroyed */
} XsEvent;

/* What a watch event (from the watches set above) is about. */
XsEvent xs_view_parse_watch(XsView *x, const char *path, const char *token, uint32_t *ret_domid,
                            uint32_t *ret_devid);

bool xs_view_backend_exists(XsView *x, uint32_t domid, uint32_t devid);
bool xs_view_domain_introduced(XsView *x, uint32_t domid);

/* Every device under the backend root, as calls of fn. */
void xs_view_for_each_device(XsView *x, void (*fn)(void *userdata, uint32_t domid, uint32_t devid), void *userdata);

/* Reads domid/devid's nodes into *ret. The backend's keys are checked
 * (frontend, frontend-id: the domid comes from the backend path, never from
 * the guest-writable frontend dir; uuid): if they are unacceptable,
 * ret->config_error points to why, in error[error_size]. A valid uuid is
 * written to ret_uuid. Returns -EAGAIN while the toolstack has not written
 * all the backend keys yet (not an error), else 0. */
int xs_view_read_device(XsView *x, uint32_t domid, uint32_t devid, uint64_t now_ns, DevView *ret,
                        char ret_uuid[IPC_UUID_LEN], char *error, size_t error_size);

/* feature-protocol-v2 = 1 (if feature_v2) and state (if >= 0), in one
 * transaction that checks the backend's state node still exists: -ENOENT
 * if the device is gone. */
int xs_view_write_backend(XsView *x, uint32_t domid, uint32_t devid, bool feature_v2, int state);

/* Like Linux's xenbus_dev_fatal: <self>/error/backend/vtpm/<domid>/<devid>/error = "<code> <text>". */
int xs_view_write_error(XsView *x, uint32_t domid, uint32_t devid, int code, const char *text);
/* That node's value (malloc'ed), or NULL. */
char *xs_view_read_error(XsView *x, uint32_t domid, uint32_t devid);

/* The domain's name (the toolstack's /local/domain/<domid>/name) into
 * buf[CTL_NAME_MAX] if it is one ctl_guest_name_valid() accepts; else
 * -ENOENT (no name) or -EINVAL (not one we show). */
int xs_view_read_domain_name(XsView *x, uint32_t domid, char *buf, size_t size);

/* ---- libxenstore (xs-view-xenstore.c) ---- */

typedef struct XsConnection XsConnection;

/* ops for xs_view_new(), userdata an XsConnection */
extern const XsOps xs_connection_ops;

/* Connects to xenstored (XENSTORED_PATH, or libxenstore's default). */
int xs_connection_open(XsConnection **ret);
XsConnection *xs_connection_close(XsConnection *c);
/* Readable when watch events are queued. */
int xs_connection_fd(XsConnection *c);
/* Hands every queued watch event to fn, without blocking. < 0 when the connection is lost. */
int xs_connection_dispatch(XsConnection *c, void (*fn)(void *userdata, const char *path, const char *token),
                           void *userdata);
