/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * On-disk blobs of vTPM state: the pure part (layout, encode, parse). No I/O,
 * no crypto: lib/statestore.c encrypts and writes; this file decides what a
 * well-formed blob is, and is fuzzed.
 *
 * Every blob is   header (56 bytes) || ciphertext (len bytes) || tag (16 bytes)
 *
 *   off  size  field
 *     0     8  magic "VTPMD\0ST"
 *     8     2  format version, big-endian (STATEFILE_VERSION)
 *    10     2  kind (StateKind), big-endian
 *    12     4  flags, must be 0
 *    16     8  sequence number, big-endian; per vTPM, only grows
 *    24    16  vTPM UUID, binary (all zero for root-level blobs: the manifest, the master key)
 *    40    12  AES-256-GCM nonce, fresh for every write
 *    52     4  plaintext length, big-endian (<= STATEFILE_MAX_PAYLOAD)
 *    56   len  ciphertext
 * 56+len   16  GCM tag
 *
 * The associated data of the AEAD is the whole header (bytes 0..55), so the
 * UUID, the kind, the version and the sequence number are authenticated: a
 * file cannot be moved to another vTPM, passed off as another kind, or
 * relabelled with a newer sequence number.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

#define STATEFILE_MAGIC "VTPMD\0ST"
#define STATEFILE_MAGIC_SIZE 8u
#define STATEFILE_VERSION 1u
#define STATEFILE_HEADER_SIZE 56u
#define STATEFILE_NONCE_SIZE 12u
#define STATEFILE_TAG_SIZE 16u
#define STATEFILE_OVERHEAD (STATEFILE_HEADER_SIZE + STATEFILE_TAG_SIZE)
#define STATEFILE_MAX_PAYLOAD (1024u * 1024u) /* libtpms permall is a few KiB; NV_MEMORY_SIZE ~170 KiB */
#define STATEFILE_UUID_SIZE 16u

typedef enum StateKind {
        STATE_KIND_PERMANENT = 1, /* libtpms "permall" */
        STATE_KIND_VOLATILE = 2,  /* TPMLIB_VolatileAll_Store, saved on daemon stop */
        STATE_KIND_DATA_KEY = 3,  /* the vTPM's data key, encrypted with the master key */
        STATE_KIND_META = 4,      /* StateMeta, encrypted with the data key */
        STATE_KIND_MANIFEST = 5,  /* StateManifest, encrypted with the master key (root level) */
        STATE_KIND_CA_KEY = 6,    /* the local CA's private key (DER), encrypted with the master key (root level) */
        STATE_KIND_HANDOVER_REQUEST = 7, /* StateHandover: a pool host asks for a vTPM (pool key, POOL/handovers) */
        STATE_KIND_HANDOVER_GRANT = 8,   /* StateHandover: the holder let go of it, suspended (pool key) */
} StateKind;

typedef struct StateHeader {
        uint16_t version;
        StateKind kind;
        uint32_t flags;
        uint64_t seq;
        uint8_t uuid[STATEFILE_UUID_SIZE];
        uint8_t nonce[STATEFILE_NONCE_SIZE];
        uint32_t length; /* plaintext = ciphertext length */
} StateHeader;

/* Writes the 56 header bytes. */
void statefile_header_encode(const StateHeader *h, uint8_t out[STATEFILE_HEADER_SIZE]);

/* Parses a whole blob (header, ciphertext, tag; nothing more, nothing less).
 * -EBADMSG: too short, bad magic, nonzero flags, length not matching the size,
 *           length over STATEFILE_MAX_PAYLOAD;
 * -EPROTONOSUPPORT: another format version;
 * -EMEDIUMTYPE: unknown kind.
 * On success *ret is the header; ciphertext is at buf+56, the tag at buf+56+length. */
int statefile_parse(const uint8_t *buf, size_t len, StateHeader *ret);

/* UUID text <-> 16 bytes. -EINVAL for a malformed UUID. */
int statefile_uuid_from_string(const char *s, uint8_t ret[STATEFILE_UUID_SIZE]);
void statefile_uuid_to_string(const uint8_t uuid[STATEFILE_UUID_SIZE], char ret[static 37]);

const char *state_kind_to_string(StateKind k); /* "permanent", "volatile", "data key", "metadata", "manifest" */
const char *state_kind_filename(StateKind k);  /* "permall", "volatile", "key", "meta", "manifest" */

/* ---- metadata of one vTPM (the plaintext of a META blob) ---- */
typedef struct StateMeta {
        TpmFamily family;
        uint64_t created_usec; /* CLOCK_REALTIME at creation */
} StateMeta;

#define STATE_META_SIZE 16u
void state_meta_encode(const StateMeta *m, uint8_t out[STATE_META_SIZE]);
int state_meta_parse(const uint8_t *buf, size_t len, StateMeta *ret); /* -EBADMSG */

/* ---- the rollback manifest (the plaintext of the MANIFEST blob) ----
 * u64 counter (the host-TPM NV counter value this manifest is committed to),
 * u32 n, then n entries of { uuid[16], u64 perm_seq, u64 vol_seq }, big-endian,
 * sorted by uuid, no duplicates. vol_seq is 0 when no volatile state is saved.
 *
 * Only when some vTPM is suspended (its guest's domain was saved or migrated
 * away: xl save, xendomains, xl migrate) does a trailer follow: u32 magic
 * "SUSP", u32 m >= 1, then m records of { uuid[16], u64 suspended_usec,
 * u32 domid, u32 devid, domain handle[16] } in uuid order, each of an entry
 * with vol_seq != 0 (a record without saved volatile state, a suspend whose
 * save has not been reported yet or failed, is not written). Without a
 * suspended vTPM the manifest is byte for byte the format of earlier versions, which refuse the trailer (a downgrade with
 * a suspended vTPM fails loudly instead of resetting that guest's TPM). */
typedef struct StateSuspend {
        uint64_t usec;     /* CLOCK_REALTIME of the suspend; 0: not suspended */
        uint32_t domid;    /* the domain and device it was saved from */
        uint32_t devid;
        uint8_t handle[STATEFILE_UUID_SIZE]; /* that domain's handle (UUID): only its restore resumes it */
} StateSuspend;

typedef struct StateManifestEntry {
        uint8_t uuid[STATEFILE_UUID_SIZE];
        uint64_t perm_seq; /* newest permanent-state sequence number recorded */
        uint64_t vol_seq;  /* sequence number of the saved volatile state, 0 if none */
        StateSuspend suspend;
} StateManifestEntry;

typedef struct StateManifest {
        uint64_t counter;
        uint32_t n;
        StateManifestEntry *entries; /* malloc'd, sorted by uuid */
} StateManifest;

#define STATE_MANIFEST_MAX_ENTRIES 65536u

/* Encodes into a malloc'd buffer. -EINVAL if entries are not sorted/unique. */
int state_manifest_encode(const StateManifest *m, uint8_t **ret, size_t *ret_len);
/* -EBADMSG for any malformation (size, order, duplicates, count over the max, a
 * suspend record without an entry or without saved volatile state). */
int state_manifest_parse(const uint8_t *buf, size_t len, StateManifest *ret);
void state_manifest_done(StateManifest *m); /* frees entries; accepts a zeroed struct */
/* Finds an entry (binary search); NULL if absent. */
StateManifestEntry *state_manifest_find(const StateManifest *m, const uint8_t uuid[STATEFILE_UUID_SIZE]);
/* Inserts or updates keeping the order. -ENOMEM, -E2BIG. */
int state_manifest_set(StateManifest *m, const StateManifestEntry *e);
int state_manifest_remove(StateManifest *m, const uint8_t uuid[STATEFILE_UUID_SIZE]);

/* ---- a live migration between pool hosts (docs/pool.md) ----
 * The plaintext of HANDOVER_REQUEST and HANDOVER_GRANT blobs, 88 bytes, big-endian:
 *   host[32]       the writer's fingerprint (SHA-256 of its TPM transfer point)
 *   u64 usec       request: when it was asked; grant: when the domain was suspended
 *   u32 domid, u32 devid   the device asking (request) or saved from (grant)
 *   handle[16]     the domain's handle: only a domain with it may resume the vTPM
 *   u64 vol_seq    grant: the saved volatile state's sequence number (0: none saved); request: 0
 *   u64 perm_seq   grant: the newest permanent state the holder recorded; request: 0
 *   u64 reserved   0 */
#define STATE_HANDOVER_HOST_SIZE 32u
#define STATE_HANDOVER_SIZE 88u

typedef struct StateHandover {
        uint8_t host[STATE_HANDOVER_HOST_SIZE];
        StateSuspend su;
        uint64_t vol_seq;
        uint64_t perm_seq;
} StateHandover;

void state_handover_encode(const StateHandover *h, uint8_t out[STATE_HANDOVER_SIZE]);
int state_handover_parse(const uint8_t *buf, size_t len, StateHandover *ret); /* -EBADMSG */
