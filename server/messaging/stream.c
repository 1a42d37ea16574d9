/* stream.c — one device's Connect stream: authentication, taking over from
 * an older stream of the device, the route in Redis, loading what the
 * device has seen, dispatching client events, and tearing down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/auth.h"
#include "app/log.h"
#include "cache/routes.h"
#include "messaging/messaging_internal.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/errors.h"

static uint64_t new_epoch(pl_messaging_t *m)
{
    /* time-ordered across nodes, strictly increasing on this one */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t last = atomic_load_explicit(&m->epoch_counter, memory_order_relaxed), next;
    do
        next = now > last ? now : last + 1;
    while (!atomic_compare_exchange_weak_explicit(&m->epoch_counter, &last, next, memory_order_relaxed,
                                                  memory_order_relaxed));
    return next;
}

bool pl_stream_emit(pl_stream_t *s, const parley_v1_ServerEvent *ev)
{
    if (s->is_closing)
        return false;
    return parley_v1_Messaging_Connect_write(s->call, ev) == 0;
}

void pl_stream_error(pl_stream_t *s, uint64_t request_id, pl_code_t code, const char *message,
                     const char *client_message_id, int64_t retry_after_ms, const parley_v1_DeviceMismatch *mismatch)
{
    parley_v1_ServerEvent ev = {0};
    ev.request_id = request_id;
    ev.which_event = parley_v1_ServerEvent_error_tag;
    ev.event.error.code = (int32_t)code;
    snprintf(ev.event.error.message, sizeof(ev.event.error.message), "%s", message);
    if (client_message_id)
        snprintf(ev.event.error.client_message_id, sizeof(ev.event.error.client_message_id), "%s", client_message_id);
    ev.event.error.retry_after_ms = retry_after_ms;
    uint8_t *encoded = NULL;
    if (mismatch) {
        long n = pl_pb_encoded_size(parley_v1_DeviceMismatch_fields, mismatch);
        encoded = n > 0 ? malloc((size_t)n) : NULL;
        if (encoded && pl_pb_encode(parley_v1_DeviceMismatch_fields, mismatch, encoded, (size_t)n) == 0)
            ev.event.error.device_mismatch = pl_bytes_of(encoded, (size_t)n);
    }
    /* an error that cannot be queued is dropped: the client's request
     * times out and it retries, as it would after a lost connection */
    pl_stream_emit(s, &ev);
    free(encoded);
}

static void on_invalid(pl_call_t *call, const uint8_t *payload, size_t len, pl_code_t code, const char *why,
                       void *user);

/* ---- teardown ---- */

static void on_route_gone(pl_code_t code, const char *message, bool removed, void *user)
{
    (void)code;
    (void)message;
    (void)removed;
    (void)user;
}

/* Everything a stream registered elsewhere goes; idempotent. */
static void stream_teardown(pl_stream_t *s)
{
    if (s->is_closing)
        return;
    s->is_closing = true;
    pl_msg_worker_t *mw = s->mw;
    bool was_registered = s->is_registered;
    pl_registry_remove(mw, s);
    pl_typing_stop_all(s);
    pl_presence_stream_gone(s);
    if (!was_registered)
        return;
    pl_presence_offline(s);
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    pl_cache_route_t route = {s->account_id, s->device_id, mw->m->app->cfg->node_id, s->epoch};
    if (r)
        pl_cache_route_del(r, &route, on_route_gone, NULL);
}

void pl_stream_end(pl_stream_t *s, pl_code_t code, const char *message)
{
    stream_teardown(s);
    pl_call_finish(s->call, code, message);
}

static void stream_free(void *user)
{
    pl_stream_t *s = user;
    stream_teardown(s); /* normally done already */
    pl_deliver_dispose(s);
    free(s->early_resume);
    pl_idmap_dispose(&s->presence_subs);
    free(s);
}

static void on_cancel(pl_call_t *call, void *user)
{
    (void)call;
    stream_teardown(user);
}

static void on_writable(pl_call_t *call, void *user)
{
    (void)call;
    pl_stream_t *s = user;
    if (s->wants_writable) {
        s->wants_writable = false;
        pl_deliver_kick(s);
    }
}

/* ---- loading what the device has seen ---- */

/* A Resume cursor that came before the stream knew the device's chats. */
struct early_cursor {
    int64_t chat_id, seq;
    uint64_t request_id;
};

/* The client's word for one chat, within what the server knows: a chat that
 * is not the device's, or a seq past the chat's end, is answered with an
 * Error and never believed (a cursor too far would skip messages). */
static void resume_chat(pl_stream_t *s, uint64_t request_id, int64_t chat_id, int64_t seq)
{
    char msg[160];
    chat_state_t *cs = pl_deliver_chat(s, chat_id, false);
    if (!cs || !cs->is_account_chat) {
        snprintf(msg, sizeof(msg), "resume: chat %lld is not a chat of this account", (long long)chat_id);
        pl_stream_error(s, request_id, PL_CODE_NOT_FOUND, msg, NULL, 0, NULL);
        return;
    }
    int64_t applied = pl_deliver_resume_at(s, cs, seq);
    if (applied < seq) {
        snprintf(msg, sizeof(msg), "resume: chat %lld has no seq %lld (its last is %lld); resuming after %lld",
                 (long long)chat_id, (long long)seq, (long long)applied, (long long)applied);
        pl_stream_error(s, request_id, PL_CODE_OUT_OF_RANGE, msg, NULL, 0, NULL);
    }
}

/* The stream being loaded: an operation on its call (app/op.h). */
static pl_stream_t *loading(const pl_op_t *op)
{
    return *(pl_stream_t **)op->state;
}

static void loaded(pl_op_t *op)
{
    pl_stream_t *s = loading(op);
    if (s->is_closing)
        return;
    s->is_loaded = true;
    /* a Resume that came early: the client's word wins for its chats, all of
     * them applied before any catch-up starts (a fetch started from the
     * stored cursor would be overtaken by the client's) */
    for (size_t i = 0; i < s->early_resume_count; i++) {
        const struct early_cursor *c = &s->early_resume[i];
        resume_chat(s, c->request_id, c->chat_id, c->seq);
    }
    free(s->early_resume);
    s->early_resume = NULL;
    s->early_resume_count = 0;
    pl_deliver_kick(s);
}

static void on_last_seqs(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)op;
    pl_stream_t *s = arg;
    for (int i = 0; !s->is_closing && i < PQntuples(r->res); i++) {
        int64_t chat = pl_pg_get_int64(r->res, i, 0), last = pl_pg_get_int64(r->res, i, 1);
        chat_state_t *cs = pl_deliver_chat(s, chat, false);
        if (!cs)
            continue;
        pl_deliver_exists(cs, last);
        /* a stored cursor past the chat's end (written before acks were
         * clamped) would hide the chat's next messages */
        if (cs->upto > last)
            cs->upto = last;
        if (cs->acked > last)
            cs->acked = last;
        pl_deliver_hint(s, chat, last);
    }
}

/* Asks every chat's shard for its last seq, one query per shard. */
static void query_last_seqs(pl_op_t *op)
{
    pl_stream_t *s = loading(op);
    pl_messaging_t *m = s->mw->m;
    int64_t *ids = pl_op_alloc(op, sizeof(*ids) * (s->chats.count ? s->chats.count : 1));
    if (!ids) {
        pl_op_fail_nomem(op);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->chats.cap; i++)
        if (s->chats.slots[i].key)
            ids[n++] = s->chats.slots[i].key;
    pl_scatter_t sc = {.stmt = pl_msg_stmt(m, ST_LAST_SEQS), .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    if (n)
        pl_op_scatter(op, &sc, on_last_seqs, s, "last seqs");
    pl_op_then(op, loaded);
}

static void on_chats_loaded(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)op;
    pl_stream_t *s = arg;
    for (int i = 0; !s->is_closing && i < PQntuples(r->res); i++) {
        int64_t chat = pl_pg_get_int64(r->res, i, 0), joined = pl_pg_get_int64(r->res, i, 1);
        int64_t cursor = pl_pg_get_int64(r->res, i, 3);
        chat_state_t *cs = pl_deliver_chat(s, chat, true);
        if (!cs)
            continue;
        int64_t start = joined > 0 ? joined - 1 : 0;
        cs->upto = cursor > start ? cursor : start;
        cs->acked = cursor > 0 ? cursor : 0;
        cs->is_capped = cursor < 0; /* a device new to the chat gets at most the last N */
    }
}

static void load_chats(pl_op_t *op)
{
    pl_stream_t *s = loading(op);
    pl_messaging_t *m = s->mw->m;
    uint8_t a[8], d[8];
    pl_pg_param_t p[2] = {pl_pg_int8(a, s->account_id), pl_pg_int8(d, s->device_id)};
    pl_op_query(op, pl_msg_stmt(m, ST_LOAD_CHATS), pl_id_shard(s->account_id), p, 2, PL_PG_IDEMPOTENT, NULL, 0,
                on_chats_loaded, s, "load chats");
    pl_op_then(op, query_last_seqs);
    pl_store_exec(pl_app_store(m->app, s->mw->w), pl_msg_stmt(m, ST_TOUCH_DEVICE), pl_id_shard(s->device_id), p + 1, 1,
                  PL_PG_WRITE | PL_PG_IDEMPOTENT, 0, NULL, NULL);
}

static void load_failed(pl_op_t *op, pl_code_t code, const char *message)
{
    (void)code;
    pl_stream_t *s = loading(op);
    pl_log_warn("stream: loading device %lld: %s", (long long)s->device_id, message);
    pl_stream_end(s, PL_CODE_UNAVAILABLE, "storage temporarily unavailable; reconnect");
}

static void start_load(pl_stream_t *s)
{
    pl_op_t *op = pl_op_try_new(s->mw->m->app, s->call, "stream", sizeof(s));
    if (!op) {
        pl_stream_end(s, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *(pl_stream_t **)op->state = s;
    pl_op_on_error(op, load_failed);
    pl_op_run(op, &(pl_principal_t){s->account_id, s->device_id}, load_chats);
}

/* The route is registered (or Redis is down, and other nodes will not
 * route to us until it is back: our streams then resync). Only now read
 * what was missed, so that nothing committed later can miss us. */
static void on_route_put(pl_code_t code, const char *message, void *user)
{
    pl_stream_t *s = user;
    if (code != PL_CODE_OK)
        pl_log_debug("stream: route put for device %lld: %s", (long long)s->device_id, message);
    if (!s->is_closing)
        start_load(s);
    pl_call_unref(s->call);
}

static void on_authed(pl_call_t *call, const pl_principal_t *who, void *user)
{
    pl_messaging_t *m = user;
    pl_msg_worker_t *mw = pl_msg_worker(m, pl_call_worker(call));
    pl_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    s->call = call;
    s->mw = mw;
    s->account_id = who->account_id;
    s->device_id = who->device_id;
    s->epoch = new_epoch(m);
    s->send_refill_usec = s->typing_refill_usec = pl_now_usec();
    s->send_tokens = m->app->cfg->sends_burst;
    s->typing_tokens = m->app->cfg->typing_per_second;
    pl_call_set_user(call, s, stream_free);
    pl_call_on_cancel(call, on_cancel);
    pl_call_on_writable(call, on_writable);

    /* one stream per device: an older one on this worker ends now, those on
     * other workers and nodes when the announcement reaches them */
    pl_stream_t *old = pl_idmap_get(&mw->by_device, s->device_id);
    if (old)
        pl_stream_end(old, PL_CODE_ABORTED, "replaced by a newer stream of this device");
    if (pl_registry_add(mw, s) != 0) {
        pl_stream_end(s, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    parley_internal_v1_NodeEvent ev = {0};
    ev.which_event = parley_internal_v1_NodeEvent_device_connected_tag;
    ev.event.device_connected.account_id = s->account_id;
    ev.event.device_connected.device_id = s->device_id;
    ev.event.device_connected.epoch = (int64_t)s->epoch;
    ev.event.device_connected.node = m->app->cfg->node_id;
    pl_fanout(mw, &ev, &s->account_id, 1, true);

    pl_presence_online(s, true);
    pl_call_resume_recv(call);
    pl_redis_t *r = pl_app_redis(m->app, mw->w);
    pl_cache_route_t route = {s->account_id, s->device_id, m->app->cfg->node_id, s->epoch};
    pl_call_ref(call);
    if (!r || pl_cache_route_put(r, &route, PL_STREAM_ROUTE_TTL_S, on_route_put, s) != 0)
        on_route_put(PL_CODE_UNAVAILABLE, "no redis", s);
}

void pl_stream_on_start(pl_call_t *call, void *svc)
{
    pl_messaging_t *m = svc;
    /* client events wait until the stream knows who it is */
    pl_call_pause_recv(call);
    pl_call_on_invalid_message(call, on_invalid);
    pl_auth_call(m->app, call, on_authed, m);
}

/* ---- client events ---- */

static void on_resume(pl_stream_t *s, uint64_t request_id, const parley_v1_Resume *r)
{
    int shards = s->mw->m->app->map.shards;
    for (pb_size_t i = 0; i < r->cursors_count; i++) {
        const parley_v1_Cursor *c = &r->cursors[i];
        if (c->seq < 0 || c->chat_id <= 0 || pl_id_shard(c->chat_id) >= shards) {
            char msg[128];
            snprintf(msg, sizeof(msg), "resume: cursor %u has a bad chat_id (%lld) or a negative seq", (unsigned)i,
                     (long long)c->chat_id);
            pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, msg, NULL, 0, NULL);
            continue;
        }
        if (s->is_loaded) {
            resume_chat(s, request_id, c->chat_id, c->seq);
            continue;
        }
        /* applied once the device's chats are loaded (load_done) */
        struct early_cursor *grown = realloc(s->early_resume, sizeof(*grown) * (s->early_resume_count + 1));
        if (!grown) {
            pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, NULL);
            continue;
        }
        s->early_resume = grown;
        s->early_resume[s->early_resume_count++] = (struct early_cursor){c->chat_id, c->seq, request_id};
    }
    pl_deliver_kick(s);
}

/* A client event that did not decode (a field over its bound, or not
 * protobuf): an Error for its request, and the stream goes on. */
static void on_invalid(pl_call_t *call, const uint8_t *payload, size_t len, pl_code_t code, const char *why, void *user)
{
    (void)call;
    pl_stream_t *s = user;
    if (!s || s->is_closing)
        return;
    uint64_t request_id = 0;
    pl_pb_peek_varint(payload, len, parley_v1_ClientEvent_request_id_tag, &request_id);
    pl_stream_error(s, request_id, code, why, NULL, 0, NULL);
}

void pl_stream_on_event(pl_call_t *call, const parley_v1_ClientEvent *ev, void *svc)
{
    (void)svc;
    pl_stream_t *s = pl_call_user(call);
    if (!s || s->is_closing)
        return;
    switch (ev->which_event) {
    case parley_v1_ClientEvent_send_tag: pl_send_from_stream(s, ev->request_id, &ev->event.send); break;
    case parley_v1_ClientEvent_delivered_tag: pl_receipts_cursor(s, ev->request_id, &ev->event.delivered, false); break;
    case parley_v1_ClientEvent_read_tag: pl_receipts_cursor(s, ev->request_id, &ev->event.read, true); break;
    case parley_v1_ClientEvent_typing_tag: pl_typing_update(s, ev->request_id, &ev->event.typing); break;
    case parley_v1_ClientEvent_presence_subscribe_tag:
        pl_presence_subscribe(s, ev->request_id, &ev->event.presence_subscribe, true);
        break;
    case parley_v1_ClientEvent_presence_unsubscribe_tag:
        pl_presence_subscribe(s, ev->request_id, &ev->event.presence_unsubscribe, false);
        break;
    case parley_v1_ClientEvent_resume_tag: on_resume(s, ev->request_id, &ev->event.resume); break;
    case parley_v1_ClientEvent_heartbeat_tag: {
        parley_v1_ServerEvent ack = {0};
        ack.request_id = ev->request_id;
        ack.which_event = parley_v1_ServerEvent_heartbeat_ack_tag;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ack.event.heartbeat_ack.server_time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        pl_stream_emit(s, &ack);
        pl_presence_online(s, false);
        break;
    }
    default:
        pl_stream_error(s, ev->request_id, PL_CODE_INVALID_ARGUMENT, "empty or unknown client event", NULL, 0, NULL);
    }
}

void pl_stream_request_begin(pl_stream_t *s)
{
    s->requests_open++;
}

void pl_stream_request_end(pl_stream_t *s)
{
    s->requests_open--;
    pl_stream_maybe_finish(s);
}

void pl_stream_maybe_finish(pl_stream_t *s)
{
    if (s->is_half_closed && !s->is_closing && s->requests_open == 0 && s->is_ready_sent)
        pl_stream_end(s, PL_CODE_OK, NULL);
}

/* The client sends no more (a script, grpcurl with a file): answer what it
 * asked, send what it missed up to Ready, then end. */
void pl_stream_on_half_close(pl_call_t *call, void *svc)
{
    (void)svc;
    pl_stream_t *s = pl_call_user(call);
    if (!s) {
        pl_call_finish(call, PL_CODE_OK, NULL);
        return;
    }
    s->is_half_closed = true;
    pl_stream_maybe_finish(s);
}
