/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The backend's xenbus state machine for one vtpm device, as a pure function.
 *
 * The daemon reads the device's xenstore nodes into a DevView and calls
 * dev_machine_step() with what happened; the machine answers with the writes
 * and worker operations to perform. It is level-triggered: every step looks
 * at the whole view, so coalesced or reordered watch events do no harm.
 *
 * Sources: research xen-protocol.md §2.2 (Linux frontend), §3 (libxl),
 * §8 items 1-3 and 8 (derived checklist).
 *
 *   discovered (be=1)   -> write feature-protocol-v2=1, be=2 (InitWait)
 *   fe=3, or fe=4 with a ring, after InitWait has been visible for
 *   `initwait_dwell_ns` (libxl must be able to read exactly 2) -> start worker
 *   worker ready        -> be=4 (Connected)
 *   fe=3/4 with a changed ring-ref/event-channel while connected -> restart
 *                          the worker on the new ring (resume), be stays 4
 *   fe=5                -> be=5
 *   fe=6 (or 1)         -> stop worker; be=2 if online=1, else be=6
 *   online=0 (libxl detach/destroy writes online=0, be=5) -> stop, be=6
 *   frontend dir gone   -> stop, be=6
 *   backend dir gone or domain released -> stop, forget (no writes)
 *   daemon restart with be=4 and fe=4   -> start worker quietly, no writes
 *
 * A guest's end is not always an end: when the device goes (online=0,
 * frontend or backend dir gone) while its domain is shut down with reason
 * suspend (xl save, xendomains, xl migrate), the worker saves the volatile
 * state and the vTPM is marked suspended instead of reset. Its next device
 * (restore, migrate-in: same vTPM uuid) resumes it. A device whose frontend
 * connects while another device's worker holds the vTPM takes it over if
 * that device's domain is suspended (a migration's destination: the source
 * saves, then the destination resumes), and is refused otherwise.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "ipc.h"

/* A worker that cannot map or bind the ring is tried once more after this
 * long: a frontend reloading its driver frees the ring and may publish one
 * with the same numbers (grant refs and ports are reused) before the failure
 * is known. A second failure on the ring fails the device. */
#define XENBUS_MAP_RETRY_NS (100ull * 1000000ull)

/* xl save takes backend state 6 as "the device let go" and then destroys the
 * domain: a suspended domain's device answers 6 once its worker has exited
 * with the volatile state recorded (DEV_EV_RELEASED), or after this long
 * whatever happened (libxl's own timeout is 10 s). */
#define XENBUS_SAVE_WAIT_NS (5000ull * 1000000ull)

typedef enum XenbusState {
        XENBUS_UNKNOWN = 0,
        XENBUS_INITIALISING = 1,
        XENBUS_INITWAIT = 2,
        XENBUS_INITIALISED = 3,
        XENBUS_CONNECTED = 4,
        XENBUS_CLOSING = 5,
        XENBUS_CLOSED = 6,
        XENBUS_RECONFIGURING = 7,
        XENBUS_RECONFIGURED = 8,
} XenbusState;

typedef enum DevPhase {
        DEV_NEW,        /* discovered, nothing written yet */
        DEV_INIT_WAIT,  /* be=2, waiting for the frontend's ring */
        DEV_CONNECTING, /* worker started, waiting for it to map and bind */
        DEV_CONNECTED,  /* be=4 */
        DEV_CLOSING,    /* be=5, waiting for the frontend to close */
        DEV_CLOSED,     /* be=6 (or left at 2 after a frontend close with online=0) */
        DEV_FAILED,     /* refused or gave up: error node written, be=6 */
        DEV_SUSPENDED,  /* its domain is suspended and its vTPM saved (or taken over): no worker, no writes */
        DEV_GONE,       /* backend dir or domain gone: forget the device */
} DevPhase;

typedef enum DevEvent {
        DEV_EV_XENSTORE,      /* something under the device's nodes changed (or first look) */
        DEV_EV_TIMER,         /* the timer the machine asked for expired */
        DEV_EV_WORKER_READY,  /* worker reported mapped + bound */
        DEV_EV_WORKER_FAILED, /* worker could not start (map/bind/TPM failed) */
        DEV_EV_WORKER_EXITED, /* worker died unexpectedly; the daemon restarts it itself */
        DEV_EV_GIVE_UP,       /* the daemon gave up restarting the worker */
        DEV_EV_STATE_FAILED,  /* the vTPM's state cannot be loaded (missing key, corrupt, rolled back) */
        DEV_EV_DOMAIN_GONE,   /* @releaseDomain and the domain is no longer introduced */
        DEV_EV_HANDOVER,      /* another device (a migration's destination) takes this device's vTPM */
        DEV_EV_RELEASED,      /* a stopped worker of this device's vTPM has exited; what it saved is recorded */
} DevEvent;

typedef enum DevHolder {
        DEV_HOLDER_NONE,      /* no other device has a worker on this vTPM */
        DEV_HOLDER_RUNNING,   /* another device's worker serves it, and its domain runs */
        DEV_HOLDER_SUSPENDED, /* another device's worker has it, and its domain is suspended */
} DevHolder;

/* What the daemon read, already parsed and validated. Missing or malformed
 * numeric nodes are -1. */
typedef struct DevView {
        bool backend_present;  /* the backend dir exists */
        int online;            /* backend `online`: 0, 1, or -1 */
        int be_state;          /* backend `state` as read */
        bool frontend_present; /* the frontend dir exists (state readable) */
        int fe_state;          /* frontend `state` */
        bool ring_valid;       /* ring-ref and event-channel present and parsed */
        uint32_t ring_ref;
        uint32_t evtchn;
        bool fe_protocol_v2;   /* frontend feature-protocol-v2 == "1" */
        const char *config_error; /* NULL, or why the backend keys are unacceptable */
        bool domain_suspended; /* the domain has shut down with reason suspend (read while the device ends) */
        DevHolder holder;      /* who else uses this device's vTPM */
        const char *holder_error; /* with DEV_HOLDER_RUNNING: the refusal's text */
        uint64_t now_ns;       /* CLOCK_MONOTONIC */
} DevView;

typedef struct DevActions {
        int write_state;         /* -1: none; else write this backend state (only if the dir still exists) */
        bool write_feature_v2;   /* write backend feature-protocol-v2 = 1 */
        const char *error;       /* non-NULL: write the xenbus error node with this text ... */
        int error_code;          /* ... and this (positive) errno, like Linux's xenbus_dev_fatal */
        bool stop_worker;        /* stop the running worker first ... */
        IpcStopMode stop_mode;   /* ... like this */
        bool start_worker;       /* then start a worker on ring_ref/evtchn */
        uint32_t ring_ref;
        uint32_t evtchn;
        uint64_t timer_ns;       /* non-zero: deliver DEV_EV_TIMER at this CLOCK_MONOTONIC time */
        bool forget;             /* drop the device object */
        bool suspend_vtpm;       /* the domain suspended: mark the vTPM suspended (its worker, if any, stops with SUSPEND) */
        bool take_over;          /* the starting worker takes the vTPM from the suspended holder (DEV_EV_HANDOVER there) */
        const char *log;         /* a one-line description of the transition, or NULL */
} DevActions;

typedef struct DevMachine {
        DevPhase phase;
        bool worker;            /* a worker exists (starting or running) */
        bool quiet;             /* re-attaching after a daemon restart: do not rewrite be=4 */
        bool retried;           /* a worker failed to map or bind this ring once already */
        bool close_pending;     /* be=6 waits for the suspended domain's save (DEV_EV_RELEASED) */
        uint32_t ring_ref;      /* the ring the worker serves */
        uint32_t evtchn;
        uint64_t initwait_since_ns;
        uint64_t initwait_dwell_ns;
} DevMachine;

void dev_machine_init(DevMachine *m, uint64_t initwait_dwell_ns);
void dev_machine_step(DevMachine *m, DevEvent ev, const DevView *v, DevActions *ret);

const char *dev_phase_to_string(DevPhase p);
const char *xenbus_state_to_string(int s);
