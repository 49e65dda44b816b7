/* SPDX-License-Identifier: BSD-3-Clause */
/* vtpmd's local CA over OpenSSL (ca.h). Nothing here logs: ca_load() reports to its caller. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ca.h"
#include "util.h"

struct Ca {
        EVP_PKEY *key;
        X509 *cert;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_EXTENSION *, X509_EXTENSION_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OBJECT *, ASN1_OBJECT_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM_BLD *, OSSL_PARAM_BLD_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(OSSL_PARAM *, OSSL_PARAM_free)

#define CA_VALIDITY_DAYS (10 * 365 + 3)
/* RFC 5280 4.1.2.5: no well-defined expiration; an EK lives as long as the TPM. */
#define EK_NOT_AFTER "99991231235959Z"

/* TCG OIDs (TCG EK Credential Profile 2.0, section 3.2; TCG OID registry). */
#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL "2.23.133.2.2"
#define OID_TPM_VERSION "2.23.133.2.3"
#define OID_PLATFORM_MANUFACTURER "2.23.133.2.4"
#define OID_PLATFORM_MODEL "2.23.133.2.5"
#define OID_PLATFORM_VERSION "2.23.133.2.6"
#define OID_EKU_EK_CERTIFICATE "2.23.133.8.1"
#define OID_EKU_PLATFORM_CERTIFICATE "2.23.133.8.2"
#define OID_SUBJECT_DIRECTORY_ATTRIBUTES "2.5.29.9"

/* The one translation of OpenSSL failures into errno: -ENOMEM if OpenSSL
 * ran out of memory, else r, the caller's word for what failed. The error
 * queue is emptied, so no stale entry is blamed for a later failure. */
static int ossl_error(int r) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == ERR_R_MALLOC_FAILURE)
                r = -ENOMEM;
        ERR_clear_error();
        return r;
}

Ca *ca_free(Ca *ca) {
        if (!ca)
                return NULL;
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca);
        return NULL;
}

static int random_serial(X509 *x) {
        _cleanup_(BN_freep) BIGNUM *bn = BN_new();

        /* 127 random bits, top bit clear: a positive INTEGER of at most 16 bytes (RFC 5280 4.1.2.2). */
        if (!bn || !BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) || BN_is_zero(bn))
                return ossl_error(-EIO);
        if (!BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
                return ossl_error(-EIO);
        return 0;
}

/* A v3 extension from OpenSSL's configuration syntax (ctx: issuer/subject for key identifiers). */
static int add_ext_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

        if (!ext || !X509_add_ext(x, ext, -1))
                return ossl_error(-EIO);
        return 0;
}

static int generate_key(EVP_PKEY **ret) {
        EVP_PKEY *k = EVP_EC_gen("P-256");

        if (!k)
                return ossl_error(-EIO);
        *ret = k;
        return 0;
}

static int make_ca_cert(EVP_PKEY *key, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        X509_NAME *name;
        X509V3_CTX ctx;
        uint8_t id[4];
        char cn[64];
        int r;

        if (!x)
                return -ENOMEM;
        r = crypto_random(id, sizeof(id));
        if (r < 0)
                return r;
        /* A random suffix: two hosts' CAs never share a name. */
        snprintf(cn, sizeof(cn), "vtpmd local CA %02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
        name = X509_get_subject_name(x);
        if (!X509_set_version(x, X509_VERSION_3) ||
            !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) "vtpmd", -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) ||
            !X509_set_issuer_name(x, name) || !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), CA_VALIDITY_DAYS, 0, NULL) || !X509_set_pubkey(x, key))
                return ossl_error(-EIO);
        r = random_serial(x);
        if (r < 0)
                return r;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        if ((r = add_ext_conf(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
            (r = add_ext_conf(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign")) < 0 ||
            (r = add_ext_conf(x, &ctx, NID_subject_key_identifier, "hash")) < 0)
                return r;
        if (!X509_sign(x, key, EVP_sha256()))
                return ossl_error(-EIO);
        *ret = TAKE_PTR(x);
        return 0;
}

static int key_to_der(EVP_PKEY *key, uint8_t **ret, size_t *ret_len) {
        uint8_t *der = NULL;
        int n = i2d_PrivateKey(key, &der);

        if (n <= 0)
                return ossl_error(-EIO);
        *ret = der;
        *ret_len = (size_t) n;
        return 0;
}

static int key_from_der(const uint8_t *der, size_t len, EVP_PKEY **ret) {
        const unsigned char *p = der;
        EVP_PKEY *k = d2i_AutoPrivateKey(NULL, &p, (long) len);

        if (!k)
                return ossl_error(-EIO);
        *ret = k;
        return 0;
}

static int cert_to_pem(X509 *x, char **ret) {
        _cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;
        char *s;

        if (!b || !PEM_write_bio_X509(b, x))
                return ossl_error(-EIO);
        n = BIO_get_mem_data(b, &data);
        if (n <= 0)
                return -EIO;
        s = strndup(data, (size_t) n);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int cert_from_pem(const uint8_t *pem, size_t len, X509 **ret) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        X509 *x;

        if (len > INT32_MAX)
                return -EBADMSG;
        b = BIO_new_mem_buf(pem, (int) len);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return ossl_error(-EBADMSG);
        *ret = x;
        return 0;
}

static int write_cert(StateRoot *root, X509 *x) {
        _cleanup_free_ char *pem = NULL;
        int r = cert_to_pem(x, &pem);

        if (r < 0)
                return r;
        return stateroot_write_raw(root, CA_CERT_FILE, pem, strlen(pem));
}

/* A failure of ca_load(): the file and what went wrong with it, for the caller's log line. */
static int load_fail(CaLoadReport *report, int r, const char *file, const char *error) {
        if (report) {
                report->file = file;
                report->error = error;
        }
        return r;
}

int ca_load(StateRoot *root, const uint8_t master_key[CRYPTO_KEY_SIZE], CaLoadReport *ret_report, Ca **ret) {
        _cleanup_(ca_freep) Ca *ca = calloc(1, sizeof(Ca));
        uint8_t *der = NULL, *pem = NULL;
        size_t der_len = 0, pem_len = 0;
        CaLoadReport report = {};
        int r;

        if (!ca)
                return load_fail(ret_report, -ENOMEM, NULL, "out of memory");

        r = stateroot_read(root, STATE_KIND_CA_KEY, master_key, &der, &der_len, NULL);
        if (r >= 0) {
                r = key_from_der(der, der_len, &ca->key);
                explicit_wipe(der, der_len);
                free(der);
                if (r < 0)
                        return load_fail(ret_report, r, CA_KEY_FILE, "it does not hold a private key");
        } else if (r == -ENOENT) {
                r = generate_key(&ca->key);
                if (r < 0)
                        return load_fail(ret_report, r, CA_KEY_FILE, "cannot generate the key");
                r = key_to_der(ca->key, &der, &der_len);
                if (r < 0)
                        return load_fail(ret_report, r, CA_KEY_FILE, "cannot encode the key");
                r = stateroot_write(root, STATE_KIND_CA_KEY, master_key, 1, der, der_len);
                explicit_wipe(der, der_len);
                OPENSSL_free(der);
                if (r < 0)
                        return load_fail(ret_report, r, CA_KEY_FILE, "cannot write it");
                report.created = true;
        } else
                return load_fail(ret_report, r, CA_KEY_FILE, statestore_strerror(r));

        r = report.created ? -ENOENT : stateroot_read_raw(root, CA_CERT_FILE, &pem, &pem_len);
        if (r >= 0) {
                r = cert_from_pem(pem, pem_len, &ca->cert);
                free(pem);
                if (r < 0)
                        return load_fail(ret_report, r, CA_CERT_FILE, "it is not a PEM certificate");
                if (X509_check_private_key(ca->cert, ca->key) != 1)
                        return load_fail(ret_report, ossl_error(-EKEYREJECTED), CA_CERT_FILE,
                                         "it is not the CA key's certificate");
        } else if (r == -ENOENT) {
                /* The key is the CA's identity; a lost certificate is re-issued for it. */
                r = make_ca_cert(ca->key, &ca->cert);
                if (r < 0)
                        return load_fail(ret_report, r, CA_CERT_FILE, "cannot make the certificate");
                r = write_cert(root, ca->cert);
                if (r < 0)
                        return load_fail(ret_report, r, CA_CERT_FILE, "cannot write it");
                report.reissued = !report.created;
        } else
                return load_fail(ret_report, r, CA_CERT_FILE, "cannot read it");

        if (ret_report)
                *ret_report = report;
        *ret = TAKE_PTR(ca);
        return 0;
}

#define CA_FILE_MAX (64u * 1024u)

/* A PEM file of the admin's; with secret, one that only its owner may read. */
static int read_pem_file(const char *path, bool secret, uint8_t **ret, size_t *ret_len, const char **ret_error) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t got = 0;

        *ret_error = "cannot open it";
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode)) {
                *ret_error = "it is not a regular file";
                return -EINVAL;
        }
        if (secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
                *ret_error = "its group or other users may read or write it: chmod 600 it (or 400)";
                return -EPERM;
        }
        if (st.st_size <= 0 || st.st_size > (off_t) CA_FILE_MAX) {
                *ret_error = "its size is not that of a PEM file";
                return -EBADMSG;
        }
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        *ret_error = "cannot read it";
                        return negative_errno();
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

/* No passphrase prompt on a terminal: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return -1;
}

int ca_load_files(const char *cert_path, const char *key_path, CaLoadReport *ret_report, Ca **ret) {
        _cleanup_(ca_freep) Ca *ca = calloc(1, sizeof(Ca));
        _cleanup_(BIO_freep) BIO *b = NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        const char *error;
        int r;

        if (!ca)
                return load_fail(ret_report, -ENOMEM, NULL, "out of memory");
        r = read_pem_file(key_path, true, &buf, &len, &error);
        if (r < 0)
                return load_fail(ret_report, r, key_path, error);
        b = BIO_new_mem_buf(buf, (int) len);
        if (b)
                ca->key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        explicit_wipe(buf, len);
        free(buf);
        if (!b)
                return load_fail(ret_report, -ENOMEM, key_path, "out of memory");
        if (!ca->key)
                return load_fail(ret_report, ossl_error(-EBADMSG), key_path,
                                 "it is not an unencrypted PEM private key");
        BIO_free(b);
        b = NULL;

        r = read_pem_file(cert_path, false, &buf, &len, &error);
        if (r < 0)
                return load_fail(ret_report, r, cert_path, error);
        r = cert_from_pem(buf, len, &ca->cert);
        free(buf);
        if (r < 0)
                return load_fail(ret_report, r, cert_path, "it is not a PEM certificate");
        if (X509_check_ca(ca->cert) < 1)
                return load_fail(ret_report, -EBADMSG, cert_path,
                                 "it is not a CA certificate (basicConstraints CA:TRUE)");
        if (X509_check_private_key(ca->cert, ca->key) != 1)
                return load_fail(ret_report, ossl_error(-EKEYREJECTED), cert_path,
                                 "it is not the certificate of the key in EkCaKey=");
        if (ret_report)
                *ret_report = (CaLoadReport){};
        *ret = TAKE_PTR(ca);
        return 0;
}

int ca_cert_pem(Ca *ca, char **ret_pem) {
        return cert_to_pem(ca->cert, ret_pem);
}

int ca_der_to_pem(const uint8_t *der, size_t len, char **ret_pem) {
        const unsigned char *p = der;
        _cleanup_(X509_freep) X509 *x = NULL;

        if (len > LONG_MAX)
                return -EBADMSG;
        x = d2i_X509(NULL, &p, (long) len);
        if (!x)
                return ossl_error(-EBADMSG);
        return cert_to_pem(x, ret_pem);
}

static int key_from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_freep) OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
        EVP_PKEY *k = NULL;

        if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
                return ossl_error(-EIO);
        *ret = k;
        return 0;
}

int ca_rsa_public_key(const uint8_t *modulus, size_t len, uint32_t exponent, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        _cleanup_(BN_freep) BIGNUM *n = NULL, *e = NULL;

        if (len == 0 || len > 512)
                return -EINVAL;
        n = BN_bin2bn(modulus, (int) len, NULL);
        e = BN_new();
        /* TPM2B_PUBLIC: exponent 0 stands for 2^16 + 1 (TPM 2.0 Part 2, TPMS_RSA_PARMS). */
        if (!bld || !n || !e || !BN_set_word(e, exponent ? exponent : 65537) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
            !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
                return ossl_error(-EIO);
        return key_from_params("RSA", bld, ret);
}

int ca_ecc_p256_public_key(const uint8_t *x, size_t xlen, const uint8_t *y, size_t ylen, EVP_PKEY **ret) {
        _cleanup_(OSSL_PARAM_BLD_freep) OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
        uint8_t point[1 + 2 * 32]; /* uncompressed P-256 point (SEC 1 2.3.3) */

        if (xlen > 32 || ylen > 32)
                return -EINVAL;
        memset(point, 0, sizeof(point));
        point[0] = 0x04;
        /* TPM2B_ECC_PARAMETER may drop leading zero bytes: right-align. */
        memcpy(point + 1 + 32 - xlen, x, xlen);
        memcpy(point + 1 + 64 - ylen, y, ylen);
        if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
                return ossl_error(-EIO);
        return key_from_params("EC", bld, ret);
}

static int name_add(X509_NAME *n, const char *oid, const char *value) {
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);

        if (!o || !X509_NAME_add_entry_by_OBJ(n, o, MBSTRING_UTF8, (const unsigned char *) value, -1, -1, 0))
                return ossl_error(-EIO);
        return 0;
}

/* subjectAltName, critical (the subject is empty), a directoryName with the
 * TPM's (or the platform's) manufacturer, model and version. */
static int add_san(X509 *x, CaCertKind kind, const CaTpmInfo *info) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        _cleanup_(X509_NAME_freep) X509_NAME *dn = X509_NAME_new();
        bool platform = kind == CA_CERT_PLATFORM;
        GENERAL_NAME *g;
        char manufacturer[16], version[16];
        int r;

        if (!gens || !dn)
                return -ENOMEM;
        /* "id:" and the 4-byte value in hex (EK Credential Profile 3.2.9). */
        snprintf(manufacturer, sizeof(manufacturer), "id:%08X", info->manufacturer);
        snprintf(version, sizeof(version), "id:%08X", info->version);
        if ((r = name_add(dn, platform ? OID_PLATFORM_MANUFACTURER : OID_TPM_MANUFACTURER, manufacturer)) < 0 ||
            (r = name_add(dn, platform ? OID_PLATFORM_MODEL : OID_TPM_MODEL, info->model)) < 0 ||
            (r = name_add(dn, platform ? OID_PLATFORM_VERSION : OID_TPM_VERSION, version)) < 0)
                return r;
        g = GENERAL_NAME_new();
        if (!g)
                return -ENOMEM;
        GENERAL_NAME_set0_value(g, GEN_DIRNAME, TAKE_PTR(dn));
        if (!sk_GENERAL_NAME_push(gens, g)) {
                GENERAL_NAME_free(g);
                return -ENOMEM;
        }
        if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 1, X509V3_ADD_DEFAULT) != 1)
                return ossl_error(-EIO);
        return 0;
}

/* DER of a small non-negative INTEGER (value < 2^24). */
static size_t der_uint(uint8_t *out, uint32_t v) {
        uint8_t b[5];
        size_t n = 0;

        do {
                b[n++] = (uint8_t) v;
                v >>= 8;
        } while (v);
        if (b[n - 1] & 0x80)
                b[n++] = 0; /* keep it positive */
        out[0] = 0x02;
        out[1] = (uint8_t) n;
        for (size_t i = 0; i < n; i++)
                out[2 + i] = b[n - 1 - i];
        return 2 + n;
}

/* subjectDirectoryAttributes (RFC 5280 4.2.1.8) holding TPMSpecification
 * (EK Credential Profile 3.2.11): SEQUENCE { family UTF8String "2.0",
 * level INTEGER, revision INTEGER } under OID 2.23.133.2.16. Every part is
 * far below 128 bytes, so each length is one byte. */
static int add_tpm_spec(X509 *x, const CaTpmInfo *info) {
        static const uint8_t oid_tpm_spec[] = { 0x06, 0x05, 0x67, 0x81, 0x05, 0x02, 0x10 };
        static const uint8_t family[] = { 0x0c, 0x03, '2', '.', '0' };
        _cleanup_(ASN1_OBJECT_freep) ASN1_OBJECT *o = OBJ_txt2obj(OID_SUBJECT_DIRECTORY_ATTRIBUTES, 1);
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        _cleanup_(X509_EXTENSION_freep) X509_EXTENSION *ext = NULL;
        uint8_t spec[32], der[64];
        size_t n = 0, k = 0;

        if (!o || !os)
                return -ENOMEM;
        /* TPMSpecification */
        spec[n++] = 0x30;
        spec[n++] = 0;
        memcpy(spec + n, family, sizeof(family));
        n += sizeof(family);
        n += der_uint(spec + n, info->spec_level & 0xffffffu);
        n += der_uint(spec + n, info->spec_revision & 0xffffffu);
        spec[1] = (uint8_t) (n - 2);
        /* SEQUENCE OF Attribute { OID, SET { spec } } */
        der[k++] = 0x30;
        der[k++] = (uint8_t) (2 + sizeof(oid_tpm_spec) + 2 + n);
        der[k++] = 0x30;
        der[k++] = (uint8_t) (sizeof(oid_tpm_spec) + 2 + n);
        memcpy(der + k, oid_tpm_spec, sizeof(oid_tpm_spec));
        k += sizeof(oid_tpm_spec);
        der[k++] = 0x31;
        der[k++] = (uint8_t) n;
        memcpy(der + k, spec, n);
        k += n;
        if (!ASN1_OCTET_STRING_set(os, der, (int) k))
                return ossl_error(-EIO);
        ext = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
        if (!ext || !X509_add_ext(x, ext, -1))
                return ossl_error(-EIO);
        return 0;
}

int ca_issue(Ca *ca, CaCertKind kind, EVP_PKEY *key, const CaTpmInfo *info, uint8_t **ret_der, size_t *ret_len) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        const char *usage = NULL, *eku = NULL;
        _cleanup_free_ uint8_t *der = NULL;
        X509V3_CTX ctx;
        uint8_t *p;
        int r, n;

        if (!x)
                return -ENOMEM;
        switch (kind) {
        case CA_CERT_EK_RSA:
                usage = "critical,keyEncipherment";
                eku = OID_EKU_EK_CERTIFICATE;
                break;
        case CA_CERT_EK_ECC:
                usage = "critical,keyAgreement";
                eku = OID_EKU_EK_CERTIFICATE;
                break;
        case CA_CERT_PLATFORM:
                eku = OID_EKU_PLATFORM_CERTIFICATE;
                break;
        }
        if (!X509_set_version(x, X509_VERSION_3) || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
            !ASN1_TIME_set_string_X509(X509_getm_notAfter(x), EK_NOT_AFTER) || !X509_set_pubkey(x, key))
                return ossl_error(-EIO);
        r = random_serial(x);
        if (r < 0)
                return r;
        X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
        if ((r = add_san(x, kind, info)) < 0 ||
            (r = add_ext_conf(x, &ctx, NID_basic_constraints, "critical,CA:FALSE")) < 0 ||
            (r = add_ext_conf(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0 ||
            (usage && (r = add_ext_conf(x, &ctx, NID_key_usage, usage)) < 0) ||
            (r = add_ext_conf(x, &ctx, NID_ext_key_usage, eku)) < 0)
                return r;
        if (kind != CA_CERT_PLATFORM && (r = add_tpm_spec(x, info)) < 0)
                return r;
        if (!X509_sign(x, ca->key, EVP_sha256()))
                return ossl_error(-EIO);
        /* Into plain malloc memory (ours is freed with free(), OPENSSL_malloc's may not be). */
        n = i2d_X509(x, NULL);
        if (n <= 0)
                return ossl_error(-EIO);
        der = malloc((size_t) n);
        if (!der)
                return -ENOMEM;
        p = der;
        if (i2d_X509(x, &p) != n)
                return ossl_error(-EIO);
        *ret_der = TAKE_PTR(der);
        *ret_len = (size_t) n;
        return 0;
}
