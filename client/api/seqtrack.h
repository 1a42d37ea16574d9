/* seqtrack.h — which seqs of one chat have been seen: everything up to a
 * contiguous cursor, plus sorted disjoint ranges above it. It is how the
 * library drops repeats (a message seen once is never shown again) and
 * knows the cursor to resume from and to acknowledge.
 *
 * A tracker starts without a base: until the first message or gap of the
 * chat, nothing is known below what was marked (the server starts a chat at
 * the member's joining point or at its own cursor, not at seq 1). The first
 * mark that may define the base (a message or a gap, which the server sends
 * in order) sets the cursor just below it; marks that may not (this
 * device's own accepted sends, which can overtake earlier messages) only
 * add ranges. */
#ifndef PL_CLIENT_API_SEQTRACK_H
#define PL_CLIENT_API_SEQTRACK_H

#include <stdbool.h>
#include <stdint.h>

/* Ranges kept above the cursor; past it the highest is forgotten (see
 * pl_seqtrack_mark). Only own sends overtaking a slow catch-up make ranges,
 * bounded by the sends in flight per chat (one). */
#define PL_SEQTRACK_MAX_RANGES 4096

typedef struct pl_seqrange {
    int64_t from, to;
} pl_seqrange_t;

typedef struct pl_seqtrack {
    bool has_base;
    int64_t upto;          /* every seq <= upto was seen (when has_base) */
    pl_seqrange_t *ranges; /* above upto + 1, sorted, disjoint, not adjacent */
    uint32_t count, cap;
} pl_seqtrack_t;

/* A tracker whose cursor is upto (0 and no base: unknown). */
void pl_seqtrack_init(pl_seqtrack_t *t, int64_t upto);
void pl_seqtrack_dispose(pl_seqtrack_t *t);
bool pl_seqtrack_has(const pl_seqtrack_t *t, int64_t seq);
/* Every seq of from..to was seen. */
bool pl_seqtrack_has_all(const pl_seqtrack_t *t, int64_t from, int64_t to);
/* Marks from..to seen; defines_base as above. Returns true when the cursor
 * moved. At PL_SEQTRACK_MAX_RANGES (or without memory) the highest range is
 * dropped: a repeat of it could then be shown again, never a loss. */
bool pl_seqtrack_mark(pl_seqtrack_t *t, int64_t from, int64_t to, bool defines_base);
/* The cursor, 0 while there is no base. */
int64_t pl_seqtrack_cursor(const pl_seqtrack_t *t);

#endif
