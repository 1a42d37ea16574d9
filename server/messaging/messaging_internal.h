/* messaging_internal.h — the pieces of the messaging service and how they
 * share state. Not for other modules (they use notify.h).
 *
 * One message's path: a device's stream (stream.c) or unary Send (send.c)
 * → send_message() on the chat's shard (group-committed) → Accepted to the
 * sender → an event (fanout.c) posted to every worker of this node and
 * published through Redis to the nodes that hold recipients' streams → on
 * each worker, the recipients' streams (registry.c) deliver it in per-chat
 * order (deliver.c), fetching from PostgreSQL whatever they missed
 * (catchup.c). Everything a worker owns is touched only on its thread. */
#ifndef PL_MESSAGING_INTERNAL_H
#define PL_MESSAGING_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/app.h"
#include "app/op.h"
#include "messaging/order.h"
#include "parley/internal/v1/node.pb.h"
#include "parley/v1/messaging.pb.h"
#include "runtime/idmap.h"
#include "runtime/list.h"
#include "transport/worker.h"

typedef struct pl_msg_worker pl_msg_worker_t;
typedef struct pl_stream pl_stream_t;
typedef struct pl_msg_event pl_msg_event_t;

/* Statements (messaging.c's table; indexes relative to m->stmt). */
enum {
    ST_SEND,           /* send_message() */
    ST_LOAD_CHATS,     /* an account's chats and this device's cursors */
    ST_LAST_SEQS,      /* last_seq of some chats of one shard */
    ST_FETCH,          /* a member's view of a chat's log after a seq */
    ST_MEMBERS,        /* a chat's current members */
    ST_DEVICES,        /* current devices of some accounts of one shard */
    ST_CURSOR,         /* update_cursor() */
    ST_DEVICE_CURSOR,  /* a device's delivered cursor, forward only */
    ST_HISTORY_BEFORE, /* GetHistory, newest first */
    ST_HISTORY_AFTER,  /* GetHistory, oldest first */
    ST_IS_MEMBER,      /* membership check for typing and history */
    ST_PRIVACY,        /* visibility settings, contact and block facts for presence */
    ST_TOUCH_DEVICE,   /* last_active_at */
    ST_SWEEP,          /* retention: delete a batch of old or expired messages */
    ST_FETCH_ONE,      /* one message as stored (a message_ref from another node) */
    ST_SENDER_CURSOR,  /* a send moves the sender's own cursors */
    ST_COUNT
};

struct pl_messaging {
    pl_app_t *app;
    int stmt;   /* base index of our statements */
    int module; /* per-worker pl_msg_worker_t */
    int nworkers;
    pl_msg_worker_t **workers; /* by worker index; set as workers start */
    _Atomic uint64_t epoch_counter;
};

/* Per-worker state. */
struct pl_msg_worker {
    pl_messaging_t *m;
    pl_worker_t *w;
    pl_idmap_t by_device;  /* device id → pl_stream_t */
    pl_idmap_t by_account; /* account id → first pl_stream_t (next_of_account) */
    pl_idmap_t members;    /* chat id → members_entry_t (members.c) */
    pl_idmap_t watchers;   /* account id → first watch_t (presence.c) */
    size_t stream_count;
    struct event *refresh_ev; /* route and watch refresh (presence.c) */
    size_t refresh_slot;      /* where the next refresh slice starts */
    struct event *sweep_ev;   /* worker 0: the retention sweeper (retention.c) */
    int sweep_shard;
    bool sweep_busy;
    /* worker 0 only: this node's Redis subscription (fanout.c) */
    struct pl_cache_sub *subscriber;
    bool is_subscribed;
    struct event *resync_ev; /* retrying a resync until Redis takes the routes */
    /* events Redis failed to carry to other nodes, sent again (republish.c) */
    pl_list_t republish; /* of pl_republish_t */
    uint64_t republish_dropped;
    struct event *republish_ev;
};

#define PL_HOLD_MS 30 /* a held message waits this long before a catch-up */

/* ---- per-chat delivery state of one stream (deliver.c) ---- */
typedef struct chat_state {
    int64_t chat_id;
    int64_t upto;            /* highest seq sent on this stream (or delivered before it) */
    int64_t target;          /* highest seq known to exist; > upto: catch up */
    int64_t acked;           /* highest delivered cursor stored for this device */
    int64_t known_last;      /* highest seq proved to exist (the load, events, fetches): no client
                              * cursor may claim more */
    int64_t typing_until_ms; /* this device said "typing" until then (0: not) */
    bool is_fetching;
    bool is_queued;          /* on the stream's catch-up list */
    bool is_capped;          /* first fetch of a resume: apply resume_max_per_chat */
    bool is_hinted_in_fetch; /* a live event named a seq while a fetch was out */
    bool is_fetch_stale;     /* a Resume moved upto while a fetch was out: discard its page */
    bool is_account_chat;    /* loaded, or named by a real event: the account's (or was) */
    uint8_t held_count;
    pl_order_held_t *held; /* [PL_ORDER_HOLD_MAX], allocated on first use; items: pl_msg_event_t
                            * (NULL: the device's own message) */
    int64_t held_since_ms;
    pl_list_node_t queued; /* on the stream's catch-up list, if is_queued */
} chat_state_t;

struct pl_stream {
    pl_call_t *call;
    pl_msg_worker_t *mw;
    int64_t account_id;
    int64_t device_id;
    uint64_t epoch;
    pl_stream_t *next_of_account;
    pl_idmap_t chats; /* chat id → chat_state_t */
    pl_list_t queue;  /* chats to catch up (chat_state_t) */
    int fetches;      /* catch-up queries in flight */
    bool is_registered;
    bool is_loaded; /* chats and cursors loaded */
    bool is_ready_sent;
    bool is_closing;
    bool wants_writable; /* catch-up waits for the call to drain */
    bool is_half_closed; /* the client sends no more: end once it is answered */
    int requests_open;   /* sends and cursors not yet answered */
    /* Resume cursors that arrived before the load finished */
    struct early_cursor *early_resume;
    size_t early_resume_count;
    /* sends: a local token bucket per stream (ratelimit in send.c) */
    double send_tokens;
    int64_t send_refill_usec;
    int sends_unleased; /* sends not yet debited from the account's Redis bucket */
    double typing_tokens;
    int64_t typing_refill_usec;
    struct event *typing_ev;  /* expiry of this device's typing states */
    struct event *hold_ev;    /* held messages waiting too long: catch up */
    pl_idmap_t presence_subs; /* accounts this stream watches → 1 */
};

/* messaging.c */
pl_msg_worker_t *pl_msg_worker(const pl_messaging_t *m, const pl_worker_t *w);
int pl_msg_stmt(const pl_messaging_t *m, int which);

/* registry.c: the worker's streams by device and account */
int pl_registry_add(pl_msg_worker_t *mw, pl_stream_t *s);
void pl_registry_remove(pl_msg_worker_t *mw, pl_stream_t *s);
pl_stream_t *pl_registry_first(const pl_msg_worker_t *mw, int64_t account_id);

/* The service's handlers (stream.c, send.c, history.c). */
void pl_stream_on_start(pl_call_t *call, void *svc);
void pl_stream_on_event(pl_call_t *call, const parley_v1_ClientEvent *ev, void *svc);
void pl_stream_on_half_close(pl_call_t *call, void *svc);
void pl_send_unary(pl_call_t *call, const parley_v1_SendRequest *req, void *svc);
void pl_history_get(pl_call_t *call, const parley_v1_GetHistoryRequest *req, void *svc);

/* stream.c */
/* A request of the stream began / was answered (for ending after half-close). */
void pl_stream_request_begin(pl_stream_t *s);
void pl_stream_request_end(pl_stream_t *s);
/* Ends a half-closed stream once everything is answered and Ready went out. */
void pl_stream_maybe_finish(pl_stream_t *s);
void pl_stream_end(pl_stream_t *s, pl_code_t code, const char *message);
/* Sends a ServerEvent; false when the call's queue is full or it ended. */
bool pl_stream_emit(pl_stream_t *s, const parley_v1_ServerEvent *ev);
void pl_stream_error(pl_stream_t *s, uint64_t request_id, pl_code_t code, const char *message,
                     const char *client_message_id, int64_t retry_after_ms, const parley_v1_DeviceMismatch *mismatch);

/* fanout.c: the shared, reference-counted event a message arrives in */
typedef struct pl_republish pl_republish_t;
/* Sends e to the nodes holding accounts' routes (fanout.c): node < 0 looks
 * them up first. What Redis fails goes to pl_republish_later, until
 * give_up_ms (0: from now on, the default deadline). */
void pl_fanout_publish_lookup(pl_msg_worker_t *mw, pl_msg_event_t *e, const int64_t *accounts, size_t n,
                              int64_t device_id, int64_t give_up_ms);
void pl_fanout_publish_node(pl_msg_worker_t *mw, pl_msg_event_t *e, int node, int64_t give_up_ms);
/* republish.c: keeps e (a reference) to publish again once Redis answers. */
void pl_republish_later(pl_msg_worker_t *mw, pl_msg_event_t *e, int node, int64_t device_id, const int64_t *accounts,
                        size_t n, int64_t give_up_ms);
void pl_republish_stop(pl_msg_worker_t *mw);

void pl_msg_event_ref(pl_msg_event_t *e);
void pl_msg_event_unref(pl_msg_event_t *e);
const parley_internal_v1_StoredMessage *pl_msg_event_message(const pl_msg_event_t *e);
const parley_internal_v1_NodeEvent *pl_msg_event_node(const pl_msg_event_t *e);

/* deliver.c: per-chat ordering, live events and catch-up */
chat_state_t *pl_deliver_chat(pl_stream_t *s, int64_t chat_id, bool create);
void pl_deliver_message(pl_stream_t *s, pl_msg_event_t *e);
/* The log of chat_id reaches at least seq: catch up if behind. */
void pl_deliver_hint(pl_stream_t *s, int64_t chat_id, int64_t seq);
void pl_deliver_accepted(pl_stream_t *s, int64_t chat_id, int64_t seq);
void pl_deliver_kick(pl_stream_t *s); /* run the catch-up queue */
/* The client says it has chat cs up to seq (a Resume): start there, repeats
 * included if it asks for them. Nothing beyond known_last is believed:
 * returns the seq applied (lower than asked when clamped). Queues the catch-up
 * without running it (pl_deliver_kick). */
int64_t pl_deliver_resume_at(pl_stream_t *s, chat_state_t *cs, int64_t seq);
/* The log of chat cs is known to reach seq (the load, a live event). */
void pl_deliver_exists(chat_state_t *cs, int64_t seq);
/* Puts the chat on the catch-up queue without running it. */
void pl_deliver_queue(pl_stream_t *s, chat_state_t *cs);
/* Events may have been missed (Redis subscription lost): re-check every
 * chat's last seq and catch up. */
void pl_deliver_resync(pl_stream_t *s);
void pl_deliver_dispose(pl_stream_t *s);

/* catchup.c: fetching a chat's missed messages */
void pl_catchup_start(pl_stream_t *s, chat_state_t *cs);
/* Fills a Message from a row of ST_FETCH / history (columns in catchup.c),
 * choosing device_id's payload. */
void pl_catchup_row_message(const PGresult *res, int row, int64_t device_id, parley_v1_Message *msg);
/* Fills a StoredMessage (every payload, views into res) from a row of
 * ST_FETCH_ONE. */
void pl_catchup_row_stored(const PGresult *res, int row, int64_t chat_id, parley_internal_v1_StoredMessage *sm);

/* send.c */
void pl_send_from_stream(pl_stream_t *s, uint64_t request_id, const parley_v1_OutgoingMessage *om);

/* receipts.c */
void pl_receipts_cursor(pl_stream_t *s, uint64_t request_id, const parley_v1_Cursor *c, bool is_read);
void pl_receipts_deliver(pl_stream_t *s, const parley_v1_Receipt *r);
/* The sender has read what it sent: moves its member's cursors to seq
 * (after the send committed), telling members if "to all" moved. */
void pl_receipts_after_send(pl_op_t *op, pl_messaging_t *m, int64_t chat_id, int64_t seq);

/* typing.c */
void pl_typing_update(pl_stream_t *s, uint64_t request_id, const parley_v1_TypingUpdate *t);
void pl_typing_deliver(pl_stream_t *s, const parley_internal_v1_TypingEvent *t);
void pl_typing_stop_all(pl_stream_t *s);

/* presence.c */
/* is_connect: also tell watchers (heartbeats only refresh the TTL). */
void pl_presence_online(pl_stream_t *s, bool is_connect);
void pl_presence_offline(pl_stream_t *s);
void pl_presence_subscribe(pl_stream_t *s, uint64_t request_id, const parley_v1_AccountList *l, bool on);
void pl_presence_deliver(pl_msg_worker_t *mw, const parley_v1_Presence *p, const int64_t *accounts, size_t n);
void pl_presence_stream_gone(pl_stream_t *s);
/* Records the stream's watches in Redis again (after Redis lost them). */
void pl_presence_rewatch(pl_stream_t *s);
int pl_presence_worker_start(pl_msg_worker_t *mw);
void pl_presence_worker_stop(pl_msg_worker_t *mw);

/* retention.c */
int pl_retention_worker_start(pl_msg_worker_t *mw);
void pl_retention_worker_stop(pl_msg_worker_t *mw);

/* members.c: per-worker cache of group members */
/* is_blocked: a direct chat where one member blocks the other. */
typedef void (*pl_members_fn)(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n, bool is_blocked,
                              pl_code_t code, void *user);
/* Calls fn (now if cached at members_version, else after a query) with
 * the chat's current members. version 0: any cached version. */
void pl_members_get(pl_msg_worker_t *mw, int64_t chat_id, int64_t version, pl_members_fn fn, void *user);
void pl_members_forget(pl_msg_worker_t *mw, int64_t chat_id);
void pl_members_dispose(pl_msg_worker_t *mw);

/* fanout.c: events to this node's workers and to other nodes */
/* Encodes ev for accounts and delivers it: every worker of this node and,
 * if publish, the other nodes holding routes of those accounts. */
void pl_fanout(pl_msg_worker_t *mw, parley_internal_v1_NodeEvent *ev, const int64_t *accounts, size_t n, bool publish);
int pl_fanout_worker_start(pl_msg_worker_t *mw);
void pl_fanout_worker_stop(pl_msg_worker_t *mw);
/* Reads the packed account list of a decoded event. */
size_t pl_fanout_accounts(const parley_internal_v1_NodeEvent *ev, int64_t *out, size_t cap);

#define PL_STREAM_ROUTE_TTL_S 90
#define PL_PRESENCE_TTL_S 60
#define PL_TYPING_EXPIRY_MS 5000

#endif
