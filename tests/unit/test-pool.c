/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A pool's membership (lib/pool.h) with three real swtpms as three hosts'
 * TPMs and one directory as their shared storage: the first host makes the
 * pool, a second asks to join and is admitted, and unlocks the same pool key
 * with its own TPM; a host that was never admitted, or whose key file is
 * another host's, or that was removed, cannot.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hosttpm-swtpm.h"
#include "pool.h"
#include "test.h"
#include "util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(HostTpmSim *, hosttpm_sim_stop);
DEFINE_TRIVIAL_CLEANUP_FUNC(HostTpm *, host_tpm_close);

typedef struct Host {
        HostTpmSim *sim;
        HostTpm *tpm;
        uint8_t point[POOL_KEY_POINT_SIZE];
        char fp[POOL_KEY_FINGERPRINT_HEX_SIZE];
        Pool *pool;
} Host;

static char pool_dir[] = "/tmp/vtpmd-test-pool-XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

static void host_up(Host *h) {
        *h = (Host){ 0 };
        ASSERT_OK(hosttpm_sim_start(&h->sim));
        HostTpmConfig c = { .tcti = hosttpm_sim_tcti(h->sim) };
        ASSERT_OK(host_tpm_open(&c, &h->tpm));
        ASSERT_OK(host_tpm_transfer_public(h->tpm, h->point));
        ASSERT_OK(pool_key_fingerprint_hex(h->point, h->fp));
        ASSERT_OK(pool_open(pool_dir, &h->pool));
}

static void host_down(Host *h) {
        pool_close(h->pool);
        host_tpm_close(h->tpm);
        hosttpm_sim_stop(h->sim);
}

static bool listed(Pool *p, const char *fp, bool member) {
        PoolHost *v = NULL;
        size_t n = 0;
        bool found = false;

        if (pool_list(p, &v, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                found |= streq(v[i].fp, fp) && v[i].member == member;
        free(v);
        return found;
}

static void copy_file(const char *from, const char *to) {
        char a[512], b[512], buf[512];
        snprintf(a, sizeof(a), "%s/%s", pool_dir, from);
        snprintf(b, sizeof(b), "%s/%s", pool_dir, to);
        int in = open(a, O_RDONLY | O_CLOEXEC), out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(in >= 0 && out >= 0);
        ssize_t n = read(in, buf, sizeof(buf));
        ASSERT_TRUE(n > 0 && write(out, buf, (size_t) n) == n);
        close(in);
        close(out);
}

TEST(init_join_admit_unlock_remove) {
        Host a, b, c;
        uint8_t key_a[POOL_KEY_SIZE], key_b[POOL_KEY_SIZE], key_x[POOL_KEY_SIZE] = { 0 }, zero[POOL_KEY_SIZE] = { 0 };
        char id[POOL_ID_SIZE], name_b[128], name_c[128];

        ASSERT_TRUE(mkdtemp(pool_dir) != NULL);
        host_up(&a);
        host_up(&b);
        host_up(&c);
        ASSERT_TRUE(!streq(a.fp, b.fp) && !streq(b.fp, c.fp));

        /* Before init: no pool, nobody unlocks. */
        ASSERT_ERR(pool_id(a.pool, id), -ENOENT);
        ASSERT_ERR(pool_unlock(a.pool, a.tpm, a.point, key_x), -ENOENT);

        ASSERT_OK(pool_init(a.pool, a.point, key_a));
        ASSERT_TRUE(memcmp(key_a, zero, sizeof(zero)) != 0);
        ASSERT_OK(pool_id(b.pool, id)); /* seen through another host's handle */
        ASSERT_ERR(pool_init(b.pool, b.point, key_x), -EEXIST);
        ASSERT_TRUE(listed(c.pool, a.fp, true));
        /* The first host unlocks what it wrapped to itself, through its TPM. */
        ASSERT_OK(pool_unlock(a.pool, a.tpm, a.point, key_x));
        ASSERT_TRUE(memcmp(key_x, key_a, sizeof(key_a)) == 0);

        /* B is not a member until admitted. */
        ASSERT_ERR(pool_unlock(b.pool, b.tpm, b.point, key_b), -ENOENT);
        ASSERT_OK(pool_request_join(b.pool, b.point));
        ASSERT_TRUE(listed(a.pool, b.fp, false));
        ASSERT_ERR(pool_unlock(b.pool, b.tpm, b.point, key_b), -ENOENT);
        /* Admitting a fingerprint nobody asked with, or a malformed one, does nothing. */
        ASSERT_ERR(pool_admit(a.pool, key_a, c.fp), -ENOENT);
        ASSERT_ERR(pool_admit(a.pool, key_a, "../members/x"), -EINVAL);
        ASSERT_OK(pool_admit(a.pool, key_a, b.fp));
        ASSERT_TRUE(listed(a.pool, b.fp, true));
        ASSERT_TRUE(!listed(a.pool, b.fp, false));
        ASSERT_OK(pool_unlock(b.pool, b.tpm, b.point, key_b));
        ASSERT_TRUE(memcmp(key_b, key_a, sizeof(key_a)) == 0);

        /* C, never admitted, takes B's key file as its own: its TPM cannot open it. */
        snprintf(name_b, sizeof(name_b), "members/%s.key", b.fp);
        snprintf(name_c, sizeof(name_c), "members/%s.key", c.fp);
        copy_file(name_b, name_c);
        ASSERT_ERR(pool_unlock(c.pool, c.tpm, c.point, key_x), -EKEYREJECTED);
        /* A request whose point is not the one its name claims is refused at admission. */
        snprintf(name_b, sizeof(name_b), "members/%s.point", b.fp);
        snprintf(name_c, sizeof(name_c), "requests/%s.point", c.fp);
        copy_file(name_b, name_c);
        ASSERT_ERR(pool_admit(a.pool, key_a, c.fp), -EBADMSG);

        /* B leaves: it cannot unlock any more; A still can. */
        ASSERT_OK(pool_remove(a.pool, b.fp));
        ASSERT_ERR(pool_remove(a.pool, b.fp), -ENOENT);
        ASSERT_ERR(pool_unlock(b.pool, b.tpm, b.point, key_x), -ENOENT);
        ASSERT_OK(pool_unlock(a.pool, a.tpm, a.point, key_x));
        ASSERT_TRUE(memcmp(key_x, key_a, sizeof(key_a)) == 0);

        host_down(&a);
        host_down(&b);
        host_down(&c);
        (void) nftw(pool_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
