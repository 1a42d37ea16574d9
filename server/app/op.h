/* op.h — one request as an operation: the one way every handler is written.
 *
 * An operation belongs to a call: a unary call's is freed with the call;
 * one request on a device stream holds a reference on the stream's call
 * and ends when its work is done. It authenticates first (or starts
 * authenticated, on a stream), then runs named steps; a step issues queries
 * and names the step that runs once all of them have answered. Memory the
 * request needs comes from pl_op_alloc and goes with the operation: no
 * handler frees anything on an error branch.
 *
 * Failures have one path: pl_op_fail, or a failed query, answers the client
 * once — by finishing the call, or with pl_op_on_error's reply (an Error on
 * the device stream) — and no further step runs. Storage failures become
 * UNAVAILABLE, DEADLINE_EXCEEDED or INTERNAL with a public message; the
 * server's own message is logged, never sent. */
#ifndef PL_APP_OP_H
#define PL_APP_OP_H

#include <stdbool.h>
#include <stddef.h>

#include "app/app.h"
#include "app/auth.h"
#include "store/scatter.h"

typedef struct pl_op pl_op_t;
typedef void (*pl_op_step_fn)(pl_op_t *op);
/* A query's rows (only on success, unless PL_OP_ANY_RESULT). */
typedef void (*pl_op_rows_fn)(pl_op_t *op, const pl_pg_result_t *r, void *arg);
/* How a failure reaches the client when finishing the call is not it. */
typedef void (*pl_op_error_fn)(pl_op_t *op, pl_code_t code, const char *message);

struct pl_op {
    const pl_app_t *app;
    pl_call_t *call;
    const char *name;   /* in logs: "history", "cursor" */
    pl_principal_t who; /* once authenticated (pl_op_start), or given (pl_op_run) */
    void *state;        /* the handler's own zeroed struct (pl_op_new's size) */
    bool is_failed;     /* the client has its answer: no step runs any more */
    bool is_committed;  /* a change is durable: later steps run even if the client left */
    /* the operation's own */
    int pending; /* queries out */
    bool is_running;
    bool is_call_owned; /* a unary call's: freed with the call */
    pl_op_step_fn next;
    pl_op_error_fn on_error;
    pl_op_step_fn on_end;
    struct pl_op_block *blocks;
};

/* A query whose failure is logged and otherwise ignored (a side effect). */
#define PL_OP_SOFT 1u
/* fn runs for a failed query too (r->code says which); nothing else happens. */
#define PL_OP_ANY_RESULT 2u

/* A new operation on call with a zeroed state of state_size bytes. NULL
 * when out of memory; the call is then finished with RESOURCE_EXHAUSTED. */
pl_op_t *pl_op_new(const pl_app_t *app, pl_call_t *call, const char *name, size_t state_size);

/* pl_op_new, except that it leaves the call alone when out of memory (a
 * request on a device stream answers on the stream). */
pl_op_t *pl_op_try_new(const pl_app_t *app, pl_call_t *call, const char *name, size_t state_size);

/* Failures answer through fn instead of finishing the call. */
void pl_op_on_error(pl_op_t *op, pl_op_error_fn fn);
/* fn runs once as the operation ends, whatever happened (before its memory
 * goes). */
void pl_op_on_end(pl_op_t *op, pl_op_step_fn fn);

/* Authenticates the call, then runs first. A refused or failed
 * authentication finishes the call (auth.h) and ends the operation. */
void pl_op_start(pl_op_t *op, pl_op_step_fn first);
/* Runs first now, unauthenticated: a method that needs no token. */
void pl_op_start_public(pl_op_t *op, pl_op_step_fn first);
/* Runs first now, as who (the device stream is authenticated already). */
void pl_op_run(pl_op_t *op, const pl_principal_t *who, pl_op_step_fn first);

/* next runs once every query out has answered (at once if none is). */
void pl_op_then(pl_op_t *op, pl_op_step_fn next);

/* A statement on a shard for this operation, with pl_op_deadline. lock: NULL, or the rows a
 * write locks (store/pg.h). A query that cannot be queued fails the
 * operation with UNAVAILABLE. */
void pl_op_query(pl_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                 const pl_pg_lock_t *lock, unsigned flags, pl_op_rows_fn fn, void *arg, const char *what);

/* sc on every shard that has keys (store/scatter.h), with pl_op_deadline:
 * fn gets each shard's rows; the next step runs once all have answered.
 * Any shard's failure fails the operation. */
void pl_op_scatter(pl_op_t *op, const pl_scatter_t *sc, pl_op_rows_fn fn, void *arg, const char *what);

/* The deadline for the operation's storage work: the call's, or the
 * store's own (0) once the operation is committed: a client that gave up
 * must not leave a committed change's follow-ups undone. */
int64_t pl_op_deadline(const pl_op_t *op);

/* Other asynchronous work (Redis, a scatter): hold before it starts,
 * release when its callback is done; the next step waits for it like for a
 * query. */
void pl_op_hold(pl_op_t *op);
void pl_op_release(pl_op_t *op);

/* Answers the client for a failed query (pl_query_failure), once. */
void pl_op_fail_query(pl_op_t *op, const pl_pg_result_t *r, const char *what);

/* Answers the client with code and a printf-style message; no step runs
 * after this one. */
void pl_op_fail(pl_op_t *op, pl_code_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* size zeroed bytes that live as long as the operation. NULL when out of
 * memory (then pl_op_fail_nomem). */
void *pl_op_alloc(pl_op_t *op, size_t size);
void pl_op_fail_nomem(pl_op_t *op);

#endif
