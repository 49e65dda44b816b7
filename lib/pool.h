/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A pool of hosts that share vTPM state on a shared file system (issue 15,
 * docs/pool.md): its directory, its members and the pool key's way to each.
 *
 *   POOL/pool-id               the pool's UUID (text, public)
 *   POOL/members/<fp>.point    a member host's TPM transfer point (public, 65 bytes)
 *   POOL/members/<fp>.key      the pool key wrapped to that point (lib/pool-key.h)
 *   POOL/requests/<fp>.point   a host that asked to join, not admitted yet
 *   POOL/vtpms/                the vTPM directories, a shared state root (statestore.h)
 *   POOL/handovers/<uuid>.request   a host whose device waits for a vTPM another host holds
 *   POOL/handovers/<uuid>.grant     the holder let go of it, suspended: what the resume needs
 *
 * <fp> is the host's fingerprint, SHA-256 of its transfer point in hex
 * (pool_key_fingerprint_hex): what an administrator compares between the
 * joining host and the member that admits it. A wrapped key's context is
 * "vtpmd pool <pool-id> member <fp>", so a blob copied to another name or
 * pool opens nowhere. The pool key itself is never written anywhere but
 * wrapped to a member's TPM. Every file is written atomically and durably.
 *
 * Errors beyond the file system's: -ENOENT the pool is not initialised, or the
 * host is not a member (no key file for it); -EEXIST pool_init on an
 * initialised pool; -EKEYREJECTED the key file is not for this host's TPM;
 * -EBADMSG a malformed file. Nothing here logs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool-key.h"
#include "sealer.h"
#include "statefile.h"
#include "util.h"

#define POOL_ID_SIZE 37u /* a canonical UUID and its NUL */

typedef struct Pool Pool;

/* Opens (creating its directories, 0700, if needed) the pool at path. */
int pool_open(const char *path, Pool **ret);
Pool *pool_close(Pool *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Pool *, pool_close)
const char *pool_path(const Pool *p);
/* POOL/vtpms: open it with stateroot_open_shared(). */
const char *pool_vtpm_root(const Pool *p);

/* The pool's id; -ENOENT before pool_init. */
int pool_id(Pool *p, char ret[POOL_ID_SIZE]);

/* The first host: makes the id and a random pool key, and the host a member. */
int pool_init(Pool *p, const uint8_t own_point[POOL_KEY_POINT_SIZE], uint8_t ret_key[POOL_KEY_SIZE]);
/* This host's pool key, unwrapped by its TPM (t's transfer key is own_point). */
int pool_unlock(Pool *p, HostTpm *t, const uint8_t own_point[POOL_KEY_POINT_SIZE], uint8_t ret_key[POOL_KEY_SIZE]);

/* A new host asks to join: its point goes to requests/ (a member admits it). */
int pool_request_join(Pool *p, const uint8_t own_point[POOL_KEY_POINT_SIZE]);
/* A member admits the host that asked with fingerprint fp: the key wrapped to its point.
 * -ENOENT: no such request. */
int pool_admit(Pool *p, const uint8_t key[POOL_KEY_SIZE], const char *fp);
/* A member (or request) leaves: its files go. -ENOENT: no such member or request. */
int pool_remove(Pool *p, const char *fp);

typedef struct PoolHost {
        char fp[POOL_KEY_FINGERPRINT_HEX_SIZE];
        bool member; /* false: a join request */
} PoolHost;

/* Members and requests, sorted by fingerprint; *ret malloc'd. */
int pool_list(Pool *p, PoolHost **ret, size_t *ret_n);

/* Live migration between members (docs/pool.md): StateHandover blobs of kind
 * STATE_KIND_HANDOVER_REQUEST or _GRANT under the pool key, bound to the vTPM's
 * uuid. -EINVAL for another kind or a uuid that is not canonical. */
int pool_handover_write(Pool *p, const char *uuid, StateKind kind, const uint8_t key[POOL_KEY_SIZE],
                        const StateHandover *h);
int pool_handover_read(Pool *p, const char *uuid, StateKind kind, const uint8_t key[POOL_KEY_SIZE],
                       StateHandover *ret);
/* 1 if it was there, 0 if not. */
int pool_handover_remove(Pool *p, const char *uuid, StateKind kind);
/* The uuids with a blob of that kind: a NULL-terminated malloc'd array of malloc'd strings. */
int pool_handover_list(Pool *p, StateKind kind, char ***ret);
