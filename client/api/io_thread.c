/* io_thread.c — the I/O thread and the device stream it keeps open.
 *
 * One loop: connect (TCP, TLS, HTTP/2) and open Messaging.Connect with the
 * device's token; say where to resume (Resume with each chat's received
 * cursor) and what presence to follow; then, until the stream ends, write
 * what is due (delivered acks, read cursors, typing, presence changes, the
 * sends, heartbeats) and read what comes, turning server events into app
 * events. A stream that ends for any reason but a refused token (AUTH_FAILED)
 * or a newer connection of the device (REPLACED) is opened again after a
 * jittered exponential backoff, reset once the server says Ready.
 *
 * Liveness: a Heartbeat (keeps the device online) and an HTTP/2 PING go out
 * every heartbeat_ms; a PING unanswered for keepalive_timeout_ms means the
 * connection is dead even if TCP has not noticed.
 *
 * The thread owns its connection and call (pl_io_t); the shared state it
 * reads and changes is under c->mu, taken for short moments (never during a
 * connect or a wait). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "api/client_impl.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/clock.h"
#include "runtime/codec.h"

/* Request bytes queued on the stream before writing more waits. */
#define WRITE_BUDGET (256u << 10)
/* A cursor written this long before the stream broke may not have been
 * stored: it is written again on the next stream. */
#define RESEND_WINDOW_USEC (5 * 1000000LL)
/* The server could not store a delivered ack: again after this. */
#define ACK_RETRY_USEC (1000000LL)
/* How long a stop waits for the server to close the stream cleanly. */
#define CLOSE_GRACE_MS 1000
#define REQ_RING 1024

enum { REQ_NONE, REQ_DELIVERED, REQ_READ, REQ_TYPING, REQ_PRESENCE };

typedef struct pl_io {
    parley_client_t *c;
    pl_channel_t *ch;
    pl_ccall_t *call;
    parley_v1_ServerEvent *sev; /* scratch: large, so on the heap */
    parley_v1_ClientEvent *cev;
    uint64_t next_request_id;
    int attempt; /* connection attempts since the last Ready */
    int64_t next_attempt_usec;
    int64_t closed_usec; /* when the last stream ended */
    int64_t next_heartbeat_usec;
    int64_t ping_sent_usec;  /* 0: no PING outstanding */
    int64_t next_timer_usec; /* the outbox's next retry or timeout */
    int64_t chat_timer_usec; /* the next delivered ack to try again */
    uint32_t pass;
    uint64_t rng;
    /* what each recent non-send request was, for the Error it may cause */
    struct {
        uint64_t id;
        uint8_t kind;
        int64_t chat_id;
    } reqs[REQ_RING];
} pl_io_t;

static uint64_t next_random(pl_io_t *io)
{
    /* xorshift64*: only for jitter */
    io->rng ^= io->rng >> 12;
    io->rng ^= io->rng << 25;
    io->rng ^= io->rng >> 27;
    return io->rng * 0x2545F4914F6CDD1Dull;
}

/* The delay before attempt n: initial * 2^n capped, then uniformly in
 * [d/2, d] so that clients that lost the same server spread out. */
static int backoff_ms(pl_io_t *io, int n)
{
    parley_client_t *c = io->c;
    int64_t d = c->backoff_initial_ms;
    for (int i = 0; i < n && d < c->backoff_max_ms; i++)
        d *= 2;
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    int64_t half = d / 2;
    return (int)(d - half + (int64_t)(next_random(io) % (uint64_t)(half + 1)));
}

/* (mu held) */
static void set_state(parley_client_t *c, parley_state_t state, int code, const char *reason, int retry_in_ms)
{
    c->state = state;
    pl_events_push(c, pl_ev_state(state, code, reason ? reason : "", retry_in_ms));
}

static void notify_app(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    parley_notify_fn fn = c->has_new_events ? c->notify : NULL;
    void *user = c->notify_user;
    c->has_new_events = false;
    pthread_mutex_unlock(&c->mu);
    if (fn)
        fn(c, user);
}

static void drain_wake(parley_client_t *c)
{
    uint64_t v;
    pthread_mutex_lock(&c->mu);
    while (read(c->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
        ;
    c->is_wake_pending = false;
    pthread_mutex_unlock(&c->mu);
}

/* Waits for a wake-up (or timeout_ms, -1 forever) while there is no stream. */
static void wait_wake(parley_client_t *c, int timeout_ms)
{
    struct pollfd p = {c->wake_fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) > 0)
        drain_wake(c);
}

/* ---- writing ---- */

static void remember_request(pl_io_t *io, uint64_t id, uint8_t kind, int64_t chat_id)
{
    io->reqs[id % REQ_RING].id = id;
    io->reqs[id % REQ_RING].kind = kind;
    io->reqs[id % REQ_RING].chat_id = chat_id;
}

static bool can_write(pl_io_t *io)
{
    return io->call && pl_ccall_send_buffered(io->call) < WRITE_BUDGET;
}

/* Writes io->cev (its event already set); returns its request id, 0 if the
 * call is gone (the read side then notices the end). */
static uint64_t write_event(pl_io_t *io)
{
    io->cev->request_id = ++io->next_request_id;
    if (pl_ccall_send_nowait(io->call, io->cev) != 0)
        return 0;
    return io->cev->request_id;
}

static void write_cursor(pl_io_t *io, pb_size_t tag, int64_t chat_id, int64_t seq, uint8_t kind)
{
    memset(io->cev, 0, sizeof(*io->cev));
    io->cev->which_event = tag;
    parley_v1_Cursor *cur =
        tag == parley_v1_ClientEvent_delivered_tag ? &io->cev->event.delivered : &io->cev->event.read;
    cur->chat_id = chat_id;
    cur->seq = seq;
    uint64_t id = write_event(io);
    if (id)
        remember_request(io, id, kind, chat_id);
}

/* (mu held) A chat's due ack, read and typing; false if something waits
 * for a timer or for write budget (the chat stays dirty). */
static bool write_chat(pl_io_t *io, pl_chat_t *ch, int64_t now)
{
    bool done = true;
    int64_t taken = pl_seqtrack_cursor(&ch->taken);
    if (taken > ch->ack_sent) {
        if (now < ch->ack_retry_usec) {
            if (ch->ack_retry_usec < io->chat_timer_usec)
                io->chat_timer_usec = ch->ack_retry_usec;
            done = false;
        } else if (can_write(io)) {
            write_cursor(io, parley_v1_ClientEvent_delivered_tag, ch->chat_id, taken, REQ_DELIVERED);
            ch->ack_sent = taken;
            ch->ack_sent_usec = now;
        } else {
            done = false;
        }
    }
    if (ch->read_want > ch->read_sent) {
        if (can_write(io)) {
            write_cursor(io, parley_v1_ClientEvent_read_tag, ch->chat_id, ch->read_want, REQ_READ);
            ch->read_sent = ch->read_want;
            ch->read_sent_usec = now;
        } else {
            done = false;
        }
    }
    if (ch->typing_want >= 0) {
        if (can_write(io)) {
            memset(io->cev, 0, sizeof(*io->cev));
            io->cev->which_event = parley_v1_ClientEvent_typing_tag;
            io->cev->event.typing.chat_id = ch->chat_id;
            io->cev->event.typing.typing = ch->typing_want == 1;
            uint64_t id = write_event(io);
            if (id)
                remember_request(io, id, REQ_TYPING, ch->chat_id);
            ch->typing_want = -1;
        } else {
            done = false;
        }
    }
    return done;
}

static void write_chats(pl_io_t *io, int64_t now)
{
    parley_client_t *c = io->c;
    io->chat_timer_usec = INT64_MAX;
    if (c->is_all_dirty) {
        c->is_all_dirty = false;
        for (size_t i = 0; i < c->chats.cap; i++)
            if (c->chats.slots[i].key)
                pl_chat_mark_dirty(c, c->chats.slots[i].value);
    }
    size_t keep = 0;
    for (size_t i = 0; i < c->dirty_count; i++) {
        pl_chat_t *ch = c->dirty[i];
        if (write_chat(io, ch, now)) {
            ch->is_dirty = false;
        } else {
            c->dirty[keep++] = ch;
        }
    }
    c->dirty_count = keep;
}

/* (mu held) Presence changes, in order, grouped by kind. */
static void write_presence(pl_io_t *io)
{
    parley_client_t *c = io->c;
    size_t i = 0;
    while (i < c->presence_op_count && can_write(io)) {
        bool sub = c->presence_ops[i] > 0;
        memset(io->cev, 0, sizeof(*io->cev));
        io->cev->which_event =
            sub ? parley_v1_ClientEvent_presence_subscribe_tag : parley_v1_ClientEvent_presence_unsubscribe_tag;
        parley_v1_AccountList *l = sub ? &io->cev->event.presence_subscribe : &io->cev->event.presence_unsubscribe;
        size_t max = sizeof(l->account_ids) / sizeof(l->account_ids[0]);
        while (i < c->presence_op_count && (c->presence_ops[i] > 0) == sub && l->account_ids_count < max) {
            int64_t v = c->presence_ops[i++];
            l->account_ids[l->account_ids_count++] = v > 0 ? v : -v;
        }
        uint64_t id = write_event(io);
        if (id)
            remember_request(io, id, REQ_PRESENCE, 0);
    }
    if (i) {
        memmove(c->presence_ops, c->presence_ops + i, (c->presence_op_count - i) * sizeof(*c->presence_ops));
        c->presence_op_count -= i;
    }
}

static void write_send(pl_io_t *io, pl_send_t *s, int64_t now)
{
    memset(io->cev, 0, sizeof(*io->cev));
    io->cev->which_event = parley_v1_ClientEvent_send_tag;
    parley_v1_OutgoingMessage *om = &io->cev->event.send;
    memcpy(om->client_message_id, s->client_id, sizeof(om->client_message_id));
    om->chat_id = s->chat_id;
    om->payload = pl_bytes_of(s->payload, s->payload_len);
    for (size_t i = 0; i < s->per_device_count; i++) {
        om->device_payloads[i].device_id = s->per_device[i].device_id;
        om->device_payloads[i].payload = pl_bytes_of(s->per_device[i].data, s->per_device[i].len);
    }
    om->device_payloads_count = (pb_size_t)s->per_device_count;
    memcpy(om->content_type, s->content_type, sizeof(om->content_type));
    om->reply_to_seq = s->reply_to_seq;
    om->expires_in_ms = s->expires_in_ms;
    s->request_id = write_event(io);
    s->sent_usec = now;
    pl_outbox_set_inflight(io->c, s, true);
}

/* (mu held) One pass over the outbox in queue order: a chat's first send
 * decides for the chat (one at a time per chat keeps the order), the rest
 * wait. Also finds the next timer (a retry, an answer overdue). */
static void write_sends(pl_io_t *io, int64_t now)
{
    parley_client_t *c = io->c;
    if (!c->is_outbox_dirty && now < io->next_timer_usec)
        return;
    c->is_outbox_dirty = false;
    io->next_timer_usec = INT64_MAX;
    io->pass++;
    int64_t timeout = (int64_t)c->send_timeout_ms * 1000;
    size_t seen = 0; /* chats whose first send was looked at: when all were, the rest waits */
    for (pl_list_node_t *n = c->outbox.head; n && seen < c->send_chats; n = n->next) {
        pl_send_t *s = pl_list_entry(n, pl_send_t, link);
        pl_chat_t *ch = s->chat;
        if (ch->scan == io->pass)
            continue;
        ch->scan = io->pass;
        seen++;
        if (s->state == PL_SEND_INFLIGHT) {
            if (now - s->sent_usec < timeout) {
                if (s->sent_usec + timeout < io->next_timer_usec)
                    io->next_timer_usec = s->sent_usec + timeout;
                continue;
            }
            /* unanswered (the server drops an answer it cannot queue): the
             * same client id again; the server keeps one copy */
            if (!can_write(io)) {
                c->is_outbox_dirty = true;
                break;
            }
            write_send(io, s, now);
            continue;
        }
        if (s->state == PL_SEND_WAITING && now < s->retry_usec) {
            if (s->retry_usec < io->next_timer_usec)
                io->next_timer_usec = s->retry_usec;
            continue;
        }
        if (c->inflight_count >= PL_MAX_INFLIGHT || !can_write(io)) {
            c->is_outbox_dirty = true; /* more when answers or budget come */
            break;
        }
        write_send(io, s, now);
    }
}

static void write_due(pl_io_t *io)
{
    parley_client_t *c = io->c;
    int64_t now = pl_now_usec();
    pthread_mutex_lock(&c->mu);
    write_chats(io, now);
    write_presence(io);
    write_sends(io, now);
    pthread_mutex_unlock(&c->mu);
    if (now >= io->next_heartbeat_usec && io->call) {
        memset(io->cev, 0, sizeof(*io->cev));
        io->cev->which_event = parley_v1_ClientEvent_heartbeat_tag;
        write_event(io);
        if (!io->ping_sent_usec && pl_channel_ping_send(io->ch) == 0)
            io->ping_sent_usec = now;
        io->next_heartbeat_usec = now + (int64_t)c->heartbeat_ms * 1000;
    }
}

/* ---- reading ---- */

/* (mu held) */
static void on_accepted(pl_io_t *io, uint64_t request_id, const parley_v1_Accepted *a)
{
    parley_client_t *c = io->c;
    pl_send_t *s = pl_outbox_by_request(c, request_id);
    if (!s || s->chat_id != a->chat_id)
        s = pl_outbox_by_client_id(c, a->chat_id, a->client_message_id);
    if (!s)
        return; /* the answer to a repeat of a send already answered */
    pl_seqtrack_mark(&s->chat->recv, a->seq, a->seq, false);
    pl_events_push(c, pl_ev_accepted(s, a->seq, a->server_time_ms, a->duplicate));
    pl_outbox_remove(c, s);
}

static bool is_transient(const parley_v1_Error *e)
{
    switch (e->code) {
    case PARLEY_UNAVAILABLE:
    case PARLEY_DEADLINE_EXCEEDED:
    case PARLEY_ABORTED: return true;
    case PARLEY_RESOURCE_EXHAUSTED: return e->retry_after_ms > 0;
    default: return false;
    }
}

/* (mu held) */
static void on_error(pl_io_t *io, uint64_t request_id, const parley_v1_Error *e)
{
    parley_client_t *c = io->c;
    pl_send_t *s = pl_outbox_by_request(c, request_id);
    if (s) {
        if (is_transient(e)) {
            int64_t delay_ms = e->retry_after_ms > 0 ? e->retry_after_ms : backoff_ms(io, s->attempts);
            s->attempts++;
            pl_outbox_set_inflight(c, s, false);
            s->state = PL_SEND_WAITING;
            s->retry_usec = pl_now_usec() + delay_ms * 1000;
            c->is_outbox_dirty = true;
        } else {
            /* the mismatch comes encoded on its own (large and rare) */
            parley_v1_DeviceMismatch *dm = NULL;
            if (e->device_mismatch.len && (dm = calloc(1, sizeof(*dm))) &&
                pl_pb_decode(parley_v1_DeviceMismatch_fields, e->device_mismatch.data, e->device_mismatch.len, dm,
                             NULL) != 0) {
                free(dm);
                dm = NULL;
            }
            pl_events_push(c, pl_ev_failed(s, e->code, e->message, dm));
            free(dm);
            pl_outbox_remove(c, s);
        }
        return;
    }
    const char *what = "stream";
    int64_t chat_id = 0;
    if (request_id && io->reqs[request_id % REQ_RING].id == request_id) {
        chat_id = io->reqs[request_id % REQ_RING].chat_id;
        switch (io->reqs[request_id % REQ_RING].kind) {
        case REQ_DELIVERED: {
            /* ours to repeat, a little later: the app need not know */
            pl_chat_t *ch = pl_chat_get(&c->chats, chat_id, false);
            if (ch) {
                ch->ack_sent = 0;
                ch->ack_retry_usec = pl_now_usec() + ACK_RETRY_USEC;
                pl_chat_mark_dirty(c, ch);
            }
            return;
        }
        case REQ_READ: what = "read"; break;
        case REQ_TYPING: what = "typing"; break;
        case REQ_PRESENCE: what = "presence"; break;
        default: break;
        }
    } else if (e->client_message_id[0]) {
        return; /* about a repeat of a send already answered */
    }
    pl_events_push(c, pl_ev_error(e->code, e->message, what, chat_id));
}

/* (mu held) */
static void on_message(pl_io_t *io, const parley_v1_Message *m)
{
    parley_client_t *c = io->c;
    pl_chat_t *ch = pl_chat_get(&c->chats, m->chat_id, true);
    if (!ch)
        return; /* out of memory: not marked, so a resume brings it again */
    if (pl_seqtrack_has(&ch->recv, m->seq))
        return; /* a repeat: the app has it (or has it queued) */
    pl_event_box_t *box = NULL;
    pl_send_t *s = NULL;
    if (m->sender_device_id == c->device_id && m->client_message_id[0])
        s = pl_outbox_by_client_id(c, m->chat_id, m->client_message_id);
    if (s) {
        /* our own send, stored before its answer reached us (a resume
         * after a lost connection brought it back): it is accepted */
        box = pl_ev_accepted(s, m->seq, m->server_time_ms, true);
    } else {
        box = pl_ev_message(m);
    }
    if (!box)
        return; /* not marked: comes again on the next resume */
    pl_seqtrack_mark(&ch->recv, m->seq, m->seq, true);
    pl_events_push(c, box);
    if (s)
        pl_outbox_remove(c, s);
}

/* (mu held) */
static void on_gap(pl_io_t *io, const parley_v1_Gap *g)
{
    parley_client_t *c = io->c;
    pl_chat_t *ch = pl_chat_get(&c->chats, g->chat_id, true);
    if (!ch || g->to_seq < g->from_seq)
        return;
    if (pl_seqtrack_has_all(&ch->recv, g->from_seq, g->to_seq))
        return;
    pl_event_box_t *box = pl_ev_gap(g);
    if (!box)
        return;
    pl_seqtrack_mark(&ch->recv, g->from_seq, g->to_seq, true);
    pl_events_push(c, box);
}

static void on_server_event(pl_io_t *io, const parley_v1_ServerEvent *ev)
{
    parley_client_t *c = io->c;
    pthread_mutex_lock(&c->mu);
    switch (ev->which_event) {
    case parley_v1_ServerEvent_accepted_tag: on_accepted(io, ev->request_id, &ev->event.accepted); break;
    case parley_v1_ServerEvent_error_tag: on_error(io, ev->request_id, &ev->event.error); break;
    case parley_v1_ServerEvent_message_tag: on_message(io, &ev->event.message); break;
    case parley_v1_ServerEvent_gap_tag: on_gap(io, &ev->event.gap); break;
    case parley_v1_ServerEvent_receipt_tag: pl_events_push(c, pl_ev_receipt(&ev->event.receipt)); break;
    case parley_v1_ServerEvent_typing_tag: pl_events_push(c, pl_ev_typing(&ev->event.typing)); break;
    case parley_v1_ServerEvent_presence_tag: pl_events_push(c, pl_ev_presence(&ev->event.presence)); break;
    case parley_v1_ServerEvent_ready_tag:
        io->attempt = 0;
        if (c->state != PARLEY_STATE_READY)
            set_state(c, PARLEY_STATE_READY, PARLEY_OK, "", 0);
        break;
    default: break; /* HeartbeatAck, and events newer than this library */
    }
    pthread_mutex_unlock(&c->mu);
}

/* ---- opening and closing ---- */

static void close_stream(pl_io_t *io)
{
    pl_ccall_free(io->call);
    pl_channel_free(io->ch);
    io->call = NULL;
    io->ch = NULL;
    io->ping_sent_usec = 0;
    io->closed_usec = pl_now_usec();
    parley_client_t *c = io->c;
    pthread_mutex_lock(&c->mu);
    c->is_stream_open = false;
    c->presence_op_count = 0; /* the next stream subscribes to the whole set */
    pl_outbox_requeue_inflight(c);
    /* cursors written just before the break may be lost with it */
    for (size_t i = 0; i < c->chats.cap; i++) {
        pl_chat_t *ch = c->chats.slots[i].value;
        if (!ch)
            continue;
        ch->typing_want = -1;
        if (ch->ack_sent && ch->ack_sent_usec > io->closed_usec - RESEND_WINDOW_USEC)
            ch->ack_sent = 0;
        if (ch->read_sent && ch->read_sent_usec > io->closed_usec - RESEND_WINDOW_USEC)
            ch->read_sent = 0;
        ch->ack_retry_usec = 0;
    }
    pthread_mutex_unlock(&c->mu);
}

/* The stream ended with code: AUTH_FAILED and REPLACED stop; the rest
 * retries after a backoff. */
static void stream_ended(pl_io_t *io, int code, const char *message)
{
    parley_client_t *c = io->c;
    close_stream(io);
    pthread_mutex_lock(&c->mu);
    if (code == PARLEY_UNAUTHENTICATED) {
        set_state(c, PARLEY_STATE_AUTH_FAILED, code, message, 0);
    } else if (code == PARLEY_ABORTED) {
        set_state(c, PARLEY_STATE_REPLACED, code, message, 0);
    } else {
        int delay = backoff_ms(io, io->attempt++);
        io->next_attempt_usec = pl_now_usec() + (int64_t)delay * 1000;
        set_state(c, PARLEY_STATE_DISCONNECTED, code, message, delay);
    }
    pthread_mutex_unlock(&c->mu);
}

static void connect_failed(pl_io_t *io, const char *why)
{
    parley_client_t *c = io->c;
    int delay = backoff_ms(io, io->attempt++);
    io->next_attempt_usec = pl_now_usec() + (int64_t)delay * 1000;
    pthread_mutex_lock(&c->mu);
    set_state(c, PARLEY_STATE_DISCONNECTED, PARLEY_UNAVAILABLE, why, delay);
    pthread_mutex_unlock(&c->mu);
}

/* (mu held) Resume: every chat with a known received cursor, in as many
 * messages as the proto's bound needs. */
static void write_resume(pl_io_t *io)
{
    parley_client_t *c = io->c;
    parley_v1_Resume *r = &io->cev->event.resume;
    size_t max = sizeof(r->cursors) / sizeof(r->cursors[0]);
    size_t i = 0;
    do {
        memset(io->cev, 0, sizeof(*io->cev));
        io->cev->which_event = parley_v1_ClientEvent_resume_tag;
        for (; i < c->chats.cap && r->cursors_count < max; i++) {
            pl_chat_t *ch = c->chats.slots[i].value;
            int64_t seq = ch ? pl_seqtrack_cursor(&ch->recv) : 0;
            if (seq > 0) {
                r->cursors[r->cursors_count].chat_id = ch->chat_id;
                r->cursors[r->cursors_count].seq = seq;
                r->cursors_count++;
            }
        }
        if (r->cursors_count)
            write_event(io);
    } while (i < c->chats.cap);
}

static void open_stream(pl_io_t *io)
{
    parley_client_t *c = io->c;
    char token[PL_TOKEN_MAX];
    pthread_mutex_lock(&c->mu);
    set_state(c, PARLEY_STATE_CONNECTING, PARLEY_OK, "", 0);
    snprintf(token, sizeof(token), "%s", c->token);
    pthread_mutex_unlock(&c->mu);
    notify_app(c);

    pl_channel_opts_t o = {0};
    o.host = c->host;
    o.port = c->port;
    o.use_tls = c->use_tls;
    o.ca_file = c->ca_file;
    o.server_name = c->server_name;
    o.insecure = c->tls_insecure;
    o.connect_timeout_ms = c->connect_timeout_ms;
    o.user_agent = c->user_agent;
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    if (!ch) {
        connect_failed(io, err);
        return;
    }
    char bearer[PL_TOKEN_MAX + 8];
    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    memset(token, 0, sizeof(token));
    pl_metadata_t md;
    pl_metadata_init(&md, 8192);
    int md_rc = pl_metadata_add(&md, "authorization", bearer, strlen(bearer));
    memset(bearer, 0, sizeof(bearer));
    pl_call_opts_t copts = {0, &md, false};
    pl_ccall_t *call = md_rc == 0 ? parley_v1_Messaging_Connect_start(ch, &copts) : NULL;
    pl_metadata_dispose(&md);
    if (!call) {
        pl_channel_free(ch);
        connect_failed(io, md_rc == 0 ? "out of memory" : "the token is not valid metadata");
        return;
    }
    io->ch = ch;
    io->call = call;
    int64_t now = pl_now_usec();
    io->next_heartbeat_usec = now + (int64_t)c->heartbeat_ms * 1000;
    io->ping_sent_usec = 0;
    io->next_timer_usec = 0;

    pthread_mutex_lock(&c->mu);
    c->is_stream_open = true;
    write_resume(io);
    /* the whole presence set: the server forgot it with the old stream */
    free(c->presence_ops);
    c->presence_ops = c->presence_count ? malloc(c->presence_count * sizeof(int64_t)) : NULL;
    c->presence_op_count = 0;
    if (c->presence_ops) {
        memcpy(c->presence_ops, c->presence, c->presence_count * sizeof(int64_t));
        c->presence_op_count = c->presence_count;
    }
    c->is_all_dirty = true; /* acks and reads the last stream may have lost */
    c->is_outbox_dirty = true;
    set_state(c, PARLEY_STATE_CATCHING_UP, PARLEY_OK, "", 0);
    pthread_mutex_unlock(&c->mu);
}

/* ---- the loop ---- */

/* Takes what the stream has, while the app's queue has room. False once
 * the stream ended. */
static bool read_events(pl_io_t *io)
{
    parley_client_t *c = io->c;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool room = pl_events_have_room(c);
        if (!room)
            c->is_io_waiting_for_room = true;
        pthread_mutex_unlock(&c->mu);
        if (!room && pl_channel_is_alive(io->ch))
            return true; /* back-pressure: HTTP/2 flow control holds the server */
        memset(io->sev, 0, sizeof(*io->sev));
        int rc = room ? pl_ccall_try_recv(io->call, io->sev) : -1;
        if (rc == PL_CCALL_PENDING)
            return true;
        if (rc == 1) {
            on_server_event(io, io->sev);
            continue;
        }
        pl_status_t st = {0};
        pl_code_t code = pl_ccall_finish(io->call, &st);
        char why[300];
        snprintf(why, sizeof(why), "%s", st.message ? st.message : pl_code_name((int)code));
        pl_status_reset(&st);
        stream_ended(io, (int)code, why);
        return false;
    }
}

static int timeout_until(int64_t when, int64_t now)
{
    if (when <= now)
        return 0;
    int64_t ms = (when - now + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

/* One turn with an open stream: write, wait, read, check liveness. */
static void run_once(pl_io_t *io)
{
    parley_client_t *c = io->c;
    write_due(io);
    int64_t now = pl_now_usec();
    int64_t next = io->next_heartbeat_usec;
    if (io->next_timer_usec < next)
        next = io->next_timer_usec;
    if (io->chat_timer_usec < next)
        next = io->chat_timer_usec;
    int64_t ping_deadline = io->ping_sent_usec + (int64_t)c->keepalive_timeout_ms * 1000;
    if (io->ping_sent_usec && ping_deadline < next)
        next = ping_deadline;
    struct pollfd p[2] = {{pl_channel_fd(io->ch), POLLIN, 0}, {c->wake_fd, POLLIN, 0}};
    if (pl_channel_wants_write(io->ch))
        p[0].events |= POLLOUT;
    int rc = poll(p, 2, timeout_until(next, now));
    if (rc > 0 && (p[1].revents & POLLIN))
        drain_wake(c);
    pl_channel_pump(io->ch, 0);
    if (!read_events(io))
        return;
    if (io->ping_sent_usec) {
        if (pl_channel_ping_acked_usec(io->ch) >= io->ping_sent_usec)
            io->ping_sent_usec = 0;
        else if (pl_now_usec() > ping_deadline)
            stream_ended(io, PARLEY_UNAVAILABLE, "keepalive: the server did not answer a PING in time");
    }
}

/* Reads while the app's queue has room. False once the stream ended or
 * the queue is full. */
static bool read_events_while_room(pl_io_t *io)
{
    parley_client_t *c = io->c;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool room = pl_events_have_room(c);
        pthread_mutex_unlock(&c->mu);
        if (!room)
            return false;
        memset(io->sev, 0, sizeof(*io->sev));
        int rc = pl_ccall_try_recv(io->call, io->sev);
        if (rc != 1)
            return rc == PL_CCALL_PENDING;
        on_server_event(io, io->sev);
    }
}

/* Stopping: acks out, half-close, and a moment for the server to finish
 * the stream (it stores the acks before it does). */
static void close_gracefully(pl_io_t *io)
{
    if (!io->call)
        return;
    write_due(io);
    pl_ccall_close_send(io->call);
    int64_t deadline = pl_now_usec() + CLOSE_GRACE_MS * 1000LL;
    while (io->call && pl_now_usec() < deadline) {
        if (pl_channel_pump(io->ch, 50) != 0 || pl_ccall_is_done(io->call))
            break;
        /* what the app has no room for stays on the server: the next
         * resume brings it */
        if (!read_events_while_room(io))
            break;
    }
    close_stream(io);
}

static void *io_main(void *arg)
{
    parley_client_t *c = arg;
    /* a peer that closes mid-write must not kill the app: EPIPE will do */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, NULL);

    pl_io_t *io = calloc(1, sizeof(*io));
    parley_v1_ServerEvent *sev = malloc(sizeof(*sev));
    parley_v1_ClientEvent *cev = malloc(sizeof(*cev));
    if (!io || !sev || !cev) {
        pthread_mutex_lock(&c->mu);
        set_state(c, PARLEY_STATE_STOPPED, PARLEY_E_NOMEM, "out of memory", 0);
        pthread_mutex_unlock(&c->mu);
        notify_app(c);
        free(io);
        free(sev);
        free(cev);
        return NULL;
    }
    io->c = c;
    io->sev = sev;
    io->cev = cev;
    if (getrandom(&io->rng, sizeof(io->rng), GRND_NONBLOCK) != sizeof(io->rng))
        io->rng = (uint64_t)pl_now_usec();
    io->rng |= 1;

    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool stop = c->stop_requested;
        parley_state_t st = c->state;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        if (io->call) {
            run_once(io);
        } else if (st == PARLEY_STATE_AUTH_FAILED || st == PARLEY_STATE_REPLACED) {
            wait_wake(c, -1); /* stopped for good: only a stop wakes us */
        } else {
            int64_t now = pl_now_usec();
            if (now < io->next_attempt_usec)
                wait_wake(c, timeout_until(io->next_attempt_usec, now));
            else
                open_stream(io);
        }
        notify_app(c);
    }
    close_gracefully(io);
    pthread_mutex_lock(&c->mu);
    set_state(c, PARLEY_STATE_STOPPED, PARLEY_OK, "stopped by the app", 0);
    pthread_mutex_unlock(&c->mu);
    notify_app(c);
    free(io->sev);
    free(io->cev);
    free(io);
    return NULL;
}

int pl_io_thread_start(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool from_io = c->is_running && pthread_equal(pthread_self(), c->thread);
    pthread_mutex_unlock(&c->mu);
    if (from_io)
        return PARLEY_E_STATE;
    pthread_mutex_lock(&c->life_mu);
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    if (c->is_running)
        rc = PARLEY_E_STATE;
    else if (!c->token[0])
        rc = PARLEY_E_STATE; /* register first: parley_verify */
    if (rc == PARLEY_OK) {
        c->stop_requested = false;
        c->state = PARLEY_STATE_STOPPED;
        c->is_running = pthread_create(&c->thread, NULL, io_main, c) == 0;
        if (!c->is_running)
            rc = PARLEY_E_NOMEM;
    }
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->life_mu);
    return rc;
}

int pl_io_thread_stop(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    bool from_io = c->is_running && pthread_equal(pthread_self(), c->thread);
    pthread_mutex_unlock(&c->mu);
    if (from_io)
        return PARLEY_E_STATE; /* from the notify callback: it would wait for itself */
    /* one stop (or start) at a time: a second stopper waits for the first */
    pthread_mutex_lock(&c->life_mu);
    pthread_mutex_lock(&c->mu);
    if (!c->is_running) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->life_mu);
        return PARLEY_OK;
    }
    c->stop_requested = true;
    pl_client_wake(c);
    pthread_t t = c->thread;
    pthread_mutex_unlock(&c->mu);
    pthread_join(t, NULL);
    pthread_mutex_lock(&c->mu);
    c->is_running = false;
    c->stop_requested = false;
    c->is_wake_pending = false;
    pthread_mutex_unlock(&c->mu);
    drain_wake(c);
    pthread_mutex_unlock(&c->life_mu);
    return PARLEY_OK;
}
