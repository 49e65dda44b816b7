/* SPDX-License-Identifier: BSD-3-Clause */
/* What every fuzz harness shares: the libFuzzer entry point and the exact-size copy of its input. */
#pragma once

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size, unterminated copy, so ASan flags any read past the input
 * (libFuzzer's own buffer may be larger). Aborts when out of memory. */
static inline void *fuzz_copy(const uint8_t *data, size_t size) {
        void *p = malloc(size ? size : 1);

        if (!p)
                abort();
        memcpy(p, data, size);
        return p;
}
