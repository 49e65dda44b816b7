/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacturing (manufacture.h). The supervisor must never block, and an
 * RSA-2048 EK alone takes libtpms hundreds of milliseconds, so the whole
 * dialogue runs in a short-lived helper process forked from the supervisor:
 *
 *   vtpmd ──fork──> helper ──spawn_worker──> vtpmd-worker (OFFLINE, DURABLE)
 *     ▲                │  ESAPI over a TCTI that sends IPC_COMMAND and
 *     │ report (pipe)  │  waits for IPC_RESPONSE on the worker's socket
 *     └────────────────┘
 *
 * The helper only computes, talks to its own worker and writes the public
 * certificate files of this one vTPM; it never touches the supervisor's
 * event loop, xenstore or control socket (it inherited their fds and leaves
 * them alone) and ends with _exit(). The worker's IPC_STATE reports (the
 * permall sequence numbers, which the rollback manifest must record) come
 * back in the report; the supervisor applies them when the helper has
 * exited, then calls done() from the loop.
 *
 * The helper is forked from a process that may have threads (libxenstore's
 * reader): it uses malloc, OpenSSL and tpm2-tss, which glibc's fork handlers
 * keep usable, and no lock of the supervisor's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-event.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "ipc-socket.h"
#include "log.h"
#include "manufacture.h"
#include "parse.h"
#include "spawn.h"
#include "state.h"
#include "util.h"

/* After protocol/tpm.h: tpm2-tss defines some of the same TPM constants, and
 * a redefinition inside a system header is not a warning. */
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti.h>

/* TCG EK Credential Profile for TPM Family 2.0, 2.2.1.4 (low range) and
 * TCG PC Client Platform TPM Profile (persistent EK handles). */
#define EK_RSA_HANDLE 0x81010001u
#define EK_ECC_HANDLE 0x81010002u
#define NV_EK_CERT_RSA 0x01c00002u
#define NV_EK_CERT_ECC 0x01c0000au
#define NV_PLATFORM_CERT 0x01c08000u

/* The two kinds of EK, indexed by `ecc` (0: RSA 2048, 1: ECC NIST P-256). */
typedef struct EkKind {
        const char *name;      /* for messages */
        TPM2_HANDLE handle;    /* its persistent handle */
        TPM2_HANDLE nv_cert;   /* the NV index of its certificate */
        CaCertKind cert_kind;
        const char *cert_what; /* for messages */
        const char *cert_file; /* its certificate, PEM, in the state directory */
} EkKind;

static const EkKind ek_kinds[2] = {
        {
                .name = "RSA 2048 EK",
                .handle = EK_RSA_HANDLE,
                .nv_cert = NV_EK_CERT_RSA,
                .cert_kind = CA_CERT_EK_RSA,
                .cert_what = "RSA EK certificate",
                .cert_file = STATEDIR_EK_CERT_RSA2048,
        },
        {
                .name = "ECC P-256 EK",
                .handle = EK_ECC_HANDLE,
                .nv_cert = NV_EK_CERT_ECC,
                .cert_kind = CA_CERT_EK_ECC,
                .cert_what = "ECC EK certificate",
                .cert_file = STATEDIR_EK_CERT_ECC_P256,
        },
};

/* Where the hash of that kind of EK goes in a result. */
static char *result_ek_sha256(ManufactureResult *res, bool ecc) {
        return ecc ? res->ek_ecc_sha256 : res->ek_rsa_sha256;
}

/* As swtpm_setup writes them (swtpm.c, write_ek_cert_nvram): written once
 * under platform authorization, then readable by anyone who can read the
 * owner or the index itself, never rewritten after NV_WriteLock. */
#define NV_CERT_ATTRIBUTES                                                                                    \
        (TPMA_NV_PLATFORMCREATE | TPMA_NV_AUTHREAD | TPMA_NV_OWNERREAD | TPMA_NV_PPREAD | TPMA_NV_PPWRITE |   \
         TPMA_NV_NO_DA | TPMA_NV_WRITEDEFINE)

/* The journal gets the UUID as a field; the text names it too, as no guest is involved. */
#define mf_log(level, uuid, fmt, ...) \
        log_dev(level, UINT32_MAX, UINT32_MAX, uuid, "vTPM %s: " fmt, uuid, ##__VA_ARGS__)

/* A TPM command of the helper that takes longer than this means the worker is stuck. */
#define COMMAND_TIMEOUT_MS 60000

/* The report is smaller than PIPE_BUF, so one write() is atomic and never blocks. */
typedef struct Report {
        int32_t error;
        uint32_t have_perm_seq;
        uint64_t perm_seq;
        ManufactureResult result;
} Report;
_Static_assert(sizeof(Report) <= 4096, "the report fits PIPE_BUF");

typedef struct Manufacture {
        const ManufactureContext *ctx;
        bool clear;
        char uuid[IPC_UUID_LEN];
        ManufactureDone done;
        void *userdata;
        pid_t pid;
        int pipe_fd;
        sd_event_source *child_source;
        sd_event_source *defer_source; /* nothing to do: done() on the next loop iteration */
} Manufacture;

/* ---------------------------------------------------------------------- */
/* The helper process                                                     */
/* ---------------------------------------------------------------------- */

/* A TCTI whose TPM is an offline worker. */
typedef struct WorkerTcti {
        TSS2_TCTI_CONTEXT_COMMON_V2 common;
        int fd;
        bool sent;     /* a command is outstanding */
        bool have;     /* its response has arrived and is in resp */
        IpcTpm resp;
        Report *report; /* IPC_STATE reports go here */
} WorkerTcti;

typedef struct Helper {
        const char *uuid;
        const char *worker_path;
        const char *platform;
        bool trace;
        uint32_t uid, gid; /* the offline worker's ids; 0: vtpmd's */
        uint64_t memory_max;
        int dir_fd;
        uint8_t data_key[CRYPTO_KEY_SIZE];
        uint64_t min_perm_seq;
        ManufactureOptions o;
        Ca *ca;
        /* manufacture_clear: TPM2_Clear, then the EKs of `want` re-created and checked against it */
        bool clear;
        ManufactureResult want;

        pid_t worker_pid;
        int worker_fd;
        WorkerTcti tcti;
        ESYS_CONTEXT *esys;
        Report report;
        CaTpmInfo info;
        uint16_t nv_buffer_max;
        /* The certificates issued, for the public files (DER). */
        uint8_t *cert_der[2];
        size_t cert_len[2];
} Helper;

_printf_(2, 3) static int helper_fail(Helper *h, const char *fmt, ...);

static void record_state(Report *report, const IpcState *s) {
        if (s->error != 0 || s->kind != IPC_STATE_KIND_PERMANENT)
                return;
        if (!report->have_perm_seq || s->seq > report->perm_seq)
                report->perm_seq = s->seq;
        report->have_perm_seq = 1;
}

/* Waits for the next message of the worker, recording its STATE reports.
 * Returns 1 and the message, 0 on EOF, -ETIMEDOUT, or a negative errno. */
static int worker_next(int fd, Report *report, int timeout_ms, IpcMsg *ret) {
        struct timespec start;

        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct timespec now;
                clock_gettime(CLOCK_MONOTONIC, &now);
                long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (elapsed >= timeout_ms)
                        return -ETIMEDOUT;

                struct pollfd p = { .fd = fd, .events = POLLIN };
                int k = poll(&p, 1, (int) (timeout_ms - elapsed));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        continue;

                int r = ipc_socket_recv(fd, ret, NULL);
                if (r <= 0)
                        return r;
                if (ret->type == IPC_STATE) {
                        record_state(report, &ret->state);
                        continue;
                }
                return 1;
        }
}

static WorkerTcti *worker_tcti(TSS2_TCTI_CONTEXT *c) {
        return (WorkerTcti *) c;
}

static TSS2_RC worker_tcti_transmit(TSS2_TCTI_CONTEXT *c, size_t size, const uint8_t *command) {
        WorkerTcti *t = worker_tcti(c);
        IpcMsg m = { .type = IPC_COMMAND };

        if (t->sent)
                return TSS2_TCTI_RC_BAD_SEQUENCE;
        if (size < TPM_HEADER_SIZE || size > IPC_TPM_MAX)
                return TSS2_TCTI_RC_BAD_VALUE;
        memcpy(m.tpm.data, command, size);
        m.tpm.len = (uint32_t) size;
        if (ipc_socket_send(t->fd, &m, -1) < 0)
                return TSS2_TCTI_RC_IO_ERROR;
        t->sent = true;
        t->have = false;
        return TSS2_RC_SUCCESS;
}

static TSS2_RC worker_tcti_receive(TSS2_TCTI_CONTEXT *c, size_t *size, uint8_t *response, int32_t timeout) {
        WorkerTcti *t = worker_tcti(c);

        if (!size)
                return TSS2_TCTI_RC_BAD_REFERENCE;
        if (!t->sent)
                return TSS2_TCTI_RC_BAD_SEQUENCE;
        if (!t->have) {
                IpcMsg m;
                int r = worker_next(t->fd, t->report,
                                    timeout == TSS2_TCTI_TIMEOUT_BLOCK || timeout > COMMAND_TIMEOUT_MS
                                            ? COMMAND_TIMEOUT_MS
                                            : timeout,
                                    &m);
                if (r == -ETIMEDOUT && timeout != TSS2_TCTI_TIMEOUT_BLOCK)
                        return TSS2_TCTI_RC_TRY_AGAIN;
                if (r <= 0 || m.type != IPC_RESPONSE)
                        return TSS2_TCTI_RC_IO_ERROR;
                t->resp = m.tpm;
                t->have = true;
        }
        /* ESAPI may ask for the size first (response NULL). */
        if (!response) {
                *size = t->resp.len;
                return TSS2_RC_SUCCESS;
        }
        if (*size < t->resp.len)
                return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
        memcpy(response, t->resp.data, t->resp.len);
        *size = t->resp.len;
        t->sent = t->have = false;
        return TSS2_RC_SUCCESS;
}

static void worker_tcti_init(WorkerTcti *t, int fd, Report *report) {
        *t = (WorkerTcti){
                .common = {
                        .v1 = {
                                .magic = UINT64_C(0x7674706d64697063), /* "vtpmdipc": ours, not a tctildr module */
                                .version = 2,
                                .transmit = worker_tcti_transmit,
                                .receive = worker_tcti_receive,
                        },
                },
                .fd = fd,
                .report = report,
        };
}

/* Starts an offline worker on the vTPM's state and waits for READY. */
static int helper_start_worker(Helper *h) {
        IpcMsg m = { .type = IPC_START };
        int r;

        r = spawn_worker(h->worker_path, &h->worker_pid, &h->worker_fd);
        if (r < 0)
                return helper_fail(h, "Failed to start %s: %s", h->worker_path, strerror(-r));

        m.start = (IpcStart){
                .family = TPM_FAMILY_2_0,
                .flags = IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_TPM_STARTUP |
                         (h->trace ? IPC_START_TRACE : 0),
                .min_perm_seq = h->min_perm_seq,
                .uid = h->uid,
                .gid = h->gid,
                .memory_max = h->memory_max,
        };
        snprintf(m.start.uuid, sizeof(m.start.uuid), "%s", h->uuid);
        snprintf(m.start.platform, sizeof(m.start.platform), "%s", h->platform);
        memcpy(m.start.data_key, h->data_key, sizeof(m.start.data_key));
        r = ipc_socket_send(h->worker_fd, &m, h->dir_fd);
        explicit_wipe(&m, sizeof(m));
        if (r < 0)
                return helper_fail(h, "Failed to send parameters to the worker: %s", strerror(-r));

        r = worker_next(h->worker_fd, &h->report, COMMAND_TIMEOUT_MS, &m);
        if (r <= 0)
                return helper_fail(h, "The worker did not start: %s", r == 0 ? "it exited" : strerror(-r));
        if (m.type == IPC_FAILED) {
                r = m.failed.error;
                if (m.failed.stage == IPC_STAGE_STATE && r == -EBUSY)
                        return helper_fail(h, "The vTPM is in use (attached to a guest?)");
                return helper_fail(h, "The worker failed at %s: %s", strempty(ipc_stage_to_string(m.failed.stage)),
                                   strerror(-r));
        }
        if (m.type != IPC_READY)
                return helper_fail(h, "The worker answered %s instead of ready",
                                   strempty(ipc_type_to_string(m.type)));

        worker_tcti_init(&h->tcti, h->worker_fd, &h->report);
        TSS2_RC rc = Esys_Initialize(&h->esys, (TSS2_TCTI_CONTEXT *) &h->tcti, NULL);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "Esys_Initialize failed: %s", Tss2_RC_Decode(rc));
        return 0;
}

/* TPM2_Shutdown(CLEAR) in the worker (IPC_STOP RESET), then its exit. The
 * permall it writes is reported in the STATE messages before STOPPED. Safe
 * after any start attempt: each step is skipped for what is not there (no
 * ESAPI context, no socket, no process), and a worker that does not stop
 * cleanly is killed; it is always reaped. */
static int helper_stop_worker(Helper *h) {
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = IPC_STOP_RESET } };
        int r = 0, status = 0;

        if (h->esys)
                Esys_Finalize(&h->esys);
        if (h->worker_fd >= 0) {
                r = ipc_socket_send(h->worker_fd, &m, -1);
                while (r >= 0) {
                        r = worker_next(h->worker_fd, &h->report, COMMAND_TIMEOUT_MS, &m);
                        if (r > 0 && m.type == IPC_STOPPED)
                                break;
                        if (r == 0)
                                r = -EPIPE; /* gone without STOPPED: its shutdown is not known to be durable */
                }
                h->worker_fd = safe_close(h->worker_fd);
        }
        if (h->worker_pid > 0) {
                pid_t k;

                if (r < 0)
                        (void) kill(h->worker_pid, SIGKILL);
                do
                        k = waitpid(h->worker_pid, &status, 0);
                while (k < 0 && errno == EINTR);
                h->worker_pid = 0;
                if (r >= 0 && (k < 0 || !(WIFEXITED(status) && WEXITSTATUS(status) == 0)))
                        r = -EIO;
        }
        return r;
}

static int get_properties(Helper *h) {
        _cleanup_free_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPMI_YES_NO more = TPM2_NO;
        TSS2_RC rc;

        rc = Esys_GetCapability(h->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                TPM2_PT_FIXED, TPM2_MAX_TPM_PROPERTIES, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_GetCapability(TPM_PROPERTIES) failed: %s", Tss2_RC_Decode(rc));

        h->nv_buffer_max = 1024; /* what swtpm_setup uses when it does not ask */
        for (uint32_t i = 0; i < cap->data.tpmProperties.count && i < TPM2_MAX_TPM_PROPERTIES; i++) {
                const TPMS_TAGGED_PROPERTY *p = &cap->data.tpmProperties.tpmProperty[i];
                switch (p->property) {
                case TPM2_PT_MANUFACTURER:
                        h->info.manufacturer = p->value;
                        break;
                case TPM2_PT_FIRMWARE_VERSION_1:
                        h->info.version = p->value;
                        break;
                case TPM2_PT_LEVEL:
                        h->info.spec_level = p->value;
                        break;
                case TPM2_PT_REVISION:
                        h->info.spec_revision = p->value;
                        break;
                case TPM2_PT_NV_BUFFER_MAX:
                        if (p->value >= 64 && p->value <= 1024)
                                h->nv_buffer_max = (uint16_t) p->value;
                        break;
                default:
                        break;
                }
        }
        /* libtpms is the software TPM of swtpm; the model names it like swtpm_setup does. */
        snprintf(h->info.model, sizeof(h->info.model), "swtpm");
        return 0;
}

/* The TCG default EK templates: EK Credential Profile 2.0, B.3.3 "Template
 * L-1" (RSA 2048) and B.3.4 "Template L-2" (ECC NIST P-256). */
static const uint8_t ek_policy[32] = {
        0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xB3, 0xF8, 0x1A, 0x90, 0xCC, 0x8D, 0x46, 0xA5, 0xD7, 0x24,
        0xFD, 0x52, 0xD7, 0x6E, 0x06, 0x52, 0x0B, 0x64, 0xF2, 0xA1, 0xDA, 0x1B, 0x33, 0x14, 0x69, 0xAA,
};

#define EK_ATTRIBUTES                                                                                    \
        (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |             \
         TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)
_Static_assert(EK_ATTRIBUTES == 0x000300B2, "TCG EK attributes");

static void ek_template(bool ecc, TPM2B_PUBLIC *t) {
        memset(t, 0, sizeof(*t));
        t->publicArea.nameAlg = TPM2_ALG_SHA256;
        t->publicArea.objectAttributes = EK_ATTRIBUTES;
        t->publicArea.authPolicy.size = sizeof(ek_policy);
        memcpy(t->publicArea.authPolicy.buffer, ek_policy, sizeof(ek_policy));
        if (!ecc) {
                TPMS_RSA_PARMS *p = &t->publicArea.parameters.rsaDetail;
                t->publicArea.type = TPM2_ALG_RSA;
                p->symmetric.algorithm = TPM2_ALG_AES;
                p->symmetric.keyBits.aes = 128;
                p->symmetric.mode.aes = TPM2_ALG_CFB;
                p->scheme.scheme = TPM2_ALG_NULL;
                p->keyBits = 2048;
                p->exponent = 0;
                t->publicArea.unique.rsa.size = 256; /* zeros */
        } else {
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

/* Defines, writes (in chunks of the TPM's NV buffer) and write-locks one certificate index. */
static int write_nv_cert(Helper *h, TPM2_HANDLE index, const uint8_t *der, size_t len, const char *what) {
        TPM2B_AUTH auth = { .size = 0 };
        TPM2B_NV_PUBLIC pub = {
                .nvPublic = {
                        .nvIndex = index,
                        .nameAlg = TPM2_ALG_SHA256,
                        .attributes = NV_CERT_ATTRIBUTES,
                        .dataSize = (uint16_t) len,
                },
        };
        ESYS_TR nv = ESYS_TR_NONE;
        TSS2_RC rc;

        if (len == 0 || len > UINT16_MAX)
                return helper_fail(h, "The %s is %zu bytes", what, len);
        rc = Esys_NV_DefineSpace(h->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &auth,
                                 &pub, &nv);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_NV_DefineSpace(0x%08x) for the %s failed: %s", index, what,
                                   Tss2_RC_Decode(rc));
        for (size_t off = 0; off < len;) {
                TPM2B_MAX_NV_BUFFER chunk;
                size_t n = len - off;
                if (n > h->nv_buffer_max)
                        n = h->nv_buffer_max;
                if (n > sizeof(chunk.buffer))
                        n = sizeof(chunk.buffer);
                chunk.size = (uint16_t) n;
                memcpy(chunk.buffer, der + off, n);
                rc = Esys_NV_Write(h->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                   &chunk, (uint16_t) off);
                if (rc != TSS2_RC_SUCCESS)
                        return helper_fail(h, "TPM2_NV_Write(0x%08x) of the %s failed: %s", index, what,
                                           Tss2_RC_Decode(rc));
                off += n;
        }
        rc = Esys_NV_WriteLock(h->esys, ESYS_TR_RH_PLATFORM, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_NV_WriteLock(0x%08x) of the %s failed: %s", index, what,
                                   Tss2_RC_Decode(rc));
        (void) Esys_TR_Close(h->esys, &nv);
        return 0;
}

/* TPM2_CreatePrimary of the TCG default EK (ek_template) in the endorsement
 * hierarchy: the one way both manufacturing and the reset's identity check
 * make it, so that their hashes compare. Returns the TPM's response code
 * (the callers word the failure) and, on success only, the transient object
 * (the caller flushes it) and its public area. */
static TSS2_RC ek_create_primary(Helper *h, bool ecc, ESYS_TR *ret_obj, TPM2B_PUBLIC **ret_pub) {
        TPM2B_PUBLIC in;
        TPM2B_SENSITIVE_CREATE sens = { .size = 0 };
        TPM2B_DATA outside = { .size = 0 };
        TPML_PCR_SELECTION pcrs = { .count = 0 };
        _cleanup_free_ TPM2B_PUBLIC *out = NULL;
        _cleanup_free_ TPM2B_CREATION_DATA *cdata = NULL;
        _cleanup_free_ TPM2B_DIGEST *chash = NULL;
        _cleanup_free_ TPMT_TK_CREATION *ticket = NULL;
        ESYS_TR obj = ESYS_TR_NONE;
        TSS2_RC rc;

        ek_template(ecc, &in);
        rc = Esys_CreatePrimary(h->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
                                &in, &outside, &pcrs, &obj, &out, &cdata, &chash, &ticket);
        if (rc != TSS2_RC_SUCCESS)
                return rc;
        *ret_obj = obj;
        *ret_pub = TAKE_PTR(out);
        return TSS2_RC_SUCCESS;
}

/* Creates one EK, makes it persistent, and issues and writes its certificate. */
static int make_ek(Helper *h, bool ecc) {
        const EkKind *ek = &ek_kinds[ecc];
        /* swtpm_setup issues the platform certificate over the first EK (RSA when there is one). */
        bool want_platform = h->o.platform_cert && (!ecc || !(h->o.eks & MANUFACTURE_EK_RSA2048));
        _cleanup_free_ TPM2B_PUBLIC *out = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        ESYS_TR obj = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
        TSS2_RC rc;
        int r;

        rc = ek_create_primary(h, ecc, &obj, &out);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_CreatePrimary of the %s failed: %s", ek->name, Tss2_RC_Decode(rc));
        rc = Esys_EvictControl(h->esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                               ek->handle, &persistent);
        (void) Esys_FlushContext(h->esys, obj);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_EvictControl of the %s to 0x%08x failed: %s", ek->name, ek->handle,
                                   Tss2_RC_Decode(rc));
        (void) Esys_TR_Close(h->esys, &persistent);

        r = public_sha256(out, result_ek_sha256(&h->report.result, ecc));
        if (r < 0)
                return helper_fail(h, "Failed to hash the %s public key", ek->name);

        if (!h->o.ek_certs && !want_platform)
                return 0;
        if (ecc)
                r = ca_ecc_p256_public_key(out->publicArea.unique.ecc.x.buffer, out->publicArea.unique.ecc.x.size,
                                           out->publicArea.unique.ecc.y.buffer, out->publicArea.unique.ecc.y.size,
                                           &key);
        else
                r = ca_rsa_public_key(out->publicArea.unique.rsa.buffer, out->publicArea.unique.rsa.size,
                                      out->publicArea.parameters.rsaDetail.exponent, &key);
        if (r < 0)
                return helper_fail(h, "The %s public key is not usable by OpenSSL: %s", ek->name, strerror(-r));

        if (h->o.ek_certs) {
                uint8_t **der = &h->cert_der[ecc];
                size_t *len = &h->cert_len[ecc];
                r = ca_issue(h->ca, ek->cert_kind, key, &h->info, der, len);
                if (r < 0)
                        return helper_fail(h, "Failed to issue the %s certificate: %s", ek->name, strerror(-r));
                r = write_nv_cert(h, ek->nv_cert, *der, *len, ek->cert_what);
                if (r < 0)
                        return r;
        }
        if (want_platform) {
                _cleanup_free_ uint8_t *der = NULL;
                size_t len = 0;
                r = ca_issue(h->ca, CA_CERT_PLATFORM, key, &h->info, &der, &len);
                if (r < 0)
                        return helper_fail(h, "Failed to issue the platform certificate: %s", strerror(-r));
                r = write_nv_cert(h, NV_PLATFORM_CERT, der, len, "platform certificate");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* TPM2_PCR_Allocate: the requested banks get all PCRs, every other
 * implemented bank none. It takes effect at the next power-on: the worker
 * that serves the guest. */
static int allocate_banks(Helper *h) {
        static const struct {
                unsigned bit;
                TPMI_ALG_HASH alg;
                const char *name;
        } banks[] = {
                { MANUFACTURE_BANK_SHA1, TPM2_ALG_SHA1, "sha1" },
                { MANUFACTURE_BANK_SHA256, TPM2_ALG_SHA256, "sha256" },
                { MANUFACTURE_BANK_SHA384, TPM2_ALG_SHA384, "sha384" },
                { MANUFACTURE_BANK_SHA512, TPM2_ALG_SHA512, "sha512" },
        };
        _cleanup_free_ TPMS_CAPABILITY_DATA *cap = NULL;
        TPML_PCR_SELECTION sel = { .count = 0 };
        TPMI_YES_NO more = TPM2_NO, ok = TPM2_NO;
        UINT32 max_pcr = 0, needed = 0, available = 0;
        unsigned found = 0;
        TSS2_RC rc;

        rc = Esys_GetCapability(h->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_PCRS, 0, 1, &more, &cap);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_GetCapability(PCRS) failed: %s", Tss2_RC_Decode(rc));

        /* Every implemented bank is listed, so that the unwanted ones are switched off. */
        for (uint32_t i = 0; i < cap->data.assignedPCR.count && i < TPM2_NUM_PCR_BANKS; i++) {
                TPMS_PCR_SELECTION *s = &sel.pcrSelections[sel.count++];
                TPMI_ALG_HASH alg = cap->data.assignedPCR.pcrSelections[i].hash;
                bool want = false;
                for (size_t b = 0; b < ELEMENTSOF(banks); b++)
                        if (banks[b].alg == alg && (h->o.pcr_banks & banks[b].bit)) {
                                want = true;
                                found |= banks[b].bit;
                        }
                s->hash = alg;
                s->sizeofSelect = cap->data.assignedPCR.pcrSelections[i].sizeofSelect;
                if (s->sizeofSelect > sizeof(s->pcrSelect))
                        s->sizeofSelect = sizeof(s->pcrSelect);
                memset(s->pcrSelect, want ? 0xff : 0, s->sizeofSelect);
        }
        for (size_t b = 0; b < ELEMENTSOF(banks); b++)
                if ((h->o.pcr_banks & banks[b].bit) && !(found & banks[b].bit))
                        return helper_fail(h, "The TPM has no %s PCR bank", banks[b].name);

        rc = Esys_PCR_Allocate(h->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sel, &ok,
                               &max_pcr, &needed, &available);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_PCR_Allocate failed: %s", Tss2_RC_Decode(rc));
        if (ok != TPM2_YES)
                return helper_fail(h, "TPM2_PCR_Allocate refused the banks (%" PRIu32 " bytes needed, %" PRIu32
                                   " available)", needed, available);
        return 0;
}

static int write_public_files(Helper *h) {
        StateDir *sd = NULL;
        char hashes[2 * (sizeof("ecc-p256 ") + 64 + 1)] = "";
        int fd, r;

        /* The worker has exited and released the directory: take it like one. */
        fd = fcntl(h->dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return helper_fail(h, "Failed to duplicate the state directory fd: %m");
        r = statedir_from_fd(fd, h->uuid, &sd);
        if (r < 0)
                return helper_fail(h, "Failed to lock the state directory: %s", strerror(-r));

        for (int i = 0; i < 2 && r >= 0; i++) {
                _cleanup_free_ char *pem = NULL;
                if (!h->cert_der[i])
                        continue;
                r = ca_der_to_pem(h->cert_der[i], h->cert_len[i], &pem);
                if (r >= 0)
                        r = statedir_write_public(sd, ek_kinds[i].cert_file, pem, strlen(pem));
        }
        if (r >= 0 && (h->report.result.ek_rsa_sha256[0] || h->report.result.ek_ecc_sha256[0])) {
                if (h->report.result.ek_rsa_sha256[0])
                        snprintf(hashes, sizeof(hashes), "rsa2048 %s\n", h->report.result.ek_rsa_sha256);
                if (h->report.result.ek_ecc_sha256[0])
                        snprintf(hashes + strlen(hashes), sizeof(hashes) - strlen(hashes), "ecc-p256 %s\n",
                                 h->report.result.ek_ecc_sha256);
                r = statedir_write_public(sd, STATEDIR_EK_HASHES, hashes, strlen(hashes));
        }
        statedir_close(sd);
        if (r < 0)
                return helper_fail(h, "Failed to write the EK certificate files: %s", strerror(-r));
        return 0;
}

static int helper_fail(Helper *h, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        mf_log(LOG_ERR, h->uuid, "%s failed: %s", h->clear ? "reset (TPM2_Clear)" : "manufacturing", strempty(msg));
        return -EIO;
}

/* The EK the vTPM was manufactured with, from its recorded hash. */
static const char *ek_want(const Helper *h, bool ecc) {
        return ecc ? h->want.ek_ecc_sha256 : h->want.ek_rsa_sha256;
}

static bool rc_is_auth_failure(TSS2_RC rc) {
        /* Format-one TPM errors carry the handle/session number in bits 8-11. */
        if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TPM_RC_LAYER || !(rc & TPM2_RC_FMT1))
                return false;
        rc = (rc & 0x3fu) | TPM2_RC_FMT1;
        return rc == TPM2_RC_AUTH_FAIL || rc == TPM2_RC_BAD_AUTH;
}

/* Before anything changes: the endorsement primary seed must still make the
 * recorded EK, else the clear would leave a vTPM without its identity. A
 * guest may have set an endorsement password (the clear removes it): then
 * only the check after the clear is possible. */
static int ek_precheck(Helper *h, bool ecc) {
        const char *name = ek_kinds[ecc].name;
        _cleanup_free_ TPM2B_PUBLIC *out = NULL;
        ESYS_TR obj = ESYS_TR_NONE;
        char hex[65];
        TSS2_RC rc;

        rc = ek_create_primary(h, ecc, &obj, &out);
        if (rc_is_auth_failure(rc)) {
                mf_log(LOG_INFO, h->uuid, "the endorsement hierarchy has a password: the %s is checked after "
                       "the clear", name);
                return 0;
        }
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_CreatePrimary of the %s failed: %s; nothing was changed", name,
                                   Tss2_RC_Decode(rc));
        (void) Esys_FlushContext(h->esys, obj);
        if (public_sha256(out, hex) < 0)
                return helper_fail(h, "Failed to hash the %s public key", name);
        if (!streq(hex, ek_want(h, ecc)))
                return helper_fail(h, "the %s is not the one it was manufactured with (SHA-256 %s, recorded %s): "
                                   "its endorsement seed changed; nothing was changed", name, hex, ek_want(h, ecc));
        return 0;
}

/* TPM2_Clear under platform authorization: a new storage seed, the owner's
 * NV indices and every owner or endorsement object gone, the owner,
 * endorsement and lockout authorizations empty. The endorsement seed and
 * the platform's NV indices (the EK certificates) stay, so each EK is the
 * same key again: re-created from its template and made persistent. */
static int helper_clear(Helper *h) {
        TSS2_RC rc;
        int r = 0;

        for (int ecc = 0; ecc < 2 && r >= 0; ecc++)
                if (ek_want(h, ecc)[0])
                        r = ek_precheck(h, ecc);
        if (r < 0)
                return r;
        /* A guest's TPM2_ClearControl(owner, YES) would make TPM2_Clear fail; the platform may undo it. */
        rc = Esys_ClearControl(h->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_NO);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_ClearControl(platform, NO) failed: %s; nothing was changed",
                                   Tss2_RC_Decode(rc));
        rc = Esys_Clear(h->esys, ESYS_TR_RH_PLATFORM, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
        if (rc != TSS2_RC_SUCCESS)
                return helper_fail(h, "TPM2_Clear failed: %s", Tss2_RC_Decode(rc));
        for (int ecc = 0; ecc < 2 && r >= 0; ecc++) {
                if (!ek_want(h, ecc)[0])
                        continue;
                r = make_ek(h, ecc);
                if (r >= 0 && !streq(ek_want(h, ecc), result_ek_sha256(&h->report.result, ecc)))
                        r = helper_fail(h, "the TPM was cleared, but the re-created %s is not the one it was "
                                        "manufactured with (recorded SHA-256 %s): the vTPM has lost its identity",
                                        ek_kinds[ecc].name, ek_want(h, ecc));
        }
        return r;
}

static int helper_manufacture(Helper *h) {
        int r;

        r = get_properties(h);
        if (r >= 0 && (h->o.eks & MANUFACTURE_EK_RSA2048))
                r = make_ek(h, false);
        if (r >= 0 && (h->o.eks & MANUFACTURE_EK_ECC_P256))
                r = make_ek(h, true);
        if (r >= 0 && h->o.pcr_banks)
                r = allocate_banks(h);
        return r;
}

static int helper_run(Helper *h) {
        int r, k;

        r = helper_start_worker(h);
        if (r >= 0)
                r = h->clear ? helper_clear(h) : helper_manufacture(h);
        /* Whatever happened, even a failed start: a worker that was spawned is
         * stopped (or killed) and reaped, so it holds no lock on the vTPM when
         * the supervisor calls done(). */
        k = helper_stop_worker(h);
        if (r >= 0 && k < 0)
                r = helper_fail(h, "The worker did not shut the TPM down cleanly: %s", strerror(-k));
        if (r >= 0 && !h->clear)
                r = write_public_files(h);
        return r;
}

_noreturn_ static void helper_main(Helper *h, int report_fd) {
        int r;

        /* The helper must not outlive the supervisor (it would keep the vTPM's lock). */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGPIPE, SIG_IGN);
        h->worker_fd = -1;

        r = helper_run(h);
        h->report.error = r < 0 ? r : 0;
        if (r < 0)
                memset(&h->report.result, 0, sizeof(h->report.result));
        explicit_wipe(h->data_key, sizeof(h->data_key));
        (void) !write(report_fd, &h->report, sizeof(h->report));
        _exit(r < 0 ? 1 : 0);
}

/* ---------------------------------------------------------------------- */
/* The supervisor side                                                    */
/* ---------------------------------------------------------------------- */

static Manufacture *manufacture_free(Manufacture *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->child_source);
        sd_event_source_disable_unref(m->defer_source);
        safe_close(m->pipe_fd);
        free(m);
        return NULL;
}

static void manufacture_finish(Manufacture *m, int error, const ManufactureResult *res) {
        ManufactureDone done = m->done;
        void *userdata = m->userdata;

        manufacture_free(m);
        done(userdata, error, res);
}

static int child_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Manufacture *m = userdata;
        Report report;
        ssize_t n;

        /* The helper has exited: its report, if any, is all in the pipe. */
        do
                n = read(m->pipe_fd, &report, sizeof(report));
        while (n < 0 && errno == EINTR);

        if (n == (ssize_t) sizeof(report) && report.have_perm_seq) {
                /* Whatever the outcome: the manifest must know the newest permall. */
                vtpm_state_record(m->ctx->state, m->uuid, STATE_KIND_PERMANENT, report.perm_seq);
                vtpm_state_changed(m->ctx->state);
        }
        if (n != (ssize_t) sizeof(report)) {
                mf_log(LOG_ERR, m->uuid, "manufacturing helper (pid %d) ended with %s %d "
                        "without a report", (int) si->si_pid, si->si_code == CLD_EXITED ? "status" : "signal",
                        si->si_status);
                manufacture_finish(m, -EIO, NULL);
                return 0;
        }
        if (report.error < 0) {
                manufacture_finish(m, report.error >= -4095 ? report.error : -EIO, NULL);
                return 0;
        }
        report.result.ek_rsa_sha256[64] = report.result.ek_ecc_sha256[64] = 0;
        mf_log(LOG_INFO, m->uuid, "%s%s%s%s", m->clear ? "cleared, its identity kept" : "manufactured",
                report.result.ek_rsa_sha256[0] ? ", RSA EK SHA-256 " : "", report.result.ek_rsa_sha256,
                report.result.ek_ecc_sha256[0] ? " and an ECC EK" : "");
        manufacture_finish(m, 0, &report.result);
        return 0;
}

static int defer_cb(sd_event_source *s, void *userdata) {
        Manufacture *m = userdata;
        ManufactureResult none = {};

        manufacture_finish(m, 0, &none);
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Manufacture *, manufacture_free)

static int start_helper(Manufacture *m, VtpmKeys *keys, const ManufactureOptions *opt, Ca *ca,
                        const ManufactureResult *clear_want);

int manufacture_vtpm(const ManufactureContext *ctx, const char *uuid, const ManufactureOptions *o, ManufactureDone done,
                     void *userdata) {
        _cleanup_(manufacture_freep) Manufacture *m = NULL;
        _cleanup_(ca_freep) Ca *ca = NULL;
        VtpmKeys keys = { .dir_fd = -1 };
        ManufactureOptions opt = *o;
        int r;

        if (!ctx || !ctx->state || !uuid || !done)
                return -EINVAL;
        if (opt.eks & ~(unsigned) (MANUFACTURE_EK_RSA2048 | MANUFACTURE_EK_ECC_P256) ||
            opt.pcr_banks & ~(unsigned) (MANUFACTURE_BANK_SHA1 | MANUFACTURE_BANK_SHA256 | MANUFACTURE_BANK_SHA384 |
                                         MANUFACTURE_BANK_SHA512))
                return -EINVAL;
        /* A certificate certifies an EK (swtpm_setup: --create-ek-cert implies --createek). */
        if ((opt.ek_certs || opt.platform_cert) && !opt.eks)
                opt.eks = MANUFACTURE_EK_RSA2048;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Manufacture){ .ctx = ctx, .done = done, .userdata = userdata, .pipe_fd = -1 };
        snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);

        if (opt.family != TPM_FAMILY_2_0 || (!opt.eks && !opt.pcr_banks)) {
                /* Nothing to manufacture (libtpms makes the TPM 1.2 EK itself); done() still comes from the loop. */
                r = sd_event_add_defer(ctx->event, &m->defer_source, defer_cb, m);
                if (r < 0)
                        return r;
                TAKE_PTR(m);
                return 0;
        }

        r = vtpm_state_prepare(ctx->state, uuid, false, opt.family, UINT32_MAX, UINT32_MAX, &keys);
        if (r < 0)
                return r; /* logged */
        if (keys.family != TPM_FAMILY_2_0) {
                vtpm_keys_done(&keys);
                mf_log(LOG_ERR, uuid, "only TPM 2.0 vTPMs are manufactured");
                return -EINVAL;
        }
        if (opt.ek_certs || opt.platform_cert) {
                r = ca_load(vtpm_state_root(ctx->state), vtpm_state_master_key(ctx->state), &ca);
                if (r < 0) {
                        vtpm_keys_done(&keys);
                        return r; /* logged */
                }
        }
        r = start_helper(m, &keys, &opt, ca, NULL);
        if (r < 0)
                return r;
        TAKE_PTR(m);
        return 0;
}

/* Forks the helper; takes (wipes and closes) keys. */
/* In the helper: closes every fd but stdio and the n in keep (ascending). */
static void close_all_but(const int *keep, size_t n) {
        unsigned from = 3;

        for (size_t i = 0; i < n; i++) {
                if ((unsigned) keep[i] > from)
                        (void) close_range(from, (unsigned) keep[i] - 1, 0);
                if ((unsigned) keep[i] + 1 > from)
                        from = (unsigned) keep[i] + 1;
        }
        (void) close_range(from, ~0u, 0);
}

static int start_helper(Manufacture *m, VtpmKeys *keys, const ManufactureOptions *opt, Ca *ca,
                        const ManufactureResult *clear_want) {
        const ManufactureContext *ctx = m->ctx;
        int pipe_fds[2], r;
        pid_t pid;

        if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
                r = negative_errno();
                vtpm_keys_done(keys);
                return r;
        }

        pid = fork();
        if (pid < 0) {
                r = negative_errno();
                safe_close(pipe_fds[0]);
                safe_close(pipe_fds[1]);
                vtpm_keys_done(keys);
                return r;
        }
        if (pid == 0) {
                Helper h = {
                        .uuid = m->uuid,
                        .worker_path = ctx->worker_path,
                        .platform = ctx->platform ?: "xen",
                        .trace = ctx->trace,
                        .uid = ctx->worker_uid,
                        .gid = ctx->worker_gid,
                        .memory_max = ctx->worker_memory_max,
                        .dir_fd = keys->dir_fd,
                        .min_perm_seq = keys->min_perm_seq,
                        .o = *opt,
                        .ca = ca,
                        .clear = !!clear_want,
                };
                if (clear_want)
                        h.want = *clear_want;
                safe_close(pipe_fds[0]);
                /* Nothing of vtpmd's stays open in the helper (its sockets, the
                 * fork server's): it keeps stdio, its report pipe and the
                 * vTPM's directory, and exec's its worker. */
                if (pipe_fds[1] < keys->dir_fd)
                        close_all_but((int[]){ pipe_fds[1], keys->dir_fd }, 2);
                else
                        close_all_but((int[]){ keys->dir_fd, pipe_fds[1] }, 2);
                memcpy(h.data_key, keys->data_key, sizeof(h.data_key));
                explicit_wipe(keys->data_key, sizeof(keys->data_key));
                helper_main(&h, pipe_fds[1]);
        }

        safe_close(pipe_fds[1]);
        m->pipe_fd = pipe_fds[0];
        m->pid = pid;
        vtpm_keys_done(keys);
        r = sd_event_add_child(ctx->event, &m->child_source, pid, WEXITED, child_cb, m);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                return r;
        }
        mf_log(LOG_INFO, m->uuid, "%s (helper pid %d)",
               clear_want ? "clearing the TPM, keeping its EKs" : "manufacturing", (int) pid);
        return 0;
}

int manufacture_clear(const ManufactureContext *ctx, const char *uuid, ManufactureDone done, void *userdata) {
        _cleanup_(manufacture_freep) Manufacture *m = NULL;
        VtpmKeys keys = { .dir_fd = -1 };
        ManufactureOptions none = { .family = TPM_FAMILY_2_0 };
        ManufactureResult want = {};
        int r;

        if (!ctx || !ctx->state || !uuid || !done)
                return -EINVAL;
        r = manufacture_info(ctx, uuid, &want);
        if (r == -ENOENT)
                want = (ManufactureResult){}; /* never manufactured (or without EKs): only the clear */
        else if (r < 0) {
                mf_log(LOG_ERR, uuid, "its EK record %s is unreadable: %s", STATEDIR_EK_HASHES, strerror(-r));
                return r;
        }

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Manufacture){ .ctx = ctx, .clear = true, .done = done, .userdata = userdata, .pipe_fd = -1 };
        snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);

        r = vtpm_state_prepare(ctx->state, uuid, false, TPM_FAMILY_2_0, UINT32_MAX, UINT32_MAX, &keys);
        if (r < 0)
                return r; /* logged, unless -EBUSY */
        if (keys.family != TPM_FAMILY_2_0) {
                vtpm_keys_done(&keys);
                return -EOPNOTSUPP;
        }
        r = start_helper(m, &keys, &none, NULL, &want);
        if (r < 0)
                return r;
        TAKE_PTR(m);
        return 0;
}

int manufacture_info(const ManufactureContext *ctx, const char *uuid, ManufactureResult *ret) {
        _cleanup_(statedir_closep) StateDir *dir = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        ManufactureResult res = {};
        char buf[256];
        size_t n;
        int r;

        if (!ctx || !ctx->state || !uuid)
                return -EINVAL;
        r = statedir_open_shared(vtpm_state_root(ctx->state), uuid, &dir);
        if (r >= 0)
                r = statedir_read_public(dir, STATEDIR_EK_HASHES, &data, &n);
        if (r < 0)
                return r;
        /* At most two lines of 9 + 64 + 1 characters (write_public_files). */
        if (n >= sizeof(buf))
                return -EBADMSG;
        memcpy(buf, data, n);
        buf[n] = 0;
        for (char *line = buf, *next; line && *line; line = next) {
                char *hex;
                next = strchr(line, '\n');
                if (!next)
                        return -EBADMSG;
                *next++ = 0;
                if (strncmp(line, "rsa2048 ", 8) == 0)
                        hex = res.ek_rsa_sha256, line += 8;
                else if (strncmp(line, "ecc-p256 ", 9) == 0)
                        hex = res.ek_ecc_sha256, line += 9;
                else
                        return -EBADMSG;
                if (strlen(line) != 64 || strspn(line, "0123456789abcdef") != 64)
                        return -EBADMSG;
                memcpy(hex, line, 65);
        }
        *ret = res;
        return 0;
}
