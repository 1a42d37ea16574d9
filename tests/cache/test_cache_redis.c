/* test_cache_redis.c — the command client (server/cache/redis.c, link.c)
 * against a real Redis: round trips, error replies, order, the in-flight
 * bound, the callback contract (once, never synchronous), cancellation by
 * pl_redis_free() (also from inside a callback), fail-fast while Redis is
 * unreachable, the command timeout against a paused server, AUTH, and a
 * host name. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "runtime/errors.h"

/* Counts the callbacks of a group of commands. */
typedef struct tally {
    int calls;
    int ok, unavailable, exhausted, cancelled, other;
    int64_t last_done_ms;
} tally_t;

static void on_tally(const pl_redis_result_t *res, void *user)
{
    tally_t *t = user;
    CHECK(!in_submit);
    t->calls++;
    t->last_done_ms = pl_now_msec();
    switch (res->code) {
    case PL_CODE_OK: t->ok++; break;
    case PL_CODE_UNAVAILABLE: t->unavailable++; break;
    case PL_CODE_RESOURCE_EXHAUSTED: t->exhausted++; break;
    case PL_CODE_CANCELLED: t->cancelled++; break;
    default: t->other++; break;
    }
    CHECK(res->message != NULL);
}

/* Waits until t has seen `want` callbacks. */
typedef struct tally_wait {
    int want;
    tally_t t;
} tally_wait_t;

static bool pred_tally(void *arg)
{
    const tally_wait_t *w = arg;
    return w->t.calls >= w->want;
}

static int submit(pl_redis_t *r, int argc, const char **argv, pl_redis_cb cb, void *user)
{
    in_submit = true;
    int rc = pl_redis_command_argv(r, argc, argv, NULL, cb, user);
    in_submit = false;
    return rc;
}

static void test_round_trip(pl_redis_t *r)
{
    static const char value[] = "a\0b\xff\0";
    const char *set[] = {"SET", "parley:test:bin", value};
    size_t set_len[] = {3, 15, sizeof value - 1};
    const raw_reply_t *x = raw_argv(r, 3, set, set_len);
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(x->type, REDIS_REPLY_STATUS);
    x = raw_cmd(r, "GET", "parley:test:bin");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(x->type, REDIS_REPLY_STRING);
    CHECK_EQ_MEM(x->str, x->len, value, sizeof value - 1);
    x = raw_cmd(r, "GET", "parley:test:missing");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(x->type, REDIS_REPLY_NIL);
    x = raw_cmd(r, "CLIENT", "GETNAME");
    CHECK_EQ_STR(x->str, "parley:node:3:cmd");
}

static void test_error_reply(pl_redis_t *r)
{
    raw_cmd(r, "SET", "parley:test:text", "not a number");
    const raw_reply_t *x = raw_cmd(r, "INCR", "parley:test:text");
    CHECK_EQ_INT(x->code, PL_CODE_INTERNAL);
    CHECK_EQ_INT(x->type, REDIS_REPLY_ERROR);
    CHECK(strncmp(x->message, "ERR", 3) == 0);
    x = raw_cmd(r, "NOSUCHCOMMAND");
    CHECK_EQ_INT(x->code, PL_CODE_INTERNAL);
    CHECK_EQ_INT(x->calls, 1);
    /* The connection survives error replies. */
    CHECK(pl_redis_is_up(r));
}

/* Replies arrive in submission order, one callback each. */
typedef struct order {
    int next;
    int bad;
} order_t;

static order_t order;

static void on_order(const pl_redis_result_t *res, void *user)
{
    intptr_t i = (intptr_t)user;
    CHECK(!in_submit);
    if (res->code != PL_CODE_OK || res->reply->type != REDIS_REPLY_INTEGER || res->reply->integer != i + 1 ||
        order.next != i)
        order.bad++;
    order.next++;
}

static bool pred_order(void *arg)
{
    return order.next >= *(int *)arg;
}

static void test_pipeline_order(pl_redis_t *r)
{
    raw_cmd(r, "DEL", "parley:test:list");
    int n = 2000;
    for (intptr_t i = 0; i < n; i++) {
        const char *argv[] = {"RPUSH", "parley:test:list", "x"};
        in_submit = true;
        CHECK_EQ_INT(pl_redis_command_argv(r, 3, argv, NULL, on_order, (void *)i), 0);
        in_submit = false;
    }
    CHECK(pl_redis_inflight(r) > 0);
    CHECK(run_until(pred_order, &n, 10000));
    CHECK_EQ_INT(order.next, n);
    CHECK_EQ_INT(order.bad, 0);
    CHECK_EQ_INT(pl_redis_inflight(r), 0);
}

static void test_invalid(pl_redis_t *r)
{
    const char *argv[] = {"PING"};
    CHECK_EQ_INT(pl_redis_command_argv(r, 0, argv, NULL, on_raw, &raw), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_redis_command_argv(r, 1, argv, NULL, NULL, NULL), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_redis_command_argv(NULL, 1, argv, NULL, on_raw, &raw), PL_ERR_INVALID);
    char err[256] = "";
    pl_redis_config_t bad = {.host = "127.0.0.1", .port = 0};
    CHECK(pl_redis_new(base, &bad, err, sizeof err) == NULL);
    CHECK(strstr(err, "port") != NULL);
    bad = (pl_redis_config_t){.host = "", .port = 6379};
    CHECK(pl_redis_new(base, &bad, err, sizeof err) == NULL);
}

static void test_inflight_bound(void)
{
    pl_redis_config_t cfg = test_config(3, 2000);
    cfg.max_inflight = 4;
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));
    tally_wait_t w = {.want = 10};
    const char *argv[] = {"PING"};
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(submit(r, 1, argv, on_tally, &w.t), 0);
    CHECK_EQ_INT(pl_redis_inflight(r), 4);
    CHECK(run_until(pred_tally, &w, 5000));
    CHECK_EQ_INT(w.t.calls, 10);
    CHECK_EQ_INT(w.t.ok, 4);
    CHECK_EQ_INT(w.t.exhausted, 6);
    /* Room again once the replies are in. */
    const raw_reply_t *x = raw_cmd(r, "PING");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    pl_redis_free(r);
}

static void test_free_cancels(void)
{
    pl_redis_config_t cfg = test_config(3, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));
    tally_t t = {0};
    const char *argv[] = {"PING"};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(submit(r, 1, argv, on_tally, &t), 0);
    CHECK_EQ_INT(t.calls, 0);
    pl_redis_free(r); /* callbacks run inside */
    CHECK_EQ_INT(t.calls, 5);
    CHECK_EQ_INT(t.cancelled, 5);
    run_for(100); /* nothing more arrives */
    CHECK_EQ_INT(t.calls, 5);
}

/* A client freed from inside one of its callbacks cancels the rest. */
typedef struct self_free {
    pl_redis_t *r;
    tally_t t;
    bool freed;
} self_free_t;

static void on_free_self(const pl_redis_result_t *res, void *user)
{
    self_free_t *s = user;
    on_tally(res, &s->t);
    if (!s->freed) {
        s->freed = true;
        pl_redis_free(s->r);
        const char *argv[] = {"PING"};
        CHECK_EQ_INT(pl_redis_command_argv(s->r, 1, argv, NULL, on_tally, &s->t), PL_ERR_CLOSED);
    }
}

static void test_free_from_callback(void)
{
    pl_redis_config_t cfg = test_config(3, 2000);
    self_free_t s = {0};
    s.r = new_client(&cfg);
    CHECK(wait_up(s.r, 5000));
    const char *argv[] = {"PING"};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(submit(s.r, 1, argv, on_free_self, &s), 0);
    CHECK(wait_flag(&s.freed, 5000));
    CHECK_EQ_INT(s.t.calls, 4);
    CHECK_EQ_INT(s.t.ok, 1);
    CHECK_EQ_INT(s.t.cancelled, 3);
    run_for(100);
    CHECK_EQ_INT(s.t.calls, 4);
}

/* A port nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(fd, (struct sockaddr *)&sa, &len))
        return 1;
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_unreachable_fails_fast(void)
{
    pl_redis_config_t cfg = test_config(3, 1000);
    cfg.port = closed_port();
    pl_redis_t *r = new_client(&cfg);
    int ticks = 0;
    struct event *ticker = event_new(base, -1, EV_PERSIST, harness_tick, &ticks);
    struct timeval tv = {0, 10000};
    event_add(ticker, &tv);
    int slowest = 0;
    for (int round = 0; round < 8; round++) {
        tally_wait_t w = {.want = 3};
        const char *argv[] = {"PING"};
        int64_t t0 = pl_now_msec();
        for (int i = 0; i < 3; i++)
            CHECK_EQ_INT(submit(r, 1, argv, on_tally, &w.t), 0);
        CHECK_EQ_INT(w.t.calls, 0);
        CHECK(run_until(pred_tally, &w, 2000));
        CHECK_EQ_INT(w.t.unavailable, 3);
        if (w.t.last_done_ms - t0 > slowest)
            slowest = (int)(w.t.last_done_ms - t0);
        run_for(60); /* across several reconnect attempts */
    }
    fprintf(stderr, "    unreachable: slowest failure %d ms (timeout 1000), %d ticks\n", slowest, ticks);
    CHECK(slowest < 100);
    CHECK(ticks >= 20); /* the loop kept running */
    CHECK(!pl_redis_is_up(r));
    event_free(ticker);
    /* Freed from inside a failure callback: the other failures are
     * cancelled. */
    self_free_t s = {.r = r};
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(submit(r, 1, (const char *[]){"PING"}, on_free_self, &s), 0);
    CHECK(wait_flag(&s.freed, 2000));
    CHECK_EQ_INT(s.t.calls, 3);
    CHECK_EQ_INT(s.t.unavailable, 1);
    CHECK_EQ_INT(s.t.cancelled, 2);

    /* Failures still queued when a client goes are cancelled. */
    r = new_client(&cfg);
    tally_t t = {0};
    const char *argv[] = {"PING"};
    CHECK_EQ_INT(submit(r, 1, argv, on_tally, &t), 0);
    pl_redis_free(r);
    CHECK_EQ_INT(t.calls, 1);
    CHECK_EQ_INT(t.cancelled, 1);
}

/* CLIENT PAUSE stops Redis answering anyone but the caller for a while: a
 * hung server, as far as a client can tell. */
static void test_timeout(pl_redis_t *admin)
{
    pl_redis_config_t cfg = test_config(3, 300);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));
    const raw_reply_t *x = raw_cmd(admin, "CLIENT", "PAUSE", "1500", "ALL");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    tally_wait_t w = {.want = 3};
    const char *argv[] = {"GET", "parley:test:bin"};
    int64_t t0 = pl_now_msec();
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(submit(r, 2, argv, on_tally, &w.t), 0);
    CHECK(run_until(pred_tally, &w, 3000));
    int64_t took = w.t.last_done_ms - t0;
    fprintf(stderr, "    paused server: commands failed after %lld ms (timeout 300)\n", (long long)took);
    CHECK_EQ_INT(w.t.unavailable, 3);
    CHECK(took >= 280 && took < 1000);
    CHECK(!pl_redis_is_up(r)); /* dropped, to reconnect */
    /* The connection comes back once the pause ends, and the late replies
     * of the abandoned commands never reach their callbacks. */
    CHECK(wait_up(r, 6000));
    x = raw_cmd(r, "PING");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(w.t.calls, 3);
    pl_redis_stats_t st;
    pl_redis_stats(r, &st);
    CHECK_EQ_INT(st.timeouts, 1);
    CHECK_EQ_INT(st.reconnects, 1);
    CHECK_EQ_INT(st.completed, 4);
    CHECK_EQ_INT(st.failed, 3);
    pl_redis_free(r);
    raw_cmd(admin, "CLIENT", "UNPAUSE");
}

static void test_auth(pl_redis_t *admin)
{
    CHECK_EQ_INT(raw_cmd(admin, "CONFIG", "SET", "requirepass", "s3cret")->code, PL_CODE_OK);
    pl_redis_config_t cfg = test_config(3, 500);
    cfg.password = "s3cret";
    pl_redis_t *good = new_client(&cfg);
    cfg.password = NULL;
    pl_redis_t *none = new_client(&cfg);
    cfg.password = "wrong";
    pl_redis_t *bad = new_client(&cfg);
    CHECK(wait_up(good, 5000));
    CHECK_EQ_INT(raw_cmd(good, "PING")->code, PL_CODE_OK);
    run_for(300);
    CHECK(!pl_redis_is_up(none));
    CHECK(!pl_redis_is_up(bad));
    /* Refused handshakes say why in every failure. */
    const raw_reply_t *x = raw_cmd(none, "PING");
    CHECK_EQ_INT(x->code, PL_CODE_UNAVAILABLE);
    CHECK(strstr(x->message, "NOAUTH") != NULL);
    x = raw_cmd(bad, "PING");
    CHECK_EQ_INT(x->code, PL_CODE_UNAVAILABLE);
    CHECK(strstr(x->message, "handshake refused") != NULL);
    CHECK_EQ_INT(raw_cmd(admin, "CONFIG", "SET", "requirepass", "")->code, PL_CODE_OK);
    CHECK(wait_up(none, 5000)); /* it keeps trying */
    pl_redis_free(good);
    pl_redis_free(none);
    pl_redis_free(bad);
}

static void test_host_name(void)
{
    /* A name is resolved once, IPv4 first: Redis listens on 127.0.0.1. */
    pl_redis_config_t cfg = test_config(3, 1000);
    cfg.host = "localhost";
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));
    CHECK_EQ_INT(raw_cmd(r, "PING")->code, PL_CODE_OK);
    pl_redis_free(r);
}

int main(void)
{
    harness_begin();
    pl_redis_config_t cfg = test_config(3, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(!pl_redis_is_up(r)); /* connecting in the background */
    CHECK(wait_up(r, 5000));

    test_round_trip(r);
    test_error_reply(r);
    test_pipeline_order(r);
    test_invalid(r);
    test_inflight_bound();
    test_free_cancels();
    test_free_from_callback();
    test_unreachable_fails_fast();
    test_timeout(r);
    test_auth(r);
    test_host_name();

    pl_redis_free(r);
    return harness_end();
}
