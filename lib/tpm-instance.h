/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The libtpms wrapper: the only code in the project that includes libtpms.
 *
 * libtpms is a process-wide singleton (research libtpms-swtpm.md §1.8): its
 * callbacks carry no context pointer and its whole TPM image lives in
 * globals. So there is at most ONE TpmInstance per process; a second
 * tpm_instance_new() fails with -EBUSY until the first is freed.
 *
 * Threading (§1.5): libtpms has no locks. tpm_instance_process() and every
 * other call on an instance must come from one thread at a time (the caller
 * provides the happens-before, e.g. a mutex hand-off); the only exception is
 * tpm_instance_cancel(), which may be called from another thread while
 * tpm_instance_process() runs.
 *
 * Persistent state goes through a TpmStore, never libtpms's NVChip file
 * fallback. libtpms re-reads "permall" right after writing it, so a store must
 * give back exactly what was last stored.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* protocol/tpm.h (TpmFamily, header helpers). Spelled as a relative path
 * because both lib/ and protocol/ have a tpm.h; consumers include this header
 * the same way ("../lib/tpm.h") so the choice never depends on -I order. */
#include "tpm.h"

/* Blob names libtpms uses (include/libtpms/tpm_nvfilename.h), repeated here so
 * store implementations need not include libtpms. */
#define TPM_STORE_PERMALL "permall"
#define TPM_STORE_VOLATILE "volatilestate"
#define TPM_STORE_SAVESTATE "savestate"

typedef struct TpmStore TpmStore;

typedef struct TpmStoreOps {
        /* Returns a malloc'd copy of the blob, or -ENOENT if none is stored. */
        int (*load)(TpmStore *s, const char *name, uint8_t **ret, size_t *ret_len);
        /* Replaces the blob. A failure puts the TPM into failure mode. */
        int (*store)(TpmStore *s, const char *name, const uint8_t *buf, size_t len);
        /* -ENOENT if there was none. */
        int (*remove)(TpmStore *s, const char *name);
        void (*free)(TpmStore *s);
} TpmStoreOps;

/* Implementations embed this as their first member. */
struct TpmStore {
        const TpmStoreOps *ops;
};

/* A store that keeps blobs in memory (lost at exit). */
int tpm_store_memory_new(TpmStore **ret);
TpmStore *tpm_store_free(TpmStore *s); /* accepts NULL; returns NULL */

typedef struct TpmInstance TpmInstance;

/* Largest command and response: one 4 KiB page minus the tpmif header
 * (research xen-protocol.md §2.6, §8 item 7). */
#define TPM_INSTANCE_BUFFER_SIZE 4088u

/* Registers callbacks, chooses the version, sets the buffer size to
 * TPM_INSTANCE_BUFFER_SIZE and powers the TPM on (manufacturing a new one if
 * the store holds no "permall"). The store is borrowed and must outlive the
 * instance. -EBUSY if an instance already exists in this process. */
int tpm_instance_new(TpmFamily family, TpmStore *store, TpmInstance **ret);
/* Like tpm_instance_new(), but the TPM resumes from the given blobs
 * (TPMLIB_SetState before MainInit) instead of loading "permall" from the
 * store: perm is a permanent-state blob, vol (optional, only with perm) a
 * TPMLIB_VolatileAll_Store blob. With vol the TPM is already started (send
 * no Startup): PCRs, loaded objects and sessions are as they were saved.
 * libtpms copies the blobs; the caller may wipe and free them on return.
 * MainInit then writes "permall" through the store once. -EIO if libtpms
 * rejects a blob. */
int tpm_instance_restore(TpmFamily family, TpmStore *store, const uint8_t *perm, size_t perm_len,
                         const uint8_t *vol, size_t vol_len, TpmInstance **ret);

/* Powers the TPM off and on again (TPMLIB_Terminate, MainInit): the way out
 * of libtpms' failure mode, which a failed store write enters. The TPM then
 * runs from what the store holds (like a power cycle: PCRs and sessions are
 * gone; TPM 2.0 needs a Startup). On failure the instance is left powered
 * off and every command answers an error; call it again later. */
int tpm_instance_reinit(TpmInstance *t);

/* TPMLIB_Terminate. Accepts NULL; returns NULL. No Shutdown is sent. */
TpmInstance *tpm_instance_free(TpmInstance *t);

TpmFamily tpm_instance_family(const TpmInstance *t);

/* Runs one command. The response (whatever the TPM answered, including TPM
 * error codes) is copied to resp; -ENOBUFS if it does not fit in resp_max,
 * -EMSGSIZE if len exceeds TPM_INSTANCE_BUFFER_SIZE. `locality` is handed to
 * libtpms as is (it validates it). */
int tpm_instance_process(TpmInstance *t, const uint8_t *cmd, size_t len, uint8_t *resp, size_t resp_max,
                         size_t *ret_len, uint8_t locality);

/* The same without the copy: *ret_resp points into the instance's own
 * response buffer and stays valid until the next command on it. The serving
 * loop posts it to the guest's page from there. */
int tpm_instance_process_view(TpmInstance *t, const uint8_t *cmd, size_t len, const uint8_t **ret_resp,
                              size_t *ret_len, uint8_t locality);

/* Asks a running tpm_instance_process() to stop (TPMLIB_CancelCommand): long
 * operations (RSA key generation, ECC loops, self tests) then answer
 * TPM_RC_CANCELED. A cancel that arrives before the command starts is lost
 * (libtpms clears the flag at the start of each command). Thread-safe in the
 * sense libtpms supports: one other thread. */
void tpm_instance_cancel(TpmInstance *t);

/* TPM 2.0: TPM2_Startup(CLEAR); TPM 1.2: TPM_Startup(ST_CLEAR). 0 on success,
 * -EALREADY if the TPM was already started, -EIO if it answered another error
 * (*ret_rc, if not NULL, receives the TPM's response code in every case where
 * it answered). */
int tpm_instance_startup(TpmInstance *t, uint32_t *ret_rc);
/* TPM 2.0: TPM2_Shutdown(CLEAR) before an orderly reset, so the dictionary-
 * attack counter does not rise on the next start. TPM 1.2: nothing to do, 0. */
int tpm_instance_shutdown(TpmInstance *t, uint32_t *ret_rc);

/* The TPM established flag (the emulator protocol's GET/RESET_TPMESTABLISHED);
 * resetting it needs locality 3 or 4 (libtpms decides). */
int tpm_instance_established(TpmInstance *t, bool *ret);
int tpm_instance_reset_established(TpmInstance *t, uint8_t locality);

/* The volatile state (PCRs, loaded objects, sessions): malloc'd, caller frees. */
int tpm_instance_save_volatile(TpmInstance *t, uint8_t **ret, size_t *ret_len);
