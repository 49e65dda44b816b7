/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd-ctl's operations. Each one checks everything it can (UUID known, not
 * attached, file usable, blob well-formed and authentic) before it changes
 * anything on disk, so a refused request leaves the state root as it was.
 *
 * A running worker holds its vTPM directory's lock, so "attached" is decided
 * by the lock (statedir_open -EBUSY) as well as by the device table. Reads
 * for list/show must work while a worker holds the lock: they open the blobs
 * read-only through the state root instead of statedir_open.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "admin.h"
#include "clock.h"
#include "config.h"
#include "crypto.h"
#include "device.h"
#include "log.h"
#include "manufacture.h"
#include "state.h"
#include "statefile.h"
#include "statestore.h"
#include "util.h"
#include "vtpmd-config.h"
#include "workers.h"

_Static_assert((unsigned) CTL_EK_RSA2048 == (unsigned) MANUFACTURE_EK_RSA2048 &&
               (unsigned) CTL_EK_ECC_P256 == (unsigned) MANUFACTURE_EK_ECC_P256, "EK bits");
_Static_assert((unsigned) CTL_BANK_SHA1 == (unsigned) MANUFACTURE_BANK_SHA1 &&
               (unsigned) CTL_BANK_SHA256 == (unsigned) MANUFACTURE_BANK_SHA256 &&
               (unsigned) CTL_BANK_SHA384 == (unsigned) MANUFACTURE_BANK_SHA384 &&
               (unsigned) CTL_BANK_SHA512 == (unsigned) MANUFACTURE_BANK_SHA512, "bank bits");
_Static_assert(CTL_EXPORT_META_SIZE == STATE_META_SIZE, "meta size");
_Static_assert(CTL_EXPORT_MAX_PERMALL == STATEFILE_MAX_PAYLOAD, "permall size");

#define WAIT_POLL_USEC 20000ull
#define WAIT_LIMIT_NS (15ull * 1000000000ull)
/* destroy --force: how long a worker may take to save and exit before it is killed */
#define DESTROY_KILL_NS (5ull * 1000000000ull)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* result is borrowed: the caller still owns (and puts) it. */
static void finish(AdminCall *c, int error, const char *message, json_object *result) {
        c->timer = sd_event_source_disable_unref(c->timer);
        c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
        if (c->pcr_waiting)
                /* The worker's answer must not reach a call that is over. */
                workers_vtpm_command_cancel(c->ctx->workers, c);
        c->pcr_waiting = false;
        c->fd = safe_close(c->fd);
        ctl_request_done(&c->req);
        c->finish(c, error, message, result);
}

static void finish_errorf(AdminCall *c, int error, const char *fmt, ...) _printf_(3, 4);
static void finish_errorf(AdminCall *c, int error, const char *fmt, ...) {
        char buf[CTL_MAX_ERROR];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        finish(c, error, buf, NULL);
}

static void secret_freep(uint8_t **p, size_t n) {
        if (*p) {
                crypto_wipe(*p, n);
                free(*p);
                *p = NULL;
        }
}

/* ---- looking things up ---- */

/* The device using the vTPM (attached: a worker or an active phase), else any device naming it. */
static Device *device_of(const AdminContext *x, const char *uuid, bool *ret_active) {
        return devices_find_vtpm(x->devices, uuid, ret_active);
}

static bool vtpm_exists(const AdminContext *d, const char *uuid) {
        struct stat st;
        return fstatat(stateroot_fd(vtpm_state_root(d->state)), uuid, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               S_ISDIR(st.st_mode);
}

/* The data key and metadata of the vTPM in dir (and the metadata's bytes in
 * raw, if asked: export carries them); on failure *ret_what names the file. */
static int read_key_meta(const AdminContext *d, StateDir *dir, uint8_t data_key[CRYPTO_KEY_SIZE], StateMeta *ret_meta,
                         uint8_t raw[STATE_META_SIZE], const char **ret_what) {
        uint8_t *key = NULL, *meta = NULL;
        size_t key_len = 0, meta_len = 0;
        int r;

        *ret_what = "key";
        r = statedir_read(dir, STATE_KIND_DATA_KEY, vtpm_state_master_key(d->state), &key, &key_len, NULL);
        if (r >= 0 && key_len != CRYPTO_KEY_SIZE)
                r = -EBADMSG;
        if (r < 0)
                goto out;
        memcpy(data_key, key, CRYPTO_KEY_SIZE);
        *ret_what = "meta";
        r = statedir_read(dir, STATE_KIND_META, data_key, &meta, &meta_len, NULL);
        if (r >= 0)
                r = state_meta_parse(meta, meta_len, ret_meta);
        if (r >= 0 && raw)
                memcpy(raw, meta, STATE_META_SIZE);
        if (r < 0)
                crypto_wipe(data_key, CRYPTO_KEY_SIZE);
out:
        secret_freep(&key, key_len);
        secret_freep(&meta, meta_len);
        return r;
}

/* The EK hashes recorded at manufacturing and the certificate files; null when it has none. */
static void ek_info(const AdminContext *d, const char *uuid, json_object *o) {
        static const struct {
                const char *file, *key;
        } certs[] = {
                { STATEDIR_EK_CERT_RSA2048, "ek_rsa_cert" },
                { STATEDIR_EK_CERT_ECC_P256, "ek_ecc_cert" },
        };
        ManufactureResult ek;
        struct stat st;
        char path[PATH_MAX];

        if (manufacture_info(d->manufacture, uuid, &ek) < 0)
                ek = (ManufactureResult){};
        json_object_object_add(o, "ek_rsa_sha256",
                               ek.ek_rsa_sha256[0] ? json_object_new_string(ek.ek_rsa_sha256) : NULL);
        json_object_object_add(o, "ek_ecc_sha256",
                               ek.ek_ecc_sha256[0] ? json_object_new_string(ek.ek_ecc_sha256) : NULL);
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                bool have;
                snprintf(path, sizeof(path), "%s/%s", uuid, certs[i].file);
                have = fstatat(stateroot_fd(vtpm_state_root(d->state)), path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       S_ISREG(st.st_mode);
                if (have)
                        snprintf(path, sizeof(path), "%s/%s/%s", stateroot_path(vtpm_state_root(d->state)), uuid,
                                 certs[i].file);
                json_object_object_add(o, certs[i].key, have ? json_object_new_string(path) : NULL);
        }
}

/* When and from where a suspended vTPM was saved (show); nulls when it is not suspended. */
static void suspend_info(const StateSuspend *su, json_object *o) {
        char when[64];
        time_t t;
        struct tm tm;

        if (!su) {
                json_object_object_add(o, "suspended_at", NULL);
                json_object_object_add(o, "suspended_from", NULL);
                return;
        }
        t = (time_t) (su->usec / 1000000ull);
        if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
                json_object_object_add(o, "suspended_at", json_object_new_string(when));
        else
                json_object_object_add(o, "suspended_at", NULL);
        snprintf(when, sizeof(when), "domain %u device %u", su->domid, su->devid);
        json_object_object_add(o, "suspended_from", json_object_new_string(when));
}

/* One row of list, or with details the object of show. */
static json_object *vtpm_info(const AdminContext *d, const char *uuid, bool details) {
        json_object *o = json_object_new_object();
        _cleanup_(statedir_closep) StateDir *dir = NULL;
        uint8_t data_key[CRYPTO_KEY_SIZE];
        const char *what = "key", *state;
        _cleanup_free_ char *last_error = NULL;
        StateMeta m;
        StateSuspend su;
        uint64_t size = 0;
        bool active, suspended;
        Device *dev = device_of(d, uuid, &active);
        int r;

        if (!o)
                return NULL;
        /* Without the lock: a worker holds it while attached. */
        r = statedir_open_shared(vtpm_state_root(d->state), uuid, &dir);
        if (r >= 0)
                r = read_key_meta(d, dir, data_key, &m, NULL, &what);
        crypto_wipe(data_key, sizeof(data_key));

        json_object_object_add(o, "uuid", json_object_new_string(uuid));
        json_object_object_add(o, "tpm", r >= 0 ? json_object_new_string(tpm_family_to_string(m.family)) : NULL);
        if (dev && active) {
                json_object_object_add(o, "domid", json_object_new_int64(device_domid(dev)));
                json_object_object_add(o, "name",
                                       device_name(dev) ? json_object_new_string(device_name(dev)) : NULL);
                json_object_object_add(o, "devid", json_object_new_int64(device_devid(dev)));
                state = dev_phase_to_string(device_phase(dev));
        } else {
                json_object_object_add(o, "domid", NULL);
                json_object_object_add(o, "name", NULL);
                json_object_object_add(o, "devid", NULL);
                state = dev && device_phase(dev) == DEV_FAILED ? "failed" : "detached";
        }
        suspended = vtpm_state_suspended(d->state, uuid, &su) && !(dev && active && device_has_worker(dev));
        if (suspended)
                state = "suspended";
        if (r < 0)
                state = "unreadable";
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "commands",
                               dev && active ? json_object_new_int64((int64_t) device_stats(dev)->commands) : NULL);
        if (!details)
                return o;

        if (r >= 0) {
                char when[64];
                time_t t = (time_t) (m.created_usec / 1000000ull);
                struct tm tm;

                if (gmtime_r(&t, &tm) && strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) > 0)
                        json_object_object_add(o, "created", json_object_new_string(when));
                else
                        json_object_object_add(o, "created", NULL);
        } else
                json_object_object_add(o, "created", NULL);
        if (dir)
                (void) statedir_size(dir, &size);
        json_object_object_add(o, "state_size", json_object_new_int64((int64_t) size));
        suspend_info(suspended ? &su : NULL, o);
        ek_info(d, uuid, o);
        if (r < 0) {
                char buf[CTL_MAX_ERROR];
                snprintf(buf, sizeof(buf), "state file %s/%s %s", uuid, what, statestore_strerror(r));
                last_error = strdup(buf);
        } else if (dev && device_phase(dev) == DEV_FAILED)
                last_error = device_read_error_node(dev);
        if (!last_error) {
                StateKind kind;
                int e = vtpm_state_write_error(d->state, uuid, &kind);
                if (e < 0) {
                        char buf[CTL_MAX_ERROR];
                        snprintf(buf, sizeof(buf), "durable write failed: %s (its %s state, in %s; the guest's "
                                 "commands that change it fail until a write succeeds)", strerror(-e),
                                 state_kind_to_string(kind), stateroot_path(vtpm_state_root(d->state)));
                        last_error = strdup(buf);
                }
        }
        json_object_object_add(o, "last_error", last_error ? json_object_new_string(last_error) : NULL);
        if (dev && device_has_worker(dev)) {
                json_object_object_add(o, "rejected", json_object_new_int64((int64_t) device_stats(dev)->rejected));
                json_object_object_add(o, "cancels", json_object_new_int64((int64_t) device_stats(dev)->cancels));
        }
        return o;
}

/* Common checks of an op on one existing, detached vTPM: on failure the call is finished. */
static bool check_known(AdminCall *c) {
        if (!vtpm_exists(c->ctx, c->req.uuid)) {
                finish_errorf(c, -ENOENT, "unknown vTPM %s", c->req.uuid);
                return false;
        }
        return true;
}

static bool check_detached(AdminCall *c, const char *what) {
        bool active;
        Device *dev = device_of(c->ctx, c->req.uuid, &active);

        if (dev && active) {
                finish_errorf(c, -EBUSY, "vTPM %s is attached to domain %u device %u; detach it before %s",
                              c->req.uuid, device_domid(dev), device_devid(dev), what);
                return false;
        }
        return true;
}

static int rerun_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        AdminCall *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        admin_run(c);
        return 0;
}

/* Opens (locks) the detached vTPM's directory; finishes the call on failure.
 * Right after a detach the vTPM's worker is still saving its state: the call
 * is run again when it has stopped (bounded), instead of failing. */
static StateDir *open_detached(AdminCall *c) {
        StateDir *dir = NULL;
        int r = workers_has_vtpm(c->ctx->workers, c->req.uuid)
                        ? -EBUSY
                        : statedir_open(vtpm_state_root(c->ctx->state), c->req.uuid, &dir);

        if (r == -EBUSY) {
                if (c->deadline_ns == 0)
                        c->deadline_ns = now_ns() + WAIT_LIMIT_NS;
                /* destroy --force: a worker that does not let go (hung, stopped) is killed, so the
                 * destroy completes instead of leaving the device closed and the vTPM in place. */
                if (c->req.op == CTL_OP_DESTROY && c->req.force && !c->killed &&
                    now_ns() + WAIT_LIMIT_NS - DESTROY_KILL_NS >= c->deadline_ns) {
                        c->killed = true;
                        (void) workers_kill_vtpm(c->ctx->workers, c->req.uuid);
                }
                if (now_ns() < c->deadline_ns &&
                    sd_event_add_time_relative(c->ctx->event, &c->timer, CLOCK_MONOTONIC, WAIT_POLL_USEC, 0,
                                               rerun_cb, c) >= 0)
                        return NULL;
                finish_errorf(c, -EBUSY, "vTPM %s is in use by a worker; try again when it has stopped",
                              c->req.uuid);
                return NULL;
        }
        if (r == -ENOENT) {
                finish_errorf(c, -ENOENT, "unknown vTPM %s", c->req.uuid);
                return NULL;
        }
        if (r < 0) {
                finish_errorf(c, r, "cannot open vTPM %s: %s", c->req.uuid, strerror(-r));
                return NULL;
        }
        return dir;
}

static void manifest_changed(const AdminContext *d) {
        /* Durable before the reply; the counter increment follows, rate-limited. */
        (void) vtpm_state_commit(d->state, false);
        vtpm_state_changed(d->state);
}

/* Removes a vTPM completely: key shredded first, then the files. */
static int vtpm_erase(const AdminContext *d, StateDir *dir, const char *uuid) {
        int r = statedir_erase_key(dir);

        if (r < 0)
                return r;
        r = statedir_destroy(dir);
        /* Unrecoverable now, whatever the directory still holds. */
        vtpm_state_forget(d->state, uuid);
        manifest_changed(d);
        return r;
}

/* ---- create ---- */

static json_object *created_result(const char *uuid, TpmFamily family) {
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "uuid", json_object_new_string(uuid));
                json_object_object_add(o, "tpm", json_object_new_string(tpm_family_to_string(family)));
        }
        return o;
}

/* Undo a create whose manufacturing failed: nothing of it may stay. */
static void create_rollback(const AdminContext *d, const char *uuid) {
        _cleanup_(statedir_closep) StateDir *dir = NULL;

        if (statedir_open(vtpm_state_root(d->state), uuid, &dir) >= 0)
                (void) vtpm_erase(d, dir, uuid);
        else
                log_msg(LOG_ERR, "vTPM %s: could not remove it after failed manufacturing", uuid);
}

static void manufacture_done(void *userdata, int error, const ManufactureResult *res) {
        AdminCall *c = userdata;
        _cleanup_(json_object_putp) json_object *o = NULL;
        TpmFamily family = c->req.has_family ? c->req.family : c->ctx->config->default_family;

        if (error < 0) {
                create_rollback(c->ctx, c->req.uuid);
                finish_errorf(c, error, "manufacturing vTPM %s failed: %s (see vtpmd's log); nothing was created",
                              c->req.uuid, strerror(-error));
                return;
        }
        o = created_result(c->req.uuid, family);
        if (o && res && res->ek_rsa_sha256[0])
                json_object_object_add(o, "ek_rsa_sha256", json_object_new_string(res->ek_rsa_sha256));
        if (o && res && res->ek_ecc_sha256[0])
                json_object_object_add(o, "ek_ecc_sha256", json_object_new_string(res->ek_ecc_sha256));
        log_dev(LOG_NOTICE, UINT32_MAX, UINT32_MAX, c->req.uuid, "Manufactured vTPM on request of vtpmd-ctl");
        finish(c, 0, NULL, o);
}

static void op_create(AdminCall *c) {
        const AdminContext *d = c->ctx;
        CtlRequest *q = &c->req;
        TpmFamily family = q->has_family ? q->family : d->config->default_family;
        bool manufacture = q->eks || q->pcr_banks || q->ek_cert || q->platform_cert;
        VtpmKeys keys = { .dir_fd = -1 };
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r;

        if (manufacture && family != TPM_FAMILY_2_0) {
                finish_errorf(c, -EINVAL, "only TPM 2.0 vTPMs are manufactured (EKs, certificates, PCR banks)");
                return;
        }
        if (!q->has_uuid) {
                (void) crypto_random_uuid(q->uuid);
                q->has_uuid = true;
        }
        if (vtpm_exists(d, q->uuid)) {
                finish_errorf(c, -EEXIST, "vTPM %s already exists", q->uuid);
                return;
        }
        /* A record without a directory is what a destroy interrupted by a crash leaves. */
        vtpm_state_forget(d->state, q->uuid);
        r = vtpm_state_prepare(d->state, q->uuid, true, family, UINT32_MAX, UINT32_MAX, &keys);
        if (r < 0) {
                finish_errorf(c, r, "cannot create vTPM %s: %s", q->uuid, strerror(-r));
                return;
        }
        vtpm_keys_done(&keys);
        manifest_changed(d);

        if (manufacture) {
                ManufactureOptions mo = {
                        .family = family,
                        .eks = q->eks,
                        .pcr_banks = q->pcr_banks,
                        .ek_certs = q->ek_cert,
                        .platform_cert = q->platform_cert,
                };
                r = manufacture_vtpm(d->manufacture, q->uuid, &mo, manufacture_done, c);
                if (r < 0) {
                        create_rollback(d, q->uuid);
                        finish_errorf(c, r, "cannot start manufacturing vTPM %s: %s; nothing was created", q->uuid,
                                      strerror(-r));
                }
                return; /* manufacture_done finishes */
        }
        log_dev(LOG_NOTICE, UINT32_MAX, UINT32_MAX, q->uuid, "Created vTPM (TPM %s) on request of vtpmd-ctl",
                tpm_family_to_string(family));
        o = created_result(q->uuid, family);
        finish(c, 0, NULL, o);
}

/* ---- list, show, status, ca-cert ---- */

#define STATS_POLL_USEC 5000ull
#define STATS_WAIT_NS 1000000000ull

/* list and show answer with the workers' figures of now: the workers (or the
 * one of dev) are asked at the first run, and the call runs again until their
 * replies are in, for at most STATS_WAIT_NS (a worker busy with a long TPM
 * command answers later; its last figures are shown then). True: answer now. */
static bool stats_fresh(AdminCall *c, Device *dev) {
        Devices *ds = c->ctx->devices;

        if (c->deadline_ns == 0) {
                c->deadline_ns = now_ns() + STATS_WAIT_NS;
                if (dev)
                        device_request_stats(dev);
                else
                        (void) devices_request_stats(ds);
        }
        if (!(dev ? device_stats_pending(dev) : devices_stats_pending(ds)) || now_ns() >= c->deadline_ns)
                return true;
        return sd_event_add_time_relative(c->ctx->event, &c->timer, CLOCK_MONOTONIC, STATS_POLL_USEC, 0, rerun_cb,
                                          c) < 0;
}

static void free_strv(char **v) {
        for (size_t i = 0; v && v[i]; i++)
                free(v[i]);
        free(v);
}

static void op_list(AdminCall *c) {
        const AdminContext *d = c->ctx;
        _cleanup_(json_object_putp) json_object *res = NULL;
        char **uuids = NULL;
        int64_t n = 0;
        int r;

        if (!stats_fresh(c, NULL))
                return;
        r = stateroot_list(vtpm_state_root(d->state), &uuids);
        if (r < 0) {
                finish_errorf(c, r, "cannot list %s: %s", stateroot_path(vtpm_state_root(d->state)), strerror(-r));
                return;
        }
        for (size_t i = 0; uuids && uuids[i]; i++) {
                json_object *o = vtpm_info(d, uuids[i], false);
                if (o) {
                        c->item(c, o);
                        json_object_put(o);
                        n++;
                }
        }
        free_strv(uuids);
        res = json_object_new_object();
        if (res)
                json_object_object_add(res, "count", json_object_new_int64(n));
        finish(c, 0, NULL, res);
}

static void op_show(AdminCall *c) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        bool active;
        Device *dev;

        if (!check_known(c))
                return;
        dev = device_of(c->ctx, c->req.uuid, &active);
        if (dev && active && !stats_fresh(c, dev))
                return;
        o = vtpm_info(c->ctx, c->req.uuid, true);
        if (!o) {
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        finish(c, 0, NULL, o);
}

/* status: "health" ok or degraded, and in "degraded" why (null when ok): durable
 * writes that fail (a full disk, EIO) are otherwise only in the log; failed
 * devices are guests without a TPM. */
static void degraded_info(const AdminContext *d, json_object *o) {
        char buf[CTL_MAX_ERROR] = "";
        int error, commit_error;
        unsigned n = vtpm_state_write_errors(d->state, &error, &commit_error);
        size_t len = 0;

        if (n > 0)
                len += (size_t) snprintf(buf, sizeof(buf), "durable writes of %u vTPM%s failed: %s", n,
                                         n == 1 ? "" : "s", strerror(-error));
        if (commit_error < 0 && len < sizeof(buf))
                len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%swriting the manifest failed: %s",
                                         len ? "; " : "", strerror(-commit_error));
        /* A failed device: its guest has no TPM (a worker that gave up, a refused device, a forced destroy). */
        unsigned failed = devices_count_phase(d->devices, DEV_FAILED);
        if (failed > 0 && len < sizeof(buf))
                snprintf(buf + len, sizeof(buf) - len, "%s%u device%s failed (vtpmd-ctl list shows which, show "
                         "their last error)", len ? "; " : "", failed, failed == 1 ? "" : "s");
        json_object_object_add(o, "health", json_object_new_string(buf[0] ? "degraded" : "ok"));
        json_object_object_add(o, "degraded", buf[0] ? json_object_new_string(buf) : NULL);
}

static void op_status(AdminCall *c) {
        const AdminContext *d = c->ctx;
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        HostTpm *tpm = vtpm_state_host_tpm(d->state);
        char **uuids = NULL;
        int64_t n = 0;
        uint64_t counter;
        unsigned attached;
        int r;

        if (!o) {
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        if (stateroot_list(vtpm_state_root(d->state), &uuids) >= 0)
                for (size_t i = 0; uuids && uuids[i]; i++)
                        n++;
        free_strv(uuids);
        attached = devices_count_attached(d->devices);

        json_object_object_add(o, "version", json_object_new_string(VTPMD_VERSION));
        json_object_object_add(o, "libtpms", json_object_new_string(VTPMD_LIBTPMS_VERSION));
        json_object_object_add(o, "openssl", json_object_new_string(crypto_library_version()));
        json_object_object_add(o, "tpm2_tss", json_object_new_string(VTPMD_TSS2_VERSION));
        json_object_object_add(o, "state_dir", json_object_new_string(stateroot_path(vtpm_state_root(d->state))));
        json_object_object_add(o, "key_source", json_object_new_string(tpm ? "tpm" : "file"));
        if (tpm) {
                /* One NV read: the host TPM answers and still holds our rollback counter. */
                const HostTpmConfig *hc = &d->config->state.host_tpm;
                char buf[HOST_TPM_MAX_PCRS * 4 + 16] = "";
                size_t len = 0;

                r = host_tpm_counter_read(tpm, &counter);
                json_object_object_add(o, "host_tpm", json_object_new_string(r >= 0 ? "reachable" : "unreachable"));
                if (r < 0)
                        json_object_object_add(o, "host_tpm_error",
                                               json_object_new_string(host_tpm_last_error(tpm)));
                /* What the master key is sealed with, and the rollback counter's value now. */
                json_object_object_add(o, "host_tpm_tcti", json_object_new_string(hc->tcti ?: HOST_TPM_DEFAULT_TCTI));
                if (hc->srk_handle)
                        snprintf(buf, sizeof(buf), "0x%08x", hc->srk_handle);
                json_object_object_add(o, "srk", json_object_new_string(hc->srk_handle ? buf
                                                                                       : "TCG template primary"));
                buf[0] = '\0';
                for (size_t i = 0; i < hc->n_pcrs && len < sizeof(buf); i++)
                        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%u", i ? "," : "", hc->pcrs[i]);
                json_object_object_add(o, "pcr_policy", json_object_new_string(hc->n_pcrs ? buf : "none"));
                snprintf(buf, sizeof(buf), "0x%08x", hc->nv_index ?: HOST_TPM_DEFAULT_NV_INDEX);
                json_object_object_add(o, "counter_index", json_object_new_string(buf));
                json_object_object_add(o, "counter", r >= 0 ? json_object_new_int64((int64_t) counter) : NULL);
        } else
                json_object_object_add(o, "host_tpm", json_object_new_string("none (key-file mode)"));
        json_object_object_add(o, "vtpms", json_object_new_int64(n));
        json_object_object_add(o, "devices", json_object_new_int64(devices_count(d->devices)));
        json_object_object_add(o, "attached", json_object_new_int64(attached));
        json_object_object_add(o, "connected", json_object_new_int64(devices_count_phase(d->devices, DEV_CONNECTED)));
        json_object_object_add(o, "failed", json_object_new_int64(devices_count_phase(d->devices, DEV_FAILED)));
        degraded_info(d, o);
        json_object_object_add(o, "auto_create", json_object_new_boolean(d->config->auto_create));
        json_object_object_add(o, "worker_spawn", json_object_new_string(workers_spawn_mode(d->workers)));
        finish(c, 0, NULL, o);
}

static void op_ca_cert(AdminCall *c) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ char *pem = NULL;
        int r;

        /* Created at first use. */
        r = manufacture_ca_cert(c->ctx->manufacture, &pem);
        if (r < 0) {
                finish_errorf(c, r, "cannot read the CA certificate: %s", strerror(-r));
                return;
        }
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "pem", json_object_new_string(pem));
        finish(c, 0, NULL, o);
}

/* ek-cert: the EK certificates (PEM) written at manufacturing; also while attached (read without the lock). */
static void op_ek_cert(AdminCall *c) {
        static const struct {
                const char *file, *key;
        } certs[] = {
                { STATEDIR_EK_CERT_RSA2048, "rsa2048" },
                { STATEDIR_EK_CERT_ECC_P256, "ecc_p256" },
        };
        _cleanup_(statedir_closep) StateDir *dir = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        size_t n = 0;
        int r;

        if (!check_known(c))
                return;
        r = statedir_open_shared(vtpm_state_root(c->ctx->state), c->req.uuid, &dir);
        if (r < 0) {
                finish_errorf(c, r, "cannot open vTPM %s: %s", c->req.uuid, strerror(-r));
                return;
        }
        o = json_object_new_object();
        if (!o) {
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        json_object_object_add(o, "uuid", json_object_new_string(c->req.uuid));
        for (size_t i = 0; i < ELEMENTSOF(certs); i++) {
                _cleanup_free_ uint8_t *pem = NULL;
                size_t len = 0;

                r = statedir_read_public(dir, certs[i].file, &pem, &len);
                if (r == -ENOENT) {
                        json_object_object_add(o, certs[i].key, NULL);
                        continue;
                }
                /* Our own file, but a certificate is a few KiB of text: the reply must fit a packet. */
                if (r >= 0 && (len > CTL_MAX_PACKET / 4 || memchr(pem, '\0', len)))
                        r = -EBADMSG;
                if (r < 0) {
                        finish_errorf(c, r, "cannot read %s/%s: %s", c->req.uuid, certs[i].file, strerror(-r));
                        return;
                }
                json_object_object_add(o, certs[i].key, json_object_new_string_len((const char *) pem, (int) len));
                n++;
        }
        if (n == 0) {
                finish_errorf(c, -ENOENT, "vTPM %s has no EK certificate (it was created without --ek-cert)",
                              c->req.uuid);
                return;
        }
        finish(c, 0, NULL, o);
}

/* ---- restart ---- */

#define RESTART_POLL_USEC 20000ull
#define RESTART_WAIT_NS (15ull * 1000000000ull)

/* restart: the vTPM's worker saves its volatile state and exits, a new one resumes from it (as at a
 * daemon restart: the guest sees no reset); the answer comes when the new one serves. */
static void op_restart(AdminCall *c) {
        const AdminContext *d = c->ctx;
        _cleanup_(json_object_putp) json_object *o = NULL;
        bool active;
        Device *dev;
        int r;

        if (c->deadline_ns == 0) {
                if (!check_known(c))
                        return;
                dev = device_of(d, c->req.uuid, &active);
                if (!dev || !active || !device_has_worker(dev)) {
                        finish_errorf(c, -ENOTCONN, "vTPM %s has no worker: it is not attached to a running guest",
                                      c->req.uuid);
                        return;
                }
                r = workers_restart_vtpm(d->workers, c->req.uuid);
                if (r == -EAGAIN) {
                        finish_errorf(c, r, "vTPM %s: its worker is still starting; try again", c->req.uuid);
                        return;
                }
                if (r < 0) {
                        finish_errorf(c, r, "cannot restart the worker of vTPM %s: %s", c->req.uuid, strerror(-r));
                        return;
                }
                log_dev(LOG_NOTICE, device_domid(dev), device_devid(dev), c->req.uuid,
                        "Restarting the worker on request of vtpmd-ctl (volatile state kept)");
                c->deadline_ns = now_ns() + RESTART_WAIT_NS;
        }
        if (!workers_vtpm_ready(d->workers, c->req.uuid)) {
                dev = device_of(d, c->req.uuid, &active);
                if (!dev || !active || !device_has_worker(dev)) {
                        finish_errorf(c, -EIO, "vTPM %s: its new worker failed (see show's Last error and vtpmd's log)",
                                      c->req.uuid);
                        return;
                }
                if (now_ns() >= c->deadline_ns) {
                        finish_errorf(c, -ETIMEDOUT, "vTPM %s: its new worker does not serve yet after %llu s (see "
                                      "vtpmd's log)", c->req.uuid,
                                      (unsigned long long) (RESTART_WAIT_NS / 1000000000ull));
                        return;
                }
                r = sd_event_add_time_relative(d->event, &c->timer, CLOCK_MONOTONIC, RESTART_POLL_USEC, 0, rerun_cb, c);
                if (r < 0)
                        finish_errorf(c, r, "cannot wait for the new worker: %s", strerror(-r));
                return;
        }
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "uuid", json_object_new_string(c->req.uuid));
        finish(c, 0, NULL, o);
}

/* ---- pcrread ---- */

#define PCRREAD_RETRY_USEC 2000ull
/* A guest's command may take seconds (an RSA key on a busy host); a worker that does not answer
 * within this is hung or stopped. */
#define PCRREAD_WAIT_NS (30ull * 1000000000ull)

static uint16_t bank_alg(unsigned bank) {
        switch (bank) {
        case CTL_BANK_SHA1:
                return TPM2_ALG_SHA1;
        case CTL_BANK_SHA384:
                return TPM2_ALG_SHA384;
        case CTL_BANK_SHA512:
                return TPM2_ALG_SHA512;
        default:
                return TPM2_ALG_SHA256;
        }
}

static void pcrread_finish(AdminCall *c) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *pcrs = json_object_new_object();
        unsigned bank = c->req.bank ? c->req.bank : CTL_BANK_SHA256;
        size_t dsize = tpm2_hash_size(bank_alg(bank));

        if (!o || !pcrs) {
                json_object_put(pcrs);
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        json_object_object_add(o, "uuid", json_object_new_string(c->req.uuid));
        json_object_object_add(o, "bank", json_object_new_string(ctl_bank_to_string(bank)));
        json_object_object_add(o, "state", json_object_new_string(c->pcr_state ?: "attached"));
        for (unsigned i = 0; i < CTL_PCR_COUNT; i++) {
                char key[4], hex[2 * TPM2_MAX_DIGEST + 1];
                if (!(c->pcr_done & (1u << i)))
                        continue;
                for (size_t j = 0; j < dsize; j++)
                        snprintf(hex + 2 * j, 3, "%02X", c->pcr_digests[i][j]);
                snprintf(key, sizeof(key), "%u", i);
                json_object_object_add(pcrs, key, json_object_new_string(hex));
        }
        json_object_object_add(o, "pcrs", pcrs);
        finish(c, 0, NULL, o);
}

static void pcrread_next(AdminCall *c);

static int pcrread_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        AdminCall *c = userdata;

        c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
        pcrread_next(c);
        return 0;
}

static void pcrread_done(void *userdata, int error, const uint8_t *resp, size_t len) {
        AdminCall *c = userdata;
        unsigned bank = c->req.bank ? c->req.bank : CTL_BANK_SHA256;
        uint32_t got = 0, rc = 0;
        int r;

        c->pcr_waiting = false;
        if (error < 0) {
                finish_errorf(c, error, "vTPM %s: its worker ended before it answered", c->req.uuid);
                return;
        }
        r = tpm2_parse_pcr_read(resp, len, bank_alg(bank), c->pcr_todo, &got, c->pcr_digests, &rc);
        if (r == -EPROTO && rc == TPM2_RC_RETRY && now_ns() < c->deadline_ns) {
                /* A guest command was in flight: again, shortly. */
                r = sd_event_add_time_relative(c->ctx->event, &c->retry_timer, CLOCK_MONOTONIC, PCRREAD_RETRY_USEC,
                                               0, pcrread_retry_cb, c);
                if (r < 0)
                        finish_errorf(c, r, "cannot wait for the worker: %s", strerror(-r));
                return;
        }
        if (r == -EPROTO) {
                finish_errorf(c, -EIO, "vTPM %s answered TPM2_PCR_Read with TPM error 0x%03x%s", c->req.uuid, rc,
                              rc == TPM2_RC_RETRY ? " (retry: the guest kept it busy)" : "");
                return;
        }
        if (r < 0) {
                finish_errorf(c, -EBADMSG, "vTPM %s: malformed TPM2_PCR_Read response", c->req.uuid);
                return;
        }
        if (got == 0) {
                /* A TPM returns nothing of a bank it has not allocated. */
                if (c->pcr_done == 0)
                        finish_errorf(c, -ENOENT, "vTPM %s has no %s PCR bank allocated", c->req.uuid,
                                      ctl_bank_to_string(bank));
                else
                        pcrread_finish(c);
                return;
        }
        c->pcr_done |= got;
        c->pcr_todo &= ~got;
        if (c->pcr_todo)
                pcrread_next(c);
        else
                pcrread_finish(c);
}

/* The next TPM2_PCR_Read (a TPM answers at most 8 PCRs at a time). */
static void pcrread_next(AdminCall *c) {
        unsigned bank = c->req.bank ? c->req.bank : CTL_BANK_SHA256;
        uint8_t cmd[32];
        int n = tpm2_build_pcr_read(bank_alg(bank), c->pcr_todo, cmd, sizeof(cmd)), r;

        r = n < 0 ? n : workers_vtpm_command(c->ctx->workers, c->req.uuid, cmd, (size_t) n, pcrread_done, c);
        if (r == -EBUSY) {
                /* Another pcrread's command is with the worker: after it. */
                r = sd_event_add_time_relative(c->ctx->event, &c->retry_timer, CLOCK_MONOTONIC, PCRREAD_RETRY_USEC,
                                               0, pcrread_retry_cb, c);
                if (r < 0)
                        finish_errorf(c, r, "cannot wait for the worker: %s", strerror(-r));
                return;
        }
        if (r == -EAGAIN || r == -ENOENT)
                finish_errorf(c, -ENOTCONN, "vTPM %s: its worker is not serving (starting or restarting); try again",
                              c->req.uuid);
        else if (r < 0)
                finish_errorf(c, r, "cannot ask the worker of vTPM %s: %s", c->req.uuid, strerror(-r));
        else
                c->pcr_waiting = true;
}

static int pcrread_timeout_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        AdminCall *c = userdata;

        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->pcr_waiting)
                workers_vtpm_command_cancel(c->ctx->workers, c);
        c->pcr_waiting = false;
        finish_errorf(c, -ETIMEDOUT, "vTPM %s: no answer from its worker within %llu s (a long guest command?)",
                      c->req.uuid, (unsigned long long) (PCRREAD_WAIT_NS / 1000000000ull));
        return 0;
}

static void pcrread_peek_done(void *userdata, int error, uint32_t select,
                              const uint8_t digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST]) {
        AdminCall *c = userdata;
        unsigned bank = c->req.bank ? c->req.bank : CTL_BANK_SHA256;

        if (error == -ENOENT) {
                finish_errorf(c, error, "vTPM %s has no %s PCR bank allocated", c->req.uuid,
                              ctl_bank_to_string(bank));
                return;
        }
        if (error == -EBUSY) {
                finish_errorf(c, error, "vTPM %s was taken by a worker meanwhile (its guest started?); try again",
                              c->req.uuid);
                return;
        }
        if (error < 0) {
                finish_errorf(c, error, "reading the PCRs of detached vTPM %s failed: %s (see vtpmd's log)",
                              c->req.uuid, strerror(-error));
                return;
        }
        c->pcr_done = select;
        for (unsigned i = 0; i < CTL_PCR_COUNT; i++)
                if (select & (1u << i))
                        memcpy(c->pcr_digests[i], digests[i], sizeof(c->pcr_digests[i]));
        pcrread_finish(c);
}

/* The meta record of a detached vTPM, read under its lock (open_detached waits for a worker still
 * saving after a detach); the lock is let go again. On failure the call is finished (with
 * `suffix` after the reason) and false returned. */
static bool detached_meta(AdminCall *c, const char *suffix, StateMeta *ret) {
        uint8_t data_key[CRYPTO_KEY_SIZE];
        const char *what = NULL;
        StateDir *dir;
        int r;

        dir = open_detached(c);
        if (!dir)
                return false;
        r = read_key_meta(c->ctx, dir, data_key, ret, NULL, &what);
        crypto_wipe(data_key, sizeof(data_key));
        statedir_close(dir);
        if (r < 0) {
                finish_errorf(c, r, "vTPM %s: state file %s/%s %s%s", c->req.uuid, c->req.uuid, what,
                              statestore_strerror(r), suffix);
                return false;
        }
        return true;
}

/* A detached vTPM: a read-only offline worker (manufacture_peek_pcrs) runs a copy of its state in
 * memory. Suspended, those are the PCRs its guest resumes with (the saved state stays for the
 * restore); otherwise its next start is a TPM reset, and those are the values after it. */
static void pcrread_detached(AdminCall *c) {
        const AdminContext *d = c->ctx;
        unsigned bank = c->req.bank ? c->req.bank : CTL_BANK_SHA256;
        bool suspended;
        StateMeta m;
        int r;

        /* After a detach a guest's save is recorded once its worker has saved: detached_meta waits. */
        if (!detached_meta(c, "", &m))
                return;
        if (m.family != TPM_FAMILY_2_0) {
                finish_errorf(c, -EOPNOTSUPP, "vTPM %s is a TPM 1.2: pcrread reads TPM 2.0 PCR banks only",
                              c->req.uuid);
                return;
        }
        suspended = vtpm_state_suspended(d->state, c->req.uuid, NULL);
        c->pcr_state = suspended ? "suspended" : "reset";
        r = manufacture_peek_pcrs(d->manufacture, c->req.uuid, suspended, bank_alg(bank),
                                  c->req.pcrs ? c->req.pcrs : (1u << CTL_PCR_COUNT) - 1, pcrread_peek_done, c);
        if (r == -EBUSY)
                finish_errorf(c, r, "vTPM %s is in use by a worker; try again when it has stopped", c->req.uuid);
        else if (r < 0)
                finish_errorf(c, r, "cannot read the PCRs of detached vTPM %s: %s (see vtpmd's log)", c->req.uuid,
                              strerror(-r));
        /* else pcrread_peek_done finishes */
}

/* pcrread: the PCRs of an attached vTPM, read by its worker between two of the guest's commands;
 * those of a detached one from a read-only copy of its state (pcrread_detached). */
static void op_pcrread(AdminCall *c) {
        const AdminContext *d = c->ctx;
        bool active;
        Device *dev;
        int r;

        if (!check_known(c))
                return;
        dev = device_of(d, c->req.uuid, &active);
        if (!dev || !active) {
                pcrread_detached(c);
                return;
        }
        if (!device_has_worker(dev)) {
                finish_errorf(c, -ENOTCONN, "vTPM %s: its worker is not serving (starting or restarting); try again",
                              c->req.uuid);
                return;
        }
        c->pcr_state = "attached";
        {
                _cleanup_(statedir_closep) StateDir *dir = NULL;
                uint8_t data_key[CRYPTO_KEY_SIZE];
                const char *what;
                StateMeta m;

                r = statedir_open_shared(vtpm_state_root(d->state), c->req.uuid, &dir);
                if (r >= 0)
                        r = read_key_meta(d, dir, data_key, &m, NULL, &what);
                crypto_wipe(data_key, sizeof(data_key));
                if (r >= 0 && m.family != TPM_FAMILY_2_0) {
                        finish_errorf(c, -EOPNOTSUPP, "vTPM %s is a TPM 1.2: pcrread reads TPM 2.0 PCR banks only",
                                      c->req.uuid);
                        return;
                }
        }
        c->pcr_todo = c->req.pcrs ? c->req.pcrs : (1u << CTL_PCR_COUNT) - 1;
        c->pcr_done = 0;
        c->deadline_ns = now_ns() + PCRREAD_WAIT_NS;
        /* One timer for the whole read (a worker that never answers: hung, stopped). */
        r = sd_event_add_time_relative(d->event, &c->timer, CLOCK_MONOTONIC, PCRREAD_WAIT_NS / 1000, 0,
                                       pcrread_timeout_cb, c);
        if (r < 0) {
                finish_errorf(c, r, "cannot arm a timer: %s", strerror(-r));
                return;
        }
        pcrread_next(c);
}

/* ---- destroy ---- */

static void destroy_now(AdminCall *c) {
        _cleanup_(statedir_closep) StateDir *dir = open_detached(c);
        _cleanup_(json_object_putp) json_object *o = NULL;
        int r;

        if (!dir)
                return;
        r = vtpm_erase(c->ctx, dir, c->req.uuid);
        if (r < 0) {
                finish_errorf(c, r, "vTPM %s: its key is erased but its directory could not be removed: %s%s",
                              c->req.uuid, strerror(-r),
                              r == -ENOTEMPTY ? " (it holds files vtpmd did not create)" : "");
                return;
        }
        log_dev(LOG_NOTICE, UINT32_MAX, UINT32_MAX, c->req.uuid, "Destroyed vTPM on request of vtpmd-ctl");
        o = json_object_new_object();
        if (o)
                json_object_object_add(o, "uuid", json_object_new_string(c->req.uuid));
        finish(c, 0, NULL, o);
}

static void op_destroy(AdminCall *c) {
        const AdminContext *d = c->ctx;
        bool active;
        Device *dev;

        if (!check_known(c))
                return;
        /* open_detached() runs the call again while the worker saves and
         * exits: the device checks are the first run's. */
        if (c->deadline_ns == 0) {
                dev = device_of(d, c->req.uuid, &active);
                if (dev && active && !c->req.force) {
                        finish_errorf(c, -EBUSY, "vTPM %s is attached to domain %u device %u; detach it first, or "
                                      "use --force", c->req.uuid, device_domid(dev), device_devid(dev));
                        return;
                }
                if (dev && active) {
                        log_dev(LOG_WARNING, device_domid(dev), device_devid(dev), device_uuid(dev),
                                "Destroying the attached vTPM on request of vtpmd-ctl (--force): closing the device");
                        device_fail(dev, "vTPM destroyed by the administrator");
                }
        }
        destroy_now(c);
}

/* ---- export and import ---- */

static int check_fd(int fd, bool writable, struct stat *ret) {
        int fl;

        if (fd < 0)
                return -EBADF;
        if (fstat(fd, ret) < 0)
                return negative_errno();
        /* A FIFO or a device could block the event loop. */
        if (!S_ISREG(ret->st_mode))
                return -EINVAL;
        fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return negative_errno();
        if (writable ? (fl & O_ACCMODE) == O_RDONLY : (fl & O_ACCMODE) == O_WRONLY)
                return -EBADF;
        return 0;
}

static int key_check(const uint8_t key[CTL_KEY_SIZE], const uint8_t header[CTL_EXPORT_HEADER_SIZE],
                     uint8_t ret[CTL_EXPORT_TAG_SIZE]) {
        uint8_t empty[1];
        return crypto_aead_encrypt(key, CTL_EXPORT_CHECK_NONCE, header, CTL_EXPORT_CHECK_AAD_SIZE, empty, 0, empty,
                                   ret);
}

/* The public files an export carries (CtlExportRecord order). */
static const char *const export_records[_CTL_EXPORT_REC_MAX] = {
        [CTL_EXPORT_REC_EK_HASHES] = STATEDIR_EK_HASHES,
        [CTL_EXPORT_REC_EK_CERT_RSA2048] = STATEDIR_EK_CERT_RSA2048,
        [CTL_EXPORT_REC_EK_CERT_ECC_P256] = STATEDIR_EK_CERT_ECC_P256,
};

static void free_records(uint8_t *rec[_CTL_EXPORT_REC_MAX]) {
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++) {
                free(rec[i]);
                rec[i] = NULL;
        }
}

/* Reads the vTPM's public files for its export; one it does not have is empty. */
static int read_records(StateDir *dir, uint8_t *rec[_CTL_EXPORT_REC_MAX], size_t rec_len[_CTL_EXPORT_REC_MAX],
                        const char **ret_what) {
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++) {
                int r = statedir_read_public(dir, export_records[i], &rec[i], &rec_len[i]);
                if (r == -ENOENT) {
                        rec[i] = NULL;
                        rec_len[i] = 0;
                        continue;
                }
                if (r >= 0 && rec_len[i] > CTL_EXPORT_MAX_RECORD)
                        r = -EFBIG;
                if (r < 0) {
                        free_records(rec);
                        *ret_what = export_records[i];
                        return r;
                }
        }
        return 0;
}

/* export (detached, under its lock) and backup (attached, read beside its worker): the same blob. */
static void op_export(AdminCall *c) {
        const AdminContext *d = c->ctx;
        bool backup = c->req.op == CTL_OP_BACKUP, active;
        uint32_t domid = UINT32_MAX, devid = UINT32_MAX; /* backup: the guest's, for the log */
        _cleanup_(statedir_closep) StateDir *dir = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        uint8_t *perm = NULL, *payload = NULL, *rec[_CTL_EXPORT_REC_MAX] = {};
        size_t perm_len = 0, payload_len = 0, total = 0, done = 0, rec_len[_CTL_EXPORT_REC_MAX] = {};
        CtlExportPayload pl = {};
        uint8_t data_key[CRYPTO_KEY_SIZE], meta[STATE_META_SIZE];
        const char *what;
        StateMeta m;
        uint8_t hdr[CTL_EXPORT_HEADER_SIZE];
        CtlExportHeader h = { .kdf = c->req.kdf };
        uint64_t recorded;
        struct stat st;
        uint64_t seq = 0;
        int r;

        r = check_fd(c->fd, true, &st);
        if (r < 0) {
                finish_errorf(c, r, "%s needs a regular file opened for writing", backup ? "backup" : "export");
                return;
        }
        if (!check_known(c))
                return;
        Device *dev = backup ? device_of(d, c->req.uuid, &active) : NULL;
        if (dev && active) {
                /* backup of an attached vTPM. The worker keeps writing while its guest runs; each write
                 * replaces a whole file (statestore: rename), at the end of a command, so what is read
                 * here is the state between two of the guest's commands. */
                domid = device_domid(dev);
                devid = device_devid(dev);
                r = statedir_open_shared(vtpm_state_root(d->state), c->req.uuid, &dir);
                if (r < 0) {
                        finish_errorf(c, r, "cannot open vTPM %s: %s", c->req.uuid, strerror(-r));
                        return;
                }
        } else {
                /* export, or backup of a detached vTPM: the same, under its lock. */
                if (!check_detached(c, "exporting it (or use vtpmd-ctl backup)"))
                        return;
                dir = open_detached(c);
                if (!dir)
                        return;
        }

        r = read_key_meta(d, dir, data_key, &m, meta, &what);
        if (r < 0) {
                finish_errorf(c, r, "state file %s/%s %s", c->req.uuid, what, statestore_strerror(r));
                goto out;
        }
        r = statedir_read(dir, STATE_KIND_PERMANENT, data_key, &perm, &perm_len, &seq);
        (void) statefile_uuid_from_string(c->req.uuid, h.uuid);
        recorded = vtpm_state_perm_seq(d->state, c->req.uuid);
        if (r >= 0 && seq < recorded)
                r = -ESTALE;
        if (r == -ENOENT && recorded == 0)
                r = 0; /* never started: exported as such */
        if (r < 0) {
                finish_errorf(c, r, "state file %s/permall %s", c->req.uuid, statestore_strerror(r));
                goto out;
        }
        r = read_records(dir, rec, rec_len, &what);
        if (r < 0) {
                finish_errorf(c, r, "file %s/%s: %s", c->req.uuid, what, strerror(-r));
                goto out;
        }
        pl = (CtlExportPayload){ .meta = meta, .permall = perm, .permall_len = perm_len };
        for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++) {
                pl.rec[i] = rec[i];
                pl.rec_len[i] = rec_len[i];
        }
        r = ctl_export_payload_encode(&pl, &payload, &payload_len);
        if (r < 0) {
                finish_errorf(c, r, "cannot encode the export: %s", strerror(-r));
                goto out;
        }

        h.length = (uint32_t) payload_len;
        ctl_export_header_encode(&h, hdr);
        r = key_check(c->req.key, hdr, h.key_check);
        if (r >= 0)
                r = crypto_random(h.nonce, sizeof(h.nonce));
        total = CTL_EXPORT_HEADER_SIZE + payload_len + CTL_EXPORT_TAG_SIZE;
        out = malloc(total);
        if (r >= 0 && !out)
                r = -ENOMEM;
        if (r >= 0) {
                ctl_export_header_encode(&h, out);
                r = crypto_aead_encrypt(c->req.key, h.nonce, out, CTL_EXPORT_HEADER_SIZE, payload, payload_len,
                                        out + CTL_EXPORT_HEADER_SIZE, out + CTL_EXPORT_HEADER_SIZE + payload_len);
        }
        if (r < 0) {
                finish_errorf(c, r, "cannot encrypt the export: %s", strerror(-r));
                goto out;
        }
        if (ftruncate(c->fd, 0) < 0) {
                r = negative_errno();
                finish_errorf(c, r, "cannot write the export file: %s", strerror(-r));
                goto out;
        }
        while (done < total) {
                ssize_t n = pwrite(c->fd, out + done, total - done, (off_t) done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? negative_errno() : -EIO;
                        break;
                }
                done += (size_t) n;
        }
        if (r >= 0 && fsync(c->fd) < 0)
                r = negative_errno();
        if (r < 0) {
                finish_errorf(c, r, "cannot write the export file: %s", strerror(-r));
                goto out;
        }
        log_dev(LOG_NOTICE, domid, devid, c->req.uuid, "%s vTPM on request of vtpmd-ctl (%zu bytes)",
                backup ? "Backed up the attached" : "Exported", total);
        o = created_result(c->req.uuid, m.family);
        if (o)
                json_object_object_add(o, "size", json_object_new_int64((int64_t) total));
        finish(c, 0, NULL, o);
out:
        crypto_wipe(data_key, sizeof(data_key));
        crypto_wipe(meta, sizeof(meta));
        secret_freep(&perm, perm_len);
        secret_freep(&payload, payload_len);
        free_records(rec);
}

static int read_all(int fd, size_t size, uint8_t **ret) {
        _cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
        size_t got = 0;

        if (!buf)
                return -ENOMEM;
        while (got < size) {
                ssize_t n = pread(fd, buf + got, size - got, (off_t) got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EBADMSG;
                got += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        return 0;
}

static void op_import(AdminCall *c) {
        const AdminContext *d = c->ctx;
        _cleanup_(statedir_closep) StateDir *dir = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        uint8_t *payload = NULL;
        CtlExportPayload pl = {};
        size_t size;
        uint8_t check[CTL_EXPORT_TAG_SIZE], data_key[CRYPTO_KEY_SIZE];
        char uuid[CTL_UUID_LEN];
        CtlExportHeader h;
        StateMeta m;
        struct stat st;
        int r;

        r = check_fd(c->fd, false, &st);
        if (r < 0) {
                finish_errorf(c, r, "import needs a regular file opened for reading");
                return;
        }
        if (st.st_size < (off_t) CTL_EXPORT_HEADER_SIZE || st.st_size > (off_t) CTL_EXPORT_MAX_SIZE) {
                finish_errorf(c, -EBADMSG, "not a vtpmd export (its size is wrong)");
                return;
        }
        size = (size_t) st.st_size;
        r = read_all(c->fd, size, &blob);
        if (r < 0) {
                finish_errorf(c, r, "cannot read the export file: %s", strerror(-r));
                return;
        }
        r = ctl_export_header_parse(blob, size, false, &h);
        if (r == -EPROTONOSUPPORT) {
                finish_errorf(c, r, "the export was written by an unknown version of vtpmd");
                return;
        }
        if (r < 0) {
                finish_errorf(c, -EBADMSG, "not a vtpmd export, or truncated");
                return;
        }
        r = key_check(c->req.key, blob, check);
        if (r < 0) {
                finish_errorf(c, r, "cannot decrypt: %s", strerror(-r));
                return;
        }
        if (memcmp(check, h.key_check, sizeof(check)) != 0) {
                finish_errorf(c, -EKEYREJECTED, "wrong passphrase or key for this export");
                return;
        }
        payload = malloc(h.length);
        if (!payload) {
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        r = crypto_aead_decrypt(c->req.key, h.nonce, blob, CTL_EXPORT_HEADER_SIZE, blob + CTL_EXPORT_HEADER_SIZE,
                                h.length, blob + CTL_EXPORT_HEADER_SIZE + h.length, payload);
        if (r >= 0)
                r = ctl_export_payload_parse(payload, h.length, h.version, &pl);
        if (r >= 0)
                r = state_meta_parse(pl.meta, CTL_EXPORT_META_SIZE, &m);
        if (r < 0) {
                finish_errorf(c, -EBADMSG, "the export is corrupt (authentication failed or malformed contents)");
                goto out;
        }
        statefile_uuid_to_string(h.uuid, uuid);
        if (vtpm_exists(d, uuid)) {
                finish_errorf(c, -EEXIST, "vTPM %s already exists on this host; destroy it first", uuid);
                goto out;
        }
        if (device_of(d, uuid, &(bool){ false }) && workers_has_vtpm(d->workers, uuid)) {
                finish_errorf(c, -EBUSY, "vTPM %s is in use by a worker", uuid);
                goto out;
        }

        /* A fresh data key under this host's master key; the permanent state
         * starts a new sequence, recorded in the manifest. */
        r = statedir_create(vtpm_state_root(d->state), uuid, &dir);
        if (r < 0) {
                finish_errorf(c, r, "cannot create vTPM %s: %s", uuid, strerror(-r));
                goto out;
        }
        r = crypto_random(data_key, sizeof(data_key));
        if (r >= 0)
                r = statedir_write(dir, STATE_KIND_DATA_KEY, vtpm_state_master_key(d->state), 1, data_key,
                                   sizeof(data_key));
        if (r >= 0)
                r = statedir_write(dir, STATE_KIND_META, data_key, 1, pl.meta, CTL_EXPORT_META_SIZE);
        if (r >= 0 && pl.permall_len)
                r = statedir_write(dir, STATE_KIND_PERMANENT, data_key, 1, pl.permall, pl.permall_len);
        crypto_wipe(data_key, sizeof(data_key));
        /* The EK records: show's hashes and certificates, and what reset re-creates. */
        for (size_t i = 0; r >= 0 && i < _CTL_EXPORT_REC_MAX; i++)
                if (pl.rec_len[i])
                        r = statedir_write_public(dir, export_records[i], pl.rec[i], pl.rec_len[i]);
        if (r < 0) {
                (void) statedir_erase_key(dir);
                (void) statedir_destroy(dir);
                finish_errorf(c, r, "cannot write vTPM %s: %s; nothing was imported", uuid, strerror(-r));
                goto out;
        }
        vtpm_state_forget(d->state, uuid);
        vtpm_state_record(d->state, uuid, STATE_KIND_PERMANENT, pl.permall_len ? 1 : 0);
        manifest_changed(d);
        log_dev(LOG_NOTICE, UINT32_MAX, UINT32_MAX, uuid, "Imported vTPM (TPM %s) on request of vtpmd-ctl",
                tpm_family_to_string(m.family));
        o = created_result(uuid, m.family);
        finish(c, 0, NULL, o);
out:
        secret_freep(&payload, h.length);
}

/* ---- reset ---- */

static void reset_done(void *userdata, int error, const ManufactureResult *res) {
        AdminCall *c = userdata;
        _cleanup_(json_object_putp) json_object *o = NULL;

        if (error < 0) {
                finish_errorf(c, error, "resetting vTPM %s failed: %s (see vtpmd's log)", c->req.uuid,
                              strerror(-error));
                return;
        }
        /* A volatile state saved before the clear must never be resumed after it. */
        vtpm_state_volatile_consumed(c->ctx->state, c->req.uuid);
        manifest_changed(c->ctx);
        o = created_result(c->req.uuid, TPM_FAMILY_2_0);
        if (o && res && res->ek_rsa_sha256[0])
                json_object_object_add(o, "ek_rsa_sha256", json_object_new_string(res->ek_rsa_sha256));
        if (o && res && res->ek_ecc_sha256[0])
                json_object_object_add(o, "ek_ecc_sha256", json_object_new_string(res->ek_ecc_sha256));
        log_dev(LOG_NOTICE, UINT32_MAX, UINT32_MAX, c->req.uuid, "Reset (TPM2_Clear, EKs kept) vTPM on request "
                "of vtpmd-ctl");
        finish(c, 0, NULL, o);
}

/* A TPM clear keeping the vTPM's identity (manufacture_clear): the guest's
 * owner hierarchy goes, its EKs and their certificates stay. */
static void op_reset(AdminCall *c) {
        const AdminContext *d = c->ctx;
        StateMeta m;
        int r;

        if (!check_known(c) || !check_detached(c, "resetting it"))
                return;
        /* The helper's worker takes the lock itself afterwards. */
        if (!detached_meta(c, "; nothing was changed", &m))
                return;
        r = m.family == TPM_FAMILY_2_0 ? manufacture_clear(d->manufacture, c->req.uuid, reset_done, c) : -EOPNOTSUPP;
        if (r == -EOPNOTSUPP)
                finish_errorf(c, r, "vTPM %s is a TPM 1.2: reset (a TPM clear keeping its identity) is only "
                              "implemented for TPM 2.0; nothing was changed", c->req.uuid);
        else if (r < 0)
                finish_errorf(c, r, "cannot reset vTPM %s: %s (see vtpmd's log); nothing was changed", c->req.uuid,
                              strerror(-r));
        /* else reset_done finishes */
}

/* ---- pool ---- */

static bool check_pool(AdminCall *c, Pool **ret) {
        Pool *p = vtpm_state_pool(c->ctx->state, NULL, NULL);

        if (!p) {
                finish_errorf(c, -ENOTCONN, "this vtpmd has no pool: set PoolDirectory= in vtpmd.conf(5) (a "
                              "directory on a file system all pool hosts mount, see docs/pool-storage.md)");
                return false;
        }
        *ret = p;
        return true;
}

static void op_pool_status(AdminCall *c) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *hosts;
        PoolHost *v = NULL;
        const char *fp;
        char id[POOL_ID_SIZE];
        size_t n = 0;
        bool member;
        Pool *p;
        int r;

        if (!check_pool(c, &p))
                return;
        (void) vtpm_state_pool_refresh(c->ctx->state);
        (void) vtpm_state_pool(c->ctx->state, &fp, &member);
        r = pool_list(p, &v, &n);
        if (r < 0) {
                finish_errorf(c, r, "cannot list the pool's hosts in %s: %s", pool_path(p), strerror(-r));
                return;
        }
        o = json_object_new_object();
        hosts = json_object_new_array();
        if (!o || !hosts) {
                json_object_put(hosts);
                free(v);
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        json_object_object_add(o, "pool_dir", json_object_new_string(pool_path(p)));
        json_object_object_add(o, "pool_id", pool_id(p, id) >= 0 ? json_object_new_string(id) : NULL);
        json_object_object_add(o, "host", json_object_new_string(fp));
        json_object_object_add(o, "member", json_object_new_boolean(member));
        for (size_t i = 0; i < n; i++) {
                json_object *h = json_object_new_object();
                if (!h)
                        continue;
                json_object_object_add(h, "host", json_object_new_string(v[i].fp));
                json_object_object_add(h, "state", json_object_new_string(v[i].member ? "member" : "asked to join"));
                json_object_object_add(h, "self", json_object_new_boolean(streq(v[i].fp, fp)));
                json_object_array_add(hosts, h);
        }
        free(v);
        json_object_object_add(o, "hosts", hosts);
        finish(c, 0, NULL, o);
}

/* The reply of init and join: this host and whether it is a member now. */
static void finish_pool_host(AdminCall *c, const char *fp, bool member) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o) {
                finish_errorf(c, -ENOMEM, "out of memory");
                return;
        }
        json_object_object_add(o, "host", json_object_new_string(fp));
        json_object_object_add(o, "member", json_object_new_boolean(member));
        finish(c, 0, NULL, o);
}

static void op_pool_init(AdminCall *c, Pool *p, const char *fp) {
        int r = vtpm_state_pool_init(c->ctx->state);

        if (r == -EEXIST)
                finish_errorf(c, r, "the pool at %s exists already (or this host is a member): on a new host use "
                              "vtpmd-ctl pool join", pool_path(p));
        else if (r < 0)
                finish_errorf(c, r, "cannot create the pool at %s: %s", pool_path(p), strerror(-r));
        else
                finish_pool_host(c, fp, true);
}

static void op_pool_join(AdminCall *c, Pool *p, const char *fp) {
        int r = vtpm_state_pool_join(c->ctx->state);

        if (r == -EEXIST)
                finish_errorf(c, r, "this host is a member of the pool at %s already", pool_path(p));
        else if (r == -ENOENT)
                finish_errorf(c, r, "there is no pool at %s yet: run vtpmd-ctl pool init on its first host",
                              pool_path(p));
        else if (r < 0)
                finish_errorf(c, r, "cannot ask to join the pool at %s: %s", pool_path(p), strerror(-r));
        else
                finish_pool_host(c, fp, false);
}

static void op_pool_admit(AdminCall *c) {
        int r = vtpm_state_pool_admit(c->ctx->state, c->req.host);

        if (r == -ENOKEY)
                finish_errorf(c, r, "this host is not a member of the pool itself; admit from a member");
        else if (r == -ENOENT)
                finish_errorf(c, r, "no host %s asked to join the pool (vtpmd-ctl pool status lists them)",
                              c->req.host);
        else if (r == -EBADMSG)
                finish_errorf(c, r, "the join request of host %s does not hold the key with that fingerprint; "
                              "nothing was changed", c->req.host);
        else if (r < 0)
                finish_errorf(c, r, "cannot admit host %s: %s", c->req.host, strerror(-r));
        else
                finish(c, 0, NULL, NULL);
}

static void op_pool_remove(AdminCall *c, const char *own_fp) {
        bool self = c->req.op == CTL_OP_POOL_LEAVE || streq(c->req.host, own_fp);
        const char *fp = c->req.op == CTL_OP_POOL_LEAVE ? own_fp : c->req.host;
        int r;

        if (self && workers_attached(c->ctx->workers)) {
                finish_errorf(c, -EBUSY, "vTPMs are running on this host: detach them (or migrate their guests) "
                              "before it leaves the pool");
                return;
        }
        r = vtpm_state_pool_remove(c->ctx->state, fp);
        if (r == -ENOTEMPTY)
                finish_errorf(c, r, "host %s is the pool's only member: without it no host could unlock the pool's "
                              "vTPMs; admit another host first (or export the vTPMs)", fp);
        else if (r == -ENOENT && c->req.op == CTL_OP_POOL_LEAVE)
                finish_errorf(c, r, "this host is not a member of the pool");
        else if (r == -ENOENT)
                finish_errorf(c, r, "host %s is neither a member of the pool nor asked to join", c->req.host);
        else if (r < 0)
                finish_errorf(c, r, "cannot remove host %s: %s", c->req.host, strerror(-r));
        else
                finish(c, 0, NULL, NULL);
}

static void op_pool_change(AdminCall *c) {
        const char *fp;
        Pool *p;

        if (!check_pool(c, &p))
                return;
        (void) vtpm_state_pool(c->ctx->state, &fp, NULL);
        if (c->req.op == CTL_OP_POOL_INIT)
                op_pool_init(c, p, fp);
        else if (c->req.op == CTL_OP_POOL_JOIN)
                op_pool_join(c, p, fp);
        else if (c->req.op == CTL_OP_POOL_ADMIT)
                op_pool_admit(c);
        else
                op_pool_remove(c, fp);
}

/* Ops that read or write a vTPM's keys need the key that wraps them. */
static bool needs_keys(CtlOp op) {
        return op == CTL_OP_CREATE || op == CTL_OP_SHOW || op == CTL_OP_DESTROY || op == CTL_OP_EXPORT ||
               op == CTL_OP_IMPORT || op == CTL_OP_RESET || op == CTL_OP_RESTART || op == CTL_OP_BACKUP;
}

void admin_run(AdminCall *c) {
        Pool *p = vtpm_state_pool(c->ctx->state, NULL, NULL);

        if (needs_keys(c->req.op) && p && vtpm_state_pool_refresh(c->ctx->state) <= 0) {
                finish_errorf(c, -ENOKEY, "this host is not a member of the pool at %s yet: vtpmd-ctl pool join "
                              "here, then vtpmd-ctl pool admit on a member", pool_path(p));
                return;
        }
        switch (c->req.op) {
        case CTL_OP_CREATE:
                op_create(c);
                return;
        case CTL_OP_LIST:
                op_list(c);
                return;
        case CTL_OP_SHOW:
                op_show(c);
                return;
        case CTL_OP_DESTROY:
                op_destroy(c);
                return;
        case CTL_OP_EXPORT:
        case CTL_OP_BACKUP:
                op_export(c);
                return;
        case CTL_OP_IMPORT:
                op_import(c);
                return;
        case CTL_OP_RESET:
                op_reset(c);
                return;
        case CTL_OP_STATUS:
                op_status(c);
                return;
        case CTL_OP_CA_CERT:
                op_ca_cert(c);
                return;
        case CTL_OP_POOL_STATUS:
                op_pool_status(c);
                return;
        case CTL_OP_EK_CERT:
                op_ek_cert(c);
                return;
        case CTL_OP_RESTART:
                op_restart(c);
                return;
        case CTL_OP_PCRREAD:
                op_pcrread(c);
                return;
        case CTL_OP_POOL_INIT:
        case CTL_OP_POOL_JOIN:
        case CTL_OP_POOL_ADMIT:
        case CTL_OP_POOL_REMOVE:
        case CTL_OP_POOL_LEAVE:
                op_pool_change(c);
                return;
        case _CTL_OP_MAX:
                break;
        }
        finish_errorf(c, -EINVAL, "unknown operation");
}
