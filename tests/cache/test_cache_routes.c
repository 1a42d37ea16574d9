/* test_cache_routes.c — the route registry (server/cache/routes.c)
 * against a real Redis: put/lookup, takeover by another node, stale
 * refresh and delete by the old owner, owner delete, 64-bit ids, batch
 * lookups with unknown accounts, TTL expiry (whole key and single entries),
 * refresh after Redis lost the entry, and the per-account device bound. */
#include "cache/routes.h"
#include "harness.h"
#include "runtime/errors.h"

typedef struct result {
    bool done;
    int calls;
    pl_code_t code;
    bool flag;
    size_t count;
    pl_cache_route_t routes[128];
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

static void on_flag(pl_code_t code, const char *message, bool flag, void *user)
{
    result_t *r = user;
    on_done(code, message, user);
    r->flag = flag;
}

static void on_routes(pl_code_t code, const char *message, const pl_cache_route_t *s, size_t n, void *user)
{
    result_t *r = user;
    on_done(code, message, user);
    r->count = n;
    for (size_t i = 0; i < n && i < 128; i++)
        r->routes[i] = s[i];
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

static pl_code_t put(pl_redis_t *r, pl_cache_route_t s, int ttl_s)
{
    begin();
    finish(pl_cache_route_put(r, &s, ttl_s, on_done, &res));
    return res.code;
}

static bool refresh(pl_redis_t *r, pl_cache_route_t s, int ttl_s)
{
    begin();
    finish(pl_cache_route_refresh(r, &s, ttl_s, on_flag, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    return res.flag;
}

static bool del(pl_redis_t *r, pl_cache_route_t s)
{
    begin();
    finish(pl_cache_route_del(r, &s, on_flag, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    return res.flag;
}

static size_t lookup(pl_redis_t *r, const int64_t *ids, size_t n)
{
    begin();
    finish(pl_cache_route_lookup(r, ids, n, on_routes, &res));
    CHECK_EQ_INT(res.code, PL_CODE_OK);
    return res.count;
}

static size_t lookup1(pl_redis_t *r, int64_t account)
{
    return lookup(r, &account, 1);
}

static void check_route(const pl_cache_route_t *got, pl_cache_route_t want)
{
    CHECK_EQ_INT(got->account_id, want.account_id);
    CHECK_EQ_INT(got->device_id, want.device_id);
    CHECK_EQ_INT(got->node_id, want.node_id);
    CHECK(got->epoch == want.epoch);
}

static void test_put_lookup_takeover(pl_redis_t *r)
{
    pl_cache_route_t a = {.account_id = 1001, .device_id = 1, .node_id = 1, .epoch = 100};
    CHECK_EQ_INT(put(r, a, 60), PL_CODE_OK);
    CHECK_EQ_INT(lookup1(r, 1001), 1);
    check_route(&res.routes[0], a);

    /* The device reconnects to node 2: node 2 takes it over. */
    pl_cache_route_t b = {.account_id = 1001, .device_id = 1, .node_id = 2, .epoch = 7};
    CHECK_EQ_INT(put(r, b, 60), PL_CODE_OK);
    CHECK_EQ_INT(lookup1(r, 1001), 1);
    check_route(&res.routes[0], b);

    /* Node 1's old stream can neither keep nor remove it. */
    CHECK(!refresh(r, a, 60));
    CHECK(!del(r, a));
    CHECK_EQ_INT(lookup1(r, 1001), 1);
    check_route(&res.routes[0], b);

    /* Same node, older epoch: still not the owner. */
    pl_cache_route_t b_old = b;
    b_old.epoch = 6;
    CHECK(!del(r, b_old));
    CHECK(!refresh(r, b_old, 60));

    /* The owner refreshes and then removes it. */
    CHECK(refresh(r, b, 60));
    CHECK(del(r, b));
    CHECK_EQ_INT(lookup1(r, 1001), 0);
    CHECK(!del(r, b)); /* already gone */
}

static void test_big_ids(pl_redis_t *r)
{
    /* Beyond 2^53: must not pass through a double anywhere. */
    pl_cache_route_t s = {
        .account_id = INT64_MAX - 12345, .device_id = (INT64_C(1) << 62) + 3, .node_id = 31, .epoch = UINT64_MAX - 1};
    CHECK_EQ_INT(put(r, s, 60), PL_CODE_OK);
    CHECK_EQ_INT(lookup1(r, s.account_id), 1);
    check_route(&res.routes[0], s);
    CHECK(del(r, s));
}

static void test_batch_lookup(pl_redis_t *r)
{
    pl_cache_route_t s1 = {.account_id = 2001, .device_id = 1, .node_id = 1, .epoch = 1};
    pl_cache_route_t s2 = {.account_id = 2002, .device_id = 1, .node_id = 2, .epoch = 2};
    pl_cache_route_t s3 = {.account_id = 2002, .device_id = 2, .node_id = 3, .epoch = 3};
    CHECK_EQ_INT(put(r, s1, 60), PL_CODE_OK);
    CHECK_EQ_INT(put(r, s2, 60), PL_CODE_OK);
    CHECK_EQ_INT(put(r, s3, 60), PL_CODE_OK);
    int64_t ids[] = {2002, 2999 /* unknown */, 2001};
    CHECK_EQ_INT(lookup(r, ids, 3), 3);
    /* grouped by account in the order asked */
    CHECK_EQ_INT(res.routes[0].account_id, 2002);
    CHECK_EQ_INT(res.routes[1].account_id, 2002);
    CHECK_EQ_INT(res.routes[2].account_id, 2001);
    check_route(&res.routes[2], s1);
    const pl_cache_route_t *d1 = res.routes[0].device_id == 1 ? &res.routes[0] : &res.routes[1];
    const pl_cache_route_t *d2 = res.routes[0].device_id == 1 ? &res.routes[1] : &res.routes[0];
    check_route(d1, s2);
    check_route(d2, s3);

    CHECK_EQ_INT(lookup(r, NULL, 0), 0); /* empty batch: still a proper callback */
    int64_t unknown[] = {2998, 2999};
    CHECK_EQ_INT(lookup(r, unknown, 2), 0);

    /* A full batch in one call. */
    int64_t many[PL_CACHE_MAX_BATCH];
    for (size_t i = 0; i < PL_CACHE_MAX_BATCH; i++)
        many[i] = 2001 + (int64_t)i;
    CHECK_EQ_INT(lookup(r, many, PL_CACHE_MAX_BATCH), 3);
}

static void test_invalid(pl_redis_t *r)
{
    pl_cache_route_t s = {.account_id = 1, .device_id = 1, .node_id = 1, .epoch = 1};
    memset(&res, 0, sizeof res);
    CHECK_EQ_INT(pl_cache_route_put(r, &s, 0, on_done, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_route_put(r, &s, PL_CACHE_MAX_TTL_S + 1, on_done, &res), PL_ERR_INVALID);
    s.node_id = -1;
    CHECK_EQ_INT(pl_cache_route_put(r, &s, 60, on_done, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_route_del(r, &s, on_flag, &res), PL_ERR_INVALID);
    int64_t ids[1] = {1};
    CHECK_EQ_INT(pl_cache_route_lookup(r, ids, PL_CACHE_MAX_BATCH + 1, on_routes, &res), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_route_lookup(r, ids, 1, NULL, &res), PL_ERR_INVALID);
    run_for(50);
    CHECK_EQ_INT(res.calls, 0);
}

static void test_ttl(pl_redis_t *r)
{
    /* A node that crashed stops refreshing: its routes go by themselves. */
    pl_cache_route_t s = {.account_id = 3001, .device_id = 1, .node_id = 4, .epoch = 1};
    CHECK_EQ_INT(put(r, s, 1), PL_CODE_OK);
    CHECK_EQ_INT(lookup1(r, 3001), 1);
    const raw_reply_t *x = raw_cmd(r, "PTTL", "parley:sess:3001");
    CHECK(x->integer > 0 && x->integer <= 1000);
    run_for(1200);
    CHECK_EQ_INT(lookup1(r, 3001), 0);
    x = raw_cmd(r, "EXISTS", "parley:sess:3001");
    CHECK_EQ_INT(x->integer, 0);

    /* One short-lived entry next to a long-lived one: the entry expires,
     * the key lives on with the longer TTL, and the next put prunes it. */
    pl_cache_route_t short_s = {.account_id = 3002, .device_id = 1, .node_id = 4, .epoch = 1};
    pl_cache_route_t long_s = {.account_id = 3002, .device_id = 2, .node_id = 5, .epoch = 1};
    CHECK_EQ_INT(put(r, long_s, 60), PL_CODE_OK);
    CHECK_EQ_INT(put(r, short_s, 1), PL_CODE_OK);
    x = raw_cmd(r, "PTTL", "parley:sess:3002");
    CHECK(x->integer > 50000);
    run_for(1200);
    CHECK_EQ_INT(lookup1(r, 3002), 1);
    check_route(&res.routes[0], long_s);
    pl_cache_route_t third = {.account_id = 3002, .device_id = 3, .node_id = 5, .epoch = 2};
    CHECK_EQ_INT(put(r, third, 60), PL_CODE_OK);
    x = raw_cmd(r, "HEXISTS", "parley:sess:3002", "1");
    CHECK_EQ_INT(x->integer, 0);
    CHECK_EQ_INT(lookup1(r, 3002), 2);

    /* The expired entry of another node may be taken by a refresh. */
    pl_cache_route_t old = {.account_id = 3003, .device_id = 1, .node_id = 1, .epoch = 1};
    pl_cache_route_t mine = {.account_id = 3003, .device_id = 1, .node_id = 2, .epoch = 9};
    CHECK_EQ_INT(put(r, old, 60), PL_CODE_OK);
    CHECK_EQ_INT(put(r, (pl_cache_route_t){.account_id = 3003, .device_id = 2, .node_id = 1, .epoch = 1}, 60),
                 PL_CODE_OK);
    CHECK_EQ_INT(put(r, old, 1), PL_CODE_OK);
    run_for(1200);
    CHECK(refresh(r, mine, 60));
    CHECK_EQ_INT(lookup1(r, 3003), 2);
}

static void test_refresh_recreates(pl_redis_t *r)
{
    /* Redis lost everything (restart): heartbeats put the routes back. */
    pl_cache_route_t s = {.account_id = 4001, .device_id = 1, .node_id = 1, .epoch = 5};
    CHECK_EQ_INT(put(r, s, 60), PL_CODE_OK);
    raw_cmd(r, "DEL", "parley:sess:4001");
    CHECK_EQ_INT(lookup1(r, 4001), 0);
    CHECK(refresh(r, s, 60));
    CHECK_EQ_INT(lookup1(r, 4001), 1);
    check_route(&res.routes[0], s);
}

static void test_device_bound(pl_redis_t *r)
{
    for (int d = 0; d < PL_CACHE_MAX_DEVICES; d++) {
        pl_cache_route_t s = {.account_id = 5001, .device_id = d, .node_id = 1, .epoch = 1};
        CHECK_EQ_INT(put(r, s, 60), PL_CODE_OK);
    }
    pl_cache_route_t extra = {.account_id = 5001, .device_id = 1000, .node_id = 1, .epoch = 1};
    CHECK_EQ_INT(put(r, extra, 60), PL_CODE_RESOURCE_EXHAUSTED);
    /* An existing device is not an extra one. */
    pl_cache_route_t again = {.account_id = 5001, .device_id = 7, .node_id = 2, .epoch = 2};
    CHECK_EQ_INT(put(r, again, 60), PL_CODE_OK);
    CHECK_EQ_INT(lookup1(r, 5001), PL_CACHE_MAX_DEVICES);
}

int main(void)
{
    harness_begin();
    pl_redis_config_t cfg = test_config(1, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));

    test_put_lookup_takeover(r);
    test_big_ids(r);
    test_batch_lookup(r);
    test_invalid(r);
    test_ttl(r);
    test_refresh_recreates(r);
    test_device_bound(r);

    pl_redis_free(r);
    return harness_end();
}
