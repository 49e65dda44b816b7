/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The TPM thread: the one libtpms instance of this worker, and the thread
 * that runs the guest's commands on it so that the I/O thread stays free to
 * see a CANCEL. The I/O thread hands over the page server's private copy of a
 * command (tpm_thread_page_run(), a PageServerOps.run); the TPM thread runs it
 * and signals the done eventfd; the I/O thread then takes the result
 * (tpm_thread_take_result()) and posts it.
 *
 * libtpms is touched only by the TPM thread while a command is in flight,
 * except for TPMLIB_CancelCommand from the I/O thread (the pattern libtpms
 * supports). Quick commands (tpm_command_is_quick(): GetRandom, PCR_Extend,
 * NV_Write...) have nothing worth cancelling and run on the I/O thread itself
 * while the TPM thread is idle, which saves two thread hand-offs per command;
 * offline (manufacturing) there is no thread and every command runs there.
 *
 * A failed state write puts libtpms into failure mode: the next command first
 * re-initialises it from the durable state (recovery).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm-instance.h"
#include "worker-state.h"

typedef struct TpmThread TpmThread;

/* Takes tpm (restored from state, whose store it writes through) on success. */
int tpm_thread_new(TpmFamily family, TpmInstance *tpm, WorkerState *state, TpmThread **ret);
/* Stops and joins the thread, frees the instance; accepts NULL. */
TpmThread *tpm_thread_free(TpmThread *t);

/* Serving a guest: the done eventfd, before confinement (eventfd is not on
 * the allow-list); then the thread, after it (Landlock and seccomp apply per
 * thread, from creation on). */
int tpm_thread_open_done(TpmThread *t);
int tpm_thread_start(TpmThread *t);
/* Readable when a command handed over is done; -1 offline. */
int tpm_thread_done_fd(const TpmThread *t);

/* Runs a command on the calling thread, which must own libtpms (the TPM
 * thread is idle or there is none). Returns what tpm_instance_process_view()
 * returned; the response is libtpms' until the next command. */
int tpm_thread_run(TpmThread *t, const uint8_t *cmd, size_t len, uint8_t locality, const uint8_t **ret_resp,
                   size_t *ret_n);
/* PageServerOps.run: a quick command runs here, any other is handed to the
 * thread (PAGE_SERVER_PENDING). */
int tpm_thread_page_run(TpmThread *t, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                        const uint8_t **ret_resp, size_t *ret_len);
/* PageServerOps.cancel, from the I/O thread. */
void tpm_thread_cancel(TpmThread *t);
/* The result of a command handed over, once its done event came: false if
 * there is none (yet). */
bool tpm_thread_take_result(TpmThread *t, int *ret_r, const uint8_t **ret_resp, size_t *ret_len);

/* True once a state write found the vTPM's lock on the shared storage lost
 * (statestore -ENOLCK): no write of this process can succeed again, so every
 * command is answered with TPM failure, without recovery attempts, until
 * vtpmd replaces the worker (a new one locks again, or finds that another
 * host owns the vTPM now). */
bool tpm_thread_lock_lost(TpmThread *t);

/* Joins the thread (no command in flight); libtpms is the caller's after. */
void tpm_thread_stop(TpmThread *t);
/* After stop: an orderly TPM shutdown, so the next Startup does not count a
 * dictionary-attack failure (libtpms writes permall for it). */
void tpm_thread_shutdown(TpmThread *t);
/* While the thread is not running (before start, after stop): the instance,
 * or NULL if it is in failure mode (nothing worth keeping: the next start is
 * a power-on from permall). */
TpmInstance *tpm_thread_instance(const TpmThread *t);
