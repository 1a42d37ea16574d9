/* clock.h — monotonic time for deadlines and timeouts. */
#ifndef PL_RUNTIME_CLOCK_H
#define PL_RUNTIME_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t pl_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t pl_now_msec(void)
{
    return pl_now_usec() / 1000;
}

#endif
