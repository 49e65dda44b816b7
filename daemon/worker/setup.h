/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The worker's set-up, everything privileged before the first guest byte is
 * read, in this order: the platform, the vTPM's state (worker-state.h), the
 * guest's grant mapped and event channel bound (both handles restricted to
 * this guest first), libtpms and the TPM thread (tpm-thread.h), the page
 * server (page-server.h) over the mapped page, then confinement
 * (lib/confine.h); from there on the worker holds only what confinement
 * leaves. Offline (manufacturing) there is no page, event channel or thread.
 *
 * The Setup owns what it built and hands it out to the I/O thread: the page
 * server, the TPM thread, the state, and the event channel's side of the data
 * path (pending -> unmask -> look at the page, and notify).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ipc.h"
#include "page-server.h"
#include "tpm-thread.h"
#include "worker-state.h"

typedef struct Setup Setup;

/* What FAILED tells the supervisor. */
typedef struct SetupFailure {
        IpcStage stage;
        int error;   /* negative errno */
        bool logged; /* the specific reason is logged already */
} SetupFailure;

/* start is borrowed and must outlive the Setup (its data key is wiped by
 * setup_run()); STATE messages go to ipc_fd. Takes state_fd (-1 without
 * DURABLE) whatever the result. */
int setup_new(IpcStart *start, int ipc_fd, int state_fd, Setup **ret);
/* Unmaps, unbinds and closes everything, after joining the TPM thread; accepts NULL. */
Setup *setup_free(Setup *s);

/* Returns 0, or a negative errno and what failed in *ret_failure. The
 * caller tells the supervisor before freeing the Setup. */
int setup_run(Setup *s, SetupFailure *ret_failure);

PageServer *setup_server(Setup *s); /* NULL offline */
TpmThread *setup_tpm(Setup *s);
WorkerState *setup_state(Setup *s);
uint32_t setup_local_port(const Setup *s);

/* The event channel: pollable fd, and what to do once it is readable
 * (counted in *events). Returns 0 or a negative errno if it failed. */
int setup_event_fd(Setup *s);
int setup_on_event(Setup *s, uint64_t *events);
