/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpm12-extend DEVICE PCR DIGEST-HEX: sends one raw TPM 1.2 TPM_Extend to a TPM
 * character device and prints the PCR value the TPM returns (40 hex digits).
 * Built with gcc -static on the host and run inside the rig's domU, whose
 * initramfs has no C library of its own for it. Exit 0 only when the TPM
 * answered TPM_SUCCESS with a well-formed response.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* TPM 1.2 Main Part 3, 4.1 TPM_Extend: tag(2) size(4) ordinal(4) pcr(4) digest(20). */
#define EXTEND_CMD_SIZE 34u
/* tag(2) size(4) returnCode(4) outDigest(20) */
#define EXTEND_RSP_SIZE 30u
#define TPM_TAG_RQU_COMMAND 0x00c1u
#define TPM_TAG_RSP_COMMAND 0x00c4u
#define TPM_ORD_EXTEND 0x00000014u
#define SHA1_SIZE 20u

static void put_be16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static int parse_hex(const char *s, uint8_t out[static SHA1_SIZE]) {
        if (strlen(s) != 2 * SHA1_SIZE)
                return -EINVAL;
        for (unsigned i = 0; i < SHA1_SIZE; i++) {
                unsigned v;
                char byte[3] = { s[2 * i], s[2 * i + 1], 0 };
                char *end;

                v = (unsigned) strtoul(byte, &end, 16);
                if (*end != 0 || byte[0] == 0 || byte[1] == 0 || byte[0] == '-' || byte[0] == '+' ||
                    byte[0] == ' ')
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        return 0;
}

int main(int argc, char **argv) {
        uint8_t cmd[EXTEND_CMD_SIZE], rsp[4096];
        uint8_t digest[SHA1_SIZE];
        unsigned long pcr;
        char *end;
        ssize_t n;
        int fd;

        if (argc != 4) {
                fprintf(stderr, "usage: %s DEVICE PCR DIGEST-HEX(40)\n", argv[0]);
                return 2;
        }
        errno = 0;
        pcr = strtoul(argv[2], &end, 10);
        if (errno != 0 || *end != 0 || end == argv[2] || pcr > 23) {
                fprintf(stderr, "bad PCR index '%s'\n", argv[2]);
                return 2;
        }
        if (parse_hex(argv[3], digest) < 0) {
                fprintf(stderr, "bad digest '%s': want 40 hex digits\n", argv[3]);
                return 2;
        }

        put_be16(cmd, TPM_TAG_RQU_COMMAND);
        put_be32(cmd + 2, EXTEND_CMD_SIZE);
        put_be32(cmd + 6, TPM_ORD_EXTEND);
        put_be32(cmd + 10, (uint32_t) pcr);
        memcpy(cmd + 14, digest, SHA1_SIZE);

        fd = open(argv[1], O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "open %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        n = write(fd, cmd, sizeof(cmd));
        if (n != (ssize_t) sizeof(cmd)) {
                fprintf(stderr, "write: %s\n", n < 0 ? strerror(errno) : "short write");
                close(fd);
                return 1;
        }
        n = read(fd, rsp, sizeof(rsp));
        close(fd);
        if (n < 0) {
                fprintf(stderr, "read: %s\n", strerror(errno));
                return 1;
        }
        if (n < 10) {
                fprintf(stderr, "short response (%zd bytes)\n", n);
                return 1;
        }
        if (get_be32(rsp + 6) != 0) {
                fprintf(stderr, "TPM_Extend failed: return code 0x%x\n", get_be32(rsp + 6));
                return 1;
        }
        if ((size_t) n != EXTEND_RSP_SIZE || get_be32(rsp + 2) != EXTEND_RSP_SIZE ||
            (rsp[0] << 8 | rsp[1]) != TPM_TAG_RSP_COMMAND) {
                fprintf(stderr, "malformed TPM_Extend response (%zd bytes)\n", n);
                return 1;
        }
        for (unsigned i = 0; i < SHA1_SIZE; i++)
                printf("%02x", rsp[10 + i]);
        printf("\n");
        return 0;
}
