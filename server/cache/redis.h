/* redis.h — pl_redis_t, one worker's asynchronous Redis command connection.
 *
 * It lives on the worker's libevent loop (no threads), connects in the
 * background and keeps itself connected: after any failure it reconnects with
 * jittered exponential backoff (50 ms doubling to 2 s). Nothing ever blocks
 * the loop, and nothing waits for Redis to come back: while the connection is
 * down, commands fail at once with UNAVAILABLE, because everything Parley
 * keeps in Redis is ephemeral and callers degrade rather than
 * queue.
 *
 * Callback contract (the same as the PostgreSQL layer's): when a submitting
 * function returns 0 its callback runs exactly once, later, from the loop —
 * never from inside the call that queued it — with one of
 *   PL_CODE_OK                  the reply (borrowed for the callback's duration)
 *   PL_CODE_UNAVAILABLE         not connected, connection lost, or no reply within
 *                               timeout_ms (the connection is then re-established,
 *                               as a hung server takes every later command with it);
 *                               also the transient error replies LOADING, BUSY,
 *                               MASTERDOWN, READONLY, TRYAGAIN, CLUSTERDOWN
 *   PL_CODE_INTERNAL            any other error reply (message = Redis's text)
 *   PL_CODE_RESOURCE_EXHAUSTED  max_inflight commands already outstanding
 *   PL_CODE_CANCELLED           pl_redis_free() ran first
 * A negative return (PL_ERR_INVALID, PL_ERR_NOMEM, PL_ERR_CLOSED after
 * pl_redis_free()) means the callback will never run.
 *
 * Connection lifecycle and backoff live in link.c; this file adds commands,
 * their deadlines and their bound. */
#ifndef PL_CACHE_REDIS_H
#define PL_CACHE_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "runtime/status.h"

struct event_base;

#define PL_REDIS_DEFAULT_TIMEOUT_MS 1000
#define PL_REDIS_DEFAULT_MAX_INFLIGHT 65536
/* Bytes of commands written but not yet taken by the kernel: past this, new
 * commands fail with RESOURCE_EXHAUSTED instead of growing the buffer. */
#define PL_REDIS_MAX_PENDING_BYTES (64u << 20)
#define PL_REDIS_BACKOFF_MIN_MS 50
#define PL_REDIS_BACKOFF_MAX_MS 2000

typedef struct pl_redis_config {
    const char *host; /* IP literal, or a name resolved once by _new() */
    int port;
    const char *password; /* AUTH after connecting when non-empty */
    int timeout_ms;       /* per command, and per connect+handshake; <= 0: default */
    int node_id;          /* names the connection: CLIENT SETNAME parley:node:<id>:<role> */
    int max_inflight;     /* commands awaiting a reply; <= 0: default */
} pl_redis_config_t;

typedef struct pl_redis_result {
    pl_code_t code;
    const char *message;     /* never NULL; borrowed for the callback's duration */
    const redisReply *reply; /* borrowed: set for OK and for error replies, else NULL */
} pl_redis_result_t;

typedef void (*pl_redis_cb)(const pl_redis_result_t *res, void *user);

typedef struct pl_redis pl_redis_t;

/* Starts connecting in the background (commands fail with UNAVAILABLE until
 * pl_redis_is_up()). The config is copied. NULL with a message in err when
 * the config is invalid, the host does not resolve, or memory runs out.
 * A host name is resolved here, once, so that reconnecting never blocks the
 * loop on DNS: point it at an address that stays put (or a local proxy). */
pl_redis_t *pl_redis_new(struct event_base *base, const pl_redis_config_t *cfg, char *err, size_t err_len);

/* Completes every outstanding command with CANCELLED (their callbacks run
 * inside this call), then closes the connection and frees everything. Safe
 * from inside one of r's own callbacks. */
void pl_redis_free(pl_redis_t *r);

/* True while connected and authenticated. */
bool pl_redis_is_up(const pl_redis_t *r);

/* Commands sent and not yet answered. */
size_t pl_redis_inflight(const pl_redis_t *r);

typedef struct pl_redis_stats {
    uint64_t completed;  /* callbacks run */
    uint64_t failed;     /* of which with a code other than OK */
    uint64_t timeouts;   /* connections dropped because a reply was late */
    uint64_t reconnects; /* connections re-established after a loss */
} pl_redis_stats_t;

void pl_redis_stats(const pl_redis_t *r, pl_redis_stats_t *out);

/* Sends one command (binary-safe arguments, copied before returning). */
int pl_redis_command_argv(pl_redis_t *r, int argc, const char *const *argv, const size_t *argvlen, pl_redis_cb cb,
                          void *user);

#endif
