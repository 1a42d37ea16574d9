/* client_util.h — what the messaging tests share: devices registered through
 * Accounts (RequestCode, then Verify with the code from the SMS file), unary
 * calls as a device, Connect streams read with a timeout, and direct looks
 * at the shards to check what the server stored.
 *
 * Runs under tests/harness/with_stack.sh and with_parleyd.py: PARLEY_ADDR_<i>,
 * PARLEY_SMS_FILE, PARLEY_POSTGRES_SERVER and PARLEY_POSTGRES_SHARDS come
 * from the environment.
 *
 * Reading a stream with a timeout: every stream has a channel of its own;
 * a wait pumps it in short slices and takes what arrived with
 * pl_ccall_try_recv. Every event read is recorded on the stream, so a wait
 * for one kind loses none of the others: waits "take" the first matching
 * event not taken yet, and the record stays for checks of order and
 * repeats.
 *
 * Threads: a device, a stream and their channels belong to one thread at a
 * time; the shard helpers are for the main thread only. */
#ifndef PL_TESTS_MESSAGING_CLIENT_UTIL_H
#define PL_TESTS_MESSAGING_CLIENT_UTIL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/channel.h"
#include "parley/v1/accounts.parley.h"
#include "parley/v1/chats.parley.h"
#include "parley/v1/messaging.parley.h"

/* Waits are this long unless a case says otherwise (sanitizer builds on a
 * shared machine are slow). */
#define MT_WAIT_MS 20000

/* Reads the environment and connects to the PostgreSQL servers; exits on
 * failure. */
void mt_init(void);
/* Closes the PostgreSQL connections. */
void mt_fini(void);
/* How many parleyd nodes the harness started (PARLEY_ADDR_<i>). */
int mt_nodes(void);
/* Prints a failure of the test's set-up (not of the server's contract) and
 * exits 1. */
void mt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Monotonic and wall-clock time. */
int64_t mt_now_ms(void);
int64_t mt_wall_ms(void);
void mt_sleep_ms(int ms);

/* ---- devices ---- */

typedef struct mt_dev {
    int64_t account_id, device_id;
    char phone[24];
    char token[96];
    int node;         /* the node its unary calls go to */
    pl_metadata_t md; /* authorization: Bearer <token> */
    pl_channel_t *ch; /* for unary calls */
} mt_dev_t;

/* A fresh phone number. */
void mt_new_phone(char out[24]);
/* Registers a device through RequestCode and Verify on node: a new account
 * if phone is NULL (or new), else another device of phone's account. */
mt_dev_t *mt_register(const char *phone, int node, const char *device_name);
void mt_dev_free(mt_dev_t *d);
/* A device-like handle on node whose calls carry this authorization header
 * (NULL: none), for the authentication tests; ids are 0. */
mt_dev_t *mt_dev_with_header(int node, const char *authorization);

/* The status message of the calling thread's last unary call. */
const char *mt_last_message(void);

/* A unary call as d (md NULL: d's token; else these request headers).
 * trailing, if not NULL, receives a copy of the trailing metadata (the
 * caller disposes it). */
pl_code_t mt_call(mt_dev_t *d, const pl_method_t *m, const void *req, void *resp);
pl_code_t mt_call_md(pl_channel_t *ch, const pl_metadata_t *md, const pl_method_t *m, const void *req, void *resp,
                     pl_metadata_t *trailing);
/* A channel to node (the caller frees it). */
pl_channel_t *mt_channel(int node);

/* Chats: the direct chat with other / a new group of d and members; exits
 * on failure (set-up). */
int64_t mt_open_direct(mt_dev_t *d, int64_t other);
int64_t mt_create_group(mt_dev_t *d, const char *name, const int64_t *members, size_t n);
/* GetChat as d into *out (heap: free it); the call's code. */
pl_code_t mt_get_chat(mt_dev_t *d, int64_t chat, parley_v1_Chat **out);
const parley_v1_Member *mt_member(const parley_v1_Chat *c, int64_t account);

/* Messaging.Send as d with one payload for all. */
pl_code_t mt_unary_send(mt_dev_t *d, int64_t chat, const char *client_id, const void *payload, size_t len,
                        parley_v1_SendResponse *resp);

/* ---- streams ---- */

/* One received ServerEvent, copied out of the client's buffers. */
typedef struct mt_event {
    pb_size_t kind; /* parley_v1_ServerEvent_<kind>_tag */
    uint64_t request_id;
    int64_t at_ms; /* mt_now_ms() when it was read */
    bool is_taken; /* returned by a mt_take* already */
    union {
        parley_v1_Accepted accepted;
        parley_v1_Message message; /* payload and chat_event point into owned */
        parley_v1_Receipt receipt;
        parley_v1_Typing typing;
        parley_v1_Presence presence;
        parley_v1_Gap gap;
        parley_v1_HeartbeatAck heartbeat_ack;
    } u;
    parley_v1_Error *error; /* for error events (heap); device_mismatch points into owned */
    uint8_t *owned;
} mt_event_t;

typedef struct mt_stream {
    mt_dev_t *dev;
    int node;
    pl_channel_t *ch;
    pl_ccall_t *call;
    uint64_t next_request_id;
    mt_event_t **events; /* everything read, in order */
    size_t count, cap;
    bool is_ended;
    pl_code_t code; /* once ended */
    char message[256];
    parley_v1_ServerEvent *rx; /* receive buffer (ServerEvent is large) */
} mt_stream_t;

/* Opens d's Connect stream on node. mt_connect_resume sends a Resume with
 * these cursors first (n may be 0: an empty Resume). */
mt_stream_t *mt_connect(mt_dev_t *d, int node);
mt_stream_t *mt_connect_resume(mt_dev_t *d, int node, const parley_v1_Cursor *cursors, size_t n);
/* Half-closes and waits for the end (the device goes away politely), then
 * frees the connection; the events stay until mt_stream_free. */
void mt_close(mt_stream_t *s);
/* Resets the call and drops the connection (the device vanishes). */
void mt_drop(mt_stream_t *s);
/* Frees an ended stream. */
void mt_stream_free(mt_stream_t *s);
/* mt_close, then mt_stream_free, for each of n streams (a case's end). */
void mt_close_all(mt_stream_t **streams, size_t n);

/* Sends ev (request_id filled in when 0); returns its request id, 0 if the
 * stream has ended. */
uint64_t mt_send_event(mt_stream_t *s, parley_v1_ClientEvent *ev);
/* Sends a message with one payload for all. */
uint64_t mt_send_text(mt_stream_t *s, int64_t chat, const char *client_id, const void *payload, size_t len);
uint64_t mt_send_cursor(mt_stream_t *s, int64_t chat, int64_t seq, bool is_read);
uint64_t mt_send_typing(mt_stream_t *s, int64_t chat, bool typing);
uint64_t mt_send_presence(mt_stream_t *s, const int64_t *accounts, size_t n, bool subscribe);

/* Reads for up to ms (records events; stops early if the stream ends). */
void mt_pump(mt_stream_t *s, int ms);

typedef bool (*mt_match_fn)(const mt_event_t *e, const void *arg);
/* The first event not taken yet that matches (reading up to timeout_ms for
 * it); marks it taken. NULL on timeout or when the stream ended first. */
mt_event_t *mt_take(mt_stream_t *s, int timeout_ms, mt_match_fn match, const void *arg);
/* Same, any event of this kind. */
mt_event_t *mt_take_kind(mt_stream_t *s, pb_size_t kind, int timeout_ms);
/* The Accepted or Error answering request_id. */
mt_event_t *mt_answer(mt_stream_t *s, uint64_t request_id, int timeout_ms);
/* Ready; false on timeout or end. */
bool mt_wait_ready(mt_stream_t *s, int timeout_ms);
/* The first arrival of message (chat, seq), taken or not; NULL on timeout. */
const parley_v1_Message *mt_wait_message(mt_stream_t *s, int64_t chat, int64_t seq, int timeout_ms);
/* Waits until every seq of chat in [from, to] has arrived; false on timeout. */
bool mt_wait_messages(mt_stream_t *s, int64_t chat, int64_t from, int64_t to, int timeout_ms);
/* Waits for the end of the stream; false on timeout. */
bool mt_wait_end(mt_stream_t *s, int timeout_ms);

/* How often message (chat, seq) arrived on this stream. */
int mt_count_message(const mt_stream_t *s, int64_t chat, int64_t seq);
/* The seqs of chat's messages in arrival order (heap: free); *n of them. */
int64_t *mt_message_seqs(const mt_stream_t *s, int64_t chat, size_t *n);
/* Index of the first event of kind (from start), or -1. */
long mt_index_of_kind(const mt_stream_t *s, pb_size_t kind, size_t start);
/* The first (chat, seq) that arrived twice on this stream, if any. */
bool mt_find_repeat(const mt_stream_t *s, int64_t *chat, int64_t *seq);

/* ---- the shards ---- */

int mt_shards(void);
static inline int mt_shard_of(int64_t id)
{
    return (int)(((uint64_t)id >> 12) & 1023);
}
/* Runs sql ("{s}": the shard's schema) with text parameters on the shard's
 * server; exits on error. The caller PQclear()s. */
PGresult *mt_sql(int shard, const char *sql, int nparams, const char *const *params);
/* A one-value query (NULL: -1). */
int64_t mt_sql_int(int shard, const char *sql, int nparams, const char *const *params);
/* Rows in every table of every shard schema on every server, as
 * "server/schema.table=count" lines (heap: free). */
char *mt_row_counts(void);
/* A well-formed id on shard that no node makes (node bits 31). */
int64_t mt_unused_id(int shard);

/* tools/stack with args (e.g. "redis-stop") on this test's stack. */
int mt_stack(const char *args);

#endif
