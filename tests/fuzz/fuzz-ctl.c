/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Feeds bytes to the control socket's parsers: requests (what any local
 * admin-group client can send to vtpmd), replies (what vtpmd-ctl reads) and
 * the export blob's header and payload (a file from anywhere). An accepted
 * request must re-encode to a request that parses to the same thing.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *buf;
        CtlRequest q, q2;
        CtlReply reply;
        CtlExportHeader h;
        CtlExportPayload p;
        size_t n;
        char *enc = NULL;
        int r;

        buf = fuzz_copy(data, size);

        r = ctl_request_parse(buf, size, &q);
        if (r < 0 && r != -EBADMSG && r != -ENOMEM)
                abort();
        if (r >= 0) {
                if (ctl_request_encode(&q, &enc, &n) < 0)
                        abort();
                if (ctl_request_parse((const uint8_t *) enc, n, &q2) < 0)
                        abort();
                if (q2.op != q.op || q2.has_uuid != q.has_uuid || strcmp(q2.uuid, q.uuid) != 0 ||
                    q2.eks != q.eks || q2.pcr_banks != q.pcr_banks || q2.force != q.force ||
                    memcmp(q2.key, q.key, sizeof(q.key)) != 0)
                        abort();
                free(enc);
        }

        r = ctl_reply_parse(buf, size, &reply);
        if (r >= 0) {
                if (reply.kind == CTL_REPLY_ERROR && (reply.error >= 0 || strlen(reply.message) == 0))
                        abort();
                ctl_reply_done(&reply);
        }

        r = ctl_export_header_parse(buf, size, size == CTL_EXPORT_HEADER_SIZE, &h);
        if (r >= 0 && h.length > CTL_EXPORT_MAX_PAYLOAD)
                abort();
        for (uint16_t v = CTL_EXPORT_VERSION_MIN; v <= CTL_EXPORT_VERSION; v++) {
                r = ctl_export_payload_parse(buf, size, v, &p);
                if (r < 0)
                        continue;
                if (p.meta != buf || p.permall + p.permall_len > buf + size)
                        abort();
                for (size_t i = 0; i < _CTL_EXPORT_REC_MAX; i++)
                        if (p.rec_len[i] > CTL_EXPORT_MAX_RECORD ||
                            (p.rec_len[i] && p.rec[i] + p.rec_len[i] > buf + size))
                                abort();
        }
        free(buf);
        return 0;
}
