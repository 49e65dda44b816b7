/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * ESAPI over a transport callback (tss-client.h). The TCTI does the whole
 * exchange in transmit, so receive only hands over the response it keeps:
 * ESAPI's synchronous calls need no more, and the transport owns the
 * deadline.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti.h>

#include "tss-client.h"
#include "tss2-rc.h"

/* A TCTI whose TPM is behind the caller's transport. The common header must
 * come first: TSS code reaches the function table through a cast. */
typedef struct CallbackTcti {
        TSS2_TCTI_CONTEXT_COMMON_V2 common;
        TssClient *client;
} CallbackTcti;

struct TssClient {
        CallbackTcti tcti; /* ESAPI keeps a pointer to it: a TssClient is never moved */
        TssTransport transport;
        void *userdata;
        ESYS_CONTEXT *esys;
        uint16_t nv_buffer_max;
        int lost; /* the transport's errno once it failed: ESAPI's context is then spent */
        bool have;           /* a response is waiting in resp */
        size_t resp_len;
        /* The TSS's own bound on a command or response (its SAPI buffer). */
        uint8_t resp[TPM2_MAX_COMMAND_SIZE];
        char *last_error;
};

/* The TCG default EK templates and where the EKs go (TCG EK Credential
 * Profile 2.0, B.3.3, B.3.4, 2.2.1.4 low range; PC Client Platform TPM
 * Profile for the persistent handles). */
static const uint8_t ek_policy[32] = {
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
        0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};

#define EK_ATTRIBUTES                                                                                    \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |             \
         TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
_Static_assert(EK_ATTRIBUTES == 0x000300B2, "TCG EK attributes");

static const struct {
        const char *name;
        TPM2_HANDLE handle;
} ek_kinds[_TSS_EK_MAX] = {
        [TSS_EK_RSA2048] = { "RSA 2048 EK", 0x81010001u },
        [TSS_EK_ECC_P256] = { "ECC P-256 EK", 0x81010002u },
};

static const struct {
        const char *name;
        TPM2_HANDLE index;
} cert_kinds[_TSS_CERT_MAX] = {
        [TSS_CERT_EK_RSA2048] = { "RSA EK certificate", 0x01c00002u },
        [TSS_CERT_EK_ECC_P256] = { "ECC EK certificate", 0x01c0000au },
        [TSS_CERT_PLATFORM] = { "platform certificate", 0x01c08000u },
};

/* As swtpm_setup writes them (swtpm.c, write_ek_cert_nvram): written once
 * under platform authorization, then readable by anyone who can read the
 * owner or the index itself, never rewritten after NV_WriteLock. */
#define NV_CERT_ATTRIBUTES                                                                                    \
        (TPMA_NV_PLATFORMCREATE | TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_PPREAD | TPMA_NV_PPWRITE |   \
         TPMA_NV_NO_DA | TPMA_NV_WRITEDEFINE)

static const struct {
        unsigned bit;
        TPMI_ALG_HASH alg;
        const char *name;
} pcr_banks[] = {
        { TSS_PCR_BANK_SHA1, TPM2_ALG_SHA1, "sha1" },
        { TSS_PCR_BANK_SHA256, TPM2_ALG_SHA256, "sha256" },
        { TSS_PCR_BANK_SHA384, TPM2_ALG_SHA384, "sha384" },
        { TSS_PCR_BANK_SHA512, TPM2_ALG_SHA512, "sha512" },
};

/* ---- the TCTI ---- */

static TssClient *tcti_client(TSS2_TCTI_CONTEXT *t) {
        return ((CallbackTcti *) t)->client;
}

static TSS2_RC tcti_transmit(TSS2_TCTI_CONTEXT *t, size_t size, const uint8_t *command) {
        TssClient *c = tcti_client(t);
        size_t n = 0;
        int r;

        if (c->have)
                return TSS2_TCTI_RC_BAD_SEQUENCE;
        r = c->transport(c->userdata, command, size, c->resp, sizeof(c->resp), &n);
        if (r >= 0 && n > sizeof(c->resp))
                r = -EMSGSIZE;
        if (r < 0) {
                c->lost = r;
                return TSS2_TCTI_RC_IO_ERROR;
        }
        c->resp_len = n;
        c->have = true;
        return TSS2_RC_SUCCESS;
}

static TSS2_RC tcti_receive(TSS2_TCTI_CONTEXT *t, size_t *size, uint8_t *response, int32_t timeout) {
        TssClient *c = tcti_client(t);

        (void) timeout; /* the response is here already, or lost */
        if (!size)
                return TSS2_TCTI_RC_BAD_REFERENCE;
        if (!c->have)
                return TSS2_TCTI_RC_BAD_SEQUENCE;
        /* ESAPI may ask for the size first (response NULL). */
        if (!response) {
                *size = c->resp_len;
                return TSS2_RC_SUCCESS;
        }
        if (*size < c->resp_len)
                return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
        memcpy(response, c->resp, c->resp_len);
        *size = c->resp_len;
        c->have = false;
        return TSS2_RC_SUCCESS;
}

/* ---- errors ---- */

_printf_(3, 4) static int fail(TssClient *c, int r, const char *fmt, ...) {
        char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        free(c->last_error);
        c->last_error = s;
        return r;
}

/* A failed ESAPI call: the transport's errno if it was the transport, else the TPM's answer translated. */
static int rc_errno(const TssClient *c, TSS2_RC rc) {
        return c->lost ?: tss2_rc_errno(rc);
}

/* Tss2_RC_Decode() returns a static buffer: used at once by fail(). */
#define tss_fail(c, rc, fmt, ...) fail(c, rc_errno(c, rc), fmt ": %s", ##__VA_ARGS__, Tss2_RC_Decode(rc))

/* ---- the client ---- */

int tss_client_new(TssTransport transport, void *userdata, TssClient **ret) {
        _cleanup_(tss_client_freep) TssClient *c = NULL;
        TSS2_RC rc;

        if (!transport || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->tcti = (CallbackTcti){
                .common.v1 = {
                        .magic = UINT64_C(0x7674706d64697063), /* "vtpmdipc": ours, not a tctildr module */
                        .version = 2,
                        .transmit = tcti_transmit,
                        .receive = tcti_receive,
                },
                .client = c,
        };
        c->transport = transport;
        c->userdata = userdata;
        c->nv_buffer_max = 1024; /* what swtpm_setup uses when it does not ask */
        rc = Esys_Initialize(&c->esys, (TSS2_TCTI_CONTEXT *) &c->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return tss2_rc_errno(rc);
        *ret = TAKE_PTR(c);
        return 0;
}

TssClient *tss_client_free(TssClient *c) {
        if (!c)
                return NULL;
        if (c->esys)
                Esys_Finalize(&c->esys);
        free(c->last_error);
        free(c);
        return NULL;
}

const char *tss_client_last_error(const TssClient *c) {
        return c->last_error ?: "";
}

const char *tss_ek_to_string(TssEk ek) {
        return (unsigned) ek < _TSS_EK_MAX ? ek_kinds[ek].name : NULL;
}

int tss_client_properties(TssClient *c, TssTpmProperties *ret) {
        _cleanup_free_ TPMS_CAPABILITY_DATA *cap = NULL;
        TssTpmProperties p = { .nv_buffer_max = 1024 };
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */

        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                TPM2_PT_FIXED, TPM2_MAX_TPM_PROPERTIES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_GetCapability(TPM_PROPERTIES) failed");

        for (uint32_t i = 0; i < cap->data.tpmProperties.count && i < TPM2_MAX_TPM_PROPERTIES; i++) {
                const TPMS_TAGGED_PROPERTY *t = &cap->data.tpmProperties.tpmProperty[i];
                switch (t->property) {
                case TPM2_PT_MANUFACTURER:
                        p.manufacturer = t->value;
                        break;
                case TPM2_PT_FIRMWARE_VERSION_1:
                        p.firmware_version = t->value;
                        break;
                case TPM2_PT_LEVEL:
                        p.spec_level = t->value;
                        break;
                case TPM2_PT_REVISION:
                        p.spec_revision = t->value;
                        break;
                case TPM2_PT_NV_BUFFER_MAX:
                        if (t->value >= 64 && t->value <= 1024)
                                p.nv_buffer_max = (uint16_t) t->value;
                        break;
                default:
                        break;
                }
        }
        c->nv_buffer_max = p.nv_buffer_max;
        *ret = p;
        return 0;
}

/* ---- EKs ---- */

static void ek_template(TssEk ek, TPM2B_PUBLIC *t) {
        memset(t, 0, sizeof(*t));
        t->publicArea.nameAlg = TPM2_ALG_SHA256;
        t->publicArea.objectAttributes = EK_ATTRIBUTES;
        t->publicArea.authPolicy.size = sizeof(ek_policy);
        memcpy(t->publicArea.authPolicy.buffer, ek_policy, sizeof(ek_policy));
        switch (ek) {
        case TSS_EK_RSA2048: {
                TPMS_RSA_PARMS *p = &t->publicArea.parameters.rsaDetail;
                t->publicArea.type = TPM2_ALG_RSA;
                p->symmetric.algorithm = TPM2_ALG_AES;
                p->symmetric.keyBits.aes = 128;
                p->symmetric.mode.aes = TPM2_ALG_CFB;
                p->scheme.scheme = TPM2_ALG_NULL;
                p->keyBits = 2048;
                p->exponent = 0;
                t->publicArea.unique.rsa.size = 256; /* zeros */
                break;
        }
        case TSS_EK_ECC_P256: {
                TPMS_ECC_PARMS *p = &t->publicArea.parameters.eccDetail;
                t->publicArea.type = TPM2_ALG_ECC;
                p->symmetric.algorithm = TPM2_ALG_AES;
                p->symmetric.keyBits.aes = 128;
                p->symmetric.mode.aes = TPM2_ALG_CFB;
                p->scheme.scheme = TPM2_ALG_NULL;
                p->curveID = TPM2_ECC_NIST_P256;
                p->kdf.scheme = TPM2_ALG_NULL;
                t->publicArea.unique.ecc.x.size = 32; /* zeros */
                t->publicArea.unique.ecc.y.size = 32;
                break;
        }
        case _TSS_EK_MAX:
                break;
        }
}

static int public_sha256(const TPM2B_PUBLIC *pub, char hex[65]) {
        uint8_t buf[sizeof(TPM2B_PUBLIC)], md[32];
        size_t off = 0;
        unsigned n = 0;

        if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) != TSS2_RC_SUCCESS)
                return -EIO;
        if (!EVP_Digest(buf, off, md, &n, EVP_sha256(), NULL) || n != sizeof(md))
                return -EIO;
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        return 0;
}

/* The key out of the TPM's public area; the template bounds every size. */
static int ek_public(TssEk ek, const TPM2B_PUBLIC *pub, TssEkPublic *ret) {
        const TPMU_PUBLIC_ID *u = &pub->publicArea.unique;

        if (ek == TSS_EK_RSA2048) {
                if (pub->publicArea.type != TPM2_ALG_RSA || u->rsa.size > sizeof(ret->rsa_modulus))
                        return -EBADMSG;
                memcpy(ret->rsa_modulus, u->rsa.buffer, u->rsa.size);
                ret->rsa_modulus_len = u->rsa.size;
                ret->rsa_exponent = pub->publicArea.parameters.rsaDetail.exponent;
                return 0;
        }
        if (pub->publicArea.type != TPM2_ALG_ECC || u->ecc.x.size > sizeof(ret->ecc_x) ||
            u->ecc.y.size > sizeof(ret->ecc_y))
                return -EBADMSG;
        memcpy(ret->ecc_x, u->ecc.x.buffer, u->ecc.x.size);
        memcpy(ret->ecc_y, u->ecc.y.buffer, u->ecc.y.size);
        ret->ecc_x_len = u->ecc.x.size;
        ret->ecc_y_len = u->ecc.y.size;
        return 0;
}

int tss_client_create_ek(TssClient *c, TssEk ek, bool persist, TssEkPublic *ret) {
        TPM2B_PUBLIC in;
        TPM2B_SENSITIVE_CREATE sens = { .size = 0 };
        TPM2B_DATA outside = { .size = 0 };
        TPML_PCR_SELECTION pcrs = { .count = 0 };
        _cleanup_free_ TPM2B_PUBLIC *out = NULL;
        _cleanup_free_ TPM2B_CREATION_DATA *cdata = NULL;
        _cleanup_free_ TPM2B_DIGEST *chash = NULL;
        _cleanup_free_ TPMT_TK_CREATION *ticket = NULL;
        ESYS_TR obj = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
        TssEkPublic res = {};
        TSS2_RC rc;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */

        if ((unsigned) ek >= _TSS_EK_MAX || !ret)
                return -EINVAL;
        ek_template(ek, &in);
        rc = Esys_CreatePrimary(c->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                &in, &outside, &pcrs, &obj, &out, &cdata, &chash, &ticket);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_CreatePrimary of the %s failed", ek_kinds[ek].name);
        if (persist)
                rc = Esys_EvictControl(c->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ek_kinds[ek].handle, &persistent);
        (void) Esys_FlushContext(c->esys, obj);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_EvictControl of the %s to 0x%08" PRIx32 " failed", ek_kinds[ek].name,
                                ek_kinds[ek].handle);
        if (persist)
                (void) Esys_TR_Close(c->esys, &persistent);

        if (public_sha256(out, res.sha256) < 0)
                return fail(c, -EIO, "Failed to hash the %s public key", ek_kinds[ek].name);
        if (ek_public(ek, out, &res) < 0)
                return fail(c, -EBADMSG, "The %s public key is not of its template", ek_kinds[ek].name);
        *ret = res;
        return 0;
}

/* ---- certificates ---- */

int tss_client_write_cert(TssClient *c, TssCert cert, const uint8_t *der, size_t len) {
        TPM2B_AUTH auth = { .size = 0 };
        TPM2B_NV_PUBLIC pub;
        ESYS_TR nv = ESYS_TR_NONE;
        TPM2_HANDLE index;
        const char *what;
        TSS2_RC rc;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */

        if ((unsigned) cert >= _TSS_CERT_MAX || (!der && len > 0))
                return -EINVAL;
        index = cert_kinds[cert].index;
        what = cert_kinds[cert].name;
        if (len == 0 || len > UINT16_MAX)
                return fail(c, -EINVAL, "The %s is %zu bytes", what, len);
        pub = (TPM2B_NV_PUBLIC){
                .nvPublic = {
                        .nvIndex = index,
                        .nameAlg = TPM2_ALG_SHA256,
                        .attributes = NV_CERT_ATTRIBUTES,
                        .dataSize = (uint16_t) len,
                },
        };
        rc = Esys_NV_DefineSpace(c->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                 &pub, &nv);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_NV_DefineSpace(0x%08" PRIx32 ") for the %s failed", index, what);
        for (size_t off = 0; off < len;) {
                TPM2B_MAX_NV_BUFFER chunk;
                size_t n = len - off;
                if (n > c->nv_buffer_max)
                        n = c->nv_buffer_max;
                if (n > sizeof(chunk.buffer))
                        n = sizeof(chunk.buffer);
                chunk.size = (uint16_t) n;
                memcpy(chunk.buffer, der + off, n);
                rc = Esys_NV_Write(c->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                   &chunk, (uint16_t) off);
                if (rc != TSS2_RC_SUCCESS)
                        return tss_fail(c, rc, "TPM2_NV_Write(0x%08" PRIx32 ") of the %s failed", index, what);
                off += n;
        }
        rc = Esys_NV_WriteLock(c->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_NV_WriteLock(0x%08" PRIx32 ") of the %s failed", index, what);
        (void) Esys_TR_Close(c->esys, &nv);
        return 0;
}

int tss_client_read_cert(TssClient *c, TssCert cert, uint8_t **ret_der, size_t *ret_len, bool *ret_locked) {
        _cleanup_free_ TPM2B_NV_PUBLIC *pub = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        ESYS_TR nv = ESYS_TR_NONE;
        TPM2_HANDLE index;
        size_t len;
        TSS2_RC rc;
        int r = 0;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */

        if ((unsigned) cert >= _TSS_CERT_MAX || !ret_der || !ret_len)
                return -EINVAL;
        index = cert_kinds[cert].index;
        rc = Esys_TR_FromTPMPublic(c->esys, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        if (tss2_rc_base(rc) == TPM2_RC_HANDLE)
                return fail(c, -ENOENT, "NV index 0x%08" PRIx32 " is not defined", index);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_NV_ReadPublic(0x%08" PRIx32 ") failed", index);
        rc = Esys_NV_ReadPublic(c->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
        if (rc != TSS2_RC_SUCCESS) {
                r = tss_fail(c, rc, "TPM2_NV_ReadPublic(0x%08" PRIx32 ") failed", index);
                goto finish;
        }
        len = pub->nvPublic.dataSize;
        der = malloc(len ?: 1);
        if (!der) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t off = 0; off < len;) {
                _cleanup_free_ TPM2B_MAX_NV_BUFFER *chunk = NULL;
                size_t n = len - off;
                if (n > c->nv_buffer_max)
                        n = c->nv_buffer_max;
                rc = Esys_NV_Read(c->esys, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                  (uint16_t) n, (uint16_t) off, &chunk);
                if (rc != TSS2_RC_SUCCESS) {
                        r = tss_fail(c, rc, "TPM2_NV_Read(0x%08" PRIx32 ") failed", index);
                        goto finish;
                }
                if (chunk->size != n) {
                        r = fail(c, -EBADMSG, "TPM2_NV_Read(0x%08" PRIx32 ") answered %u bytes, not %zu", index,
                                 chunk->size, n);
                        goto finish;
                }
                memcpy(der + off, chunk->buffer, n);
                off += n;
        }
        if (ret_locked)
                *ret_locked = !!(pub->nvPublic.attributes & TPMA_NV_WRITELOCKED);
        *ret_der = TAKE_PTR(der);
        *ret_len = len;
finish:
        (void) Esys_TR_Close(c->esys, &nv);
        return r;
}

/* ---- PCR banks ---- */

/* The TPM's banks and which PCRs each has, sizes bounded by the structure. */
static int get_pcrs(TssClient *c, TPML_PCR_SELECTION *ret) {
        _cleanup_free_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */
        rc = Esys_GetCapability(c->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_GetCapability(PCRS) failed");
        *ret = cap->data.assignedPCR;
        if (ret->count > TPM2_NUM_PCR_BANKS)
                ret->count = TPM2_NUM_PCR_BANKS;
        for (uint32_t i = 0; i < ret->count; i++)
                if (ret->pcrSelections[i].sizeofSelect > sizeof(ret->pcrSelections[i].pcrSelect))
                        ret->pcrSelections[i].sizeofSelect = sizeof(ret->pcrSelections[i].pcrSelect);
        return 0;
}

static unsigned bank_of(TPMI_ALG_HASH alg) {
        for (size_t b = 0; b < ELEMENTSOF(pcr_banks); b++)
                if (pcr_banks[b].alg == alg)
                        return pcr_banks[b].bit;
        return 0;
}

int tss_client_allocate_pcrs(TssClient *c, unsigned banks) {
        TPML_PCR_SELECTION sel;
        TPMI_YES_NO ok = TPM2_NO;
        UINT32 max_pcr = 0, needed = 0, available = 0;
        unsigned found = 0;
        TSS2_RC rc;
        int r;

        r = get_pcrs(c, &sel);
        if (r < 0)
                return r;
        /* Every implemented bank is listed, so that the unwanted ones are switched off. */
        for (uint32_t i = 0; i < sel.count; i++) {
                TPMS_PCR_SELECTION *s = &sel.pcrSelections[i];

                found |= banks & bank_of(s->hash);
                memset(s->pcrSelect, banks & bank_of(s->hash) ? 0xff : 0, s->sizeofSelect);
        }
        for (size_t b = 0; b < ELEMENTSOF(pcr_banks); b++)
                if ((banks & pcr_banks[b].bit) && !(found & pcr_banks[b].bit))
                        return fail(c, -EOPNOTSUPP, "The TPM has no %s PCR bank", pcr_banks[b].name);

        rc = Esys_PCR_Allocate(c->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &ok,
                               &max_pcr, &needed, &available);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_PCR_Allocate failed");
        if (ok != TPM2_YES)
                return fail(c, -ENOSPC,
                            "TPM2_PCR_Allocate refused the banks (%" PRIu32 " bytes needed, %" PRIu32 " available)",
                            needed, available);
        return 0;
}

int tss_client_pcr_banks(TssClient *c, unsigned *ret) {
        TPML_PCR_SELECTION sel;
        unsigned banks = 0;
        int r;

        r = get_pcrs(c, &sel);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < sel.count; i++) {
                const TPMS_PCR_SELECTION *s = &sel.pcrSelections[i];
                for (size_t k = 0; k < s->sizeofSelect; k++)
                        if (s->pcrSelect[k]) {
                                banks |= bank_of(s->hash);
                                break;
                        }
        }
        *ret = banks;
        return 0;
}

/* ---- clear ---- */

int tss_client_clear(TssClient *c) {
        TSS2_RC rc;

        if (c->lost)
                return c->lost; /* last_error still says how it was lost */

        rc = Esys_ClearControl(c->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_NO);
        if (rc != TSS2_RC_SUCCESS)
                return fail(c, rc_errno(c, rc), "TPM2_ClearControl(platform, NO) failed: %s; nothing was changed",
                            Tss2_RC_Decode(rc));
        rc = Esys_Clear(c->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS)
                return tss_fail(c, rc, "TPM2_Clear failed");
        return 0;
}
