/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device driver (device.h): feeds each device's events to the pure
 * state machine (protocol/xenbus.c) one at a time, from a queue, and carries
 * out the actions it answers with. Worker events that arrive while actions
 * are being carried out (a start that fails at once) wait in the queue.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "device.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

/* A device's queue holds what one step can cause: a re-read, a failure, and a start that failed at once. */
#define DEVICE_QUEUE_MAX 8u

typedef struct DeviceEvent {
        DevEvent ev;
        bool reread;              /* read the device's nodes first (else: the last view, a fresh clock) */
        unsigned gen;             /* a worker event: about this worker (device.worker_gen), else 0 */
        bool cause_logged;        /* a failure whose reason is logged already */
        bool reported;            /* a failure the worker process reported: logged once it is known to count */
        pid_t pid;
        IpcStage stage;
        int error;
        int detail_code;          /* with detail: what the error node says instead of the machine's text */
        char detail[160];
        const char *config_error; /* device_fail(): refuse the device for this reason */
} DeviceEvent;

struct Device {
        Devices *devices;
        uint32_t domid;
        uint32_t devid;
        char uuid[IPC_UUID_LEN]; /* empty until read */
        char config_error[256];  /* text of view.config_error */
        char holder_error[160];  /* text of view.holder_error */
        char name[CTL_NAME_MAX]; /* the domain's name, read once (at the first look at its backend); "" if none */
        bool name_read;
        bool handle_known;       /* the domain's handle, read with its shutdown state */
        uint8_t handle[DOMAIN_HANDLE_SIZE];
        bool fe_watched;
        DevMachine machine;
        DevView view; /* the last one read */
        Worker *worker;
        unsigned worker_gen; /* changes with worker: tells a stale worker event */
        uint64_t timer_ns;   /* the machine's timer, 0: none */
        IpcStats stats;
        bool stats_asked; /* asked the worker for its figures; they have not come yet */
        RateLimit log_limit;
        bool stepping; /* inside the queue's loop */
        bool forget;   /* freed when the loop ends */
        DeviceEvent queue[DEVICE_QUEUE_MAX];
        unsigned queue_head, queue_len;
        Device *next;
};

struct Devices {
        DevicesEnv env;
        Device *devices;
        unsigned n_devices;
        uint64_t scheduled_ns; /* the timer asked of env.schedule, 0: none */
        bool shutting_down;
};

#define dev_log(dev, level, ...) \
        log_dev(level, (dev)->domid, (dev)->devid, (dev)->uuid[0] ? (dev)->uuid : NULL, __VA_ARGS__)
#define dev_log_errno(dev, level, err, ...) \
        log_dev_errno(level, err, (dev)->domid, (dev)->devid, (dev)->uuid[0] ? (dev)->uuid : NULL, __VA_ARGS__)

/* Guest-triggerable messages go through here. */
#define dev_log_limited(dev, level, ...)                                                                    \
        do {                                                                                               \
                if (log_ratelimit(&(dev)->log_limit, "device", (dev)->domid, (dev)->devid,                 \
                                  (dev)->uuid[0] ? (dev)->uuid : NULL))                                    \
                        dev_log(dev, level, __VA_ARGS__);                                                  \
        } while (0)

static uint64_t devices_now(Devices *ds) {
        return ds->env.now(ds->env.userdata);
}

static bool phase_active(DevPhase p) {
        switch (p) {
        case DEV_INIT_WAIT:
        case DEV_CONNECTING:
        case DEV_CONNECTED:
        case DEV_CLOSING:
                return true;
        case DEV_NEW:
        case DEV_CLOSED:
        case DEV_FAILED:
        case DEV_SUSPENDED:
        case DEV_GONE:
                return false;
        }
        return false;
}

static Device *device_find(Devices *ds, uint32_t domid, uint32_t devid) {
        for (Device *dev = ds->devices; dev; dev = dev->next)
                if (dev->domid == domid && dev->devid == devid)
                        return dev;
        return NULL;
}

/* Another device whose worker has self's vTPM. */
static Device *device_find_holder(Devices *ds, Device *self) {
        for (Device *dev = ds->devices; dev; dev = dev->next)
                if (dev != self && dev->uuid[0] && streq(dev->uuid, self->uuid) && dev->worker)
                        return dev;
        return NULL;
}

/* Whether dev's domain is suspended (xl save, migration); remembers its handle. */
static bool device_domain_suspended(Device *dev) {
        const DevicesEnv *env = &dev->devices->env;
        DomainInfo info;

        if (!env->domain_info || env->domain_info(env->userdata, dev->domid, &info) < 0)
                return false;
        memcpy(dev->handle, info.handle, sizeof(dev->handle));
        dev->handle_known = true;
        return domain_info_suspended(&info);
}

/* ---- timers ---- */

static void devices_schedule(Devices *ds, uint64_t when_ns) {
        if (ds->scheduled_ns && ds->scheduled_ns <= when_ns)
                return;
        ds->scheduled_ns = when_ns;
        ds->env.schedule(ds->env.userdata, when_ns);
}

/* ---- one device ---- */

static void device_unlink(Device *dev) {
        Devices *ds = dev->devices;

        for (Device **p = &ds->devices; *p; p = &(*p)->next)
                if (*p == dev) {
                        *p = dev->next;
                        ds->n_devices--;
                        break;
                }
}

static void device_free(Device *dev) {
        Devices *ds = dev->devices;

        dev->worker = ds->env.worker_ops->stop(dev->worker, IPC_STOP_RESET);
        if (dev->fe_watched)
                xs_view_unwatch_frontend(ds->env.xs, dev->domid, dev->devid);
        device_unlink(dev);
        free(dev);
}

static void device_queue(Device *dev, const DeviceEvent *e) {
        /* Only the device's own loop and its worker add to it: more than a step can cause is a bug. */
        assert(dev->queue_len < DEVICE_QUEUE_MAX);
        dev->queue[(dev->queue_head + dev->queue_len) % DEVICE_QUEUE_MAX] = *e;
        dev->queue_len++;
}

static void device_run(Device *dev);

static void worker_ready_cb(void *userdata) {
        Device *dev = userdata;

        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_WORKER_READY, .gen = dev->worker_gen });
        device_run(dev);
}

static void worker_failed_cb(void *userdata, const WorkerFailure *f) {
        Device *dev = userdata;
        DeviceEvent e = {
                .ev = f->state ? DEV_EV_STATE_FAILED : DEV_EV_WORKER_FAILED,
                .gen = dev->worker_gen,
                .cause_logged = f->logged,
                .reported = !f->logged,
                .pid = f->pid,
                .stage = f->stage,
                .error = f->error,
                .detail_code = f->detail_code,
        };

        if (f->detail)
                snprintf(e.detail, sizeof(e.detail), "%s", f->detail);
        if (e.reported)
                /* The frontend may have closed or published a new ring while this
                 * worker tried the old one (a guest reloading its driver frees the
                 * ring before it writes Closed). Such a failure is not the device's:
                 * look at xenstore first; a worker the re-read replaced is stale. */
                device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_XENSTORE, .reread = true });
        device_queue(dev, &e);
        device_run(dev);
}

static void worker_exited_cb(void *userdata) {
        Device *dev = userdata;

        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_WORKER_EXITED, .gen = dev->worker_gen });
        device_run(dev);
}

static void worker_gave_up_cb(void *userdata) {
        Device *dev = userdata;

        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_GIVE_UP, .gen = dev->worker_gen, .cause_logged = true });
        device_run(dev);
}

static void worker_stats_cb(void *userdata, const IpcStats *stats) {
        Device *dev = userdata;

        dev->stats = *stats;
        dev->stats_asked = false;
}

static const WorkerEvents device_worker_events = {
        .ready = worker_ready_cb,
        .failed = worker_failed_cb,
        .exited = worker_exited_cb,
        .gave_up = worker_gave_up_cb,
        .stats = worker_stats_cb,
};

static void device_stop_worker(Device *dev, IpcStopMode mode) {
        if (!dev->worker)
                return;
        dev->worker = dev->devices->env.worker_ops->stop(dev->worker, mode);
        dev->worker_gen++;
}

static void device_start_worker(Device *dev, const DevActions *a) {
        const DevicesEnv *env = &dev->devices->env;
        WorkerParams p = {
                .domid = dev->domid,
                .devid = dev->devid,
                .ring_ref = a->ring_ref,
                .evtchn = a->evtchn,
                .quiet = dev->machine.quiet,
                /* A frontend resume: the next worker continues from the volatile state the old one saves. */
                .resume = a->stop_worker && a->stop_mode == IPC_STOP_SUSPEND,
        };
        int r;

        memcpy(p.uuid, dev->uuid, sizeof(p.uuid));
        (void) device_domain_suspended(dev);
        p.handle_known = dev->handle_known;
        memcpy(p.handle, dev->handle, sizeof(p.handle));
        dev->worker_gen++;
        r = env->worker_ops->start(env->worker_ctx, &p, &device_worker_events, dev, &dev->worker);
        if (r < 0) {
                dev_log_errno(dev, LOG_ERR, r, "Failed to start a worker");
                device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_WORKER_FAILED, .gen = dev->worker_gen,
                                                  .cause_logged = true, .error = r });
        }
}

static void device_suspend_vtpm(Device *dev) {
        const DevicesEnv *env = &dev->devices->env;
        StateSuspend su = {
                .usec = env->realtime_usec(env->userdata),
                .domid = dev->domid,
                .devid = dev->devid,
        };

        if (!dev->uuid[0])
                return;
        memcpy(su.handle, dev->handle, sizeof(su.handle));
        dev_log(dev, LOG_NOTICE, "Domain suspended: the vTPM's volatile state is kept for its restore or migration");
        env->worker_ops->suspend_vtpm(env->worker_ctx, dev->uuid, &su);
}

/* A migration's destination connects: the suspended source saves first (the new worker waits for it). */
static void device_take_over(Device *dev) {
        Device *holder = device_find_holder(dev->devices, dev);

        if (!holder)
                return;
        dev_log(dev, LOG_NOTICE, "Taking the vTPM over from suspended domain %u device %u", holder->domid,
                holder->devid);
        device_queue(holder, &(DeviceEvent){ .ev = DEV_EV_HANDOVER });
        device_run(holder);
}

static void device_apply(Device *dev, const DevActions *a, bool cause_logged) {
        Devices *ds = dev->devices;
        int r;

        if (a->error && !cause_logged)
                dev_log(dev, LOG_ERR, "%s", a->log ?: a->error);
        else if (a->log)
                /* Transitions follow frontend writes: a guest looping through them must not flood the log. */
                dev_log_limited(dev, LOG_INFO, "%s", a->log);

        if (a->suspend_vtpm)
                device_suspend_vtpm(dev);
        if (a->stop_worker)
                device_stop_worker(dev, a->stop_mode);
        if (a->error) {
                r = xs_view_write_error(ds->env.xs, dev->domid, dev->devid, a->error_code ?: EIO, a->error);
                if (r < 0)
                        dev_log_errno(dev, LOG_WARNING, r, "Failed to write the xenbus error node");
        }
        if (a->write_feature_v2 || a->write_state >= 0) {
                r = xs_view_write_backend(ds->env.xs, dev->domid, dev->devid, a->write_feature_v2, a->write_state);
                if (r == -ENOENT)
                        dev_log(dev, LOG_DEBUG, "Device vanished before writing state %d", a->write_state);
                else if (r < 0)
                        dev_log_errno(dev, LOG_ERR, r, "Failed to write backend state %d", a->write_state);
                else if (a->write_state >= 0)
                        dev_log(dev, LOG_DEBUG, "Backend state -> %d (%s)", a->write_state,
                                xenbus_state_to_string(a->write_state));
        }
        if (a->take_over)
                device_take_over(dev);
        if (a->start_worker && !dev->worker)
                device_start_worker(dev, a);
        if (a->timer_ns) {
                dev->timer_ns = a->timer_ns;
                devices_schedule(ds, a->timer_ns);
        }
        if (a->forget)
                dev->forget = true;
}

/* Reads the device's nodes into dev->view; false while the toolstack is still writing them. */
static bool device_read(Device *dev, bool *ret_refused) {
        Devices *ds = dev->devices;
        DevView v;
        int r;

        r = xs_view_read_device(ds->env.xs, dev->domid, dev->devid, devices_now(ds), &v, dev->uuid,
                                dev->config_error, sizeof(dev->config_error));
        if (r < 0) {
                dev_log(dev, LOG_DEBUG, "Backend keys incomplete, waiting");
                return false;
        }
        if (v.backend_present && !v.config_error) {
                Device *other = device_find_holder(ds, dev);
                if (other && device_domain_suspended(other))
                        v.holder = DEV_HOLDER_SUSPENDED;
                else if (other) {
                        snprintf(dev->holder_error, sizeof(dev->holder_error),
                                 "vTPM %s is already attached to domain %u device %u", dev->uuid, other->domid,
                                 other->devid);
                        (void) device_domain_suspended(dev);
                        if (dev->handle_known && other->handle_known &&
                            memcmp(dev->handle, other->handle, sizeof(dev->handle)) == 0) {
                                /* The same domain handle: a migration's destination, created while the source
                                 * still runs; it may take the vTPM once the source suspends, not before. */
                                v.holder = DEV_HOLDER_RUNNING;
                                v.holder_error = dev->holder_error;
                        } else {
                                /* Another domain: refused at once, before libxl sees InitWait. */
                                memcpy(dev->config_error, dev->holder_error, sizeof(dev->holder_error));
                                v.config_error = dev->config_error;
                        }
                }
        }
        if (v.backend_present && !v.config_error && ds->env.vtpm_refused && dev->uuid[0] &&
            ds->env.vtpm_refused(ds->env.userdata, dev->uuid, dev->config_error, sizeof(dev->config_error)))
                /* A migration to this host then fails in libxl, and its source keeps running. */
                v.config_error = dev->config_error;
        /* Only an end, or a first look at a Connected device (a daemon restart), asks the
         * hypervisor why the domain went: not every xenstore event. */
        if ((dev->worker && (!v.backend_present || v.online == 0 || !v.frontend_present)) ||
            (dev->machine.phase == DEV_NEW && v.be_state == XENBUS_CONNECTED))
                v.domain_suspended = device_domain_suspended(dev);
        dev->view = v;
        if (v.backend_present && !dev->name_read) {
                /* For vtpmd-ctl list and show: a domid changes at every boot, a name does not. Read once
                 * per device (a new domain is a new device), not at every list. */
                if (xs_view_read_domain_name(ds->env.xs, dev->domid, dev->name, sizeof(dev->name)) < 0)
                        dev->name[0] = '\0';
                dev->name_read = true;
        }
        if (v.backend_present && !dev->fe_watched) {
                /* The frontend dir: state, ring-ref and event-channel (resume). */
                r = xs_view_watch_frontend(ds->env.xs, dev->domid, dev->devid);
                if (r >= 0)
                        dev->fe_watched = true;
                else
                        dev_log_errno(dev, LOG_ERR, r, "Failed to watch /local/domain/%u/device/vtpm/%u", dev->domid,
                                      dev->devid);
        }
        *ret_refused = false;
        if (v.config_error && dev->machine.phase != DEV_FAILED) {
                dev_log_limited(dev, LOG_ERR, "Refusing device: %s", v.config_error);
                *ret_refused = true;
        }
        return true;
}

static bool event_is_failure(DevEvent ev) {
        switch (ev) {
        case DEV_EV_WORKER_FAILED:
        case DEV_EV_STATE_FAILED:
        case DEV_EV_GIVE_UP:
                return true;
        case DEV_EV_XENSTORE:
        case DEV_EV_TIMER:
        case DEV_EV_WORKER_READY:
        case DEV_EV_WORKER_EXITED:
        case DEV_EV_DOMAIN_GONE:
        case DEV_EV_HANDOVER:
        case DEV_EV_RELEASED:
                return false;
        }
        return false;
}

static void device_process(Device *dev, const DeviceEvent *e) {
        bool cause_logged = e->cause_logged;
        DevActions a;
        DevView v;

        if (e->gen && e->gen != dev->worker_gen) {
                if (e->reported)
                        dev_log(dev, LOG_DEBUG, "Superseded worker (pid %d) failed at %s: %s", (int) e->pid,
                                ipc_stage_to_string(e->stage), strerror(-e->error));
                return;
        }
        if (e->reread) {
                if (dev->devices->shutting_down || !device_read(dev, &cause_logged))
                        return;
        } else
                /* Worker events reuse the last view with a fresh clock. */
                dev->view.now_ns = devices_now(dev->devices);
        v = dev->view;
        if (e->config_error) {
                v.backend_present = true;
                v.config_error = e->config_error;
        }
        if (event_is_failure(e->ev)) {
                /* That worker is over: it ended, or ends by itself. */
                device_stop_worker(dev, IPC_STOP_RESET);
                if (e->reported)
                        dev_log_errno(dev, LOG_ERR, e->error, "Worker failed at %s", ipc_stage_to_string(e->stage));
        }
        dev_machine_step(&dev->machine, e->ev, &v, &a);
        if (a.error && e->detail[0]) {
                a.error = e->detail;
                a.error_code = e->detail_code;
        }
        device_apply(dev, &a, cause_logged || e->reported);
}

/* Feeds the queue to the machine, one event at a time; never re-entered. */
static void device_run(Device *dev) {
        if (dev->stepping)
                return;
        dev->stepping = true;
        while (dev->queue_len > 0 && !dev->forget) {
                DeviceEvent e = dev->queue[dev->queue_head];

                dev->queue_head = (dev->queue_head + 1) % DEVICE_QUEUE_MAX;
                dev->queue_len--;
                device_process(dev, &e);
        }
        dev->stepping = false;
        if (dev->forget)
                device_free(dev);
}

static Device *device_new(Devices *ds, uint32_t domid, uint32_t devid) {
        Device *dev = calloc(1, sizeof(*dev));

        if (!dev)
                return NULL;
        dev->devices = ds;
        dev->domid = domid;
        dev->devid = devid;
        dev->log_limit = RATELIMIT_INIT(10ull * 1000000000ull, 10);
        dev_machine_init(&dev->machine, ds->env.initwait_dwell_ns);
        dev->next = ds->devices;
        ds->devices = dev;
        ds->n_devices++;
        return dev;
}

static void devices_refresh(Devices *ds, uint32_t domid, uint32_t devid, DevEvent ev) {
        Device *dev = device_find(ds, domid, devid);

        if (ds->shutting_down)
                return;
        if (!dev) {
                if (!xs_view_backend_exists(ds->env.xs, domid, devid))
                        return;
                dev = device_new(ds, domid, devid);
                if (!dev) {
                        log_msg(LOG_ERR, "Out of memory for device %u/%u", domid, devid);
                        return;
                }
        }
        device_queue(dev, &(DeviceEvent){ .ev = ev, .reread = true });
        device_run(dev);
}

/* ---- the table ---- */

int devices_new(const DevicesEnv *env, Devices **ret) {
        Devices *ds = calloc(1, sizeof(*ds));

        if (!ds)
                return -ENOMEM;
        ds->env = *env;
        *ret = ds;
        return 0;
}

Devices *devices_free(Devices *ds) {
        if (!ds)
                return NULL;
        /* At exit: memory only. A worker still running was killed (its stop
         * timed out) or, when vtpmd fails, stops by itself once its socket
         * closes; xenstore is left as it is for the next vtpmd to pick up. */
        while (ds->devices) {
                Device *dev = ds->devices;
                ds->devices = dev->next;
                free(dev);
        }
        free(ds);
        return NULL;
}

int devices_watch(Devices *ds) {
        int r = xs_view_watch_backends(ds->env.xs);

        if (r < 0)
                return log_error_errno(r, "Failed to watch %s", xs_view_backend_root(ds->env.xs));
        return 0;
}

static void scan_one(void *userdata, uint32_t domid, uint32_t devid) {
        devices_refresh(userdata, domid, devid, DEV_EV_XENSTORE);
}

void devices_scan(Devices *ds) {
        xs_view_for_each_device(ds->env.xs, scan_one, ds);
        /* Devices whose backend dir vanished while we were not looking. */
        for (Device *dev = ds->devices, *next; dev; dev = next) {
                next = dev->next;
                devices_refresh(ds, dev->domid, dev->devid, DEV_EV_XENSTORE);
        }
}

static void devices_domains_released(Devices *ds) {
        for (Device *dev = ds->devices, *next; dev; dev = next) {
                next = dev->next;
                if (!xs_view_domain_introduced(ds->env.xs, dev->domid)) {
                        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_DOMAIN_GONE });
                        device_run(dev);
                }
        }
}

void devices_handle_watch(Devices *ds, const char *path, const char *token) {
        uint32_t domid, devid;

        switch (xs_view_parse_watch(ds->env.xs, path, token, &domid, &devid)) {
        case XS_EVENT_SCAN:
                devices_scan(ds);
                return;
        case XS_EVENT_DEVICE:
                devices_refresh(ds, domid, devid, DEV_EV_XENSTORE);
                return;
        case XS_EVENT_RELEASED:
                devices_domains_released(ds);
                return;
        case XS_EVENT_NONE:
                return;
        }
}

void devices_run_timers(Devices *ds) {
        uint64_t now = devices_now(ds), next = 0;

        ds->scheduled_ns = 0;
        for (Device *dev = ds->devices, *n; dev; dev = n) {
                n = dev->next;
                if (dev->timer_ns && dev->timer_ns <= now) {
                        dev->timer_ns = 0;
                        devices_refresh(ds, dev->domid, dev->devid, DEV_EV_TIMER);
                }
        }
        for (Device *dev = ds->devices; dev; dev = dev->next)
                if (dev->timer_ns && (!next || dev->timer_ns < next))
                        next = dev->timer_ns;
        if (next)
                devices_schedule(ds, next);
}

void devices_shutdown(Devices *ds) {
        ds->shutting_down = true;
}

unsigned devices_count(Devices *ds) {
        return ds->n_devices;
}

unsigned devices_count_phase(Devices *ds, DevPhase p) {
        unsigned n = 0;
        for (Device *dev = ds->devices; dev; dev = dev->next)
                n += dev->machine.phase == p;
        return n;
}

unsigned devices_count_attached(Devices *ds) {
        unsigned n = 0;
        for (Device *dev = ds->devices; dev; dev = dev->next)
                n += dev->worker || phase_active(dev->machine.phase);
        return n;
}

void devices_vtpm_released(void *userdata, const char *uuid) {
        Devices *ds = userdata;

        for (Device *dev = ds->devices; dev; dev = dev->next)
                if (dev->machine.close_pending && streq(dev->uuid, uuid)) {
                        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_RELEASED });
                        device_run(dev);
                        /* device_run may forget dev (and others); one device waits per vTPM. */
                        return;
                }
}

bool devices_hand_over(Devices *ds, const char *uuid, const uint8_t handle[DOMAIN_HANDLE_SIZE], const char *to) {
        for (Device *dev = ds->devices; dev; dev = dev->next) {
                if (!dev->worker || !dev->uuid[0] || !streq(dev->uuid, uuid))
                        continue;
                /* Only the suspended domain that the asking host resumes: never a running guest's vTPM. */
                if (!device_domain_suspended(dev) || memcmp(dev->handle, handle, sizeof(dev->handle)) != 0)
                        return false;
                dev_log(dev, LOG_NOTICE, "Handing the vTPM of the suspended domain over to pool host %s", to);
                device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_HANDOVER });
                device_run(dev);
                return true;
        }
        return false;
}

Device *devices_find_vtpm(Devices *ds, const char *uuid, bool *ret_attached) {
        Device *any = NULL;

        for (Device *dev = ds->devices; dev; dev = dev->next) {
                if (!dev->uuid[0] || !streq(dev->uuid, uuid))
                        continue;
                if (dev->worker || phase_active(dev->machine.phase)) {
                        *ret_attached = true;
                        return dev;
                }
                if (!any)
                        any = dev;
        }
        *ret_attached = false;
        return any;
}

uint32_t device_domid(const Device *dev) {
        return dev->domid;
}

uint32_t device_devid(const Device *dev) {
        return dev->devid;
}

const char *device_uuid(const Device *dev) {
        return dev->uuid;
}

const char *device_name(const Device *dev) {
        return dev->name[0] ? dev->name : NULL;
}

DevPhase device_phase(const Device *dev) {
        return dev->machine.phase;
}

bool device_has_worker(const Device *dev) {
        return dev->worker;
}

const IpcStats *device_stats(const Device *dev) {
        return &dev->stats;
}

void device_request_stats(Device *dev) {
        dev->stats_asked = dev->worker && dev->devices->env.worker_ops->request_stats(dev->worker) >= 0;
}

bool device_stats_pending(const Device *dev) {
        return dev->stats_asked && dev->worker;
}

unsigned devices_request_stats(Devices *ds) {
        unsigned n = 0;
        for (Device *dev = ds->devices; dev; dev = dev->next) {
                device_request_stats(dev);
                n += dev->stats_asked;
        }
        return n;
}

bool devices_stats_pending(Devices *ds) {
        for (Device *dev = ds->devices; dev; dev = dev->next)
                if (device_stats_pending(dev))
                        return true;
        return false;
}

char *device_read_error_node(Device *dev) {
        return xs_view_read_error(dev->devices->env.xs, dev->domid, dev->devid);
}

void device_fail(Device *dev, const char *why) {
        device_queue(dev, &(DeviceEvent){ .ev = DEV_EV_XENSTORE, .config_error = why });
        device_run(dev);
}
