/* app.c — building the node's shared context, and the call-scoped query. */
#include "app/app.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "cache/redis.h"
#include "runtime/clock.h"
#include "runtime/errors.h"
#include "transport/worker.h"

static void *store_start(pl_worker_t *w, void *arg)
{
    pl_app_t *app = arg;
    pl_pg_opts_t opts = {
        .connections = app->cfg->pg_connections_per_worker,
        .statement_timeout_ms = app->cfg->pg_statement_timeout_ms,
        .batch_max = app->cfg->pg_batch_max,
        .op_timeout_ms = app->cfg->pg_statement_timeout_ms * 2,
    };
    return pl_store_new(pl_worker_base(w), &app->map, app->cfg->pg_servers, &opts, &app->stmts);
}

static void store_stop(pl_worker_t *w, void *state, void *arg)
{
    (void)w;
    (void)arg;
    pl_store_free(state);
}

static void *cache_start(pl_worker_t *w, void *arg)
{
    pl_app_t *app = arg;
    pl_redis_config_t rc = {
        .host = app->cfg->redis_host,
        .port = app->cfg->redis_port,
        .password = app->cfg->redis_password,
        .timeout_ms = app->cfg->redis_timeout_ms,
        .node_id = app->cfg->node_id,
    };
    char err[256];
    pl_redis_t *r = pl_redis_new(pl_worker_base(w), &rc, err, sizeof(err));
    if (!r)
        pl_log_error("redis: %s", err);
    return r;
}

static void cache_stop(pl_worker_t *w, void *state, void *arg)
{
    (void)w;
    (void)arg;
    pl_redis_free(state);
}

int pl_app_init(pl_app_t *app, const pl_config_t *cfg, pl_server_t *server, char *err, size_t err_len)
{
    memset(app, 0, sizeof(*app));
    app->cfg = cfg;
    app->server = server;
    app->cache_module = -1;
    if (cfg->pg_server_count < 1) {
        snprintf(err, err_len, "config: [postgres] server: at least one PostgreSQL server is needed");
        return -1;
    }
    if (pl_shardmap_init(&app->map, cfg->shards, cfg->pg_server_count, cfg->shard_map, err, err_len) != 0)
        return -1;
    if (pl_idgen_init(&app->ids, cfg->node_id) != 0) {
        snprintf(err, err_len, "config: [server] node_id %d out of range", cfg->node_id);
        return -1;
    }
    app->store_module = pl_server_add_module(server, store_start, store_stop, app);
    app->cache_module = pl_server_add_module(server, cache_start, cache_stop, app);
    if (app->store_module < 0 || app->cache_module < 0) {
        snprintf(err, err_len, "cannot register the store and cache modules");
        return -1;
    }
    return 0;
}

void pl_app_dispose(pl_app_t *app)
{
    pl_shardmap_dispose(&app->map);
    pl_stmt_table_dispose(&app->stmts);
}

int pl_app_add_statements(pl_app_t *app, const pl_pg_stmt_t *stmts, size_t n)
{
    return pl_stmt_table_add(&app->stmts, stmts, n);
}

pl_store_t *pl_app_store(const pl_app_t *app, const pl_worker_t *w)
{
    return pl_worker_module(w, app->store_module);
}

pl_redis_t *pl_app_redis(const pl_app_t *app, const pl_worker_t *w)
{
    return pl_worker_module(w, app->cache_module);
}

typedef struct call_query {
    pl_call_t *call;
    pl_call_query_fn fn;
    void *user;
} call_query_t;

static void on_call_query(const pl_pg_result_t *r, void *user)
{
    call_query_t *q = user;
    pl_call_t *call = q->call;
    q->fn(call, r, q->user);
    free(q);
    pl_call_unref(call);
}

int pl_call_query(const pl_app_t *app, pl_call_t *call, int stmt, int shard, const pl_pg_param_t *params, int nparams,
                  unsigned flags, pl_call_query_fn fn, void *user)
{
    call_query_t *q = malloc(sizeof(*q));
    if (!q)
        return PL_ERR_NOMEM;
    *q = (call_query_t){call, fn, user};
    pl_call_ref(call);
    int rc = pl_store_exec_keyed(pl_app_store(app, pl_call_worker(call)), stmt, shard, params, nparams, flags, NULL,
                                 pl_call_deadline(call), on_call_query, q);
    if (rc != 0) {
        pl_call_unref(call);
        free(q);
    }
    return rc;
}

pl_code_t pl_query_failure(const pl_pg_result_t *r, const char *what, const char **message)
{
    switch (r->code) {
    case PL_CODE_UNAVAILABLE:
        pl_log_warn("%s: %s", what, r->message);
        *message = "storage temporarily unavailable; retry";
        return PL_CODE_UNAVAILABLE;
    case PL_CODE_DEADLINE_EXCEEDED:
        pl_log_warn("%s: %s", what, r->message);
        *message = "storage did not answer in time";
        return PL_CODE_DEADLINE_EXCEEDED;
    case PL_CODE_CANCELLED: *message = "server shutting down"; return PL_CODE_UNAVAILABLE;
    default:
        pl_log_error("%s: %s (sqlstate %s)", what, r->message, r->sqlstate);
        *message = "internal error";
        return PL_CODE_INTERNAL;
    }
}

void pl_call_failf(pl_call_t *call, pl_code_t code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pl_call_finish(call, code, msg);
}
