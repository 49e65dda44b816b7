/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpmd's local CA: it issues the EK (and platform) certificates written into
 * manufactured vTPMs, as swtpm_localca does for swtpm_setup.
 *
 *   <root>/ca-key        the CA's ECDSA P-256 private key (PKCS#8 DER), a
 *                        CA_KEY blob encrypted with the master key
 *   <root>/ca-cert.pem   its self-signed certificate (public; `vtpmd-ctl ca-cert`)
 *
 * Both are created at first use. Certificates follow the TCG EK Credential
 * Profile for TPM Family 2.0: empty subject, a critical subjectAltName
 * directoryName with the TPM manufacturer, model and version, the TPM
 * specification in subjectDirectoryAttributes, EKU 2.23.133.8.1.
 */
#pragma once

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "statestore.h"
#include "util.h"

typedef struct Ca Ca;

#define CA_KEY_FILE "ca-key"      /* state_kind_filename(STATE_KIND_CA_KEY) */
#define CA_CERT_FILE "ca-cert.pem"

/* What the certificate says about the TPM (from TPM2_GetCapability). */
typedef struct CaTpmInfo {
        uint32_t manufacturer;  /* TPM2_PT_MANUFACTURER, e.g. 0x49424D00 "IBM" */
        char model[32];         /* e.g. "swtpm" */
        uint32_t version;       /* TPM2_PT_FIRMWARE_VERSION_1 */
        uint32_t spec_level;    /* TPM2_PT_LEVEL */
        uint32_t spec_revision; /* TPM2_PT_REVISION, e.g. 159 for 1.59 */
} CaTpmInfo;

typedef enum CaCertKind {
        CA_CERT_EK_RSA,   /* keyUsage keyEncipherment */
        CA_CERT_EK_ECC,   /* keyUsage keyAgreement */
        CA_CERT_PLATFORM, /* platform certificate over the EK (swtpm_cert --type platform style) */
} CaCertKind;

/* What ca_load() did, or where it failed, for the caller's one log line. */
typedef struct CaLoadReport {
        /* On failure: the file concerned (CA_KEY_FILE, CA_CERT_FILE; NULL if
         * none) and what went wrong with it, a static phrase. */
        const char *file;
        const char *error;
        /* On success: the CA was made now (key and certificate), or its lost
         * certificate was issued again for the key. */
        bool created;
        bool reissued;
} CaLoadReport;

/* Loads the CA, creating its key and certificate if there are none.
 * -EKEYREJECTED if the key file does not decrypt with this master key or
 * the certificate is not the key's; -EIO for OpenSSL failures. Logs
 * nothing: the report (if not NULL) is written on success and on failure. */
int ca_load(StateRoot *root, const uint8_t master_key[CRYPTO_KEY_SIZE], CaLoadReport *ret_report, Ca **ret);
/* The admin's own CA instead (vtpmd.conf(5) EkCaCertificate=, EkCaKey=): a PEM
 * certificate that is a CA's (basicConstraints CA:TRUE) and its unencrypted PEM
 * private key, in a regular file no group or other user may read or write
 * (-EPERM: the report says so). -EKEYREJECTED if the key is not the
 * certificate's, -EBADMSG if a file does not hold what it should. The report's
 * file is the path concerned. */
int ca_load_files(const char *cert_path, const char *key_path, CaLoadReport *ret_report, Ca **ret);
Ca *ca_free(Ca *ca); /* accepts NULL, returns NULL */
DEFINE_TRIVIAL_CLEANUP_FUNC(Ca *, ca_free)

/* The CA certificate, PEM, NUL-terminated, malloc'd. */
int ca_cert_pem(Ca *ca, char **ret_pem);

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free)

/* The EK's public key as OpenSSL keys: RSA (big-endian modulus, exponent;
 * 0 means the TPM default 65537) and ECC NIST P-256 (x, y big-endian). */
int ca_rsa_public_key(const uint8_t *modulus, size_t len, uint32_t exponent, EVP_PKEY **ret);
int ca_ecc_p256_public_key(const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen, EVP_PKEY **ret);

/* Issues a certificate for key, DER, malloc'd. */
int ca_issue(Ca *ca, CaCertKind kind, EVP_PKEY *key, const CaTpmInfo *info, uint8_t **ret_der, size_t *ret_len);

/* DER -> PEM, NUL-terminated, malloc'd. */
int ca_der_to_pem(const uint8_t *der, size_t len, char **ret_pem);
