/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Manufacturing (manufacture.h). The supervisor must never block, and an
 * RSA-2048 EK alone takes libtpms hundreds of milliseconds, so the whole
 * dialogue runs in a short-lived helper process forked from the supervisor:
 *
 *   vtpmd ──fork──> helper ──spawn_worker──> vtpmd-worker (OFFLINE, DURABLE)
 *     ▲                │  lib/tss-client.h (ESAPI) over a transport that
 *     │ report (pipe)  │  sends IPC_COMMAND and waits for IPC_RESPONSE
 *     └────────────────┘  on the worker's socket
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
 * reader): it uses malloc, OpenSSL and tpm2-tss (through lib/), which glibc's
 * fork handlers keep usable, and no lock of the supervisor's own.
 *
 * What is made is decided here (which EKs, certificates and banks, what the
 * certificates say, where the public files go, what is logged); how, with
 * the TCG's templates, handles and indices, is lib/tss-client.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include "tss-client.h"
#include "util.h"

/* The two kinds of EK, indexed by `ecc` (0: RSA 2048, 1: ECC NIST P-256). */
typedef struct EkKind {
        TssEk ek;
        TssCert cert;          /* the NV index of its certificate */
        CaCertKind cert_kind;
        const char *cert_file; /* its certificate, PEM, in the state directory */
} EkKind;

static const EkKind ek_kinds[2] = {
        {
                .ek = TSS_EK_RSA2048,
                .cert = TSS_CERT_EK_RSA2048,
                .cert_kind = CA_CERT_EK_RSA,
                .cert_file = STATEDIR_EK_CERT_RSA2048,
        },
        {
                .ek = TSS_EK_ECC_P256,
                .cert = TSS_CERT_EK_ECC_P256,
                .cert_kind = CA_CERT_EK_ECC,
                .cert_file = STATEDIR_EK_CERT_ECC_P256,
        },
};

/* Where the hash of that kind of EK goes in a result. */
static char *result_ek_sha256(ManufactureResult *res, bool ecc) {
        return ecc ? res->ek_ecc_sha256 : res->ek_rsa_sha256;
}

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
        /* manufacture_peek_pcrs: the PCRs read and their digests */
        uint32_t pcr_select;
        uint8_t pcr_digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST];
} Report;
_Static_assert(sizeof(Report) <= 4096, "the report fits PIPE_BUF");

typedef struct Manufacture {
        const ManufactureContext *ctx;
        bool clear;
        char uuid[IPC_UUID_LEN];
        ManufactureDone done;
        bool peek;
        ManufacturePcrsDone pcrs_done;
        void *userdata;
        pid_t pid;
        int pipe_fd;
        sd_event_source *child_source;
        sd_event_source *defer_source; /* nothing to do: done() on the next loop iteration */
} Manufacture;

/* ---------------------------------------------------------------------- */
/* The helper process                                                     */
/* ---------------------------------------------------------------------- */

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
        /* manufacture_peek_pcrs: a read-only worker (resuming the saved volatile state of vol_seq) */
        bool peek, resume;
        uint64_t vol_seq;
        uint16_t pcr_alg;
        uint32_t pcr_select;

        pid_t worker_pid;
        int worker_fd;
        bool worker_lost; /* a command got no response: a later one might get the earlier's */
        TssClient *tss;
        Report report;
        CaTpmInfo info;
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

/* The TssClient's transport: one command to the worker, its response back. */
static int worker_transport(void *userdata, const uint8_t *cmd, size_t len, uint8_t *resp, size_t resp_max,
                            size_t *ret_len) {
        Helper *h = userdata;
        IpcMsg m = { .type = IPC_COMMAND };
        int r;

        if (h->worker_lost)
                return -EPIPE;
        if (len < TPM_HEADER_SIZE || len > IPC_TPM_MAX)
                return -EINVAL;
        memcpy(m.tpm.data, cmd, len);
        m.tpm.len = (uint32_t) len;
        r = ipc_socket_send(h->worker_fd, &m, -1);
        if (r >= 0)
                r = worker_next(h->worker_fd, &h->report, COMMAND_TIMEOUT_MS, &m);
        if (r > 0 && m.type != IPC_RESPONSE)
                r = -EBADMSG;
        if (r <= 0) {
                h->worker_lost = true;
                return r == 0 ? -EPIPE : r;
        }
        if (m.tpm.len > resp_max)
                return -EMSGSIZE;
        memcpy(resp, m.tpm.data, m.tpm.len);
        *ret_len = m.tpm.len;
        return 0;
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
                .flags = IPC_START_OFFLINE | IPC_START_DURABLE | (h->trace ? IPC_START_TRACE : 0) |
                         (h->peek ? IPC_START_PEEK : 0) |
                         (h->resume ? IPC_START_RESTORE_VOLATILE : IPC_START_TPM_STARTUP),
                .min_perm_seq = h->min_perm_seq,
                .vol_seq = h->resume ? h->vol_seq : 0,
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
                if (m.failed.stage == IPC_STAGE_STATE && r == -EBUSY) {
                        r = helper_fail(h, "The vTPM is in use (attached to a guest?)");
                        return h->peek ? -EBUSY : r;
                }
                return helper_fail(h, "The worker failed at %s: %s", strempty(ipc_stage_to_string(m.failed.stage)),
                                   strerror(-r));
        }
        if (m.type != IPC_READY)
                return helper_fail(h, "The worker answered %s instead of ready",
                                   strempty(ipc_type_to_string(m.type)));

        r = tss_client_new(worker_transport, h, &h->tss);
        if (r < 0)
                return helper_fail(h, "Esys_Initialize failed: %s", strerror(-r));
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

        h->tss = tss_client_free(h->tss);
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
        TssTpmProperties p;

        if (tss_client_properties(h->tss, &p) < 0)
                return helper_fail(h, "%s", tss_client_last_error(h->tss));
        h->info = (CaTpmInfo){
                .manufacturer = p.manufacturer,
                .version = p.firmware_version,
                .spec_level = p.spec_level,
                .spec_revision = p.spec_revision,
        };
        /* libtpms is the software TPM of swtpm; the model names it like swtpm_setup does. */
        snprintf(h->info.model, sizeof(h->info.model), "swtpm");
        return 0;
}

/* Issues one certificate over key (`what` names it: "<what> certificate") and
 * writes it to its NV index; the DER goes to *ret_der if given (for the public
 * file), else it is dropped. */
static int issue_cert(Helper *h, CaCertKind kind, TssCert cert, const char *what, EVP_PKEY *key, uint8_t **ret_der,
                      size_t *ret_len) {
        _cleanup_free_ uint8_t *der = NULL;
        size_t len = 0;
        int r;

        r = ca_issue(h->ca, kind, key, &h->info, &der, &len);
        if (r < 0)
                return helper_fail(h, "Failed to issue the %s certificate: %s", what, strerror(-r));
        if (tss_client_write_cert(h->tss, cert, der, len) < 0)
                return helper_fail(h, "%s", tss_client_last_error(h->tss));
        if (ret_der) {
                *ret_der = TAKE_PTR(der);
                *ret_len = len;
        }
        return 0;
}

/* Creates one EK, makes it persistent, and issues and writes its certificate. */
static int make_ek(Helper *h, bool ecc) {
        const EkKind *ek = &ek_kinds[ecc];
        const char *name = tss_ek_to_string(ek->ek);
        /* swtpm_setup issues the platform certificate over the first EK (RSA when there is one). */
        bool want_platform = h->o.platform_cert && (!ecc || !(h->o.eks & MANUFACTURE_EK_RSA2048));
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        TssEkPublic pub;
        int r;

        if (tss_client_create_ek(h->tss, ek->ek, true, &pub) < 0)
                return helper_fail(h, "%s", tss_client_last_error(h->tss));
        memcpy(result_ek_sha256(&h->report.result, ecc), pub.sha256, sizeof(pub.sha256));

        if (!h->o.ek_certs && !want_platform)
                return 0;
        if (ecc)
                r = ca_ecc_p256_public_key(pub.ecc_x, pub.ecc_x_len, pub.ecc_y, pub.ecc_y_len, &key);
        else
                r = ca_rsa_public_key(pub.rsa_modulus, pub.rsa_modulus_len, pub.rsa_exponent, &key);
        if (r < 0)
                return helper_fail(h, "The %s public key is not usable by OpenSSL: %s", name, strerror(-r));

        if (h->o.ek_certs) {
                r = issue_cert(h, ek->cert_kind, ek->cert, name, key, &h->cert_der[ecc], &h->cert_len[ecc]);
                if (r < 0)
                        return r;
        }
        if (want_platform)
                return issue_cert(h, CA_CERT_PLATFORM, TSS_CERT_PLATFORM, "platform", key, NULL, NULL);
        return 0;
}

/* The requested banks get all PCRs, every other implemented bank none. It
 * takes effect at the next power-on: the worker that serves the guest. */
static int allocate_banks(Helper *h) {
        if (tss_client_allocate_pcrs(h->tss, h->o.pcr_banks) < 0)
                return helper_fail(h, "%s", tss_client_last_error(h->tss));
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
        mf_log(LOG_ERR, h->uuid, "%s failed: %s",
               h->peek ? "pcrread" : h->clear ? "reset (TPM2_Clear)" : "manufacturing", strempty(msg));
        return -EIO;
}

/* The EK the vTPM was manufactured with, from its recorded hash. */
static const char *ek_want(const Helper *h, bool ecc) {
        return ecc ? h->want.ek_ecc_sha256 : h->want.ek_rsa_sha256;
}

/* Before anything changes: the endorsement primary seed must still make the
 * recorded EK, else the clear would leave a vTPM without its identity. A
 * guest may have set an endorsement password (the clear removes it): then
 * only the check after the clear is possible. */
static int ek_precheck(Helper *h, bool ecc) {
        const char *name = tss_ek_to_string(ek_kinds[ecc].ek);
        TssEkPublic pub;
        int r;

        r = tss_client_create_ek(h->tss, ek_kinds[ecc].ek, false, &pub);
        if (r == -EACCES) {
                mf_log(LOG_INFO, h->uuid, "the endorsement hierarchy has a password: the %s is checked after "
                       "the clear", name);
                return 0;
        }
        if (r < 0)
                return helper_fail(h, "%s; nothing was changed", tss_client_last_error(h->tss));
        if (!streq(pub.sha256, ek_want(h, ecc)))
                return helper_fail(h, "the %s is not the one it was manufactured with (SHA-256 %s, recorded %s): "
                                   "its endorsement seed changed; nothing was changed", name, pub.sha256,
                                   ek_want(h, ecc));
        return 0;
}

/* TPM2_Clear under platform authorization: a new storage seed, the owner's
 * NV indices and every owner or endorsement object gone, the owner,
 * endorsement and lockout authorizations empty. The endorsement seed and
 * the platform's NV indices (the EK certificates) stay, so each EK is the
 * same key again: re-created from its template and made persistent. */
static int helper_clear(Helper *h) {
        int r = 0;

        for (int ecc = 0; ecc < 2 && r >= 0; ecc++)
                if (ek_want(h, ecc)[0])
                        r = ek_precheck(h, ecc);
        if (r < 0)
                return r;
        /* The platform undoes a guest's TPM2_ClearControl(owner, YES) first, which would make the clear fail. */
        if (tss_client_clear(h->tss) < 0)
                return helper_fail(h, "%s", tss_client_last_error(h->tss));
        for (int ecc = 0; ecc < 2 && r >= 0; ecc++) {
                if (!ek_want(h, ecc)[0])
                        continue;
                r = make_ek(h, ecc);
                if (r >= 0 && !streq(ek_want(h, ecc), result_ek_sha256(&h->report.result, ecc)))
                        r = helper_fail(h, "the TPM was cleared, but the re-created %s is not the one it was "
                                        "manufactured with (recorded SHA-256 %s): the vTPM has lost its identity",
                                        tss_ek_to_string(ek_kinds[ecc].ek), ek_want(h, ecc));
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

/* TPM2_PCR_Read until every PCR asked for is in (a TPM answers at most 8 at a time), or the TPM
 * returns none: the rest are not allocated. -ENOENT if the bank has none at all. */
static int helper_peek(Helper *h) {
        uint32_t todo = h->pcr_select;

        while (todo) {
                uint8_t cmd[32], resp[IPC_TPM_MAX];
                uint32_t got = 0, rc = 0;
                size_t len = 0;
                int n = tpm2_build_pcr_read(h->pcr_alg, todo, cmd, sizeof(cmd)), r;

                if (n < 0)
                        return helper_fail(h, "Cannot build TPM2_PCR_Read: %s", strerror(-n));
                r = worker_transport(h, cmd, (size_t) n, resp, sizeof(resp), &len);
                if (r < 0)
                        return helper_fail(h, "The worker did not answer TPM2_PCR_Read: %s", strerror(-r));
                r = tpm2_parse_pcr_read(resp, len, h->pcr_alg, todo, &got, h->report.pcr_digests, &rc);
                if (r == -EPROTO)
                        return helper_fail(h, "TPM2_PCR_Read answered TPM error 0x%03x", rc);
                if (r < 0)
                        return helper_fail(h, "Malformed TPM2_PCR_Read response");
                if (got == 0)
                        break;
                h->report.pcr_select |= got;
                todo &= ~got;
        }
        return h->report.pcr_select ? 0 : -ENOENT;
}

static int helper_run(Helper *h) {
        int r, k;

        r = helper_start_worker(h);
        if (r >= 0)
                r = h->peek ? helper_peek(h) : h->clear ? helper_clear(h) : helper_manufacture(h);
        /* Whatever happened, even a failed start: a worker that was spawned is
         * stopped (or killed) and reaped, so it holds no lock on the vTPM when
         * the supervisor calls done(). */
        k = helper_stop_worker(h);
        if (r >= 0 && k < 0)
                r = helper_fail(h, "The worker did not shut the TPM down cleanly: %s", strerror(-k));
        if (r >= 0 && !h->clear && !h->peek)
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

static void peek_finish(Manufacture *m, int error, const Report *report) {
        ManufacturePcrsDone done = m->pcrs_done;
        void *userdata = m->userdata;

        manufacture_free(m);
        if (error < 0)
                done(userdata, error, 0, NULL);
        else
                done(userdata, 0, report->pcr_select, report->pcr_digests);
}

static int child_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Manufacture *m = userdata;
        Report report;
        ssize_t n;

        /* The helper has exited: its report, if any, is all in the pipe. */
        do
                n = read(m->pipe_fd, &report, sizeof(report));
        while (n < 0 && errno == EINTR);

        if (m->peek) {
                /* A read-only worker writes nothing: there is nothing to record. */
                if (n != (ssize_t) sizeof(report))
                        mf_log(LOG_ERR, m->uuid, "pcrread helper (pid %d) ended without a report", (int) si->si_pid);
                peek_finish(m, n != (ssize_t) sizeof(report) ? -EIO
                               : report.error < 0 ? (report.error >= -4095 ? report.error : -EIO) : 0,
                            &report);
                return 0;
        }
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

/* The local CA, created at first use; logs once what it made or why it failed. */
static int load_ca(const ManufactureContext *ctx, Ca **ret) {
        StateRoot *root = vtpm_state_local_root(ctx->state);
        CaLoadReport report = {};
        int r;

        if (ctx->ca_cert_file) {
                /* Read at every use: a renewed certificate or key is taken without a restart. */
                r = ca_load_files(ctx->ca_cert_file, ctx->ca_key_file, &report, ret);
                if (r < 0)
                        return log_error_errno(r, "EK CA file %s: %s", strempty(report.file), strempty(report.error));
                return 0;
        }
        r = ca_load(root, vtpm_state_local_key(ctx->state), &report, ret);
        if (r < 0) {
                if (report.file)
                        return log_error_errno(r, "CA file %s/%s: %s", stateroot_path(root), report.file,
                                               report.error);
                return log_error_errno(r, "Failed to load the local CA: %s", strempty(report.error));
        }
        if (report.created || report.reissued)
                log_msg(LOG_NOTICE, "%s the local CA certificate %s/%s", report.created ? "Created" : "Re-issued",
                        stateroot_path(root), CA_CERT_FILE);
        return 0;
}

int manufacture_check_ca(const ManufactureContext *ctx) {
        _cleanup_(ca_freep) Ca *ca = NULL;

        return ctx->ca_cert_file ? load_ca(ctx, &ca) : 0;
}

int manufacture_ca_cert(const ManufactureContext *ctx, char **ret_pem) {
        _cleanup_(ca_freep) Ca *ca = NULL;
        int r;

        if (!ctx || !ctx->state || !ret_pem)
                return -EINVAL;
        r = load_ca(ctx, &ca);
        if (r < 0)
                return r;
        return ca_cert_pem(ca, ret_pem);
}

/* What the helper of manufacture_peek_pcrs reads. */
typedef struct PeekParams {
        bool resume;
        uint64_t vol_seq;
        uint16_t alg;
        uint32_t select;
} PeekParams;

static int start_helper(Manufacture *m, VtpmKeys *keys, const ManufactureOptions *opt, Ca *ca,
                        const ManufactureResult *clear_want, const PeekParams *peek);

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
                r = load_ca(ctx, &ca);
                if (r < 0) {
                        vtpm_keys_done(&keys);
                        return r; /* logged */
                }
        }
        r = start_helper(m, &keys, &opt, ca, NULL, NULL);
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
                        const ManufactureResult *clear_want, const PeekParams *peek) {
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
                if (peek) {
                        h.peek = true;
                        h.resume = peek->resume;
                        h.vol_seq = peek->vol_seq;
                        h.pcr_alg = peek->alg;
                        h.pcr_select = peek->select;
                }
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
        mf_log(m->peek ? LOG_DEBUG : LOG_INFO, m->uuid, "%s (helper pid %d)",
               m->peek      ? "reading its PCRs read-only"
               : clear_want ? "clearing the TPM, keeping its EKs"
                            : "manufacturing",
               (int) pid);
        return 0;
}

/* The keys of an existing TPM 2.0 vTPM for a helper's worker (-EOPNOTSUPP for TPM 1.2);
 * vtpm_state_prepare logs its failures, unless -EBUSY. */
static int prepare_tpm2(const ManufactureContext *ctx, const char *uuid, VtpmKeys *keys) {
        int r = vtpm_state_prepare(ctx->state, uuid, false, TPM_FAMILY_2_0, UINT32_MAX, UINT32_MAX, keys);
        if (r < 0)
                return r;
        if (keys->family != TPM_FAMILY_2_0) {
                vtpm_keys_done(keys);
                return -EOPNOTSUPP;
        }
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

        r = prepare_tpm2(ctx, uuid, &keys);
        if (r < 0)
                return r;
        r = start_helper(m, &keys, &none, NULL, &want, NULL);
        if (r < 0)
                return r;
        TAKE_PTR(m);
        return 0;
}

int manufacture_peek_pcrs(const ManufactureContext *ctx, const char *uuid, bool resume, uint16_t alg, uint32_t select,
                          ManufacturePcrsDone done, void *userdata) {
        _cleanup_(manufacture_freep) Manufacture *m = NULL;
        VtpmKeys keys = { .dir_fd = -1 };
        ManufactureOptions none = { .family = TPM_FAMILY_2_0 };
        int r;

        if (!ctx || !ctx->state || !uuid || !done || !tpm2_hash_size(alg) || select == 0 ||
            select >= (1u << TPM2_PCR_COUNT))
                return -EINVAL;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        *m = (Manufacture){ .ctx = ctx, .peek = true, .pcrs_done = done, .userdata = userdata, .pipe_fd = -1 };
        snprintf(m->uuid, sizeof(m->uuid), "%s", uuid);

        r = prepare_tpm2(ctx, uuid, &keys);
        if (r < 0)
                return r;
        if (resume && keys.vol_seq == 0) {
                vtpm_keys_done(&keys);
                return -ESTALE; /* its suspend ended meanwhile */
        }
        PeekParams p = { .resume = resume, .vol_seq = keys.vol_seq, .alg = alg, .select = select };
        r = start_helper(m, &keys, &none, NULL, NULL, &p);
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
