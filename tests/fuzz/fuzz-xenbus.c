/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Drives the xenbus state machine with arbitrary sequences of events and
 * xenstore views (what a toolstack and a frontend can write, in any order)
 * and aborts when an invariant breaks:
 *  - a worker is started only for a frontend that published a ring with
 *    protocol v2, on an online device whose keys are valid;
 *  - never two workers: a start while one runs comes with a stop;
 *  - only states 2, 4, 5, 6 are written, 4 only when a worker is ready;
 *  - nothing is written once the backend dir is gone; a forgotten device stays silent.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xenbus.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STEP_BYTES 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DevMachine m;
        bool running = false, gone = false;
        uint64_t now = 1000000000ull;

        dev_machine_init(&m, size ? (uint64_t) data[0] * 1000000ull : 0);
        for (size_t off = 1; off + STEP_BYTES <= size; off += STEP_BYTES) {
                const uint8_t *b = data + off;
                DevEvent ev = (DevEvent) (b[0] % (DEV_EV_DOMAIN_GONE + 1));
                DevActions a;
                DevView v = {
                        .backend_present = !(b[1] & 0x01),
                        .online = (b[1] >> 1) % 3 - 1,
                        .be_state = (int) (b[2] % 10) - 1,
                        .frontend_present = !(b[1] & 0x08),
                        .fe_state = (int) (b[3] % 10) - 1,
                        .ring_valid = b[1] & 0x10,
                        .ring_ref = b[4] % 4,
                        .evtchn = b[5] % 4,
                        .fe_protocol_v2 = !(b[1] & 0x20),
                        .config_error = (b[1] & 0xc0) == 0xc0 ? "bad keys" : NULL,
                };

                now += (uint64_t) b[6] * 1000000ull;
                v.now_ns = now;
                if (!v.frontend_present)
                        v.fe_state = -1;

                /* The daemon only delivers worker events for the worker it has. */
                if ((ev == DEV_EV_WORKER_READY || ev == DEV_EV_WORKER_FAILED || ev == DEV_EV_WORKER_EXITED ||
                     ev == DEV_EV_GIVE_UP) && !running)
                        ev = DEV_EV_XENSTORE;

                DevPhase before = m.phase;
                dev_machine_step(&m, ev, &v, &a);

                if (gone && (a.write_state >= 0 || a.write_feature_v2 || a.start_worker || a.error))
                        abort();
                if (!v.backend_present && (a.write_state >= 0 || a.write_feature_v2 || a.start_worker))
                        abort();
                if (a.write_state >= 0 && a.write_state != XENBUS_INITWAIT && a.write_state != XENBUS_CONNECTED &&
                    a.write_state != XENBUS_CLOSING && a.write_state != XENBUS_CLOSED)
                        abort();
                if (a.write_state == XENBUS_CONNECTED && ev != DEV_EV_WORKER_READY)
                        abort();
                if (a.start_worker) {
                        if (v.config_error || v.online == 0 || !v.frontend_present || !v.ring_valid ||
                            !v.fe_protocol_v2 || (v.fe_state != XENBUS_INITIALISED && v.fe_state != XENBUS_CONNECTED))
                                abort();
                        if (running && !a.stop_worker)
                                abort();
                        if (a.ring_ref != v.ring_ref || a.evtchn != v.evtchn)
                                abort();
                }
                if (a.stop_worker && !running && !(ev == DEV_EV_WORKER_FAILED))
                        abort();
                if (a.forget && v.backend_present && ev != DEV_EV_DOMAIN_GONE)
                        abort();
                if (a.error && m.phase != DEV_FAILED)
                        abort();
                if (before == DEV_GONE && m.phase != DEV_GONE)
                        abort();

                if (ev == DEV_EV_WORKER_FAILED || ev == DEV_EV_STATE_FAILED)
                        running = false;
                if (a.stop_worker)
                        running = false;
                if (a.start_worker)
                        running = true;
                if (running != m.worker)
                        abort();
                if (a.forget)
                        gone = true;
        }
        return 0;
}
