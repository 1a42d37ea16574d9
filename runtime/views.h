/* views.h — zero-copy byte views used by every generated message struct.
 *
 * Parley's nanopb policy (see gen/README.md): strings and bytes with a
 * max_size in the .options file are inline arrays; all other strings and
 * bytes are pl_bytes_t views that point into the received message buffer
 * (decoding never allocates); repeated fields need a max_count, except
 * repeated strings/bytes, which are pl_bytes_list_t views filled from a
 * caller-provided array. */
#ifndef PL_RUNTIME_VIEWS_H
#define PL_RUNTIME_VIEWS_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_bytes {
    const uint8_t *data; /* borrowed; NULL when empty */
    size_t len;
} pl_bytes_t;

/* A repeated bytes/string field. To encode, point items/count at the
 * values. To decode, point items at an array of capacity entries; more
 * entries than capacity fail the decode. */
typedef struct pl_bytes_list {
    pl_bytes_t *items;
    size_t count;
    size_t capacity;
} pl_bytes_list_t;

static inline pl_bytes_t pl_bytes_str(const char *s)
{
    pl_bytes_t b = {(const uint8_t *)s, 0};
    if (s)
        while (s[b.len])
            b.len++;
    return b;
}

static inline pl_bytes_t pl_bytes_of(const void *data, size_t len)
{
    pl_bytes_t b = {(const uint8_t *)data, len};
    return b;
}

#endif
