/* store.c — routing shards to servers, and the statement table. */
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/errors.h"

struct pl_store {
    const pl_shardmap_t *map;
    pl_pg_t **servers;
};

int pl_stmt_table_add(pl_stmt_table_t *t, const pl_pg_stmt_t *stmts, size_t n)
{
    if (t->count + n > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        while (cap < t->count + n)
            cap *= 2;
        pl_pg_stmt_t *grown = realloc(t->stmts, cap * sizeof(*grown));
        if (!grown)
            return -1;
        t->stmts = grown;
        t->cap = cap;
    }
    memcpy(t->stmts + t->count, stmts, n * sizeof(*stmts));
    int base = (int)t->count;
    t->count += n;
    return base;
}

void pl_stmt_table_dispose(pl_stmt_table_t *t)
{
    free(t->stmts);
    memset(t, 0, sizeof(*t));
}

pl_store_t *pl_store_new(struct event_base *base, const pl_shardmap_t *map, char *const *servers,
                         const pl_pg_opts_t *opts, const pl_stmt_table_t *stmts)
{
    pl_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->map = map;
    st->servers = calloc((size_t)map->servers, sizeof(pl_pg_t *));
    if (!st->servers) {
        free(st);
        return NULL;
    }
    for (int i = 0; i < map->servers; i++) {
        pl_pg_opts_t o = *opts;
        char label[32];
        snprintf(label, sizeof(label), "postgres server %d", i);
        o.conninfo = servers[i];
        o.label = label;
        st->servers[i] = pl_pg_new(base, &o, stmts->stmts, stmts->count);
        if (!st->servers[i]) {
            pl_store_free(st);
            return NULL;
        }
    }
    return st;
}

void pl_store_free(pl_store_t *st)
{
    if (!st)
        return;
    for (int i = 0; st->servers && i < st->map->servers; i++)
        pl_pg_free(st->servers[i]);
    free(st->servers);
    free(st);
}

int pl_store_exec(pl_store_t *st, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                  int64_t deadline_usec, pl_pg_done_fn cb, void *user)
{
    if (shard < 0 || shard >= st->map->shards)
        return PL_ERR_INVALID;
    return pl_pg_exec(st->servers[pl_shardmap_server(st->map, shard)], stmt, shard, params, nparams, flags,
                      deadline_usec, cb, user);
}

int pl_store_exec_keyed(pl_store_t *st, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                        const pl_pg_lock_t *lock, int64_t deadline_usec, pl_pg_done_fn cb, void *user)
{
    if (shard < 0 || shard >= st->map->shards)
        return PL_ERR_INVALID;
    return pl_pg_exec_keyed(st->servers[pl_shardmap_server(st->map, shard)], stmt, shard, params, nparams, flags, lock,
                            deadline_usec, cb, user);
}

const pl_shardmap_t *pl_store_map(const pl_store_t *st)
{
    return st->map;
}

pl_pg_t *pl_store_server(const pl_store_t *st, int server)
{
    return server >= 0 && server < st->map->servers ? st->servers[server] : NULL;
}

bool pl_store_is_up(const pl_store_t *st)
{
    for (int i = 0; i < st->map->servers; i++)
        if (!pl_pg_is_up(st->servers[i]))
            return false;
    return true;
}
