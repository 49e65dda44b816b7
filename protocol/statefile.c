/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "statefile.h"

/* Byte offsets of the header fields; statefile.h has the table. */
#define OFF_MAGIC 0
#define OFF_VERSION 8
#define OFF_KIND 10
#define OFF_FLAGS 12
#define OFF_SEQ 16
#define OFF_UUID 24
#define OFF_NONCE 40
#define OFF_LENGTH 52

#define MANIFEST_HEADER_SIZE 12u /* u64 counter, u32 n */
#define MANIFEST_ENTRY_SIZE (STATEFILE_UUID_SIZE + 16u)
#define MANIFEST_SUSPEND_MAGIC 0x53555350u /* "SUSP" */
#define MANIFEST_SUSPEND_HEADER_SIZE 8u    /* u32 magic, u32 m */
#define MANIFEST_SUSPEND_SIZE (STATEFILE_UUID_SIZE + 16u + STATEFILE_UUID_SIZE)

/* On-disk values of TpmFamily in a META blob: fixed here, not the enum's
 * ordinals, so reordering the enum can never reinterpret a stored vTPM. */
#define META_FAMILY_2_0 0x0200u
#define META_FAMILY_1_2 0x0102u

static uint64_t get_be64(const uint8_t *p) {
        return ((uint64_t) tpm_be32(p) << 32) | tpm_be32(p + 4);
}

static void put_be64(uint8_t *p, uint64_t v) {
        tpm_put_be32(p, (uint32_t) (v >> 32));
        tpm_put_be32(p + 4, (uint32_t) v);
}

static bool state_kind_known(uint16_t k) {
        return k >= STATE_KIND_PERMANENT && k <= STATE_KIND_HANDOVER_GRANT;
}

void statefile_header_encode(const StateHeader *h, uint8_t out[STATEFILE_HEADER_SIZE]) {
        memcpy(out + OFF_MAGIC, STATEFILE_MAGIC, STATEFILE_MAGIC_SIZE);
        tpm_put_be16(out + OFF_VERSION, h->version);
        tpm_put_be16(out + OFF_KIND, (uint16_t) h->kind);
        tpm_put_be32(out + OFF_FLAGS, h->flags);
        put_be64(out + OFF_SEQ, h->seq);
        memcpy(out + OFF_UUID, h->uuid, STATEFILE_UUID_SIZE);
        memcpy(out + OFF_NONCE, h->nonce, STATEFILE_NONCE_SIZE);
        tpm_put_be32(out + OFF_LENGTH, h->length);
}

int statefile_parse(const uint8_t *buf, size_t len, StateHeader *ret) {
        StateHeader h;
        uint16_t version, kind;

        if (!buf || len < STATEFILE_OVERHEAD)
                return -EBADMSG;
        if (memcmp(buf + OFF_MAGIC, STATEFILE_MAGIC, STATEFILE_MAGIC_SIZE) != 0)
                return -EBADMSG;
        /* The version decides how the rest is read, so it is checked before any other field. */
        version = tpm_be16(buf + OFF_VERSION);
        if (version != STATEFILE_VERSION)
                return -EPROTONOSUPPORT;
        kind = tpm_be16(buf + OFF_KIND);
        if (!state_kind_known(kind))
                return -EMEDIUMTYPE;

        memset(&h, 0, sizeof(h));
        h.version = version;
        h.kind = (StateKind) kind;
        h.flags = tpm_be32(buf + OFF_FLAGS);
        h.seq = get_be64(buf + OFF_SEQ);
        memcpy(h.uuid, buf + OFF_UUID, STATEFILE_UUID_SIZE);
        memcpy(h.nonce, buf + OFF_NONCE, STATEFILE_NONCE_SIZE);
        h.length = tpm_be32(buf + OFF_LENGTH);

        /* No flags are defined in version 1: a set flag means a writer we do not know. */
        if (h.flags != 0)
                return -EBADMSG;
        if (h.length > STATEFILE_MAX_PAYLOAD)
                return -EBADMSG;
        /* By subtraction: len >= OVERHEAD was checked above, so this cannot wrap. */
        if (len - STATEFILE_OVERHEAD != h.length)
                return -EBADMSG;

        *ret = h;
        return 0;
}

int statefile_uuid_from_string(const char *s, uint8_t ret[STATEFILE_UUID_SIZE]) {
        char canon[37], hex[2 * STATEFILE_UUID_SIZE + 1];
        size_t j = 0;
        int r;

        r = parse_uuid(s, canon);
        if (r < 0)
                return r;
        /* parse_uuid guarantees 32 hex digits around 4 dashes. */
        for (size_t i = 0; i < 36 && j < 2 * STATEFILE_UUID_SIZE; i++)
                if (canon[i] != '-')
                        hex[j++] = canon[i];
        hex[j] = '\0';
        return parse_hex(hex, ret, STATEFILE_UUID_SIZE);
}

void statefile_uuid_to_string(const uint8_t uuid[STATEFILE_UUID_SIZE], char ret[static 37]) {
        static const char digits[] = "0123456789abcdef";
        size_t o = 0;

        for (size_t i = 0; i < STATEFILE_UUID_SIZE; i++) {
                if (i == 4 || i == 6 || i == 8 || i == 10)
                        ret[o++] = '-';
                ret[o++] = digits[uuid[i] >> 4];
                ret[o++] = digits[uuid[i] & 0xf];
        }
        ret[o] = '\0';
}

const char *state_kind_to_string(StateKind k) {
        switch (k) {
        case STATE_KIND_PERMANENT:
                return "permanent";
        case STATE_KIND_VOLATILE:
                return "volatile";
        case STATE_KIND_DATA_KEY:
                return "data key";
        case STATE_KIND_META:
                return "metadata";
        case STATE_KIND_MANIFEST:
                return "manifest";
        case STATE_KIND_CA_KEY:
                return "CA key";
        case STATE_KIND_HANDOVER_REQUEST:
                return "handover request";
        case STATE_KIND_HANDOVER_GRANT:
                return "handover";
        }
        return NULL;
}

const char *state_kind_filename(StateKind k) {
        switch (k) {
        case STATE_KIND_PERMANENT:
                return "permall";
        case STATE_KIND_VOLATILE:
                return "volatile";
        case STATE_KIND_DATA_KEY:
                return "key";
        case STATE_KIND_META:
                return "meta";
        case STATE_KIND_MANIFEST:
                return "manifest";
        case STATE_KIND_CA_KEY:
                return "ca-key";
        case STATE_KIND_HANDOVER_REQUEST:
                return "request";
        case STATE_KIND_HANDOVER_GRANT:
                return "grant";
        }
        return NULL;
}

/* META plaintext: u32 family (META_FAMILY_*), u32 reserved (0), u64 created_usec; big-endian. */
void state_meta_encode(const StateMeta *m, uint8_t out[STATE_META_SIZE]) {
        uint32_t fam = 0;

        switch (m->family) {
        case TPM_FAMILY_2_0:
                fam = META_FAMILY_2_0;
                break;
        case TPM_FAMILY_1_2:
                fam = META_FAMILY_1_2;
                break;
        }
        tpm_put_be32(out, fam);
        tpm_put_be32(out + 4, 0);
        put_be64(out + 8, m->created_usec);
}

int state_meta_parse(const uint8_t *buf, size_t len, StateMeta *ret) {
        StateMeta m;
        uint32_t fam;

        if (!buf || len != STATE_META_SIZE)
                return -EBADMSG;
        fam = tpm_be32(buf);
        if (fam == META_FAMILY_2_0)
                m.family = TPM_FAMILY_2_0;
        else if (fam == META_FAMILY_1_2)
                m.family = TPM_FAMILY_1_2;
        else
                return -EBADMSG;
        if (tpm_be32(buf + 4) != 0)
                return -EBADMSG;
        m.created_usec = get_be64(buf + 8);
        *ret = m;
        return 0;
}

static int uuid_cmp(const uint8_t *a, const uint8_t *b) {
        return memcmp(a, b, STATEFILE_UUID_SIZE);
}

/* Position of uuid in the sorted entries, or where it would be inserted. */
static uint32_t manifest_lower_bound(const StateManifest *m, const uint8_t *uuid, bool *found) {
        uint32_t lo = 0, hi = m->n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (uuid_cmp(m->entries[mid].uuid, uuid) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < m->n && uuid_cmp(m->entries[lo].uuid, uuid) == 0;
        return lo;
}

/* A suspend record counts only with the volatile state it resumes. */
static bool manifest_entry_suspended(const StateManifestEntry *e) {
        return e->suspend.usec && e->vol_seq;
}

int state_manifest_encode(const StateManifest *m, uint8_t **ret, size_t *ret_len) {
        uint32_t n_suspended = 0;
        uint8_t *buf, *p;
        size_t len;

        if (!m || (m->n > 0 && !m->entries))
                return -EINVAL;
        if (m->n > STATE_MANIFEST_MAX_ENTRIES)
                return -E2BIG;
        for (uint32_t i = 1; i < m->n; i++)
                if (uuid_cmp(m->entries[i - 1].uuid, m->entries[i].uuid) >= 0)
                        return -EINVAL;

        for (uint32_t i = 0; i < m->n; i++)
                n_suspended += manifest_entry_suspended(&m->entries[i]);

        len = MANIFEST_HEADER_SIZE + (size_t) m->n * MANIFEST_ENTRY_SIZE;
        if (n_suspended)
                len += MANIFEST_SUSPEND_HEADER_SIZE + (size_t) n_suspended * MANIFEST_SUSPEND_SIZE;
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        put_be64(buf, m->counter);
        tpm_put_be32(buf + 8, m->n);
        p = buf + MANIFEST_HEADER_SIZE;
        for (uint32_t i = 0; i < m->n; i++, p += MANIFEST_ENTRY_SIZE) {
                memcpy(p, m->entries[i].uuid, STATEFILE_UUID_SIZE);
                put_be64(p + STATEFILE_UUID_SIZE, m->entries[i].perm_seq);
                put_be64(p + STATEFILE_UUID_SIZE + 8, m->entries[i].vol_seq);
        }
        if (n_suspended) {
                tpm_put_be32(p, MANIFEST_SUSPEND_MAGIC);
                tpm_put_be32(p + 4, n_suspended);
                p += MANIFEST_SUSPEND_HEADER_SIZE;
                for (uint32_t i = 0; i < m->n; i++) {
                        const StateSuspend *su = &m->entries[i].suspend;
                        if (!manifest_entry_suspended(&m->entries[i]))
                                continue;
                        memcpy(p, m->entries[i].uuid, STATEFILE_UUID_SIZE);
                        put_be64(p + STATEFILE_UUID_SIZE, su->usec);
                        tpm_put_be32(p + STATEFILE_UUID_SIZE + 8, su->domid);
                        tpm_put_be32(p + STATEFILE_UUID_SIZE + 12, su->devid);
                        memcpy(p + STATEFILE_UUID_SIZE + 16, su->handle, STATEFILE_UUID_SIZE);
                        p += MANIFEST_SUSPEND_SIZE;
                }
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

int state_manifest_parse(const uint8_t *buf, size_t len, StateManifest *ret) {
        StateManifestEntry *entries = NULL;
        uint32_t n_suspended = 0;
        const uint8_t *p;
        uint64_t counter;
        size_t base;
        uint32_t n;

        if (!buf || len < MANIFEST_HEADER_SIZE)
                return -EBADMSG;
        counter = get_be64(buf);
        n = tpm_be32(buf + 8);
        if (n > STATE_MANIFEST_MAX_ENTRIES)
                return -EBADMSG;
        /* n is bounded above, so n * 32 cannot overflow; compare by subtraction anyway. */
        if ((len - MANIFEST_HEADER_SIZE) / MANIFEST_ENTRY_SIZE < n)
                return -EBADMSG;
        base = MANIFEST_HEADER_SIZE + (size_t) n * MANIFEST_ENTRY_SIZE;
        if (len != base) {
                /* The suspend trailer, and nothing else. */
                uint32_t m;
                if (len - base < MANIFEST_SUSPEND_HEADER_SIZE || tpm_be32(buf + base) != MANIFEST_SUSPEND_MAGIC)
                        return -EBADMSG;
                m = tpm_be32(buf + base + 4);
                if (m == 0 || m > n || (len - base - MANIFEST_SUSPEND_HEADER_SIZE) / MANIFEST_SUSPEND_SIZE != m ||
                    (len - base - MANIFEST_SUSPEND_HEADER_SIZE) % MANIFEST_SUSPEND_SIZE != 0)
                        return -EBADMSG;
                n_suspended = m;
        }

        p = buf + MANIFEST_HEADER_SIZE;
        for (uint32_t i = 1; i < n; i++)
                if (uuid_cmp(p + (size_t) (i - 1) * MANIFEST_ENTRY_SIZE, p + (size_t) i * MANIFEST_ENTRY_SIZE) >= 0)
                        return -EBADMSG;

        if (n > 0) {
                entries = calloc(n, sizeof(*entries));
                if (!entries)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < n; i++, p += MANIFEST_ENTRY_SIZE) {
                memcpy(entries[i].uuid, p, STATEFILE_UUID_SIZE);
                entries[i].perm_seq = get_be64(p + STATEFILE_UUID_SIZE);
                entries[i].vol_seq = get_be64(p + STATEFILE_UUID_SIZE + 8);
        }
        /* Suspend records: in uuid order, so one forward walk over the entries matches them. */
        p += MANIFEST_SUSPEND_HEADER_SIZE;
        for (uint32_t k = 0, i = 0; k < n_suspended; k++, p += MANIFEST_SUSPEND_SIZE) {
                while (i < n && uuid_cmp(entries[i].uuid, p) < 0)
                        i++;
                if (i == n || uuid_cmp(entries[i].uuid, p) != 0 || entries[i].vol_seq == 0) {
                        free(entries);
                        return -EBADMSG;
                }
                StateSuspend *su = &entries[i].suspend;
                su->usec = get_be64(p + STATEFILE_UUID_SIZE);
                su->domid = tpm_be32(p + STATEFILE_UUID_SIZE + 8);
                su->devid = tpm_be32(p + STATEFILE_UUID_SIZE + 12);
                memcpy(su->handle, p + STATEFILE_UUID_SIZE + 16, STATEFILE_UUID_SIZE);
                if (su->usec == 0) {
                        free(entries);
                        return -EBADMSG;
                }
                i++; /* strictly increasing: a duplicate record finds no entry */
        }

        *ret = (StateManifest){ .counter = counter, .n = n, .entries = entries };
        return 0;
}

void state_manifest_done(StateManifest *m) {
        if (!m)
                return;
        free(m->entries);
        m->entries = NULL;
        m->n = 0;
}

StateManifestEntry *state_manifest_find(const StateManifest *m, const uint8_t uuid[STATEFILE_UUID_SIZE]) {
        bool found;
        uint32_t i;

        if (!m || m->n == 0)
                return NULL;
        i = manifest_lower_bound(m, uuid, &found);
        return found ? &m->entries[i] : NULL;
}

int state_manifest_set(StateManifest *m, const StateManifestEntry *e) {
        StateManifestEntry *entries;
        bool found;
        uint32_t i;

        i = manifest_lower_bound(m, e->uuid, &found);
        if (found) {
                m->entries[i] = *e;
                return 0;
        }
        if (m->n >= STATE_MANIFEST_MAX_ENTRIES)
                return -E2BIG;
        entries = realloc(m->entries, ((size_t) m->n + 1) * sizeof(*entries));
        if (!entries)
                return -ENOMEM;
        memmove(entries + i + 1, entries + i, (size_t) (m->n - i) * sizeof(*entries));
        entries[i] = *e;
        m->entries = entries;
        m->n++;
        return 0;
}

/* Returns 1 if an entry was removed, 0 if there was none: removing is idempotent. */
int state_manifest_remove(StateManifest *m, const uint8_t uuid[STATEFILE_UUID_SIZE]) {
        bool found;
        uint32_t i;

        if (m->n == 0)
                return 0;
        i = manifest_lower_bound(m, uuid, &found);
        if (!found)
                return 0;
        memmove(m->entries + i, m->entries + i + 1, (size_t) (m->n - i - 1) * sizeof(*m->entries));
        m->n--;
        if (m->n == 0) {
                free(m->entries);
                m->entries = NULL;
        }
        return 1;
}

void state_handover_encode(const StateHandover *h, uint8_t out[STATE_HANDOVER_SIZE]) {
        uint8_t *o = out;

        memcpy(o, h->host, STATE_HANDOVER_HOST_SIZE);
        o += STATE_HANDOVER_HOST_SIZE;
        put_be64(o, h->su.usec);
        tpm_put_be32(o + 8, h->su.domid);
        tpm_put_be32(o + 12, h->su.devid);
        memcpy(o + 16, h->su.handle, STATEFILE_UUID_SIZE);
        o += 16 + STATEFILE_UUID_SIZE;
        put_be64(o, h->vol_seq);
        put_be64(o + 8, h->perm_seq);
        put_be64(o + 16, 0);
}

int state_handover_parse(const uint8_t *buf, size_t len, StateHandover *ret) {
        const uint8_t *b = buf;
        StateHandover h;

        if (!buf || len != STATE_HANDOVER_SIZE)
                return -EBADMSG;
        memcpy(h.host, b, STATE_HANDOVER_HOST_SIZE);
        b += STATE_HANDOVER_HOST_SIZE;
        h.su.usec = get_be64(b);
        h.su.domid = tpm_be32(b + 8);
        h.su.devid = tpm_be32(b + 12);
        memcpy(h.su.handle, b + 16, STATEFILE_UUID_SIZE);
        b += 16 + STATEFILE_UUID_SIZE;
        h.vol_seq = get_be64(b);
        h.perm_seq = get_be64(b + 8);
        if (get_be64(b + 16) != 0)
                return -EBADMSG;
        *ret = h;
        return 0;
}
