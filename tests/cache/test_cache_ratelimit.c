/* test_cache_ratelimit.c — token buckets (server/cache/ratelimit.c) against
 * a real Redis: exhaustion and retry_after, refill, costs above one, keys
 * that expire when full, independent (binary) names, atomicity under a
 * pipelined burst, argument checks, and the NOSCRIPT reload. */
#include "cache/ratelimit.h"
#include "harness.h"
#include "runtime/errors.h"

typedef struct result {
    bool done;
    int calls;
    pl_code_t code;
    pl_cache_rate_t rate;
} result_t;

static result_t res;

static void on_rate(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    result_t *r = user;
    CHECK(!in_submit);
    CHECK(message != NULL);
    CHECK((code == PL_CODE_OK) == (rate != NULL));
    r->calls++;
    r->code = code;
    if (rate)
        r->rate = *rate;
    r->done = true;
}

static pl_cache_rate_t take_n(pl_redis_t *r, const void *name, size_t len, uint32_t cap, double rate, uint32_t cost)
{
    memset(&res, 0, sizeof res);
    in_submit = true;
    int rc = pl_cache_ratelimit_take(r, name, len, cap, rate, cost, on_rate, &res);
    in_submit = false;
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        CHECK(wait_flag(&res.done, 5000));
    CHECK_EQ_INT(res.calls, 1);
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    return res.rate;
}

static pl_cache_rate_t take(pl_redis_t *r, const char *name, uint32_t cap, double rate, uint32_t cost)
{
    return take_n(r, name, strlen(name), cap, rate, cost);
}

static void test_exhaust_then_refill(pl_redis_t *r)
{
    /* 3 tokens, 2 per second. */
    for (int i = 0; i < 3; i++)
        CHECK(take(r, "send:1", 3, 2.0, 1).is_allowed);
    pl_cache_rate_t denied = take(r, "send:1", 3, 2.0, 1);
    CHECK(!denied.is_allowed);
    CHECK(denied.retry_after_ms > 0 && denied.retry_after_ms <= 500);
    CHECK(!take(r, "send:1", 3, 2.0, 1).is_allowed); /* refusals take nothing, but nothing is there */
    run_for((int)denied.retry_after_ms + 30);
    CHECK(take(r, "send:1", 3, 2.0, 1).is_allowed);
    CHECK(!take(r, "send:1", 3, 2.0, 1).is_allowed);

    /* The key lives until the bucket would be full again (<= 1.5 s). */
    const raw_reply_t *x = raw_cmd(r, "PTTL", "parley:rl:send:1");
    CHECK(x->integer > 0 && x->integer <= 1500);
}

static void test_costs(pl_redis_t *r)
{
    CHECK(take(r, "bulk", 10, 4.0, 7).is_allowed);
    pl_cache_rate_t p = take(r, "bulk", 10, 4.0, 7);
    CHECK(!p.is_allowed);
    /* 3 left, 4 missing at 4/s: about a second. */
    CHECK(p.retry_after_ms > 900 && p.retry_after_ms <= 1000);
    CHECK(take(r, "bulk", 10, 4.0, 3).is_allowed);
    /* cost 0 only looks */
    CHECK(take(r, "bulk", 10, 4.0, 0).is_allowed);
}

static void test_full_buckets_vanish(pl_redis_t *r)
{
    CHECK(take(r, "peek", 5, 1.0, 0).is_allowed);
    const raw_reply_t *x = raw_cmd(r, "EXISTS", "parley:rl:peek");
    CHECK_EQ_INT(x->integer, 0); /* a full bucket is no key at all */

    CHECK(take(r, "fast", 1, 10.0, 1).is_allowed);
    x = raw_cmd(r, "PTTL", "parley:rl:fast");
    CHECK(x->integer > 0 && x->integer <= 100);
    run_for(250);
    x = raw_cmd(r, "EXISTS", "parley:rl:fast");
    CHECK_EQ_INT(x->integer, 0);
    CHECK(take(r, "fast", 1, 10.0, 1).is_allowed);
}

static void test_names(pl_redis_t *r)
{
    static const char a[] = "otp:\0a", b[] = "otp:\0b";
    CHECK(take_n(r, a, sizeof a - 1, 1, 0.01, 1).is_allowed);
    CHECK(!take_n(r, a, sizeof a - 1, 1, 0.01, 1).is_allowed);
    CHECK(take_n(r, b, sizeof b - 1, 1, 0.01, 1).is_allowed); /* another bucket */
    const char *argv[] = {"EXISTS", "parley:rl:otp:\0a"};
    size_t lens[] = {6, 16};
    CHECK_EQ_INT(raw_argv(r, 2, argv, lens)->integer, 1);
}

/* 100 takes pipelined at once against 50 tokens: exactly 50 pass. */
typedef struct burst {
    int calls, allowed;
} burst_t;

static void on_burst(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    (void)message;
    burst_t *b = user;
    b->calls++;
    if (code == PL_CODE_OK && rate->is_allowed)
        b->allowed++;
}

static bool pred_burst(void *arg)
{
    return ((burst_t *)arg)->calls >= 100;
}

static void test_atomic_burst(pl_redis_t *r)
{
    burst_t b = {0};
    for (int i = 0; i < 100; i++)
        CHECK_EQ_INT(pl_cache_ratelimit_take(r, "burst", 5, 50, 0.001, 1, on_burst, &b), 0);
    CHECK(run_until(pred_burst, &b, 5000));
    CHECK_EQ_INT(b.calls, 100);
    CHECK_EQ_INT(b.allowed, 50);
}

static void test_invalid(pl_redis_t *r)
{
    memset(&res, 0, sizeof res);
    char long_name[PL_CACHE_RATELIMIT_MAX_NAME + 1];
    memset(long_name, 'x', sizeof long_name);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 3, 1.0, 4, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 0, 1.0, 0, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 3, 0.0, 1, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 3, -1.0, 1, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 0, 3, 1.0, 1, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, long_name, sizeof long_name, 3, 1.0, 1, on_rate, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 3, 1.0, 1, NULL, NULL), PL_ERR_INVALID);
    run_for(50);
    CHECK_EQ_INT(res.calls, 0);
}

static void test_noscript_reload(pl_redis_t *r)
{
    char sha[41];
    CHECK_EQ_INT(pl_cache_ratelimit_sha(sha), 0);
    CHECK_EQ_INT(strlen(sha), 40);
    const raw_reply_t *x = raw_cmd(r, "SCRIPT", "FLUSH");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    x = raw_cmd(r, "EVALSHA", sha, "1", "parley:rl:x", "1", "1", "1");
    CHECK_EQ_INT(x->code, PL_CODE_INTERNAL);
    CHECK(strncmp(x->message, "NOSCRIPT", 8) == 0);
    /* The layer reloads it by itself. */
    CHECK(take(r, "after-flush", 2, 1.0, 1).is_allowed);
    x = raw_cmd(r, "SCRIPT", "EXISTS", sha);
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(x->type, REDIS_REPLY_ARRAY);
    CHECK_EQ_INT(x->elements, 1);
    CHECK_EQ_INT(x->first, 1);
    CHECK(take(r, "after-flush", 2, 1.0, 1).is_allowed);
    CHECK(!take(r, "after-flush", 2, 1.0, 1).is_allowed);
}

int main(void)
{
    harness_begin();
    pl_redis_config_t cfg = test_config(1, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));

    test_exhaust_then_refill(r);
    test_costs(r);
    test_full_buckets_vanish(r);
    test_names(r);
    test_atomic_burst(r);
    test_invalid(r);
    test_noscript_reload(r);

    pl_redis_free(r);
    return harness_end();
}
