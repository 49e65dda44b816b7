/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <string.h>

#include "tpm.h"

/* Every command we build is a header plus one UINT16 parameter. */
#define TPM_U16_COMMAND_SIZE (TPM_HEADER_SIZE + 2u)

int tpm_header_parse(const uint8_t *buf, size_t len, TpmHeader *ret) {
        if (!buf || len < TPM_HEADER_SIZE)
                return -EBADMSG;
        *ret = (TpmHeader) {
                .tag = tpm_be16(buf),
                .size = tpm_be32(buf + 2),
                .code = tpm_be32(buf + 6),
        };
        return 0;
}

static uint16_t tpm_response_tag(TpmFamily family) {
        switch (family) {
        case TPM_FAMILY_2_0:
                return TPM2_ST_NO_SESSIONS;
        case TPM_FAMILY_1_2:
                return TPM12_TAG_RSP_COMMAND;
        }
        /* Not a TpmFamily: a caller bug. The 2.0 tag is the safer guess, a 1.2
         * stack rejects it cleanly. */
        return TPM2_ST_NO_SESSIONS;
}

void tpm_error_response(TpmFamily family, uint32_t rc, uint8_t out[TPM_HEADER_SIZE]) {
        tpm_put_be16(out, tpm_response_tag(family));
        tpm_put_be32(out + 2, TPM_HEADER_SIZE);
        tpm_put_be32(out + 6, rc);
}

uint32_t tpm_rc_failure(TpmFamily family) {
        switch (family) {
        case TPM_FAMILY_2_0:
                return TPM2_RC_FAILURE;
        case TPM_FAMILY_1_2:
                return TPM12_FAIL;
        }
        return TPM2_RC_FAILURE;
}

uint32_t tpm_rc_command_size(TpmFamily family) {
        switch (family) {
        case TPM_FAMILY_2_0:
                return TPM2_RC_COMMAND_SIZE;
        case TPM_FAMILY_1_2:
                return TPM12_BAD_PARAM_SIZE;
        }
        return TPM2_RC_COMMAND_SIZE;
}

static int tpm_build_u16_command(uint16_t tag, uint32_t code, uint16_t param, uint8_t *buf, size_t len) {
        if (!buf || len < TPM_U16_COMMAND_SIZE)
                return -ENOBUFS;
        tpm_put_be16(buf, tag);
        tpm_put_be32(buf + 2, TPM_U16_COMMAND_SIZE);
        tpm_put_be32(buf + 6, code);
        tpm_put_be16(buf + 10, param);
        return (int) TPM_U16_COMMAND_SIZE;
}

int tpm2_build_startup(uint16_t su, uint8_t *buf, size_t len) {
        return tpm_build_u16_command(TPM2_ST_NO_SESSIONS, TPM2_CC_STARTUP, su, buf, len);
}

int tpm2_build_shutdown(uint16_t su, uint8_t *buf, size_t len) {
        return tpm_build_u16_command(TPM2_ST_NO_SESSIONS, TPM2_CC_SHUTDOWN, su, buf, len);
}

int tpm2_build_get_random(uint16_t bytes, uint8_t *buf, size_t len) {
        return tpm_build_u16_command(TPM2_ST_NO_SESSIONS, TPM2_CC_GET_RANDOM, bytes, buf, len);
}

int tpm12_build_startup(uint16_t st, uint8_t *buf, size_t len) {
        return tpm_build_u16_command(TPM12_TAG_RQU_COMMAND, TPM12_ORD_STARTUP, st, buf, len);
}

size_t tpm2_hash_size(uint16_t alg) {
        switch (alg) {
        case TPM2_ALG_SHA1:
                return 20;
        case TPM2_ALG_SHA256:
                return 32;
        case TPM2_ALG_SHA384:
                return 48;
        case TPM2_ALG_SHA512:
                return 64;
        default:
                return 0;
        }
}

/* header || TPML_PCR_SELECTION { count 1, hash, sizeofSelect 3, pcrSelect[3] } */
#define PCR_READ_SIZE (TPM_HEADER_SIZE + 4u + 2u + 1u + 3u)

int tpm2_build_pcr_read(uint16_t alg, uint32_t select, uint8_t *buf, size_t len) {
        if (len < PCR_READ_SIZE || !tpm2_hash_size(alg) || select >> TPM2_PCR_COUNT)
                return -EINVAL;
        tpm_put_be16(buf, TPM2_ST_NO_SESSIONS);
        tpm_put_be32(buf + 2, PCR_READ_SIZE);
        tpm_put_be32(buf + 6, TPM2_CC_PCR_READ);
        tpm_put_be32(buf + 10, 1);
        tpm_put_be16(buf + 14, alg);
        buf[16] = 3;
        buf[17] = (uint8_t) select;
        buf[18] = (uint8_t) (select >> 8);
        buf[19] = (uint8_t) (select >> 16);
        return (int) PCR_READ_SIZE;
}

int tpm2_parse_pcr_read(const uint8_t *buf, size_t len, uint16_t alg, uint32_t asked, uint32_t *ret_select,
                        uint8_t digests[TPM2_PCR_COUNT][TPM2_MAX_DIGEST], uint32_t *ret_rc) {
        size_t dsize = tpm2_hash_size(alg), off = TPM_HEADER_SIZE;
        uint32_t count, select = 0, n_digests;
        TpmHeader h;

        if (!dsize || tpm_header_parse(buf, len, &h) < 0 || h.size != len)
                return -EBADMSG;
        if (h.code != TPM2_RC_SUCCESS) {
                *ret_rc = h.code;
                return -EPROTO;
        }
        if (h.tag != TPM2_ST_NO_SESSIONS || len - off < 8)
                return -EBADMSG;
        off += 4; /* pcrUpdateCounter */
        count = tpm_be32(buf + off);
        off += 4;
        if (count > 1)
                return -EBADMSG;
        if (count == 1) {
                uint8_t size_of_select;
                if (len - off < 3)
                        return -EBADMSG;
                size_of_select = buf[off + 2];
                if (tpm_be16(buf + off) != alg || size_of_select < 3 || size_of_select > 4 ||
                    len - off - 3 < size_of_select)
                        return -EBADMSG;
                select = (uint32_t) buf[off + 3] | (uint32_t) buf[off + 4] << 8 | (uint32_t) buf[off + 5] << 16;
                if (size_of_select == 4 && buf[off + 6] != 0)
                        return -EBADMSG;
                off += 3u + size_of_select;
        }
        if (select & ~asked)
                return -EBADMSG;
        if (len - off < 4)
                return -EBADMSG;
        n_digests = tpm_be32(buf + off);
        off += 4;
        if (n_digests != (uint32_t) __builtin_popcount(select))
                return -EBADMSG;
        for (unsigned pcr = 0; pcr < TPM2_PCR_COUNT; pcr++) {
                if (!(select & (1u << pcr)))
                        continue;
                if (len - off < 2 || tpm_be16(buf + off) != dsize || len - off - 2 < dsize)
                        return -EBADMSG;
                memcpy(digests[pcr], buf + off + 2, dsize);
                off += 2 + dsize;
        }
        if (off != len)
                return -EBADMSG;
        *ret_select = select;
        return 0;
}

const char *tpm_family_to_string(TpmFamily f) {
        switch (f) {
        case TPM_FAMILY_2_0:
                return "2.0";
        case TPM_FAMILY_1_2:
                return "1.2";
        }
        return NULL;
}

int tpm_family_from_string(const char *s, TpmFamily *ret) {
        if (!s)
                return -EINVAL;
        if (strcmp(s, "2.0") == 0)
                *ret = TPM_FAMILY_2_0;
        else if (strcmp(s, "1.2") == 0)
                *ret = TPM_FAMILY_1_2;
        else
                return -EINVAL;
        return 0;
}

bool tpm_command_is_quick(TpmFamily family, const uint8_t *cmd, size_t len) {
        TpmHeader h;

        if (family != TPM_FAMILY_2_0 || tpm_header_parse(cmd, len, &h) < 0)
                return false;
        switch (h.code) {
        case TPM2_CC_GET_RANDOM: /* at most one digest's worth per call */
        case 0x00000182u: /* PCR_Extend */
        case 0x0000017eu: /* PCR_Read */
        case 0x0000013cu: /* PCR_Event (hashes at most 1024 bytes) */
        case 0x0000017au: /* GetCapability */
        case 0x00000169u: /* NV_ReadPublic */
        case 0x0000014eu: /* NV_Read */
        case 0x00000137u: /* NV_Write (one durable write, no crypto) */
        case 0x00000173u: /* ReadPublic */
        case 0x00000165u: /* FlushContext */
        case 0x00000181u: /* ReadClock */
        case 0x00000146u: /* StirRandom */
        case 0x0000017cu: /* GetTestResult */
        case 0x0000017du: /* Hash (one packet) */
                return true;
        default:
                return false;
        }
}
