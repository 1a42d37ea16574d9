/* test_seqtrack.c — unit tests of client/api/seqtrack.c, the per-chat
 * record of seen seqs that drops repeats and gives the cursors: marks in
 * and out of order, the base learnt from the first message or gap and not
 * from own sends, ranges merging, gaps, and the bound on ranges. */
#include <stdio.h>
#include <stdlib.h>

#include "api/seqtrack.h"
#include "check.h"

static void in_order(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 0);
    CHECK(pl_seqtrack_cursor(&t) == 0);
    CHECK(!pl_seqtrack_has(&t, 1));
    for (int64_t s = 1; s <= 100; s++)
        CHECK(pl_seqtrack_mark(&t, s, s, true));
    CHECK(pl_seqtrack_cursor(&t) == 100 && t.count == 0);
    CHECK(pl_seqtrack_has(&t, 1) && pl_seqtrack_has(&t, 100) && !pl_seqtrack_has(&t, 101));
    CHECK(!pl_seqtrack_mark(&t, 50, 50, true)); /* a repeat moves nothing */
    pl_seqtrack_dispose(&t);
}

static void base_from_first_message(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 0);
    /* a member who joined at 40: the server starts there */
    CHECK(pl_seqtrack_mark(&t, 40, 40, true));
    CHECK(pl_seqtrack_cursor(&t) == 40);
    CHECK(pl_seqtrack_has(&t, 1)); /* below the base counts as seen */
    pl_seqtrack_dispose(&t);
}

static void own_sends_do_not_set_the_base(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 0);
    /* our accepted 7 overtakes the catch-up of 5 and 6 */
    CHECK(!pl_seqtrack_mark(&t, 7, 7, false));
    CHECK(pl_seqtrack_cursor(&t) == 0 && pl_seqtrack_has(&t, 7) && !pl_seqtrack_has(&t, 5));
    CHECK(pl_seqtrack_mark(&t, 5, 5, true)); /* the base: 4 */
    CHECK(pl_seqtrack_cursor(&t) == 5);
    CHECK(pl_seqtrack_mark(&t, 6, 6, true));
    CHECK(pl_seqtrack_cursor(&t) == 7 && t.count == 0); /* 7 absorbed */
    CHECK(pl_seqtrack_has(&t, 7));
    pl_seqtrack_dispose(&t);
}

static void with_a_saved_cursor(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 30);
    CHECK(pl_seqtrack_cursor(&t) == 30 && pl_seqtrack_has(&t, 30) && !pl_seqtrack_has(&t, 31));
    CHECK(!pl_seqtrack_mark(&t, 33, 33, false));
    CHECK(!pl_seqtrack_mark(&t, 35, 35, false));
    CHECK(!pl_seqtrack_mark(&t, 34, 34, false)); /* merges 33..35 */
    CHECK(t.count == 1 && t.ranges[0].from == 33 && t.ranges[0].to == 35);
    CHECK(pl_seqtrack_mark(&t, 31, 32, true));
    CHECK(pl_seqtrack_cursor(&t) == 35 && t.count == 0);
    pl_seqtrack_dispose(&t);
}

static void gaps(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 0);
    /* a resume capped to the last messages: Gap 1..900, then 901.. */
    CHECK(pl_seqtrack_mark(&t, 1, 900, true));
    CHECK(pl_seqtrack_cursor(&t) == 900);
    CHECK(pl_seqtrack_has_all(&t, 1, 900) && !pl_seqtrack_has_all(&t, 1, 901));
    CHECK(!pl_seqtrack_mark(&t, 905, 910, false));
    CHECK(pl_seqtrack_has_all(&t, 906, 909) && !pl_seqtrack_has_all(&t, 904, 906));
    CHECK(pl_seqtrack_mark(&t, 901, 904, true));
    CHECK(pl_seqtrack_cursor(&t) == 910);
    CHECK(!pl_seqtrack_mark(&t, 5, 3, true)); /* backwards: nothing */
    pl_seqtrack_dispose(&t);
}

static void many_ranges(void)
{
    pl_seqtrack_t t;
    pl_seqtrack_init(&t, 1);
    /* every other seq: ranges pile up to the bound, then the highest go */
    for (int64_t s = 3; s < 3 + 2 * (PL_SEQTRACK_MAX_RANGES + 10); s += 2)
        pl_seqtrack_mark(&t, s, s, false);
    CHECK(t.count == PL_SEQTRACK_MAX_RANGES);
    CHECK(pl_seqtrack_has(&t, 3) && !pl_seqtrack_has(&t, 4));
    /* filling the holes from the bottom folds everything kept into the cursor */
    for (int64_t s = 2; s < 2 + 2 * PL_SEQTRACK_MAX_RANGES; s += 2)
        pl_seqtrack_mark(&t, s, s, true);
    CHECK(t.count == 0 && pl_seqtrack_cursor(&t) == 1 + 2 * PL_SEQTRACK_MAX_RANGES);
    /* sorted and merged whatever the order */
    pl_seqtrack_dispose(&t);
    pl_seqtrack_init(&t, 0);
    int64_t order[] = {50, 10, 30, 20, 40, 11, 12, 13, 9, 31};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        pl_seqtrack_mark(&t, order[i], order[i], false);
    for (uint32_t i = 1; i < t.count; i++)
        CHECK(t.ranges[i - 1].to + 1 < t.ranges[i].from);
    CHECK(t.count == 5); /* 9-13, 20, 30-31, 40, 50 */
    pl_seqtrack_dispose(&t);
}

int main(void)
{
    in_order();
    base_from_first_message();
    own_sends_do_not_set_the_base();
    with_a_saved_cursor();
    gaps();
    many_ranges();
    return pl_test_report();
}
