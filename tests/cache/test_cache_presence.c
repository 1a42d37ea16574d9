/* test_cache_presence.c — presence and last-seen (server/cache/presence.c)
 * against a real Redis: unknown accounts, online/offline with last-seen on
 * Redis's clock, several devices, heartbeat expiry (a crashed node), batch
 * reads in order, the retention TTL and the device bound. */
#include "cache/presence.h"
#include "harness.h"
#include "runtime/errors.h"

typedef struct result {
    bool done;
    int calls;
    pl_code_t code;
    int64_t count;
    size_t n;
    pl_cache_presence_t p[16];
} result_t;

static result_t res;

static void on_done(pl_code_t code, const char *message, void *user)
{
    result_t *r = user;
    CHECK(!in_submit);
    CHECK(message != NULL);
    r->calls++;
    r->code = code;
    r->done = true;
}

static void on_count(pl_code_t code, const char *message, int64_t count, void *user)
{
    on_done(code, message, user);
    ((result_t *)user)->count = count;
}

static void on_presence(pl_code_t code, const char *message, const pl_cache_presence_t *p, size_t n, void *user)
{
    result_t *r = user;
    on_done(code, message, user);
    r->n = n;
    for (size_t i = 0; i < n && i < 16; i++)
        r->p[i] = p[i];
}

static void begin(void)
{
    memset(&res, 0, sizeof res);
    in_submit = true;
}

static void finish(int rc)
{
    in_submit = false;
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        CHECK(wait_flag(&res.done, 5000));
    CHECK_EQ_INT(res.calls, 1);
}

static pl_code_t online(pl_redis_t *r, int64_t account, int64_t device, int ttl_s)
{
    begin();
    finish(pl_cache_presence_set_online(r, account, device, ttl_s, on_done, &res));
    return res.code;
}

static int64_t offline(pl_redis_t *r, int64_t account, int64_t device)
{
    begin();
    finish(pl_cache_presence_set_offline(r, account, device, on_count, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    return res.count;
}

static const pl_cache_presence_t *get(pl_redis_t *r, const int64_t *ids, size_t n)
{
    begin();
    finish(pl_cache_presence_get(r, ids, n, on_presence, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    CHECK_EQ_INT(res.n, n);
    return res.p;
}

static pl_cache_presence_t get1(pl_redis_t *r, int64_t account)
{
    return get(r, &account, 1)[0];
}

static void test_unknown(pl_redis_t *r)
{
    pl_cache_presence_t p = get1(r, 999999);
    CHECK_EQ_INT(p.account_id, 999999);
    CHECK(!p.is_online);
    CHECK_EQ_INT(p.last_seen_ms, 0);
}

static void test_online_offline(pl_redis_t *r)
{
    int64_t before = redis_time_ms(r);
    CHECK_EQ_INT(online(r, 1, 10, 60), PL_CODE_OK);
    pl_cache_presence_t p = get1(r, 1);
    CHECK(p.is_online);
    CHECK(p.last_seen_ms >= before && p.last_seen_ms <= redis_time_ms(r));

    before = redis_time_ms(r);
    int64_t seen = offline(r, 1, 10);
    int64_t after = redis_time_ms(r);
    CHECK(seen >= before && seen <= after);
    p = get1(r, 1);
    CHECK(!p.is_online);
    CHECK_EQ_INT(p.last_seen_ms, seen);

    /* The key keeps last-seen for the retention period. */
    const raw_reply_t *x = raw_cmd(r, "PTTL", "parley:pres:1");
    CHECK(x->integer > (int64_t)(PL_CACHE_LAST_SEEN_RETENTION_S - 60) * 1000);
}

static void test_two_devices(pl_redis_t *r)
{
    CHECK_EQ_INT(online(r, 2, 1, 60), PL_CODE_OK);
    CHECK_EQ_INT(online(r, 2, 2, 60), PL_CODE_OK);
    offline(r, 2, 1);
    CHECK(get1(r, 2).is_online); /* the other device is still there */
    int64_t seen = offline(r, 2, 2);
    pl_cache_presence_t p = get1(r, 2);
    CHECK(!p.is_online);
    CHECK_EQ_INT(p.last_seen_ms, seen);
}

static void test_heartbeat_expiry(pl_redis_t *r)
{
    /* A node dies without saying goodbye: the device drops offline after
     * its TTL, and its last heartbeat becomes last-seen. */
    CHECK_EQ_INT(online(r, 3, 1, 1), PL_CODE_OK);
    int64_t after = redis_time_ms(r);
    CHECK(get1(r, 3).is_online);
    run_for(600);
    CHECK_EQ_INT(online(r, 3, 1, 1), PL_CODE_OK); /* heartbeat */
    int64_t beat_lo = redis_time_ms(r) - 50;
    run_for(700);
    CHECK(get1(r, 3).is_online); /* 1.3 s after the first beat, 0.7 s after the second */
    run_for(500);
    pl_cache_presence_t p = get1(r, 3);
    CHECK(!p.is_online);
    CHECK(p.last_seen_ms >= beat_lo && p.last_seen_ms > after);

    /* Coming back online prunes the dead entry and keeps its beat. */
    CHECK_EQ_INT(online(r, 3, 2, 60), PL_CODE_OK);
    const raw_reply_t *x = raw_cmd(r, "HEXISTS", "parley:pres:3", "d:1");
    CHECK_EQ_INT(x->integer, 0);
    x = raw_cmd(r, "HGET", "parley:pres:3", "seen");
    CHECK_EQ_INT(x->type, REDIS_REPLY_STRING);
    CHECK_EQ_INT(atoll(x->str), p.last_seen_ms);
}

static void test_batch(pl_redis_t *r)
{
    CHECK_EQ_INT(online(r, 10, 1, 60), PL_CODE_OK);
    CHECK_EQ_INT(online(r, 12, 1, 60), PL_CODE_OK);
    int64_t seen = offline(r, 12, 1);
    int64_t ids[] = {12, 11, 10, 10};
    const pl_cache_presence_t *p = get(r, ids, 4);
    CHECK_EQ_INT(p[0].account_id, 12);
    CHECK(!p[0].is_online);
    CHECK_EQ_INT(p[0].last_seen_ms, seen);
    CHECK_EQ_INT(p[1].account_id, 11);
    CHECK(!p[1].is_online);
    CHECK_EQ_INT(p[1].last_seen_ms, 0);
    CHECK_EQ_INT(p[2].account_id, 10);
    CHECK(p[2].is_online);
    CHECK(p[3].is_online);
    begin();
    finish(pl_cache_presence_get(r, NULL, 0, on_presence, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    CHECK_EQ_INT(res.n, 0);
}

static void test_bounds(pl_redis_t *r)
{
    for (int d = 0; d < PL_CACHE_MAX_DEVICES; d++)
        CHECK_EQ_INT(online(r, 20, d, 60), PL_CODE_OK);
    CHECK_EQ_INT(online(r, 20, 1000, 60), PL_CODE_RESOURCE_EXHAUSTED);
    CHECK_EQ_INT(online(r, 20, 5, 60), PL_CODE_OK); /* a heartbeat is not a new device */

    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(pl_cache_presence_set_online(r, 1, 1, 0, on_done, &res), PL_ERR_INVALID);
    int64_t ids[1] = {1};
    CHECK_EQ_INT(pl_cache_presence_get(r, ids, PL_CACHE_MAX_BATCH + 1, on_presence, &res), PL_ERR_INVALID);
    run_for(50);
    CHECK_EQ_INT(res.calls, 0);
}

int main(void)
{
    harness_begin();
    pl_redis_config_t cfg = test_config(1, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));

    test_unknown(r);
    test_online_offline(r);
    test_two_devices(r);
    test_heartbeat_expiry(r);
    test_batch(r);
    test_bounds(r);

    pl_redis_free(r);
    return harness_end();
}
