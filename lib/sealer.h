/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host TPM 2.0 through tpm2-tss ESAPI (research tss-sealing.md §2-3): seals
 * and unseals the daemon's master key, keeps the rollback counter, and holds
 * the transfer key that a pool key is wrapped to (pool-key.h). It and
 * tss-client.c (a vTPM's) are the only files that include tpm2-tss headers;
 * TSS2_RC becomes errno in tss2-rc.c.
 *
 *  - SRK: the TCG Provisioning Guidance ECC P-256 template re-created with
 *    CreatePrimary (deterministic; RSA-2048 if the TPM refuses ECC), or a
 *    persistent handle given in the configuration (0x81000001).
 *  - Every command that carries the key runs in a session salted to the SRK,
 *    with parameter encryption, so the key never crosses the bus in the clear.
 *    The key itself comes from getrandom(2), never from TPM2_GetRandom.
 *  - Optional PolicyPCR over a configured PCR list (sha256 bank).
 *  - The sealed blob records the SRK's name; unsealing under another SRK
 *    (another TPM, a cleared TPM) is refused before touching the TPM.
 *  - Rollback counter: one owner-range NV index of type counter, not orderly.
 *  - Transfer key: a second deterministic primary in the owner hierarchy, an
 *    unrestricted ECC P-256 decrypt key (the SRK is restricted, which
 *    TPM2_ECDH_ZGen refuses), re-created with CreatePrimary at each use like
 *    the SRK. Its public point is what a pool member wraps the pool key to;
 *    ECDH_ZGen runs in a session salted to it with response encryption, so the
 *    shared secret Z never crosses the bus in the clear.
 *
 * Errors (negative errno, the caller logs once with the detail from
 * host_tpm_last_error()):
 *   -ENODEV         the TCTI cannot reach a TPM
 *   -ENOPKG         (open) no TCTI library of that name: a typo ("unknown TCTI")
 *   -EKEYREJECTED   the blob does not belong to this TPM (other TPM, cleared owner hierarchy)
 *   -EPERM          the PCR policy is not satisfied (PCRs changed)
 *   -EBADMSG        the sealed blob is malformed
 *   -EAGAIN         the TPM asked to retry later (TPM_RC_NV_RATE, RETRY)
 *   -EACCES         the TPM refused an authorization (TPM_RC_BAD_AUTH: see below)
 *   -EIO            any other TPM failure
 * and, beyond that list:
 *   -ENOENT         the configured persistent SRK handle holds no object; for the
 *                   counter: the index is not defined or never incremented
 *   -EEXIST         the NV index exists but is not exactly our counter (another
 *                   type, orderly, other attributes/size/policy): never trusted
 *   -EINVAL         a bad configuration (PCR > 23, NV index outside the owner
 *                   range, SRK handle not persistent, empty TCTI string)
 *
 * Owner authorization is the empty password. A host whose owner hierarchy has
 * a password is not supported yet (CreatePrimary and NV_DefineSpace then fail
 * with -EACCES, TPM_RC_BAD_AUTH in last_error); reading and incrementing the counter
 * use the index's own empty authValue and need no owner authorization.
 *
 * host_tpm_open() sets TSS2_LOG=all+none unless the environment already sets
 * TSS2_LOG, so the TSS never writes to stderr on its own. One HostTpm is used
 * by one thread at a time (ESAPI contexts are not thread-safe).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define HOST_TPM_DEFAULT_TCTI "device:/dev/tpmrm0"
#define HOST_TPM_DEFAULT_NV_INDEX 0x01800156u /* owner range 0x01800000-0x01BFFFFF */
#define HOST_TPM_MAX_PCRS 24u
#define HOST_TPM_COORD_SIZE 32u  /* a NIST P-256 coordinate */
#define HOST_TPM_POINT_SIZE 65u  /* SEC 1 uncompressed point: 0x04 || X || Y */

typedef struct HostTpmConfig {
        const char *tcti;          /* NULL: HOST_TPM_DEFAULT_TCTI */
        uint32_t srk_handle;       /* 0: create the deterministic primary */
        uint32_t pcrs[HOST_TPM_MAX_PCRS];
        size_t n_pcrs;             /* 0: no PCR policy */
        uint32_t nv_index;         /* 0: HOST_TPM_DEFAULT_NV_INDEX */
} HostTpmConfig;

typedef struct HostTpm HostTpm;

int host_tpm_open(const HostTpmConfig *c, HostTpm **ret);
HostTpm *host_tpm_close(HostTpm *t);

/* Seals a 32-byte key: *ret is a self-describing blob (magic, version, SRK name,
 * PCR list, TPM2B_PUBLIC, TPM2B_PRIVATE). */
int host_tpm_seal(HostTpm *t, const uint8_t key[32], uint8_t **ret, size_t *ret_len);
int host_tpm_unseal(HostTpm *t, const uint8_t *blob, size_t len, uint8_t ret_key[32]);

/* The rollback counter. read: -ENOENT if the index is not defined (or never
 * incremented). ensure: defines it if missing and increments it once so it
 * can be read; returns its value. increment: returns the new value. */
int host_tpm_counter_read(HostTpm *t, uint64_t *ret);
int host_tpm_counter_ensure(HostTpm *t, uint64_t *ret);
int host_tpm_counter_increment(HostTpm *t, uint64_t *ret);

/* The transfer key's public point, the same on every call until the owner
 * hierarchy is cleared (the same TPM across opens, restarts and reboots). */
int host_tpm_transfer_public(HostTpm *t, uint8_t ret_point[HOST_TPM_POINT_SIZE]);
/* Z, the x-coordinate of the transfer key's private scalar times peer_point
 * (TPM2_ECDH_ZGen). own_point is the point the caller expects this TPM's
 * transfer key to have (the one that was wrapped to): if the re-created key
 * differs, -EKEYREJECTED before anything is salted to it. -EBADMSG if the TPM
 * refuses peer_point (not on the curve). */
int host_tpm_transfer_zgen(HostTpm *t, const uint8_t own_point[HOST_TPM_POINT_SIZE],
                           const uint8_t peer_point[HOST_TPM_POINT_SIZE], uint8_t ret_z[HOST_TPM_COORD_SIZE]);

/* How many TPM commands this handle has sent (for the boot-storm figure),
 * counted at the TCTI, so commands ESAPI sends on its own are included.
 * With the created ECC SRK: open 1 (Startup), seal 5 (9 with PCRs), unseal 7
 * (8 with PCRs; 6 with a persistent SRK), counter read 2, increment 3,
 * ensure 2-4, transfer_public 2, transfer_zgen 5 (2 when refused by own_point). */
unsigned host_tpm_commands(const HostTpm *t);
/* A human-readable description of the last failure ("Esys_Load: TPM_RC_INTEGRITY ...").
 * With t == NULL: why the calling thread's last host_tpm_open() failed. */
const char *host_tpm_last_error(const HostTpm *t);
