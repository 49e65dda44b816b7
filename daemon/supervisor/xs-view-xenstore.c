/* SPDX-License-Identifier: BSD-3-Clause */
/* The xenstore view's operations over libxenstore (xs-view.h): real xenstored, or the simulated one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

#include "util.h"
#include "xs-view.h"

/* A transaction that raced another writer is retried; libxl's own loops give up after as many. */
#define XS_TRANSACTION_ATTEMPTS 16

struct XsConnection {
        struct xs_handle *xs;
};

static char *conn_read(void *userdata, const char *path) {
        XsConnection *c = userdata;
        unsigned len;

        return xs_read(c->xs, XBT_NULL, path, &len);
}

static char **conn_directory(void *userdata, const char *path, unsigned *ret_n) {
        XsConnection *c = userdata;

        return xs_directory(c->xs, XBT_NULL, path, ret_n);
}

static int conn_write(void *userdata, const char *path, const char *value) {
        XsConnection *c = userdata;

        return xs_write(c->xs, XBT_NULL, path, value, strlen(value)) ? 0 : negative_errno();
}

static int conn_write_guarded(void *userdata, const char *guard, const XsWrite *writes, size_t n_writes) {
        XsConnection *c = userdata;

        for (int attempt = 0; attempt < XS_TRANSACTION_ATTEMPTS; attempt++) {
                xs_transaction_t t = xs_transaction_start(c->xs);
                unsigned len;
                char *cur;
                bool ok = true;

                if (t == XBT_NULL)
                        return negative_errno();
                cur = xs_read(c->xs, t, guard, &len);
                if (!cur) {
                        xs_transaction_end(c->xs, t, true);
                        return -ENOENT;
                }
                free(cur);
                for (size_t i = 0; ok && i < n_writes; i++)
                        ok = xs_write(c->xs, t, writes[i].path, writes[i].value, strlen(writes[i].value));
                if (!ok) {
                        int r = negative_errno();
                        xs_transaction_end(c->xs, t, true);
                        return r;
                }
                if (xs_transaction_end(c->xs, t, false))
                        return 0;
                if (errno != EAGAIN)
                        return negative_errno();
        }
        return -EAGAIN;
}

static int conn_watch(void *userdata, const char *path, const char *token) {
        XsConnection *c = userdata;

        return xs_watch(c->xs, path, token) ? 0 : negative_errno();
}

static int conn_unwatch(void *userdata, const char *path, const char *token) {
        XsConnection *c = userdata;

        return xs_unwatch(c->xs, path, token) ? 0 : negative_errno();
}

static bool conn_domain_introduced(void *userdata, uint32_t domid) {
        XsConnection *c = userdata;

        return xs_is_domain_introduced(c->xs, domid);
}

const XsOps xs_connection_ops = {
        .read = conn_read,
        .directory = conn_directory,
        .write = conn_write,
        .write_guarded = conn_write_guarded,
        .watch = conn_watch,
        .unwatch = conn_unwatch,
        .domain_introduced = conn_domain_introduced,
};

int xs_connection_open(XsConnection **ret) {
        XsConnection *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->xs = xs_open(0);
        if (!c->xs) {
                int r = negative_errno();
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

XsConnection *xs_connection_close(XsConnection *c) {
        if (!c)
                return NULL;
        xs_close(c->xs);
        free(c);
        return NULL;
}

int xs_connection_fd(XsConnection *c) {
        return xs_fileno(c->xs);
}

int xs_connection_dispatch(XsConnection *c, void (*fn)(void *userdata, const char *path, const char *token),
                           void *userdata) {
        char **vec;

        /* xs_check_watch does not block. */
        while ((vec = xs_check_watch(c->xs))) {
                fn(userdata, vec[XS_WATCH_PATH], vec[XS_WATCH_TOKEN]);
                free(vec);
        }
        return errno == EAGAIN ? 0 : negative_errno();
}
