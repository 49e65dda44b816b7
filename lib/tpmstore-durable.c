/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tpmstore-durable.h"
#include "util.h"

typedef struct DurableStore {
        TpmStore base;
        StateDir *dir;
        uint8_t key[CRYPTO_KEY_SIZE];
        uint64_t seq;
        uint64_t perm_floor;
        int error;
        TpmStoreDurableNotify notify;
        void *userdata;
        /* Blobs other than permall (see the header). */
        TpmStore *memory;
} DurableStore;

static const TpmStoreOps durable_ops;

static DurableStore *durable(TpmStore *s) {
        /* Only our own ops reach here: a programmer error otherwise. */
        return s && s->ops == &durable_ops ? (DurableStore *) s : NULL;
}

int tpm_store_durable_read(TpmStore *s, StateKind kind, uint8_t **ret, size_t *ret_len, uint64_t *ret_seq) {
        DurableStore *d = durable(s);
        uint8_t *buf = NULL;
        size_t len = 0;
        uint64_t seq = 0;
        int r;

        if (!d)
                return -EINVAL;
        r = statedir_read(d->dir, kind, d->key, &buf, &len, &seq);
        if (r < 0)
                return r;
        if (kind == STATE_KIND_PERMANENT && seq < d->perm_floor) {
                explicit_wipe(buf, len);
                free(buf);
                return -ESTALE;
        }
        if (seq > d->seq)
                d->seq = seq;
        *ret = buf;
        *ret_len = len;
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

int tpm_store_durable_write(TpmStore *s, StateKind kind, const void *data, size_t len, uint64_t *ret_seq) {
        DurableStore *d = durable(s);
        uint64_t seq;
        int r;

        if (!d)
                return -EINVAL;
        /* A seq is never reused, even after a failed write: the supervisor
         * only ever records seqs that were reported durable. */
        seq = ++d->seq;
        r = statedir_write(d->dir, kind, d->key, seq, data, len);
        if (r < 0) {
                if (d->error == 0)
                        d->error = r;
                if (d->notify)
                        d->notify(d->userdata, kind, r, 0);
                return r;
        }
        if (kind == STATE_KIND_PERMANENT)
                d->perm_floor = seq;
        if (d->notify)
                d->notify(d->userdata, kind, 0, seq);
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

int tpm_store_durable_remove(TpmStore *s, StateKind kind) {
        DurableStore *d = durable(s);
        return d ? statedir_remove(d->dir, kind) : -EINVAL;
}

void tpm_store_durable_raise_seq(TpmStore *s, uint64_t v) {
        DurableStore *d = durable(s);
        if (d && v > d->seq)
                d->seq = v;
}

uint64_t tpm_store_durable_seq(const TpmStore *s) {
        return s && s->ops == &durable_ops ? ((const DurableStore *) s)->seq : 0;
}

int tpm_store_durable_take_error(TpmStore *s) {
        DurableStore *d = durable(s);
        if (!d)
                return 0;
        int r = d->error;
        d->error = 0;
        return r;
}

static int durable_load(TpmStore *s, const char *name, uint8_t **ret, size_t *ret_len) {
        DurableStore *d = (DurableStore *) s;
        if (streq(name, TPM_STORE_PERMALL))
                return tpm_store_durable_read(s, STATE_KIND_PERMANENT, ret, ret_len, NULL);
        return d->memory->ops->load(d->memory, name, ret, ret_len);
}

static int durable_store(TpmStore *s, const char *name, const uint8_t *buf, size_t len) {
        DurableStore *d = (DurableStore *) s;
        if (streq(name, TPM_STORE_PERMALL))
                return tpm_store_durable_write(s, STATE_KIND_PERMANENT, buf, len, NULL);
        return d->memory->ops->store(d->memory, name, buf, len);
}

static int durable_remove(TpmStore *s, const char *name) {
        DurableStore *d = (DurableStore *) s;
        /* libtpms never deletes permall (TPM 2.0 never calls deletename at all). */
        if (streq(name, TPM_STORE_PERMALL))
                return -EPERM;
        return d->memory->ops->remove(d->memory, name);
}

static void durable_free(TpmStore *s) {
        DurableStore *d = (DurableStore *) s;
        tpm_store_free(d->memory);
        explicit_wipe(d->key, sizeof(d->key));
        free(d);
}

static const TpmStoreOps durable_ops = {
        .load = durable_load,
        .store = durable_store,
        .remove = durable_remove,
        .free = durable_free,
};

int tpm_store_durable_new(StateDir *dir, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t min_perm_seq,
                          TpmStoreDurableNotify notify, void *userdata, TpmStore **ret) {
        if (!dir || !key)
                return -EINVAL;
        DurableStore *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        int r = tpm_store_memory_new(&d->memory);
        if (r < 0) {
                free(d);
                return r;
        }
        d->base.ops = &durable_ops;
        d->dir = dir;
        memcpy(d->key, key, sizeof(d->key));
        d->seq = min_perm_seq;
        d->perm_floor = min_perm_seq;
        d->notify = notify;
        d->userdata = userdata;
        *ret = &d->base;
        return 0;
}
