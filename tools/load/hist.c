/* hist.c — see hist.h. Bucket (e, s): values in [s << e, (s + 1) << e) for
 * e >= 1 with s in 32..63; e = 0 holds 0..63 exactly. */
#include "hist.h"

#include <string.h>

#define SUBS (1 << PL_HIST_SUB_BITS)

static int index_of(int64_t v)
{
    if (v < 0)
        v = 0;
    uint64_t u = (uint64_t)v;
    if (u < SUBS)
        return (int)u;
    int bits = 64 - __builtin_clzll(u); /* > PL_HIST_SUB_BITS */
    int e = bits - PL_HIST_SUB_BITS;    /* shift that leaves 6 bits */
    if (e >= PL_HIST_EXPONENTS)
        return (PL_HIST_EXPONENTS << PL_HIST_SUB_BITS) - 1;
    return (e << PL_HIST_SUB_BITS) + (int)(u >> e);
}

static int64_t value_of(int idx)
{
    int e = idx >> PL_HIST_SUB_BITS, s = idx & (SUBS - 1);
    if (e == 0)
        return s;
    /* the middle of the bucket */
    return ((int64_t)s << e) + ((int64_t)1 << (e - 1));
}

void pl_hist_reset(pl_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void pl_hist_add(pl_hist_t *h, int64_t usec)
{
    h->counts[index_of(usec)]++;
    if (!h->total || usec > h->max)
        h->max = usec;
    if (!h->total || usec < h->min)
        h->min = usec;
    h->total++;
    h->sum += (double)usec;
}

void pl_hist_merge(pl_hist_t *into, const pl_hist_t *from)
{
    if (!from->total)
        return;
    for (size_t i = 0; i < sizeof(into->counts) / sizeof(into->counts[0]); i++)
        into->counts[i] += from->counts[i];
    if (!into->total || from->max > into->max)
        into->max = from->max;
    if (!into->total || from->min < into->min)
        into->min = from->min;
    into->total += from->total;
    into->sum += from->sum;
}

int64_t pl_hist_percentile(const pl_hist_t *h, double p)
{
    if (!h->total)
        return 0;
    if (p >= 100)
        return h->max;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->total);
    if (rank >= h->total)
        rank = h->total - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < sizeof(h->counts) / sizeof(h->counts[0]); i++) {
        seen += h->counts[i];
        if (seen > rank) {
            int64_t v = value_of((int)i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double pl_hist_mean(const pl_hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0;
}
