/* presence.h — online state and last-seen per account, in Redis only
 * (ephemeral: it is never written to PostgreSQL).
 *
 * Key: parley:pres:<account>, a hash:
 *      d:<device> -> "<beat_ms>:<until_ms>"   one per device online
 *      seen       -> <last_seen_ms>
 * An account is online while any device's until_ms is ahead of Redis's
 * clock. Each heartbeat puts the device online again for ttl_s, so a device
 * whose node crashed goes offline by itself, its last heartbeat becoming the
 * last-seen time. The key lives PL_CACHE_LAST_SEEN_RETENTION_S past its last
 * write; after that, and after a Redis restart, last-seen is unknown (0).
 * Who may see whose presence (privacy settings, blocking) is the caller's
 * business: this stores facts. */
#ifndef PL_CACHE_PRESENCE_H
#define PL_CACHE_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

#define PL_CACHE_LAST_SEEN_RETENTION_S (30 * 86400)

typedef struct pl_cache_presence {
    int64_t account_id;
    bool is_online;
    int64_t last_seen_ms; /* Unix ms: now when online, 0 when unknown */
} pl_cache_presence_t;

typedef void (*pl_cache_presence_fn)(pl_code_t code, const char *message, const pl_cache_presence_t *presence,
                                     size_t count, void *user);

/* Marks the device online for ttl_s (1..PL_CACHE_MAX_TTL_S); call it again
 * as the heartbeat. RESOURCE_EXHAUSTED past PL_CACHE_MAX_DEVICES devices. */
int pl_cache_presence_set_online(pl_redis_t *r, int64_t account_id, int64_t device_id, int ttl_s, pl_cache_done_fn cb,
                                 void *user);

/* Marks the device offline and records now as the account's last-seen time;
 * count = that time (Unix ms, Redis's clock). */
int pl_cache_presence_set_offline(pl_redis_t *r, int64_t account_id, int64_t device_id, pl_cache_count_fn cb,
                                  void *user);

/* Presence of up to PL_CACHE_MAX_BATCH accounts in one round trip: exactly
 * count entries, in the order given. Unknown accounts are offline with
 * last_seen_ms 0. */
int pl_cache_presence_get(pl_redis_t *r, const int64_t *account_ids, size_t count, pl_cache_presence_fn cb, void *user);

#endif
