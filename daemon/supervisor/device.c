/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Devices: reading a device's xenstore nodes into a DevView, feeding the pure
 * state machine (protocol/xenbus.c), and carrying out what it asks for:
 * xenstore writes (each in a transaction that checks the node still exists,
 * so a removed device is never re-created), and the worker's lifecycle.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

#include "log.h"
#include "spawn.h"
#include "state.h"
#include "parse.h"
#include "util.h"
#include "vtpmd.h"

#define CRASH_WINDOW_NS (60ull * 1000000000ull)
#define CRASH_LIMIT 5
#define RESTART_BASE_NS (100ull * 1000000ull)
#define RESTART_MAX_NS (5ull * 1000000000ull)
#define STOP_GRACE_NS (10ull * 1000000000ull)

#define dev_log(dev, level, ...) log_dev(level, (dev)->domid, (dev)->devid, (dev)->uuid[0] ? (dev)->uuid : NULL, __VA_ARGS__)

/* Guest-triggerable messages go through here. */
static void dev_log_limited(Device *dev, int level, const char *fmt, ...) _printf_(3, 4);
static void dev_log_limited(Device *dev, int level, const char *fmt, ...) {
        unsigned suppressed;
        va_list ap;

        if (!ratelimit_below(&dev->log_limit, now_ns(), &suppressed))
                return;
        if (suppressed)
                dev_log(dev, LOG_WARNING, "%u messages suppressed", suppressed);
        va_start(ap, fmt);
        log_devv(level, dev->domid, dev->devid, dev->uuid[0] ? dev->uuid : NULL, fmt, ap);
        va_end(ap);
}

/* ---- xenstore helpers ---- */

static char *xs_read_str(Daemon *d, const char *dir, const char *key) {
        char path[256];
        unsigned len;

        snprintf(path, sizeof(path), "%s/%s", dir, key);
        return xs_read(d->xs, XBT_NULL, path, &len);
}

/* -1 when missing or not a number within [0, max]. */
static int xs_read_int(Daemon *d, const char *dir, const char *key, uint32_t max) {
        _cleanup_free_ char *s = xs_read_str(d, dir, key);
        uint32_t v;

        if (!s || parse_u32_max(s, max, &v) < 0)
                return -1;
        return (int) v;
}

static bool xs_exists(Daemon *d, const char *path) {
        unsigned len;
        _cleanup_free_ char *s = xs_read(d->xs, XBT_NULL, path, &len);
        return s != NULL;
}

/* Writes key=value under dir (and optionally the state) in one transaction that
 * first checks `dir/state` still exists. -ENOENT if the device is gone. */
static int device_write(Device *dev, bool feature_v2, int state) {
        Daemon *d = dev->daemon;
        char path[256], val[16];

        for (int attempt = 0; attempt < 16; attempt++) {
                xs_transaction_t t = xs_transaction_start(d->xs);
                unsigned len;
                char *cur;
                bool ok = true;

                if (t == XBT_NULL)
                        return negative_errno();
                snprintf(path, sizeof(path), "%s/state", dev->be_path);
                cur = xs_read(d->xs, t, path, &len);
                if (!cur) {
                        xs_transaction_end(d->xs, t, true);
                        return -ENOENT;
                }
                free(cur);
                if (feature_v2) {
                        snprintf(path, sizeof(path), "%s/feature-protocol-v2", dev->be_path);
                        ok = ok && xs_write(d->xs, t, path, "1", 1);
                }
                if (state >= 0) {
                        snprintf(path, sizeof(path), "%s/state", dev->be_path);
                        snprintf(val, sizeof(val), "%d", state);
                        ok = ok && xs_write(d->xs, t, path, val, strlen(val));
                }
                if (!ok) {
                        int r = negative_errno();
                        xs_transaction_end(d->xs, t, true);
                        return r;
                }
                if (xs_transaction_end(d->xs, t, false))
                        return 0;
                if (errno != EAGAIN)
                        return negative_errno();
        }
        return -EAGAIN;
}

/* Like Linux's xenbus_dev_fatal: <our domain>/error/<nodename>/error = "<errno> <text>". */
static void device_write_error(Device *dev, int err, const char *text) {
        Daemon *d = dev->daemon;
        char path[256], val[512];

        snprintf(path, sizeof(path), "/local/domain/%u/error/backend/vtpm/%u/%u/error", d->self_domid, dev->domid,
                 dev->devid);
        snprintf(val, sizeof(val), "%d %s", err, text);
        if (!xs_write(d->xs, XBT_NULL, path, val, strlen(val)))
                dev_log(dev, LOG_WARNING, "Failed to write error node %s: %m", path);
}

/* ---- view ---- */

static Device *device_find(Daemon *d, uint32_t domid, uint32_t devid) {
        for (Device *dev = d->devices; dev; dev = dev->next)
                if (dev->domid == domid && dev->devid == devid)
                        return dev;
        return NULL;
}

static Device *device_find_uuid_user(Daemon *d, Device *self) {
        for (Device *dev = d->devices; dev; dev = dev->next) {
                if (dev == self || !dev->uuid[0] || !streq(dev->uuid, self->uuid))
                        continue;
                switch (dev->machine.phase) {
                case DEV_INIT_WAIT:
                case DEV_CONNECTING:
                case DEV_CONNECTED:
                case DEV_CLOSING:
                        return dev;
                case DEV_NEW:
                case DEV_CLOSED:
                case DEV_FAILED:
                case DEV_GONE:
                        break;
                }
        }
        return NULL;
}

/* Returns false if the device's keys are not all written yet (not an error). */
static bool device_read_view(Device *dev, DevView *v) {
        Daemon *d = dev->daemon;
        /* Per device: dev->view keeps pointing at it after this returns. */
        char *config_error = dev->config_error;
        const size_t config_error_size = sizeof(dev->config_error);
        _cleanup_free_ char *frontend = NULL, *uuid = NULL, *proto = NULL;
        int feid;

        *v = (DevView){ .now_ns = now_ns(), .online = -1, .be_state = -1, .fe_state = -1 };

        v->be_state = xs_read_int(d, dev->be_path, "state", 255);
        if (v->be_state < 0 && !xs_exists(d, dev->be_path)) {
                v->backend_present = false;
                return true;
        }
        v->backend_present = true;
        v->online = xs_read_int(d, dev->be_path, "online", 1);

        frontend = xs_read_str(d, dev->be_path, "frontend");
        feid = xs_read_int(d, dev->be_path, "frontend-id", UINT16_MAX);
        uuid = xs_read_str(d, dev->be_path, "uuid");
        if (!frontend || !uuid || v->be_state < 0)
                return false;

        /* Trust the domid from the backend path, never the guest-writable frontend dir. */
        if (!streq(frontend, dev->fe_path)) {
                snprintf(config_error, config_error_size, "backend key frontend=\"%.64s\" is not %s", frontend,
                         dev->fe_path);
                v->config_error = config_error;
        } else if (feid < 0 || (uint32_t) feid != dev->domid) {
                snprintf(config_error, config_error_size, "backend key frontend-id does not match domain %u",
                         dev->domid);
                v->config_error = config_error;
        } else if (parse_uuid(uuid, dev->uuid) < 0) {
                snprintf(config_error, config_error_size, "backend key uuid=\"%.40s\" is not a UUID", uuid);
                v->config_error = config_error;
        } else {
                Device *other = device_find_uuid_user(d, dev);
                if (other) {
                        snprintf(config_error, config_error_size,
                                 "vTPM %s is already attached to domain %u device %u", dev->uuid, other->domid,
                                 other->devid);
                        v->config_error = config_error;
                }
        }

        v->fe_state = xs_read_int(d, dev->fe_path, "state", 255);
        v->frontend_present = v->fe_state >= 0 || xs_exists(d, dev->fe_path);
        if (v->frontend_present) {
                int ring = -1, port = -1;
                _cleanup_free_ char *r = xs_read_str(d, dev->fe_path, "ring-ref");
                _cleanup_free_ char *p = xs_read_str(d, dev->fe_path, "event-channel");
                uint32_t rv, pv;

                if (r && parse_u32(r, &rv) >= 0)
                        ring = 0;
                if (p && parse_u32(p, &pv) >= 0)
                        port = 0;
                if (ring == 0 && port == 0) {
                        v->ring_valid = true;
                        v->ring_ref = rv;
                        v->evtchn = pv;
                }
                proto = xs_read_str(d, dev->fe_path, "feature-protocol-v2");
                v->fe_protocol_v2 = proto && streq(proto, "1");
        }
        return true;
}

/* ---- workers ---- */

static void worker_unlink(Worker *w) {
        Daemon *d = w->daemon;
        for (Worker **p = &d->workers; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
}

/* One uid per running guest worker, so that workers cannot signal, trace or
 * read each other even without their seccomp filter: the lowest of the range
 * that no worker in d->workers (running, or exited and not yet reaped) has.
 * 0: no uid (WorkerIDs=no or not running as root); -EUSERS when every uid
 * of the range is in use. */
static int worker_uid_alloc(Daemon *d, uint32_t *ret) {
        if (!d->worker_id_first) {
                *ret = 0;
                return 0;
        }
        for (uint32_t uid = d->worker_id_first + 2; uid <= d->worker_id_last; uid++) {
                bool used = false;
                for (Worker *w = d->workers; w && !used; w = w->next)
                        used = w->uid == uid;
                if (!used) {
                        *ret = uid;
                        return 0;
                }
        }
        return -EUSERS;
}

static Worker *worker_free(Worker *w) {
        if (!w)
                return NULL;
        if (w->device && w->device->worker == w)
                w->device->worker = NULL;
        sd_event_source_disable_unref(w->io_source);
        sd_event_source_disable_unref(w->child_source);
        safe_close(w->fd);
        worker_unlink(w);
        free(w);
        return NULL;
}

static int worker_send(Worker *w, const IpcMsg *m) {
        uint8_t buf[IPC_MAX_PACKET];
        size_t n = ipc_encode(m, buf);

        if (send(w->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t) n)
                return negative_errno();
        return 0;
}

static void worker_stop(Worker *w, IpcStopMode mode) {
        IpcMsg m = { .type = IPC_STOP, .stop = { .mode = mode } };

        if (w->stopping)
                return;
        w->stopping = true;
        if (w->device && w->device->worker == w)
                w->device->worker = NULL;
        w->device = NULL;
        if (worker_send(w, &m) < 0)
                (void) kill(w->pid, SIGKILL);
}

void workers_stop_all(Daemon *d, IpcStopMode mode) {
        for (Worker *w = d->workers; w; w = w->next)
                worker_stop(w, mode);
}

static void device_step(Device *dev, DevEvent ev);
static void device_spawn_worker(Device *dev);
static void device_retry_busy(Device *dev);

static int restart_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Device *dev = userdata;

        dev->restart_source = sd_event_source_disable_unref(dev->restart_source);
        if (dev->machine.worker && !dev->worker && !dev->daemon->shutting_down)
                device_spawn_worker(dev);
        return 0;
}

static void device_worker_died(Device *dev, const siginfo_t *si) {
        uint64_t now = now_ns(), delay;
        char why[96];

        if (si->si_code == CLD_EXITED)
                snprintf(why, sizeof(why), "exited with status %d", si->si_status);
        else if (si->si_status == SIGSYS)
                /* The kernel's audit log has the system call's number. */
                snprintf(why, sizeof(why), "killed by its seccomp filter (SIGSYS: a system call not allowed)");
        else
                snprintf(why, sizeof(why), "killed by signal %s", strsignal(si->si_status));

        if (now - dev->crash_window_start_ns > CRASH_WINDOW_NS) {
                dev->crash_window_start_ns = now;
                dev->crashes = 0;
        }
        dev->crashes++;
        if (dev->crashes >= CRASH_LIMIT) {
                dev_log(dev, LOG_ERR, "Worker (pid %d) %s; %u crashes within %llus, giving up", (int) si->si_pid,
                        why, dev->crashes, (unsigned long long) (CRASH_WINDOW_NS / 1000000000ull));
                device_step(dev, DEV_EV_GIVE_UP);
                return;
        }
        delay = RESTART_BASE_NS << (dev->crashes - 1);
        if (delay > RESTART_MAX_NS)
                delay = RESTART_MAX_NS;
        dev_log(dev, LOG_ERR, "Worker (pid %d) %s; restarting in %llums", (int) si->si_pid, why,
                (unsigned long long) (delay / 1000000ull));
        device_step(dev, DEV_EV_WORKER_EXITED);
        if (sd_event_add_time(dev->daemon->event, &dev->restart_source, CLOCK_MONOTONIC, (now + delay) / 1000, 0,
                              restart_cb, dev) < 0)
                device_step(dev, DEV_EV_GIVE_UP);
}

static int worker_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int worker_child_cb(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Worker *w = userdata;
        Device *dev;

        Daemon *d = w->daemon;
        char uuid[IPC_UUID_LEN];

        /* The exit can be dispatched before the worker's last messages (IPC_FAILED,
         * IPC_STATE of its volatile state) are read: read them first. */
        for (int i = 0; i < 64 && w->io_source; i++)
                if (worker_io_cb(w->io_source, w->fd, EPOLLIN, w) <= 0)
                        break;
        dev = w->device;
        memcpy(uuid, w->uuid, sizeof(uuid));

        if (dev && dev->worker == w && !w->stopping) {
                dev->worker = NULL;
                w->device = NULL;
                device_worker_died(dev, si);
        } else if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_msg(LOG_WARNING, "Stopped worker (pid %d) ended with %s %d", (int) si->si_pid,
                        si->si_code == CLD_EXITED ? "status" : "signal", si->si_status);
        worker_free(w);

        /* A device waiting for this vTPM's previous worker to let go of its state. */
        for (Device *o = d->devices; o; o = o->next)
                if (o->spawn_waiting && streq(o->uuid, uuid)) {
                        o->spawn_waiting = false;
                        if (o->machine.worker && !o->worker && !d->shutting_down)
                                device_spawn_worker(o);
                        break;
                }
        return 0;
}

static int worker_io_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Worker *w = userdata;
        Device *dev = w->device;
        uint8_t buf[IPC_MAX_PACKET + 1];
        IpcMsg m;
        ssize_t n;

        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                /* EOF: the process is ending; its exit is handled by the child source. */
                w->io_source = sd_event_source_disable_unref(w->io_source);
                return 0;
        }
        if (ipc_decode(buf, (size_t) n, &m) < 0) {
                log_msg(LOG_ERR, "Worker (pid %d) sent a malformed message (%zd bytes), killing it", (int) w->pid, n);
                (void) kill(w->pid, SIGKILL);
                return 0;
        }
        if (m.type == IPC_STATE) {
                /* Also from a worker that is stopping: its volatile state is the one to resume. */
                if (m.state.error == 0) {
                        vtpm_state_record(w->daemon->state, w->uuid, (StateKind) m.state.kind, m.state.seq);
                        vtpm_state_changed(w->daemon->state);
                } else if (dev)
                        dev_log_limited(dev, LOG_ERR, "Failed to store %s state: %s; the guest's command failed, "
                                        "the previous state is intact", state_kind_to_string((StateKind) m.state.kind),
                                        strerror(-m.state.error));
                return 1;
        }
        if (m.type == IPC_READY) {
                /* The worker consumed (or, when not resuming, discarded) any saved
                 * volatile state: also a superseded one, the file is gone either way. */
                vtpm_state_volatile_consumed(w->daemon->state, w->uuid);
                vtpm_state_changed(w->daemon->state);
        }
        if (!dev || dev->worker != w)
                return 1;
        switch (m.type) {
        case IPC_READY:
                w->ready = true;
                dev_log(dev, LOG_DEBUG, "Worker (pid %d) mapped ring-ref %u and bound port %u (local %u)",
                        (int) w->pid, dev->machine.ring_ref, dev->machine.evtchn, m.ready.local_port);
                dev->busy_retries = 0;
                device_step(dev, DEV_EV_WORKER_READY);
                break;
        case IPC_FAILED: {
                Daemon *d = dev->daemon;
                uint32_t domid = dev->domid, devid = dev->devid;

                /* The frontend may have closed or published a new ring while this
                 * worker tried the old one (a guest reloading its driver frees the
                 * ring before it writes Closed). Such a failure is not the device's:
                 * look at xenstore first; a worker the refresh replaced is stale. */
                device_refresh(d, domid, devid, DEV_EV_XENSTORE);
                dev = device_find(d, domid, devid);
                if (!dev || dev->worker != w) {
                        log_msg(LOG_DEBUG, "Superseded worker (pid %d) failed at %s: %s", (int) w->pid,
                                ipc_stage_to_string(m.failed.stage), strerror(-m.failed.error));
                        break;
                }
                w->stopping = true;
                dev->worker = NULL;
                w->device = NULL;
                if (m.failed.stage == IPC_STAGE_STATE && m.failed.error == -EBUSY) {
                        /* A previous worker of this vTPM still holds its state: try again shortly. */
                        device_retry_busy(dev);
                        break;
                }
                dev_log(dev, LOG_ERR, "Worker failed at %s: %s", ipc_stage_to_string(m.failed.stage),
                        strerror(-m.failed.error));
                device_step(dev, m.failed.stage == IPC_STAGE_STATE ? DEV_EV_STATE_FAILED : DEV_EV_WORKER_FAILED);
                break;
        }
        case IPC_STATS:
                dev->stats = m.stats;
                break;
        case IPC_STOPPED:
        case IPC_START:
        case IPC_STOP:
        case IPC_STATS_REQ:
        case IPC_STATE:
        case IPC_COMMAND:
        case IPC_RESPONSE:
                break;
        }
        return 1;
}

/* START carries the vTPM's state directory as SCM_RIGHTS. */
static int worker_send_start(Worker *w, const IpcMsg *m, int dir_fd) {
        uint8_t buf[IPC_MAX_PACKET];
        size_t n = ipc_encode(m, buf);
        union {
                struct cmsghdr h;
                uint8_t raw[CMSG_SPACE(sizeof(int))];
        } control = {};
        struct iovec iov = { .iov_base = buf, .iov_len = n };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t k;

        if (dir_fd >= 0) {
                struct cmsghdr *c;
                mh.msg_control = control.raw;
                mh.msg_controllen = sizeof(control.raw);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &dir_fd, sizeof(int));
        }
        k = sendmsg(w->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        crypto_wipe(buf, sizeof(buf));
        return k == (ssize_t) n ? 0 : negative_errno();
}

static int busy_retry_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        return restart_cb(s, usec, userdata);
}

#define BUSY_RETRY_NS (50ull * 1000000ull)
#define BUSY_RETRY_MAX 200u /* 10 s */

/* The vTPM's state is still locked by another process (a previous worker
 * finishing its stop): try again shortly, for a bounded time. */
static void device_retry_busy(Device *dev) {
        if (++dev->busy_retries > BUSY_RETRY_MAX) {
                dev_log(dev, LOG_ERR, "The vTPM's state directory stays locked by another process; giving up");
                dev->busy_retries = 0;
                device_step(dev, DEV_EV_STATE_FAILED);
                return;
        }
        dev->restart_source = sd_event_source_disable_unref(dev->restart_source);
        if (sd_event_add_time(dev->daemon->event, &dev->restart_source, CLOCK_MONOTONIC,
                              (now_ns() + BUSY_RETRY_NS) / 1000, 0, busy_retry_cb, dev) < 0)
                device_step(dev, DEV_EV_STATE_FAILED);
}

static bool previous_worker_running(Daemon *d, const char *uuid) {
        for (Worker *w = d->workers; w; w = w->next)
                if (w->stopping && streq(w->uuid, uuid))
                        return true;
        return false;
}

static void device_spawn_worker(Device *dev) {
        Daemon *d = dev->daemon;
        _cleanup_close_ int fd_parent = -1;
        VtpmKeys keys = { .dir_fd = -1 };
        bool restore;
        Worker *w;
        int r;
        pid_t pid;
        IpcMsg m = { .type = IPC_START };

        if (previous_worker_running(d, dev->uuid)) {
                /* Its volatile state and its lock must be released first. */
                dev->spawn_waiting = true;
                return;
        }
        r = vtpm_state_prepare(d->state, dev->uuid, d->auto_create, d->default_family, dev->domid, dev->devid,
                               &keys);
        if (r == -EBUSY) {
                device_retry_busy(dev);
                return;
        }
        if (r == -ENOENT && !d->auto_create) {
                /* libxl invents a random UUID per boot when none is configured: never a fresh vTPM silently. */
                char why[160];
                snprintf(why, sizeof(why), "unknown vTPM %s: create it with vtpmd-ctl create --uuid %s", dev->uuid,
                         dev->uuid);
                dev_log(dev, LOG_ERR, "%s", why);
                device_step(dev, DEV_EV_STATE_FAILED);
                device_write_error(dev, ENOENT, why);
                return;
        }
        if (r < 0) {
                device_step(dev, DEV_EV_STATE_FAILED);
                return;
        }
        /* Resume from saved volatile state only when the guest must not see a
         * reset: a daemon restart re-attaching, or a frontend resume. */
        restore = keys.vol_seq != 0 && (dev->machine.quiet || dev->resume_pending);
        dev->resume_pending = false;
        if (keys.vol_seq != 0 && !restore) {
                /* A fresh power-on: the worker discards the saved volatile state
                 * before anything else, even if it then fails to map the ring. */
                vtpm_state_volatile_consumed(d->state, dev->uuid);
                vtpm_state_changed(d->state);
        }

        uint32_t uid;
        r = worker_uid_alloc(d, &uid);
        if (r < 0) {
                dev_log(dev, LOG_ERR, "No uid left for a worker in WorkerIDs=%u-%u: %s", d->worker_id_first,
                        d->worker_id_last, strerror(-r));
                vtpm_keys_done(&keys);
                device_step(dev, DEV_EV_WORKER_FAILED);
                return;
        }
        r = daemon_spawn_worker(d, &pid, &fd_parent);
        if (r < 0) {
                dev_log(dev, LOG_ERR, "Failed to start worker %s: %s", d->worker_path, strerror(-r));
                vtpm_keys_done(&keys);
                device_step(dev, DEV_EV_WORKER_FAILED);
                return;
        }

        w = calloc(1, sizeof(*w));
        if (!w) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                vtpm_keys_done(&keys);
                device_step(dev, DEV_EV_WORKER_FAILED);
                return;
        }
        *w = (Worker){ .daemon = d, .device = dev, .pid = pid, .fd = TAKE_FD(fd_parent), .restored = restore,
                       .uid = uid };
        memcpy(w->uuid, dev->uuid, sizeof(w->uuid));
        w->next = d->workers;
        d->workers = w;
        dev->worker = w;

        r = sd_event_add_child(d->event, &w->child_source, pid, WEXITED, worker_child_cb, w);
        if (r >= 0)
                r = sd_event_add_io(d->event, &w->io_source, w->fd, EPOLLIN, worker_io_cb, w);
        if (r < 0) {
                dev_log(dev, LOG_ERR, "Failed to watch worker: %s", strerror(-r));
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                worker_free(w);
                vtpm_keys_done(&keys);
                device_step(dev, DEV_EV_WORKER_FAILED);
                return;
        }

        m.start = (IpcStart){
                .domid = dev->domid,
                .devid = dev->devid,
                .ring_ref = dev->machine.ring_ref,
                .evtchn_port = dev->machine.evtchn,
                .family = keys.family,
                .flags = IPC_START_DURABLE | (d->trace ? IPC_START_TRACE : 0) |
                         (restore ? IPC_START_RESTORE_VOLATILE
                                  : (keys.family == TPM_FAMILY_2_0 ? IPC_START_TPM_STARTUP : 0)),
                .min_perm_seq = keys.min_perm_seq,
                .vol_seq = restore ? keys.vol_seq : 0,
                .uid = uid,
                .gid = uid ? WORKER_GID(d) : 0,
                .memory_max = d->worker_memory_max,
        };
        memcpy(m.start.uuid, dev->uuid, sizeof(m.start.uuid));
        memcpy(m.start.data_key, keys.data_key, sizeof(m.start.data_key));
        snprintf(m.start.platform, sizeof(m.start.platform), "%s", d->platform_spec);
        r = worker_send_start(w, &m, keys.dir_fd);
        crypto_wipe(&m, sizeof(m));
        vtpm_keys_done(&keys);
        if (r < 0) {
                dev_log(dev, LOG_ERR, "Failed to send parameters to worker: %s", strerror(-r));
                (void) kill(pid, SIGKILL);
                /* the child source reports the death and the back-off restarts it */
                return;
        }
        dev_log(dev, LOG_DEBUG, "Started worker pid %d for ring-ref %u port %u%s", (int) pid, dev->machine.ring_ref,
                dev->machine.evtchn, restore ? ", resuming saved volatile state" : "");
}

/* ---- the machine ---- */

static int device_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        Device *dev = userdata;
        dev->timer_source = sd_event_source_disable_unref(dev->timer_source);
        device_refresh(dev->daemon, dev->domid, dev->devid, DEV_EV_TIMER);
        return 0;
}

static void device_unlink(Device *dev) {
        Daemon *d = dev->daemon;
        for (Device **p = &d->devices; *p; p = &(*p)->next)
                if (*p == dev) {
                        *p = dev->next;
                        d->n_devices--;
                        break;
                }
}

/* Its memory and timers only. */
static void device_release(Device *dev) {
        sd_event_source_disable_unref(dev->timer_source);
        sd_event_source_disable_unref(dev->restart_source);
        device_unlink(dev);
        free(dev);
}

Device *device_free(Device *dev) {
        if (!dev)
                return NULL;
        if (dev->worker)
                worker_stop(dev->worker, IPC_STOP_RESET);
        if (dev->fe_watched)
                (void) xs_unwatch(dev->daemon->xs, dev->fe_path, dev->fe_token);
        device_release(dev);
        return NULL;
}

void devices_release_all(Daemon *d) {
        /* At exit: memory only. A worker still listed was killed (its stop
         * timed out) or, when vtpmd fails, stops by itself once its socket
         * closes; xenstore is left as it is for the next vtpmd to pick up. */
        while (d->workers)
                worker_free(d->workers);
        while (d->devices)
                device_release(d->devices);
}

static void device_apply(Device *dev, const DevActions *a) {
        Daemon *d = dev->daemon;
        int r;

        if (a->error)
                dev_log(dev, LOG_ERR, "%s", a->log ?: a->error);
        else if (a->log)
                /* Transitions follow frontend writes: a guest looping through them must not flood the log. */
                dev_log_limited(dev, LOG_INFO, "%s", a->log);

        if (a->stop_worker) {
                dev->restart_source = sd_event_source_disable_unref(dev->restart_source);
                dev->spawn_waiting = false;
                if (dev->worker)
                        worker_stop(dev->worker, a->stop_mode);
                /* A frontend resume: the next worker continues from the volatile state the old one saves. */
                dev->resume_pending = a->start_worker && a->stop_mode == IPC_STOP_SUSPEND;
        }
        if (a->error)
                device_write_error(dev, a->error_code ?: EIO, a->error);
        if (a->write_feature_v2 || a->write_state >= 0) {
                r = device_write(dev, a->write_feature_v2, a->write_state);
                if (r == -ENOENT)
                        dev_log(dev, LOG_DEBUG, "Device vanished before writing state %d", a->write_state);
                else if (r < 0)
                        dev_log(dev, LOG_ERR, "Failed to write backend state %d: %s", a->write_state, strerror(-r));
                else if (a->write_state >= 0)
                        dev_log(dev, LOG_DEBUG, "Backend state -> %d (%s)", a->write_state,
                                xenbus_state_to_string(a->write_state));
        }
        if (a->start_worker) {
                dev->crashes = 0;
                if (!dev->worker)
                        device_spawn_worker(dev);
        }
        if (a->timer_ns) {
                dev->timer_source = sd_event_source_disable_unref(dev->timer_source);
                r = sd_event_add_time(d->event, &dev->timer_source, CLOCK_MONOTONIC, a->timer_ns / 1000, 0,
                                      device_timer_cb, dev);
                if (r < 0)
                        dev_log(dev, LOG_ERR, "Failed to arm timer: %s", strerror(-r));
        }
        if (a->forget)
                device_free(dev);
}

static void device_step(Device *dev, DevEvent ev) {
        DevActions a;

        /* Worker events reuse the last view with a fresh clock; xenstore events re-read. */
        dev->view.now_ns = now_ns();
        dev_machine_step(&dev->machine, ev, &dev->view, &a);
        device_apply(dev, &a);
}

static Device *device_new(Daemon *d, uint32_t domid, uint32_t devid) {
        Device *dev = calloc(1, sizeof(*dev));

        if (!dev)
                return NULL;
        dev->daemon = d;
        dev->domid = domid;
        dev->devid = devid;
        snprintf(dev->be_path, sizeof(dev->be_path), "%s/%u/%u", d->be_root, domid, devid);
        snprintf(dev->fe_path, sizeof(dev->fe_path), "/local/domain/%u/device/vtpm/%u", domid, devid);
        snprintf(dev->fe_token, sizeof(dev->fe_token), "fe/%u/%u", domid, devid);
        dev->log_limit = RATELIMIT_INIT(10ull * 1000000000ull, 10);
        dev_machine_init(&dev->machine, d->initwait_dwell_ns);
        dev->next = d->devices;
        d->devices = dev;
        d->n_devices++;
        return dev;
}

void device_refresh(Daemon *d, uint32_t domid, uint32_t devid, DevEvent ev) {
        Device *dev = device_find(d, domid, devid);
        DevView v;
        DevActions a;

        if (d->shutting_down)
                return;
        if (!dev) {
                char path[160];
                snprintf(path, sizeof(path), "%s/%u/%u", d->be_root, domid, devid);
                if (!xs_exists(d, path))
                        return;
                dev = device_new(d, domid, devid);
                if (!dev) {
                        log_msg(LOG_ERR, "Out of memory for device %u/%u", domid, devid);
                        return;
                }
        }
        if (!device_read_view(dev, &v)) {
                dev_log(dev, LOG_DEBUG, "Backend keys incomplete, waiting");
                return;
        }
        dev->view = v;
        if (v.backend_present && !dev->fe_watched) {
                /* Watch the frontend dir: state, ring-ref and event-channel (resume). */
                if (xs_watch(d->xs, dev->fe_path, dev->fe_token))
                        dev->fe_watched = true;
                else
                        dev_log(dev, LOG_ERR, "Failed to watch %s: %m", dev->fe_path);
        }
        if (v.config_error && dev->machine.phase != DEV_FAILED)
                dev_log_limited(dev, LOG_ERR, "Refusing device: %s", v.config_error);
        dev_machine_step(&dev->machine, ev, &v, &a);
        device_apply(dev, &a);
}

static int parse_dev_path(Daemon *d, const char *path, uint32_t *domid, uint32_t *devid) {
        size_t n = strlen(d->be_root);
        char buf[64];
        const char *p, *slash;

        if (strncmp(path, d->be_root, n) != 0 || path[n] != '/')
                return -EINVAL;
        p = path + n + 1;
        slash = strchr(p, '/');
        if (!slash || (size_t) (slash - p) >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, p, (size_t) (slash - p));
        buf[slash - p] = '\0';
        if (parse_u32_max(buf, UINT16_MAX, domid) < 0)
                return -EINVAL;
        p = slash + 1;
        slash = strchr(p, '/');
        n = slash ? (size_t) (slash - p) : strlen(p);
        if (n == 0 || n >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return parse_u32_max(buf, INT32_MAX, devid);
}

void device_scan_all(Daemon *d) {
        unsigned ndom = 0;
        _cleanup_free_ char **doms = xs_directory(d->xs, XBT_NULL, d->be_root, &ndom);

        for (unsigned i = 0; doms && i < ndom; i++) {
                char path[160];
                unsigned ndev = 0;
                uint32_t domid;
                _cleanup_free_ char **devs = NULL;

                if (parse_u32_max(doms[i], UINT16_MAX, &domid) < 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", d->be_root, doms[i]);
                devs = xs_directory(d->xs, XBT_NULL, path, &ndev);
                for (unsigned j = 0; devs && j < ndev; j++) {
                        uint32_t devid;
                        if (parse_u32_max(devs[j], INT32_MAX, &devid) >= 0)
                                device_refresh(d, domid, devid, DEV_EV_XENSTORE);
                }
        }
        /* Devices whose backend dir vanished while we were not looking. */
        for (Device *dev = d->devices, *next; dev; dev = next) {
                next = dev->next;
                device_refresh(d, dev->domid, dev->devid, DEV_EV_XENSTORE);
        }
}

void device_domains_released(Daemon *d) {
        for (Device *dev = d->devices, *next; dev; dev = next) {
                next = dev->next;
                if (!xs_is_domain_introduced(d->xs, dev->domid)) {
                        dev->view.now_ns = now_ns();
                        device_step(dev, DEV_EV_DOMAIN_GONE);
                }
        }
}

void device_handle_watch(Daemon *d, const char *path, const char *token) {
        uint32_t domid, devid;

        if (streq(token, "be")) {
                if (streq(path, d->be_root) || parse_dev_path(d, path, &domid, &devid) < 0) {
                        /* The root itself (first fire, or removed/re-created): look at everything. */
                        device_scan_all(d);
                        return;
                }
                device_refresh(d, domid, devid, DEV_EV_XENSTORE);
        } else if (streq(token, "rel"))
                device_domains_released(d);
        else if (sscanf(token, "fe/%" SCNu32 "/%" SCNu32, &domid, &devid) == 2)
                device_refresh(d, domid, devid, DEV_EV_XENSTORE);
}

unsigned daemon_count_phase(Daemon *d, DevPhase p) {
        unsigned n = 0;
        for (Device *dev = d->devices; dev; dev = dev->next)
                n += dev->machine.phase == p;
        return n;
}

/* For vtpmd-ctl: ask the worker for fresh figures (they arrive as IPC_STATS). */
void device_request_stats(Device *dev) {
        IpcMsg m = { .type = IPC_STATS_REQ };

        if (dev->worker && dev->worker->ready)
                (void) worker_send(dev->worker, &m);
}

/* For vtpmd-ctl destroy --force: close the device like a failed one (error
 * node, backend Closed, worker stopped). */
void device_fail(Device *dev, const char *why) {
        DevView v = dev->view;
        DevActions a;

        v.now_ns = now_ns();
        v.backend_present = true;
        v.config_error = why;
        dev_machine_step(&dev->machine, DEV_EV_XENSTORE, &v, &a);
        device_apply(dev, &a);
}
