/* timeout.c — grpc-timeout parsing and formatting. */
#include "runtime/timeout.h"

#include <stdio.h>

int pl_timeout_parse(const char *s, size_t len, int64_t *usec)
{
    if (len < 2 || len > 9)
        return -1;
    int64_t value = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        value = value * 10 + (s[i] - '0');
    }
    /* 8 digits of hours fit comfortably in int64 microseconds */
    switch (s[len - 1]) {
    case 'H': *usec = value * 3600 * 1000000; break;
    case 'M': *usec = value * 60 * 1000000; break;
    case 'S': *usec = value * 1000000; break;
    case 'm': *usec = value * 1000; break;
    case 'u': *usec = value; break;
    case 'n': *usec = (value + 999) / 1000; break;
    default: return -1;
    }
    return 0;
}

int pl_timeout_format(int64_t usec, char out[10])
{
    static const struct {
        char unit;
        int64_t usec;
    } units[] = {{'u', 1}, {'m', 1000}, {'S', 1000000}, {'M', 60000000}, {'H', 3600000000LL}};
    if (usec < 0)
        usec = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        /* round up (never shorten a deadline), without overflowing near INT64_MAX */
        int64_t v = usec / units[i].usec + (usec % units[i].usec != 0);
        if (v < 100000000 || i + 1 == sizeof(units) / sizeof(units[0])) {
            if (v > 99999999)
                v = 99999999;
            return snprintf(out, 10, "%lld%c", (long long)v, units[i].unit);
        }
    }
    return 0;
}
