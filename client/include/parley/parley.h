/* parley.h — libparley, the C client library for Parley apps.
 *
 * One parley_client_t is one device of one account: it registers the device
 * (phone number + one-time code), makes the account's unary calls (chats,
 * history, devices, lookups), and keeps the device stream to the server
 * open: connecting, keepalive, reconnecting with backoff, resuming where the
 * app left off, acknowledging what the app took, and sending the app's
 * messages exactly once. The app sees events (messages, send results,
 * receipts, typing, presence, gaps, connection states) in a queue.
 *
 * Nothing here exposes the wire format: payloads are opaque bytes (end-to-end
 * encryption is the app's or a later layer's business), everything else is
 * plain C structs.
 *
 * ---- Threading model -----------------------------------------------------
 *
 * - parley_client_start() starts ONE background thread per client, the I/O
 *   thread. It alone owns the device stream's connection: it connects,
 *   reads, writes, sends heartbeats and reconnects. It never calls into the
 *   app except for the optional notify callback (below).
 * - Unary calls (parley_request_code ... parley_get_history) are blocking and
 *   run on the calling thread, over a small pool of separate connections:
 *   any number of app threads may make them at once, whether or not the
 *   stream is started. They never wait for the I/O thread.
 * - Every function taking a client is thread-safe (an internal mutex guards
 *   the shared state), except parley_client_free(), which must be the last
 *   call on the client and must not race with any other.
 * - Events wait in a queue until the app takes them with
 *   parley_client_next_event(), from any thread (one consumer thread is the
 *   normal case: with several, per-chat order is only kept per taker).
 *   parley_client_event_fd() is readable while the queue is not empty, for
 *   apps with their own poll/epoll/select loop.
 * - The notify callback (parley_client_set_notify) runs ON THE I/O THREAD
 *   right after new events were queued. It must return quickly and must not
 *   block. From it the app MAY call the non-blocking functions:
 *   parley_client_next_event(c, 0), parley_client_send*(),
 *   parley_client_set_typing(), parley_client_mark_read(),
 *   parley_client_*_presence(), parley_client_state(),
 *   parley_client_cursors(), parley_client_pending_sends(), and post work to
 *   its own threads. It MUST NOT call parley_client_stop(),
 *   parley_client_free(), parley_client_next_event() with a timeout other
 *   than 0, or any blocking unary call (they would stall or deadlock the
 *   stream); parley_client_start() and parley_client_stop() called there
 *   return PARLEY_E_STATE.
 * - parley_client_start() and parley_client_stop() may race from several
 *   app threads: they take turns (a second stop waits for the first).
 *
 * ---- Delivery guarantees ------------------------------------------------
 *
 * - Messages: every message of every chat the account is in reaches the
 *   app once, in per-chat seq order, across reconnects and server restarts.
 *   The library keeps, per chat, the highest seq up to which the app has
 *   taken everything (messages, gaps, its own accepted sends):
 *   parley_client_cursors(). It resumes from what it has received, and
 *   tells the server "delivered" up to what the app has taken. An app that
 *   persists the cursors and passes them to parley_client_set_cursors()
 *   before the next start gets exactly-once across process restarts too;
 *   without them the server resumes from the delivered acks it has (at
 *   least once: messages taken just before a crash may come again).
 * - Sends: parley_client_send() queues the message with a client message id
 *   (generated, or the app's own) and returns at once. The I/O thread sends
 *   it, and sends it again with the same id after a reconnect until the
 *   server accepts it; the server deduplicates by (device, client id), so a
 *   message is stored once whatever happens to the connection. Messages to
 *   one chat go one at a time, in the order they were queued, so they get
 *   increasing seqs in that order. The outcome is one event per send:
 *   PARLEY_EVENT_SEND_ACCEPTED (with its seq) or PARLEY_EVENT_SEND_FAILED
 *   (a refusal: not a member, blocked, bad per-device payloads with the
 *   devices to add/drop, too large, ...). Transient refusals (the server's
 *   storage unavailable, rate limits with a retry-after) are retried
 *   automatically; nothing else is. Pending sends live in memory: an app
 *   that must survive its own crash persists (chat, client id, payload) and
 *   queues them again with the same client id after restarting.
 * - Receipts, typing and presence are ephemeral: delivered while connected.
 *
 * ---- Errors ----------------------------------------------------------------
 *
 * Functions returning int return PARLEY_OK (0), a gRPC status code from the
 * server (> 0, PARLEY_UNAVAILABLE when it cannot be reached), or a local
 * error (< 0, PARLEY_E_*). When a parley_error_t is passed it receives the
 * code and a message a user can act on. */
#ifndef PARLEY_PARLEY_H
#define PARLEY_PARLEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PARLEY_API __attribute__((visibility("default")))
#else
#define PARLEY_API
#endif

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0
/* "0.1.0" */
PARLEY_API const char *parley_version(void);

/* ---- status codes ---- */

enum {
    PARLEY_OK = 0,
    /* the canonical gRPC codes, as the server sends them */
    PARLEY_CANCELLED = 1,
    PARLEY_UNKNOWN = 2,
    PARLEY_INVALID_ARGUMENT = 3,
    PARLEY_DEADLINE_EXCEEDED = 4,
    PARLEY_NOT_FOUND = 5,
    PARLEY_ALREADY_EXISTS = 6,
    PARLEY_PERMISSION_DENIED = 7,
    PARLEY_RESOURCE_EXHAUSTED = 8,
    PARLEY_FAILED_PRECONDITION = 9,
    PARLEY_ABORTED = 10,
    PARLEY_OUT_OF_RANGE = 11,
    PARLEY_UNIMPLEMENTED = 12,
    PARLEY_INTERNAL = 13,
    PARLEY_UNAVAILABLE = 14,
    PARLEY_DATA_LOSS = 15,
    PARLEY_UNAUTHENTICATED = 16,
    /* local errors */
    PARLEY_E_INVALID = -1, /* a bad argument (the message says which) */
    PARLEY_E_NOMEM = -2,   /* out of memory */
    PARLEY_E_STATE = -3,   /* not possible now: no token yet, already started, from the notify callback... */
    PARLEY_E_FULL = -4,    /* the send queue is full (max_pending_sends / max_pending_bytes) */
};

/* "OK", "UNAVAILABLE", "E_FULL", ... */
PARLEY_API const char *parley_code_name(int code);

typedef struct parley_error {
    int code;
    char message[256];
} parley_error_t;

/* ---- the client ---- */

typedef struct parley_client parley_client_t;

typedef struct parley_options {
    const char *server;      /* "host:port", "[v6addr]:port"; required */
    bool use_tls;            /* TLS 1.2+ with ALPN h2; otherwise cleartext h2c */
    const char *ca_file;     /* PEM roots to trust; NULL: the system's */
    const char *server_name; /* TLS name to verify; default the host */
    bool tls_insecure;       /* no certificate verification (debugging only) */
    /* The device's credentials, from parley_verify() of an earlier run;
     * NULL before registration (parley_verify sets them). */
    const char *token;
    int64_t account_id, device_id; /* informational, returned by the getters */
    const char *user_agent;        /* default "parley-c/VERSION" */
    /* Zero means the default. */
    int connect_timeout_ms;   /* TCP + TLS + HTTP/2, default 5000 */
    int call_timeout_ms;      /* deadline of unary calls, default 15000 */
    int heartbeat_ms;         /* Heartbeat and HTTP/2 PING period, default 20000 */
    int keepalive_timeout_ms; /* PING unanswered this long: reconnect, default 10000 */
    int backoff_initial_ms;   /* first reconnect delay, default 250, doubling ... */
    int backoff_max_ms;       /* ... up to this, default 30000 (each delay jittered to 50-100%) */
    int send_timeout_ms;      /* an unanswered send is sent again after this, default 30000 */
    size_t max_pending_sends; /* sends queued and unanswered, default 10000 ... */
    size_t max_pending_bytes; /* ... and their payload bytes, default 64 MiB (then PARLEY_E_FULL) */
    /* Events waiting for the app before the library stops reading the
     * stream (HTTP/2 flow control then holds the server back; nothing is
     * lost): default 10000 events or 64 MiB of their data. */
    size_t max_queued_events;
    size_t max_queued_bytes;
} parley_options_t;

/* A client for one device. Connects nothing yet. NULL on a bad option or
 * no memory (err says which). */
PARLEY_API parley_client_t *parley_client_new(const parley_options_t *opts, parley_error_t *err);
/* Stops the stream (as parley_client_stop) and frees everything, queued
 * events and pending sends included. */
PARLEY_API void parley_client_free(parley_client_t *c);

/* The device's credentials (0 / NULL before registration). The token is
 * copied into buf (at least 96 bytes) for the app to store safely. */
PARLEY_API int64_t parley_client_account_id(parley_client_t *c);
PARLEY_API int64_t parley_client_device_id(parley_client_t *c);
PARLEY_API int parley_client_token(parley_client_t *c, char *buf, size_t len);

/* ---- registration ---- */

/* Sends a one-time code to phone (E.164, "+15551234567") by SMS.
 * expires_in_ms may be NULL. RESOURCE_EXHAUSTED: asked too often. */
PARLEY_API int parley_request_code(parley_client_t *c, const char *phone, int64_t *expires_in_ms, parley_error_t *err);

typedef struct parley_registration {
    int64_t account_id;
    int64_t device_id;
    char token[96]; /* "authorization: Bearer <token>"; shown once: store it */
    bool is_new_account;
} parley_registration_t;

/* Exchanges the code for a new device of the phone's account (created on
 * first verification) and makes it this client's device. Only while the
 * stream is not started. INVALID_ARGUMENT: wrong code; FAILED_PRECONDITION:
 * expired or too many attempts (request a new code). out may be NULL. */
PARLEY_API int parley_verify(parley_client_t *c, const char *phone, const char *code, const char *device_name,
                             parley_registration_t *out, parley_error_t *err);

/* ---- unary calls (blocking; any thread) ---- */

enum { PARLEY_CHAT_DIRECT = 1, PARLEY_CHAT_GROUP = 2 };
enum { PARLEY_ROLE_MEMBER = 1, PARLEY_ROLE_ADMIN = 2 };

typedef struct parley_member {
    int64_t account_id;
    int role;              /* PARLEY_ROLE_* */
    int64_t joined_seq;    /* the system message that added them */
    int64_t delivered_seq; /* highest seq delivered to one of their devices */
    int64_t read_seq;      /* highest seq they read */
} parley_member_t;

typedef struct parley_chat {
    int64_t chat_id;
    int kind; /* PARLEY_CHAT_* */
    const char *name;
    const char *description;
    bool only_admins_send;
    int64_t last_seq;
    int64_t created_ms;
    int64_t delivered_to_all_seq;
    int64_t read_by_all_seq;
    size_t member_count;
    const parley_member_t *members;
} parley_chat_t;

/* The one-to-one chat with another account, created on first use. */
PARLEY_API int parley_open_direct_chat(parley_client_t *c, int64_t account_id, parley_chat_t **out,
                                       parley_error_t *err);
/* A group with this device's account as admin. Each call carries a fresh
 * client request id, and when its connection turns out dead the library
 * repeats it under that id: one call makes at most one group. */
PARLEY_API int parley_create_group(parley_client_t *c, const char *name, const int64_t *member_ids, size_t count,
                                   parley_chat_t **out, parley_error_t *err);
/* A chat the account is a member of (NOT_FOUND otherwise). */
PARLEY_API int parley_get_chat(parley_client_t *c, int64_t chat_id, parley_chat_t **out, parley_error_t *err);
PARLEY_API void parley_chat_free(parley_chat_t *chat);

typedef struct parley_chat_summary {
    int64_t chat_id;
    int kind;
    char name[130];          /* groups */
    int64_t peer_account_id; /* direct chats */
    int64_t last_seq;
    int64_t unread_count;
    int64_t my_delivered_seq;
    int64_t my_read_seq;
} parley_chat_summary_t;

typedef struct parley_chat_list {
    size_t count;
    parley_chat_summary_t *chats; /* by chat_id */
    bool has_more;                /* then ask again with after_chat_id = the last chat_id */
} parley_chat_list_t;

/* The account's chats after after_chat_id (0: from the start); limit 0: the
 * server's default (250). */
PARLEY_API int parley_list_chats(parley_client_t *c, int64_t after_chat_id, int limit, parley_chat_list_t **out,
                                 parley_error_t *err);
PARLEY_API void parley_chat_list_free(parley_chat_list_t *list);

/* A system message's content (membership and settings changes). */
enum {
    PARLEY_SYSTEM_NONE = 0,
    PARLEY_SYSTEM_CREATED = 1,
    PARLEY_SYSTEM_MEMBERS_ADDED = 2,
    PARLEY_SYSTEM_MEMBER_REMOVED = 3,
    PARLEY_SYSTEM_MEMBER_LEFT = 4,
    PARLEY_SYSTEM_ROLE_CHANGED = 5,
    PARLEY_SYSTEM_SETTINGS_CHANGED = 6,
};

typedef struct parley_system_event {
    int type; /* PARLEY_SYSTEM_* */
    int64_t actor_account_id;
    size_t account_count;
    const int64_t *account_ids;
    int role;
    const char *name;
    const char *description;
    bool only_admins_send;
} parley_system_event_t;

typedef struct parley_message {
    int64_t chat_id;
    int64_t seq;
    int64_t sender_account_id;
    int64_t sender_device_id;
    const char *client_message_id;
    int64_t server_time_ms; /* Unix time of acceptance */
    const char *content_type;
    const uint8_t *payload; /* this device's payload */
    size_t payload_len;
    int64_t reply_to_seq;
    int64_t expires_at_ms;
    /* Per-device payloads that left this device out (it joined later): the
     * message exists, its content is not readable here. */
    bool payload_missing;
    bool is_system; /* then system says what happened; no payload */
    parley_system_event_t system;
} parley_message_t;

typedef struct parley_history {
    size_t count;
    parley_message_t *messages;
    bool has_more;
} parley_history_t;

/* A page of a chat's messages: before_seq > 0: seq < before_seq, newest
 * first; otherwise seq > after_seq, oldest first. limit 1..200, 0: 50. */
PARLEY_API int parley_get_history(parley_client_t *c, int64_t chat_id, int64_t before_seq, int64_t after_seq, int limit,
                                  parley_history_t **out, parley_error_t *err);
PARLEY_API void parley_history_free(parley_history_t *history);

typedef struct parley_account_devices {
    int64_t account_id;
    size_t count;
    const int64_t *device_ids;
} parley_account_devices_t;

typedef struct parley_device_list {
    size_t count;
    parley_account_devices_t *accounts;
} parley_device_list_t;

/* Current device ids of accounts (for per-device payloads). */
PARLEY_API int parley_get_devices(parley_client_t *c, const int64_t *account_ids, size_t count,
                                  parley_device_list_t **out, parley_error_t *err);
PARLEY_API void parley_device_list_free(parley_device_list_t *list);
/* Removes one of the account's devices (its token stops working and its
 * stream ends). */
PARLEY_API int parley_remove_device(parley_client_t *c, int64_t device_id, parley_error_t *err);

typedef struct parley_phone_match {
    char phone_number[24];
    int64_t account_id;
} parley_phone_match_t;

/* Which of these numbers have accounts: fills matches (room for count) and
 * *match_count. Rate-limited by the server. */
PARLEY_API int parley_lookup_phones(parley_client_t *c, const char *const *phones, size_t count,
                                    parley_phone_match_t *matches, size_t *match_count, parley_error_t *err);

typedef struct parley_profile {
    int64_t account_id;
    char display_name[130];
    char about[514];
    char phone_number[24]; /* only in one's own profile */
} parley_profile_t;

/* account_id 0: one's own. */
PARLEY_API int parley_get_profile(parley_client_t *c, int64_t account_id, parley_profile_t *out, parley_error_t *err);
/* Sets the display name and about text; NULL keeps a field as it is (the
 * current profile is read first). */
PARLEY_API int parley_update_profile(parley_client_t *c, const char *display_name, const char *about,
                                     parley_error_t *err);

/* ---- the device stream ---- */

typedef enum parley_state {
    PARLEY_STATE_STOPPED = 0,      /* not started, or stopped by the app */
    PARLEY_STATE_CONNECTING = 1,   /* connecting (first time or again) */
    PARLEY_STATE_CATCHING_UP = 2,  /* stream open; the server sends what was missed */
    PARLEY_STATE_READY = 3,        /* caught up; live */
    PARLEY_STATE_DISCONNECTED = 4, /* lost; retrying in retry_in_ms */
    PARLEY_STATE_AUTH_FAILED = 5,  /* the token was refused (device removed?): stopped for good */
    PARLEY_STATE_REPLACED = 6,     /* another connection of this device took over: stopped */
} parley_state_t;

PARLEY_API const char *parley_state_name(parley_state_t state);

typedef struct parley_cursor {
    int64_t chat_id;
    int64_t seq;
} parley_cursor_t;

/* What the app already has, per chat (cursors saved from an earlier run).
 * Only while stopped. Chats not given resume from the server's record. */
PARLEY_API int parley_client_set_cursors(parley_client_t *c, const parley_cursor_t *cursors, size_t count);
/* Per chat, the highest seq up to which the app has taken every event.
 * Copies up to cap into out; returns how many chats there are. A chat
 * this device has only sent to has no cursor until its first incoming
 * message or gap (where the server starts delivering is not known before). */
PARLEY_API size_t parley_client_cursors(parley_client_t *c, parley_cursor_t *out, size_t cap);

/* Starts the I/O thread (needs a token). PARLEY_E_STATE if running. */
PARLEY_API int parley_client_start(parley_client_t *c);
/* Stops the I/O thread: flushes delivered acks, closes the stream, waits
 * for the thread (at most about connect_timeout_ms). Queued events and
 * pending sends stay; start again to continue. */
PARLEY_API int parley_client_stop(parley_client_t *c);
PARLEY_API parley_state_t parley_client_state(parley_client_t *c);
/* Sends queued and not yet answered. */
PARLEY_API size_t parley_client_pending_sends(parley_client_t *c);

typedef struct parley_send_options {
    const char *content_type;      /* default "text"; up to 64 bytes */
    const char *client_message_id; /* 1-64 bytes, unique per device; NULL: 32 random hex digits */
    int64_t reply_to_seq;
    int64_t expires_in_ms; /* disappearing message; 0: kept for the retention period */
} parley_send_options_t;

/* Queues a message with one payload for every recipient device. Works in
 * any state but AUTH_FAILED/REPLACED (sent once connected). *local_id (may
 * be NULL) names the send in its result event. opts may be NULL. */
PARLEY_API int parley_client_send(parley_client_t *c, int64_t chat_id, const void *payload, size_t len,
                                  const parley_send_options_t *opts, uint64_t *local_id);

typedef struct parley_device_payload {
    int64_t device_id;
    const void *payload;
    size_t len;
} parley_device_payload_t;

/* Queues a message with one payload per recipient device: exactly the
 * current devices of the other members and this account's other devices
 * (else SEND_FAILED with FAILED_PRECONDITION and the mismatch). At most 64. */
PARLEY_API int parley_client_send_per_device(parley_client_t *c, int64_t chat_id,
                                             const parley_device_payload_t *payloads, size_t count,
                                             const parley_send_options_t *opts, uint64_t *local_id);

/* The user is (not) typing in the chat. Ephemeral: PARLEY_UNAVAILABLE when
 * the stream is not open (nothing is queued). */
PARLEY_API int parley_client_set_typing(parley_client_t *c, int64_t chat_id, bool typing);
/* The user read the chat up to seq (sent now or once connected). */
PARLEY_API int parley_client_mark_read(parley_client_t *c, int64_t chat_id, int64_t seq);
/* Presence of these accounts, now and as it changes (kept across reconnects). */
PARLEY_API int parley_client_subscribe_presence(parley_client_t *c, const int64_t *account_ids, size_t count);
PARLEY_API int parley_client_unsubscribe_presence(parley_client_t *c, const int64_t *account_ids, size_t count);

/* ---- events ---- */

typedef enum parley_event_type {
    PARLEY_EVENT_STATE = 1,         /* state */
    PARLEY_EVENT_MESSAGE = 2,       /* message */
    PARLEY_EVENT_SEND_ACCEPTED = 3, /* accepted */
    PARLEY_EVENT_SEND_FAILED = 4,   /* failed */
    PARLEY_EVENT_RECEIPT = 5,       /* receipt */
    PARLEY_EVENT_TYPING = 6,        /* typing */
    PARLEY_EVENT_PRESENCE = 7,      /* presence */
    PARLEY_EVENT_GAP = 8,           /* gap */
    PARLEY_EVENT_ERROR = 9,         /* error */
} parley_event_type_t;

typedef struct parley_event {
    parley_event_type_t type;
    union {
        struct {
            parley_state_t state;
            int code;           /* why (DISCONNECTED, AUTH_FAILED, REPLACED); PARLEY_OK otherwise */
            const char *reason; /* "" when there is none */
            int retry_in_ms;    /* DISCONNECTED: the next attempt */
        } state;
        /* Each (chat_id, seq) once. Messages this device sent itself come as
         * SEND_ACCEPTED instead, except ones sent by an earlier run whose
         * acceptance the app did not take (match them by client_message_id). */
        parley_message_t message;
        struct {
            uint64_t local_id;
            const char *client_message_id;
            int64_t chat_id;
            int64_t seq;
            int64_t server_time_ms;
            bool duplicate; /* a retry of an already stored send: same seq */
        } accepted;
        struct {
            uint64_t local_id;
            const char *client_message_id;
            int64_t chat_id;
            int code; /* PARLEY_PERMISSION_DENIED, PARLEY_FAILED_PRECONDITION, ... */
            const char *message;
            /* FAILED_PRECONDITION on per-device payloads: devices to add
             * (encrypt for them too) and device ids to drop. */
            size_t missing_count;
            const parley_account_devices_t *missing;
            size_t stale_count;
            const int64_t *stale_device_ids;
        } failed;
        struct {
            int64_t chat_id;
            int64_t account_id; /* whose cursors moved */
            int64_t delivered_seq;
            int64_t read_seq;
            int64_t delivered_to_all_seq;
            int64_t read_by_all_seq;
        } receipt;
        struct {
            int64_t chat_id;
            int64_t account_id;
            bool is_typing;
        } typing;
        struct {
            int64_t account_id;
            bool online;
            int64_t last_seen_ms; /* 0: not visible to you, or never seen */
        } presence;
        /* Messages from_seq..to_seq are gone (past retention, expired, or
         * more than the server sends a resuming device). */
        struct {
            int64_t chat_id;
            int64_t from_seq;
            int64_t to_seq;
        } gap;
        /* A refused typing, read or presence request. */
        struct {
            int code;
            const char *message;
            const char *request; /* "typing", "read", "presence" */
            int64_t chat_id;     /* typing and read */
        } error;
    };
} parley_event_t;

/* The next event, waiting up to timeout_ms (0: don't wait, -1: forever);
 * NULL if none came. Taking a message (or gap, or send acceptance) moves
 * the chat's cursor. Free it with parley_event_free. */
PARLEY_API parley_event_t *parley_client_next_event(parley_client_t *c, int timeout_ms);
PARLEY_API void parley_event_free(parley_event_t *ev);

/* A file descriptor that is readable while events are queued (level
 * triggered; owned by the client: do not read or close it). */
PARLEY_API int parley_client_event_fd(parley_client_t *c);

/* fn(c, user) runs on the I/O thread after events were queued; see the
 * threading model above for what it may do. NULL removes it. */
typedef void (*parley_notify_fn)(parley_client_t *c, void *user);
PARLEY_API void parley_client_set_notify(parley_client_t *c, parley_notify_fn fn, void *user);

#ifdef __cplusplus
}
#endif

#endif
