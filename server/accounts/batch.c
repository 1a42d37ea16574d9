/* batch.c — a request's ids or phone numbers, one query per logical shard
 * they fall on (store/scatter.h), so a batch costs one query per shard it
 * touches rather than one per item; and the id lists behind it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "accounts/accounts_internal.h"
#include "runtime/errors.h"

void pl_acct_query_shards(pl_call_t *call, pl_acct_req_t *r, int stmt, const int64_t *ids, const char *const *phones,
                          size_t n, pl_call_query_fn fn)
{
    pl_scatter_t sc = {.stmt = stmt, .flags = PL_PG_IDEMPOTENT, .ids = ids, .texts = phones, .n = n};
    int rc = pl_call_scatter(r->svc->app, call, &sc, fn, r);
    if (rc == PL_ERR_NOMEM)
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "server out of memory; retry");
    else if (rc != 0)
        pl_call_finish(call, PL_CODE_UNAVAILABLE, "server busy; retry");
}

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
