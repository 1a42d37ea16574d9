/* chat_events.c — the parley.v1.ChatEvent a system message records,
 * encoded here with nanopb and stored by the group functions as the
 * message's chat_event (migrations/0005_group_membership.sql). */
#include <stdlib.h>

#include "chats/chats_internal.h"
#include "runtime/codec.h"

parley_v1_ChatEvent *pl_chats_event_new(parley_v1_ChatEvent_Type t, int64_t actor)
{
    parley_v1_ChatEvent *ev = calloc(1, sizeof(*ev));
    if (ev) {
        ev->type = t;
        ev->actor_account_id = actor;
    }
    return ev;
}

int pl_chats_event_encode(const parley_v1_ChatEvent *ev, uint8_t **out, size_t *len)
{
    long size = pl_pb_encoded_size(parley_v1_ChatEvent_fields, ev);
    if (size < 0)
        return -1;
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (!buf)
        return -1;
    if (pl_pb_encode(parley_v1_ChatEvent_fields, ev, buf, (size_t)size) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = (size_t)size;
    return 0;
}
