/* request.c — an accounts request as an operation (app/op.h): its state,
 * the service's queries and scatters, and Redis rate limits taken on the
 * operation's behalf (accounts_internal.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts_internal.h"
#include "app/log.h"
#include "runtime/clock.h"

pl_op_t *pl_acct_op(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size)
{
    pl_op_t *op = pl_op_new(svc->app, call, "accounts", size);
    if (op)
        *(pl_acct_req_t *)op->state = (pl_acct_req_t){svc, msg};
    return op;
}

void pl_acct_authenticate(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size, pl_op_step_fn first)
{
    pl_op_t *op = pl_acct_op(call, svc, msg, size);
    if (op)
        pl_op_start(op, first);
}

void pl_acct_query(pl_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                   pl_op_rows_fn fn, const char *what)
{
    pl_op_query(op, pl_acct_svc(op)->stmt + stmt, shard, params, nparams, pg_flags, NULL, 0, fn, NULL, what);
}

void pl_acct_query_shards(pl_op_t *op, int stmt, const int64_t *ids, const char *const *phones, size_t n,
                          pl_op_rows_fn fn, const char *what)
{
    pl_scatter_t sc = {
        .stmt = pl_acct_svc(op)->stmt + stmt, .flags = PL_PG_IDEMPOTENT, .ids = ids, .texts = phones, .n = n};
    pl_op_scatter(op, &sc, fn, NULL, what);
}

void pl_acct_limiter_down(pl_op_t *op, const char *why)
{
    pl_accounts_t *s = pl_acct_svc(op);
    int64_t now = pl_now_msec(), last = atomic_load_explicit(&s->limiter_warned_ms, memory_order_relaxed);
    if (now - last < 1000 || !atomic_compare_exchange_strong_explicit(&s->limiter_warned_ms, &last, now,
                                                                      memory_order_relaxed, memory_order_relaxed))
        return;
    pl_log_warn("accounts: rate limiter unavailable (%s: %s): RequestCode fails closed, lookups fail open",
                pl_call_method(op->call)->name, why);
}

void pl_acct_take_lookups(pl_op_t *op, size_t cost, pl_op_rate_fn fn)
{
    uint32_t cap = (uint32_t)op->app->cfg->lookups_per_minute;
    char name[48];
    snprintf(name, sizeof(name), "lookup:%" PRId64, op->who.account_id);
    pl_op_rate_take(op, name, cap, cap / 60.0, cost > cap ? cap : (uint32_t)cost, PL_ACCT_RATE_WAIT_MS, fn);
}

bool pl_acct_lookup_allowed(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    if (code != PL_CODE_OK) {
        pl_acct_limiter_down(op, message);
        return true; /* lookups fail open */
    }
    if (!rate->is_allowed) {
        pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many lookups; retry after %" PRId64 " ms",
                   rate->retry_after_ms);
        return false;
    }
    return true;
}

bool pl_acct_refuse_ids(pl_call_t *call, const pl_accounts_t *s, const int64_t *ids, size_t n)
{
    if (n > (size_t)s->app->cfg->lookup_batch_max) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "at most %d account_ids per call", s->app->cfg->lookup_batch_max);
        return true;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] <= 0) {
            pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "account_ids[%zu] must be positive", i);
            return true;
        }
    }
    return false;
}

bool pl_acct_id_is_routable(const pl_accounts_t *s, int64_t id)
{
    return id > 0 && pl_id_is_valid(id) && pl_id_shard(id) < s->app->map.shards;
}

int pl_acct_page_limit(int32_t requested, int max)
{
    if (requested < 0)
        return -1;
    return requested == 0 || requested > max ? max : requested;
}
