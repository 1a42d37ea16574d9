/* client_impl.h — libparley's private state, shared by the files of
 * client/api/: the client object (client.c), its per-chat state (chats.c),
 * the event queue (events.c), the send queue (outbox.c), the I/O thread
 * that runs the device stream (io_thread.c) and the unary calls (unary.c,
 * accounts.c, conversations.c).
 *
 * Locking: c->mu guards everything marked (mu): the app's threads and the
 * I/O thread both touch it, briefly. c->pool_mu guards the idle unary
 * connections. The I/O thread's own state (its connection, its call, its
 * scratch messages) is in pl_io_t, on its stack, and nobody else sees it. */
#ifndef PL_CLIENT_API_CLIENT_IMPL_H
#define PL_CLIENT_API_CLIENT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/convert.h"
#include "api/seqtrack.h"
#include "parley/channel.h"
#include "parley/parley.h"
#include "runtime/idmap.h"
#include "runtime/list.h"

#define PL_POOL_MAX 4 /* idle unary connections kept */
#define PL_TOKEN_MAX 96
#define PL_MAX_INFLIGHT 64 /* sends on the wire at once (one per chat) */
#define PL_MAX_PAYLOADS 64 /* per-device payloads in one message (the proto's bound) */
#define PL_CLIENT_ID_MAX 64
#define PL_CONTENT_TYPE_MAX 64
#define PL_PRESENCE_MAX 4096 /* accounts whose presence one client follows */

/* ---- per chat ---- */

typedef struct pl_send pl_send_t;

typedef struct pl_chat {
    int64_t chat_id;
    pl_seqtrack_t recv;  /* what the stream brought: repeats are dropped, resume starts here */
    pl_seqtrack_t taken; /* what the app took: the cursors, the delivered acks */
    int64_t ack_sent;    /* delivered ack written on the current stream */
    int64_t ack_sent_usec;
    int64_t ack_retry_usec; /* the server could not store it: again after this */
    int64_t read_want, read_sent;
    int64_t read_sent_usec;
    int8_t typing_want;  /* 0/1 to send, -1 nothing */
    pl_send_t *inflight; /* this chat's send on the wire (one at a time keeps order) */
    uint32_t pending;    /* this chat's sends in the outbox */
    uint32_t scan;       /* the outbox pass that saw this chat last */
    bool is_dirty;       /* in the client's dirty list: an ack, read or typing may be due */
} pl_chat_t;

typedef pl_idmap_t pl_chatmap_t; /* chat id → pl_chat_t */

/* The chat's state, created on first use when create (NULL: no memory). */
pl_chat_t *pl_chat_get(pl_chatmap_t *m, int64_t chat_id, bool create);
void pl_chatmap_dispose(pl_chatmap_t *m);
/* (mu held) The I/O thread should look at the chat's ack, read and typing. */
void pl_chat_mark_dirty(parley_client_t *c, pl_chat_t *ch);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->slots[i]) ... */

/* ---- sends ---- */

typedef enum pl_send_state {
    PL_SEND_QUEUED = 0,   /* waiting for its turn (or a connection) */
    PL_SEND_INFLIGHT = 1, /* written on the current stream, unanswered */
    PL_SEND_WAITING = 2,  /* refused for now; again at retry_usec */
} pl_send_state_t;

typedef struct pl_payload {
    int64_t device_id;
    uint8_t *data;
    size_t len;
} pl_payload_t;

struct pl_send {
    pl_list_node_t link; /* in the outbox, in the order the app queued */
    size_t bytes;        /* payload bytes, for the outbox's byte bound */
    uint64_t local_id;
    int64_t chat_id;
    pl_chat_t *chat;
    char client_id[PL_CLIENT_ID_MAX + 1];
    char content_type[PL_CONTENT_TYPE_MAX + 1];
    int64_t reply_to_seq, expires_in_ms;
    uint8_t *payload; /* one for all; or: */
    size_t payload_len;
    pl_payload_t *per_device;
    size_t per_device_count;
    pl_send_state_t state;
    uint64_t request_id;
    int64_t sent_usec, retry_usec;
    int attempts; /* transient refusals so far, for their backoff */
};

/* ---- the client ---- */

/* An event in the queue; the app gets &box->ev. Strings, payloads and
 * arrays the event points to live in the same allocation, after it. */
typedef struct pl_event_box {
    pl_list_node_t link; /* in the client's events */
    size_t size;         /* the whole allocation, for the queue's byte bound */
    pl_bump_t extra;
    parley_event_t ev;
} pl_event_box_t;

struct parley_client {
    pthread_mutex_t mu;

    /* options: fixed at parley_client_new */
    char *host;
    uint16_t port;
    bool use_tls, tls_insecure;
    char *ca_file, *server_name, *user_agent;
    int connect_timeout_ms, call_timeout_ms, heartbeat_ms, keepalive_timeout_ms;
    int backoff_initial_ms, backoff_max_ms, send_timeout_ms;
    size_t max_pending_sends, max_pending_bytes, max_queued_events, max_queued_bytes;

    /* credentials (mu) */
    char token[PL_TOKEN_MAX];
    int64_t account_id, device_id;

    /* idle unary connections (pool_mu) */
    pthread_mutex_t pool_mu;
    pl_channel_t *idle[PL_POOL_MAX];
    size_t idle_count;

    /* the stream (mu) */
    parley_state_t state;
    bool is_running;     /* the I/O thread exists */
    bool stop_requested; /* ... and should end */
    pthread_t thread;
    pthread_mutex_t life_mu; /* one start or stop at a time (not c->mu: stop waits for the thread) */
    int wake_fd;             /* eventfd: wakes the I/O thread */
    bool is_wake_pending;
    bool is_stream_open; /* typing can go out */
    pl_chatmap_t chats;
    pl_chat_t **dirty; /* chats with an ack, read or typing to write */
    size_t dirty_count, dirty_cap;
    bool is_all_dirty; /* the list could not grow: look at every chat */

    /* the outbox (mu) */
    pl_list_t outbox; /* of pl_send_t */
    size_t send_bytes;
    size_t send_chats; /* chats with sends in the outbox */
    uint64_t next_local_id;
    pl_send_t *inflight[PL_MAX_INFLIGHT]; /* the sends on the wire */
    size_t inflight_count;
    bool is_outbox_dirty; /* something to send may have changed */

    /* presence subscriptions (mu): the set, and changes not yet written */
    int64_t *presence;
    size_t presence_count;
    int64_t *presence_ops; /* account id, negated for an unsubscribe */
    size_t presence_op_count;

    /* events (mu) */
    pl_list_t events; /* of pl_event_box_t, oldest first */
    size_t ev_bytes;
    pthread_cond_t ev_cond;
    int event_fd; /* eventfd: readable while events.count > 0 */
    bool is_io_waiting_for_room;
    bool has_new_events; /* since the I/O thread last ran the notify callback */
    parley_notify_fn notify;
    void *notify_user;
};

/* client.c */
void pl_client_wake(parley_client_t *c); /* (mu held) the I/O thread looks again */
void pl_client_error(parley_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* events.c (mu held unless said) */
/* Queues an event built by the pl_ev_* functions; takes it. */
void pl_events_push(parley_client_t *c, pl_event_box_t *box);
bool pl_events_have_room(const parley_client_t *c);
void pl_events_clear(parley_client_t *c);
/* A box with room for extra bytes after the event (box->extra). */
pl_event_box_t *pl_box_new(parley_event_type_t type, size_t extra);
/* Event builders (no lock needed); NULL without memory. */
pl_event_box_t *pl_ev_state(parley_state_t state, int code, const char *reason, int retry_in_ms);
pl_event_box_t *pl_ev_message(const parley_v1_Message *m);
pl_event_box_t *pl_ev_accepted(const pl_send_t *s, int64_t seq, int64_t server_time_ms, bool duplicate);
pl_event_box_t *pl_ev_failed(const pl_send_t *s, int code, const char *message, const parley_v1_DeviceMismatch *dm);
pl_event_box_t *pl_ev_receipt(const parley_v1_Receipt *r);
pl_event_box_t *pl_ev_typing(const parley_v1_Typing *t);
pl_event_box_t *pl_ev_presence(const parley_v1_Presence *p);
pl_event_box_t *pl_ev_gap(const parley_v1_Gap *g);
pl_event_box_t *pl_ev_error(int code, const char *message, const char *request, int64_t chat_id);

/* outbox.c (mu held) */
void pl_outbox_remove(parley_client_t *c, pl_send_t *s); /* unlinks and frees */
void pl_outbox_set_inflight(parley_client_t *c, pl_send_t *s, bool on);
pl_send_t *pl_outbox_by_request(parley_client_t *c, uint64_t request_id);
pl_send_t *pl_outbox_by_client_id(parley_client_t *c, int64_t chat_id, const char *client_id);
/* The stream ended: what was on the wire goes again on the next one. */
void pl_outbox_requeue_inflight(parley_client_t *c);
void pl_outbox_clear(parley_client_t *c);

/* io_thread.c */
int pl_io_thread_start(parley_client_t *c);
int pl_io_thread_stop(parley_client_t *c);

#endif
