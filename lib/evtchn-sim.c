/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Simulated event channels (design and differences from Xen: evtchn.h).
 *
 * Per domain, DIR/hv/evtchn-<domid> is a fixed, mmap'ed port table. Each
 * port is one 64-bit word (state, remote domid, remote port, owning handle)
 * so lock-free readers on the notify path always see a consistent entry;
 * writers change words only under the global flock (DIR/hv/lock). A second
 * array holds a "pending" flag per port, set by the notifier and cleared by
 * the receiver when it delivers; only its 0->1 edge sends a wakeup datagram,
 * so a flood of notifications coalesces like Xen's pending bit and a handle
 * never has more than one wakeup per port queued.
 *
 * The tables and sockets are 0600: a confined worker reaches only the ones it
 * opened before dropping root (docs/security.md).
 *
 * Every handle owns a Unix datagram socket DIR/hv/evh-<id>.sock; it is the
 * pollable fd, and its liveness is how other processes learn that the owner
 * died: connect() to a socket nobody holds any more fails with ECONNREFUSED.
 * Wakeups to its own handle and to the peer it binds go over sockets
 * connected at open and bind time: a confined worker may only send() on
 * connected sockets, never address or connect new ones (lib/confine.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evtchn.h"
#include "parse.h"
#include "util.h"
#include "xenops-internal.h"

#define SIM_TABLE_MAGIC 0x43565456u /* "VTVC" */
#define SIM_TABLE_VERSION 1u

enum {
        PORT_FREE = 0,
        PORT_UNBOUND = 1,
        PORT_INTERDOMAIN = 2,
};

/* Handle ids use 30 bits of the port word; ids are never reused within one
 * simulation directory until the counter wraps. */
#define OWNER_MASK ((UINT64_C(1) << 30) - 1)

typedef struct SimTable {
        uint32_t magic;
        uint32_t version;
        uint32_t destroyed; /* set by destroy_domain before the file is unlinked */
        uint32_t overflow;  /* bumped when a wakeup to one of these ports was dropped */
        uint64_t word[VTPM_SIM_EVTCHN_PORTS];
        uint32_t pending[VTPM_SIM_EVTCHN_PORTS];
} SimTable;

/* The wakeup datagram. The receiver trusts none of it: it only names a port
 * whose binding is re-checked against the table. */
typedef struct SimMsg {
        uint32_t dst_port;
        uint32_t src_domid;
        uint32_t src_port;
} SimMsg;

static inline uint64_t mkword(uint32_t state, uint32_t rdom, uint32_t rport, uint64_t owner) {
        return (uint64_t) (state & 3) | ((uint64_t) (rdom & 0xffff) << 2) | ((uint64_t) (rport & 0xffff) << 18) |
               ((owner & OWNER_MASK) << 34);
}
static inline uint32_t w_state(uint64_t w) {
        return (uint32_t) (w & 3);
}
static inline uint32_t w_rdom(uint64_t w) {
        return (uint32_t) ((w >> 2) & 0xffff);
}
static inline uint32_t w_rport(uint64_t w) {
        return (uint32_t) ((w >> 18) & 0xffff);
}
static inline uint64_t w_owner(uint64_t w) {
        return w >> 34;
}

static inline uint64_t word_load(SimTable *t, uint32_t port) {
        return __atomic_load_n(&t->word[port], __ATOMIC_ACQUIRE);
}
static inline void word_store(SimTable *t, uint32_t port, uint64_t w) {
        __atomic_store_n(&t->word[port], w, __ATOMIC_RELEASE);
}

typedef struct MappedTable {
        uint32_t domid;
        SimTable *table;
} MappedTable;

typedef struct SimCtx {
        int hv_fd;
        char *hv_path; /* may be NULL: then sockets are addressed via /proc/self/fd */
        MappedTable *tables;
        size_t n_tables;
} SimCtx;

enum {
        LOCAL_BOUND = 1 << 0,
        LOCAL_MASKED = 1 << 1,
};

/* Enough for a worker: its own handle and its guest's. */
#define PEER_SOCKS 4

typedef struct PeerSock {
        uint64_t hid;
        int fd;
} PeerSock;

typedef struct EvtchnSim {
        Evtchn base;
        PeerSock peers[PEER_SOCKS];
        size_t n_peers;
        SimCtx ctx;
        int lock_fd;
        int sock_fd;
        uint32_t self;
        uint64_t hid;
        bool restricted;
        uint32_t restrict_domid;
        uint32_t seen_overflow;
        bool scan_needed;
        uint8_t local[VTPM_SIM_EVTCHN_PORTS];
} EvtchnSim;

static EvtchnSim *sim_of(Evtchn *e) {
        return (EvtchnSim *) e;
}

static int table_map(int hv_fd, uint32_t domid, bool create, SimTable **ret) {
        char name[32];
        snprintf(name, sizeof(name), "evtchn-%" PRIu32, domid);

        _cleanup_close_ int fd = openat(hv_fd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        bool fresh = false;
        if (st.st_size == 0 && create) {
                if (ftruncate(fd, sizeof(SimTable)) < 0)
                        return negative_errno();
                fresh = true;
        } else if (st.st_size != (off_t) sizeof(SimTable))
                return -EIO;

        SimTable *t = mmap(NULL, sizeof(SimTable), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (t == MAP_FAILED)
                return negative_errno();
        if (fresh) {
                t->version = SIM_TABLE_VERSION;
                __atomic_store_n(&t->magic, SIM_TABLE_MAGIC, __ATOMIC_RELEASE);
        } else if (__atomic_load_n(&t->magic, __ATOMIC_ACQUIRE) != SIM_TABLE_MAGIC ||
                   t->version != SIM_TABLE_VERSION) {
                munmap(t, sizeof(SimTable));
                return -EIO;
        }
        *ret = t;
        return 0;
}

static void ctx_drop_table(SimCtx *c, size_t i) {
        munmap(c->tables[i].table, sizeof(SimTable));
        c->tables[i] = c->tables[--c->n_tables];
}

static int ctx_table(SimCtx *c, uint32_t domid, bool create, SimTable **ret) {
        for (size_t i = 0; i < c->n_tables; i++) {
                if (c->tables[i].domid != domid)
                        continue;
                if (!__atomic_load_n(&c->tables[i].table->destroyed, __ATOMIC_ACQUIRE)) {
                        *ret = c->tables[i].table;
                        return 0;
                }
                /* The domain was destroyed (and maybe created again). */
                ctx_drop_table(c, i);
                break;
        }

        MappedTable *n = realloc(c->tables, (c->n_tables + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        c->tables = n;
        SimTable *t;
        int r = table_map(c->hv_fd, domid, create, &t);
        if (r < 0)
                return r;
        c->tables[c->n_tables++] = (MappedTable){ .domid = domid, .table = t };
        *ret = t;
        return 0;
}

static void ctx_done(SimCtx *c) {
        while (c->n_tables > 0)
                ctx_drop_table(c, c->n_tables - 1);
        free(c->tables);
        c->tables = NULL;
        free(c->hv_path);
        c->hv_path = NULL;
        c->hv_fd = safe_close(c->hv_fd);
}

static int sock_addr(const SimCtx *c, uint64_t hid, struct sockaddr_un *sa, socklen_t *ret_len) {
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        int n = -1;
        if (c->hv_path)
                n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/evh-%" PRIu64 ".sock", c->hv_path, hid);
        if (n < 0 || (size_t) n >= sizeof(sa->sun_path))
                /* sun_path is 108 bytes; a deep simulation directory still
                 * works through the directory fd. */
                n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/evh-%" PRIu64 ".sock",
                             c->hv_fd, hid);
        if (n < 0 || (size_t) n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + (size_t) n + 1);
        return 0;
}

/* False only when we know the handle is gone: its socket file is missing, or
 * nobody holds the socket any more (then the stale file is removed). */
/* A worker that has given up root (lib/confine.h) can no longer walk the
 * path of the simulation directory (the tests' 0700 temporary directory):
 * from then on it reaches the sockets through its directory fd. */
static bool ctx_path_refused(SimCtx *c) {
        if (errno != EACCES || !c->hv_path)
                return false;
        free(c->hv_path);
        c->hv_path = NULL;
        return true;
}

static bool handle_alive(SimCtx *c, uint64_t hid) {
        struct sockaddr_un sa;
        socklen_t len;
        if (sock_addr(c, hid, &sa, &len) < 0)
                return true;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return true;
        if (connect(fd, (struct sockaddr *) &sa, len) == 0)
                return true;
        if (ctx_path_refused(c) && sock_addr(c, hid, &sa, &len) >= 0 &&
            connect(fd, (struct sockaddr *) &sa, len) == 0)
                return true;
        if (errno == ECONNREFUSED) {
                char name[40];
                snprintf(name, sizeof(name), "evh-%" PRIu64 ".sock", hid);
                (void) unlinkat(c->hv_fd, name, 0);
                return false;
        }
        return errno != ENOENT;
}

/* Xen's evtchn_close: our end becomes free; an interdomain peer goes back to
 * unbound, naming us as the domain that may bind it again. */
static void close_port_locked(SimCtx *c, SimTable *t, uint32_t domid, uint32_t port) {
        uint64_t w = word_load(t, port);
        if (w_state(w) == PORT_INTERDOMAIN) {
                SimTable *rt;
                uint32_t rport = w_rport(w);
                if (rport < VTPM_SIM_EVTCHN_PORTS && ctx_table(c, w_rdom(w), false, &rt) >= 0) {
                        uint64_t rw = word_load(rt, rport);
                        if (w_state(rw) == PORT_INTERDOMAIN && w_rdom(rw) == domid && w_rport(rw) == port)
                                word_store(rt, rport, mkword(PORT_UNBOUND, domid, 0, w_owner(rw)));
                }
        }
        word_store(t, port, 0);
        __atomic_store_n(&t->pending[port], 0, __ATOMIC_RELEASE);
}

typedef struct AliveCache {
        uint64_t hid[16];
        bool alive[16];
        size_t n;
} AliveCache;

static bool alive_cached(SimCtx *c, AliveCache *ac, uint64_t hid) {
        for (size_t i = 0; i < ac->n; i++)
                if (ac->hid[i] == hid)
                        return ac->alive[i];
        bool a = handle_alive(c, hid);
        if (ac->n < ELEMENTSOF(ac->hid)) {
                ac->hid[ac->n] = hid;
                ac->alive[ac->n++] = a;
        }
        return a;
}

/* Closes every port whose owning handle has died, in every domain, and
 * removes the sockets of dead handles: what Linux does when the last
 * reference to an evtchn fd goes away. */
static void sweep_dead_locked(SimCtx *c, uint64_t self_hid) {
        int dfd = openat(c->hv_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        DIR *d = fdopendir(dfd);
        if (!d) {
                safe_close(dfd);
                return;
        }
        AliveCache ac = { .n = 0 };
        struct dirent *de;
        while ((de = readdir(d))) {
                uint32_t domid;
                if (strncmp(de->d_name, "evtchn-", 7) == 0) {
                        if (parse_u32(de->d_name + 7, &domid) < 0 || domid >= VTPM_DOMID_FIRST_RESERVED)
                                continue;
                        SimTable *t;
                        if (ctx_table(c, domid, false, &t) < 0)
                                continue;
                        for (uint32_t p = 1; p < VTPM_SIM_EVTCHN_PORTS; p++) {
                                uint64_t w = word_load(t, p);
                                if (w_state(w) == PORT_FREE || w_owner(w) == self_hid)
                                        continue;
                                if (!alive_cached(c, &ac, w_owner(w)))
                                        close_port_locked(c, t, domid, p);
                        }
                } else if (strncmp(de->d_name, "evh-", 4) == 0) {
                        char *dot = strchr(de->d_name, '.');
                        if (!dot || !streq(dot, ".sock"))
                                continue;
                        _cleanup_free_ char *num = strndup(de->d_name + 4, (size_t) (dot - de->d_name - 4));
                        uint32_t hid;
                        if (!num || parse_u32(num, &hid) < 0 || hid == self_hid)
                                continue;
                        (void) alive_cached(c, &ac, hid);
                }
        }
        closedir(d);
}

/* The first port a domain hands out. Xen domains always have other ports in
 * use (xenstore, console, VIRQs), so a guest's port and the backend's local
 * port almost never have the same number; starting guests higher than dom0
 * makes code that mixes them up fail in the simulation too. */
static uint32_t first_port(uint32_t domid) {
        return domid == 0 ? 1 : 16 + domid % 48;
}

static int alloc_port_locked(SimTable *t, uint32_t domid, uint32_t *ret) {
        uint32_t n = VTPM_SIM_EVTCHN_PORTS - 1, start = first_port(domid);
        for (uint32_t i = 0; i < n; i++) {
                uint32_t p = 1 + (start - 1 + i) % n;
                if (word_load(t, p) == 0) {
                        *ret = p;
                        return 0;
                }
        }
        return -ENOSPC;
}

static int peer_fd(const EvtchnSim *s, uint64_t hid) {
        for (size_t i = 0; i < s->n_peers; i++)
                if (s->peers[i].hid == hid)
                        return s->peers[i].fd;
        return -1;
}

/* Best effort: without it, wakeups to hid go by address (sendto). */
static void peer_connect(EvtchnSim *s, uint64_t hid) {
        if (hid == 0 || s->n_peers >= PEER_SOCKS || peer_fd(s, hid) >= 0)
                return;
        struct sockaddr_un sa;
        socklen_t len;
        if (sock_addr(&s->ctx, hid, &sa, &len) < 0)
                return;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return;
        if (connect(fd, (struct sockaddr *) &sa, len) < 0 &&
            !(ctx_path_refused(&s->ctx) && sock_addr(&s->ctx, hid, &sa, &len) >= 0 &&
              connect(fd, (struct sockaddr *) &sa, len) == 0))
                return;
        s->peers[s->n_peers++] = (PeerSock){ .hid = hid, .fd = TAKE_FD(fd) };
}

/* dst is the table holding dst_port, so a dropped wakeup can be recorded. */
static int send_wakeup(EvtchnSim *s, SimTable *dst, uint64_t hid, uint32_t dst_port, uint32_t src_domid,
                       uint32_t src_port) {
        struct sockaddr_un sa;
        socklen_t len = 0;
        int peer = peer_fd(s, hid), r;
        if (peer < 0) {
                r = sock_addr(&s->ctx, hid, &sa, &len);
                if (r < 0)
                        return r;
        }
        SimMsg m = { .dst_port = dst_port, .src_domid = src_domid, .src_port = src_port };
        for (;;) {
                ssize_t k = peer >= 0 ? send(peer, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL)
                                      : sendto(s->sock_fd, &m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL,
                                               (struct sockaddr *) &sa, len);
                if (k >= 0)
                        return 0;
                if (peer < 0 && ctx_path_refused(&s->ctx)) {
                        r = sock_addr(&s->ctx, hid, &sa, &len);
                        if (r < 0)
                                return r;
                        continue;
                }
                switch (errno) {
                case EINTR:
                        continue;
                case ECONNREFUSED:
                case ENOTCONN: /* a connected peer that died, on the next send */
                case ENOENT:
                        /* The peer died: Xen would have closed its port. */
                        return 0;
                case EAGAIN:
                        /* Its queue is full (Linux allows max_dgram_qlen
                         * datagrams): it is awake anyway, and the bump
                         * makes it scan the pending flags. */
                        __atomic_fetch_add(&dst->overflow, 1, __ATOMIC_ACQ_REL);
                        return 0;
                default:
                        return negative_errno();
                }
        }
}

static Evtchn *sim_close(Evtchn *e) {
        EvtchnSim *s = sim_of(e);
        bool locked = s->lock_fd >= 0 && sim_lock(s->lock_fd, true) >= 0;
        SimTable *own;
        if (locked && ctx_table(&s->ctx, s->self, false, &own) >= 0)
                for (uint32_t p = 1; p < VTPM_SIM_EVTCHN_PORTS; p++) {
                        if (!(s->local[p] & LOCAL_BOUND))
                                continue;
                        uint64_t w = word_load(own, p);
                        if (w_state(w) != PORT_FREE && w_owner(w) == s->hid)
                                close_port_locked(&s->ctx, own, s->self, p);
                }
        if (s->hid != 0 && s->ctx.hv_fd >= 0) {
                char name[40];
                snprintf(name, sizeof(name), "evh-%" PRIu64 ".sock", s->hid);
                (void) unlinkat(s->ctx.hv_fd, name, 0);
        }
        if (locked)
                sim_unlock(s->lock_fd);
        for (size_t i = 0; i < s->n_peers; i++)
                safe_close(s->peers[i].fd);
        safe_close(s->sock_fd);
        safe_close(s->lock_fd);
        ctx_done(&s->ctx);
        free(s);
        return NULL;
}

static int sim_fd(Evtchn *e) {
        return sim_of(e)->sock_fd;
}

static int sim_bind_interdomain(Evtchn *e, uint32_t domid, uint32_t remote_port, uint32_t *ret_local_port) {
        EvtchnSim *s = sim_of(e);
        if (domid >= VTPM_DOMID_FIRST_RESERVED || remote_port == 0 || remote_port >= VTPM_SIM_EVTCHN_PORTS)
                return -EINVAL;
        if (s->restricted && domid != s->restrict_domid)
                return -EACCES;

        int r = sim_lock(s->lock_fd, true);
        if (r < 0)
                return r;

        SimTable *own, *rt;
        uint32_t lp = 0;
        uint64_t peer = 0;
        r = ctx_table(&s->ctx, s->self, false, &own);
        if (r < 0)
                goto out;
        r = ctx_table(&s->ctx, domid, false, &rt);
        if (r < 0)
                goto out;

        uint64_t rw = word_load(rt, remote_port);
        if (w_state(rw) == PORT_INTERDOMAIN && w_rdom(rw) == s->self && w_rport(rw) < VTPM_SIM_EVTCHN_PORTS) {
                /* Bound to a handle of ours that died (a killed daemon):
                 * Linux would have closed it with the fd. */
                uint64_t ow = word_load(own, w_rport(rw));
                if (w_state(ow) == PORT_INTERDOMAIN && w_rdom(ow) == domid && w_rport(ow) == remote_port &&
                    w_owner(ow) != s->hid && !handle_alive(&s->ctx, w_owner(ow))) {
                        close_port_locked(&s->ctx, own, s->self, w_rport(rw));
                        rw = word_load(rt, remote_port);
                }
        } else if (w_state(rw) == PORT_UNBOUND && w_owner(rw) != s->hid && !handle_alive(&s->ctx, w_owner(rw))) {
                close_port_locked(&s->ctx, rt, domid, remote_port);
                rw = 0;
        }
        if (w_state(rw) != PORT_UNBOUND || w_rdom(rw) != s->self) {
                r = -EINVAL;
                goto out;
        }

        r = alloc_port_locked(own, s->self, &lp);
        if (r == -ENOSPC) {
                sweep_dead_locked(&s->ctx, s->hid);
                r = alloc_port_locked(own, s->self, &lp);
        }
        if (r < 0)
                goto out;

        /* Xen makes the binder's port pending at once, to make up for
         * notifications sent while the remote end was unbound. */
        __atomic_store_n(&own->pending[lp], 1, __ATOMIC_RELEASE);
        word_store(own, lp, mkword(PORT_INTERDOMAIN, domid, remote_port, s->hid));
        word_store(rt, remote_port, mkword(PORT_INTERDOMAIN, s->self, lp, w_owner(rw)));
        peer = w_owner(rw);
        r = 0;
out:
        sim_unlock(s->lock_fd);
        if (r < 0)
                return r;

        peer_connect(s, peer);
        s->local[lp] = LOCAL_BOUND;
        /* Failure is harmless: the pending flag is set and the next
         * pending() scans for it. */
        (void) send_wakeup(s, own, s->hid, lp, domid, remote_port);
        *ret_local_port = lp;
        return 0;
}

static int sim_bind_unbound(Evtchn *e, uint32_t remote_domid, uint32_t *ret_port) {
        EvtchnSim *s = sim_of(e);
        if (s->restricted)
                return -EACCES;
        if (remote_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;

        int r = sim_lock(s->lock_fd, true);
        if (r < 0)
                return r;
        SimTable *own;
        uint32_t p = 0;
        r = ctx_table(&s->ctx, s->self, false, &own);
        if (r >= 0) {
                r = alloc_port_locked(own, s->self, &p);
                if (r == -ENOSPC) {
                        sweep_dead_locked(&s->ctx, s->hid);
                        r = alloc_port_locked(own, s->self, &p);
                }
        }
        if (r >= 0) {
                __atomic_store_n(&own->pending[p], 0, __ATOMIC_RELEASE);
                word_store(own, p, mkword(PORT_UNBOUND, remote_domid, 0, s->hid));
        }
        sim_unlock(s->lock_fd);
        if (r < 0)
                return r;

        s->local[p] = LOCAL_BOUND;
        *ret_port = p;
        return 0;
}

static bool deliverable(EvtchnSim *s, SimTable *own, uint32_t p) {
        return (s->local[p] & (LOCAL_BOUND | LOCAL_MASKED)) == LOCAL_BOUND && w_owner(word_load(own, p)) == s->hid &&
               __atomic_load_n(&own->pending[p], __ATOMIC_ACQUIRE) != 0;
}

static bool try_deliver(EvtchnSim *s, SimTable *own, uint32_t p) {
        if ((s->local[p] & (LOCAL_BOUND | LOCAL_MASKED)) != LOCAL_BOUND)
                return false;
        if (w_owner(word_load(own, p)) != s->hid)
                return false;
        /* Whoever clears the flag delivers: the datagram and the scan below
         * never deliver the same notification twice. */
        if (__atomic_exchange_n(&own->pending[p], 0, __ATOMIC_ACQ_REL) == 0)
                return false;
        s->local[p] |= LOCAL_MASKED;
        return true;
}

/* Called with a port to return: if a wakeup was dropped somewhere, make
 * sure the fd becomes readable again so that the scan runs before the
 * caller goes back to sleep (a rescan wakeup names port 0). */
static int deliver(EvtchnSim *s, SimTable *own, uint32_t port, uint32_t *ret_port) {
        if (s->scan_needed)
                (void) send_wakeup(s, own, s->hid, 0, 0, 0);
        *ret_port = port;
        return 0;
}

static int sim_pending(Evtchn *e, uint32_t *ret_port) {
        EvtchnSim *s = sim_of(e);
        SimTable *own;
        int r = ctx_table(&s->ctx, s->self, false, &own);
        if (r < 0)
                return r;

        uint32_t ov = __atomic_load_n(&own->overflow, __ATOMIC_ACQUIRE);
        if (ov != s->seen_overflow) {
                s->seen_overflow = ov;
                s->scan_needed = true;
        }

        for (;;) {
                SimMsg m;
                ssize_t n = recv(s->sock_fd, &m, sizeof(m), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        return negative_errno();
                }
                if (n != (ssize_t) sizeof(m) || m.dst_port == 0 || m.dst_port >= VTPM_SIM_EVTCHN_PORTS)
                        continue;
                uint64_t w = word_load(own, m.dst_port);
                /* A wakeup from an earlier binding of this port is stale. */
                if (w_state(w) != PORT_INTERDOMAIN || w_rdom(w) != m.src_domid || w_rport(w) != m.src_port)
                        continue;
                if (try_deliver(s, own, m.dst_port))
                        return deliver(s, own, m.dst_port, ret_port);
        }

        /* The queue is empty: the pending flags are the truth, whatever
         * wakeups were lost or stale. */
        s->scan_needed = false;
        uint32_t found = 0;
        for (uint32_t p = 1; p < VTPM_SIM_EVTCHN_PORTS; p++) {
                if (found == 0) {
                        if (try_deliver(s, own, p))
                                found = p;
                } else if (deliverable(s, own, p)) {
                        /* More than one: come back for the others. */
                        s->scan_needed = true;
                        break;
                }
        }
        if (found == 0)
                return -EAGAIN;
        return deliver(s, own, found, ret_port);
}

static int sim_unmask(Evtchn *e, uint32_t port) {
        EvtchnSim *s = sim_of(e);
        if (port == 0 || port >= VTPM_SIM_EVTCHN_PORTS || !(s->local[port] & LOCAL_BOUND))
                return -EINVAL;
        SimTable *own;
        int r = ctx_table(&s->ctx, s->self, false, &own);
        if (r < 0)
                return r;

        s->local[port] &= (uint8_t) ~LOCAL_MASKED;
        if (!__atomic_load_n(&own->pending[port], __ATOMIC_ACQUIRE))
                return 0;
        /* A notification arrived while masked: raise it again. */
        uint64_t w = word_load(own, port);
        return send_wakeup(s, own, s->hid, port, w_rdom(w), w_rport(w));
}

static int sim_notify(Evtchn *e, uint32_t port) {
        EvtchnSim *s = sim_of(e);
        if (port == 0 || port >= VTPM_SIM_EVTCHN_PORTS)
                return -EINVAL;
        SimTable *own, *rt;
        int r = ctx_table(&s->ctx, s->self, false, &own);
        if (r < 0)
                return r;

        uint64_t w = word_load(own, port);
        if (w_state(w) == PORT_FREE || w_owner(w) != s->hid)
                return -ENOTCONN;
        /* Xen drops a send on an unbound port without an error. */
        if (w_state(w) != PORT_INTERDOMAIN)
                return 0;
        uint32_t rport = w_rport(w);
        if (rport >= VTPM_SIM_EVTCHN_PORTS || ctx_table(&s->ctx, w_rdom(w), false, &rt) < 0)
                return 0;
        uint64_t rw = word_load(rt, rport);
        if (w_state(rw) != PORT_INTERDOMAIN || w_rdom(rw) != s->self || w_rport(rw) != port)
                return 0;
        if (__atomic_exchange_n(&rt->pending[rport], 1, __ATOMIC_ACQ_REL) != 0)
                return 0; /* already pending: Xen coalesces too */
        return send_wakeup(s, rt, w_owner(rw), rport, s->self, port);
}

static int sim_unbind(Evtchn *e, uint32_t port) {
        EvtchnSim *s = sim_of(e);
        if (port == 0 || port >= VTPM_SIM_EVTCHN_PORTS)
                return -EINVAL;
        if (!(s->local[port] & LOCAL_BOUND))
                return -ENOTCONN;

        int r = sim_lock(s->lock_fd, true);
        if (r < 0)
                return r;
        SimTable *own;
        r = ctx_table(&s->ctx, s->self, false, &own);
        if (r >= 0) {
                uint64_t w = word_load(own, port);
                if (w_state(w) != PORT_FREE && w_owner(w) == s->hid)
                        close_port_locked(&s->ctx, own, s->self, port);
        }
        sim_unlock(s->lock_fd);
        s->local[port] = 0;
        return r < 0 ? r : 0;
}

static int sim_restrict(Evtchn *e, uint32_t domid) {
        EvtchnSim *s = sim_of(e);
        /* The same rules as Linux's IOCTL_EVTCHN_RESTRICT_DOMID. */
        if (s->restricted)
                return -EACCES;
        if (domid == 0 || domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;
        s->restricted = true;
        s->restrict_domid = domid;
        return 0;
}

static const EvtchnOps sim_ops = {
        .close = sim_close,
        .fd = sim_fd,
        .bind_interdomain = sim_bind_interdomain,
        .bind_unbound = sim_bind_unbound,
        .pending = sim_pending,
        .unmask = sim_unmask,
        .notify = sim_notify,
        .unbind = sim_unbind,
        .restrict_domid = sim_restrict,
};

static int next_handle_id_locked(int lock_fd, uint64_t *ret) {
        uint64_t counter = 0;
        ssize_t n = pread(lock_fd, &counter, sizeof(counter), 0);
        if (n < 0)
                return negative_errno();
        if (n != (ssize_t) sizeof(counter))
                counter = 0;
        counter = (counter + 1) & OWNER_MASK;
        if (counter == 0)
                counter = 1;
        if (pwrite(lock_fd, &counter, sizeof(counter), 0) != (ssize_t) sizeof(counter))
                return -EIO;
        *ret = counter;
        return 0;
}

int evtchn_sim_open(const Platform *p, Evtchn **ret) {
        if (p->self_domid >= VTPM_DOMID_FIRST_RESERVED)
                return -EINVAL;

        EvtchnSim *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &sim_ops;
        s->ctx.hv_fd = s->lock_fd = s->sock_fd = -1;
        s->self = p->self_domid;

        int r = sim_hv_open(p, &s->ctx.hv_fd);
        if (r < 0)
                goto fail;
        if (asprintf(&s->ctx.hv_path, "%s/hv", p->sim_dir) < 0) {
                s->ctx.hv_path = NULL;
                r = -ENOMEM;
                goto fail;
        }
        r = sim_lock_open(s->ctx.hv_fd, &s->lock_fd);
        if (r < 0)
                goto fail;
        s->sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->sock_fd < 0) {
                r = negative_errno();
                goto fail;
        }

        r = sim_lock(s->lock_fd, true);
        if (r < 0)
                goto fail;
        SimTable *own;
        uint64_t hid = 0;
        struct sockaddr_un sa;
        socklen_t len;
        r = next_handle_id_locked(s->lock_fd, &hid);
        if (r >= 0)
                r = ctx_table(&s->ctx, s->self, true, &own);
        if (r >= 0)
                r = sock_addr(&s->ctx, hid, &sa, &len);
        if (r >= 0) {
                /* A stale file only exists if the counter was reset. */
                char name[40];
                snprintf(name, sizeof(name), "evh-%" PRIu64 ".sock", hid);
                (void) unlinkat(s->ctx.hv_fd, name, 0);
                if (bind(s->sock_fd, (struct sockaddr *) &sa, len) < 0)
                        r = negative_errno();
                /* Owner only: workers connect to the handles they wake
                 * before they drop to their own uids (peer_connect). */
                else if (fchmodat(s->ctx.hv_fd, name, 0600, 0) < 0)
                        r = negative_errno();
        }
        if (r >= 0) {
                s->hid = hid;
                sweep_dead_locked(&s->ctx, s->hid);
        }
        sim_unlock(s->lock_fd);
        if (r < 0)
                goto fail;
        peer_connect(s, hid);

        *ret = &s->base;
        return 0;
fail:
        sim_close(&s->base);
        return r;
}

int evtchn_sim_destroy_domain_locked(int hv_fd, uint32_t domid) {
        int fd = fcntl(hv_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        SimCtx c = { .hv_fd = fd };
        SimTable *t;
        int r = ctx_table(&c, domid, false, &t);
        if (r == -ESRCH) {
                ctx_done(&c);
                return 0;
        }
        if (r < 0) {
                ctx_done(&c);
                return r;
        }
        for (uint32_t p = 1; p < VTPM_SIM_EVTCHN_PORTS; p++)
                if (word_load(t, p) != 0)
                        close_port_locked(&c, t, domid, p);
        __atomic_store_n(&t->destroyed, 1, __ATOMIC_RELEASE);

        char name[32];
        snprintf(name, sizeof(name), "evtchn-%" PRIu32, domid);
        r = unlinkat(hv_fd, name, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
        ctx_done(&c);
        return r;
}
