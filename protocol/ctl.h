/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The control socket's messages (vtpmd <-> vtpmd-ctl) and the export blob:
 * the pure part. No I/O; json-c is only a data structure here.
 *
 * Transport: a SOCK_SEQPACKET Unix socket; one packet is one message of at
 * most CTL_MAX_PACKET bytes, a JSON object (UTF-8, no NUL).
 *
 * Request (client -> daemon), one per exchange:
 *   {"op": "create", "tpm": "2.0", "uuid": "...", "ek": ["rsa2048", "ecc-p256"],
 *    "pcr_banks": ["sha256"], "ek_cert": true, "platform_cert": false}
 *   {"op": "list"} {"op": "status"} {"op": "ca-cert"}
 *   {"op": "show" | "reset" | "ek-cert" | "restart", "uuid": "..."}
 *   {"op": "pcrread", "uuid": "...", "bank": "sha256", "pcrs": [0, 1, 16]}   (bank, pcrs optional)
 *   {"op": "destroy", "uuid": "...", "force": false}
 *   {"op": "export", "uuid": "...", "key": "<64 hex>", "kdf": {...}}   + the output file's fd (SCM_RIGHTS)
 *   {"op": "backup", ...as export}  (an attached vTPM)                + the output file's fd (SCM_RIGHTS)
 *   {"op": "import", "key": "<64 hex>", "force": false}               + the input file's fd (SCM_RIGHTS)
 * Every member is checked: an unknown member, a member another op does not
 * take, a wrong type or value is -EBADMSG; "op" and the members an op needs
 * are required.
 *
 * Replies (daemon -> client): zero or more {"item": {...}} packets (list
 * rows), then exactly one final packet:
 *   {"ok": true, ...result members}  or  {"ok": false, "errno": N, "error": "one line"}
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

struct json_object;

#define CTL_MAX_PACKET 16384u /* our own bound: every request and reply packet fits */
#define CTL_UUID_LEN 37u
#define CTL_KEY_SIZE 32u
#define CTL_SALT_SIZE 16u
#define CTL_MAX_ERROR 512u /* error text in a reply */
#define CTL_HOST_LEN 65u   /* a pool host's fingerprint: 64 lower-case hex digits and NUL */
#define CTL_NAME_MAX 65u   /* a guest's name (xenstore /local/domain/<domid>/name) shown: 64 bytes and NUL */

typedef enum CtlOp {
        CTL_OP_CREATE,
        CTL_OP_LIST,
        CTL_OP_SHOW,
        CTL_OP_DESTROY,
        CTL_OP_EXPORT,
        CTL_OP_IMPORT,
        CTL_OP_RESET,
        CTL_OP_STATUS,
        CTL_OP_CA_CERT,
        CTL_OP_POOL_STATUS,
        CTL_OP_POOL_INIT,
        CTL_OP_POOL_JOIN,
        CTL_OP_POOL_ADMIT,
        CTL_OP_POOL_REMOVE,
        CTL_OP_POOL_LEAVE,
        CTL_OP_EK_CERT,
        CTL_OP_RESTART,
        CTL_OP_PCRREAD,
        CTL_OP_BACKUP,
        _CTL_OP_MAX,
} CtlOp;

/* Same values as daemon/manufacture.h's MANUFACTURE_EK_* and _BANK_*. */
enum {
        CTL_EK_RSA2048 = 1u << 0,
        CTL_EK_ECC_P256 = 1u << 1,
};
enum {
        CTL_BANK_SHA1 = 1u << 0,
        CTL_BANK_SHA256 = 1u << 1,
        CTL_BANK_SHA384 = 1u << 2,
        CTL_BANK_SHA512 = 1u << 3,
};

typedef enum CtlKdf {
        CTL_KDF_NONE = 0,          /* the key is given directly (--key-file) */
        CTL_KDF_PBKDF2_SHA256 = 1, /* the key is PBKDF2-HMAC-SHA256(passphrase, salt, iterations) */
} CtlKdf;

#define CTL_KDF_MIN_ITERATIONS 1000u
#define CTL_KDF_MAX_ITERATIONS 100000000u /* a hostile blob must not make us spin for hours */
#define CTL_KDF_DEFAULT_ITERATIONS 600000u /* OWASP 2023 for PBKDF2-HMAC-SHA256 */

typedef struct CtlKdfParams {
        CtlKdf alg;
        uint32_t iterations;          /* PBKDF2 */
        uint8_t salt[CTL_SALT_SIZE];  /* PBKDF2 */
} CtlKdfParams;

typedef struct CtlRequest {
        CtlOp op;
        bool has_uuid;
        char uuid[CTL_UUID_LEN]; /* canonical lowercase */
        bool has_family;
        TpmFamily family;
        unsigned eks;       /* CTL_EK_* */
        unsigned pcr_banks; /* CTL_BANK_* */
        bool ek_cert;
        bool platform_cert;
        bool force;
        bool has_key;
        uint8_t key[CTL_KEY_SIZE]; /* export/import: wipe after use */
        CtlKdfParams kdf;          /* export: how the key was derived (recorded in the blob) */
        bool has_host;
        char host[CTL_HOST_LEN];   /* pool admit/remove: the host's fingerprint */
        unsigned bank;             /* pcrread: one CTL_BANK_* bit; 0: sha256 */
        uint32_t pcrs;             /* pcrread: bit n is PCR n (0..CTL_PCR_COUNT-1); 0: all */
} CtlRequest;

#define CTL_PCR_COUNT 24u

const char *ctl_op_to_string(CtlOp op);
int ctl_op_from_string(const char *s, CtlOp *ret);
/* Whether the op carries a file descriptor (SCM_RIGHTS) with the request. */
bool ctl_op_takes_fd(CtlOp op);

/* Parses and validates one request packet. -EBADMSG for anything malformed. */
int ctl_request_parse(const uint8_t *buf, size_t len, CtlRequest *ret);
/* Encodes (NUL-terminated, malloc'd; *ret_len excludes the NUL). -EINVAL for an
 * inconsistent request, -E2BIG if over CTL_MAX_PACKET. */
int ctl_request_encode(const CtlRequest *r, char **ret, size_t *ret_len);
/* Wipes the key. */
void ctl_request_done(CtlRequest *r);

/* A pool host's fingerprint as vtpmd-ctl pool status prints it (64 lower-case hex digits). */
int ctl_parse_host(const char *s, char ret[CTL_HOST_LEN]);
/* tpm2_pcrread's selection of one bank: "sha256", "sha256:all" (every PCR) or
 * "sha256:0,1,16" -> one CTL_BANK_* bit and a PCR mask (bit n: PCR n). */
int ctl_parse_pcr_selection(const char *s, unsigned *ret_bank, uint32_t *ret_pcrs);
/* The name of one CTL_BANK_* bit ("sha256"), or NULL. */
const char *ctl_bank_to_string(unsigned bank);

/* Whether s is a guest name list and show give (and a UUID argument may be):
 * 1 .. CTL_NAME_MAX - 1 bytes of printable ASCII without space, not a UUID. A
 * name that is not (too long, control bytes, UTF-8) is shown as none. */
bool ctl_guest_name_valid(const char *s);
/* "rsa2048", "ecc-p256", "both", or a comma list of the first two -> CTL_EK_*. */
int ctl_parse_ek_list(const char *s, unsigned *ret);
/* "sha1,sha256,sha384,sha512" (any non-empty subset, no duplicates) -> CTL_BANK_*. */
int ctl_parse_bank_list(const char *s, unsigned *ret);

/* ---- replies ---- */
typedef enum CtlReplyKind {
        CTL_REPLY_ITEM,  /* {"item": {...}}: more follows */
        CTL_REPLY_OK,    /* final: the whole object is the result */
        CTL_REPLY_ERROR, /* final */
} CtlReplyKind;

typedef struct CtlReply {
        CtlReplyKind kind;
        struct json_object *obj; /* owned: ITEM: the item; OK: the reply; ERROR: NULL */
        int error;               /* ERROR: negative errno (-1 .. -4095) */
        char message[CTL_MAX_ERROR]; /* ERROR: one line, printable */
} CtlReply;

/* -EBADMSG if not a well-formed reply packet. */
int ctl_reply_parse(const uint8_t *buf, size_t len, CtlReply *ret);
void ctl_reply_done(CtlReply *r);
/* Encoders used by the daemon; malloc'd, NUL-terminated. -E2BIG over CTL_MAX_PACKET. */
int ctl_reply_encode_ok(struct json_object *result, char **ret, size_t *ret_len);   /* result may be NULL */
int ctl_reply_encode_item(struct json_object *item, char **ret, size_t *ret_len);
int ctl_reply_encode_error(int error, const char *message, char **ret, size_t *ret_len);

/* ---- the export blob ----
 *
 *   off  size  field
 *     0     8  magic "VTPMD\0EX"
 *     8     2  format version (CTL_EXPORT_VERSION), big-endian
 *    10     2  kdf (CtlKdf), big-endian
 *    12     4  kdf iterations, big-endian (0 with CTL_KDF_NONE)
 *    16    16  kdf salt (zero with CTL_KDF_NONE)
 *    32    16  vTPM UUID, binary
 *    48    16  key check: the AES-256-GCM tag of an empty message under the
 *              export key (nonce CTL_EXPORT_CHECK_NONCE, AAD bytes 0..47), so
 *              a wrong passphrase is told apart from a corrupt blob
 *    64    12  nonce of the payload, random
 *    76     4  payload length, big-endian (<= CTL_EXPORT_MAX_PAYLOAD)
 *    80   len  ciphertext of the payload
 * 80+len   16  GCM tag; the AAD is the whole header (bytes 0..79)
 *
 * Payload, version 2: meta (STATE_META_SIZE bytes, statefile.h) || u32
 * permall length || permall (libtpms' permanent state in the clear; length 0:
 * never started) || for each record of CtlExportRecord in order: u32 length ||
 * its bytes (length 0: the vTPM has no such record). Version 1 (vtpmd before
 * the records) ends after permall; it is still imported.
 */
#define CTL_EXPORT_MAGIC "VTPMD\0EX"
#define CTL_EXPORT_VERSION 2u
#define CTL_EXPORT_VERSION_MIN 1u
#define CTL_EXPORT_HEADER_SIZE 80u
#define CTL_EXPORT_CHECK_AAD_SIZE 48u
#define CTL_EXPORT_CHECK_OFFSET 48u
#define CTL_EXPORT_TAG_SIZE 16u
#define CTL_EXPORT_NONCE_SIZE 12u
#define CTL_EXPORT_META_SIZE 16u /* == STATE_META_SIZE */
#define CTL_EXPORT_MAX_PERMALL (1024u * 1024u) /* == STATEFILE_MAX_PAYLOAD */

/* The public files of a vTPM written at manufacturing (lib/statestore.h
 * STATEDIR_EK_*): without them an imported vTPM would show no EKs and a
 * reset would not re-create its persistent EKs. */
typedef enum CtlExportRecord {
        CTL_EXPORT_REC_EK_HASHES,       /* ek-sha256 */
        CTL_EXPORT_REC_EK_CERT_RSA2048, /* ek-rsa2048.pem */
        CTL_EXPORT_REC_EK_CERT_ECC_P256, /* ek-ecc-p256.pem */
        _CTL_EXPORT_REC_MAX,
} CtlExportRecord;
#define CTL_EXPORT_MAX_RECORD (64u * 1024u) /* a PEM certificate is a few KiB */

#define CTL_EXPORT_MAX_PAYLOAD \
        (CTL_EXPORT_META_SIZE + 4u + CTL_EXPORT_MAX_PERMALL + _CTL_EXPORT_REC_MAX * (4u + CTL_EXPORT_MAX_RECORD))
#define CTL_EXPORT_MAX_SIZE (CTL_EXPORT_HEADER_SIZE + CTL_EXPORT_MAX_PAYLOAD + CTL_EXPORT_TAG_SIZE)
extern const uint8_t CTL_EXPORT_CHECK_NONCE[CTL_EXPORT_NONCE_SIZE];

typedef struct CtlExportHeader {
        uint16_t version; /* parse: the blob's; encode: 0 writes CTL_EXPORT_VERSION */
        CtlKdfParams kdf;
        uint8_t uuid[16];
        uint8_t key_check[16];
        uint8_t nonce[CTL_EXPORT_NONCE_SIZE];
        uint32_t length;
} CtlExportHeader;

void ctl_export_header_encode(const CtlExportHeader *h, uint8_t out[CTL_EXPORT_HEADER_SIZE]);
/* Parses the header of a blob of total size len (header alone when len ==
 * CTL_EXPORT_HEADER_SIZE and only_header). -EBADMSG: bad magic, size
 * mismatch, bad kdf parameters; -EPROTONOSUPPORT: an unknown version. */
int ctl_export_header_parse(const uint8_t *buf, size_t len, bool only_header, CtlExportHeader *ret);

/* A payload's parts; parse points them into its buffer. */
typedef struct CtlExportPayload {
        const uint8_t *meta; /* CTL_EXPORT_META_SIZE bytes */
        const uint8_t *permall;
        size_t permall_len;
        const uint8_t *rec[_CTL_EXPORT_REC_MAX];
        size_t rec_len[_CTL_EXPORT_REC_MAX]; /* 0: absent (always, in a version 1 payload) */
} CtlExportPayload;

/* Encodes a version 2 payload into a malloc'd buffer; -E2BIG if a part is over its bound. */
int ctl_export_payload_encode(const CtlExportPayload *p, uint8_t **ret, size_t *ret_len);
/* Parses a payload of the header's version. */
int ctl_export_payload_parse(const uint8_t *buf, size_t len, uint16_t version, CtlExportPayload *ret);
