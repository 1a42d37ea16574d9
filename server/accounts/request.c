/* request.c — an accounts request as an operation (app/op.h): its state,
 * the service's queries and scatters, and Redis rate limits taken on the
 * operation's behalf (accounts_internal.h). */
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts_internal.h"
#include "app/log.h"
#include "cache/ratelimit.h"
#include "runtime/clock.h"
#include "transport/worker.h"

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
    pl_op_query(op, stmt, shard, params, nparams, pg_flags, NULL, 0, fn, NULL, what);
}

void pl_acct_query_shards(pl_op_t *op, int stmt, const int64_t *ids, const char *const *phones, size_t n,
                          pl_op_rows_fn fn, const char *what)
{
    pl_scatter_t sc = {.stmt = stmt, .flags = PL_PG_IDEMPOTENT, .ids = ids, .texts = phones, .n = n};
    pl_op_scatter(op, &sc, fn, NULL, what);
}

typedef struct rate_take {
    pl_op_t *op;
    pl_acct_rate_fn fn;
    uint32_t capacity, cost;
    double refill_per_second;
    int attempts;
    struct event *retry_ev;
    char name[PL_CACHE_RATELIMIT_MAX_NAME + 1];
} rate_take_t;

/* Redis connecting (a node just started) or reconnecting: a short wait
 * before giving up, rather than failing a client that is on time. */
#define RATE_RETRY_MS 100
#define RATE_RETRIES 20

/* Logs that the limiter is unavailable, at most once a second per node. */
static void warn_limiter(pl_accounts_t *s, pl_call_t *call, const char *why)
{
    int64_t now = pl_now_msec(), last = atomic_load_explicit(&s->limiter_warned_ms, memory_order_relaxed);
    if (now - last < 1000 || !atomic_compare_exchange_strong_explicit(&s->limiter_warned_ms, &last, now,
                                                                      memory_order_relaxed, memory_order_relaxed))
        return;
    pl_log_warn("accounts: rate limiter unavailable (%s: %s): RequestCode fails closed, lookups fail open",
                pl_call_method(call)->name, why);
}

static void rate_send(rate_take_t *t);

static void on_rate_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rate_send(arg);
}

static void rate_done(rate_take_t *t, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    pl_op_t *op = t->op;
    if (!op->is_failed && !pl_call_is_finished(op->call)) {
        if (code != PL_CODE_OK)
            warn_limiter(pl_acct_svc(op), op->call, message);
        t->fn(op, code, code == PL_CODE_OK ? rate : NULL);
    }
    if (t->retry_ev)
        event_free(t->retry_ev);
    pl_op_release(op); /* may end the call, and t with it */
}

/* Tries again shortly; false when out of attempts or time. */
static bool rate_retry(rate_take_t *t)
{
    pl_call_t *call = t->op->call;
    int64_t deadline = pl_call_deadline(call);
    if (++t->attempts > RATE_RETRIES || pl_call_is_finished(call) ||
        (deadline && pl_now_usec() + RATE_RETRY_MS * 1000 >= deadline))
        return false;
    if (!t->retry_ev)
        t->retry_ev = evtimer_new(pl_worker_base(pl_call_worker(call)), on_rate_retry, t);
    struct timeval tv = {0, RATE_RETRY_MS * 1000};
    return t->retry_ev && evtimer_add(t->retry_ev, &tv) == 0;
}

static void on_rate(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    rate_take_t *t = user;
    if (code == PL_CODE_UNAVAILABLE && rate_retry(t))
        return;
    rate_done(t, code, message, rate);
}

static void rate_send(rate_take_t *t)
{
    pl_redis_t *redis = pl_app_redis(t->op->app, pl_call_worker(t->op->call));
    if (!redis || !pl_redis_is_up(redis)) {
        if (!rate_retry(t))
            rate_done(t, PL_CODE_UNAVAILABLE, redis ? "not connected" : "no redis connection", NULL);
        return;
    }
    if (pl_cache_ratelimit_take(redis, t->name, strlen(t->name), t->capacity, t->refill_per_second, t->cost, on_rate,
                                t) != 0)
        rate_done(t, PL_CODE_UNAVAILABLE, "cannot queue the command", NULL);
}

void pl_acct_rate_take(pl_op_t *op, const char *name, uint32_t capacity, double refill_per_second, uint32_t cost,
                       pl_acct_rate_fn fn)
{
    rate_take_t *t = pl_op_alloc(op, sizeof(*t));
    if (!t) {
        warn_limiter(pl_acct_svc(op), op->call, "out of memory");
        fn(op, PL_CODE_UNAVAILABLE, NULL);
        return;
    }
    *t = (rate_take_t){.op = op, .fn = fn, .capacity = capacity, .cost = cost, .refill_per_second = refill_per_second};
    snprintf(t->name, sizeof(t->name), "%s", name);
    pl_op_hold(op);
    rate_send(t);
}

void pl_acct_take_lookups(pl_op_t *op, size_t cost, pl_acct_rate_fn fn)
{
    uint32_t cap = (uint32_t)op->app->cfg->lookups_per_minute;
    char name[48];
    snprintf(name, sizeof(name), "lookup:%" PRId64, op->who.account_id);
    pl_acct_rate_take(op, name, cap, cap / 60.0, cost > cap ? cap : (uint32_t)cost, fn);
}

bool pl_acct_lookup_allowed(pl_op_t *op, pl_code_t code, const pl_cache_rate_t *rate)
{
    if (code != PL_CODE_OK)
        return true; /* Redis unavailable (logged above): fail open */
    if (!rate->is_allowed) {
        pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many lookups; retry after %" PRId64 " ms",
                   rate->retry_after_ms);
        return false;
    }
    return true;
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
