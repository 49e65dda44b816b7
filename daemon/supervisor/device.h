/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device driver: one Device per vtpm device under our backend dir, each
 * carrying out what the pure xenbus state machine (protocol/xenbus.h) asks
 * for, through the xenstore view (xs-view.h) and the workers (workers.h),
 * and nothing else.
 *
 * The machine is never re-entered: what happens while a device applies the
 * machine's actions (a worker that fails to start at once) is queued and
 * fed to the machine after the actions are done, in order.
 *
 * It runs on a DevicesEnv: the daemon's (libxenstore, vtpmd-worker
 * processes, CLOCK_MONOTONIC and an sd-event timer) or a unit test's fakes.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "domain.h"
#include "ipc.h"
#include "workers.h"
#include "xenbus.h"
#include "xs-view.h"

typedef struct Devices Devices;
typedef struct Device Device;

typedef struct DevicesEnv {
        XsView *xs;
        const WorkerOps *worker_ops;
        void *worker_ctx;
        uint64_t initwait_dwell_ns;
        /* CLOCK_MONOTONIC, in ns */
        uint64_t (*now)(void *userdata);
        /* Call devices_run_timers() at when_ns (CLOCK_MONOTONIC), instead of at an earlier request. */
        void (*schedule)(void *userdata, uint64_t when_ns);
        /* What the hypervisor says about a domain (domain.h); NULL: nothing (no domain is suspended). */
        int (*domain_info)(void *userdata, uint32_t domid, DomainInfo *ret);
        /* CLOCK_REALTIME in µs (the suspend's time) */
        uint64_t (*realtime_usec)(void *userdata);
        /* Whether this host refuses the vTPM uuid outright (a pool it is not a member of): then
         * true with why, and the device is refused before libxl sees InitWait. NULL: never. */
        bool (*vtpm_refused)(void *userdata, const char *uuid, char *why, size_t size);
        void *userdata;
} DevicesEnv;

/* env is copied; what it points to is borrowed. */
int devices_new(const DevicesEnv *env, Devices **ret);
/* Memory only (at exit): no worker is stopped, nothing is written. */
Devices *devices_free(Devices *ds);

/* Watches the backend root and @releaseDomain. Logs on failure. */
int devices_watch(Devices *ds);
/* Looks at every device (at start; the watch's first fire does it again, harmlessly). */
void devices_scan(Devices *ds);
/* A watch event (xs-view.h). */
void devices_handle_watch(Devices *ds, const char *path, const char *token);
/* The time asked for with DevicesEnv.schedule has come. */
void devices_run_timers(Devices *ds);
/* Daemon stop: from now on xenstore changes are not followed (no xenbus state moves). */
void devices_shutdown(Devices *ds);

unsigned devices_count(Devices *ds);
unsigned devices_count_phase(Devices *ds, DevPhase p);
/* Devices that use their vTPM: a worker, or a phase between InitWait and Closing. */
unsigned devices_count_attached(Devices *ds);
/* Another pool host's device asks for uuid for the domain handle: if a local device's worker
 * has it and that device's domain is suspended with the same handle, the worker saves and
 * lets go (as for a same-host migration). True then. to names the host for the log. */
bool devices_hand_over(Devices *ds, const char *uuid, const uint8_t handle[DOMAIN_HANDLE_SIZE], const char *to);
/* A stopped worker of the vTPM uuid has exited (workers_on_released): devices of it waiting to close go on. */
void devices_vtpm_released(void *userdata, const char *uuid);
/* The device using the vTPM uuid (*ret_attached), else any device naming it, else NULL. */
Device *devices_find_vtpm(Devices *ds, const char *uuid, bool *ret_attached);

uint32_t device_domid(const Device *dev);
uint32_t device_devid(const Device *dev);
const char *device_uuid(const Device *dev); /* "" until read */
/* The domain's name (xenstore, read when the device is first seen; ctl_guest_name_valid), or NULL. */
const char *device_name(const Device *dev);
DevPhase device_phase(const Device *dev);
bool device_has_worker(const Device *dev);
/* The worker's last figures (zero before any). */
const IpcStats *device_stats(const Device *dev);
/* Asks the worker for fresh figures (they arrive for the next look) ... */
void device_request_stats(Device *dev);
/* ... until they have come (or the worker went), this is true. */
bool device_stats_pending(const Device *dev);
/* Every device's worker asked (vtpmd-ctl list); returns how many were. */
unsigned devices_request_stats(Devices *ds);
bool devices_stats_pending(Devices *ds);
/* The device's xenbus error node (malloc'ed), or NULL. */
char *device_read_error_node(Device *dev);
/* vtpmd-ctl destroy --force: closes the device like a failed one (error node, backend Closed, worker stopped). */
void device_fail(Device *dev, const char *why);
