/* history.c — GetHistory: a page of the chat's log as the caller's member
 * sees it (from joining to removal, without expired messages), newest first
 * before a seq or oldest first after one. */
#include <stdio.h>

#include "app/op.h"
#include "messaging/messaging_internal.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/codec.h"

typedef struct history {
    pl_messaging_t *m;
    const parley_v1_GetHistoryRequest *req;
    int limit;
} history_t;

static void on_page(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    history_t *h = op->state;
    int rows = PQntuples(r->res);
    int n = rows > h->limit ? h->limit : rows;
    pl_bytes_t *items = pl_op_alloc(op, sizeof(pl_bytes_t) * (size_t)n);
    if (!items) {
        pl_op_fail_nomem(op);
        return;
    }
    for (int i = 0; i < n; i++) {
        parley_v1_Message msg;
        pl_catchup_row_message(r->res, i, op->who.device_id, &msg);
        msg.chat_id = h->req->chat_id;
        long size = pl_pb_encoded_size(parley_v1_Message_fields, &msg);
        uint8_t *buf = size > 0 ? pl_op_alloc(op, (size_t)size) : NULL;
        if (!buf || pl_pb_encode(parley_v1_Message_fields, &msg, buf, (size_t)size) != 0) {
            pl_op_fail_nomem(op);
            return;
        }
        items[i] = pl_bytes_of(buf, (size_t)size);
    }
    parley_v1_GetHistoryResponse resp = {0};
    resp.messages = (pl_bytes_list_t){items, (size_t)n, (size_t)n};
    resp.has_more = rows > h->limit;
    parley_v1_Messaging_GetHistory_reply(op->call, &resp);
}

static void on_member(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    history_t *h = op->state;
    if (PQntuples(r->res) != 1) {
        /* not a member now or before: as if the chat did not exist */
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such chat");
        return;
    }
    const parley_v1_GetHistoryRequest *req = h->req;
    bool before = req->before_seq > 0;
    uint8_t chat[8], account[8], seq[8];
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", h->limit + 1); /* one more: has_more */
    pl_pg_param_t p[4] = {pl_pg_int8(chat, req->chat_id), pl_pg_int8(account, op->who.account_id),
                          pl_pg_int8(seq, before ? req->before_seq : req->after_seq), pl_pg_text(limit)};
    pl_op_query(op, pl_msg_stmt(h->m, before ? ST_HISTORY_BEFORE : ST_HISTORY_AFTER), pl_id_shard(req->chat_id), p, 4,
                PL_PG_IDEMPOTENT, NULL, 0, on_page, NULL, "page");
}

static void check_member(pl_op_t *op)
{
    history_t *h = op->state;
    const parley_v1_GetHistoryRequest *req = h->req;
    int max = h->m->app->cfg->history_page_max;
    if (req->chat_id <= 0 || pl_id_shard(req->chat_id) >= h->m->app->map.shards) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such chat");
        return;
    }
    if (req->limit < 0 || req->limit > max || req->before_seq < 0 || req->after_seq < 0 ||
        (req->before_seq && req->after_seq)) {
        pl_op_fail(op, PL_CODE_INVALID_ARGUMENT,
                   "limit must be 0..%d; give before_seq or after_seq, not both, and not negative", max);
        return;
    }
    h->limit = req->limit ? req->limit : (max < 50 ? max : 50);
    uint8_t chat[8], account[8];
    pl_pg_param_t p[2] = {pl_pg_int8(chat, req->chat_id), pl_pg_int8(account, op->who.account_id)};
    pl_op_query(op, pl_msg_stmt(h->m, ST_IS_MEMBER), pl_id_shard(req->chat_id), p, 2, PL_PG_IDEMPOTENT, NULL, 0,
                on_member, NULL, "membership");
}

void pl_history_get(pl_call_t *call, const parley_v1_GetHistoryRequest *req, void *svc)
{
    pl_messaging_t *m = svc;
    pl_op_t *op = pl_op_new(m->app, call, "history", sizeof(history_t));
    if (!op)
        return;
    *(history_t *)op->state = (history_t){m, req, 0};
    pl_op_start(op, check_member);
}
