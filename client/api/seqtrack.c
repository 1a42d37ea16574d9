/* seqtrack.c — a chat's seen seqs: a cursor plus ranges above it. */
#include "api/seqtrack.h"

#include <stdlib.h>
#include <string.h>

void pl_seqtrack_init(pl_seqtrack_t *t, int64_t upto)
{
    memset(t, 0, sizeof(*t));
    t->has_base = upto > 0;
    t->upto = upto > 0 ? upto : 0;
}

void pl_seqtrack_dispose(pl_seqtrack_t *t)
{
    free(t->ranges);
    memset(t, 0, sizeof(*t));
}

int64_t pl_seqtrack_cursor(const pl_seqtrack_t *t)
{
    return t->has_base ? t->upto : 0;
}

bool pl_seqtrack_has(const pl_seqtrack_t *t, int64_t seq)
{
    if (t->has_base && seq <= t->upto)
        return true;
    /* binary search for the last range starting at or before seq */
    uint32_t lo = 0, hi = t->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->ranges[mid].from <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && t->ranges[lo - 1].to >= seq;
}

bool pl_seqtrack_has_all(const pl_seqtrack_t *t, int64_t from, int64_t to)
{
    if (to < from)
        return true;
    if (t->has_base && to <= t->upto)
        return true;
    if (t->has_base && from <= t->upto)
        from = t->upto + 1;
    /* ranges are disjoint and not adjacent: one must hold all of from..to */
    for (uint32_t i = 0; i < t->count; i++)
        if (t->ranges[i].from <= from)
            if (t->ranges[i].to >= to)
                return true;
    return false;
}

/* Folds ranges that now touch the cursor into it. */
static bool absorb(pl_seqtrack_t *t)
{
    if (!t->has_base)
        return false;
    uint32_t i = 0;
    int64_t before = t->upto;
    while (i < t->count && t->ranges[i].from <= t->upto + 1) {
        if (t->ranges[i].to > t->upto)
            t->upto = t->ranges[i].to;
        i++;
    }
    if (i) {
        memmove(t->ranges, t->ranges + i, (t->count - i) * sizeof(*t->ranges));
        t->count -= i;
    }
    return t->upto != before;
}

static void insert_range(pl_seqtrack_t *t, int64_t from, int64_t to)
{
    /* first range that ends at or after from - 1 (may merge with us) */
    uint32_t i = 0;
    while (i < t->count && t->ranges[i].to < from - 1)
        i++;
    /* merge every range that overlaps or touches from..to */
    uint32_t j = i;
    while (j < t->count && t->ranges[j].from <= to + 1) {
        if (t->ranges[j].from < from)
            from = t->ranges[j].from;
        if (t->ranges[j].to > to)
            to = t->ranges[j].to;
        j++;
    }
    if (j > i) {
        t->ranges[i].from = from;
        t->ranges[i].to = to;
        memmove(t->ranges + i + 1, t->ranges + j, (t->count - j) * sizeof(*t->ranges));
        t->count -= j - i - 1;
        return;
    }
    if (t->count == t->cap) {
        if (t->cap >= PL_SEQTRACK_MAX_RANGES) {
            if (i == t->count)
                return; /* we would be the highest: forget ourselves */
            t->count--; /* forget the highest */
        } else {
            uint32_t cap = t->cap ? t->cap * 2 : 4;
            pl_seqrange_t *grown = realloc(t->ranges, cap * sizeof(*grown));
            if (!grown) {
                if (i == t->count || t->count == 0)
                    return;
                t->count--;
            } else {
                t->ranges = grown;
                t->cap = cap;
            }
        }
    }
    memmove(t->ranges + i + 1, t->ranges + i, (t->count - i) * sizeof(*t->ranges));
    t->ranges[i].from = from;
    t->ranges[i].to = to;
    t->count++;
}

bool pl_seqtrack_mark(pl_seqtrack_t *t, int64_t from, int64_t to, bool defines_base)
{
    if (from < 1)
        from = 1;
    if (to < from)
        return false;
    if (!t->has_base && defines_base) {
        t->has_base = true;
        t->upto = from - 1;
        /* own sends marked earlier below the base are covered by it */
    }
    if (t->has_base && to <= t->upto)
        return false;
    if (t->has_base && from <= t->upto)
        from = t->upto + 1;
    insert_range(t, from, to);
    return absorb(t);
}
