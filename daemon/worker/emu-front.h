/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The emulator front: a vTPM served to QEMU over its TPM emulator protocol
 * (`-tpmdev emulator`, DESIGN.md "Two transports, one vTPM") instead of a
 * xen-tpmfront page. Two channels, both from the VM's device model and so
 * untrusted:
 *
 *   control  a stream socket: swtpm's CMD_* requests (protocol/emulator.h),
 *            one per read; SET_DATAFD brings the data channel's fd with
 *            SCM_RIGHTS (QEMU sends it first)
 *   data     raw TPM commands (a 10-byte header with the size, then the
 *            rest), one at a time, each answered with one TPM response
 *
 * The TPM itself is behind a table of operations, so that a test can run the
 * front against libtpms in memory (tests/common/emu-serve.c) and the worker
 * against its durable state. The TPM's life as QEMU drives it: it starts
 * off; INIT powers it on (a VM reset: PCRs cleared, NV kept; the guest's
 * firmware sends TPM2_Startup); STOP powers it off; SHUTDOWN powers it off
 * and ends the front. Before the first INIT, data commands get a TPM error
 * response of the right family (QEMU's start-up probes only read its tag).
 * One command at a time, on the caller's thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

typedef struct EmuFront EmuFront;

typedef struct EmuFrontOps {
        /* Power on (INIT): resume from the blobs SET_STATEBLOB gave since the
         * last power-off, else from the stored state. delete_volatile: the
         * volatile blob must not be used again after this start. */
        int (*power_on)(void *userdata, bool delete_volatile);
        /* Power off (STOP, SHUTDOWN, INIT while running): an orderly
         * TPM2_Shutdown first if the guest left the TPM started. */
        void (*power_off)(void *userdata);
        /* Whether it is on: the TPM's, not the connection's (a client that
         * reconnects finds it as it left it, as with swtpm). */
        bool (*powered)(void *userdata);
        /* A TPM command while powered on: the response stays valid until the
         * next call. */
        int (*process)(void *userdata, const uint8_t *cmd, size_t len, uint8_t locality, const uint8_t **ret_resp,
                       size_t *ret_len);
        /* CANCEL_TPM_CMD (from the control channel while a command runs). */
        void (*cancel)(void *userdata);
        /* The TPM established flag (GET/RESET_TPMESTABLISHED). */
        int (*established)(void *userdata, bool *ret);
        int (*reset_established)(void *userdata, uint8_t locality);
        /* GET_STATEBLOB: the blob of that type (EMU_BLOB_*), malloc'd (may be
         * empty). The permanent one also while powered off; the volatile one
         * only while on. */
        int (*get_blob)(void *userdata, uint32_t type, uint8_t **ret, size_t *ret_len);
        /* SET_STATEBLOB while powered off: used by the next power_on. */
        int (*set_blob)(void *userdata, uint32_t type, const uint8_t *data, size_t len);
} EmuFrontOps;

typedef struct EmuFrontConfig {
        int control_fd; /* the connected control channel; borrowed */
        TpmFamily family;
        size_t buffer_size; /* the largest command and response (SET_BUFFERSIZE's only size) */
        const EmuFrontOps *ops;
        void *userdata;
        /* Optional: every control request answered (its code and result) and
         * every data command (its ordinal and the response code). */
        void (*trace)(void *userdata, bool control, uint32_t code, uint32_t result);
} EmuFrontConfig;

int emu_front_new(const EmuFrontConfig *c, EmuFront **ret);
EmuFront *emu_front_free(EmuFront *f);

/* The data channel's fd once SET_DATAFD brought it (the front owns it), else -1. */
int emu_front_data_fd(const EmuFront *f);

/* The control channel is readable: one request read and answered. Returns 0,
 * or 1 once the front has ended (SHUTDOWN, or the client closed the
 * channel), or a negative errno if the channel failed. */
int emu_front_on_control(EmuFront *f);
/* The data channel is readable: a command read, run and answered. Returns
 * 0, or 1 once the client closed the data channel, or a negative errno. */
int emu_front_on_data(EmuFront *f);

/* The front does not power the TPM off when it is freed: SHUTDOWN does, and
 * a worker whose QEMU went away ends with it. */

/* Counters for stats: commands answered, requests refused on either channel. */
uint64_t emu_front_commands(const EmuFront *f);
uint64_t emu_front_rejected(const EmuFront *f);
