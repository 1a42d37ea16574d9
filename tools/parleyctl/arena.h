/* arena.h — bump allocation for data that lives as long as its owner (the
 * descriptor pool): many small allocations, one free. */
#ifndef PCTL_ARENA_H
#define PCTL_ARENA_H

#include <stddef.h>

typedef struct pctl_arena_block pctl_arena_block_t;

typedef struct pctl_arena {
    pctl_arena_block_t *head;
    size_t used;  /* bytes handed out, for the limit */
    size_t limit; /* 0: none */
} pctl_arena_t;

void pctl_arena_init(pctl_arena_t *a, size_t limit);
void pctl_arena_dispose(pctl_arena_t *a);
/* Zeroed memory, aligned for any type; NULL when out of memory or over
 * the limit. */
void *pctl_arena_alloc(pctl_arena_t *a, size_t size);
/* A NUL-terminated copy of len bytes. */
char *pctl_arena_strndup(pctl_arena_t *a, const char *s, size_t len);
char *pctl_arena_strdup(pctl_arena_t *a, const char *s);

#endif
