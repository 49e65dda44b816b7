/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Replays a fuzz harness over every file of a corpus directory, so the seed
 * corpus (and every crash reproducer added to it) runs in `make check`
 * without a fuzzer.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf;
        long n;

        if (!f) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -1;
        }
        buf = malloc(n ? (size_t) n : 1);
        if (!buf || fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t) n);
        free(buf);
        return 0;
}

int main(int argc, char **argv) {
        int passed = 0, failed = 0;

        for (int a = 1; a < argc; a++) {
                DIR *d = opendir(argv[a]);
                struct dirent *de;

                if (!d) {
                        fprintf(stderr, "corpus %s: %s\n", argv[a], strerror(errno));
                        failed++;
                        continue;
                }
                while ((de = readdir(d))) {
                        char path[4096];
                        struct stat st;

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[a], de->d_name);
                        if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                                continue;
                        if (run_file(path) < 0)
                                failed++;
                        else
                                passed++;
                }
                closedir(d);
        }
        printf("%d passed, %d failed\n", passed, failed);
        return failed || !passed ? 1 : 0;
}
