/* pubsub.h — cross-node routing over Redis pub/sub.
 *
 * Channel: parley:node:<node>. Each node subscribes to its own channel on a
 * connection of its own (a subscribed connection can do nothing else); a
 * node that stored a message publishes a small notice to the nodes holding
 * the recipients' streams (found in the session registry). Pub/sub is
 * fire-and-forget: whatever is published while a subscriber is disconnected
 * is lost. So the subscriber reports every time its subscription becomes
 * active, and after a loss (is_resync) the messaging layer catches its
 * streams up from PostgreSQL (losing Redis must lose no message).
 *
 * A subscriber that falls too far behind is disconnected by Redis itself
 * (client-output-buffer-limit pubsub), which bounds what a slow loop can
 * cost the server; it then resubscribes with is_resync like after any loss.
 *
 * The subscriber checks its connection by itself: every
 * PL_CACHE_SUB_PROBE_MS it subscribes again (harmless: Redis confirms an
 * existing subscription) and expects the confirmation within timeout_ms;
 * otherwise Redis is hung or unreachable, and it reconnects. */
#ifndef PL_CACHE_PUBSUB_H
#define PL_CACHE_PUBSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

#define PL_CACHE_PUBLISH_MAX_BYTES (1u << 20)
#define PL_CACHE_SUB_PROBE_MS 1000

/* Publishes len bytes (binary, up to PL_CACHE_PUBLISH_MAX_BYTES) to
 * node_id's channel; count = subscribers that got it (0: that node is not
 * listening, e.g. down). */
int pl_cache_publish(pl_redis_t *r, int node_id, const void *data, size_t len, pl_cache_count_fn cb, void *user);

typedef struct pl_cache_sub pl_cache_sub_t;

/* One published message; data is borrowed for the call. */
typedef void (*pl_cache_message_fn)(const void *data, size_t len, void *user);
/* The subscription became active: for the first time (is_resync false), or
 * again after a loss, when messages may have been missed (is_resync true). */
typedef void (*pl_cache_subscribed_fn)(bool is_resync, void *user);

/* Subscribes to parley:node:<cfg->node_id> on its own connection, on base,
 * and stays subscribed across reconnects. Both callbacks are required and
 * may call pl_cache_sub_free(). NULL with a message in err on a bad config,
 * an unresolvable host or no memory. */
pl_cache_sub_t *pl_cache_sub_new(struct event_base *base, const pl_redis_config_t *cfg, pl_cache_message_fn on_message,
                                 pl_cache_subscribed_fn on_subscribed, void *user, char *err, size_t err_len);

void pl_cache_sub_free(pl_cache_sub_t *s);

/* True while the subscription is confirmed on a live connection. */
bool pl_cache_sub_is_subscribed(const pl_cache_sub_t *s);

#endif
