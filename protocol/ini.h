/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A strict parser for ini files in the systemd unit-file style (vtpmd.conf(5)):
 *
 *   # comment            lines whose first non-blank character is '#' or ';'
 *   [Section]            letters, digits, '_', '-', '.'
 *   Key = value          key: letters, digits, '_', '-'; blanks around '='
 *                        and at both ends of the line are dropped; the value
 *                        may be empty and is taken literally (no quoting, no
 *                        inline comments, no continuation lines)
 *
 * Lines end with '\n' ("\r\n" too: '\r' counts as a trailing blank). Anything
 * else is an error with its 1-based line number: a NUL byte or another control
 * character, a line that is neither of the above, an assignment before the
 * first section, a trailing '\' (continuation, which systemd has and we do
 * not, so it is refused instead of silently meaning something else).
 *
 * Pure: no I/O. Knows nothing about which sections and keys exist; the caller
 * checks that (and duplicates) with the line numbers returned.
 */
#pragma once

#include <stddef.h>

#include "util.h"

typedef struct IniEntry {
        const char *section; /* without the brackets */
        const char *key;
        const char *value;   /* "" when empty */
        unsigned line;       /* 1-based */
} IniEntry;

typedef struct Ini {
        IniEntry *entries; /* in file order */
        size_t n_entries;
        char *strings;     /* backing store of every string above */
} Ini;

typedef struct IniError {
        unsigned line;       /* 1-based */
        const char *message; /* static string */
} IniError;

/* Parses size bytes (need not be NUL-terminated). Returns 0 and *ret, or
 * -EBADMSG with *ret_error filled (if not NULL), or -ENOMEM. */
int ini_parse(const char *data, size_t size, Ini **ret, IniError *ret_error);
Ini *ini_free(Ini *ini);
DEFINE_TRIVIAL_CLEANUP_FUNC(Ini *, ini_free);
