/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * QEMU's TPM emulator protocol (`-tpmdev emulator`), the control channel:
 * swtpm's CMD_* messages (research hvm-migration.md §A3, libtpms-swtpm.md §5).
 * Pure: no I/O.
 *
 * A request is a 4-byte big-endian command code followed by the command's
 * request body; the answer is the response body alone, which (but for
 * GET_CAPABILITY) begins with a 4-byte result code. All fields are big-endian.
 * The channel is a byte stream without lengths: like swtpm, one read is one
 * request, and a request may carry more bytes than its body needs (QEMU sends
 * SET_LOCALITY with 4 bytes, swtpm_ioctl with 1); only SET_STATEBLOB and
 * HASH_DATA say how long they are, and their data may take further reads.
 *
 * Everything here is untrusted input: sizes are checked before use, no
 * arithmetic on a wire length can wrap.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum EmuCmd {
        EMU_CMD_GET_CAPABILITY = 0x01,
        EMU_CMD_INIT = 0x02,
        EMU_CMD_SHUTDOWN = 0x03,
        EMU_CMD_GET_TPMESTABLISHED = 0x04,
        EMU_CMD_SET_LOCALITY = 0x05,
        EMU_CMD_HASH_START = 0x06,
        EMU_CMD_HASH_DATA = 0x07,
        EMU_CMD_HASH_END = 0x08,
        EMU_CMD_CANCEL_TPM_CMD = 0x09,
        EMU_CMD_STORE_VOLATILE = 0x0a,
        EMU_CMD_RESET_TPMESTABLISHED = 0x0b,
        EMU_CMD_GET_STATEBLOB = 0x0c,
        EMU_CMD_SET_STATEBLOB = 0x0d,
        EMU_CMD_STOP = 0x0e,
        EMU_CMD_GET_CONFIG = 0x0f,
        EMU_CMD_SET_DATAFD = 0x10,
        EMU_CMD_SET_BUFFERSIZE = 0x11,
        EMU_CMD_GET_INFO = 0x12,
        EMU_CMD_LOCK_STORAGE = 0x13,
} EmuCmd;

/* GET_CAPABILITY bits (swtpm's PTM_CAP_*). */
enum {
        EMU_CAP_INIT = 1u << 0,
        EMU_CAP_SHUTDOWN = 1u << 1,
        EMU_CAP_GET_TPMESTABLISHED = 1u << 2,
        EMU_CAP_SET_LOCALITY = 1u << 3,
        EMU_CAP_HASHING = 1u << 4,
        EMU_CAP_CANCEL_TPM_CMD = 1u << 5,
        EMU_CAP_STORE_VOLATILE = 1u << 6,
        EMU_CAP_RESET_TPMESTABLISHED = 1u << 7,
        EMU_CAP_GET_STATEBLOB = 1u << 8,
        EMU_CAP_SET_STATEBLOB = 1u << 9,
        EMU_CAP_STOP = 1u << 10,
        EMU_CAP_GET_CONFIG = 1u << 11,
        EMU_CAP_SET_DATAFD = 1u << 12,
        EMU_CAP_SET_BUFFERSIZE = 1u << 13,
        EMU_CAP_GET_INFO = 1u << 14,
        EMU_CAP_SEND_COMMAND_HEADER = 1u << 15,
        EMU_CAP_LOCK_STORAGE = 1u << 16,
};

/* Result codes in the responses (TPM 1.2 return codes, as swtpm uses them). */
enum {
        EMU_RES_SUCCESS = 0x00,
        EMU_RES_BAD_PARAMETER = 0x03,
        EMU_RES_FAIL = 0x09,
        EMU_RES_BAD_ORDINAL = 0x0a, /* an unknown or unsupported command */
        EMU_RES_SIZE = 0x17,
        EMU_RES_BAD_MODE = 0x2c,    /* not in the state the command needs (running / stopped) */
};

#define EMU_INIT_FLAG_DELETE_VOLATILE 0x1u

/* State blob types and flags (GET/SET_STATEBLOB). */
enum {
        EMU_BLOB_PERMANENT = 1,
        EMU_BLOB_VOLATILE = 2,
        EMU_BLOB_SAVESTATE = 3,
};
#define EMU_STATE_FLAG_DECRYPTED 0x1u /* request: wanted in the clear */
#define EMU_STATE_FLAG_ENCRYPTED 0x2u /* blob: encrypted (never, here) */

/* The most a SET_STATEBLOB may carry (swtpm refuses more: "Unreasonable large state"). */
#define EMU_STATEBLOB_MAX (512u * 1024u)
/* The most one HASH_DATA may carry. */
#define EMU_HASH_DATA_MAX 4096u
/* The largest request that is not a state blob: HASH_DATA with its data. */
#define EMU_REQUEST_MAX (4u + 4u + EMU_HASH_DATA_MAX)
/* The largest response but for GET_STATEBLOB's data. */
#define EMU_RESPONSE_MAX 16u

typedef struct EmuRequest {
        uint32_t cmd; /* EmuCmd, or the unknown code received */
        /* By command; zero where it has none. */
        uint32_t init_flags;       /* INIT */
        uint8_t locality;          /* SET_LOCALITY, RESET_TPMESTABLISHED (untrusted: the caller checks 0..4) */
        uint32_t buffer_size;      /* SET_BUFFERSIZE: 0 asks for the current size */
        uint32_t blob_type;        /* GET/SET_STATEBLOB (untrusted: the caller checks the type) */
        uint32_t blob_flags;       /* GET/SET_STATEBLOB */
        uint32_t blob_offset;      /* GET_STATEBLOB */
        uint32_t length;           /* SET_STATEBLOB, HASH_DATA: the data's length (bounded) */
        uint32_t retries;          /* LOCK_STORAGE */
        uint64_t info_flags;       /* GET_INFO */
        /* SET_STATEBLOB, HASH_DATA: where the data starts in the request, and
         * the request's whole size (header + data); for the others the size
         * of what was parsed. The caller keeps reading until it has `size`. */
        size_t data_offset;
        size_t size;
} EmuRequest;

/*
 * Parses the start of a request: buf holds the first len bytes received.
 * Returns 0 (ret filled; ret->size may exceed len for SET_STATEBLOB and
 * HASH_DATA: that much must arrive before the data is complete),
 * -EAGAIN (fewer bytes than the code and the fixed part need: read more),
 * -EOPNOTSUPP (an unknown command code: answer EMU_RES_BAD_ORDINAL),
 * -EMSGSIZE (a length above the bounds: answer EMU_RES_SIZE).
 * On error *ret holds at least the command code (0 if fewer than 4 bytes).
 */
int emu_request_parse(const uint8_t *buf, size_t len, EmuRequest *ret);

/* The bytes a command's fixed request part needs after the code (QEMU's
 * sizes); -1 for an unknown code. */
int emu_request_fixed_size(uint32_t cmd);

/* Responses, written to out (at least EMU_RESPONSE_MAX bytes); each returns
 * the number of bytes to send. */
size_t emu_response_result(uint8_t *out, uint32_t res);
size_t emu_response_capability(uint8_t *out, uint32_t caps);
size_t emu_response_established(uint8_t *out, uint32_t res, bool established);
size_t emu_response_buffer_size(uint8_t *out, uint32_t res, uint32_t size, uint32_t min, uint32_t max);
size_t emu_response_config(uint8_t *out, uint32_t res, uint32_t flags);
/* GET_STATEBLOB's 16-byte header; the blob (blob_len bytes) follows it. */
#define EMU_STATEBLOB_HEADER_SIZE 16u
size_t emu_response_stateblob_header(uint8_t *out, uint32_t res, uint32_t flags, uint32_t blob_len);

const char *emu_cmd_to_string(uint32_t cmd);
