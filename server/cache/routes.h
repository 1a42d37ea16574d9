/* routes.h — the route registry: which node holds each device's stream.
 *
 * Key: parley:sess:<account>, a hash with one field per device,
 *      <device> -> "<node>:<epoch>:<expires_ms>".
 * A route belongs to the (node, epoch) that put it. The epoch is the
 * caller's id for that one stream connection (unique on its node: a counter
 * or a time-ordered id), so that a node can tell its own stream's entry from
 * the one of a newer stream that took the device over — on another node or
 * on the same one. Entries expire by themselves (expires_ms against Redis's
 * clock, pruned on the next put; the key's TTL follows its latest entry), so
 * a crashed node's routes are gone within their TTL. Holders refresh them
 * well within the TTL. All updates are Lua scripts, hence atomic. */
#ifndef PL_CACHE_ROUTES_H
#define PL_CACHE_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

typedef struct pl_cache_route {
    int64_t account_id;
    int64_t device_id;
    int32_t node_id; /* >= 0 */
    uint64_t epoch;
} pl_cache_route_t;

typedef void (*pl_cache_routes_fn)(pl_code_t code, const char *message, const pl_cache_route_t *routes, size_t count,
                                   void *user);

/* Registers s for ttl_s seconds (1..PL_CACHE_MAX_TTL_S), replacing whatever
 * route the device had: a device that connects again is the live one.
 * Putting the same (node, epoch) again refreshes it. RESOURCE_EXHAUSTED when
 * the account already has PL_CACHE_MAX_DEVICES other live routes. */
int pl_cache_route_put(pl_redis_t *r, const pl_cache_route_t *s, int ttl_s, pl_cache_done_fn cb, void *user);

/* The heartbeat: extends s by ttl_s unless another (node, epoch) holds the
 * device now; flag = still ours (false: a newer stream took over, close
 * ours). Unlike put it never takes a device back; like put it re-creates an
 * entry Redis lost (restart), so a Redis restart does not drop streams. */
int pl_cache_route_refresh(pl_redis_t *r, const pl_cache_route_t *s, int ttl_s, pl_cache_flag_fn cb, void *user);

/* Removes s only if the device is still (node, epoch)'s, so a stale stream
 * closing late cannot remove its successor; flag = removed. */
int pl_cache_route_del(pl_redis_t *r, const pl_cache_route_t *s, pl_cache_flag_fn cb, void *user);

/* Every live route of up to PL_CACHE_MAX_BATCH accounts, in one round
 * trip: grouped by account in the order given (devices in no set order). */
int pl_cache_route_lookup(pl_redis_t *r, const int64_t *account_ids, size_t count, pl_cache_routes_fn cb, void *user);

#endif
