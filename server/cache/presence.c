/* presence.c — online state and last-seen (see presence.h): two update
 * scripts and one batch read script over one hash per account. */
#include "cache/presence.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "cache/keys.h"
#include "cache/reply.h"
#include "runtime/errors.h"

/* KEYS[1] parley:pres:<account>; ARGV device, ttl_ms, retention_ms, max_devices
 * Returns 1, or -1 when the account has too many devices online. Devices
 * whose heartbeat stopped are pruned, their last beat kept as last-seen. */
/* clang-format off */
static pl_redis_script_t online_script = PL_REDIS_SCRIPT(
    PL_REDIS_LUA_NOW_MS
    "local field = 'd:' .. ARGV[1]\n"
    "local seen = tonumber(redis.call('HGET', KEYS[1], 'seen')) or 0\n"
    "local live = 0\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 1, #all, 2 do\n"
    "  if all[i] ~= 'seen' and all[i] ~= field then\n"
    "    local beat, untl = string.match(all[i + 1], '^(%d+):(%d+)$')\n"
    "    if not untl or tonumber(untl) <= now then\n"
    "      redis.call('HDEL', KEYS[1], all[i])\n"
    "      if beat and tonumber(beat) > seen then seen = tonumber(beat) end\n"
    "    else\n"
    "      live = live + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if live >= tonumber(ARGV[4]) then return -1 end\n"
    "redis.call('HSET', KEYS[1], field, string.format('%d:%d', now, now + tonumber(ARGV[2])))\n"
    "if seen > 0 then redis.call('HSET', KEYS[1], 'seen', string.format('%d', seen)) end\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return 1\n");
/* clang-format on */

/* KEYS[1] parley:pres:<account>; ARGV device, retention_ms
 * Returns now, the last-seen time recorded. */
/* clang-format off */
static pl_redis_script_t offline_script = PL_REDIS_SCRIPT(
    PL_REDIS_LUA_NOW_MS
    "redis.call('HDEL', KEYS[1], 'd:' .. ARGV[1])\n"
    "redis.call('HSET', KEYS[1], 'seen', string.format('%d', now))\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "return now\n");
/* clang-format on */

/* KEYS one parley:pres:<account> per account.
 * Returns a flat array: online (0/1), last_seen_ms, per key, in order. */
/* clang-format off */
static pl_redis_script_t get_script = PL_REDIS_SCRIPT(
    PL_REDIS_LUA_NOW_MS
    "local out = {}\n"
    "for k = 1, #KEYS do\n"
    "  local all = redis.call('HGETALL', KEYS[k])\n"
    "  local online, seen = 0, 0\n"
    "  for i = 1, #all, 2 do\n"
    "    if all[i] == 'seen' then\n"
    "      local s = tonumber(all[i + 1]) or 0\n"
    "      if s > seen then seen = s end\n"
    "    else\n"
    "      local beat, untl = string.match(all[i + 1], '^(%d+):(%d+)$')\n"
    "      if untl and tonumber(untl) > now then\n"
    "        online = 1\n"
    "      elseif beat and tonumber(beat) > seen then\n"
    "        seen = tonumber(beat)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if online == 1 then seen = now end\n"
    "  out[#out + 1] = online\n"
    "  out[#out + 1] = seen\n"
    "end\n"
    "return out\n");
/* clang-format on */

int pl_cache_presence_set_online(pl_redis_t *r, int64_t account_id, int64_t device_id, int ttl_s, pl_cache_done_fn cb,
                                 void *user)
{
    if (ttl_s < 1 || ttl_s > PL_CACHE_MAX_TTL_S)
        return PL_ERR_INVALID;
    char key[PL_CACHE_KEY_MAX], device[24], ttl[24], retention[24], max[16];
    pl_cache_key_id(key, PL_CACHE_KEY_PRESENCE, account_id);
    snprintf(device, sizeof device, "%" PRId64, device_id);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s * 1000);
    snprintf(retention, sizeof retention, "%lld", (long long)PL_CACHE_LAST_SEEN_RETENTION_S * 1000);
    snprintf(max, sizeof max, "%d", PL_CACHE_MAX_DEVICES);
    const char *argv[5] = {key, device, ttl, retention, max};
    pl_cache_int_cb_t c = {
        .kind = PL_CACHE_INT_DONE, .fn.done = cb, .limit_message = "too many devices online for this account"};
    return pl_cache_int_run(r, &online_script, 1, 5, argv, NULL, &c, user);
}

int pl_cache_presence_set_offline(pl_redis_t *r, int64_t account_id, int64_t device_id, pl_cache_count_fn cb,
                                  void *user)
{
    char key[PL_CACHE_KEY_MAX], device[24], retention[24];
    pl_cache_key_id(key, PL_CACHE_KEY_PRESENCE, account_id);
    snprintf(device, sizeof device, "%" PRId64, device_id);
    snprintf(retention, sizeof retention, "%lld", (long long)PL_CACHE_LAST_SEEN_RETENTION_S * 1000);
    const char *argv[3] = {key, device, retention};
    pl_cache_int_cb_t c = {.kind = PL_CACHE_INT_COUNT, .fn.count = cb};
    return pl_cache_int_run(r, &offline_script, 1, 3, argv, NULL, &c, user);
}

typedef struct get_call {
    pl_cache_presence_fn cb;
    void *user;
    size_t count;
    int64_t account_ids[];
} get_call_t;

static void on_get(const pl_redis_result_t *res, void *user)
{
    get_call_t *c = user;
    const redisReply *reply = res->reply;
    pl_cache_presence_t *out = NULL;
    if (res->code != PL_CODE_OK) {
        c->cb(res->code, res->message, NULL, 0, c->user);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 * c->count) {
        c->cb(PL_CODE_INTERNAL, "unexpected reply from redis (presence)", NULL, 0, c->user);
    } else if (c->count && !(out = calloc(c->count, sizeof *out))) {
        c->cb(PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, c->user);
    } else {
        size_t i;
        for (i = 0; i < c->count; i++) {
            int64_t online, seen;
            if (!pl_cache_reply_i64(reply->element[2 * i], &online) ||
                !pl_cache_reply_i64(reply->element[2 * i + 1], &seen))
                break;
            out[i] =
                (pl_cache_presence_t){.account_id = c->account_ids[i], .is_online = online != 0, .last_seen_ms = seen};
        }
        if (i < c->count)
            c->cb(PL_CODE_INTERNAL, "unexpected reply from redis (presence entry)", NULL, 0, c->user);
        else
            c->cb(PL_CODE_OK, "OK", out, c->count, c->user);
    }
    free(out);
    free(c);
}

int pl_cache_presence_get(pl_redis_t *r, const int64_t *account_ids, size_t count, pl_cache_presence_fn cb, void *user)
{
    if (!cb || count > PL_CACHE_MAX_BATCH || (count && !account_ids))
        return PL_ERR_INVALID;
    get_call_t *c = malloc(sizeof *c + count * sizeof c->account_ids[0]);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->user = user;
    c->count = count;
    for (size_t i = 0; i < count; i++)
        c->account_ids[i] = account_ids[i];
    int rc = pl_cache_run_for_ids(r, &get_script, PL_CACHE_KEY_PRESENCE, account_ids, count, on_get, c);
    if (rc != 0)
        free(c);
    return rc;
}
