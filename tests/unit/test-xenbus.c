/* SPDX-License-Identifier: BSD-3-Clause */
/* The backend's xenbus state machine, driven as a pure function through the
 * transitions of research xen-protocol.md §2.2, §3 and §8. Each case is a
 * table of steps: how the view changes, the event, what the machine must do. */
#include "test.h"
#include "util.h"
#include "xenbus.h"

#define MS 1000000ull
#define DWELL (100 * MS)
#define START_NS (1000 * MS)

/* A field of a step that is left 0 is neither changed nor checked; SET and EQ
 * shift the value so that 0 (and -1, a missing state) can be named too. */
#define BIAS 1000
#define SET(x) ((long long) (x) + BIAS)
#define EQ(x) SET(x)
#define YES EQ(1)
#define NO EQ(0)

typedef struct ViewChange {
        /* A view as libxl and Linux leave it (be, fe, ring), before the changes below. */
        bool fresh;
        int fresh_be, fresh_fe;
        bool fresh_ring;
        long long backend_present, online, be, frontend_present, fe, ring_valid, ring_ref, evtchn, v2, suspended,
                holder;
        const char *config_error;
        bool clear_config_error;
        uint64_t advance_ns;
} ViewChange;

typedef struct Expect {
        bool nothing; /* no action at all */
        long long write_state, feature, start, stop, stop_mode, ring_ref, evtchn, timer_ns, error, error_code,
                forget, phase, suspend_vtpm, take_over;
        bool error_is_config_error; /* the error text is the view's config_error */
} Expect;

typedef struct Step {
        ViewChange v;
        DevEvent ev;
        Expect want;
} Step;

#define FRESH(be, fe, ring) .fresh = true, .fresh_be = (be), .fresh_fe = (fe), .fresh_ring = (ring)

typedef struct Scenario {
        uint64_t dwell;
        bool connected; /* start from Connected on ring 8 / port 12, the way libxl + Linux get there */
        Step steps[6];
} Scenario;

static DevView view(int be, int fe, bool ring) {
        return (DevView){
                .backend_present = true,
                .online = 1,
                .be_state = be,
                .frontend_present = true,
                .fe_state = fe,
                .ring_valid = ring,
                .ring_ref = ring ? 8 : 0,
                .evtchn = ring ? 12 : 0,
                .fe_protocol_v2 = ring,
                .now_ns = START_NS,
        };
}

static void change(DevView *v, const ViewChange *c) {
        if (c->fresh)
                *v = view(c->fresh_be, c->fresh_fe, c->fresh_ring);
#define APPLY(field, to)                            \
        do {                                        \
                if (c->field)                       \
                        v->to = c->field - BIAS;    \
        } while (0)
        APPLY(backend_present, backend_present);
        APPLY(online, online);
        APPLY(be, be_state);
        APPLY(frontend_present, frontend_present);
        APPLY(fe, fe_state);
        APPLY(ring_valid, ring_valid);
        APPLY(ring_ref, ring_ref);
        APPLY(evtchn, evtchn);
        APPLY(v2, fe_protocol_v2);
        APPLY(suspended, domain_suspended);
        APPLY(holder, holder);
#undef APPLY
        if (c->config_error)
                v->config_error = c->config_error;
        if (c->clear_config_error)
                v->config_error = NULL;
        v->now_ns += c->advance_ns;
}

static bool no_action(const DevActions *a) {
        return a->write_state < 0 && !a->write_feature_v2 && !a->error && !a->stop_worker && !a->start_worker &&
               !a->forget && !a->suspend_vtpm && !a->take_over;
}

static void check(const Expect *w, const DevActions *a, const DevMachine *m, const DevView *v) {
#define CHECK_FIELD(field, got)                                 \
        do {                                                    \
                if (w->field)                                   \
                        ASSERT_EQ(got, w->field - BIAS);        \
        } while (0)
        if (w->nothing)
                ASSERT_TRUE(no_action(a));
        CHECK_FIELD(write_state, a->write_state);
        CHECK_FIELD(feature, a->write_feature_v2);
        CHECK_FIELD(start, a->start_worker);
        CHECK_FIELD(stop, a->stop_worker);
        CHECK_FIELD(stop_mode, a->stop_mode);
        CHECK_FIELD(ring_ref, a->ring_ref);
        CHECK_FIELD(evtchn, a->evtchn);
        CHECK_FIELD(timer_ns, a->timer_ns);
        CHECK_FIELD(error, a->error != NULL);
        CHECK_FIELD(error_code, a->error_code);
        CHECK_FIELD(forget, a->forget);
        CHECK_FIELD(phase, m->phase);
        CHECK_FIELD(suspend_vtpm, a->suspend_vtpm);
        CHECK_FIELD(take_over, a->take_over);
#undef CHECK_FIELD
        if (w->error_is_config_error)
                ASSERT_STREQ(a->error, v->config_error);
}

/* A step of all zeroes (changes nothing, DEV_EV_XENSTORE, checks nothing) ends a table. */
static bool run_steps(DevMachine *m, DevView *v, const Step *steps, size_t n) {
        static const Step end;

        for (size_t i = 0; i < n && memcmp(&steps[i], &end, sizeof(end)) != 0; i++) {
                DevActions a;

                change(v, &steps[i].v);
                dev_machine_step(m, steps[i].ev, v, &a);
                check(&steps[i].want, &a, m, v);
                if (test_failed_current) {
                        fprintf(stderr, "  at step %zu\n", i + 1);
                        return false;
                }
        }
        return true;
}

static const Step connect_steps[] = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true), .advance_ns = DWELL }, DEV_EV_TIMER, {} },
        { {}, DEV_EV_WORKER_READY, {} },
};

static void run(const Scenario *s) {
        DevMachine m;
        DevView v = {};

        dev_machine_init(&m, s->connected ? DWELL : s->dwell);
        if (s->connected) {
                if (!run_steps(&m, &v, connect_steps, ELEMENTSOF(connect_steps)))
                        return;
                v.be_state = XENBUS_CONNECTED;
        }
        run_steps(&m, &v, s->steps, ELEMENTSOF(s->steps));
}

/* A named case whose body is its table. */
#define SCENARIO(name, ...)                                              \
        TEST(name) {                                                     \
                static const Scenario s = { __VA_ARGS__ };              \
                run(&s);                                                 \
        }

SCENARIO(new_device_goes_to_initwait_with_feature, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE,
          { .write_state = EQ(XENBUS_INITWAIT), .feature = YES, .start = NO, .timer_ns = EQ(START_NS + DWELL),
            .phase = EQ(DEV_INIT_WAIT) } },
})

SCENARIO(initwait_stays_visible_for_the_dwell_time, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        /* A hot-attached guest publishes its ring at once. */
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true), .advance_ns = DWELL / 2 }, DEV_EV_XENSTORE,
          { .start = NO, .write_state = EQ(-1), .timer_ns = EQ(START_NS + DWELL) } },
        /* Connected only once the worker is ready. */
        { { .advance_ns = DWELL / 2 }, DEV_EV_TIMER,
          { .start = YES, .ring_ref = EQ(8), .evtchn = EQ(12), .write_state = EQ(-1), .phase = EQ(DEV_CONNECTING) } },
})

SCENARIO(connected_only_after_worker_ready, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true) }, DEV_EV_XENSTORE, { .start = YES } },
        /* More xenstore noise while connecting changes nothing. */
        { {}, DEV_EV_XENSTORE, { .nothing = true } },
        { {}, DEV_EV_WORKER_READY, { .write_state = EQ(XENBUS_CONNECTED), .phase = EQ(DEV_CONNECTED) } },
        /* The frontend following to 4 with the same ring changes nothing. */
        { { .be = SET(XENBUS_CONNECTED), .fe = SET(XENBUS_CONNECTED) }, DEV_EV_XENSTORE, { .nothing = true } },
})

SCENARIO(frontend_without_protocol_v2_is_refused, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true), .v2 = SET(false) }, DEV_EV_XENSTORE,
          { .start = NO, .error = YES, .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_FAILED) } },
})

SCENARIO(guest_shutdown_passes_through_closing_then_back_to_initwait, .connected = true, .steps = {
        { { .fe = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_CLOSING), .stop = NO } },
        /* orderly TPM reset: TPM2_Shutdown first */
        { { .be = SET(XENBUS_CLOSING), .fe = SET(XENBUS_CLOSED) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_RESET), .write_state = EQ(XENBUS_INITWAIT),
            .phase = EQ(DEV_INIT_WAIT) } },
})

SCENARIO(reloaded_frontend_reconnects_from_closed_without_passing_1, .connected = true, .steps = {
        { { .fe = SET(XENBUS_CLOSED) }, DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_INITWAIT) } },
        /* Module reload: 6 -> 3 with a new ring; no dwell needed (libxl is not waiting). */
        { { .be = SET(XENBUS_INITWAIT), .fe = SET(XENBUS_INITIALISED), .ring_ref = SET(99), .evtchn = SET(7) },
          DEV_EV_XENSTORE, { .start = YES, .ring_ref = EQ(99), .evtchn = EQ(7) } },
})

SCENARIO(frontend_closed_in_initwait_is_left_alone, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_CLOSED, false) }, DEV_EV_XENSTORE,
          { .nothing = true, .phase = EQ(DEV_INIT_WAIT) } },
})

SCENARIO(libxl_detach_online0_state5_gets_closed, .connected = true, .steps = {
        /* state 5 written by libxl itself */
        { { .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_RESET), .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_CLOSED) } },
        /* Our own write echoes back: nothing more. */
        { { .be = SET(XENBUS_CLOSED) }, DEV_EV_XENSTORE, { .nothing = true } },
})

SCENARIO(force_removal_frontend_dir_first, .connected = true, .steps = {
        { { .frontend_present = SET(false), .fe = SET(-1), .ring_valid = SET(false) }, DEV_EV_XENSTORE,
          { .stop = YES, .write_state = EQ(XENBUS_CLOSED) } },
        /* then libxl writes online=0 and state=5 after our 6: we answer 6 again */
        { { .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = NO, .write_state = EQ(XENBUS_CLOSED) } },
})

SCENARIO(backend_dir_removed_forgets_without_writing, .connected = true, .steps = {
        { { .backend_present = SET(false) }, DEV_EV_XENSTORE,
          { .forget = YES, .stop = YES, .write_state = EQ(-1), .feature = NO, .phase = EQ(DEV_GONE) } },
        { {}, DEV_EV_XENSTORE, { .nothing = true } },
})

SCENARIO(release_domain_forgets, .connected = true, .steps = {
        { {}, DEV_EV_DOMAIN_GONE, { .forget = YES, .stop = YES, .write_state = EQ(-1) } },
})

SCENARIO(daemon_restart_reattaches_quietly, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_CONNECTED, XENBUS_CONNECTED, true) }, DEV_EV_XENSTORE,
          { .start = YES, .write_state = EQ(-1), .feature = NO, .timer_ns = EQ(0) } },
        { {}, DEV_EV_WORKER_READY, { .write_state = EQ(-1), .phase = EQ(DEV_CONNECTED) } },
})

SCENARIO(resume_with_new_ring_reconnects_without_moving_state, .connected = true, .steps = {
        { { .fe = SET(XENBUS_INITIALISED), .ring_ref = SET(200), .evtchn = SET(30) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_SUSPEND), .start = YES, .ring_ref = EQ(200), .evtchn = EQ(30),
            .write_state = EQ(-1) } },
        /* The frontend may already be at 4 again (it saw be=4): ring change is enough. */
        { { .fe = SET(XENBUS_CONNECTED), .ring_ref = SET(201) }, DEV_EV_XENSTORE,
          { .start = YES, .ring_ref = EQ(201) } },
})

SCENARIO(bad_backend_keys_fail_with_error_node, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false),
            .config_error = "backend key frontend is not /local/domain/3/device/vtpm/0" }, DEV_EV_XENSTORE,
          { .error_is_config_error = true, .error_code = EQ(EINVAL), .write_state = EQ(XENBUS_CLOSED),
            .phase = EQ(DEV_FAILED) } },
        /* Later events do nothing, except removal. */
        { { .clear_config_error = true, .fe = SET(XENBUS_INITIALISED), .ring_valid = SET(true) }, DEV_EV_XENSTORE,
          { .nothing = true } },
        { { .backend_present = SET(false) }, DEV_EV_XENSTORE, { .forget = YES } },
})

SCENARIO(worker_exit_then_give_up_close_the_device, .connected = true, .steps = {
        /* the daemon restarts it; xenbus state does not move */
        { {}, DEV_EV_WORKER_EXITED, { .nothing = true } },
        { {}, DEV_EV_GIVE_UP,
          { .error = YES, .error_code = EQ(EIO), .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_FAILED) } },
})

SCENARIO(worker_failure_closes_the_device, .connected = true, .steps = {
        /* it is already gone: nothing to stop */
        { {}, DEV_EV_WORKER_FAILED, { .error = YES, .stop = NO, .write_state = EQ(XENBUS_CLOSED) } },
})

SCENARIO(closed_device_recreated_by_toolstack, .connected = true, .steps = {
        { { .frontend_present = SET(false) }, DEV_EV_XENSTORE, { .phase = EQ(DEV_CLOSED) } },
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE,
          { .write_state = EQ(XENBUS_INITWAIT), .feature = YES } },
})

SCENARIO(frontend_fatal_error_in_initwait_mirrored, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_CLOSING, false) }, DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_CLOSING) } },
        { { FRESH(XENBUS_CLOSING, XENBUS_CLOSED, false) }, DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_INITWAIT) } },
})

/* Found by fuzz-xenbus: a restarted daemon finding be=5 and a frontend back
 * at 4 must still insist on protocol v2 before starting a worker. */
SCENARIO(restart_in_closing_requires_protocol_v2, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_CLOSING, XENBUS_CONNECTED, true), .v2 = SET(false) }, DEV_EV_XENSTORE,
          { .start = NO, .phase = EQ(DEV_FAILED) } },
})

/* Found by fuzz-xenbus: a resume whose frontend no longer offers protocol v2. */
SCENARIO(resume_without_protocol_v2_fails, .connected = true, .steps = {
        { { .ring_ref = SET(300), .v2 = SET(false) }, DEV_EV_XENSTORE,
          { .stop = YES, .start = NO, .error = YES, .write_state = EQ(XENBUS_CLOSED) } },
})

SCENARIO(state_failure_closes_with_error, .connected = true, .steps = {
        { {}, DEV_EV_STATE_FAILED,
          { .error = YES, .stop = NO, .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_FAILED) } },
})

SCENARIO(a_ring_that_cannot_be_mapped_is_tried_once_more, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true) }, DEV_EV_XENSTORE, { .start = YES } },
        { {}, DEV_EV_WORKER_FAILED,
          { .start = NO, .error = NO, .write_state = EQ(-1), .timer_ns = EQ(START_NS + XENBUS_MAP_RETRY_NS),
            .phase = EQ(DEV_CONNECTING) } },
        { { .advance_ns = XENBUS_MAP_RETRY_NS }, DEV_EV_TIMER, { .start = YES, .ring_ref = EQ(8) } },
        { {}, DEV_EV_WORKER_FAILED,
          { .error = YES, .error_code = EQ(ENXIO), .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_FAILED) } },
})

SCENARIO(a_frontend_that_closes_after_a_failed_map_gets_a_fresh_try, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false) }, DEV_EV_XENSTORE, {} },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true) }, DEV_EV_XENSTORE, { .start = YES } },
        { {}, DEV_EV_WORKER_FAILED, { .error = NO } },
        { { .fe = SET(XENBUS_CLOSED) }, DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_INITWAIT) } },
        { { .fe = SET(XENBUS_INITIALISED), .be = SET(XENBUS_INITWAIT) }, DEV_EV_XENSTORE, { .start = YES } },
        { {}, DEV_EV_WORKER_FAILED, { .error = NO, .phase = EQ(DEV_CONNECTING) } },
})

/* ---- a guest that suspends (xl save, xendomains, xl migrate): research hvm-migration.md §B ---- */

SCENARIO(xl_save_removal_of_a_suspended_domain_suspends_the_vtpm, .connected = true, .steps = {
        /* libxl destroys the saved domain with FORCE_ON: frontend dir first, while it is shut down (suspend). */
        { { .suspended = SET(true), .frontend_present = SET(false), .fe = SET(-1), .ring_valid = SET(false) },
          DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_SUSPEND), .suspend_vtpm = YES, .write_state = EQ(-1),
            .timer_ns = EQ(START_NS + DWELL + XENBUS_SAVE_WAIT_NS), .phase = EQ(DEV_CLOSED) } },
        /* libxl waits for 6: it comes once the stopped worker has exited with its save recorded. */
        { { .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = NO, .suspend_vtpm = NO, .write_state = EQ(-1) } },
        { {}, DEV_EV_RELEASED, { .stop = NO, .suspend_vtpm = NO, .write_state = EQ(XENBUS_CLOSED) } },
        { { .backend_present = SET(false) }, DEV_EV_XENSTORE, { .forget = YES, .stop = NO, .suspend_vtpm = NO } },
})

SCENARIO(online0_of_a_suspended_domain_suspends, .connected = true, .steps = {
        { { .suspended = SET(true), .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_SUSPEND), .suspend_vtpm = YES, .write_state = EQ(-1) } },
        { { .suspended = SET(false) }, DEV_EV_XENSTORE, { .nothing = true } },
        /* The save never reported (the worker hung): 6 all the same, before libxl's own 10 s. */
        { { .advance_ns = XENBUS_SAVE_WAIT_NS }, DEV_EV_TIMER, { .write_state = EQ(XENBUS_CLOSED) } },
        { { .be = SET(XENBUS_CLOSED) }, DEV_EV_RELEASED, { .nothing = true } },
})

SCENARIO(backend_gone_of_a_suspended_domain_suspends, .connected = true, .steps = {
        { { .suspended = SET(true), .backend_present = SET(false) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_SUSPEND), .suspend_vtpm = YES, .forget = YES } },
})

SCENARIO(a_poweroff_is_still_a_reset, .connected = true, .steps = {
        { { .suspended = SET(false), .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_RESET), .suspend_vtpm = NO } },
})

SCENARIO(a_suspended_domain_that_stays_does_nothing, .connected = true, .steps = {
        /* xl migrate suspends the source and leaves its devices until the destination runs. */
        { { .suspended = SET(true) }, DEV_EV_XENSTORE, { .nothing = true, .phase = EQ(DEV_CONNECTED) } },
        /* The destination connected: the source hands its vTPM over and never serves again. */
        { {}, DEV_EV_HANDOVER,
          { .stop = YES, .stop_mode = EQ(IPC_STOP_SUSPEND), .suspend_vtpm = YES, .write_state = EQ(-1),
            .phase = EQ(DEV_SUSPENDED) } },
        { {}, DEV_EV_HANDOVER, { .nothing = true } },
        { { .fe = SET(XENBUS_INITIALISED), .ring_ref = SET(77) }, DEV_EV_XENSTORE,
          { .nothing = true, .phase = EQ(DEV_SUSPENDED) } },
        /* Then libxl destroys the source: closed, nothing saved twice, nothing reset. */
        { { .online = SET(0), .be = SET(XENBUS_CLOSING) }, DEV_EV_XENSTORE,
          { .stop = NO, .suspend_vtpm = NO, .write_state = EQ(XENBUS_CLOSED), .phase = EQ(DEV_CLOSED) } },
})

SCENARIO(migration_destination_takes_over_from_a_suspended_source, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false), .holder = SET(DEV_HOLDER_RUNNING) },
          DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_INITWAIT), .error = NO, .phase = EQ(DEV_INIT_WAIT) } },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true), .holder = SET(DEV_HOLDER_SUSPENDED) },
          DEV_EV_XENSTORE, { .start = YES, .take_over = YES, .error = NO } },
})

SCENARIO(a_second_live_copy_is_refused_when_it_connects, .steps = {
        { { FRESH(XENBUS_INITIALISING, XENBUS_INITIALISING, false), .holder = SET(DEV_HOLDER_RUNNING) },
          DEV_EV_XENSTORE, { .write_state = EQ(XENBUS_INITWAIT) } },
        { { FRESH(XENBUS_INITWAIT, XENBUS_INITIALISED, true), .holder = SET(DEV_HOLDER_RUNNING) },
          DEV_EV_XENSTORE,
          { .start = NO, .take_over = NO, .error = YES, .error_code = EQ(EBUSY), .write_state = EQ(XENBUS_CLOSED),
            .phase = EQ(DEV_FAILED) } },
})

SCENARIO(daemon_restart_while_the_domain_is_suspended_keeps_the_saved_state, .dwell = DWELL, .steps = {
        { { FRESH(XENBUS_CONNECTED, XENBUS_CONNECTED, true), .suspended = SET(true) }, DEV_EV_XENSTORE,
          { .start = NO, .suspend_vtpm = YES, .write_state = EQ(-1), .phase = EQ(DEV_SUSPENDED) } },
        { { .backend_present = SET(false) }, DEV_EV_XENSTORE, { .forget = YES, .stop = NO, .suspend_vtpm = NO } },
})

TEST(state_names) {
        ASSERT_STREQ(xenbus_state_to_string(4), "Connected");
        ASSERT_STREQ(xenbus_state_to_string(-1), "(missing)");
        ASSERT_STREQ(xenbus_state_to_string(9), "(missing)");
        ASSERT_STREQ(dev_phase_to_string(DEV_FAILED), "failed");
}
