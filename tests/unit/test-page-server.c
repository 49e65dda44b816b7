/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The page server driven with byte arrays and a fake TPM, the way
 * test-xenbus drives the xenbus machine: each case writes a header (and a
 * command) into a page, runs page_server_check() and optionally completes a
 * pending command, then checks what the guest would see: the state and
 * length bytes, the response's TPM return code, how often it was notified,
 * what the TPM was asked to run or cancel, and the counters.
 */
#include "page-server.h"
#include "test.h"
#include "tpm.h"
#include "tpmif.h"
#include "util.h"

#define PAGE 4096u
#define NONE 0xFFu

/* The fake TPM. */
static struct {
        unsigned runs, cancels, notifies;
        size_t last_len;
        uint8_t last_locality;
        bool pend;                 /* answer the next long command later */
        int r;                     /* run's result for a synchronous answer */
        uint8_t resp[PAGE + 16];   /* its response */
        size_t resp_len;
} tpm;

static int fake_run(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, bool quick,
                    const uint8_t **ret_resp, size_t *ret_len) {
        tpm.runs++;
        tpm.last_len = len;
        tpm.last_locality = locality;
        if (tpm.pend && !quick)
                return PAGE_SERVER_PENDING;
        *ret_resp = tpm.resp;
        *ret_len = tpm.resp_len;
        return tpm.r;
}

static void fake_cancel(void *userdata) {
        tpm.cancels++;
}

static void fake_notify(void *userdata) {
        tpm.notifies++;
}

static const PageServerOps ops = { .run = fake_run, .cancel = fake_cancel, .notify = fake_notify };

static uint8_t page[PAGE];

static void fake_reset(void) {
        memset(&tpm, 0, sizeof(tpm));
        /* A well-formed TPM 2.0 success response of 14 bytes. */
        tpm.resp_len = 14;
        tpm_put_be16(tpm.resp, 0x8001);
        tpm_put_be32(tpm.resp + 2, 14);
        tpm_put_be32(tpm.resp + 6, 0);
}

static void put_header(uint32_t length, uint8_t state, uint8_t locality, uint8_t nr_extra) {
        /* The length is in the guest's byte order, which is ours (x86). */
        memcpy(page + TPMIF_OFF_LENGTH, &length, 4);
        page[TPMIF_OFF_STATE] = state;
        page[TPMIF_OFF_LOCALITY] = locality;
        page[TPMIF_OFF_PAD] = 0;
        page[TPMIF_OFF_NR_EXTRA] = nr_extra;
}

static uint32_t page_length(void) {
        uint32_t v;
        memcpy(&v, page + TPMIF_OFF_LENGTH, 4);
        return v;
}

/* A TPM 2.0 command at the page's command offset: GetRandom is quick, anything else is long. */
static void put_command(uint32_t offset, bool quick, size_t len) {
        uint8_t *c = page + offset;
        if (offset + len > PAGE)
                len = PAGE - offset;
        memset(c, 0, len);
        if (len < TPM_HEADER_SIZE)
                return;
        tpm_put_be16(c, 0x8001);
        tpm_put_be32(c + 2, (uint32_t) len);
        tpm_put_be32(c + 6, quick ? 0x17B /* TPM2_CC_GetRandom */ : 0x131 /* TPM2_CC_CreatePrimary */);
}

/* A long command is running: handed to the (fake) TPM thread, not completed. */
static void start_long_command(PageServer *ps) {
        tpm.pend = true;
        put_header(12, TPMIF_STATE_SUBMIT, 0, 0);
        put_command(TPMIF_HEADER_SIZE, false, 12);
        page_server_check(ps);
}

static PageServer *server_new(TpmFamily family, size_t page_size) {
        PageServer *ps = NULL;
        PageServerConfig c = {
                .page = page,
                .page_size = page_size,
                .command_max = 4088,
                .family = family,
                .ops = &ops,
        };
        memset(page, 0, sizeof(page));
        fake_reset();
        if (page_server_new(&c, &ps) < 0)
                return NULL;
        return ps;
}

typedef struct Case {
        const char *name;
        /* the request */
        uint32_t length;
        uint8_t state;
        uint8_t nr_extra;
        bool quick;
        /* the fake TPM */
        int run_r;
        size_t resp_len; /* 0: the default 14-byte response; its size field says 14 */
        /* what the guest sees */
        uint8_t want_state;
        uint32_t want_length;
        uint32_t want_rc;       /* of the response at offset 8, if want_state is FINISH */
        unsigned want_runs, want_notifies;
        uint64_t want_commands, want_rejected, want_cancels;
        /* a mapping smaller than a page (0: a whole page), and where the guest finds the response there */
        size_t page_size;
        uint32_t want_offset; /* 0: the request's offset */
} Case;

#define RC_SIZE TPM2_RC_COMMAND_SIZE
#define RC_FAIL TPM2_RC_FAILURE
#define SMALL_PAGE (TPMIF_HEADER_SIZE + TPM_HEADER_SIZE)
#define BEYOND 0x5Au /* what lies past a small mapping: not the guest's page */

static const Case cases[] = {
        /* Nothing asked: no answer, the page untouched. */
        { "idle", 0, TPMIF_STATE_IDLE, 0, true, 0, 0, TPMIF_STATE_IDLE, 0, 0, 0, 0, 0, 0, 0 },
        { "finish", 14, TPMIF_STATE_FINISH, 0, true, 0, 0, TPMIF_STATE_FINISH, 14, 0, 0, 0, 0, 0, 0 },
        /* An unknown state byte: FINISH with TPM failure, never left as it was. */
        { "state_4", 12, 4, 0, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1, 0, 1, 0 },
        { "state_255", 12, 255, 0, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1, 0, 1, 0 },
        /* Length boundaries: 10 is the smallest TPM command, 4088 fills the page after the header. */
        { "length_9", 9, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_SIZE, 0, 1, 0, 1, 0 },
        { "length_10", 10, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 14, 0, 1, 1, 1, 0, 0 },
        { "length_4087", 4087, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 14, 0, 1, 1, 1, 0, 0 },
        { "length_4088", 4088, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 14, 0, 1, 1, 1, 0, 0 },
        { "length_4089", 4089, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_SIZE, 0, 1, 0, 1, 0 },
        { "length_max", 0xFFFFFFFFu, TPMIF_STATE_SUBMIT, 0, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_SIZE, 0, 1, 0, 1,
          0 },
        /* nr_extra_pages is not supported (like every known backend): a failure, placed where it fits. */
        { "extra_pages_1", 12, TPMIF_STATE_SUBMIT, 1, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1, 0, 1, 0 },
        { "extra_pages_255", 12, TPMIF_STATE_SUBMIT, 255, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1, 0, 1,
          0 },
        /* The TPM's answer: failed, too large for the page, or not one whole TPM response. */
        { "run_failed", 12, TPMIF_STATE_SUBMIT, 0, true, -EIO, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 1, 1, 0, 0, 0 },
        { "response_too_big", 12, TPMIF_STATE_SUBMIT, 0, true, 0, 4089, TPMIF_STATE_FINISH, 10, RC_FAIL, 1, 1, 0, 0,
          0 },
        { "response_size_mismatch", 12, TPMIF_STATE_SUBMIT, 0, true, 0, 20, TPMIF_STATE_FINISH, 10, RC_FAIL, 1, 1, 0,
          0, 0 },
        /* The smallest mapping the server takes, the header and a 10-byte command: where nr_extra_pages leaves no
         * room for the error response (6 bytes, or none past the end), it goes after the header instead. */
        { "small_page_extra_pages_1", 10, TPMIF_STATE_SUBMIT, 1, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1,
          0, 1, 0, SMALL_PAGE, TPMIF_HEADER_SIZE },
        { "small_page_extra_pages_3", 10, TPMIF_STATE_SUBMIT, 3, true, 0, 0, TPMIF_STATE_FINISH, 10, RC_FAIL, 0, 1,
          0, 1, 0, SMALL_PAGE, TPMIF_HEADER_SIZE },
        /* CANCEL while idle: IDLE, length 0, notified. */
        { "cancel_idle", 12, TPMIF_STATE_CANCEL, 0, true, 0, 0, TPMIF_STATE_IDLE, 0, 0, 0, 1, 0, 0, 1 },
};

static void run_case(const Case *c, TpmFamily family) {
        size_t size = c->page_size ? c->page_size : PAGE;
        PageServer *ps = server_new(family, size);
        ASSERT_TRUE(ps);

        tpm.r = c->run_r;
        if (c->resp_len)
                tpm.resp_len = c->resp_len; /* its size field still says 14 ... */
        if (c->resp_len > PAGE - TPMIF_HEADER_SIZE)
                tpm_put_be32(tpm.resp + 2, (uint32_t) c->resp_len); /* ... but a whole one that does not fit */
        put_header(c->length, c->state, 2, c->nr_extra);
        put_command(TPMIF_HEADER_SIZE + 4u * c->nr_extra, c->quick, c->length <= PAGE ? c->length : 12);
        if (c->state == TPMIF_STATE_FINISH)
                memcpy(page + TPMIF_OFF_LENGTH, &c->length, 4);
        memset(page + size, BEYOND, PAGE - size);

        page_server_check(ps);

        const IpcStats *st = page_server_stats(ps);
        fprintf(stderr, "  case %s (TPM %s)\n", c->name, family == TPM_FAMILY_2_0 ? "2.0" : "1.2");
        ASSERT_EQ(page[TPMIF_OFF_STATE], c->want_state);
        ASSERT_EQ(page_length(), c->want_length);
        ASSERT_EQ(tpm.runs, c->want_runs);
        ASSERT_EQ(tpm.notifies, c->want_notifies);
        ASSERT_EQ(st->commands, c->want_commands);
        ASSERT_EQ(st->rejected, c->want_rejected);
        ASSERT_EQ(st->cancels, c->want_cancels);
        ASSERT_FALSE(page_server_busy(ps));
        if (c->want_rc && c->want_state == TPMIF_STATE_FINISH) {
                uint32_t want = c->want_rc == RC_SIZE ? tpm_rc_command_size(family) : tpm_rc_failure(family);
                TpmHeader h;
                /* After the request's offset, where it fits (nr_extra_pages moves it). */
                uint32_t off = c->want_offset ? c->want_offset : TPMIF_HEADER_SIZE + 4u * c->nr_extra;
                ASSERT_OK(tpm_header_parse(page + off, 10, &h));
                ASSERT_EQ(h.size, 10);
                ASSERT_EQ(h.code, want);
        }
        for (size_t i = size; i < PAGE; i++)
                ASSERT_EQ(page[i], BEYOND);
        if (c->want_runs) {
                ASSERT_EQ(tpm.last_len, c->length);
                ASSERT_EQ(tpm.last_locality, 2);
        }
        page_server_free(ps);
}

TEST(every_header_state_and_boundary_tpm2) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                run_case(&cases[i], TPM_FAMILY_2_0);
                if (test_failed_current)
                        return;
        }
}

TEST(every_header_state_and_boundary_tpm12) {
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                run_case(&cases[i], TPM_FAMILY_1_2);
                if (test_failed_current)
                        return;
        }
}

/* A long command goes to the TPM thread; while it runs the page still says
 * SUBMIT, events change nothing, a CANCEL reaches the TPM on every event but
 * is counted once, a rewritten header is ignored, and the completion posts
 * the running command's answer. */
TEST(long_command_cancel_and_rewrite_while_busy) {
        PageServer *ps = server_new(TPM_FAMILY_2_0, PAGE);
        ASSERT_TRUE(ps);
        start_long_command(ps);
        ASSERT_TRUE(page_server_busy(ps));
        ASSERT_EQ(tpm.runs, 1);
        ASSERT_EQ(tpm.notifies, 0);
        ASSERT_EQ(page[TPMIF_OFF_STATE], TPMIF_STATE_SUBMIT);

        page_server_check(ps); /* a spurious event: no second run */
        ASSERT_EQ(tpm.runs, 1);

        page[TPMIF_OFF_STATE] = TPMIF_STATE_CANCEL;
        page_server_check(ps);
        page_server_check(ps);
        ASSERT_EQ(tpm.cancels, 2);
        ASSERT_EQ(page_server_stats(ps)->cancels, 1);
        ASSERT_EQ(page[TPMIF_OFF_STATE], TPMIF_STATE_CANCEL);

        put_header(0xFFFFFFFFu, 7, 0, 9); /* rewritten: invalid, but we are busy */
        page_server_check(ps);
        ASSERT_EQ(page_server_stats(ps)->rejected, 0);
        ASSERT_EQ(tpm.notifies, 0);

        page_server_complete(ps, 0, tpm.resp, tpm.resp_len);
        ASSERT_FALSE(page_server_busy(ps));
        ASSERT_EQ(page[TPMIF_OFF_STATE], TPMIF_STATE_FINISH);
        ASSERT_EQ(page_length(), 14);
        ASSERT_MEMEQ(page + TPMIF_HEADER_SIZE, tpm.resp, 14);
        ASSERT_EQ(tpm.notifies, 1);
        ASSERT_EQ(page_server_stats(ps)->commands, 1);

        /* A late completion with nothing pending changes nothing. */
        page_server_complete(ps, 0, tpm.resp, tpm.resp_len);
        ASSERT_EQ(tpm.notifies, 1);
        page_server_free(ps);
}

/* A long command that fails on the TPM thread still ends in FINISH. */
TEST(long_command_failed_on_the_tpm_thread) {
        PageServer *ps = server_new(TPM_FAMILY_2_0, PAGE);
        ASSERT_TRUE(ps);
        start_long_command(ps);
        page_server_complete(ps, -EIO, NULL, 0);
        ASSERT_EQ(page[TPMIF_OFF_STATE], TPMIF_STATE_FINISH);
        ASSERT_EQ(page_length(), 10);
        TpmHeader h;
        ASSERT_OK(tpm_header_parse(page + TPMIF_HEADER_SIZE, 10, &h));
        ASSERT_EQ(h.code, TPM2_RC_FAILURE);
        ASSERT_EQ(page_server_stats(ps)->commands, 0);
        page_server_free(ps);
}

/* The command the TPM runs is the server's private copy: the guest
 * rewriting the page after the check cannot change it. */
TEST(command_is_copied_once) {
        PageServer *ps = server_new(TPM_FAMILY_2_0, PAGE);
        ASSERT_TRUE(ps);
        start_long_command(ps);
        memset(page + TPMIF_HEADER_SIZE, 0xEE, 12);
        /* The fake cannot see the copy; the server must still answer after the rewrite. */
        page_server_complete(ps, 0, tpm.resp, tpm.resp_len);
        ASSERT_EQ(page[TPMIF_OFF_STATE], TPMIF_STATE_FINISH);
        ASSERT_EQ(tpm.last_len, 12);
        page_server_free(ps);
}

TEST(bad_configuration_is_refused) {
        PageServer *ps = NULL;
        PageServerConfig c = { .page = page, .page_size = 8, .command_max = 10, .ops = &ops };
        ASSERT_ERR(page_server_new(&c, &ps), -EINVAL);
        c.page_size = PAGE;
        c.ops = NULL;
        ASSERT_ERR(page_server_new(&c, &ps), -EINVAL);
        ASSERT_TRUE(ps == NULL);
}
