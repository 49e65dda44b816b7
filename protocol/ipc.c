/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "ipc.h"
#include "parse.h"
#include "tpm.h"

_Static_assert(IPC_HEADER_SIZE + IPC_START_PAYLOAD_SIZE <= IPC_MAX_PACKET, "START fits a packet");
_Static_assert(IPC_HEADER_SIZE + IPC_STATS_PAYLOAD_SIZE <= IPC_MAX_PACKET, "STATS fits a packet");
_Static_assert(sizeof(((IpcStart *) 0)->data_key) == IPC_DATA_KEY_SIZE, "data_key size");
_Static_assert(IPC_TPM_MAX == TPM_MAX_PACKET, "a TPM packet fits a COMMAND/RESPONSE");

/* Kernel MAX_ERRNO: anything below cannot be a negative errno, and bounding it
 * keeps -error well defined for the receiver. */
#define IPC_ERRNO_MAX 4095

#define IPC_SIZE_VARIABLE (-2L)

/* Returns the exact payload size of a type, IPC_SIZE_VARIABLE for the TPM
 * packets, or -1 if the type is unknown. */
static long ipc_payload_size(uint32_t type) {
        switch ((IpcType) type) {
        case IPC_START:
                return IPC_START_PAYLOAD_SIZE;
        case IPC_STOP:
                return IPC_STOP_PAYLOAD_SIZE;
        case IPC_READY:
                return IPC_READY_PAYLOAD_SIZE;
        case IPC_FAILED:
                return IPC_FAILED_PAYLOAD_SIZE;
        case IPC_STATS:
                return IPC_STATS_PAYLOAD_SIZE;
        case IPC_STATE:
                return IPC_STATE_PAYLOAD_SIZE;
        case IPC_STATS_REQ:
        case IPC_STOPPED:
                return 0;
        case IPC_COMMAND:
        case IPC_RESPONSE:
                return IPC_SIZE_VARIABLE;
        }
        return -1;
}

/* Sequential reader over a buffer whose total size was checked beforehand. */
typedef struct Reader {
        const uint8_t *p;
} Reader;

static uint32_t rd_u32(Reader *r) {
        uint32_t v;
        memcpy(&v, r->p, sizeof(v));
        r->p += sizeof(v);
        return v;
}

static uint64_t rd_u64(Reader *r) {
        uint64_t v;
        memcpy(&v, r->p, sizeof(v));
        r->p += sizeof(v);
        return v;
}

/* A fixed-size string field: must hold a NUL and only zeros after it, so there
 * is exactly one encoding of every value (the fuzzer checks re-encoding). */
static void rd_bytes(Reader *r, void *out, size_t size) {
        memcpy(out, r->p, size);
        r->p += size;
}

static bool rd_str(Reader *r, char *out, size_t size) {
        const uint8_t *nul = memchr(r->p, 0, size);

        if (!nul)
                return false;
        for (const uint8_t *q = nul; q < r->p + size; q++)
                if (*q != 0)
                        return false;
        memcpy(out, r->p, size);
        r->p += size;
        return true;
}

typedef struct Writer {
        uint8_t *p;
} Writer;

static void wr_u32(Writer *w, uint32_t v) {
        memcpy(w->p, &v, sizeof(v));
        w->p += sizeof(v);
}

static void wr_u64(Writer *w, uint64_t v) {
        memcpy(w->p, &v, sizeof(v));
        w->p += sizeof(v);
}

static void wr_bytes(Writer *w, const void *p, size_t size) {
        memcpy(w->p, p, size);
        w->p += size;
}

static void wr_str(Writer *w, const char *s, size_t size) {
        size_t n = strnlen(s, size - 1);

        memcpy(w->p, s, n);
        memset(w->p + n, 0, size - n);
        w->p += size;
}

static bool platform_valid(const char *p) {
        return strcmp(p, "xen") == 0 || strncmp(p, "sim:/", 5) == 0;
}

static bool uuid_valid(const char *u) {
        char canon[IPC_UUID_LEN];

        /* Canonical means lowercase too: the UUID names a state directory. */
        return parse_uuid(u, canon) >= 0 && strcmp(canon, u) == 0;
}

static int decode_start(Reader *r, IpcStart *s) {
        s->domid = rd_u32(r);
        s->devid = rd_u32(r);
        s->ring_ref = rd_u32(r);
        s->evtchn_port = rd_u32(r);
        s->family = rd_u32(r);
        s->flags = rd_u32(r);
        if (!rd_str(r, s->uuid, sizeof(s->uuid)) || !rd_str(r, s->platform, sizeof(s->platform)))
                return -EBADMSG;
        rd_bytes(r, s->data_key, sizeof(s->data_key));
        s->min_perm_seq = rd_u64(r);
        s->vol_seq = rd_u64(r);
        s->uid = rd_u32(r);
        s->gid = rd_u32(r);
        s->memory_max = rd_u64(r);

        /* A worker never becomes root by mistake, nor keeps root's group. */
        if ((s->uid == 0) != (s->gid == 0) || s->uid == UINT32_MAX || s->gid == UINT32_MAX)
                return -EBADMSG;
        if (s->domid >= IPC_DOMID_FIRST_RESERVED)
                return -EBADMSG;
        if (!tpm_family_to_string((TpmFamily) s->family))
                return -EBADMSG;
        if (s->flags & ~(uint32_t) IPC_START_FLAGS_ALL)
                return -EBADMSG;
        /* There is nothing to restore volatile state from without a state directory. */
        if ((s->flags & IPC_START_RESTORE_VOLATILE) && !(s->flags & IPC_START_DURABLE))
                return -EBADMSG;
        if (!uuid_valid(s->uuid) || !platform_valid(s->platform))
                return -EBADMSG;
        /* An offline worker has no guest: nothing to map or bind, but a state
         * directory to manufacture into, and a fresh power-on. */
        if (s->flags & IPC_START_OFFLINE) {
                if (!(s->flags & IPC_START_DURABLE))
                        return -EBADMSG;
                /* Only a read-only look may resume a saved state (and keeps it). */
                if ((s->flags & IPC_START_RESTORE_VOLATILE) && !(s->flags & IPC_START_PEEK))
                        return -EBADMSG;
                if (s->domid != 0 || s->devid != 0 || s->ring_ref != 0 || s->evtchn_port != 0)
                        return -EBADMSG;
        } else if (s->flags & IPC_START_PEEK)
                return -EBADMSG; /* serving a guest is never read-only */
        return 0;
}

/* size was checked against IPC_TPM_MAX by the caller. */
static int decode_tpm(Reader *r, uint32_t size, IpcTpm *t) {
        TpmHeader h;

        if (size < TPM_HEADER_SIZE || tpm_header_parse(r->p, size, &h) < 0 || h.size != size)
                return -EBADMSG;
        t->len = size;
        rd_bytes(r, t->data, size);
        return 0;
}

static int decode_stop(Reader *r, IpcStop *s) {
        s->mode = rd_u32(r);
        switch ((IpcStopMode) s->mode) {
        case IPC_STOP_RESET:
        case IPC_STOP_SUSPEND:
                return 0;
        }
        return -EBADMSG;
}

static bool errno_valid(int32_t e) {
        return e < 0 && e >= -IPC_ERRNO_MAX;
}

static int decode_state(Reader *r, IpcState *s) {
        uint32_t e;

        s->kind = rd_u32(r);
        e = rd_u32(r);
        memcpy(&s->error, &e, sizeof(e));
        s->seq = rd_u64(r);
        if (s->kind != IPC_STATE_KIND_PERMANENT && s->kind != IPC_STATE_KIND_VOLATILE)
                return -EBADMSG;
        /* A failed write has no sequence number: one encoding per message. */
        if (s->error != 0 && (!errno_valid(s->error) || s->seq != 0))
                return -EBADMSG;
        return 0;
}

static int decode_failed(Reader *r, IpcFailed *f) {
        uint32_t e;

        f->stage = rd_u32(r);
        e = rd_u32(r);
        memcpy(&f->error, &e, sizeof(e));
        if (!ipc_stage_to_string((IpcStage) f->stage))
                return -EBADMSG;
        if (!errno_valid(f->error))
                return -EBADMSG;
        return 0;
}

int ipc_decode(const uint8_t *buf, size_t len, IpcMsg *ret) {
        Reader r;
        IpcMsg m;
        uint32_t type, size;
        long expected;
        int k;

        if (!buf || len < IPC_HEADER_SIZE || len > IPC_MAX_PACKET)
                return -EBADMSG;

        r = (Reader) { .p = buf };
        type = rd_u32(&r);
        size = rd_u32(&r);
        expected = ipc_payload_size(type);
        if (expected == IPC_SIZE_VARIABLE) {
                if (size > IPC_TPM_MAX)
                        return -EBADMSG;
        } else if (expected < 0 || size != (size_t) expected)
                return -EBADMSG;
        if (size != len - IPC_HEADER_SIZE)
                return -EBADMSG;

        memset(&m, 0, sizeof(m));
        m.type = (IpcType) type;
        k = -EBADMSG; /* ipc_payload_size() already refused unknown types */
        switch (m.type) {
        case IPC_START:
                k = decode_start(&r, &m.start);
                break;
        case IPC_STOP:
                k = decode_stop(&r, &m.stop);
                break;
        case IPC_READY:
                m.ready.local_port = rd_u32(&r);
                k = 0;
                break;
        case IPC_FAILED:
                k = decode_failed(&r, &m.failed);
                break;
        case IPC_STATS:
                m.stats.commands = rd_u64(&r);
                m.stats.rejected = rd_u64(&r);
                m.stats.cancels = rd_u64(&r);
                m.stats.events = rd_u64(&r);
                k = 0;
                break;
        case IPC_STATE:
                k = decode_state(&r, &m.state);
                break;
        case IPC_STATS_REQ:
        case IPC_STOPPED:
                k = 0;
                break;
        case IPC_COMMAND:
        case IPC_RESPONSE:
                k = decode_tpm(&r, size, &m.tpm);
                break;
        }
        if (k < 0)
                return k;

        *ret = m;
        return 0;
}

size_t ipc_encode(const IpcMsg *msg, uint8_t buf[static IPC_MAX_PACKET]) {
        Writer w = { .p = buf };
        long size = ipc_payload_size((uint32_t) msg->type);
        uint32_t e;

        if (size == IPC_SIZE_VARIABLE) {
                if (msg->tpm.len < TPM_HEADER_SIZE || msg->tpm.len > IPC_TPM_MAX)
                        return 0;
                size = (long) msg->tpm.len;
        }
        if (size < 0)
                return 0;

        wr_u32(&w, (uint32_t) msg->type);
        wr_u32(&w, (uint32_t) size);
        switch (msg->type) {
        case IPC_START:
                wr_u32(&w, msg->start.domid);
                wr_u32(&w, msg->start.devid);
                wr_u32(&w, msg->start.ring_ref);
                wr_u32(&w, msg->start.evtchn_port);
                wr_u32(&w, msg->start.family);
                wr_u32(&w, msg->start.flags);
                wr_str(&w, msg->start.uuid, sizeof(msg->start.uuid));
                wr_str(&w, msg->start.platform, sizeof(msg->start.platform));
                wr_bytes(&w, msg->start.data_key, sizeof(msg->start.data_key));
                wr_u64(&w, msg->start.min_perm_seq);
                wr_u64(&w, msg->start.vol_seq);
                wr_u32(&w, msg->start.uid);
                wr_u32(&w, msg->start.gid);
                wr_u64(&w, msg->start.memory_max);
                break;
        case IPC_STOP:
                wr_u32(&w, msg->stop.mode);
                break;
        case IPC_READY:
                wr_u32(&w, msg->ready.local_port);
                break;
        case IPC_FAILED:
                wr_u32(&w, msg->failed.stage);
                memcpy(&e, &msg->failed.error, sizeof(e));
                wr_u32(&w, e);
                break;
        case IPC_STATS:
                wr_u64(&w, msg->stats.commands);
                wr_u64(&w, msg->stats.rejected);
                wr_u64(&w, msg->stats.cancels);
                wr_u64(&w, msg->stats.events);
                break;
        case IPC_STATE:
                wr_u32(&w, msg->state.kind);
                memcpy(&e, &msg->state.error, sizeof(e));
                wr_u32(&w, e);
                wr_u64(&w, msg->state.seq);
                break;
        case IPC_STATS_REQ:
        case IPC_STOPPED:
                break;
        case IPC_COMMAND:
        case IPC_RESPONSE:
                wr_bytes(&w, msg->tpm.data, msg->tpm.len);
                break;
        }
        return (size_t) (w.p - buf);
}

const char *ipc_stage_to_string(IpcStage s) {
        switch (s) {
        case IPC_STAGE_PARAMS:
                return "params";
        case IPC_STAGE_MAP:
                return "map";
        case IPC_STAGE_BIND:
                return "bind";
        case IPC_STAGE_TPM:
                return "tpm";
        case IPC_STAGE_CONFINE:
                return "confine";
        case IPC_STAGE_STATE:
                return "state";
        }
        return NULL;
}

const char *ipc_type_to_string(IpcType t) {
        switch (t) {
        case IPC_START:
                return "start";
        case IPC_STOP:
                return "stop";
        case IPC_STATS_REQ:
                return "stats-req";
        case IPC_READY:
                return "ready";
        case IPC_FAILED:
                return "failed";
        case IPC_STATS:
                return "stats";
        case IPC_STOPPED:
                return "stopped";
        case IPC_STATE:
                return "state";
        case IPC_COMMAND:
                return "command";
        case IPC_RESPONSE:
                return "response";
        }
        return NULL;
}
