/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated grant tables across real processes: a forked peer is the guest
 * that shares pages (or another domain that maps them), driven over pipes.
 */
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gnttab.h"
#include "platform.h"
#include "simdir.h"
#include "test.h"

#define GUEST 5u
#define OTHER_GUEST 6u
#define MAX_PAGES 16

/* ---- helpers ---- */

static void gnttabp(Gnttab **g) {
        gnttab_close(*g);
}
#define _cleanup_gnttab_ __attribute__((cleanup(gnttabp)))

/* ---- a peer process with one Gntshr and one Gnttab ---- */

enum {
        OP_SHARE,   /* a = domid, b = writable -> ref */
        OP_UNSHARE, /* a = ref */
        OP_PEEK,    /* a = ref, b = offset -> byte */
        OP_POKE,    /* a = ref, b = offset, c = value */
        OP_MAP,     /* a = domid, b = ref, c = writable -> slot */
        OP_MPEEK,   /* a = slot, b = offset -> byte */
};

typedef struct Peer {
        pid_t pid;
        int cmd;
        int rep;
} Peer;

static void peer_serve(const char *simdir, uint32_t domid, int cmd, int rep) {
        SimDir d;
        snprintf(d.path, sizeof(d.path), "%s", simdir);
        Platform *p = plat(&d, domid);
        Gntshr *s = NULL;
        Gnttab *g = NULL;
        if (!p || gntshr_open(p, &s) < 0 || gnttab_open(p, &g) < 0)
                _exit(2);
        uint8_t *shared[VTPM_SIM_GRANT_REFS] = { NULL };
        uint8_t *mapped[MAX_PAGES] = { NULL };
        int n_mapped = 0;
        int32_t m[4];
        while (read(cmd, m, sizeof(m)) == (ssize_t) sizeof(m)) {
                int32_t r = -EINVAL;
                uint32_t ref;
                void *addr;
                bool ref_ok = m[1] >= 0 && (uint32_t) m[1] < VTPM_SIM_GRANT_REFS && shared[m[1]];
                bool off_ok = m[2] >= 0 && m[2] < (int32_t) VTPM_XEN_PAGE_SIZE;
                switch (m[0]) {
                case OP_SHARE:
                        r = gntshr_share(s, (uint32_t) m[1], m[2] != 0, &ref, &addr);
                        if (r >= 0) {
                                shared[ref] = addr;
                                r = (int32_t) ref;
                        }
                        break;
                case OP_UNSHARE:
                        if (ref_ok) {
                                r = gntshr_unshare(s, shared[m[1]]);
                                shared[m[1]] = NULL;
                        }
                        break;
                case OP_PEEK:
                        if (ref_ok && off_ok)
                                r = shared[m[1]][m[2]];
                        break;
                case OP_POKE:
                        if (ref_ok && off_ok) {
                                shared[m[1]][m[2]] = (uint8_t) m[3];
                                r = 0;
                        }
                        break;
                case OP_MAP:
                        if (n_mapped < MAX_PAGES) {
                                r = gnttab_map(g, (uint32_t) m[1], (uint32_t) m[2], m[3] != 0, &addr);
                                if (r >= 0) {
                                        mapped[n_mapped] = addr;
                                        r = n_mapped++;
                                }
                        }
                        break;
                case OP_MPEEK:
                        if (m[1] >= 0 && m[1] < n_mapped && off_ok)
                                r = mapped[m[1]][m[2]];
                        break;
                }
                if (write(rep, &r, sizeof(r)) != (ssize_t) sizeof(r))
                        break;
        }
        _exit(0);
}

/* Forks before the caller opens any handle, so the child inherits none. */
static int peer_start(const SimDir *d, uint32_t domid, Peer *ret) {
        int c[2], r[2];
        if (pipe2(c, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(r, O_CLOEXEC) < 0) {
                close(c[0]);
                close(c[1]);
                return -errno;
        }
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(c[1]);
                close(r[0]);
                peer_serve(d->path, domid, c[0], r[1]);
        }
        close(c[0]);
        close(r[1]);
        *ret = (Peer){ .pid = pid, .cmd = c[1], .rep = r[0] };
        return 0;
}

static void peer_kill(Peer *p) {
        if (p->pid > 0) {
                kill(p->pid, SIGKILL);
                waitpid(p->pid, NULL, 0);
                p->pid = 0;
        }
        if (p->cmd >= 0)
                close(p->cmd);
        if (p->rep >= 0)
                close(p->rep);
        p->cmd = p->rep = -1;
}
#define _cleanup_peer_ __attribute__((cleanup(peer_kill)))

static int32_t peer_call(Peer *p, int32_t op, int32_t a, int32_t b, int32_t c) {
        int32_t m[4] = { op, a, b, c };
        if (write(p->cmd, m, sizeof(m)) != (ssize_t) sizeof(m))
                return -EPIPE;
        struct pollfd pfd = { .fd = p->rep, .events = POLLIN };
        if (poll(&pfd, 1, 5000) != 1)
                return -ETIMEDOUT;
        int32_t r;
        if (read(p->rep, &r, sizeof(r)) != (ssize_t) sizeof(r))
                return -EPIPE;
        return r;
}

/* ---- tests ---- */

TEST(writes_visible_both_ways) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_TRUE(ref >= 8); /* Linux's reserved refs are never handed out */
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 10, 0x5a));

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        ASSERT_EQ(page[0], 0);
        ASSERT_EQ(page[10], 0x5a);
        ASSERT_EQ(page[VTPM_XEN_PAGE_SIZE - 1], 0);

        page[4095] = 0xa5;
        ASSERT_EQ(peer_call(&g, OP_PEEK, ref, 4095, 0), 0xa5);
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 4, 3));
        ASSERT_EQ(page[4], 3);

        /* Two grants are two different pages. */
        int32_t ref2 = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref2);
        ASSERT_TRUE(ref2 != ref);
        uint8_t *page2 = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref2, true, (void **) &page2));
        ASSERT_EQ(page2[10], 0);

        ASSERT_OK(gnttab_unmap(gt, page));
        ASSERT_ERR(gnttab_unmap(gt, page), -EINVAL);
        ASSERT_OK(gnttab_unmap(gt, page2));
}

TEST(map_unknown_ref_fails) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref + 1, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_map(gt, GUEST, 0, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_map(gt, GUEST, VTPM_SIM_GRANT_REFS, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_map(gt, GUEST, UINT32_MAX, true, &a), -EINVAL);
        /* A domain that granted nothing, and one that cannot exist. */
        ASSERT_ERR(gnttab_map(gt, 42, (uint32_t) ref, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_map(gt, 0x7ff0, (uint32_t) ref, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_unmap(gt, &a), -EINVAL);
}

TEST(map_of_grant_to_other_domain_fails) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        _cleanup_peer_ Peer other = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        ASSERT_OK(peer_start(&d, OTHER_GUEST, &other));
        int32_t ref = peer_call(&g, OP_SHARE, OTHER_GUEST, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 0, 77));

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EPERM);
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, false, &a), -EPERM);
        /* The domain it was granted to can map it. */
        int32_t slot = peer_call(&other, OP_MAP, GUEST, ref, 1);
        ASSERT_OK(slot);
        ASSERT_EQ(peer_call(&other, OP_MPEEK, slot, 0, 0), 77);
}

TEST(read_only_grant) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 0, 0);
        ASSERT_OK(ref);
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 100, 9));

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EACCES);
        const uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, false, (void **) &page));
        ASSERT_EQ(page[100], 9);
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 100, 10));
        ASSERT_EQ(page[100], 10);
        ASSERT_OK(gnttab_unmap(gt, (void *) page));
}

TEST(unshare_revokes_existing_mapping_stays) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        page[1] = 42;

        ASSERT_OK(peer_call(&g, OP_UNSHARE, ref, 0, 0));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EINVAL);
        /* Our mapping still works until we unmap. */
        ASSERT_EQ(page[1], 42);
        page[2] = 43;
        ASSERT_EQ(page[2], 43);

        /* The next share gets another ref (Linux holds a ref back while the
         * peer still maps it, so a resumed frontend publishes a new ring-ref)
         * and a new, zeroed page. */
        int32_t ref2 = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref2);
        ASSERT_TRUE(ref2 != ref);
        uint8_t *page2 = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref2, true, (void **) &page2));
        ASSERT_EQ(page2[1], 0);
        page2[1] = 1;
        ASSERT_EQ(page[1], 42);
        ASSERT_OK(gnttab_unmap(gt, page));
        ASSERT_OK(gnttab_unmap(gt, page2));

        /* Once nobody maps the revoked page, its ref is the lowest free one
         * again: a frontend re-attached after a detach publishes the same
         * ring-ref, as real Xen showed (tests/xen). */
        int32_t ref3 = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_EQ(ref3, ref);
}

TEST(killed_granter_revokes) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        int32_t ref2 = peer_call(&g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(ref2);
        ASSERT_OK(peer_call(&g, OP_POKE, ref, 0, 11));

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));

        peer_kill(&g);
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref2, true, &a), -EINVAL);
        ASSERT_EQ(page[0], 11);
        ASSERT_OK(gnttab_unmap(gt, page));
}

TEST(destroy_domain_revokes_grants) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        _cleanup_peer_ Peer other = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        ASSERT_OK(peer_start(&d, OTHER_GUEST, &other));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        int32_t ref2 = peer_call(&g, OP_SHARE, 0, 1, 0);
        int32_t oref = peer_call(&other, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(ref2);
        ASSERT_OK(oref);

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        page[7] = 7;

        ASSERT_OK(platform_sim_destroy_domain(p, GUEST));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref2, true, &a), -EINVAL);
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EINVAL);
        /* Like a zombie domain's page: still ours until we unmap. */
        ASSERT_EQ(page[7], 7);
        ASSERT_OK(gnttab_unmap(gt, page));
        /* Other domains keep their grants. */
        ASSERT_OK(gnttab_map(gt, OTHER_GUEST, (uint32_t) oref, true, &a));
        ASSERT_OK(gnttab_unmap(gt, a));
}

TEST(restrict_limits_maps) {
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        _cleanup_peer_ Peer g = { .cmd = -1, .rep = -1 };
        _cleanup_peer_ Peer other = { .cmd = -1, .rep = -1 };
        ASSERT_OK(peer_start(&d, GUEST, &g));
        ASSERT_OK(peer_start(&d, OTHER_GUEST, &other));
        int32_t ref = peer_call(&g, OP_SHARE, 0, 1, 0);
        int32_t oref = peer_call(&other, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(oref);

        _cleanup_platform_ Platform *p = plat(&d, 0);
        ASSERT_TRUE(p);
        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(p, &gt));
        void *a;
        ASSERT_OK(gnttab_restrict(gt, GUEST));
        ASSERT_ERR(gnttab_restrict(gt, OTHER_GUEST), -EPERM);
        ASSERT_ERR(gnttab_map(gt, OTHER_GUEST, (uint32_t) oref, true, &a), -EPERM);
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a));
        ASSERT_OK(gnttab_unmap(gt, a));
}
