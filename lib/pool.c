/* SPDX-License-Identifier: BSD-3-Clause */
/* A pool's directory and membership on shared storage (pool.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "pool.h"
#include "statefile.h"
#include "statestore.h"

#define POOL_ID_FILE "pool-id"
#define POINT_SUFFIX ".point"
#define KEY_SUFFIX ".key"
#define CONTEXT_MAX 160u

struct Pool {
        char *path;
        char *vtpm_root;
        StateRoot *top, *members, *requests, *handovers;
};


static char *path_join(const char *a, const char *b) {
        char *s = NULL;
        return asprintf(&s, "%s/%s", a, b) < 0 ? NULL : s;
}

static int open_sub(Pool *p, const char *name, StateRoot **ret) {
        _cleanup_free_ char *sub = path_join(p->path, name);

        if (!sub)
                return -ENOMEM;
        return stateroot_open_shared(sub, ret);
}

int pool_open(const char *path, Pool **ret) {
        _cleanup_(pool_closep) Pool *p = NULL;
        StateRoot *vtpms = NULL;
        int r;

        if (!path || !*path || !ret)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->path = strdup(path);
        p->vtpm_root = path_join(path, "vtpms");
        if (!p->path || !p->vtpm_root)
                return -ENOMEM;
        r = stateroot_open_shared(path, &p->top);
        if (r >= 0)
                r = open_sub(p, "members", &p->members);
        if (r >= 0)
                r = open_sub(p, "requests", &p->requests);
        if (r >= 0)
                r = open_sub(p, "handovers", &p->handovers);
        if (r >= 0)
                r = stateroot_open_shared(p->vtpm_root, &vtpms); /* creates it */
        stateroot_close(vtpms);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

Pool *pool_close(Pool *p) {
        if (!p)
                return NULL;
        stateroot_close(p->top);
        stateroot_close(p->members);
        stateroot_close(p->requests);
        stateroot_close(p->handovers);
        free(p->vtpm_root);
        free(p->path);
        free(p);
        return NULL;
}

const char *pool_path(const Pool *p) {
        return p->path;
}

const char *pool_vtpm_root(const Pool *p) {
        return p->vtpm_root;
}

int pool_id(Pool *p, char ret[POOL_ID_SIZE]) {
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t u[STATEFILE_UUID_SIZE];
        char id[POOL_ID_SIZE];
        size_t len;
        int r;

        r = stateroot_read_raw(p->top, POOL_ID_FILE, &buf, &len);
        if (r < 0)
                return r;
        if (len != POOL_ID_SIZE - 1)
                return -EBADMSG;
        memcpy(id, buf, len);
        id[len] = '\0';
        if (statefile_uuid_from_string(id, u) < 0)
                return -EBADMSG;
        memcpy(ret, id, sizeof(id));
        return 0;
}

/* fp must be a fingerprint as pool_key_fingerprint_hex writes it: no path tricks in file names. */
static bool fp_ok(const char *fp) {
        if (!fp || strlen(fp) != POOL_KEY_FINGERPRINT_HEX_SIZE - 1)
                return false;
        for (const char *c = fp; *c; c++)
                if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
                        return false;
        return true;
}

static char *host_file(const char *fp, const char *suffix) {
        char *s = NULL;
        return asprintf(&s, "%s%s", fp, suffix) < 0 ? NULL : s;
}

static int context_of(const char *id, const char *fp, char ret[CONTEXT_MAX], size_t *ret_len) {
        int n = snprintf(ret, CONTEXT_MAX, "vtpmd pool %s member %s", id, fp);

        if (n < 0 || (size_t) n >= CONTEXT_MAX)
                return -EINVAL;
        *ret_len = (size_t) n;
        return 0;
}

/* Writes members/<fp>.point and members/<fp>.key (the key wrapped to point). */
static int write_member(Pool *p, const char *id, const uint8_t key[POOL_KEY_SIZE],
                        const uint8_t point[POOL_KEY_POINT_SIZE]) {
        char fp[POOL_KEY_FINGERPRINT_HEX_SIZE], ctx[CONTEXT_MAX];
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *pf = NULL, *kf = NULL;
        size_t ctx_len, len;
        int r;

        r = pool_key_fingerprint_hex(point, fp);
        if (r < 0)
                return r;
        r = context_of(id, fp, ctx, &ctx_len);
        if (r < 0)
                return r;
        r = pool_key_wrap(key, point, (const uint8_t *) ctx, ctx_len, &blob, &len);
        if (r < 0)
                return r;
        pf = host_file(fp, POINT_SUFFIX);
        kf = host_file(fp, KEY_SUFFIX);
        if (!pf || !kf)
                return -ENOMEM;
        r = stateroot_write_raw(p->members, pf, point, POOL_KEY_POINT_SIZE);
        if (r < 0)
                return r;
        return stateroot_write_raw(p->members, kf, blob, len);
}

int pool_init(Pool *p, const uint8_t own_point[POOL_KEY_POINT_SIZE], uint8_t ret_key[POOL_KEY_SIZE]) {
        uint8_t key[POOL_KEY_SIZE];
        char id[POOL_ID_SIZE];
        int r;

        r = pool_id(p, id);
        if (r >= 0)
                return -EEXIST;
        if (r != -ENOENT)
                return r;
        r = crypto_random_uuid(id);
        if (r >= 0)
                r = crypto_random(key, sizeof(key));
        /* The member first: a pool id with no member able to unwrap would be a dead pool. */
        if (r >= 0)
                r = write_member(p, id, key, own_point);
        if (r >= 0)
                r = stateroot_write_raw(p->top, POOL_ID_FILE, id, POOL_ID_SIZE - 1);
        if (r >= 0)
                memcpy(ret_key, key, sizeof(key));
        crypto_wipe(key, sizeof(key));
        return r;
}

int pool_unlock(Pool *p, HostTpm *t, const uint8_t own_point[POOL_KEY_POINT_SIZE], uint8_t ret_key[POOL_KEY_SIZE]) {
        char id[POOL_ID_SIZE], fp[POOL_KEY_FINGERPRINT_HEX_SIZE], ctx[CONTEXT_MAX];
        uint8_t eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *kf = NULL;
        size_t len, ctx_len;
        int r;

        r = pool_id(p, id);
        if (r < 0)
                return r;
        r = pool_key_fingerprint_hex(own_point, fp);
        if (r < 0)
                return r;
        kf = host_file(fp, KEY_SUFFIX);
        if (!kf)
                return -ENOMEM;
        r = stateroot_read_raw(p->members, kf, &blob, &len);
        if (r < 0)
                return r;
        r = context_of(id, fp, ctx, &ctx_len);
        if (r >= 0)
                r = pool_key_parse(blob, len, own_point, eph);
        if (r >= 0)
                r = host_tpm_transfer_zgen(t, own_point, eph, z);
        if (r >= 0)
                r = pool_key_open(blob, len, own_point, z, (const uint8_t *) ctx, ctx_len, ret_key);
        crypto_wipe(z, sizeof(z));
        return r;
}

int pool_request_join(Pool *p, const uint8_t own_point[POOL_KEY_POINT_SIZE]) {
        char fp[POOL_KEY_FINGERPRINT_HEX_SIZE];
        _cleanup_free_ char *pf = NULL;
        int r;

        r = pool_key_fingerprint_hex(own_point, fp);
        if (r < 0)
                return r;
        pf = host_file(fp, POINT_SUFFIX);
        if (!pf)
                return -ENOMEM;
        return stateroot_write_raw(p->requests, pf, own_point, POOL_KEY_POINT_SIZE);
}

int pool_admit(Pool *p, const uint8_t key[POOL_KEY_SIZE], const char *fp) {
        char id[POOL_ID_SIZE], got[POOL_KEY_FINGERPRINT_HEX_SIZE];
        _cleanup_free_ uint8_t *point = NULL;
        _cleanup_free_ char *pf = NULL;
        size_t len;
        int r;

        if (!fp_ok(fp))
                return -EINVAL;
        r = pool_id(p, id);
        if (r < 0)
                return r;
        pf = host_file(fp, POINT_SUFFIX);
        if (!pf)
                return -ENOMEM;
        r = stateroot_read_raw(p->requests, pf, &point, &len);
        if (r < 0)
                return r;
        /* The file's name is only a name: the point itself must have the fingerprint the admin was shown. */
        if (len != POOL_KEY_POINT_SIZE || pool_key_fingerprint_hex(point, got) < 0 || !streq(got, fp))
                return -EBADMSG;
        r = write_member(p, id, key, point);
        if (r < 0)
                return r;
        r = stateroot_remove_raw(p->requests, pf);
        return r < 0 ? r : 0;
}

int pool_remove(Pool *p, const char *fp) {
        _cleanup_free_ char *pf = NULL, *kf = NULL;
        int r, found = 0;

        if (!fp_ok(fp))
                return -EINVAL;
        pf = host_file(fp, POINT_SUFFIX);
        kf = host_file(fp, KEY_SUFFIX);
        if (!pf || !kf)
                return -ENOMEM;
        /* The key first: a member without its key file can no longer unlock. */
        r = stateroot_remove_raw(p->members, kf);
        if (r < 0)
                return r;
        found += r;
        r = stateroot_remove_raw(p->members, pf);
        if (r < 0)
                return r;
        found += r;
        r = stateroot_remove_raw(p->requests, pf);
        if (r < 0)
                return r;
        found += r;
        return found ? 0 : -ENOENT;
}

static int cmp_host(const void *a, const void *b) {
        return strcmp(((const PoolHost *) a)->fp, ((const PoolHost *) b)->fp);
}

/* Adds the <fp>.point names of root to *v. */
/* Calls f with every "<stem><suffix>" name in root whose stem is stem_len
 * characters long (the caller checks the stem itself); stops at f's first
 * error. */
static int each_name(StateRoot *root, const char *suffix, size_t stem_len, int (*f)(const char *stem, void *userdata),
                     void *userdata) {
        int fd = fcntl(stateroot_fd(root), F_DUPFD_CLOEXEC, 3);
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return -ENOMEM;
        }
        rewinddir(d);
        while (r >= 0 && (de = readdir(d))) {
                char stem[128];

                if (strlen(de->d_name) != stem_len + strlen(suffix) || stem_len >= sizeof(stem) ||
                    !streq(de->d_name + stem_len, suffix))
                        continue;
                memcpy(stem, de->d_name, stem_len);
                stem[stem_len] = '\0';
                r = f(stem, userdata);
        }
        closedir(d);
        return r;
}

typedef struct HostList {
        PoolHost *v;
        size_t n;
        bool member;
} HostList;

static int add_point(const char *fp, void *userdata) {
        HostList *l = userdata;
        PoolHost *nv;

        if (!fp_ok(fp))
                return 0;
        nv = reallocarray(l->v, l->n + 1, sizeof(*l->v));
        if (!nv)
                return -ENOMEM;
        l->v = nv;
        l->v[l->n] = (PoolHost){ .member = l->member };
        memcpy(l->v[l->n].fp, fp, POOL_KEY_FINGERPRINT_HEX_SIZE);
        l->n++;
        return 0;
}

static int list_points(StateRoot *root, bool member, PoolHost **v, size_t *n) {
        HostList l = { .v = *v, .n = *n, .member = member };
        int r = each_name(root, POINT_SUFFIX, POOL_KEY_FINGERPRINT_HEX_SIZE - 1, add_point, &l);

        *v = l.v; /* what was added so far is the caller's to free */
        *n = l.n;
        return r;
}

int pool_list(Pool *p, PoolHost **ret, size_t *ret_n) {
        _cleanup_free_ PoolHost *v = NULL;
        size_t n = 0;
        int r;

        r = list_points(p->members, true, &v, &n);
        if (r >= 0)
                r = list_points(p->requests, false, &v, &n);
        if (r < 0)
                return r;
        if (n)
                qsort(v, n, sizeof(*v), cmp_host);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

/* ---- handovers ---- */

static bool handover_kind(StateKind kind) {
        return kind == STATE_KIND_HANDOVER_REQUEST || kind == STATE_KIND_HANDOVER_GRANT;
}

/* <uuid>.request or <uuid>.grant; the uuid canonical, so no path tricks either. */
static int handover_name(const char *uuid, StateKind kind, uint8_t bin[STATEFILE_UUID_SIZE], char **ret) {
        char canon[37];

        if (!handover_kind(kind) || statefile_uuid_from_string(uuid, bin) < 0)
                return -EINVAL;
        statefile_uuid_to_string(bin, canon);
        if (!streq(canon, uuid))
                return -EINVAL;
        *ret = host_file(uuid, kind == STATE_KIND_HANDOVER_GRANT ? ".grant" : ".request");
        return *ret ? 0 : -ENOMEM;
}

int pool_handover_write(Pool *p, const char *uuid, StateKind kind, const uint8_t key[POOL_KEY_SIZE],
                        const StateHandover *h) {
        _cleanup_free_ char *name = NULL;
        uint8_t bin[STATEFILE_UUID_SIZE], buf[STATE_HANDOVER_SIZE];
        int r;

        r = handover_name(uuid, kind, bin, &name);
        if (r < 0)
                return r;
        state_handover_encode(h, buf);
        return stateroot_write_named(p->handovers, name, kind, bin, key, h->su.usec, buf, sizeof(buf));
}

int pool_handover_read(Pool *p, const char *uuid, StateKind kind, const uint8_t key[POOL_KEY_SIZE],
                       StateHandover *ret) {
        _cleanup_free_ char *name = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        uint8_t bin[STATEFILE_UUID_SIZE];
        uint64_t seq;
        size_t len;
        int r;

        r = handover_name(uuid, kind, bin, &name);
        if (r < 0)
                return r;
        r = stateroot_read_named(p->handovers, name, kind, bin, key, &buf, &len, &seq);
        if (r < 0)
                return r;
        return state_handover_parse(buf, len, ret);
}

int pool_handover_remove(Pool *p, const char *uuid, StateKind kind) {
        _cleanup_free_ char *name = NULL;
        uint8_t bin[STATEFILE_UUID_SIZE];
        int r;

        r = handover_name(uuid, kind, bin, &name);
        if (r < 0)
                return r;
        return stateroot_remove_raw(p->handovers, name);
}

typedef struct UuidList {
        char **v;
        size_t n;
} UuidList;

static int add_uuid(const char *uuid, void *userdata) {
        UuidList *l = userdata;
        uint8_t bin[STATEFILE_UUID_SIZE];
        char **nv;

        if (statefile_uuid_from_string(uuid, bin) < 0)
                return 0;
        nv = reallocarray(l->v, l->n + 2, sizeof(*l->v));
        if (!nv)
                return -ENOMEM;
        l->v = nv;
        l->v[l->n] = strdup(uuid);
        if (!l->v[l->n])
                return -ENOMEM;
        l->v[++l->n] = NULL;
        return 0;
}

int pool_handover_list(Pool *p, StateKind kind, char ***ret) {
        const char *suffix = kind == STATE_KIND_HANDOVER_GRANT ? ".grant" : ".request";
        UuidList l = { 0 };
        int r;

        if (!handover_kind(kind))
                return -EINVAL;
        l.v = calloc(1, sizeof(*l.v));
        if (!l.v)
                return -ENOMEM;
        r = each_name(p->handovers, suffix, 36, add_uuid, &l);
        if (r < 0) {
                for (size_t i = 0; i < l.n; i++)
                        free(l.v[i]);
                free(l.v);
                return r;
        }
        *ret = l.v;
        return 0;
}
