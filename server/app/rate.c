/* rate.c — see rate.h. */
#include "app/rate.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "runtime/clock.h"
#include "transport/worker.h"

#define RETRY_MS 100

typedef struct rate_take {
    pl_op_t *op;
    pl_op_rate_fn fn;
    uint32_t capacity, cost;
    double refill_per_second;
    int64_t give_up_usec; /* 0: no retries */
    struct event *retry_ev;
    char name[PL_CACHE_RATELIMIT_MAX_NAME + 1];
} rate_take_t;

static void rate_send(rate_take_t *t);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rate_send(arg);
}

static void rate_done(rate_take_t *t, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    pl_op_t *op = t->op;
    if (!op->is_failed && !pl_call_is_finished(op->call))
        t->fn(op, code, message, code == PL_CODE_OK ? rate : NULL);
    if (t->retry_ev)
        event_free(t->retry_ev);
    pl_op_release(op); /* may end the call, and t with it */
}

/* Tries again shortly; false when out of time. */
static bool rate_retry(rate_take_t *t)
{
    pl_call_t *call = t->op->call;
    int64_t deadline = pl_call_deadline(call), next = pl_now_usec() + RETRY_MS * 1000;
    if (next >= t->give_up_usec || pl_call_is_finished(call) || (deadline && next >= deadline))
        return false;
    if (!t->retry_ev)
        t->retry_ev = evtimer_new(pl_worker_base(pl_call_worker(call)), on_retry, t);
    struct timeval tv = {0, RETRY_MS * 1000};
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

void pl_op_rate_take(pl_op_t *op, const char *name, uint32_t capacity, double refill_per_second, uint32_t cost,
                     int wait_ms, pl_op_rate_fn fn)
{
    rate_take_t *t = pl_op_alloc(op, sizeof(*t));
    if (!t) {
        fn(op, PL_CODE_UNAVAILABLE, "out of memory", NULL);
        return;
    }
    *t = (rate_take_t){.op = op, .fn = fn, .capacity = capacity, .cost = cost, .refill_per_second = refill_per_second};
    t->give_up_usec = wait_ms > 0 ? pl_now_usec() + (int64_t)wait_ms * 1000 : 0;
    snprintf(t->name, sizeof(t->name), "%s", name);
    pl_op_hold(op);
    rate_send(t);
}
