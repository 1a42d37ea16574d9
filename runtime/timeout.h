/* timeout.h — the grpc-timeout header: 1 to 8 ASCII digits and a unit
 * (H hours, M minutes, S seconds, m millis, u micros, n nanos). */
#ifndef PL_RUNTIME_TIMEOUT_H
#define PL_RUNTIME_TIMEOUT_H

#include <stddef.h>
#include <stdint.h>

/* Parses into microseconds (rounded up so "1n" is not zero); 0 or -1 if
 * malformed. */
int pl_timeout_parse(const char *s, size_t len, int64_t *usec);

/* Formats a timeout in microseconds as the shortest exact-or-larger value
 * that fits 8 digits. Returns the length written (out needs 10 bytes). */
int pl_timeout_format(int64_t usec, char out[10]);

#endif
