/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpm-rtt: round-trip time of TPM2_GetRandom(8) through a TPM data socket,
 * acting as the guest's TPM user. Prints one JSON object:
 *   {"command":"GetRandom","count":N,"p50_us":..,"p99_us":..,"mean_us":..,"min_us":..,"max_us":..}
 *
 *   tpm-rtt SOCKET [COUNT]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tpm-client.h"
#include "tpm.h"

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}

int main(int argc, char **argv) {
        uint8_t cmd[32], resp[TPM_MAX_PACKET];
        unsigned long count = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
        uint64_t *t, sum = 0;
        int fd, len;

        if (argc < 2 || count == 0 || count > 10000000) {
                fprintf(stderr, "usage: tpm-rtt SOCKET [COUNT]\n");
                return 2;
        }
        fd = tpm_client_open("tpm-rtt", argv[1]);
        if (fd < 0)
                return 1;
        len = tpm2_build_get_random(8, cmd, sizeof(cmd));
        t = calloc(count, sizeof(*t));
        if (len < 0 || !t)
                return 1;
        for (unsigned long i = 0; i < count; i++) {
                uint64_t begin = now_ns();
                size_t rlen;
                int r = tpm_client_transact(fd, cmd, (size_t) len, resp, sizeof(resp), &rlen);
                if (r < 0) {
                        fprintf(stderr, "tpm-rtt: command %lu: %s\n", i, strerror(-r));
                        return 1;
                }
                if (rlen != 10 + 2 + 8 || tpm_be32(resp + 6) != 0) {
                        fprintf(stderr, "tpm-rtt: command %lu: unexpected response (%zu bytes, rc 0x%x)\n", i, rlen,
                                tpm_be32(resp + 6));
                        return 1;
                }
                t[i] = now_ns() - begin;
                sum += t[i];
        }
        qsort(t, count, sizeof(*t), cmp_u64);
        printf("{\"command\":\"GetRandom\",\"count\":%lu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,"
               "\"min_us\":%.1f,\"max_us\":%.1f}\n",
               count, t[count / 2] / 1000.0, t[count * 99 / 100] / 1000.0, (double) sum / count / 1000.0,
               t[0] / 1000.0, t[count - 1] / 1000.0);
        free(t);
        close(fd);
        return 0;
}
