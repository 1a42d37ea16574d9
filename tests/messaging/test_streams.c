/* test_streams.c — the device stream itself: resume (client cursors, the
 * server's cursors, a new device's cap and Gap), one stream per device,
 * authentication. */

#include "cases.h"
#include "checks.h"

/* ---- resume ---- */

#define RESUME_CAP 5 /* --limits.resume_max_per_chat in CMakeLists.txt */

static void check_nothing_after_ready(const char *who, mt_stream_t *s)
{
    mt_pump(s, 700);
    long r = mt_index_of_kind(s, READY, 0);
    size_t extra = count_kind_from(s, MESSAGE, (size_t)r);
    CHECK(extra == 0, "%s: %zu messages after Ready with nothing new sent", who, extra);
    if (extra)
        dump_events(who, s);
    CHECK(mt_index_of_kind(s, GAP, 0) < 0, "%s: a Gap", who);
}

static bool wait_device_cursor(const mt_dev_t *d, int64_t chat, int64_t want)
{
    char dv[24], c[24];
    id_text(d->device_id, dv);
    id_text(chat, c);
    const char *p[] = {dv, c};
    int shards[2] = {mt_shard_of(d->device_id), mt_shard_of(d->account_id)};
    int64_t until = mt_now_ms() + MT_WAIT_MS;
    while (mt_now_ms() < until) {
        for (int i = 0; i < 2; i++) {
            PGresult *r = mt_sql(
                shards[i], "SELECT delivered_seq FROM {s}.device_cursors WHERE device_id = $1 AND chat_id = $2", 2, p);
            bool ok = PQntuples(r) == 1 && strtoll(PQgetvalue(r, 0, 0), NULL, 10) >= want;
            PQclear(r);
            if (ok)
                return true;
        }
        mt_sleep_ms(50);
    }
    return false;
}

int mt_case_resume(void)
{
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B phone"), *c = mt_register(NULL, 0, "C");
    int64_t bc[] = {b->account_id, c->account_id};
    int64_t chats[3] = {mt_open_direct(a, b->account_id), mt_create_group(a, "resume 1", bc, 2),
                        mt_create_group(a, "resume 2", bc, 1)};
    const char *names[3] = {"direct", "group 1", "group 2"};
    int64_t last[3] = {0, 1, 1}; /* the groups' CREATED messages */
    int msg_no = 0;
#define SEND_FROM_A(k)                                                                                                 \
    do {                                                                                                               \
        char cid_[32], pay_[48];                                                                                       \
        snprintf(cid_, sizeof(cid_), "r-%d", msg_no);                                                                  \
        snprintf(pay_, sizeof(pay_), "resume payload %d", msg_no++);                                                   \
        int64_t seq_ = unary_ok(a, chats[k], cid_, pay_);                                                              \
        CHECK_EQ_INT(seq_, last[k] + 1);                                                                               \
        last[k] = seq_;                                                                                                \
    } while (0)

    step("B's first stream sees the chats as they are");
    int initial[3] = {3, 2, 2};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < initial[k]; i++)
            SEND_FROM_A(k);
    mt_stream_t *s = mt_connect(b, 0);
    ready(s, "B");
    for (int k = 0; k < 3; k++) {
        int64_t want[16];
        size_t n = 0;
        for (int64_t q = 1; q <= last[k]; q++)
            want[n++] = q;
        check_before_ready("B's first stream", s, chats[k], want, n);
    }
    CHECK(mt_index_of_kind(s, GAP, 0) < 0, "a Gap for chats within the resume cap");
    int64_t seen[3] = {last[0], last[1], last[2]};
    mt_drop(s);
    mt_stream_free(s);

    step("B is away while messages arrive in 3 chats; it resumes with its cursors");
    int missed_per[3] = {4, 5, 3};
    int64_t missed[3][8];
    size_t nmissed[3] = {0, 0, 0};
    for (int round = 0; round < 5; round++)
        for (int k = 0; k < 3; k++)
            if (round < missed_per[k]) {
                SEND_FROM_A(k);
                missed[k][nmissed[k]++] = last[k];
            }
    parley_v1_Cursor cur[3];
    for (int k = 0; k < 3; k++)
        cur[k] = (parley_v1_Cursor){chats[k], seen[k]};
    s = mt_connect_resume(b, 0, cur, 3);
    ready(s, "B resumed");
    for (int k = 0; k < 3; k++) {
        char who[64];
        snprintf(who, sizeof(who), "B's resume (%s)", names[k]);
        check_before_ready(who, s, chats[k], missed[k], nmissed[k]);
    }
    check_nothing_after_ready("B's resume", s);
    check_no_repeats("B's resume", s);
    for (int k = 0; k < 3; k++) {
        const parley_v1_Message *m = mt_wait_message(s, chats[k], missed[k][0], 0);
        REQUIRE(m != NULL, "no first missed message");
        CHECK_EQ_INT(m->sender_account_id, a->account_id);
        CHECK(m->payload.len > 0 && memcmp(m->payload.data, "resume payload", 14) == 0);
    }

    step("B acknowledges some of it, goes away; without a Resume the server's cursors decide");
    int64_t acked[3] = {last[0] - 2, last[1], last[2] - 1};
    for (int k = 0; k < 3; k++)
        mt_send_cursor(s, chats[k], acked[k], false);
    for (int k = 0; k < 3; k++)
        REQUIRE(wait_device_cursor(b, chats[k], acked[k]), "B's delivered cursor of %s never reached %lld", names[k],
                (long long)acked[k]);
    mt_close(s);
    mt_stream_free(s);
    int more[3] = {3, 2, 2};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < more[k]; i++)
            SEND_FROM_A(k);
    s = mt_connect(b, 0);
    ready(s, "B without Resume");
    for (int k = 0; k < 3; k++) {
        int64_t want[16];
        size_t n = 0;
        for (int64_t q = acked[k] + 1; q <= last[k]; q++)
            want[n++] = q;
        char who[64];
        snprintf(who, sizeof(who), "B without Resume (%s)", names[k]);
        check_before_ready(who, s, chats[k], want, n);
    }
    check_nothing_after_ready("B without Resume", s);
    check_no_repeats("B without Resume", s);
    mt_close(s);
    mt_stream_free(s);

    step("a brand-new device gets the last 5 of each chat and a Gap for the rest");
    int64_t g3 = mt_create_group(a, "small", bc, 1);
    int64_t g3_last = 1;
    for (int i = 0; i < 2; i++) {
        char cid[32];
        snprintf(cid, sizeof(cid), "small-%d", i);
        g3_last = unary_ok(a, g3, cid, "small group");
    }
    mt_dev_t *b2 = mt_register(b->phone, 0, "B laptop");
    s = mt_connect(b2, 0);
    ready(s, "B's new device");
    long r = mt_index_of_kind(s, READY, 0);
    for (int k = 0; k < 3; k++) {
        REQUIRE(last[k] > RESUME_CAP, "%s has only %lld messages", names[k], (long long)last[k]);
        int64_t want[RESUME_CAP];
        for (int i = 0; i < RESUME_CAP; i++)
            want[i] = last[k] - RESUME_CAP + 1 + i;
        char who[64];
        snprintf(who, sizeof(who), "B's new device (%s)", names[k]);
        check_before_ready(who, s, chats[k], want, RESUME_CAP);
        long gap = -1, first_msg = -1;
        for (size_t i = 0; i < s->count; i++) {
            const mt_event_t *e = s->events[i];
            if (gap < 0 && e->kind == GAP && e->u.gap.chat_id == chats[k])
                gap = (long)i;
            if (first_msg < 0 && e->kind == MESSAGE && e->u.message.chat_id == chats[k])
                first_msg = (long)i;
        }
        CHECK(gap >= 0 && gap < r, "%s: no Gap before Ready", who);
        if (gap >= 0) {
            CHECK_EQ_INT(s->events[gap]->u.gap.from_seq, 1);
            CHECK_EQ_INT(s->events[gap]->u.gap.to_seq, last[k] - RESUME_CAP);
            CHECK(first_msg < 0 || gap < first_msg, "%s: the Gap came after the messages", who);
        }
    }
    int64_t want3[3] = {1, 2, 3};
    CHECK_EQ_INT(g3_last, 3);
    check_before_ready("B's new device (small group)", s, g3, want3, 3);
    for (size_t i = 0; i < s->count; i++)
        CHECK(!(s->events[i]->kind == GAP && s->events[i]->u.gap.chat_id == g3), "a Gap in a chat of 3 messages");
    check_no_repeats("B's new device", s);
    mt_close(s);
    mt_stream_free(s);
#undef SEND_FROM_A
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(b2);
    mt_dev_free(c);
    return pl_test_report();
}

/* ---- replaced_stream ---- */

static void expect_replaced(mt_stream_t *old, const char *who)
{
    bool ended = mt_wait_end(old, MT_WAIT_MS);
    CHECK(ended, "%s: the older stream did not end", who);
    if (ended)
        CHECK(old->code == PL_CODE_ABORTED, "%s: the older stream ended with %s (%s), want ABORTED", who,
              pl_code_name(old->code), old->message);
}

int mt_case_replaced_stream(void)
{
    REQUIRE(mt_nodes() >= 2, "needs two nodes (--nodes 2)");
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 1, "B");
    int64_t chat = mt_open_direct(a, b->account_id);
    mt_stream_t *sb = mt_connect(b, 1);
    ready(sb, "B");

    step("same node: the second stream ends the first with ABORTED");
    mt_stream_t *s1 = mt_connect(a, 0);
    ready(s1, "A first");
    mt_stream_t *s2 = mt_connect(a, 0);
    ready(s2, "A second");
    expect_replaced(s1, "node 0 -> node 0");
    int64_t seq = send_ok(s2, chat, "after-replace-1", "from the second stream");
    CHECK(mt_wait_message(sb, chat, seq, MT_WAIT_MS) != NULL, "B did not get the replacing stream's message");
    seq = send_ok(sb, chat, "to-a-1", "to the second stream");
    CHECK(mt_wait_message(s2, chat, seq, MT_WAIT_MS) != NULL, "the replacing stream did not get B's message");

    step("another node: a stream on node 1 ends the one on node 0");
    mt_stream_t *s3 = mt_connect(a, 1);
    ready(s3, "A on node 1");
    expect_replaced(s2, "node 0 -> node 1");
    seq = send_ok(s3, chat, "after-replace-2", "from node 1");
    CHECK(mt_wait_message(sb, chat, seq, MT_WAIT_MS) != NULL, "B did not get node 1's message");
    seq = send_ok(sb, chat, "to-a-2", "to node 1");
    CHECK(mt_wait_message(s3, chat, seq, MT_WAIT_MS) != NULL, "A on node 1 did not get B's message");

    step("and back: a stream on node 0 ends the one on node 1");
    mt_stream_t *s4 = mt_connect(a, 0);
    ready(s4, "A back on node 0");
    expect_replaced(s3, "node 1 -> node 0");
    seq = send_ok(sb, chat, "to-a-3", "to node 0 again");
    CHECK(mt_wait_message(s4, chat, seq, MT_WAIT_MS) != NULL, "A back on node 0 did not get B's message");
    mt_pump(s4, 1000);
    CHECK(!s4->is_ended, "the newest stream ended: %s %s", pl_code_name(s4->code), s4->message);

    mt_stream_t *streams[] = {s1, s2, s3, s4, sb};
    mt_close_all(streams, 5);
    mt_dev_free(a);
    mt_dev_free(b);
    return pl_test_report();
}

/* ---- unauthenticated ---- */

int mt_case_unauthenticated(void)
{
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B");
    int64_t d = mt_open_direct(a, b->account_id);
    unary_ok(a, d, "real", "with a real token");
    mt_dev_t *gone = mt_register(a->phone, 0, "A's removed laptop");
    parley_v1_RemoveDeviceRequest rd = {gone->device_id};
    parley_v1_RemoveDeviceResponse rdr = {0};
    REQUIRE(mt_call(a, &parley_v1_Accounts_RemoveDevice_method, &rd, &rdr) == PL_CODE_OK, "RemoveDevice: %s",
            mt_last_message());

    char tampered[96], bearer_tampered[128], basic[128], removed[128];
    snprintf(tampered, sizeof(tampered), "%s", a->token);
    size_t mid = strlen(tampered) / 2 + 4;
    tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
    snprintf(bearer_tampered, sizeof(bearer_tampered), "Bearer %s", tampered);
    snprintf(basic, sizeof(basic), "Basic %s", a->token);
    snprintf(removed, sizeof(removed), "Bearer %s", gone->token);
    struct {
        const char *what, *header;
    } cases[] = {
        {"no authorization", NULL},
        {"a token that is not one", "Bearer not-a-token"},
        {"a bearer without a token", "Bearer"},
        {"a real token with a wrong secret", bearer_tampered},
        {"a real token without Bearer", basic},
        {"a removed device's token", removed},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        printf("-- %s\n", cases[i].what);
        mt_dev_t *h = mt_dev_with_header(0, cases[i].header);
        mt_stream_t *s = mt_connect(h, 0);
        mt_send_text(s, d, "unauth-stream", "x", 1);
        bool ended = mt_wait_end(s, MT_WAIT_MS);
        CHECK(ended && s->code == PL_CODE_UNAUTHENTICATED, "Connect with %s: %s (%s)", cases[i].what,
              ended ? pl_code_name(s->code) : "still open", s->message);
        CHECK(s->count == 0, "Connect with %s: %zu events before the end", cases[i].what, s->count);
        mt_stream_free(s);
        parley_v1_SendResponse r;
        pl_code_t code = mt_unary_send(h, d, "unauth-unary", "x", 1, &r);
        CHECK(code == PL_CODE_UNAUTHENTICATED, "Send with %s: %s (%s)", cases[i].what, pl_code_name(code),
              mt_last_message());
        parley_v1_Message *msgs = calloc(256, sizeof(*msgs));
        REQUIRE(msgs != NULL, "out of memory");
        size_t n;
        bool more;
        code = get_history(h, d, 0, 0, 10, msgs, 256, &n, &more);
        CHECK(code == PL_CODE_UNAUTHENTICATED, "GetHistory with %s: %s (%s)", cases[i].what, pl_code_name(code),
              mt_last_message());
        CHECK_EQ_INT(n, 0);
        free(msgs);
        mt_dev_free(h);
    }
    char c[24];
    id_text(d, c);
    const char *p[] = {c};
    CHECK_EQ_INT(mt_sql_int(mt_shard_of(d),
                            "SELECT count(*) FROM {s}.messages WHERE chat_id = $1 AND client_msg_id LIKE 'unauth%'", 1,
                            p),
                 0);

    step("the real token still works");
    parley_v1_Message *msgs = calloc(256, sizeof(*msgs));
    REQUIRE(msgs != NULL, "out of memory");
    size_t n;
    bool more;
    CHECK_EQ_INT(get_history(a, d, 0, 0, 10, msgs, 256, &n, &more), PL_CODE_OK);
    CHECK_EQ_INT(n, 1);
    free(msgs);
    mt_stream_t *s = mt_connect(a, 0);
    ready(s, "A");
    mt_close(s);
    mt_stream_free(s);
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(gone);
    return pl_test_report();
}
