/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The host-TPM sealer against a real swtpm (tests/common/hosttpm-swtpm.c),
 * one fresh TPM per test, checked from outside with tpm2-tools and the swtpm
 * hex-dump log. Two swtpms are two hosts of a pool for the transfer key.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hosttpm-swtpm.h"
#include "pool-key.h"
#include "sealer.h"
#include "test.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(HostTpmSim *, hosttpm_sim_stop);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostTpm *, host_tpm_close);
#define _cleanup_sim_ _cleanup_(hosttpm_sim_stopp)
#define _cleanup_tpm_ _cleanup_(host_tpm_closep)

#define NV_INDEX 0x01800156u

static HostTpmConfig config(const HostTpmSim *s) {
        return (HostTpmConfig){ .tcti = hosttpm_sim_tcti(s) };
}

static void random_key(uint8_t key[32]) {
        size_t n = 0;
        while (n < 32) {
                ssize_t k = getrandom(key + n, 32 - n, 0);
                if (k > 0)
                        n += (size_t) k;
        }
}

/* Commands the swtpm log shows so far: an independent count of what crossed the wire. */
static long log_commands(HostTpmSim *s) {
        HostTpmSimMsg *m = NULL;
        size_t n = 0;
        long c = 0;

        if (hosttpm_sim_log_messages(s, &m, &n) < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                c += m[i].command;
        hosttpm_sim_msgs_free(m, n);
        return c;
}

/* tpm2_getcap prints one "- 0x..." line per handle, nothing when there is none. */
static int count_handles(HostTpmSim *s, const char *kind) {
        const char *argv[] = { "tpm2_getcap", kind, NULL };
        _cleanup_free_ char *out = NULL;
        int n = 0, r;

        r = hosttpm_sim_tool(s, argv, &out);
        if (r != 0)
                return r > 0 ? -EIO : r;
        for (const char *p = out; (p = strstr(p, "0x")); p += 2)
                n++;
        return n;
}

/* Runs a tpm2-tools command against the simulated host TPM; its exit status. */
#define TOOL(s, ...) hosttpm_sim_tool((s), (const char *const[]){ __VA_ARGS__, NULL }, NULL)

static int extend_pcr16(HostTpmSim *s) {
        return TOOL(s, "tpm2_pcrextend", "16:sha256=0101010101010101010101010101010101010101010101010101010101010101");
}

/* Unseals in a new process (fork + new ESAPI context): 0 if it got `key`. */
static int unseal_in_child(const HostTpmConfig *c, const uint8_t *blob, size_t len, const uint8_t key[32]) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                HostTpm *t = NULL;
                uint8_t got[32];
                int r = host_tpm_open(c, &t);
                if (r < 0)
                        _exit(2);
                r = host_tpm_unseal(t, blob, len, got);
                host_tpm_close(t);
                _exit(r < 0 ? 3 : memcmp(got, key, 32) == 0 ? 0 : 4);
        }
        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(seal_then_unseal_in_fresh_processes_and_after_restart) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        HostTpmConfig c;
        uint8_t key[32], got[32];
        size_t len = 0;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        random_key(key);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
        }
        ASSERT_TRUE(len > 100);
        ASSERT_MEMEQ(blob, "VTPMSEAL", 8);
        ASSERT_TRUE(memmem(blob, len, key, 32) == NULL);

        ASSERT_EQ(unseal_in_child(&c, blob, len, key), 0);
        ASSERT_EQ(unseal_in_child(&c, blob, len, key), 0);

        /* A host reboot: swtpm state kept, PCRs and loaded objects gone. */
        ASSERT_OK(hosttpm_sim_restart(s));
        ASSERT_EQ(unseal_in_child(&c, blob, len, key), 0);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                memset(got, 0, sizeof(got));
                ASSERT_OK(host_tpm_unseal(t, blob, len, got));
                ASSERT_MEMEQ(got, key, 32);
        }
}

TEST(blob_from_another_tpm_is_rejected_clearly) {
        _cleanup_sim_ HostTpmSim *a = NULL, *b = NULL;
        _cleanup_tpm_ HostTpm *ta = NULL, *tb = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        HostTpmConfig ca, cb;
        uint8_t key[32], got[32];
        size_t len = 0;

        ASSERT_OK(hosttpm_sim_start(&a));
        ASSERT_OK(hosttpm_sim_start(&b)); /* fresh state directory: new seeds, a different TPM */
        ca = config(a);
        cb = config(b);
        random_key(key);
        ASSERT_OK(host_tpm_open(&ca, &ta));
        ASSERT_OK(host_tpm_seal(ta, key, &blob, &len));
        ASSERT_OK(host_tpm_open(&cb, &tb));
        memset(got, 0xAA, sizeof(got));
        ASSERT_ERR(host_tpm_unseal(tb, blob, len, got), -EKEYREJECTED);
        ASSERT_TRUE(strstr(host_tpm_last_error(tb), "sealed under another SRK") != NULL);
        ASSERT_TRUE(strstr(host_tpm_last_error(tb), "cleared or replaced") != NULL);
        for (size_t i = 0; i < sizeof(got); i++)
                ASSERT_EQ(got[i], 0xAA);
        /* Refused before the blob reached the TPM: nothing left loaded either. */
        ASSERT_EQ(count_handles(b, "handles-transient"), 0);
        ASSERT_EQ(count_handles(b, "handles-loaded-session"), 0);
}

TEST(every_flipped_byte_is_refused) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL;
        _cleanup_free_ uint8_t *blob = NULL, *bad = NULL;
        HostTpmConfig c;
        uint8_t key[32], got[32];
        size_t len = 0;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        random_key(key);
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
        bad = malloc(len + 1);
        ASSERT_TRUE(bad != NULL);

        for (size_t i = 0; i < len; i++) {
                int r;
                memcpy(bad, blob, len);
                bad[i] ^= 0x5A;
                memset(got, 0xAA, sizeof(got));
                r = host_tpm_unseal(t, bad, len, got);
                if (r != -EBADMSG && r != -EKEYREJECTED)
                        TEST_FAIL_("byte %zu flipped: unseal gave %d (%s)", i, r, host_tpm_last_error(t));
                ASSERT_EQ(got[0], 0xAA);
        }
        ASSERT_ERR(host_tpm_unseal(t, blob, len - 1, got), -EBADMSG);
        memcpy(bad, blob, len);
        bad[len] = 0;
        ASSERT_ERR(host_tpm_unseal(t, bad, len + 1, got), -EBADMSG);
        ASSERT_TRUE(strstr(host_tpm_last_error(t), "trailing") != NULL);
        ASSERT_ERR(host_tpm_unseal(t, blob, 0, got), -EBADMSG);

        /* Every error path flushed what it loaded, and the TPM still works. */
        ASSERT_EQ(count_handles(s, "handles-transient"), 0);
        ASSERT_EQ(count_handles(s, "handles-loaded-session"), 0);
        ASSERT_OK(host_tpm_unseal(t, blob, len, got));
        ASSERT_MEMEQ(got, key, 32);
}

TEST(pcr_policy_follows_pcr16) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        HostTpmConfig c;
        uint8_t key[32], got[32];
        size_t len = 0;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        c.pcrs[0] = 16;
        c.n_pcrs = 1;
        random_key(key);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
                ASSERT_OK(host_tpm_unseal(t, blob, len, got));
                ASSERT_MEMEQ(got, key, 32);

                ASSERT_EQ(extend_pcr16(s), 0);
                memset(got, 0xAA, sizeof(got));
                ASSERT_ERR(host_tpm_unseal(t, blob, len, got), -EPERM);
                ASSERT_TRUE(strstr(host_tpm_last_error(t), "PCR") != NULL);
                ASSERT_EQ(got[0], 0xAA);
                ASSERT_EQ(count_handles(s, "handles-transient"), 0);
                ASSERT_EQ(count_handles(s, "handles-loaded-session"), 0);
        }
        /* The policy is in the blob: a config without PCRs still enforces it. */
        {
                HostTpmConfig plain = config(s);
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&plain, &t));
                ASSERT_ERR(host_tpm_unseal(t, blob, len, got), -EPERM);
        }
        /* Startup(CLEAR) after a restart resets PCR 16 to the sealed value. */
        ASSERT_OK(hosttpm_sim_restart(s));
        ASSERT_EQ(unseal_in_child(&c, blob, len, key), 0);
}

static bool contains_window(const uint8_t *hay, size_t n, const uint8_t *key, size_t keylen, size_t w) {
        for (size_t i = 0; i + w <= keylen; i++)
                if (memmem(hay, n, key + i, w))
                        return true;
        return false;
}

TEST(key_never_crosses_the_wire) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_free_ uint8_t *blob = NULL, *pblob = NULL;
        _cleanup_free_ char *text = NULL;
        HostTpmSimMsg *m = NULL;
        HostTpmConfig c, cp;
        uint8_t key[32], got[32];
        size_t len = 0, plen = 0, n = 0;
        size_t commands = 0, responses = 0, private_in_cmd = 0, private_in_rsp = 0;
        bool leak = false;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        cp = c;
        cp.pcrs[0] = 16;
        cp.n_pcrs = 1;
        random_key(key);
        {
                _cleanup_tpm_ HostTpm *t = NULL, *tp = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
                ASSERT_OK(host_tpm_unseal(t, blob, len, got));
                ASSERT_MEMEQ(got, key, 32);
                if (host_tpm_open(&cp, &tp) < 0)
                        TEST_FAIL_("open: %s", host_tpm_last_error(NULL));
                ASSERT_OK(host_tpm_seal(tp, key, &pblob, &plen));
                ASSERT_OK(host_tpm_unseal(tp, pblob, plen, got));
                ASSERT_MEMEQ(got, key, 32);
        }

        ASSERT_OK(hosttpm_sim_log_messages(s, &m, &n));
        for (size_t i = 0; i < n; i++) {
                /* Any 8-byte run of the key, in either direction. */
                if (contains_window(m[i].data, m[i].len, key, 32, 8))
                        leak = true;
                /* Positive control: the last 32 bytes of the blob are inside
                 * TPM2B_PRIVATE, which Create returns and Load sends. */
                if (memmem(m[i].data, m[i].len, blob + len - 32, 32)) {
                        private_in_cmd += m[i].command;
                        private_in_rsp += !m[i].command;
                }
                commands += m[i].command;
                responses += !m[i].command;
        }
        hosttpm_sim_msgs_free(m, n);
        ASSERT_FALSE(leak);
        ASSERT_TRUE(commands >= 20);
        ASSERT_EQ(commands, responses);
        ASSERT_EQ(private_in_cmd, 1);
        ASSERT_EQ(private_in_rsp, 1);

        /* The raw text too: binary, or hex in either case, with or without spaces. */
        {
                int fd = open(hosttpm_sim_log_path(s), O_RDONLY | O_CLOEXEC);
                char hex[8 * 3 + 1], spaced[8 * 3 + 1];
                struct stat st;
                ASSERT_TRUE(fd >= 0);
                ASSERT_OK(fstat(fd, &st));
                text = malloc((size_t) st.st_size + 1);
                ASSERT_TRUE(text != NULL);
                ASSERT_EQ(read(fd, text, (size_t) st.st_size), st.st_size);
                close(fd);
                ASSERT_FALSE(contains_window((uint8_t *) text, (size_t) st.st_size, key, 32, 8));
                for (size_t w = 0; w + 8 <= 32; w++)
                        for (int upper = 0; upper < 2; upper++) {
                                for (size_t j = 0; j < 8; j++) {
                                        sprintf(hex + 2 * j, upper ? "%02X" : "%02x", key[w + j]);
                                        sprintf(spaced + 3 * j, upper ? "%02X " : "%02x ", key[w + j]);
                                }
                                spaced[8 * 3 - 1] = '\0';
                                ASSERT_TRUE(memmem(text, (size_t) st.st_size, hex, 16) == NULL);
                                ASSERT_TRUE(memmem(text, (size_t) st.st_size, spaced, strlen(spaced)) == NULL);
                        }
        }
}

TEST(no_transient_leak_after_20_cycles) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL;
        HostTpmConfig c;
        uint8_t key[32], got[32];

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        ASSERT_OK(host_tpm_open(&c, &t));
        for (int i = 0; i < 20; i++) {
                _cleanup_free_ uint8_t *blob = NULL;
                size_t len = 0;
                random_key(key);
                ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
                ASSERT_OK(host_tpm_unseal(t, blob, len, got));
                ASSERT_MEMEQ(got, key, 32);
        }
        ASSERT_EQ(count_handles(s, "handles-transient"), 0);
        ASSERT_EQ(count_handles(s, "handles-loaded-session"), 0);
}

TEST(counter_monotonic_across_restart_and_redefinition) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        HostTpmConfig c;
        uint64_t v1 = 0, v = 0, v2 = 0;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_ERR(host_tpm_counter_read(t, &v), -ENOENT);
                ASSERT_ERR(host_tpm_counter_increment(t, &v), -ENOENT);
                ASSERT_OK(host_tpm_counter_ensure(t, &v1));
                ASSERT_TRUE(v1 >= 1);
                ASSERT_OK(host_tpm_counter_read(t, &v));
                ASSERT_EQ(v, v1);
                ASSERT_OK(host_tpm_counter_increment(t, &v));
                ASSERT_EQ(v, v1 + 1);
                ASSERT_OK(host_tpm_counter_increment(t, &v));
                ASSERT_EQ(v, v1 + 2);
        }
        /* A crash of the host (no TPM2_Shutdown): a non-orderly counter keeps its exact value. */
        ASSERT_OK(hosttpm_sim_restart(s));
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_OK(host_tpm_counter_read(t, &v));
                ASSERT_EQ(v, v1 + 2);
                ASSERT_OK(host_tpm_counter_ensure(t, &v)); /* existing: no increment */
                ASSERT_EQ(v, v1 + 2);
        }
        /* Deleting and re-defining it cannot take it back. */
        ASSERT_EQ(TOOL(s, "tpm2_nvundefine", "-C", "o", "0x01800156"), 0);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&c, &t));
                ASSERT_ERR(host_tpm_counter_read(t, &v), -ENOENT);
                ASSERT_OK(host_tpm_counter_ensure(t, &v2));
                ASSERT_TRUE(v2 > v1 + 2);
                ASSERT_OK(host_tpm_counter_read(t, &v));
                ASSERT_EQ(v, v2);
        }
}

TEST(counter_defined_by_someone_else) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL;
        HostTpmConfig c;
        uint64_t v = 0, w = 0;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        ASSERT_OK(host_tpm_open(&c, &t));

        /* Our exact attributes, never incremented: not readable yet; ensure adopts it. */
        ASSERT_EQ(TOOL(s, "tpm2_nvdefine", "-C", "o", "-s", "8", "-a",
                       "nt=counter|ownerread|ownerwrite|authread|authwrite|no_da", "0x01800156"),
                  0);
        ASSERT_ERR(host_tpm_counter_read(t, &v), -ENOENT);
        ASSERT_OK(host_tpm_counter_ensure(t, &v));
        ASSERT_OK(host_tpm_counter_read(t, &w));
        ASSERT_EQ(w, v);

        /* An ordinary index could be rewritten to any value: never taken for the counter. */
        c.nv_index = 0x01800157u;
        host_tpm_close(TAKE_PTR(t));
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_EQ(TOOL(s, "tpm2_nvdefine", "-C", "o", "-s", "8", "-a", "ownerread|ownerwrite|authread|authwrite",
                       "0x01800157"),
                  0);
        ASSERT_ERR(host_tpm_counter_read(t, &v), -EEXIST);
        ASSERT_ERR(host_tpm_counter_ensure(t, &v), -EEXIST);
        ASSERT_ERR(host_tpm_counter_increment(t, &v), -EEXIST);
        ASSERT_TRUE(strstr(host_tpm_last_error(t), "not vtpmd's counter") != NULL);

        /* An orderly counter jumps after a crash: refused too. */
        c.nv_index = 0x01800158u;
        host_tpm_close(TAKE_PTR(t));
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_EQ(TOOL(s, "tpm2_nvdefine", "-C", "o", "-s", "8", "-a",
                       "nt=counter|ownerread|ownerwrite|authread|authwrite|no_da|orderly", "0x01800158"),
                  0);
        ASSERT_ERR(host_tpm_counter_ensure(t, &v), -EEXIST);
}

TEST(unreachable_tpm_is_enodev_and_quiet) {
        char path[] = "/tmp/vtpm-seal-err-XXXXXX";
        const char *tctis[] = { "swtpm:path=/nonexistent/vtpmd/tpm.sock", "device:/nonexistent/tpmrm0" };
        int fd = mkstemp(path);

        ASSERT_TRUE(fd >= 0);
        (void) unlink(path);
        for (size_t i = 0; i < ELEMENTSOF(tctis); i++)
                for (int verbose = 0; verbose < 2; verbose++) {
                        int status;
                        struct stat st;
                        pid_t pid;

                        ASSERT_OK(ftruncate(fd, 0));
                        pid = fork();
                        ASSERT_TRUE(pid >= 0);
                        if (pid == 0) {
                                HostTpmConfig c = { .tcti = tctis[i] };
                                HostTpm *t = NULL;
                                int r;
                                /* Control run: with TSS2_LOG set by the user, the TSS does log,
                                 * so an empty stderr in the quiet run is our doing. */
                                if (verbose)
                                        setenv("TSS2_LOG", "all+error", 1);
                                else
                                        unsetenv("TSS2_LOG");
                                (void) dup2(fd, STDERR_FILENO);
                                r = host_tpm_open(&c, &t);
                                if (r != -ENODEV)
                                        _exit(2);
                                if (!strstr(host_tpm_last_error(NULL), "cannot reach the host TPM"))
                                        _exit(3);
                                _exit(0);
                        }
                        ASSERT_EQ(waitpid(pid, &status, 0), pid);
                        ASSERT_TRUE(WIFEXITED(status));
                        ASSERT_EQ(WEXITSTATUS(status), 0);
                        ASSERT_OK(fstat(fd, &st));
                        if (verbose)
                                ASSERT_TRUE(st.st_size > 0);
                        else
                                ASSERT_EQ(st.st_size, 0);
                }
        close(fd);
}

TEST(bad_config_is_einval) {
        HostTpmConfig c = { .tcti = "" };
        HostTpm *t = NULL;

        ASSERT_ERR(host_tpm_open(&c, &t), -EINVAL);
        c.tcti = "swtpm:path=/nonexistent";
        c.n_pcrs = 1;
        c.pcrs[0] = 24;
        ASSERT_ERR(host_tpm_open(&c, &t), -EINVAL);
        c.n_pcrs = 0;
        c.nv_index = 0x01C00002u; /* the EK certificate range, not the owner's */
        ASSERT_ERR(host_tpm_open(&c, &t), -EINVAL);
        c.nv_index = 0;
        c.srk_handle = 0x80000001u; /* transient, not persistent */
        ASSERT_ERR(host_tpm_open(&c, &t), -EINVAL);
        ASSERT_TRUE(t == NULL);
}

/* Exact host-TPM command counts, each checked against what swtpm logged. */
TEST(command_counts_are_exact) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL, *tp = NULL;
        _cleanup_free_ uint8_t *blob = NULL, *pblob = NULL;
        HostTpmConfig c, cp;
        uint8_t key[32], got[32];
        size_t len = 0, plen = 0;
        unsigned before;
        long logged;
        uint64_t v;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        random_key(key);

        /* open: TPM2_Startup (answered TPM_RC_INITIALIZE). */
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_EQ(host_tpm_commands(t), 1);
        ASSERT_EQ(log_commands(s), 1);

        /* seal: CreatePrimary(SRK), StartAuthSession(salted), Create, FlushContext x2 (session, SRK). */
        ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
        ASSERT_EQ(host_tpm_commands(t), 1 + 5);
        ASSERT_EQ(log_commands(s), 1 + 5);

        /* unseal, the daemon-start cost: CreatePrimary(SRK), StartAuthSession(salted),
         * Load, Unseal, FlushContext x3 (object, session, SRK). */
        before = host_tpm_commands(t);
        logged = log_commands(s);
        ASSERT_OK(host_tpm_unseal(t, blob, len, got));
        ASSERT_EQ(host_tpm_commands(t) - before, 7);
        ASSERT_EQ(log_commands(s) - logged, 7);

        /* With PolicyPCR. seal: + StartAuthSession(trial), PolicyPCR, PolicyGetDigest,
         * FlushContext(trial) = 9; unseal: CreatePrimary, StartAuthSession(policy, salted),
         * PolicyPCR, Load, Unseal, FlushContext x3 = 8. */
        cp = c;
        cp.pcrs[0] = 16;
        cp.pcrs[1] = 23;
        cp.n_pcrs = 2;
        ASSERT_OK(host_tpm_open(&cp, &tp));
        before = host_tpm_commands(tp);
        ASSERT_OK(host_tpm_seal(tp, key, &pblob, &plen));
        ASSERT_EQ(host_tpm_commands(tp) - before, 9);
        before = host_tpm_commands(tp);
        logged = log_commands(s);
        ASSERT_OK(host_tpm_unseal(tp, pblob, plen, got));
        ASSERT_EQ(host_tpm_commands(tp) - before, 8);
        ASSERT_EQ(log_commands(s) - logged, 8);
        ASSERT_MEMEQ(got, key, 32);

        /* A malformed blob never reaches the TPM. */
        before = host_tpm_commands(t);
        ASSERT_ERR(host_tpm_unseal(t, blob, len - 1, got), -EBADMSG);
        ASSERT_EQ(host_tpm_commands(t), before);

        /* counter: ensure on a fresh TPM = NV_ReadPublic (fails), NV_DefineSpace,
         * NV_Increment, NV_Read; read = NV_ReadPublic, NV_Read; increment = + NV_Increment. */
        before = host_tpm_commands(t);
        ASSERT_OK(host_tpm_counter_ensure(t, &v));
        ASSERT_EQ(host_tpm_commands(t) - before, 4);
        before = host_tpm_commands(t);
        ASSERT_OK(host_tpm_counter_read(t, &v));
        ASSERT_EQ(host_tpm_commands(t) - before, 2);
        before = host_tpm_commands(t);
        ASSERT_OK(host_tpm_counter_increment(t, &v));
        ASSERT_EQ(host_tpm_commands(t) - before, 3);
        ASSERT_EQ(log_commands(s), (long) (host_tpm_commands(t) + host_tpm_commands(tp)));
}

TEST(persistent_srk) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL, *tc = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ char *ctx = NULL;
        HostTpmConfig c, cc;
        uint8_t key[32], got[32];
        size_t len = 0;
        unsigned before;

        ASSERT_OK(hosttpm_sim_start(&s));
        /* Provision a persistent storage key the way an admin would. */
        ASSERT_TRUE(asprintf(&ctx, "%s/srk.ctx", hosttpm_sim_dir(s)) > 0);
        ASSERT_EQ(TOOL(s, "tpm2_createprimary", "-Q", "-C", "o", "-G", "ecc256", "-c", ctx), 0);
        ASSERT_EQ(TOOL(s, "tpm2_evictcontrol", "-Q", "-C", "o", "-c", ctx, "0x81000001"), 0);
        ASSERT_EQ(TOOL(s, "tpm2_flushcontext", "-t"), 0);

        c = config(s);
        c.srk_handle = 0x81000001u;
        random_key(key);
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_OK(host_tpm_seal(t, key, &blob, &len));
        /* unseal: ReadPublic(SRK), StartAuthSession, Load, Unseal, FlushContext x2: the
         * persistent SRK is neither created nor flushed. */
        before = host_tpm_commands(t);
        ASSERT_OK(host_tpm_unseal(t, blob, len, got));
        ASSERT_EQ(host_tpm_commands(t) - before, 6);
        ASSERT_MEMEQ(got, key, 32);
        ASSERT_EQ(count_handles(s, "handles-transient"), 0);
        ASSERT_EQ(count_handles(s, "handles-persistent"), 1);

        /* The created SRK is another key: the blob is refused by name. */
        cc = config(s);
        ASSERT_OK(host_tpm_open(&cc, &tc));
        ASSERT_ERR(host_tpm_unseal(tc, blob, len, got), -EKEYREJECTED);

        /* A missing persistent SRK. */
        host_tpm_close(TAKE_PTR(t));
        c.srk_handle = 0x81000002u;
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_ERR(host_tpm_unseal(t, blob, len, got), -ENOENT);
        ASSERT_TRUE(strstr(host_tpm_last_error(t), "0x81000002") != NULL);
}

#define POOL_CONTEXT "pool 0123/host b"
#define POOL_CTX (const uint8_t *) POOL_CONTEXT, strlen(POOL_CONTEXT)

/* A joining host's half of the pool key transfer: its TPM's ZGen between
 * pool_key_parse() and pool_key_open(). */
static int pool_unwrap(HostTpm *t, const uint8_t own_point[HOST_TPM_POINT_SIZE], const uint8_t *blob, size_t len,
                       uint8_t ret_key[POOL_KEY_SIZE]) {
        uint8_t eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        int r = pool_key_parse(blob, len, own_point, eph);

        if (r < 0)
                return r;
        r = host_tpm_transfer_zgen(t, own_point, eph, z);
        if (r < 0)
                return r;
        r = pool_key_open(blob, len, own_point, z, POOL_CTX, ret_key);
        explicit_wipe(z, sizeof(z));
        return r;
}

typedef struct ExpectedPoint {
        const char *tcti;
        uint8_t point[HOST_TPM_POINT_SIZE];
} ExpectedPoint;

static void transfer_point_in_child(void *arg) {
        const ExpectedPoint *e = arg;
        HostTpmConfig c = { .tcti = e->tcti };
        _cleanup_tpm_ HostTpm *t = NULL;
        uint8_t point[HOST_TPM_POINT_SIZE];

        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_OK(host_tpm_transfer_public(t, point));
        ASSERT_MEMEQ(point, e->point, sizeof(point));
}

TEST(transfer_point_is_stable_per_tpm) {
        _cleanup_sim_ HostTpmSim *a = NULL, *b = NULL;
        uint8_t pa[HOST_TPM_POINT_SIZE], pa2[HOST_TPM_POINT_SIZE], pb[HOST_TPM_POINT_SIZE];
        HostTpmConfig ca, cb;

        ASSERT_OK(hosttpm_sim_start(&a));
        ASSERT_OK(hosttpm_sim_start(&b));
        ca = config(a);
        cb = config(b);
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&ca, &t));
                ASSERT_OK(host_tpm_transfer_public(t, pa));
                ASSERT_OK(host_tpm_transfer_public(t, pa2));
                ASSERT_MEMEQ(pa, pa2, sizeof(pa));
        }
        ASSERT_EQ(pa[0], 0x04);
        /* Another process, another ESAPI context, and a power cycle: the same key. */
        {
                ExpectedPoint e = { .tcti = hosttpm_sim_tcti(a) };
                memcpy(e.point, pa, sizeof(pa));
                ASSERT_CHILD(transfer_point_in_child, &e);
        }
        ASSERT_OK(hosttpm_sim_restart(a));
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&ca, &t));
                ASSERT_OK(host_tpm_transfer_public(t, pa2));
        }
        ASSERT_MEMEQ(pa, pa2, sizeof(pa));
        {
                _cleanup_tpm_ HostTpm *t = NULL;
                ASSERT_OK(host_tpm_open(&cb, &t));
                ASSERT_OK(host_tpm_transfer_public(t, pb));
        }
        ASSERT_FALSE(memcmp(pa, pb, sizeof(pa)) == 0);
        ASSERT_EQ(count_handles(a, "handles-transient"), 0);
}

TEST(pool_key_unwraps_only_on_the_tpm_it_was_wrapped_to) {
        _cleanup_sim_ HostTpmSim *a = NULL, *b = NULL;
        _cleanup_tpm_ HostTpm *ta = NULL, *tb = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        uint8_t pa[HOST_TPM_POINT_SIZE], pb[HOST_TPM_POINT_SIZE], eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        uint8_t key[POOL_KEY_SIZE], got[POOL_KEY_SIZE];
        HostTpmConfig ca, cb;
        size_t len = 0;
        unsigned before;

        ASSERT_OK(hosttpm_sim_start(&a));
        ASSERT_OK(hosttpm_sim_start(&b));
        ca = config(a);
        cb = config(b);
        ASSERT_OK(host_tpm_open(&ca, &ta));
        ASSERT_OK(host_tpm_open(&cb, &tb));
        ASSERT_OK(host_tpm_transfer_public(ta, pa));
        /* CreatePrimary(transfer key), FlushContext: no blob, nothing kept. */
        before = host_tpm_commands(tb);
        ASSERT_OK(host_tpm_transfer_public(tb, pb));
        ASSERT_EQ(host_tpm_commands(tb) - before, 2);

        /* A member wraps the pool key to B, the joining host. */
        random_key(key);
        ASSERT_OK(pool_key_wrap(key, pb, POOL_CTX, &blob, &len));
        memset(got, 0, sizeof(got));
        /* ZGen: CreatePrimary(transfer key), StartAuthSession(salted), ECDH_ZGen, FlushContext x2. */
        before = host_tpm_commands(tb);
        ASSERT_OK(pool_unwrap(tb, pb, blob, len, got));
        ASSERT_EQ(host_tpm_commands(tb) - before, 5);
        ASSERT_MEMEQ(got, key, sizeof(key));

        /* A, another TPM: refused by fingerprint before its TPM is asked... */
        memset(got, 0xAA, sizeof(got));
        ASSERT_ERR(pool_unwrap(ta, pa, blob, len, got), -EKEYREJECTED);
        /* ...by its TPM's transfer key if it claims B's point... */
        ASSERT_OK(pool_key_parse(blob, len, pb, eph));
        before = host_tpm_commands(ta);
        ASSERT_ERR(host_tpm_transfer_zgen(ta, pb, eph, z), -EKEYREJECTED);
        ASSERT_TRUE(strstr(host_tpm_last_error(ta), "cleared or replaced") != NULL);
        /* CreatePrimary and its flush only: nothing salted to the wrong key. */
        ASSERT_EQ(host_tpm_commands(ta) - before, 2);
        /* ...and by the tag if it uses its own Z. */
        ASSERT_OK(host_tpm_transfer_zgen(ta, pa, eph, z));
        ASSERT_ERR(pool_key_open(blob, len, pb, z, POOL_CTX, got), -EKEYREJECTED);
        ASSERT_EQ(got[0], 0xAA);

        /* After a power cycle of B (its TPM's seeds kept), the same blob opens. */
        ASSERT_OK(hosttpm_sim_restart(b));
        host_tpm_close(TAKE_PTR(tb));
        ASSERT_OK(host_tpm_open(&cb, &tb));
        memset(got, 0, sizeof(got));
        ASSERT_OK(pool_unwrap(tb, pb, blob, len, got));
        ASSERT_MEMEQ(got, key, sizeof(key));

        for (HostTpmSim *s = a; s; s = s == a ? b : NULL) {
                ASSERT_EQ(count_handles(s, "handles-transient"), 0);
                ASSERT_EQ(count_handles(s, "handles-loaded-session"), 0);
        }
}

TEST(zgen_refuses_a_point_off_the_curve) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL;
        uint8_t p[HOST_TPM_POINT_SIZE], bad[HOST_TPM_POINT_SIZE], z[HOST_TPM_COORD_SIZE];
        HostTpmConfig c;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_OK(host_tpm_transfer_public(t, p));
        memcpy(bad, p, sizeof(bad));
        bad[64] ^= 0x01;
        memset(z, 0xAA, sizeof(z));
        ASSERT_ERR(host_tpm_transfer_zgen(t, p, bad, z), -EBADMSG);
        bad[0] = 0x02;
        ASSERT_ERR(host_tpm_transfer_zgen(t, p, bad, z), -EBADMSG);
        ASSERT_EQ(z[0], 0xAA);
        ASSERT_EQ(count_handles(s, "handles-transient"), 0);
        ASSERT_EQ(count_handles(s, "handles-loaded-session"), 0);
        /* Its own point is a valid peer: the TPM still works. */
        ASSERT_OK(host_tpm_transfer_zgen(t, p, p, z));
}

TEST(z_never_crosses_the_wire) {
        _cleanup_sim_ HostTpmSim *s = NULL;
        _cleanup_tpm_ HostTpm *t = NULL;
        _cleanup_free_ uint8_t *blob = NULL;
        HostTpmSimMsg *m = NULL;
        uint8_t p[HOST_TPM_POINT_SIZE], eph[POOL_KEY_POINT_SIZE], z[POOL_KEY_Z_SIZE];
        uint8_t key[POOL_KEY_SIZE], got[POOL_KEY_SIZE];
        size_t len = 0, n = 0, eph_in_cmd = 0, point_in_rsp = 0;
        bool leak = false;
        HostTpmConfig c;

        ASSERT_OK(hosttpm_sim_start(&s));
        c = config(s);
        ASSERT_OK(host_tpm_open(&c, &t));
        ASSERT_OK(host_tpm_transfer_public(t, p));
        random_key(key);
        ASSERT_OK(pool_key_wrap(key, p, POOL_CTX, &blob, &len));
        ASSERT_OK(pool_key_parse(blob, len, p, eph));
        ASSERT_OK(host_tpm_transfer_zgen(t, p, eph, z));
        ASSERT_OK(pool_key_open(blob, len, p, z, POOL_CTX, got));
        ASSERT_MEMEQ(got, key, sizeof(key));

        ASSERT_OK(hosttpm_sim_log_messages(s, &m, &n));
        for (size_t i = 0; i < n; i++) {
                if (contains_window(m[i].data, m[i].len, z, sizeof(z), 8) ||
                    contains_window(m[i].data, m[i].len, key, sizeof(key), 8))
                        leak = true;
                /* Positive controls: the public ephemeral X goes to ZGen in the clear,
                 * and the transfer key's X comes back from CreatePrimary. */
                if (m[i].command && memmem(m[i].data, m[i].len, eph + 1, 32))
                        eph_in_cmd++;
                if (!m[i].command && memmem(m[i].data, m[i].len, p + 1, 32))
                        point_in_rsp++;
        }
        hosttpm_sim_msgs_free(m, n);
        ASSERT_FALSE(leak);
        ASSERT_EQ(eph_in_cmd, 1);
        ASSERT_EQ(point_in_rsp, 2);
}
