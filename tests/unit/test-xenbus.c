/* SPDX-License-Identifier: BSD-3-Clause */
/* The backend's xenbus state machine, driven as a pure function through the
 * transitions of research xen-protocol.md §2.2, §3 and §8. */
#include "test.h"
#include "xenbus.h"

#define MS 1000000ull
#define DWELL (100 * MS)

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
                .now_ns = 1000 * MS,
        };
}

static bool no_action(const DevActions *a) {
        return a->write_state < 0 && !a->write_feature_v2 && !a->error && !a->stop_worker && !a->start_worker &&
               !a->forget;
}

/* Brings a machine to Connected on ring 8 / port 12 the way libxl + Linux do. */
static void connect(DevMachine *m, DevView *v) {
        DevActions a;

        dev_machine_init(m, DWELL);
        *v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(m, DEV_EV_XENSTORE, v, &a);
        *v = view(XENBUS_INITWAIT, XENBUS_INITIALISED, true);
        v->now_ns += DWELL;
        dev_machine_step(m, DEV_EV_TIMER, v, &a);
        dev_machine_step(m, DEV_EV_WORKER_READY, v, &a);
        v->be_state = XENBUS_CONNECTED;
}

TEST(new_device_goes_to_initwait_with_feature) {
        DevMachine m;
        DevActions a;
        DevView v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);

        dev_machine_init(&m, DWELL);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_INITWAIT);
        ASSERT_TRUE(a.write_feature_v2);
        ASSERT_FALSE(a.start_worker);
        ASSERT_EQ(a.timer_ns, v.now_ns + DWELL);
        ASSERT_EQ(m.phase, DEV_INIT_WAIT);
}

TEST(initwait_stays_visible_for_the_dwell_time) {
        DevMachine m;
        DevActions a;
        DevView v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);

        dev_machine_init(&m, DWELL);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        /* A hot-attached guest publishes its ring at once. */
        v = view(XENBUS_INITWAIT, XENBUS_INITIALISED, true);
        v.now_ns += DWELL / 2;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_FALSE(a.start_worker);
        ASSERT_EQ(a.write_state, -1);
        ASSERT_EQ(a.timer_ns, 1000 * MS + DWELL);
        v.now_ns = 1000 * MS + DWELL;
        dev_machine_step(&m, DEV_EV_TIMER, &v, &a);
        ASSERT_TRUE(a.start_worker);
        ASSERT_EQ(a.ring_ref, 8);
        ASSERT_EQ(a.evtchn, 12);
        ASSERT_EQ(a.write_state, -1); /* Connected only once the worker is ready */
        ASSERT_EQ(m.phase, DEV_CONNECTING);
}

TEST(connected_only_after_worker_ready) {
        DevMachine m;
        DevView v;
        DevActions a;

        dev_machine_init(&m, 0);
        v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        v = view(XENBUS_INITWAIT, XENBUS_INITIALISED, true);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.start_worker);
        /* More xenstore noise while connecting changes nothing. */
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
        dev_machine_step(&m, DEV_EV_WORKER_READY, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_CONNECTED);
        ASSERT_EQ(m.phase, DEV_CONNECTED);
        /* The frontend following to 4 with the same ring changes nothing. */
        v.be_state = XENBUS_CONNECTED;
        v.fe_state = XENBUS_CONNECTED;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
}

TEST(frontend_without_protocol_v2_is_refused) {
        DevMachine m;
        DevView v;
        DevActions a;

        dev_machine_init(&m, 0);
        v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        v = view(XENBUS_INITWAIT, XENBUS_INITIALISED, true);
        v.fe_protocol_v2 = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_FALSE(a.start_worker);
        ASSERT_TRUE(a.error != NULL);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        ASSERT_EQ(m.phase, DEV_FAILED);
}

TEST(guest_shutdown_passes_through_closing_then_back_to_initwait) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.fe_state = XENBUS_CLOSING;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_CLOSING);
        ASSERT_FALSE(a.stop_worker);
        v.be_state = XENBUS_CLOSING;
        v.fe_state = XENBUS_CLOSED;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.stop_mode, IPC_STOP_RESET); /* orderly TPM reset: TPM2_Shutdown first */
        ASSERT_EQ(a.write_state, XENBUS_INITWAIT);
        ASSERT_EQ(m.phase, DEV_INIT_WAIT);
}

TEST(reloaded_frontend_reconnects_from_closed_without_passing_1) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.fe_state = XENBUS_CLOSED;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_INITWAIT);
        v.be_state = XENBUS_INITWAIT;
        /* Module reload: 6 -> 3 with a new ring; no dwell needed (libxl is not waiting). */
        v.fe_state = XENBUS_INITIALISED;
        v.ring_ref = 99;
        v.evtchn = 7;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.start_worker);
        ASSERT_EQ(a.ring_ref, 99);
        ASSERT_EQ(a.evtchn, 7);
}

TEST(frontend_closed_in_initwait_is_left_alone) {
        DevMachine m;
        DevView v;
        DevActions a;

        dev_machine_init(&m, 0);
        v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        v = view(XENBUS_INITWAIT, XENBUS_CLOSED, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
        ASSERT_EQ(m.phase, DEV_INIT_WAIT);
}

TEST(libxl_detach_online0_state5_gets_closed) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.online = 0;
        v.be_state = XENBUS_CLOSING; /* written by libxl itself */
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.stop_mode, IPC_STOP_RESET);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        ASSERT_EQ(m.phase, DEV_CLOSED);
        /* Our own write echoes back: nothing more. */
        v.be_state = XENBUS_CLOSED;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
}

TEST(force_removal_frontend_dir_first) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.frontend_present = false;
        v.fe_state = -1;
        v.ring_valid = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        /* then libxl writes online=0 and state=5 after our 6: we answer 6 again */
        v.online = 0;
        v.be_state = XENBUS_CLOSING;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_FALSE(a.stop_worker);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
}

TEST(backend_dir_removed_forgets_without_writing) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.backend_present = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.forget);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.write_state, -1);
        ASSERT_FALSE(a.write_feature_v2);
        ASSERT_EQ(m.phase, DEV_GONE);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
}

TEST(release_domain_forgets) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        dev_machine_step(&m, DEV_EV_DOMAIN_GONE, &v, &a);
        ASSERT_TRUE(a.forget);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.write_state, -1);
}

TEST(daemon_restart_reattaches_quietly) {
        DevMachine m;
        DevActions a;
        DevView v = view(XENBUS_CONNECTED, XENBUS_CONNECTED, true);

        dev_machine_init(&m, DWELL);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.start_worker);
        ASSERT_EQ(a.write_state, -1);
        ASSERT_FALSE(a.write_feature_v2);
        ASSERT_EQ(a.timer_ns, 0);
        dev_machine_step(&m, DEV_EV_WORKER_READY, &v, &a);
        ASSERT_EQ(a.write_state, -1);
        ASSERT_EQ(m.phase, DEV_CONNECTED);
}

TEST(resume_with_new_ring_reconnects_without_moving_state) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.fe_state = XENBUS_INITIALISED;
        v.ring_ref = 200;
        v.evtchn = 30;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_EQ(a.stop_mode, IPC_STOP_SUSPEND);
        ASSERT_TRUE(a.start_worker);
        ASSERT_EQ(a.ring_ref, 200);
        ASSERT_EQ(a.evtchn, 30);
        ASSERT_EQ(a.write_state, -1);
        /* The frontend may already be at 4 again (it saw be=4): ring change is enough. */
        v.fe_state = XENBUS_CONNECTED;
        v.ring_ref = 201;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.start_worker);
        ASSERT_EQ(a.ring_ref, 201);
}

TEST(bad_backend_keys_fail_with_error_node) {
        DevMachine m;
        DevActions a;
        DevView v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);

        dev_machine_init(&m, DWELL);
        v.config_error = "backend key frontend is not /local/domain/3/device/vtpm/0";
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_STREQ(a.error, v.config_error);
        ASSERT_EQ(a.error_code, EINVAL);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        ASSERT_EQ(m.phase, DEV_FAILED);
        /* Later events do nothing, except removal. */
        v.config_error = NULL;
        v.fe_state = XENBUS_INITIALISED;
        v.ring_valid = true;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(no_action(&a));
        v.backend_present = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.forget);
}

TEST(worker_failure_and_give_up_close_the_device) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        dev_machine_step(&m, DEV_EV_WORKER_EXITED, &v, &a);
        ASSERT_TRUE(no_action(&a)); /* the daemon restarts it; xenbus state does not move */
        dev_machine_step(&m, DEV_EV_GIVE_UP, &v, &a);
        ASSERT_TRUE(a.error != NULL);
        ASSERT_EQ(a.error_code, EIO);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        ASSERT_EQ(m.phase, DEV_FAILED);

        connect(&m, &v);
        dev_machine_step(&m, DEV_EV_WORKER_FAILED, &v, &a);
        ASSERT_TRUE(a.error != NULL);
        ASSERT_FALSE(a.stop_worker); /* it is already gone */
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
}

TEST(closed_device_recreated_by_toolstack) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.frontend_present = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(m.phase, DEV_CLOSED);
        v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_INITWAIT);
        ASSERT_TRUE(a.write_feature_v2);
}

TEST(frontend_fatal_error_in_initwait_mirrored) {
        DevMachine m;
        DevView v;
        DevActions a;

        dev_machine_init(&m, 0);
        v = view(XENBUS_INITIALISING, XENBUS_INITIALISING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        v = view(XENBUS_INITWAIT, XENBUS_CLOSING, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_CLOSING);
        v = view(XENBUS_CLOSING, XENBUS_CLOSED, false);
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_EQ(a.write_state, XENBUS_INITWAIT);
}

TEST(state_names) {
        ASSERT_STREQ(xenbus_state_to_string(4), "Connected");
        ASSERT_STREQ(xenbus_state_to_string(-1), "(missing)");
        ASSERT_STREQ(xenbus_state_to_string(9), "(missing)");
        ASSERT_STREQ(dev_phase_to_string(DEV_FAILED), "failed");
}

/* Found by fuzz-xenbus: a restarted daemon finding be=5 and a frontend back
 * at 4 must still insist on protocol v2 before starting a worker. */
TEST(restart_in_closing_requires_protocol_v2) {
        DevMachine m;
        DevActions a;
        DevView v = view(XENBUS_CLOSING, XENBUS_CONNECTED, true);

        dev_machine_init(&m, DWELL);
        v.fe_protocol_v2 = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_FALSE(a.start_worker);
        ASSERT_EQ(m.phase, DEV_FAILED);
}

/* Found by fuzz-xenbus: a resume whose frontend no longer offers protocol v2. */
TEST(resume_without_protocol_v2_fails) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        v.ring_ref = 300;
        v.fe_protocol_v2 = false;
        dev_machine_step(&m, DEV_EV_XENSTORE, &v, &a);
        ASSERT_TRUE(a.stop_worker);
        ASSERT_FALSE(a.start_worker);
        ASSERT_TRUE(a.error != NULL);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
}

TEST(state_failure_closes_with_error) {
        DevMachine m;
        DevView v;
        DevActions a;

        connect(&m, &v);
        dev_machine_step(&m, DEV_EV_STATE_FAILED, &v, &a);
        ASSERT_TRUE(a.error != NULL);
        ASSERT_FALSE(a.stop_worker);
        ASSERT_EQ(a.write_state, XENBUS_CLOSED);
        ASSERT_EQ(m.phase, DEV_FAILED);
}
