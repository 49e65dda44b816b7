/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libtpms wrapper. See tpm.h for the threading and singleton rules; research
 * libtpms-swtpm.md §1 for every libtpms fact relied on here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_memory.h>
#include <libtpms/tpm_tis.h>
#include <libtpms/tpm_types.h>

#include "tpm-instance.h"
#include "util.h"

struct TpmInstance {
        TpmFamily family;
        TpmStore *store;
        /* libtpms' response buffer, reused across commands (TPMLIB_Process
         * reallocs it only if it is smaller than its maximum). */
        unsigned char *resp;
        uint32_t resp_cap;
        /* Written by the processing thread just before TPMLIB_Process, read by
         * the locality callback on the same thread. */
        uint8_t locality;
        /* Between a successful MainInit and Terminate: libtpms must not be
         * asked to process anything otherwise. */
        bool powered;
};

/* libtpms callbacks have no context pointer (research §1.3): the one instance
 * of this process. */
static TpmInstance *current;

/* The one place a libtpms API result becomes an errno. */
static int tpm_result_to_errno(TPM_RESULT r) {
        switch (r) {
        case TPM_SUCCESS:
                return 0;
        case TPM_SIZE:
                return -ENOMEM;
        case TPM_BAD_PARAMETER:
                return -EINVAL;
        case TPM_RETRY:
                return -ENOENT;
        case TPM_INVALID_POSTINIT:
                return -EBUSY;
        case TPM_BAD_VERSION:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

/* ---- the memory store ---- */

typedef struct MemoryBlob {
        char *name;
        uint8_t *data;
        size_t len;
        struct MemoryBlob *next;
} MemoryBlob;

typedef struct MemoryStore {
        TpmStore base;
        MemoryBlob *blobs;
} MemoryStore;

static MemoryBlob *memory_find(MemoryStore *m, const char *name) {
        for (MemoryBlob *b = m->blobs; b; b = b->next)
                if (streq(b->name, name))
                        return b;
        return NULL;
}

static int memory_load(TpmStore *s, const char *name, uint8_t **ret, size_t *ret_len) {
        MemoryStore *m = (MemoryStore *) s;
        MemoryBlob *b = memory_find(m, name);
        if (!b)
                return -ENOENT;
        /* malloc(0) may return NULL: always allocate at least one byte. */
        uint8_t *copy = malloc(b->len ?: 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, b->data, b->len);
        *ret = copy;
        *ret_len = b->len;
        return 0;
}

static int memory_store(TpmStore *s, const char *name, const uint8_t *buf, size_t len) {
        MemoryStore *m = (MemoryStore *) s;
        _cleanup_free_ uint8_t *copy = malloc(len ?: 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, buf, len);

        MemoryBlob *b = memory_find(m, name);
        if (!b) {
                _cleanup_free_ MemoryBlob *nb = calloc(1, sizeof(*nb));
                if (!nb)
                        return -ENOMEM;
                nb->name = strdup(name);
                if (!nb->name)
                        return -ENOMEM;
                nb->next = m->blobs;
                m->blobs = b = TAKE_PTR(nb);
        }
        explicit_wipe(b->data, b->len);
        free(b->data);
        b->data = TAKE_PTR(copy);
        b->len = len;
        return 0;
}

static int memory_remove(TpmStore *s, const char *name) {
        MemoryStore *m = (MemoryStore *) s;
        for (MemoryBlob **p = &m->blobs; *p; p = &(*p)->next) {
                MemoryBlob *b = *p;
                if (!streq(b->name, name))
                        continue;
                *p = b->next;
                explicit_wipe(b->data, b->len);
                free(b->data);
                free(b->name);
                free(b);
                return 0;
        }
        return -ENOENT;
}

static void memory_free(TpmStore *s) {
        MemoryStore *m = (MemoryStore *) s;
        while (m->blobs)
                (void) memory_remove(s, m->blobs->name);
        free(m);
}

static const TpmStoreOps memory_ops = {
        .load = memory_load,
        .store = memory_store,
        .remove = memory_remove,
        .free = memory_free,
};

int tpm_store_memory_new(TpmStore **ret) {
        MemoryStore *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->base.ops = &memory_ops;
        *ret = &m->base;
        return 0;
}

TpmStore *tpm_store_free(TpmStore *s) {
        if (s)
                s->ops->free(s);
        return NULL;
}

/* ---- libtpms callbacks ---- */

static TPM_RESULT cb_nvram_init(void) {
        return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_loaddata(unsigned char **data, uint32_t *length, uint32_t tpm_number, const char *name) {
        if (!current)
                return TPM_FAIL;
        uint8_t *buf = NULL;
        size_t len = 0;
        int r = current->store->ops->load(current->store, name, &buf, &len);
        if (r == -ENOENT)
                return TPM_RETRY; /* "nothing stored", not an error (§1.3) */
        if (r < 0)
                return TPM_FAIL;
        if (len > UINT32_MAX) {
                free(buf);
                return TPM_FAIL;
        }
        *data = buf; /* libtpms frees it with free() */
        *length = (uint32_t) len;
        return TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_storedata(const unsigned char *data, uint32_t length, uint32_t tpm_number,
                                     const char *name) {
        if (!current)
                return TPM_FAIL;
        return current->store->ops->store(current->store, name, data, length) < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_nvram_deletename(uint32_t tpm_number, const char *name, TPM_BOOL must_exist) {
        if (!current)
                return TPM_FAIL;
        int r = current->store->ops->remove(current->store, name);
        if (r == -ENOENT && !must_exist)
                return TPM_SUCCESS;
        return r < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void) {
        return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getlocality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number) {
        *locality = current ? current->locality : 0;
        return TPM_SUCCESS;
}

static TPM_RESULT cb_io_getphysicalpresence(TPM_BOOL *pp, uint32_t tpm_number) {
        /* A guest has no physical presence switch. */
        *pp = FALSE;
        return TPM_SUCCESS;
}

/* ---- instance ---- */

/* libtpms writes its forced error lines to stderr unless it has a debug fd,
 * and on entering failure mode it hex-dumps the command: guest data, which
 * must not reach the journal (DESIGN.md: payloads only behind the trace
 * switch). Its debug fd is /dev/null, opened once and kept (the process may
 * be confined by the time the TPM is re-initialised). Our callers log the
 * failures themselves. */
static int quiet_libtpms(void) {
        static int devnull = -1;

        if (devnull < 0) {
                devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull < 0)
                        return negative_errno();
        }
        TPMLIB_SetDebugFD(devnull);
        return 0;
}

/* Everything from RegisterCallbacks to MainInit; `current` must be t. On
 * failure libtpms is terminated again. */
static int instance_power_on(TpmInstance *t, const uint8_t *perm, size_t perm_len, const uint8_t *vol,
                             size_t vol_len) {
        TPMLIB_TPMVersion version = TPMLIB_TPM_VERSION_2;
        int r;

        switch (t->family) {
        case TPM_FAMILY_2_0:
                version = TPMLIB_TPM_VERSION_2;
                break;
        case TPM_FAMILY_1_2:
                version = TPMLIB_TPM_VERSION_1_2;
                break;
        }

        struct libtpms_callbacks cbs = {
                .sizeOfStruct = sizeof(cbs),
                .tpm_nvram_init = cb_nvram_init,
                .tpm_nvram_loaddata = cb_nvram_loaddata,
                .tpm_nvram_storedata = cb_nvram_storedata,
                .tpm_nvram_deletename = cb_nvram_deletename,
                .tpm_io_init = cb_io_init,
                .tpm_io_getlocality = cb_io_getlocality,
                .tpm_io_getphysicalpresence = cb_io_getphysicalpresence,
        };
        r = quiet_libtpms();
        if (r < 0)
                return r;
        r = tpm_result_to_errno(TPMLIB_RegisterCallbacks(&cbs));
        if (r < 0)
                return r;
        r = tpm_result_to_errno(TPMLIB_ChooseTPMVersion(version));
        if (r < 0)
                return r;

        /* Only TPM 2.0 negotiates a size; 1.2 has a fixed one. */
        if (t->family == TPM_FAMILY_2_0) {
                uint32_t min = 0, max = 0;
                uint32_t got = TPMLIB_SetBufferSize(TPM_INSTANCE_BUFFER_SIZE, &min, &max);
                if (got != TPM_INSTANCE_BUFFER_SIZE)
                        return -ERANGE;
        }

        /* SetState copies and test-unmarshals the blobs (research §1.4): a
         * blob libtpms rejects fails here, before anything is written. The
         * permanent blob must come first, the volatile one is checked
         * against it. */
        if (perm) {
                if (perm_len > UINT32_MAX)
                        return -EINVAL;
                r = tpm_result_to_errno(TPMLIB_SetState(TPMLIB_STATE_PERMANENT, perm, (uint32_t) perm_len));
                if (r < 0)
                        goto fail;
        }
        if (vol) {
                if (!perm || vol_len > UINT32_MAX) {
                        r = -EINVAL;
                        goto fail;
                }
                r = tpm_result_to_errno(TPMLIB_SetState(TPMLIB_STATE_VOLATILE, vol, (uint32_t) vol_len));
                if (r < 0)
                        goto fail;
        }

        /* The callbacks run inside MainInit already. */
        r = tpm_result_to_errno(TPMLIB_MainInit());
        if (r < 0)
                goto fail;
        t->powered = true;
        return 0;

fail:
        /* Also drops blobs cached by SetState. */
        TPMLIB_Terminate();
        return r;
}

int tpm_instance_restore(TpmFamily family, TpmStore *store, const uint8_t *perm, size_t perm_len,
                         const uint8_t *vol, size_t vol_len, TpmInstance **ret) {
        int r;

        if (!store || !store->ops)
                return -EINVAL;
        if (current)
                return -EBUSY;

        _cleanup_free_ TpmInstance *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->family = family;
        t->store = store;

        current = t;
        r = instance_power_on(t, perm, perm_len, vol, vol_len);
        if (r < 0) {
                current = NULL;
                return r;
        }

        *ret = TAKE_PTR(t);
        return 0;
}

int tpm_instance_new(TpmFamily family, TpmStore *store, TpmInstance **ret) {
        return tpm_instance_restore(family, store, NULL, 0, NULL, 0, ret);
}

int tpm_instance_reinit(TpmInstance *t) {
        if (!t || current != t)
                return -EINVAL;
        if (t->powered)
                TPMLIB_Terminate();
        t->powered = false;
        return instance_power_on(t, NULL, 0, NULL, 0);
}

TpmInstance *tpm_instance_free(TpmInstance *t) {
        if (!t)
                return NULL;
        if (t->powered)
                TPMLIB_Terminate();
        if (current == t)
                current = NULL;
        free(t->resp);
        free(t);
        return NULL;
}

TpmFamily tpm_instance_family(const TpmInstance *t) {
        return t->family;
}

int tpm_instance_process_view(TpmInstance *t, const uint8_t *cmd, size_t len, const uint8_t **ret_resp,
                              size_t *ret_len, uint8_t locality) {
        uint32_t resp_len = 0;

        if (len > TPM_INSTANCE_BUFFER_SIZE)
                return -EMSGSIZE;
        if (!t->powered)
                return -EIO;

        t->locality = locality;
        /* libtpms takes a non-const command but does not modify or keep it (§1.2). */
        int r = tpm_result_to_errno(
                TPMLIB_Process(&t->resp, &resp_len, &t->resp_cap, (unsigned char *) cmd, (uint32_t) len));
        if (r < 0)
                return r;
        if (resp_len > t->resp_cap)
                return -EIO;
        *ret_resp = t->resp;
        *ret_len = resp_len;
        return 0;
}

int tpm_instance_process(TpmInstance *t, const uint8_t *cmd, size_t len, uint8_t *resp, size_t resp_max,
                         size_t *ret_len, uint8_t locality) {
        const uint8_t *out;
        size_t n;

        int r = tpm_instance_process_view(t, cmd, len, &out, &n, locality);
        if (r < 0)
                return r;
        if (n > resp_max)
                return -ENOBUFS;
        memcpy(resp, out, n);
        *ret_len = n;
        return 0;
}

void tpm_instance_cancel(TpmInstance *t) {
        (void) TPMLIB_CancelCommand();
}

/* Runs one of our own commands and returns the TPM's response code. */
static int tpm_instance_run_own(TpmInstance *t, const uint8_t *cmd, size_t len, uint32_t *ret_rc) {
        uint8_t resp[TPM_HEADER_SIZE + 64]; /* Startup/Shutdown answer a bare header */
        size_t resp_len = 0;
        TpmHeader h;
        int r;

        r = tpm_instance_process(t, cmd, len, resp, sizeof(resp), &resp_len, 0);
        if (r < 0)
                return r;
        r = tpm_header_parse(resp, resp_len, &h);
        if (r < 0)
                return -EIO;
        *ret_rc = h.code;
        return 0;
}

int tpm_instance_startup(TpmInstance *t, uint32_t *ret_rc) {
        uint8_t cmd[TPM_HEADER_SIZE + 2];
        uint32_t rc = 0, already = 0;
        int n = -EINVAL, r;

        switch (t->family) {
        case TPM_FAMILY_2_0:
                n = tpm2_build_startup(TPM2_SU_CLEAR, cmd, sizeof(cmd));
                already = TPM2_RC_INITIALIZE;
                break;
        case TPM_FAMILY_1_2:
                n = tpm12_build_startup(TPM12_ST_CLEAR, cmd, sizeof(cmd));
                already = TPM12_INVALID_POSTINIT;
                break;
        }
        if (n < 0)
                return n;

        r = tpm_instance_run_own(t, cmd, (size_t) n, &rc);
        if (r < 0)
                return r;
        if (ret_rc)
                *ret_rc = rc;
        if (rc == 0)
                return 0;
        return rc == already ? -EALREADY : -EIO;
}

int tpm_instance_shutdown(TpmInstance *t, uint32_t *ret_rc) {
        uint8_t cmd[TPM_HEADER_SIZE + 2];
        uint32_t rc = 0;
        int n, r;

        switch (t->family) {
        case TPM_FAMILY_2_0:
                break;
        case TPM_FAMILY_1_2:
                if (ret_rc)
                        *ret_rc = 0;
                return 0;
        }

        n = tpm2_build_shutdown(TPM2_SU_CLEAR, cmd, sizeof(cmd));
        if (n < 0)
                return n;
        r = tpm_instance_run_own(t, cmd, (size_t) n, &rc);
        if (r < 0)
                return r;
        if (ret_rc)
                *ret_rc = rc;
        return rc == 0 ? 0 : -EIO;
}

int tpm_instance_established(TpmInstance *t, bool *ret) {
        TPM_BOOL v = FALSE;
        int r;

        if (!t->powered)
                return -EIO;
        r = tpm_result_to_errno(TPM_IO_TpmEstablished_Get(&v));
        if (r < 0)
                return r;
        *ret = v;
        return 0;
}

int tpm_instance_reset_established(TpmInstance *t, uint8_t locality) {
        if (!t->powered)
                return -EIO;
        /* libtpms asks the locality through tpm_io_getlocality: only 3 and 4 may reset the flag. */
        t->locality = locality;
        return tpm_result_to_errno(TPM_IO_TpmEstablished_Reset());
}

int tpm_instance_save_volatile(TpmInstance *t, uint8_t **ret, size_t *ret_len) {
        unsigned char *buf = NULL;
        uint32_t len = 0;

        if (!t->powered)
                return -EIO;
        int r = tpm_result_to_errno(TPMLIB_VolatileAll_Store(&buf, &len));
        if (r < 0)
                return r;
        if (!buf)
                return -EIO;
        *ret = buf;
        *ret_len = len;
        return 0;
}
