/* blocking.c — Block, Unblock, ListBlocked.
 *
 * A block is two facts kept in two places: the blocks row on the blocker's
 * shard (for ListBlocked) and the flag on the pair's direct chat
 * (set_direct_block on pl_direct_chat_shard, creating the chat if needed
 * with an id made on that shard) which the send path checks. Both writes
 * are idempotent and go out together; the reply waits for both. If one
 * fails the client sees the failure and a retry converges. Then the
 * streams re-evaluate presence (pl_notify_privacy_changed).
 * Yourself: INVALID_ARGUMENT; an account that does not exist: NOT_FOUND. */
#include <stdlib.h>

#include "accounts/accounts_internal.h"
#include "app/direct.h"
#include "messaging/notify.h"

/* ---- Block and Unblock ---- */

typedef struct block {
    pl_acct_req_t base;
    int64_t target;
    bool is_on;      /* Block, not Unblock */
    int64_t chat_id; /* their direct chat, from set_direct_block */
} block_t;

static void on_written(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    block_t *b = op->state;
    op->is_committed = true; /* the streams must hear of it, client or not */
    if (PQnfields(res->res) == 1 && PQntuples(res->res) == 1)
        b->chat_id = pl_pg_get_int64(res->res, 0, 0);
}

static void written(pl_op_t *op)
{
    block_t *b = op->state;
    pl_notify_privacy_changed(op->app, pl_call_worker(op->call), op->who.account_id);
    if (b->chat_id) {
        /* typing and sends in their chat consult cached block flags */
        int64_t pair[2] = {op->who.account_id, b->target};
        pl_notify_chat_changed(op->app, pl_call_worker(op->call), b->chat_id, 0, pair, 2);
    }
    if (b->is_on) {
        parley_v1_BlockResponse resp = {0};
        parley_v1_Accounts_Block_reply(op->call, &resp);
    } else {
        parley_v1_UnblockResponse resp = {0};
        parley_v1_Accounts_Unblock_reply(op->call, &resp);
    }
}

static void on_target(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    block_t *b = op->state;
    if (PQntuples(res->res) != 1) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such account");
        return;
    }
    pl_accounts_t *s = b->base.svc;
    int64_t me = op->who.account_id;
    int direct = pl_direct_chat_shard(me, b->target, s->app->map.shards);
    uint8_t bm[8], bt[8], bc[8];
    pl_pg_param_t row[] = {pl_pg_int8(bm, me), pl_pg_int8(bt, b->target)};
    pl_pg_param_t chat[] = {pl_pg_int8(bc, pl_id_new(&s->app->ids, direct)), row[0], row[1],
                            pl_pg_text(b->is_on ? "true" : "false")};
    const char *what = b->is_on ? "block" : "unblock";
    pl_acct_query(op, (b->is_on ? ST_BLOCK : ST_UNBLOCK), pl_acct_own_shard(op), row, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT,
                  on_written, what);
    pl_acct_query(op, ST_SET_DIRECT_BLOCK, direct, chat, 4, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_written, what);
}

static void block_or_unblock(pl_op_t *op, int64_t target, bool is_on)
{
    block_t *b = op->state;
    b->target = target;
    b->is_on = is_on;
    if (target == op->who.account_id) {
        pl_op_fail(op, PL_CODE_INVALID_ARGUMENT, "you cannot %s yourself", is_on ? "block" : "unblock");
        return;
    }
    if (!pl_acct_id_is_routable(b->base.svc, target)) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such account");
        return;
    }
    uint8_t bt[8];
    pl_pg_param_t p = pl_pg_int8(bt, target);
    pl_acct_query(op, ST_ACCOUNT_EXISTS, pl_id_shard(target), &p, 1, PL_PG_IDEMPOTENT, on_target,
                  "block (account lookup)");
    pl_op_then(op, written);
}

static void block_step(pl_op_t *op)
{
    block_or_unblock(op, ((const parley_v1_BlockRequest *)pl_acct_msg(op))->account_id, true);
}

static void unblock_step(pl_op_t *op)
{
    block_or_unblock(op, ((const parley_v1_UnblockRequest *)pl_acct_msg(op))->account_id, false);
}

void pl_acct_block(pl_call_t *call, const parley_v1_BlockRequest *req, void *svc)
{
    if (req->account_id <= 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "account_id must be positive");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(block_t), block_step);
}

void pl_acct_unblock(pl_call_t *call, const parley_v1_UnblockRequest *req, void *svc)
{
    if (req->account_id <= 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "account_id must be positive");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(block_t), unblock_step);
}

/* ---- ListBlocked ---- */

typedef struct list_blocked {
    pl_acct_req_t base;
    int limit;
    parley_v1_ListBlockedResponse resp;
} list_blocked_t;

static void on_blocked_page(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    list_blocked_t *l = op->state;
    int rows = PQntuples(res->res);
    l->resp.has_more = rows > l->limit;
    for (int i = 0; i < rows && i < l->limit; i++)
        l->resp.account_ids[l->resp.account_ids_count++] = pl_pg_get_int64(res->res, i, 0);
    parley_v1_Accounts_ListBlocked_reply(op->call, &l->resp);
}

static void list_blocked(pl_op_t *op)
{
    list_blocked_t *l = op->state;
    const parley_v1_ListBlockedRequest *req = l->base.msg;
    l->limit = pl_acct_page_limit(req->limit, PL_ACCT_BLOCKED_PAGE_MAX);
    uint8_t b[3][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], op->who.account_id), pl_pg_int8(b[1], req->after_account_id),
                         pl_pg_int8(b[2], l->limit + 1)};
    pl_acct_query(op, ST_LIST_BLOCKED, pl_acct_own_shard(op), p, 3, PL_PG_IDEMPOTENT, on_blocked_page, "list blocked");
}

void pl_acct_list_blocked(pl_call_t *call, const parley_v1_ListBlockedRequest *req, void *svc)
{
    if (req->limit < 0 || req->after_account_id < 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "limit and after_account_id must not be negative");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(list_blocked_t), list_blocked);
}
