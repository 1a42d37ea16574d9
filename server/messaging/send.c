/* send.c — sending a message, from a stream or the unary Send: validation,
 * the per-account rate limit, the per-device coverage check, the durable
 * store (send_message, group-committed; a retry with the same client id
 * returns the original seq), the answer to the sender, then the fan-out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/auth.h"
#include "app/log.h"
#include "cache/ratelimit.h"
#include "messaging/messaging_internal.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/errors.h"

/* Sends taken from the account's Redis bucket at a time, per stream. */
#define LEASE 10

typedef struct send_job {
    pl_messaging_t *m;
    pl_call_t *call;
    pl_stream_t *s; /* NULL: unary Send */
    uint64_t request_id;
    int64_t account_id, device_id;
    int64_t chat_id, reply_to, expires_in_ms;
    char client_id[65];
    char content_type[65];
    uint8_t *payload;
    size_t payload_len;
    uint8_t *packed; /* encoded DevicePayloads, when per device */
    size_t packed_len;
    int64_t *covered; /* device ids with a payload, sorted */
    size_t ncovered;
    /* the coverage check */
    int64_t *members;
    size_t nmembers;
    int64_t (*expected)[2]; /* (account, device) */
    size_t nexpected, expected_cap;
    bool failed; /* out of memory reading the devices */
    /* the store's answer */
    int64_t seq, created_ms, expires_ms, members_version, account_a, account_b;
    int kind;
    bool duplicate;
} send_job_t;

static void job_free(send_job_t *j)
{
    free(j->payload);
    free(j->packed);
    free(j->covered);
    free(j->members);
    free(j->expected);
    free(j);
}

static void job_done(send_job_t *j)
{
    pl_call_t *call = j->call;
    pl_stream_t *s = j->s;
    job_free(j);
    if (s)
        pl_stream_request_end(s);
    pl_call_unref(call);
}

static void job_fail(send_job_t *j, pl_code_t code, const char *message, const parley_v1_DeviceMismatch *mismatch,
                     int64_t retry_after_ms)
{
    if (j->s) {
        pl_stream_error(j->s, j->request_id, code, message, j->client_id, retry_after_ms, mismatch);
    } else if (!pl_call_is_finished(j->call)) {
        if (mismatch) {
            long n = pl_pb_encoded_size(parley_v1_DeviceMismatch_fields, mismatch);
            uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
            if (buf && pl_pb_encode(parley_v1_DeviceMismatch_fields, mismatch, buf, (size_t)n) == 0)
                pl_call_add_trailing_metadata(j->call, "parley-device-mismatch-bin", buf, (size_t)n);
            free(buf);
        }
        pl_call_finish(j->call, code, message);
    }
    job_done(j);
}

static void job_fail_query(send_job_t *j, const pl_pg_result_t *r)
{
    if (r->code == PL_CODE_DEADLINE_EXCEEDED)
        job_fail(j, PL_CODE_DEADLINE_EXCEEDED, "storage did not answer in time; retry with the same client_message_id",
                 NULL, 0);
    else if (r->code == PL_CODE_UNAVAILABLE || r->code == PL_CODE_CANCELLED || r->code == PL_CODE_ABORTED)
        job_fail(j, PL_CODE_UNAVAILABLE, "storage temporarily unavailable; retry with the same client_message_id", NULL,
                 0);
    else {
        pl_log_error("send: chat %lld: %s (sqlstate %s)", (long long)j->chat_id, r->message, r->sqlstate);
        job_fail(j, PL_CODE_INTERNAL, "internal error", NULL, 0);
    }
}

/* ---- after the store ---- */

static void fan_out(send_job_t *j, const int64_t *accounts, size_t n)
{
    pl_msg_worker_t *mw = pl_msg_worker(j->m, pl_call_worker(j->call));
    parley_internal_v1_NodeEvent ev = {0};
    if (j->duplicate) {
        /* the original's fan-out may have been lost (a crash between the
         * commit and it): a hint makes recipients behind it catch up */
        ev.which_event = parley_internal_v1_NodeEvent_chat_changed_tag;
        ev.event.chat_changed.chat_id = j->chat_id;
        ev.event.chat_changed.seq = j->seq;
    } else {
        ev.which_event = parley_internal_v1_NodeEvent_message_tag;
        ev.event.message.has_message = true;
        parley_v1_Message *msg = &ev.event.message.message;
        msg->chat_id = j->chat_id;
        msg->seq = j->seq;
        msg->sender_account_id = j->account_id;
        msg->sender_device_id = j->device_id;
        memcpy(msg->client_message_id, j->client_id, sizeof(msg->client_message_id));
        msg->server_time_ms = j->created_ms;
        memcpy(msg->content_type, j->content_type, sizeof(msg->content_type));
        msg->payload = pl_bytes_of(j->payload, j->payload_len);
        msg->reply_to_seq = j->reply_to;
        msg->expires_at_ms = j->expires_ms;
        ev.event.message.device_payloads = pl_bytes_of(j->packed, j->packed_len);
    }
    pl_fanout(mw, &ev, accounts, n, true);
}

static void on_members_for_fanout(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n,
                                  bool is_blocked, pl_code_t code, void *user)
{
    (void)is_blocked;
    (void)mw;
    (void)chat_id;
    send_job_t *j = user;
    if (code == PL_CODE_OK)
        fan_out(j, accounts, n);
    else
        pl_log_warn("send: members of chat %lld unavailable; recipients catch up on resume", (long long)j->chat_id);
    job_done(j);
}

static void answer(send_job_t *j)
{
    if (j->s) {
        parley_v1_ServerEvent ev = {0};
        ev.request_id = j->request_id;
        ev.which_event = parley_v1_ServerEvent_accepted_tag;
        memcpy(ev.event.accepted.client_message_id, j->client_id, sizeof(ev.event.accepted.client_message_id));
        ev.event.accepted.chat_id = j->chat_id;
        ev.event.accepted.seq = j->seq;
        ev.event.accepted.server_time_ms = j->created_ms;
        ev.event.accepted.duplicate = j->duplicate;
        pl_stream_emit(j->s, &ev);
        pl_deliver_accepted(j->s, j->chat_id, j->seq);
    } else {
        parley_v1_SendResponse resp = {j->chat_id, j->seq, j->created_ms, j->duplicate};
        parley_v1_Messaging_Send_reply(j->call, &resp);
    }
}

static void on_stored(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    (void)call;
    send_job_t *j = user;
    if (r->code != PL_CODE_OK) {
        job_fail_query(j, r);
        return;
    }
    int status = (int)pl_pg_get_int64(r->res, 0, 0);
    switch (status) {
    case 0: break;
    /* no such chat and not a member look the same, so chat ids cannot be probed */
    case 1:
    case 2: job_fail(j, PL_CODE_NOT_FOUND, "no such chat", NULL, 0); return;
    case 3: job_fail(j, PL_CODE_PERMISSION_DENIED, "blocked", NULL, 0); return;
    case 4: job_fail(j, PL_CODE_PERMISSION_DENIED, "only admins can send in this group", NULL, 0); return;
    default: job_fail(j, PL_CODE_INTERNAL, "internal error", NULL, 0); return;
    }
    j->seq = pl_pg_get_int64(r->res, 0, 1);
    j->created_ms = pl_pg_get_int64(r->res, 0, 2);
    j->duplicate = pl_pg_get_bool(r->res, 0, 3);
    j->kind = (int)pl_pg_get_int64(r->res, 0, 4);
    j->members_version = pl_pg_get_int64(r->res, 0, 5);
    j->account_a = pl_pg_get_int64(r->res, 0, 6);
    j->account_b = pl_pg_get_int64(r->res, 0, 7);
    j->expires_ms = pl_pg_get_int64(r->res, 0, 8);
    answer(j);
    if (!j->duplicate)
        pl_receipts_after_send(j->m, j->call, j->chat_id, j->account_id, j->seq);
    if (j->kind == 1) {
        int64_t pair[2] = {j->account_a, j->account_b};
        fan_out(j, pair, 2);
        job_done(j);
    } else {
        pl_members_get(pl_msg_worker(j->m, pl_call_worker(j->call)), j->chat_id, j->members_version,
                       on_members_for_fanout, j);
    }
}

static void store(send_job_t *j)
{
    uint8_t chat[8], account[8], device[8], reply[8], expires[8];
    pl_pg_param_t p[9] = {
        pl_pg_int8(chat, j->chat_id),
        pl_pg_int8(account, j->account_id),
        pl_pg_int8(device, j->device_id),
        pl_pg_text(j->client_id),
        pl_pg_text(j->content_type),
        j->packed ? pl_pg_null() : pl_pg_bytes(j->payload, j->payload_len),
        j->packed ? pl_pg_bytes(j->packed, j->packed_len) : pl_pg_null(),
        pl_pg_int8(reply, j->reply_to),
        pl_pg_int8(expires, j->expires_in_ms),
    };
    /* idempotent by (device, client id): safe to send again */
    pl_pg_lock_t lock = pl_chat_lock(j->chat_id, 0, 0); /* the chat row */
    if (pl_call_query_keyed(j->m->app, j->call, pl_msg_stmt(j->m, ST_SEND), pl_id_shard(j->chat_id), p, 9,
                            PL_PG_WRITE | PL_PG_IDEMPOTENT, &lock, on_stored, j) != 0)
        job_fail(j, PL_CODE_UNAVAILABLE, "server busy; retry with the same client_message_id", NULL, 0);
}

/* ---- per-device coverage ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool is_covered(const send_job_t *j, int64_t device)
{
    return bsearch(&device, j->covered, j->ncovered, sizeof(int64_t), cmp_i64) != NULL;
}

static void check_coverage(send_job_t *j)
{
    parley_v1_DeviceMismatch *mm = calloc(1, sizeof(*mm));
    if (!mm) {
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return;
    }
    bool bad = false;
    /* missing: expected devices without a payload, grouped by account */
    for (size_t i = 0; i < j->nexpected; i++) {
        int64_t account = j->expected[i][0], device = j->expected[i][1];
        if (is_covered(j, device))
            continue;
        bad = true;
        parley_v1_AccountDevices *ad = NULL;
        for (pb_size_t k = 0; k < mm->missing_count; k++)
            if (mm->missing[k].account_id == account)
                ad = &mm->missing[k];
        if (!ad && mm->missing_count < sizeof(mm->missing) / sizeof(mm->missing[0])) {
            ad = &mm->missing[mm->missing_count++];
            ad->account_id = account;
        }
        if (ad && ad->device_ids_count < sizeof(ad->device_ids) / sizeof(ad->device_ids[0]))
            ad->device_ids[ad->device_ids_count++] = device;
    }
    /* stale: payloads for devices that are not recipients */
    for (size_t i = 0; i < j->ncovered; i++) {
        bool found = false;
        for (size_t k = 0; k < j->nexpected && !found; k++)
            found = j->expected[k][1] == j->covered[i];
        if (!found) {
            bad = true;
            if (mm->stale_device_ids_count < sizeof(mm->stale_device_ids) / sizeof(mm->stale_device_ids[0]))
                mm->stale_device_ids[mm->stale_device_ids_count++] = j->covered[i];
        }
    }
    if (bad) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "device payloads do not match the recipients' devices: %u account(s) with "
                 "missing devices, %u stale device(s)",
                 (unsigned)mm->missing_count, (unsigned)mm->stale_device_ids_count);
        job_fail(j, PL_CODE_FAILED_PRECONDITION, msg, mm, 0);
    } else {
        store(j);
    }
    free(mm);
}

/* Each shard's devices, then the end (the job holds the call: CANCELLED
 * included, it is still here). */
static void on_devices(const pl_pg_result_t *r, void *user)
{
    send_job_t *j = user;
    for (int i = 0; r->res && !j->failed && i < PQntuples(r->res); i++) {
        int64_t device = pl_pg_get_int64(r->res, i, 1);
        if (device == j->device_id)
            continue; /* the sender's own device is not a recipient */
        if (j->nexpected == j->expected_cap) {
            size_t cap = j->expected_cap ? j->expected_cap * 2 : 16;
            void *grown = realloc(j->expected, cap * sizeof(*j->expected));
            if (!grown) {
                j->failed = true;
                break;
            }
            j->expected = grown;
            j->expected_cap = cap;
        }
        j->expected[j->nexpected][0] = pl_pg_get_int64(r->res, i, 0);
        j->expected[j->nexpected][1] = device;
        j->nexpected++;
    }
    if (r->res)
        return;
    if (r->code != PL_CODE_OK || j->failed)
        job_fail(j, PL_CODE_UNAVAILABLE, "storage temporarily unavailable; retry with the same client_message_id", NULL,
                 0);
    else
        check_coverage(j);
}

static void on_members_for_check(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n,
                                 bool is_blocked, pl_code_t code, void *user)
{
    (void)mw;
    (void)chat_id;
    send_job_t *j = user;
    if (code == PL_CODE_NOT_FOUND) {
        job_fail(j, PL_CODE_NOT_FOUND, "no such chat", NULL, 0);
        return;
    }
    if (code != PL_CODE_OK) {
        job_fail(j, PL_CODE_UNAVAILABLE, "storage temporarily unavailable; retry with the same client_message_id", NULL,
                 0);
        return;
    }
    bool member = false;
    for (size_t i = 0; i < n; i++)
        member |= accounts[i] == j->account_id;
    if (!member) { /* as for a chat that does not exist: ids cannot be probed */
        job_fail(j, PL_CODE_NOT_FOUND, "no such chat", NULL, 0);
        return;
    }
    if (is_blocked) { /* refused before any device list is shown */
        job_fail(j, PL_CODE_PERMISSION_DENIED, "blocked", NULL, 0);
        return;
    }
    /* one devices query per shard among the members */
    pl_scatter_t sc = {.stmt = pl_msg_stmt(j->m, ST_DEVICES), .flags = PL_PG_IDEMPOTENT, .ids = accounts, .n = n};
    if (pl_store_scatter(pl_app_store(j->m->app, pl_call_worker(j->call)), &sc, pl_call_deadline(j->call), on_devices,
                         j) != 0)
        job_fail(j, PL_CODE_UNAVAILABLE, "server busy; retry with the same client_message_id", NULL, 0);
}

/* ---- validation and rate ---- */

static bool valid_utf8_ish(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            return false;
    return true;
}

/* Copies and checks the message; on failure finishes j and returns false. */
static bool take_message(send_job_t *j, const parley_v1_OutgoingMessage *om)
{
    const pl_config_t *cfg = j->m->app->cfg;
    memcpy(j->client_id, om->client_message_id, sizeof(j->client_id));
    memcpy(j->content_type, om->content_type, sizeof(j->content_type));
    j->chat_id = om->chat_id;
    j->reply_to = om->reply_to_seq;
    j->expires_in_ms = om->expires_in_ms;
    if (!j->client_id[0] || !valid_utf8_ish(j->client_id)) {
        job_fail(j, PL_CODE_INVALID_ARGUMENT, "client_message_id must be 1 to 64 printable bytes", NULL, 0);
        return false;
    }
    if (j->chat_id <= 0 || pl_id_shard(j->chat_id) >= j->m->app->map.shards) {
        job_fail(j, PL_CODE_NOT_FOUND, "no such chat", NULL, 0);
        return false;
    }
    if (!valid_utf8_ish(j->content_type) || j->reply_to < 0 || j->expires_in_ms < 0 ||
        j->expires_in_ms > (int64_t)cfg->retention_days * 86400000) {
        job_fail(j, PL_CODE_INVALID_ARGUMENT, "bad content_type, reply_to_seq or expires_in_ms", NULL, 0);
        return false;
    }
    if (om->payload.len && om->device_payloads_count) {
        job_fail(j, PL_CODE_INVALID_ARGUMENT, "give either payload or device_payloads, not both", NULL, 0);
        return false;
    }
    if (!om->payload.len && !om->device_payloads_count) {
        job_fail(j, PL_CODE_INVALID_ARGUMENT, "a message needs a payload or device_payloads", NULL, 0);
        return false;
    }
    if (om->payload.len > (size_t)cfg->max_payload_bytes) {
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "payload larger than the server's limit", NULL, 0);
        return false;
    }
    if (om->payload.len) {
        j->payload = malloc(om->payload.len);
        if (!j->payload) {
            job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
            return false;
        }
        memcpy(j->payload, om->payload.data, om->payload.len);
        j->payload_len = om->payload.len;
    }
    if (!om->device_payloads_count)
        return true;
    j->covered = malloc(sizeof(int64_t) * om->device_payloads_count);
    if (!j->covered) {
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return false;
    }
    for (pb_size_t i = 0; i < om->device_payloads_count; i++) {
        if (om->device_payloads[i].payload.len > (size_t)cfg->max_payload_bytes) {
            job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "a device payload is larger than the server's limit", NULL, 0);
            return false;
        }
        j->covered[i] = om->device_payloads[i].device_id;
    }
    j->ncovered = om->device_payloads_count;
    qsort(j->covered, j->ncovered, sizeof(int64_t), cmp_i64);
    for (size_t i = 1; i < j->ncovered; i++)
        if (j->covered[i] == j->covered[i - 1]) {
            job_fail(j, PL_CODE_INVALID_ARGUMENT, "two payloads for the same device", NULL, 0);
            return false;
        }
    parley_internal_v1_DevicePayloads dp = {0};
    dp.items_count = om->device_payloads_count;
    memcpy(dp.items, om->device_payloads, sizeof(dp.items[0]) * om->device_payloads_count);
    long n = pl_pb_encoded_size(parley_internal_v1_DevicePayloads_fields, &dp);
    j->packed = n > 0 ? malloc((size_t)n) : NULL;
    if (!j->packed || pl_pb_encode(parley_internal_v1_DevicePayloads_fields, &dp, j->packed, (size_t)n) != 0) {
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0);
        return false;
    }
    j->packed_len = (size_t)n;
    return true;
}

static void on_lease(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    pl_stream_t *s = user;
    (void)message;
    if (code == PL_CODE_OK && !rate->is_allowed && !s->is_closing) {
        /* the account is over its rate across its devices: this stream
         * waits too */
        s->send_tokens = 0;
        s->send_refill_usec = pl_now_usec() + rate->retry_after_ms * 1000;
    }
    pl_call_unref(s->call);
}

/* The stream's bucket: refilled at the account's rate locally, and every
 * LEASE sends debited from the account's bucket in Redis, which is what
 * bounds an account with several devices (or nodes). Returns 0, or the ms
 * to wait. */
static int64_t take_send_token(pl_stream_t *s)
{
    const pl_config_t *cfg = s->mw->m->app->cfg;
    int64_t now = pl_now_usec();
    if (now > s->send_refill_usec) {
        s->send_tokens += (double)(now - s->send_refill_usec) * cfg->sends_per_second / 1e6;
        if (s->send_tokens > cfg->sends_burst)
            s->send_tokens = cfg->sends_burst;
        s->send_refill_usec = now;
    }
    if (s->send_tokens < 1)
        return (int64_t)((1 - s->send_tokens) * 1000 / cfg->sends_per_second) + 1 +
               (s->send_refill_usec > now ? (s->send_refill_usec - now) / 1000 : 0);
    s->send_tokens -= 1;
    if (++s->sends_unleased >= LEASE) {
        s->sends_unleased = 0;
        pl_redis_t *r = pl_app_redis(s->mw->m->app, s->mw->w);
        char name[48];
        int n = snprintf(name, sizeof(name), "send:%lld", (long long)s->account_id);
        pl_call_ref(s->call);
        if (!r || pl_cache_ratelimit_take(r, name, (size_t)n, (uint32_t)cfg->sends_burst, cfg->sends_per_second, LEASE,
                                          on_lease, s) != 0)
            pl_call_unref(s->call); /* Redis down: the local bucket alone */
    }
    return 0;
}

static send_job_t *job_new(pl_messaging_t *m, pl_call_t *call, int64_t account, int64_t device)
{
    send_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->m = m;
    j->call = call;
    j->account_id = account;
    j->device_id = device;
    pl_call_ref(call);
    return j;
}

static void start(send_job_t *j)
{
    if (j->packed)
        pl_members_get(pl_msg_worker(j->m, pl_call_worker(j->call)), j->chat_id, 0, on_members_for_check, j);
    else
        store(j);
}

void pl_send_from_stream(pl_stream_t *s, uint64_t request_id, const parley_v1_OutgoingMessage *om)
{
    send_job_t *j = job_new(s->mw->m, s->call, s->account_id, s->device_id);
    if (!j) {
        pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", om->client_message_id, 0, NULL);
        return;
    }
    j->s = s;
    j->request_id = request_id;
    pl_stream_request_begin(s);
    if (!take_message(j, om))
        return;
    int64_t wait_ms = take_send_token(s);
    if (wait_ms > 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "sending too fast; retry after %lld ms", (long long)wait_ms);
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, msg, NULL, wait_ms);
        return;
    }
    start(j);
}

/* ---- unary Send ---- */

static void on_unary_rate(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    send_job_t *j = user;
    (void)message;
    if (code == PL_CODE_OK && !rate->is_allowed) {
        char msg[96];
        snprintf(msg, sizeof(msg), "sending too fast; retry after %lld ms", (long long)rate->retry_after_ms);
        job_fail(j, PL_CODE_RESOURCE_EXHAUSTED, msg, NULL, rate->retry_after_ms);
        return;
    }
    /* allowed, or Redis down (fail open: messaging must not depend on it) */
    start(j);
}

static void on_unary_authed(pl_call_t *call, const pl_principal_t *who, void *user)
{
    pl_messaging_t *m = user;
    const parley_v1_SendRequest *req = pl_call_user(call);
    send_job_t *j = job_new(m, call, who->account_id, who->device_id);
    if (!j) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (!take_message(j, &req->message))
        return;
    const pl_config_t *cfg = m->app->cfg;
    pl_redis_t *r = pl_app_redis(m->app, pl_call_worker(call));
    char name[48];
    int n = snprintf(name, sizeof(name), "send:%lld", (long long)who->account_id);
    if (!r || pl_cache_ratelimit_take(r, name, (size_t)n, (uint32_t)cfg->sends_burst, cfg->sends_per_second, 1,
                                      on_unary_rate, j) != 0)
        start(j);
}

void pl_send_unary(pl_call_t *call, const parley_v1_SendRequest *req, void *svc)
{
    /* the request stays valid until the call ends */
    pl_call_set_user(call, (void *)req, NULL);
    pl_auth_call(((pl_messaging_t *)svc)->app, call, on_unary_authed, svc);
}
