/* store.h — one worker's view of the sharded PostgreSQL cluster: a pl_pg_t
 * per physical server, and routing of each logical shard to its server by
 * the shard map. Statements come from one table built at start-up from every
 * module's statements (pl_stmt_table_add), read-only afterwards. */
#ifndef PL_STORE_STORE_H
#define PL_STORE_STORE_H

#include "store/pg.h"
#include "store/shardmap.h"

typedef struct pl_stmt_table {
    pl_pg_stmt_t *stmts;
    size_t count, cap;
} pl_stmt_table_t;

/* Appends a module's statements; returns the index of the first (the
 * module adds it to its own indexes), or -1 on allocation failure. */
int pl_stmt_table_add(pl_stmt_table_t *t, const pl_pg_stmt_t *stmts, size_t n);
void pl_stmt_table_dispose(pl_stmt_table_t *t);

typedef struct pl_store pl_store_t;

/* servers[i] is the conninfo of physical server i (map->servers of them);
 * opts applies to each (its conninfo and label are filled per server).
 * map and stmts must outlive the store. NULL on allocation failure. */
pl_store_t *pl_store_new(struct event_base *base, const pl_shardmap_t *map, char *const *servers,
                         const pl_pg_opts_t *opts, const pl_stmt_table_t *stmts);
void pl_store_free(pl_store_t *st);

/* pl_pg_exec on the server that holds shard (0 <= shard < map->shards). */
int pl_store_exec(pl_store_t *st, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                  int64_t deadline_usec, pl_pg_done_fn cb, void *user);

/* pl_pg_exec_keyed on the shard's server (see pg.h: lock order in batches). */
int pl_store_exec_keyed(pl_store_t *st, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                        const pl_pg_lock_t *lock, int64_t deadline_usec, pl_pg_done_fn cb, void *user);

const pl_shardmap_t *pl_store_map(const pl_store_t *st);
pl_pg_t *pl_store_server(const pl_store_t *st, int server);
/* True when every server has a ready connection. */
bool pl_store_is_up(const pl_store_t *st);

#endif
