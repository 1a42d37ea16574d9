/* keys.h — internal to server/cache: builds the key names listed in
 * cache.h, so that each prefix is spelled once, and runs the scripts that
 * take one key per account. */
#ifndef PL_CACHE_KEYS_H
#define PL_CACHE_KEYS_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cache/script.h"

#define PL_CACHE_KEY_SESSIONS "parley:sess:"
#define PL_CACHE_KEY_PRESENCE "parley:pres:"
#define PL_CACHE_KEY_RATELIMIT "parley:rl:"
#define PL_CACHE_KEY_NODE "parley:node:"

/* Room for any prefix above and a 64-bit id. */
#define PL_CACHE_KEY_MAX 48

/* Writes prefix + id into key (PL_CACHE_KEY_MAX bytes); returns the length. */
static inline size_t pl_cache_key_id(char *key, const char *prefix, int64_t id)
{
    int n = snprintf(key, PL_CACHE_KEY_MAX, "%s%" PRId64, prefix, id);
    return n < 0 ? 0 : (size_t)n;
}

/* Runs script s with one key, prefix + id, per id (the batch reads); the
 * keys are built in one allocation and copied before this returns. The
 * usual contract. */
int pl_cache_run_for_ids(pl_redis_t *r, pl_redis_script_t *s, const char *prefix, const int64_t *ids, size_t count,
                         pl_redis_cb cb, void *user);

#endif
