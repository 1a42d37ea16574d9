/* cache.h — what the typed Redis layer shares: the callback shapes, the
 * limits, and the map of keys.
 *
 * Keys and channels (ids in decimal; times are Unix ms or µs on Redis's clock,
 * read with TIME inside scripts, so nodes with skewed clocks agree):
 *
 *   parley:sess:<account>  hash  <device> -> "<node>:<epoch>:<expires_ms>"     sessions.h
 *   parley:pres:<account>  hash  d:<device> -> "<beat_ms>:<until_ms>",        presence.h
 *                                seen -> <last_seen_ms>
 *   parley:rl:<name>       hash  t -> tokens, ts -> <µs of last update>       ratelimit.h
 *   parley:node:<node>     pub/sub channel of one node                         pubsub.h
 *
 * Every key has a TTL, so nothing a crashed node wrote outlives it for long,
 * and everything here may vanish (Redis restart) without losing a message.
 *
 * Contract of every function below (pl_redis_command_argv()'s): 0 means the
 * callback runs exactly once, later, from the loop; a negative PL_ERR_* means
 * it never runs (bad arguments, no memory, client freed). message is never
 * NULL and, like every pointer passed to a callback, is borrowed for the
 * callback's duration. */
#ifndef PL_CACHE_CACHE_H
#define PL_CACHE_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "cache/redis.h"

/* Accounts per lookup (sessions, presence): a full group in one round trip. */
#define PL_CACHE_MAX_BATCH 1024
/* Devices per account in one hash: a bound against runaway callers, well
 * above the product's linked-device limit. */
#define PL_CACHE_MAX_DEVICES 64
/* TTLs accepted by puts: one second to one week. */
#define PL_CACHE_MAX_TTL_S (7 * 86400)

typedef void (*pl_cache_done_fn)(pl_code_t code, const char *message, void *user);
typedef void (*pl_cache_flag_fn)(pl_code_t code, const char *message, bool flag, void *user);
typedef void (*pl_cache_count_fn)(pl_code_t code, const char *message, int64_t count, void *user);

#endif
