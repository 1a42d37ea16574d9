/* scatter.h — one query per logical shard for a set of keys, and the
 * answers gathered: the keys (ids, or strings such as phone numbers) are
 * grouped by shard, each shard that has keys gets one statement with them
 * as one array parameter (any number of keys), each shard's rows go to one
 * callback, and one completion callback says when the whole is done. */
#ifndef PL_STORE_SCATTER_H
#define PL_STORE_SCATTER_H

#include "store/store.h"

#define PL_SCATTER_MAX_PARAMS 8 /* the array included */

/* Statement stmt on each shard, with params[] and the shard's keys inserted
 * at position array_at as an array literal ("{1,2}", {"+15550001",…}); the
 * SQL types it: "= ANY($1::bigint[])". */
typedef struct pl_scatter {
    int stmt;
    const pl_pg_param_t *params; /* the other parameters (copied) */
    int nparams;                 /* fewer than PL_SCATTER_MAX_PARAMS */
    int array_at;                /* 0: the keys are $1 */
    unsigned flags;              /* pl_pg_exec's: PL_PG_IDEMPOTENT for reads */
    const int64_t *ids;          /* the keys: ids, routed by pl_id_shard(); or */
    const char *const *texts;    /* strings, routed by pl_shard_for_key() */
    size_t n;                    /* at least one; sent as given */
} pl_scatter_t;

/* Queues sc's statement on every shard of st that has keys. fn runs on the
 * loop, never inside this call: with each shard's rows as they come (code
 * OK, res set), then exactly once with res NULL to end the scatter: code OK
 * when every shard has answered, or the first failure (that shard's code,
 * sqlstate and message; a shard that could not be queued after others
 * were: UNAVAILABLE). After the end, user is never touched. CANCELLED: the
 * store is going down, and what user belongs to may be gone unless fn's
 * caller holds it. 0; or PL_ERR_INVALID (no keys, a key of no shard of st,
 * too many parameters), PL_ERR_NOMEM or PL_ERR_FULL: nothing was queued
 * and fn never runs. */
int pl_store_scatter(pl_store_t *st, const pl_scatter_t *sc, int64_t deadline_usec, pl_pg_done_fn fn, void *user);

#endif
