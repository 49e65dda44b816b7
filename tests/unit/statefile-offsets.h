/* SPDX-License-Identifier: BSD-3-Clause */
/* The state file header's field offsets as statefile.h documents them, written
 * out here rather than taken from the code, so the tests catch a moved field. */
#pragma once

#define OFF_VERSION 8
#define OFF_KIND 10
#define OFF_FLAGS 12
#define OFF_SEQ 16
#define OFF_UUID 24
#define OFF_NONCE 40
#define OFF_LENGTH 52
