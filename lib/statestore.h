/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The state root and one directory per vTPM:
 *
 *   <root>/                 0700, locked by the daemon (<root>/.lock, F_OFD_SETLK)
 *   <root>/master.sealed    the master key sealed to the host TPM (lib/sealer.h), or absent in key-file mode
 *   <root>/manifest         MANIFEST blob (rollback manifest), encrypted with the master key
 *   <root>/<uuid>/          0700, one per vTPM, locked by its owner (<uuid>/.lock, F_OFD_SETLK)
 *   <root>/<uuid>/key       DATA_KEY blob: the vTPM's data key, encrypted with the master key
 *   <root>/<uuid>/meta      META blob, encrypted with the data key
 *   <root>/<uuid>/permall   PERMANENT blob, encrypted with the data key
 *   <root>/<uuid>/volatile  VOLATILE blob, encrypted with the data key (only after a daemon stop)
 *
 * Files are 0600. Every write is: write "<name>.tmp", fsync it, rename over
 * "<name>", fsync the directory; when it returns 0 the data is durable. A
 * failed write leaves the previous file untouched (and removes the tmp file).
 * A worker's directory has fixed files (statedir_fix_files): there the tmp
 * file is never created or removed but exchanged with "<name>", and spares
 * ".spare-N" stand in for files not there yet.
 * Reads never modify anything: a bad file stays for inspection.
 *
 * Errors of statedir_read / stateroot_read (the caller logs them with the path):
 *   -ENOENT           no such file
 *   -EBADMSG          truncated or malformed (statefile_parse)
 *   -EPROTONOSUPPORT  written by an unknown format version
 *   -EMEDIUMTYPE      a blob of another kind (a file renamed over another)
 *   -EXDEV            a blob of another vTPM (its UUID differs)
 *   -EKEYREJECTED     authentication failed: wrong key or modified contents
 * and of a write or removal in a vTPM directory:
 *   -EROFS            the directory is not locked by this process
 *   -ENOLCK           its lock was lost: the shared file system fenced this holder
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"
#include "statefile.h"
#include "util.h"

typedef struct StateRoot StateRoot;
typedef struct StateDir StateDir;

/* Creates the root (mkdir -p, 0700) if needed and takes its lock: -EBUSY if
 * another process holds it. */
int stateroot_open(const char *path, StateRoot **ret);
/* The same without the root's lock: a root that several hosts share (a pool's
 * vTPM directories on a shared file system); each vTPM directory is still locked
 * by its one owner. */
int stateroot_open_shared(const char *path, StateRoot **ret);
StateRoot *stateroot_close(StateRoot *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateRoot *, stateroot_close)
int stateroot_fd(const StateRoot *r);
const char *stateroot_path(const StateRoot *r);
/* The vTPM directories (names that are canonical lowercase UUIDs), sorted; a
 * NULL-terminated malloc'd array of malloc'd strings. */
int stateroot_list(StateRoot *r, char ***ret);

/* Root-level blobs (kind MANIFEST under name "manifest", CA_KEY under "ca-key"), uuid all zero. */
int stateroot_write(StateRoot *r, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq,
                    const void *data, size_t len);
int stateroot_read(StateRoot *r, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len,
                   uint64_t *ret_seq);
/* Raw files at the root (the sealed master key: its own format), atomic and durable. */
int stateroot_write_raw(StateRoot *r, const char *name, const void *data, size_t len);
int stateroot_read_raw(StateRoot *r, const char *name, uint8_t **ret, size_t *ret_len);
/* Blobs under a name of the caller's (a plain name, as for raw files) at the root: kinds
 * HANDOVER_REQUEST and HANDOVER_GRANT (a pool's handovers/), bound to a vTPM's uuid. */
int stateroot_write_named(StateRoot *r, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE],
                          const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq, const void *data, size_t len);
int stateroot_read_named(StateRoot *r, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE],
                         const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len, uint64_t *ret_seq);
/* Removes a raw file durably: 1 if it was there, 0 if not. */
int stateroot_remove_raw(StateRoot *r, const char *name);

/* Creates <root>/<uuid> (-EEXIST if it exists) and opens it. */
int statedir_create(StateRoot *r, const char *uuid, StateDir **ret);
/* Opens and locks <root>/<uuid>: -ENOENT, -EBUSY (locked by another process). */
int statedir_open(StateRoot *r, const char *uuid, StateDir **ret);
/* Worker side: takes ownership of an inherited directory fd (O_DIRECTORY) and locks it.
 * The fd is consumed on every path: closed on failure too. It is set O_CLOEXEC. */
int statedir_from_fd(int dir_fd, const char *uuid, StateDir **ret);
/* Opens <root>/<uuid> to read it while someone else may hold its lock (a
 * worker): statedir_read, _peek, _size and _read_public work, anything that
 * changes the directory is -EROFS. */
int statedir_open_shared(StateRoot *r, const char *uuid, StateDir **ret);
/* Releases the lock (so a worker can take it); the object only reads from
 * then on, like one from statedir_open_shared. */
int statedir_unlock(StateDir *d);
/* Lends the directory to a worker's uid: the directory and every regular
 * file directly in it become uid:gid, 0770 and 0660, and so do the files d
 * creates from now on. The supervisor, a member of gid, still reads them
 * (vtpmd-ctl show while attached) and manages them while no worker runs.
 * Symlinks and other types are left alone (a state directory holds none;
 * the store never follows them). Done under the lock. */
int statedir_lend(StateDir *d, uid_t uid, gid_t gid);
/* A vTPM directory's budget: at most STATEDIR_FILES_MAX regular files,
 * each at most the worker's RLIMIT_FSIZE. */
#define STATEDIR_FILES_MAX 16u
#define STATEDIR_SPARES 4u
/* Worker side, under the lock and before it confines itself: from now on
 * writes and removals through d create no file, so a worker that may not
 * create files (seccomp refuses O_CREAT) keeps working. Empties every tmp
 * file and spare, then creates empty spares ".spare-0".. (at most
 * STATEDIR_SPARES, and only while the directory holds fewer than
 * STATEDIR_FILES_MAX regular files, whatever their names). A write renames a
 * spare to name.tmp when that is missing (-EDQUOT when none is left),
 * writes it and exchanges it with name (renameat2 RENAME_EXCHANGE); a removal
 * turns the file back into a spare. Returns 1; or 2 where the file system
 * cannot exchange names (GlusterFS' FUSE client): there a write renames its
 * tmp file over name, so each write takes a spare, which vtpmd makes again
 * (statedir_top_up_spares), and a removal renames the file to a free spare
 * name. Either way no write or removal creates a file. Call before
 * statedir_lend, which gives the spares to the worker's uid too. */
int statedir_fix_files(StateDir *d);
/* Supervisor side, beside the worker (a directory opened without the lock):
 * makes the missing spares again, owned by uid:gid, mode 0660, while the
 * directory holds fewer than STATEDIR_FILES_MAX regular files. Needed where
 * statedir_fix_files() returned 2: there each write takes a spare. Returns
 * the number made. */
int statedir_top_up_spares(StateDir *d, uid_t uid, gid_t gid);
StateDir *statedir_close(StateDir *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(StateDir *, statedir_close)
int statedir_fd(const StateDir *d);
const char *statedir_uuid(const StateDir *d);

/* Encrypts data with key under a header {kind, seq, uuid, fresh nonce} and writes it durably. */
int statedir_write(StateDir *d, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq, const void *data,
                   size_t len);
/* Reads, checks, decrypts. *ret is malloc'd (the caller wipes and frees it). */
int statedir_read(StateDir *d, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len,
                  uint64_t *ret_seq);
/* Reads only the (unauthenticated) header: for `show`-style listing. */
int statedir_peek(StateDir *d, StateKind kind, StateHeader *ret);
int statedir_remove(StateDir *d, StateKind kind); /* durable; 0 if it did not exist */
/* Crypto-shredding: overwrites the DATA_KEY file in place with random bytes,
 * fsyncs, then unlinks it (durably). 0 if there is no key file. After this the
 * vTPM's blobs cannot be decrypted even with the master key. */
int statedir_erase_key(StateDir *d);
/* Removes every file and the directory. The caller erases the key first
 * (statedir_erase_key). -ENOTEMPTY, and nothing removed, if the directory
 * holds a file the store did not create. */
int statedir_destroy(StateDir *d);

/* Size in bytes of all blobs of a vTPM (for `show`). */
int statedir_size(StateDir *d, uint64_t *ret);

/* Public (unencrypted; 0600, 0660 when lent) files a vTPM directory may hold next to its
 * blobs, written at manufacturing for `show`: the EK certificates (PEM) and
 * the EK public-key hashes. Atomic and durable like the blobs; removed by
 * statedir_destroy. -EINVAL for any other name. */
#define STATEDIR_EK_CERT_RSA2048 "ek-rsa2048.pem"
#define STATEDIR_EK_CERT_ECC_P256 "ek-ecc-p256.pem"
#define STATEDIR_EK_HASHES "ek-sha256" /* lines "rsa2048 <hex>" / "ecc-p256 <hex>" */
int statedir_write_public(StateDir *d, const char *name, const void *data, size_t len);
/* Reads one back; anything but a regular file under the name is -EBADMSG
 * (a directory lent to a worker is the worker's), never a hang. */
int statedir_read_public(StateDir *d, const char *name, uint8_t **ret, size_t *ret_len);

/* What a state-file error means, for log lines: "missing", "authentication
 * failed (wrong key or modified contents)", ... (-ESTALE: rolled back). */
const char *statestore_strerror(int r);
