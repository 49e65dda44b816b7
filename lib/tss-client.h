/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A TSS2 ESAPI client of a vTPM reached through a byte transport: the
 * mechanism of manufacturing (daemon/supervisor/manufacture.c decides what
 * is made, when, and in which process). The caller passes a function that
 * carries one TPM command to the TPM and brings its response back (the
 * supervisor's helper: to an offline vtpmd-worker over IPC; the unit test: to
 * an in-process libtpms); this module makes a TCTI of it and speaks ESAPI.
 *
 * The TCG facts live here, as swtpm_setup applies them (research
 * libtpms-swtpm.md §2.8): the default EK templates (EK Credential Profile
 * 2.0, B.3.3 "Template L-1" RSA 2048 and B.3.4 "Template L-2" ECC NIST
 * P-256), their persistent handles (0x81010001, 0x81010002), the certificate
 * NV indices (0x01c00002, 0x01c0000a, platform 0x01c08000) and their
 * attributes. Everything runs under platform authorization, or endorsement
 * and owner with the empty password, as on a TPM just made.
 *
 * Every verb returns 0 or a negative errno: the transport's own, else
 * lib/tss2-rc.h's translation of the TPM's answer, else as listed below.
 * tss_client_last_error() then says what failed in a phrase the caller can
 * log ("TPM2_NV_Write(0x01c00002) of the RSA EK certificate failed:
 * tpm:error(2.0): ..."). Once the transport has failed, the client is spent
 * (ESAPI's context is left mid-command): every verb returns that errno and
 * sends nothing. Nothing here logs. One TssClient is used by one thread at a
 * time (ESAPI contexts are not thread-safe).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Carries one command (len bytes) to the TPM and its response back into resp
 * (resp_max bytes, the TSS's TPM2_MAX_COMMAND_SIZE): 0 and the response's
 * length, or a negative errno. Blocks; any deadline is the transport's. */
typedef int (*TssTransport)(void *userdata, const uint8_t *cmd, size_t len, uint8_t *resp, size_t resp_max,
                            size_t *ret_len);

typedef struct TssClient TssClient;

int tss_client_new(TssTransport transport, void *userdata, TssClient **ret);
TssClient *tss_client_free(TssClient *c); /* accepts NULL, returns NULL; sends nothing */
DEFINE_TRIVIAL_CLEANUP_FUNC(TssClient *, tss_client_free)

/* Why the last verb failed ("" if none has). Valid until the next verb. */
const char *tss_client_last_error(const TssClient *c);

/* What the TPM says about itself (TPM2_GetCapability(TPM_PROPERTIES)). */
typedef struct TssTpmProperties {
        uint32_t manufacturer;     /* TPM2_PT_MANUFACTURER, e.g. 0x49424D00 "IBM" */
        uint32_t firmware_version; /* TPM2_PT_FIRMWARE_VERSION_1 */
        uint32_t spec_level;       /* TPM2_PT_LEVEL */
        uint32_t spec_revision;    /* TPM2_PT_REVISION, e.g. 159 for 1.59 */
        uint16_t nv_buffer_max;    /* TPM2_PT_NV_BUFFER_MAX; 1024 (swtpm_setup's) if outside 64-1024 */
} TssTpmProperties;

/* Also makes tss_client_write_cert() write in chunks of nv_buffer_max (1024 before it is called). */
int tss_client_properties(TssClient *c, TssTpmProperties *ret);

typedef enum TssEk {
        TSS_EK_RSA2048,
        TSS_EK_ECC_P256,
        _TSS_EK_MAX,
} TssEk;

/* "RSA 2048 EK", "ECC P-256 EK": for messages. */
const char *tss_ek_to_string(TssEk ek);

/* An EK's public key as the TPM made it. The templates fix the sizes: a
 * 2048-bit modulus, P-256 coordinates of 32 bytes. */
typedef struct TssEkPublic {
        char sha256[65];          /* SHA-256 of its TPM2B_PUBLIC, marshalled, hex: the EK's identity */
        uint8_t rsa_modulus[256]; /* RSA: big-endian */
        size_t rsa_modulus_len;
        uint32_t rsa_exponent;    /* RSA: 0 means the TPM default, 65537 */
        uint8_t ecc_x[32];        /* ECC: the point, big-endian */
        uint8_t ecc_y[32];
        size_t ecc_x_len, ecc_y_len;
} TssEkPublic;

/* TPM2_CreatePrimary of the EK from its TCG template in the endorsement
 * hierarchy; with persist, TPM2_EvictControl to its TCG handle. The
 * transient object is flushed either way. The endorsement seed makes the
 * same key every time, so the hash compares across calls. -EACCES: the
 * endorsement hierarchy has a password. */
int tss_client_create_ek(TssClient *c, TssEk ek, bool persist, TssEkPublic *ret);

typedef enum TssCert {
        TSS_CERT_EK_RSA2048,  /* 0x01c00002 */
        TSS_CERT_EK_ECC_P256, /* 0x01c0000a */
        TSS_CERT_PLATFORM,    /* 0x01c08000 */
        _TSS_CERT_MAX,
} TssCert;

/* TPM2_NV_DefineSpace of the certificate's index (platform-created, as
 * swtpm_setup writes it: readable with owner or its own authorization,
 * written once under platform authorization), TPM2_NV_Write in chunks,
 * TPM2_NV_WriteLock. -EINVAL if the certificate is empty or over 65535 bytes. */
int tss_client_write_cert(TssClient *c, TssCert cert, const uint8_t *der, size_t len);

/* The certificate as a guest reads it (TPM2_NV_ReadPublic, TPM2_NV_Read under
 * owner authorization): malloc'd, and whether the index is write-locked.
 * -ENOENT if the index is not defined. */
int tss_client_read_cert(TssClient *c, TssCert cert, uint8_t **ret_der, size_t *ret_len, bool *ret_locked);

enum {
        TSS_PCR_BANK_SHA1 = 1u << 0,
        TSS_PCR_BANK_SHA256 = 1u << 1,
        TSS_PCR_BANK_SHA384 = 1u << 2,
        TSS_PCR_BANK_SHA512 = 1u << 3,
};

/* TPM2_PCR_Allocate: the banks given get every PCR, every other bank the TPM
 * implements none. It takes effect at the next power-on. -EOPNOTSUPP if the
 * TPM has no such bank, -ENOSPC if it refuses the allocation. */
int tss_client_allocate_pcrs(TssClient *c, unsigned banks);

/* The banks that have PCRs now (TSS_PCR_BANK_*; a bank outside them is not reported). */
int tss_client_pcr_banks(TssClient *c, unsigned *ret);

/* TPM2_ClearControl(platform, NO), which undoes a guest's
 * TPM2_ClearControl(owner, YES), then TPM2_Clear(platform): a new storage
 * seed, the owner's NV indices and every owner or endorsement object gone,
 * the owner, endorsement and lockout authorizations empty. The endorsement
 * seed and the platform's NV indices (the certificates) stay. */
int tss_client_clear(TssClient *c);
