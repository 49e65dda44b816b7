/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A TpmStore (tpm-instance.h) on a vTPM's state directory (statestore.h):
 * libtpms' "permall" is the PERMANENT blob, encrypted with the vTPM's data
 * key and written durably before the store callback returns, so the response
 * of the command that caused it exists only after the state is on disk.
 * Other names (TPM 1.2's "volatilestate"/"savestate", which TPM 2.0 never
 * writes on its own) stay in memory: volatile state is saved explicitly
 * with tpm_store_durable_write(VOLATILE) on a daemon stop.
 *
 * The store holds the one copy of the data key (wiped when freed) and the
 * sequence number: every write uses ++seq, and a PERMANENT blob read back is
 * refused (-ESTALE) if it is older than the floor: min_perm_seq, raised to
 * every PERMANENT seq written since.
 *
 * Not thread-safe: one thread at a time (the TPM's).
 */
#pragma once

#include <stdint.h>

#include "statestore.h"
#include "tpm-instance.h"

/* Called after every write attempt: error 0 and the new seq when the blob is
 * durable, or a negative errno and seq 0 (the previous file is intact). */
typedef void (*TpmStoreDurableNotify)(void *userdata, StateKind kind, int error, uint64_t seq);

/* dir is borrowed and must outlive the store. key is copied. */
int tpm_store_durable_new(StateDir *dir, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t min_perm_seq,
                          TpmStoreDurableNotify notify, void *userdata, TpmStore **ret);

/* Reads and decrypts a blob (statedir_read errors; -ESTALE for a PERMANENT
 * blob below the floor). Raises seq to the blob's seq. *ret is malloc'd; the
 * caller wipes and frees it. */
int tpm_store_durable_read(TpmStore *s, StateKind kind, uint8_t **ret, size_t *ret_len, uint64_t *ret_seq);

/* Writes a blob durably with ++seq and notifies. */
int tpm_store_durable_write(TpmStore *s, StateKind kind, const void *data, size_t len, uint64_t *ret_seq);

/* Removes a blob durably (0 if it did not exist). */
int tpm_store_durable_remove(TpmStore *s, StateKind kind);

/* seq = max(seq, v): the newest seq the supervisor knows of, so no write
 * ever reuses one. */
void tpm_store_durable_raise_seq(TpmStore *s, uint64_t v);
uint64_t tpm_store_durable_seq(const TpmStore *s);

/* The error of the first failed write since the last call (0 if none), and
 * clears it: a failed "permall" write has put libtpms into failure mode. */
int tpm_store_durable_take_error(TpmStore *s);
