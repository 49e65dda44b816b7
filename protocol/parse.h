/* SPDX-License-Identifier: BSD-3-Clause */
/* Strict number parsing for untrusted strings (xenstore values, config, CLI). */
#pragma once

#include <stdint.h>

/* Decimal only, no sign, no leading/trailing junk, no leading zeros except "0".
 * Returns 0 or -EINVAL / -ERANGE. *ret written only on success. */
int parse_u32(const char *s, uint32_t *ret);
int parse_u32_max(const char *s, uint32_t max, uint32_t *ret);

/* Canonical 36-character lowercase/uppercase UUID "8-4-4-4-12" hex. Writes the
 * lowercase canonical form (37 bytes incl. NUL) to ret. */
int parse_uuid(const char *s, char ret[static 37]);
