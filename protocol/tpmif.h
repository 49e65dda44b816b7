/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The tpmif "v2" shared page (Xen xen/include/public/io/tpmif.h; research
 * xen-protocol.md §1, §2.3-2.6, §4, §8 item 4). Pure: no I/O.
 *
 *   offset 0  u32 length          guest native byte order (= ours: same host)
 *   offset 4  u8  state           IDLE 0, SUBMIT 1, FINISH 2, CANCEL 3
 *   offset 5  u8  locality        untrusted (Linux never writes it: 0)
 *   offset 6  u8  pad
 *   offset 7  u8  nr_extra_pages  Linux never writes it; we refuse != 0
 *   offset 8  u32 extra_pages[nr_extra_pages]
 *   8 + 4*nr_extra_pages: the TPM packet
 *
 * The page is guest memory that changes under us: the caller copies the 8
 * header bytes ONCE into a local array and everything below works on that copy.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define TPMIF_HEADER_SIZE 8u
#define TPMIF_MIN_COMMAND 10u /* a TPM header */

enum {
        TPMIF_STATE_IDLE = 0,
        TPMIF_STATE_SUBMIT = 1,
        TPMIF_STATE_FINISH = 2,
        TPMIF_STATE_CANCEL = 3,
};

#define TPMIF_OFF_LENGTH 0
#define TPMIF_OFF_STATE 4
#define TPMIF_OFF_LOCALITY 5
#define TPMIF_OFF_PAD 6
#define TPMIF_OFF_NR_EXTRA 7

typedef struct TpmifHeader {
        uint32_t length;
        uint8_t state;
        uint8_t locality;
        uint8_t pad;
        uint8_t nr_extra_pages;
} TpmifHeader;

typedef enum TpmifAction {
        TPMIF_ACTION_NONE,    /* IDLE or FINISH: nothing was asked (spurious event) */
        TPMIF_ACTION_COMMAND, /* valid SUBMIT: the command is at [offset, offset+length) */
        TPMIF_ACTION_REJECT,  /* invalid: answer a TPM error response with FINISH */
        TPMIF_ACTION_CANCEL,  /* CANCEL */
} TpmifAction;

typedef enum TpmifReject {
        TPMIF_REJECT_NONE,
        TPMIF_REJECT_EXTRA_PAGES, /* nr_extra_pages != 0 (not supported, like every known backend) */
        TPMIF_REJECT_TOO_SHORT,   /* length < 10 */
        TPMIF_REJECT_TOO_LONG,    /* length > mapped_size - offset */
        TPMIF_REJECT_BAD_STATE,   /* state byte is not 0..3 */
} TpmifReject;

typedef struct TpmifRequest {
        TpmifAction action;
        TpmifReject reject; /* why, for TPMIF_ACTION_REJECT */
        uint32_t offset;    /* where the packet starts (8 + 4*nr_extra_pages) */
        uint32_t length;    /* for COMMAND: bytes to copy */
        uint8_t locality;   /* untrusted, passed on to the TPM */
} TpmifRequest;

/* Decodes a local copy of the 8 header bytes. */
void tpmif_header_decode(const uint8_t raw[TPMIF_HEADER_SIZE], TpmifHeader *ret);

/* Classifies a request against the mapped size (4096 for one page). Bounds are
 * checked by subtraction (no 32-bit wrap, the mini-os tpmback bug). Always
 * fills *ret; returns 0, or -EINVAL if mapped_size < TPMIF_HEADER_SIZE. */
int tpmif_request_classify(const TpmifHeader *h, size_t mapped_size, TpmifRequest *ret);

/* Largest response that fits after `offset` in `mapped_size`, or 0. */
size_t tpmif_response_room(uint32_t offset, size_t mapped_size);

const char *tpmif_reject_to_string(TpmifReject r);
