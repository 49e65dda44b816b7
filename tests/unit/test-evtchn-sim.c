/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated event channels across real processes: a forked peer acts as the
 * guest (or as a backend that gets killed), driven over pipes. Every rule of
 * evtchn.h is checked here; notify is synchronous (the wakeup is queued when
 * notify returns), so "not delivered" is checked right after a pipe round
 * trip, without waiting.
 */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evtchn.h"
#include "platform.h"
#include "simdir.h"
#include "test.h"

#define GUEST 5u
#define OTHER_GUEST 6u

/* ---- helpers ---- */

static void evtchnp(Evtchn **e) {
        evtchn_close(*e);
}
#define _cleanup_evtchn_ __attribute__((cleanup(evtchnp)))

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll the fd, then pending(); -ETIMEDOUT if nothing within timeout_ms. */
static int wait_event(Evtchn *e, int timeout_ms, uint32_t *ret_port) {
        int64_t deadline = now_ms() + timeout_ms;
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left < 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = { .fd = evtchn_fd(e), .events = POLLIN };
                int n = poll(&pfd, 1, (int) left);
                if (n < 0 && errno != EINTR)
                        return -errno;
                if (n <= 0)
                        continue;
                int r = evtchn_pending(e, ret_port);
                if (r != -EAGAIN)
                        return r;
        }
}

static bool fd_readable(Evtchn *e) {
        struct pollfd pfd = { .fd = evtchn_fd(e), .events = POLLIN };
        return poll(&pfd, 1, 0) == 1;
}

/* ---- a peer process that owns one Evtchn handle ---- */

enum {
        OP_ALLOC,    /* a = remote domid -> port */
        OP_BIND,     /* a = domid, b = remote port -> local port */
        OP_NOTIFY,   /* a = port */
        OP_WAIT,     /* a = timeout ms -> port (event left masked) */
        OP_PENDING,  /* -> port or -EAGAIN, no waiting */
        OP_UNMASK,   /* a = port */
        OP_UNBIND,   /* a = port */
        OP_CLOSE,    /* close the handle */
};

static Evtchn *peer_evtchn; /* in a peer's process */

static int peer_open(Platform *p) {
        return evtchn_open(p, &peer_evtchn);
}

static int32_t peer_handle(const int32_t m[4]) {
        Evtchn *e = peer_evtchn;
        uint32_t port = 0;
        int32_t r;

        switch (m[0]) {
        case OP_ALLOC:
                r = evtchn_bind_unbound(e, (uint32_t) m[1], &port);
                break;
        case OP_BIND:
                r = evtchn_bind_interdomain(e, (uint32_t) m[1], (uint32_t) m[2], &port);
                break;
        case OP_NOTIFY:
                r = evtchn_notify(e, (uint32_t) m[1]);
                break;
        case OP_WAIT:
                r = wait_event(e, m[1], &port);
                break;
        case OP_PENDING:
                r = evtchn_pending(e, &port);
                break;
        case OP_UNMASK:
                r = evtchn_unmask(e, (uint32_t) m[1]);
                break;
        case OP_UNBIND:
                r = evtchn_unbind(e, (uint32_t) m[1]);
                break;
        case OP_CLOSE:
                peer_evtchn = evtchn_close(e);
                r = 0;
                break;
        default:
                r = -EINVAL;
        }
        if (r >= 0 && (m[0] == OP_ALLOC || m[0] == OP_BIND || m[0] == OP_WAIT || m[0] == OP_PENDING))
                r = (int32_t) port;
        return r;
}

static const SimPeerOps peer_ops = { peer_open, peer_handle };

static int32_t peer_call(SimPeer *p, int32_t op, int32_t a, int32_t b) {
        return simpeer_call(p, op, a, b, 0);
}

/* Backend (this process, dom0) binds the guest's port and consumes the
 * event every fresh binding starts with. */
static int bind_and_settle(Evtchn *e, uint32_t gport, uint32_t *ret_lp) {
        uint32_t lp, ev;
        int r = evtchn_bind_interdomain(e, GUEST, gport, &lp);
        if (r < 0)
                return r;
        r = wait_event(e, 2000, &ev);
        if (r < 0)
                return r;
        if (ev != lp)
                return -EBADMSG;
        r = evtchn_unmask(e, lp);
        if (r < 0)
                return r;
        *ret_lp = lp;
        return 0;
}

/* ---- platform ---- */

TEST(platform_parse_forms) {
        Platform *p = NULL;
        ASSERT_ERR(platform_parse("", 0, &p), -EINVAL);
        ASSERT_ERR(platform_parse("sim:", 0, &p), -EINVAL);
        ASSERT_ERR(platform_parse("simulated", 0, &p), -EINVAL);
        ASSERT_ERR(platform_parse("XEN", 0, &p), -EINVAL);
        ASSERT_ERR(platform_parse("sim:/tmp", 0x7ff0, &p), -EINVAL);

        ASSERT_OK(platform_parse("sim:relative/dir", 3, &p));
        ASSERT_EQ(p->kind, PLATFORM_SIM);
        ASSERT_EQ(p->self_domid, 3);
        ASSERT_TRUE(p->sim_dir[0] == '/');
        char want[4200];
        char *cwd = getcwd(NULL, 0);
        snprintf(want, sizeof(want), "sim:%s/relative/dir", cwd);
        free(cwd);
        ASSERT_STREQ(platform_describe(p), want);
        p = platform_free(p);

        /* Built with or without libxen: either works or says so. */
        int r = platform_parse("xen", 0, &p);
        if (r == -EOPNOTSUPP)
                return;
        ASSERT_OK(r);
        ASSERT_EQ(p->kind, PLATFORM_XEN);
        ASSERT_STREQ(platform_describe(p), "xen");
        ASSERT_ERR(platform_sim_destroy_domain(p, 1), -EOPNOTSUPP);
        p = platform_free(p);
}

/* ---- binding ---- */

TEST(bind_returns_local_port_and_starts_pending) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        ASSERT_TRUE(gport > 0);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp = 0, ev = 0;
        ASSERT_OK(evtchn_bind_interdomain(e, GUEST, (uint32_t) gport, &lp));
        ASSERT_TRUE(lp != (uint32_t) gport);

        /* Pending at once, without anybody notifying. */
        ASSERT_TRUE(fd_readable(e));
        ASSERT_OK(evtchn_pending(e, &ev));
        ASSERT_EQ(ev, lp);
        ASSERT_OK(evtchn_unmask(e, lp));
        ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);

        /* Both directions work with the right port numbers. */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp);
        ASSERT_OK(evtchn_unmask(e, lp));
        ASSERT_OK(evtchn_notify(e, lp));
        ASSERT_EQ(peer_call(g, OP_WAIT, 2000, 0), gport);

        /* The local port is ours, not the guest's. */
        ASSERT_ERR(evtchn_notify(e, (uint32_t) gport), -ENOTCONN);
}

TEST(bind_requires_port_unbound_for_us) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, 0));
        SimPeer *g = &f.peer[0], *b1 = &f.peer[1];
        int32_t for_other = peer_call(g, OP_ALLOC, 7, 0);
        int32_t for_us = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(for_other);
        ASSERT_OK(for_us);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp;
        /* Unbound, but for domain 7. */
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, (uint32_t) for_other, &lp), -EINVAL);
        /* Never allocated. */
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, (uint32_t) for_us + 100, &lp), -EINVAL);
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, 0, &lp), -EINVAL);
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, VTPM_SIM_EVTCHN_PORTS, &lp), -EINVAL);
        /* No such domain. */
        ASSERT_ERR(evtchn_bind_interdomain(e, 42, (uint32_t) for_us, &lp), -ESRCH);
        /* Already bound by a live backend. */
        ASSERT_OK(peer_call(b1, OP_BIND, GUEST, for_us));
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, (uint32_t) for_us, &lp), -EINVAL);
}

/* ---- delivery ---- */

TEST(pending_masks_until_unmask) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp, ev;
        ASSERT_OK(evtchn_bind_interdomain(e, GUEST, (uint32_t) gport, &lp));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp);

        /* Masked now: two notifications are held back... */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);
        ASSERT_FALSE(fd_readable(e));

        /* ...and come back as one event after unmask. */
        ASSERT_OK(evtchn_unmask(e, lp));
        ASSERT_TRUE(fd_readable(e));
        ASSERT_OK(evtchn_pending(e, &ev));
        ASSERT_EQ(ev, lp);
        ASSERT_OK(evtchn_unmask(e, lp));
        ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);

        /* Unmasked with nothing pending: the next notify is delivered. */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp);

        ASSERT_ERR(evtchn_unmask(e, lp + 1), -EINVAL);
}

TEST(notify_before_bind_is_dropped) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        /* Nobody bound yet: no error, nothing queued anywhere. */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp, ev;
        ASSERT_OK(evtchn_bind_interdomain(e, GUEST, (uint32_t) gport, &lp));
        /* Only the event every binding starts with. */
        ASSERT_OK(evtchn_pending(e, &ev));
        ASSERT_EQ(ev, lp);
        ASSERT_OK(evtchn_unmask(e, lp));
        ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);
        ASSERT_FALSE(fd_readable(e));
        /* The guest got nothing from our bind. */
        ASSERT_ERR(peer_call(g, OP_PENDING, 0, 0), -EAGAIN);
}

TEST(many_ports_all_delivered) {
        /* More ports than a datagram queue holds (max_dgram_qlen is often
         * 10): wakeups can be dropped, events must not be. */
        enum { N = 40 };
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST));
        SimPeer *g = &f.peer[0];
        int32_t gport[N];
        for (int i = 0; i < N; i++) {
                gport[i] = peer_call(g, OP_ALLOC, 0, 0);
                ASSERT_OK(gport[i]);
        }

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp[N];
        for (int i = 0; i < N; i++)
                ASSERT_OK(evtchn_bind_interdomain(e, GUEST, (uint32_t) gport[i], &lp[i]));

        for (int round = 0; round < 2; round++) {
                bool seen[VTPM_SIM_EVTCHN_PORTS] = { false };
                for (int i = 0; i < N; i++) {
                        uint32_t ev;
                        ASSERT_OK(wait_event(e, 2000, &ev));
                        ASSERT_TRUE(ev < VTPM_SIM_EVTCHN_PORTS);
                        ASSERT_FALSE(seen[ev]);
                        seen[ev] = true;
                }
                for (int i = 0; i < N; i++) {
                        ASSERT_TRUE(seen[lp[i]]);
                        ASSERT_OK(evtchn_unmask(e, lp[i]));
                }
                uint32_t ev;
                ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);
                /* Second round: the guest notifies every port. */
                if (round == 0)
                        for (int i = 0; i < N; i++)
                                ASSERT_OK(peer_call(g, OP_NOTIFY, gport[i], 0));
        }
}

/* ---- re-attaching ---- */

TEST(unbind_returns_guest_port_to_unbound) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, 0));
        SimPeer *g = &f.peer[0], *b2 = &f.peer[1];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp;
        ASSERT_OK(bind_and_settle(e, (uint32_t) gport, &lp));
        ASSERT_OK(evtchn_unbind(e, lp));
        ASSERT_ERR(evtchn_unbind(e, lp), -ENOTCONN);
        ASSERT_ERR(evtchn_notify(e, lp), -ENOTCONN);

        /* The guest's notify goes nowhere, without an error. */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        /* Another process binds the same guest port and gets its event. */
        int32_t lp2 = peer_call(b2, OP_BIND, GUEST, gport);
        ASSERT_OK(lp2);
        ASSERT_EQ(peer_call(b2, OP_WAIT, 2000, 0), lp2);
        ASSERT_OK(peer_call(b2, OP_UNMASK, lp2, 0));
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_EQ(peer_call(b2, OP_WAIT, 2000, 0), lp2);

        /* Closing the handle unbinds too: we can bind it again. */
        ASSERT_OK(peer_call(b2, OP_CLOSE, 0, 0));
        ASSERT_OK(bind_and_settle(e, (uint32_t) gport, &lp));
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        uint32_t ev;
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp);
}

TEST(killed_backend_releases_guest_port) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, 0, 0));
        SimPeer *g = &f.peer[0], *b1 = &f.peer[1], *b2 = &f.peer[2];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        int32_t lp1 = peer_call(b1, OP_BIND, GUEST, gport);
        ASSERT_OK(lp1);
        ASSERT_EQ(peer_call(b1, OP_WAIT, 2000, 0), lp1);
        /* Bound by a live process: nobody else can have it. */
        ASSERT_ERR(peer_call(b2, OP_BIND, GUEST, gport), -EINVAL);

        simpeer_kill(b1);

        /* Notify to the dead peer is dropped without error, ... */
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        /* ... and a new process binds the same guest port. */
        int32_t lp2 = peer_call(b2, OP_BIND, GUEST, gport);
        ASSERT_OK(lp2);
        ASSERT_EQ(peer_call(b2, OP_WAIT, 2000, 0), lp2);
        ASSERT_OK(peer_call(b2, OP_UNMASK, lp2, 0));
        ASSERT_OK(peer_call(g, OP_NOTIFY, gport, 0));
        ASSERT_EQ(peer_call(b2, OP_WAIT, 2000, 0), lp2);
        ASSERT_OK(peer_call(b2, OP_NOTIFY, lp2, 0));
        ASSERT_EQ(peer_call(g, OP_WAIT, 2000, 0), gport);
}

TEST(notify_to_closed_peer_is_dropped) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *g2 = &f.peer[1];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        int32_t gport2 = peer_call(g2, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        ASSERT_OK(gport2);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp, lp2, ev;
        ASSERT_OK(bind_and_settle(e, (uint32_t) gport, &lp));
        ASSERT_OK(evtchn_bind_interdomain(e, OTHER_GUEST, (uint32_t) gport2, &lp2));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp2);
        ASSERT_OK(evtchn_unmask(e, lp2));

        /* The guest closes its end: ours stays ours, sends vanish. */
        ASSERT_OK(peer_call(g, OP_UNBIND, gport, 0));
        ASSERT_OK(evtchn_notify(e, lp));
        ASSERT_OK(evtchn_notify(e, lp));
        /* The other guest process dies: the same. */
        simpeer_kill(g2);
        ASSERT_OK(evtchn_notify(e, lp2));
        ASSERT_OK(evtchn_notify(e, lp2));
        ASSERT_ERR(evtchn_pending(e, &ev), -EAGAIN);
        ASSERT_OK(evtchn_unbind(e, lp));
        ASSERT_OK(evtchn_unbind(e, lp2));
}

/* ---- restrict ---- */

TEST(restrict_limits_new_bindings) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *g2 = &f.peer[1];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        int32_t gport2 = peer_call(g2, OP_ALLOC, 0, 0);
        int32_t gport2b = peer_call(g2, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        ASSERT_OK(gport2);
        ASSERT_OK(gport2b);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp, lp2, ev;
        /* Bound before the restriction: keeps working after it. */
        ASSERT_OK(evtchn_bind_interdomain(e, OTHER_GUEST, (uint32_t) gport2, &lp2));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_OK(evtchn_unmask(e, lp2));

        ASSERT_ERR(evtchn_restrict(e, 0), -EINVAL);
        ASSERT_OK(evtchn_restrict(e, GUEST));
        ASSERT_ERR(evtchn_restrict(e, OTHER_GUEST), -EACCES);
        ASSERT_ERR(evtchn_bind_interdomain(e, OTHER_GUEST, (uint32_t) gport2b, &lp), -EACCES);
        ASSERT_ERR(evtchn_bind_unbound(e, GUEST, &lp), -EACCES);
        ASSERT_OK(bind_and_settle(e, (uint32_t) gport, &lp));

        ASSERT_OK(peer_call(g2, OP_NOTIFY, gport2, 0));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp2);
        ASSERT_OK(evtchn_notify(e, lp2));
        ASSERT_EQ(peer_call(g2, OP_WAIT, 2000, 0), gport2);
}

/* ---- domain destruction ---- */

TEST(destroy_domain_closes_its_ports) {
        _cleanup_simfx_ SimFx f = {};
        ASSERT_OK(SIMFX_INIT(&f, &peer_ops, GUEST, OTHER_GUEST));
        SimPeer *g = &f.peer[0], *g2 = &f.peer[1];
        int32_t gport = peer_call(g, OP_ALLOC, 0, 0);
        int32_t gport2 = peer_call(g2, OP_ALLOC, 0, 0);
        ASSERT_OK(gport);
        ASSERT_OK(gport2);

        Platform *p = f.dom0;
        _cleanup_evtchn_ Evtchn *e = NULL;
        ASSERT_OK(evtchn_open(p, &e));
        uint32_t lp, lp2, ev;
        ASSERT_OK(bind_and_settle(e, (uint32_t) gport, &lp));
        ASSERT_OK(evtchn_bind_interdomain(e, OTHER_GUEST, (uint32_t) gport2, &lp2));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_OK(evtchn_unmask(e, lp2));

        ASSERT_OK(platform_sim_destroy_domain(p, GUEST));
        /* Our end is unbound: sends are dropped, the domain is gone. */
        ASSERT_OK(evtchn_notify(e, lp));
        ASSERT_ERR(evtchn_bind_interdomain(e, GUEST, (uint32_t) gport, &ev), -ESRCH);
        ASSERT_OK(evtchn_unbind(e, lp));
        /* Destroying a domain twice, or one that never existed, is fine. */
        ASSERT_OK(platform_sim_destroy_domain(p, GUEST));
        ASSERT_OK(platform_sim_destroy_domain(p, 99));

        /* Other domains are untouched. */
        ASSERT_OK(peer_call(g2, OP_NOTIFY, gport2, 0));
        ASSERT_OK(wait_event(e, 2000, &ev));
        ASSERT_EQ(ev, lp2);
        ASSERT_OK(evtchn_notify(e, lp2));
        ASSERT_EQ(peer_call(g2, OP_WAIT, 2000, 0), gport2);
}

/* ---- deep simulation directories ---- */

TEST(long_sim_dir_path) {
        /* Longer than sun_path (108 bytes): sockets go through the dir fd. */
        _cleanup_simdir_ SimDir d = { "" };
        ASSERT_OK(simdir_make(&d));
        char deep[256];
        snprintf(deep, sizeof(deep), "%s/%s", d.path,
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        ASSERT_OK(mkdir(deep, 0755) < 0 ? -errno : 0);
        char spec[300];
        snprintf(spec, sizeof(spec), "sim:%s", deep);
        _cleanup_platform_ Platform *pg = NULL, *p0 = NULL;
        ASSERT_OK(platform_parse(spec, GUEST, &pg));
        ASSERT_OK(platform_parse(spec, 0, &p0));
        _cleanup_evtchn_ Evtchn *eg = NULL, *e0 = NULL;
        ASSERT_OK(evtchn_open(pg, &eg));
        ASSERT_OK(evtchn_open(p0, &e0));
        uint32_t gport, lp, ev;
        ASSERT_OK(evtchn_bind_unbound(eg, 0, &gport));
        ASSERT_OK(evtchn_bind_interdomain(e0, GUEST, gport, &lp));
        ASSERT_OK(wait_event(e0, 2000, &ev));
        ASSERT_EQ(ev, lp);
        ASSERT_OK(evtchn_notify(e0, lp));
        ASSERT_OK(wait_event(eg, 2000, &ev));
        ASSERT_EQ(ev, gport);
}
