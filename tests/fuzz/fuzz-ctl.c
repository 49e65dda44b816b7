/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Feeds bytes to the control socket's parsers: requests (what any local
 * admin-group client can send to vtpmd), replies (what vtpmd-ctl reads) and
 * the export blob's header and payload (a file from anywhere). An accepted
 * request must re-encode to a request that parses to the same thing. Also
 * pcrread's pieces: the selection vtpmd-ctl parses from its command line, and
 * the TPM2_PCR_Read response vtpmd parses from a worker (which a guest may
 * have taken over).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ctl.h"
#include "tpm.h"

static void fuzz_pcrread(const uint8_t *data, size_t size) {
        static const uint16_t algs[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512 };
        uint8_t digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST];
        char *s = malloc(size + 1);
        unsigned bank;
        uint32_t pcrs, got, rc;

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        if (ctl_parse_pcr_selection(s, &bank, &pcrs) == 0 && (!ctl_bank_to_string(bank) || pcrs == 0 ||
                                                              pcrs >> CTL_PCR_COUNT))
                abort();
        free(s);
        /* Every PCR asked for, and some (from the last bytes): what is returned is never more. */
        uint32_t asks[2] = { 0xffffffu, size >= 3 ? (uint32_t) data[size - 1] | (uint32_t) data[size - 2] << 8 |
                                                            (uint32_t) (data[size - 3] & 0xff) << 16
                                                  : 0 };
        for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
                for (size_t a = 0; a < 2; a++)
                        if (tpm2_parse_pcr_read(data, size, algs[i], asks[a], &got, digests, &rc) == 0 &&
                            (got & ~asks[a]))
                                abort();
}

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
        fuzz_pcrread(data, size);

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
                    memcmp(q2.key, q.key, sizeof(q.key)) != 0 || q2.bank != q.bank || q2.pcrs != q.pcrs)
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
