/* ratelimit.h — token-bucket rate limits shared by every node.
 *
 * Key: parley:rl:<name>, a hash: t -> tokens left (fractional), ts -> when
 * they were counted (µs on Redis's clock). A bucket holds up to capacity
 * tokens and regains refill_per_second of them per second; a take of cost
 * tokens is allowed when that many are there. A missing key is a full
 * bucket, and each take sets the key to expire when the bucket would be full
 * again, so idle buckets cost no memory. Each take is one atomic Lua script
 * (EVALSHA; reloaded by itself after a Redis restart). Callers choose names
 * such as "send:<account>" or "otp:<phone>". */
#ifndef PL_CACHE_RATELIMIT_H
#define PL_CACHE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

#define PL_CACHE_RATELIMIT_MAX_NAME 200
#define PL_CACHE_RATELIMIT_MAX_RATE 1e9

typedef struct pl_cache_rate {
    bool is_allowed;
    int64_t retry_after_ms; /* when refused: wait this long for cost tokens; 0 when allowed */
} pl_cache_rate_t;

typedef void (*pl_cache_rate_fn)(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user);

/* Takes cost tokens (0..capacity; 0 only looks) from bucket name (binary,
 * 1..PL_CACHE_RATELIMIT_MAX_NAME bytes). capacity >= 1, refill_per_second in
 * (0, PL_CACHE_RATELIMIT_MAX_RATE]. rate is NULL unless code is OK. */
int pl_cache_ratelimit_take(pl_redis_t *r, const void *name, size_t name_len, uint32_t capacity,
                            double refill_per_second, uint32_t cost, pl_cache_rate_fn cb, void *user);

/* The script's SHA1 in hex (SCRIPT EXISTS, for tests and operators). 0 or -1. */
int pl_cache_ratelimit_sha(char out[41]);

#endif
