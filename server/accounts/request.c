/* request.c — the per-call state every accounts handler starts from,
 * authentication, and the call-scoped wrappers around queries and rate
 * limits (accounts_internal.h). */
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

static void req_free(void *user)
{
    pl_acct_req_t *r = user;
    if (r->dispose)
        r->dispose(r);
    free(r);
}

void *pl_acct_req_new(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size)
{
    pl_acct_req_t *r = calloc(1, size);
    if (!r) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "server out of memory; retry");
        return NULL;
    }
    r->svc = svc;
    r->msg = msg;
    pl_call_set_user(call, r, req_free);
    return r;
}

static void on_authenticated(pl_call_t *call, const pl_principal_t *who, void *user)
{
    pl_acct_req_t *r = user;
    r->who = *who;
    r->on_auth(call, r);
}

void pl_acct_authenticate(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size, pl_acct_step_fn next)
{
    pl_acct_req_t *r = pl_acct_req_new(call, svc, msg, size);
    if (!r)
        return;
    r->on_auth = next;
    pl_auth_call(svc->app, call, on_authenticated, r);
}

bool pl_acct_query(pl_call_t *call, pl_acct_req_t *r, int stmt, int shard, const pl_pg_param_t *params, int nparams,
                   unsigned flags, pl_call_query_fn fn)
{
    if (pl_call_query(r->svc->app, call, stmt, shard, params, nparams, flags, fn, r) == 0)
        return true;
    pl_call_finish(call, PL_CODE_UNAVAILABLE, "server busy; retry");
    return false;
}

bool pl_acct_query_ok(pl_call_t *call, const pl_pg_result_t *res, const char *what)
{
    if (pl_call_is_finished(call))
        return false;
    return !pl_call_fail_query(call, res, what);
}

typedef struct rate_take {
    pl_call_t *call;
    pl_acct_req_t *r;
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
    pl_call_t *call = t->call;
    if (!pl_call_is_finished(call)) {
        if (code != PL_CODE_OK)
            warn_limiter(t->r->svc, call, message);
        t->fn(call, t->r, code, code == PL_CODE_OK ? rate : NULL);
    }
    if (t->retry_ev)
        event_free(t->retry_ev);
    free(t);
    pl_call_unref(call);
}

/* Tries again shortly; false when out of attempts or time. */
static bool rate_retry(rate_take_t *t)
{
    int64_t deadline = pl_call_deadline(t->call);
    if (++t->attempts > RATE_RETRIES || pl_call_is_finished(t->call) ||
        (deadline && pl_now_usec() + RATE_RETRY_MS * 1000 >= deadline))
        return false;
    if (!t->retry_ev)
        t->retry_ev = evtimer_new(pl_worker_base(pl_call_worker(t->call)), on_rate_retry, t);
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
    pl_redis_t *redis = pl_app_redis(t->r->svc->app, pl_call_worker(t->call));
    if (!redis || !pl_redis_is_up(redis)) {
        if (!rate_retry(t))
            rate_done(t, PL_CODE_UNAVAILABLE, redis ? "not connected" : "no redis connection", NULL);
        return;
    }
    if (pl_cache_ratelimit_take(redis, t->name, strlen(t->name), t->capacity, t->refill_per_second, t->cost, on_rate,
                                t) != 0)
        rate_done(t, PL_CODE_UNAVAILABLE, "cannot queue the command", NULL);
}

void pl_acct_rate_take(pl_call_t *call, pl_acct_req_t *r, const char *name, uint32_t capacity, double refill_per_second,
                       uint32_t cost, pl_acct_rate_fn fn)
{
    rate_take_t *t = calloc(1, sizeof(*t));
    if (!t) {
        warn_limiter(r->svc, call, "out of memory");
        fn(call, r, PL_CODE_UNAVAILABLE, NULL);
        return;
    }
    *t = (rate_take_t){
        .call = call, .r = r, .fn = fn, .capacity = capacity, .cost = cost, .refill_per_second = refill_per_second};
    snprintf(t->name, sizeof(t->name), "%s", name);
    pl_call_ref(call);
    rate_send(t);
}

void pl_acct_take_lookups(pl_call_t *call, pl_acct_req_t *r, size_t cost, pl_acct_rate_fn fn)
{
    const pl_config_t *cfg = r->svc->app->cfg;
    uint32_t cap = (uint32_t)cfg->lookups_per_minute;
    char name[48];
    snprintf(name, sizeof(name), "lookup:%" PRId64, r->who.account_id);
    pl_acct_rate_take(call, r, name, cap, cap / 60.0, cost > cap ? cap : (uint32_t)cost, fn);
}

bool pl_acct_lookup_allowed(pl_call_t *call, pl_code_t code, const pl_cache_rate_t *rate)
{
    if (code != PL_CODE_OK)
        return true; /* Redis unavailable (logged above): fail open */
    if (!rate->is_allowed) {
        pl_call_failf(call, PL_CODE_RESOURCE_EXHAUSTED, "too many lookups; retry after %" PRId64 " ms",
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
