/* SPDX-License-Identifier: BSD-3-Clause */
#include "test.h"

struct test_case test_cases[TEST_MAX_CASES];
int test_ncases;
int test_failed_current;

int main(int argc, char **argv) {
        int passed = 0, failed = 0;
        const char *only = argc > 1 ? argv[1] : NULL;

        for (int i = 0; i < test_ncases; i++) {
                if (only && strcmp(only, test_cases[i].name) != 0)
                        continue;
                test_failed_current = 0;
                test_cases[i].fn();
                if (test_failed_current) {
                        printf("FAIL %s\n", test_cases[i].name);
                        failed++;
                } else {
                        printf("ok   %s\n", test_cases[i].name);
                        passed++;
                }
                fflush(stdout);
        }
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : (passed ? 0 : 1);
}
