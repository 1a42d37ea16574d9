/* idmap.c — see idmap.h. Load factor at most 1/2. */
#include "runtime/idmap.h"

#include <stdlib.h>

#include "runtime/errors.h"

static size_t slot_of(int64_t key, size_t cap)
{
    /* ids are time-ordered: mix the bits before masking */
    uint64_t x = (uint64_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

void *pl_idmap_get(const pl_idmap_t *m, int64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (!m->slots[i].key)
            return NULL;
    }
}

static int grow(pl_idmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 8;
    pl_idmap_slot_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return PL_ERR_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        size_t j = slot_of(m->slots[i].key, cap);
        while (slots[j].key)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int pl_idmap_put(pl_idmap_t *m, int64_t key, void *value)
{
    if (!key)
        return PL_ERR_INVALID;
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return PL_ERR_NOMEM;
    size_t i = slot_of(key, m->cap);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].value = value;
    return 0;
}

void *pl_idmap_del(pl_idmap_t *m, int64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1, i = slot_of(key, m->cap);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key)
            return NULL;
        i = (i + 1) & mask;
    }
    void *value = m->slots[i].value;
    /* backward shift: pull later entries of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m->slots[j].key, m->cap);
        /* move j into hole if home is not in (hole, j] cyclically */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}

void pl_idmap_dispose(pl_idmap_t *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}
