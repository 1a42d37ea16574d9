/* test_cache_pubsub.c — cross-node pub/sub (server/cache/publish.c,
 * subscriber.c) against a real Redis: binary round trips (NUL bytes, empty,
 * 256 KiB), order, receiver counts, other nodes' channels, argument checks,
 * the idle probe, resubscription with is_resync after the server kills the
 * connection, and freeing the subscriber from inside its callbacks. */
#include "cache/pubsub.h"
#include "harness.h"
#include "runtime/errors.h"

typedef struct inbox {
    pl_cache_sub_t *sub;
    int subscribed, resyncs;
    int messages;
    unsigned char *last;
    size_t last_len;
    int seq_next, seq_bad;
    bool free_on_message, free_on_subscribed;
} inbox_t;

static void on_message(const void *data, size_t len, void *user)
{
    inbox_t *in = user;
    in->messages++;
    free(in->last);
    in->last = malloc(len + 1);
    if (in->last)
        memcpy(in->last, data, len);
    in->last_len = len;
    int seq;
    if (len > 4 && memcmp(data, "seq:", 4) == 0 && sscanf((const char *)in->last + 4, "%d", &seq) == 1) {
        if (seq != in->seq_next)
            in->seq_bad++;
        in->seq_next = seq + 1;
    }
    if (in->free_on_message)
        pl_cache_sub_free(in->sub);
}

static void on_subscribed(bool is_resync, void *user)
{
    inbox_t *in = user;
    in->subscribed++;
    in->resyncs += is_resync;
    if (in->free_on_subscribed)
        pl_cache_sub_free(in->sub);
}

static bool pred_subscribed(void *arg)
{
    const inbox_t *in = arg;
    return in->subscribed > 0 && pl_cache_sub_is_subscribed(in->sub);
}

typedef struct wait_n {
    const int *counter;
    int want;
} wait_n_t;

static bool pred_n(void *arg)
{
    const wait_n_t *w = arg;
    return *w->counter >= w->want;
}

static bool wait_count(const int *counter, int want, int ms)
{
    wait_n_t w = {counter, want};
    return run_until(pred_n, &w, ms);
}

typedef struct pub {
    bool done;
    int calls;
    pl_code_t code;
    int64_t count;
} pub_t;

static void on_published(pl_code_t code, const char *message, int64_t count, void *user)
{
    pub_t *p = user;
    CHECK(!in_submit);
    CHECK(message != NULL);
    p->calls++;
    p->code = code;
    p->count = count;
    p->done = true;
}

/* Publishes and waits; returns the number of receivers. */
static int64_t publish(pl_redis_t *r, int node, const void *data, size_t len)
{
    pub_t p = {0};
    in_submit = true;
    int rc = pl_cache_publish(r, node, data, len, on_published, &p);
    in_submit = false;
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        CHECK(wait_flag(&p.done, 5000));
    CHECK_EQ_INT(p.calls, 1);
    CHECK_EQ_INT(p.code, PL_CODE_OK);
    return p.count;
}

static pl_cache_sub_t *new_sub(int node, inbox_t *in)
{
    pl_redis_config_t cfg = test_config(node, 500);
    char err[256] = "";
    pl_cache_sub_t *s = pl_cache_sub_new(base, &cfg, on_message, on_subscribed, in, err, sizeof err);
    if (!s) {
        fprintf(stderr, "pl_cache_sub_new: %s\n", err);
        exit(1);
    }
    in->sub = s;
    return s;
}

static void test_round_trips(pl_redis_t *r, inbox_t *in)
{
    static const unsigned char bin[] = {0, 'a', 0, 'b', 0xff, 0, 0};
    CHECK_EQ_INT(publish(r, 7, bin, sizeof bin), 1);
    CHECK(wait_count(&in->messages, 1, 3000));
    CHECK_EQ_MEM(in->last, in->last_len, bin, sizeof bin);

    CHECK_EQ_INT(publish(r, 7, NULL, 0), 1);
    CHECK(wait_count(&in->messages, 2, 3000));
    CHECK_EQ_INT(in->last_len, 0);

    size_t big_len = 256 * 1024;
    unsigned char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 7919 + (i >> 8));
    CHECK_EQ_INT(publish(r, 7, big, big_len), 1);
    CHECK(wait_count(&in->messages, 3, 3000));
    CHECK_EQ_MEM(in->last, in->last_len, big, big_len);
    free(big);
}

static void test_order(pl_redis_t *r, inbox_t *in)
{
    int before = in->messages;
    in->seq_next = 0;
    pub_t p[200] = {0};
    for (int i = 0; i < 200; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "seq:%d", i);
        CHECK_EQ_INT(pl_cache_publish(r, 7, msg, (size_t)n, on_published, &p[i]), 0);
    }
    CHECK(wait_count(&in->messages, before + 200, 5000));
    CHECK_EQ_INT(in->seq_next, 200);
    CHECK_EQ_INT(in->seq_bad, 0);
    for (int i = 0; i < 200; i++)
        CHECK_EQ_INT(p[i].count, 1);
}

static void test_other_channels(pl_redis_t *r, inbox_t *in)
{
    int before = in->messages;
    CHECK_EQ_INT(publish(r, 8, "x", 1), 0); /* nobody listens to node 8 */
    run_for(100);
    CHECK_EQ_INT(in->messages, before);
    pub_t p = {0};
    CHECK_EQ_INT(pl_cache_publish(r, 7, "x", PL_CACHE_PUBLISH_MAX_BYTES + 1, on_published, &p), PL_ERR_INVALID);
    CHECK_EQ_INT(pl_cache_publish(r, -1, "x", 1, on_published, &p), PL_ERR_INVALID);
    run_for(50);
    CHECK_EQ_INT(p.calls, 0);
}

static void test_idle_probe(pl_redis_t *r, inbox_t *in)
{
    /* The probe runs every second; it must neither disturb nor resync. */
    run_for(2500);
    CHECK(pl_cache_sub_is_subscribed(in->sub));
    CHECK_EQ_INT(in->subscribed, 1);
    CHECK_EQ_INT(in->resyncs, 0);
    const raw_reply_t *x = raw_cmd(r, "CLIENT", "LIST", "TYPE", "pubsub");
    CHECK(x->str && strstr(x->str, "name=parley:node:7:sub") != NULL);
}

static void test_resubscribe(pl_redis_t *r, inbox_t *in)
{
    const raw_reply_t *x = raw_cmd(r, "CLIENT", "KILL", "TYPE", "pubsub");
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    CHECK_EQ_INT(x->integer, 1);
    CHECK(wait_count(&in->subscribed, 2, 4000));
    CHECK_EQ_INT(in->resyncs, 1);
    CHECK(pl_cache_sub_is_subscribed(in->sub));
    int before = in->messages;
    CHECK_EQ_INT(publish(r, 7, "after", 5), 1);
    CHECK(wait_count(&in->messages, before + 1, 3000));
    CHECK_EQ_MEM(in->last, in->last_len, "after", 5);
}

static void test_free_in_callbacks(pl_redis_t *r)
{
    inbox_t a = {.free_on_message = true};
    static pub_t p[3];
    new_sub(9, &a);
    CHECK(wait_count(&a.subscribed, 1, 4000));
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(pl_cache_publish(r, 9, "m", 1, on_published, &p[i]), 0);
    CHECK(wait_count(&a.messages, 1, 3000));
    run_for(200);
    CHECK_EQ_INT(a.messages, 1); /* freed at the first */
    free(a.last);

    inbox_t b = {.free_on_subscribed = true};
    new_sub(10, &b);
    CHECK(wait_count(&b.subscribed, 1, 4000));
    run_for(200);
    CHECK_EQ_INT(b.subscribed, 1);
    CHECK_EQ_INT(publish(r, 10, "m", 1), 0); /* its connection is gone */
}

int main(void)
{
    harness_begin();
    pl_redis_config_t cfg = test_config(1, 2000);
    pl_redis_t *r = new_client(&cfg);
    CHECK(wait_up(r, 5000));

    inbox_t in = {0};
    new_sub(7, &in);
    CHECK(!pl_cache_sub_is_subscribed(in.sub));
    CHECK(run_until(pred_subscribed, &in, 5000));
    CHECK_EQ_INT(in.subscribed, 1);
    CHECK_EQ_INT(in.resyncs, 0);

    test_round_trips(r, &in);
    test_order(r, &in);
    test_other_channels(r, &in);
    test_idle_probe(r, &in);
    test_resubscribe(r, &in);
    test_free_in_callbacks(r);

    char err[128] = "";
    CHECK(pl_cache_sub_new(base, &cfg, NULL, on_subscribed, NULL, err, sizeof err) == NULL);
    CHECK(err[0] != '\0');

    pl_cache_sub_free(in.sub);
    free(in.last);
    pl_redis_free(r);
    return harness_end();
}
