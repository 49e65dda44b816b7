/* SPDX-License-Identifier: BSD-3-Clause */
#include <assert.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "statefile-offsets.h"
#include "statestore.h"
#include "test.h"
#include "util.h"

#define UUID_A "0c6c33b2-4f6a-4d35-9d7b-8d0e4f2a1b3c"
#define UUID_B "7d4e1f00-1234-4abc-8def-0123456789ab"
#define UUID_B_UPPER "7D4E1F00-1234-4ABC-8DEF-0123456789AB"
#define MARKER "VTPMD-PLAINTEXT-MARKER-7f3a9c"

/* Header offsets, as documented in statefile.h */

static const uint8_t key1[CRYPTO_KEY_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                               17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t key2[CRYPTO_KEY_SIZE] = { 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
                                               16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };

static const StateKind dir_kinds[] = { STATE_KIND_DATA_KEY, STATE_KIND_META, STATE_KIND_PERMANENT,
                                       STATE_KIND_VOLATILE };

#define _cleanup_root_ _cleanup_(stateroot_closep)
#define _cleanup_dir_ _cleanup_(statedir_closep)

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? 0 : 0;
        (void) unlink(path);
        return 0;
}

static void tmpdir_cleanup(char **p) {
        if (!*p)
                return;
        (void) nftw(*p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(*p);
}
#define _cleanup_tmpdir_ _cleanup_(tmpdir_cleanup)

static char *make_tmpdir(void) {
        const char *base = getenv("TMPDIR");
        char *t;

        if (asprintf(&t, "%s/test-statestore-XXXXXX", base && *base ? base : "/tmp") < 0)
                abort();
        if (!mkdtemp(t))
                abort();
        return t;
}

static char *path_join(const char *a, const char *b) {
        char *p;
        if (asprintf(&p, "%s/%s", a, b) < 0)
                abort();
        return p;
}

static char *path_join3(const char *a, const char *b, const char *c) {
        char *p;
        if (asprintf(&p, "%s/%s/%s", a, b, c) < 0)
                abort();
        return p;
}

static int read_path(const char *path, uint8_t **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        uint8_t *b;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        b = malloc((size_t) st.st_size + 1);
        if (!b)
                return -ENOMEM;
        if (read(fd, b, (size_t) st.st_size) != st.st_size) {
                free(b);
                return -EIO;
        }
        *ret = b;
        *ret_len = (size_t) st.st_size;
        return 0;
}

static int write_path(const char *path, const void *data, size_t len) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        if (fd < 0)
                return -errno;
        if (write(fd, data, len) != (ssize_t) len)
                return -EIO;
        return 0;
}

static bool exists_at(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static mode_t mode_of(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return (mode_t) -1;
        return st.st_mode & 07777;
}

/* Any "*.tmp" left anywhere under dir? */
static int tmp_hits;
static int count_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        size_t n = strlen(path);
        (void) st;
        (void) flag;
        (void) ftw;
        if (n > 4 && streq(path + n - 4, ".tmp"))
                tmp_hits++;
        return 0;
}
static int tmp_files_under(const char *dir) {
        tmp_hits = 0;
        if (nftw(dir, count_tmp, 16, FTW_PHYS) < 0)
                return -1;
        return tmp_hits;
}

/* Runs fn in a child process: its exit status, or 128+signal. */
typedef struct Fx {
        char *tmp;
        char *root_path;
        StateRoot *root;
        StateDir *a;
} Fx;

static void fx_done(Fx *f) {
        statedir_close(f->a);
        stateroot_close(f->root);
        free(f->root_path);
        tmpdir_cleanup(&f->tmp);
}
#define _cleanup_fx_ _cleanup_(fx_done)

static int fx_init(Fx *f) {
        memset(f, 0, sizeof(*f));
        f->tmp = make_tmpdir();
        f->root_path = path_join(f->tmp, "root");
        if (stateroot_open(f->root_path, &f->root) < 0)
                return -1;
        if (statedir_create(f->root, UUID_A, &f->a) < 0)
                return -1;
        return 0;
}

static char *fx_file(const Fx *f, const char *name) {
        return path_join3(f->root_path, UUID_A, name);
}

/* ---- creation, listing, modes ---- */

TEST(create_open_list) {
        _cleanup_tmpdir_ char *tmp = make_tmpdir();
        _cleanup_free_ char *root_path = path_join(tmp, "a/b/root/");
        _cleanup_root_ StateRoot *r = NULL;
        _cleanup_dir_ StateDir *a = NULL, *b = NULL, *x = NULL;
        char **list = NULL;
        _cleanup_free_ char *junk = NULL;

        ASSERT_OK(stateroot_open(root_path, &r));
        ASSERT_STREQ(stateroot_path(r), root_path);
        ASSERT_TRUE(stateroot_fd(r) >= 0);
        ASSERT_OK(statedir_create(r, UUID_A, &a));
        ASSERT_OK(statedir_create(r, UUID_B_UPPER, &b));
        ASSERT_STREQ(statedir_uuid(b), UUID_B); /* canonical lowercase */
        ASSERT_TRUE(statedir_fd(a) >= 0);
        ASSERT_ERR(statedir_create(r, UUID_A, &x), -EEXIST);
        ASSERT_ERR(statedir_create(r, "not-a-uuid", &x), -EINVAL);
        ASSERT_ERR(statedir_open(r, "../etc", &x), -EINVAL);
        ASSERT_ERR(statedir_open(r, "11111111-2222-3333-4444-555555555555", &x), -ENOENT);

        /* things that are not vTPM directories */
        junk = path_join(root_path, "not-a-uuid");
        ASSERT_EQ(mkdir(junk, 0700), 0);
        free(junk);
        junk = path_join(root_path, "AAAAAAAA-2222-3333-4444-555555555555"); /* not canonical */
        ASSERT_EQ(mkdir(junk, 0700), 0);
        free(junk);
        junk = path_join(root_path, "aaaaaaaa-2222-3333-4444-555555555555"); /* a file */
        ASSERT_OK(write_path(junk, "x", 1));
        free(junk);
        junk = path_join(root_path, "bbbbbbbb-2222-3333-4444-555555555555"); /* a symlink to a dir */
        ASSERT_EQ(symlink(tmp, junk), 0);

        ASSERT_OK(stateroot_list(r, &list));
        ASSERT_TRUE(list[0] && list[1] && !list[2]);
        ASSERT_STREQ(list[0], UUID_A);
        ASSERT_STREQ(list[1], UUID_B);
        for (char **p = list; *p; p++)
                free(*p);
        free(list);

        /* a symlink is not opened as a vTPM either */
        ASSERT_ERR(statedir_open(r, "bbbbbbbb-2222-3333-4444-555555555555", &x), -ENOTDIR);
}

static void umask_restore(mode_t *m) {
        umask(*m);
}

static void check_modes(mode_t mask) {
        _cleanup_tmpdir_ char *tmp = make_tmpdir();
        _cleanup_free_ char *root_path = path_join(tmp, "new/root"), *p = NULL;
        _cleanup_(umask_restore) mode_t old = umask(mask);
        _cleanup_root_ StateRoot *r = NULL;
        _cleanup_dir_ StateDir *a = NULL;
        static const char data[] = "payload";

        ASSERT_OK(stateroot_open(root_path, &r));
        ASSERT_OK(statedir_create(r, UUID_A, &a));
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++)
                ASSERT_OK(statedir_write(a, dir_kinds[i], key1, 1, data, sizeof(data)));
        ASSERT_OK(stateroot_write(r, STATE_KIND_MANIFEST, key1, 1, data, sizeof(data)));
        ASSERT_OK(stateroot_write_raw(r, "master.sealed", data, sizeof(data)));

        ASSERT_EQ(mode_of(root_path), 0700);
        p = path_join(root_path, ".lock");
        ASSERT_EQ(mode_of(p), 0600);
        free(p);
        p = path_join(root_path, "manifest");
        ASSERT_EQ(mode_of(p), 0600);
        free(p);
        p = path_join(root_path, "master.sealed");
        ASSERT_EQ(mode_of(p), 0600);
        free(p);
        p = path_join(root_path, UUID_A);
        ASSERT_EQ(mode_of(p), 0700);
        free(p);
        p = path_join3(root_path, UUID_A, ".lock");
        ASSERT_EQ(mode_of(p), 0600);
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++) {
                free(p);
                p = path_join3(root_path, UUID_A, state_kind_filename(dir_kinds[i]));
                ASSERT_EQ(mode_of(p), 0600);
        }
}

TEST(modes_do_not_depend_on_umask) {
        check_modes(0);
        check_modes(077);
        if (geteuid() == 0) /* a 0777 umask makes the parents unusable for anyone but root */
                check_modes(0777);
}

/* ---- locks ---- */

static void child_open_root_expect_busy(void *root_path) {
        _cleanup_root_ StateRoot *r = NULL;

        ASSERT_ERR(stateroot_open(root_path, &r), -EBUSY);
}

TEST(root_lock_excludes_other_opens) {
        _cleanup_fx_ Fx f;
        _cleanup_root_ StateRoot *r2 = NULL;

        ASSERT_OK(fx_init(&f));
        ASSERT_ERR(stateroot_open(f.root_path, &r2), -EBUSY);
        /* another process, too */
        ASSERT_CHILD(child_open_root_expect_busy, f.root_path);
        f.root = stateroot_close(f.root);
        ASSERT_OK(stateroot_open(f.root_path, &r2));
}

TEST(shared_root_takes_no_root_lock_but_dirs_stay_exclusive) {
        _cleanup_fx_ Fx f;
        _cleanup_root_ StateRoot *s1 = NULL, *s2 = NULL;
        _cleanup_dir_ StateDir *d1 = NULL, *d2 = NULL;

        ASSERT_OK(fx_init(&f));
        /* Two hosts' views of one pool root: both open it, also beside the locked one. */
        ASSERT_OK(stateroot_open_shared(f.root_path, &s1));
        ASSERT_OK(stateroot_open_shared(f.root_path, &s2));
        ASSERT_OK(statedir_create(s1, UUID_B, &d1));
        ASSERT_ERR(statedir_open(s2, UUID_B, &d2), -EBUSY);
        ASSERT_OK(statedir_write(d1, STATE_KIND_PERMANENT, key1, 1, "abc", 3));
        d1 = statedir_close(d1);
        ASSERT_OK(statedir_open(s2, UUID_B, &d2));
        ASSERT_OK(statedir_write(d2, STATE_KIND_PERMANENT, key1, 2, "def", 3));
}

TEST(dir_lock_excludes_other_opens_and_hands_over) {
        _cleanup_fx_ Fx f;
        _cleanup_dir_ StateDir *d2 = NULL, *w = NULL;
        int fd;

        ASSERT_OK(fx_init(&f));
        ASSERT_ERR(statedir_open(f.root, UUID_A, &d2), -EBUSY);
        /* the supervisor lets go, the worker takes it through the inherited fd */
        ASSERT_OK(statedir_unlock(f.a));
        fd = fcntl(statedir_fd(f.a), F_DUPFD_CLOEXEC, 3);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(statedir_from_fd(fd, UUID_A, &w));
        ASSERT_STREQ(statedir_uuid(w), UUID_A);
        ASSERT_ERR(statedir_open(f.root, UUID_A, &d2), -EBUSY);
        /* the worker's view works */
        ASSERT_OK(statedir_write(w, STATE_KIND_PERMANENT, key1, 3, "abc", 3));
        w = statedir_close(w);
        ASSERT_OK(statedir_open(f.root, UUID_A, &d2));
        /* and the supervisor's old (unlocked) object cannot relock while d2 holds it */
        fd = fcntl(statedir_fd(f.a), F_DUPFD_CLOEXEC, 3);
        ASSERT_ERR(statedir_from_fd(fd, UUID_A, &w), -EBUSY);
}

TEST(from_fd_rejects_non_directories) {
        _cleanup_fx_ Fx f;
        _cleanup_dir_ StateDir *w = NULL;
        _cleanup_free_ char *p = NULL;
        int fd;

        ASSERT_OK(fx_init(&f));
        p = path_join(f.root_path, ".lock");
        fd = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_ERR(statedir_from_fd(fd, UUID_A, &w), -ENOTDIR);
        ASSERT_TRUE(fcntl(fd, F_GETFD) < 0); /* consumed */
        ASSERT_ERR(statedir_from_fd(-1, UUID_A, &w), -EBADF);
        fd = fcntl(statedir_fd(f.a), F_DUPFD_CLOEXEC, 3);
        ASSERT_ERR(statedir_from_fd(fd, "nope", &w), -EINVAL);
}

/* ---- blobs ---- */

TEST(roundtrip_every_kind) {
        _cleanup_fx_ Fx f;
        uint8_t payload[3000];
        uint64_t size = 0, total = 0;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(crypto_random(payload, sizeof(payload)));
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++) {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0, n = 100 * (i + 1);
                uint64_t seq = 0;
                StateHeader h;

                ASSERT_ERR(statedir_read(f.a, dir_kinds[i], key1, &out, &len, &seq), -ENOENT);
                ASSERT_OK(statedir_write(f.a, dir_kinds[i], key1, 40 + i, payload, n));
                ASSERT_OK(statedir_read(f.a, dir_kinds[i], key1, &out, &len, &seq));
                ASSERT_EQ(len, n);
                ASSERT_EQ(seq, 40 + i);
                ASSERT_MEMEQ(out, payload, n);
                ASSERT_OK(statedir_peek(f.a, dir_kinds[i], &h));
                ASSERT_EQ(h.kind, dir_kinds[i]);
                ASSERT_EQ(h.seq, 40 + i);
                ASSERT_EQ(h.length, n);
                total += STATEFILE_OVERHEAD + n;
        }
        ASSERT_OK(statedir_size(f.a, &size));
        ASSERT_EQ(size, total);

        /* empty payload */
        {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 1;
                ASSERT_OK(statedir_write(f.a, STATE_KIND_VOLATILE, key1, 99, NULL, 0));
                ASSERT_OK(statedir_read(f.a, STATE_KIND_VOLATILE, key1, &out, &len, NULL));
                ASSERT_EQ(len, 0);
        }
        /* root level */
        {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0;
                uint64_t seq = 0;
                ASSERT_ERR(stateroot_read(f.root, STATE_KIND_MANIFEST, key2, &out, &len, &seq), -ENOENT);
                ASSERT_OK(stateroot_write(f.root, STATE_KIND_MANIFEST, key2, 7, payload, 44));
                ASSERT_OK(stateroot_read(f.root, STATE_KIND_MANIFEST, key2, &out, &len, &seq));
                ASSERT_EQ(len, 44);
                ASSERT_EQ(seq, 7);
                ASSERT_MEMEQ(out, payload, 44);
                ASSERT_ERR(stateroot_write(f.root, STATE_KIND_PERMANENT, key2, 7, payload, 44), -EINVAL);
                ASSERT_ERR(statedir_write(f.a, STATE_KIND_MANIFEST, key2, 7, payload, 44), -EINVAL);
        }
        /* raw */
        {
                _cleanup_free_ uint8_t *out = NULL;
                size_t len = 0;
                ASSERT_ERR(stateroot_read_raw(f.root, "master.sealed", &out, &len), -ENOENT);
                ASSERT_OK(stateroot_write_raw(f.root, "master.sealed", payload, 333));
                ASSERT_OK(stateroot_read_raw(f.root, "master.sealed", &out, &len));
                ASSERT_EQ(len, 333);
                ASSERT_MEMEQ(out, payload, 333);
                ASSERT_ERR(stateroot_write_raw(f.root, ".lock", payload, 1), -EINVAL);
                ASSERT_ERR(stateroot_write_raw(f.root, "../x", payload, 1), -EINVAL);
                ASSERT_ERR(stateroot_write_raw(f.root, "x.tmp", payload, 1), -EINVAL);
                ASSERT_ERR(stateroot_write_raw(f.root, "", payload, 1), -EINVAL);
                ASSERT_ERR(stateroot_write_raw(f.root, UUID_A, payload, 1), -EINVAL);
        }
        ASSERT_EQ(tmp_files_under(f.root_path), 0);
}

TEST(every_write_uses_a_fresh_nonce) {
        _cleanup_fx_ Fx f;
        StateHeader h1, h2;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "same", 4));
        ASSERT_OK(statedir_peek(f.a, STATE_KIND_PERMANENT, &h1));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "same", 4));
        ASSERT_OK(statedir_peek(f.a, STATE_KIND_PERMANENT, &h2));
        ASSERT_TRUE(memcmp(h1.nonce, h2.nonce, sizeof(h1.nonce)) != 0);
}

TEST(write_rejects_oversized_payload) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ uint8_t *big = calloc(1, STATEFILE_MAX_PAYLOAD + 1);
        _cleanup_free_ char *p = NULL;

        ASSERT_OK(fx_init(&f));
        ASSERT_TRUE(big != NULL);
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, big, STATEFILE_MAX_PAYLOAD));
        ASSERT_ERR(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, big, STATEFILE_MAX_PAYLOAD + 1), -EMSGSIZE);
        /* a planted file above the largest blob is refused before it is read */
        p = fx_file(&f, "volatile");
        {
                _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                _cleanup_free_ uint8_t *out = NULL;
                size_t len;
                ASSERT_TRUE(fd >= 0);
                ASSERT_EQ(ftruncate(fd, (off_t) STATEFILE_OVERHEAD + STATEFILE_MAX_PAYLOAD + 1), 0);
                ASSERT_ERR(statedir_read(f.a, STATE_KIND_VOLATILE, key1, &out, &len, NULL), -EBADMSG);
        }
}

/* Writes permall, modifies one byte of the file, reads: the errno; the file is left as it was. */
static int tamper_read(Fx *f, const uint8_t *orig, size_t orig_len, size_t off, uint8_t xor_or_set, bool set) {
        _cleanup_free_ char *p = fx_file(f, "permall");
        _cleanup_free_ uint8_t *mod = malloc(orig_len), *out = NULL, *after = NULL;
        size_t len = 0, after_len = 0;
        int r;

        if (!mod)
                return -ENOMEM;
        memcpy(mod, orig, orig_len);
        if (set)
                mod[off] = xor_or_set;
        else
                mod[off] ^= xor_or_set;
        if (write_path(p, mod, orig_len) < 0)
                return -EIO;
        r = statedir_read(f->a, STATE_KIND_PERMANENT, key1, &out, &len, NULL);
        /* reads never modify: the bad file stays for inspection */
        if (read_path(p, &after, &after_len) < 0 || after_len != orig_len || memcmp(after, mod, orig_len) != 0)
                return -ENOTRECOVERABLE;
        return r;
}

/* Writes a permall of n bytes of fill at seq 5; its path and the file's bytes. */
static int write_permall(Fx *f, size_t n, char fill, char **ret_path, uint8_t **ret_file, size_t *ret_len) {
        uint8_t payload[256];
        int r;

        assert(n <= sizeof(payload));
        memset(payload, fill, n);
        r = statedir_write(f->a, STATE_KIND_PERMANENT, key1, 5, payload, n);
        if (r < 0)
                return r;
        *ret_path = fx_file(f, "permall");
        return read_path(*ret_path, ret_file, ret_len);
}

TEST(tamper_each_header_field) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *p = NULL;
        _cleanup_free_ uint8_t *orig = NULL;
        size_t len = 0;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(write_permall(&f, 64, 'p', &p, &orig, &len));
        ASSERT_EQ(len, STATEFILE_OVERHEAD + 64);

        for (size_t i = 0; i < STATEFILE_MAGIC_SIZE; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, i, 0x20, false), -EBADMSG);
        ASSERT_ERR(tamper_read(&f, orig, len, OFF_VERSION + 1, 2, true), -EPROTONOSUPPORT);
        ASSERT_ERR(tamper_read(&f, orig, len, OFF_VERSION, 1, true), -EPROTONOSUPPORT);
        ASSERT_ERR(tamper_read(&f, orig, len, OFF_KIND + 1, STATE_KIND_VOLATILE, true), -EMEDIUMTYPE);
        ASSERT_ERR(tamper_read(&f, orig, len, OFF_KIND + 1, 77, true), -EMEDIUMTYPE);
        for (size_t i = 0; i < 4; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, OFF_FLAGS + i, 1, true), -EBADMSG);
        /* a newer sequence number cannot be claimed: it is authenticated */
        for (size_t i = 0; i < 8; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, OFF_SEQ + i, 0x01, false), -EKEYREJECTED);
        for (size_t i = 0; i < STATEFILE_UUID_SIZE; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, OFF_UUID + i, 0x01, false), -EXDEV);
        for (size_t i = 0; i < STATEFILE_NONCE_SIZE; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, OFF_NONCE + i, 0x01, false), -EKEYREJECTED);
        for (size_t i = 0; i < 4; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, OFF_LENGTH + i, 0x01, false), -EBADMSG);
}

TEST(tamper_each_ciphertext_and_tag_byte) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *p = NULL;
        _cleanup_free_ uint8_t *orig = NULL;
        size_t len = 0;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(write_permall(&f, 48, 'q', &p, &orig, &len));
        for (size_t i = STATEFILE_HEADER_SIZE; i < len; i++)
                ASSERT_ERR(tamper_read(&f, orig, len, i, 0x80, false), -EKEYREJECTED);
        /* the original, put back, still reads */
        ASSERT_OK(write_path(p, orig, len));
        {
                _cleanup_free_ uint8_t *out = NULL;
                size_t n;
                uint8_t payload[48];

                memset(payload, 'q', sizeof(payload));
                ASSERT_OK(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &n, NULL));
                ASSERT_EQ(n, sizeof(payload));
                ASSERT_MEMEQ(out, payload, sizeof(payload));
        }
}

static int copy_file(const char *from, const char *to) {
        _cleanup_free_ uint8_t *b = NULL;
        size_t n;
        int r = read_path(from, &b, &n);
        return r < 0 ? r : write_path(to, b, n);
}

TEST(swapped_truncated_and_wrong_key_files) {
        _cleanup_fx_ Fx f;
        _cleanup_dir_ StateDir *b = NULL;
        _cleanup_free_ char *pa = NULL, *pb = NULL, *pv = NULL, *pm = NULL;
        _cleanup_free_ uint8_t *out = NULL, *orig = NULL;
        size_t len = 0;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(statedir_create(f.root, UUID_B, &b));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 10, "AAAA", 4));
        ASSERT_OK(statedir_write(b, STATE_KIND_PERMANENT, key1, 10, "BBBB", 4));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_VOLATILE, key1, 10, "VVVV", 4));
        pa = fx_file(&f, "permall");
        pb = path_join3(f.root_path, UUID_B, "permall");
        pv = fx_file(&f, "volatile");

        /* another vTPM's blob, same key and kind */
        ASSERT_OK(copy_file(pa, pb));
        ASSERT_ERR(statedir_read(b, STATE_KIND_PERMANENT, key1, &out, &len, NULL), -EXDEV);
        /* a blob of another kind renamed over this one */
        ASSERT_EQ(rename(pv, pa), 0);
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, NULL), -EMEDIUMTYPE);
        /* a vTPM blob placed at the root as the manifest */
        pm = path_join(f.root_path, "manifest");
        ASSERT_OK(copy_file(pa, pm));
        ASSERT_ERR(stateroot_read(f.root, STATE_KIND_MANIFEST, key1, &out, &len, NULL), -EMEDIUMTYPE);

        /* wrong key */
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 11, "AAAA", 4));
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_PERMANENT, key2, &out, &len, NULL), -EKEYREJECTED);
        ASSERT_OK(stateroot_write(f.root, STATE_KIND_MANIFEST, key1, 1, "M", 1));
        ASSERT_ERR(stateroot_read(f.root, STATE_KIND_MANIFEST, key2, &out, &len, NULL), -EKEYREJECTED);

        /* truncated, at every length */
        ASSERT_OK(read_path(pa, &orig, &len));
        for (size_t n = 0; n < len; n++) {
                size_t olen;
                ASSERT_EQ(truncate(pa, (off_t) n), 0);
                ASSERT_ERR(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &olen, NULL), -EBADMSG);
        }
        /* a FIFO in place of a state file neither hangs nor passes */
        ASSERT_EQ(unlink(pa), 0);
        ASSERT_EQ(mkfifo(pa, 0600), 0);
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, NULL), -EBADMSG);
        /* a symlink in place of a state file is not followed */
        ASSERT_EQ(unlink(pa), 0);
        ASSERT_EQ(symlink(pb, pa), 0);
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, NULL), -EBADMSG);
        ASSERT_TRUE(out == NULL);
}

TEST(older_blob_reports_its_sequence) {
        /* Rollback is decided by the caller against the manifest: the store must report the real seq. */
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *p = NULL;
        _cleanup_free_ uint8_t *old = NULL, *out = NULL;
        size_t len = 0;
        uint64_t seq = 0;

        ASSERT_OK(fx_init(&f));
        p = fx_file(&f, "permall");
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "old", 3));
        ASSERT_OK(read_path(p, &old, &len));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 2, "new", 3));
        ASSERT_OK(write_path(p, old, len));
        ASSERT_OK(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, &seq));
        ASSERT_EQ(seq, 1);
        ASSERT_MEMEQ(out, "old", 3);
}

/* ---- durability and failure ---- */

TEST(stale_tmp_is_replaced_not_followed) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *tmpf = NULL, *outside = NULL;
        _cleanup_free_ uint8_t *b = NULL;
        size_t n = 0;

        ASSERT_OK(fx_init(&f));
        outside = path_join(f.tmp, "outside");
        ASSERT_OK(write_path(outside, "untouched", 9));
        tmpf = fx_file(&f, "permall.tmp");
        ASSERT_EQ(symlink(outside, tmpf), 0);
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "data", 4));
        ASSERT_FALSE(exists_at(tmpf));
        ASSERT_OK(read_path(outside, &b, &n));
        ASSERT_EQ(n, 9);
        ASSERT_MEMEQ(b, "untouched", 9);
}

static void child_reads_back(void *root_path) {
        _cleanup_root_ StateRoot *r = NULL;
        _cleanup_dir_ StateDir *d = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        uint8_t want[5000];
        size_t len = 0;
        uint64_t seq = 0;

        for (size_t i = 0; i < sizeof(want); i++)
                want[i] = (uint8_t) (i * 7);
        ASSERT_OK(stateroot_open(root_path, &r));
        ASSERT_OK(statedir_open(r, UUID_A, &d));
        ASSERT_OK(statedir_read(d, STATE_KIND_PERMANENT, key1, &out, &len, &seq));
        ASSERT_EQ(len, sizeof(want));
        ASSERT_EQ(seq, 77);
        ASSERT_MEMEQ(out, want, len);
        /* and write something for the parent to read */
        ASSERT_OK(statedir_write(d, STATE_KIND_VOLATILE, key1, 78, want, 100));
}

TEST(durable_write_reread_in_fresh_process) {
        _cleanup_fx_ Fx f;
        uint8_t want[5000];
        _cleanup_free_ uint8_t *out = NULL;
        size_t len = 0;
        uint64_t seq = 0;

        ASSERT_OK(fx_init(&f));
        for (size_t i = 0; i < sizeof(want); i++)
                want[i] = (uint8_t) (i * 7);
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 77, want, sizeof(want)));
        f.a = statedir_close(f.a);
        f.root = stateroot_close(f.root);

        ASSERT_CHILD(child_reads_back, f.root_path);

        ASSERT_OK(stateroot_open(f.root_path, &f.root));
        ASSERT_OK(statedir_open(f.root, UUID_A, &f.a));
        ASSERT_OK(statedir_read(f.a, STATE_KIND_VOLATILE, key1, &out, &len, &seq));
        ASSERT_EQ(len, 100);
        ASSERT_EQ(seq, 78);
        ASSERT_MEMEQ(out, want, 100);
}

/* The failing write must leave the previous file readable, no tmp file, and a later small write must work. */
static void failed_write_keeps_old(const char *root_path, size_t big, int want_err) {
        _cleanup_root_ StateRoot *r = NULL;
        _cleanup_dir_ StateDir *d = NULL;
        _cleanup_free_ uint8_t *payload = calloc(1, big), *out = NULL, *out2 = NULL;
        size_t len = 0;
        uint64_t seq = 0;

        ASSERT_TRUE(payload != NULL);
        memset(payload, 'o', 2048);
        ASSERT_OK(stateroot_open(root_path, &r));
        ASSERT_OK(statedir_create(r, UUID_A, &d));
        ASSERT_OK(statedir_write(d, STATE_KIND_PERMANENT, key1, 1, payload, 2048));

        memset(payload, 'n', big);
        ASSERT_ERR(statedir_write(d, STATE_KIND_PERMANENT, key1, 2, payload, big), want_err);
        ASSERT_EQ(tmp_files_under(root_path), 0);
        ASSERT_OK(statedir_read(d, STATE_KIND_PERMANENT, key1, &out, &len, &seq));
        ASSERT_TRUE(seq == 1 && len == 2048 && out[0] == 'o' && out[2047] == 'o');
        /* the space is free again: the vTPM recovers */
        ASSERT_OK(statedir_write(d, STATE_KIND_PERMANENT, key1, 3, payload, 1024));
        ASSERT_OK(statedir_read(d, STATE_KIND_PERMANENT, key1, &out2, &len, &seq));
        ASSERT_TRUE(seq == 3 && len == 1024 && out2[0] == 'n');
}

static void child_efbig(void *root_path) {
        struct rlimit rl = { .rlim_cur = 16384, .rlim_max = 16384 };

        /* Without the signal ignored the kernel kills us; ignored, write() gets EFBIG. */
        ASSERT_TRUE(signal(SIGXFSZ, SIG_IGN) != SIG_ERR);
        ASSERT_OK(setrlimit(RLIMIT_FSIZE, &rl));
        failed_write_keeps_old(root_path, 64 * 1024, -EFBIG);
}

TEST(write_failure_efbig_keeps_previous_file) {
        _cleanup_tmpdir_ char *tmp = make_tmpdir();
        _cleanup_free_ char *root_path = path_join(tmp, "root");

        ASSERT_CHILD(child_efbig, root_path);
}

static void child_enospc(void *mnt) {
        _cleanup_free_ char *root_path = path_join(mnt, "root");
        struct statfs sf;

        if (unshare(CLONE_NEWNS) < 0)
                TEST_SKIP("cannot mount a tmpfs here: unshare(CLONE_NEWNS): %s", strerror(errno));
        /* keep the tmpfs out of the parent's namespace, whatever the host's propagation */
        ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        if (mount("tmpfs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") < 0)
                TEST_SKIP("cannot mount a tmpfs here: %s", strerror(errno));
        ASSERT_TRUE(statfs(mnt, &sf) == 0 && sf.f_type == TMPFS_MAGIC);
        failed_write_keeps_old(root_path, 200 * 1024, -ENOSPC);
}

/* Needs a tmpfs of its own (root or a mount namespace); skipped without one. */
TEST(write_failure_enospc_keeps_previous_file) {
        _cleanup_tmpdir_ char *tmp = make_tmpdir();

        ASSERT_CHILD(child_enospc, tmp);
}

/* ---- secrecy ---- */

static int marker_hits;
static int scan_marker(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        _cleanup_free_ uint8_t *b = NULL;
        size_t n;

        (void) ftw;
        if (flag != FTW_F || !S_ISREG(st->st_mode))
                return 0;
        if (read_path(path, &b, &n) < 0)
                return 0;
        /* a 12-byte fragment: enough to be unambiguous, short enough to catch partial leaks */
        for (size_t off = 0; off + 12 <= sizeof(MARKER) - 1; off += 6)
                if (memmem(b, n, &MARKER[off], 12)) {
                        marker_hits++;
                        return 0;
                }
        return 0;
}

TEST(no_plaintext_on_disk) {
        _cleanup_fx_ Fx f;
        char payload[4096];

        ASSERT_OK(fx_init(&f));
        memset(payload, '.', sizeof(payload));
        for (size_t i = 0; i + sizeof(MARKER) <= sizeof(payload); i += sizeof(MARKER))
                memcpy(payload + i, MARKER, sizeof(MARKER));
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++)
                ASSERT_OK(statedir_write(f.a, dir_kinds[i], key1, 1, payload, sizeof(payload)));
        ASSERT_OK(stateroot_write(f.root, STATE_KIND_MANIFEST, key2, 1, payload, sizeof(payload)));
        /* a control: raw files are not encrypted, so the scanner must find exactly this one */
        ASSERT_OK(stateroot_write_raw(f.root, "control", MARKER, sizeof(MARKER)));

        marker_hits = 0;
        ASSERT_EQ(nftw(f.root_path, scan_marker, 16, FTW_PHYS), 0);
        ASSERT_EQ(marker_hits, 1);
}

/* ---- removal ---- */

TEST(remove_and_destroy) {
        _cleanup_fx_ Fx f;
        _cleanup_dir_ StateDir *b = NULL;
        _cleanup_free_ char *dir_path = NULL, *stranger = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        char **list = NULL;
        size_t len;

        ASSERT_OK(fx_init(&f));
        for (size_t i = 0; i < ELEMENTSOF(dir_kinds); i++)
                ASSERT_OK(statedir_write(f.a, dir_kinds[i], key1, 1, "x", 1));
        ASSERT_OK(statedir_remove(f.a, STATE_KIND_VOLATILE));
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_VOLATILE, key1, &out, &len, NULL), -ENOENT);
        ASSERT_OK(statedir_remove(f.a, STATE_KIND_VOLATILE)); /* absent: still 0 */
        ASSERT_ERR(statedir_remove(f.a, STATE_KIND_MANIFEST), -EINVAL);

        /* a file the store did not make: destroy refuses and removes nothing */
        stranger = fx_file(&f, "notes.txt");
        ASSERT_OK(write_path(stranger, "mine", 4));
        ASSERT_ERR(statedir_destroy(f.a), -ENOTEMPTY);
        ASSERT_OK(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, NULL));
        ASSERT_EQ(unlink(stranger), 0);

        ASSERT_OK(statedir_create(f.root, UUID_B, &b));
        ASSERT_OK(statedir_erase_key(f.a));
        ASSERT_OK(statedir_destroy(f.a));
        dir_path = path_join(f.root_path, UUID_A);
        ASSERT_FALSE(exists_at(dir_path));
        ASSERT_OK(stateroot_list(f.root, &list));
        ASSERT_STREQ(list[0], UUID_B);
        ASSERT_TRUE(list[1] == NULL);
        free(list[0]);
        free(list);
}

TEST(erase_key_overwrites_before_unlinking) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *kp = NULL, *link_path = NULL;
        _cleanup_free_ uint8_t *before = NULL, *after = NULL, *out = NULL;
        size_t nb = 0, na = 0, len;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(statedir_erase_key(f.a)); /* nothing to erase */
        ASSERT_OK(statedir_write(f.a, STATE_KIND_DATA_KEY, key2, 1, key1, sizeof(key1)));
        kp = fx_file(&f, "key");
        /* a second name for the inode lets us look at its blocks after the unlink */
        link_path = path_join(f.tmp, "keylink");
        ASSERT_EQ(link(kp, link_path), 0);
        ASSERT_OK(read_path(link_path, &before, &nb));
        ASSERT_OK(statedir_erase_key(f.a));
        ASSERT_FALSE(exists_at(kp));
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_DATA_KEY, key2, &out, &len, NULL), -ENOENT);
        ASSERT_OK(read_path(link_path, &after, &na));
        ASSERT_EQ(na, nb);
        ASSERT_TRUE(memcmp(before, after, nb) != 0);
        ASSERT_TRUE(memcmp(after, STATEFILE_MAGIC, STATEFILE_MAGIC_SIZE) != 0);
}

/* ---- the local CA's key and a vTPM's public certificate files (manufacturing) ---- */

TEST(ca_key_blob_at_root) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ uint8_t *out = NULL;
        _cleanup_free_ char *path = NULL, *manifest = NULL;
        size_t len = 0;
        uint64_t seq = 0;

        ASSERT_OK(fx_init(&f));
        ASSERT_ERR(stateroot_read(f.root, STATE_KIND_CA_KEY, key1, &out, &len, &seq), -ENOENT);
        ASSERT_OK(stateroot_write(f.root, STATE_KIND_CA_KEY, key1, 1, "secret-ca-key", 13));
        path = path_join(f.root_path, "ca-key");
        ASSERT_TRUE(exists_at(path));
        ASSERT_OK(stateroot_read(f.root, STATE_KIND_CA_KEY, key1, &out, &len, &seq));
        ASSERT_EQ(len, 13);
        ASSERT_MEMEQ(out, "secret-ca-key", 13);
        free(TAKE_PTR(out));
        /* another key, or the blob passed off as the manifest: refused */
        ASSERT_ERR(stateroot_read(f.root, STATE_KIND_CA_KEY, key2, &out, &len, &seq), -EKEYREJECTED);
        ASSERT_ERR(statedir_write(f.a, STATE_KIND_CA_KEY, key1, 1, "x", 1), -EINVAL);
        manifest = path_join(f.root_path, "manifest");
        ASSERT_EQ(rename(path, manifest), 0);
        ASSERT_ERR(stateroot_read(f.root, STATE_KIND_MANIFEST, key1, &out, &len, &seq), -EMEDIUMTYPE);
}

TEST(public_files_written_and_destroyed) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *dir_path = NULL, *pem = NULL;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "x", 1));
        ASSERT_OK(statedir_write_public(f.a, STATEDIR_EK_CERT_RSA2048, "-----BEGIN", 10));
        ASSERT_OK(statedir_write_public(f.a, STATEDIR_EK_CERT_ECC_P256, "-----BEGIN", 10));
        ASSERT_OK(statedir_write_public(f.a, STATEDIR_EK_HASHES, "rsa2048 00\n", 11));
        pem = fx_file(&f, STATEDIR_EK_CERT_RSA2048);
        ASSERT_TRUE(exists_at(pem));
        /* only the known names, no paths */
        ASSERT_ERR(statedir_write_public(f.a, "notes.txt", "x", 1), -EINVAL);
        ASSERT_ERR(statedir_write_public(f.a, "../ek-rsa2048.pem", "x", 1), -EINVAL);
        ASSERT_ERR(statedir_write_public(f.a, "key", "x", 1), -EINVAL);
        /* read back without the lock (a worker holds it), for show: reads
         * work, changes do not */
        _cleanup_(statedir_closep) StateDir *shared = NULL;
        uint8_t *back = NULL;
        size_t n = 0;
        uint64_t size = 0;
        ASSERT_OK(statedir_open_shared(f.root, UUID_A, &shared));
        ASSERT_OK(statedir_read(shared, STATE_KIND_PERMANENT, key1, &back, &n, NULL));
        ASSERT_EQ(n, 1);
        free(back);
        ASSERT_OK(statedir_size(shared, &size));
        ASSERT_TRUE(size > 0);
        ASSERT_ERR(statedir_write(shared, STATE_KIND_PERMANENT, key1, 2, "y", 1), -EROFS);
        ASSERT_ERR(statedir_write_public(shared, STATEDIR_EK_HASHES, "x", 1), -EROFS);
        ASSERT_ERR(statedir_remove(shared, STATE_KIND_PERMANENT), -EROFS);
        ASSERT_ERR(statedir_erase_key(shared), -EROFS);
        ASSERT_ERR(statedir_destroy(shared), -EROFS);
        ASSERT_OK(statedir_read_public(shared, STATEDIR_EK_HASHES, &back, &n));
        ASSERT_EQ(n, 11);
        ASSERT_MEMEQ(back, "rsa2048 00\n", 11);
        free(back);
        ASSERT_ERR(statedir_read_public(shared, "key", &back, &n), -EINVAL);
        /* a directory lent to a worker is the worker's: a FIFO or a symlink
         * there is refused at once, it must not hang the supervisor */
        _cleanup_free_ char *hashes = fx_file(&f, STATEDIR_EK_HASHES);
        ASSERT_OK(unlink(hashes));
        ASSERT_OK(mkfifo(hashes, 0600));
        ASSERT_ERR(statedir_read_public(shared, STATEDIR_EK_HASHES, &back, &n), -EBADMSG);
        ASSERT_OK(unlink(hashes));
        ASSERT_OK(symlink(pem, hashes));
        ASSERT_ERR(statedir_read_public(shared, STATEDIR_EK_HASHES, &back, &n), -EBADMSG);
        ASSERT_OK(unlink(hashes));
        /* they are the store's own: destroy removes them with the blobs */
        ASSERT_OK(statedir_erase_key(f.a));
        ASSERT_OK(statedir_destroy(f.a));
        dir_path = path_join(f.root_path, UUID_A);
        ASSERT_FALSE(exists_at(dir_path));
}

/* A directory lent to a worker's uid: it and its files become the worker's
 * and the workers' group's, and files written afterwards (by the worker,
 * under its own uid) are group-readable for the supervisor. */
TEST(lend_gives_the_directory_and_its_files_to_a_worker) {
        if (geteuid() != 0)
                TEST_SKIP("statedir_lend needs root to give files to another uid");
        _cleanup_fx_ Fx f;
        struct stat st;

        ASSERT_OK(fx_init(&f));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_DATA_KEY, key1, 1, "k", 1));
        /* Something the store never made is left alone, and is no error. */
        _cleanup_free_ char *link = fx_file(&f, "stray-link");
        ASSERT_OK(symlink("/etc/passwd", link));
        ASSERT_OK(statedir_lend(f.a, 300999, 300998));
        ASSERT_OK(lstat(link, &st));
        ASSERT_EQ(st.st_uid, 0);
        _cleanup_free_ char *key = fx_file(&f, "key");
        ASSERT_OK(stat(key, &st));
        ASSERT_EQ(st.st_uid, 300999);
        ASSERT_EQ(st.st_gid, 300998);
        ASSERT_EQ(st.st_mode & 07777, 0660);
        _cleanup_free_ char *dir = path_join(f.root_path, UUID_A);
        ASSERT_OK(stat(dir, &st));
        ASSERT_EQ(st.st_uid, 300999);
        ASSERT_EQ(st.st_gid, 300998);
        ASSERT_EQ(st.st_mode & 07777, 0770);

        ASSERT_OK(statedir_write(f.a, STATE_KIND_META, key1, 2, "m", 1));
        _cleanup_free_ char *meta = fx_file(&f, "meta");
        ASSERT_OK(stat(meta, &st));
        ASSERT_EQ(st.st_mode & 07777, 0660);
}

/* ---- fixed files: the disk budget (statedir_fix_files) ---- */

static unsigned regular_files_in(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        unsigned n = 0;
        if (fd < 0)
                return 0;
        DIR *d = fdopendir(TAKE_FD(fd));
        for (struct dirent *de; d && (de = readdir(d));) {
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
                        n++;
        }
        if (d)
                closedir(d);
        return n;
}

static off_t size_of(const char *path) {
        struct stat st;
        return lstat(path, &st) < 0 ? -1 : st.st_size;
}

TEST(fixed_files_writes_and_removals_create_no_file) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *dir = NULL, *tmpf = NULL, *spare0 = NULL;
        _cleanup_free_ uint8_t *out = NULL;
        size_t len;
        uint64_t seq;

        ASSERT_OK(fx_init(&f));
        dir = path_join(f.root_path, UUID_A);
        ASSERT_OK(statedir_write(f.a, STATE_KIND_DATA_KEY, key1, 1, "k", 1));
        ASSERT_EQ(statedir_fix_files(f.a), 1); /* the test's file system can exchange names */
        unsigned n = regular_files_in(dir);
        ASSERT_EQ(n, 2 + STATEDIR_SPARES); /* .lock, key and the spares */

        /* a fresh vTPM's permall and volatile, written many times, removed and written again */
        for (uint64_t i = 1; i <= 20; i++) {
                char v[32];
                snprintf(v, sizeof(v), "permanent %llu", (unsigned long long) i);
                ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, i, v, strlen(v)));
                if (i % 5 == 0)
                        ASSERT_OK(statedir_write(f.a, STATE_KIND_VOLATILE, key1, i, "vol", 3));
                if (i % 10 == 0)
                        ASSERT_OK(statedir_remove(f.a, STATE_KIND_VOLATILE));
                ASSERT_EQ(regular_files_in(dir), n);
        }
        ASSERT_OK(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, &seq));
        ASSERT_EQ(seq, 20);
        ASSERT_TRUE(len == strlen("permanent 20") && memcmp(out, "permanent 20", len) == 0);
        ASSERT_ERR(statedir_read(f.a, STATE_KIND_VOLATILE, key1, &out, &len, NULL), -ENOENT);
        /* the old contents do not linger: the exchanged-out copy is emptied */
        tmpf = fx_file(&f, "permall.tmp");
        ASSERT_EQ(size_of(tmpf), 0);

        /* no spare left and no tmp to reuse: -EDQUOT, nothing created, the old file intact */
        for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                char name[16];
                snprintf(name, sizeof(name), ".spare-%u", i);
                _cleanup_free_ char *p = fx_file(&f, name);
                (void) unlink(p);
        }
        ASSERT_EQ(unlink(tmpf), 0);
        unsigned before = regular_files_in(dir);
        ASSERT_ERR(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 21, "x", 1), -EDQUOT);
        ASSERT_EQ(regular_files_in(dir), before);
        free(out);
        out = NULL;
        ASSERT_OK(statedir_read(f.a, STATE_KIND_PERMANENT, key1, &out, &len, &seq));
        ASSERT_EQ(seq, 20);

        /* fixing again makes spares again, and empties tmp files and spares it finds */
        ASSERT_EQ(statedir_fix_files(f.a), 1);
        spare0 = fx_file(&f, ".spare-0");
        ASSERT_OK(write_path(spare0, "junk", 4));
        ASSERT_EQ(statedir_fix_files(f.a), 1);
        ASSERT_EQ(size_of(spare0), 0);
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 21, "x", 1));

        /* destroy takes the spares too */
        ASSERT_OK(statedir_erase_key(f.a));
        ASSERT_OK(statedir_destroy(f.a));
        ASSERT_FALSE(exists_at(dir));
}

TEST(fixed_files_make_no_spare_beyond_the_budget) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *dir = NULL;

        ASSERT_OK(fx_init(&f));
        dir = path_join(f.root_path, UUID_A);
        /* what a taken-over worker could leave: its spares renamed away (files of any name) */
        for (unsigned i = 0; i < STATEDIR_FILES_MAX; i++) {
                char name[16];
                snprintf(name, sizeof(name), "junk-%u", i);
                _cleanup_free_ char *p = fx_file(&f, name);
                ASSERT_OK(write_path(p, "j", 1));
        }
        unsigned n = regular_files_in(dir);
        ASSERT_EQ(statedir_fix_files(f.a), 1); /* still fixed: the probe files come and go */
        ASSERT_EQ(regular_files_in(dir), n);
        ASSERT_ERR(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "x", 1), -EDQUOT);
        ASSERT_EQ(regular_files_in(dir), n);
}

TEST(top_up_makes_the_spares_again_within_the_budget) {
        _cleanup_fx_ Fx f;
        _cleanup_free_ char *dir = NULL;

        ASSERT_OK(fx_init(&f));
        dir = path_join(f.root_path, UUID_A);
        ASSERT_EQ(statedir_fix_files(f.a), 1);
        unsigned n = regular_files_in(dir);
        ASSERT_EQ(statedir_top_up_spares(f.a, getuid(), getgid()), 0); /* all there: nothing to do */

        /* writes of new names take spares; the top-up makes them again */
        ASSERT_OK(statedir_write(f.a, STATE_KIND_PERMANENT, key1, 1, "p", 1));
        ASSERT_OK(statedir_write(f.a, STATE_KIND_VOLATILE, key1, 1, "v", 1));
        ASSERT_EQ(regular_files_in(dir), n);
        ASSERT_EQ(statedir_top_up_spares(f.a, getuid(), getgid()), 2);
        ASSERT_EQ(regular_files_in(dir), n + 2);
        for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                char name[16];
                snprintf(name, sizeof(name), ".spare-%u", i);
                _cleanup_free_ char *p = fx_file(&f, name);
                ASSERT_TRUE(exists_at(p));
        }

        /* a hoarding worker gets spares only up to the budget */
        for (unsigned round = 0; round < 2 * STATEDIR_FILES_MAX; round++) {
                for (unsigned i = 0; i < STATEDIR_SPARES; i++) {
                        char from[16], to[32];
                        snprintf(from, sizeof(from), ".spare-%u", i);
                        snprintf(to, sizeof(to), "hoard-%u-%u", round, i);
                        _cleanup_free_ char *a = fx_file(&f, from), *b = fx_file(&f, to);
                        (void) rename(a, b);
                }
                ASSERT_TRUE(statedir_top_up_spares(f.a, getuid(), getgid()) >= 0);
                ASSERT_TRUE(regular_files_in(dir) <= STATEDIR_FILES_MAX);
        }
        ASSERT_EQ(regular_files_in(dir), STATEDIR_FILES_MAX);
}
