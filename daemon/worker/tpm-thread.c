/* SPDX-License-Identifier: BSD-3-Clause */
/* The TPM thread: libtpms, the hand-off of a command, the quick path and recovery (tpm-thread.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "page-server.h"
#include "tpm-thread.h"
#include "tpmstore-durable.h"
#include "util.h"

struct TpmThread {
        TpmFamily family;
        TpmInstance *tpm;
        WorkerState *state; /* its store tells a failed write */
        int done_fd;        /* eventfd: the TPM thread finished a command */
        /* libtpms is in failure mode (a state write failed): re-initialised
         * from the durable state before the next command. TPM thread while
         * serving; I/O thread once it has joined. */
        bool broken;
        /* The store's lock on the shared file system is gone (-ENOLCK): no
         * write of this process can ever succeed again. */
        bool lock_lost;

        pthread_t thread;
        bool started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* Under lock. */
        bool job, job_done, quit;
        /* The job: written by the I/O thread before setting `job`, read by the
         * TPM thread; the result the other way round. The command is the page
         * server's one copy of what the guest wrote; the response stays in
         * libtpms' buffer until it is posted to the page. */
        const uint8_t *cmd;
        size_t cmd_len;
        uint8_t locality;
        const uint8_t *resp;
        size_t resp_len;
        int resp_r;
};

int tpm_thread_new(TpmFamily family, TpmInstance *tpm, WorkerState *state, TpmThread **ret) {
        TpmThread *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->family = family;
        t->tpm = tpm;
        t->state = state;
        t->done_fd = -1;
        pthread_mutex_init(&t->lock, NULL);
        pthread_cond_init(&t->cond, NULL);
        *ret = t;
        return 0;
}

TpmThread *tpm_thread_free(TpmThread *t) {
        if (!t)
                return NULL;
        tpm_thread_stop(t);
        tpm_instance_free(t->tpm);
        safe_close(t->done_fd);
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        free(t);
        return NULL;
}

bool tpm_thread_lock_lost(TpmThread *t) {
        bool v;

        pthread_mutex_lock(&t->lock);
        v = t->lock_lost;
        pthread_mutex_unlock(&t->lock);
        return v;
}

/* The way out of failure mode: a power cycle from the durable state
 * (research libtpms-swtpm.md §1.3: a failed store is fatal to the instance
 * until re-init). Returns true if the TPM works again. */
static bool tpm_thread_recover(TpmThread *t) {
        TpmStore *store = worker_state_store(t->state);
        uint32_t rc = 0;
        int r;

        (void) tpm_store_durable_take_error(store);
        r = tpm_instance_reinit(t->tpm);
        if (r >= 0 && t->family == TPM_FAMILY_2_0)
                r = tpm_instance_startup(t->tpm, &rc);
        if (r >= 0 && tpm_store_durable_take_error(store) < 0)
                r = -EIO;
        if (r < 0) {
                if (worker_state_log_ok(t->state))
                        log_msg(LOG_INFO, "re-initialising the TPM from its durable state failed (%s, rc 0x%x); "
                                 "answering TPM failure", strerror(-r), rc);
                return false;
        }
        log_msg(LOG_INFO, "TPM re-initialised from its durable state after a failed write (PCRs and sessions reset)");
        return true;
}

int tpm_thread_run(TpmThread *t, const uint8_t *cmd, size_t len, uint8_t locality, const uint8_t **ret_resp,
                   size_t *ret_n) {
        int r = -EIO;

        *ret_resp = NULL;
        *ret_n = 0;
        if (t->broken && !tpm_thread_lock_lost(t) && tpm_thread_recover(t))
                t->broken = false;
        if (!t->broken) {
                r = tpm_instance_process_view(t->tpm, cmd, len, ret_resp, ret_n, locality);
                /* The command's store write failed: libtpms is in failure
                 * mode and has answered TPM_RC_FAILURE. */
                int e = tpm_store_durable_take_error(worker_state_store(t->state));
                if (e < 0)
                        t->broken = true;
                if (e == -ENOLCK && !tpm_thread_lock_lost(t)) {
                        log_msg(LOG_INFO, "the vTPM's lock on the shared storage was lost (the storage restarted, or "
                                 "another host took the vTPM over): answering TPM failure until vtpmd restarts "
                                 "this worker");
                        pthread_mutex_lock(&t->lock);
                        t->lock_lost = true;
                        pthread_mutex_unlock(&t->lock);
                }
        }
        return r;
}

static void *tpm_thread_main(void *userdata) {
        TpmThread *t = userdata;

        pthread_mutex_lock(&t->lock);
        for (;;) {
                while (!t->job && !t->quit)
                        pthread_cond_wait(&t->cond, &t->lock);
                if (!t->job)
                        break;
                pthread_mutex_unlock(&t->lock);

                const uint8_t *out;
                size_t n;
                int r = tpm_thread_run(t, t->cmd, t->cmd_len, t->locality, &out, &n);

                pthread_mutex_lock(&t->lock);
                t->resp_r = r;
                t->resp = out;
                t->resp_len = n;
                t->job = false;
                t->job_done = true;
                uint64_t one = 1;
                (void) !write(t->done_fd, &one, sizeof(one));
        }
        pthread_mutex_unlock(&t->lock);
        return NULL;
}

int tpm_thread_open_done(TpmThread *t) {
        t->done_fd = eventfd(0, EFD_CLOEXEC);
        return t->done_fd < 0 ? negative_errno() : 0;
}

int tpm_thread_start(TpmThread *t) {
        int r = -pthread_create(&t->thread, NULL, tpm_thread_main, t);
        if (r < 0)
                return r;
        t->started = true;
        return 0;
}

int tpm_thread_done_fd(const TpmThread *t) {
        return t->done_fd;
}

int tpm_thread_page_run(TpmThread *t, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                        const uint8_t **ret_resp, size_t *ret_len) {
        /* Nothing to cancel in a quick command: answered here, sparing two
         * thread hand-offs; the TPM thread is idle (the server is not busy). */
        if (quick)
                return tpm_thread_run(t, cmd, len, locality, ret_resp, ret_len);
        pthread_mutex_lock(&t->lock);
        t->cmd = cmd;
        t->cmd_len = len;
        t->locality = locality;
        t->job = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
        return PAGE_SERVER_PENDING;
}

void tpm_thread_cancel(TpmThread *t) {
        tpm_instance_cancel(t->tpm);
}

bool tpm_thread_take_result(TpmThread *t, int *ret_r, const uint8_t **ret_resp, size_t *ret_len) {
        pthread_mutex_lock(&t->lock);
        bool done = t->job_done;
        if (done) {
                t->job_done = false;
                *ret_r = t->resp_r;
                *ret_resp = t->resp;
                *ret_len = t->resp_len;
        }
        pthread_mutex_unlock(&t->lock);
        return done;
}

void tpm_thread_stop(TpmThread *t) {
        if (!t->started)
                return;
        pthread_mutex_lock(&t->lock);
        t->quit = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->lock);
        pthread_join(t->thread, NULL);
        t->started = false;
}

void tpm_thread_shutdown(TpmThread *t) {
        if (!t->tpm || t->broken)
                return;
        uint32_t rc = 0;
        int r = tpm_instance_shutdown(t->tpm, &rc);
        if (r < 0)
                log_msg(LOG_INFO, "TPM shutdown failed: %s (rc 0x%x)", strerror(-r), rc);
}

TpmInstance *tpm_thread_instance(const TpmThread *t) {
        return t->broken ? NULL : t->tpm;
}
