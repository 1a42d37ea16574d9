/* history.c — GetHistory: a page of the chat's log as the caller's member
 * sees it (from joining to removal, without expired messages), newest first
 * before a seq or oldest first after one. */
#include <stdio.h>
#include <stdlib.h>

#include "app/auth.h"
#include "messaging/messaging_internal.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/codec.h"

typedef struct history_job {
    pl_messaging_t *m;
    const parley_v1_GetHistoryRequest *req;
    pl_principal_t who;
    int limit;
} history_job_t;

static void on_page(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    history_job_t *j = user;
    if (pl_call_is_finished(call) || pl_call_fail_query(call, r, "history: page")) {
        free(j);
        return;
    }
    int rows = PQntuples(r->res);
    int n = rows > j->limit ? j->limit : rows;
    pl_bytes_t *items = calloc((size_t)(n ? n : 1), sizeof(pl_bytes_t));
    uint8_t **bufs = calloc((size_t)(n ? n : 1), sizeof(uint8_t *));
    bool ok = items && bufs;
    for (int i = 0; ok && i < n; i++) {
        parley_v1_Message msg;
        pl_catchup_row_message(r->res, i, j->who.device_id, &msg);
        msg.chat_id = j->req->chat_id;
        long size = pl_pb_encoded_size(parley_v1_Message_fields, &msg);
        bufs[i] = size > 0 ? malloc((size_t)size) : NULL;
        ok = bufs[i] && pl_pb_encode(parley_v1_Message_fields, &msg, bufs[i], (size_t)size) == 0;
        if (ok)
            items[i] = pl_bytes_of(bufs[i], (size_t)size);
    }
    if (ok) {
        parley_v1_GetHistoryResponse resp = {0};
        resp.messages = (pl_bytes_list_t){items, (size_t)n, (size_t)n};
        resp.has_more = rows > j->limit;
        parley_v1_Messaging_GetHistory_reply(call, &resp);
    } else {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
    }
    for (int i = 0; bufs && i < n; i++)
        free(bufs[i]);
    free(bufs);
    free(items);
    free(j);
}

static void on_member(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    history_job_t *j = user;
    if (pl_call_is_finished(call) || pl_call_fail_query(call, r, "history: membership")) {
        free(j);
        return;
    }
    if (PQntuples(r->res) != 1) {
        /* not a member now or before: as if the chat did not exist */
        pl_call_finish(call, PL_CODE_NOT_FOUND, "no such chat");
        free(j);
        return;
    }
    const parley_v1_GetHistoryRequest *req = j->req;
    bool before = req->before_seq > 0;
    uint8_t chat[8], account[8], seq[8];
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", j->limit + 1); /* one more: has_more */
    pl_pg_param_t p[4] = {pl_pg_int8(chat, req->chat_id), pl_pg_int8(account, j->who.account_id),
                          pl_pg_int8(seq, before ? req->before_seq : req->after_seq), pl_pg_text(limit)};
    if (pl_call_query(j->m->app, call, pl_msg_stmt(j->m, before ? ST_HISTORY_BEFORE : ST_HISTORY_AFTER),
                      pl_id_shard(req->chat_id), p, 4, PL_PG_IDEMPOTENT, on_page, j) != 0) {
        pl_call_finish(call, PL_CODE_UNAVAILABLE, "server busy; retry");
        free(j);
    }
}

static void on_authed(pl_call_t *call, const pl_principal_t *who, void *user)
{
    pl_messaging_t *m = user;
    const parley_v1_GetHistoryRequest *req = pl_call_user(call);
    int max = m->app->cfg->history_page_max;
    if (req->chat_id <= 0 || pl_id_shard(req->chat_id) >= m->app->map.shards) {
        pl_call_finish(call, PL_CODE_NOT_FOUND, "no such chat");
        return;
    }
    if (req->limit < 0 || req->limit > max || req->before_seq < 0 || req->after_seq < 0 ||
        (req->before_seq && req->after_seq)) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT,
                      "limit must be 0..%d; give before_seq or after_seq, not both, and not negative", max);
        return;
    }
    history_job_t *j = malloc(sizeof(*j));
    if (!j) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    *j = (history_job_t){m, req, *who, req->limit ? req->limit : (max < 50 ? max : 50)};
    uint8_t chat[8], account[8];
    pl_pg_param_t p[2] = {pl_pg_int8(chat, req->chat_id), pl_pg_int8(account, who->account_id)};
    if (pl_call_query(m->app, call, pl_msg_stmt(m, ST_IS_MEMBER), pl_id_shard(req->chat_id), p, 2, PL_PG_IDEMPOTENT,
                      on_member, j) != 0) {
        pl_call_finish(call, PL_CODE_UNAVAILABLE, "server busy; retry");
        free(j);
    }
}

void pl_history_get(pl_call_t *call, const parley_v1_GetHistoryRequest *req, void *svc)
{
    pl_call_set_user(call, (void *)req, NULL); /* valid until the call ends */
    pl_auth_call(((pl_messaging_t *)svc)->app, call, on_authed, svc);
}
