/* hist.h — a log-linear latency histogram (HdrHistogram's idea, small):
 * values in microseconds, exact below 64 µs, then 32 linear sub-buckets
 * per power of two, so every percentile is within about 3 % of the truth,
 * up to hours, in a fixed 18 KiB. */
#ifndef PL_LOAD_HIST_H
#define PL_LOAD_HIST_H

#include <stdint.h>

#define PL_HIST_SUB_BITS 6
#define PL_HIST_EXPONENTS 36

typedef struct pl_hist {
    uint64_t counts[PL_HIST_EXPONENTS << PL_HIST_SUB_BITS];
    uint64_t total;
    int64_t max, min;
    double sum;
} pl_hist_t;

void pl_hist_reset(pl_hist_t *h);
void pl_hist_add(pl_hist_t *h, int64_t usec);
void pl_hist_merge(pl_hist_t *into, const pl_hist_t *from);
/* The value at percentile p (0..100), or 0 when empty. */
int64_t pl_hist_percentile(const pl_hist_t *h, double p);
double pl_hist_mean(const pl_hist_t *h);

#endif
