/* SPDX-License-Identifier: BSD-3-Clause */
#include "xenstored-db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- a small string-keyed hash map (chained, power-of-two buckets) ---- */

typedef struct MapEntry {
        struct MapEntry *next;
        char *key;
        void *value;
} MapEntry;

typedef struct Map {
        MapEntry **buckets;
        size_t nbuckets, count;
} Map;

static uint64_t hash_str(const char *s) {
        uint64_t h = 1469598103934665603ull;

        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 1099511628211ull;
        return h;
}

static int map_init(Map *m) {
        m->nbuckets = 64;
        m->count = 0;
        m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
        return m->buckets ? 0 : -ENOMEM;
}

static MapEntry **map_slot(Map *m, const char *key) {
        MapEntry **e = &m->buckets[hash_str(key) & (m->nbuckets - 1)];

        while (*e && !streq((*e)->key, key))
                e = &(*e)->next;
        return e;
}

static void *map_get(Map *m, const char *key) {
        MapEntry *e = *map_slot(m, key);

        return e ? e->value : NULL;
}

static void map_grow(Map *m) {
        size_t n = m->nbuckets * 2;
        MapEntry **b = calloc(n, sizeof(*b));

        if (!b)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < m->nbuckets; i++) {
                MapEntry *e = m->buckets[i], *next;

                for (; e; e = next) {
                        MapEntry **slot = &b[hash_str(e->key) & (n - 1)];

                        next = e->next;
                        e->next = *slot;
                        *slot = e;
                }
        }
        free(m->buckets);
        m->buckets = b;
        m->nbuckets = n;
}

/* Stores value under key; returns the previous value (or NULL) in *ret_old. */
static int map_put(Map *m, const char *key, void *value, void **ret_old) {
        MapEntry **slot = map_slot(m, key), *e;

        if (*slot) {
                *ret_old = (*slot)->value;
                (*slot)->value = value;
                return 0;
        }
        e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->key = strdup(key);
        if (!e->key) {
                free(e);
                return -ENOMEM;
        }
        e->value = value;
        *slot = e;
        m->count++;
        *ret_old = NULL;
        if (m->count > m->nbuckets)
                map_grow(m);
        return 0;
}

static void *map_remove(Map *m, const char *key) {
        MapEntry **slot = map_slot(m, key), *e = *slot;
        void *v;

        if (!e)
                return NULL;
        *slot = e->next;
        v = e->value;
        free(e->key);
        free(e);
        m->count--;
        return v;
}

static void map_done(Map *m, void (*free_value)(void *)) {
        if (!m->buckets)
                return;
        for (size_t i = 0; i < m->nbuckets; i++) {
                MapEntry *e = m->buckets[i], *next;

                for (; e; e = next) {
                        next = e->next;
                        if (free_value)
                                free_value(e->value);
                        free(e->key);
                        free(e);
                }
        }
        free(m->buckets);
        m->buckets = NULL;
}

/* ---- nodes ---- */

XsNode *xsnode_new(const char *name) {
        XsNode *n = calloc(1, sizeof(*n));

        if (!n)
                return NULL;
        n->name = strdup(name);
        if (!n->name) {
                free(n);
                return NULL;
        }
        n->generation = XSDB_NO_GENERATION;
        return n;
}

void xsnode_free(XsNode *n) {
        if (!n)
                return;
        free(n->name);
        free(n->perms);
        free(n->data);
        free(n->children);
        free(n);
}

static void xsnode_free_void(void *n) {
        xsnode_free(n);
}

static void *memdup_or_null(const void *p, size_t len, bool *fail) {
        void *q;

        if (!len)
                return NULL;
        q = malloc(len);
        if (!q)
                *fail = true;
        else
                memcpy(q, p, len);
        return q;
}

XsNode *xsnode_dup(const XsNode *n) {
        XsNode *c = xsnode_new(n->name);
        bool fail = false;

        if (!c)
                return NULL;
        c->generation = n->generation;
        c->nperms = n->nperms;
        c->perms = memdup_or_null(n->perms, n->nperms * sizeof(*n->perms), &fail);
        c->datalen = n->datalen;
        c->data = memdup_or_null(n->data, n->datalen, &fail);
        c->childlen = n->childlen;
        c->children = memdup_or_null(n->children, n->childlen, &fail);
        if (fail) {
                xsnode_free(c);
                return NULL;
        }
        return c;
}

int xsnode_set_data(XsNode *n, const void *data, size_t len) {
        bool fail = false;
        void *d = memdup_or_null(data, len, &fail);

        if (fail)
                return -ENOMEM;
        free(n->data);
        n->data = d;
        n->datalen = len;
        return 0;
}

int xsnode_set_perms(XsNode *n, const XsWirePerm *perms, size_t nperms) {
        bool fail = false;
        void *p = memdup_or_null(perms, nperms * sizeof(*perms), &fail);

        if (fail)
                return -ENOMEM;
        free(n->perms);
        n->perms = p;
        n->nperms = nperms;
        return 0;
}

int xsnode_add_child(XsNode *n, const char *basename) {
        size_t bl = strlen(basename) + 1;
        char *c = realloc(n->children, n->childlen + bl);

        if (!c)
                return -ENOMEM;
        memcpy(c + n->childlen, basename, bl);
        n->children = c;
        n->childlen += bl;
        return 0;
}

int xsnode_remove_child(XsNode *n, const char *basename) {
        for (size_t off = 0; off < n->childlen;) {
                size_t l = strlen(n->children + off) + 1;

                if (streq(n->children + off, basename)) {
                        memmove(n->children + off, n->children + off + l, n->childlen - off - l);
                        n->childlen -= l;
                        return 0;
                }
                off += l;
        }
        return -ENOENT;
}

size_t xsnode_record_size(const XsNode *n) {
        /* struct xs_tdb_record_hdr is 24 bytes, struct xs_permissions 8. */
        return 24 + n->nperms * 8 + n->datalen + n->childlen;
}

/* ---- store and transactions ---- */

struct XsDb {
        Map nodes; /* name -> XsNode */
        uint64_t generation;
};

typedef struct Accessed {
        char *name;
        XsNode *ta;            /* the node as this transaction sees it; NULL: absent */
        uint64_t generation;   /* at first read, for the commit check */
        XsWirePerm *perms;     /* perms before the transaction touched it */
        size_t nperms;
        bool check_gen, modified, fire_watch, watch_exact;
} Accessed;

struct XsTx {
        uint32_t id;
        Map index; /* name -> Accessed */
        Accessed **order;
        size_t n, cap;
        bool fail;
};

int xsdb_new(XsDb **ret) {
        _cleanup_free_ XsDb *db = calloc(1, sizeof(*db));

        if (!db || map_init(&db->nodes) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(db);
        return 0;
}

void xsdb_free(XsDb *db) {
        if (!db)
                return;
        map_done(&db->nodes, xsnode_free_void);
        free(db);
}

uint64_t xsdb_generation(const XsDb *db) {
        return db->generation;
}

static void accessed_free(Accessed *a) {
        if (!a)
                return;
        free(a->name);
        xsnode_free(a->ta);
        free(a->perms);
        free(a);
}

/* Finds or creates the transaction's record for name. */
static int tx_access(XsTx *tx, const char *name, bool *ret_new, Accessed **ret) {
        Accessed *a = map_get(&tx->index, name);
        void *old;

        if (a) {
                *ret_new = false;
                *ret = a;
                return 0;
        }
        if (tx->n == tx->cap) {
                size_t cap = tx->cap ? tx->cap * 2 : 16;
                Accessed **o = realloc(tx->order, cap * sizeof(*o));

                if (!o)
                        goto nomem;
                tx->order = o;
                tx->cap = cap;
        }
        a = calloc(1, sizeof(*a));
        if (!a)
                goto nomem;
        a->name = strdup(name);
        if (!a->name || map_put(&tx->index, name, a, &old) < 0) {
                accessed_free(a);
                goto nomem;
        }
        tx->order[tx->n++] = a;
        *ret_new = true;
        *ret = a;
        return 0;
nomem:
        tx->fail = true;
        return -ENOMEM;
}

int xsdb_read(XsDb *db, XsTx *tx, const char *name, XsNode **ret) {
        const XsNode *src;
        XsNode *copy;
        Accessed *a;
        bool is_new;
        int r;

        if (!tx) {
                src = map_get(&db->nodes, name);
                if (!src)
                        return -ENOENT;
                copy = xsnode_dup(src);
                if (!copy)
                        return -ENOMEM;
                *ret = copy;
                return 0;
        }

        a = map_get(&tx->index, name);
        if (!a) {
                src = map_get(&db->nodes, name);
                r = tx_access(tx, name, &is_new, &a);
                if (r < 0)
                        return r;
                a->check_gen = true;
                a->generation = src ? src->generation : XSDB_NO_GENERATION;
                if (src) {
                        a->ta = xsnode_dup(src);
                        if (!a->ta || (src->nperms && !(a->perms = malloc(src->nperms * sizeof(*a->perms))))) {
                                tx->fail = true;
                                return -ENOMEM;
                        }
                        a->nperms = src->nperms;
                        if (src->nperms)
                                memcpy(a->perms, src->perms, src->nperms * sizeof(*a->perms));
                }
        }
        if (!a->ta)
                return -ENOENT;
        copy = xsnode_dup(a->ta);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

int xsdb_write(XsDb *db, XsTx *tx, XsNode *node) {
        XsNode *copy;
        Accessed *a;
        bool is_new;
        void *old;
        int r;

        node->generation = ++db->generation;
        copy = xsnode_dup(node);
        if (!copy) {
                if (tx)
                        tx->fail = true;
                return -ENOMEM;
        }
        if (!tx) {
                r = map_put(&db->nodes, node->name, copy, &old);
                if (r < 0) {
                        xsnode_free(copy);
                        return r;
                }
                xsnode_free(old);
                return 0;
        }
        r = tx_access(tx, node->name, &is_new, &a);
        if (r < 0) {
                xsnode_free(copy);
                return r;
        }
        if (is_new && node->nperms) {
                /* Like access_node(): the perms recorded for a node first
                 * touched by a write are the ones being written. */
                a->perms = malloc(node->nperms * sizeof(*a->perms));
                if (a->perms) {
                        memcpy(a->perms, node->perms, node->nperms * sizeof(*a->perms));
                        a->nperms = node->nperms;
                }
        }
        a->modified = true;
        xsnode_free(a->ta);
        a->ta = copy;
        return 0;
}

int xsdb_delete(XsDb *db, XsTx *tx, const char *name) {
        Accessed *a;
        bool is_new;
        int r;

        ++db->generation;
        if (!tx) {
                xsnode_free(map_remove(&db->nodes, name));
                return 0;
        }
        r = tx_access(tx, name, &is_new, &a);
        if (r < 0)
                return r;
        a->modified = true;
        a->ta = (xsnode_free(a->ta), NULL);
        return 0;
}

int xsdb_tx_new(XsDb *db, uint32_t id, XsTx **ret) {
        XsTx *tx = calloc(1, sizeof(*tx));

        if (!tx)
                return -ENOMEM;
        if (map_init(&tx->index) < 0) {
                free(tx);
                return -ENOMEM;
        }
        tx->id = id;
        /* A transaction takes a generation of its own, as in 4.17. */
        ++db->generation;
        *ret = tx;
        return 0;
}

void xsdb_tx_free(XsTx *tx) {
        if (!tx)
                return;
        map_done(&tx->index, NULL);
        for (size_t i = 0; i < tx->n; i++)
                accessed_free(tx->order[i]);
        free(tx->order);
        free(tx);
}

uint32_t xsdb_tx_id(const XsTx *tx) {
        return tx->id;
}

void xsdb_tx_fail(XsTx *tx) {
        tx->fail = true;
}

void xsdb_tx_queue_watch(XsTx *tx, const char *name, bool exact) {
        Accessed *a = map_get(&tx->index, name);

        if (!a) {
                tx->fail = true;
                return;
        }
        if (!a->fire_watch) {
                a->fire_watch = true;
                a->watch_exact = exact;
        } else if (!exact)
                a->watch_exact = false;
}

int xsdb_tx_commit(XsDb *db, XsTx *tx, xsdb_fire_fn fire, void *userdata) {
        if (tx->fail)
                return -ENOMEM;

        for (size_t i = 0; i < tx->n; i++) {
                const Accessed *a = tx->order[i];
                const XsNode *cur;

                if (!a->check_gen)
                        continue;
                cur = map_get(&db->nodes, a->name);
                if ((cur ? cur->generation : XSDB_NO_GENERATION) != a->generation)
                        return -EAGAIN;
        }

        for (size_t i = 0; i < tx->n; i++) {
                Accessed *a = tx->order[i];
                void *old;

                if (!a->modified)
                        continue;
                if (a->ta) {
                        a->ta->generation = ++db->generation;
                        if (map_put(&db->nodes, a->name, a->ta, &old) < 0)
                                continue; /* out of memory: the node keeps its old value */
                        xsnode_free(old);
                        a->ta = NULL;
                } else
                        xsnode_free(map_remove(&db->nodes, a->name));
        }

        for (size_t i = 0; i < tx->n; i++) {
                const Accessed *a = tx->order[i];

                if (a->fire_watch && a->modified)
                        fire(userdata, a->name, a->watch_exact, a->nperms ? a->perms : NULL,
                             a->nperms);
        }
        return 0;
}
