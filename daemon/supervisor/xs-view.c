/* SPDX-License-Identifier: BSD-3-Clause */
/* The xenstore view: paths of a vtpm device, its reads into a DevView and its writes (xs-view.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "parse.h"
#include "util.h"
#include "xs-view.h"

/* Every path here is a few fixed words and three numbers. */
#define XS_PATH_MAX 160

struct XsView {
        const XsOps *ops;
        void *userdata;
        uint32_t self_domid;
        char be_root[64]; /* /local/domain/<self>/backend/vtpm */
};

int xs_view_new(uint32_t self_domid, const XsOps *ops, void *userdata, XsView **ret) {
        XsView *x = calloc(1, sizeof(*x));

        if (!x)
                return -ENOMEM;
        *x = (XsView){ .ops = ops, .userdata = userdata, .self_domid = self_domid };
        snprintf(x->be_root, sizeof(x->be_root), "/local/domain/%" PRIu32 "/backend/vtpm", self_domid);
        *ret = x;
        return 0;
}

XsView *xs_view_free(XsView *x) {
        free(x);
        return NULL;
}

const char *xs_view_backend_root(XsView *x) {
        return x->be_root;
}

static void be_path(XsView *x, uint32_t domid, uint32_t devid, char path[XS_PATH_MAX]) {
        snprintf(path, XS_PATH_MAX, "%s/%" PRIu32 "/%" PRIu32, x->be_root, domid, devid);
}

static void fe_path(uint32_t domid, uint32_t devid, char path[XS_PATH_MAX]) {
        snprintf(path, XS_PATH_MAX, "/local/domain/%" PRIu32 "/device/vtpm/%" PRIu32, domid, devid);
}

static void fe_token(uint32_t domid, uint32_t devid, char token[XS_PATH_MAX]) {
        snprintf(token, XS_PATH_MAX, "fe/%" PRIu32 "/%" PRIu32, domid, devid);
}

static void error_path(XsView *x, uint32_t domid, uint32_t devid, char path[XS_PATH_MAX]) {
        snprintf(path, XS_PATH_MAX, "/local/domain/%" PRIu32 "/error/backend/vtpm/%" PRIu32 "/%" PRIu32 "/error",
                 x->self_domid, domid, devid);
}

static char *read_key(XsView *x, const char *dir, const char *key) {
        char path[XS_PATH_MAX + 32];

        snprintf(path, sizeof(path), "%s/%s", dir, key);
        return x->ops->read(x->userdata, path);
}

/* -1 when missing or not a number within [0, max]. */
static int read_int(XsView *x, const char *dir, const char *key, uint32_t max) {
        _cleanup_free_ char *s = read_key(x, dir, key);
        uint32_t v;

        if (!s || parse_u32_max(s, max, &v) < 0)
                return -1;
        return (int) v;
}

static bool exists(XsView *x, const char *path) {
        _cleanup_free_ char *s = x->ops->read(x->userdata, path);
        return s != NULL;
}

int xs_view_watch_backends(XsView *x) {
        int r = x->ops->watch(x->userdata, x->be_root, "be");

        if (r >= 0)
                r = x->ops->watch(x->userdata, "@releaseDomain", "rel");
        return r;
}

int xs_view_watch_frontend(XsView *x, uint32_t domid, uint32_t devid) {
        char path[XS_PATH_MAX], token[XS_PATH_MAX];

        fe_path(domid, devid, path);
        fe_token(domid, devid, token);
        return x->ops->watch(x->userdata, path, token);
}

void xs_view_unwatch_frontend(XsView *x, uint32_t domid, uint32_t devid) {
        char path[XS_PATH_MAX], token[XS_PATH_MAX];

        fe_path(domid, devid, path);
        fe_token(domid, devid, token);
        (void) x->ops->unwatch(x->userdata, path, token);
}

/* <be_root>/<domid>/<devid>[/...] */
static int parse_dev_path(XsView *x, const char *path, uint32_t *domid, uint32_t *devid) {
        size_t n = strlen(x->be_root);
        char buf[64];
        const char *p, *slash;

        if (strncmp(path, x->be_root, n) != 0 || path[n] != '/')
                return -EINVAL;
        p = path + n + 1;
        slash = strchr(p, '/');
        if (!slash || (size_t) (slash - p) >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, p, (size_t) (slash - p));
        buf[slash - p] = '\0';
        if (parse_u32_max(buf, UINT16_MAX, domid) < 0)
                return -EINVAL;
        p = slash + 1;
        slash = strchr(p, '/');
        n = slash ? (size_t) (slash - p) : strlen(p);
        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return parse_u32_max(buf, INT32_MAX, devid);
}

XsEvent xs_view_parse_watch(XsView *x, const char *path, const char *token, uint32_t *ret_domid,
                            uint32_t *ret_devid) {
        uint32_t domid, devid;

        if (streq(token, "be")) {
                if (streq(path, x->be_root) || parse_dev_path(x, path, &domid, &devid) < 0)
                        return XS_EVENT_SCAN;
        } else if (streq(token, "rel"))
                return XS_EVENT_RELEASED;
        else if (sscanf(token, "fe/%" SCNu32 "/%" SCNu32, &domid, &devid) != 2)
                return XS_EVENT_NONE;
        *ret_domid = domid;
        *ret_devid = devid;
        return XS_EVENT_DEVICE;
}

bool xs_view_backend_exists(XsView *x, uint32_t domid, uint32_t devid) {
        char path[XS_PATH_MAX];

        be_path(x, domid, devid, path);
        return exists(x, path);
}

bool xs_view_domain_introduced(XsView *x, uint32_t domid) {
        return x->ops->domain_introduced(x->userdata, domid);
}

void xs_view_for_each_device(XsView *x, void (*fn)(void *userdata, uint32_t domid, uint32_t devid), void *userdata) {
        unsigned ndom = 0;
        _cleanup_free_ char **doms = x->ops->directory(x->userdata, x->be_root, &ndom);

        for (unsigned i = 0; doms && i < ndom; i++) {
                char path[XS_PATH_MAX];
                unsigned ndev = 0;
                uint32_t domid;
                _cleanup_free_ char **devs = NULL;

                if (parse_u32_max(doms[i], UINT16_MAX, &domid) < 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", x->be_root, doms[i]);
                devs = x->ops->directory(x->userdata, path, &ndev);
                for (unsigned j = 0; devs && j < ndev; j++) {
                        uint32_t devid;
                        if (parse_u32_max(devs[j], INT32_MAX, &devid) >= 0)
                                fn(userdata, domid, devid);
                }
        }
}

/* The frontend's ring and protocol, when its dir exists. */
static void read_frontend(XsView *x, const char *fe, DevView *v) {
        _cleanup_free_ char *ring = read_key(x, fe, "ring-ref");
        _cleanup_free_ char *port = read_key(x, fe, "event-channel");
        _cleanup_free_ char *proto = read_key(x, fe, "feature-protocol-v2");
        uint32_t rv, pv;

        if (ring && parse_u32(ring, &rv) >= 0 && port && parse_u32(port, &pv) >= 0) {
                v->ring_valid = true;
                v->ring_ref = rv;
                v->evtchn = pv;
        }
        v->fe_protocol_v2 = proto && streq(proto, "1");
}

int xs_view_read_device(XsView *x, uint32_t domid, uint32_t devid, uint64_t now_ns, DevView *ret,
                        char ret_uuid[IPC_UUID_LEN], char *error, size_t error_size) {
        char be[XS_PATH_MAX], fe[XS_PATH_MAX];
        _cleanup_free_ char *frontend = NULL, *uuid = NULL;
        DevView v = { .now_ns = now_ns, .online = -1, .be_state = -1, .fe_state = -1 };
        int feid;

        be_path(x, domid, devid, be);
        fe_path(domid, devid, fe);
        v.be_state = read_int(x, be, "state", 255);
        if (v.be_state < 0 && !exists(x, be)) {
                *ret = v; /* backend_present = false */
                return 0;
        }
        v.backend_present = true;
        v.online = read_int(x, be, "online", 1);

        frontend = read_key(x, be, "frontend");
        feid = read_int(x, be, "frontend-id", UINT16_MAX);
        uuid = read_key(x, be, "uuid");
        if (!frontend || !uuid || v.be_state < 0)
                return -EAGAIN;

        if (!streq(frontend, fe)) {
                snprintf(error, error_size, "backend key frontend=\"%.64s\" is not %s", frontend, fe);
                v.config_error = error;
        } else if (feid < 0 || (uint32_t) feid != domid) {
                snprintf(error, error_size, "backend key frontend-id does not match domain %" PRIu32, domid);
                v.config_error = error;
        } else if (parse_uuid(uuid, ret_uuid) < 0) {
                snprintf(error, error_size, "backend key uuid=\"%.40s\" is not a UUID", uuid);
                v.config_error = error;
        }

        v.fe_state = read_int(x, fe, "state", 255);
        v.frontend_present = v.fe_state >= 0 || exists(x, fe);
        if (v.frontend_present)
                read_frontend(x, fe, &v);
        *ret = v;
        return 0;
}

int xs_view_write_backend(XsView *x, uint32_t domid, uint32_t devid, bool feature_v2, int state) {
        char be[XS_PATH_MAX], guard[XS_PATH_MAX + 8], feature[XS_PATH_MAX + 32], value[16];
        XsWrite w[2];
        size_t n = 0;

        be_path(x, domid, devid, be);
        snprintf(guard, sizeof(guard), "%s/state", be);
        if (feature_v2) {
                snprintf(feature, sizeof(feature), "%s/feature-protocol-v2", be);
                w[n++] = (XsWrite){ feature, "1" };
        }
        if (state >= 0) {
                snprintf(value, sizeof(value), "%d", state);
                w[n++] = (XsWrite){ guard, value };
        }
        return x->ops->write_guarded(x->userdata, guard, w, n);
}

int xs_view_write_error(XsView *x, uint32_t domid, uint32_t devid, int code, const char *text) {
        char path[XS_PATH_MAX], value[512];

        error_path(x, domid, devid, path);
        snprintf(value, sizeof(value), "%d %s", code, text);
        return x->ops->write(x->userdata, path, value);
}

int xs_view_read_domain_name(XsView *x, uint32_t domid, char *buf, size_t size) {
        char path[XS_PATH_MAX];
        _cleanup_free_ char *s = NULL;

        snprintf(path, sizeof(path), "/local/domain/%" PRIu32 "/name", domid);
        s = x->ops->read(x->userdata, path);
        if (!s)
                return -ENOENT;
        if (!ctl_guest_name_valid(s) || strlen(s) >= size)
                return -EINVAL;
        memcpy(buf, s, strlen(s) + 1);
        return 0;
}

char *xs_view_read_error(XsView *x, uint32_t domid, uint32_t devid) {
        char path[XS_PATH_MAX];

        error_path(x, domid, devid, path);
        return x->ops->read(x->userdata, path);
}
