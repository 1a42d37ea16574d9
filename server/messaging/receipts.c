/* receipts.c — delivered and read cursors. A device's delivered ack moves
 * its own cursor (where its next resume starts) and its member's cursor in
 * the chat; read moves the member's read cursor. When a member's cursors
 * move, a Receipt goes to whom it concerns (move_cursor says who: the
 * member's other devices, the senders of what is now covered, everyone in
 * a direct chat or when "delivered to all" / "read by all" moves). */
#include <stdio.h>
#include <stdlib.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"

typedef struct cursor_job {
    pl_stream_t *s;
    uint64_t request_id;
    int64_t chat_id;
} cursor_job_t;

/* "{1,2,3}" (a text int8[]) into out; returns the count. */
static size_t parse_array(const char *text, int64_t *out, size_t cap)
{
    size_t n = 0;
    const char *p = text;
    if (*p == '{')
        p++;
    while (*p && *p != '}' && n < cap) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p)
            break;
        out[n++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return n;
}

static void on_moved_result(pl_call_t *call, const pl_pg_result_t *r, cursor_job_t *j);

static void on_moved(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    cursor_job_t *j = user;
    pl_stream_t *s = j->s;
    on_moved_result(call, r, j); /* frees j */
    pl_stream_request_end(s);
}

static void on_moved_result(pl_call_t *call, const pl_pg_result_t *r, cursor_job_t *j)
{
    (void)call;
    pl_stream_t *s = j->s;
    if (s->is_closing) {
        free(j);
        return;
    }
    if (r->code != PL_CODE_OK) {
        pl_stream_error(s, j->request_id, r->code == PL_CODE_DEADLINE_EXCEEDED ? r->code : PL_CODE_UNAVAILABLE,
                        "could not store the cursor; send it again", NULL, 0, NULL);
        free(j);
        return;
    }
    if (pl_pg_get_int64(r->res, 0, 0) != 0) {
        pl_stream_error(s, j->request_id, PL_CODE_PERMISSION_DENIED, "not a member of this chat", NULL, 0, NULL);
        free(j);
        return;
    }
    if (pl_pg_get_bool(r->res, 0, 5)) {
        enum { MAX_NOTIFY = 1100 };
        int64_t *notify = malloc(sizeof(int64_t) * MAX_NOTIFY);
        if (notify) {
            size_t n = parse_array(PQgetvalue(r->res, 0, 6), notify, MAX_NOTIFY);
            parley_internal_v1_NodeEvent ev = {0};
            ev.which_event = parley_internal_v1_NodeEvent_receipt_tag;
            parley_v1_Receipt *rc = &ev.event.receipt;
            rc->chat_id = j->chat_id;
            rc->account_id = s->account_id;
            rc->delivered_seq = pl_pg_get_int64(r->res, 0, 1);
            rc->read_seq = pl_pg_get_int64(r->res, 0, 2);
            rc->delivered_to_all_seq = pl_pg_get_int64(r->res, 0, 3);
            rc->read_by_all_seq = pl_pg_get_int64(r->res, 0, 4);
            pl_fanout(s->mw, &ev, notify, n, true);
            free(notify);
        }
    }
    free(j);
}

void pl_receipts_cursor(pl_stream_t *s, uint64_t request_id, const parley_v1_Cursor *c, bool is_read)
{
    pl_messaging_t *m = s->mw->m;
    if (c->chat_id <= 0 || c->seq < 0 || pl_id_shard(c->chat_id) >= m->app->map.shards) {
        pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, "bad chat_id or seq", NULL, 0, NULL);
        return;
    }
    chat_state_t *cs = pl_deliver_chat(s, c->chat_id, false);
    uint8_t d[8], chat[8], seq[8], a[8], zero[8];
    if (!cs || c->seq > cs->acked) {
        /* this device's own cursor: where its next resume starts */
        pl_pg_param_t p[3] = {pl_pg_int8(d, s->device_id), pl_pg_int8(chat, c->chat_id), pl_pg_int8(seq, c->seq)};
        pl_pg_lock_t dlock = pl_chat_lock(c->chat_id, 1, s->device_id); /* the device's cursor row */
        pl_store_exec_keyed(pl_app_store(m->app, s->mw->w), pl_msg_stmt(m, ST_DEVICE_CURSOR),
                            pl_id_shard(s->device_id), p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT, &dlock, 0, NULL, NULL);
        if (cs)
            cs->acked = c->seq;
    } else if (!is_read) {
        return; /* nothing new */
    }
    cursor_job_t *j = malloc(sizeof(*j));
    if (!j)
        return;
    *j = (cursor_job_t){s, request_id, c->chat_id};
    pl_stream_request_begin(s);
    pl_pg_param_t p[4] = {pl_pg_int8(chat, c->chat_id), pl_pg_int8(a, s->account_id),
                          pl_pg_int8(seq, is_read ? 0 : c->seq), pl_pg_int8(zero, is_read ? c->seq : 0)};
    pl_pg_lock_t lock = pl_chat_lock(c->chat_id, 1, s->account_id); /* the member's row */
    if (pl_call_query_keyed(m->app, s->call, pl_msg_stmt(m, ST_CURSOR), pl_id_shard(c->chat_id), p, 4,
                            PL_PG_WRITE | PL_PG_IDEMPOTENT, &lock, on_moved, j) != 0) {
        free(j);
        s->requests_open--;
        pl_stream_error(s, request_id, PL_CODE_UNAVAILABLE, "server busy; send the cursor again", NULL, 0, NULL);
    }
}

void pl_receipts_deliver(pl_stream_t *s, const parley_v1_Receipt *r)
{
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_receipt_tag;
    ev.event.receipt = *r;
    /* ephemeral: dropped if the client is not reading (GetChat has the state) */
    pl_stream_emit(s, &ev);
}
