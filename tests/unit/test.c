/* SPDX-License-Identifier: BSD-3-Clause */
/* The runner of the one C test harness (test.h): main, REQUIRE's way out of a case, forked children. */
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

struct test_case test_cases[TEST_MAX_CASES];
int test_ncases;
int test_failed_current;
int test_skipped_current;

#define EXIT_SKIP 77

static jmp_buf case_exit;
/* REQUIRE in a child of test_run_child() must end that child, not jump into its copy of the runner. */
static pid_t runner_pid;

void test_abort_(void) {
        test_failed_current = 1;
        if (getpid() != runner_pid) {
                fflush(NULL);
                _exit(1);
        }
        longjmp(case_exit, 1);
}

int test_run_child(void (*fn)(void *arg), void *arg) {
        int status;

        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                fprintf(stderr, "  fork: %s\n", strerror(errno));
                test_failed_current = 1;
                return -1;
        }
        if (pid == 0) {
                test_failed_current = test_skipped_current = 0;
                fn(arg);
                fflush(NULL);
                _exit(test_failed_current ? 1 : test_skipped_current ? EXIT_SKIP : 0);
        }
        if (waitpid(pid, &status, 0) < 0) {
                fprintf(stderr, "  waitpid: %s\n", strerror(errno));
                test_failed_current = 1;
                return -1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_SKIP)
                test_skipped_current = 1;
        else {
                if (WIFSIGNALED(status))
                        fprintf(stderr, "  child killed by signal %d\n", WTERMSIG(status));
                test_failed_current = 1;
        }
        return -1;
}

/* Its own frame, so that the runner's counters are not live across the longjmp. */
static void run_case(test_fn fn) {
        if (setjmp(case_exit) == 0)
                fn();
}

int main(int argc, char **argv) {
        int passed = 0, failed = 0, skipped = 0;
        const char *only = argc > 1 ? argv[1] : NULL;

        runner_pid = getpid();
        for (int i = 0; i < test_ncases; i++) {
                if (only && strcmp(only, test_cases[i].name) != 0)
                        continue;
                test_failed_current = 0;
                test_skipped_current = 0;
                run_case(test_cases[i].fn);
                if (test_failed_current) {
                        printf("FAIL %s\n", test_cases[i].name);
                        failed++;
                } else if (test_skipped_current) {
                        printf("SKIP %s\n", test_cases[i].name);
                        skipped++;
                } else {
                        printf("ok   %s\n", test_cases[i].name);
                        passed++;
                }
                fflush(stdout);
        }
        printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
        if (failed || passed + skipped == 0)
                exit(EXIT_FAILURE);
        /* meson shows a test that exits 77 as SKIP, never as a pass. */
        if (skipped)
                exit(77);
        exit(EXIT_SUCCESS);
}
