/* SPDX-License-Identifier: BSD-3-Clause */
/* The supervisor's objects: the daemon, one Device per xenbus vtpm device, one Worker per process. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "clock.h"
#include "ipc.h"
#include "manufacture.h"
#include "ratelimit.h"
#include "tpm.h"
#include "xenbus.h"

struct xs_handle;
typedef struct Daemon Daemon;
typedef struct Device Device;
typedef struct Worker Worker;

struct Worker {
        Daemon *daemon;
        Device *device; /* NULL once the device no longer wants it */
        pid_t pid;
        int fd; /* our end of the SOCK_SEQPACKET pair */
        sd_event_source *io_source;
        sd_event_source *child_source;
        bool ready;
        bool stopping; /* we asked it to stop: its exit is expected */
        bool restored; /* started with RESTORE_VOLATILE */
        char uuid[IPC_UUID_LEN];
        uint32_t uid; /* 0: runs as vtpmd's uid */
        Worker *next;
};

struct Device {
        Daemon *daemon;
        uint32_t domid;
        uint32_t devid;
        char be_path[128];
        char fe_path[128]; /* what the `frontend` key must say */
        char fe_token[64];
        char config_error[256]; /* text of view.config_error */
        bool fe_watched;
        char uuid[IPC_UUID_LEN]; /* empty until read */
        DevMachine machine;
        DevView view;
        Worker *worker;
        sd_event_source *timer_source;   /* machine timer */
        sd_event_source *restart_source; /* crash back-off */
        unsigned crashes;                /* within the current window */
        unsigned busy_retries;           /* state directory still locked by a previous worker */
        bool spawn_waiting;              /* start once the previous worker of this vTPM has exited */
        bool resume_pending;             /* next worker resumes from the volatile state just saved */
        uint64_t crash_window_start_ns;
        IpcStats stats;
        RateLimit log_limit;
        Device *next;
};

struct Daemon {
        sd_event *event;
        struct xs_handle *xs;
        sd_event_source *xs_source;
        char *platform_spec; /* handed to workers */
        uint32_t self_domid;
        char be_root[64]; /* /local/domain/<self>/backend/vtpm */
        TpmFamily default_family;
        char *worker_path;
        uint64_t initwait_dwell_ns;
        bool trace;
        bool shutting_down;
        bool auto_create;                /* create state for unknown vTPM UUIDs */
        struct Control *control;         /* control.h */
        struct VtpmState *state;
        ManufactureContext manufacture;
        Device *devices;
        Worker *workers;
        uint32_t worker_id_first, worker_id_last; /* 0: workers keep vtpmd's uid (WorkerIDs=) */
        uint64_t worker_memory_max;
        bool worker_fork_server;             /* WorkerSpawn=fork-server (spawn.h) */
        int fork_server_fd;                  /* -1: none running */
        pid_t fork_server_pid;               /* 0: none to wait for */
        sd_event_source *fork_server_source; /* its exit */
        uint64_t fork_server_retry_ns;       /* no new one before (CLOCK_MONOTONIC) */
        unsigned n_devices;
};

/* vtpmd.c: a new vtpmd-worker, from the fork server if WorkerSpawn=fork-server
 * and it works, else by exec; as spawn_worker() (spawn.h). */
int daemon_spawn_worker(Daemon *d, pid_t *ret_pid, int *ret_fd);

/* device.c */
void device_refresh(Daemon *d, uint32_t domid, uint32_t devid, DevEvent ev);
void device_handle_watch(Daemon *d, const char *path, const char *token);
void device_scan_all(Daemon *d);
void device_domains_released(Daemon *d);
Device *device_free(Device *dev);
void devices_release_all(Daemon *d); /* at exit: frees, touches nothing outside */
unsigned daemon_count_phase(Daemon *d, DevPhase p);
void device_request_stats(Device *dev);
void device_fail(Device *dev, const char *why);

/* worker spawning and supervision (device.c) */
#define WORKER_GID(d) ((d)->worker_id_first)
#define WORKER_UID_MANUFACTURE(d) ((d)->worker_id_first ? (d)->worker_id_first + 1 : 0)
void workers_stop_all(Daemon *d, IpcStopMode mode);
