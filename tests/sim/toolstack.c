/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libxl's vtpm choreography on the simulated host. Function names point at the
 * libxl function each one models (Xen RELEASE-4.17.0, tools/libs/light).
 */
#include "../common/testlib.h"
#include "toolstack.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "domain.h"
#include "parse.h"
#include "statefile.h"
#include "util.h"

#define XENBUS_STATE_INITIALISING 1
#define XENBUS_STATE_INIT_WAIT 2
#define XENBUS_STATE_CLOSING 5
#define XENBUS_STATE_CLOSED 6

static inline void xs_freevp(char ***p) {
        free(*p);
}
#define _cleanup_xsvec_ _cleanup_(xs_freevp)

_printf_(2, 3) static void ts_error(Toolstack *t, const char *fmt, ...) {
        FILE *f = t->log ?: stderr;
        va_list ap;

        fputs("libxl: error: ", f);
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fflush(f);
}

#define pathf strprintf

int toolstack_timeout_scale_from_env(double *ret) {
        const char *e = getenv("VTPM_SIM_TIMEOUT_SCALE");
        char *end;
        double v;

        if (!e || !*e) {
                *ret = 1.0;
                return 0;
        }
        errno = 0;
        v = strtod(e, &end);
        if (errno != 0 || *end || !isfinite(v) || v <= 0 || v > 1000)
                return -EINVAL;
        *ret = v;
        return 0;
}

int toolstack_open(const char *xenstored_path, const char *sim_dir, double timeout_scale,
                   Toolstack **ret) {
        _cleanup_free_ char *spec = NULL;
        Toolstack *t;
        int r;

        if (!(timeout_scale > 0))
                return -EINVAL;
        /* libxenstore takes the socket path only from the environment. */
        if (xenstored_path && setenv("XENSTORED_PATH", xenstored_path, 1) < 0)
                return negative_errno();

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->init_timeout_ms = (unsigned) (TOOLSTACK_INIT_TIMEOUT_MS * timeout_scale);
        t->destroy_timeout_ms = (unsigned) (TOOLSTACK_DESTROY_TIMEOUT_MS * timeout_scale);
        t->suspend_ack_timeout_ms = (unsigned) (TOOLSTACK_SUSPEND_ACK_TIMEOUT_MS * timeout_scale);
        t->suspend_timeout_ms = (unsigned) (TOOLSTACK_SUSPEND_TIMEOUT_MS * timeout_scale);

        t->xs = xs_open(0);
        if (!t->xs) {
                r = negative_errno();
                toolstack_free(t);
                return r;
        }
        if (sim_dir) {
                if (asprintf(&spec, "sim:%s", sim_dir) < 0) {
                        toolstack_free(t);
                        return -ENOMEM;
                }
                r = platform_parse(spec, 0, &t->platform);
                if (r < 0) {
                        toolstack_free(t);
                        return r;
                }
        }
        *ret = t;
        return 0;
}

Toolstack *toolstack_free(Toolstack *t) {
        if (!t)
                return NULL;
        if (t->xs)
                xs_close(t->xs);
        platform_free(t->platform);
        free(t);
        return NULL;
}

int toolstack_read_state(Toolstack *t, const char *path, int *ret) {
        _cleanup_free_ char *v = NULL;
        unsigned len;
        uint32_t s;

        v = xs_read(t->xs, XBT_NULL, path, &len);
        if (!v)
                return negative_errno();
        if (parse_u32_max(v, 255, &s) < 0)
                return -EINVAL;
        *ret = (int) s;
        return 0;
}

static bool xs_write_str(Toolstack *t, xs_transaction_t tx, const char *path, const char *v) {
        return xs_write(t->xs, tx, path, v, strlen(v));
}

/* libxl__xs_path_cleanup: remove path, then every parent that has become an
 * empty valueless directory. */
static int path_cleanup(Toolstack *t, xs_transaction_t tx, const char *path) {
        _cleanup_free_ char *p = strdup(path);
        char *last;

        if (!p)
                return -ENOMEM;
        if (!xs_rm(t->xs, tx, p))
                return negative_errno();
        while ((last = strrchr(p, '/'))) {
                _cleanup_free_ char *val = NULL;
                _cleanup_xsvec_ char **children = NULL;
                unsigned len, n;

                *last = '\0';
                if (!*p)
                        break;
                val = xs_read(t->xs, tx, p, &len);
                if (!val || len != 0)
                        break;
                children = xs_directory(t->xs, tx, p, &n);
                if (!children || n != 0)
                        break;
                if (!xs_rm(t->xs, tx, p))
                        return errno == ENOENT ? 0 : negative_errno();
        }
        return 0;
}

/* Ends a transaction: 0 committed, -EAGAIN retry, other errors. */
static int tx_end(Toolstack *t, xs_transaction_t tx, bool abort_it) {
        if (xs_transaction_end(t->xs, tx, abort_it))
                return 0;
        return negative_errno();
}

static int mknod_perms(Toolstack *t, xs_transaction_t tx, const char *path,
                       struct xs_permissions *perms, unsigned n) {
        if (!xs_write(t->xs, tx, path, "", 0))
                return negative_errno();
        if (!xs_set_permissions(t->xs, tx, path, perms, n))
                return negative_errno();
        return 0;
}

int toolstack_domain_create(Toolstack *t, uint32_t domid, const char *name,
                            const char *domain_uuid) {
        _cleanup_free_ char *dom = NULL, *vm = NULL, *lx = NULL;
        /* libxl__domain_make: noperm, roperm, rwperm. */
        struct xs_permissions noperm[1] = { { .id = 0, .perms = XS_PERM_NONE } };
        struct xs_permissions roperm[2] = {
                { .id = 0, .perms = XS_PERM_NONE },
                { .id = domid, .perms = XS_PERM_READ },
        };
        struct xs_permissions rwperm[1] = { { .id = domid, .perms = XS_PERM_NONE } };
        static const char *const ro_dirs[] = { "cpu", "memory", "device", "control" };
        static const char *const rw_dirs[] = {
                "device/suspend/event-channel", "control/shutdown",
                "control/feature-poweroff", "control/feature-reboot",
                "control/feature-suspend", "control/sysrq", "data", "drivers",
                "feature", "attr", "error",
        };
        char buf[32];
        int r;

        if (domid == 0 || domid >= 0x7FF0 || !name || !domain_uuid)
                return -EINVAL;
        dom = pathf("/local/domain/%u", domid);
        vm = pathf("/vm/%s", domain_uuid);
        lx = pathf("/libxl/%u", domid);
        if (!dom || !vm || !lx)
                return -ENOMEM;

        /* xc_domain_create comes first in libxl: the hypervisor knows the
         * domain (and its handle) before xenstore does. */
        if (t->platform) {
                DomainInfo info = { .shutdown = false };

                if (statefile_uuid_from_string(domain_uuid, info.handle) < 0)
                        return -EINVAL;
                r = domain_sim_set(t->platform, domid, &info);
                if (r < 0)
                        return r;
        }

        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);

                if (tx == XBT_NULL)
                        return negative_errno();
                xs_rm(t->xs, tx, dom);
                r = mknod_perms(t, tx, dom, roperm, ELEMENTSOF(roperm));
                if (r >= 0) {
                        xs_rm(t->xs, tx, vm);
                        r = mknod_perms(t, tx, vm, roperm, ELEMENTSOF(roperm));
                }
                if (r >= 0) {
                        _cleanup_free_ char *lxdev = pathf("%s/device", lx);

                        xs_rm(t->xs, tx, lx);
                        r = lxdev ? mknod_perms(t, tx, lx, noperm, 1) : -ENOMEM;
                        if (r >= 0)
                                r = mknod_perms(t, tx, lxdev, noperm, 1);
                }
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(ro_dirs); i++) {
                        _cleanup_free_ char *p = pathf("%s/%s", dom, ro_dirs[i]);
                        r = p ? mknod_perms(t, tx, p, roperm, ELEMENTSOF(roperm)) : -ENOMEM;
                }
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(rw_dirs); i++) {
                        _cleanup_free_ char *p = pathf("%s/%s", dom, rw_dirs[i]);
                        r = p ? mknod_perms(t, tx, p, rwperm, ELEMENTSOF(rwperm)) : -ENOMEM;
                }
                if (r >= 0) {
                        /* libxl__domain_rename writes the name in both places. */
                        _cleanup_free_ char *dvm = pathf("%s/vm", dom);
                        _cleanup_free_ char *dname = pathf("%s/name", dom);
                        _cleanup_free_ char *vname = pathf("%s/name", vm);
                        _cleanup_free_ char *vuuid = pathf("%s/uuid", vm);
                        _cleanup_free_ char *ddomid = pathf("%s/domid", dom);
                        _cleanup_free_ char *ltype = pathf("%s/type", lx);

                        snprintf(buf, sizeof(buf), "%u", domid);
                        if (!dvm || !dname || !vname || !vuuid || !ddomid || !ltype)
                                r = -ENOMEM;
                        else if (!xs_write_str(t, tx, dvm, vm) ||
                                 !xs_write_str(t, tx, dname, name) ||
                                 !xs_write_str(t, tx, vname, name) ||
                                 !xs_write_str(t, tx, vuuid, domain_uuid) ||
                                 !xs_write_str(t, tx, ltype, "pv") ||
                                 /* libxl__build_post, a separate transaction in libxl */
                                 !xs_write_str(t, tx, ddomid, buf))
                                r = negative_errno();
                }
                if (r < 0) {
                        (void) tx_end(t, tx, true);
                        return r;
                }
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                break;
        }

        /* No real store ring exists; mfn and port are only recorded by xenstored. */
        if (!xs_introduce_domain(t->xs, domid, 0, 1))
                return negative_errno();
        return 0;
}

static int dir_u32_list(Toolstack *t, const char *path, uint32_t **ret, size_t *ret_n) {
        _cleanup_xsvec_ char **ents = NULL;
        _cleanup_free_ uint32_t *ids = NULL;
        unsigned n = 0;
        size_t k = 0;

        ents = xs_directory(t->xs, XBT_NULL, path, &n);
        if (!ents && errno != ENOENT)
                return negative_errno();
        if (n > 0) {
                ids = calloc(n, sizeof(*ids));
                if (!ids)
                        return -ENOMEM;
        }
        for (unsigned i = 0; i < n; i++) {
                uint32_t v;

                if (parse_u32(ents[i], &v) < 0)
                        continue;
                size_t j = k;
                while (j > 0 && ids[j - 1] > v) {
                        ids[j] = ids[j - 1];
                        j--;
                }
                ids[j] = v;
                k++;
        }
        *ret = TAKE_PTR(ids);
        *ret_n = k;
        return 0;
}

int toolstack_vtpm_list(Toolstack *t, uint32_t domid, uint32_t **ret_devids, size_t *ret_n) {
        _cleanup_free_ char *p = pathf("/libxl/%u/device/vtpm", domid);

        if (!p)
                return -ENOMEM;
        return dir_u32_list(t, p, ret_devids, ret_n);
}

/* libxl__ev_devstate_wait: watch the node, and on every event (the first one
 * is the watch's own initial fire) read it; done when it reads exactly
 * `want`. A removed node ends the wait with -ENOENT (libxl: ERROR_INVAL). */
static int wait_state(Toolstack *t, const char *path, int want, unsigned timeout_ms, int *ret_last) {
        char token[48];
        uint64_t deadline = now_ms() + timeout_ms;
        int last = -1, r = -ETIMEDOUT;
        struct pollfd pfd;

        snprintf(token, sizeof(token), "toolstack-wait-%u", ++t->watch_seq);
        if (!xs_watch(t->xs, path, token))
                return negative_errno();
        pfd = (struct pollfd) { .fd = xs_fileno(t->xs), .events = POLLIN };
        if (pfd.fd < 0) {
                r = -EIO;
                goto out;
        }

        for (;;) {
                char **ev;
                bool changed = false;
                uint64_t now;

                while ((ev = xs_check_watch(t->xs))) {
                        if (streq(ev[XS_WATCH_TOKEN], token))
                                changed = true;
                        free(ev);
                }
                if (changed) {
                        int s, q = toolstack_read_state(t, path, &s);

                        if (q == -ENOENT) {
                                r = -ENOENT;
                                goto out;
                        }
                        if (q >= 0) {
                                last = s;
                                if (s == want) {
                                        r = 0;
                                        goto out;
                                }
                        }
                }
                now = now_ms();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        goto out;
                }
                if (poll(&pfd, 1, (int) (deadline - now)) < 0 && errno != EINTR) {
                        r = negative_errno();
                        goto out;
                }
        }
out:
        (void) xs_unwatch(t->xs, path, token);
        if (ret_last)
                *ret_last = last;
        return r;
}

int toolstack_vtpm_add(Toolstack *t, uint32_t domid, const char *vtpm_uuid, uint32_t *ret_devid) {
        _cleanup_free_ uint32_t *ids = NULL;
        _cleanup_free_ char *fe = NULL, *be = NULL, *lx = NULL, *state = NULL;
        char devid_s[16], domid_s[16];
        uint32_t devid;
        size_t n;
        int r, last;

        if (domid == 0 || !vtpm_uuid)
                return -EINVAL;
        /* libxl__device_nextid: one more than the last existing entry. */
        r = toolstack_vtpm_list(t, domid, &ids, &n);
        if (r < 0)
                return r;
        devid = n > 0 ? ids[n - 1] + 1 : 0;
        snprintf(devid_s, sizeof(devid_s), "%u", devid);
        snprintf(domid_s, sizeof(domid_s), "%u", domid);

        fe = pathf("/local/domain/%u/device/vtpm/%u", domid, devid);
        be = pathf("/local/domain/0/backend/vtpm/%u/%u", domid, devid);
        lx = pathf("/libxl/%u/device/vtpm/%u", domid, devid);
        state = pathf("%s/state", be);
        if (!fe || !be || !lx || !state)
                return -ENOMEM;

        /* libxl__device_generic_add's permissions. */
        struct xs_permissions fe_perms[2] = {
                { .id = domid, .perms = XS_PERM_NONE },
                { .id = 0, .perms = XS_PERM_READ },
        };
        struct xs_permissions be_perms[2] = {
                { .id = 0, .perms = XS_PERM_NONE },
                { .id = domid, .perms = XS_PERM_READ },
        };
        /* libxl__device_add_async common keys, then libxl__set_xenstore_vtpm. */
        const char *bents[][2] = {
                { "frontend-id", domid_s }, { "online", "1" }, { "state", "1" },
                { "handle", devid_s }, { "uuid", vtpm_uuid }, { "resume", "False" },
        };
        const char *fents[][2] = { { "backend-id", "0" }, { "state", "1" }, { "handle", devid_s } };

        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);
                _cleanup_free_ char *exists = NULL;
                unsigned len;

                if (tx == XBT_NULL)
                        return negative_errno();
                /* libxl__device_exists */
                exists = xs_read(t->xs, tx, be, &len);
                if (exists) {
                        (void) tx_end(t, tx, true);
                        ts_error(t, "device already exists in xenstore");
                        return -EEXIST;
                }

                r = 0;
                xs_rm(t->xs, tx, lx);
                {
                        _cleanup_free_ char *a = pathf("%s/frontend", lx), *b = pathf("%s/backend", lx);
                        if (!a || !b)
                                r = -ENOMEM;
                        else if (!xs_write_str(t, tx, a, fe) || !xs_write_str(t, tx, b, be))
                                r = negative_errno();
                }
                /* Frontend dir, owned by the guest. */
                if (r >= 0) {
                        _cleanup_free_ char *a = pathf("%s/backend", fe);

                        xs_rm(t->xs, tx, fe);
                        if (!a)
                                r = -ENOMEM;
                        else if (!xs_mkdir(t->xs, tx, fe) ||
                                 !xs_set_permissions(t->xs, tx, fe, fe_perms, 2) ||
                                 !xs_write_str(t, tx, a, be))
                                r = negative_errno();
                }
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(fents); i++) {
                        _cleanup_free_ char *a = pathf("%s/%s", fe, fents[i][0]);
                        if (!a)
                                r = -ENOMEM;
                        else if (!xs_write_str(t, tx, a, fents[i][1]) ||
                                 !xs_set_permissions(t->xs, tx, a, fe_perms, 2))
                                r = negative_errno();
                }
                /* Backend dir, owned by dom0 (the backend domain). */
                if (r >= 0) {
                        _cleanup_free_ char *a = pathf("%s/frontend", be);

                        xs_rm(t->xs, tx, be);
                        if (!a)
                                r = -ENOMEM;
                        else if (!xs_mkdir(t->xs, tx, be) ||
                                 !xs_set_permissions(t->xs, tx, be, be_perms, 2) ||
                                 !xs_write_str(t, tx, a, fe))
                                r = negative_errno();
                }
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(bents); i++) {
                        _cleanup_free_ char *a = pathf("%s/%s", be, bents[i][0]);
                        _cleanup_free_ char *b = pathf("%s/%s", lx, bents[i][0]);
                        if (!a || !b)
                                r = -ENOMEM;
                        else if (!xs_write_str(t, tx, a, bents[i][1]) ||
                                 !xs_write_str(t, tx, b, bents[i][1]))
                                r = negative_errno();
                }
                if (r < 0) {
                        (void) tx_end(t, tx, true);
                        return r;
                }
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                if (r < 0)
                        return r;
                break;
        }

        /* libxl__wait_device_connection */
        r = wait_state(t, state, XENBUS_STATE_INIT_WAIT, t->init_timeout_ms, &last);
        if (r == -ETIMEDOUT) {
                ts_error(t, "timed out waiting for backend InitWait (state 2) on %s (last state %d)",
                         state, last);
                ts_error(t, "unable to add device with path %s", be);
        } else if (r == -ENOENT)
                ts_error(t, "backend %s wanted state 2 but it was removed", state);
        else if (r < 0)
                ts_error(t, "unable to initialize device %s: %s", be, strerror(-r));
        if (r >= 0 || r == -ETIMEDOUT || r == -ENOENT) {
                if (ret_devid)
                        *ret_devid = devid;
        }
        return r;
}

/* libxl__device_destroy with dom0 as toolstack and backend domain. */
static int device_destroy(Toolstack *t, const char *fe, const char *be, const char *lx) {
        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);
                int r;

                if (tx == XBT_NULL)
                        return negative_errno();
                (void) path_cleanup(t, tx, fe);
                (void) path_cleanup(t, tx, lx);
                (void) path_cleanup(t, tx, be);
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                return r;
        }
}

/* libxl__initiate_device_generic_remove, one attempt. Returns 1 if the backend
 * state node is missing (nothing to wait for). */
static int remove_initiate(Toolstack *t, const char *fe, const char *be_state,
                           const char *be_online, bool force) {
        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);
                _cleanup_free_ char *st = NULL;
                unsigned len;
                uint32_t s = 0;
                int r;

                if (tx == XBT_NULL)
                        return negative_errno();
                if (force)
                        (void) path_cleanup(t, tx, fe);
                st = xs_read(t->xs, tx, be_state, &len);
                if (!st) {
                        r = errno == ENOENT ? 1 : negative_errno();
                        (void) tx_end(t, tx, r < 0);
                        return r;
                }
                if (!xs_write_str(t, tx, be_online, "0")) {
                        r = negative_errno();
                        (void) tx_end(t, tx, true);
                        return r;
                }
                /* libxl uses atoi(): anything unparsable counts as "not Closed". */
                (void) parse_u32(st, &s);
                if (s != XENBUS_STATE_CLOSED && !xs_write_str(t, tx, be_state, "5")) {
                        r = negative_errno();
                        (void) tx_end(t, tx, true);
                        return r;
                }
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                return r;
        }
}

int toolstack_vtpm_remove(Toolstack *t, uint32_t domid, uint32_t devid, bool force) {
        _cleanup_free_ char *fe = NULL, *be = NULL, *lx = NULL, *be_state = NULL, *be_online = NULL;
        _cleanup_free_ char *lxbe = NULL, *cur_be = NULL;
        unsigned len;
        int r, last;

        lx = pathf("/libxl/%u/device/vtpm/%u", domid, devid);
        lxbe = pathf("%s/backend", lx);
        fe = pathf("/local/domain/%u/device/vtpm/%u", domid, devid);
        if (!lx || !lxbe || !fe)
                return -ENOMEM;
        /* libxl finds the device through its own copy of the backend path. */
        cur_be = xs_read(t->xs, XBT_NULL, lxbe, &len);
        if (!cur_be)
                return errno == ENOENT ? -ENOENT : negative_errno();
        be = strdup(cur_be);
        be_state = pathf("%s/state", be);
        be_online = pathf("%s/online", be);
        if (!be || !be_state || !be_online)
                return -ENOMEM;

        r = remove_initiate(t, fe, be_state, be_online, force);
        if (r == 1) {
                /* "backend already removed, cleanup frontend only" */
                r = 0;
                goto destroy;
        }
        if (r < 0) {
                ts_error(t, "unable to remove device %s: %s", be, strerror(-r));
                if (force)
                        goto destroy;
                return r;
        }

        r = wait_state(t, be_state, XENBUS_STATE_CLOSED, t->destroy_timeout_ms, &last);
        if (r == -ETIMEDOUT && !force) {
                /* device_backend_callback: FORCE_AUTO timed out, go again with force. */
                force = true;
                r = remove_initiate(t, fe, be_state, be_online, true);
                if (r == 1) {
                        r = 0;
                        goto destroy;
                }
                if (r >= 0)
                        r = wait_state(t, be_state, XENBUS_STATE_CLOSED, t->destroy_timeout_ms, &last);
        }
        if (r == -ETIMEDOUT)
                ts_error(t, "timed out waiting for backend Closed (state 6) on %s (last state %d)",
                         be_state, last);
        if (r < 0)
                ts_error(t, "unable to remove device with path %s", be);
        if (r < 0 && !force)
                return r;

destroy:
        /* device_hotplug_done: clean xenstore when forced or successful. */
        {
                int q = device_destroy(t, fe, be, lx);
                if (r >= 0)
                        r = q;
        }
        return r;
}

int toolstack_domain_destroy(Toolstack *t, uint32_t domid) {
        _cleanup_free_ uint32_t *ids = NULL;
        _cleanup_free_ char *dom = NULL, *lx = NULL, *vmkey = NULL, *vm = NULL;
        unsigned len;
        size_t n = 0;
        int r = 0, q;

        if (domid == 0)
                return -EINVAL;
        dom = pathf("/local/domain/%u", domid);
        lx = pathf("/libxl/%u", domid);
        vmkey = pathf("/local/domain/%u/vm", domid);
        if (!dom || !lx || !vmkey)
                return -ENOMEM;

        /* libxl__devices_destroy with LIBXL__FORCE_ON. */
        q = toolstack_vtpm_list(t, domid, &ids, &n);
        if (q < 0)
                r = q;
        for (size_t i = 0; i < n; i++) {
                q = toolstack_vtpm_remove(t, domid, ids[i], true);
                if (q < 0 && r >= 0)
                        r = q;
        }
        if (r < 0)
                ts_error(t, "libxl__devices_destroy failed for domain %u", domid);

        /* devices_destroy_cb */
        vm = xs_read(t->xs, XBT_NULL, vmkey, &len);
        if (vm && !xs_rm(t->xs, XBT_NULL, vm))
                ts_error(t, "xs_rm failed for %s: %m", vm);
        if (!xs_rm(t->xs, XBT_NULL, dom)) {
                ts_error(t, "xs_rm failed for %s: %m", dom);
                if (r >= 0)
                        r = negative_errno();
        }
        (void) xs_rm(t->xs, XBT_NULL, lx);

        /* xc_domain_destroy: the hypervisor closes the domain's ports and
         * revokes its grants, then xenstored releases it. */
        if (t->platform) {
                q = platform_sim_destroy_domain(t->platform, domid);
                if (q < 0) {
                        ts_error(t, "destroying domain %u's event channels and grants: %s",
                                 domid, strerror(-q));
                        if (r >= 0)
                                r = q;
                }
        }
        if (!xs_release_domain(t->xs, domid)) {
                q = negative_errno();
                ts_error(t, "xs_release_domain(%u): %s", domid, strerror(-q));
                if (r >= 0)
                        r = q;
        }
        return r;
}

/* Aborts the transaction after a failed call; returns that call's -errno. */
static int tx_fail(Toolstack *t, xs_transaction_t tx) {
        int r = negative_errno();

        (void) tx_end(t, tx, true);
        return r;
}

/* The condition loops below re-check every 10 ms until their deadline. */
static void tick(void) {
        struct timespec ts = { .tv_nsec = 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

int toolstack_domain_by_name(Toolstack *t, const char *name, uint32_t *ret_domid) {
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n = 0;
        int r;

        r = dir_u32_list(t, "/local/domain", &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = pathf("/local/domain/%u/name", ids[i]);
                _cleanup_free_ char *v = NULL;
                unsigned len;

                if (!p)
                        return -ENOMEM;
                v = xs_read(t->xs, XBT_NULL, p, &len);
                if (v && streq(v, name)) {
                        *ret_domid = ids[i];
                        return 0;
                }
        }
        return -ENOENT;
}

int toolstack_domain_rename(Toolstack *t, uint32_t domid, const char *old_name, const char *new_name) {
        _cleanup_free_ char *dname = pathf("/local/domain/%u/name", domid);
        _cleanup_free_ char *vmkey = pathf("/local/domain/%u/vm", domid);
        uint32_t other;
        int r;

        if (!dname || !vmkey)
                return -ENOMEM;
        if (!new_name || !*new_name)
                return -EINVAL;
        /* libxl__domain_rename: "domain with name found" unless it is us. */
        r = toolstack_domain_by_name(t, new_name, &other);
        if (r >= 0 && other != domid) {
                ts_error(t, "domain with name \"%s\" already exists.", new_name);
                return -EEXIST;
        }
        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);
                _cleanup_free_ char *cur = NULL, *vm = NULL, *vname = NULL;
                unsigned len;

                if (tx == XBT_NULL)
                        return negative_errno();
                cur = xs_read(t->xs, tx, dname, &len);
                vm = xs_read(t->xs, tx, vmkey, &len);
                if (!cur) {
                        r = errno == ENOENT ? -ENOENT : negative_errno();
                        (void) tx_end(t, tx, true);
                        ts_error(t, "domain %u: cannot read its name", domid);
                        return r;
                }
                if (old_name && !streq(cur, old_name)) {
                        (void) tx_end(t, tx, true);
                        ts_error(t, "domain %u renamed from \"%s\", but its name is \"%s\"", domid, old_name, cur);
                        return -EINVAL;
                }
                vname = vm ? pathf("%s/name", vm) : NULL;
                if (!xs_write_str(t, tx, dname, new_name) || (vname && !xs_write_str(t, tx, vname, new_name)))
                        return tx_fail(t, tx);
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                return r;
        }
}

/* libxl__xswait until path reads "" or is gone. */
static int wait_cleared(Toolstack *t, const char *path, unsigned timeout_ms) {
        char token[48];
        uint64_t deadline = now_ms() + timeout_ms;
        struct pollfd pfd = { .fd = xs_fileno(t->xs), .events = POLLIN };
        int r;

        snprintf(token, sizeof(token), "toolstack-wait-%u", ++t->watch_seq);
        if (pfd.fd < 0)
                return -EIO;
        if (!xs_watch(t->xs, path, token))
                return negative_errno();
        for (;;) {
                _cleanup_free_ char *v = NULL;
                char **ev;
                unsigned len;
                uint64_t now;

                while ((ev = xs_check_watch(t->xs)))
                        free(ev);
                v = xs_read(t->xs, XBT_NULL, path, &len);
                if (!v || !*v) {
                        r = 0;
                        break;
                }
                now = now_ms();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (poll(&pfd, 1, (int) (deadline - now)) < 0 && errno != EINTR) {
                        r = negative_errno();
                        break;
                }
        }
        (void) xs_unwatch(t->xs, path, token);
        return r;
}

/* domain_suspend_common_pvcontrol_suspending's timeout: withdraw the request
 * unless the guest took it meanwhile. 0 if it did, -ETIMEDOUT if withdrawn. */
static int suspend_withdraw(Toolstack *t, const char *path) {
        for (;;) {
                xs_transaction_t tx = xs_transaction_start(t->xs);
                _cleanup_free_ char *v = NULL;
                unsigned len;
                int r;

                if (tx == XBT_NULL)
                        return negative_errno();
                v = xs_read(t->xs, tx, path, &len);
                if (!v || !*v) {
                        (void) tx_end(t, tx, true);
                        return 0;
                }
                if (!xs_write_str(t, tx, path, ""))
                        return tx_fail(t, tx);
                r = tx_end(t, tx, false);
                if (r == -EAGAIN)
                        continue;
                return r < 0 ? r : -ETIMEDOUT;
        }
}

int toolstack_domain_suspend(Toolstack *t, uint32_t domid) {
        _cleanup_free_ char *path = pathf("/local/domain/%u/control/shutdown", domid);
        DomainCtl *dc = NULL;
        uint64_t deadline;
        int r;

        if (!path)
                return -ENOMEM;
        if (!t->platform)
                return -EOPNOTSUPP;
        /* libxl__domain_pvcontrol_write */
        if (!xs_write_str(t, XBT_NULL, path, "suspend")) {
                r = negative_errno();
                ts_error(t, "domain %u: cannot write %s: %s", domid, path, strerror(-r));
                return r;
        }
        r = wait_cleared(t, path, t->suspend_ack_timeout_ms);
        if (r == -ETIMEDOUT)
                r = suspend_withdraw(t, path);
        if (r == -ETIMEDOUT) {
                ts_error(t, "guest didn't acknowledge suspend, cancelling request");
                return r;
        }
        if (r < 0) {
                ts_error(t, "domain %u: waiting for the suspend acknowledgement: %s", domid, strerror(-r));
                return r;
        }

        /* suspend_common_wait_guest: xc_domain_getinfo until shut down. */
        r = domainctl_open(t->platform, &dc);
        if (r < 0)
                return r;
        deadline = now_ms() + t->suspend_timeout_ms;
        for (;;) {
                DomainInfo info;

                r = domainctl_info(dc, domid, &info);
                if (r >= 0 && info.shutdown) {
                        if (info.reason == DOMAIN_SHUTDOWN_SUSPEND)
                                break;
                        ts_error(t, "guest shut down for reason %s instead of suspending",
                                 domain_shutdown_to_string(info.reason));
                        r = -ESRCH;
                        break;
                }
                if (r < 0 && r != -ENOENT && r != -EBADMSG) {
                        ts_error(t, "domain %u: cannot read its state: %s", domid, strerror(-r));
                        break;
                }
                if (now_ms() >= deadline) {
                        ts_error(t, "guest did not suspend, timed out");
                        r = -ETIMEDOUT;
                        break;
                }
                tick();
        }
        domainctl_free(dc);
        return r < 0 ? r : 0;
}

/* One request line on the guest's control socket, one reply line back. */
static int guest_ctl_call(const char *guest_ctl, const char *request, unsigned timeout_ms, char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;
        uint64_t deadline = now_ms() + timeout_ms;
        char reply[256];
        size_t got = 0;

        if (strlen(guest_ctl) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, guest_ctl, strlen(guest_ctl) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return negative_errno();
        if (send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t) strlen(request))
                return -EIO;
        while (got < sizeof(reply) - 1 && !memchr(reply, '\n', got)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                uint64_t now = now_ms();
                ssize_t n;

                if (now >= deadline)
                        return -ETIMEDOUT;
                if (poll(&p, 1, (int) (deadline - now)) < 0 && errno != EINTR)
                        return negative_errno();
                if (!(p.revents & (POLLIN | POLLHUP)))
                        continue;
                n = read(fd, reply + got, sizeof(reply) - 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
        }
        reply[got] = '\0';
        reply[strcspn(reply, "\n")] = '\0';
        if (streq(reply, "ok"))
                return 0;
        if (ret_error)
                *ret_error = strdup(got > 0 ? reply : "no answer");
        return -EPROTO;
}

int toolstack_guest_resume(const char *guest_ctl, uint32_t domid, unsigned timeout_ms, char **ret_error) {
        char req[32];

        snprintf(req, sizeof(req), "resume %u\n", domid);
        return guest_ctl_call(guest_ctl, req, timeout_ms, ret_error);
}

int toolstack_guest_rename(const char *guest_ctl, const char *new_name, unsigned timeout_ms, char **ret_error) {
        _cleanup_free_ char *req = pathf("rename %s\n", new_name);

        if (!req)
                return -ENOMEM;
        if (strchr(new_name, '\n') || strchr(new_name, '/'))
                return -EINVAL;
        return guest_ctl_call(guest_ctl, req, timeout_ms, ret_error);
}

int toolstack_domain_resume(Toolstack *t, uint32_t domid, const char *guest_ctl) {
        _cleanup_free_ char *err = NULL;
        DomainCtl *dc = NULL;
        DomainInfo info;
        int r;

        if (!t->platform)
                return -EOPNOTSUPP;
        r = domainctl_open(t->platform, &dc);
        if (r < 0)
                return r;
        r = domainctl_info(dc, domid, &info);
        domainctl_free(dc);
        if (r < 0) {
                ts_error(t, "domain %u: cannot read its state: %s", domid, strerror(-r));
                return r;
        }
        /* xc_domain_resume(fast=1): the domain runs again where it stopped. */
        info.shutdown = false;
        r = domain_sim_set(t->platform, domid, &info);
        if (r < 0) {
                ts_error(t, "xc_domain_resume failed for domain %u: %s", domid, strerror(-r));
                return r;
        }
        r = toolstack_guest_resume(guest_ctl, domid, t->suspend_ack_timeout_ms, &err);
        if (r < 0)
                ts_error(t, "domain %u: the guest did not resume: %s", domid, err ?: strerror(-r));
        return r;
}
