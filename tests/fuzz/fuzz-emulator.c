/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The input is what arrived on the emulator protocol's control channel in one
 * read. It is parsed at every length from 0 to the whole input, so that ASan
 * sees any read past what was received; every invariant the front relies on
 * is checked with abort().
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emulator.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const uint8_t *buf, size_t len) {
        EmuRequest r;
        int k = emu_request_parse(buf, len, &r);

        if (k != 0 && k != -EAGAIN && k != -EOPNOTSUPP && k != -EMSGSIZE)
                abort();
        if (k == -EOPNOTSUPP && (emu_request_fixed_size(r.cmd) >= 0 || emu_cmd_to_string(r.cmd)))
                abort();
        if (k != 0)
                return;
        int fixed = emu_request_fixed_size(r.cmd);
        if (fixed < 0 || !emu_cmd_to_string(r.cmd))
                abort();
        /* What was parsed was received: the fixed part never exceeds len. */
        if (4 + (size_t) fixed > len)
                abort();
        if (r.cmd == EMU_CMD_SET_STATEBLOB) {
                if (r.length > EMU_STATEBLOB_MAX || r.size != 16 + (size_t) r.length || r.data_offset != 16)
                        abort();
        } else if (r.cmd == EMU_CMD_HASH_DATA) {
                if (r.length > EMU_HASH_DATA_MAX || r.size != 8 + (size_t) r.length || r.size > EMU_REQUEST_MAX)
                        abort();
        } else if (r.size != 4 + (size_t) fixed || r.size > len || r.length != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *copy;

        if (size > 64)
                size = 64; /* past the largest fixed part nothing new is parsed */
        for (size_t n = 0; n <= size; n++) {
                copy = malloc(n ? n : 1);
                if (!copy)
                        return 0;
                memcpy(copy, data, n);
                check(copy, n);
                free(copy);
        }
        return 0;
}
