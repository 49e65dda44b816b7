/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Feeds bytes to ini_parse(), which reads vtpmd.conf. Beyond not crashing:
 * every error is -EBADMSG with a line inside the input, and every entry is on
 * a line of the input, in order, with a non-empty key and no '\n' anywhere.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        IniError e = { 0 };
        Ini *ini = NULL;
        unsigned lines = 1, prev = 0;
        char *copy;
        int r;

        for (size_t i = 0; i < size; i++)
                lines += data[i] == '\n';

        copy = fuzz_copy(data, size);
        r = ini_parse(copy, size, &ini, &e);
        free(copy);
        if (r < 0) {
                if (r != -EBADMSG || ini || !e.message || e.line < 1 || e.line > lines)
                        abort();
                return 0;
        }
        for (size_t i = 0; i < ini->n_entries; i++) {
                const IniEntry *en = &ini->entries[i];
                if (!en->section[0] || !en->key[0] || en->line < 1 || en->line > lines || en->line <= prev)
                        abort();
                if (strchr(en->section, '\n') || strchr(en->key, '\n') || strchr(en->value, '\n') ||
                    strchr(en->key, '='))
                        abort();
                prev = en->line;
        }
        ini_free(ini);
        return 0;
}
