/* SPDX-License-Identifier: BSD-3-Clause */
/* QEMU's TPM emulator protocol, the control channel's codec (emulator.h). */
#include <errno.h>
#include <string.h>

#include "emulator.h"
#include "tpm.h"

static uint64_t be64(const uint8_t *p) {
        return (uint64_t) tpm_be32(p) << 32 | tpm_be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v) {
        tpm_put_be32(p, (uint32_t) (v >> 32));
        tpm_put_be32(p + 4, (uint32_t) v);
}

int emu_request_fixed_size(uint32_t cmd) {
        switch (cmd) {
        case EMU_CMD_GET_CAPABILITY:
        case EMU_CMD_SHUTDOWN:
        case EMU_CMD_GET_TPMESTABLISHED:
        case EMU_CMD_HASH_START:
        case EMU_CMD_HASH_END:
        case EMU_CMD_CANCEL_TPM_CMD:
        case EMU_CMD_STORE_VOLATILE:
        case EMU_CMD_STOP:
        case EMU_CMD_GET_CONFIG:
        case EMU_CMD_SET_DATAFD:
                return 0;
        case EMU_CMD_SET_LOCALITY:
        case EMU_CMD_RESET_TPMESTABLISHED:
                return 1; /* a byte; QEMU pads it to 4, swtpm_ioctl does not */
        case EMU_CMD_INIT:
        case EMU_CMD_SET_BUFFERSIZE:
        case EMU_CMD_LOCK_STORAGE:
        case EMU_CMD_HASH_DATA: /* its length; the data follows */
                return 4;
        case EMU_CMD_GET_STATEBLOB: /* flags, type, offset */
        case EMU_CMD_SET_STATEBLOB: /* flags, type, length; the data follows */
                return 12;
        case EMU_CMD_GET_INFO: /* flags (u64), offset, pad */
                return 16;
        default:
                return -1;
        }
}

int emu_request_parse(const uint8_t *buf, size_t len, EmuRequest *ret) {
        const uint8_t *b;
        int fixed;

        *ret = (EmuRequest){ 0 };
        if (len < 4)
                return -EAGAIN;
        ret->cmd = tpm_be32(buf);
        fixed = emu_request_fixed_size(ret->cmd);
        if (fixed < 0)
                return -EOPNOTSUPP;
        if (len - 4 < (size_t) fixed)
                return -EAGAIN;
        ret->size = 4 + (size_t) fixed;
        b = buf + 4;

        switch (ret->cmd) {
        case EMU_CMD_INIT:
                ret->init_flags = tpm_be32(b);
                break;
        case EMU_CMD_SET_LOCALITY:
        case EMU_CMD_RESET_TPMESTABLISHED:
                ret->locality = b[0];
                break;
        case EMU_CMD_SET_BUFFERSIZE:
                ret->buffer_size = tpm_be32(b);
                break;
        case EMU_CMD_LOCK_STORAGE:
                ret->retries = tpm_be32(b);
                break;
        case EMU_CMD_HASH_DATA:
                ret->length = tpm_be32(b);
                if (ret->length > EMU_HASH_DATA_MAX)
                        return -EMSGSIZE;
                ret->data_offset = 8;
                ret->size = 8 + (size_t) ret->length;
                break;
        case EMU_CMD_GET_STATEBLOB:
                ret->blob_flags = tpm_be32(b);
                ret->blob_type = tpm_be32(b + 4);
                ret->blob_offset = tpm_be32(b + 8);
                break;
        case EMU_CMD_SET_STATEBLOB:
                ret->blob_flags = tpm_be32(b);
                ret->blob_type = tpm_be32(b + 4);
                ret->length = tpm_be32(b + 8);
                if (ret->length > EMU_STATEBLOB_MAX)
                        return -EMSGSIZE;
                ret->data_offset = 16;
                ret->size = 16 + (size_t) ret->length;
                break;
        case EMU_CMD_GET_INFO:
                ret->info_flags = be64(b);
                ret->blob_offset = tpm_be32(b + 8);
                break;
        default:
                break;
        }
        return 0;
}

size_t emu_response_result(uint8_t *out, uint32_t res) {
        tpm_put_be32(out, res);
        return 4;
}

size_t emu_response_capability(uint8_t *out, uint32_t caps) {
        /* No result code: the 8 bytes are the capabilities (QEMU reads a be64). */
        put_be64(out, caps);
        return 8;
}

size_t emu_response_established(uint8_t *out, uint32_t res, bool established) {
        memset(out, 0, 8);
        tpm_put_be32(out, res);
        out[4] = established ? 1 : 0;
        return 8;
}

size_t emu_response_buffer_size(uint8_t *out, uint32_t res, uint32_t size, uint32_t min, uint32_t max) {
        tpm_put_be32(out, res);
        tpm_put_be32(out + 4, size);
        tpm_put_be32(out + 8, min);
        tpm_put_be32(out + 12, max);
        return 16;
}

size_t emu_response_config(uint8_t *out, uint32_t res, uint32_t flags) {
        tpm_put_be32(out, res);
        tpm_put_be32(out + 4, flags);
        return 8;
}

size_t emu_response_stateblob_header(uint8_t *out, uint32_t res, uint32_t flags, uint32_t blob_len) {
        tpm_put_be32(out, res);
        tpm_put_be32(out + 4, flags);
        tpm_put_be32(out + 8, blob_len); /* totlength: the whole blob follows in this answer */
        tpm_put_be32(out + 12, blob_len);
        return EMU_STATEBLOB_HEADER_SIZE;
}

const char *emu_cmd_to_string(uint32_t cmd) {
        static const char *const names[] = {
                [EMU_CMD_GET_CAPABILITY] = "GET_CAPABILITY",
                [EMU_CMD_INIT] = "INIT",
                [EMU_CMD_SHUTDOWN] = "SHUTDOWN",
                [EMU_CMD_GET_TPMESTABLISHED] = "GET_TPMESTABLISHED",
                [EMU_CMD_SET_LOCALITY] = "SET_LOCALITY",
                [EMU_CMD_HASH_START] = "HASH_START",
                [EMU_CMD_HASH_DATA] = "HASH_DATA",
                [EMU_CMD_HASH_END] = "HASH_END",
                [EMU_CMD_CANCEL_TPM_CMD] = "CANCEL_TPM_CMD",
                [EMU_CMD_STORE_VOLATILE] = "STORE_VOLATILE",
                [EMU_CMD_RESET_TPMESTABLISHED] = "RESET_TPMESTABLISHED",
                [EMU_CMD_GET_STATEBLOB] = "GET_STATEBLOB",
                [EMU_CMD_SET_STATEBLOB] = "SET_STATEBLOB",
                [EMU_CMD_STOP] = "STOP",
                [EMU_CMD_GET_CONFIG] = "GET_CONFIG",
                [EMU_CMD_SET_DATAFD] = "SET_DATAFD",
                [EMU_CMD_SET_BUFFERSIZE] = "SET_BUFFERSIZE",
                [EMU_CMD_GET_INFO] = "GET_INFO",
                [EMU_CMD_LOCK_STORAGE] = "LOCK_STORAGE",
        };
        if (cmd < sizeof(names) / sizeof(names[0]) && names[cmd])
                return names[cmd];
        return NULL;
}
