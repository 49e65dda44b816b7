/* SPDX-License-Identifier: BSD-3-Clause */
/* The emulator front's TPM on libtpms (emu-tpm.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emu-tpm.h"
#include "emulator.h"
#include "util.h"

struct EmuTpm {
        TpmFamily family;
        TpmStore *store; /* borrowed */
        TpmInstance *tpm;
        /* SET_STATEBLOB while off: the next power-on's state. */
        uint8_t *perm, *vol;
        size_t perm_len, vol_len;
};

static void drop(uint8_t **p, size_t *len) {
        if (*p)
                explicit_wipe(*p, *len);
        free(*p);
        *p = NULL;
        *len = 0;
}

int emu_tpm_new(TpmFamily family, TpmStore *store, EmuTpm **ret) {
        EmuTpm *e;

        if (!store)
                return -EINVAL;
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->family = family;
        e->store = store;
        *ret = e;
        return 0;
}

EmuTpm *emu_tpm_free(EmuTpm *e) {
        if (!e)
                return NULL;
        e->tpm = tpm_instance_free(e->tpm);
        drop(&e->perm, &e->perm_len);
        drop(&e->vol, &e->vol_len);
        free(e);
        return NULL;
}

static int op_power_on(void *userdata, bool delete_volatile) {
        EmuTpm *e = userdata;
        int r;

        e->tpm = tpm_instance_free(e->tpm);
        if (e->perm || e->vol) {
                _cleanup_free_ uint8_t *stored = NULL;
                size_t stored_len = 0;
                const uint8_t *perm = e->perm;
                size_t perm_len = e->perm_len;

                /* A volatile blob alone (QEMU skips empty ones) goes with the stored permanent state. */
                if (!perm) {
                        r = e->store->ops->load(e->store, TPM_STORE_PERMALL, &stored, &stored_len);
                        if (r < 0)
                                return r;
                        perm = stored;
                        perm_len = stored_len;
                }
                r = tpm_instance_restore(e->family, e->store, perm, perm_len, e->vol, e->vol_len, &e->tpm);
                if (stored)
                        explicit_wipe(stored, stored_len);
                drop(&e->perm, &e->perm_len);
                if (delete_volatile || r >= 0)
                        drop(&e->vol, &e->vol_len);
                return r;
        }
        return tpm_instance_new(e->family, e->store, &e->tpm);
}

static void op_power_off(void *userdata) {
        EmuTpm *e = userdata;

        if (!e->tpm)
                return;
        /* The guest may have left it started: an orderly shutdown keeps the DA counter where it is. */
        (void) tpm_instance_shutdown(e->tpm, NULL);
        e->tpm = tpm_instance_free(e->tpm);
}

static bool op_powered(void *userdata) {
        EmuTpm *e = userdata;
        return e->tpm;
}

static int op_process(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, const uint8_t **ret_resp,
                      size_t *ret_len) {
        EmuTpm *e = userdata;
        if (!e->tpm)
                return -EIO;
        return tpm_instance_process_view(e->tpm, cmd, len, ret_resp, ret_len, locality);
}

static void op_cancel(void *userdata) {
        EmuTpm *e = userdata;
        if (e->tpm)
                tpm_instance_cancel(e->tpm);
}

static int op_established(void *userdata, bool *ret) {
        EmuTpm *e = userdata;
        return e->tpm ? tpm_instance_established(e->tpm, ret) : -EIO;
}

static int op_reset_established(void *userdata, uint8_t locality) {
        EmuTpm *e = userdata;
        return e->tpm ? tpm_instance_reset_established(e->tpm, locality) : -EIO;
}

static int op_get_blob(void *userdata, uint32_t type, uint8_t **ret, size_t *ret_len) {
        EmuTpm *e = userdata;

        switch (type) {
        case EMU_BLOB_PERMANENT:
                return e->store->ops->load(e->store, TPM_STORE_PERMALL, ret, ret_len);
        case EMU_BLOB_VOLATILE:
                return e->tpm ? tpm_instance_save_volatile(e->tpm, ret, ret_len) : -EIO;
        case EMU_BLOB_SAVESTATE:
                /* TPM 1.2's TPM_SaveState blob; this front keeps none: an empty blob, which QEMU skips. */
                *ret = NULL;
                *ret_len = 0;
                return 0;
        default:
                return -EINVAL;
        }
}

static int op_set_blob(void *userdata, uint32_t type, const uint8_t *data, size_t len) {
        EmuTpm *e = userdata;
        uint8_t **slot;
        size_t *slot_len;

        switch (type) {
        case EMU_BLOB_PERMANENT:
                slot = &e->perm, slot_len = &e->perm_len;
                break;
        case EMU_BLOB_VOLATILE:
                slot = &e->vol, slot_len = &e->vol_len;
                break;
        case EMU_BLOB_SAVESTATE:
                return len == 0 ? 0 : -EOPNOTSUPP;
        default:
                return -EINVAL;
        }
        drop(slot, slot_len);
        if (len == 0)
                return 0;
        *slot = malloc(len);
        if (!*slot)
                return -ENOMEM;
        memcpy(*slot, data, len);
        *slot_len = len;
        return 0;
}

const EmuFrontOps emu_tpm_ops = {
        .power_on = op_power_on,
        .power_off = op_power_off,
        .powered = op_powered,
        .process = op_process,
        .cancel = op_cancel,
        .established = op_established,
        .reset_established = op_reset_established,
        .get_blob = op_get_blob,
        .set_blob = op_set_blob,
};
