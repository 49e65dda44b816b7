/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacturing a new vTPM, as swtpm_setup does for QEMU/libvirt guests
 * (research libtpms-swtpm.md §2.8): EK(s) created in the endorsement
 * hierarchy with the TCG default templates and made persistent at the TCG
 * handles (RSA-2048 0x81010001, ECC P-256 0x81010002), EK certificates issued
 * by vtpmd's local CA (lib/ca.h) written to the TCG NV indices (RSA-2048
 * 0x01c00002, ECC P-256 0x01c0000a) and write-locked, PCR banks allocated,
 * optionally a platform certificate (0x01c08000), then TPM2_Shutdown so the
 * result is durable.
 *
 * It runs asynchronously: a vtpmd-worker is started in offline mode on the
 * vTPM's state directory (no guest), and the supervisor drives it with TPM
 * commands over the worker's IPC socket (lib/tss-client.h, ESAPI over a
 * transport that forwards to the worker), so the supervisor never links
 * libtpms and never blocks. This module is the policy: what is made, when,
 * in which process, and what is logged.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tpm.h"
#include "tss-client.h"

typedef struct VtpmState VtpmState;
typedef struct sd_event sd_event;

/* What manufacturing needs of the supervisor; borrowed, must outlive every
 * manufacturing it starts. */
typedef struct ManufactureContext {
        sd_event *event;
        VtpmState *state;
        const char *worker_path;
        const char *platform;      /* handed to the offline worker ("xen" or "sim:DIR") */
        bool trace;
        uint32_t worker_uid;       /* the offline worker's ids (WorkerIDs=); 0: vtpmd's */
        uint32_t worker_gid;
        uint64_t worker_memory_max;
        const char *ca_cert_file;  /* the admin's CA (EkCaCertificate=, EkCaKey=); NULL: the local CA */
        const char *ca_key_file;
} ManufactureContext;

enum {
        MANUFACTURE_EK_RSA2048 = 1u << 0,
        MANUFACTURE_EK_ECC_P256 = 1u << 1,
};

enum {
        MANUFACTURE_BANK_SHA1 = TSS_PCR_BANK_SHA1,
        MANUFACTURE_BANK_SHA256 = TSS_PCR_BANK_SHA256,
        MANUFACTURE_BANK_SHA384 = TSS_PCR_BANK_SHA384,
        MANUFACTURE_BANK_SHA512 = TSS_PCR_BANK_SHA512,
};

typedef struct ManufactureOptions {
        TpmFamily family;    /* TPM 1.2 vTPMs get no EK/certs (only TPM 2.0 is manufactured) */
        unsigned eks;        /* MANUFACTURE_EK_* (0: none) */
        unsigned pcr_banks;  /* MANUFACTURE_BANK_* (0: leave libtpms' default) */
        bool ek_certs;       /* issue and write EK certificates */
        bool platform_cert;  /* issue and write a platform certificate */
} ManufactureOptions;

typedef struct ManufactureResult {
        /* SHA-256 of the EK public keys (TPM2B_PUBLIC marshalled), hex; empty when not created */
        char ek_rsa_sha256[65];
        char ek_ecc_sha256[65];
} ManufactureResult;

typedef void (*ManufactureDone)(void *userdata, int error, const ManufactureResult *result);

/* Starts manufacturing the (already created, not attached) vTPM `uuid`; calls
 * done exactly once, from the event loop, with 0 or a negative errno (the
 * reason is logged). Returns < 0 if it could not even start (done not called). */
int manufacture_vtpm(const ManufactureContext *ctx, const char *uuid, const ManufactureOptions *o, ManufactureDone done,
                     void *userdata);

/* `vtpmd-ctl reset`: a TPM clear of the (detached, TPM 2.0) vTPM `uuid`
 * that keeps its identity. In an offline worker, as in manufacture_vtpm:
 * TPM2_ClearControl(platform, NO) and TPM2_Clear(platform) -- the owner
 * hierarchy is gone (new storage seed, owner NV indices, owner and
 * endorsement persistent objects, owner/endorsement/lockout authorizations),
 * while the endorsement seed, the platform-created NV indices (the EK and
 * platform certificates) and the PCR allocation stay -- then each EK it was
 * manufactured with (manufacture_info) is re-created from the TCG template,
 * checked against its recorded hash (before the clear too, when the
 * endorsement hierarchy allows it; a mismatch before the clear changes
 * nothing) and made persistent again at its TCG handle; then STOP{RESET}.
 * done gets 0 and the EK hashes (empty if it had none), or a negative errno
 * (the reason is logged). Returns < 0 if it could not start (done not
 * called): -EOPNOTSUPP for a TPM 1.2 vTPM, -EBUSY if it is in use. */
int manufacture_clear(const ManufactureContext *ctx, const char *uuid, ManufactureDone done, void *userdata);

/* `vtpmd-ctl pcrread` of a detached TPM 2.0 vTPM: a read-only offline worker (IPC_START_PEEK) loads
 * its state with the checks of a start and runs it in memory, and the helper reads the PCRs of `alg`
 * in `select` (bit n: PCR n). With `resume` (the vTPM is suspended) the TPM resumes from its saved
 * volatile state, which stays on disk for the guest's restore: the values are the ones the guest
 * resumes with. Without, it gets TPM2_Startup(CLEAR): the values of its next start, a TPM reset.
 * Nothing on disk changes, no seq is recorded. done gets 0 with the PCRs read (ret_select, their
 * digests), -ENOENT if the bank is not allocated, -EBUSY if a worker took the vTPM meanwhile, or
 * another negative errno (logged). Returns < 0 if it could not start (done not called): -EBUSY if
 * the vTPM is in use. */
typedef void (*ManufacturePcrsDone)(void *userdata, int error, uint32_t select,
                                    const uint8_t digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST]);
int manufacture_peek_pcrs(const ManufactureContext *ctx, const char *uuid, bool resume, uint16_t alg, uint32_t select,
                          ManufacturePcrsDone done, void *userdata);

/* For `show`: the EK hashes recorded when the vTPM was manufactured (an
 * empty string for an EK it does not have). Its EK certificates, if any,
 * are the public files <state root>/<uuid>/ek-rsa2048.pem and
 * ek-ecc-p256.pem (STATEDIR_EK_CERT_* in lib/statestore.h). -ENOENT if it
 * was made without EKs, -EINVAL for a malformed UUID, -EBADMSG if the
 * record is corrupt. Reads one small file; does not block on the vTPM. */
int manufacture_info(const ManufactureContext *ctx, const char *uuid, ManufactureResult *ret);

/* For `ca-cert`: the local CA's certificate, PEM, malloc'd; the CA is created
 * at first use. A failure is logged (once). */
int manufacture_ca_cert(const ManufactureContext *ctx, char **ret_pem);
/* At start: the admin's CA files can be used (logged if not); 0 without them. */
int manufacture_check_ca(const ManufactureContext *ctx);
