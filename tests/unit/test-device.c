/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The supervisor's device driver (daemon/supervisor/device.c) driven from
 * xenstore changes to Connected and back, without processes: the real
 * xenstore view on an in-memory xenstore, a fake worker, a fake clock.
 *
 * Each scenario is a table of steps: what the toolstack, the guest or the
 * worker does, then what the toolstack and the guest would see (the
 * backend's xenstore writes, in order) and what the worker is told, as one
 * log, and the device's phase.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "log.h"
#include "test.h"
#include "util.h"
#include "workers.h"
#include "xs-view.h"

#define DOMID 3u
#define UUID "0b7e3a4c-1f2d-4e5a-9b6c-7d8e9f0a1b2c"
#define BE "/local/domain/0/backend/vtpm/3/0"
#define FE "/local/domain/3/device/vtpm/0"
#define ERR_NODE "/local/domain/0/error/backend/vtpm/3/0/error"
#define DWELL_NS (100ull * 1000000ull)
#define MS (1000000ull)

/* What the test saw, one line per write or worker order. */
static char seen[8192];

static void see(const char *fmt, ...) _printf_(1, 2);
static void see(const char *fmt, ...) {
        size_t n = strlen(seen);
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(seen + n, sizeof(seen) - n, fmt, ap);
        va_end(ap);
        n = strlen(seen);
        if (n + 1 < sizeof(seen))
                strcat(seen, "\n");
}

/* The backend's, frontend's and error node's paths, as the log names them. */
static const char *short_path(const char *path) {
        static char buf[256];

        if (strncmp(path, BE "/", strlen(BE "/")) == 0)
                snprintf(buf, sizeof(buf), "be/%s", path + strlen(BE "/"));
        else if (strncmp(path, FE "/", strlen(FE "/")) == 0)
                snprintf(buf, sizeof(buf), "fe/%s", path + strlen(FE "/"));
        else if (streq(path, ERR_NODE))
                snprintf(buf, sizeof(buf), "error");
        else
                snprintf(buf, sizeof(buf), "%s", path);
        return buf;
}

/* ---- an in-memory xenstore ---- */

#define MAX_NODES 64
#define MAX_WATCHES 8
#define MAX_EVENTS 64

static struct {
        char path[MAX_NODES][160];
        char value[MAX_NODES][512];
        unsigned n;
        struct {
                char path[160], token[64];
        } watch[MAX_WATCHES], event[MAX_EVENTS];
        unsigned n_watches, n_events;
        bool dead; /* domain DOMID was destroyed */
        bool suspended; /* domain DOMID shut down with reason suspend (xl save, xl migrate) */
} xs;

static bool below(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static void fire(const char *path, const char *token) {
        char p[sizeof(xs.event[0].path)], t[sizeof(xs.event[0].token)];

        /* Copied first: path and token may be the watch's own. */
        snprintf(p, sizeof(p), "%s", path);
        snprintf(t, sizeof(t), "%s", token);
        if (xs.n_events < MAX_EVENTS) {
                memcpy(xs.event[xs.n_events].path, p, sizeof(p));
                memcpy(xs.event[xs.n_events].token, t, sizeof(t));
                xs.n_events++;
        }
}

static void changed(const char *path) {
        for (unsigned i = 0; i < xs.n_watches; i++)
                if (below(path, xs.watch[i].path))
                        fire(path, xs.watch[i].token);
}

static int find(const char *path) {
        for (unsigned i = 0; i < xs.n; i++)
                if (streq(xs.path[i], path))
                        return (int) i;
        return -1;
}

static void set(const char *path, const char *value) {
        int i = find(path);

        if (i < 0 && xs.n < MAX_NODES) {
                i = (int) xs.n++;
                snprintf(xs.path[i], sizeof(xs.path[0]), "%s", path);
        }
        if (i >= 0)
                snprintf(xs.value[i], sizeof(xs.value[0]), "%s", value);
        changed(path);
}

static void rm(const char *dir) {
        for (unsigned i = 0; i < xs.n;)
                if (below(xs.path[i], dir)) {
                        xs.n--;
                        memcpy(xs.path[i], xs.path[xs.n], sizeof(xs.path[0]));
                        memcpy(xs.value[i], xs.value[xs.n], sizeof(xs.value[0]));
                } else
                        i++;
        changed(dir);
}

static char *fake_read(void *userdata, const char *path) {
        int i = find(path);

        if (i >= 0)
                return strdup(xs.value[i]);
        for (unsigned j = 0; j < xs.n; j++)
                if (below(xs.path[j], path))
                        return strdup(""); /* a directory */
        errno = ENOENT;
        return NULL;
}

static char **fake_directory(void *userdata, const char *path, unsigned *ret_n) {
        char names[MAX_NODES][64];
        unsigned n = 0;
        size_t len = strlen(path);
        char **v, *p;

        for (unsigned i = 0; i < xs.n; i++) {
                const char *rest = xs.path[i] + len + 1;
                size_t k;
                bool dup = false;

                if (!below(xs.path[i], path) || xs.path[i][len] != '/')
                        continue;
                k = strcspn(rest, "/");
                for (unsigned j = 0; j < n; j++)
                        dup = dup || (strlen(names[j]) == k && strncmp(names[j], rest, k) == 0);
                if (!dup)
                        snprintf(names[n++], sizeof(names[0]), "%.*s", (int) k, rest);
        }
        if (n == 0) {
                errno = ENOENT;
                return NULL;
        }
        /* One block, like xs_directory(). */
        v = malloc(n * sizeof(char *) + sizeof(names));
        p = (char *) (v + n);
        for (unsigned j = 0; j < n; j++) {
                v[j] = strcpy(p, names[j]);
                p += strlen(names[j]) + 1;
        }
        *ret_n = n;
        return v;
}

static int fake_write(void *userdata, const char *path, const char *value) {
        see("%s=%s", short_path(path), value);
        set(path, value);
        return 0;
}

static int fake_write_guarded(void *userdata, const char *guard, const XsWrite *w, size_t n) {
        if (find(guard) < 0)
                return -ENOENT;
        for (size_t i = 0; i < n; i++)
                fake_write(userdata, w[i].path, w[i].value);
        return 0;
}

static int fake_watch(void *userdata, const char *path, const char *token) {
        if (xs.n_watches >= MAX_WATCHES)
                return -ENOSPC;
        snprintf(xs.watch[xs.n_watches].path, sizeof(xs.watch[0].path), "%s", path);
        snprintf(xs.watch[xs.n_watches].token, sizeof(xs.watch[0].token), "%s", token);
        xs.n_watches++;
        fire(path, token); /* xenstored fires a new watch once */
        return 0;
}

static int fake_unwatch(void *userdata, const char *path, const char *token) {
        for (unsigned i = 0; i < xs.n_watches; i++)
                if (streq(xs.watch[i].path, path) && streq(xs.watch[i].token, token)) {
                        xs.watch[i] = xs.watch[--xs.n_watches];
                        return 0;
                }
        return -ENOENT;
}

static bool fake_domain_introduced(void *userdata, uint32_t domid) {
        return !(domid == DOMID && xs.dead);
}

static const XsOps fake_xs_ops = {
        .read = fake_read,
        .directory = fake_directory,
        .write = fake_write,
        .write_guarded = fake_write_guarded,
        .watch = fake_watch,
        .unwatch = fake_unwatch,
        .domain_introduced = fake_domain_introduced,
};

/* ---- a fake worker ---- */

struct Worker {
        WorkerParams params;
        const WorkerEvents *events;
        void *userdata;
        WorkerBackoff backoff;
};

static struct {
        Worker *current;
        unsigned started;
        bool unknown_vtpm; /* the vTPM does not exist: fail every start as workers.c does */
} fw;

static int fake_start(void *ctx, const WorkerParams *p, const WorkerEvents *events, void *userdata, Worker **ret) {
        Worker *w = calloc(1, sizeof(*w));

        if (!w)
                return -ENOMEM;
        *w = (Worker){ .params = *p, .events = events, .userdata = userdata };
        see("start domid=%u devid=%u uuid=%s ring-ref=%u port=%u%s%s", p->domid, p->devid, p->uuid, p->ring_ref,
            p->evtchn, p->quiet ? " quiet" : "", p->resume ? " resume" : "");
        fw.current = *ret = w;
        fw.started++;
        if (fw.unknown_vtpm) {
                char why[160];
                worker_unknown_vtpm_message(p->uuid, why, sizeof(why));
                events->failed(userdata, &(WorkerFailure){ .state = true, .logged = true, .error = -ENOENT,
                                                            .detail = why, .detail_code = ENOENT });
        }
        return 0;
}

static Worker *fake_stop(Worker *w, IpcStopMode mode) {
        if (!w)
                return NULL;
        see("stop %s", mode == IPC_STOP_SUSPEND ? "suspend" : "reset");
        if (fw.current == w)
                fw.current = NULL;
        free(w);
        return NULL;
}

static int fake_request_stats(Worker *w) {
        see("stats?");
        return 0;
}

static void fake_suspend_vtpm(void *ctx, const char *uuid, const StateSuspend *su) {
        see("suspend-vtpm %s domid=%u devid=%u at=%llu handle=%02x", uuid, su->domid, su->devid,
            (unsigned long long) su->usec, su->handle[0]);
}

static const WorkerOps fake_worker_ops = {
        .start = fake_start,
        .stop = fake_stop,
        .request_stats = fake_request_stats,
        .suspend_vtpm = fake_suspend_vtpm,
};

/* ---- the hypervisor ---- */

static int fake_domain_info(void *userdata, uint32_t domid, DomainInfo *ret) {
        if (domid != DOMID || xs.dead)
                return -ENOENT;
        *ret = (DomainInfo){ .shutdown = xs.suspended, .reason = DOMAIN_SHUTDOWN_SUSPEND };
        memset(ret->handle, 0xd3, sizeof(ret->handle));
        return 0;
}

static uint64_t fake_realtime(void *userdata) {
        return 1700000000000000ull;
}

/* ---- the clock ---- */

static uint64_t clock_ns = 1000 * MS, timer_ns;

static uint64_t fake_now(void *userdata) {
        return clock_ns;
}

static void fake_schedule(void *userdata, uint64_t when_ns) {
        timer_ns = when_ns;
}

/* ---- the scenarios ---- */

static XsView *view;
static Devices *devices;

static void setup(void) {
        memset(&xs, 0, sizeof(xs));
        memset(&fw, 0, sizeof(fw));
        seen[0] = '\0';
        timer_ns = 0;
        log_set_max_level(LOG_WARNING);
        if (xs_view_new(0, &fake_xs_ops, NULL, &view) < 0 ||
            devices_new(&(DevicesEnv){ .xs = view, .worker_ops = &fake_worker_ops, .initwait_dwell_ns = DWELL_NS,
                                       .now = fake_now, .schedule = fake_schedule,
                                       .domain_info = fake_domain_info, .realtime_usec = fake_realtime },
                        &devices) < 0)
                abort();
        if (devices_watch(devices) < 0)
                abort();
}

static void teardown(void) {
        /* As at the daemon's exit: the devices let go of their workers without a word. */
        free(fw.current);
        fw.current = NULL;
        devices = devices_free(devices);
        view = xs_view_free(view);
}

/* Hands the queued watch events to the devices, as the daemon's loop does, until none is left. */
static void deliver(void) {
        for (unsigned rounds = 0; xs.n_events > 0 && rounds < 256; rounds++) {
                char path[160], token[64];

                memcpy(path, xs.event[0].path, sizeof(path));
                memcpy(token, xs.event[0].token, sizeof(token));
                memmove(&xs.event[0], &xs.event[1], (xs.n_events - 1) * sizeof(xs.event[0]));
                xs.n_events--;
                devices_handle_watch(devices, path, token);
        }
}

typedef enum Op {
        OP_SET,     /* arg: "be/key=value fe/key=value ..." (the toolstack or the guest writes) */
        OP_RM,      /* arg: "be" or "fe" (the dir goes) */
        OP_WAIT,    /* arg: milliseconds; timers due meanwhile fire */
        OP_READY,   /* the worker mapped and bound */
        OP_FAIL,    /* the worker reports a failure to map the ring */
        OP_CRASH,   /* the worker dies; workers.c's back-off decides */
        OP_RELEASE, /* the domain is destroyed (@releaseDomain) */
        OP_UNKNOWN, /* from now on the vTPM does not exist (AutoCreate=no) */
        OP_DESTROY, /* vtpmd-ctl destroy --force */
        OP_SUSPEND, /* the domain shuts down with reason suspend (nothing in xenstore changes) */
        OP_STOPPED, /* a stopped worker of the vTPM has exited (workers_on_released) */
} Op;

typedef struct Step {
        Op op;
        const char *arg;
        const char *expect; /* the log of this step */
        int phase;          /* the device's phase after it, -1: the device is gone */
} Step;

static void step_set(const char *arg) {
        char buf[512], *save = NULL;

        snprintf(buf, sizeof(buf), "%s", arg);
        for (char *kv = strtok_r(buf, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
                char path[256], *eq = strchr(kv, '=');

                if (!eq)
                        abort();
                *eq = '\0';
                snprintf(path, sizeof(path), "%s/%s", strncmp(kv, "be/", 3) == 0 ? BE : FE, kv + 3);
                set(path, eq + 1);
        }
}

static void step_wait(uint64_t ms) {
        uint64_t end = clock_ns + ms * MS;

        while (timer_ns && timer_ns <= end) {
                clock_ns = timer_ns;
                timer_ns = 0;
                devices_run_timers(devices);
                deliver();
        }
        clock_ns = end;
}

static void step_crash(void) {
        Worker *w = fw.current;
        uint64_t delay;

        if (!w)
                return;
        if (worker_backoff_crashed(&w->backoff, clock_ns, &delay)) {
                see("worker restarts in %llums", (unsigned long long) (delay / MS));
                w->events->exited(w->userdata);
        } else
                w->events->gave_up(w->userdata);
}

static void run_step(const Step *s) {
        Device *dev;
        bool attached;

        switch (s->op) {
        case OP_SET:
                step_set(s->arg);
                break;
        case OP_RM:
                rm(streq(s->arg, "be") ? BE : FE);
                break;
        case OP_WAIT:
                step_wait(strtoull(s->arg, NULL, 10));
                break;
        case OP_READY:
                fw.current->events->ready(fw.current->userdata);
                break;
        case OP_FAIL:
                fw.current->events->failed(fw.current->userdata,
                                           &(WorkerFailure){ .pid = 42, .stage = IPC_STAGE_MAP, .error = -EFAULT });
                break;
        case OP_CRASH:
                step_crash();
                break;
        case OP_RELEASE:
                xs.dead = true;
                fire("@releaseDomain", "rel");
                break;
        case OP_UNKNOWN:
                fw.unknown_vtpm = true;
                break;
        case OP_SUSPEND:
                xs.suspended = true;
                break;
        case OP_STOPPED:
                devices_vtpm_released(devices, UUID);
                break;
        case OP_DESTROY:
                dev = devices_find_vtpm(devices, UUID, &attached);
                if (dev)
                        device_fail(dev, "vTPM destroyed by the administrator");
                break;
        }
        deliver();
}

/* Runs the steps; the first one whose outcome differs fails the case. */
#define RUN(steps)                                                                                          \
        do {                                                                                                \
                for (size_t _i = 0; _i < ELEMENTSOF(steps); _i++) {                                         \
                        const Step *_s = &(steps)[_i];                                                      \
                        bool _att;                                                                          \
                        Device *_d;                                                                         \
                        seen[0] = '\0';                                                                     \
                        run_step(_s);                                                                       \
                        _d = devices_find_vtpm(devices, UUID, &_att);                                       \
                        if (strcmp(seen, _s->expect) != 0)                                                  \
                                TEST_FAIL_("%s step %zu (op %d %s): saw\n%s  expected\n%s", #steps, _i,     \
                                           (int) _s->op, _s->arg ? _s->arg : "", seen, _s->expect);         \
                        if ((_d ? (int) device_phase(_d) : -1) != _s->phase)                                \
                                TEST_FAIL_("%s step %zu: phase %s, expected %s", #steps, _i,                \
                                           _d ? dev_phase_to_string(device_phase(_d)) : "gone",             \
                                           _s->phase < 0 ? "gone" : dev_phase_to_string(_s->phase));        \
                }                                                                                           \
        } while (0)

/* libxl's attach (libxl__device_vtpm_add), and Linux xen-tpmfront's answer to InitWait. */
#define TOOLSTACK_ATTACH                                                                                       \
        "be/frontend=" FE " be/frontend-id=3 be/online=1 be/uuid=" UUID " be/state=1 fe/backend=" BE            \
        " fe/backend-id=0 fe/state=1"
#define FRONTEND_INITIALISED "fe/ring-ref=8 fe/event-channel=5 fe/feature-protocol-v2=1 fe/state=3"
#define START_8_5 "start domid=3 devid=0 uuid=" UUID " ring-ref=8 port=5\n"

static const Step connecting_steps[] = {
        { OP_SET, TOOLSTACK_ATTACH, "be/feature-protocol-v2=1\nbe/state=2\n", DEV_INIT_WAIT },
        /* libxl reads exactly InitWait: the worker waits out the dwell even if the frontend is quick. */
        { OP_SET, FRONTEND_INITIALISED, "", DEV_INIT_WAIT },
        { OP_WAIT, "99", "", DEV_INIT_WAIT },
        { OP_WAIT, "1", START_8_5, DEV_CONNECTING },
};

static const Step connected_steps[] = {
        { OP_READY, NULL, "be/state=4\n", DEV_CONNECTED },
        { OP_SET, "fe/state=4", "", DEV_CONNECTED },
};

#define CONNECT()                         \
        do {                              \
                RUN(connecting_steps);    \
                RUN(connected_steps);     \
        } while (0)

TEST(new_device_initwait_then_connected) {
        setup();
        CONNECT();
        teardown();
}

TEST(frontend_before_the_toolstack_is_done_waits) {
        static const Step steps[] = {
                /* The backend keys are not all written yet: nothing happens (the uuid is not known either). */
                { OP_SET, "be/state=1 be/online=1 fe/state=1 fe/backend=" BE, "", -1 },
                { OP_SET, "be/frontend=" FE " be/frontend-id=3 be/uuid=" UUID,
                  "be/feature-protocol-v2=1\nbe/state=2\n", DEV_INIT_WAIT },
                /* The dwell passes without a frontend: nothing starts. */
                { OP_WAIT, "500", "", DEV_INIT_WAIT },
                /* After the dwell, a ring starts the worker at once. */
                { OP_SET, FRONTEND_INITIALISED, START_8_5, DEV_CONNECTING },
        };
        setup();
        RUN(steps);
        teardown();
}

TEST(worker_fails_at_start) {
        static const Step steps[] = {
                /* Once more after a moment: a reloading frontend may reuse the numbers of the ring it freed. */
                { OP_FAIL, NULL, "stop reset\n", DEV_CONNECTING },
                { OP_WAIT, "99", "", DEV_CONNECTING },
                { OP_WAIT, "1", START_8_5, DEV_CONNECTING },
                { OP_FAIL, NULL,
                  "stop reset\nerror=6 could not map the frontend's ring or bind its event channel\nbe/state=6\n",
                  DEV_FAILED },
                /* Failed stays failed, whatever the guest does. */
                { OP_SET, "fe/state=3", "", DEV_FAILED },
        };
        setup();
        RUN(connecting_steps);
        RUN(steps);
        teardown();
}

TEST(worker_crash_while_connected_restarts_with_backoff) {
        static const Step steps[] = {
                { OP_CRASH, NULL, "worker restarts in 100ms\n", DEV_CONNECTED },
                /* The restarted worker maps the ring again: be is 4 already, nothing is written. */
                { OP_READY, NULL, "", DEV_CONNECTED },
                { OP_CRASH, NULL, "worker restarts in 200ms\n", DEV_CONNECTED },
                { OP_CRASH, NULL, "worker restarts in 400ms\n", DEV_CONNECTED },
                { OP_CRASH, NULL, "worker restarts in 800ms\n", DEV_CONNECTED },
                { OP_CRASH, NULL,
                  "stop reset\nerror=5 worker crashed repeatedly, giving up on this device\nbe/state=6\n",
                  DEV_FAILED },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(frontend_closes_worker_reset_back_to_initwait) {
        static const Step steps[] = {
                { OP_SET, "fe/state=5", "be/state=5\n", DEV_CLOSING },
                { OP_SET, "fe/state=6", "stop reset\nbe/state=2\n", DEV_INIT_WAIT },
                /* A reloaded frontend reconnects (6 -> 3 without passing 1), on a new ring. */
                { OP_SET, "fe/ring-ref=9 fe/event-channel=6 fe/state=3",
                  "start domid=3 devid=0 uuid=" UUID " ring-ref=9 port=6\n", DEV_CONNECTING },
                { OP_READY, NULL, "be/state=4\n", DEV_CONNECTED },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(changed_ring_while_connected_is_a_resume) {
        static const Step steps[] = {
                { OP_SET, "fe/ring-ref=12 fe/event-channel=7",
                  "stop suspend\nstart domid=3 devid=0 uuid=" UUID " ring-ref=12 port=7 resume\n", DEV_CONNECTING },
                /* be stays 4 throughout: nothing is written. */
                { OP_READY, NULL, "", DEV_CONNECTED },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(backend_removed_worker_stopped_device_forgotten) {
        static const Step steps[] = {
                /* xl vtpm-detach: online=0, be=5; libxl waits for 6, then removes both dirs. */
                { OP_SET, "be/online=0 be/state=5", "stop reset\nbe/state=6\n", DEV_CLOSED },
                { OP_RM, "fe", "", DEV_CLOSED },
                { OP_RM, "be", "", -1 },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(xl_save_suspends_the_vtpm_instead_of_resetting_it) {
        static const Step steps[] = {
                /* The guest suspends: no xenstore change, nothing happens. */
                { OP_SUSPEND, NULL, "", DEV_CONNECTED },
                /* libxl destroys the saved domain (FORCE_ON): frontend dir first, then online=0 and be=5;
                 * it waits for 6, which comes once the stopped worker has exited (its save recorded). */
                { OP_RM, "fe", "suspend-vtpm " UUID " domid=3 devid=0 at=1700000000000000 handle=d3\nstop suspend\n",
                  DEV_CLOSED },
                { OP_SET, "be/online=0 be/state=5", "", DEV_CLOSED },
                { OP_STOPPED, NULL, "be/state=6\n", DEV_CLOSED },
                { OP_RM, "be", "", -1 },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(domain_destroyed_worker_stopped_device_forgotten) {
        static const Step steps[] = {
                { OP_RELEASE, NULL, "stop reset\n", -1 },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(unknown_vtpm_error_node_says_how_to_create_it) {
        static const Step steps[] = {
                { OP_SET, TOOLSTACK_ATTACH, "be/feature-protocol-v2=1\nbe/state=2\n", DEV_INIT_WAIT },
                { OP_UNKNOWN, NULL, "", DEV_INIT_WAIT },
                { OP_SET, FRONTEND_INITIALISED, "", DEV_INIT_WAIT },
                { OP_WAIT, "100",
                  START_8_5 "stop reset\nerror=2 unknown vTPM " UUID ": create it with vtpmd-ctl create --uuid " UUID
                            "\nbe/state=6\n",
                  DEV_FAILED },
        };
        setup();
        RUN(steps);
        ASSERT_TRUE(fw.current == NULL); /* the failed worker was given back */
        teardown();
}

TEST(destroy_force_closes_the_device) {
        static const Step steps[] = {
                { OP_DESTROY, NULL, "stop reset\nerror=22 vTPM destroyed by the administrator\nbe/state=6\n",
                  DEV_FAILED },
        };
        setup();
        CONNECT();
        RUN(steps);
        teardown();
}

TEST(refuses_wrong_backend_keys) {
        static const struct {
                const char *keys, *error;
        } cases[] = {
                { "be/frontend=/local/domain/4/device/vtpm/0",
                  "error=22 backend key frontend=\"/local/domain/4/device/vtpm/0\" is not " FE "\nbe/state=6\n" },
                { "be/frontend-id=4", "error=22 backend key frontend-id does not match domain 3\nbe/state=6\n" },
                { "be/uuid=nope", "error=22 backend key uuid=\"nope\" is not a UUID\nbe/state=6\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const Step steps[] = {
                        { OP_SET, TOOLSTACK_ATTACH, "be/feature-protocol-v2=1\nbe/state=2\n", DEV_INIT_WAIT },
                        { OP_SET, cases[i].keys, cases[i].error, -1 },
                };
                setup();
                /* A refused device keeps its uuid unknown: the phase is looked up by domid instead. */
                for (size_t j = 0; j < ELEMENTSOF(steps); j++) {
                        seen[0] = '\0';
                        run_step(&steps[j]);
                        if (strcmp(seen, steps[j].expect) != 0)
                                TEST_FAIL_("case %zu step %zu: saw\n%s  expected\n%s", i, j, seen, steps[j].expect);
                }
                ASSERT_EQ(devices_count_phase(devices, DEV_FAILED), 1);
                teardown();
        }
}

TEST(daemon_restart_reattaches_quietly) {
        static const Step steps[] = {
                /* A new vtpmd finds the device connected: it re-maps without moving any state. */
                { OP_SET, TOOLSTACK_ATTACH " be/state=4 be/feature-protocol-v2=1 " FRONTEND_INITIALISED " fe/state=4",
                  "start domid=3 devid=0 uuid=" UUID " ring-ref=8 port=5 quiet\n", DEV_CONNECTING },
                { OP_READY, NULL, "", DEV_CONNECTED },
        };
        setup();
        RUN(steps);
        teardown();
}

TEST(stats_for_vtpmd_ctl) {
        static const IpcStats figures = { .commands = 7 };
        Device *dev;
        bool attached;

        setup();
        CONNECT();
        dev = devices_find_vtpm(devices, UUID, &attached);
        ASSERT_TRUE(dev && attached);
        seen[0] = '\0';
        device_request_stats(dev);
        ASSERT_STREQ(seen, "stats?\n");
        ASSERT_TRUE(device_stats_pending(dev) && devices_stats_pending(devices));
        fw.current->events->stats(fw.current->userdata, &figures);
        ASSERT_EQ(device_stats(dev)->commands, 7);
        ASSERT_FALSE(device_stats_pending(dev) || devices_stats_pending(devices));
        ASSERT_EQ(devices_request_stats(devices), 1);
        ASSERT_TRUE(device_stats_pending(dev));
        ASSERT_EQ(devices_count_attached(devices), 1);
        teardown();
}

/* vtpmd-ctl list and show: the domain's name, read when the device is first seen, never a hostile one. */
TEST(domain_name_for_vtpmd_ctl) {
        Device *dev;
        bool attached;

        setup();
        set("/local/domain/3/name", "web-01");
        CONNECT();
        dev = devices_find_vtpm(devices, UUID, &attached);
        ASSERT_TRUE(dev && attached);
        ASSERT_STREQ(device_name(dev), "web-01");
        /* Read once: a later change (xl rename) is not looked at per list. */
        set("/local/domain/3/name", "renamed");
        ASSERT_STREQ(device_name(dev), "web-01");
        teardown();

        setup();
        set("/local/domain/3/name", "evil\x1b[2Jname");
        CONNECT();
        dev = devices_find_vtpm(devices, UUID, &attached);
        ASSERT_TRUE(dev && device_name(dev) == NULL);
        teardown();

        setup();
        CONNECT(); /* no name node */
        dev = devices_find_vtpm(devices, UUID, &attached);
        ASSERT_TRUE(dev && device_name(dev) == NULL);
        teardown();
}
