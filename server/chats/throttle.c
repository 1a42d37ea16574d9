/* throttle.c — per-account rate limit on group operations (creating a
 * group, membership and settings changes): a Redis token bucket of
 * [rate] group_ops_per_minute tokens, refilled over a minute. When Redis
 * cannot answer the operation goes ahead (fail open): losing Redis must not
 * stop people from using their groups. */
#include <stdio.h>

#include "app/log.h"
#include "cache/ratelimit.h"
#include "chats/chats_internal.h"
#include "runtime/clock.h"

/* At most one "rate limit skipped" warning per this period, per node. */
#define THROTTLE_WARN_EVERY_USEC (10 * 1000000LL)

static void warn_skipped(pl_chats_op_t *op, const char *why)
{
    int64_t now = pl_now_usec();
    int64_t last = atomic_load(&op->svc->redis_warned_usec);
    if (now - last < THROTTLE_WARN_EVERY_USEC ||
        !atomic_compare_exchange_strong(&op->svc->redis_warned_usec, &last, now))
        return;
    pl_log_warn("chats: group rate limit not applied (%s); allowing group operations", why);
}

typedef struct take {
    pl_chats_op_t *op;
    pl_chats_step_fn next;
} take_t;

static void on_take(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    take_t *t = user;
    pl_chats_op_t *op = t->op;
    if (code != PL_CODE_OK) {
        warn_skipped(op, message);
        pl_chats_then(op, t->next);
    } else if (!rate->is_allowed) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many group changes; retry after %lld ms",
                      (long long)rate->retry_after_ms);
    } else {
        pl_chats_then(op, t->next);
    }
    pl_op_release(op->base); /* runs the next step, unless the client is gone (nothing changed yet) */
}

void pl_chats_throttle(pl_chats_op_t *op, pl_chats_step_fn next)
{
    const pl_config_t *cfg = op->base->app->cfg;
    pl_redis_t *redis = pl_app_redis(op->base->app, pl_call_worker(op->base->call));
    take_t *t = redis ? pl_op_alloc(op->base, sizeof(*t)) : NULL;
    if (!t) {
        warn_skipped(op, redis ? "out of memory" : "no redis connection");
        pl_chats_then(op, next);
        return;
    }
    *t = (take_t){op, next};
    char name[40];
    int len = snprintf(name, sizeof(name), "group:%lld", (long long)op->base->who.account_id);
    uint32_t capacity = (uint32_t)cfg->group_ops_per_minute;
    if (pl_cache_ratelimit_take(redis, name, (size_t)len, capacity, capacity / 60.0, 1, on_take, t) == 0) {
        pl_op_hold(op->base);
        return;
    }
    warn_skipped(op, "cannot queue the redis command");
    pl_chats_then(op, next);
}
