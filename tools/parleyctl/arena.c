/* arena.c — bump allocator in blocks; see arena.h. */
#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE (64u << 10)

struct pctl_arena_block {
    pctl_arena_block_t *next;
    size_t size, off;
    alignas(max_align_t) unsigned char data[];
};

void pctl_arena_init(pctl_arena_t *a, size_t limit)
{
    a->head = NULL;
    a->used = 0;
    a->limit = limit;
}

void pctl_arena_dispose(pctl_arena_t *a)
{
    pctl_arena_block_t *b = a->head;
    while (b) {
        pctl_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used = 0;
}

void *pctl_arena_alloc(pctl_arena_t *a, size_t size)
{
    const size_t align = alignof(max_align_t);
    if (size > SIZE_MAX / 2)
        return NULL;
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align;
    if (a->limit && (size > a->limit || a->used > a->limit - size))
        return NULL;
    pctl_arena_block_t *b = a->head;
    if (!b || b->size - b->off < size) {
        size_t cap = size > BLOCK_SIZE ? size : BLOCK_SIZE;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->size = cap;
        b->off = 0;
        /* a large one-off block goes behind the current one so the rest of
         * the current block stays usable */
        if (a->head && size > BLOCK_SIZE) {
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = b->data + b->off;
    b->off += size;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *pctl_arena_strndup(pctl_arena_t *a, const char *s, size_t len)
{
    char *d = pctl_arena_alloc(a, len + 1);
    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *pctl_arena_strdup(pctl_arena_t *a, const char *s)
{
    return pctl_arena_strndup(a, s, strlen(s));
}
