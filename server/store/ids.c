/* ids.c — the id generator: a compare-and-swap on (millisecond, sequence). */
#include "store/ids.h"

#include <stdlib.h>
#include <time.h>

#define TIME_SHIFT (PL_ID_SHARD_BITS + PL_ID_NODE_BITS + PL_ID_SEQ_BITS)
#define SEQ_MASK ((1u << PL_ID_SEQ_BITS) - 1)

int pl_idgen_init(pl_idgen_t *g, int node)
{
    if (node < 0 || node >= PL_ID_MAX_NODES)
        return -1;
    g->node = node;
    atomic_init(&g->last, 0);
    return 0;
}

int64_t pl_id_new_at(pl_idgen_t *g, int shard, int64_t unix_ms)
{
    uint64_t ms = unix_ms > PL_ID_EPOCH_MS ? (uint64_t)(unix_ms - PL_ID_EPOCH_MS) : 0;
    uint64_t last = atomic_load_explicit(&g->last, memory_order_relaxed);
    uint64_t next;
    do {
        /* Same or earlier millisecond (clock stepped back): next sequence;
         * a full millisecond borrows the next one. */
        next = ms << PL_ID_SEQ_BITS;
        if (next <= last)
            next = last + 1;
    } while (!atomic_compare_exchange_weak_explicit(&g->last, &last, next, memory_order_relaxed, memory_order_relaxed));
    uint64_t t = next >> PL_ID_SEQ_BITS;
    uint64_t seq = next & SEQ_MASK;
    return (int64_t)((t << TIME_SHIFT) |
                     ((uint64_t)(shard & (PL_ID_MAX_SHARDS - 1)) << (PL_ID_NODE_BITS + PL_ID_SEQ_BITS)) |
                     ((uint64_t)g->node << PL_ID_SEQ_BITS) | seq);
}

int64_t pl_id_new(pl_idgen_t *g, int shard)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return pl_id_new_at(g, shard, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

bool pl_id_is_valid(int64_t id)
{
    return id > 0;
}

int pl_ids_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t pl_ids_sort_unique(int64_t *ids, size_t n)
{
    if (n < 2)
        return n;
    qsort(ids, n, sizeof(*ids), pl_ids_cmp);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}
