/* catchup.c — sending one chat's missed messages to a stream, a page at a
 * time, in seq order, from the member's visible part of the log; and
 * announcing as a Gap what is gone (past retention, expired, or skipped
 * because a resuming device gets at most resume_max_per_chat of a chat). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "messaging/catchup_plan.h"
#include "messaging/messaging_internal.h"
#include "runtime/codec.h"

#define PAGE 100
#define RETRY_MS 1000

/* ST_FETCH columns: eff, floor, last_seq, removed, then the message. */
#define COL_EFF 0
#define COL_FLOOR 1
#define COL_LAST 2
#define COL_REMOVED 3
#define COL_MESSAGE 4

/* The message columns (messaging.c MESSAGE_COLUMNS), from offset base. */
enum {
    M_SEQ,
    M_SENDER_ACCOUNT,
    M_SENDER_DEVICE,
    M_CLIENT_ID,
    M_CREATED_MS,
    M_CONTENT_TYPE,
    M_PAYLOAD,
    M_DEVICE_PAYLOADS,
    M_REPLY_TO,
    M_EXPIRES_MS,
    M_CHAT_EVENT,
};

static void copy_text(char *dst, size_t cap, const PGresult *res, int row, int col)
{
    size_t n = (size_t)PQgetlength(res, row, col);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, PQgetvalue(res, row, col), n);
    dst[n] = '\0';
}

static pl_bytes_t view_of(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return pl_bytes_of(NULL, 0);
    size_t n;
    const uint8_t *p = pl_pg_get_bytes(res, row, col, &n);
    return pl_bytes_of(n ? p : NULL, n);
}

static void row_message(const PGresult *res, int row, int base, int64_t device_id, parley_v1_Message *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->seq = pl_pg_get_int64(res, row, base + M_SEQ);
    msg->sender_account_id = pl_pg_get_int64(res, row, base + M_SENDER_ACCOUNT);
    msg->sender_device_id = pl_pg_get_int64(res, row, base + M_SENDER_DEVICE);
    copy_text(msg->client_message_id, sizeof(msg->client_message_id), res, row, base + M_CLIENT_ID);
    msg->server_time_ms = pl_pg_get_int64(res, row, base + M_CREATED_MS);
    copy_text(msg->content_type, sizeof(msg->content_type), res, row, base + M_CONTENT_TYPE);
    msg->reply_to_seq = pl_pg_get_int64(res, row, base + M_REPLY_TO);
    msg->expires_at_ms = pl_pg_get_int64(res, row, base + M_EXPIRES_MS);
    msg->chat_event = view_of(res, row, base + M_CHAT_EVENT);
    pl_bytes_t packed = view_of(res, row, base + M_DEVICE_PAYLOADS);
    if (!packed.len) {
        msg->payload = view_of(res, row, base + M_PAYLOAD);
        return;
    }
    parley_internal_v1_DevicePayloads dp = {0};
    msg->payload_missing = true;
    if (pl_pb_decode(parley_internal_v1_DevicePayloads_fields, packed.data, packed.len, &dp, NULL) == 0)
        for (pb_size_t i = 0; i < dp.items_count; i++)
            if (dp.items[i].device_id == device_id) {
                msg->payload = dp.items[i].payload;
                msg->payload_missing = false;
                break;
            }
}

void pl_catchup_row_message(const PGresult *res, int row, int64_t device_id, parley_v1_Message *msg)
{
    row_message(res, row, 0, device_id, msg);
}

void pl_catchup_row_stored(const PGresult *res, int row, int64_t chat_id, parley_internal_v1_StoredMessage *sm)
{
    memset(sm, 0, sizeof(*sm));
    sm->has_message = true;
    parley_v1_Message *msg = &sm->message;
    row_message(res, row, 0, 0, msg);
    msg->chat_id = chat_id;
    msg->payload_missing = false;
    msg->payload = view_of(res, row, M_PAYLOAD);
    sm->device_payloads = view_of(res, row, M_DEVICE_PAYLOADS);
}

static bool emit_gap(pl_stream_t *s, int64_t chat_id, int64_t from, int64_t to)
{
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_gap_tag;
    ev.event.gap.chat_id = chat_id;
    ev.event.gap.from_seq = from;
    ev.event.gap.to_seq = to;
    return pl_stream_emit(s, &ev);
}

static void requeue(pl_stream_t *s, chat_state_t *cs)
{
    if (cs->target <= cs->upto)
        cs->target = cs->upto + 1;
    pl_deliver_hint(s, cs->chat_id, cs->target);
}

static void on_retry(pl_call_t *call, void *user)
{
    (void)user;
    pl_stream_t *s = pl_call_user(call);
    if (s)
        pl_deliver_kick(s);
}

/* Sends the page as planned (catchup_plan.c), stopping where the client's
 * queue fills; false if it stopped (the chat is queued again). */
static bool carry_out(pl_stream_t *s, chat_state_t *cs, const PGresult *res, const pl_catchup_page_t *page)
{
    pl_catchup_step_t *steps = malloc(sizeof(*steps) * pl_catchup_max_steps(page->count));
    if (!steps) {
        requeue(s, cs);
        return false;
    }
    size_t n = pl_catchup_plan(page, steps);
    bool is_done = true;
    for (size_t i = 0; i < n && is_done; i++) {
        const pl_catchup_step_t *st = &steps[i];
        if (st->kind == PL_STEP_GAP) {
            is_done = emit_gap(s, cs->chat_id, st->from, st->to);
        } else if (st->kind == PL_STEP_MESSAGE) {
            parley_v1_ServerEvent ev = {0};
            ev.which_event = parley_v1_ServerEvent_message_tag;
            row_message(res, (int)st->row, COL_MESSAGE, s->device_id, &ev.event.message);
            ev.event.message.chat_id = cs->chat_id;
            is_done = pl_stream_emit(s, &ev);
        }
        if (is_done) {
            cs->upto = st->upto;
        } else {
            /* the client stopped reading: the rest when it drains */
            s->wants_writable = true;
            if (st->is_cap)
                cs->is_capped = true;
            requeue(s, cs);
        }
    }
    free(steps);
    return is_done;
}

static void on_fetched(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    chat_state_t *cs = user;
    pl_stream_t *s = pl_call_user(call);
    s->fetches--;
    cs->is_fetching = false;
    if (s->is_closing)
        return;
    if (r->code != PL_CODE_OK) {
        /* storage trouble: try again shortly; the client waits, loses nothing */
        pl_log_warn("catch-up of chat %lld for device %lld: %s", (long long)cs->chat_id, (long long)s->device_id,
                    r->message);
        if (cs->target <= cs->upto)
            cs->target = cs->upto + 1;
        pl_deliver_queue(s, cs);
        pl_call_defer(call, RETRY_MS * 1000, on_retry);
        return;
    }
    if (cs->is_fetch_stale) {
        /* a Resume moved this chat's cursor while the fetch was out: the
         * page answers a question nobody asks any more */
        cs->is_fetch_stale = false;
        if (cs->known_last > cs->target)
            cs->target = cs->known_last;
        requeue(s, cs);
        return;
    }
    int rows = PQntuples(r->res);
    pl_log_debug("catch-up: device %lld chat %lld after %lld: %d rows", (long long)s->device_id, (long long)cs->chat_id,
                 (long long)cs->upto, rows);
    if (rows == 0) {
        /* not a member (any more, or never): nothing of this chat for us */
        cs->target = cs->upto;
        cs->is_capped = false;
        pl_deliver_kick(s);
        return;
    }
    pl_catchup_page_t page = {
        .after = cs->upto,
        .eff = pl_pg_get_int64(r->res, 0, COL_EFF),
        .floor = pl_pg_get_int64(r->res, 0, COL_FLOOR),
        .last = pl_pg_get_int64(r->res, 0, COL_LAST),
        .removed = pl_pg_get_int64(r->res, 0, COL_REMOVED),
        .was_capped = cs->is_capped,
        .page_size = PAGE,
    };
    int64_t seqs[PAGE];
    bool own[PAGE];
    for (int i = 0; i < rows && page.count < PAGE; i++) {
        if (PQgetisnull(r->res, i, COL_MESSAGE + M_SEQ))
            break; /* a member with nothing after eff */
        seqs[page.count] = pl_pg_get_int64(r->res, i, COL_MESSAGE + M_SEQ);
        /* the device's own messages: it has them (common.proto) */
        own[page.count] = pl_pg_get_int64(r->res, i, COL_MESSAGE + M_SENDER_DEVICE) == s->device_id;
        page.count++;
    }
    page.seqs = seqs;
    page.is_own = own;
    if (page.last > cs->known_last)
        cs->known_last = page.last;
    cs->is_capped = false;
    if (!carry_out(s, cs, r->res, &page))
        return;
    cs->target = pl_catchup_next_target(cs->target, cs->upto, page.last, page.removed, cs->is_hinted_in_fetch);
    cs->is_hinted_in_fetch = false;
    if (cs->target > cs->upto)
        requeue(s, cs);
    else
        pl_deliver_kick(s);
}

void pl_catchup_start(pl_stream_t *s, chat_state_t *cs)
{
    pl_messaging_t *m = s->mw->m;
    uint8_t chat[8], account[8], after[8], cap[8];
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", PAGE);
    pl_pg_param_t p[6] = {
        pl_pg_int8(chat, cs->chat_id),
        pl_pg_int8(account, s->account_id),
        pl_pg_int8(after, cs->upto),
        pl_pg_text(limit),
        pl_pg_text(cs->is_capped ? "true" : "false"),
        pl_pg_int8(cap, m->app->cfg->resume_max_per_chat),
    };
    cs->is_fetching = true;
    s->fetches++;
    if (pl_call_query(m->app, s->call, pl_msg_stmt(m, ST_FETCH), pl_id_shard(cs->chat_id), p, 6, PL_PG_IDEMPOTENT,
                      on_fetched, cs) != 0) {
        cs->is_fetching = false;
        s->fetches--;
        pl_call_defer(s->call, RETRY_MS * 1000, on_retry);
    }
}
