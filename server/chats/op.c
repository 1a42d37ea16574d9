/* op.c — a Chats request on the one operation type (app/op.h): pl_chats_op_t
 * is the operation's state, and steps, queries and failures go through
 * pl_op. What stays chats' own: statement numbers relative to the service,
 * writes on the chat's shard locking its row first, and the state's arrays,
 * freed as the operation ends. After a change is committed its side effects
 * (chat lists, notifications) still run if the client went away. */
#include <stdlib.h>

#include "app/log.h"
#include "chats/chats_internal.h"

static void op_end(pl_op_t *base)
{
    pl_chats_op_t *op = base->state;
    pl_chats_view_dispose(&op->view);
    free(op->check.ids);
    free(op->check.exists);
    free(op->check.blocks);
    free(op->event);
    free(op->event2);
    free(op->listings);
    free(op->ids);
    free(op->cands);
    free(op->entries);
}

static void run_step(pl_op_t *base)
{
    pl_chats_op_t *op = base->state;
    pl_chats_step_fn step = op->step;
    op->step = NULL;
    step(op);
}

void pl_chats_start(pl_chats_t *svc, pl_call_t *call, const void *req, const char *name, pl_chats_step_fn first)
{
    pl_op_t *base = pl_op_new(svc->app, call, name, sizeof(pl_chats_op_t));
    if (!base)
        return;
    *(pl_chats_op_t *)base->state = (pl_chats_op_t){.base = base, .svc = svc, .req = req, .step = first};
    pl_op_on_end(base, op_end);
    pl_op_start(base, run_step);
}

void pl_chats_then(pl_chats_op_t *op, pl_chats_step_fn next)
{
    op->step = next;
    pl_op_then(op->base, run_step);
}

typedef struct rows_cb {
    pl_chats_op_t *op;
    pl_chats_result_fn fn;
    void *arg;
} rows_cb_t;

static void on_rows(pl_op_t *base, const pl_pg_result_t *r, void *user)
{
    (void)base;
    rows_cb_t *cb = user;
    cb->fn(cb->op, r->res, cb->arg);
}

void pl_chats_query(pl_chats_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                    unsigned flags, pl_chats_result_fn fn, void *arg, const char *what)
{
    rows_cb_t *cb = pl_op_alloc(op->base, sizeof(*cb));
    if (!cb) {
        if (flags & PL_OP_SOFT)
            pl_log_error("chats %s: %s: not queued (no memory)", op->base->name, what);
        else
            pl_op_fail_nomem(op->base);
        return;
    }
    *cb = (rows_cb_t){op, fn, arg};
    /* writes on the chat's shard lock its row first: batch them in chat order */
    pl_pg_lock_t lock = {0};
    if ((pg_flags & PL_PG_WRITE) && shard == op->chat_shard && op->chat_id > 0)
        lock = pl_chat_lock(op->chat_id, 0, 0);
    pl_op_query(op->base, op->svc->stmt + stmt, shard, params, nparams, pg_flags, &lock, flags, on_rows, cb, what);
}

void pl_chats_scatter(pl_chats_op_t *op, const pl_scatter_t *sc, pl_chats_result_fn fn, const char *what)
{
    rows_cb_t *cb = pl_op_alloc(op->base, sizeof(*cb));
    if (!cb) {
        pl_op_fail_nomem(op->base);
        return;
    }
    *cb = (rows_cb_t){op, fn, NULL};
    pl_scatter_t ours = *sc;
    ours.stmt += op->svc->stmt;
    pl_op_scatter(op->base, &ours, on_rows, cb, what);
}
