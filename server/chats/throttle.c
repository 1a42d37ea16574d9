/* throttle.c — per-account rate limit on group operations (creating a
 * group, membership and settings changes): a Redis token bucket of
 * [rate] group_ops_per_minute tokens, refilled over a minute. When Redis
 * cannot answer the operation goes ahead (fail open): losing Redis must not
 * stop people from using their groups. */
#include <stdio.h>

#include "app/log.h"
#include "app/rate.h"
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

static void on_take(pl_op_t *base, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    pl_chats_op_t *op = base->state;
    if (code != PL_CODE_OK)
        warn_skipped(op, message); /* fail open */
    else if (!rate->is_allowed)
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "too many group changes; retry after %lld ms",
                      (long long)rate->retry_after_ms);
}

void pl_chats_throttle(pl_chats_op_t *op, pl_chats_step_fn next)
{
    uint32_t capacity = (uint32_t)op->base->app->cfg->group_ops_per_minute;
    char name[40];
    snprintf(name, sizeof(name), "group:%lld", (long long)op->base->who.account_id);
    /* the next step runs once the bucket answered, unless the client is
     * gone (nothing changed yet) */
    pl_chats_then(op, next);
    pl_op_rate_take(op->base, name, capacity, capacity / 60.0, 1, 0, on_take);
}
