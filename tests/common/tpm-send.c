/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * tpm-send: sends raw TPM commands (hex) over one connection to a TPM data
 * socket (a simulated guest's DIR/NAME.sock, or swtpm's) and prints each
 * response as hex on its own line. The tests use it for TPM 1.2 commands,
 * which tpm2-tools cannot send.
 *
 *   tpm-send SOCKET HEX [HEX...]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tpm-client.h"
#include "tpm.h"

int main(int argc, char **argv) {
        int fd;

        if (argc < 3) {
                fprintf(stderr, "usage: tpm-send SOCKET HEX [HEX...]\n");
                return 2;
        }
        fd = tpm_client_open("tpm-send", argv[1]);
        if (fd < 0)
                return 1;
        for (int a = 2; a < argc; a++) {
                uint8_t cmd[TPM_MAX_PACKET], resp[TPM_MAX_PACKET];
                size_t len, rlen;
                int r;

                if (tpm_client_hex_decode(argv[a], cmd, sizeof(cmd), &len) < 0) {
                        fprintf(stderr, "tpm-send: not a hex command: %s\n", argv[a]);
                        return 2;
                }
                r = tpm_client_transact(fd, cmd, len, resp, sizeof(resp), &rlen);
                if (r < 0) {
                        fprintf(stderr, "tpm-send: %s\n", strerror(-r));
                        return 1;
                }
                for (size_t i = 0; i < rlen; i++)
                        printf("%02x", resp[i]);
                printf("\n");
        }
        close(fd);
        return 0;
}
