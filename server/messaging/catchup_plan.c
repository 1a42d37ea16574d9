/* catchup_plan.c — the catch-up decision for one page (catchup_plan.h). */
#include "messaging/catchup_plan.h"

#include <stdint.h>

static pl_catchup_step_t *add(pl_catchup_step_t *st, pl_catchup_step_kind_t kind, int64_t from, int64_t to, size_t row,
                              int64_t upto)
{
    *st = (pl_catchup_step_t){kind, from, to, row, false, upto};
    return st;
}

size_t pl_catchup_plan(const pl_catchup_page_t *page, pl_catchup_step_t *steps)
{
    size_t n = 0;
    int64_t upto = page->after;
    if (page->eff > upto) {
        /* before the member joined (nothing to announce), or skipped by the
         * resume cap: a new device gets at most the last N of a chat */
        if (page->was_capped && page->eff > page->floor)
            add(&steps[n++], PL_STEP_GAP, page->floor + 1, page->eff, 0, page->eff)->is_cap = true;
        else
            add(&steps[n++], PL_STEP_SKIP, upto + 1, page->eff, SIZE_MAX, page->eff);
        upto = page->eff;
    }
    for (size_t i = 0; i < page->count; i++) {
        int64_t seq = page->seqs[i];
        if (seq <= upto)
            continue;
        if (seq > upto + 1) /* a hole: expired or swept, and a later seq proves it is not coming */
            add(&steps[n++], PL_STEP_GAP, upto + 1, seq - 1, 0, seq - 1);
        add(&steps[n++], page->is_own[i] ? PL_STEP_SKIP : PL_STEP_MESSAGE, seq, seq, i, seq);
        upto = seq;
    }
    /* Only a page that came back short proves the rest of the visible log is
     * gone; a full page means "more to fetch". */
    int64_t end = pl_catchup_visible_end(page->last, page->removed);
    if (page->count < (size_t)page->page_size && end > upto)
        add(&steps[n++], PL_STEP_GAP, upto + 1, end, 0, end);
    return n;
}

int64_t pl_catchup_next_target(int64_t target, int64_t upto, int64_t last, int64_t removed, bool is_hinted)
{
    if (target < last && !removed)
        target = last;
    /* A target past what the snapshot saw stands only if live events named
     * it meanwhile (committed after the snapshot: another fetch gets them);
     * a guess (a resync) or a removed member's view ends here. */
    int64_t end = pl_catchup_visible_end(last, removed);
    if (target > end && (removed || !is_hinted))
        target = end > upto ? end : upto;
    return target;
}
