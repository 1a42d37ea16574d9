/* reply.h — internal to server/cache: turning Redis replies into typed
 * results. Most typed operations are one script or command answering one
 * integer (negative: a bound was hit); pl_cache_int_run() does those, and
 * the number readers serve the ones that answer arrays. */
#ifndef PL_CACHE_REPLY_H
#define PL_CACHE_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "cache/script.h"

typedef enum pl_cache_int_kind {
    PL_CACHE_INT_DONE,  /* pl_cache_done_fn: the value is dropped */
    PL_CACHE_INT_FLAG,  /* pl_cache_flag_fn: value != 0 */
    PL_CACHE_INT_COUNT, /* pl_cache_count_fn: the value */
} pl_cache_int_kind_t;

typedef struct pl_cache_int_cb {
    pl_cache_int_kind_t kind;
    union {
        pl_cache_done_fn done;
        pl_cache_flag_fn flag;
        pl_cache_count_fn count;
    } fn;
    const char *limit_message; /* RESOURCE_EXHAUSTED's message for a negative value */
} pl_cache_int_cb_t;

/* Runs script s (or, with s NULL, the command in argv) and hands its integer
 * reply to cb. nkeys is ignored for a command. The usual contract. */
int pl_cache_int_run(pl_redis_t *r, pl_redis_script_t *s, int nkeys, int argc, const char *const *argv,
                     const size_t *argvlen, const pl_cache_int_cb_t *cb, void *user);

/* An integer reply, or a bulk string holding a decimal integer. */
bool pl_cache_reply_i64(const redisReply *reply, int64_t *out);
bool pl_cache_reply_u64(const redisReply *reply, uint64_t *out);

#endif
