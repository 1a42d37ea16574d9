/* direct.c — OpenDirectChat: the one chat of a pair of accounts, created
 * on first use on the pair's shard (app/direct.h). ensure_direct_chat
 * (migrations/0003_direct_chats.sql) makes a second one impossible, so
 * opening it twice, or from both sides at once, yields the same chat. */
#include "app/direct.h"

#include <stdio.h>
#include <stdlib.h>

#include "chats/chats_internal.h"

static void on_other(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    if (PQntuples(res) == 1) {
        op->other_exists = true;
        op->other_blocks = pl_pg_get_bool(res, 0, 1);
    }
}

static void on_self(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    if (PQntuples(res) == 1)
        op->self_blocks = pl_pg_get_bool(res, 0, 1);
}

static void opened(pl_chats_op_t *op)
{
    if (op->is_created)
        pl_chats_notify(op, 0);
    pl_chats_reply_chat(op);
}

static void on_ensured(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    if (PQntuples(res) != 1) {
        pl_chats_fail(op, PL_CODE_INTERNAL, "internal error");
        return;
    }
    op->chat_id = pl_pg_get_int64(res, 0, 0);
    op->is_created = pl_pg_get_bool(res, 0, 1);
    op->other_blocks = pl_pg_get_bool(res, 0, 4) || pl_pg_get_bool(res, 0, 5);
}

static void ensured(pl_chats_op_t *op)
{
    if (op->other_blocks) {
        pl_chats_fail(op, PL_CODE_PERMISSION_DENIED, "blocked: you cannot chat with this account");
        return;
    }
    /* the chat exists for good now: list it for both, whatever the client does */
    op->base->is_committed = true;
    int64_t me = op->base->who.account_id, other = op->target;
    pl_chats_listing_t rows[2] = {
        {.account_id = me, .chat_id = op->chat_id, .peer = other, .kind = CHATS_KIND_DIRECT},
        {.account_id = other, .chat_id = op->chat_id, .peer = me, .kind = CHATS_KIND_DIRECT},
    };
    pl_chats_put_listings(op, rows, 2);
    /* for pl_chats_notify: both are in the view; nobody was removed */
    pl_chats_load(op, PL_OP_SOFT);
    pl_chats_then(op, opened);
}

static void checked(pl_chats_op_t *op)
{
    if (!op->other_exists) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "account %lld does not exist", (long long)op->target);
        return;
    }
    if (op->other_blocks || op->self_blocks) {
        pl_chats_fail(op, PL_CODE_PERMISSION_DENIED, "blocked: you cannot chat with this account");
        return;
    }
    int64_t me = op->base->who.account_id;
    op->chat_shard = pl_direct_chat_shard(me, op->target, op->base->app->map.shards);
    int64_t new_id = pl_id_new(&op->svc->app->ids, op->chat_shard);
    uint8_t b[3][8];
    pl_pg_param_t p[3] = {pl_pg_int8(b[0], new_id), pl_pg_int8(b[1], me), pl_pg_int8(b[2], op->target)};
    pl_chats_query(op, ST_DIRECT_ENSURE, op->chat_shard, p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT, 0, on_ensured, NULL,
                   "ensure direct chat");
    pl_chats_then(op, ensured);
}

static void open_start(pl_chats_op_t *op)
{
    const parley_v1_OpenDirectChatRequest *req = op->req;
    int64_t me = op->base->who.account_id, other = req->account_id;
    if (other == 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "account_id is required");
        return;
    }
    if (other == me) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "a direct chat needs another account");
        return;
    }
    if (!pl_chats_is_account_id(op->base->app, other)) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "account %lld does not exist", (long long)other);
        return;
    }
    op->target = other;
    /* the other account exists and has not blocked me (its shard); I have
     * not blocked it (mine) */
    char other_arr[32], me_arr[32];
    uint8_t b[2][8];
    snprintf(other_arr, sizeof(other_arr), "{%lld}", (long long)other);
    snprintf(me_arr, sizeof(me_arr), "{%lld}", (long long)me);
    pl_pg_param_t p1[2] = {pl_pg_text(other_arr), pl_pg_int8(b[0], me)};
    pl_pg_param_t p2[2] = {pl_pg_text(me_arr), pl_pg_int8(b[1], other)};
    pl_chats_query(op, ST_ACCOUNTS_CHECK, pl_id_shard(other), p1, 2, PL_PG_IDEMPOTENT, 0, on_other, NULL,
                   "account check");
    pl_chats_query(op, ST_ACCOUNTS_CHECK, pl_id_shard(me), p2, 2, PL_PG_IDEMPOTENT, 0, on_self, NULL, "block check");
    pl_chats_then(op, checked);
}

void pl_chats_open_direct(pl_call_t *call, const parley_v1_OpenDirectChatRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "OpenDirectChat", open_start);
}
