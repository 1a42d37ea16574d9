/* test_catchup_plan.c — server/messaging/catchup_plan.c: what one page of a
 * catch-up sends. The cases from issue 9 (a full page fetched from an older
 * cursor must not end in a Gap; a resume cap; holes; a removed member; the
 * device's own messages), then 20 000 random pages checked against a model:
 * every seq after the cursor is sent once if it exists and announced as gone
 * only if it does not. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "messaging/catchup_plan.h"

#define MAX_ROWS 128

typedef struct {
    pl_catchup_step_t steps[2 * MAX_ROWS + 3];
    size_t n;
} plan_t;

static plan_t plan_of(pl_catchup_page_t page, const int64_t *seqs, const bool *own, size_t count)
{
    plan_t p = {0};
    page.seqs = seqs;
    page.is_own = own;
    page.count = count;
    p.n = pl_catchup_plan(&page, p.steps);
    return p;
}

static size_t count_kind(const plan_t *p, pl_catchup_step_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->steps[i].kind == kind;
    return n;
}

/* The false Gap: a fetch sent from the stored cursor (5) comes back
 * full (6..105) after the client's Resume said 8. */
static void test_full_page_from_older_cursor(void)
{
    int64_t seqs[100];
    bool own[100] = {0};
    for (int i = 0; i < 100; i++)
        seqs[i] = 6 + i;
    pl_catchup_page_t page = {.after = 8, .eff = 8, .floor = 8, .last = 158, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 100);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_GAP), 0);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_MESSAGE), 97);
    CHECK_EQ_INT(p.steps[0].to, 9);
    CHECK_EQ_INT(p.steps[p.n - 1].upto, 105);
    CHECK_EQ_INT(pl_catchup_next_target(158, 105, 158, 0, false), 158);
}

static void test_short_page_tail_gone(void)
{
    int64_t seqs[] = {1, 2, 3, 4, 5};
    bool own[5] = {0};
    pl_catchup_page_t page = {.after = 0, .eff = 0, .floor = 0, .last = 10, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 5);
    CHECK_EQ_INT(p.n, 6);
    CHECK_EQ_INT(p.steps[5].kind, PL_STEP_GAP);
    CHECK_EQ_INT(p.steps[5].from, 6);
    CHECK_EQ_INT(p.steps[5].to, 10);
    CHECK(!p.steps[5].is_cap);
    CHECK_EQ_INT(p.steps[5].upto, 10);
}

static void test_hole(void)
{
    int64_t seqs[] = {1, 2, 5};
    bool own[3] = {0};
    pl_catchup_page_t page = {.after = 0, .eff = 0, .floor = 0, .last = 5, .page_size = 3};
    plan_t p = plan_of(page, seqs, own, 3);
    CHECK_EQ_INT(p.n, 4);
    CHECK_EQ_INT(p.steps[2].kind, PL_STEP_GAP);
    CHECK_EQ_INT(p.steps[2].from, 3);
    CHECK_EQ_INT(p.steps[2].to, 4);
    CHECK_EQ_INT(p.steps[3].kind, PL_STEP_MESSAGE);
    CHECK_EQ_INT(p.steps[3].row, 2);
}

static void test_resume_cap(void)
{
    int64_t seqs[10];
    bool own[10] = {0};
    for (int i = 0; i < 10; i++)
        seqs[i] = 51 + i;
    pl_catchup_page_t page = {.after = 0, .eff = 50, .floor = 0, .last = 60, .was_capped = true, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 10);
    CHECK_EQ_INT(p.steps[0].kind, PL_STEP_GAP);
    CHECK(p.steps[0].is_cap);
    CHECK_EQ_INT(p.steps[0].from, 1);
    CHECK_EQ_INT(p.steps[0].to, 50);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_MESSAGE), 10);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_GAP), 1);
}

/* A member who joined at 21 has nothing before it to be told about. */
static void test_joined_later(void)
{
    int64_t seqs[] = {21, 22};
    bool own[2] = {0};
    pl_catchup_page_t page = {.after = 0, .eff = 20, .floor = 20, .last = 22, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 2);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_GAP), 0);
    CHECK_EQ_INT(p.steps[0].kind, PL_STEP_SKIP);
    CHECK_EQ_INT(p.steps[0].upto, 20);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_MESSAGE), 2);
}

static void test_own_messages(void)
{
    int64_t seqs[] = {1, 2, 3};
    bool own[] = {false, true, false};
    pl_catchup_page_t page = {.after = 0, .eff = 0, .floor = 0, .last = 3, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 3);
    CHECK_EQ_INT(p.n, 3);
    CHECK_EQ_INT(p.steps[1].kind, PL_STEP_SKIP);
    CHECK_EQ_INT(p.steps[1].upto, 2);
    CHECK_EQ_INT(count_kind(&p, PL_STEP_MESSAGE), 2);
}

static void test_removed_member(void)
{
    int64_t seqs[] = {19, 20};
    bool own[2] = {0};
    pl_catchup_page_t page = {.after = 18, .eff = 18, .floor = 18, .last = 30, .removed = 20, .page_size = 100};
    plan_t p = plan_of(page, seqs, own, 2);
    CHECK_EQ_INT(p.n, 2);
    CHECK_EQ_INT(p.steps[1].upto, 20);
    /* nothing past the removal, whatever live events said */
    CHECK_EQ_INT(pl_catchup_next_target(40, 20, 30, 20, true), 20);
}

static void test_next_target(void)
{
    /* a resync's guess past the end: dropped */
    CHECK_EQ_INT(pl_catchup_next_target(11, 10, 10, 0, false), 10);
    /* a live event named 12 while the fetch was out (after its snapshot) */
    CHECK_EQ_INT(pl_catchup_next_target(12, 10, 10, 0, true), 12);
    /* the log grew past what was wanted */
    CHECK_EQ_INT(pl_catchup_next_target(5, 5, 9, 0, false), 9);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Random logs with holes, random cursors and page sizes: the plan is in
 * order, sends every existing seq after the cursor that the page holds
 * exactly once, announces as gone only seqs that do not exist (the cap
 * aside), and never moves upto backwards or past what it covered. */
static void test_random_pages(void)
{
    int bad = 0;
    for (int round = 0; round < 20000 && bad < 5; round++) {
        int64_t last = (int64_t)(rng() % 120);
        bool exists[121] = {0};
        for (int64_t q = 1; q <= last; q++)
            exists[q] = rng() % 10 != 0; /* about one in ten expired */
        int64_t after = (int64_t)(rng() % (uint64_t)(last + 1));
        int page_size = 1 + (int)(rng() % 40);
        /* the query: existing seqs > after, at most page_size of them */
        int64_t seqs[MAX_ROWS];
        bool own[MAX_ROWS];
        size_t count = 0;
        for (int64_t q = after + 1; q <= last && count < (size_t)page_size; q++)
            if (exists[q]) {
                own[count] = rng() % 7 == 0;
                seqs[count++] = q;
            }
        pl_catchup_page_t page = {.after = after, .eff = after, .floor = after, .last = last, .page_size = page_size};
        plan_t p = plan_of(page, seqs, own, count);
        int64_t upto = after;
        int sent[121] = {0};
        bool ok = true;
        for (size_t i = 0; i < p.n; i++) {
            const pl_catchup_step_t *st = &p.steps[i];
            ok &= st->from == upto + 1 && st->to >= st->from && st->upto == st->to;
            for (int64_t q = st->from; q <= st->to && q <= 120; q++) {
                if (st->kind == PL_STEP_GAP)
                    ok &= !exists[q]; /* a Gap only for what is gone */
                else
                    sent[q]++;
            }
            if (st->kind == PL_STEP_MESSAGE)
                ok &= !own[st->row] && seqs[st->row] == st->to;
            if (st->kind == PL_STEP_SKIP)
                ok &= own[st->row] && seqs[st->row] == st->to;
            upto = st->upto;
        }
        for (size_t i = 0; i < count; i++)
            ok &= sent[seqs[i]] == 1;
        /* a full page stops at its last row; a short one covers the log */
        ok &= count == (size_t)page_size ? upto == seqs[count - 1] : upto == (last > after ? last : after);
        if (!ok) {
            bad++;
            fprintf(stderr, "random page %d: after %lld last %lld page %d count %zu: plan wrong\n", round,
                    (long long)after, (long long)last, page_size, count);
        }
        CHECK(ok);
    }
}

int main(void)
{
    test_full_page_from_older_cursor();
    test_short_page_tail_gone();
    test_hole();
    test_resume_cap();
    test_joined_later();
    test_own_messages();
    test_removed_member();
    test_next_target();
    test_random_pages();
    return pl_test_report();
}
