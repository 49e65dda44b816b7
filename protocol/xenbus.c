/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stddef.h>

#include "xenbus.h"

void dev_machine_init(DevMachine *m, uint64_t initwait_dwell_ns) {
        *m = (DevMachine){
                .phase = DEV_NEW,
                .initwait_dwell_ns = initwait_dwell_ns,
        };
}

static void stop_worker(DevMachine *m, DevActions *a, IpcStopMode mode) {
        if (!m->worker)
                return;
        a->stop_worker = true;
        a->stop_mode = mode;
        m->worker = false;
        m->quiet = false;
}

static void start_worker(DevMachine *m, const DevView *v, DevActions *a) {
        a->start_worker = true;
        a->ring_ref = m->ring_ref = v->ring_ref;
        a->evtchn = m->evtchn = v->evtchn;
        m->worker = true;
        m->phase = DEV_CONNECTING;
}

/* The device ends (removed, or its frontend dir gone): a suspended domain's vTPM is kept for its resume. */
static void end_worker(DevMachine *m, const DevView *v, DevActions *a) {
        if (v->domain_suspended) {
                a->suspend_vtpm = m->worker;
                stop_worker(m, a, IPC_STOP_SUSPEND);
                return;
        }
        stop_worker(m, a, IPC_STOP_RESET);
}

/* The device ends while its domain is suspended (xl save): backend state 6 tells libxl the
 * device let go, and it then destroys the domain, so 6 waits until the saved state is durable
 * (DEV_EV_RELEASED) or XENBUS_SAVE_WAIT_NS passed. True while 6 must wait. */
static bool hold_close(DevMachine *m, const DevView *v, DevEvent ev, DevActions *a, bool saving) {
        if (saving) {
                m->close_pending = true;
                a->timer_ns = v->now_ns + XENBUS_SAVE_WAIT_NS;
                a->log = "device removed while its domain is suspended; closing once the vTPM is saved";
                return true;
        }
        if (!m->close_pending)
                return false;
        if (ev != DEV_EV_RELEASED && ev != DEV_EV_TIMER)
                return true;
        m->close_pending = false;
        if (ev == DEV_EV_TIMER)
                a->log = "the vTPM's save did not end in time; closing the device anyway";
        return false;
}

static void fail(DevMachine *m, DevActions *a, const char *why, int code) {
        stop_worker(m, a, IPC_STOP_RESET);
        a->error = why;
        a->error_code = code;
        a->write_state = XENBUS_CLOSED;
        a->log = why;
        m->phase = DEV_FAILED;
}

static void enter_initwait(DevMachine *m, const DevView *v, DevActions *a, bool dwell) {
        m->retried = false;
        a->write_feature_v2 = true;
        a->write_state = XENBUS_INITWAIT;
        m->phase = DEV_INIT_WAIT;
        m->initwait_since_ns = dwell ? v->now_ns : 0;
}

static bool frontend_has_ring(const DevView *v) {
        return (v->fe_state == XENBUS_INITIALISED || v->fe_state == XENBUS_CONNECTED) && v->ring_valid;
}

/* The frontend has closed (6) or been reset to Initialising (1) or lost its state. */
static bool frontend_closed(const DevView *v) {
        return v->fe_state == XENBUS_CLOSED || v->fe_state == XENBUS_INITIALISING || v->fe_state < 0 ||
               v->fe_state == XENBUS_UNKNOWN;
}

static void try_connect(DevMachine *m, const DevView *v, DevActions *a) {
        if (!frontend_has_ring(v))
                return;
        if (!v->fe_protocol_v2) {
                fail(m, a, "frontend does not offer feature-protocol-v2", EPROTONOSUPPORT);
                return;
        }
        if (m->initwait_since_ns && v->now_ns < m->initwait_since_ns + m->initwait_dwell_ns) {
                /* libxl waits to read exactly InitWait; keep it visible for a moment. */
                a->timer_ns = m->initwait_since_ns + m->initwait_dwell_ns;
                return;
        }
        if (v->holder == DEV_HOLDER_RUNNING) {
                /* Two live copies of one vTPM, never (an image restored twice, a uuid in two configs). */
                fail(m, a, v->holder_error ?: "the vTPM is in use by another device", EBUSY);
                return;
        }
        start_worker(m, v, a);
        if (v->holder == DEV_HOLDER_SUSPENDED) {
                a->take_over = true;
                a->log = "frontend ring published, taking the vTPM over from its suspended domain";
                return;
        }
        a->log = "frontend ring published, starting worker";
}

/* Frontend transitions that matter once a worker exists or the device is up. */
static void follow_frontend(DevMachine *m, const DevView *v, DevActions *a) {
        if (v->fe_state == XENBUS_CLOSING) {
                if (m->phase != DEV_CLOSING) {
                        a->write_state = XENBUS_CLOSING;
                        a->log = "frontend closing";
                        m->phase = DEV_CLOSING;
                }
                return;
        }
        if (frontend_closed(v)) {
                stop_worker(m, a, IPC_STOP_RESET);
                /* Back to InitWait so a reloaded frontend (6 -> 3 without passing 1) can reconnect. */
                enter_initwait(m, v, a, false);
                a->write_feature_v2 = false;
                a->log = "frontend closed, back to InitWait";
                return;
        }
        if (frontend_has_ring(v) && m->worker && (v->ring_ref != m->ring_ref || v->evtchn != m->evtchn)) {
                /* Resume: the frontend re-probed with a new page and port. */
                stop_worker(m, a, IPC_STOP_SUSPEND);
                if (!v->fe_protocol_v2) {
                        fail(m, a, "frontend does not offer feature-protocol-v2", EPROTONOSUPPORT);
                        return;
                }
                start_worker(m, v, a);
                a->log = "frontend published a new ring, reconnecting";
                return;
        }
        if (frontend_has_ring(v) && !m->worker && m->phase == DEV_CLOSING) {
                /* The frontend went back up without closing (should not happen); reconnect. */
                m->initwait_since_ns = 0;
                try_connect(m, v, a);
        }
}

void dev_machine_step(DevMachine *m, DevEvent ev, const DevView *v, DevActions *a) {
        *a = (DevActions){ .write_state = -1 };

        if (m->phase == DEV_GONE)
                return;

        if (ev == DEV_EV_DOMAIN_GONE || !v->backend_present) {
                end_worker(m, v, a);
                a->forget = true;
                a->log = ev == DEV_EV_DOMAIN_GONE ? "domain released" : "backend directory removed";
                m->phase = DEV_GONE;
                return;
        }

        if (m->phase == DEV_FAILED)
                return;

        if (v->config_error) {
                fail(m, a, v->config_error, EINVAL);
                return;
        }

        if (ev == DEV_EV_HANDOVER) {
                /* A migration's destination connected: this device's domain never serves again. */
                if (m->phase != DEV_SUSPENDED) {
                        a->suspend_vtpm = true;
                        stop_worker(m, a, IPC_STOP_SUSPEND);
                        a->log = "vTPM handed over to the migrated domain";
                        m->phase = DEV_SUSPENDED;
                }
                return;
        }

        switch (ev) {
        case DEV_EV_HANDOVER:
                return;
        case DEV_EV_RELEASED:
                break;
        case DEV_EV_GIVE_UP:
                fail(m, a, "worker crashed repeatedly, giving up on this device", EIO);
                return;
        case DEV_EV_STATE_FAILED:
                m->worker = false;
                fail(m, a, "the vTPM's state cannot be loaded; not starting it", EIO);
                return;
        case DEV_EV_WORKER_FAILED:
                m->worker = false;
                if (!m->retried && m->phase == DEV_CONNECTING && frontend_has_ring(v)) {
                        m->retried = true;
                        a->timer_ns = v->now_ns + XENBUS_MAP_RETRY_NS;
                        a->log = "could not map the frontend's ring or bind its event channel; trying once more";
                        return;
                }
                fail(m, a, "could not map the frontend's ring or bind its event channel", ENXIO);
                return;
        case DEV_EV_WORKER_READY:
                m->retried = false;
                if (m->phase == DEV_CONNECTING && m->worker) {
                        if (!m->quiet && v->be_state != XENBUS_CONNECTED)
                                a->write_state = XENBUS_CONNECTED;
                        a->log = m->quiet ? "re-attached to connected frontend" : "connected";
                        m->quiet = false;
                        m->phase = DEV_CONNECTED;
                }
                break;
        case DEV_EV_WORKER_EXITED:
                /* The daemon restarts the worker itself without moving xenbus state. */
                break;
        case DEV_EV_XENSTORE:
        case DEV_EV_TIMER:
        case DEV_EV_DOMAIN_GONE:
                break;
        }

        if (v->online == 0) {
                /* libxl's remove: online=0 and (unless already 6) be=5; it waits for 6. */
                bool saving = m->worker && v->domain_suspended;
                end_worker(m, v, a);
                if (hold_close(m, v, ev, a, saving)) {
                        m->phase = DEV_CLOSED;
                        return;
                }
                if (m->phase != DEV_CLOSED || v->be_state != XENBUS_CLOSED) {
                        if (v->be_state != XENBUS_CLOSED)
                                a->write_state = XENBUS_CLOSED;
                        if (m->phase != DEV_CLOSED)
                                a->log = "device taken offline by the toolstack";
                        m->phase = DEV_CLOSED;
                }
                return;
        }

        if (!v->frontend_present) {
                if (m->phase != DEV_CLOSED || m->close_pending) {
                        bool saving = m->worker && v->domain_suspended;
                        end_worker(m, v, a);
                        m->phase = DEV_CLOSED;
                        if (hold_close(m, v, ev, a, saving))
                                return;
                        a->write_state = XENBUS_CLOSED;
                        if (!a->log)
                                a->log = "frontend directory removed";
                }
                return;
        }

        switch (m->phase) {
        case DEV_NEW:
                if (v->be_state == XENBUS_CONNECTED && v->domain_suspended) {
                        /* Daemon restart while the domain is suspended (saved or migrating):
                         * the state the stop saved is what its resume continues from. */
                        a->suspend_vtpm = true;
                        a->log = "domain suspended, keeping its vTPM for the resume";
                        m->phase = DEV_SUSPENDED;
                        return;
                }
                if (v->be_state == XENBUS_CONNECTED && frontend_has_ring(v) && v->fe_protocol_v2) {
                        /* Daemon restart: re-map and re-bind without moving any state. */
                        start_worker(m, v, a);
                        m->quiet = true;
                        a->log = "re-attaching to connected frontend";
                        return;
                }
                if (v->be_state == XENBUS_CLOSING) {
                        m->phase = DEV_CLOSING;
                        follow_frontend(m, v, a);
                        return;
                }
                if (v->be_state == XENBUS_CLOSED) {
                        m->phase = DEV_CLOSED;
                        return;
                }
                enter_initwait(m, v, a, true);
                a->timer_ns = v->now_ns + m->initwait_dwell_ns;
                a->log = "new device, InitWait";
                return;

        case DEV_INIT_WAIT:
                if (v->fe_state == XENBUS_CLOSING) {
                        a->write_state = XENBUS_CLOSING;
                        m->phase = DEV_CLOSING;
                        a->log = "frontend closing";
                        return;
                }
                try_connect(m, v, a);
                return;

        case DEV_CONNECTING:
                if (!m->worker && ev == DEV_EV_TIMER && frontend_has_ring(v) && v->fe_protocol_v2) {
                        /* The retry after a failed map (XENBUS_MAP_RETRY_NS). */
                        start_worker(m, v, a);
                        a->log = "starting the worker again";
                        return;
                }
                follow_frontend(m, v, a);
                return;
        case DEV_CONNECTED:
        case DEV_CLOSING:
                follow_frontend(m, v, a);
                return;

        case DEV_CLOSED:
                if (v->fe_state == XENBUS_INITIALISING && v->be_state == XENBUS_INITIALISING) {
                        /* The toolstack re-created the device. */
                        enter_initwait(m, v, a, true);
                        a->timer_ns = v->now_ns + m->initwait_dwell_ns;
                        a->log = "device re-created, InitWait";
                }
                return;

        case DEV_SUSPENDED:
                /* Its domain sends nothing; the device waits for its removal. */
        case DEV_FAILED:
        case DEV_GONE:
                return;
        }
}

const char *dev_phase_to_string(DevPhase p) {
        switch (p) {
        case DEV_NEW:
                return "new";
        case DEV_INIT_WAIT:
                return "initwait";
        case DEV_CONNECTING:
                return "connecting";
        case DEV_CONNECTED:
                return "connected";
        case DEV_CLOSING:
                return "closing";
        case DEV_CLOSED:
                return "closed";
        case DEV_FAILED:
                return "failed";
        case DEV_SUSPENDED:
                return "suspended";
        case DEV_GONE:
                return "gone";
        }
        return "invalid";
}

const char *xenbus_state_to_string(int s) {
        static const char *const names[] = {
                "Unknown", "Initialising", "InitWait", "Initialised", "Connected",
                "Closing", "Closed",       "Reconfiguring", "Reconfigured",
        };
        if (s < 0 || (size_t) s >= sizeof(names) / sizeof(names[0]))
                return "(missing)";
        return names[s];
}
