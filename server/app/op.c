/* op.c — see op.h. */
#include "app/op.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "runtime/errors.h"

#define FIRST_BLOCK_BYTES 512 /* most operations need a few small records */
#define BLOCK_BYTES 4096      /* then request memory comes in blocks of at least this */

/* Request-scoped memory: a bump allocator over a list of blocks. */
typedef struct pl_op_block {
    struct pl_op_block *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} pl_op_block_t;

static size_t round_up(size_t n)
{
    return (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
}

static void op_dispose(pl_op_t *op)
{
    if (op->on_end)
        op->on_end(op);
    for (pl_op_block_t *b = op->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(op);
}

/* A unary call's operation goes with the call (pl_call_set_user). */
static void on_call_freed(void *user)
{
    op_dispose(user);
}

pl_op_t *pl_op_try_new(const pl_app_t *app, pl_call_t *call, const char *name, size_t state_size)
{
    size_t head = round_up(sizeof(pl_op_t));
    pl_op_t *op = calloc(1, head + state_size);
    if (op)
        *op = (pl_op_t){.app = app, .call = call, .name = name, .state = (unsigned char *)op + head};
    return op;
}

pl_op_t *pl_op_new(const pl_app_t *app, pl_call_t *call, const char *name, size_t state_size)
{
    pl_op_t *op = pl_op_try_new(app, call, name, state_size);
    if (!op)
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "server out of memory; retry");
    return op;
}

void pl_op_on_error(pl_op_t *op, pl_op_error_fn fn)
{
    op->on_error = fn;
}

void pl_op_on_end(pl_op_t *op, pl_op_step_fn fn)
{
    op->on_end = fn;
}

/* Runs the steps that are due; ends the operation when nothing is left. */
static void drive(pl_op_t *op)
{
    if (op->is_running)
        return; /* a step called pl_op_then: the loop below runs it */
    op->is_running = true;
    while (op->next && op->pending == 0 && !op->is_failed) {
        if (!op->is_committed && pl_call_is_finished(op->call)) {
            op->next = NULL; /* cancelled or past its deadline before changing anything */
            break;
        }
        pl_op_step_fn step = op->next;
        op->next = NULL;
        step(op);
    }
    op->is_running = false;
    /* an operation on a stream ends with its work; the stream goes on */
    if (!op->is_call_owned && op->pending == 0 && (!op->next || op->is_failed)) {
        pl_call_t *call = op->call;
        op_dispose(op);
        pl_call_unref(call);
    }
}

static void answer(pl_op_t *op, pl_code_t code, const char *message)
{
    op->is_failed = true;
    op->next = NULL;
    if (op->on_error)
        op->on_error(op, code, message);
    else
        pl_call_finish(op->call, code, message);
}

static void on_authenticated(pl_call_t *call, const pl_principal_t *who, void *user)
{
    (void)call;
    pl_op_t *op = user;
    op->who = *who;
    drive(op);
}

static void own(pl_op_t *op, pl_op_step_fn first)
{
    op->is_call_owned = true;
    op->next = first;
    pl_call_set_user(op->call, op, on_call_freed);
}

void pl_op_start(pl_op_t *op, pl_op_step_fn first)
{
    /* a refused authentication finishes the call and never calls back:
     * the call's end frees the operation either way */
    own(op, first);
    pl_auth_call(op->app, op->call, on_authenticated, op);
}

void pl_op_start_public(pl_op_t *op, pl_op_step_fn first)
{
    own(op, first);
    drive(op);
}

void pl_op_run(pl_op_t *op, const pl_principal_t *who, pl_op_step_fn first)
{
    pl_call_ref(op->call); /* given back when the operation ends (drive) */
    op->who = *who;
    op->next = first;
    drive(op);
}

void pl_op_then(pl_op_t *op, pl_op_step_fn next)
{
    op->next = next;
}

int64_t pl_op_deadline(const pl_op_t *op)
{
    return op->is_committed ? 0 : pl_call_deadline(op->call);
}

typedef struct op_query {
    pl_op_t *op;
    pl_op_rows_fn fn;
    void *arg;
    unsigned flags;
    const char *what;
} op_query_t;

static void on_query(const pl_pg_result_t *r, void *user)
{
    op_query_t *q = user;
    pl_op_t *op = q->op;
    /* rows still count after the client left: they may say a change
     * committed, whose follow-ups must run (drive decides what runs next) */
    if (r->code == PL_CODE_OK || (q->flags & PL_OP_ANY_RESULT)) {
        if (!op->is_failed)
            q->fn(op, r, q->arg);
    } else if (q->flags & PL_OP_SOFT) {
        if (r->code != PL_CODE_CANCELLED)
            pl_log_error("%s: %s: %s (sqlstate %s)", op->name, q->what, r->message, r->sqlstate);
    } else {
        pl_op_fail_query(op, r, q->what);
    }
    pl_op_release(op); /* may free a unary call, and op (with q) with it */
}

static void on_scatter(const pl_pg_result_t *r, void *user)
{
    op_query_t *q = user;
    pl_op_t *op = q->op;
    if (r->res) { /* one shard's rows; the end comes last */
        if (!op->is_failed)
            q->fn(op, r, q->arg);
        return;
    }
    if (r->code != PL_CODE_OK)
        pl_op_fail_query(op, r, q->what);
    pl_op_release(op);
}

/* The record a storage request carries, in the operation's memory (no
 * allocation of its own per query); NULL when out of memory. */
static op_query_t *query_record(pl_op_t *op, pl_op_rows_fn fn, void *arg, unsigned flags, const char *what)
{
    op_query_t *q = pl_op_alloc(op, sizeof(*q));
    if (q)
        *q = (op_query_t){op, fn, arg, flags, what};
    return q;
}

/* A storage request was queued (rc 0: the next step waits for it) or was
 * not: the operation fails, or for a soft query a line is logged. */
static void submitted(pl_op_t *op, int rc, unsigned flags, const char *what)
{
    if (rc == 0)
        pl_op_hold(op);
    else if (flags & PL_OP_SOFT)
        pl_log_error("%s: %s: cannot queue the query", op->name, what);
    else if (rc == PL_ERR_NOMEM)
        pl_op_fail_nomem(op);
    else
        answer(op, PL_CODE_UNAVAILABLE, "server busy; retry");
}

void pl_op_query(pl_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                 const pl_pg_lock_t *lock, unsigned flags, pl_op_rows_fn fn, void *arg, const char *what)
{
    if (op->is_failed)
        return;
    pl_store_t *store = pl_app_store(op->app, pl_call_worker(op->call));
    op_query_t *q = query_record(op, fn, arg, flags, what);
    int rc = !q       ? PL_ERR_NOMEM
             : !store ? PL_ERR_CLOSED
                      : pl_store_exec_keyed(store, stmt, shard, params, nparams, pg_flags, lock, pl_op_deadline(op),
                                            on_query, q);
    submitted(op, rc, flags, what);
}

void pl_op_scatter(pl_op_t *op, const pl_scatter_t *sc, pl_op_rows_fn fn, void *arg, const char *what)
{
    if (op->is_failed)
        return;
    pl_store_t *store = pl_app_store(op->app, pl_call_worker(op->call));
    op_query_t *q = query_record(op, fn, arg, 0, what);
    int rc = !q       ? PL_ERR_NOMEM
             : !store ? PL_ERR_CLOSED
                      : pl_store_scatter(store, sc, pl_op_deadline(op), on_scatter, q);
    submitted(op, rc, 0, what);
}

void pl_op_fail_query(pl_op_t *op, const pl_pg_result_t *r, const char *what)
{
    if (op->is_failed)
        return;
    char where[128];
    snprintf(where, sizeof(where), "%s: %s", op->name, what);
    const char *message;
    pl_code_t code = pl_query_failure(r, where, &message);
    answer(op, code, message);
}

void pl_op_hold(pl_op_t *op)
{
    op->pending++;
    pl_call_ref(op->call);
}

void pl_op_release(pl_op_t *op)
{
    pl_call_t *call = op->call;
    op->pending--;
    drive(op); /* may end op */
    pl_call_unref(call);
}

void pl_op_fail(pl_op_t *op, pl_code_t code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!op->is_failed)
        answer(op, code, msg);
}

void pl_op_fail_nomem(pl_op_t *op)
{
    pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "server out of memory; retry");
}

void *pl_op_alloc(pl_op_t *op, size_t size)
{
    size = round_up(size ? size : 1);
    pl_op_block_t *b = op->blocks;
    if (!b || b->cap - b->used < size) {
        size_t least = b ? BLOCK_BYTES : FIRST_BLOCK_BYTES;
        size_t cap = size > least ? size : least;
        if (!(b = malloc(sizeof(*b) + cap)))
            return NULL;
        *b = (pl_op_block_t){op->blocks, 0, cap};
        op->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    return memset(p, 0, size);
}
