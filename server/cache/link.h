/* link.h — internal to server/cache: one hiredis async connection that keeps
 * itself connected. It connects without blocking, authenticates and names
 * itself (AUTH, CLIENT SETNAME), bounds connect+handshake by timeout_ms, and
 * after any failure reconnects with capped, jittered exponential backoff.
 * The command client (redis.c) and the subscriber (subscriber.c) each own
 * one; they send on the context while the link is up.
 *
 * Hooks never run user code, so the link is never freed from under itself:
 * on_up runs once the handshake has succeeded (the owner may send commands,
 * or call pl_redis_link_drop()); on_down runs when an up link has gone down,
 * after hiredis has failed every pending reply callback with a NULL reply. */
#ifndef PL_CACHE_LINK_H
#define PL_CACHE_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/async.h>

#include "cache/redis.h"

typedef struct pl_redis_link pl_redis_link_t;

typedef struct pl_redis_link_hooks {
    void (*on_up)(void *owner);
    void (*on_down)(void *owner);
} pl_redis_link_hooks_t;

/* role names the connection ("cmd", "sub"); cfg is copied and checked. NULL
 * with a message in err on a bad config, an unresolvable host or no memory.
 * The first connection attempt starts at once. */
pl_redis_link_t *pl_redis_link_new(struct event_base *base, const pl_redis_config_t *cfg, const char *role,
                                   const pl_redis_link_hooks_t *hooks, void *owner, char *err, size_t err_len);

/* Closes the connection (hiredis runs pending reply callbacks with NULL; from
 * inside a hiredis callback it does so once that callback returns) and frees
 * the link. Hooks are not called. */
void pl_redis_link_free(pl_redis_link_t *l);

/* The context while up, else NULL. */
redisAsyncContext *pl_redis_link_context(const pl_redis_link_t *l);
bool pl_redis_link_is_up(const pl_redis_link_t *l);

/* Gives up on the current connection (why is recorded and logged) and
 * schedules a reconnect. Pending reply callbacks run with NULL before this
 * returns, unless it is called from inside a hiredis callback. */
void pl_redis_link_drop(pl_redis_link_t *l, const char *why);

/* How many times the link has come up (the first connection included). */
uint64_t pl_redis_link_ups(const pl_redis_link_t *l);

/* Why the link last failed ("" if it never did), for messages. */
const char *pl_redis_link_error(const pl_redis_link_t *l);

/* The owner of the link a context belongs to, or NULL once the link has let
 * go of that context: reply callbacks start with this. */
void *pl_redis_link_owner(const redisAsyncContext *ac);

#endif
