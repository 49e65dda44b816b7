/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's side of its vTPM's durable state (IPC_START_DURABLE): the
 * state directory taken at start, the blobs libtpms starts from, the store
 * (lib/tpmstore-durable.h) that writes every change before its response
 * exists, and the report of each write to the supervisor (IPC_STATE), which
 * records the newest seq for rollback detection and the next start. Without
 * DURABLE the store is in memory and nothing is reported.
 *
 *   worker_state_load()     at start, before the guest's page: refuses any
 *                           state it cannot trust (never a silent reset)
 *   worker_state_restore()  the TPM from what was loaded, or a new one
 *   worker_state_save_volatile()  on a suspending stop
 *
 * The store is used by whichever thread runs libtpms (lib/tpmstore-durable.h
 * is not thread-safe), so are the write reports and their rate limit.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ipc.h"
#include "tpm-instance.h"

typedef struct WorkerState WorkerState;

/* Takes state_fd (-1 without DURABLE) whatever the result; reports writes on ipc_fd. */
int worker_state_new(const IpcStart *start, int ipc_fd, int state_fd, WorkerState **ret);
WorkerState *worker_state_free(WorkerState *s); /* wipes the blobs; accepts NULL */

/* DURABLE: takes the state directory, reads what the TPM will start from and
 * refuses anything it cannot trust. data_key is wiped (the store keeps the one
 * copy). Returns 0 or a negative errno for FAILED{STATE}; every failure is
 * logged here. With IPC_START_PEEK (read-only, vtpmd-ctl pcrread) the same checks, then the
 * directory is let go: nothing in it is written or removed, and the TPM runs on a store in memory. */
int worker_state_load(WorkerState *s, uint8_t data_key[IPC_DATA_KEY_SIZE]);

/* libtpms from the blobs loaded (wiped now), or a new TPM without: returns 1
 * if it resumed from the saved volatile state (whose file is removed, so a
 * crash later is a power loss rather than a second resume; kept with PEEK), else 0. On
 * failure a negative errno and in *ret_stage whether the state failed
 * (IPC_STAGE_STATE: logged, here or in the failed write's report) or the TPM
 * (IPC_STAGE_TPM: not logged). */
int worker_state_restore(WorkerState *s, TpmFamily family, TpmInstance **ret, IpcStage *ret_stage);

/* No Shutdown (the guest must see no reset): libtpms' volatile state, written
 * durably with DURABLE. Failures are logged. */
void worker_state_save_volatile(WorkerState *s, TpmInstance *tpm);

TpmStore *worker_state_store(WorkerState *s);
/* The state directory's fd (for confinement), or -1. */
int worker_state_dir_fd(const WorkerState *s);
/* Its files are fixed (statedir_fix_files): the worker may confine itself
 * without the right to create files. */
bool worker_state_files_fixed(const WorkerState *s);
/* A line about a failed state write may be logged: guests can cause them. */
bool worker_state_log_ok(WorkerState *s);
