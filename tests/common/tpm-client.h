/* SPDX-License-Identifier: BSD-3-Clause */
/* A minimal client of a TPM data socket (raw commands, as swtpm and our simulated guests serve them). */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Connects to a Unix stream socket. Returns the fd or a negative errno. */
int tpm_client_connect(const char *path);
/* The same for a command-line tool: on failure says "PROG: connect PATH: why" on stderr. */
int tpm_client_open(const char *prog, const char *path);
/* Sends one command and reads one whole response (its size from the header).
 * Returns 0 or a negative errno (-EBADMSG for a malformed response). */
int tpm_client_transact(int fd, const uint8_t *cmd, size_t len, uint8_t *resp, size_t max, size_t *ret_len);
/* Parses hex into out. -EINVAL if not hex or too long. */
int tpm_client_hex_decode(const char *s, uint8_t *out, size_t max, size_t *ret_len);
