/* SPDX-License-Identifier: BSD-3-Clause */
/* The state file header's fields as statefile.h's table lays them out, each
 * after the one before and its size, written out here rather than taken from
 * the code, so the tests catch a moved or resized field. */
#pragma once

#define OFF_VERSION 8                 /* after the 8-byte magic */
#define OFF_KIND (OFF_VERSION + 2)    /* version: 2 bytes */
#define OFF_FLAGS (OFF_KIND + 2)      /* kind: 2 bytes */
#define OFF_SEQ (OFF_FLAGS + 4)       /* flags: 4 bytes */
#define OFF_UUID (OFF_SEQ + 8)        /* sequence number: 8 bytes */
#define OFF_NONCE (OFF_UUID + 16)     /* UUID: 16 bytes */
#define OFF_LENGTH (OFF_NONCE + 12)   /* nonce: 12 bytes */
