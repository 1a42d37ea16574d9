/* test_delivery.c — the send path: durable before Accepted, one total order
 * per chat under concurrent senders, idempotent retries. */
#include <pthread.h>
#include <stdatomic.h>

#include "cases.h"
#include "checks.h"

/* ---- accepted_after_durable ---- */

/* The row of (chat, seq) as PostgreSQL has it right now. */
static void check_stored(int64_t chat, int64_t seq, const mt_dev_t *sender, const char *cid, const char *payload,
                         int64_t server_time_ms)
{
    char c[24], q[24];
    id_text(chat, c);
    id_text(seq, q);
    const char *p[] = {c, q};
    PGresult *r = mt_sql(mt_shard_of(chat),
                         "SELECT sender_account, sender_device, client_msg_id, encode(payload, 'hex'), "
                         "(extract(epoch FROM created_at) * 1000)::bigint FROM {s}.messages "
                         "WHERE chat_id = $1 AND seq = $2",
                         2, p);
    CHECK(PQntuples(r) == 1, "chat %s seq %s: %d rows in PostgreSQL when its Accepted arrived", c, q, PQntuples(r));
    if (PQntuples(r) == 1) {
        char hex[2 * 256 + 1];
        to_hex(payload, strlen(payload), hex);
        CHECK_EQ_INT(strtoll(PQgetvalue(r, 0, 0), NULL, 10), sender->account_id);
        CHECK_EQ_INT(strtoll(PQgetvalue(r, 0, 1), NULL, 10), sender->device_id);
        CHECK_EQ_STR(PQgetvalue(r, 0, 2), cid);
        CHECK_EQ_STR(PQgetvalue(r, 0, 3), hex);
        CHECK_EQ_INT(strtoll(PQgetvalue(r, 0, 4), NULL, 10), server_time_ms);
    }
    PQclear(r);
    CHECK(mt_sql_int(mt_shard_of(chat), "SELECT last_seq FROM {s}.chats WHERE id = $1", 1, p) >= seq,
          "chat %s: last_seq behind an accepted seq %s", c, q);
}

int mt_case_accepted_after_durable(void)
{
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 0, "C");
    int64_t direct = mt_open_direct(a, b->account_id);
    int64_t members[] = {b->account_id, c->account_id};
    int64_t group = mt_create_group(a, "durable", members, 2);
    printf("direct chat %lld (shard %d), group %lld (shard %d)\n", (long long)direct, mt_shard_of(direct),
           (long long)group, mt_shard_of(group));
    mt_stream_t *sa = mt_connect(a, 0);
    ready(sa, "A");

    step("stream sends: Accepted carries the chat, the next seq and the time, and the row exists");
    int64_t chats[2] = {direct, group};
    int64_t first_seq[2] = {1, 2}; /* a group's seq 1 is its CREATED system message */
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 5; i++) {
            char cid[32], payload[64];
            snprintf(cid, sizeof(cid), "durable-%d-%d", k, i);
            snprintf(payload, sizeof(payload), "ciphertext %d/%d", k, i);
            int64_t before = mt_wall_ms();
            mt_event_t *e = answer(sa, mt_send_text(sa, chats[k], cid, payload, strlen(payload)), cid);
            int64_t after = mt_wall_ms();
            REQUIRE(e->kind == ACCEPTED, "%s refused: %s", cid, e->error ? e->error->message : "");
            const parley_v1_Accepted *acc = &e->u.accepted;
            check_stored(chats[k], acc->seq, a, cid, payload, acc->server_time_ms); /* first: "at that moment" */
            CHECK_EQ_STR(acc->client_message_id, cid);
            CHECK_EQ_INT(acc->chat_id, chats[k]);
            CHECK_EQ_INT(acc->seq, first_seq[k] + i);
            CHECK(!acc->duplicate);
            CHECK(acc->server_time_ms >= before - 2000 && acc->server_time_ms <= after + 2000,
                  "server_time_ms %lld outside the send's window %lld..%lld", (long long)acc->server_time_ms,
                  (long long)before, (long long)after);
        }
    }

    step("unary Send: the response comes after the row exists");
    for (int k = 0; k < 2; k++) {
        char cid[32], payload[64];
        snprintf(cid, sizeof(cid), "durable-unary-%d", k);
        snprintf(payload, sizeof(payload), "unary ciphertext %d", k);
        parley_v1_SendResponse r;
        pl_code_t code = mt_unary_send(a, chats[k], cid, payload, strlen(payload), &r);
        REQUIRE(code == PL_CODE_OK, "unary send: %s (%s)", pl_code_name(code), mt_last_message());
        check_stored(chats[k], r.seq, a, cid, payload, r.server_time_ms);
        CHECK_EQ_INT(r.chat_id, chats[k]);
        CHECK_EQ_INT(r.seq, first_seq[k] + 5);
        CHECK(!r.duplicate);
    }
    mt_close(sa);
    mt_stream_free(sa);
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}

/* ---- seq_order ---- */

#define SENDERS 3
#define PER_SENDER 50

typedef struct sender {
    mt_stream_t *s;
    int64_t chat;
    int index;
    int64_t seqs[PER_SENDER];
    int refused;
    char failure[300];
} sender_t;

static atomic_int senders_done;

static void sender_payload(int sender, int i, char *out, size_t len)
{
    snprintf(out, len, "sender %d message %d", sender, i);
}

static void *sender_main(void *arg)
{
    sender_t *t = arg;
    uint64_t rids[PER_SENDER];
    for (int i = 0; i < PER_SENDER; i++) {
        char cid[32], payload[64];
        snprintf(cid, sizeof(cid), "order-%d-%d", t->index, i);
        sender_payload(t->index, i, payload, sizeof(payload));
        rids[i] = mt_send_text(t->s, t->chat, cid, payload, strlen(payload));
    }
    for (int i = 0; i < PER_SENDER; i++) {
        mt_event_t *e = rids[i] ? mt_answer(t->s, rids[i], 60000) : NULL;
        if (!e || e->kind != ACCEPTED) {
            t->refused++;
            if (!t->failure[0])
                snprintf(t->failure, sizeof(t->failure), "send %d: %s", i,
                         !e         ? "no answer"
                         : e->error ? e->error->message
                                    : "?");
            continue;
        }
        t->seqs[i] = e->u.accepted.seq;
    }
    atomic_fetch_add(&senders_done, 1);
    return NULL;
}

/* What seq should be, from the senders' answers and the log. */
typedef struct expected_log {
    int64_t n;      /* last seq */
    int *sender_of; /* by seq: sender index, -1 system message */
    int *index_of;  /* by seq: the sender's message number */
} expected_log_t;

static void check_delivery(const char *who, mt_stream_t *s, int64_t chat, const expected_log_t *x, int own,
                           const mt_dev_t *const *sender_devs)
{
    /* everything except what this very device sent (it has its Accepted) */
    for (int64_t seq = 1; seq <= x->n; seq++) {
        if (x->sender_of[seq] == own && own >= 0)
            continue;
        if (!mt_wait_message(s, chat, seq, 60000)) {
            dump_events(who, s);
            CHECK(false, "%s: message %lld of %lld never arrived", who, (long long)seq, (long long)x->n);
            return;
        }
    }
    mt_pump(s, 300);
    size_t n;
    int64_t *seqs = mt_message_seqs(s, chat, &n);
    for (size_t i = 1; i < n; i++)
        if (seqs[i] <= seqs[i - 1]) {
            CHECK(false, "%s: seq %lld arrived after %lld (out of order or repeated)", who, (long long)seqs[i],
                  (long long)seqs[i - 1]);
            break;
        }
    free(seqs);
    check_no_repeats(who, s);
    int wrong = 0;
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        if (e->kind != MESSAGE || e->u.message.chat_id != chat)
            continue;
        const parley_v1_Message *m = &e->u.message;
        if (m->seq < 1 || m->seq > x->n) {
            CHECK(false, "%s: seq %lld outside 1..%lld", who, (long long)m->seq, (long long)x->n);
            continue;
        }
        int sender = x->sender_of[m->seq];
        if (sender < 0) {
            wrong += !(m->chat_event.len > 0 && m->payload.len == 0 && m->sender_device_id == 0);
            continue;
        }
        char payload[64];
        sender_payload(sender, x->index_of[m->seq], payload, sizeof(payload));
        bool ok = m->payload.len == strlen(payload) && memcmp(m->payload.data, payload, m->payload.len) == 0 &&
                  m->sender_account_id == sender_devs[sender]->account_id &&
                  m->sender_device_id == sender_devs[sender]->device_id && !m->payload_missing;
        if (!ok && !wrong)
            fprintf(stderr, "    %s: seq %lld: payload \"%.*s\" from %lld/%lld, want \"%s\" from %lld/%lld\n", who,
                    (long long)m->seq, (int)m->payload.len, (const char *)m->payload.data,
                    (long long)m->sender_account_id, (long long)m->sender_device_id, payload,
                    (long long)sender_devs[sender]->account_id, (long long)sender_devs[sender]->device_id);
        wrong += !ok;
    }
    CHECK(wrong == 0, "%s: %d messages with the wrong content or sender", who, wrong);
}

int mt_case_seq_order(void)
{
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone");
    mt_dev_t *a2 = mt_register(a1->phone, 0, "A laptop");
    mt_dev_t *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 0, "C");
    int64_t members[] = {b->account_id, c->account_id};
    int64_t group = mt_create_group(a1, "order", members, 2);
    mt_stream_t *s_a1 = mt_connect(a1, 0), *s_a2 = mt_connect(a2, 0), *s_b = mt_connect(b, 0), *s_c = mt_connect(c, 0);
    ready(s_a1, "A1");
    ready(s_a2, "A2");
    ready(s_b, "B");
    ready(s_c, "C");

    step("3 senders x 50 messages at once into one group");
    sender_t senders[SENDERS] = {
        {s_a1, group, 0, {0}, 0, ""}, {s_b, group, 1, {0}, 0, ""}, {s_c, group, 2, {0}, 0, ""}};
    const mt_dev_t *sender_devs[SENDERS] = {a1, b, c};
    pthread_t threads[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        REQUIRE(pthread_create(&threads[i], NULL, sender_main, &senders[i]) == 0, "pthread_create");
    /* A's other device reads meanwhile, as a live device would */
    int64_t until = mt_now_ms() + 120000;
    while (atomic_load(&senders_done) < SENDERS && mt_now_ms() < until)
        mt_pump(s_a2, 100);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < SENDERS; i++)
        REQUIRE(senders[i].refused == 0, "sender %d: %d sends refused (%s)", i, senders[i].refused, senders[i].failure);

    step("seqs: 1..N, unique and contiguous, system messages included");
    char cs[24];
    id_text(group, cs);
    const char *p[] = {cs};
    int64_t n = mt_sql_int(mt_shard_of(group), "SELECT last_seq FROM {s}.chats WHERE id = $1", 1, p);
    int64_t system = mt_sql_int(mt_shard_of(group),
                                "SELECT count(*) FROM {s}.messages WHERE chat_id = $1 AND sender_device = 0", 1, p);
    printf("group %lld: last_seq %lld, %lld system message(s)\n", (long long)group, (long long)n, (long long)system);
    CHECK_EQ_INT(n, SENDERS * PER_SENDER + system);
    CHECK(system >= 1);
    CHECK_EQ_INT(rows_in_chat(group), n);
    CHECK_EQ_INT(mt_sql_int(mt_shard_of(group),
                            "SELECT count(DISTINCT seq) FROM {s}.messages WHERE chat_id = $1 AND seq BETWEEN 1 AND "
                            "(SELECT last_seq FROM {s}.chats WHERE id = $1)",
                            1, p),
                 n);
    expected_log_t x = {n, calloc((size_t)n + 1, sizeof(int)), calloc((size_t)n + 1, sizeof(int))};
    REQUIRE(x.sender_of && x.index_of, "out of memory");
    for (int64_t seq = 0; seq <= n; seq++)
        x.sender_of[seq] = -2; /* not claimed yet */
    int collisions = 0, outside = 0;
    for (int i = 0; i < SENDERS; i++)
        for (int k = 0; k < PER_SENDER; k++) {
            int64_t seq = senders[i].seqs[k];
            if (seq < 1 || seq > n) {
                outside++;
                continue;
            }
            collisions += x.sender_of[seq] != -2;
            x.sender_of[seq] = i;
            x.index_of[seq] = k;
            if (k > 0)
                CHECK(seq > senders[i].seqs[k - 1], "sender %d: message %d got seq %lld after %lld", i, k,
                      (long long)seq, (long long)senders[i].seqs[k - 1]);
        }
    CHECK(collisions == 0, "%d accepted seqs given twice", collisions);
    CHECK(outside == 0, "%d accepted seqs outside 1..%lld", outside, (long long)n);
    PGresult *sys = mt_sql(mt_shard_of(group),
                           "SELECT seq FROM {s}.messages WHERE chat_id = $1 AND sender_device = 0 ORDER BY seq", 1, p);
    for (int r = 0; r < PQntuples(sys); r++) {
        int64_t seq = strtoll(PQgetvalue(sys, r, 0), NULL, 10);
        CHECK(seq >= 1 && seq <= n && x.sender_of[seq] == -2, "system message seq %lld collides", (long long)seq);
        if (seq >= 1 && seq <= n)
            x.sender_of[seq] = -1;
    }
    PQclear(sys);
    int holes = 0;
    for (int64_t seq = 1; seq <= n; seq++)
        holes += x.sender_of[seq] == -2;
    CHECK(holes == 0, "%d seqs in 1..%lld belong to nothing", holes, (long long)n);
    REQUIRE(holes == 0 && collisions == 0 && outside == 0, "the log is not 1..N; delivery cannot be judged");

    step("the first message is the CREATED system message naming the members");
    parley_v1_ChatEvent *ce = calloc(1, sizeof(*ce));
    REQUIRE(ce != NULL, "out of memory");
    const parley_v1_Message *first = mt_wait_message(s_b, group, 1, MT_WAIT_MS);
    REQUIRE(first != NULL, "B never got seq 1");
    CHECK_EQ_INT(first->sender_device_id, 0);
    CHECK_EQ_INT(first->sender_account_id, a1->account_id);
    CHECK(pl_pb_decode(parley_v1_ChatEvent_fields, first->chat_event.data, first->chat_event.len, ce, NULL) == 0);
    CHECK_EQ_INT(ce->type, parley_v1_ChatEvent_Type_CREATED);
    free(ce);

    step("every device of every member gets every message, in order, once");
    check_delivery("A1 (sender)", s_a1, group, &x, 0, sender_devs);
    check_delivery("A2 (the sender's other device)", s_a2, group, &x, -1, sender_devs);
    check_delivery("B (sender)", s_b, group, &x, 1, sender_devs);
    check_delivery("C (sender)", s_c, group, &x, 2, sender_devs);

    free(x.sender_of);
    free(x.index_of);
    mt_stream_t *streams[] = {s_a1, s_a2, s_b, s_c};
    mt_close_all(streams, 4);
    mt_dev_free(a1);
    mt_dev_free(a2);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}

/* ---- idempotent_send ---- */

int mt_case_idempotent_send(void)
{
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone"), *a2 = mt_register(a1->phone, 0, "A laptop");
    mt_dev_t *b = mt_register(NULL, 0, "B");
    int64_t chat = mt_open_direct(a1, b->account_id);
    mt_stream_t *s1 = mt_connect(a1, 0), *s2 = mt_connect(a2, 0), *sb = mt_connect(b, 0);
    ready(s1, "A1");
    ready(s2, "A2");
    ready(sb, "B");

    step("a retry on the stream returns the original seq, duplicate=true");
    int64_t seq1 = send_ok(s1, chat, "dup-1", "original");
    mt_event_t *e = answer(s1, mt_send_text(s1, chat, "dup-1", "retry with other bytes", 22), "retry");
    REQUIRE(e->kind == ACCEPTED, "retry refused");
    CHECK_EQ_INT(e->u.accepted.seq, seq1);
    CHECK(e->u.accepted.duplicate);
    CHECK_EQ_STR(e->u.accepted.client_message_id, "dup-1");
    CHECK_EQ_INT(e->u.accepted.chat_id, chat);

    step("the same id through unary Send: the same seq, duplicate=true");
    parley_v1_SendResponse r;
    CHECK_EQ_INT(mt_unary_send(a1, chat, "dup-1", "original", 8, &r), PL_CODE_OK);
    CHECK_EQ_INT(r.seq, seq1);
    CHECK(r.duplicate);

    step("unary first, then retries by unary and by stream");
    int64_t seq2 = unary_ok(a1, chat, "dup-2", "second");
    CHECK_EQ_INT(seq2, seq1 + 1);
    CHECK_EQ_INT(mt_unary_send(a1, chat, "dup-2", "second", 6, &r), PL_CODE_OK);
    CHECK_EQ_INT(r.seq, seq2);
    CHECK(r.duplicate);
    e = answer(s1, mt_send_text(s1, chat, "dup-2", "second", 6), "stream retry of a unary send");
    CHECK(e->kind == ACCEPTED && e->u.accepted.seq == seq2 && e->u.accepted.duplicate);

    step("one row per (device, client id), with the first payload");
    CHECK_EQ_INT(rows_with_client_id(chat, a1->device_id, "dup-1"), 1);
    CHECK_EQ_INT(rows_with_client_id(chat, a1->device_id, "dup-2"), 1);
    char c[24], q[24];
    id_text(chat, c);
    id_text(seq1, q);
    const char *p[] = {c, q};
    PGresult *res = mt_sql(mt_shard_of(chat),
                           "SELECT encode(payload, 'escape') FROM {s}.messages "
                           "WHERE chat_id = $1 AND seq = $2",
                           2, p);
    REQUIRE(PQntuples(res) == 1, "no row for seq %lld", (long long)seq1);
    CHECK_EQ_STR(PQgetvalue(res, 0, 0), "original");
    PQclear(res);

    step("five copies of one send at once: one message");
    uint64_t rids[5];
    for (int i = 0; i < 5; i++)
        rids[i] = mt_send_text(s1, chat, "dup-race", "raced", 5);
    int64_t race_seq = -1;
    int originals = 0;
    for (int i = 0; i < 5; i++) {
        e = answer(s1, rids[i], "raced send");
        REQUIRE(e->kind == ACCEPTED, "raced send %d refused: %s", i, e->error ? e->error->message : "");
        if (race_seq < 0)
            race_seq = e->u.accepted.seq;
        CHECK_EQ_INT(e->u.accepted.seq, race_seq);
        originals += !e->u.accepted.duplicate;
    }
    CHECK_EQ_INT(originals, 1);
    CHECK_EQ_INT(rows_with_client_id(chat, a1->device_id, "dup-race"), 1);
    CHECK_EQ_INT(race_seq, seq2 + 1);

    step("the same client id from another device is another message");
    e = answer(s2, mt_send_text(s2, chat, "dup-1", "from the laptop", 15), "A2's dup-1");
    REQUIRE(e->kind == ACCEPTED, "A2's send refused");
    CHECK(!e->u.accepted.duplicate);
    int64_t seq3 = e->u.accepted.seq;
    CHECK_EQ_INT(seq3, race_seq + 1);
    CHECK_EQ_INT(rows_with_client_id(chat, a2->device_id, "dup-1"), 1);
    CHECK_EQ_INT(rows_in_chat(chat), 4);

    step("B got each message once");
    wait_range(sb, "B", chat, seq1, seq3);
    mt_pump(sb, 500);
    for (int64_t seq = seq1; seq <= seq3; seq++)
        CHECK(mt_count_message(sb, chat, seq) == 1, "B got seq %lld %d times", (long long)seq,
              mt_count_message(sb, chat, seq));
    const parley_v1_Message *m = mt_wait_message(sb, chat, seq1, 0);
    REQUIRE(m != NULL, "B has no seq %lld", (long long)seq1);
    CHECK_EQ_MEM(m->payload.data, m->payload.len, "original", 8);
    m = mt_wait_message(sb, chat, seq3, 0);
    REQUIRE(m != NULL, "B has no seq %lld", (long long)seq3);
    CHECK_EQ_INT(m->sender_device_id, a2->device_id);
    CHECK_EQ_MEM(m->payload.data, m->payload.len, "from the laptop", 15);
    check_no_repeats("B", sb);

    mt_stream_t *streams[] = {s1, s2, sb};
    mt_close_all(streams, 3);
    mt_dev_free(a1);
    mt_dev_free(a2);
    mt_dev_free(b);
    return pl_test_report();
}
