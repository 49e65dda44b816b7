/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The workers: one vtpmd-worker process per connected device, started from
 * the fork server or by exec (lib/spawn.h), each under its own uid of
 * WorkerIDs=, handed its vTPM's state directory and data key (state.h), and
 * supervised: a crash is restarted after a back-off while the guest stays
 * connected, and given up after too many.
 *
 * A device asks for a Worker and from then on only hears what becomes of it,
 * through WorkerEvents: READY, FAILED, EXITED (restarting), GAVE_UP, and the
 * worker's figures. The Worker is the device's wish to have a worker on a
 * ring: it outlives the processes that serve it (a crash, a start that waits
 * for the vTPM's previous worker to let go of its state) until the device
 * stops it. Processes that were asked to stop are still tracked here until
 * they exit: they hold their vTPM's lock and their uid.
 *
 * The device driver reaches the workers only through WorkerOps, so that a
 * unit test can give it a fake worker without processes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "domain.h"
#include "ipc.h"
#include "statefile.h"

typedef struct sd_event sd_event;
typedef struct VtpmState VtpmState;
typedef struct VtpmdConfig VtpmdConfig;
typedef struct Workers Workers;
typedef struct Worker Worker;

typedef struct WorkerParams {
        uint32_t domid;
        uint32_t devid;
        char uuid[IPC_UUID_LEN];
        uint32_t ring_ref;
        uint32_t evtchn;
        /* Resume the vTPM's saved volatile state (a guest must not see a reset) ... */
        bool quiet;  /* ... re-attaching after a daemon restart, until READY (also across a crash) */
        bool resume; /* ... a frontend resume: the first process continues from what the previous one saved */
        /* The device's domain handle (domain UUID): a suspended vTPM resumes only into the domain it was saved from. */
        bool handle_known;
        uint8_t handle[DOMAIN_HANDLE_SIZE];
} WorkerParams;

typedef struct WorkerFailure {
        bool state;  /* the vTPM's state cannot be loaded (DEV_EV_STATE_FAILED), else the worker failed */
        bool logged; /* the reason is logged already; else the worker process reported it: */
        pid_t pid;
        IpcStage stage;
        int error;   /* negative errno */
        /* NULL, or what the xenbus error node must say instead of the device's own text, with this errno */
        const char *detail;
        int detail_code;
} WorkerFailure;

/* What becomes of a worker. Each call is the last thing the workers do with
 * it before they return to the event loop, so the owner may stop it inside.
 * A call can come from inside WorkerOps.start. After FAILED or GAVE_UP it is
 * idle until stopped. */
typedef struct WorkerEvents {
        void (*ready)(void *userdata);                           /* mapped and bound */
        void (*failed)(void *userdata, const WorkerFailure *f);  /* could not start */
        void (*exited)(void *userdata);                          /* crashed; restarted after a back-off */
        void (*gave_up)(void *userdata);                         /* crashed too often (logged); not restarted */
        void (*stats)(void *userdata, const IpcStats *stats);    /* fresh figures */
} WorkerEvents;

/* The device driver's way to the workers: workers_ops (ctx a Workers) or a test's fake. */
typedef struct WorkerOps {
        /* Starts serving p; -ENOMEM only (then no event comes). */
        int (*start)(void *ctx, const WorkerParams *p, const WorkerEvents *events, void *userdata, Worker **ret);
        /* The owner no longer wants it: a running process is told to stop (how: mode); no event after.
         * Accepts NULL; returns NULL. */
        Worker *(*stop)(Worker *w, IpcStopMode mode);
        /* Asks a running worker for its figures (they come as a stats event); < 0 if it cannot be
         * asked now (not ready), then no event comes. */
        int (*request_stats)(Worker *w);
        /* The guest of vTPM uuid suspended: the volatile state saved next (by the worker stopping with
         * IPC_STOP_SUSPEND, or already by a daemon stop) is kept for its resume (state.h). */
        void (*suspend_vtpm)(void *ctx, const char *uuid, const StateSuspend *su);
} WorkerOps;

extern const WorkerOps workers_ops;

/* The crash back-off: a restart after 100 ms, doubling to at most 5 s;
 * the 5th crash within a minute gives up. */
typedef struct WorkerBackoff {
        unsigned crashes; /* within the current window */
        uint64_t window_start_ns;
} WorkerBackoff;

#define WORKER_CRASH_WINDOW_NS (60ull * 1000000000ull)
#define WORKER_CRASH_LIMIT 5u

/* One more crash at now_ns: true with the delay before the restart, or false to give up. */
bool worker_backoff_crashed(WorkerBackoff *b, uint64_t now_ns, uint64_t *ret_delay_ns);

/* What a device whose vTPM does not exist (and AutoCreate=no) is told: "unknown vTPM U: create it with ...". */
void worker_unknown_vtpm_message(const char *uuid, char *buf, size_t size);

/* What a device of another domain is told when it wants a suspended vTPM. */
void worker_suspended_message(const char *uuid, const StateSuspend *su, char *buf, size_t size);

/* The settings come from c (WorkerIDs=, WorkerSpawn=, WorkerMemoryMax=, AutoCreate=, DefaultTPM=,
 * --trace, the resolved worker path and platform); c, state and event are borrowed. */
int workers_new(const VtpmdConfig *c, sd_event *event, VtpmState *state, Workers **ret);
/* Memory only (at exit): processes still running stop by themselves when their socket closes. */
Workers *workers_free(Workers *ws);

/* WorkerSpawn=fork-server: starts the fork server now (it loads libtpms and OpenSSL meanwhile). */
void workers_start_fork_server(Workers *ws);
/* "exec", "fork-server", or that the fork server failed (vtpmd-ctl status). */
const char *workers_spawn_mode(Workers *ws);

/* Daemon stop: every process is told to stop (mode); none is started any more. */
void workers_stop_all(Workers *ws, IpcStopMode mode);
/* SIGKILLs every process still running (a stop that timed out). */
void workers_kill_all(Workers *ws);
/* SIGKILLs the processes of the vTPM uuid that were asked to stop and still run
 * (destroy --force of a hung worker); their exit is reaped as usual. Returns how many. */
int workers_kill_vtpm(Workers *ws, const char *uuid);
/* vtpmd-ctl restart: the ready process serving uuid saves its volatile state and exits (IPC_STOP_SUSPEND),
 * and its Worker starts a new one that resumes from it (as a daemon restart does: the guest sees no reset).
 * -ENOENT: no worker serves uuid; -EAGAIN: its process is not ready (starting, or between crashes). */
int workers_restart_vtpm(Workers *ws, const char *uuid);
/* vtpmd-ctl pcrread: one TPM command (the worker takes only TPM2_PCR_Read, between two of the guest's
 * commands) to the ready process serving uuid. done is called exactly once, later, from the event
 * loop: 0 and the response, or -EIO if the process ended first; unless cancelled before. One at a time
 * per process: -EBUSY. -ENOENT: no worker serves uuid; -EAGAIN: not ready. */
typedef void (*WorkerCommandDone)(void *userdata, int error, const uint8_t *resp, size_t len);
int workers_vtpm_command(Workers *ws, const char *uuid, const uint8_t *cmd, size_t len, WorkerCommandDone done,
                         void *userdata);
/* done of the command sent for userdata is not called (its answer is dropped; the next command
 * waits for it: -EBUSY until then). */
void workers_vtpm_command_cancel(Workers *ws, void *userdata);
/* A worker of uuid has a process that is ready (mapped, bound, serving). */
bool workers_vtpm_ready(Workers *ws, const char *uuid);
/* No process left. */
/* Whether a device uses a vTPM here (its worker running, starting or waiting to
 * restart); a process still finishing its stop does not count. */
bool workers_attached(Workers *ws);
bool workers_idle(Workers *ws);
/* Called whenever a stopped process of a vTPM has exited, after its last messages were read
 * (its saved volatile state, if any, is recorded and, for a suspended vTPM, committed). */
void workers_on_released(Workers *ws, void (*cb)(void *userdata, const char *uuid), void *userdata);
/* A process of the vTPM uuid exists (running or still stopping). */
bool workers_has_vtpm(Workers *ws, const char *uuid);
