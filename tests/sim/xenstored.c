/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vtpm-xenstored: the simulated hypervisor's xenstore daemon. It speaks the
 * real xenstore wire protocol on Unix sockets so that the real libxenstore
 * and the stock xenstore-* tools work against it, and follows the semantics
 * of Xen 4.17's C xenstored (tools/xenstore/xenstored_*.c) wherever a client
 * can observe them: permissions, watch delivery, transactions, errors.
 *
 *   XSDIR/socket              every connection is dom0 (privileged)
 *   XSDIR/domain-<domid>.sock exists while <domid> is introduced; every
 *                             connection acts as that (unprivileged) domain
 *
 * Single-threaded epoll loop; replies and events are queued per connection
 * and written when the socket is writable.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "../common/testlib.h"
#include "util.h"
#include "xenstored-db.h"
#include "xs-wire.h"

/* A client whose queued replies and events exceed this is dropped. */
#define OUT_QUEUE_MAX (4u * 1024 * 1024)
/* 4.17 quota defaults (xenstored_core.c), applied to unprivileged domains. */
#define QUOTA_ENTRY_SIZE 2048u
#define QUOTA_WATCHES 128u
#define QUOTA_TRANSACTIONS 10u
#define QUOTA_PERMS 5u
/* DOMID_SELF from xen.h: IS_DOMAIN_INTRODUCED answers T for it. */
#define DOMID_SELF 0x7FF0u
/* DOMID_FIRST_RESERVED: no real domain has an id at or above it. */
#define DOMID_FIRST_RESERVED 0x7FF0u

typedef enum SrcKind {
        SRC_MAIN_LISTEN,
        SRC_DOMAIN_LISTEN,
        SRC_CONN,
        SRC_SIGNAL,
} SrcKind;

typedef struct Source {
        SrcKind kind;
        void *ptr;
} Source;

typedef struct Domain {
        struct Domain *next;
        uint32_t domid;
        uint64_t generation; /* perms entries of older nodes do not apply */
        bool introduced;
        bool has_target;
        uint32_t target;
        bool dead;
        int listen_fd;
        char *sock_path;
        Source src;
} Domain;

typedef struct OutMsg {
        struct OutMsg *next;
        bool watch_event;
        size_t len;
        uint8_t data[];
} OutMsg;

typedef struct Watch {
        struct Watch *next;
        char *node;  /* canonical path or @special */
        char *token;
        bool relative;
} Watch;

typedef struct Conn {
        struct Conn *next;
        Source src;
        int fd;
        unsigned serial;
        uint32_t id;
        bool is_domain;
        bool dead;
        bool want_out;
        /* "/local/domain/<u32>": 14 + 10 digits + NUL */
        char implicit[32];
        /* One frame at most is buffered: header + XENSTORE_PAYLOAD_MAX. */
        uint8_t in[XSWIRE_FRAME_MAX];
        size_t inlen;
        OutMsg *out_head, *out_tail;
        size_t out_off, out_bytes;
        Watch *watches;
        unsigned nwatches;
        XsTx **txs;
        size_t ntx, captx;
        uint32_t next_tx_id;
        XsTx *cur_tx;
} Conn;

static struct {
        const char *dir;
        char *sock_path;
        char *pidfile;
        int listen_fd, epfd, sigfd;
        Source listen_src, sig_src;
        FILE *log;
        bool verbose;
        XsDb *db;
        Domain *domains;
        Conn *conns;
        unsigned serial;
        XsWirePerm *release_perms, *introduce_perms;
        size_t n_release, n_introduce;
} S = { .listen_fd = -1, .epfd = -1, .sigfd = -1 };

_printf_(1, 2) static void log_line(const char *fmt, ...) {
        FILE *f = S.log ?: stderr;
        struct timespec ts;
        va_list ap;

        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(f, "%lld.%03ld vtpm-xenstored: ", (long long) ts.tv_sec, ts.tv_nsec / 1000000);
        va_start(ap, fmt);
        vfprintf(f, fmt, ap);
        va_end(ap);
        fputc('\n', f);
        fflush(f);
}

/* ---- domains ---- */

static Domain *domain_find(uint32_t domid) {
        for (Domain *d = S.domains; d; d = d->next)
                if (!d->dead && d->domid == domid)
                        return d;
        return NULL;
}

static Domain *domain_alloc(uint32_t domid) {
        Domain *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        d->domid = domid;
        d->generation = xsdb_generation(S.db);
        d->listen_fd = -1;
        d->src = (Source){ SRC_DOMAIN_LISTEN, d };
        d->next = S.domains;
        S.domains = d;
        return d;
}

static Domain *domain_find_or_alloc(uint32_t domid) {
        return domain_find(domid) ?: domain_alloc(domid);
}

/* ---- permissions (perm_for_conn and friends, xenstored_core.c) ---- */

static bool conn_unprivileged(const Conn *c) {
        return c && c->is_domain && c->id != 0;
}

static unsigned perm_for_conn(const Conn *c, const XsWirePerm *p, size_t n) {
        const unsigned all = XSWIRE_PERM_READ | XSWIRE_PERM_WRITE | XSWIRE_PERM_OWNER;
        const Domain *d = c ? domain_find(c->id) : NULL;
        bool tgt = d && d->has_target;

        if (!conn_unprivileged(c) || n == 0)
                return all;
        if (p[0].domid == c->id || (tgt && p[0].domid == d->target))
                return all;
        for (size_t i = 1; i < n; i++)
                if (!(p[i].perms & XSWIRE_PERM_IGNORE) &&
                    (p[i].domid == c->id || (tgt && p[i].domid == d->target)))
                        return p[i].perms & all;
        return p[0].perms & all;
}

/* domain_adjust_node_perms(): an entry for a domain that is gone, or that
 * was created after the node was last written, never matches again. */
static void node_adjust_perms(XsNode *n, uint64_t generation) {
        for (size_t i = 1; i < n->nperms; i++) {
                const Domain *d;

                if (n->perms[i].perms & XSWIRE_PERM_IGNORE)
                        continue;
                d = domain_find(n->perms[i].domid);
                if (!d || d->generation > generation)
                        n->perms[i].perms |= XSWIRE_PERM_IGNORE;
        }
}

/* ---- output ---- */

static void conn_kill(Conn *c, const char *why);

static void conn_queue(Conn *c, const XsWireHeader *h, const void *payload, size_t len, bool event) {
        OutMsg *m;

        if (c->dead)
                return;
        m = malloc(sizeof(*m) + XSWIRE_HDR_SIZE + len);
        if (!m) {
                conn_kill(c, "out of memory");
                return;
        }
        m->next = NULL;
        m->watch_event = event;
        m->len = (size_t) xswire_frame_build(h, payload, len, m->data, XSWIRE_HDR_SIZE + len);
        if (c->out_tail)
                c->out_tail->next = m;
        else
                c->out_head = m;
        c->out_tail = m;
        c->out_bytes += m->len;
        if (c->out_bytes > OUT_QUEUE_MAX)
                conn_kill(c, "output queue overflow (client does not read)");
}

static void conn_reply(Conn *c, const XsWireHeader *req, uint32_t type, const void *p, size_t len);

static void conn_error(Conn *c, const XsWireHeader *req, int errnum) {
        const char *name = xswire_error_name(errnum);

        conn_reply(c, req, XSWIRE_ERROR, name, strlen(name) + 1);
}

/* send_reply(): echoes req_id and tx_id of the request. */
static void conn_reply(Conn *c, const XsWireHeader *req, uint32_t type, const void *p, size_t len) {
        XsWireHeader h = { .type = type, .req_id = req->req_id, .tx_id = req->tx_id };

        if (len > XSWIRE_PAYLOAD_MAX) {
                conn_error(c, req, E2BIG);
                return;
        }
        conn_queue(c, &h, p, len, false);
}

static void conn_ack(Conn *c, const XsWireHeader *req) {
        conn_reply(c, req, req->type, "OK", 3);
}

static void send_event(Conn *c, const char *path, const char *token) {
        uint8_t payload[XSWIRE_PAYLOAD_MAX];
        XsWireHeader h = { .type = XSWIRE_WATCH_EVENT };
        int len = xswire_event_payload(path, token, payload);

        if (len < 0)
                return; /* like 4.17: over-long events are dropped */
        if (path[0] != '@') {
                /* 4.17 drops an event identical to one still queued. */
                for (const OutMsg *m = c->out_head; m; m = m->next)
                        if (m->watch_event && m->len == XSWIRE_HDR_SIZE + (size_t) len &&
                            memcmp(m->data + XSWIRE_HDR_SIZE, payload, (size_t) len) == 0)
                                return;
        }
        conn_queue(c, &h, payload, (size_t) len, true);
}

static int epoll_set(int fd, Source *src, uint32_t events, int op) {
        struct epoll_event ev = { .events = events, .data.ptr = src };

        return epoll_ctl(S.epfd, op, fd, &ev) < 0 ? -errno : 0;
}

static void conn_flush(Conn *c) {
        while (!c->dead && c->out_head) {
                OutMsg *m = c->out_head;
                ssize_t n = send(c->fd, m->data + c->out_off, m->len - c->out_off,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                if (!c->want_out && epoll_set(c->fd, &c->src, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD) == 0)
                                        c->want_out = true;
                                return;
                        }
                        conn_kill(c, "write failed");
                        return;
                }
                c->out_off += (size_t) n;
                if (c->out_off == m->len) {
                        c->out_head = m->next;
                        if (!c->out_head)
                                c->out_tail = NULL;
                        c->out_bytes -= m->len;
                        c->out_off = 0;
                        free(m);
                }
        }
        if (!c->dead && c->want_out && epoll_set(c->fd, &c->src, EPOLLIN, EPOLL_CTL_MOD) == 0)
                c->want_out = false;
}

/* ---- connections ---- */

static void conn_drop_watches(Conn *c) {
        while (c->watches) {
                Watch *w = c->watches;

                c->watches = w->next;
                free(w->node);
                free(w->token);
                free(w);
        }
        c->nwatches = 0;
}

static void conn_drop_transactions(Conn *c) {
        for (size_t i = 0; i < c->ntx; i++)
                xsdb_tx_free(c->txs[i]);
        c->ntx = 0;
}

static void conn_kill(Conn *c, const char *why) {
        if (c->dead)
                return;
        c->dead = true;
        log_line("conn %u (domid %u%s) closed: %s", c->serial, c->id,
                 c->is_domain ? "" : ", socket", why);
        (void) epoll_ctl(S.epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = safe_close(c->fd);
        conn_drop_watches(c);
        conn_drop_transactions(c);
        while (c->out_head) {
                OutMsg *m = c->out_head;

                c->out_head = m->next;
                free(m);
        }
        c->out_tail = NULL;
        c->out_bytes = 0;
}

static void conn_new(int fd, uint32_t domid, bool is_domain) {
        Conn *c = calloc(1, sizeof(*c)), **tail;

        if (!c) {
                safe_close(fd);
                return;
        }
        c->fd = fd;
        c->id = domid;
        c->is_domain = is_domain;
        c->serial = ++S.serial;
        c->next_tx_id = 1;
        c->src = (Source){ SRC_CONN, c };
        /* get_implicit_path(): socket clients resolve against dom0's path. */
        snprintf(c->implicit, sizeof(c->implicit), "/local/domain/%u", domid);
        if (epoll_set(fd, &c->src, EPOLLIN, EPOLL_CTL_ADD) < 0) {
                safe_close(fd);
                free(c);
                return;
        }
        for (tail = &S.conns; *tail; tail = &(*tail)->next)
                ;
        *tail = c;
        log_line("conn %u (domid %u%s) opened", c->serial, domid, is_domain ? "" : ", socket");
}

static void conn_free(Conn *c) {
        free(c->txs);
        free(c);
}

/* ---- node access (xenstored_core.c) ---- */

static XsTx *conn_tx(const Conn *c) {
        return c ? c->cur_tx : NULL;
}

static int read_node(Conn *c, const char *name, XsNode **ret) {
        XsNode *n;
        int r = xsdb_read(S.db, conn_tx(c), name, &n);

        if (r < 0)
                return r;
        node_adjust_perms(n, n->generation);
        *ret = n;
        return 0;
}

static int write_node(Conn *c, XsNode *n, bool no_quota) {
        int r;

        node_adjust_perms(n, xsdb_generation(S.db) + 1);
        if (!no_quota && conn_unprivileged(c) && xsnode_record_size(n) >= QUOTA_ENTRY_SIZE)
                r = -ENOSPC;
        else
                r = xsdb_write(S.db, conn_tx(c), n);
        if (r < 0 && conn_tx(c))
                xsdb_tx_fail(conn_tx(c));
        return r;
}

/* errno_from_parents(): a missing or forbidden node reports EACCES unless the
 * nearest existing ancestor grants one of the requested permissions, so that
 * errors do not leak what the caller cannot see. */
static int errno_from_parents(Conn *c, const char *name, int err, unsigned perm) {
        _cleanup_free_ char *cur = strdup(name);
        unsigned pperm = XSWIRE_PERM_NONE;

        if (err == -ENOMEM || !cur)
                return -ENOMEM;
        for (;;) {
                char *parent;
                XsNode *n;
                int r;

                r = xswire_path_parent(cur, &parent);
                if (r < 0)
                        return r;
                free(cur);
                cur = parent;
                r = read_node(c, cur, &n);
                if (r == 0) {
                        pperm = perm_for_conn(c, n->perms, n->nperms);
                        xsnode_free(n);
                        break;
                }
                if (r == -ENOMEM || r == -ENOSPC)
                        return r;
                if (streq(cur, "/"))
                        break;
        }
        return (pperm & perm) ? err : -EACCES;
}

static int get_node(Conn *c, const char *name, unsigned perm, XsNode **ret) {
        XsNode *n = NULL;
        int r;

        if (!name || !xswire_path_valid(name))
                return -EINVAL;
        r = read_node(c, name, &n);
        if (r == 0) {
                if ((perm_for_conn(c, n->perms, n->nperms) & perm) == perm) {
                        *ret = n;
                        return 0;
                }
                xsnode_free(n);
                r = -EACCES;
        }
        if (r == -ENOMEM || r == -ENOSPC)
                return r;
        return errno_from_parents(c, name, r, perm);
}

static const char *basename_of(const char *path) {
        return strrchr(path, '/') + 1;
}

/* ---- watches (xenstored_watch.c) ---- */

/* Either the node or its parent must be readable by the watcher; for a
 * permission change, readable under the old perms is enough. */
static bool watch_permitted(Conn *c, const char *name, const XsNode *node,
                            const XsWirePerm *old, size_t nold) {
        XsNode *own = NULL, *parent = NULL;
        char *pname = NULL;
        bool ok = false;

        if (old && (perm_for_conn(c, old, nold) & XSWIRE_PERM_READ))
                return true;
        if (!node) {
                if (read_node(NULL, name, &own) < 0)
                        return false;
                node = own;
        }
        if (perm_for_conn(c, node->perms, node->nperms) & XSWIRE_PERM_READ)
                ok = true;
        else if (xswire_path_parent(node->name, &pname) == 0 && read_node(NULL, pname, &parent) == 0)
                ok = perm_for_conn(c, parent->perms, parent->nperms) & XSWIRE_PERM_READ;
        xsnode_free(own);
        xsnode_free(parent);
        free(pname);
        return ok;
}

static bool special_permitted(Conn *c, const char *name) {
        if (streq(name, "@releaseDomain"))
                return perm_for_conn(c, S.release_perms, S.n_release) & XSWIRE_PERM_READ;
        if (streq(name, "@introduceDomain"))
                return perm_for_conn(c, S.introduce_perms, S.n_introduce) & XSWIRE_PERM_READ;
        return false;
}

static const char *watch_event_path(const Conn *c, const Watch *w, const char *name) {
        const char *p = name;

        if (w->relative) {
                p += strlen(c->implicit);
                if (*p == '/')
                        p++;
        }
        return p;
}

static void fire_watches(Conn *origin, const char *name, const XsNode *node, bool exact,
                         const XsWirePerm *old, size_t nold) {
        if (conn_tx(origin)) {
                xsdb_tx_queue_watch(conn_tx(origin), name, exact);
                return;
        }
        for (Conn *c = S.conns; c; c = c->next) {
                int allowed = -1; /* computed on the first matching watch */

                if (c->dead)
                        continue;
                for (Watch *w = c->watches; w; w = w->next) {
                        bool match = exact ? streq(name, w->node) : xswire_path_is_child(name, w->node);

                        if (!match)
                                continue;
                        if (allowed < 0)
                                allowed = name[0] == '@' ? special_permitted(c, name)
                                                         : watch_permitted(c, name, node, old, nold);
                        if (!allowed)
                                break;
                        send_event(c, watch_event_path(c, w, name), w->token);
                }
        }
}

static void fire_from_commit(void *userdata, const char *name, bool exact, const XsWirePerm *old,
                             size_t nold) {
        fire_watches(NULL, name, NULL, exact, old, nold);
}

/* ---- tree operations ---- */

typedef struct Chain {
        XsNode **v;
        size_t n;
} Chain;

static void chain_done(Chain *ch) {
        for (size_t i = 0; i < ch->n; i++)
                xsnode_free(ch->v[i]);
        free(ch->v);
}

static int chain_push(Chain *ch, XsNode *n) {
        XsNode **v = realloc(ch->v, (ch->n + 1) * sizeof(*v));

        if (!v) {
                xsnode_free(n);
                return -ENOMEM;
        }
        ch->v = v;
        ch->v[ch->n++] = n;
        return 0;
}

/* construct_node() + create_node(): creates name and its missing ancestors.
 * New nodes inherit the perms of their parent; a node created by an
 * unprivileged domain is owned by it. Returns the new node. */
static int create_node(Conn *c, const char *name, const void *data, size_t len, XsNode **ret) {
        _cleanup_free_ char *cur = strdup(name);
        char **missing = NULL;
        size_t nmissing = 0;
        Chain ch = {};
        XsNode *parent = NULL;
        int r;

        if (!cur)
                return -ENOMEM;
        /* Walk up to the nearest existing ancestor. */
        for (;;) {
                char *pname, **m;

                m = realloc(missing, (nmissing + 1) * sizeof(*m));
                if (!m) {
                        r = -ENOMEM;
                        goto out;
                }
                missing = m;
                missing[nmissing++] = TAKE_PTR(cur);
                r = xswire_path_parent(missing[nmissing - 1], &pname);
                if (r < 0)
                        goto out;
                cur = pname;
                r = read_node(c, cur, &parent);
                if (r == 0)
                        break;
                if (r != -ENOENT || streq(cur, "/"))
                        goto out;
        }
        r = chain_push(&ch, parent);
        if (r < 0)
                goto out;
        /* Walk down again, constructing the missing nodes. */
        for (size_t i = nmissing; i > 0; i--) {
                XsNode *up = ch.v[ch.n - 1], *n = xsnode_new(missing[i - 1]);

                if (!n) {
                        r = -ENOMEM;
                        goto out;
                }
                r = xsnode_add_child(up, basename_of(n->name));
                if (r >= 0)
                        r = xsnode_set_perms(n, up->perms, up->nperms);
                if (r >= 0 && conn_unprivileged(c) && n->nperms)
                        n->perms[0].domid = c->id;
                if (r >= 0)
                        r = chain_push(&ch, n);
                else
                        xsnode_free(n);
                if (r < 0)
                        goto out;
        }
        r = xsnode_set_data(ch.v[ch.n - 1], data, len);
        if (r < 0)
                goto out;
        /* Check the entry quota before writing anything, so a refusal
         * leaves no half-created path behind. */
        if (conn_unprivileged(c))
                for (size_t i = 0; i < ch.n; i++)
                        if (xsnode_record_size(ch.v[i]) >= QUOTA_ENTRY_SIZE) {
                                r = -ENOSPC;
                                if (conn_tx(c))
                                        xsdb_tx_fail(conn_tx(c));
                                goto out;
                        }
        /* Bottom-up, like 4.17. */
        for (size_t i = ch.n; i > 0; i--) {
                r = write_node(c, ch.v[i - 1], true);
                if (r < 0)
                        goto out;
        }
        *ret = ch.v[ch.n - 1];
        ch.n--;
        r = 0;
out:
        chain_done(&ch);
        for (size_t i = 0; i < nmissing; i++)
                free(missing[i]);
        free(missing);
        return r;
}

static char *child_path(const char *parent, const char *child) {
        char *s;

        if (asprintf(&s, "%s/%s", streq(parent, "/") ? "" : parent, child) < 0)
                return NULL;
        return s;
}

/* Deletes name and everything below it, children first; fires an exact event
 * for every node below root and an inexact one for root (delnode_sub()). */
static int delete_subtree(Conn *c, const char *name, const char *root) {
        XsNode *n;
        int r = read_node(c, name, &n);

        if (r < 0)
                return r == -ENOENT ? -EIO : r;
        for (size_t off = 0; off < n->childlen; off += strlen(n->children + off) + 1) {
                _cleanup_free_ char *cp = child_path(name, n->children + off);

                r = cp ? delete_subtree(c, cp, root) : -ENOMEM;
                if (r < 0)
                        goto out;
        }
        r = xsdb_delete(S.db, conn_tx(c), name);
        if (r < 0)
                goto out;
        fire_watches(c, name, n, !streq(root, name), NULL, 0);
out:
        xsnode_free(n);
        return r;
}

static int rm_node(Conn *c, const char *name) {
        _cleanup_free_ char *pname = NULL;
        XsNode *parent;
        int r;

        r = xswire_path_parent(name, &pname);
        if (r < 0)
                return r;
        r = read_node(c, pname, &parent);
        if (r < 0)
                return (r == -ENOMEM || r == -ENOSPC) ? r : -EINVAL;
        r = delete_subtree(c, name, name);
        if (r >= 0)
                r = xsnode_remove_child(parent, basename_of(name)) < 0 ? -EIO : 0;
        if (r >= 0)
                r = write_node(c, parent, true);
        xsnode_free(parent);
        return r;
}

/* ---- request handlers ---- */

typedef int (*handler_fn)(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len);

/* canonicalize() of the single string argument; NULL name means EINVAL. */
static int onearg_path(Conn *c, const uint8_t *p, size_t len, char **ret) {
        const char *arg;

        if (xswire_onearg(p, len, &arg) < 0)
                return -EINVAL;
        return xswire_path_canonicalize(arg, c->implicit, ret);
}

static int do_read(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        XsNode *n;
        int r;

        r = onearg_path(c, p, len, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_READ, &n);
        if (r < 0)
                return r;
        conn_reply(c, h, h->type, n->data, n->datalen);
        xsnode_free(n);
        return 0;
}

static int do_directory(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        XsNode *n;
        int r;

        r = onearg_path(c, p, len, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_READ, &n);
        if (r < 0)
                return r;
        conn_reply(c, h, h->type, n->children, n->childlen);
        xsnode_free(n);
        return 0;
}

/* send_directory_part(): "<gencnt>\0" then as many whole child names from
 * the byte offset as fit; an extra empty string marks the end of the list. */
static int do_directory_part(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        const char *vec[2];
        uint8_t out[XSWIRE_PAYLOAD_MAX];
        char gen[24];
        size_t genlen, off, n = 0, maxlen;
        XsNode *node;
        int r;

        if (xswire_count_strings(p, len) != 2)
                return -EINVAL;
        xswire_strings(p, len, vec, 2);
        r = xswire_path_canonicalize(vec[0], c->implicit, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_READ, &node);
        if (r < 0)
                return r;
        off = (unsigned) xswire_atoi(vec[1]);
        genlen = (size_t) snprintf(gen, sizeof(gen), "%" PRIu64, node->generation) + 1;
        memcpy(out, gen, genlen);
        if (off >= node->childlen) {
                out[genlen] = 0;
                conn_reply(c, h, h->type, out, genlen + 1);
                xsnode_free(node);
                return 0;
        }
        maxlen = XSWIRE_PAYLOAD_MAX - genlen - 1;
        for (const char *child = node->children + off; n + strlen(child) < maxlen;) {
                n += strlen(child) + 1;
                child += strlen(child) + 1;
                if (off + n == node->childlen)
                        break;
        }
        memcpy(out + genlen, node->children + off, n);
        if (off + n == node->childlen)
                out[genlen + n++] = 0;
        conn_reply(c, h, h->type, out, genlen + n);
        xsnode_free(node);
        return 0;
}

static int do_get_perms(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL, *out = NULL;
        size_t olen = 0;
        XsNode *n;
        int r;

        r = onearg_path(c, p, len, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_READ, &n);
        if (r < 0)
                return r;
        out = malloc(n->nperms * XSWIRE_PERM_STRLEN_MAX + 1);
        for (size_t i = 0; out && i < n->nperms; i++) {
                int l = xswire_perm_format(&n->perms[i], out + olen);

                if (l < 0) {
                        r = -EINVAL;
                        break;
                }
                olen += (size_t) l + 1;
        }
        if (!out)
                r = -ENOMEM;
        if (r >= 0)
                conn_reply(c, h, h->type, out, olen);
        xsnode_free(n);
        return r;
}

static int do_write(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        const uint8_t *value;
        const char *path;
        size_t vlen;
        XsNode *n;
        int r;

        if (xswire_write_args(p, len, &path, &value, &vlen) < 0)
                return -EINVAL;
        r = xswire_path_canonicalize(path, c->implicit, &name);
        if (r < 0)
                return r;
        r = get_node(c, name, XSWIRE_PERM_WRITE, &n);
        if (r == -ENOENT)
                r = create_node(c, name, value, vlen, &n);
        else if (r == 0) {
                r = xsnode_set_data(n, value, vlen);
                if (r >= 0)
                        r = write_node(c, n, false);
                if (r < 0)
                        xsnode_free(n);
        }
        if (r < 0)
                return r;
        fire_watches(c, name, n, false, NULL, 0);
        xsnode_free(n);
        conn_ack(c, h);
        return 0;
}

static int do_mkdir(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        XsNode *n;
        int r;

        r = onearg_path(c, p, len, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_WRITE, &n);
        if (r == -ENOENT) {
                r = create_node(c, name, NULL, 0, &n);
                if (r < 0)
                        return r;
                fire_watches(c, name, n, false, NULL, 0);
        }
        if (r < 0)
                return r;
        xsnode_free(n);
        conn_ack(c, h);
        return 0;
}

static int do_rm(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL, *pname = NULL;
        XsNode *n;
        int r;

        r = onearg_path(c, p, len, &name);
        if (r >= 0)
                r = get_node(c, name, XSWIRE_PERM_WRITE, &n);
        if (r == -ENOENT) {
                /* Removing a missing node is fine if its parent exists. */
                r = xswire_path_parent(name, &pname);
                if (r < 0)
                        return r;
                r = read_node(c, pname, &n);
                if (r == 0) {
                        xsnode_free(n);
                        conn_ack(c, h);
                        return 0;
                }
                return (r == -ENOMEM || r == -ENOSPC) ? r : -ENOENT;
        }
        if (r < 0)
                return r;
        xsnode_free(n);
        if (streq(name, "/"))
                return -EINVAL;
        r = rm_node(c, name);
        if (r < 0)
                return r;
        conn_ack(c, h);
        return 0;
}

static void special_perms(const char *name, XsWirePerm ***ret_p, size_t **ret_n) {
        if (streq(name, "@releaseDomain")) {
                *ret_p = &S.release_perms;
                *ret_n = &S.n_release;
        } else if (streq(name, "@introduceDomain")) {
                *ret_p = &S.introduce_perms;
                *ret_n = &S.n_introduce;
        } else {
                *ret_p = NULL;
                *ret_n = NULL;
        }
}

static int do_set_perms(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ XsWirePerm *perms = NULL;
        _cleanup_free_ XsWirePerm *old = NULL;
        _cleanup_free_ char *name = NULL;
        const char *path;
        size_t n, nold;
        XsNode *node;
        int r;

        n = xswire_count_strings(p, len);
        if (n >= 2 && conn_unprivileged(c) && n - 1 > QUOTA_PERMS)
                return -ENOSPC;
        r = xswire_set_perms_args(p, len, &path, &perms, &n);
        if (r < 0)
                return r;
        /* domain_alloc_permrefs(): every domid exists in the simulated
         * hypervisor, so no entry is marked IGNORE here. */
        for (size_t i = 0; i < n; i++)
                if (!domain_find_or_alloc(perms[i].domid))
                        return -ENOMEM;

        if (path[0] == '@') {
                XsWirePerm **sp;
                size_t *sn;

                special_perms(path, &sp, &sn);
                if (!sp)
                        return -EINVAL;
                if ((perm_for_conn(c, *sp, *sn) & (XSWIRE_PERM_WRITE | XSWIRE_PERM_OWNER)) !=
                    (XSWIRE_PERM_WRITE | XSWIRE_PERM_OWNER))
                        return -EACCES;
                free(*sp);
                *sp = TAKE_PTR(perms);
                *sn = n;
                conn_ack(c, h);
                return 0;
        }

        r = xswire_path_canonicalize(path, c->implicit, &name);
        if (r < 0)
                return r;
        r = get_node(c, name, XSWIRE_PERM_WRITE | XSWIRE_PERM_OWNER, &node);
        if (r < 0)
                return r;
        if (conn_unprivileged(c) && perms[0].domid != node->perms[0].domid) {
                xsnode_free(node);
                return -EPERM;
        }
        old = TAKE_PTR(node->perms);
        nold = node->nperms;
        node->perms = TAKE_PTR(perms);
        node->nperms = n;
        r = write_node(c, node, false);
        if (r >= 0)
                fire_watches(c, name, node, false, old, nold);
        xsnode_free(node);
        if (r < 0)
                return r;
        conn_ack(c, h);
        return 0;
}

static int do_watch(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        const char *vec[2];
        Watch *w, **tail;
        bool relative = false;
        int r;

        if (xswire_strings(p, len, vec, 2) != 2)
                return -EINVAL;
        if (vec[0][0] == '@') {
                if (strlen(vec[0]) > XSWIRE_REL_PATH_MAX)
                        return -EINVAL;
        } else
                relative = vec[0][0] != '/';
        r = xswire_path_canonicalize(vec[0], c->implicit, &name);
        if (r < 0)
                return r;
        if (name[0] != '@' && !xswire_path_valid(name))
                return -EINVAL;
        for (tail = &c->watches; *tail; tail = &(*tail)->next)
                if (streq((*tail)->node, name) && streq((*tail)->token, vec[1]))
                        return -EEXIST;
        if (conn_unprivileged(c) && c->nwatches > QUOTA_WATCHES)
                return -E2BIG;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->node = TAKE_PTR(name);
        w->token = strdup(vec[1]);
        w->relative = relative;
        if (!w->token) {
                free(w->node);
                free(w);
                return -ENOMEM;
        }
        *tail = w;
        c->nwatches++;
        conn_ack(c, h);
        /* Fires once straight away, with the path as the client gave it. */
        send_event(c, watch_event_path(c, w, w->node), w->token);
        return 0;
}

static int do_unwatch(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        _cleanup_free_ char *name = NULL;
        const char *vec[2];
        int r;

        if (xswire_strings(p, len, vec, 2) != 2)
                return -EINVAL;
        r = xswire_path_canonicalize(vec[0], c->implicit, &name);
        if (r < 0)
                return r;
        for (Watch **w = &c->watches; *w; w = &(*w)->next)
                if (streq((*w)->node, name) && streq((*w)->token, vec[1])) {
                        Watch *dead = *w;

                        *w = dead->next;
                        free(dead->node);
                        free(dead->token);
                        free(dead);
                        c->nwatches--;
                        conn_ack(c, h);
                        return 0;
                }
        return -ENOENT;
}

static XsTx *conn_find_tx(Conn *c, uint32_t id) {
        for (size_t i = 0; i < c->ntx; i++)
                if (xsdb_tx_id(c->txs[i]) == id)
                        return c->txs[i];
        return NULL;
}

static int do_transaction_start(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        char id[16];
        XsTx *tx;
        int r;

        if (c->cur_tx)
                return -EBUSY;
        if (conn_unprivileged(c) && c->ntx > QUOTA_TRANSACTIONS)
                return -ENOSPC;
        if (c->ntx == c->captx) {
                size_t cap = c->captx ? c->captx * 2 : 4;
                XsTx **v = realloc(c->txs, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                c->txs = v;
                c->captx = cap;
        }
        /* Pick an unused id; 0 means "no transaction". */
        while (c->next_tx_id == 0 || conn_find_tx(c, c->next_tx_id))
                c->next_tx_id++;
        r = xsdb_tx_new(S.db, c->next_tx_id++, &tx);
        if (r < 0)
                return r;
        c->txs[c->ntx++] = tx;
        snprintf(id, sizeof(id), "%u", xsdb_tx_id(tx));
        conn_reply(c, h, h->type, id, strlen(id) + 1);
        return 0;
}

static int do_transaction_end(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *arg;
        XsTx *tx = c->cur_tx;
        int r = 0;

        if (xswire_onearg(p, len, &arg) < 0 || (!streq(arg, "T") && !streq(arg, "F")))
                return -EINVAL;
        if (!tx)
                return -ENOENT;
        for (size_t i = 0; i < c->ntx; i++)
                if (c->txs[i] == tx) {
                        c->txs[i] = c->txs[--c->ntx];
                        break;
                }
        /* Events of the commit must go out, not back into the transaction. */
        c->cur_tx = NULL;
        if (streq(arg, "T"))
                r = xsdb_tx_commit(S.db, tx, fire_from_commit, NULL);
        xsdb_tx_free(tx);
        if (r < 0)
                return r;
        conn_ack(c, h);
        return 0;
}

static int domain_listen(Domain *d);
static void domain_destroy(Domain *d);

static int do_introduce(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *vec[3];
        uint32_t domid;
        Domain *d;
        int r;

        if (xswire_strings(p, len, vec, 3) < 3)
                return -EINVAL;
        domid = (uint32_t) xswire_atoi(vec[0]);
        if (xswire_atoi(vec[2]) <= 0)
                return -EINVAL;
        /* Mapping the ring of a domain that cannot exist fails in 4.17. */
        if (domid >= DOMID_FIRST_RESERVED)
                return -EINVAL;
        if (domid == 0) {
                /* dom0 is introduced from the start; nothing to rebind. */
                conn_ack(c, h);
                return 0;
        }
        d = domain_find_or_alloc(domid);
        if (!d)
                return -ENOMEM;
        if (d->introduced) {
                /* domain_conn_reset(): a re-introduced domain loses its
                 * watches and transactions. */
                for (Conn *o = S.conns; o; o = o->next)
                        if (!o->dead && o->is_domain && o->id == domid) {
                                conn_drop_watches(o);
                                conn_drop_transactions(o);
                        }
                conn_ack(c, h);
                return 0;
        }
        r = domain_listen(d);
        if (r < 0) {
                log_line("domain %u: cannot create %s: %s", domid, strempty(d->sock_path), strerror(-r));
                return -EIO;
        }
        d->introduced = true;
        log_line("domain %u introduced", domid);
        fire_watches(NULL, "@introduceDomain", NULL, true, NULL, 0);
        conn_ack(c, h);
        return 0;
}

/* onearg_domain(): 0 is EINVAL, an unknown domain ENOENT. */
static int onearg_domain(const uint8_t *p, size_t len, Domain **ret) {
        const char *arg;
        Domain *d;
        int domid;

        if (xswire_onearg(p, len, &arg) < 0)
                return -EINVAL;
        domid = xswire_atoi(arg);
        if (domid == 0)
                return -EINVAL;
        d = domain_find((uint32_t) domid);
        if (!d || !d->introduced)
                return -ENOENT;
        *ret = d;
        return 0;
}

static int do_release(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        Domain *d;
        int r = onearg_domain(p, len, &d);

        if (r < 0)
                return r;
        domain_destroy(d);
        conn_ack(c, h);
        return 0;
}

static int do_resume(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        Domain *d;
        int r = onearg_domain(p, len, &d);

        if (r < 0)
                return r;
        conn_ack(c, h);
        return 0;
}

static int do_set_target(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *vec[2];
        Domain *d, *t;

        if (xswire_strings(p, len, vec, 2) < 2)
                return -EINVAL;
        d = domain_find((uint32_t) xswire_atoi(vec[0]));
        t = domain_find((uint32_t) xswire_atoi(vec[1]));
        if (!d || !d->introduced || !t || !t->introduced)
                return -ENOENT;
        d->has_target = true;
        d->target = t->domid;
        conn_ack(c, h);
        return 0;
}

static int do_get_domain_path(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *arg;
        char path[32];

        if (xswire_onearg(p, len, &arg) < 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "/local/domain/%u", (unsigned) xswire_atoi(arg));
        conn_reply(c, h, h->type, path, strlen(path) + 1);
        return 0;
}

static int do_is_domain_introduced(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        const char *arg;
        uint32_t domid;
        const Domain *d;
        bool yes;

        if (xswire_onearg(p, len, &arg) < 0)
                return -EINVAL;
        domid = (uint32_t) xswire_atoi(arg);
        d = domain_find(domid);
        yes = domid == DOMID_SELF || domid == 0 || (d && d->introduced);
        conn_reply(c, h, h->type, yes ? "T" : "F", 2);
        return 0;
}

static int do_reset_watches(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        conn_drop_watches(c);
        conn_drop_transactions(c);
        conn_ack(c, h);
        return 0;
}

/* A subset of 4.17's commands: check, log, print, help. */
static int do_control(Conn *c, const XsWireHeader *h, const uint8_t *p, size_t len) {
        static const char help[] = "check\t\nlog\ton|off\nprint\t<string>\nhelp\t\n";
        const char *vec[3];
        size_t n = xswire_strings(p, len, vec, 3);

        if (n == 0)
                return -EINVAL;
        if (streq(vec[0], "check") || streq(vec[0], "help")) {
                if (n != 1)
                        return -EINVAL;
                if (streq(vec[0], "help"))
                        conn_reply(c, h, h->type, help, sizeof(help));
                else
                        conn_ack(c, h);
                return 0;
        }
        if (streq(vec[0], "log") || streq(vec[0], "print")) {
                if (n != 2)
                        return -EINVAL;
                if (streq(vec[0], "print"))
                        log_line("control: %s", vec[1]);
                else if (!streq(vec[1], "on") && !streq(vec[1], "off"))
                        return -EINVAL;
                conn_ack(c, h);
                return 0;
        }
        return -EINVAL;
}

#define FLAG_NOTID 1u
#define FLAG_PRIV 2u

static const struct {
        handler_fn fn;
        unsigned flags;
} handlers[XSWIRE_TYPE_COUNT] = {
        [XSWIRE_CONTROL] = { do_control, FLAG_PRIV },
        [XSWIRE_DIRECTORY] = { do_directory, 0 },
        [XSWIRE_READ] = { do_read, 0 },
        [XSWIRE_GET_PERMS] = { do_get_perms, 0 },
        [XSWIRE_WATCH] = { do_watch, FLAG_NOTID },
        [XSWIRE_UNWATCH] = { do_unwatch, FLAG_NOTID },
        [XSWIRE_TRANSACTION_START] = { do_transaction_start, 0 },
        [XSWIRE_TRANSACTION_END] = { do_transaction_end, 0 },
        [XSWIRE_INTRODUCE] = { do_introduce, FLAG_PRIV },
        [XSWIRE_RELEASE] = { do_release, FLAG_PRIV },
        [XSWIRE_GET_DOMAIN_PATH] = { do_get_domain_path, 0 },
        [XSWIRE_WRITE] = { do_write, 0 },
        [XSWIRE_MKDIR] = { do_mkdir, 0 },
        [XSWIRE_RM] = { do_rm, 0 },
        [XSWIRE_SET_PERMS] = { do_set_perms, 0 },
        [XSWIRE_IS_DOMAIN_INTRODUCED] = { do_is_domain_introduced, FLAG_PRIV },
        [XSWIRE_RESUME] = { do_resume, FLAG_PRIV },
        [XSWIRE_SET_TARGET] = { do_set_target, FLAG_PRIV },
        [XSWIRE_RESET_WATCHES] = { do_reset_watches, 0 },
        [XSWIRE_DIRECTORY_PART] = { do_directory_part, 0 },
};

static void log_payload(const Conn *c, const char *dir, const XsWireHeader *h, const uint8_t *p, size_t len) {
        char buf[256];
        size_t o = 0;

        for (size_t i = 0; i < len && o + 5 < sizeof(buf); i++)
                o += (size_t) snprintf(buf + o, sizeof(buf) - o, (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') ? "%c" : "\\x%02x", p[i]);
        buf[o] = 0;
        log_line("conn %u %s %s req_id=%u tx_id=%u len=%u \"%s\"", c->serial, dir,
                 xswire_type_name(h->type), h->req_id, h->tx_id, h->len, buf);
}

static void conn_process(Conn *c, const XsWireHeader *h, const uint8_t *p) {
        XsTx *tx = NULL;
        int r;

        if (S.verbose)
                log_payload(c, "<-", h, p, h->len);
        if (h->type >= XSWIRE_TYPE_COUNT || !handlers[h->type].fn) {
                log_line("conn %u: unknown operation %u", c->serial, h->type);
                conn_error(c, h, ENOSYS);
                return;
        }
        if ((handlers[h->type].flags & FLAG_PRIV) && conn_unprivileged(c)) {
                conn_error(c, h, EACCES);
                return;
        }
        if (!(handlers[h->type].flags & FLAG_NOTID) && h->tx_id != 0) {
                tx = conn_find_tx(c, h->tx_id);
                if (!tx) {
                        conn_error(c, h, ENOENT);
                        return;
                }
        }
        c->cur_tx = tx;
        r = handlers[h->type].fn(c, h, p, h->len);
        c->cur_tx = NULL;
        if (r < 0) {
                if (r == -EINVAL)
                        log_line("conn %u: invalid %s request", c->serial, xswire_type_name(h->type));
                conn_error(c, h, -r);
        }
}

static void conn_input(Conn *c) {
        XsWireHeader h;
        size_t off = 0;
        ssize_t n;
        int r;

        n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        conn_kill(c, "read failed");
                return;
        }
        if (n == 0) {
                conn_kill(c, c->inlen ? "EOF inside a message" : "EOF");
                return;
        }
        c->inlen += (size_t) n;
        while (!c->dead && (r = xswire_frame_peek(c->in + off, c->inlen - off, &h)) != 0) {
                if (r < 0) {
                        XsWireHeader bad;

                        memcpy(&bad, c->in + off, sizeof(bad));
                        log_line("conn %u: client tried to feed us %u bytes", c->serial, bad.len);
                        conn_kill(c, "oversized message");
                        return;
                }
                conn_process(c, &h, c->in + off + XSWIRE_HDR_SIZE);
                off += XSWIRE_HDR_SIZE + h.len;
        }
        if (!c->dead && off) {
                memmove(c->in, c->in + off, c->inlen - off);
                c->inlen -= off;
        }
}

/* ---- domain lifecycle ---- */

static int listen_unix(const char *path, int *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(fd, 128) < 0)
                return -errno;
        *ret = TAKE_FD(fd);
        return 0;
}

static int domain_listen(Domain *d) {
        int r;

        free(d->sock_path);
        if (asprintf(&d->sock_path, "%s/domain-%u.sock", S.dir, d->domid) < 0) {
                d->sock_path = NULL;
                return -ENOMEM;
        }
        r = listen_unix(d->sock_path, &d->listen_fd);
        if (r < 0)
                return r;
        r = epoll_set(d->listen_fd, &d->src, EPOLLIN, EPOLL_CTL_ADD);
        if (r < 0) {
                d->listen_fd = safe_close(d->listen_fd);
                (void) unlink(d->sock_path);
        }
        return r;
}

static void remove_domid_from_perms(XsWirePerm *p, size_t *n, uint32_t domid) {
        size_t w = 1;

        if (*n == 0)
                return;
        if (p[0].domid == domid)
                p[0].domid = 0;
        for (size_t i = 1; i < *n; i++)
                if (p[i].domid != domid)
                        p[w++] = p[i];
        *n = w;
}

/* domain_tree_remove(): nodes the domain owns are deleted with their
 * subtrees, with watch events, as 4.17 does without -K. */
static void remove_owned(const char *name, uint32_t domid) {
        XsNode *n;

        if (read_node(NULL, name, &n) < 0)
                return;
        if (n->nperms && n->perms[0].domid == domid && !streq(name, "/")) {
                if (rm_node(NULL, name) < 0)
                        log_line("error when deleting orphaned node %s", name);
        } else
                for (size_t off = 0; off < n->childlen; off += strlen(n->children + off) + 1) {
                        _cleanup_free_ char *cp = child_path(name, n->children + off);

                        if (cp)
                                remove_owned(cp, domid);
                }
        xsnode_free(n);
}

static void domain_destroy(Domain *d) {
        bool introduced = d->introduced;

        for (Conn *c = S.conns; c; c = c->next)
                if (!c->dead && c->is_domain && c->id == d->domid)
                        conn_kill(c, "domain released");
        if (d->listen_fd >= 0) {
                (void) epoll_ctl(S.epfd, EPOLL_CTL_DEL, d->listen_fd, NULL);
                d->listen_fd = safe_close(d->listen_fd);
                (void) unlink(d->sock_path);
        }
        d->introduced = false;
        d->dead = true;
        remove_owned("/", d->domid);
        remove_domid_from_perms(S.release_perms, &S.n_release, d->domid);
        remove_domid_from_perms(S.introduce_perms, &S.n_introduce, d->domid);
        for (Domain *o = S.domains; o; o = o->next)
                if (!o->dead && o->has_target && o->target == d->domid)
                        o->has_target = false;
        log_line("domain %u released", d->domid);
        if (introduced)
                fire_watches(NULL, "@releaseDomain", NULL, true, NULL, 0);
}

/* ---- set-up ---- */

static int write_initial(const char *name, const char *value, const char *children) {
        XsNode *n = xsnode_new(name);
        XsWirePerm p = { .domid = 0, .perms = XSWIRE_PERM_NONE };
        int r;

        if (!n)
                return -ENOMEM;
        r = xsnode_set_perms(n, &p, 1);
        if (r >= 0 && value)
                r = xsnode_set_data(n, value, strlen(value));
        if (r >= 0 && children)
                r = xsnode_add_child(n, children);
        if (r >= 0)
                r = xsdb_write(S.db, NULL, n);
        xsnode_free(n);
        return r;
}

static int create_initial(const char *name, const char *value) {
        XsNode *n;
        int r = create_node(NULL, name, value, value ? strlen(value) : 0, &n);

        if (r >= 0)
                xsnode_free(n);
        return r;
}

/* What xenstored's setup_structure() and then xen-init-dom0 leave behind on
 * a freshly booted host. */
static int setup_tree(void) {
        XsWirePerm dom0 = { .domid = 0, .perms = XSWIRE_PERM_NONE };
        int r;

        r = write_initial("/", NULL, "tool");
        if (r >= 0)
                r = write_initial("/tool", NULL, "xenstored");
        if (r >= 0)
                r = write_initial("/tool/xenstored", NULL, NULL);
        if (r >= 0)
                r = create_initial("/local/domain/0/domid", "0");
        if (r >= 0)
                r = create_initial("/local/domain/0/name", "Domain-0");
        if (r >= 0)
                r = create_initial("/local/pool/0/name", "Pool-0");
        if (r >= 0)
                r = create_initial("/vm", NULL);
        if (r < 0)
                return r;
        S.release_perms = malloc(sizeof(dom0));
        S.introduce_perms = malloc(sizeof(dom0));
        if (!S.release_perms || !S.introduce_perms)
                return -ENOMEM;
        S.release_perms[0] = S.introduce_perms[0] = dom0;
        S.n_release = S.n_introduce = 1;
        Domain *d0 = domain_alloc(0);
        if (!d0)
                return -ENOMEM;
        d0->generation = 0;
        d0->introduced = true;
        return 0;
}

/* Refuses to steal the socket of a daemon that is still answering. */
static int check_not_running(const char *path) {
        struct sockaddr_un sa;
        _cleanup_close_ int fd = unix_socket_for(path, &sa);

        if (fd < 0)
                return fd;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return -EADDRINUSE;
        return 0;
}

static void reap(void) {
        for (Conn **c = &S.conns; *c;) {
                if ((*c)->dead) {
                        Conn *dead = *c;

                        *c = dead->next;
                        conn_free(dead);
                } else
                        c = &(*c)->next;
        }
        for (Domain **d = &S.domains; *d;) {
                if ((*d)->dead) {
                        Domain *dead = *d;

                        *d = dead->next;
                        free(dead->sock_path);
                        free(dead);
                } else
                        d = &(*d)->next;
        }
}

static void accept_all(int lfd, uint32_t domid, bool is_domain) {
        for (;;) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

                if (fd < 0)
                        return;
                conn_new(fd, domid, is_domain);
        }
}

static int run(void) {
        struct epoll_event evs[64];

        for (;;) {
                int n = epoll_wait(S.epfd, evs, (int) ELEMENTSOF(evs), -1);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        log_line("epoll_wait: %m");
                        return -errno;
                }
                for (int i = 0; i < n; i++) {
                        Source *src = evs[i].data.ptr;

                        switch (src->kind) {
                        case SRC_SIGNAL: {
                                struct signalfd_siginfo si;

                                if (read(S.sigfd, &si, sizeof(si)) == (ssize_t) sizeof(si)) {
                                        log_line("signal %u: exiting", si.ssi_signo);
                                        return 0;
                                }
                                break;
                        }
                        case SRC_MAIN_LISTEN:
                                accept_all(S.listen_fd, 0, false);
                                break;
                        case SRC_DOMAIN_LISTEN: {
                                Domain *d = src->ptr;

                                if (!d->dead && d->listen_fd >= 0)
                                        accept_all(d->listen_fd, d->domid, true);
                                break;
                        }
                        case SRC_CONN: {
                                Conn *c = src->ptr;

                                if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                                        conn_input(c);
                                if (!c->dead && (evs[i].events & EPOLLOUT))
                                        conn_flush(c);
                                break;
                        }
                        }
                }
                for (Conn *c = S.conns; c; c = c->next)
                        if (!c->dead && c->out_head)
                                conn_flush(c);
                reap();
        }
}

static void cleanup_files(void) {
        if (S.sock_path)
                (void) unlink(S.sock_path);
        for (Domain *d = S.domains; d; d = d->next)
                if (d->listen_fd >= 0 && d->sock_path)
                        (void) unlink(d->sock_path);
        if (S.pidfile)
                (void) unlink(S.pidfile);
}

static int write_pidfile(const char *path, pid_t pid) {
        _cleanup_fclose_ FILE *f = fopen(path, "we");

        if (!f)
                return -errno;
        fprintf(f, "%d\n", (int) pid);
        return fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
}

static void usage(FILE *f) {
        fprintf(f, "Usage: vtpm-xenstored --dir XSDIR [--log FILE] [--daemon] [--pidfile FILE] [--verbose]\n"
                   "Simulated xenstored: XSDIR/socket is dom0, XSDIR/domain-<domid>.sock appears\n"
                   "when a domain is introduced. Point clients at it with XENSTORED_PATH.\n");
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "dir", required_argument, NULL, 'd' },
                { "log", required_argument, NULL, 'l' },
                { "daemon", no_argument, NULL, 'D' },
                { "pidfile", required_argument, NULL, 'p' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *logpath = NULL;
        bool daemonize = false;
        sigset_t mask;
        int c, r;

        while ((c = getopt_long(argc, argv, "d:l:Dp:vh", opts, NULL)) >= 0)
                switch (c) {
                case 'd':
                        S.dir = optarg;
                        break;
                case 'l':
                        logpath = optarg;
                        break;
                case 'D':
                        daemonize = true;
                        break;
                case 'p':
                        S.pidfile = optarg;
                        break;
                case 'v':
                        S.verbose = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (!S.dir || optind != argc) {
                usage(stderr);
                return 2;
        }
        if (logpath) {
                S.log = fopen(logpath, "ae");
                if (!S.log) {
                        fprintf(stderr, "vtpm-xenstored: cannot open log %s: %m\n", logpath);
                        return 1;
                }
        }
        if (asprintf(&S.sock_path, "%s/socket", S.dir) < 0)
                return 1;
        r = check_not_running(S.sock_path);
        if (r < 0) {
                fprintf(stderr, "vtpm-xenstored: %s: %s\n", S.sock_path,
                        r == -EADDRINUSE ? "another xenstored is listening there" : strerror(-r));
                return 1;
        }
        r = xsdb_new(&S.db);
        if (r >= 0)
                r = setup_tree();
        if (r < 0) {
                fprintf(stderr, "vtpm-xenstored: cannot set up the store: %s\n", strerror(-r));
                return 1;
        }

        r = listen_unix(S.sock_path, &S.listen_fd);
        if (r < 0) {
                fprintf(stderr, "vtpm-xenstored: cannot listen on %s: %s\n", S.sock_path, strerror(-r));
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);

        /* The socket listens before the parent exits, so callers can
         * connect as soon as "vtpm-xenstored --daemon" returns. epoll and
         * signalfd are set up after the fork: a signalfd registered with
         * epoll in the parent never wakes the child. */
        if (daemonize) {
                pid_t pid = fork();
                int null;

                if (pid < 0) {
                        fprintf(stderr, "vtpm-xenstored: fork: %m\n");
                        (void) unlink(S.sock_path);
                        return 1;
                }
                if (pid > 0) {
                        if (S.pidfile && (r = write_pidfile(S.pidfile, pid)) < 0) {
                                fprintf(stderr, "vtpm-xenstored: cannot write %s: %s\n", S.pidfile, strerror(-r));
                                kill(pid, SIGTERM);
                                return 1;
                        }
                        _exit(0);
                }
                (void) setsid();
                null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        (void) dup2(null, STDIN_FILENO);
                        (void) dup2(null, STDOUT_FILENO);
                        if (S.log)
                                (void) dup2(null, STDERR_FILENO);
                        safe_close(null);
                }
        } else if (S.pidfile && (r = write_pidfile(S.pidfile, getpid())) < 0) {
                fprintf(stderr, "vtpm-xenstored: cannot write %s: %s\n", S.pidfile, strerror(-r));
                (void) unlink(S.sock_path);
                return 1;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        S.listen_src = (Source){ SRC_MAIN_LISTEN, NULL };
        S.sig_src = (Source){ SRC_SIGNAL, NULL };
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
            (S.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
            (S.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            epoll_set(S.listen_fd, &S.listen_src, EPOLLIN, EPOLL_CTL_ADD) < 0 ||
            epoll_set(S.sigfd, &S.sig_src, EPOLLIN, EPOLL_CTL_ADD) < 0) {
                log_line("set-up failed: %m");
                cleanup_files();
                return 1;
        }

        log_line("listening on %s (pid %d)", S.sock_path, (int) getpid());
        r = run();
        cleanup_files();
        return r < 0 ? 1 : 0;
}
