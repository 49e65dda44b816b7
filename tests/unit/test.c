/* SPDX-License-Identifier: BSD-3-Clause */
#include "test.h"

struct test_case test_cases[TEST_MAX_CASES];
int test_ncases;
int test_failed_current;
int test_skipped_current;

#define EXIT_SKIP 77

int main(int argc, char **argv) {
        int passed = 0, failed = 0, skipped = 0;
        const char *only = argc > 1 ? argv[1] : NULL;

        for (int i = 0; i < test_ncases; i++) {
                if (only && strcmp(only, test_cases[i].name) != 0)
                        continue;
                test_failed_current = 0;
                test_skipped_current = 0;
                test_cases[i].fn();
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
                return 1;
        return skipped ? EXIT_SKIP : 0;
}
