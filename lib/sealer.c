/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host TPM through tpm2-tss ESAPI. See sealer.h for the contract and
 * research tss-sealing.md §2-3 for the verified call sequence this follows.
 *
 * Every TPM command goes through a counting TCTI that wraps the one tctildr
 * loaded, so host_tpm_commands() is exact by construction, including commands
 * ESAPI sends on its own (Esys_TR_FromTPMPublic reads the public area).
 *
 * Owner authorization is the empty password (a fresh TPM, or one provisioned
 * by most distributions). A host whose owner hierarchy has a password is not
 * supported yet: creating the SRK and defining the counter then fail with
 * TPM_RC_BAD_AUTH, which last_error reports.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_sys.h>
#include <tss2/tss2_tctildr.h>

#include "sealer.h"
#include "tss2-rc.h"
#include "util.h"

#define BLOB_MAGIC "VTPMSEAL"
#define BLOB_MAGIC_LEN 8u
#define BLOB_VERSION 1u
#define SEALED_KEY_SIZE 32u
#define PCR_MASK_ALL 0x00FFFFFFu /* PCRs 0-23: the PC Client platform's sha256 bank */

#define SEALED_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_NODA)
#define COUNTER_ATTRS                                                                      \
        ((TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_OWNERWRITE | TPMA_NV_OWNERREAD | \
         TPMA_NV_AUTHWRITE | TPMA_NV_AUTHREAD | TPMA_NV_NO_DA)

/* A TCTI in front of the real one that counts transmitted commands. The common
 * header must come first: TSS code reaches the function table through a cast. */
typedef struct CountingTcti {
        TSS2_TCTI_CONTEXT_COMMON_V2 common;
        TSS2_TCTI_CONTEXT *inner;
        unsigned commands;
} CountingTcti;

struct HostTpm {
        CountingTcti tcti; /* ESAPI keeps a pointer to it: HostTpm is never moved */
        TSS2_TCTI_CONTEXT *inner;
        ESYS_CONTEXT *esys;
        uint32_t srk_handle;
        uint32_t nv_index;
        uint32_t pcr_mask;
        char *last_error;
};

/* A failed host_tpm_open() has no handle to carry its reason. */
static _Thread_local char *open_error;

static CountingTcti *counting(TSS2_TCTI_CONTEXT *c) {
        return (CountingTcti *) c;
}

static TSS2_RC counting_transmit(TSS2_TCTI_CONTEXT *c, size_t size, const uint8_t *command) {
        CountingTcti *p = counting(c);
        TSS2_RC rc = Tss2_Tcti_Transmit(p->inner, size, command);
        if (rc == TSS2_RC_SUCCESS)
                p->commands++;
        return rc;
}

static TSS2_RC counting_receive(TSS2_TCTI_CONTEXT *c, size_t *size, uint8_t *response, int32_t timeout) {
        return Tss2_Tcti_Receive(counting(c)->inner, size, response, timeout);
}

static TSS2_RC counting_cancel(TSS2_TCTI_CONTEXT *c) {
        return Tss2_Tcti_Cancel(counting(c)->inner);
}

static TSS2_RC counting_get_poll_handles(TSS2_TCTI_CONTEXT *c, TSS2_TCTI_POLL_HANDLE *handles, size_t *n) {
        return Tss2_Tcti_GetPollHandles(counting(c)->inner, handles, n);
}

static TSS2_RC counting_set_locality(TSS2_TCTI_CONTEXT *c, uint8_t locality) {
        return Tss2_Tcti_SetLocality(counting(c)->inner, locality);
}

static TSS2_RC counting_make_sticky(TSS2_TCTI_CONTEXT *c, TPM2_HANDLE *handle, uint8_t sticky) {
        return Tss2_Tcti_MakeSticky(counting(c)->inner, handle, sticky);
}

static void counting_init(CountingTcti *p, TSS2_TCTI_CONTEXT *inner) {
        *p = (CountingTcti){
                .common.v1 = {
                        .magic = TSS2_TCTI_MAGIC(inner),
                        .version = 2,
                        .transmit = counting_transmit,
                        .receive = counting_receive,
                        .finalize = NULL, /* the inner TCTI is finalized by host_tpm_close() */
                        .cancel = counting_cancel,
                        .getPollHandles = counting_get_poll_handles,
                        .setLocality = counting_set_locality,
                },
                .common.makeSticky = counting_make_sticky,
                .inner = inner,
        };
}

static int set_error(char **slot, int r, const char *fmt, va_list ap) {
        char *s = NULL;
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        free(*slot);
        *slot = s;
        return r;
}

_printf_(3, 4) static int fail(HostTpm *t, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set_error(&t->last_error, r, fmt, ap);
        va_end(ap);
        return r;
}

_printf_(2, 3) static int open_fail(int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        set_error(&open_error, r, fmt, ap);
        va_end(ap);
        return r;
}

static int tss_fail(HostTpm *t, const char *what, TSS2_RC rc) {
        /* Tss2_RC_Decode() returns a static buffer: copied at once by fail(). */
        return fail(t, tss2_rc_errno(rc), "%s: %s (0x%" PRIx32 ")", what, Tss2_RC_Decode(rc), (uint32_t) rc);
}

static void flush(HostTpm *t, ESYS_TR *h) {
        if (*h == ESYS_TR_NONE)
                return;
        /* Best effort: a failure here leaves a slot used on a TPM without a
         * resource manager, which the next CreatePrimary would report. */
        (void) Esys_FlushContext(t->esys, *h);
        *h = ESYS_TR_NONE;
}

/* The SRK: transient ones are flushed, persistent ones only forgotten. */
typedef struct Srk {
        ESYS_TR tr;
        bool transient;
} Srk;

static void srk_release(HostTpm *t, Srk *s) {
        if (s->tr == ESYS_TR_NONE)
                return;
        if (s->transient)
                flush(t, &s->tr);
        else
                (void) Esys_TR_Close(t->esys, &s->tr);
        s->tr = ESYS_TR_NONE;
}

/* TCG TPM v2.0 Provisioning Guidance §7.5.1: the storage root key template. */
static void srk_template(TPM2_ALG_ID type, TPM2B_PUBLIC *ret) {
        TPMT_SYM_DEF_OBJECT aes = {
                .algorithm = TPM2_ALG_AES,
                .keyBits.aes = 128,
                .mode.aes = TPM2_ALG_CFB,
        };

        *ret = (TPM2B_PUBLIC){ 0 };
        ret->publicArea.type = type;
        ret->publicArea.nameAlg = TPM2_ALG_SHA256;
        ret->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
                TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
        if (type == TPM2_ALG_ECC) {
                ret->publicArea.parameters.eccDetail.symmetric = aes;
                ret->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
                ret->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
                ret->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
                /* All-zero unique fields of the coordinate size, as the guidance says. */
                ret->publicArea.unique.ecc.x.size = 32;
                ret->publicArea.unique.ecc.y.size = 32;
        } else {
                ret->publicArea.parameters.rsaDetail.symmetric = aes;
                ret->publicArea.parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
                ret->publicArea.parameters.rsaDetail.keyBits = 2048;
                ret->publicArea.parameters.rsaDetail.exponent = 0;
                ret->publicArea.unique.rsa.size = 256;
        }
}

/* Whether CreatePrimary refused the ECC template because the TPM lacks ECC or P-256. */
static bool rc_is_unsupported_alg(TSS2_RC rc) {
        switch (tss2_rc_base(rc)) {
        case TPM2_RC_CURVE:
        case TPM2_RC_ASYMMETRIC:
        case TPM2_RC_KDF:
        case TPM2_RC_SCHEME:
        case TPM2_RC_VALUE:
        case TPM2_RC_TYPE:
                return true;
        default:
                return false;
        }
}

static int srk_acquire(HostTpm *t, Srk *ret, TPM2B_NAME *ret_name) {
        TPM2B_SENSITIVE_CREATE sensitive = { 0 };
        TPM2B_DATA outside = { 0 };
        TPML_PCR_SELECTION no_pcrs = { 0 };
        TPM2B_PUBLIC tmpl;
        TPM2B_NAME *name = NULL;
        Srk s = { .tr = ESYS_TR_NONE };
        TSS2_RC rc;
        int r;

        if (t->srk_handle != 0) {
                rc = Esys_TR_FromTPMPublic(t->esys, t->srk_handle, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                           &s.tr);
                if (tss2_rc_base(rc) == TPM2_RC_HANDLE)
                        return fail(t, -ENOENT,
                                    "persistent SRK 0x%08" PRIx32 " does not exist on the host TPM "
                                    "(TPM cleared or not provisioned)",
                                    t->srk_handle);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail(t, "Esys_TR_FromTPMPublic(SRK)", rc);
        } else {
                s.transient = true;
                srk_template(TPM2_ALG_ECC, &tmpl);
                rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                        &sensitive, &tmpl, &outside, &no_pcrs, &s.tr, NULL, NULL, NULL, NULL);
                if (rc_is_unsupported_alg(rc)) {
                        srk_template(TPM2_ALG_RSA, &tmpl);
                        rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                                ESYS_TR_NONE, &sensitive, &tmpl, &outside, &no_pcrs, &s.tr, NULL,
                                                NULL, NULL, NULL);
                }
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail(t, "Esys_CreatePrimary(SRK)", rc);
        }

        rc = Esys_TR_GetName(t->esys, s.tr, &name);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_TR_GetName(SRK)", rc);
                srk_release(t, &s);
                return r;
        }
        *ret_name = *name;
        Esys_Free(name);
        *ret = s;
        return 0;
}

static void pcr_selection(uint32_t mask, TPML_PCR_SELECTION *ret) {
        *ret = (TPML_PCR_SELECTION){ .count = 1 };
        ret->pcrSelections[0].hash = TPM2_ALG_SHA256;
        ret->pcrSelections[0].sizeofSelect = 3;
        ret->pcrSelections[0].pcrSelect[0] = mask & 0xFF;
        ret->pcrSelections[0].pcrSelect[1] = (mask >> 8) & 0xFF;
        ret->pcrSelections[0].pcrSelect[2] = (mask >> 16) & 0xFF;
}

/* A session salted to the SRK (ECDH or RSA-OAEP done by ESAPI): its key never
 * crosses the bus, so parameter encryption keeps the sealed key off the wire. */
static int salted_session(HostTpm *t, ESYS_TR srk, TPM2_SE type, TPMA_SESSION attrs, ESYS_TR *ret) {
        TPMT_SYM_DEF aes = { .algorithm = TPM2_ALG_AES, .keyBits.aes = 128, .mode.aes = TPM2_ALG_CFB };
        ESYS_TR s = ESYS_TR_NONE;
        TSS2_RC rc;

        rc = Esys_StartAuthSession(t->esys, srk, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
                                   type, &aes, TPM2_ALG_SHA256, &s);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_StartAuthSession", rc);
        rc = Esys_TRSess_SetAttributes(t->esys, s, attrs, 0xFF);
        if (rc != TSS2_RC_SUCCESS) {
                flush(t, &s);
                return tss_fail(t, "Esys_TRSess_SetAttributes", rc);
        }
        *ret = s;
        return 0;
}

/* The PolicyPCR digest over the PCRs' current values, from a trial session. */
static int policy_digest(HostTpm *t, uint32_t mask, TPM2B_DIGEST *ret) {
        TPMT_SYM_DEF none = { .algorithm = TPM2_ALG_NULL };
        TPM2B_DIGEST current = { 0 }; /* empty: the TPM uses the PCRs as they are now */
        TPML_PCR_SELECTION sel;
        TPM2B_DIGEST *digest = NULL;
        ESYS_TR trial = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        pcr_selection(mask, &sel);
        rc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                   NULL, TPM2_SE_TRIAL, &none, TPM2_ALG_SHA256, &trial);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_StartAuthSession(trial)", rc);
        rc = Esys_PolicyPCR(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_PolicyPCR(trial)", rc);
                goto finish;
        }
        rc = Esys_PolicyGetDigest(t->esys, trial, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_PolicyGetDigest", rc);
                goto finish;
        }
        *ret = *digest;
        r = 0;
finish:
        Esys_Free(digest);
        flush(t, &trial);
        return r;
}

static TPMA_OBJECT sealed_attrs(uint32_t pcr_mask) {
        /* Without a policy the object is used with its (empty) authValue; with one,
         * only the policy may authorize it. */
        return SEALED_ATTRS | (pcr_mask ? 0 : TPMA_OBJECT_USERWITHAUTH);
}

/* Upper bound of a marshalled blob: each TPM2B is bounded by its type's size. */
#define BLOB_MAX (BLOB_MAGIC_LEN + 2 + sizeof(TPM2B_NAME) + 4 + sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE))

static int blob_build(const TPM2B_NAME *srk_name, uint32_t pcr_mask, const TPM2B_PUBLIC *pub,
                      const TPM2B_PRIVATE *priv, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = malloc(BLOB_MAX);
        size_t off = BLOB_MAGIC_LEN;
        uint8_t *shrunk;

        if (!buf)
                return -ENOMEM;
        memcpy(buf, BLOB_MAGIC, BLOB_MAGIC_LEN);
        if (Tss2_MU_UINT16_Marshal(BLOB_VERSION, buf, BLOB_MAX, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_NAME_Marshal(srk_name, buf, BLOB_MAX, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_UINT32_Marshal(pcr_mask, buf, BLOB_MAX, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, BLOB_MAX, &off) != TSS2_RC_SUCCESS ||
            Tss2_MU_TPM2B_PRIVATE_Marshal(priv, buf, BLOB_MAX, &off) != TSS2_RC_SUCCESS)
                return -EIO;
        shrunk = realloc(buf, off);
        if (shrunk)
                buf = shrunk;
        *ret = TAKE_PTR(buf);
        *ret_len = off;
        return 0;
}

typedef struct SealedBlob {
        TPM2B_NAME srk_name;
        uint32_t pcr_mask;
        TPM2B_PUBLIC pub;
        TPM2B_PRIVATE priv;
} SealedBlob;

/* Strict: every field must be exactly what host_tpm_seal() writes. */
static int blob_parse(HostTpm *t, const uint8_t *b, size_t len, SealedBlob *ret) {
        const TPMT_PUBLIC *p;
        SealedBlob s = { 0 };
        size_t off = BLOB_MAGIC_LEN, pub_start;
        uint16_t version;

        if (!b || len < BLOB_MAGIC_LEN || memcmp(b, BLOB_MAGIC, BLOB_MAGIC_LEN) != 0)
                return fail(t, -EBADMSG, "sealed blob: bad magic (not a vtpmd sealed key)");
        if (Tss2_MU_UINT16_Unmarshal(b, len, &off, &version) != TSS2_RC_SUCCESS)
                return fail(t, -EBADMSG, "sealed blob: truncated header");
        if (version != BLOB_VERSION)
                return fail(t, -EBADMSG, "sealed blob: unsupported format version %u", version);
        if (Tss2_MU_TPM2B_NAME_Unmarshal(b, len, &off, &s.srk_name) != TSS2_RC_SUCCESS)
                return fail(t, -EBADMSG, "sealed blob: malformed SRK name");
        /* Both SRK templates use nameAlg SHA-256: name = 0x000B || 32-byte digest. */
        if (s.srk_name.size != 34 || s.srk_name.name[0] != 0x00 || s.srk_name.name[1] != TPM2_ALG_SHA256)
                return fail(t, -EBADMSG, "sealed blob: SRK name is not a SHA-256 name");
        if (Tss2_MU_UINT32_Unmarshal(b, len, &off, &s.pcr_mask) != TSS2_RC_SUCCESS)
                return fail(t, -EBADMSG, "sealed blob: truncated PCR list");
        if (s.pcr_mask & ~PCR_MASK_ALL)
                return fail(t, -EBADMSG, "sealed blob: PCR list names PCRs above 23");
        pub_start = off;
        /* The unmarshaller takes the public area's own fields and only stores the
         * size: a size that disagrees would otherwise pass unnoticed. */
        if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(b, len, &off, &s.pub) != TSS2_RC_SUCCESS ||
            off - pub_start != 2u + s.pub.size)
                return fail(t, -EBADMSG, "sealed blob: malformed TPM2B_PUBLIC");
        if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(b, len, &off, &s.priv) != TSS2_RC_SUCCESS)
                return fail(t, -EBADMSG, "sealed blob: malformed TPM2B_PRIVATE");
        if (off != len)
                return fail(t, -EBADMSG, "sealed blob: %zu trailing bytes", len - off);

        p = &s.pub.publicArea;
        if (p->type != TPM2_ALG_KEYEDHASH || p->nameAlg != TPM2_ALG_SHA256 ||
            p->objectAttributes != sealed_attrs(s.pcr_mask) ||
            p->parameters.keyedHashDetail.scheme.scheme != TPM2_ALG_NULL ||
            p->authPolicy.size != (s.pcr_mask ? 32 : 0) || p->unique.keyedHash.size != 32)
                return fail(t, -EBADMSG, "sealed blob: the public area is not a vtpmd sealed key");
        if (s.priv.size == 0)
                return fail(t, -EBADMSG, "sealed blob: empty private area");
        *ret = s;
        return 0;
}

static uint32_t pcr_mask_of(const HostTpmConfig *c) {
        uint32_t m = 0;
        for (size_t i = 0; i < c->n_pcrs; i++)
                m |= UINT32_C(1) << c->pcrs[i];
        return m;
}

int host_tpm_open(const HostTpmConfig *c, HostTpm **ret) {
        HostTpmConfig none = { 0 };
        const char *tcti;
        HostTpm *t;
        TSS2_RC rc;

        if (!ret)
                return -EINVAL;
        if (!c)
                c = &none;
        tcti = c->tcti ?: HOST_TPM_DEFAULT_TCTI;
        /* An empty string would make tctildr probe every TPM it can find. */
        if (tcti[0] == '\0')
                return open_fail(-EINVAL, "empty TCTI configuration");
        if (c->n_pcrs > HOST_TPM_MAX_PCRS)
                return open_fail(-EINVAL, "too many PCRs (%zu)", c->n_pcrs);
        for (size_t i = 0; i < c->n_pcrs; i++)
                if (c->pcrs[i] >= HOST_TPM_MAX_PCRS)
                        return open_fail(-EINVAL, "PCR %" PRIu32 " out of range 0-23", c->pcrs[i]);
        if (c->srk_handle != 0 && (c->srk_handle < 0x81000000u || c->srk_handle > 0x81FFFFFFu))
                return open_fail(-EINVAL, "SRK handle 0x%08" PRIx32 " is not a persistent handle",
                                 c->srk_handle);
        if (c->nv_index != 0 && (c->nv_index < 0x01800000u || c->nv_index > 0x01BFFFFFu))
                return open_fail(-EINVAL, "NV index 0x%08" PRIx32 " is outside the owner range", c->nv_index);

        /* The TSS logs to stderr by default (even for probes that are expected to
         * fail); the caller logs once instead. Read lazily by the TSS at its first
         * log call, so this must precede tctildr. */
        (void) setenv("TSS2_LOG", "all+none", 0);

        t = calloc(1, sizeof(*t));
        if (!t)
                return open_fail(-ENOMEM, "out of memory");
        t->srk_handle = c->srk_handle;
        t->nv_index = c->nv_index ?: HOST_TPM_DEFAULT_NV_INDEX;
        t->pcr_mask = pcr_mask_of(c);

        rc = Tss2_TctiLdr_Initialize(tcti, &t->inner);
        if (rc != TSS2_RC_SUCCESS) {
                char name[64];
                TSS2_TCTI_INFO *info = NULL;
                int r = -ENODEV;

                host_tpm_close(t);
                /* A TCTI name no library answers to is a typo, not an absent TPM. */
                snprintf(name, sizeof(name), "%.*s", (int) strcspn(tcti, ":"), tcti);
                if (name[0] && Tss2_TctiLdr_GetInfo(name, &info) != TSS2_RC_SUCCESS)
                        r = -ENOPKG;
                Tss2_TctiLdr_FreeInfo(&info);
                if (r == -ENOPKG && strchr(name, '/'))
                        return open_fail(r, "unknown TCTI \"%s\" (no TCTI library there)", name);
                if (r == -ENOPKG)
                        return open_fail(r, "unknown TCTI \"%s\" (no libtss2-tcti-%s.so.0 on this host; e.g. "
                                         "device:/dev/tpmrm0 or swtpm:host=localhost,port=2321)", name, name);
                return open_fail(r, "cannot reach the host TPM through TCTI \"%s\": %s (0x%" PRIx32 ")", tcti,
                                 Tss2_RC_Decode(rc), (uint32_t) rc);
        }
        counting_init(&t->tcti, t->inner);

        rc = Esys_Initialize(&t->esys, (TSS2_TCTI_CONTEXT *) &t->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                host_tpm_close(t);
                return open_fail(-EIO, "Esys_Initialize: %s (0x%" PRIx32 ")", Tss2_RC_Decode(rc), (uint32_t) rc);
        }

        /* Firmware (or swtpm --flags startup-clear) normally started it already. */
        rc = Esys_Startup(t->esys, TPM2_SU_CLEAR);
        if (rc != TSS2_RC_SUCCESS && tss2_rc_base(rc) != TPM2_RC_INITIALIZE) {
                int r = tss2_rc_errno(rc);
                uint32_t base = tss2_rc_base(rc);
                host_tpm_close(t);
                if (r == -ENODEV)
                        return open_fail(r, "cannot reach the host TPM through TCTI \"%s\": %s (0x%" PRIx32 ")",
                                         tcti, Tss2_RC_Decode(rc), (uint32_t) rc);
                return open_fail(r == -EAGAIN ? r : -EIO, "host TPM %s: TPM2_Startup: %s (0x%" PRIx32 ")",
                                 base == TPM2_RC_FAILURE ? "is in failure mode" : "did not start",
                                 Tss2_RC_Decode(rc), (uint32_t) rc);
        }

        *ret = t;
        return 0;
}

HostTpm *host_tpm_close(HostTpm *t) {
        if (!t)
                return NULL;
        if (t->esys)
                Esys_Finalize(&t->esys);
        if (t->inner)
                Tss2_TctiLdr_Finalize(&t->inner);
        free(t->last_error);
        explicit_wipe(t, sizeof(*t));
        free(t);
        return NULL;
}

/* ESAPI decrypts a response parameter in place in its SAPI buffer, where the
 * plaintext would stay until a long enough command overwrites it. */
static void wipe_response(HostTpm *t) {
        TSS2_SYS_CONTEXT *sys = NULL;
        const uint8_t *rp = NULL;
        size_t n = 0;

        if (Esys_GetSysContext(t->esys, &sys) != TSS2_RC_SUCCESS || !sys)
                return;
        if (Tss2_Sys_GetRpBuffer(sys, &n, &rp) != TSS2_RC_SUCCESS || !rp)
                return;
        explicit_wipe((uint8_t *) rp, n);
}

int host_tpm_seal(HostTpm *t, const uint8_t key[32], uint8_t **ret, size_t *ret_len) {
        TPM2B_SENSITIVE_CREATE sensitive = { 0 };
        TPM2B_DATA outside = { 0 };
        TPML_PCR_SELECTION no_pcrs = { 0 };
        TPM2B_PUBLIC tmpl = { 0 };
        TPM2B_DIGEST policy = { 0 };
        TPM2B_NAME srk_name;
        TPM2B_PRIVATE *priv = NULL;
        TPM2B_PUBLIC *pub = NULL;
        Srk srk = { .tr = ESYS_TR_NONE };
        ESYS_TR sess = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t || !key || !ret || !ret_len)
                return -EINVAL;

        r = srk_acquire(t, &srk, &srk_name);
        if (r < 0)
                return r;
        if (t->pcr_mask) {
                r = policy_digest(t, t->pcr_mask, &policy);
                if (r < 0)
                        goto finish;
        }
        /* DECRYPT: the first command parameter, inSensitive (the key), is encrypted. */
        r = salted_session(t, srk.tr, TPM2_SE_HMAC, TPMA_SESSION_DECRYPT | TPMA_SESSION_CONTINUESESSION, &sess);
        if (r < 0)
                goto finish;

        sensitive.sensitive.data.size = SEALED_KEY_SIZE;
        memcpy(sensitive.sensitive.data.buffer, key, SEALED_KEY_SIZE);
        tmpl.publicArea.type = TPM2_ALG_KEYEDHASH;
        tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
        tmpl.publicArea.objectAttributes = sealed_attrs(t->pcr_mask);
        tmpl.publicArea.authPolicy = policy;
        tmpl.publicArea.parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_NULL;

        rc = Esys_Create(t->esys, srk.tr, sess, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside, &no_pcrs,
                         &priv, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_Create(sealed key)", rc);
                goto finish;
        }
        r = blob_build(&srk_name, t->pcr_mask, pub, priv, ret, ret_len);
        if (r < 0)
                fail(t, r, "cannot build the sealed blob");
finish:
        explicit_wipe(&sensitive, sizeof(sensitive));
        Esys_Free(priv);
        Esys_Free(pub);
        flush(t, &sess);
        srk_release(t, &srk);
        return r;
}

int host_tpm_unseal(HostTpm *t, const uint8_t *blob, size_t len, uint8_t ret_key[32]) {
        TPM2B_DIGEST current = { 0 };
        TPML_PCR_SELECTION sel;
        TPM2B_SENSITIVE_DATA *out = NULL;
        TPM2B_NAME srk_name;
        SealedBlob s;
        Srk srk = { .tr = ESYS_TR_NONE };
        ESYS_TR sess = ESYS_TR_NONE, obj = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t || !ret_key)
                return -EINVAL;

        r = blob_parse(t, blob, len, &s);
        if (r < 0)
                return r;
        r = srk_acquire(t, &srk, &srk_name);
        if (r < 0)
                return r;
        /* Before the blob reaches the TPM: another SRK means another TPM or a
         * cleared owner hierarchy (or an interposer offering its own key for the salt). */
        if (srk_name.size != s.srk_name.size || memcmp(srk_name.name, s.srk_name.name, srk_name.size) != 0) {
                r = fail(t, -EKEYREJECTED, "sealed under another SRK: the host TPM was cleared or replaced");
                goto finish;
        }

        if (s.pcr_mask) {
                /* A salted policy session: PolicyPCR authorizes, the salt encrypts. */
                r = salted_session(t, srk.tr, TPM2_SE_POLICY, TPMA_SESSION_CONTINUESESSION, &sess);
                if (r < 0)
                        goto finish;
                pcr_selection(s.pcr_mask, &sel);
                rc = Esys_PolicyPCR(t->esys, sess, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &current, &sel);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tss_fail(t, "Esys_PolicyPCR", rc);
                        goto finish;
                }
                rc = Esys_Load(t->esys, srk.tr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &s.priv, &s.pub, &obj);
        } else {
                r = salted_session(t, srk.tr, TPM2_SE_HMAC, TPMA_SESSION_CONTINUESESSION, &sess);
                if (r < 0)
                        goto finish;
                rc = Esys_Load(t->esys, srk.tr, sess, ESYS_TR_NONE, ESYS_TR_NONE, &s.priv, &s.pub, &obj);
        }
        if (rc != TSS2_RC_SUCCESS) {
                /* The SRK matched, so a refused private/public area was altered. */
                if (tss2_rc_is_parameter_error(rc) || tss2_rc_base(rc) == TPM2_RC_INTEGRITY)
                        r = fail(t, -EBADMSG, "sealed blob failed the host TPM's integrity check: %s (0x%" PRIx32 ")",
                                 Tss2_RC_Decode(rc), (uint32_t) rc);
                else
                        r = tss_fail(t, "Esys_Load(sealed key)", rc);
                goto finish;
        }

        /* ENCRYPT: the first response parameter, outData (the key), is encrypted. */
        rc = Esys_TRSess_SetAttributes(t->esys, sess, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, 0xFF);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_TRSess_SetAttributes", rc);
                goto finish;
        }
        rc = Esys_Unseal(t->esys, obj, sess, ESYS_TR_NONE, ESYS_TR_NONE, &out);
        wipe_response(t);
        if (rc != TSS2_RC_SUCCESS) {
                if (tss2_rc_errno(rc) == -EPERM)
                        r = fail(t, -EPERM, "the host TPM's PCRs no longer match the sealing policy: %s (0x%" PRIx32 ")",
                                 Tss2_RC_Decode(rc), (uint32_t) rc);
                else
                        r = tss_fail(t, "Esys_Unseal", rc);
                goto finish;
        }
        if (out->size != SEALED_KEY_SIZE) {
                r = fail(t, -EBADMSG, "sealed object holds %u bytes, not a %u-byte key", out->size, SEALED_KEY_SIZE);
                goto finish;
        }
        memcpy(ret_key, out->buffer, SEALED_KEY_SIZE);
        r = 0;
finish:
        if (out) {
                explicit_wipe(out, sizeof(*out));
                Esys_Free(out);
        }
        explicit_wipe(&s, sizeof(s));
        flush(t, &obj);
        flush(t, &sess);
        srk_release(t, &srk);
        return r;
}

/* The transfer key: an unrestricted ECC P-256 decrypt key, so TPM2_ECDH_ZGen
 * accepts it (the SRK is restricted and would be refused). Its unique field
 * differs from the SRK's all-zero one, so it is another key of the same seed,
 * re-created identically until the owner hierarchy is cleared. No authValue
 * and NODA: it authorizes nothing a lockout could protect. */
static void transfer_template(TPM2B_PUBLIC *ret) {
        static const char label[] = "vtpmd pool transfer";

        *ret = (TPM2B_PUBLIC){ 0 };
        ret->publicArea.type = TPM2_ALG_ECC;
        ret->publicArea.nameAlg = TPM2_ALG_SHA256;
        ret->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA | TPMA_OBJECT_DECRYPT;
        ret->publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        ret->publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        ret->publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        ret->publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        ret->publicArea.unique.ecc.x.size = HOST_TPM_COORD_SIZE;
        memcpy(ret->publicArea.unique.ecc.x.buffer, label, sizeof(label) - 1);
        ret->publicArea.unique.ecc.y.size = HOST_TPM_COORD_SIZE;
}

/* A coordinate as the TPM returns it (at most the curve's size, possibly
 * without leading zeros) into a fixed-size big-endian field. */
static int coord_get(const TPM2B_ECC_PARAMETER *c, uint8_t ret[HOST_TPM_COORD_SIZE]) {
        if (c->size > HOST_TPM_COORD_SIZE)
                return -EIO;
        memset(ret, 0, HOST_TPM_COORD_SIZE - c->size);
        memcpy(ret + HOST_TPM_COORD_SIZE - c->size, c->buffer, c->size);
        return 0;
}

/* Re-creates the transfer key; *ret_point is its public point 0x04 || X || Y. */
static int transfer_acquire(HostTpm *t, ESYS_TR *ret, uint8_t ret_point[HOST_TPM_POINT_SIZE]) {
        TPM2B_SENSITIVE_CREATE sensitive = { 0 };
        TPM2B_DATA outside = { 0 };
        TPML_PCR_SELECTION no_pcrs = { 0 };
        TPM2B_PUBLIC tmpl, *pub = NULL;
        uint8_t point[HOST_TPM_POINT_SIZE];
        ESYS_TR key = ESYS_TR_NONE;
        TSS2_RC rc;

        transfer_template(&tmpl);
        rc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive,
                                &tmpl, &outside, &no_pcrs, &key, &pub, NULL, NULL, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_CreatePrimary(transfer key)", rc);
        point[0] = 0x04; /* SEC 1 §2.3.3: uncompressed */
        if (pub->publicArea.type != TPM2_ALG_ECC ||
            coord_get(&pub->publicArea.unique.ecc.x, point + 1) < 0 ||
            coord_get(&pub->publicArea.unique.ecc.y, point + 1 + HOST_TPM_COORD_SIZE) < 0) {
                Esys_Free(pub);
                flush(t, &key);
                return fail(t, -EIO, "the host TPM returned a transfer key that is not a P-256 point");
        }
        Esys_Free(pub);
        memcpy(ret_point, point, sizeof(point));
        *ret = key;
        return 0;
}

int host_tpm_transfer_public(HostTpm *t, uint8_t ret_point[HOST_TPM_POINT_SIZE]) {
        uint8_t point[HOST_TPM_POINT_SIZE];
        ESYS_TR key = ESYS_TR_NONE;
        int r;

        if (!t || !ret_point)
                return -EINVAL;
        r = transfer_acquire(t, &key, point);
        if (r < 0)
                return r;
        flush(t, &key);
        memcpy(ret_point, point, sizeof(point));
        return 0;
}

int host_tpm_transfer_zgen(HostTpm *t, const uint8_t own_point[HOST_TPM_POINT_SIZE],
                           const uint8_t peer_point[HOST_TPM_POINT_SIZE], uint8_t ret_z[HOST_TPM_COORD_SIZE]) {
        TPM2B_ECC_POINT in = { .size = 2 * (2 + HOST_TPM_COORD_SIZE) };
        TPM2B_ECC_POINT *out = NULL;
        uint8_t point[HOST_TPM_POINT_SIZE], z[HOST_TPM_COORD_SIZE];
        ESYS_TR key = ESYS_TR_NONE, sess = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        if (!t || !own_point || !peer_point || !ret_z)
                return -EINVAL;
        if (peer_point[0] != 0x04)
                return fail(t, -EBADMSG, "the peer's point is not an uncompressed P-256 point");

        r = transfer_acquire(t, &key, point);
        if (r < 0)
                return r;
        /* Before the session is salted to it: a key that is not the one the
         * caller wrapped to is another TPM, a cleared owner hierarchy, or an
         * interposer offering its own public key to learn the salt. */
        if (memcmp(point, own_point, sizeof(point)) != 0) {
                r = fail(t, -EKEYREJECTED, "the host TPM's transfer key is not the expected one: "
                                           "the host TPM was cleared or replaced");
                goto finish;
        }
        /* ENCRYPT: the first response parameter, outPoint (Z), is encrypted. */
        r = salted_session(t, key, TPM2_SE_HMAC, TPMA_SESSION_ENCRYPT | TPMA_SESSION_CONTINUESESSION, &sess);
        if (r < 0)
                goto finish;

        in.point.x.size = HOST_TPM_COORD_SIZE;
        memcpy(in.point.x.buffer, peer_point + 1, HOST_TPM_COORD_SIZE);
        in.point.y.size = HOST_TPM_COORD_SIZE;
        memcpy(in.point.y.buffer, peer_point + 1 + HOST_TPM_COORD_SIZE, HOST_TPM_COORD_SIZE);
        rc = Esys_ECDH_ZGen(t->esys, key, sess, ESYS_TR_NONE, ESYS_TR_NONE, &in, &out);
        wipe_response(t);
        if (rc != TSS2_RC_SUCCESS) {
                if (tss2_rc_base(rc) == TPM2_RC_ECC_POINT || tss2_rc_is_parameter_error(rc))
                        r = fail(t, -EBADMSG, "the host TPM refused the peer's point: %s (0x%" PRIx32 ")",
                                 Tss2_RC_Decode(rc), (uint32_t) rc);
                else
                        r = tss_fail(t, "Esys_ECDH_ZGen", rc);
                goto finish;
        }
        if (coord_get(&out->point.x, z) < 0) {
                r = fail(t, -EIO, "Esys_ECDH_ZGen returned a %u-byte coordinate", out->point.x.size);
                goto finish;
        }
        memcpy(ret_z, z, sizeof(z));
        r = 0;
finish:
        if (out) {
                explicit_wipe(out, sizeof(*out));
                Esys_Free(out);
        }
        explicit_wipe(z, sizeof(z));
        flush(t, &sess);
        flush(t, &key);
        return r;
}

/* The name the counter index has if it is exactly ours: binds type, attributes,
 * size and (empty) policy, so one comparison rejects any other index there. */
static void counter_name(uint32_t index, bool written, TPM2B_NAME *ret) {
        TPMS_NV_PUBLIC p = {
                .nvIndex = index,
                .nameAlg = TPM2_ALG_SHA256,
                .attributes = COUNTER_ATTRS | (written ? TPMA_NV_WRITTEN : 0),
                .dataSize = 8,
        };
        uint8_t buf[sizeof(TPMS_NV_PUBLIC)];
        size_t off = 0;

        *ret = (TPM2B_NAME){ .size = 2 + SHA256_DIGEST_LENGTH };
        if (Tss2_MU_TPMS_NV_PUBLIC_Marshal(&p, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS) {
                ret->size = 0; /* cannot happen for a fixed struct; matches nothing */
                return;
        }
        ret->name[0] = 0x00;
        ret->name[1] = TPM2_ALG_SHA256;
        SHA256(buf, off, ret->name + 2);
}

static bool name_eq(const TPM2B_NAME *a, const TPM2B_NAME *b) {
        return a->size == b->size && memcmp(a->name, b->name, a->size) == 0;
}

/* -ENOENT if the index is not defined. *ret_written: it has been incremented. */
static int counter_open(HostTpm *t, ESYS_TR *ret, bool *ret_written) {
        TPM2B_NAME *name = NULL;
        TPM2B_NAME written, unwritten;
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        rc = Esys_TR_FromTPMPublic(t->esys, t->nv_index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (tss2_rc_base(rc) == TPM2_RC_HANDLE)
                return fail(t, -ENOENT, "NV counter 0x%08" PRIx32 " is not defined", t->nv_index);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_TR_FromTPMPublic(NV counter)", rc);

        rc = Esys_TR_GetName(t->esys, nv, &name);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(t, "Esys_TR_GetName(NV counter)", rc);
                goto fail;
        }
        counter_name(t->nv_index, true, &written);
        counter_name(t->nv_index, false, &unwritten);
        if (name_eq(name, &written))
                *ret_written = true;
        else if (name_eq(name, &unwritten))
                *ret_written = false;
        else {
                /* An ordinary index could be rewritten to any value: never trust it as the counter. */
                r = fail(t, -EEXIST,
                         "NV index 0x%08" PRIx32 " exists but is not vtpmd's counter "
                         "(wrong type, attributes, size or policy)",
                         t->nv_index);
                goto fail;
        }
        Esys_Free(name);
        *ret = nv;
        return 0;
fail:
        Esys_Free(name);
        (void) Esys_TR_Close(t->esys, &nv);
        return r;
}

static int counter_value(HostTpm *t, ESYS_TR nv, uint64_t *ret) {
        TPM2B_MAX_NV_BUFFER *data = NULL;
        uint64_t v = 0;
        TSS2_RC rc;

        /* The index's own (empty) authValue: reading needs no owner authorization. */
        rc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0, &data);
        if (tss2_rc_base(rc) == TPM2_RC_NV_UNINITIALIZED)
                return fail(t, -ENOENT, "NV counter 0x%08" PRIx32 " was never incremented", t->nv_index);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_NV_Read(counter)", rc);
        if (data->size != 8) {
                unsigned n = data->size;
                Esys_Free(data);
                return fail(t, -EIO, "NV counter read returned %u bytes, not 8", n);
        }
        for (size_t i = 0; i < 8; i++)
                v = (v << 8) | data->buffer[i];
        Esys_Free(data);
        *ret = v;
        return 0;
}

static int counter_bump(HostTpm *t, ESYS_TR nv, uint64_t *ret) {
        TSS2_RC rc;

        rc = Esys_NV_Increment(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(t, "Esys_NV_Increment(counter)", rc);
        return counter_value(t, nv, ret);
}

int host_tpm_counter_read(HostTpm *t, uint64_t *ret) {
        ESYS_TR nv = ESYS_TR_NONE;
        bool written;
        int r;

        if (!t || !ret)
                return -EINVAL;
        r = counter_open(t, &nv, &written);
        if (r < 0)
                return r;
        if (!written)
                r = fail(t, -ENOENT, "NV counter 0x%08" PRIx32 " was never incremented", t->nv_index);
        else
                r = counter_value(t, nv, ret);
        (void) Esys_TR_Close(t->esys, &nv);
        return r;
}

int host_tpm_counter_increment(HostTpm *t, uint64_t *ret) {
        ESYS_TR nv = ESYS_TR_NONE;
        bool written;
        int r;

        if (!t || !ret)
                return -EINVAL;
        r = counter_open(t, &nv, &written);
        if (r < 0)
                return r;
        r = counter_bump(t, nv, ret);
        (void) Esys_TR_Close(t->esys, &nv);
        return r;
}

int host_tpm_counter_ensure(HostTpm *t, uint64_t *ret) {
        TPM2B_AUTH no_auth = { 0 };
        TPM2B_NV_PUBLIC pub = {
                .nvPublic = {
                        .nvIndex = t ? t->nv_index : 0,
                        .nameAlg = TPM2_ALG_SHA256,
                        .attributes = COUNTER_ATTRS, /* not ORDERLY: an exact value survives a crash */
                        .dataSize = 8,
                },
        };
        ESYS_TR nv = ESYS_TR_NONE;
        bool written = false;
        TSS2_RC rc;
        int r;

        if (!t || !ret)
                return -EINVAL;
        r = counter_open(t, &nv, &written);
        if (r == -ENOENT) {
                rc = Esys_NV_DefineSpace(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                         &no_auth, &pub, &nv);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail(t, "Esys_NV_DefineSpace(counter)", rc);
                written = false;
        } else if (r < 0)
                return r;

        /* A counter cannot be read before its first increment; its first value
         * is above any counter ever deleted on this TPM, never assumed to be 1. */
        if (written)
                r = counter_value(t, nv, ret);
        else
                r = counter_bump(t, nv, ret);
        (void) Esys_TR_Close(t->esys, &nv);
        return r;
}

unsigned host_tpm_commands(const HostTpm *t) {
        return t ? t->tcti.commands : 0;
}

const char *host_tpm_last_error(const HostTpm *t) {
        if (!t)
                return open_error ?: "no error";
        return t->last_error ?: "no error";
}
