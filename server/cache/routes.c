/* routes.c — the route registry (see routes.h): three Lua scripts
 * over one hash per account, and a lookup script for many accounts. */
#include "cache/routes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/keys.h"
#include "cache/reply.h"
#include "runtime/errors.h"

/* KEYS[1] parley:sess:<account>
 * ARGV device, node, epoch, ttl_ms, max_devices, mode ("put" | "refresh")
 * Returns 1 (stored), 0 (refresh refused: another live owner), -1 (full).
 * Expired entries of other devices are pruned here, and the key's TTL is
 * set to the latest expiry left. */
/* clang-format off */
static pl_redis_script_t put_script = PL_REDIS_SCRIPT(
    PL_REDIS_LUA_NOW_MS
    "local owner = ARGV[2] .. ':' .. ARGV[3] .. ':'\n"
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if ARGV[6] == 'refresh' and cur and string.sub(cur, 1, #owner) ~= owner then\n"
    "  local e = tonumber(string.match(cur, ':(%d+)$'))\n"
    "  if e and e > now then return 0 end\n"
    "end\n"
    "local exp = now + tonumber(ARGV[4])\n"
    "local maxexp, live = exp, 0\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  if all[i] ~= ARGV[1] then\n"
    "    local e = tonumber(string.match(all[i + 1], ':(%d+)$'))\n"
    "    if not e or e <= now then\n"
    "      redis.call('HDEL', KEYS[1], all[i])\n"
    "    else\n"
    "      live = live + 1\n"
    "      if e > maxexp then maxexp = e end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if live >= tonumber(ARGV[5]) then return -1 end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], owner .. string.format('%d', exp))\n"
    "redis.call('PEXPIREAT', KEYS[1], string.format('%d', maxexp))\n"
    "return 1\n");
/* clang-format on */

/* KEYS[1] parley:sess:<account>; ARGV device, "<node>:<epoch>:"
 * Returns 1 (removed) or 0 (not that owner's). */
/* clang-format off */
static pl_redis_script_t del_script = PL_REDIS_SCRIPT(
    "local cur = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if cur and string.sub(cur, 1, #ARGV[2]) == ARGV[2] then\n"
    "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n");
/* clang-format on */

/* KEYS one parley:sess:<account> per account.
 * Returns a flat array: key index (1-based), device, node, epoch for every
 * entry not yet expired. Ids stay strings: Lua numbers are doubles, and
 * 64-bit ids do not fit in 53 bits. */
/* clang-format off */
static pl_redis_script_t lookup_script = PL_REDIS_SCRIPT(
    PL_REDIS_LUA_NOW_MS
    "local out = {}\n"
    "for k = 1, #KEYS do\n"
    "  local all = redis.call('HGETALL', KEYS[k])\n"
    "  for i = 1, #all, 2 do\n"
    "    local node, epoch, e = string.match(all[i + 1], '^(%d+):(%d+):(%d+)$')\n"
    "    if e and tonumber(e) > now then\n"
    "      out[#out + 1] = k\n"
    "      out[#out + 1] = all[i]\n"
    "      out[#out + 1] = node\n"
    "      out[#out + 1] = epoch\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n");
/* clang-format on */

static bool route_is_valid(const pl_cache_route_t *s)
{
    return s && s->node_id >= 0;
}

static int run_put(pl_redis_t *r, const pl_cache_route_t *s, int ttl_s, const char *mode, const pl_cache_int_cb_t *cb,
                   void *user)
{
    if (!route_is_valid(s) || ttl_s < 1 || ttl_s > PL_CACHE_MAX_TTL_S)
        return PL_ERR_INVALID;
    char key[PL_CACHE_KEY_MAX], device[24], node[16], epoch[24], ttl[24], max[16];
    pl_cache_key_id(key, PL_CACHE_KEY_SESSIONS, s->account_id);
    snprintf(device, sizeof device, "%" PRId64, s->device_id);
    snprintf(node, sizeof node, "%" PRId32, s->node_id);
    snprintf(epoch, sizeof epoch, "%" PRIu64, s->epoch);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s * 1000);
    snprintf(max, sizeof max, "%d", PL_CACHE_MAX_DEVICES);
    const char *argv[7] = {key, device, node, epoch, ttl, max, mode};
    return pl_cache_int_run(r, &put_script, 1, 7, argv, NULL, cb, user);
}

int pl_cache_route_put(pl_redis_t *r, const pl_cache_route_t *s, int ttl_s, pl_cache_done_fn cb, void *user)
{
    pl_cache_int_cb_t c = {
        .kind = PL_CACHE_INT_DONE, .fn.done = cb, .limit_message = "too many live routes for this account"};
    return run_put(r, s, ttl_s, "put", &c, user);
}

int pl_cache_route_refresh(pl_redis_t *r, const pl_cache_route_t *s, int ttl_s, pl_cache_flag_fn cb, void *user)
{
    pl_cache_int_cb_t c = {
        .kind = PL_CACHE_INT_FLAG, .fn.flag = cb, .limit_message = "too many live routes for this account"};
    return run_put(r, s, ttl_s, "refresh", &c, user);
}

int pl_cache_route_del(pl_redis_t *r, const pl_cache_route_t *s, pl_cache_flag_fn cb, void *user)
{
    if (!route_is_valid(s))
        return PL_ERR_INVALID;
    char key[PL_CACHE_KEY_MAX], device[24], owner[48];
    pl_cache_key_id(key, PL_CACHE_KEY_SESSIONS, s->account_id);
    snprintf(device, sizeof device, "%" PRId64, s->device_id);
    snprintf(owner, sizeof owner, "%" PRId32 ":%" PRIu64 ":", s->node_id, s->epoch);
    const char *argv[3] = {key, device, owner};
    pl_cache_int_cb_t c = {.kind = PL_CACHE_INT_FLAG, .fn.flag = cb};
    return pl_cache_int_run(r, &del_script, 1, 3, argv, NULL, &c, user);
}

typedef struct lookup_call {
    pl_cache_routes_fn cb;
    void *user;
    size_t count;
    int64_t account_ids[]; /* to map the script's key indexes back */
} lookup_call_t;

static bool parse_entry(const lookup_call_t *c, redisReply *const *e, pl_cache_route_t *out)
{
    int64_t index, device, node;
    uint64_t epoch;
    if (!pl_cache_reply_i64(e[0], &index) || index < 1 || (uint64_t)index > c->count ||
        !pl_cache_reply_i64(e[1], &device) || !pl_cache_reply_i64(e[2], &node) || node < 0 || node > INT32_MAX ||
        !pl_cache_reply_u64(e[3], &epoch))
        return false;
    *out = (pl_cache_route_t){
        .account_id = c->account_ids[index - 1], .device_id = device, .node_id = (int32_t)node, .epoch = epoch};
    return true;
}

static void on_lookup(const pl_redis_result_t *res, void *user)
{
    lookup_call_t *c = user;
    const redisReply *reply = res->reply;
    pl_cache_route_t *out = NULL;
    if (res->code != PL_CODE_OK) {
        c->cb(res->code, res->message, NULL, 0, c->user);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 4 != 0) {
        c->cb(PL_CODE_INTERNAL, "unexpected reply from redis (route lookup)", NULL, 0, c->user);
    } else if (reply->elements && !(out = calloc(reply->elements / 4, sizeof *out))) {
        c->cb(PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, c->user);
    } else {
        size_t n = reply->elements / 4, i;
        for (i = 0; i < n && parse_entry(c, reply->element + 4 * i, &out[i]); i++)
            ;
        if (i < n)
            c->cb(PL_CODE_INTERNAL, "unexpected reply from redis (route entry)", NULL, 0, c->user);
        else
            c->cb(PL_CODE_OK, "OK", out, n, c->user);
    }
    free(out);
    free(c);
}

int pl_cache_route_lookup(pl_redis_t *r, const int64_t *account_ids, size_t count, pl_cache_routes_fn cb, void *user)
{
    if (!cb || count > PL_CACHE_MAX_BATCH || (count && !account_ids))
        return PL_ERR_INVALID;
    lookup_call_t *c = malloc(sizeof *c + count * sizeof c->account_ids[0]);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->user = user;
    c->count = count;
    for (size_t i = 0; i < count; i++)
        c->account_ids[i] = account_ids[i];
    int rc = pl_cache_run_for_ids(r, &lookup_script, PL_CACHE_KEY_SESSIONS, account_ids, count, on_lookup, c);
    if (rc != 0)
        free(c);
    return rc;
}
