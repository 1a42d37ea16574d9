/* test_cache_faults.c — parley_cache when Redis misbehaves, one case per
 * run (argv[1]), each on its own stack:
 *   down     Redis stopped: every kind of operation fails with UNAVAILABLE
 *            in well under the timeout, the loop keeps running, and both
 *            connections come back within seconds of a restart.
 *   hung     Redis SIGSTOPped: a command fails with UNAVAILABLE at its
 *            timeout, later ones fail fast, the subscriber notices through
 *            its probe; after SIGCONT everything recovers, and the abandoned
 *            command's callback never runs twice.
 *   restart  Redis restarted (its memory lost): reconnect, resubscribe with
 *            is_resync, the rate-limit script reloaded, routes re-created
 *            by their refresh. */
#include <signal.h>
#include <unistd.h>

#include "cache/presence.h"
#include "cache/pubsub.h"
#include "cache/ratelimit.h"
#include "cache/routes.h"
#include "harness.h"

static pl_redis_t *r;
static pl_cache_sub_t *sub;
static int subscribed, resyncs, messages;
static char last_message[64];
static int ticks;
static pid_t stopped_pid;

static void on_message(const void *data, size_t len, void *user)
{
    (void)user;
    messages++;
    snprintf(last_message, sizeof last_message, "%.*s", (int)len, (const char *)data);
}

static void on_subscribed(bool is_resync, void *user)
{
    (void)user;
    subscribed++;
    resyncs += is_resync;
}

/* Whatever happens, a stopped Redis must not outlive the test. */
static void resume_redis(void)
{
    if (stopped_pid > 0)
        kill(stopped_pid, SIGCONT);
    stopped_pid = 0;
}

static bool pred_down(void *arg)
{
    (void)arg;
    return !pl_redis_is_up(r);
}

static bool pred_unsubscribed(void *arg)
{
    (void)arg;
    return !pl_cache_sub_is_subscribed(sub);
}

typedef struct wait_n {
    const int *counter;
    int want;
} wait_n_t;

static bool pred_n(void *arg)
{
    const wait_n_t *w = arg;
    return *w->counter >= w->want && pl_cache_sub_is_subscribed(sub);
}

static bool wait_subscribed(int want, int ms)
{
    wait_n_t w = {&subscribed, want};
    return run_until(pred_n, &w, ms);
}

/* One outcome per operation kind, with its latency. */
typedef struct outcome {
    bool done;
    int calls;
    pl_code_t code;
    int64_t t0, took_ms;
} outcome_t;

static void finish(outcome_t *o, pl_code_t code)
{
    CHECK(!in_submit);
    o->calls++;
    o->code = code;
    o->took_ms = pl_now_msec() - o->t0;
    o->done = true;
}

static void on_result(const pl_redis_result_t *res, void *user)
{
    finish(user, res->code);
}

static void on_done(pl_code_t code, const char *message, void *user)
{
    (void)message;
    finish(user, code);
}

static void on_count(pl_code_t code, const char *message, int64_t count, void *user)
{
    (void)message;
    (void)count;
    finish(user, code);
}

static void on_flag(pl_code_t code, const char *message, bool flag, void *user)
{
    (void)message;
    (void)flag;
    finish(user, code);
}

static void on_rate(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    (void)message;
    (void)rate;
    finish(user, code);
}

static void on_presence(pl_code_t code, const char *message, const pl_cache_presence_t *p, size_t n, void *user)
{
    (void)message;
    (void)p;
    (void)n;
    finish(user, code);
}

static void on_routes(pl_code_t code, const char *message, const pl_cache_route_t *s, size_t n, void *user)
{
    (void)message;
    (void)s;
    on_count(code, message, (int64_t)n, user);
}

static bool pred_all(void *arg)
{
    const outcome_t *o = arg;
    for (int i = 0; i < 7; i++)
        if (!o[i].done)
            return false;
    return true;
}

/* Sends one operation of every kind; returns the slowest latency, or -1 if
 * one did not fail with `want`. */
static int all_kinds(pl_code_t want)
{
    outcome_t o[7] = {0};
    int64_t now = pl_now_msec();
    for (int i = 0; i < 7; i++)
        o[i].t0 = now;
    const char *get[] = {"GET", "parley:test:x"};
    pl_cache_route_t s = {.account_id = 1, .device_id = 1, .node_id = 5, .epoch = 1};
    int64_t ids[] = {1, 2};
    in_submit = true;
    CHECK_EQ_INT(pl_redis_command_argv(r, 2, get, NULL, on_result, &o[0]), 0);
    CHECK_EQ_INT(pl_cache_route_put(r, &s, 60, on_done, &o[1]), 0);
    CHECK_EQ_INT(pl_cache_route_refresh(r, &s, 60, on_flag, &o[2]), 0);
    CHECK_EQ_INT(pl_cache_route_lookup(r, ids, 2, on_routes, &o[3]), 0);
    CHECK_EQ_INT(pl_cache_presence_get(r, ids, 2, on_presence, &o[4]), 0);
    CHECK_EQ_INT(pl_cache_ratelimit_take(r, "k", 1, 5, 1.0, 1, on_rate, &o[5]), 0);
    CHECK_EQ_INT(pl_cache_publish(r, 5, "x", 1, on_count, &o[6]), 0);
    in_submit = false;
    CHECK(run_until(pred_all, o, 5000));
    int slowest = 0;
    for (int i = 0; i < 7; i++) {
        CHECK_EQ_INT(o[i].calls, 1);
        CHECK_EQ_INT(o[i].code, want);
        if (o[i].code != want)
            return -1;
        if (o[i].took_ms > slowest)
            slowest = (int)o[i].took_ms;
    }
    return slowest;
}

static void check_publish_round_trip(const char *text)
{
    int before = messages;
    outcome_t o = {.t0 = pl_now_msec()};
    CHECK_EQ_INT(pl_cache_publish(r, 5, text, strlen(text), on_count, &o), 0);
    CHECK(wait_flag(&o.done, 3000));
    CHECK_EQ_INT(o.code, PL_CODE_OK);
    wait_n_t w = {&messages, before + 1};
    CHECK(run_until(pred_n, &w, 3000));
    CHECK_EQ_STR(last_message, text);
}

static void setup(int timeout_ms)
{
    pl_redis_config_t cfg = test_config(5, timeout_ms);
    r = new_client(&cfg);
    char err[256] = "";
    sub = pl_cache_sub_new(base, &cfg, on_message, on_subscribed, NULL, err, sizeof err);
    if (!sub) {
        fprintf(stderr, "pl_cache_sub_new: %s\n", err);
        exit(1);
    }
    CHECK(wait_up(r, 5000));
    CHECK(wait_subscribed(1, 5000));
    CHECK_EQ_INT(all_kinds(PL_CODE_OK) >= 0, 1);
}

static void case_down(void)
{
    setup(1000);
    CHECK_EQ_INT(stack_run("redis-stop"), 0);
    CHECK(run_until(pred_down, NULL, 3000));
    int ticks_before = ticks;
    int slowest = 0;
    int64_t t0 = pl_now_msec();
    for (int round = 0; round < 8; round++) {
        int s = all_kinds(PL_CODE_UNAVAILABLE);
        CHECK(s >= 0);
        if (s > slowest)
            slowest = s;
        run_for(150); /* across reconnect attempts */
    }
    int64_t span = pl_now_msec() - t0;
    fprintf(stderr, "    down: slowest failure %d ms (timeout 1000); %d ticks in %lld ms\n", slowest,
            ticks - ticks_before, (long long)span);
    CHECK(slowest < 100);
    CHECK(ticks - ticks_before >= (int)(span / 10) / 2); /* the loop kept running */
    CHECK(run_until(pred_unsubscribed, NULL, 3000));

    CHECK_EQ_INT(stack_run("redis-start"), 0);
    t0 = pl_now_msec();
    CHECK(wait_up(r, 4000));
    int64_t took = pl_now_msec() - t0;
    CHECK(wait_subscribed(2, 4000));
    int64_t took_sub = pl_now_msec() - t0;
    fprintf(stderr, "    down: up again %lld ms, resubscribed %lld ms after the restart\n", (long long)took,
            (long long)took_sub);
    CHECK(took < 3000);
    CHECK_EQ_INT(resyncs, 1);
    CHECK(all_kinds(PL_CODE_OK) >= 0);
    check_publish_round_trip("back");
}

static void case_hung(void)
{
    const int timeout = 500;
    setup(timeout);
    stopped_pid = redis_pid();
    CHECK(stopped_pid > 0);
    if (stopped_pid <= 0)
        return;
    CHECK_EQ_INT(kill(stopped_pid, SIGSTOP), 0);
    int ticks_before = ticks;

    outcome_t hung = {.t0 = pl_now_msec()};
    const char *set[] = {"SET", "parley:test:hung", "late"};
    CHECK_EQ_INT(pl_redis_command_argv(r, 3, set, NULL, on_result, &hung), 0);
    CHECK(wait_flag(&hung.done, 5000));
    fprintf(stderr, "    hung: command failed after %lld ms (timeout %d)\n", (long long)hung.took_ms, timeout);
    CHECK_EQ_INT(hung.code, PL_CODE_UNAVAILABLE);
    CHECK(hung.took_ms >= timeout - 20 && hung.took_ms < timeout + 700);

    /* Later commands do not wait for a server known to be hung. */
    int s = all_kinds(PL_CODE_UNAVAILABLE);
    fprintf(stderr, "    hung: next failures within %d ms\n", s);
    CHECK(s >= 0 && s < 100);

    /* The idle subscriber finds out through its probe. */
    int64_t t0 = pl_now_msec();
    CHECK(run_until(pred_unsubscribed, NULL, PL_CACHE_SUB_PROBE_MS + timeout + 1500));
    fprintf(stderr, "    hung: subscriber noticed after %lld ms\n", (long long)(pl_now_msec() - t0));
    run_for(500);
    CHECK(ticks - ticks_before >= 50); /* the loop kept running throughout */

    resume_redis();
    t0 = pl_now_msec();
    CHECK(wait_up(r, 4000));
    CHECK(wait_subscribed(2, 4000));
    fprintf(stderr, "    hung: recovered %lld ms after SIGCONT\n", (long long)(pl_now_msec() - t0));
    CHECK_EQ_INT(resyncs, 1);
    CHECK(all_kinds(PL_CODE_OK) >= 0);
    check_publish_round_trip("awake");
    run_for(300);
    CHECK_EQ_INT(hung.calls, 1); /* its late reply, if any, reached no one */
}

static void case_restart(void)
{
    setup(1000);
    pl_cache_route_t s = {.account_id = 77, .device_id = 1, .node_id = 5, .epoch = 3};
    outcome_t o = {0};
    CHECK_EQ_INT(pl_cache_route_put(r, &s, 60, on_done, &o), 0);
    CHECK(wait_flag(&o.done, 3000));
    char sha[41];
    CHECK_EQ_INT(pl_cache_ratelimit_sha(sha), 0);
    CHECK_EQ_INT(raw_cmd(r, "SCRIPT", "EXISTS", sha)->first, 1);

    /* A command in flight when Redis goes still completes exactly once. */
    outcome_t inflight = {.t0 = pl_now_msec()};
    const char *ping[] = {"PING"};
    CHECK_EQ_INT(pl_redis_command_argv(r, 1, ping, NULL, on_result, &inflight), 0);
    CHECK_EQ_INT(stack_run("redis-stop"), 0);
    run_for(1500); /* down for a while: the backoff grows */
    CHECK(inflight.done);
    CHECK(!pl_redis_is_up(r));
    CHECK_EQ_INT(stack_run("redis-start"), 0);
    int64_t t0 = pl_now_msec();
    CHECK(wait_up(r, 4000));
    int64_t took = pl_now_msec() - t0;
    CHECK(wait_subscribed(2, 4000));
    fprintf(stderr, "    restart: up %lld ms, resubscribed %lld ms after the restart\n", (long long)took,
            (long long)(pl_now_msec() - t0));
    CHECK(took < 3000);
    CHECK_EQ_INT(resyncs, 1);
    CHECK_EQ_INT(inflight.calls, 1);
    check_publish_round_trip("restarted");

    /* A fresh Redis: no scripts, no routes. */
    CHECK_EQ_INT(raw_cmd(r, "SCRIPT", "EXISTS", sha)->first, 0);
    CHECK(all_kinds(PL_CODE_OK) >= 0); /* includes a rate-limit take */
    CHECK_EQ_INT(raw_cmd(r, "SCRIPT", "EXISTS", sha)->first, 1);
    CHECK_EQ_INT(raw_cmd(r, "EXISTS", "parley:sess:77")->integer, 0);
    memset(&o, 0, sizeof o);
    CHECK_EQ_INT(pl_cache_route_refresh(r, &s, 60, on_flag, &o), 0);
    CHECK(wait_flag(&o.done, 3000));
    CHECK_EQ_INT(o.code, PL_CODE_OK);
    CHECK_EQ_INT(raw_cmd(r, "HEXISTS", "parley:sess:77", "1")->integer, 1);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s down|hung|restart (under tests/harness/with_stack.sh)\n", argv[0]);
        return 2;
    }
    atexit(resume_redis);
    harness_begin();
    struct event *ticker = event_new(base, -1, EV_PERSIST, harness_tick, &ticks);
    struct timeval tv = {0, 10000};
    event_add(ticker, &tv);

    if (strcmp(argv[1], "down") == 0)
        case_down();
    else if (strcmp(argv[1], "hung") == 0)
        case_hung();
    else if (strcmp(argv[1], "restart") == 0)
        case_restart();
    else {
        fprintf(stderr, "unknown case '%s'\n", argv[1]);
        return 2;
    }
    resume_redis();
    event_free(ticker);
    pl_cache_sub_free(sub);
    pl_redis_free(r);
    return harness_end();
}
