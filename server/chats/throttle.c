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

static void warn_skipped(chats_op_t *op, const char *why)
{
    int64_t now = pl_now_usec();
    int64_t last = atomic_load(&op->svc->redis_warned_usec);
    if (now - last < THROTTLE_WARN_EVERY_USEC ||
        !atomic_compare_exchange_strong(&op->svc->redis_warned_usec, &last, now))
        return;
    pl_log_warn("chats: group rate limit not applied (%s); allowing group operations", why);
}

static void on_take(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    chats_op_t *op = user;
    pl_call_t *call = op->call;
    chats_step_fn next = op->next;
    op->next = NULL;
    if (pl_call_is_finished(call)) {
        /* the client is gone; nothing changed yet */
    } else if (code != PL_CODE_OK) {
        warn_skipped(op, message);
        next(op);
    } else if (!rate->is_allowed) {
        chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many group changes; retry after %lld ms",
                   (long long)rate->retry_after_ms);
    } else {
        next(op);
    }
    pl_call_unref(call);
}

void chats_throttle(chats_op_t *op, chats_step_fn next)
{
    const pl_config_t *cfg = op->app->cfg;
    pl_redis_t *redis = pl_app_redis(op->app, pl_call_worker(op->call));
    if (!redis) {
        warn_skipped(op, "no redis connection");
        next(op);
        return;
    }
    char name[40];
    int len = snprintf(name, sizeof(name), "group:%lld", (long long)op->who.account_id);
    uint32_t capacity = (uint32_t)cfg->group_ops_per_minute;
    op->next = next;
    pl_call_ref(op->call);
    int rc = pl_cache_ratelimit_take(redis, name, (size_t)len, capacity, capacity / 60.0, 1, on_take, op);
    if (rc != 0) {
        pl_call_unref(op->call);
        op->next = NULL;
        warn_skipped(op, "cannot queue the redis command");
        next(op);
    }
}
