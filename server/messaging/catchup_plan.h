/* catchup_plan.h — what one page of a chat's catch-up sends, decided
 * without sockets or PostgreSQL: which messages go out, which the device
 * already has (its own), and which ranges are announced as a Gap. Pure
 * functions, unit-tested in tests/unit/test_catchup_plan.c; catchup.c
 * carries the plan out.
 *
 * The rule the plan keeps: a Gap names only seqs this page proves absent —
 * holes between rows, the end of a page that was not full, or what the
 * resume cap skipped on purpose — never the rest of a full page. */
#ifndef PL_MESSAGING_CATCHUP_PLAN_H
#define PL_MESSAGING_CATCHUP_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One fetched page of a member's view of a chat (ST_FETCH). */
typedef struct pl_catchup_page {
    int64_t after;       /* the stream's upto when the fetch was sent */
    int64_t eff;         /* where the query started: after, the member's join, or the resume cap */
    int64_t floor;       /* after or the member's join (eff without the cap) */
    int64_t last;        /* the chat's last seq in the query's snapshot */
    int64_t removed;     /* the member's removal seq, 0 if a member */
    bool was_capped;     /* the resume cap applied to this fetch */
    int page_size;       /* the query's LIMIT */
    size_t count;        /* rows with a message */
    const int64_t *seqs; /* [count], ascending */
    const bool *is_own;  /* [count]: sent by this device (it has it) */
} pl_catchup_page_t;

typedef enum pl_catchup_step_kind {
    PL_STEP_GAP,     /* announce [from, to] as gone */
    PL_STEP_MESSAGE, /* send row `row` (seq `to`) */
    PL_STEP_SKIP,    /* the device's own message at seq `to`: nothing to send */
} pl_catchup_step_kind_t;

typedef struct pl_catchup_step {
    pl_catchup_step_kind_t kind;
    int64_t from, to;
    size_t row;   /* PL_STEP_MESSAGE and PL_STEP_SKIP */
    bool is_cap;  /* a Gap the resume cap made (not loss) */
    int64_t upto; /* the stream's upto once this step is done */
} pl_catchup_step_t;

/* The most steps a page can produce. */
static inline size_t pl_catchup_max_steps(size_t count)
{
    return 2 * count + 3;
}

/* Fills steps (room for pl_catchup_max_steps(page->count)) in order; returns
 * how many. Steps at or below page->after never appear. */
size_t pl_catchup_plan(const pl_catchup_page_t *page, pl_catchup_step_t *steps);

/* The last seq a member can see: its removal, or the chat's end. */
static inline int64_t pl_catchup_visible_end(int64_t last, int64_t removed)
{
    return removed && removed < last ? removed : last;
}

/* The stream's catch-up target after a page: how far it must still fetch.
 * target: what it wanted before; is_hinted: live events named a seq while
 * the fetch was out (committed after its snapshot, so real). */
int64_t pl_catchup_next_target(int64_t target, int64_t upto, int64_t last, int64_t removed, bool is_hinted);

#endif
