/* SPDX-License-Identifier: BSD-3-Clause */
#include "ipc.h"
#include "test.h"

#define UUID "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c"

/* Wire offsets of START fields (see ipc.h) */
#define OFF_DOMID 8
#define OFF_FAMILY 24
#define OFF_FLAGS 28
#define OFF_UUID 32
#define OFF_PLATFORM (OFF_UUID + 37)
#define OFF_KEY (OFF_PLATFORM + 256)
#define OFF_MIN_PERM_SEQ (OFF_KEY + 32)
#define OFF_VOL_SEQ (OFF_MIN_PERM_SEQ + 8)
#define OFF_UID (OFF_VOL_SEQ + 8)
#define OFF_GID (OFF_UID + 4)
#define START_LEN (8 + 6 * 4 + 37 + 256 + 32 + 8 + 8 + 4 + 4 + 8)

static IpcMsg start_msg(void) {
        IpcMsg m;

        memset(&m, 0, sizeof(m));
        m.type = IPC_START;
        m.start.domid = 3;
        m.start.devid = 0;
        m.start.ring_ref = 8;
        m.start.evtchn_port = 42;
        m.start.family = TPM_FAMILY_2_0;
        m.start.flags = IPC_START_TPM_STARTUP | IPC_START_TRACE;
        strcpy(m.start.uuid, UUID);
        strcpy(m.start.platform, "sim:/tmp/vtpmd-sim.XXXX");
        return m;
}

static size_t encode_start(uint8_t buf[static IPC_MAX_PACKET]) {
        IpcMsg m = start_msg();
        return ipc_encode(&m, buf);
}

/* A START whose string field at off (size bytes) holds s instead. */
static size_t encode_start_with(uint8_t buf[static IPC_MAX_PACKET], size_t off, size_t size, const char *s) {
        size_t n = encode_start(buf);

        memset(buf + off, 0, size);
        memcpy(buf + off, s, strlen(s));
        return n;
}

/* Decodes the START in buf with its flags replaced (they stay in buf). */
static int decode_with_flags(uint8_t *buf, size_t n, uint32_t flags) {
        IpcMsg d;

        memcpy(buf + OFF_FLAGS, &flags, sizeof(flags));
        return ipc_decode(buf, n, &d);
}

/* Each string of bad in that field makes the START undecodable. */
static void expect_field_rejected(size_t off, size_t size, const char *const *bad, size_t n_bad) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;

        for (size_t i = 0; i < n_bad; i++)
                ASSERT_ERR(ipc_decode(buf, encode_start_with(buf, off, size, bad[i]), &d), -EBADMSG);
}

static void put_u32(uint8_t *p, uint32_t v) {
        memcpy(p, &v, sizeof(v));
}

/* Round trip: decode(encode(m)) == m field by field, and re-encoding is identical. */
static int roundtrip(const IpcMsg *m, size_t want_len, IpcMsg *out) {
        uint8_t a[IPC_MAX_PACKET], b[IPC_MAX_PACKET];
        size_t n = ipc_encode(m, a);
        int r;

        if (n != want_len)
                return -EMSGSIZE;
        r = ipc_decode(a, n, out);
        if (r < 0)
                return r;
        if (ipc_encode(out, b) != n || memcmp(a, b, n) != 0)
                return -EPROTO;
        return 0;
}

TEST(start_roundtrip) {
        IpcMsg m = start_msg(), d;

        ASSERT_EQ(IPC_START_PAYLOAD_SIZE, 381);
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.type, IPC_START);
        ASSERT_EQ(d.start.domid, 3);
        ASSERT_EQ(d.start.devid, 0);
        ASSERT_EQ(d.start.ring_ref, 8);
        ASSERT_EQ(d.start.evtchn_port, 42);
        ASSERT_EQ(d.start.family, TPM_FAMILY_2_0);
        ASSERT_EQ(d.start.flags, IPC_START_TPM_STARTUP | IPC_START_TRACE);
        ASSERT_STREQ(d.start.uuid, UUID);
        ASSERT_STREQ(d.start.platform, "sim:/tmp/vtpmd-sim.XXXX");

        m.start.family = TPM_FAMILY_1_2;
        m.start.flags = 0;
        m.start.domid = 0x7fef;
        m.start.ring_ref = 0xffffffffu;
        strcpy(m.start.platform, "xen");
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.start.family, TPM_FAMILY_1_2);
        ASSERT_EQ(d.start.domid, 0x7fef);
        ASSERT_EQ(d.start.ring_ref, 0xffffffffu);
        ASSERT_STREQ(d.start.platform, "xen");

        m.start.uid = 300001;
        m.start.gid = 300000;
        m.start.memory_max = 256u << 20;
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.start.uid, 300001);
        ASSERT_EQ(d.start.gid, 300000);
        ASSERT_EQ(d.start.memory_max, 256u << 20);
}

/* A worker is never told to become root, or to keep root's group. */
TEST(start_ids) {
        static const uint32_t bad[][2] = { { 300001, 0 }, { 0, 300000 }, { UINT32_MAX, 5 }, { 5, UINT32_MAX } };
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t n = encode_start(buf);
                memcpy(buf + OFF_UID, &bad[i][0], 4); /* native order, like the codec */
                memcpy(buf + OFF_GID, &bad[i][1], 4);
                ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        }
}

TEST(start_wire_layout) {
        uint8_t buf[IPC_MAX_PACKET];
        uint32_t v;

        ASSERT_EQ(encode_start(buf), START_LEN);
        memcpy(&v, buf, 4);
        ASSERT_EQ(v, IPC_START);
        memcpy(&v, buf + 4, 4);
        ASSERT_EQ(v, 381);
        memcpy(&v, buf + OFF_DOMID, 4);
        ASSERT_EQ(v, 3);
        memcpy(&v, buf + OFF_FLAGS, 4);
        ASSERT_EQ(v, 3);
        ASSERT_MEMEQ(buf + OFF_UUID, UUID, 37);
        ASSERT_MEMEQ(buf + OFF_PLATFORM, "sim:/tmp/vtpmd-sim.XXXX", 24);
        for (size_t i = OFF_PLATFORM + 24; i < OFF_KEY; i++)
                ASSERT_EQ(buf[i], 0);
        /* not DURABLE: no key, no seqs */
        for (size_t i = OFF_KEY; i < START_LEN; i++)
                ASSERT_EQ(buf[i], 0);
}

TEST(start_platform_max_length) {
        IpcMsg m = start_msg(), d;

        memset(m.start.platform, 'a', sizeof(m.start.platform));
        memcpy(m.start.platform, "sim:/", 5);
        m.start.platform[255] = '\0';
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(strlen(d.start.platform), 255);
}

/* The encoder never emits an unterminated string, even from a bad struct. */
TEST(encode_truncates_unterminated_strings) {
        IpcMsg m = start_msg();
        uint8_t buf[IPC_MAX_PACKET];

        memset(m.start.platform, 'x', sizeof(m.start.platform));
        ASSERT_EQ(ipc_encode(&m, buf), START_LEN);
        ASSERT_EQ(buf[OFF_KEY - 1], 0);
        ASSERT_EQ(buf[OFF_KEY - 2], 'x');
}

TEST(small_types_roundtrip) {
        IpcMsg m, d;

        memset(&m, 0, sizeof(m));
        m.type = IPC_STOP;
        m.stop.mode = IPC_STOP_RESET;
        ASSERT_OK(roundtrip(&m, 12, &d));
        ASSERT_EQ(d.stop.mode, IPC_STOP_RESET);
        m.stop.mode = IPC_STOP_SUSPEND;
        ASSERT_OK(roundtrip(&m, 12, &d));
        ASSERT_EQ(d.stop.mode, IPC_STOP_SUSPEND);

        memset(&m, 0, sizeof(m));
        m.type = IPC_READY;
        m.ready.local_port = 0xdeadbeef;
        ASSERT_OK(roundtrip(&m, 12, &d));
        ASSERT_EQ(d.type, IPC_READY);
        ASSERT_EQ(d.ready.local_port, 0xdeadbeef);

        memset(&m, 0, sizeof(m));
        m.type = IPC_FAILED;
        for (unsigned s = IPC_STAGE_PARAMS; s <= IPC_STAGE_STATE; s++) {
                m.failed.stage = s;
                m.failed.error = -ENOENT;
                ASSERT_OK(roundtrip(&m, 16, &d));
                ASSERT_EQ(d.failed.stage, s);
                ASSERT_EQ(d.failed.error, -ENOENT);
        }
        m.failed.error = -1;
        ASSERT_OK(roundtrip(&m, 16, &d));
        m.failed.error = -4095;
        ASSERT_OK(roundtrip(&m, 16, &d));
        ASSERT_EQ(d.failed.error, -4095);

        memset(&m, 0, sizeof(m));
        m.type = IPC_STATS;
        m.stats.commands = UINT64_MAX;
        m.stats.rejected = 1;
        m.stats.cancels = 2;
        m.stats.events = 0x0102030405060708ull;
        ASSERT_OK(roundtrip(&m, 40, &d));
        ASSERT_TRUE(d.stats.commands == UINT64_MAX);
        ASSERT_EQ(d.stats.rejected, 1);
        ASSERT_EQ(d.stats.cancels, 2);
        ASSERT_TRUE(d.stats.events == 0x0102030405060708ull);

        memset(&m, 0, sizeof(m));
        m.type = IPC_STATS_REQ;
        ASSERT_OK(roundtrip(&m, 8, &d));
        ASSERT_EQ(d.type, IPC_STATS_REQ);
        m.type = IPC_STOPPED;
        ASSERT_OK(roundtrip(&m, 8, &d));
        ASSERT_EQ(d.type, IPC_STOPPED);
}

TEST(encode_unknown_type) {
        IpcMsg m;
        uint8_t buf[IPC_MAX_PACKET];

        memset(&m, 0, sizeof(m));
        m.type = (IpcType) 99;
        ASSERT_EQ(ipc_encode(&m, buf), 0);
}

TEST(reject_truncated_and_extra) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n = encode_start(buf);

        for (size_t len = 0; len < n; len++)
                ASSERT_ERR(ipc_decode(buf, len, &d), -EBADMSG);
        /* one extra byte, size field unchanged */
        buf[n] = 0;
        ASSERT_ERR(ipc_decode(buf, n + 1, &d), -EBADMSG);
        /* one extra byte, size field agreeing with it: still not START's size */
        put_u32(buf + 4, 318);
        ASSERT_ERR(ipc_decode(buf, n + 1, &d), -EBADMSG);
        /* size field disagreeing with the packet */
        put_u32(buf + 4, 316);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        ASSERT_ERR(ipc_decode(NULL, 8, &d), -EBADMSG);
        ASSERT_ERR(ipc_decode(buf, IPC_MAX_PACKET + 1, &d), -EBADMSG);
}

TEST(reject_payload_on_empty_types) {
        const uint32_t types[] = { IPC_STATS_REQ, IPC_STOPPED };
        uint8_t buf[16] = { 0 };
        IpcMsg d;

        for (size_t i = 0; i < 2; i++) {
                put_u32(buf, types[i]);
                put_u32(buf + 4, 0);
                ASSERT_OK(ipc_decode(buf, 8, &d));
                ASSERT_ERR(ipc_decode(buf, 9, &d), -EBADMSG);
                put_u32(buf + 4, 4);
                ASSERT_ERR(ipc_decode(buf, 12, &d), -EBADMSG);
        }
}

TEST(reject_unknown_types) {
        const uint32_t bad[] = { 0, 4, 15, 21, 0x80000001u, 0xffffffffu };
        uint8_t buf[IPC_MAX_PACKET] = { 0 };
        IpcMsg d;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                put_u32(buf, bad[i]);
                for (uint32_t size = 0; size <= 40; size += 4) {
                        put_u32(buf + 4, size);
                        ASSERT_ERR(ipc_decode(buf, 8 + size, &d), -EBADMSG);
                }
        }
}

TEST(decode_leaves_output_on_failure) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n = encode_start(buf);

        memset(&d, 0x5a, sizeof(d));
        put_u32(buf + OFF_FAMILY, 2);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        ASSERT_EQ(d.start.domid, 0x5a5a5a5a);
}

TEST(reject_start_fields) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n;

        n = encode_start(buf);
        ASSERT_OK(ipc_decode(buf, n, &d));

        /* family outside the enum */
        put_u32(buf + OFF_FAMILY, 2);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        put_u32(buf + OFF_FAMILY, 0xffffffffu);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);

        /* unknown flag bits */
        n = encode_start(buf);
        ASSERT_ERR(decode_with_flags(buf, n, 1u << 4), -EBADMSG);
        ASSERT_ERR(decode_with_flags(buf, n, 0x80000003u), -EBADMSG);

        /* reserved domids (DOMID_FIRST_RESERVED and up) */
        n = encode_start(buf);
        put_u32(buf + OFF_DOMID, 0x7ff0);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        put_u32(buf + OFF_DOMID, 0x10000);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
}

TEST(reject_start_uuid) {
        const char *bad[] = {
                "0C6C33B2-4F6A-4D35-9D7B-8D0E4F2A1B3C", /* valid but not canonical lowercase */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3",  /* short */
                "0c6c33b2x4f6a-4d35-9d7b-8d0e4f2a1b3c", /* bad dash */
                "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3g", /* not hex */
                "",
        };
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n;

        expect_field_rejected(OFF_UUID, 37, bad, sizeof(bad) / sizeof(bad[0]));
        /* unterminated: 37 non-NUL bytes */
        n = encode_start(buf);
        buf[OFF_UUID + 36] = 'a';
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        /* junk after the terminator */
        n = encode_start(buf);
        buf[OFF_UUID + 20] = '\0';
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
}

TEST(reject_start_platform) {
        const char *bad[] = { "", "xe", "xen ", "XEN", "xenx", "sim:", "sim:rel/dir", "sim/", "sim" };
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n;

        expect_field_rejected(OFF_PLATFORM, 256, bad, sizeof(bad) / sizeof(bad[0]));
        /* "sim:/" itself is a (root) directory */
        n = encode_start_with(buf, OFF_PLATFORM, 256, "sim:/");
        ASSERT_OK(ipc_decode(buf, n, &d));
        /* unterminated: 256 non-NUL bytes */
        memset(buf + OFF_PLATFORM, 'a', 256);
        memcpy(buf + OFF_PLATFORM, "sim:/", 5);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        /* NUL then junk */
        n = encode_start(buf);
        buf[OFF_KEY - 1] = 'z';
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
}

TEST(reject_stop_mode) {
        const uint32_t bad[] = { 0, 3, 0xffffffffu };
        uint8_t buf[12];
        IpcMsg d;

        put_u32(buf, IPC_STOP);
        put_u32(buf + 4, 4);
        for (size_t i = 0; i < 3; i++) {
                put_u32(buf + 8, bad[i]);
                ASSERT_ERR(ipc_decode(buf, 12, &d), -EBADMSG);
        }
        ASSERT_ERR(ipc_decode(buf, 11, &d), -EBADMSG);
}

TEST(reject_failed_fields) {
        const uint32_t bad_stage[] = { 0, 7, 0xffffffffu };
        const int32_t bad_error[] = { 0, 1, 4095, INT32_MAX, -4096, INT32_MIN };
        uint8_t buf[16];
        IpcMsg d;

        put_u32(buf, IPC_FAILED);
        put_u32(buf + 4, 8);
        put_u32(buf + 12, (uint32_t) -EIO);
        for (size_t i = 0; i < 3; i++) {
                put_u32(buf + 8, bad_stage[i]);
                ASSERT_ERR(ipc_decode(buf, 16, &d), -EBADMSG);
        }
        put_u32(buf + 8, IPC_STAGE_MAP);
        ASSERT_OK(ipc_decode(buf, 16, &d));
        ASSERT_EQ(d.failed.error, -EIO);
        for (size_t i = 0; i < sizeof(bad_error) / sizeof(bad_error[0]); i++) {
                memcpy(buf + 12, &bad_error[i], 4);
                ASSERT_ERR(ipc_decode(buf, 16, &d), -EBADMSG);
        }
}

TEST(reject_wrong_sizes_per_type) {
        const uint32_t types[] = { IPC_START, IPC_STOP, IPC_READY, IPC_FAILED, IPC_STATS, IPC_STATE };
        const uint32_t sizes[] = { 365, 4, 4, 8, 32, 16 };
        uint8_t buf[IPC_MAX_PACKET] = { 0 };
        IpcMsg d;

        for (size_t i = 0; i < 6; i++) {
                put_u32(buf, types[i]);
                for (uint32_t s = 0; s <= 370; s++) {
                        if (s == sizes[i])
                                continue;
                        put_u32(buf + 4, s);
                        ASSERT_ERR(ipc_decode(buf, 8 + s, &d), -EBADMSG);
                }
        }
}

TEST(strings) {
        ASSERT_STREQ(ipc_stage_to_string(IPC_STAGE_PARAMS), "params");
        ASSERT_STREQ(ipc_stage_to_string(IPC_STAGE_CONFINE), "confine");
        ASSERT_STREQ(ipc_stage_to_string(IPC_STAGE_STATE), "state");
        ASSERT_STREQ(ipc_type_to_string(IPC_STATE), "state");
        ASSERT_TRUE(ipc_stage_to_string((IpcStage) 0) == NULL);
        ASSERT_STREQ(ipc_type_to_string(IPC_START), "start");
        ASSERT_STREQ(ipc_type_to_string(IPC_STOPPED), "stopped");
        ASSERT_TRUE(ipc_type_to_string((IpcType) 0) == NULL);
}

static void put_u64(uint8_t *p, uint64_t v) {
        memcpy(p, &v, sizeof(v));
}

TEST(start_durable_roundtrip) {
        IpcMsg m = start_msg(), d;
        uint8_t buf[IPC_MAX_PACKET];
        uint64_t v;

        m.start.flags = IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE | IPC_START_TPM_STARTUP;
        for (size_t i = 0; i < sizeof(m.start.data_key); i++)
                m.start.data_key[i] = (uint8_t) (0xa0 + i);
        m.start.min_perm_seq = 0x1122334455667788ull;
        m.start.vol_seq = UINT64_MAX;
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.start.flags, IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE | IPC_START_TPM_STARTUP);
        ASSERT_MEMEQ(d.start.data_key, m.start.data_key, 32);
        ASSERT_TRUE(d.start.min_perm_seq == 0x1122334455667788ull);
        ASSERT_TRUE(d.start.vol_seq == UINT64_MAX);

        /* the wire layout: key then the two seqs, host order, unaligned */
        ASSERT_EQ(ipc_encode(&m, buf), START_LEN);
        ASSERT_MEMEQ(buf + OFF_KEY, m.start.data_key, 32);
        memcpy(&v, buf + OFF_MIN_PERM_SEQ, 8);
        ASSERT_TRUE(v == 0x1122334455667788ull);
        memcpy(&v, buf + OFF_VOL_SEQ, 8);
        ASSERT_TRUE(v == UINT64_MAX);

        /* DURABLE alone, seqs zero: a new vTPM */
        m.start.flags = IPC_START_DURABLE;
        m.start.min_perm_seq = m.start.vol_seq = 0;
        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.start.flags, IPC_START_DURABLE);
}

TEST(start_key_and_seqs_free_form) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n = encode_start(buf);

        /* without DURABLE too: the decoder does not judge the key or the seqs */
        memset(buf + OFF_KEY, 0xff, 32);
        put_u64(buf + OFF_MIN_PERM_SEQ, 7);
        put_u64(buf + OFF_VOL_SEQ, 3);
        ASSERT_OK(ipc_decode(buf, n, &d));
        ASSERT_EQ(d.start.data_key[31], 0xff);
        ASSERT_EQ(d.start.min_perm_seq, 7);
        ASSERT_EQ(d.start.vol_seq, 3);
}

TEST(reject_restore_volatile_without_durable) {
        uint8_t buf[IPC_MAX_PACKET];
        size_t n = encode_start(buf);

        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_RESTORE_VOLATILE), -EBADMSG);
        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_RESTORE_VOLATILE | IPC_START_TPM_STARTUP | IPC_START_TRACE),
                   -EBADMSG);
        ASSERT_OK(decode_with_flags(buf, n, IPC_START_RESTORE_VOLATILE | IPC_START_DURABLE));
        ASSERT_OK(decode_with_flags(buf, n, IPC_START_FLAGS_ALL & ~(uint32_t) (IPC_START_OFFLINE | IPC_START_PEEK)));
        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_FLAGS_ALL | (1u << 6)), -EBADMSG);
}

TEST(state_roundtrip) {
        IpcMsg m, d;
        uint8_t buf[IPC_MAX_PACKET];
        uint32_t v;

        memset(&m, 0, sizeof(m));
        m.type = IPC_STATE;
        m.state.kind = IPC_STATE_KIND_PERMANENT;
        m.state.seq = 0x0102030405060708ull;
        ASSERT_OK(roundtrip(&m, 8 + 16, &d));
        ASSERT_EQ(d.type, IPC_STATE);
        ASSERT_EQ(d.state.kind, IPC_STATE_KIND_PERMANENT);
        ASSERT_EQ(d.state.error, 0);
        ASSERT_TRUE(d.state.seq == 0x0102030405060708ull);

        m.state.kind = IPC_STATE_KIND_VOLATILE;
        m.state.seq = 0;
        ASSERT_OK(roundtrip(&m, 8 + 16, &d));
        ASSERT_EQ(d.state.kind, IPC_STATE_KIND_VOLATILE);

        m.state.kind = IPC_STATE_KIND_PERMANENT;
        m.state.error = -ENOSPC;
        ASSERT_OK(roundtrip(&m, 8 + 16, &d));
        ASSERT_EQ(d.state.error, -ENOSPC);
        ASSERT_EQ(d.state.seq, 0);

        ASSERT_EQ(ipc_encode(&m, buf), 24);
        memcpy(&v, buf + 4, 4);
        ASSERT_EQ(v, 16);
        memcpy(&v, buf + 8, 4);
        ASSERT_EQ(v, 1);
        memcpy(&v, buf + 12, 4);
        ASSERT_EQ(v, (uint32_t) -ENOSPC);
}

TEST(reject_state_fields) {
        const uint32_t bad_kind[] = { 0, 3, 4, 5, 0xffffffffu };
        const int32_t bad_error[] = { 1, 4095, INT32_MAX, -4096, INT32_MIN };
        uint8_t buf[24];
        IpcMsg d;

        put_u32(buf, IPC_STATE);
        put_u32(buf + 4, 16);
        put_u32(buf + 8, IPC_STATE_KIND_VOLATILE);
        put_u32(buf + 12, 0);
        put_u64(buf + 16, 9);
        ASSERT_OK(ipc_decode(buf, 24, &d));
        ASSERT_EQ(d.state.seq, 9);
        for (size_t i = 0; i < sizeof(bad_kind) / sizeof(bad_kind[0]); i++) {
                put_u32(buf + 8, bad_kind[i]);
                ASSERT_ERR(ipc_decode(buf, 24, &d), -EBADMSG);
        }
        put_u32(buf + 8, IPC_STATE_KIND_PERMANENT);
        put_u64(buf + 16, 0);
        for (size_t i = 0; i < sizeof(bad_error) / sizeof(bad_error[0]); i++) {
                memcpy(buf + 12, &bad_error[i], 4);
                ASSERT_ERR(ipc_decode(buf, 24, &d), -EBADMSG);
        }
        /* a failed write carries no seq */
        put_u32(buf + 12, (uint32_t) -EIO);
        ASSERT_OK(ipc_decode(buf, 24, &d));
        put_u64(buf + 16, 1);
        ASSERT_ERR(ipc_decode(buf, 24, &d), -EBADMSG);
        ASSERT_ERR(ipc_decode(buf, 23, &d), -EBADMSG);
}

/* ---- offline workers: START{OFFLINE}, COMMAND, RESPONSE ---- */

static IpcMsg offline_start_msg(void) {
        IpcMsg m = start_msg();

        m.start.domid = m.start.devid = m.start.ring_ref = m.start.evtchn_port = 0;
        m.start.flags = IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_TPM_STARTUP;
        strcpy(m.start.platform, "xen");
        return m;
}

TEST(start_offline_roundtrip) {
        IpcMsg m = offline_start_msg(), d;

        ASSERT_OK(roundtrip(&m, START_LEN, &d));
        ASSERT_EQ(d.start.flags, IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_TPM_STARTUP);
        ASSERT_EQ(d.start.ring_ref, 0);
        ASSERT_STREQ(d.start.platform, "xen");
}

TEST(reject_start_offline_fields) {
        IpcMsg m = offline_start_msg();
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg d;
        size_t n = ipc_encode(&m, buf);

        ASSERT_OK(ipc_decode(buf, n, &d));
        /* a guest's fields have no meaning offline: one encoding, all zero */
        for (size_t off = OFF_DOMID; off < OFF_FAMILY; off += 4) {
                put_u32(buf + off, 1);
                ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
                put_u32(buf + off, 0);
        }
        ASSERT_OK(ipc_decode(buf, n, &d));
        /* offline needs a state directory to manufacture into, and a power-on */
        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_OFFLINE), -EBADMSG);
        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_RESTORE_VOLATILE),
                   -EBADMSG);
        ASSERT_OK(decode_with_flags(buf, n, IPC_START_OFFLINE | IPC_START_DURABLE));
        /* a read-only look (pcrread) may resume a saved state, and is only ever offline */
        ASSERT_OK(decode_with_flags(buf, n, IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_PEEK));
        ASSERT_OK(decode_with_flags(buf, n, IPC_START_OFFLINE | IPC_START_DURABLE | IPC_START_PEEK |
                                                    IPC_START_RESTORE_VOLATILE));
        ASSERT_ERR(decode_with_flags(buf, n, IPC_START_OFFLINE | IPC_START_PEEK), -EBADMSG);
}

/* A TPM2_GetRandom(8) command, or any TPM packet of total size len. */
static IpcMsg tpm_msg(IpcType type, uint32_t len) {
        IpcMsg m;

        memset(&m, 0, sizeof(m));
        m.type = type;
        m.tpm.len = len;
        m.tpm.data[0] = 0x80;
        m.tpm.data[1] = 0x01;
        m.tpm.data[2] = (uint8_t) (len >> 24);
        m.tpm.data[3] = (uint8_t) (len >> 16);
        m.tpm.data[4] = (uint8_t) (len >> 8);
        m.tpm.data[5] = (uint8_t) len;
        m.tpm.data[9] = 0x7b;
        for (uint32_t i = 10; i < len; i++)
                m.tpm.data[i] = (uint8_t) i;
        return m;
}

TEST(tpm_packets_roundtrip) {
        const IpcType types[] = { IPC_COMMAND, IPC_RESPONSE };
        const uint32_t lens[] = { 10, 12, 4088, IPC_TPM_MAX };
        IpcMsg d;

        ASSERT_EQ(IPC_MAX_PACKET, 8 + 4096);
        for (size_t t = 0; t < 2; t++)
                for (size_t i = 0; i < 4; i++) {
                        IpcMsg m = tpm_msg(types[t], lens[i]);
                        ASSERT_OK(roundtrip(&m, 8 + lens[i], &d));
                        ASSERT_EQ(d.type, types[t]);
                        ASSERT_EQ(d.tpm.len, lens[i]);
                        ASSERT_MEMEQ(d.tpm.data, m.tpm.data, lens[i]);
                }
        ASSERT_STREQ(ipc_type_to_string(IPC_COMMAND), "command");
        ASSERT_STREQ(ipc_type_to_string(IPC_RESPONSE), "response");
}

TEST(reject_tpm_packets) {
        uint8_t buf[IPC_MAX_PACKET + 16];
        IpcMsg m = tpm_msg(IPC_COMMAND, 12), d;
        size_t n = ipc_encode(&m, buf);

        ASSERT_EQ(n, 20);
        ASSERT_OK(ipc_decode(buf, n, &d));
        /* the TPM header's size must be the payload's */
        buf[8 + 5] = 13;
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        buf[8 + 5] = 11;
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        buf[8 + 5] = 12;
        /* the frame's size must be the packet's */
        ASSERT_ERR(ipc_decode(buf, n - 1, &d), -EBADMSG);
        put_u32(buf + 4, 11);
        ASSERT_ERR(ipc_decode(buf, n, &d), -EBADMSG);
        /* shorter than a TPM header */
        m = tpm_msg(IPC_RESPONSE, 10);
        n = ipc_encode(&m, buf);
        ASSERT_OK(ipc_decode(buf, n, &d));
        put_u32(buf + 4, 9);
        buf[8 + 5] = 9;
        ASSERT_ERR(ipc_decode(buf, n - 1, &d), -EBADMSG);
        put_u32(buf + 4, 0);
        ASSERT_ERR(ipc_decode(buf, 8, &d), -EBADMSG);
        /* over a TPM packet */
        m = tpm_msg(IPC_COMMAND, IPC_TPM_MAX);
        n = ipc_encode(&m, buf);
        put_u32(buf + 4, IPC_TPM_MAX + 1);
        buf[8 + 4] = 0x10;
        buf[8 + 5] = 0x01;
        buf[n] = 0;
        ASSERT_ERR(ipc_decode(buf, n + 1, &d), -EBADMSG);
}

TEST(encode_rejects_bad_tpm_length) {
        uint8_t buf[IPC_MAX_PACKET];
        IpcMsg m = tpm_msg(IPC_COMMAND, 10);

        m.tpm.len = 9;
        ASSERT_EQ(ipc_encode(&m, buf), 0);
        m.tpm.len = IPC_TPM_MAX + 1;
        ASSERT_EQ(ipc_encode(&m, buf), 0);
}
