/* op.c — one Chats request as a chain of steps: authentication, then
 * queries (often several shards at once) whose completion runs the next
 * step. Errors end the call once; after a change is committed the side
 * effects (chat lists, notifications) still run if the client went away. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "runtime/errors.h"

static void op_free(void *user)
{
    chats_op_t *op = user;
    chats_view_dispose(&op->view);
    free(op->check.ids);
    free(op->check.exists);
    free(op->check.blocks);
    free(op->event);
    free(op->event2);
    free(op->listings);
    free(op->ids);
    free(op->cands);
    free(op->entries);
    free(op);
}

chats_op_t *chats_op_new(pl_chats_t *svc, pl_call_t *call, const void *req, const char *name)
{
    chats_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    op->svc = svc;
    op->app = svc->app;
    op->call = call;
    op->req = req;
    op->name = name;
    pl_call_set_user(call, op, op_free);
    return op;
}

static void on_auth(pl_call_t *call, const pl_principal_t *who, void *user)
{
    (void)call;
    chats_op_t *op = user;
    op->who = *who;
    chats_step_fn first = op->next;
    op->next = NULL;
    first(op);
}

void chats_op_start(chats_op_t *op, chats_step_fn first)
{
    op->next = first;
    pl_auth_call(op->app, op->call, on_auth, op);
}

static void resume(chats_op_t *op)
{
    if (op->is_failed || !op->next)
        return;
    if (!op->is_committed && pl_call_is_finished(op->call))
        return; /* cancelled or past its deadline before changing anything */
    chats_step_fn next = op->next;
    op->next = NULL;
    next(op);
}

void chats_then(chats_op_t *op, chats_step_fn next)
{
    op->next = next;
    if (op->pending == 0)
        resume(op);
}

void chats_fail(chats_op_t *op, pl_code_t code, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    op->is_failed = true;
    op->next = NULL;
    pl_call_finish(op->call, code, msg);
}

typedef struct query {
    chats_op_t *op;
    chats_result_fn fn;
    void *arg;
    unsigned flags;
    const char *what;
} query_t;

static void on_query(const pl_pg_result_t *r, void *user)
{
    query_t *q = user;
    chats_op_t *op = q->op;
    pl_call_t *call = op->call;
    if (r->code == PL_CODE_OK) {
        if (!op->is_failed && r->res) /* a scatter's end has no rows */
            q->fn(op, r->res, q->arg);
    } else if (q->flags & CHATS_Q_SOFT) {
        pl_log_error("chats %s: %s: %s (sqlstate %s)", op->name, q->what, r->message, r->sqlstate);
    } else if (!op->is_failed) {
        char what[128];
        snprintf(what, sizeof(what), "chats %s: %s", op->name, q->what);
        op->is_failed = true;
        if (!pl_call_fail_query(call, r, what))
            pl_call_finish(call, PL_CODE_INTERNAL, "internal error");
    }
    free(q);
    if (--op->pending == 0)
        resume(op);
    pl_call_unref(call); /* may free op */
}

/* Like pl_call_query, except that once the change is committed the
 * follow-up queries get the store's own deadline, not the call's: a client
 * that gave up (or set a short deadline) must not leave the chat lists
 * behind. */
void chats_query(chats_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                 unsigned flags, chats_result_fn fn, void *arg, const char *what)
{
    if (op->is_failed)
        return;
    pl_store_t *store = pl_app_store(op->app, pl_call_worker(op->call));
    query_t *q = store ? malloc(sizeof(*q)) : NULL;
    int rc = PL_ERR_NOMEM;
    if (q) {
        *q = (query_t){op, fn, arg, flags, what};
        pl_call_ref(op->call);
        int64_t deadline = op->is_committed ? 0 : pl_call_deadline(op->call);
        /* writes on the chat's shard lock its row first: batch them in chat order */
        pl_pg_lock_t lock = {0};
        if ((pg_flags & PL_PG_WRITE) && shard == op->chat_shard && op->chat_id > 0)
            lock = pl_chat_lock(op->chat_id, 0, 0);
        rc = pl_store_exec_keyed(store, op->svc->stmt + stmt, shard, params, nparams, pg_flags, &lock, deadline,
                                 on_query, q);
        if (rc != 0)
            pl_call_unref(op->call);
    }
    if (rc == 0) {
        op->pending++;
        return;
    }
    free(q);
    if (flags & CHATS_Q_SOFT) {
        pl_log_error("chats %s: %s: not queued (%s)", op->name, what, rc == PL_ERR_FULL ? "queue full" : "no memory");
        return;
    }
    chats_fail(op, PL_CODE_UNAVAILABLE, "server busy; retry");
}

static void on_scatter(const pl_pg_result_t *r, void *user)
{
    query_t *q = user;
    if (!r->res)
        on_query(r, q); /* the end */
    else if (!q->op->is_failed)
        q->fn(q->op, r->res, q->arg);
}

void chats_scatter(chats_op_t *op, const pl_scatter_t *sc, chats_result_fn fn, const char *what)
{
    pl_store_t *store = pl_app_store(op->app, pl_call_worker(op->call));
    query_t *q = op->is_failed || !store ? NULL : malloc(sizeof(*q));
    pl_scatter_t ours = *sc;
    ours.stmt += op->svc->stmt;
    if (q) {
        *q = (query_t){op, fn, NULL, 0, what};
        pl_call_ref(op->call);
        if (pl_store_scatter(store, &ours, pl_call_deadline(op->call), on_scatter, q) == 0) {
            op->pending++;
            return;
        }
        pl_call_unref(op->call);
    }
    free(q);
    if (!op->is_failed)
        chats_fail(op, PL_CODE_UNAVAILABLE, "server busy; retry");
}
