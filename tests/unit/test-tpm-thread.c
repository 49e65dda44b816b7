/* SPDX-License-Identifier: BSD-3-Clause */
/* The worker's TPM thread against the real libtpms, without processes: the
 * quick path answers on the caller's thread, any other command is handed to
 * the thread and answered through the done eventfd. */
#include <poll.h>
#include <unistd.h>

#include "../common/tpm-cmd.h"
#include "page-server.h"
#include "test.h"
#include "tpm-thread.h"
#include "util.h"
#include "worker-state.h"

/* One libtpms instance per process at a time: each case builds and frees
 * its own, with a command buffer and the last answer. */
typedef struct Fixture {
        WorkerState *state;
        TpmThread *t;
        uint8_t cmd[TPM_MAX_PACKET];
        size_t cmd_len;
        const uint8_t *resp;
        size_t len;
        int r;
} Fixture;

static size_t build_get_random(uint8_t *b, uint16_t n);

/* A powered-on TPM 2.0 on a memory store (no DURABLE), its thread not
 * started, and GetRandom(n) in the command buffer. */
static void fixture_new(Fixture *f, uint16_t n) {
        IpcStart start = { .family = TPM_FAMILY_2_0 };
        TpmInstance *tpm = NULL;
        IpcStage stage = 0;
        uint32_t rc = 0;

        REQUIRE_OK(worker_state_new(&start, -1, -1, &f->state));
        REQUIRE(worker_state_restore(f->state, TPM_FAMILY_2_0, &tpm, &stage) == 0, "restore failed at stage %u",
                stage);
        REQUIRE_OK(tpm_thread_new(TPM_FAMILY_2_0, tpm, f->state, &f->t));
        REQUIRE_OK(tpm_instance_startup(tpm_thread_instance(f->t), &rc));
        REQUIRE_OK(tpm_thread_open_done(f->t));
        f->cmd_len = build_get_random(f->cmd, n);
}

static void fixture_free(Fixture *f) {
        f->t = tpm_thread_free(f->t);
        f->state = worker_state_free(f->state);
}

static size_t build_get_random(uint8_t *b, uint16_t n) {
        TpmCmd c;
        tpmcmd_begin(&c, TPM2_ST_NO_SESSIONS, TPM2_CC_GET_RANDOM);
        tpmcmd_u16(&c, n);
        tpmcmd_end(&c);
        memcpy(b, c.b, c.n);
        return c.n;
}

/* A whole TPM 2.0 success response: rc 0 and the size field equal to its length. */
static bool response_ok(const uint8_t *resp, size_t len) {
        return resp && len >= TPM_HEADER_SIZE && tpm_be32(resp + 2) == len && tpm_be32(resp + 6) == 0;
}

static bool done_within(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

TEST(quick_command_is_answered_on_the_callers_thread) {
        Fixture f = {};

        fixture_new(&f, 16);
        /* The thread is not even started: only an inline answer can come. */
        f.r = tpm_thread_page_run(f.t, f.cmd, f.cmd_len, 0, true, &f.resp, &f.len);
        bool ok = f.r == 0 && response_ok(f.resp, f.len) && f.len == TPM_HEADER_SIZE + 2 + 16;
        bool signalled = done_within(tpm_thread_done_fd(f.t), 0);
        bool result = tpm_thread_take_result(f.t, &f.r, &f.resp, &f.len);
        fixture_free(&f);
        ASSERT_TRUE(ok);
        ASSERT_FALSE(signalled);
        ASSERT_FALSE(result);
}

TEST(handed_over_command_is_answered_through_the_done_eventfd) {
        Fixture f = {};

        fixture_new(&f, 16);
        REQUIRE_OK(tpm_thread_start(f.t));
        f.cmd_len = tpmcmd_create_primary(f.cmd, 1);
        int pending = tpm_thread_page_run(f.t, f.cmd, f.cmd_len, 0, false, &f.resp, &f.len);
        /* RSA-2048 key generation: well under the deadline on any machine that runs the suite. */
        bool signalled = pending == PAGE_SERVER_PENDING && done_within(tpm_thread_done_fd(f.t), 60000);
        bool ok = signalled && tpm_thread_take_result(f.t, &f.r, &f.resp, &f.len) && f.r >= 0 &&
                  response_ok(f.resp, f.len);
        bool again = tpm_thread_take_result(f.t, &f.r, &f.resp, &f.len);
        tpm_thread_stop(f.t);
        bool usable_after_stop = tpm_thread_instance(f.t) != NULL;
        fixture_free(&f);
        ASSERT_EQ(pending, PAGE_SERVER_PENDING);
        ASSERT_TRUE(signalled);
        ASSERT_TRUE(ok);
        ASSERT_FALSE(again);
        ASSERT_TRUE(usable_after_stop);
}

TEST(stop_without_a_command_joins_and_the_caller_owns_libtpms_again) {
        Fixture f = {};

        fixture_new(&f, 8);
        REQUIRE_OK(tpm_thread_start(f.t));
        tpm_thread_stop(f.t);
        tpm_thread_stop(f.t); /* a second stop is harmless: setup_free stops again */
        f.r = tpm_thread_run(f.t, f.cmd, f.cmd_len, 0, &f.resp, &f.len);
        bool ok = f.r >= 0 && response_ok(f.resp, f.len);
        tpm_thread_shutdown(f.t);
        fixture_free(&f);
        ASSERT_TRUE(ok);
}
