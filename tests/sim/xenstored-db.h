/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Node store of the simulated xenstored, modelled on 4.17's TDB usage: one
 * record per path (generation, perms, value, NUL-separated child names in
 * insertion order), a global generation counter, and transactions that keep
 * private copies of the nodes they touched and compare per-node generations
 * at commit (xenstored_transaction.c), so unrelated transactions never
 * conflict.
 *
 * Every read returns a private copy the caller frees with xsnode_free().
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xs-wire.h"

#define XSDB_NO_GENERATION UINT64_MAX

typedef struct XsNode {
        char *name;
        uint64_t generation;
        XsWirePerm *perms;
        size_t nperms;
        uint8_t *data;
        size_t datalen;
        char *children; /* "a\0b\0" */
        size_t childlen;
} XsNode;

typedef struct XsDb XsDb;
typedef struct XsTx XsTx;

XsNode *xsnode_new(const char *name);
XsNode *xsnode_dup(const XsNode *n);
void xsnode_free(XsNode *n);
int xsnode_set_data(XsNode *n, const void *data, size_t len);
int xsnode_set_perms(XsNode *n, const XsWirePerm *perms, size_t nperms);
int xsnode_add_child(XsNode *n, const char *basename);
/* Returns -ENOENT if the child is not listed. */
int xsnode_remove_child(XsNode *n, const char *basename);
/* Size of 4.17's TDB record, which the per-entry quota is applied to. */
size_t xsnode_record_size(const XsNode *n);

int xsdb_new(XsDb **ret);
void xsdb_free(XsDb *db);
/* The global generation counter (domains remember it when created). */
uint64_t xsdb_generation(const XsDb *db);

/* tx may be NULL (global store). In a transaction the first read of a node
 * records its generation (NO_GENERATION when missing) for the commit check. */
int xsdb_read(XsDb *db, XsTx *tx, const char *name, XsNode **ret);
/* Stores a copy of node under node->name with a fresh generation, which is
 * also written back to node->generation. */
int xsdb_write(XsDb *db, XsTx *tx, XsNode *node);
int xsdb_delete(XsDb *db, XsTx *tx, const char *name);

int xsdb_tx_new(XsDb *db, uint32_t id, XsTx **ret);
void xsdb_tx_free(XsTx *tx);
uint32_t xsdb_tx_id(const XsTx *tx);
void xsdb_tx_fail(XsTx *tx);
/* Remember a watch event to fire at commit; an inexact event replaces an
 * exact one for the same node. */
void xsdb_tx_queue_watch(XsTx *tx, const char *name, bool exact);

typedef void (*xsdb_fire_fn)(void *userdata, const char *name, bool exact,
                             const XsWirePerm *old_perms, size_t old_nperms);
/* -EAGAIN on a generation conflict, -ENOMEM if the transaction was marked
 * failed; otherwise applies every change and then calls fire for each queued
 * event. Does not free tx. */
int xsdb_tx_commit(XsDb *db, XsTx *tx, xsdb_fire_fn fire, void *userdata);
