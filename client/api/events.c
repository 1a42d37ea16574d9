/* events.c — the queue of events between the I/O thread and the app: the
 * builders that turn server events into public events (one allocation
 * each), the queue with its eventfd and condition variable, and what
 * taking an event means (the chat's cursor moves; a delivered ack is due). */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client_impl.h"
#include "runtime/clock.h"

/* ---- building ---- */

pl_event_box_t *pl_box_new(parley_event_type_t type, size_t extra)
{
    size_t head = pl_bump_room(sizeof(pl_event_box_t));
    pl_event_box_t *box = calloc(1, head + extra);
    if (!box)
        return NULL;
    box->ev.type = type;
    box->size = head + extra;
    box->extra.p = (uint8_t *)box + head;
    box->extra.left = extra;
    return box;
}

static size_t str_room(const char *s)
{
    return pl_bump_room((s ? strlen(s) : 0) + 1);
}

static const char *box_str(pl_event_box_t *box, const char *s)
{
    return pl_bump_str(&box->extra, s, s ? strlen(s) : 0);
}

pl_event_box_t *pl_ev_state(parley_state_t state, int code, const char *reason, int retry_in_ms)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_STATE, str_room(reason));
    if (!box)
        return NULL;
    box->ev.state.state = state;
    box->ev.state.code = code;
    box->ev.state.reason = box_str(box, reason);
    box->ev.state.retry_in_ms = retry_in_ms;
    return box;
}

pl_event_box_t *pl_ev_message(const parley_v1_Message *m)
{
    parley_v1_ChatEvent *ce = pl_chat_event_decode(m);
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_MESSAGE, pl_message_size(m, ce));
    if (box)
        pl_message_fill(&box->ev.message, m, ce, &box->extra);
    free(ce);
    return box;
}

pl_event_box_t *pl_ev_accepted(const pl_send_t *s, int64_t seq, int64_t server_time_ms, bool duplicate)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_SEND_ACCEPTED, str_room(s->client_id));
    if (!box)
        return NULL;
    box->ev.accepted.local_id = s->local_id;
    box->ev.accepted.client_message_id = box_str(box, s->client_id);
    box->ev.accepted.chat_id = s->chat_id;
    box->ev.accepted.seq = seq;
    box->ev.accepted.server_time_ms = server_time_ms;
    box->ev.accepted.duplicate = duplicate;
    return box;
}

pl_event_box_t *pl_ev_failed(const pl_send_t *s, int code, const char *message, const parley_v1_DeviceMismatch *dm)
{
    size_t extra = str_room(s->client_id) + str_room(message) + (dm ? pl_mismatch_size(dm) : 0);
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_SEND_FAILED, extra);
    if (!box)
        return NULL;
    box->ev.failed.local_id = s->local_id;
    box->ev.failed.client_message_id = box_str(box, s->client_id);
    box->ev.failed.chat_id = s->chat_id;
    box->ev.failed.code = code;
    box->ev.failed.message = box_str(box, message);
    if (dm)
        pl_mismatch_fill(dm, &box->extra, &box->ev.failed.missing, &box->ev.failed.missing_count,
                         &box->ev.failed.stale_device_ids, &box->ev.failed.stale_count);
    return box;
}

pl_event_box_t *pl_ev_receipt(const parley_v1_Receipt *r)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_RECEIPT, 0);
    if (!box)
        return NULL;
    box->ev.receipt.chat_id = r->chat_id;
    box->ev.receipt.account_id = r->account_id;
    box->ev.receipt.delivered_seq = r->delivered_seq;
    box->ev.receipt.read_seq = r->read_seq;
    box->ev.receipt.delivered_to_all_seq = r->delivered_to_all_seq;
    box->ev.receipt.read_by_all_seq = r->read_by_all_seq;
    return box;
}

pl_event_box_t *pl_ev_typing(const parley_v1_Typing *t)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_TYPING, 0);
    if (!box)
        return NULL;
    box->ev.typing.chat_id = t->chat_id;
    box->ev.typing.account_id = t->account_id;
    box->ev.typing.is_typing = t->typing;
    return box;
}

pl_event_box_t *pl_ev_presence(const parley_v1_Presence *p)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_PRESENCE, 0);
    if (!box)
        return NULL;
    box->ev.presence.account_id = p->account_id;
    box->ev.presence.online = p->online;
    box->ev.presence.last_seen_ms = p->last_seen_ms;
    return box;
}

pl_event_box_t *pl_ev_gap(const parley_v1_Gap *g)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_GAP, 0);
    if (!box)
        return NULL;
    box->ev.gap.chat_id = g->chat_id;
    box->ev.gap.from_seq = g->from_seq;
    box->ev.gap.to_seq = g->to_seq;
    return box;
}

pl_event_box_t *pl_ev_error(int code, const char *message, const char *request, int64_t chat_id)
{
    pl_event_box_t *box = pl_box_new(PARLEY_EVENT_ERROR, str_room(message) + str_room(request));
    if (!box)
        return NULL;
    box->ev.error.code = code;
    box->ev.error.message = box_str(box, message);
    box->ev.error.request = box_str(box, request);
    box->ev.error.chat_id = chat_id;
    return box;
}

/* ---- the queue ---- */

static void fd_signal(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void fd_drain(int fd)
{
    uint64_t v;
    while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
}

bool pl_events_have_room(const parley_client_t *c)
{
    return c->events.count < c->max_queued_events && c->ev_bytes < c->max_queued_bytes;
}

void pl_events_push(parley_client_t *c, pl_event_box_t *box)
{
    if (!box)
        return; /* out of memory: the event is lost (only ephemeral ones can be: see the callers) */
    /* a state change while the app does not take events replaces the last
     * untaken state change instead of piling up during a long outage */
    pl_event_box_t *last = c->events.tail ? pl_list_entry(c->events.tail, pl_event_box_t, link) : NULL;
    if (box->ev.type == PARLEY_EVENT_STATE && !pl_events_have_room(c) && last && last->ev.type == PARLEY_EVENT_STATE) {
        pl_list_remove(&c->events, &last->link);
        c->ev_bytes -= last->size;
        free(last);
    }
    pl_list_push(&c->events, &box->link);
    c->ev_bytes += box->size;
    if (c->events.count == 1)
        fd_signal(c->event_fd);
    c->has_new_events = true;
    pthread_cond_broadcast(&c->ev_cond);
}

void pl_events_clear(parley_client_t *c)
{
    bool had = c->events.count > 0;
    pl_list_node_t *n;
    while ((n = pl_list_shift(&c->events)))
        free(pl_list_entry(n, pl_event_box_t, link));
    if (had)
        fd_drain(c->event_fd);
    c->ev_bytes = 0;
}

/* The app took ev: the chat's cursor moves past what it covers, and the
 * server is told "delivered" (the I/O thread writes the ack). */
static void took(parley_client_t *c, const parley_event_t *ev)
{
    int64_t chat_id, from, to;
    bool defines_base = true;
    switch (ev->type) {
    case PARLEY_EVENT_MESSAGE:
        chat_id = ev->message.chat_id;
        from = to = ev->message.seq;
        break;
    case PARLEY_EVENT_GAP:
        chat_id = ev->gap.chat_id;
        from = ev->gap.from_seq;
        to = ev->gap.to_seq;
        break;
    case PARLEY_EVENT_SEND_ACCEPTED:
        chat_id = ev->accepted.chat_id;
        from = to = ev->accepted.seq;
        defines_base = false;
        break;
    default: return;
    }
    pl_chat_t *ch = pl_chat_get(&c->chats, chat_id, true);
    if (ch && pl_seqtrack_mark(&ch->taken, from, to, defines_base)) {
        pl_chat_mark_dirty(c, ch);
        if (c->is_running)
            pl_client_wake(c);
    }
}

parley_event_t *parley_client_next_event(parley_client_t *c, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&c->mu);
    while (!c->events.head && timeout_ms != 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&c->ev_cond, &c->mu);
        } else if (pthread_cond_timedwait(&c->ev_cond, &c->mu, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    pl_list_node_t *n = pl_list_shift(&c->events);
    pl_event_box_t *box = n ? pl_list_entry(n, pl_event_box_t, link) : NULL;
    if (box) {
        c->ev_bytes -= box->size;
        if (c->events.count == 0)
            fd_drain(c->event_fd);
        took(c, &box->ev);
        if (c->is_io_waiting_for_room && c->events.count <= c->max_queued_events / 2 &&
            c->ev_bytes <= c->max_queued_bytes / 2) {
            c->is_io_waiting_for_room = false;
            pl_client_wake(c);
        }
    }
    pthread_mutex_unlock(&c->mu);
    return box ? &box->ev : NULL;
}

void parley_event_free(parley_event_t *ev)
{
    if (ev)
        free((uint8_t *)ev - offsetof(pl_event_box_t, ev));
}

int parley_client_event_fd(parley_client_t *c)
{
    return c->event_fd;
}

void parley_client_set_notify(parley_client_t *c, parley_notify_fn fn, void *user)
{
    pthread_mutex_lock(&c->mu);
    c->notify = fn;
    c->notify_user = user;
    pthread_mutex_unlock(&c->mu);
}
