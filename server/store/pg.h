/* pg.h — asynchronous PostgreSQL for one worker's event loop.
 *
 * A pl_pg_t is one worker's set of connections to one physical server. It
 * runs libpq non-blocking in pipeline mode on the worker's libevent loop:
 * many statements are in flight at once, a slow query never blocks the loop.
 *
 * Statements come from a table given at creation; their SQL may name the
 * shard's schema as "{s}" ("SELECT ... FROM {s}.messages"), and each
 * (statement, shard) pair is prepared lazily, once per connection.
 *
 * Writes flagged PL_PG_WRITE are group-committed: while one batch commits on
 * a connection, new writes queue, and go out together as one transaction
 * (BEGIN; stmt...; COMMIT) so one WAL flush covers them all. If a batch
 * fails, each of its writes is retried in a transaction of its own, so one
 * bad write never fails its neighbours.
 *
 * Connections come and go: connect is asynchronous, a lost connection is
 * re-established with capped exponential backoff, and operations flagged
 * PL_PG_IDEMPOTENT that were in flight are sent again. Every operation has a
 * deadline; none waits forever. */
#ifndef PL_STORE_PG_H
#define PL_STORE_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/status.h"

struct event_base;
typedef struct pl_pg pl_pg_t;

/* Parameters are untyped at prepare time: give them types in the SQL
 * ("$1::bigint") whenever a binary parameter's type is not obvious. */
typedef struct pl_pg_stmt {
    const char *name;    /* for logs and statistics */
    const char *sql;     /* "{s}" stands for the shard's schema name */
    bool binary_results; /* columns in binary: int8 as 8 bytes, bytea raw */
} pl_pg_stmt_t;

typedef struct pl_pg_opts {
    const char *conninfo;     /* libpq conninfo or URI */
    const char *label;        /* "server 1", for messages */
    int connections;          /* default 1 */
    int statement_timeout_ms; /* server-side; default 5000 */
    int connect_timeout_ms;   /* default 5000 */
    int op_timeout_ms;        /* default deadline of an operation from queueing; default 10000 */
    int batch_max;            /* writes per group commit; default 256 (1 disables batching) */
    int queue_max;            /* operations queued or in flight; default 100000 */
} pl_pg_opts_t;

/* One parameter: text (binary=false, NUL-terminated or len bytes) or binary
 * (int8 as 8 bytes big-endian, bytea as raw bytes). NULL data is SQL NULL. */
typedef struct pl_pg_param {
    const void *data;
    int len;
    bool binary;
} pl_pg_param_t;

/* What an operation's callback receives. res holds the rows on success and
 * is borrowed: valid only during the callback. */
typedef struct pl_pg_result {
    pl_code_t code;       /* OK; UNAVAILABLE (no connection, lost, outcome unknown);
                           * DEADLINE_EXCEEDED (statement timeout or op deadline);
                           * ABORTED (serialization failure or deadlock, retries exhausted);
                           * CANCELLED (pl_pg_free); otherwise INTERNAL */
    const char *sqlstate; /* five characters for a server error, else "" */
    const char *message;  /* for logs, never for clients */
    PGresult *res;        /* non-NULL when code is OK */
} pl_pg_result_t;

typedef void (*pl_pg_done_fn)(const pl_pg_result_t *r, void *user);

enum {
    PL_PG_WRITE = 1 << 0,      /* group-committed write */
    PL_PG_IDEMPOTENT = 1 << 1, /* safe to send again when the outcome is unknown */
};

/* Connections start at once (asynchronously). NULL on allocation failure.
 * stmts must outlive the pl_pg_t. */
pl_pg_t *pl_pg_new(struct event_base *base, const pl_pg_opts_t *opts, const pl_pg_stmt_t *stmts, size_t nstmts);
/* Ends every outstanding operation with CANCELLED (callbacks run here),
 * closes the connections and frees everything. */
void pl_pg_free(pl_pg_t *pg);

/* Queues statement stmt for the given shard (-1: a statement without "{s}").
 * Parameters are copied. deadline_usec (pl_now_usec clock; 0: the default
 * op timeout) bounds queueing and retries. The callback (NULL: fire and
 * forget; failures are counted in the stats) runs exactly once,
 * on the loop, never from inside this call. 0, PL_ERR_FULL (queue_max
 * reached) or PL_ERR_NOMEM; on failure the callback never runs. */
int pl_pg_exec(pl_pg_t *pg, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
               int64_t deadline_usec, pl_pg_done_fn cb, void *user);

/* Where a write takes its row locks: writes sharing a batch are sent in
 * (shard, key, key2) order, so rows are always locked in one order. */
typedef struct pl_pg_lock {
    uint64_t key;  /* e.g. pl_chat_lock_key(chat, kind) */
    uint64_t key2; /* e.g. the account of a member's row */
} pl_pg_lock_t;

/* pl_pg_exec for a write that takes row locks: writes sharing a batch are
 * sent in (shard, lock) order, so that two batches committing at once
 * lock rows in the same order and never deadlock (writes with equal keys
 * keep their order). Give the key of the first row the statement locks,
 * e.g. its chat id (shifted left, with a low bit ordering statements that
 * lock the same chat's rows in different tables). */
int pl_pg_exec_keyed(pl_pg_t *pg, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                     const pl_pg_lock_t *lock, int64_t deadline_usec, pl_pg_done_fn cb, void *user);

/* True while at least one connection is ready. */
bool pl_pg_is_up(const pl_pg_t *pg);

typedef struct pl_pg_stats {
    uint64_t ops;            /* completed operations */
    uint64_t failed;         /* completed with a code other than OK */
    uint64_t batches;        /* write transactions committed */
    uint64_t batched_writes; /* writes in them */
    uint64_t retries;        /* operations sent again */
    uint64_t reconnects;     /* connections re-established */
    int queued;              /* operations waiting or in flight now */
} pl_pg_stats_t;
void pl_pg_stats(const pl_pg_t *pg, pl_pg_stats_t *out);

/* Parameter helpers. The int64 form needs storage that lives until
 * pl_pg_exec returns (it copies). */
static inline pl_pg_param_t pl_pg_text(const char *s)
{
    pl_pg_param_t p = {s, -1, false};
    return p;
}
static inline pl_pg_param_t pl_pg_bytes(const void *data, size_t len)
{
    pl_pg_param_t p = {data ? data : "", (int)len, true};
    return p;
}
static inline pl_pg_param_t pl_pg_int8(uint8_t buf[8], int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        buf[i] = (uint8_t)(v & 0xff);
    pl_pg_param_t p = {buf, 8, true};
    return p;
}
static inline pl_pg_param_t pl_pg_null(void)
{
    pl_pg_param_t p = {NULL, 0, false};
    return p;
}
/* "{1,2,3}": ids as the text of an int8[] parameter ($n::bigint[]); NULL
 * when out of memory. Caller frees. */
char *pl_pg_int8_array(const int64_t *ids, size_t n);

/* Reading results, text or binary columns alike. int8/int4/int2/bool
 * columns only; NULL reads as 0. */
int64_t pl_pg_get_int64(const PGresult *res, int row, int col);
bool pl_pg_get_bool(const PGresult *res, int row, int col);
/* A bytea column in a binary result: a view valid while res is. */
const uint8_t *pl_pg_get_bytes(const PGresult *res, int row, int col, size_t *len);

#endif
