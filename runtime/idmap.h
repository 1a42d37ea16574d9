/* idmap.h — a hash map from int64 ids to pointers (or small values), open
 * addressing with linear probing and backward-shift deletion: no tombstones,
 * one allocation, 16 bytes a slot. Id 0 is reserved (empty slot). Not
 * thread-safe: each map belongs to one server worker, or to one libparley
 * client under its mutex. */
#ifndef PL_RUNTIME_IDMAP_H
#define PL_RUNTIME_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_idmap_slot {
    int64_t key;
    void *value;
} pl_idmap_slot_t;

typedef struct pl_idmap {
    pl_idmap_slot_t *slots;
    size_t cap; /* a power of two, or 0 */
    size_t count;
} pl_idmap_t;

/* NULL if absent. */
void *pl_idmap_get(const pl_idmap_t *m, int64_t key);
/* Inserts or replaces. 0, or PL_ERR_NOMEM, or PL_ERR_INVALID for key 0. */
int pl_idmap_put(pl_idmap_t *m, int64_t key, void *value);
/* Removes; returns the value that was there (NULL if none). */
void *pl_idmap_del(pl_idmap_t *m, int64_t key);
void pl_idmap_dispose(pl_idmap_t *m);

/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ...
 * (no insertions or deletions meanwhile). */

#endif
