/* chats.c — the client's per-chat state, in an open-addressing table keyed
 * by chat id. It grows with the chats the account is in (the server bounds
 * those); entries live as long as the client. */
#include <stdlib.h>

#include "api/client_impl.h"

static size_t slot_of(int64_t chat_id, size_t cap)
{
    uint64_t h = (uint64_t)chat_id * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static int grow(pl_chatmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    pl_chat_t **slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        pl_chat_t *ch = m->slots[i];
        if (!ch)
            continue;
        size_t j = slot_of(ch->chat_id, cap);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = ch;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

pl_chat_t *pl_chat_get(pl_chatmap_t *m, int64_t chat_id, bool create)
{
    if (chat_id <= 0)
        return NULL;
    if (m->cap) {
        size_t i = slot_of(chat_id, m->cap);
        while (m->slots[i]) {
            if (m->slots[i]->chat_id == chat_id)
                return m->slots[i];
            i = (i + 1) & (m->cap - 1);
        }
    }
    if (!create)
        return NULL;
    if ((m->count + 1) * 2 > m->cap && grow(m) != 0)
        return NULL;
    pl_chat_t *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return NULL;
    ch->chat_id = chat_id;
    ch->typing_want = -1;
    pl_seqtrack_init(&ch->recv, 0);
    pl_seqtrack_init(&ch->taken, 0);
    size_t i = slot_of(chat_id, m->cap);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = ch;
    m->count++;
    return ch;
}

void pl_chatmap_dispose(pl_chatmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        pl_chat_t *ch = m->slots[i];
        if (!ch)
            continue;
        pl_seqtrack_dispose(&ch->recv);
        pl_seqtrack_dispose(&ch->taken);
        free(ch);
    }
    free(m->slots);
    m->slots = NULL;
    m->cap = m->count = 0;
}

void pl_chat_mark_dirty(parley_client_t *c, pl_chat_t *ch)
{
    if (ch->is_dirty)
        return;
    if (c->dirty_count == c->dirty_cap) {
        size_t cap = c->dirty_cap ? c->dirty_cap * 2 : 32;
        pl_chat_t **grown = realloc(c->dirty, cap * sizeof(*grown));
        if (!grown) {
            c->is_all_dirty = true;
            return;
        }
        c->dirty = grown;
        c->dirty_cap = cap;
    }
    ch->is_dirty = true;
    c->dirty[c->dirty_count++] = ch;
}
