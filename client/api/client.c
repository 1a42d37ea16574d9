/* client.c — the parley_client_t object: options, credentials, cursors, and
 * the app's side of the stream (queueing sends, reads, typing, presence
 * for the I/O thread, which io_thread.c runs). */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "api/client_impl.h"
#include "api/random_id.h"
#include "api/unary.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_CALL_TIMEOUT_MS 15000
#define DEFAULT_HEARTBEAT_MS 20000
#define DEFAULT_KEEPALIVE_TIMEOUT_MS 10000
#define DEFAULT_BACKOFF_INITIAL_MS 250
#define DEFAULT_BACKOFF_MAX_MS 30000
#define DEFAULT_SEND_TIMEOUT_MS 30000
#define DEFAULT_MAX_PENDING_SENDS 10000
#define DEFAULT_MAX_PENDING_BYTES (64u << 20)
#define DEFAULT_MAX_QUEUED_EVENTS 10000
#define DEFAULT_MAX_QUEUED_BYTES (64u << 20)
/* The server takes request messages up to 4 MiB by default: a bigger one
 * would end the stream, again after every reconnect. */
#define MAX_MESSAGE_BYTES ((4u << 20) - (16u << 10))

const char *parley_version(void)
{
    return "0.1.0";
}

const char *parley_code_name(int code)
{
    static const char *const grpc[] = {
        "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"};
    if (code >= 0 && code <= PARLEY_UNAUTHENTICATED)
        return grpc[code];
    switch (code) {
    case PARLEY_E_INVALID: return "E_INVALID";
    case PARLEY_E_NOMEM: return "E_NOMEM";
    case PARLEY_E_STATE: return "E_STATE";
    case PARLEY_E_FULL: return "E_FULL";
    default: return "UNKNOWN_CODE";
    }
}

const char *parley_state_name(parley_state_t state)
{
    switch (state) {
    case PARLEY_STATE_STOPPED: return "stopped";
    case PARLEY_STATE_CONNECTING: return "connecting";
    case PARLEY_STATE_CATCHING_UP: return "catching up";
    case PARLEY_STATE_READY: return "ready";
    case PARLEY_STATE_DISCONNECTED: return "disconnected";
    case PARLEY_STATE_AUTH_FAILED: return "auth failed";
    case PARLEY_STATE_REPLACED: return "replaced";
    }
    return "?";
}

void pl_client_error(parley_error_t *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

void pl_client_wake(parley_client_t *c)
{
    if (c->is_wake_pending || c->wake_fd < 0)
        return;
    c->is_wake_pending = true;
    uint64_t one = 1;
    while (write(c->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* ---- new / free ---- */

/* "host:port" or "[v6]:port" into c->host and c->port. */
static int parse_server(parley_client_t *c, const char *server, parley_error_t *err)
{
    const char *host = server, *colon;
    size_t host_len;
    if (server[0] == '[') {
        const char *close = strchr(server, ']');
        if (!close || close[1] != ':') {
            pl_client_error(err, PARLEY_E_INVALID, "server \"%s\": expected [address]:port", server);
            return -1;
        }
        host = server + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(server, ':');
        if (!colon || colon == server) {
            pl_client_error(err, PARLEY_E_INVALID, "server \"%s\": expected host:port", server);
            return -1;
        }
        host_len = (size_t)(colon - server);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port <= 0 || port > 65535) {
        pl_client_error(err, PARLEY_E_INVALID, "server \"%s\": bad port", server);
        return -1;
    }
    c->host = strndup(host, host_len);
    c->port = (uint16_t)port;
    return c->host ? 0 : -1;
}

static char *dup_opt(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static int positive_or(int v, int dflt)
{
    return v > 0 ? v : dflt;
}

parley_client_t *parley_client_new(const parley_options_t *o, parley_error_t *err)
{
    if (!o || !o->server || !*o->server) {
        pl_client_error(err, PARLEY_E_INVALID, "options.server (host:port) is required");
        return NULL;
    }
    if (o->token && strlen(o->token) >= PL_TOKEN_MAX) {
        pl_client_error(err, PARLEY_E_INVALID, "options.token is longer than %d bytes", PL_TOKEN_MAX - 1);
        return NULL;
    }
    parley_client_t *c = calloc(1, sizeof(*c));
    if (!c) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return NULL;
    }
    c->wake_fd = c->event_fd = -1;
    if (parse_server(c, o->server, err) != 0) {
        free(c->host);
        free(c);
        return NULL;
    }
    bool failed = false;
    c->use_tls = o->use_tls;
    c->tls_insecure = o->tls_insecure;
    c->ca_file = dup_opt(o->ca_file, &failed);
    c->server_name = dup_opt(o->server_name, &failed);
    c->user_agent = dup_opt(o->user_agent ? o->user_agent : "parley-c/0.1.0", &failed);
    c->connect_timeout_ms = positive_or(o->connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT_MS);
    c->call_timeout_ms = positive_or(o->call_timeout_ms, DEFAULT_CALL_TIMEOUT_MS);
    c->heartbeat_ms = positive_or(o->heartbeat_ms, DEFAULT_HEARTBEAT_MS);
    c->keepalive_timeout_ms = positive_or(o->keepalive_timeout_ms, DEFAULT_KEEPALIVE_TIMEOUT_MS);
    c->backoff_initial_ms = positive_or(o->backoff_initial_ms, DEFAULT_BACKOFF_INITIAL_MS);
    c->backoff_max_ms = positive_or(o->backoff_max_ms, DEFAULT_BACKOFF_MAX_MS);
    if (c->backoff_max_ms < c->backoff_initial_ms)
        c->backoff_max_ms = c->backoff_initial_ms;
    c->send_timeout_ms = positive_or(o->send_timeout_ms, DEFAULT_SEND_TIMEOUT_MS);
    c->max_pending_sends = o->max_pending_sends ? o->max_pending_sends : DEFAULT_MAX_PENDING_SENDS;
    c->max_pending_bytes = o->max_pending_bytes ? o->max_pending_bytes : DEFAULT_MAX_PENDING_BYTES;
    c->max_queued_events = o->max_queued_events ? o->max_queued_events : DEFAULT_MAX_QUEUED_EVENTS;
    c->max_queued_bytes = o->max_queued_bytes ? o->max_queued_bytes : DEFAULT_MAX_QUEUED_BYTES;
    if (o->token)
        snprintf(c->token, sizeof(c->token), "%s", o->token);
    c->account_id = o->account_id;
    c->device_id = o->device_id;
    c->next_local_id = 1;
    c->state = PARLEY_STATE_STOPPED;

    pthread_condattr_t ca;
    bool cond_ok = pthread_condattr_init(&ca) == 0 && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                   pthread_cond_init(&c->ev_cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (failed || !cond_ok || c->wake_fd < 0 || c->event_fd < 0 || pthread_mutex_init(&c->mu, NULL) != 0 ||
        pthread_mutex_init(&c->pool_mu, NULL) != 0 || pthread_mutex_init(&c->life_mu, NULL) != 0) {
        pl_client_error(err, PARLEY_E_NOMEM, "cannot create the client: %s",
                        failed ? "out of memory" : strerror(errno));
        /* partial: the fields that exist are released, the mutexes are plain memory */
        if (c->wake_fd >= 0)
            close(c->wake_fd);
        if (c->event_fd >= 0)
            close(c->event_fd);
        if (cond_ok)
            pthread_cond_destroy(&c->ev_cond);
        free(c->host);
        free(c->ca_file);
        free(c->server_name);
        free(c->user_agent);
        free(c);
        return NULL;
    }
    return c;
}

void parley_client_free(parley_client_t *c)
{
    if (!c)
        return;
    pl_io_thread_stop(c);
    pl_unary_pool_clear(c);
    pl_outbox_clear(c);
    pl_events_clear(c);
    pl_chatmap_dispose(&c->chats);
    free(c->dirty);
    free(c->presence);
    free(c->presence_ops);
    close(c->wake_fd);
    close(c->event_fd);
    pthread_cond_destroy(&c->ev_cond);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->pool_mu);
    pthread_mutex_destroy(&c->life_mu);
    free(c->host);
    free(c->ca_file);
    free(c->server_name);
    free(c->user_agent);
    /* the token does not linger in freed memory */
    memset(c->token, 0, sizeof(c->token));
    free(c);
}

/* ---- credentials ---- */

int64_t parley_client_account_id(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t id = c->account_id;
    pthread_mutex_unlock(&c->mu);
    return id;
}

int64_t parley_client_device_id(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    int64_t id = c->device_id;
    pthread_mutex_unlock(&c->mu);
    return id;
}

int parley_client_token(parley_client_t *c, char *buf, size_t len)
{
    if (!buf || !len)
        return PARLEY_E_INVALID;
    pthread_mutex_lock(&c->mu);
    size_t n = strlen(c->token);
    int rc = n < len ? PARLEY_OK : PARLEY_E_INVALID;
    if (rc == PARLEY_OK)
        memcpy(buf, c->token, n + 1);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- state and cursors ---- */

parley_state_t parley_client_state(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    parley_state_t s = c->state;
    pthread_mutex_unlock(&c->mu);
    return s;
}

size_t parley_client_pending_sends(parley_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->outbox.count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

int parley_client_set_cursors(parley_client_t *c, const parley_cursor_t *cursors, size_t count)
{
    if (count && !cursors)
        return PARLEY_E_INVALID;
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    if (c->is_running)
        rc = PARLEY_E_STATE;
    for (size_t i = 0; rc == PARLEY_OK && i < count; i++) {
        if (cursors[i].chat_id <= 0 || cursors[i].seq < 0) {
            rc = PARLEY_E_INVALID;
            break;
        }
        pl_chat_t *ch = pl_chat_get(&c->chats, cursors[i].chat_id, true);
        if (!ch) {
            rc = PARLEY_E_NOMEM;
            break;
        }
        pl_seqtrack_dispose(&ch->recv);
        pl_seqtrack_dispose(&ch->taken);
        pl_seqtrack_init(&ch->recv, cursors[i].seq);
        pl_seqtrack_init(&ch->taken, cursors[i].seq);
        ch->ack_sent = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

size_t parley_client_cursors(parley_client_t *c, parley_cursor_t *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->chats.cap; i++) {
        pl_chat_t *ch = c->chats.slots[i].value;
        int64_t seq = ch ? pl_seqtrack_cursor(&ch->taken) : 0;
        if (seq <= 0)
            continue;
        if (out && n < cap)
            out[n] = (parley_cursor_t){ch->chat_id, seq};
        n++;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

int parley_client_start(parley_client_t *c)
{
    return pl_io_thread_start(c);
}

int parley_client_stop(parley_client_t *c)
{
    return pl_io_thread_stop(c);
}

/* ---- sending ---- */

static bool is_terminal(parley_state_t s)
{
    return s == PARLEY_STATE_AUTH_FAILED || s == PARLEY_STATE_REPLACED;
}

static void send_free(pl_send_t *s)
{
    if (!s)
        return;
    free(s->payload);
    for (size_t i = 0; i < s->per_device_count; i++)
        free(s->per_device[i].data);
    free(s->per_device);
    free(s);
}

/* A send with its options checked and copied; NULL and *rc on a problem. */
static pl_send_t *send_new(int64_t chat_id, const parley_send_options_t *opts, int *rc)
{
    *rc = PARLEY_E_INVALID;
    if (chat_id <= 0)
        return NULL;
    const char *ct = opts && opts->content_type ? opts->content_type : "text";
    const char *cid = opts ? opts->client_message_id : NULL;
    if (strlen(ct) > PL_CONTENT_TYPE_MAX || (cid && (!*cid || strlen(cid) > PL_CLIENT_ID_MAX)))
        return NULL;
    if (opts && (opts->reply_to_seq < 0 || opts->expires_in_ms < 0))
        return NULL;
    pl_send_t *s = calloc(1, sizeof(*s));
    if (!s) {
        *rc = PARLEY_E_NOMEM;
        return NULL;
    }
    s->chat_id = chat_id;
    snprintf(s->content_type, sizeof(s->content_type), "%s", ct);
    if (cid) {
        snprintf(s->client_id, sizeof(s->client_id), "%s", cid);
    } else if (pl_random_id(s->client_id) != 0) {
        free(s);
        *rc = PARLEY_E_NOMEM;
        return NULL;
    }
    if (opts) {
        s->reply_to_seq = opts->reply_to_seq;
        s->expires_in_ms = opts->expires_in_ms;
    }
    *rc = PARLEY_OK;
    return s;
}

/* Appends s to the outbox (or frees it on refusal). */
static int enqueue(parley_client_t *c, pl_send_t *s, uint64_t *local_id)
{
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    if (is_terminal(c->state))
        rc = PARLEY_E_STATE;
    else if (c->outbox.count >= c->max_pending_sends || c->send_bytes + s->bytes > c->max_pending_bytes)
        rc = PARLEY_E_FULL;
    else if (!(s->chat = pl_chat_get(&c->chats, s->chat_id, true)))
        rc = PARLEY_E_NOMEM;
    if (rc != PARLEY_OK) {
        pthread_mutex_unlock(&c->mu);
        send_free(s);
        return rc;
    }
    s->local_id = c->next_local_id++;
    pl_list_push(&c->outbox, &s->link);
    c->send_bytes += s->bytes;
    if (s->chat->pending++ == 0)
        c->send_chats++;
    c->is_outbox_dirty = true;
    if (local_id)
        *local_id = s->local_id;
    if (c->is_running)
        pl_client_wake(c);
    pthread_mutex_unlock(&c->mu);
    return PARLEY_OK;
}

int parley_client_send(parley_client_t *c, int64_t chat_id, const void *payload, size_t len,
                       const parley_send_options_t *opts, uint64_t *local_id)
{
    if ((len && !payload) || len > MAX_MESSAGE_BYTES)
        return PARLEY_E_INVALID;
    int rc;
    pl_send_t *s = send_new(chat_id, opts, &rc);
    if (!s)
        return rc;
    if (len) {
        s->payload = malloc(len);
        if (!s->payload) {
            send_free(s);
            return PARLEY_E_NOMEM;
        }
        memcpy(s->payload, payload, len);
        s->payload_len = len;
    }
    s->bytes = len;
    return enqueue(c, s, local_id);
}

int parley_client_send_per_device(parley_client_t *c, int64_t chat_id, const parley_device_payload_t *payloads,
                                  size_t count, const parley_send_options_t *opts, uint64_t *local_id)
{
    if (!count || count > PL_MAX_PAYLOADS || !payloads)
        return PARLEY_E_INVALID;
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        if ((payloads[i].len && !payloads[i].payload) || payloads[i].device_id <= 0)
            return PARLEY_E_INVALID;
        total += payloads[i].len + 16;
    }
    if (total > MAX_MESSAGE_BYTES)
        return PARLEY_E_INVALID;
    int rc;
    pl_send_t *s = send_new(chat_id, opts, &rc);
    if (!s)
        return rc;
    s->per_device = calloc(count, sizeof(*s->per_device));
    if (!s->per_device) {
        send_free(s);
        return PARLEY_E_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        pl_payload_t *p = &s->per_device[i];
        p->device_id = payloads[i].device_id;
        if (payloads[i].len) {
            p->data = malloc(payloads[i].len);
            if (!p->data) {
                s->per_device_count = i;
                send_free(s);
                return PARLEY_E_NOMEM;
            }
            memcpy(p->data, payloads[i].payload, payloads[i].len);
            p->len = payloads[i].len;
        }
        s->per_device_count = i + 1;
        s->bytes += payloads[i].len;
    }
    return enqueue(c, s, local_id);
}

/* ---- outbox bookkeeping (mu held; the I/O thread's side is io_thread.c) ---- */

void pl_outbox_set_inflight(parley_client_t *c, pl_send_t *s, bool on)
{
    if (on && s->state != PL_SEND_INFLIGHT) {
        if (c->inflight_count < PL_MAX_INFLIGHT)
            c->inflight[c->inflight_count++] = s;
        s->state = PL_SEND_INFLIGHT;
        s->chat->inflight = s;
    } else if (!on && s->state == PL_SEND_INFLIGHT) {
        for (size_t i = 0; i < c->inflight_count; i++)
            if (c->inflight[i] == s) {
                c->inflight[i] = c->inflight[--c->inflight_count];
                break;
            }
        s->state = PL_SEND_QUEUED;
        if (s->chat->inflight == s)
            s->chat->inflight = NULL;
    }
}

void pl_outbox_remove(parley_client_t *c, pl_send_t *s)
{
    pl_outbox_set_inflight(c, s, false);
    pl_list_remove(&c->outbox, &s->link);
    c->send_bytes -= s->bytes;
    if (--s->chat->pending == 0)
        c->send_chats--;
    c->is_outbox_dirty = true;
    send_free(s);
}

pl_send_t *pl_outbox_by_request(parley_client_t *c, uint64_t request_id)
{
    for (size_t i = 0; i < c->inflight_count; i++)
        if (c->inflight[i]->request_id == request_id)
            return c->inflight[i];
    return NULL;
}

pl_send_t *pl_outbox_by_client_id(parley_client_t *c, int64_t chat_id, const char *client_id)
{
    for (pl_list_node_t *n = c->outbox.head; n; n = n->next) {
        pl_send_t *s = pl_list_entry(n, pl_send_t, link);
        if (s->chat_id == chat_id && strcmp(s->client_id, client_id) == 0)
            return s;
    }
    return NULL;
}

void pl_outbox_requeue_inflight(parley_client_t *c)
{
    while (c->inflight_count)
        pl_outbox_set_inflight(c, c->inflight[c->inflight_count - 1], false);
    c->is_outbox_dirty = true;
}

void pl_outbox_clear(parley_client_t *c)
{
    pl_list_node_t *n;
    while ((n = pl_list_shift(&c->outbox))) {
        pl_send_t *s = pl_list_entry(n, pl_send_t, link);
        s->chat->pending = 0;
        send_free(s);
    }
    c->send_chats = 0;
    c->send_bytes = 0;
    c->inflight_count = 0;
}

/* ---- reads, typing, presence ---- */

int parley_client_set_typing(parley_client_t *c, int64_t chat_id, bool typing)
{
    if (chat_id <= 0)
        return PARLEY_E_INVALID;
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    pl_chat_t *ch = NULL;
    if (!c->is_stream_open)
        rc = PARLEY_UNAVAILABLE;
    else if (!(ch = pl_chat_get(&c->chats, chat_id, true)))
        rc = PARLEY_E_NOMEM;
    if (ch) {
        ch->typing_want = typing ? 1 : 0;
        pl_chat_mark_dirty(c, ch);
        pl_client_wake(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int parley_client_mark_read(parley_client_t *c, int64_t chat_id, int64_t seq)
{
    if (chat_id <= 0 || seq < 0)
        return PARLEY_E_INVALID;
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    pl_chat_t *ch = pl_chat_get(&c->chats, chat_id, true);
    if (!ch) {
        rc = PARLEY_E_NOMEM;
    } else if (seq > ch->read_want) {
        ch->read_want = seq;
        pl_chat_mark_dirty(c, ch);
        if (c->is_running)
            pl_client_wake(c);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static bool set_has(const parley_client_t *c, int64_t id)
{
    for (size_t i = 0; i < c->presence_count; i++)
        if (c->presence[i] == id)
            return true;
    return false;
}

static int presence_change(parley_client_t *c, const int64_t *ids, size_t count, bool subscribe)
{
    if (count && !ids)
        return PARLEY_E_INVALID;
    for (size_t i = 0; i < count; i++)
        if (ids[i] <= 0)
            return PARLEY_E_INVALID;
    pthread_mutex_lock(&c->mu);
    int rc = PARLEY_OK;
    /* room for the worst case first, so that a change is all or nothing */
    if (subscribe && c->presence_count + count > PL_PRESENCE_MAX) {
        rc = PARLEY_E_FULL;
    } else {
        int64_t *set = realloc(c->presence, (c->presence_count + count + 1) * sizeof(*set));
        if (set)
            c->presence = set;
        int64_t *ops = realloc(c->presence_ops, (c->presence_op_count + count + 1) * sizeof(*ops));
        if (ops)
            c->presence_ops = ops;
        if (!set || !ops)
            rc = PARLEY_E_NOMEM;
    }
    for (size_t i = 0; rc == PARLEY_OK && i < count; i++) {
        bool has = set_has(c, ids[i]);
        if (subscribe && !has) {
            c->presence[c->presence_count++] = ids[i];
        } else if (!subscribe && has) {
            for (size_t j = 0; j < c->presence_count; j++)
                if (c->presence[j] == ids[i]) {
                    c->presence[j] = c->presence[--c->presence_count];
                    break;
                }
        } else if (!subscribe) {
            continue;
        }
        if (c->is_stream_open)
            c->presence_ops[c->presence_op_count++] = subscribe ? ids[i] : -ids[i];
    }
    if (rc == PARLEY_OK && c->presence_op_count)
        pl_client_wake(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int parley_client_subscribe_presence(parley_client_t *c, const int64_t *account_ids, size_t count)
{
    return presence_change(c, account_ids, count, true);
}

int parley_client_unsubscribe_presence(parley_client_t *c, const int64_t *account_ids, size_t count)
{
    return presence_change(c, account_ids, count, false);
}
