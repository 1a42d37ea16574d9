/* receipts.c — delivered and read cursors. A device's delivered ack moves
 * its own cursor (where its next resume starts) and its member's cursor in
 * the chat; read moves the member's read cursor. When a member's cursors
 * move, a Receipt goes to whom it concerns (move_cursor says who: the
 * member's other devices, the senders of what is now covered, everyone in
 * a direct chat or when "delivered to all" / "read by all" moves). */
#include <stdio.h>
#include <stdlib.h>

#include "app/log.h"
#include "app/op.h"
#include "messaging/messaging_internal.h"

typedef struct cursor_job {
    pl_stream_t *s;
    uint64_t request_id;
    int64_t chat_id;
    int64_t seq; /* what the client acked */
    bool is_read;
} cursor_job_t;

/* ST_CURSOR and ST_SENDER_CURSOR columns */
enum { C_STATUS, C_DELIVERED, C_READ, C_DELIVERED_ALL, C_READ_ALL, C_CHANGED, C_NOTIFY };
#define C_LAST_SEQ 7    /* ST_CURSOR: the chat's last seq */
#define C_SENDER_CHAT 7 /* ST_SENDER_CURSOR: the chat and the sender */
#define C_SENDER_ACCOUNT 8

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

/* A member's cursors moved (row 0 of res): a Receipt to whom the statement
 * said (the notify column). */
static void publish_receipt(pl_msg_worker_t *mw, const PGresult *res, int64_t chat_id, int64_t account_id)
{
    if (!pl_pg_get_bool(res, 0, C_CHANGED))
        return;
    enum { MAX_NOTIFY = 1100 };
    int64_t *notify = malloc(sizeof(int64_t) * MAX_NOTIFY);
    if (!notify)
        return;
    size_t n = parse_array(PQgetvalue(res, 0, C_NOTIFY), notify, MAX_NOTIFY);
    parley_internal_v1_NodeEvent ev = {0};
    ev.which_event = parley_internal_v1_NodeEvent_receipt_tag;
    parley_v1_Receipt *rc = &ev.event.receipt;
    rc->chat_id = chat_id;
    rc->account_id = account_id;
    rc->delivered_seq = pl_pg_get_int64(res, 0, C_DELIVERED);
    rc->read_seq = pl_pg_get_int64(res, 0, C_READ);
    rc->delivered_to_all_seq = pl_pg_get_int64(res, 0, C_DELIVERED_ALL);
    rc->read_by_all_seq = pl_pg_get_int64(res, 0, C_READ_ALL);
    pl_fanout(mw, &ev, notify, n, true);
    free(notify);
}

static void clamped_error(pl_stream_t *s, const cursor_job_t *j, int64_t last)
{
    char msg[160];
    snprintf(msg, sizeof(msg), "%s cursor: chat %lld has no seq %lld (its last is %lld); stored as %lld",
             j->is_read ? "read" : "delivered", (long long)j->chat_id, (long long)j->seq, (long long)last,
             (long long)last);
    pl_stream_error(s, j->request_id, PL_CODE_OUT_OF_RANGE, msg, NULL, 0, NULL);
}

/* This device's own cursor, where its next resume starts; only once the
 * member's cursor proved the chat is the account's, and never past the
 * chat's last seq. */
static void store_device_cursor(pl_stream_t *s, int64_t chat_id, int64_t seq)
{
    pl_messaging_t *m = s->mw->m;
    chat_state_t *cs = pl_deliver_chat(s, chat_id, false);
    if (cs && seq <= cs->acked)
        return;
    if (cs)
        cs->acked = seq;
    uint8_t d[8], chat[8], sq[8];
    pl_pg_param_t p[3] = {pl_pg_int8(d, s->device_id), pl_pg_int8(chat, chat_id), pl_pg_int8(sq, seq)};
    pl_pg_lock_t dlock = pl_chat_lock(chat_id, 1, s->device_id); /* the device's cursor row */
    pl_store_exec_keyed(pl_app_store(m->app, s->mw->w), pl_msg_stmt(m, ST_DEVICE_CURSOR), pl_id_shard(s->device_id), p,
                        3, PL_PG_WRITE | PL_PG_IDEMPOTENT, &dlock, 0, NULL, NULL);
}

static void on_moved(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    cursor_job_t *j = op->state;
    pl_stream_t *s = j->s;
    if (s->is_closing)
        return;
    if (r->code != PL_CODE_OK) {
        pl_op_fail(op, r->code == PL_CODE_DEADLINE_EXCEEDED ? r->code : PL_CODE_UNAVAILABLE,
                   "could not store the cursor; send it again");
        return;
    }
    if (pl_pg_get_int64(r->res, 0, C_STATUS) != 0) {
        /* not a member now: a chat the device knew (it was removed) still
         * takes the device's ack of what it saw before, or every resume
         * would send that part again */
        chat_state_t *cs = pl_deliver_chat(s, j->chat_id, false);
        if (cs && cs->is_account_chat)
            store_device_cursor(s, j->chat_id, j->seq < cs->known_last ? j->seq : cs->known_last);
        else
            pl_op_fail(op, PL_CODE_NOT_FOUND, "not a chat of this account");
        return;
    }
    int64_t last = pl_pg_get_int64(r->res, 0, C_LAST_SEQ);
    int64_t seq = j->seq;
    if (seq > last) {
        clamped_error(s, j, last);
        seq = last;
    }
    store_device_cursor(s, j->chat_id, seq);
    publish_receipt(s->mw, r->res, j->chat_id, s->account_id);
}

/* A failure answers this request on the stream; the stream goes on. */
static void cursor_error(pl_op_t *op, pl_code_t code, const char *message)
{
    cursor_job_t *j = op->state;
    if (!j->s->is_closing)
        pl_stream_error(j->s, j->request_id, code, message, NULL, 0, NULL);
}

static void cursor_end(pl_op_t *op)
{
    pl_stream_request_end(((cursor_job_t *)op->state)->s);
}

static void move_cursor(pl_op_t *op)
{
    cursor_job_t *j = op->state;
    pl_messaging_t *m = j->s->mw->m;
    uint8_t chat[8], seq[8], a[8], zero[8];
    pl_pg_param_t p[4] = {pl_pg_int8(chat, j->chat_id), pl_pg_int8(a, op->who.account_id),
                          pl_pg_int8(seq, j->is_read ? 0 : j->seq), pl_pg_int8(zero, j->is_read ? j->seq : 0)};
    pl_pg_lock_t lock = pl_chat_lock(j->chat_id, 1, op->who.account_id); /* the member's row */
    pl_op_query(op, pl_msg_stmt(m, ST_CURSOR), pl_id_shard(j->chat_id), p, 4, PL_PG_WRITE | PL_PG_IDEMPOTENT, &lock,
                PL_OP_ANY_RESULT, on_moved, NULL, "cursor");
}

void pl_receipts_cursor(pl_stream_t *s, uint64_t request_id, const parley_v1_Cursor *c, bool is_read)
{
    pl_messaging_t *m = s->mw->m;
    if (c->chat_id <= 0 || c->seq < 0 || pl_id_shard(c->chat_id) >= m->app->map.shards) {
        pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, "bad chat_id or seq", NULL, 0, NULL);
        return;
    }
    /* a seq past the chat's end is clamped once the chat's shard said
     * where the end is (on_moved): stored as is, it would hide the chat's
     * next messages from this device */
    chat_state_t *cs = pl_deliver_chat(s, c->chat_id, false);
    if (cs && c->seq <= cs->acked && !is_read)
        return; /* nothing new */
    pl_op_t *op = pl_op_try_new(m->app, s->call, "cursor", sizeof(cursor_job_t));
    if (!op) {
        pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL, 0, NULL);
        return;
    }
    *(cursor_job_t *)op->state = (cursor_job_t){s, request_id, c->chat_id, c->seq, is_read};
    pl_op_on_error(op, cursor_error);
    pl_stream_request_begin(s);
    pl_op_on_end(op, cursor_end);
    pl_op_run(op, &(pl_principal_t){s->account_id, s->device_id}, move_cursor);
}

static void on_sender_moved(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    if (r->code != PL_CODE_OK) {
        /* the next send or ack moves it; nothing is lost but a receipt */
        pl_log_debug("sender cursor: %s", r->message);
        return;
    }
    publish_receipt(pl_msg_worker(arg, pl_call_worker(op->call)), r->res, pl_pg_get_int64(r->res, 0, C_SENDER_CHAT),
                    pl_pg_get_int64(r->res, 0, C_SENDER_ACCOUNT));
}

void pl_receipts_after_send(pl_op_t *op, pl_messaging_t *m, int64_t chat_id, int64_t seq)
{
    uint8_t chat[8], a[8], sq[8];
    pl_pg_param_t p[3] = {pl_pg_int8(chat, chat_id), pl_pg_int8(a, op->who.account_id), pl_pg_int8(sq, seq)};
    pl_pg_lock_t lock = pl_chat_lock(chat_id, 1, op->who.account_id); /* the member's row, like a cursor move */
    pl_op_query(op, pl_msg_stmt(m, ST_SENDER_CURSOR), pl_id_shard(chat_id), p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT, &lock,
                PL_OP_ANY_RESULT, on_sender_moved, m, "sender cursor");
}

void pl_receipts_deliver(pl_stream_t *s, const parley_v1_Receipt *r)
{
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_receipt_tag;
    ev.event.receipt = *r;
    /* ephemeral: dropped if the client is not reading (GetChat has the state) */
    pl_stream_emit(s, &ev);
}
