/* test_nodes.c — several nodes: delivery between them, and without Redis. */

#include "cases.h"
#include "checks.h"

/* ---- cross_node ---- */

typedef struct sent {
    int64_t chat, seq, device;
    char payload[48];
} sent_t;

static void check_got(const char *who, mt_stream_t *s, const mt_dev_t *self, const sent_t *sent, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sent[i].device == self->device_id)
            continue; /* the sender has its Accepted or SendResponse */
        const parley_v1_Message *m = mt_wait_message(s, sent[i].chat, sent[i].seq, MT_WAIT_MS);
        CHECK(m != NULL, "%s (node %d) did not get %lld/%lld", who, s->node, (long long)sent[i].chat,
              (long long)sent[i].seq);
        if (!m)
            continue;
        CHECK_EQ_MEM(m->payload.data, m->payload.len, sent[i].payload, strlen(sent[i].payload));
        CHECK_EQ_INT(m->sender_device_id, sent[i].device);
    }
    for (size_t i = 0; i < n; i++) {
        if (i && sent[i].chat == sent[i - 1].chat)
            continue;
        size_t k;
        int64_t *seqs = mt_message_seqs(s, sent[i].chat, &k);
        for (size_t j = 1; j < k; j++)
            CHECK(seqs[j] > seqs[j - 1], "%s: chat %lld seq %lld after %lld", who, (long long)sent[i].chat,
                  (long long)seqs[j], (long long)seqs[j - 1]);
        free(seqs);
    }
    check_no_repeats(who, s);
}

int mt_case_cross_node(void)
{
    REQUIRE(mt_nodes() >= 2, "needs two nodes (--nodes 2)");
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone"), *a2 = mt_register(a1->phone, 1, "A laptop");
    mt_dev_t *b = mt_register(NULL, 1, "B"), *c = mt_register(NULL, 0, "C");
    int64_t direct = mt_open_direct(a1, b->account_id);
    int64_t members[] = {b->account_id, c->account_id};
    int64_t group = mt_create_group(a1, "two nodes", members, 2);
    mt_stream_t *sa1 = mt_connect(a1, 0), *sa2 = mt_connect(a2, 1), *sb = mt_connect(b, 1), *sc = mt_connect(c, 0);
    ready(sa1, "A1");
    ready(sa2, "A2");
    ready(sb, "B");
    ready(sc, "C");
    sent_t direct_sent[10], group_sent[16];
    size_t nd = 0, ng = 0;

    step("direct: node 0 -> node 1, and node 1 -> node 0");
    for (int i = 0; i < 10; i++) {
        mt_stream_t *from = i < 5 ? sa1 : sb;
        const mt_dev_t *dev = i < 5 ? a1 : b;
        sent_t *x = &direct_sent[nd++];
        snprintf(x->payload, sizeof(x->payload), "direct %d from node %d", i, from->node);
        char cid[24];
        snprintf(cid, sizeof(cid), "x-d-%d", i);
        x->chat = direct;
        x->seq = send_ok(from, direct, cid, x->payload);
        x->device = dev->device_id;
    }
    check_got("B", sb, b, direct_sent, nd);
    check_got("A1", sa1, a1, direct_sent, nd);
    check_got("A2", sa2, a2, direct_sent, nd);

    step("group: every member sends, from both nodes, by stream and unary");
    mt_stream_t *from[4] = {sa1, sb, sc, sa2};
    const mt_dev_t *devs[4] = {a1, b, c, a2};
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 4; k++) {
            sent_t *x = &group_sent[ng++];
            snprintf(x->payload, sizeof(x->payload), "group r%d from device %d (node %d)", round, k, from[k]->node);
            char cid[24];
            snprintf(cid, sizeof(cid), "x-g-%d-%d", round, k);
            x->chat = group;
            x->seq = send_ok(from[k], group, cid, x->payload);
            x->device = devs[k]->device_id;
        }
    for (int k = 0; k < 2; k++) {
        mt_dev_t *u = k ? c : b; /* B's unary channel is on node 1, C's on node 0 */
        sent_t *x = &group_sent[ng++];
        snprintf(x->payload, sizeof(x->payload), "unary from node %d", u->node);
        char cid[24];
        snprintf(cid, sizeof(cid), "x-u-%d", k);
        x->chat = group;
        x->seq = unary_ok(u, group, cid, x->payload);
        x->device = u->device_id;
    }
    check_got("A1", sa1, a1, group_sent, ng);
    check_got("A2", sa2, a2, group_sent, ng);
    check_got("B", sb, b, group_sent, ng);
    check_got("C", sc, c, group_sent, ng);

    mt_stream_t *streams[] = {sa1, sa2, sb, sc};
    mt_close_all(streams, 4);
    mt_dev_free(a1);
    mt_dev_free(a2);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}

/* ---- redis_down ---- */

int mt_case_redis_down(void)
{
    REQUIRE(mt_nodes() >= 2, "needs two nodes (--nodes 2)");
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 1, "C");
    int64_t d = mt_open_direct(a, b->account_id);
    int64_t members[] = {b->account_id, c->account_id};
    int64_t g = mt_create_group(a, "without redis", members, 2);
    mt_stream_t *sa = mt_connect(a, 0), *sb = mt_connect(b, 0), *sc = mt_connect(c, 1);
    ready(sa, "A");
    ready(sb, "B");
    ready(sc, "C");

    step("with Redis: a group message reaches both nodes");
    int64_t seq = send_ok(sa, g, "before", "with redis");
    CHECK(mt_wait_message(sb, g, seq, MT_WAIT_MS) != NULL, "B did not get it");
    CHECK(mt_wait_message(sc, g, seq, MT_WAIT_MS) != NULL, "C (node 1) did not get it");

    step("Redis stops; sends on node 0 succeed and reach node 0's devices");
    REQUIRE(mt_stack("redis-stop") == 0, "tools/stack redis-stop failed");
    int64_t down_d[3], down_g[3];
    for (int i = 0; i < 3; i++) {
        char cid[24], pay[32];
        snprintf(cid, sizeof(cid), "down-d-%d", i);
        snprintf(pay, sizeof(pay), "no redis %d", i);
        down_d[i] = send_ok(sa, d, cid, pay);
        snprintf(cid, sizeof(cid), "down-g-%d", i);
        down_g[i] = send_ok(sa, g, cid, pay);
    }
    for (int i = 0; i < 3; i++) {
        const parley_v1_Message *m = mt_wait_message(sb, d, down_d[i], MT_WAIT_MS);
        CHECK(m != NULL, "B did not get direct %lld without Redis", (long long)down_d[i]);
        CHECK(mt_wait_message(sb, g, down_g[i], MT_WAIT_MS) != NULL, "B did not get group %lld without Redis",
              (long long)down_g[i]);
    }
    int64_t useq = unary_ok(b, d, "down-unary", "unary without redis");
    CHECK(mt_wait_message(sa, d, useq, MT_WAIT_MS) != NULL, "A did not get B's unary message without Redis");

    step("without Redis, a device reconnects and catches up");
    mt_drop(sb);
    mt_stream_free(sb);
    int64_t later[2];
    later[0] = send_ok(sa, d, "down-later-0", "while B is away");
    later[1] = send_ok(sa, d, "down-later-1", "while B is away");
    parley_v1_Cursor cur = {d, down_d[2]};
    sb = mt_connect_resume(b, 0, &cur, 1);
    ready(sb, "B reconnected without Redis");
    /* not B's own unary message: the sending device has it (common.proto) */
    int64_t want[2] = {later[0], later[1]};
    check_before_ready("B reconnected without Redis", sb, d, want, 2);

    step("Redis is back (empty, as it keeps nothing): nothing sent meanwhile is lost, delivery goes on across nodes");
    REQUIRE(mt_stack("redis-start") == 0, "tools/stack redis-start failed");
    for (int i = 0; i < 3; i++)
        CHECK(mt_wait_message(sc, g, down_g[i], MT_WAIT_MS) != NULL,
              "C (node 1, connected throughout) never got group message %lld sent while Redis was down",
              (long long)down_g[i]);
    mt_pump(sa, 1000); /* the nodes' Redis clients reconnect (they retry within a second or two) */
    mt_pump(sc, 1000);
    mt_pump(sb, 1000);
    int64_t after = send_ok(sa, g, "after", "redis is back");
    int64_t t0 = mt_now_ms();
    printf("message %lld sent to the group at %lld (wall ms); C is account %lld on node 1\n", (long long)after,
           (long long)mt_wall_ms(), (long long)c->account_id);
    const parley_v1_Message *m = mt_wait_message(sc, g, after, MT_WAIT_MS);
    CHECK(m != NULL, "C (node 1) did not get a message sent 3 s after Redis came back, within %d ms", MT_WAIT_MS);
    if (!m) {
        m = mt_wait_message(sc, g, after, 70000);
        printf("C got it %s\n", m ? "later" : "not even 90 s after it was sent");
        if (m)
            printf("  %lld ms after it was sent\n", (long long)(mt_now_ms() - t0));
    }
    CHECK(mt_wait_message(sb, g, after, MT_WAIT_MS) != NULL, "B did not get a message after Redis came back");
    int64_t from_c = send_ok(sc, g, "from-c", "from node 1");
    m = mt_wait_message(sa, g, from_c, MT_WAIT_MS);
    CHECK(m != NULL, "A (node 0) did not get node 1's message after Redis came back, within %d ms", MT_WAIT_MS);
    check_no_repeats("C", sc);
    size_t n;
    int64_t *seqs = mt_message_seqs(sc, g, &n);
    for (size_t i = 1; i < n; i++)
        CHECK(seqs[i] > seqs[i - 1], "C: seq %lld after %lld", (long long)seqs[i], (long long)seqs[i - 1]);
    free(seqs);
    mt_stream_t *fresh = mt_connect(c, 1);
    ready(fresh, "C's new stream after Redis came back");

    mt_stream_t *streams[] = {sa, sb, fresh};
    mt_close_all(streams, 3);
    mt_stream_free(sc); /* replaced by fresh */
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}
