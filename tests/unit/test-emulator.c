/* SPDX-License-Identifier: BSD-3-Clause */
/* The emulator protocol's control codec (protocol/emulator.h): every command,
 * the sizes QEMU and swtpm_ioctl send, and every malformed request. */
#include "emulator.h"
#include "test.h"
#include "tpm.h"

static size_t req(uint8_t *buf, uint32_t cmd, const uint32_t *words, size_t n) {
        tpm_put_be32(buf, cmd);
        for (size_t i = 0; i < n; i++)
                tpm_put_be32(buf + 4 + 4 * i, words[i]);
        return 4 + 4 * n;
}

TEST(every_known_command_parses_with_its_fixed_part) {
        for (uint32_t c = EMU_CMD_GET_CAPABILITY; c <= EMU_CMD_LOCK_STORAGE; c++) {
                uint8_t buf[64] = { 0 };
                EmuRequest r;
                int fixed = emu_request_fixed_size(c);

                ASSERT_TRUE(fixed >= 0);
                ASSERT_TRUE(emu_cmd_to_string(c) != NULL);
                tpm_put_be32(buf, c);
                ASSERT_OK(emu_request_parse(buf, 4 + (size_t) fixed, &r));
                ASSERT_EQ(r.cmd, c);
                if (fixed > 0)
                        ASSERT_ERR(emu_request_parse(buf, 4 + (size_t) fixed - 1, &r), -EAGAIN);
        }
}

TEST(unknown_codes_are_refused) {
        static const uint32_t bad[] = { 0, 0x14, 0xff, 0x100, 0x80000001u, 0xffffffffu };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                uint8_t buf[8] = { 0 };
                EmuRequest r;
                tpm_put_be32(buf, bad[i]);
                ASSERT_ERR(emu_request_parse(buf, sizeof(buf), &r), -EOPNOTSUPP);
                ASSERT_EQ(r.cmd, bad[i]);
                ASSERT_EQ(emu_request_fixed_size(bad[i]), -1);
                ASSERT_TRUE(emu_cmd_to_string(bad[i]) == NULL);
        }
}

TEST(short_code_needs_more) {
        uint8_t buf[4] = { 0, 0, 0, 1 };
        EmuRequest r;
        for (size_t n = 0; n < 4; n++)
                ASSERT_ERR(emu_request_parse(buf, n, &r), -EAGAIN);
}

TEST(set_locality_one_byte_or_padded) {
        uint8_t buf[8] = { 0, 0, 0, EMU_CMD_SET_LOCALITY, 3, 0, 0, 0 };
        EmuRequest r;

        ASSERT_OK(emu_request_parse(buf, 5, &r)); /* swtpm_ioctl */
        ASSERT_EQ(r.locality, 3);
        ASSERT_OK(emu_request_parse(buf, 8, &r)); /* QEMU: sizeof the union */
        ASSERT_EQ(r.locality, 3);
        ASSERT_EQ(r.size, 5);
        buf[4] = 0xff; /* out of range is the caller's to refuse, but passed on as is */
        ASSERT_OK(emu_request_parse(buf, 8, &r));
        ASSERT_EQ(r.locality, 0xff);
}

TEST(init_flags_and_buffer_size) {
        uint8_t buf[16];
        EmuRequest r;
        size_t n = req(buf, EMU_CMD_INIT, (uint32_t[]){ EMU_INIT_FLAG_DELETE_VOLATILE }, 1);

        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.init_flags, EMU_INIT_FLAG_DELETE_VOLATILE);
        n = req(buf, EMU_CMD_SET_BUFFERSIZE, (uint32_t[]){ 4096 }, 1);
        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.buffer_size, 4096);
        n = req(buf, EMU_CMD_LOCK_STORAGE, (uint32_t[]){ 300 }, 1);
        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.retries, 300);
}

TEST(get_stateblob_fields) {
        uint8_t buf[16];
        EmuRequest r;
        size_t n = req(buf, EMU_CMD_GET_STATEBLOB,
                       (uint32_t[]){ EMU_STATE_FLAG_DECRYPTED, EMU_BLOB_VOLATILE, 7 }, 3);

        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.blob_flags, EMU_STATE_FLAG_DECRYPTED);
        ASSERT_EQ(r.blob_type, EMU_BLOB_VOLATILE);
        ASSERT_EQ(r.blob_offset, 7);
        ASSERT_EQ(r.size, 16);
}

TEST(set_stateblob_says_how_much_follows) {
        uint8_t buf[32];
        EmuRequest r;
        size_t n = req(buf, EMU_CMD_SET_STATEBLOB, (uint32_t[]){ 0, EMU_BLOB_PERMANENT, 1000 }, 3);

        /* Only the header arrived: the size says 1000 bytes more are due. */
        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.length, 1000);
        ASSERT_EQ(r.data_offset, 16);
        ASSERT_EQ(r.size, 1016);
        ASSERT_ERR(emu_request_parse(buf, n - 1, &r), -EAGAIN);
}

TEST(set_stateblob_bounds) {
        uint8_t buf[16];
        EmuRequest r;
        size_t n = req(buf, EMU_CMD_SET_STATEBLOB, (uint32_t[]){ 0, EMU_BLOB_PERMANENT, EMU_STATEBLOB_MAX }, 3);

        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.size, 16 + (size_t) EMU_STATEBLOB_MAX);
        req(buf, EMU_CMD_SET_STATEBLOB, (uint32_t[]){ 0, EMU_BLOB_PERMANENT, EMU_STATEBLOB_MAX + 1 }, 3);
        ASSERT_ERR(emu_request_parse(buf, n, &r), -EMSGSIZE);
        req(buf, EMU_CMD_SET_STATEBLOB, (uint32_t[]){ 0, EMU_BLOB_PERMANENT, 0xffffffffu }, 3);
        ASSERT_ERR(emu_request_parse(buf, n, &r), -EMSGSIZE);
}

TEST(hash_data_bounds) {
        uint8_t buf[8];
        EmuRequest r;
        size_t n = req(buf, EMU_CMD_HASH_DATA, (uint32_t[]){ EMU_HASH_DATA_MAX }, 1);

        ASSERT_OK(emu_request_parse(buf, n, &r));
        ASSERT_EQ(r.size, 8 + (size_t) EMU_HASH_DATA_MAX);
        ASSERT_TRUE(r.size <= EMU_REQUEST_MAX);
        req(buf, EMU_CMD_HASH_DATA, (uint32_t[]){ EMU_HASH_DATA_MAX + 1 }, 1);
        ASSERT_ERR(emu_request_parse(buf, n, &r), -EMSGSIZE);
}

TEST(get_info_u64_flags) {
        uint8_t buf[20] = { 0 };
        EmuRequest r;

        tpm_put_be32(buf, EMU_CMD_GET_INFO);
        tpm_put_be32(buf + 4, 0x00000001);
        tpm_put_be32(buf + 8, 0x00000002);
        tpm_put_be32(buf + 12, 5);
        ASSERT_OK(emu_request_parse(buf, sizeof(buf), &r));
        ASSERT_EQ(r.info_flags, 0x0000000100000002ull);
        ASSERT_EQ(r.blob_offset, 5);
}

TEST(responses_are_big_endian) {
        uint8_t out[EMU_RESPONSE_MAX];
        static const uint8_t caps[8] = { 0, 0, 0, 0, 0x00, 0x01, 0x23, 0x45 };
        static const uint8_t est[8] = { 0, 0, 0, 0, 1, 0, 0, 0 };
        static const uint8_t bs[16] = { 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0x40, 0, 0, 0x10, 0 };
        static const uint8_t hdr[16] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0x12, 0x34 };
        static const uint8_t res[4] = { 0, 0, 0, 0x0a };

        ASSERT_EQ(emu_response_capability(out, 0x12345), 8);
        ASSERT_MEMEQ(out, caps, 8);
        ASSERT_EQ(emu_response_established(out, 0, true), 8);
        ASSERT_MEMEQ(out, est, 8);
        ASSERT_EQ(emu_response_buffer_size(out, 0, 4096, 64, 4096), 16);
        ASSERT_MEMEQ(out, bs, 16);
        ASSERT_EQ(emu_response_stateblob_header(out, 0, 0, 0x1234), EMU_STATEBLOB_HEADER_SIZE);
        ASSERT_MEMEQ(out, hdr, 16);
        ASSERT_EQ(emu_response_result(out, EMU_RES_BAD_ORDINAL), 4);
        ASSERT_MEMEQ(out, res, 4);
        ASSERT_EQ(emu_response_config(out, 0, 0), 8);
}
