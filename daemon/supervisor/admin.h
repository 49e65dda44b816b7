/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The administrative operations behind the control socket (vtpmd-ctl):
 * create, list, show, destroy, export, import, reset, status, ca-cert, on top
 * of the state store (state.h, statestore.h) and the device table.
 *
 * An AdminCall is one request. admin_run() answers it by calling finish
 * exactly once, either before it returns or later from the event loop (create
 * with manufacturing, reset (a TPM clear in an offline worker), pcrread and
 * restart (waiting for the vTPM's worker), destroy
 * waiting for a worker to let go (killing it after 5 s with --force), list
 * and show waiting (at most 1 s) for the workers' figures); after finish the
 * call belongs to its owner again and admin never touches it. Every error
 * leaves the state on disk as it was.
 */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "ctl.h"

struct json_object;
typedef struct Devices Devices;
typedef struct ManufactureContext ManufactureContext;
typedef struct VtpmState VtpmState;
typedef struct VtpmdConfig VtpmdConfig;
typedef struct Workers Workers;
typedef struct AdminCall AdminCall;

/* What the operations work on; all borrowed from the daemon. */
typedef struct AdminContext {
        sd_event *event;
        const VtpmdConfig *config; /* DefaultTPM=, AutoCreate=, WorkerSpawn= */
        VtpmState *state;
        Devices *devices;
        Workers *workers;
        const ManufactureContext *manufacture;
} AdminContext;

struct AdminCall {
        const AdminContext *ctx;
        CtlRequest req;
        int fd; /* passed with the request (export: the output file; import: the input), or -1; admin closes it */
        /* list rows; the item is borrowed */
        void (*item)(AdminCall *c, struct json_object *item);
        /* error < 0: message is one line; error == 0: result (borrowed, may be NULL) */
        void (*finish)(AdminCall *c, int error, const char *message, struct json_object *result);

        /* admin's own, for calls that complete later */
        sd_event_source *timer;
        uint64_t deadline_ns;
        bool killed; /* destroy --force: the vTPM's stopping workers were killed */
        /* pcrread: the PCRs still to read, those read, and their digests */
        uint32_t pcr_todo, pcr_done;
        bool pcr_waiting; /* a TPM2_PCR_Read is with the worker */
        sd_event_source *retry_timer; /* pcrread: the next try after the worker said RETRY */
        uint8_t pcr_digests[CTL_PCR_COUNT][64];
        const char *pcr_state; /* pcrread: "attached", "suspended" or "reset" (static) */
};

void admin_run(AdminCall *c);
