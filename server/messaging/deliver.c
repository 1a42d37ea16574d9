/* deliver.c — per-chat order on one stream, carried out. For each chat the
 * stream knows upto, the last seq it sent; order.c decides where a live
 * message goes: out at once, held a few milliseconds for the ones before it
 * (events from different workers and nodes race, and a device's own sends
 * interleave with its peers'), or — a longer gap, a full outbound queue, a
 * resume — a catch-up from PostgreSQL (catchup.c), which sends every missed
 * message in order. Since a chat's
 * seqs commit in order, a message that exists proves all earlier ones
 * exist. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"
#include "runtime/clock.h"
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

/* ---- held messages ---- */

static void release_held(chat_state_t *cs)
{
    for (uint8_t i = 0; i < cs->held_count; i++)
        if (cs->held[i].item)
            pl_msg_event_unref(cs->held[i].item);
    cs->held_count = 0;
}

static void on_hold_expired(evutil_socket_t fd, short what, void *arg);

static void arm_hold_timer(pl_stream_t *s)
{
    if (!s->hold_ev)
        s->hold_ev = evtimer_new(pl_worker_base(s->mw->w), on_hold_expired, s);
    if (s->hold_ev && !evtimer_pending(s->hold_ev, NULL)) {
        struct timeval tv = {0, PL_HOLD_MS * 1000};
        evtimer_add(s->hold_ev, &tv);
    }
}

/* Keeps seq until the ones before it arrive (e: NULL for the device's own
 * message). false: no room. */
static bool hold(pl_stream_t *s, chat_state_t *cs, int64_t seq, pl_msg_event_t *e)
{
    if (!cs->held && !(cs->held = malloc(sizeof(*cs->held) * PL_ORDER_HOLD_MAX)))
        return false;
    int held = pl_order_hold(cs->held, &cs->held_count, seq, e);
    if (held <= 0)
        return held == 0;
    if (e)
        pl_msg_event_ref(e);
    if (cs->held_count == 1)
        cs->held_since_ms = pl_now_usec() / 1000;
    arm_hold_timer(s);
    return true;
}

static bool emit_message(pl_stream_t *s, const parley_internal_v1_StoredMessage *sm);

/* Sends what the held list has in order after upto. */
static void drain_held(pl_stream_t *s, chat_state_t *cs)
{
    if (!cs->held_count)
        return;
    uint8_t used = 0;
    for (; used < cs->held_count; used++) {
        pl_order_held_t *h = &cs->held[used];
        pl_order_verdict_t v = pl_order_live(cs->upto, h->seq, true);
        if (v == PL_ORDER_SEND) {
            if (h->item && !emit_message(s, pl_msg_event_message(h->item)))
                break; /* full: the rest goes through a catch-up */
            cs->upto = h->seq;
        } else if (v != PL_ORDER_HAVE) {
            break; /* still waiting for the one before it */
        }
        if (h->item)
            pl_msg_event_unref(h->item);
    }
    pl_order_shift(cs->held, &cs->held_count, used);
    if (cs->target < cs->upto)
        cs->target = cs->upto;
    if (cs->held_count && s->wants_writable) {
        /* the client stopped reading: the rest comes from PostgreSQL later */
        if (cs->target < cs->held[cs->held_count - 1].seq)
            cs->target = cs->held[cs->held_count - 1].seq;
        release_held(cs);
        pl_deliver_queue(s, cs);
    } else if (cs->held_count) {
        cs->held_since_ms = pl_now_usec() / 1000;
    }
}

void pl_deliver_queue(pl_stream_t *s, chat_state_t *cs)
{
    if (cs->is_queued || cs->is_fetching)
        return;
    cs->is_queued = true;
    pl_list_push(&s->queue, &cs->queued);
}

static void maybe_ready(pl_stream_t *s)
{
    if (!s->is_loaded || s->is_ready_sent || s->queue.head || s->fetches > 0)
        return;
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_ready_tag;
    if (pl_stream_emit(s, &ev)) {
        s->is_ready_sent = true;
        pl_stream_maybe_finish(s);
    } else {
        s->wants_writable = true;
    }
}

void pl_deliver_kick(pl_stream_t *s)
{
    if (s->is_closing || !s->is_loaded)
        return;
    while (s->queue.head && s->fetches < MAX_FETCHES && !s->wants_writable) {
        chat_state_t *cs = pl_list_entry(pl_list_shift(&s->queue), chat_state_t, queued);
        cs->is_queued = false;
        release_held(cs); /* the catch-up sends them too */
        if (cs->target > cs->upto || cs->is_capped)
            pl_catchup_start(s, cs);
    }
    maybe_ready(s);
}

static void on_hold_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_stream_t *s = arg;
    if (s->is_closing)
        return;
    int64_t now = pl_now_usec() / 1000, next = 0;
    for (size_t i = 0; i < s->chats.cap; i++) {
        chat_state_t *cs = s->chats.slots[i].value;
        if (!s->chats.slots[i].key || !cs->held_count)
            continue;
        if (now - cs->held_since_ms >= PL_HOLD_MS) {
            /* what they wait for is late: fetch the range instead */
            if (cs->target < cs->held[cs->held_count - 1].seq)
                cs->target = cs->held[cs->held_count - 1].seq;
            release_held(cs);
            pl_deliver_queue(s, cs);
        } else if (!next || cs->held_since_ms < next) {
            next = cs->held_since_ms;
        }
    }
    if (next)
        arm_hold_timer(s);
    pl_deliver_kick(s);
}

/* ---- live events ---- */

/* Can chat cs take live messages now (no catch-up under way)? */
static bool is_live(const pl_stream_t *s, const chat_state_t *cs)
{
    return s->is_loaded && !s->wants_writable && !cs->is_fetching && !cs->is_queued && !cs->is_capped;
}

void pl_deliver_exists(chat_state_t *cs, int64_t seq)
{
    cs->is_account_chat = true; /* only the account's chats reach this stream's events and load */
    if (seq > cs->known_last)
        cs->known_last = seq;
}

int64_t pl_deliver_resume_at(pl_stream_t *s, chat_state_t *cs, int64_t seq)
{
    if (seq > cs->known_last)
        seq = cs->known_last;
    release_held(cs); /* held relative to the old cursor: the catch-up resends them */
    if (cs->is_fetching)
        cs->is_fetch_stale = true;
    cs->upto = seq;
    if (cs->target < cs->known_last)
        cs->target = cs->known_last;
    if (cs->target > cs->upto || cs->is_capped)
        pl_deliver_queue(s, cs);
    return seq;
}

void pl_deliver_hint(pl_stream_t *s, int64_t chat_id, int64_t seq)
{
    chat_state_t *cs = pl_deliver_chat(s, chat_id, true);
    if (!cs)
        return;
    if (seq > cs->target)
        cs->target = seq;
    if (cs->is_fetching && seq > cs->upto)
        cs->is_hinted_in_fetch = true;
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
    pl_deliver_exists(cs, seq);
    /* the sending device has its own message: only its place matters */
    switch (pl_order_live(cs->upto, seq, is_live(s, cs))) {
    case PL_ORDER_HAVE: return;
    case PL_ORDER_SEND:
        cs->upto = seq;
        drain_held(s, cs);
        return;
    case PL_ORDER_HOLD:
        if (hold(s, cs, seq, NULL))
            return;
        break;
    case PL_ORDER_CATCH_UP: break;
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

static bool emit_message(pl_stream_t *s, const parley_internal_v1_StoredMessage *sm)
{
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_message_tag;
    ev.event.message = sm->message;
    if (sm->device_payloads.len) {
        ev.event.message.payload_missing = !pick_payload(&sm->device_payloads, s->device_id, &ev.event.message.payload);
        if (ev.event.message.payload_missing)
            ev.event.message.payload = pl_bytes_of(NULL, 0);
    }
    if (pl_stream_emit(s, &ev))
        return true;
    /* the client is not reading: PostgreSQL keeps the message */
    s->wants_writable = true;
    return false;
}

void pl_deliver_message(pl_stream_t *s, pl_msg_event_t *e)
{
    const parley_internal_v1_StoredMessage *sm = pl_msg_event_message(e);
    const parley_v1_Message *msg = &sm->message;
    if (msg->sender_device_id == s->device_id) {
        /* sent by this device through the unary Send: it has it */
        pl_deliver_accepted(s, msg->chat_id, msg->seq);
        return;
    }
    chat_state_t *cs = pl_deliver_chat(s, msg->chat_id, true);
    if (!cs)
        return;
    pl_deliver_exists(cs, msg->seq);
    switch (pl_order_live(cs->upto, msg->seq, is_live(s, cs))) {
    case PL_ORDER_HAVE: return;
    case PL_ORDER_SEND:
        if (emit_message(s, sm)) {
            cs->upto = msg->seq;
            drain_held(s, cs);
            return;
        }
        break;
    case PL_ORDER_HOLD:
        if (hold(s, cs, msg->seq, e)) {
            if (cs->target < msg->seq)
                cs->target = msg->seq;
            return;
        }
        break;
    case PL_ORDER_CATCH_UP: break;
    }
    pl_deliver_hint(s, msg->chat_id, msg->seq);
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
        if (s->chats.slots[i].key) {
            chat_state_t *cs = s->chats.slots[i].value;
            release_held(cs);
            free(cs->held);
            free(cs);
        }
    pl_idmap_dispose(&s->chats);
    s->queue = (pl_list_t){0};
    if (s->hold_ev)
        event_free(s->hold_ev);
    s->hold_ev = NULL;
}
