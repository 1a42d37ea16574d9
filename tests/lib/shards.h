/* shards.h — SQL on the throw-away cluster's shards, for tests that check
 * what a service stored (or set a state up behind its back). The cluster
 * is the one tests/harness/with_stack.sh started: PARLEY_POSTGRES_SERVER
 * ("conninfo;conninfo;..."), PARLEY_POSTGRES_SHARDS and, if set,
 * PARLEY_POSTGRES_SHARD_MAP. One connection per server, opened up front;
 * a connection found broken (a server restarted) is reset before use. Not
 * for concurrent use from several threads. */
#ifndef PL_TESTS_LIB_SHARDS_H
#define PL_TESTS_LIB_SHARDS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pl_test_db pl_test_db_t;

/* Connects to every server of the cluster; NULL with why in err. */
pl_test_db_t *pl_test_db_open(char *err, size_t err_len);
void pl_test_db_close(pl_test_db_t *db);

int pl_test_db_shards(const pl_test_db_t *db);
int pl_test_db_servers(const pl_test_db_t *db);
/* The connection to server i (borrowed). */
PGconn *pl_test_db_conn(pl_test_db_t *db, int server);
/* The server that holds shard. */
int pl_test_db_server_of(const pl_test_db_t *db, int shard);

/* Runs sql, with every "{s}" replaced by shard's schema and text params
 * $1..$nparams, on the server that holds shard. The result (the caller
 * PQclear()s it), or NULL with the statement and the error printed. */
PGresult *pl_test_sql(pl_test_db_t *db, int shard, const char *sql, int nparams, const char *const *params);

/* A one-value query: the value (-1 for NULL). REQUIREs that the query
 * succeeds with exactly one row. */
int64_t pl_test_sql_int(pl_test_db_t *db, int shard, const char *sql, int nparams, const char *const *params);

#endif
