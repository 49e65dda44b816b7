/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Feeds bytes from disk (a state file anyone with dom0 disk access may have
 * written) to every pure state-file parser. Each accepted input must have one
 * encoding: re-encoding gives back the same bytes. Rejections must be the
 * documented errnos and nothing else.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "statefile.h"

static void check_blob(const uint8_t *buf, size_t size) {
        uint8_t hdr[STATEFILE_HEADER_SIZE];
        StateHeader h;
        int r;

        r = statefile_parse(buf, size, &h);
        if (r < 0) {
                if (r != -EBADMSG && r != -EPROTONOSUPPORT && r != -EMEDIUMTYPE)
                        abort();
                return;
        }
        if (h.version != STATEFILE_VERSION || h.flags != 0 || h.length > STATEFILE_MAX_PAYLOAD ||
            size != (size_t) STATEFILE_OVERHEAD + h.length)
                abort();
        if (!state_kind_to_string(h.kind) || !state_kind_filename(h.kind))
                abort();
        statefile_header_encode(&h, hdr);
        if (memcmp(hdr, buf, STATEFILE_HEADER_SIZE) != 0)
                abort();
}

static void check_meta(const uint8_t *buf, size_t size) {
        uint8_t out[STATE_META_SIZE];
        StateMeta m;
        int r = state_meta_parse(buf, size, &m);

        if (r == -EBADMSG)
                return;
        if (r < 0)
                abort();
        state_meta_encode(&m, out);
        if (size != STATE_META_SIZE || memcmp(out, buf, size) != 0)
                abort();
}

static void check_handover(const uint8_t *buf, size_t size) {
        uint8_t out[STATE_HANDOVER_SIZE];
        StateHandover h;
        int r = state_handover_parse(buf, size, &h);

        if (r == -EBADMSG)
                return;
        if (r < 0)
                abort();
        state_handover_encode(&h, out);
        if (size != STATE_HANDOVER_SIZE || memcmp(out, buf, size) != 0)
                abort();
}

static void check_manifest(const uint8_t *buf, size_t size) {
        StateManifest m = {}, m2 = {};
        uint8_t *out = NULL, *out2 = NULL;
        size_t n = 0, n2 = 0;
        int r;

        r = state_manifest_parse(buf, size, &m);
        if (r < 0) {
                if (r != -EBADMSG && r != -ENOMEM)
                        abort();
                return;
        }
        if (state_manifest_encode(&m, &out, &n) < 0 || n != size || memcmp(out, buf, size) != 0)
                abort();
        for (uint32_t i = 0; i < m.n; i++)
                if (state_manifest_find(&m, m.entries[i].uuid) != &m.entries[i])
                        abort();

        /* Rebuilding by inserts in reverse order must give the same manifest. */
        m2.counter = m.counter;
        for (uint32_t i = m.n; i > 0; i--)
                if (state_manifest_set(&m2, &m.entries[i - 1]) < 0)
                        abort();
        if (state_manifest_encode(&m2, &out2, &n2) < 0 || n2 != n || memcmp(out2, out, n) != 0)
                abort();
        /* Removing every entry empties it. */
        for (uint32_t i = 0; i < m.n; i++)
                if (state_manifest_remove(&m2, m.entries[i].uuid) != 1)
                        abort();
        if (m2.n != 0)
                abort();
        free(out);
        free(out2);
        state_manifest_done(&m);
        state_manifest_done(&m2);
}

static void check_uuid(const uint8_t *buf, size_t size) {
        uint8_t bin[STATEFILE_UUID_SIZE];
        char s[64], back[37];

        if (size >= sizeof(s))
                return;
        memcpy(s, buf, size);
        s[size] = '\0';
        if (statefile_uuid_from_string(s, bin) < 0)
                return;
        statefile_uuid_to_string(bin, back);
        if (strlen(s) != 36 || strcasecmp(s, back) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *buf = fuzz_copy(data, size);

        check_blob(buf, size);
        check_meta(buf, size);
        check_handover(buf, size);
        check_manifest(buf, size);
        check_uuid(buf, size);
        free(buf);
        return 0;
}
