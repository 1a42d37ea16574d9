/* test_receipts.c — receipts as cursors: forward only, capped, the chat-wide
 * minimums, who hears of them, what GetChat shows. */

#include "cases.h"
#include "checks.h"

/* ---- receipts ---- */

typedef struct want_receipt {
    int64_t chat, account, delivered, read, all_delivered, all_read;
} want_receipt_t;

static bool match_receipt(const mt_event_t *e, const void *arg)
{
    const want_receipt_t *w = arg;
    const parley_v1_Receipt *r = &e->u.receipt;
    return e->kind == RECEIPT && r->chat_id == w->chat && r->account_id == w->account &&
           r->delivered_seq == w->delivered && r->read_seq == w->read && r->delivered_to_all_seq == w->all_delivered &&
           r->read_by_all_seq == w->all_read;
}

static void expect_receipt(mt_stream_t *s, const char *who, want_receipt_t w)
{
    mt_event_t *e = mt_take(s, MT_WAIT_MS, match_receipt, &w);
    CHECK(e != NULL,
          "%s: no Receipt{chat %lld, account %lld, delivered %lld, read %lld, delivered_to_all %lld, "
          "read_by_all %lld}",
          who, (long long)w.chat, (long long)w.account, (long long)w.delivered, (long long)w.read,
          (long long)w.all_delivered, (long long)w.all_read);
    if (!e)
        dump_events(who, s);
}

/* Receipts on s never go backwards per (chat, account), nor past max_seq. */
static void check_receipts_monotonic(const char *who, const mt_stream_t *s, int64_t chat, int64_t max_seq)
{
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *a = s->events[i];
        if (a->kind != RECEIPT || a->u.receipt.chat_id != chat)
            continue;
        const parley_v1_Receipt *x = &a->u.receipt;
        CHECK(x->delivered_seq <= max_seq && x->read_seq <= max_seq && x->delivered_to_all_seq <= max_seq &&
                  x->read_by_all_seq <= max_seq,
              "%s: a Receipt past the chat's last seq %lld", who, (long long)max_seq);
        for (size_t j = i + 1; j < s->count; j++) {
            const mt_event_t *b = s->events[j];
            if (b->kind != RECEIPT || b->u.receipt.chat_id != chat)
                continue;
            const parley_v1_Receipt *y = &b->u.receipt;
            CHECK(y->delivered_to_all_seq >= x->delivered_to_all_seq && y->read_by_all_seq >= x->read_by_all_seq,
                  "%s: the chat-wide minimums went back (event %zu after %zu)", who, j, i);
            if (y->account_id == x->account_id)
                CHECK(y->delivered_seq >= x->delivered_seq && y->read_seq >= x->read_seq,
                      "%s: account %lld's cursors went back (event %zu after %zu)", who, (long long)x->account_id, j,
                      i);
        }
    }
}

static void expect_chat(mt_dev_t *d, int64_t chat, int64_t last_seq, const int64_t (*members)[3], size_t n,
                        int64_t all_delivered, int64_t all_read, const char *when)
{
    parley_v1_Chat *c;
    pl_code_t code = mt_get_chat(d, chat, &c);
    CHECK(code == PL_CODE_OK, "GetChat %s: %s (%s)", when, pl_code_name(code), mt_last_message());
    if (code == PL_CODE_OK) {
        CHECK_EQ_INT(c->last_seq, last_seq);
        CHECK_EQ_INT(c->delivered_to_all_seq, all_delivered);
        CHECK_EQ_INT(c->read_by_all_seq, all_read);
        for (size_t i = 0; i < n; i++) {
            const parley_v1_Member *m = mt_member(c, members[i][0]);
            CHECK(m != NULL, "GetChat %s: member %lld missing", when, (long long)members[i][0]);
            if (!m)
                continue;
            CHECK(m->delivered_seq == members[i][1] && m->read_seq == members[i][2],
                  "GetChat %s: member %lld delivered %lld read %lld, want %lld %lld", when, (long long)members[i][0],
                  (long long)m->delivered_seq, (long long)m->read_seq, (long long)members[i][1],
                  (long long)members[i][2]);
        }
    }
    free(c);
}

int mt_case_receipts(void)
{
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone"), *a2 = mt_register(a1->phone, 0, "A laptop");
    mt_dev_t *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 0, "C");
    int64_t members[] = {b->account_id, c->account_id};
    int64_t g = mt_create_group(a1, "receipts", members, 2);
    mt_stream_t *sa1 = mt_connect(a1, 0), *sa2 = mt_connect(a2, 0), *sb = mt_connect(b, 0), *sc = mt_connect(c, 0);
    ready(sa1, "A1");
    ready(sa2, "A2");
    ready(sb, "B");
    ready(sc, "C");
    int64_t A = a1->account_id, B = b->account_id, C = c->account_id;

    step("A sends 3 messages (seqs 2..4): its own cursors move with them (GetChat below shows 4/4)");
    for (int i = 0; i < 3; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "rc-%d", i);
        CHECK_EQ_INT(send_ok(sa1, g, cid, "hello group"), 2 + i);
    }
    wait_range(sb, "B", g, 1, 4);
    wait_range(sc, "C", g, 1, 4);
    /* reading what it sent changes nothing: the sends moved A's cursors */
    mt_send_cursor(sa1, g, 4, true);

    step("B delivered 3: the sender's devices get B's cursor");
    mt_send_cursor(sb, g, 3, false);
    expect_receipt(sa1, "A1", (want_receipt_t){g, B, 3, 0, 0, 0});
    expect_receipt(sa2, "A2", (want_receipt_t){g, B, 3, 0, 0, 0});

    step("C delivered 4: delivered to all = min over members = 3");
    mt_send_cursor(sc, g, 4, false);
    expect_receipt(sa1, "A1", (want_receipt_t){g, C, 4, 0, 3, 0});
    expect_receipt(sa2, "A2", (want_receipt_t){g, C, 4, 0, 3, 0});
    int64_t after3[3][3] = {{A, 4, 4}, {B, 3, 0}, {C, 4, 0}};
    expect_chat(b, g, 4, after3, 3, 3, 0, "after C's delivered");

    step("B read 4 (read implies delivered): delivered to all 4, read by all still 0");
    mt_send_cursor(sb, g, 4, true);
    expect_receipt(sa1, "A1", (want_receipt_t){g, B, 4, 4, 4, 0});
    expect_receipt(sa2, "A2", (want_receipt_t){g, B, 4, 4, 4, 0});

    step("C read 3: read by all 3");
    mt_send_cursor(sc, g, 3, true);
    expect_receipt(sa1, "A1", (want_receipt_t){g, C, 4, 3, 4, 3});
    int64_t after5[3][3] = {{A, 4, 4}, {B, 4, 4}, {C, 4, 3}};
    expect_chat(c, g, 4, after5, 3, 4, 3, "after C's read");

    step("cursors never move back");
    mt_send_cursor(sb, g, 1, false);
    mt_send_cursor(sb, g, 2, true);
    mt_pump(sb, 300);
    expect_chat(a1, g, 4, after5, 3, 4, 3, "after B tried to move back");

    step("cursors stop at the chat's last seq");
    mt_send_cursor(sc, g, 1000, true);
    expect_receipt(sa1, "A1", (want_receipt_t){g, C, 4, 4, 4, 4});
    mt_send_cursor(sb, g, 500, false);
    mt_pump(sb, 300);
    int64_t after7[3][3] = {{A, 4, 4}, {B, 4, 4}, {C, 4, 4}};
    expect_chat(b, g, 4, after7, 3, 4, 4, "after cursors past the end");
    mt_pump(sa1, 1000);
    mt_pump(sa2, 300);
    check_receipts_monotonic("A1", sa1, g, 4);
    check_receipts_monotonic("A2", sa2, g, 4);

    step("a direct chat: both accounts' cursors, capped, reach A's devices");
    int64_t d = mt_open_direct(a1, B);
    int64_t dseq = send_ok(sa1, d, "direct-1", "hi B");
    CHECK_EQ_INT(dseq, 1);
    CHECK(mt_wait_message(sb, d, dseq, MT_WAIT_MS) != NULL, "B did not get the direct message");
    mt_send_cursor(sa1, d, dseq, true); /* already there: the send moved A's cursors */
    mt_send_cursor(sb, d, 99, false);
    expect_receipt(sa1, "A1", (want_receipt_t){d, B, 1, 0, 1, 0});
    expect_receipt(sa2, "A2", (want_receipt_t){d, B, 1, 0, 1, 0});
    mt_send_cursor(sb, d, dseq, true);
    expect_receipt(sa1, "A1", (want_receipt_t){d, B, 1, 1, 1, 1});
    expect_receipt(sa2, "A2", (want_receipt_t){d, B, 1, 1, 1, 1});
    int64_t dm[2][3] = {{A, 1, 1}, {B, 1, 1}};
    expect_chat(a1, d, 1, dm, 2, 1, 1, "direct chat");
    check_receipts_monotonic("A1", sa1, d, 1);

    mt_stream_t *streams[] = {sa1, sa2, sb, sc};
    mt_close_all(streams, 4);
    mt_dev_free(a1);
    mt_dev_free(a2);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}
