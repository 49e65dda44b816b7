/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated grant tables across real processes: a forked peer is the guest
 * that shares pages (or another domain that maps them), driven over pipes.
 */
#include <stdint.h>
#include <stdlib.h>

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

/* In a peer's process: its handles, the pages it shares (by ref) and maps (by slot). */
static Gntshr *peer_gntshr;
static Gnttab *peer_gnttab;
static uint8_t *shared[VTPM_SIM_GRANT_REFS];
static uint8_t *mapped[MAX_PAGES];
static int n_mapped;

static int peer_open(Platform *p) {
        int r = gntshr_open(p, &peer_gntshr);
        return r < 0 ? r : gnttab_open(p, &peer_gnttab);
}

static int32_t peer_handle(const int32_t m[4]) {
        int32_t r = -EINVAL;
        uint32_t ref;
        void *addr;
        bool ref_ok = m[1] >= 0 && (uint32_t) m[1] < VTPM_SIM_GRANT_REFS && shared[m[1]];
        bool off_ok = m[2] >= 0 && m[2] < (int32_t) VTPM_XEN_PAGE_SIZE;

        switch (m[0]) {
        case OP_SHARE:
                r = gntshr_share(peer_gntshr, (uint32_t) m[1], m[2] != 0, &ref, &addr);
                if (r >= 0) {
                        shared[ref] = addr;
                        r = (int32_t) ref;
                }
                break;
        case OP_UNSHARE:
                if (ref_ok) {
                        r = gntshr_unshare(peer_gntshr, shared[m[1]]);
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
                        r = gnttab_map(peer_gnttab, (uint32_t) m[1], (uint32_t) m[2], m[3] != 0, &addr);
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
        return r;
}

static const SimPeerOps peer_ops = { peer_open, peer_handle };

/* ---- tests ---- */

TEST(writes_visible_both_ways) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_TRUE(ref >= 8); /* Linux's reserved refs are never handed out */
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 10, 0x5a));

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        ASSERT_EQ(page[0], 0);
        ASSERT_EQ(page[10], 0x5a);
        ASSERT_EQ(page[VTPM_XEN_PAGE_SIZE - 1], 0);

        page[4095] = 0xa5;
        ASSERT_EQ(simpeer_call(g, OP_PEEK, ref, 4095, 0), 0xa5);
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 4, 3));
        ASSERT_EQ(page[4], 3);

        /* Two grants are two different pages. */
        int32_t ref2 = simpeer_call(g, OP_SHARE, 0, 1, 0);
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
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
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
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *other = &f.peer[1];
        int32_t ref = simpeer_call(g, OP_SHARE, OTHER_GUEST, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 0, 77));

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EPERM);
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, false, &a), -EPERM);
        /* The domain it was granted to can map it. */
        int32_t slot = simpeer_call(other, OP_MAP, GUEST, ref, 1);
        ASSERT_OK(slot);
        ASSERT_EQ(simpeer_call(other, OP_MPEEK, slot, 0, 0), 77);
}

TEST(read_only_grant) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 0, 0);
        ASSERT_OK(ref);
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 100, 9));

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EACCES);
        const uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, false, (void **) &page));
        ASSERT_EQ(page[100], 9);
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 100, 10));
        ASSERT_EQ(page[100], 10);
        ASSERT_OK(gnttab_unmap(gt, (void *) page));
}

TEST(unshare_revokes_existing_mapping_stays) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        page[1] = 42;

        ASSERT_OK(simpeer_call(g, OP_UNSHARE, ref, 0, 0));
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a), -EINVAL);
        /* Our mapping still works until we unmap. */
        ASSERT_EQ(page[1], 42);
        page[2] = 43;
        ASSERT_EQ(page[2], 43);

        /* The next share gets another ref (Linux holds a ref back while the
         * peer still maps it, so a resumed frontend publishes a new ring-ref)
         * and a new, zeroed page. */
        int32_t ref2 = simpeer_call(g, OP_SHARE, 0, 1, 0);
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
        int32_t ref3 = simpeer_call(g, OP_SHARE, 0, 1, 0);
        ASSERT_EQ(ref3, ref);
}

TEST(killed_granter_revokes) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        int32_t ref2 = simpeer_call(g, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(ref2);
        ASSERT_OK(simpeer_call(g, OP_POKE, ref, 0, 11));

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));

        simpeer_kill(g);
        void *a;
        ASSERT_ERR(gnttab_map(gt, GUEST, (uint32_t) ref2, true, &a), -EINVAL);
        ASSERT_EQ(page[0], 11);
        ASSERT_OK(gnttab_unmap(gt, page));
}

TEST(destroy_domain_revokes_grants) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *other = &f.peer[1];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        int32_t ref2 = simpeer_call(g, OP_SHARE, 0, 1, 0);
        int32_t oref = simpeer_call(other, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(ref2);
        ASSERT_OK(oref);

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        uint8_t *page = NULL;
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, (void **) &page));
        page[7] = 7;

        ASSERT_OK(platform_sim_destroy_domain(f.dom0, GUEST));
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
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *other = &f.peer[1];
        int32_t ref = simpeer_call(g, OP_SHARE, 0, 1, 0);
        int32_t oref = simpeer_call(other, OP_SHARE, 0, 1, 0);
        ASSERT_OK(ref);
        ASSERT_OK(oref);

        _cleanup_gnttab_ Gnttab *gt = NULL;
        ASSERT_OK(gnttab_open(f.dom0, &gt));
        void *a;
        ASSERT_OK(gnttab_restrict(gt, GUEST));
        ASSERT_ERR(gnttab_restrict(gt, OTHER_GUEST), -EPERM);
        ASSERT_ERR(gnttab_map(gt, OTHER_GUEST, (uint32_t) oref, true, &a), -EPERM);
        ASSERT_OK(gnttab_map(gt, GUEST, (uint32_t) ref, true, &a));
        ASSERT_OK(gnttab_unmap(gt, a));
}
