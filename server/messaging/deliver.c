/* deliver.c — per-chat order on one stream. For each chat the stream knows
 * upto, the last seq it sent. A live message that is exactly the next one
 * goes out at once; anything else (a gap: events from different workers and
 * nodes race, a full outbound queue, a resume) makes the chat catch up from
 * PostgreSQL (catchup.c), which sends every missed message in order. Since a
 * chat's seqs commit in order, a message that exists proves all earlier
 * ones exist. */
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"
#include "runtime/codec.h"

#define MAX_FETCHES 4 /* catch-up queries in flight per stream */

chat_state_t *pl_deliver_chat(pl_stream_t *s, int64_t chat_id, bool create)
{
    chat_state_t *cs = pl_idmap_get(&s->chats, chat_id);
    if (cs || !create || chat_id <= 0)
        return cs;
    cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    cs->chat_id = chat_id;
    /* a chat this stream did not know (joined or created since it
     * started): from the member's start, at most the resume cap */
    cs->is_capped = true;
    if (pl_idmap_put(&s->chats, chat_id, cs) != 0) {
        free(cs);
        return NULL;
    }
    return cs;
}

void pl_deliver_queue(pl_stream_t *s, chat_state_t *cs)
{
    if (cs->is_queued || cs->is_fetching)
        return;
    cs->is_queued = true;
    cs->next_queued = NULL;
    if (s->queue_tail)
        s->queue_tail->next_queued = cs;
    else
        s->queue_head = cs;
    s->queue_tail = cs;
}

static void maybe_ready(pl_stream_t *s)
{
    if (!s->is_loaded || s->is_ready_sent || s->queue_head || s->fetches > 0)
        return;
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_ready_tag;
    if (pl_stream_emit(s, &ev))
        s->is_ready_sent = true;
    else
        s->wants_writable = true;
}

void pl_deliver_kick(pl_stream_t *s)
{
    if (s->is_closing || !s->is_loaded)
        return;
    while (s->queue_head && s->fetches < MAX_FETCHES && !s->wants_writable) {
        chat_state_t *cs = s->queue_head;
        s->queue_head = cs->next_queued;
        if (!s->queue_head)
            s->queue_tail = NULL;
        cs->is_queued = false;
        cs->next_queued = NULL;
        if (cs->target > cs->upto || cs->is_capped)
            pl_catchup_start(s, cs);
    }
    maybe_ready(s);
}

void pl_deliver_hint(pl_stream_t *s, int64_t chat_id, int64_t seq)
{
    chat_state_t *cs = pl_deliver_chat(s, chat_id, true);
    if (!cs)
        return;
    if (seq > cs->target)
        cs->target = seq;
    if (cs->target > cs->upto) {
        pl_deliver_queue(s, cs);
        pl_deliver_kick(s);
    }
}

void pl_deliver_accepted(pl_stream_t *s, int64_t chat_id, int64_t seq)
{
    chat_state_t *cs = pl_deliver_chat(s, chat_id, true);
    if (!cs)
        return;
    /* the sending device has its own message: only the order matters */
    if (seq == cs->upto + 1 && !cs->is_fetching && !cs->is_queued && s->is_loaded) {
        cs->upto = seq;
        if (cs->target < seq)
            cs->target = seq;
        return;
    }
    pl_deliver_hint(s, chat_id, seq);
}

/* This device's payload from the packed per-device payloads. */
static bool pick_payload(const pl_bytes_t *packed, int64_t device_id, pl_bytes_t *out)
{
    parley_internal_v1_DevicePayloads dp = {0};
    if (pl_pb_decode(parley_internal_v1_DevicePayloads_fields, packed->data, packed->len, &dp, NULL) != 0)
        return false;
    for (pb_size_t i = 0; i < dp.items_count; i++)
        if (dp.items[i].device_id == device_id) {
            *out = dp.items[i].payload;
            return true;
        }
    return false;
}

void pl_deliver_message(pl_stream_t *s, const parley_internal_v1_StoredMessage *sm)
{
    const parley_v1_Message *msg = &sm->message;
    chat_state_t *cs = pl_deliver_chat(s, msg->chat_id, true);
    if (!cs || msg->seq <= cs->upto)
        return;
    if (msg->seq != cs->upto + 1 || cs->is_fetching || cs->is_queued || !s->is_loaded || s->wants_writable ||
        cs->is_capped) {
        pl_deliver_hint(s, msg->chat_id, msg->seq);
        return;
    }
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_message_tag;
    ev.event.message = *msg;
    if (sm->device_payloads.len) {
        ev.event.message.payload_missing = !pick_payload(&sm->device_payloads, s->device_id, &ev.event.message.payload);
        if (ev.event.message.payload_missing)
            ev.event.message.payload = pl_bytes_of(NULL, 0);
    }
    if (!pl_stream_emit(s, &ev)) {
        /* the client is not reading: PostgreSQL keeps the message */
        s->wants_writable = true;
        pl_deliver_hint(s, msg->chat_id, msg->seq);
        return;
    }
    cs->upto = msg->seq;
    if (cs->target < msg->seq)
        cs->target = msg->seq;
}

void pl_deliver_resync(pl_stream_t *s)
{
    if (s->is_closing || !s->is_loaded)
        return;
    /* every chat once more from its upto: the fetch finds what is new */
    for (size_t i = 0; i < s->chats.cap; i++) {
        chat_state_t *cs = s->chats.slots[i].value;
        if (s->chats.slots[i].key && cs) {
            if (cs->target <= cs->upto)
                cs->target = cs->upto + 1;
            pl_deliver_queue(s, cs);
        }
    }
    pl_deliver_kick(s);
}

void pl_deliver_dispose(pl_stream_t *s)
{
    for (size_t i = 0; i < s->chats.cap; i++)
        if (s->chats.slots[i].key)
            free(s->chats.slots[i].value);
    pl_idmap_dispose(&s->chats);
    s->queue_head = s->queue_tail = NULL;
}
