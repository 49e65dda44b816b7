/* SPDX-License-Identifier: BSD-3-Clause */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h> /* renameat2 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "parse.h"
#include "statestore.h"
#include "util.h"

#define LOCK_NAME ".lock"
#define TMP_SUFFIX ".tmp"
/* Empty files a directory with fixed files (statedir_fix_files) draws on
 * for a tmp file it lacks: ".spare-0" .. ".spare-<STATEDIR_SPARES - 1>". */
#define SPARE_PREFIX ".spare-"
/* Two files created and removed at once when there are not two spares to
 * find out whether the file system can exchange names. */
#define PROBE_A ".spare-probe-a"
#define PROBE_B ".spare-probe-b"
/* Largest file we read: a blob of the largest payload. Bounded so a planted
 * huge file cannot make us allocate without limit. */
#define READ_MAX ((size_t) STATEFILE_OVERHEAD + STATEFILE_MAX_PAYLOAD)

struct StateRoot {
        int fd;
        int lock_fd;
        mode_t file_mode; /* of the files we create, from take_lock() */
        char *path;
};

struct StateDir {
        int fd;
        int lock_fd;
        bool lock_synced; /* the lock's file system may acknowledge a write it has not done */
        mode_t file_mode; /* of the files we create, from take_lock() */
        bool fixed;       /* statedir_fix_files(): writes create no file */
        bool consume;     /* ... and, without RENAME_EXCHANGE, each write takes a spare */
        char uuid[37];
        uint8_t uuid_bin[STATEFILE_UUID_SIZE];
};

static const StateKind dir_kinds[] = {
        STATE_KIND_DATA_KEY,
        STATE_KIND_META,
        STATE_KIND_PERMANENT,
        STATE_KIND_VOLATILE,
};

static const uint8_t zero_uuid[STATEFILE_UUID_SIZE];

/* Public, unencrypted files of a vTPM directory (statedir_write_public). */
static const char *const public_names[] = {
        STATEDIR_EK_CERT_RSA2048,
        STATEDIR_EK_CERT_ECC_P256,
        STATEDIR_EK_HASHES,
};

static bool public_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(public_names); i++)
                if (streq(name, public_names[i]))
                        return true;
        return false;
}


static bool kind_in_dir(StateKind k) {
        switch (k) {
        case STATE_KIND_PERMANENT:
        case STATE_KIND_VOLATILE:
        case STATE_KIND_DATA_KEY:
        case STATE_KIND_META:
                return true;
        case STATE_KIND_MANIFEST:
        case STATE_KIND_CA_KEY:
        case STATE_KIND_HANDOVER_REQUEST:
        case STATE_KIND_HANDOVER_GRANT:
                return false;
        }
        return false;
}

/* ---- files ---- */

/* 0600, or 0660 in a vTPM directory lent to a worker's uid (0770, see
 * statedir_lend): the supervisor reads and replaces those files through
 * the group. Never world-accessible. */
static mode_t file_mode(int dir_fd) {
        struct stat st;
        if (fstat(dir_fd, &st) == 0 && (st.st_mode & 0070) == 0070)
                return 0660;
        return 0600;
}

/* Also decides, once, the mode of the files created in the directory. */
/* File systems whose writes reach the disk of this host: a write through the
 * locked fd answers from this host's own lock state. On anything else (FUSE,
 * NFS, CephFS, GFS2, OCFS2, ...) a client may acknowledge a write it has not
 * sent yet: GlusterFS' write-behind did so after a brick restart that had
 * dropped the lock (docs/pool-storage.md), so the check must wait for the
 * server's answer. */
static bool local_fs(int fd) {
        static const long local[] = {
                0xEF53,     /* ext2/3/4 */
                0x58465342, /* xfs */
                0x9123683E, /* btrfs */
                0x01021994, /* tmpfs */
                0xF2F52010, /* f2fs */
                0x2FC12FC1, /* zfs */
                0x794C7630, /* overlayfs */
        };
        struct statfs sf;

        if (fstatfs(fd, &sf) < 0)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(local); i++)
                if ((long) sf.f_type == local[i])
                        return true;
        return false;
}

static int take_lock(int dir_fd, int *ret_fd, mode_t *ret_mode) {
        _cleanup_close_ int fd = -1;
        struct flock fl = {
                .l_type = F_WRLCK,
                .l_whence = SEEK_SET,
                .l_start = 0,
                .l_len = 0,
        };

        mode_t mode = file_mode(dir_fd);
        struct stat st;
        fd = openat(dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        /* Only if it differs: the file may be another uid's (a worker's). */
        if (fstat(fd, &st) < 0 || ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0))
                return negative_errno();
        /* OFD locks belong to the open file description, not the process: two
         * opens in one process conflict, and a fork does not silently share
         * ownership with a process that opened the file itself. */
        if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
                if (errno == EAGAIN || errno == EACCES)
                        return -EBUSY;
                return negative_errno();
        }
        *ret_fd = TAKE_FD(fd);
        *ret_mode = mode;
        return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
        while (n > 0) {
                ssize_t k = write(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* The new contents of a tmp file, durable, and the file closed (*fd is -1
 * after, whatever the result): close() can report a deferred write error
 * (NFS), and it counts. */
static int write_sync_close(int *fd, const void *data, size_t len) {
        int r = write_all(*fd, data, len);

        if (r >= 0 && fsync(*fd) < 0)
                r = negative_errno();
        if (close(TAKE_FD(*fd)) < 0 && r >= 0)
                r = negative_errno();
        return r;
}

static int tmp_name(const char *name, char **ret) {
        char *t;

        if (asprintf(&t, "%s" TMP_SUFFIX, name) < 0)
                return -ENOMEM;
        *ret = t;
        return 0;
}

static int unlink_if_exists(int dir_fd, const char *name) {
        if (unlinkat(dir_fd, name, 0) < 0) {
                if (errno == ENOENT)
                        return 0;
                return negative_errno();
        }
        return 1;
}

/* name.tmp, write, fsync, rename over name, fsync the directory. Before the
 * rename every failure removes the tmp file and leaves name untouched. */
static int write_file_atomic(int dir_fd, mode_t mode, const char *name, const uint8_t *data, size_t len) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = tmp_name(name, &tmp);
        if (r < 0)
                return r;
        /* A tmp file left by a crash (or planted as a symlink) must not be written through. */
        r = unlink_if_exists(dir_fd, tmp);
        if (r < 0)
                return r;

        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        /* The mode must not depend on the caller's umask. */
        if (fchmod(fd, mode) < 0) {
                r = negative_errno();
                goto fail;
        }
        r = write_sync_close(&fd, data, len);
        if (r < 0)
                goto fail;
        if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
                r = negative_errno();
                goto fail;
        }
        /* Without this the rename itself may not survive a power cut. */
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 0;

fail:
        (void) unlinkat(dir_fd, tmp, 0);
        return r;
}

static void spare_name(unsigned i, char ret[static sizeof(SPARE_PREFIX) + 4]) {
        snprintf(ret, sizeof(SPARE_PREFIX) + 4, SPARE_PREFIX "%u", i);
}

/* Truncates name to nothing if it is a regular file: its inode stays, its
 * blocks go. Best effort: the file is only ever a tmp or a spare. */
static void truncate_file(int dir_fd, const char *name) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 && ftruncate(fd, 0) < 0)
                return; /* best effort, as said: what is left is never read */
}

/* A regular file under tmp, made of a spare if there is none: -EDQUOT when
 * no spare is left. Whatever else is under the name (the worker cannot make
 * one, the supervisor never does) is removed first. */
static int tmp_from_spare(int dir_fd, const char *tmp, bool consume) {
        struct stat st;
        if (fstatat(dir_fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISREG(st.st_mode))
                        return 0;
                if (unlinkat(dir_fd, tmp, 0) < 0)
                        return negative_errno();
        } else if (errno != ENOENT)
                return negative_errno();
        for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                char spare[sizeof(SPARE_PREFIX) + 4];
                spare_name(i, spare);
                /* Without renameat2's flags (a FUSE file system), a plain rename: tmp is
                 * absent (checked above) and only this process makes tmp names. */
                if ((consume ? renameat(dir_fd, spare, dir_fd, tmp) : renameat2(dir_fd, spare, dir_fd, tmp,
                                                                                  RENAME_NOREPLACE)) == 0)
                        return 0;
                if (errno != ENOENT)
                        return negative_errno();
        }
        return -EDQUOT;
}

/* write_file_atomic for a directory with fixed files: no file is created.
 * name.tmp (a spare renamed into place if missing) is truncated, written and
 * fsynced, then exchanged with name (renamed to it if name does not exist
 * yet), and the directory fsynced: as durable and atomic as a rename. The
 * old contents, now under name.tmp, are truncated away; the inode stays for
 * the next write. A failure leaves name untouched and name.tmp in place. */
static int write_file_fixed(int dir_fd, mode_t mode, bool consume, const char *name, const uint8_t *data,
                            size_t len) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        bool exchanged = true;
        int r;

        r = tmp_name(name, &tmp);
        if (r < 0)
                return r;
        r = tmp_from_spare(dir_fd, tmp, consume);
        if (r < 0)
                return r;
        fd = openat(dir_fd, tmp, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((st.st_mode & 07777) != mode && fchmod(fd, mode) < 0)
                return negative_errno();
        r = write_sync_close(&fd, data, len);
        if (r < 0)
                goto fail;
        if (consume) {
                /* No exchange here: tmp replaces name, whose inode goes; vtpmd makes a new spare. */
                if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                exchanged = false;
        } else if (renameat2(dir_fd, tmp, dir_fd, name, RENAME_EXCHANGE) < 0) {
                if (errno != ENOENT) {
                        r = negative_errno();
                        goto fail;
                }
                /* name does not exist yet: tmp becomes it; the next write takes another spare. */
                if (renameat2(dir_fd, tmp, dir_fd, name, RENAME_NOREPLACE) < 0) {
                        r = negative_errno();
                        goto fail;
                }
                exchanged = false;
        }
        if (fsync(dir_fd) < 0)
                return negative_errno();
        if (exchanged)
                truncate_file(dir_fd, tmp);
        return 0;

fail:
        /* Not unlinked: the inode is one of the directory's fixed files. */
        truncate_file(dir_fd, tmp);
        return r;
}

/* Removes name from a directory with fixed files: it becomes a free spare
 * (truncated), or is unlinked when every spare name is taken. 1 if it was there. */
static int remove_fixed(int dir_fd, bool consume, const char *name) {
        for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                char spare[sizeof(SPARE_PREFIX) + 4];
                spare_name(i, spare);
                if (consume) {
                        /* No RENAME_NOREPLACE: a free spare name, then a plain rename. */
                        if (faccessat(dir_fd, spare, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                                continue;
                        if (errno != ENOENT)
                                return negative_errno();
                        if (renameat(dir_fd, name, dir_fd, spare) == 0) {
                                truncate_file(dir_fd, spare);
                                return 1;
                        }
                        if (errno == ENOENT)
                                return 0;
                        return negative_errno();
                }
                if (renameat2(dir_fd, name, dir_fd, spare, RENAME_NOREPLACE) == 0) {
                        truncate_file(dir_fd, spare);
                        return 1;
                }
                if (errno == ENOENT)
                        return 0;
                if (errno != EEXIST)
                        return negative_errno();
        }
        return unlink_if_exists(dir_fd, name);
}

/* Reads a whole regular file of at most max bytes into a malloc'd buffer. */
static int read_file(int dir_fd, const char *name, size_t max, int too_big, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        size_t size, got = 0;

        /* O_NONBLOCK: a FIFO planted under a state file's name must not hang us in open(). */
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                /* A symlink where a state file should be: not ours, refuse it as malformed. */
                if (errno == ELOOP)
                        return -EBADMSG;
                return negative_errno();
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if (st.st_size < 0 || (uint64_t) st.st_size > max)
                return too_big;
        size = (size_t) st.st_size;

        buf = malloc(size ? size : 1);
        if (!buf)
                return -ENOMEM;
        while (got < size) {
                ssize_t k = read(fd, buf + got, size - got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break; /* shrank under us: the parser sees a short file */
                got += (size_t) k;
        }
        *ret = TAKE_PTR(buf);
        *ret_len = got;
        return 0;
}

static int fsync_unlink(int dir_fd, const char *name) {
        int r = unlink_if_exists(dir_fd, name);
        if (r <= 0)
                return r;
        if (fsync(dir_fd) < 0)
                return negative_errno();
        return 1;
}

/* ---- blobs ---- */

static int blob_write(int dir_fd, mode_t mode, bool fixed, bool consume, const char *name, StateKind kind,
                      const uint8_t uuid[STATEFILE_UUID_SIZE], const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq,
                      const void *data, size_t len) {
        _cleanup_free_ uint8_t *blob = NULL;
        StateHeader h;
        int r;

        if (!key || (!data && len > 0))
                return -EINVAL;
        if (len > STATEFILE_MAX_PAYLOAD)
                return -EMSGSIZE;

        h = (StateHeader){
                .version = STATEFILE_VERSION,
                .kind = kind,
                .flags = 0,
                .seq = seq,
                .length = (uint32_t) len,
        };
        memcpy(h.uuid, uuid, STATEFILE_UUID_SIZE);
        /* GCM with a repeated nonce under one key leaks the XOR of plaintexts
         * and the authentication key: a fresh one every time, or no write. */
        r = crypto_random(h.nonce, sizeof(h.nonce));
        if (r < 0)
                return r;

        blob = malloc(STATEFILE_OVERHEAD + len);
        if (!blob)
                return -ENOMEM;
        statefile_header_encode(&h, blob);
        r = crypto_aead_encrypt(key, h.nonce, blob, STATEFILE_HEADER_SIZE, data, len, blob + STATEFILE_HEADER_SIZE,
                                blob + STATEFILE_HEADER_SIZE + len);
        if (r < 0)
                return r;
        if (fixed)
                return write_file_fixed(dir_fd, mode, consume, name, blob, STATEFILE_OVERHEAD + len);
        return write_file_atomic(dir_fd, mode, name, blob, STATEFILE_OVERHEAD + len);
}

static int blob_load(int dir_fd, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE], uint8_t **ret_blob,
                     size_t *ret_len, StateHeader *ret_h) {
        _cleanup_free_ uint8_t *blob = NULL;
        StateHeader h;
        size_t len;
        int r;

        r = read_file(dir_fd, name, READ_MAX, -EBADMSG, &blob, &len);
        if (r < 0)
                return r;
        r = statefile_parse(blob, len, &h);
        if (r < 0)
                return r;
        if (h.kind != kind)
                return -EMEDIUMTYPE;
        if (memcmp(h.uuid, uuid, STATEFILE_UUID_SIZE) != 0)
                return -EXDEV;
        if (ret_blob)
                *ret_blob = TAKE_PTR(blob);
        if (ret_len)
                *ret_len = len;
        *ret_h = h;
        return 0;
}

static int blob_read(int dir_fd, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE],
                     const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len, uint64_t *ret_seq) {
        _cleanup_free_ uint8_t *blob = NULL;
        _cleanup_free_ uint8_t *pt = NULL; /* holds plaintext only once it is returned */
        StateHeader h;
        size_t len;
        int r;

        if (!key || !ret || !ret_len)
                return -EINVAL;
        r = blob_load(dir_fd, name, kind, uuid, &blob, &len, &h);
        if (r < 0)
                return r;

        pt = malloc(h.length ? h.length : 1);
        if (!pt)
                return -ENOMEM;
        /* crypto_aead_decrypt wipes pt itself when authentication fails. */
        r = crypto_aead_decrypt(key, h.nonce, blob, STATEFILE_HEADER_SIZE, blob + STATEFILE_HEADER_SIZE, h.length,
                                blob + STATEFILE_HEADER_SIZE + h.length, pt);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(pt);
        *ret_len = h.length;
        if (ret_seq)
                *ret_seq = h.seq;
        return 0;
}

/* ---- root ---- */

static int mkdir_p(const char *path) {
        _cleanup_free_ char *p = strdup(path);

        size_t n;

        if (!p)
                return -ENOMEM;
        /* "a/b/" must create "a/b" as the root (0700), not as a parent. */
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return negative_errno();
                *s = '/';
        }
        if (mkdir(p, 0700) < 0) {
                if (errno == EEXIST)
                        return 0;
                return negative_errno();
        }
        return 1;
}

/* Makes a new directory entry durable: without it the first vTPM created on
 * a fresh host could vanish with its root in a power cut. */
static int fsync_parent(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        _cleanup_close_ int fd = -1;
        char *slash;
        size_t n;

        if (!p)
                return -ENOMEM;
        n = strlen(p);
        while (n > 1 && p[n - 1] == '/')
                p[--n] = '\0';
        slash = strrchr(p, '/');
        if (!slash)
                fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        else {
                slash[slash == p ? 1 : 0] = '\0';
                fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

static int root_open(const char *path, bool lock, StateRoot **ret) {
        _cleanup_(stateroot_closep) StateRoot *r = NULL;
        int k;

        if (!path || !*path || !ret)
                return -EINVAL;

        /* Parents are ordinary system directories (0755); only the root itself
         * holds secrets. An existing root keeps the mode its admin gave it. */
        k = mkdir_p(path);
        if (k < 0)
                return k;
        if (k > 0) {
                if (chmod(path, 0700) < 0)
                        return negative_errno();
                k = fsync_parent(path);
                if (k < 0)
                        return k;
        }

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->fd = r->lock_fd = -1;
        r->path = strdup(path);
        if (!r->path)
                return -ENOMEM;
        r->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (r->fd < 0)
                return negative_errno();
        if (lock) {
                k = take_lock(r->fd, &r->lock_fd, &r->file_mode);
                if (k < 0)
                        return k;
        } else
                r->file_mode = file_mode(r->fd);
        *ret = TAKE_PTR(r);
        return 0;
}

int stateroot_open(const char *path, StateRoot **ret) {
        return root_open(path, true, ret);
}

int stateroot_open_shared(const char *path, StateRoot **ret) {
        return root_open(path, false, ret);
}

StateRoot *stateroot_close(StateRoot *r) {
        if (!r)
                return NULL;
        safe_close(r->lock_fd);
        safe_close(r->fd);
        free(r->path);
        free(r);
        return NULL;
}

int stateroot_fd(const StateRoot *r) {
        return r->fd;
}

const char *stateroot_path(const StateRoot *r) {
        return r->path;
}

static bool is_canonical_uuid(const char *name) {
        char canon[37];
        return parse_uuid(name, canon) >= 0 && streq(canon, name);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static void strv_freep(char ***v) {
        strv_free(*v);
}

int stateroot_list(StateRoot *r, char ***ret) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_(strv_freep) char **v = NULL;
        size_t n = 0;
        struct dirent *de;
        int fd;

        /* A fresh open: fdopendir would take over r->fd and share its offset. */
        fd = openat(r->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                safe_close(fd);
                return negative_errno();
        }
        v = calloc(1, sizeof(char *));
        if (!v)
                return -ENOMEM;

        for (;;) {
                struct stat st;
                char **nv;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return negative_errno();
                        break;
                }
                if (!is_canonical_uuid(de->d_name))
                        continue;
                /* Only real directories: a symlink named like a vTPM is not one. */
                if (fstatat(r->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (!S_ISDIR(st.st_mode))
                        continue;
                nv = realloc(v, (n + 2) * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                v = nv;
                v[n] = strdup(de->d_name);
                if (!v[n])
                        return -ENOMEM;
                v[++n] = NULL;
        }
        qsort(v, n, sizeof(char *), cmp_str);
        *ret = TAKE_PTR(v);
        return 0;
}

int stateroot_write(StateRoot *r, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq,
                    const void *data, size_t len) {
        if (kind != STATE_KIND_MANIFEST && kind != STATE_KIND_CA_KEY)
                return -EINVAL;
        return blob_write(r->fd, r->file_mode, false, false, state_kind_filename(kind), kind, zero_uuid, key, seq,
                          data, len);
}

int stateroot_read(StateRoot *r, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len,
                   uint64_t *ret_seq) {
        if (kind != STATE_KIND_MANIFEST && kind != STATE_KIND_CA_KEY)
                return -EINVAL;
        return blob_read(r->fd, state_kind_filename(kind), kind, zero_uuid, key, ret, ret_len, ret_seq);
}

/* A plain file name of ours: no path, no hidden or tmp names (those are the store's own). */
static bool raw_name_ok(const char *name) {
        size_t n;

        if (!name || !*name || name[0] == '.' || strchr(name, '/'))
                return false;
        n = strlen(name);
        if (n + strlen(TMP_SUFFIX) > NAME_MAX)
                return false;
        if (n >= strlen(TMP_SUFFIX) && streq(name + n - strlen(TMP_SUFFIX), TMP_SUFFIX))
                return false;
        if (is_canonical_uuid(name))
                return false;
        return true;
}

int stateroot_remove_raw(StateRoot *r, const char *name) {
        if (!raw_name_ok(name))
                return -EINVAL;
        return fsync_unlink(r->fd, name);
}

int stateroot_write_raw(StateRoot *r, const char *name, const void *data, size_t len) {
        if (!raw_name_ok(name) || (!data && len > 0))
                return -EINVAL;
        if (len > READ_MAX)
                return -EMSGSIZE;
        return write_file_atomic(r->fd, r->file_mode, name, data, len);
}

int stateroot_read_raw(StateRoot *r, const char *name, uint8_t **ret, size_t *ret_len) {
        if (!raw_name_ok(name) || !ret || !ret_len)
                return -EINVAL;
        return read_file(r->fd, name, READ_MAX, -EFBIG, ret, ret_len);
}

static bool named_kind_ok(StateKind kind) {
        return kind == STATE_KIND_HANDOVER_REQUEST || kind == STATE_KIND_HANDOVER_GRANT;
}

int stateroot_write_named(StateRoot *r, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE],
                          const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq, const void *data, size_t len) {
        if (!raw_name_ok(name) || !named_kind_ok(kind))
                return -EINVAL;
        return blob_write(r->fd, r->file_mode, false, false, name, kind, uuid, key, seq, data, len);
}

int stateroot_read_named(StateRoot *r, const char *name, StateKind kind, const uint8_t uuid[STATEFILE_UUID_SIZE],
                         const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len, uint64_t *ret_seq) {
        if (!raw_name_ok(name) || !named_kind_ok(kind))
                return -EINVAL;
        return blob_read(r->fd, name, kind, uuid, key, ret, ret_len, ret_seq);
}

/* ---- per-vTPM directories ---- */

static int statedir_new(int fd, const char *canon, StateDir **ret) {
        StateDir *d;
        int r;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->fd = fd;
        d->lock_fd = -1;
        d->lock_synced = !local_fs(fd);
        memcpy(d->uuid, canon, sizeof(d->uuid));
        r = statefile_uuid_from_string(canon, d->uuid_bin);
        if (r < 0) {
                free(d);
                return r;
        }
        *ret = d;
        return 0;
}

int statedir_create(StateRoot *r, const char *uuid, StateDir **ret) {
        _cleanup_(statedir_closep) StateDir *d = NULL;
        _cleanup_close_ int fd = -1;
        char canon[37];
        int k;

        k = parse_uuid(uuid, canon);
        if (k < 0)
                return k;
        if (mkdirat(r->fd, canon, 0700) < 0)
                return negative_errno();
        /* umask must not decide who can list a vTPM's files. */
        if (fchmodat(r->fd, canon, 0700, 0) < 0) {
                k = negative_errno();
                goto fail;
        }
        fd = openat(r->fd, canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                k = negative_errno();
                goto fail;
        }
        k = statedir_new(fd, canon, &d);
        if (k < 0)
                goto fail;
        TAKE_FD(fd);
        k = take_lock(d->fd, &d->lock_fd, &d->file_mode);
        if (k < 0)
                goto fail;
        /* The new directory entry must survive a power cut like any write. */
        if (fsync(r->fd) < 0) {
                k = negative_errno();
                goto fail;
        }
        *ret = TAKE_PTR(d);
        return 0;

fail:
        /* Someone else got hold of it between mkdir and lock: theirs now. */
        if (k != -EBUSY) {
                if (d)
                        (void) unlinkat(d->fd, LOCK_NAME, 0);
                (void) unlinkat(r->fd, canon, AT_REMOVEDIR);
        }
        return k;
}

int statedir_open(StateRoot *r, const char *uuid, StateDir **ret) {
        _cleanup_(statedir_closep) StateDir *d = NULL;
        _cleanup_close_ int fd = -1;
        char canon[37];
        int k;

        k = parse_uuid(uuid, canon);
        if (k < 0)
                return k;
        fd = openat(r->fd, canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        k = statedir_new(fd, canon, &d);
        if (k < 0)
                return k;
        TAKE_FD(fd);
        k = take_lock(d->fd, &d->lock_fd, &d->file_mode);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(d);
        return 0;
}

int statedir_from_fd(int dir_fd, const char *uuid, StateDir **ret) {
        _cleanup_close_ int fd = dir_fd; /* consumed on every path */
        _cleanup_(statedir_closep) StateDir *d = NULL;
        char canon[37];
        struct stat st;
        int k, flags;

        if (fd < 0)
                return -EBADF;
        k = parse_uuid(uuid, canon);
        if (k < 0)
                return k;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        /* Inherited across exec on purpose; from here on it must not leak further. */
        flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return negative_errno();
        k = statedir_new(fd, canon, &d);
        if (k < 0)
                return k;
        TAKE_FD(fd);
        k = take_lock(d->fd, &d->lock_fd, &d->file_mode);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(d);
        return 0;
}

int statedir_open_shared(StateRoot *r, const char *uuid, StateDir **ret) {
        _cleanup_close_ int fd = -1;
        char canon[37];
        int k;

        k = parse_uuid(uuid, canon);
        if (k < 0)
                return k;
        fd = openat(r->fd, canon, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        k = statedir_new(fd, canon, ret);
        if (k < 0)
                return k;
        TAKE_FD(fd);
        return 0;
}

int statedir_unlock(StateDir *d) {
        d->lock_fd = safe_close(d->lock_fd);
        return 0;
}

/* Only the holder of the lock changes a directory. */
static bool writable(const StateDir *d) {
        return d->lock_fd >= 0;
}

/* Before a state file changes: the lock is still ours. On a shared file system that
 * fences a holder that lost its lock (GlusterFS with client.strict-locks, see
 * docs/pool-storage.md) the locked fd fails every operation after the loss, so one
 * write through it is the check; the lock file is always empty but for this byte. */
static int owner_check(const StateDir *d) {
        if (!writable(d))
                return -EROFS;
        if (pwrite(d->lock_fd, "L", 1, 0) != 1 || (d->lock_synced && fdatasync(d->lock_fd) < 0))
                return errno == EBADFD ? -ENOLCK : negative_errno();
        return 0;
}

StateDir *statedir_close(StateDir *d) {
        if (!d)
                return NULL;
        safe_close(d->lock_fd);
        safe_close(d->fd);
        free(d);
        return NULL;
}

int statedir_fd(const StateDir *d) {
        return d->fd;
}

const char *statedir_uuid(const StateDir *d) {
        return d->uuid;
}

int statedir_write(StateDir *d, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint64_t seq, const void *data,
                   size_t len) {
        int r;

        if (!kind_in_dir(kind))
                return -EINVAL;
        r = owner_check(d);
        if (r < 0)
                return r;
        return blob_write(d->fd, d->file_mode, d->fixed, d->consume, state_kind_filename(kind), kind, d->uuid_bin, key, seq, data,
                          len);
}

int statedir_read(StateDir *d, StateKind kind, const uint8_t key[CRYPTO_KEY_SIZE], uint8_t **ret, size_t *ret_len,
                  uint64_t *ret_seq) {
        if (!kind_in_dir(kind))
                return -EINVAL;
        return blob_read(d->fd, state_kind_filename(kind), kind, d->uuid_bin, key, ret, ret_len, ret_seq);
}

int statedir_peek(StateDir *d, StateKind kind, StateHeader *ret) {
        if (!kind_in_dir(kind) || !ret)
                return -EINVAL;
        return blob_load(d->fd, state_kind_filename(kind), kind, d->uuid_bin, NULL, NULL, ret);
}

int statedir_remove(StateDir *d, StateKind kind) {
        _cleanup_free_ char *tmp = NULL;
        int r;

        if (!kind_in_dir(kind))
                return -EINVAL;
        r = owner_check(d);
        if (r < 0)
                return r;
        if (d->fixed) {
                /* The tmp file stays for the next write; the file becomes a spare. */
                r = remove_fixed(d->fd, d->consume, state_kind_filename(kind));
                if (r > 0 && fsync(d->fd) < 0)
                        return negative_errno();
                return r < 0 ? r : 0;
        }
        r = tmp_name(state_kind_filename(kind), &tmp);
        if (r < 0)
                return r;
        r = unlink_if_exists(d->fd, tmp);
        if (r < 0)
                return r;
        r = fsync_unlink(d->fd, state_kind_filename(kind));
        return r < 0 ? r : 0;
}

int statedir_erase_key(StateDir *d) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *junk = NULL;
        struct stat st;
        int r;

        if (!writable(d))
                return -EROFS;
        fd = openat(d->fd, state_kind_filename(STATE_KIND_DATA_KEY),
                    O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return negative_errno();
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if (st.st_size < 0 || (uint64_t) st.st_size > READ_MAX)
                return -EFBIG;
        if (st.st_size > 0) {
                junk = malloc((size_t) st.st_size);
                if (!junk)
                        return -ENOMEM;
                r = crypto_random(junk, (size_t) st.st_size);
                if (r < 0)
                        return r;
                r = write_all(fd, junk, (size_t) st.st_size);
                if (r < 0)
                        return r;
                if (fsync(fd) < 0)
                        return negative_errno();
        }
        r = fsync_unlink(d->fd, state_kind_filename(STATE_KIND_DATA_KEY));
        return r < 0 ? r : 0;
}

static bool spare_entry(const char *name) {
        if (streq(name, PROBE_A) || streq(name, PROBE_B))
                return true;
        for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                char spare[sizeof(SPARE_PREFIX) + 4];
                spare_name(i, spare);
                if (streq(name, spare))
                        return true;
        }
        return false;
}

/* Names the store may create in a vTPM directory. */
static bool known_dir_entry(const char *name) {
        if (streq(name, ".") || streq(name, "..") || streq(name, LOCK_NAME) || spare_entry(name))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++) {
                const char *f = state_kind_filename(dir_kinds[i]);
                size_t n = strlen(f);
                if (streq(name, f))
                        return true;
                if (strncmp(name, f, n) == 0 && streq(name + n, TMP_SUFFIX))
                        return true;
        }
        for (size_t i = 0; i < ELEMENTSOF(public_names); i++) {
                size_t n = strlen(public_names[i]);
                if (strncmp(name, public_names[i], n) == 0 && (name[n] == 0 || streq(name + n, TMP_SUFFIX)))
                        return true;
        }
        return false;
}

int statedir_destroy(StateDir *d) {
        _cleanup_close_ int parent = -1;
        _cleanup_(closedirp) DIR *dir = NULL;
        struct dirent *de;
        int fd, r;

        if (!writable(d))
                return -EROFS;
        /* Check first, remove after: a stranger's file means this is not a
         * directory we own outright, and nothing is touched. */
        fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        dir = fdopendir(fd);
        if (!dir) {
                safe_close(fd);
                return negative_errno();
        }
        for (;;) {
                errno = 0;
                de = readdir(dir);
                if (!de) {
                        if (errno != 0)
                                return negative_errno();
                        break;
                }
                if (!known_dir_entry(de->d_name))
                        return -ENOTEMPTY;
        }

        parent = openat(d->fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0)
                return negative_errno();

        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++) {
                _cleanup_free_ char *tmp = NULL;
                r = tmp_name(state_kind_filename(dir_kinds[i]), &tmp);
                if (r < 0)
                        return r;
                r = unlink_if_exists(d->fd, tmp);
                if (r < 0)
                        return r;
                r = unlink_if_exists(d->fd, state_kind_filename(dir_kinds[i]));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(public_names); i++) {
                _cleanup_free_ char *tmp = NULL;
                r = tmp_name(public_names[i], &tmp);
                if (r < 0)
                        return r;
                r = unlink_if_exists(d->fd, tmp);
                if (r < 0)
                        return r;
                r = unlink_if_exists(d->fd, public_names[i]);
                if (r < 0)
                        return r;
        }
        for (unsigned i = 0; i < STATEDIR_SPARES + 2; i++) {
                char spare[sizeof(SPARE_PREFIX) + 4];
                spare_name(i, spare);
                r = unlink_if_exists(d->fd, i < STATEDIR_SPARES ? spare : i == STATEDIR_SPARES ? PROBE_A : PROBE_B);
                if (r < 0)
                        return r;
        }
        r = unlink_if_exists(d->fd, LOCK_NAME);
        if (r < 0)
                return r;
        if (unlinkat(parent, d->uuid, AT_REMOVEDIR) < 0)
                return negative_errno();
        if (fsync(parent) < 0)
                return negative_errno();
        return 0;
}

int statedir_size(StateDir *d, uint64_t *ret) {
        uint64_t total = 0;

        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++) {
                struct stat st;
                if (fstatat(d->fd, state_kind_filename(dir_kinds[i]), &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (S_ISREG(st.st_mode) && st.st_size > 0)
                        total += (uint64_t) st.st_size;
        }
        *ret = total;
        return 0;
}

const char *statestore_strerror(int r) {
        switch (r) {
        case -ENOENT:
                return "missing";
        case -EBADMSG:
                return "truncated or malformed";
        case -EPROTONOSUPPORT:
                return "written by an unknown format version";
        case -EMEDIUMTYPE:
                return "holds a blob of another kind";
        case -EXDEV:
                return "belongs to another vTPM (UUID differs)";
        case -EKEYREJECTED:
                return "authentication failed (wrong key or modified contents)";
        case -ESTALE:
                return "older than the newest state recorded (rolled back)";
        case -ENOLCK:
                return "the vTPM's lock on the shared storage was lost (another host may own it now)";
        default:
                return strerror(-r);
        }
}

int statedir_write_public(StateDir *d, const char *name, const void *data, size_t len) {
        if (!public_name(name) || (!data && len > 0))
                return -EINVAL;
        if (!writable(d))
                return -EROFS;
        if (len > READ_MAX)
                return -EMSGSIZE;
        return write_file_atomic(d->fd, d->file_mode, name, data, len);
}

int statedir_read_public(StateDir *d, const char *name, uint8_t **ret, size_t *ret_len) {
        if (!public_name(name) || !ret || !ret_len)
                return -EINVAL;
        return read_file(d->fd, name, READ_MAX, -EFBIG, ret, ret_len);
}

/* Calls f with every name in dir_fd but "." and ".."; stops at f's first error. */
static int each_entry(int dir_fd, int (*f)(int dir_fd, const char *name, void *userdata), void *userdata) {
        _cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;
        int r = 0;

        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d)
                return negative_errno();
        fd = -1; /* owned by d now */
        while (r >= 0) {
                errno = 0; /* readdir() leaves it alone at the end */
                struct dirent *de = readdir(d);
                if (!de) {
                        r = -errno;
                        break;
                }
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        r = f(dir_fd, de->d_name, userdata);
        }
        closedir(d);
        return r;
}

typedef struct LendIds {
        uid_t uid;
        gid_t gid;
} LendIds;

static int lend_file(int dir_fd, const char *name, void *userdata) {
        const LendIds *ids = userdata;
        _cleanup_close_ int f = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;

        if (f < 0)
                return errno == ELOOP || errno == ENOENT ? 0 : negative_errno();
        if (fstat(f, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return 0;
        if ((st.st_uid != ids->uid || st.st_gid != ids->gid) && fchown(f, ids->uid, ids->gid) < 0)
                return negative_errno();
        if ((st.st_mode & 07777) != 0660 && fchmod(f, 0660) < 0)
                return negative_errno();
        return 0;
}

int statedir_lend(StateDir *sd, uid_t uid, gid_t gid) {
        int r;

        if (!writable(sd))
                return -EROFS;
        r = each_entry(sd->fd, lend_file, &(LendIds){ .uid = uid, .gid = gid });
        if (r < 0)
                return r;
        if (fchown(sd->fd, uid, gid) < 0 || fchmod(sd->fd, 0770) < 0)
                return negative_errno();
        sd->file_mode = 0660;
        return 0;
}

/* An empty file of the directory's mode; -EEXIST if there is one. */
static int make_empty(int dir_fd, mode_t mode, const char *name) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        return 0;
}

/* Whether the file system can exchange two names (RENAME_EXCHANGE): local
 * ones can; a network or FUSE file system may answer EINVAL. */
static int can_exchange(StateDir *d) {
        char a[sizeof(SPARE_PREFIX) + 4], b[sizeof(SPARE_PREFIX) + 4];
        const char *x = a, *y = b;
        bool probe = false;
        int r;

        spare_name(0, a);
        spare_name(1, b);
        if (faccessat(d->fd, a, F_OK, AT_SYMLINK_NOFOLLOW) < 0 || faccessat(d->fd, b, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                /* Not two spares (a full directory): two files just for the question. */
                (void) unlinkat(d->fd, PROBE_A, 0);
                (void) unlinkat(d->fd, PROBE_B, 0);
                r = make_empty(d->fd, d->file_mode, PROBE_A);
                if (r >= 0)
                        r = make_empty(d->fd, d->file_mode, PROBE_B);
                if (r < 0) {
                        if (r == -ENOSPC || r == -EDQUOT)
                                r = 0; /* cannot tell: as if it could not */
                        goto out;
                }
                probe = true;
                x = PROBE_A;
                y = PROBE_B;
        }
        r = renameat2(d->fd, x, d->fd, y, RENAME_EXCHANGE) == 0 ? 1 : negative_errno();
        if (r == -EINVAL || r == -ENOSYS || r == -EOPNOTSUPP)
                r = 0;
out:
        if (probe || x == a) {
                (void) unlinkat(d->fd, PROBE_A, 0);
                (void) unlinkat(d->fd, PROBE_B, 0);
        }
        return r;
}

/* Counts the regular files; empties the tmp files and spares (what a crash
 * or a taken-over worker left there is never read). */
static int fix_file(int dir_fd, const char *name, void *userdata) {
        unsigned *n = userdata;
        struct stat st;
        size_t k = strlen(name);

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISREG(st.st_mode))
                return 0;
        (*n)++;
        if (st.st_size > 0 &&
            (spare_entry(name) || (k > strlen(TMP_SUFFIX) && streq(name + k - strlen(TMP_SUFFIX), TMP_SUFFIX))))
                truncate_file(dir_fd, name);
        return 0;
}

static int count_file(int dir_fd, const char *name, void *userdata) {
        unsigned *n = userdata;
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (S_ISREG(st.st_mode))
                (*n)++;
        return 0;
}

int statedir_top_up_spares(StateDir *sd, uid_t uid, gid_t gid) {
        char spare[sizeof(SPARE_PREFIX) + 4];
        unsigned n = 0, made = 0;
        bool missing = false;
        int r;

        for (unsigned i = 0; i < STATEDIR_SPARES && !missing; i++) {
                spare_name(i, spare);
                if (faccessat(sd->fd, spare, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT)
                                return negative_errno();
                        missing = true;
                }
        }
        if (!missing)
                return 0; /* the common case, and all there is to it with RENAME_EXCHANGE */
        r = each_entry(sd->fd, count_file, &n);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < STATEDIR_SPARES && n < STATEDIR_FILES_MAX; i++) {
                _cleanup_close_ int fd = -1;
                spare_name(i, spare);
                fd = openat(sd->fd, spare, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
                if (fd < 0) {
                        if (errno == EEXIST)
                                continue;
                        return negative_errno();
                }
                if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0660) < 0)
                        return negative_errno();
                n++;
                made++;
        }
        if (made && fsync(sd->fd) < 0)
                return negative_errno();
        return (int) made;
}

int statedir_fix_files(StateDir *sd) {
        if (!writable(sd))
                return -EROFS;
        int dir_fd = sd->fd;
        unsigned n = 0;
        int r = each_entry(dir_fd, fix_file, &n);
        if (r < 0)
                return r;

        /* Spares up to the budget; a full file system stops the count, not the worker. */
        for (unsigned i = 0; i < STATEDIR_SPARES && n < STATEDIR_FILES_MAX; i++) {
                char spare[sizeof(SPARE_PREFIX) + 4];
                spare_name(i, spare);
                r = make_empty(dir_fd, sd->file_mode, spare);
                if (r == -EEXIST)
                        continue;
                if (r == -ENOSPC || r == -EDQUOT)
                        break;
                if (r < 0)
                        return r;
                n++;
        }
        if (n < STATEDIR_FILES_MAX && fsync(dir_fd) < 0)
                return negative_errno();

        r = can_exchange(sd);
        if (r < 0)
                return r;
        /* Without the exchange each write takes a spare, and vtpmd makes new ones
         * (statedir_top_up_spares): the worker still creates nothing. */
        sd->fixed = true;
        sd->consume = r == 0;
        return r > 0 ? 1 : 2;
}
