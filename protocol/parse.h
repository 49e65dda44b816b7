/* SPDX-License-Identifier: BSD-3-Clause */
/* Strict number parsing for untrusted strings (xenstore values, config, CLI). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Decimal only, no sign, no leading/trailing junk, no leading zeros except "0".
 * Returns 0 or -EINVAL / -ERANGE. *ret written only on success. */
int parse_u32(const char *s, uint32_t *ret);
int parse_u32_max(const char *s, uint32_t max, uint32_t *ret);

/* Canonical 36-character lowercase/uppercase UUID "8-4-4-4-12" hex. Writes the
 * lowercase canonical form (37 bytes incl. NUL) to ret. */
int parse_uuid(const char *s, char ret[static 37]);

/* Exactly 2*n hex digits (either case; not locale-dependent) and nothing
 * after them, decoded into n bytes. -EINVAL otherwise (including a NUL
 * before 2*n digits). out written only on success. */
int parse_hex(const char *s, uint8_t *out, size_t n);

/* "0x" followed by 1-8 hex digits, or a decimal as parse_u32. */
int parse_u32_hex_or_dec(const char *s, uint32_t *ret);

/* A comma-separated list of distinct PCR indexes below max_pcr ("0,2,7"); the
 * empty string is an empty list. Writes up to max_n entries, sorted. -EINVAL
 * for junk or duplicates, -ERANGE for an index >= max_pcr, -E2BIG if too many. */
int parse_pcr_list(const char *s, uint32_t max_pcr, uint32_t *ret, size_t max_n, size_t *ret_n);

/* A size in bytes: a decimal (as parse_u32, up to 2^32-1) with an optional
 * K, M or G suffix (powers of 1024): "512M", "1G", "65536". */
int parse_size(const char *s, uint64_t *ret);

/* "FIRST-LAST": two decimals as parse_u32 with FIRST < LAST. */
int parse_u32_range(const char *s, uint32_t *ret_first, uint32_t *ret_last);
