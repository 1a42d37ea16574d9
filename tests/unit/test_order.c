/* test_order.c — server/messaging/order.c: where a live message goes on one
 * stream. The verdicts at the window's edges, the held list (sorted, no
 * duplicates, bounded), then 5 000 random runs of a stream model: a chat's
 * messages arrive late, early, twice and out of order, the held list waits,
 * and a catch-up (the model's PostgreSQL) sends every missed one in order;
 * the device must see each seq exactly once, in order. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "messaging/order.h"

static void test_verdicts(void)
{
    CHECK_EQ_INT(pl_order_live(5, 3, true), PL_ORDER_HAVE);
    CHECK_EQ_INT(pl_order_live(5, 5, true), PL_ORDER_HAVE);
    CHECK_EQ_INT(pl_order_live(5, 6, true), PL_ORDER_SEND);
    CHECK_EQ_INT(pl_order_live(5, 7, true), PL_ORDER_HOLD);
    CHECK_EQ_INT(pl_order_live(5, 5 + PL_ORDER_HOLD_MAX, true), PL_ORDER_HOLD);
    CHECK_EQ_INT(pl_order_live(5, 6 + PL_ORDER_HOLD_MAX, true), PL_ORDER_CATCH_UP);
    /* not live: nothing goes out directly, not even the next one */
    CHECK_EQ_INT(pl_order_live(5, 6, false), PL_ORDER_CATCH_UP);
    CHECK_EQ_INT(pl_order_live(5, 5, false), PL_ORDER_HAVE);
    CHECK_EQ_INT(pl_order_live(0, INT64_MAX, true), PL_ORDER_CATCH_UP);
}

static void test_held_list(void)
{
    pl_order_held_t held[PL_ORDER_HOLD_MAX];
    uint8_t n = 0;
    int a, b, c;
    CHECK_EQ_INT(pl_order_hold(held, &n, 9, &a), 1);
    CHECK_EQ_INT(pl_order_hold(held, &n, 7, &b), 1);
    CHECK_EQ_INT(pl_order_hold(held, &n, 8, NULL), 1);
    CHECK_EQ_INT(pl_order_hold(held, &n, 7, &c), 0); /* held already: the first stays */
    CHECK_EQ_INT(n, 3);
    CHECK(held[0].seq == 7 && held[0].item == &b);
    CHECK(held[1].seq == 8 && held[1].item == NULL);
    CHECK(held[2].seq == 9 && held[2].item == &a);
    pl_order_shift(held, &n, 2);
    CHECK(n == 1 && held[0].seq == 9);
    for (int64_t s = 100; n < PL_ORDER_HOLD_MAX; s++)
        CHECK_EQ_INT(pl_order_hold(held, &n, s, NULL), 1);
    CHECK_EQ_INT(pl_order_hold(held, &n, 10, NULL), -1); /* full */
    CHECK_EQ_INT(pl_order_hold(held, &n, 9, NULL), 0);   /* full, but held already */
    pl_order_shift(held, &n, n);
    CHECK_EQ_INT(n, 0);
}

/* The model: one chat of `total` messages; the device has seen up to upto.
 * Events are the seqs in a shuffled order with some repeated and some lost
 * (a lost one is only ever found by a catch-up). The stream follows deliver.c:
 * SEND goes out and drains the held list, HOLD keeps it, CATCH_UP (or a held
 * list that waited too long) fetches every seq up to the highest known. */
typedef struct model {
    int64_t upto, target, total;
    pl_order_held_t held[PL_ORDER_HOLD_MAX];
    uint8_t held_count;
    int64_t *seen; /* the device's view, in order */
    size_t seen_count;
    bool ok;
} model_t;

static void emit(model_t *m, int64_t seq)
{
    if (seq != m->upto + 1)
        m->ok = false; /* out of order, repeated or skipped */
    m->seen[m->seen_count++] = seq;
    m->upto = seq;
}

static void catch_up(model_t *m)
{
    m->held_count = 0; /* the fetch sends them too */
    while (m->upto < m->target)
        emit(m, m->upto + 1);
}

static void drain(model_t *m)
{
    uint8_t used = 0;
    for (; used < m->held_count; used++) {
        pl_order_verdict_t v = pl_order_live(m->upto, m->held[used].seq, true);
        if (v == PL_ORDER_SEND)
            emit(m, m->held[used].seq);
        else if (v != PL_ORDER_HAVE)
            break;
    }
    pl_order_shift(m->held, &m->held_count, used);
}

static void arrive(model_t *m, int64_t seq, bool is_live)
{
    if (seq > m->target)
        m->target = seq;
    switch (pl_order_live(m->upto, seq, is_live)) {
    case PL_ORDER_HAVE: return;
    case PL_ORDER_SEND:
        emit(m, seq);
        drain(m);
        return;
    case PL_ORDER_HOLD:
        if (pl_order_hold(m->held, &m->held_count, seq, NULL) >= 0)
            return;
        catch_up(m);
        return;
    case PL_ORDER_CATCH_UP: catch_up(m); return;
    }
}

static void test_random_streams(void)
{
    srand(11);
    int64_t events[400];
    int64_t seen[200];
    for (int round = 0; round < 5000; round++) {
        model_t m = {.total = 1 + rand() % 150, .seen = seen, .ok = true};
        size_t n = 0;
        for (int64_t s = 1; s <= m.total; s++) {
            if (rand() % 10 == 0)
                continue; /* lost on the way: only a catch-up finds it */
            events[n++] = s;
            if (rand() % 8 == 0)
                events[n++] = s; /* delivered twice (two paths) */
        }
        /* local disorder: each event moves a few places at most */
        for (size_t i = 0; i + 1 < n; i++) {
            size_t j = i + (size_t)(rand() % 4);
            if (j < n) {
                int64_t t = events[i];
                events[i] = events[j];
                events[j] = t;
            }
        }
        for (size_t i = 0; i < n; i++) {
            arrive(&m, events[i], rand() % 20 != 0); /* sometimes a catch-up is under way */
            if (m.held_count && rand() % 6 == 0)
                catch_up(&m); /* the held list waited too long */
        }
        m.target = m.total; /* the stream learns the end (a hint, a resume) */
        catch_up(&m);
        bool whole = m.ok && m.seen_count == (size_t)m.total;
        CHECK(whole, "random stream %d: %lld messages, %zu seen, in order: %d", round, (long long)m.total, m.seen_count,
              m.ok);
    }
}

int main(void)
{
    test_verdicts();
    test_held_list();
    test_random_streams();
    return pl_test_report();
}
