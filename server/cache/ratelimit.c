/* ratelimit.c — token buckets (see ratelimit.h): one Lua script. */
#include "cache/ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/keys.h"
#include "cache/reply.h"
#include "runtime/errors.h"

/* KEYS[1] parley:rl:<name>; ARGV capacity, refill per second, cost
 * Returns {allowed (0/1), retry_after_ms}. Time in µs: 1.7e15 is still exact
 * in a double. A clock that steps back refills nothing until it catches up.
 * A bucket left full is deleted; otherwise it expires when it would be. */
/* clang-format off */
static pl_redis_script_t take_script = PL_REDIS_SCRIPT(
    "local cap, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local v = redis.call('HMGET', KEYS[1], 't', 'ts')\n"
    "local tokens, ts = tonumber(v[1]), tonumber(v[2])\n"
    "if not tokens or not ts then\n"
    "  tokens, ts = cap, now\n"
    "elseif now > ts then\n"
    "  tokens = tokens + (now - ts) * rate / 1000000\n"
    "  ts = now\n"
    "end\n"
    "if tokens > cap then tokens = cap end\n"
    "local allowed, retry = 0, 0\n"
    "if tokens >= cost then\n"
    "  tokens = tokens - cost\n"
    "  allowed = 1\n"
    "else\n"
    "  retry = math.ceil((cost - tokens) * 1000 / rate)\n"
    "end\n"
    "local full_ms = math.ceil((cap - tokens) * 1000 / rate)\n"
    "if full_ms <= 0 then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "else\n"
    "  redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%d', ts))\n"
    "  redis.call('PEXPIRE', KEYS[1], full_ms)\n"
    "end\n"
    "return {allowed, retry}\n");
/* clang-format on */

typedef struct take_call {
    pl_cache_rate_fn cb;
    void *user;
} take_call_t;

static void on_take(const pl_redis_result_t *res, void *user)
{
    take_call_t *c = user;
    const redisReply *reply = res->reply;
    int64_t allowed, retry;
    if (res->code != PL_CODE_OK) {
        c->cb(res->code, res->message, NULL, c->user);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
               !pl_cache_reply_i64(reply->element[0], &allowed) || !pl_cache_reply_i64(reply->element[1], &retry)) {
        c->cb(PL_CODE_INTERNAL, "unexpected reply from redis (rate limit)", NULL, c->user);
    } else {
        pl_cache_rate_t rate = {.is_allowed = allowed != 0, .retry_after_ms = allowed ? 0 : retry};
        c->cb(PL_CODE_OK, "OK", &rate, c->user);
    }
    free(c);
}

int pl_cache_ratelimit_take(pl_redis_t *r, const void *name, size_t name_len, uint32_t capacity,
                            double refill_per_second, uint32_t cost, pl_cache_rate_fn cb, void *user)
{
    if (!cb || !name || name_len == 0 || name_len > PL_CACHE_RATELIMIT_MAX_NAME || capacity < 1 || cost > capacity ||
        !isfinite(refill_per_second) || refill_per_second <= 0 || refill_per_second > PL_CACHE_RATELIMIT_MAX_RATE)
        return PL_ERR_INVALID;
    size_t prefix_len = strlen(PL_CACHE_KEY_RATELIMIT);
    char key[sizeof(PL_CACHE_KEY_RATELIMIT) + PL_CACHE_RATELIMIT_MAX_NAME];
    memcpy(key, PL_CACHE_KEY_RATELIMIT, prefix_len);
    memcpy(key + prefix_len, name, name_len);
    char cap[16], rate[32], amount[16];
    snprintf(cap, sizeof cap, "%u", capacity);
    snprintf(rate, sizeof rate, "%.17g", refill_per_second);
    snprintf(amount, sizeof amount, "%u", cost);
    const char *argv[4] = {key, cap, rate, amount};
    size_t argvlen[4] = {prefix_len + name_len, strlen(cap), strlen(rate), strlen(amount)};
    take_call_t *c = malloc(sizeof *c);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->user = user;
    int rc = pl_redis_script_run(r, &take_script, 1, 3, argv, argvlen, on_take, c);
    if (rc != 0)
        free(c);
    return rc;
}

int pl_cache_ratelimit_sha(char out[41])
{
    return pl_redis_script_sha(&take_script, out);
}
