/* app.h — what every Parley service shares on one node: the configuration,
 * the shard map, the statement table, the id generator, the server, and
 * per-worker access to the store (PostgreSQL) and the cache (Redis).
 *
 * Built once at start-up (services register their statements and hooks
 * before pl_app_start), read-only afterwards except for the id generator,
 * which is lock-free. */
#ifndef PL_APP_APP_H
#define PL_APP_APP_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "rpc/call.h"
#include "store/ids.h"
#include "store/store.h"
#include "transport/server.h"

typedef struct pl_redis pl_redis_t;
typedef struct pl_messaging pl_messaging_t;
typedef struct pl_push_service pl_push_service_t;

typedef struct pl_app {
    const pl_config_t *cfg;
    pl_server_t *server;
    pl_shardmap_t map;
    pl_stmt_table_t stmts;
    pl_idgen_t ids;
    int store_module;          /* per-worker pl_store_t */
    int cache_module;          /* per-worker pl_redis_t (cache/redis.h) */
    int auth_stmt;             /* the device lookup (app/auth.c) */
    pl_messaging_t *messaging; /* streams and fan-out (messaging/notify.h) */
    pl_push_service_t *push;   /* waking devices that are asleep (push/notify.h) */
} pl_app_t;

/* Builds the app on an unstarted server: shard map, id generator, the
 * store module. 0, or -1 with a message in err. */
int pl_app_init(pl_app_t *app, const pl_config_t *cfg, pl_server_t *server, char *err, size_t err_len);
void pl_app_dispose(pl_app_t *app);

/* Appends a module's statements to the table; returns its base index. */
int pl_app_add_statements(pl_app_t *app, const pl_pg_stmt_t *stmts, size_t n);

pl_store_t *pl_app_store(const pl_app_t *app, const pl_worker_t *w);
/* The worker's Redis connection; commands fail fast (UNAVAILABLE) while
 * Redis is down. */
pl_redis_t *pl_app_redis(const pl_app_t *app, const pl_worker_t *w);

/* ---- storage from a call handler ---- */

/* A query on behalf of a call: holds a reference on the call until fn has
 * run, uses the call's deadline (or the configured default), and runs fn
 * exactly once, whatever happened to the call meanwhile (check
 * pl_call_is_finished if that matters). */
typedef void (*pl_call_query_fn)(pl_call_t *call, const pl_pg_result_t *r, void *user);
int pl_call_query(const pl_app_t *app, pl_call_t *call, int stmt, int shard, const pl_pg_param_t *params, int nparams,
                  unsigned flags, pl_call_query_fn fn, void *user);

/* The lock key of a chat's rows: kind 0 for the chat row first, 1 for a
 * member's row after it. */
static inline pl_pg_lock_t pl_chat_lock(int64_t chat_id, int kind, int64_t account_id)
{
    pl_pg_lock_t l = {(uint64_t)chat_id << 1 | (uint64_t)(kind & 1), (uint64_t)account_id};
    return l;
}

/* What a failed query means to a client: the status and a public message;
 * the server's own message is logged under what. */
pl_code_t pl_query_failure(const pl_pg_result_t *r, const char *what, const char **message);

/* Ends the call with code and a printf-style message. */
void pl_call_failf(pl_call_t *call, pl_code_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
