/* ids.h — 64-bit, time-ordered ids that carry their logical shard.
 *
 *   bit 63      0 (ids are positive as PostgreSQL bigint)
 *   bits 22..62 milliseconds since PL_ID_EPOCH_MS (41 bits: until 2094)
 *   bits 12..21 logical shard (10 bits: up to 1024 shards)
 *   bits  7..11 node id (5 bits: up to 32 nodes)
 *   bits  0..6  sequence within one millisecond on one node (128)
 *
 * Nodes never coordinate: the node id keeps them apart, the sequence keeps
 * one node's ids apart within a millisecond. Routing an id to its data needs
 * no lookup: pl_id_shard(). */
#ifndef PL_STORE_IDS_H
#define PL_STORE_IDS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL_ID_EPOCH_MS 1735689600000LL /* 2025-01-01T00:00:00Z */
#define PL_ID_SHARD_BITS 10
#define PL_ID_NODE_BITS 5
#define PL_ID_SEQ_BITS 7
#define PL_ID_MAX_SHARDS (1 << PL_ID_SHARD_BITS)
#define PL_ID_MAX_NODES (1 << PL_ID_NODE_BITS)

/* One per node, shared by its workers (lock-free). */
typedef struct pl_idgen {
    int node;
    _Atomic uint64_t last; /* (ms << PL_ID_SEQ_BITS) | seq of the last id */
} pl_idgen_t;

/* 0, or -1 if node is out of range. */
int pl_idgen_init(pl_idgen_t *g, int node);

/* A new id on the given logical shard (0 <= shard < PL_ID_MAX_SHARDS).
 * Never returns the same value twice on one generator; if the clock steps
 * back, ids keep increasing from the last one. */
int64_t pl_id_new(pl_idgen_t *g, int shard);
/* The same, with the clock supplied (milliseconds since the Unix epoch): for tests. */
int64_t pl_id_new_at(pl_idgen_t *g, int shard, int64_t unix_ms);

static inline int pl_id_shard(int64_t id)
{
    return (int)(((uint64_t)id >> (PL_ID_NODE_BITS + PL_ID_SEQ_BITS)) & (PL_ID_MAX_SHARDS - 1));
}

static inline int64_t pl_id_unix_ms(int64_t id)
{
    return (int64_t)((uint64_t)id >> (PL_ID_SHARD_BITS + PL_ID_NODE_BITS + PL_ID_SEQ_BITS)) + PL_ID_EPOCH_MS;
}

static inline int pl_id_node(int64_t id)
{
    return (int)(((uint64_t)id >> PL_ID_SEQ_BITS) & (PL_ID_MAX_NODES - 1));
}

/* True for a value some generator could have produced. */
bool pl_id_is_valid(int64_t id);

/* Ascending order of int64 ids, for qsort and bsearch. */
int pl_ids_cmp(const void *a, const void *b);
/* Sorts ids and drops repeats; returns how many are left (n: no repeats). */
size_t pl_ids_sort_unique(int64_t *ids, size_t n);

#endif
