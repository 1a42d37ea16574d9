/* chats.c — the client's per-chat state, in an id map (runtime/idmap.h)
 * keyed by chat id. It grows with the chats the account is in (the server bounds
 * those); entries live as long as the client. */
#include <stdlib.h>

#include "api/client_impl.h"

pl_chat_t *pl_chat_get(pl_chatmap_t *m, int64_t chat_id, bool create)
{
    if (chat_id <= 0)
        return NULL;
    pl_chat_t *ch = pl_idmap_get(m, chat_id);
    if (ch || !create)
        return ch;
    if (!(ch = calloc(1, sizeof(*ch))))
        return NULL;
    ch->chat_id = chat_id;
    ch->typing_want = -1;
    pl_seqtrack_init(&ch->recv, 0);
    pl_seqtrack_init(&ch->taken, 0);
    if (pl_idmap_put(m, chat_id, ch) != 0) {
        free(ch);
        return NULL;
    }
    return ch;
}

void pl_chatmap_dispose(pl_chatmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        pl_chat_t *ch = m->slots[i].value;
        if (!m->slots[i].key)
            continue;
        pl_seqtrack_dispose(&ch->recv);
        pl_seqtrack_dispose(&ch->taken);
        free(ch);
    }
    pl_idmap_dispose(m);
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
