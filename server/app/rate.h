/* rate.h — a Redis token bucket (cache/ratelimit.h) taken on behalf of an
 * operation: the one way a handler rate-limits. Each service decides what
 * Redis being unavailable means for it (fail open or closed) in fn. */
#ifndef PL_APP_RATE_H
#define PL_APP_RATE_H

#include <stdint.h>

#include "app/op.h"
#include "cache/ratelimit.h"

/* code OK with rate; or the failure (Redis down or unreachable:
 * UNAVAILABLE) with its reason and rate NULL. */
typedef void (*pl_op_rate_fn)(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate);

/* Takes cost tokens from the bucket name (capacity tokens, refilled at
 * refill_per_second). fn runs once, possibly before this returns, unless
 * the operation has failed or its call ended meanwhile; the next step
 * waits for it. wait_ms > 0: while Redis is connecting (a node just
 * started) or reconnecting, tries again every 100 ms for up to wait_ms,
 * within the call's deadline, before reporting it unavailable. */
void pl_op_rate_take(pl_op_t *op, const char *name, uint32_t capacity, double refill_per_second, uint32_t cost,
                     int wait_ms, pl_op_rate_fn fn);

#endif
