/* batch.c — the id lists behind a batch request: sorted, without repeats,
 * before they go one query per shard (pl_acct_query_shards). */
#include <stdlib.h>

#include "accounts/accounts_internal.h"

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t pl_acct_unique_ids(int64_t *ids, size_t n)
{
    if (n < 2)
        return n;
    qsort(ids, n, sizeof(*ids), cmp_id);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}
