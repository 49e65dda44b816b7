/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The one harness of the C tests: named cases, registered at load time, run
 * in order (or only the one named on the command line).
 *
 *   TEST(parse_rejects_sign) { ASSERT_ERR(parse_u32("-1", &v), -EINVAL); }
 *
 * A case that cannot run here says why with TEST_SKIP("needs root"). The
 * exit status is 1 if any case failed, else 77 if any was skipped (meson
 * shows the test as SKIP, never as a pass; the reasons are in its log), else
 * 0. No case at all is a failure.
 *
 * ASSERT_* and TEST_SKIP return from the function they are written in, so
 * the case's cleanup attributes run. Two helpers for what that cannot reach:
 * REQUIRE(cond, fmt, ...) ends the whole case from a helper any number of
 * calls deep (by longjmp: the frames it leaves run no cleanups, so keep what
 * they hold where the case's own set-up frees it), and test_run_child() runs
 * a function in a forked child whose ASSERTs and TEST_SKIPs count for the
 * case (ASSERT_CHILD) (for rlimits, namespaces and confinement the test must not keep).
 */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*test_fn)(void);
struct test_case {
        const char *name;
        test_fn fn;
};

#define TEST_MAX_CASES 512
extern struct test_case test_cases[TEST_MAX_CASES];
extern int test_ncases;
extern int test_failed_current;
extern int test_skipped_current;

#define TEST(name)                                                                \
        static void test_##name(void);                                            \
        __attribute__((constructor)) static void test_register_##name(void) {     \
                if (test_ncases < TEST_MAX_CASES)                                 \
                        test_cases[test_ncases++] = (struct test_case){ #name, test_##name }; \
        }                                                                         \
        static void test_##name(void)

#define TEST_FAIL_(fmt, ...)                                                      \
        do {                                                                      \
                fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__); \
                test_failed_current = 1;                                          \
                return;                                                           \
        } while (0)

/* Ends the current case as skipped, with the reason. */
#define TEST_SKIP(fmt, ...)                                                       \
        do {                                                                      \
                fprintf(stderr, "  skipped: " fmt "\n", ##__VA_ARGS__);           \
                test_skipped_current = 1;                                         \
                return;                                                           \
        } while (0)

/* Ends the case at once, however deep the helper it is written in. */
#define REQUIRE(cond, fmt, ...)                                                   \
        do {                                                                      \
                if (!(cond)) {                                                    \
                        fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__, ##__VA_ARGS__); \
                        test_abort_();                                            \
                }                                                                 \
        } while (0)
/* expr >= 0, else the case ends with the errno's name */
#define REQUIRE_OK(expr)                                                          \
        do {                                                                      \
                long long _r = (long long) (expr);                                \
                REQUIRE(_r >= 0, "%s failed: %s", #expr, strerror((int) -_r));    \
        } while (0)

__attribute__((noreturn)) void test_abort_(void);

/* Runs fn(arg) in a forked child with the harness's bookkeeping: a failed
 * ASSERT or REQUIRE there fails the case, a TEST_SKIP skips it. 0 when the
 * child passed, -1 otherwise (the case is then already marked). */
int test_run_child(void (*fn)(void *arg), void *arg);
/* The same in a case: it ends here unless the child passed. */
#define ASSERT_CHILD(fn, arg)                                                     \
        do {                                                                      \
                if (test_run_child((fn), (arg)) < 0)                              \
                        return;                                                   \
        } while (0)

#define ASSERT_TRUE(x)                                                            \
        do {                                                                      \
                if (!(x))                                                         \
                        TEST_FAIL_("assertion failed: %s", #x);                   \
        } while (0)
#define ASSERT_FALSE(x) ASSERT_TRUE(!(x))

#define ASSERT_EQ(a, b)                                                           \
        do {                                                                      \
                long long _a = (long long) (a), _b = (long long) (b);             \
                if (_a != _b)                                                     \
                        TEST_FAIL_("%s == %s failed: %lld != %lld", #a, #b, _a, _b); \
        } while (0)

#define ASSERT_STREQ(a, b)                                                        \
        do {                                                                      \
                const char *_a = (a), *_b = (b);                                  \
                if (!_a || !_b || strcmp(_a, _b) != 0)                            \
                        TEST_FAIL_("%s == %s failed: \"%s\" != \"%s\"", #a, #b,   \
                                   _a ? _a : "(null)", _b ? _b : "(null)");       \
        } while (0)

#define ASSERT_MEMEQ(a, b, n)                                                     \
        do {                                                                      \
                if (memcmp((a), (b), (n)) != 0)                                   \
                        TEST_FAIL_("memory %s != %s (%zu bytes)", #a, #b, (size_t) (n)); \
        } while (0)

/* r >= 0 */
#define ASSERT_OK(expr)                                                           \
        do {                                                                      \
                long long _r = (long long) (expr);                                \
                if (_r < 0)                                                       \
                        TEST_FAIL_("%s failed: %lld (%s)", #expr, _r, strerror((int) -_r)); \
        } while (0)

/* expr == expected negative errno */
#define ASSERT_ERR(expr, err)                                                     \
        do {                                                                      \
                long long _r = (long long) (expr);                                \
                if (_r != (long long) (err))                                      \
                        TEST_FAIL_("%s: expected %s (%lld), got %lld (%s)", #expr, #err, \
                                   (long long) (err), _r, _r < 0 ? strerror((int) -_r) : "success"); \
        } while (0)

