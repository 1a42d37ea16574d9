/* send.c — sending a message, from a stream or the unary Send: validation,
 * the per-account rate limit, the per-device coverage check, the durable
 * store (send_message, group-committed; a retry with the same client id
 * returns the original seq), the answer to the sender, then the fan-out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "app/op.h"
#include "cache/ratelimit.h"
#include "messaging/messaging_internal.h"
#include "parley/v1/messaging.parley.h"
#include "push/notify.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/errors.h"

/* Sends taken from the account's Redis bucket at a time, per stream. */
#define LEASE 10

typedef struct send_job {
    pl_messaging_t *m;
    pl_stream_t *s; /* NULL: unary Send */
    uint64_t request_id;
    const parley_v1_OutgoingMessage *om; /* until the first step has copied it */
    int64_t chat_id, reply_to, expires_in_ms;
    int push_kind;    /* parley.v1.PushKind */
    uint8_t *preview; /* the encrypted push preview, if any */
    size_t preview_len;
    char client_id[65];
    char content_type[65];
    uint8_t *payload;
    size_t payload_len;
    uint8_t *packed; /* encoded DevicePayloads, when per device */
    size_t packed_len;
    int64_t *covered; /* device ids with a payload, sorted */
    size_t ncovered;
    /* the coverage check */
    int64_t (*expected)[2]; /* (account, device) */
    size_t nexpected, expected_cap;
    bool failed; /* out of memory reading the devices */
    /* the store's answer */
    int64_t seq, created_ms, expires_ms, members_version, account_a, account_b;
    int kind;
    bool duplicate;
    /* what a failure carries besides its status */
    const parley_v1_DeviceMismatch *mismatch;
    int64_t retry_after_ms;
} send_job_t;

static void job_end(pl_op_t *op)
{
    send_job_t *j = op->state;
    free(j->payload);
    free(j->preview);
    free(j->packed);
    free(j->covered);
    free(j->expected);
    if (j->s)
        pl_stream_request_end(j->s);
}

/* A failure, on the stream as an Error or as the unary call's status. A
 * send is idempotent by its client id: what a retry can mend says so. */
static void job_error(pl_op_t *op, pl_code_t code, const char *message)
{
    send_job_t *j = op->state;
    char text[256];
    bool is_transient = code == PL_CODE_UNAVAILABLE || code == PL_CODE_DEADLINE_EXCEEDED;
    snprintf(text, sizeof(text), "%s%s", message, is_transient ? " (send again with the same client_message_id)" : "");
    if (j->s) {
        pl_stream_error(j->s, j->request_id, code, text, j->client_id, j->retry_after_ms, j->mismatch);
        return;
    }
    if (j->mismatch) {
        long n = pl_pb_encoded_size(parley_v1_DeviceMismatch_fields, j->mismatch);
        uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
        if (buf && pl_pb_encode(parley_v1_DeviceMismatch_fields, j->mismatch, buf, (size_t)n) == 0)
            pl_call_add_trailing_metadata(op->call, "parley-device-mismatch-bin", buf, (size_t)n);
        free(buf);
    }
    pl_call_finish(op->call, code, text);
}

/* Fails op with message; false, for the validation below. */
static bool refuse(pl_op_t *op, pl_code_t code, const char *message)
{
    pl_op_fail(op, code, "%s", message);
    return false;
}

/* ---- after the store ---- */

static void fan_out(pl_op_t *op, const int64_t *accounts, size_t n)
{
    send_job_t *j = op->state;
    pl_msg_worker_t *mw = pl_msg_worker(j->m, pl_call_worker(op->call));
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
        msg->sender_account_id = op->who.account_id;
        msg->sender_device_id = op->who.device_id;
        memcpy(msg->client_message_id, j->client_id, sizeof(msg->client_message_id));
        msg->server_time_ms = j->created_ms;
        memcpy(msg->content_type, j->content_type, sizeof(msg->content_type));
        msg->payload = pl_bytes_of(j->payload, j->payload_len);
        msg->reply_to_seq = j->reply_to;
        msg->expires_at_ms = j->expires_ms;
        ev.event.message.device_payloads = pl_bytes_of(j->packed, j->packed_len);
    }
    pl_fanout(mw, &ev, accounts, n, true);
    if (j->push_kind != parley_v1_PushKind_PUSH_KIND_SILENT)
        pl_push_message_stored(j->m->app, pl_call_worker(op->call),
                               &(pl_push_message_t){
                                   .chat_id = j->chat_id,
                                   .seq = j->seq,
                                   .sender_account = op->who.account_id,
                                   .recipients = accounts,
                                   .n = n,
                                   .is_call = j->push_kind == parley_v1_PushKind_PUSH_KIND_CALL,
                                   .preview = j->preview,
                                   .preview_len = j->preview_len,
                               });
}

static void on_members_for_fanout(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n,
                                  bool is_blocked, pl_code_t code, void *user)
{
    (void)is_blocked;
    (void)mw;
    pl_op_t *op = user;
    if (code == PL_CODE_OK)
        fan_out(op, accounts, n);
    else
        pl_log_warn("send: members of chat %lld unavailable; recipients catch up on resume", (long long)chat_id);
    pl_op_release(op);
}

static void answer(pl_op_t *op)
{
    send_job_t *j = op->state;
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
        parley_v1_Messaging_Send_reply(op->call, &resp);
    }
}

static void on_stored(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    send_job_t *j = op->state;
    if (r->code == PL_CODE_DEADLINE_EXCEEDED) {
        pl_op_fail(op, r->code, "storage did not answer in time");
        return;
    }
    if (r->code == PL_CODE_UNAVAILABLE || r->code == PL_CODE_CANCELLED || r->code == PL_CODE_ABORTED) {
        pl_op_fail(op, PL_CODE_UNAVAILABLE, "storage temporarily unavailable");
        return;
    }
    if (r->code != PL_CODE_OK) {
        pl_log_error("send: chat %lld: %s (sqlstate %s)", (long long)j->chat_id, r->message, r->sqlstate);
        pl_op_fail(op, PL_CODE_INTERNAL, "internal error");
        return;
    }
    switch (pl_pg_get_int64(r->res, 0, 0)) {
    case 0: break;
    /* no such chat and not a member look the same, so chat ids cannot be probed */
    case 1:
    case 2: pl_op_fail(op, PL_CODE_NOT_FOUND, "no such chat"); return;
    case 3: pl_op_fail(op, PL_CODE_PERMISSION_DENIED, "blocked"); return;
    case 4: pl_op_fail(op, PL_CODE_PERMISSION_DENIED, "only admins can send in this group"); return;
    default: pl_op_fail(op, PL_CODE_INTERNAL, "internal error"); return;
    }
    op->is_committed = true;
    j->seq = pl_pg_get_int64(r->res, 0, 1);
    j->created_ms = pl_pg_get_int64(r->res, 0, 2);
    j->duplicate = pl_pg_get_bool(r->res, 0, 3);
    j->kind = (int)pl_pg_get_int64(r->res, 0, 4);
    j->members_version = pl_pg_get_int64(r->res, 0, 5);
    j->account_a = pl_pg_get_int64(r->res, 0, 6);
    j->account_b = pl_pg_get_int64(r->res, 0, 7);
    j->expires_ms = pl_pg_get_int64(r->res, 0, 8);
    answer(op);
    if (!j->duplicate)
        pl_receipts_after_send(op, j->m, j->chat_id, j->seq);
    if (j->kind == 1) {
        int64_t pair[2] = {j->account_a, j->account_b};
        fan_out(op, pair, 2);
    } else {
        pl_op_hold(op); /* until on_members_for_fanout */
        pl_members_get(pl_msg_worker(j->m, pl_call_worker(op->call)), j->chat_id, j->members_version,
                       on_members_for_fanout, op);
    }
}

static void store(pl_op_t *op)
{
    send_job_t *j = op->state;
    uint8_t chat[8], account[8], device[8], reply[8], expires[8];
    pl_pg_param_t p[9] = {
        pl_pg_int8(chat, j->chat_id),
        pl_pg_int8(account, op->who.account_id),
        pl_pg_int8(device, op->who.device_id),
        pl_pg_text(j->client_id),
        pl_pg_text(j->content_type),
        j->packed ? pl_pg_null() : pl_pg_bytes(j->payload, j->payload_len),
        j->packed ? pl_pg_bytes(j->packed, j->packed_len) : pl_pg_null(),
        pl_pg_int8(reply, j->reply_to),
        pl_pg_int8(expires, j->expires_in_ms),
    };
    /* idempotent by (device, client id): safe to send again */
    pl_pg_lock_t lock = pl_chat_lock(j->chat_id, 0, 0); /* the chat row */
    pl_op_query(op, pl_msg_stmt(j->m, ST_SEND), pl_id_shard(j->chat_id), p, 9, PL_PG_WRITE | PL_PG_IDEMPOTENT, &lock,
                PL_OP_ANY_RESULT, on_stored, NULL, "store");
}

/* ---- per-device coverage ---- */

static bool is_covered(const send_job_t *j, int64_t device)
{
    return bsearch(&device, j->covered, j->ncovered, sizeof(int64_t), pl_ids_cmp) != NULL;
}

static void check_coverage(pl_op_t *op)
{
    send_job_t *j = op->state;
    parley_v1_DeviceMismatch *mm = pl_op_alloc(op, sizeof(*mm));
    if (j->failed || !mm) {
        pl_op_fail_nomem(op);
        return;
    }
    /* missing: expected devices without a payload, grouped by account */
    for (size_t i = 0; i < j->nexpected; i++) {
        int64_t account = j->expected[i][0], device = j->expected[i][1];
        if (is_covered(j, device))
            continue;
        j->mismatch = mm;
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
            j->mismatch = mm;
            if (mm->stale_device_ids_count < sizeof(mm->stale_device_ids) / sizeof(mm->stale_device_ids[0]))
                mm->stale_device_ids[mm->stale_device_ids_count++] = j->covered[i];
        }
    }
    if (j->mismatch)
        pl_op_fail(op, PL_CODE_FAILED_PRECONDITION,
                   "device payloads do not match the recipients' devices: %u account(s) with missing devices, %u "
                   "stale device(s)",
                   (unsigned)mm->missing_count, (unsigned)mm->stale_device_ids_count);
    else
        store(op);
}

/* One shard's devices of the members. */
static void on_devices(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    send_job_t *j = op->state;
    for (int i = 0; !j->failed && i < PQntuples(r->res); i++) {
        int64_t device = pl_pg_get_int64(r->res, i, 1);
        if (device == op->who.device_id)
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
}

static void on_members_for_check(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n,
                                 bool is_blocked, pl_code_t code, void *user)
{
    (void)mw;
    (void)chat_id;
    pl_op_t *op = user;
    send_job_t *j = op->state;
    bool member = false;
    for (size_t i = 0; code == PL_CODE_OK && i < n; i++)
        member |= accounts[i] == op->who.account_id;
    if (code != PL_CODE_OK && code != PL_CODE_NOT_FOUND) {
        pl_op_fail(op, PL_CODE_UNAVAILABLE, "storage temporarily unavailable");
    } else if (!member) { /* as for a chat that does not exist: ids cannot be probed */
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such chat");
    } else if (is_blocked) { /* refused before any device list is shown */
        pl_op_fail(op, PL_CODE_PERMISSION_DENIED, "blocked");
    } else { /* one devices query per shard among the members */
        pl_scatter_t sc = {.stmt = pl_msg_stmt(j->m, ST_DEVICES), .flags = PL_PG_IDEMPOTENT, .ids = accounts, .n = n};
        pl_op_scatter(op, &sc, on_devices, NULL, "devices");
        pl_op_then(op, check_coverage);
    }
    pl_op_release(op);
}

/* ---- validation and rate ---- */

static bool valid_utf8_ish(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20)
            return false;
    return true;
}

/* Copies and checks the message; on failure fails op and returns false. */
static bool take_message(pl_op_t *op, const parley_v1_OutgoingMessage *om)
{
    send_job_t *j = op->state;
    const pl_config_t *cfg = j->m->app->cfg;
    memcpy(j->client_id, om->client_message_id, sizeof(j->client_id));
    memcpy(j->content_type, om->content_type, sizeof(j->content_type));
    j->chat_id = om->chat_id;
    j->reply_to = om->reply_to_seq;
    j->expires_in_ms = om->expires_in_ms;
    if (!j->client_id[0] || !valid_utf8_ish(j->client_id))
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "client_message_id must be 1 to 64 printable bytes");
    if (j->chat_id <= 0 || pl_id_shard(j->chat_id) >= j->m->app->map.shards)
        return refuse(op, PL_CODE_NOT_FOUND, "no such chat");
    if (!valid_utf8_ish(j->content_type) || j->reply_to < 0 || j->expires_in_ms < 0 ||
        j->expires_in_ms > (int64_t)cfg->retention_days * 86400000)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "bad content_type, reply_to_seq or expires_in_ms");
    if (om->payload.len && om->device_payloads_count)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "give either payload or device_payloads, not both");
    if (!om->payload.len && !om->device_payloads_count)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "a message needs a payload or device_payloads");
    if (om->payload.len > (size_t)cfg->max_payload_bytes)
        return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "payload larger than the server's limit");
    if (om->push < parley_v1_PushKind_PUSH_KIND_ALERT || om->push > parley_v1_PushKind_PUSH_KIND_CALL)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "push must be PUSH_KIND_ALERT, _SILENT or _CALL");
    if (om->push_preview.len > PL_PUSH_PREVIEW_MAX)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "push_preview is larger than 1024 bytes");
    j->push_kind = om->push;
    if (om->push_preview.len) {
        if (!(j->preview = malloc(om->push_preview.len)))
            return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        memcpy(j->preview, om->push_preview.data, om->push_preview.len);
        j->preview_len = om->push_preview.len;
    }
    if (om->payload.len) {
        if (!(j->payload = malloc(om->payload.len)))
            return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        memcpy(j->payload, om->payload.data, om->payload.len);
        j->payload_len = om->payload.len;
    }
    if (!om->device_payloads_count)
        return true;
    if (!(j->covered = malloc(sizeof(int64_t) * om->device_payloads_count)))
        return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
    for (pb_size_t i = 0; i < om->device_payloads_count; i++) {
        if (om->device_payloads[i].payload.len > (size_t)cfg->max_payload_bytes)
            return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "a device payload is larger than the server's limit");
        j->covered[i] = om->device_payloads[i].device_id;
    }
    j->ncovered = om->device_payloads_count;
    if (pl_ids_sort_unique(j->covered, j->ncovered) != j->ncovered)
        return refuse(op, PL_CODE_INVALID_ARGUMENT, "two payloads for the same device");
    parley_internal_v1_DevicePayloads dp = {0};
    dp.items_count = om->device_payloads_count;
    memcpy(dp.items, om->device_payloads, sizeof(dp.items[0]) * om->device_payloads_count);
    long n = pl_pb_encoded_size(parley_internal_v1_DevicePayloads_fields, &dp);
    j->packed = n > 0 ? malloc((size_t)n) : NULL;
    if (!j->packed || pl_pb_encode(parley_internal_v1_DevicePayloads_fields, &dp, j->packed, (size_t)n) != 0)
        return refuse(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
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

/* Stores the message, after checking per-device payloads against the
 * members' devices. */
static void start(pl_op_t *op)
{
    send_job_t *j = op->state;
    if (!j->packed) {
        store(op);
        return;
    }
    pl_op_hold(op); /* until on_members_for_check */
    pl_members_get(pl_msg_worker(j->m, pl_call_worker(op->call)), j->chat_id, 0, on_members_for_check, op);
}

static pl_op_t *job_new(pl_messaging_t *m, pl_call_t *call, pl_stream_t *s, const parley_v1_OutgoingMessage *om)
{
    pl_op_t *op = s ? pl_op_try_new(m->app, call, "send", sizeof(send_job_t))
                    : pl_op_new(m->app, call, "send", sizeof(send_job_t));
    if (!op)
        return NULL;
    *(send_job_t *)op->state = (send_job_t){.m = m, .s = s, .om = om};
    pl_op_on_error(op, job_error);
    pl_op_on_end(op, job_end);
    return op;
}

static void from_stream(pl_op_t *op)
{
    send_job_t *j = op->state;
    if (!take_message(op, j->om))
        return;
    int64_t wait_ms = take_send_token(j->s);
    if (wait_ms > 0) {
        j->retry_after_ms = wait_ms;
        pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "sending too fast; retry after %lld ms", (long long)wait_ms);
        return;
    }
    start(op);
}

void pl_send_from_stream(pl_stream_t *s, uint64_t request_id, const parley_v1_OutgoingMessage *om)
{
    pl_op_t *op = job_new(s->mw->m, s->call, s, om);
    if (!op) {
        pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", om->client_message_id, 0, NULL);
        return;
    }
    ((send_job_t *)op->state)->request_id = request_id;
    pl_stream_request_begin(s);
    pl_op_run(op, &(pl_principal_t){s->account_id, s->device_id}, from_stream);
}

/* ---- unary Send ---- */

static void on_unary_rate(pl_code_t code, const char *message, const pl_cache_rate_t *rate, void *user)
{
    pl_op_t *op = user;
    (void)message;
    if (code == PL_CODE_OK && !rate->is_allowed) {
        ((send_job_t *)op->state)->retry_after_ms = rate->retry_after_ms;
        pl_op_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "sending too fast; retry after %lld ms",
                   (long long)rate->retry_after_ms);
    }
    /* allowed, or Redis down (fail open: messaging must not depend on it) */
    pl_op_release(op);
}

static void unary(pl_op_t *op)
{
    send_job_t *j = op->state;
    if (!take_message(op, j->om))
        return;
    const pl_config_t *cfg = j->m->app->cfg;
    pl_redis_t *r = pl_app_redis(op->app, pl_call_worker(op->call));
    char name[48];
    int n = snprintf(name, sizeof(name), "send:%lld", (long long)op->who.account_id);
    pl_op_then(op, start);
    if (r && pl_cache_ratelimit_take(r, name, (size_t)n, (uint32_t)cfg->sends_burst, cfg->sends_per_second, 1,
                                     on_unary_rate, op) == 0)
        pl_op_hold(op); /* until on_unary_rate */
}

void pl_send_unary(pl_call_t *call, const parley_v1_SendRequest *req, void *svc)
{
    pl_op_t *op = job_new(svc, call, NULL, &req->message);
    if (op)
        pl_op_start(op, unary);
}
