/* list.c — ListChats: the caller's chats by chat_id, from the chat list on
 * the caller's shard, with each chat's last seq, unread count and the
 * caller's cursors from the chats' shards (one query per chat shard, the
 * page's ids as an array).
 *
 * Only current memberships are listed: a chat you left or were removed
 * from disappears from the list (its history up to your removal stays
 * readable through GetHistory while the log keeps it). The chat's shard is
 * the source of truth: a listed chat it says you were removed from is
 * left out, and the list row is repaired. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "parley/v1/chats.parley.h"

static pl_chats_list_entry_t *find_entry(pl_chats_op_t *op, int64_t chat_id)
{
    size_t lo = 0, hi = op->entry_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (op->entries[mid].chat_id < chat_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < op->entry_count && op->entries[lo].chat_id == chat_id ? &op->entries[lo] : NULL;
}

static void list_reply(pl_chats_op_t *op)
{
    int64_t me = op->base->who.account_id;
    parley_v1_ListChatsResponse *resp = calloc(1, sizeof(*resp));
    pl_chats_listing_t *repairs = calloc(op->entry_count ? op->entry_count : 1, sizeof(*repairs));
    if (!resp || !repairs) {
        free(resp);
        free(repairs);
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t nrepairs = 0;
    for (size_t i = 0; i < op->entry_count; i++) {
        pl_chats_list_entry_t *e = &op->entries[i];
        if (e->is_current) {
            resp->chats[resp->chats_count++] = e->summary;
        } else if (e->is_stale) {
            repairs[nrepairs++] = (pl_chats_listing_t){
                .account_id = me,
                .chat_id = e->chat_id,
                .peer = e->peer,
                .joined = e->joined,
                .removed = e->removed,
                .membership_seq = e->removed,
                .kind = e->kind,
            };
        } else {
            pl_log_warn("chats ListChats: account %lld lists chat %lld, which has no membership of it", (long long)me,
                        (long long)e->chat_id);
        }
    }
    resp->has_more = op->has_more;
    if (nrepairs) {
        pl_log_info("chats ListChats: repairing %zu stale chat list rows of account %lld", nrepairs, (long long)me);
        pl_chats_put_listings(op, repairs, nrepairs);
    }
    parley_v1_Chats_ListChats_reply(op->base->call, resp);
    free(resp);
    free(repairs);
}

static void on_details(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    int64_t me = op->base->who.account_id;
    for (int i = 0; i < PQntuples(res); i++) {
        pl_chats_list_entry_t *e = find_entry(op, pl_pg_get_int64(res, i, 0));
        if (!e)
            continue;
        e->kind = (int)pl_pg_get_int64(res, i, 1);
        e->joined = pl_pg_get_int64(res, i, 6);
        if (!PQgetisnull(res, i, 7)) {
            e->is_stale = true;
            e->removed = pl_pg_get_int64(res, i, 7);
            continue;
        }
        int64_t a = pl_pg_get_int64(res, i, 8), b = pl_pg_get_int64(res, i, 9);
        parley_v1_ChatSummary *s = &e->summary;
        s->chat_id = e->chat_id;
        if (e->kind == CHATS_KIND_DIRECT) {
            s->kind = parley_v1_ChatKind_CHAT_KIND_DIRECT;
            s->peer_account_id = a == me ? b : a;
        } else {
            s->kind = parley_v1_ChatKind_CHAT_KIND_GROUP;
            snprintf(s->name, sizeof(s->name), "%s", PQgetvalue(res, i, 2));
        }
        s->last_seq = pl_pg_get_int64(res, i, 3);
        s->my_delivered_seq = pl_pg_get_int64(res, i, 4);
        s->my_read_seq = pl_pg_get_int64(res, i, 5);
        s->unread_count = pl_pg_get_int64(res, i, 10);
        e->is_current = true;
    }
}

static void on_page(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    size_t limit = op->list_limit;
    size_t n = (size_t)PQntuples(res);
    op->has_more = n > limit;
    if (n > limit)
        n = limit;
    op->entries = calloc(n ? n : 1, sizeof(*op->entries));
    if (!op->entries) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        pl_chats_list_entry_t *e = &op->entries[i];
        e->chat_id = pl_pg_get_int64(res, (int)i, 0);
        e->kind = (int)pl_pg_get_int64(res, (int)i, 1);
        e->peer = pl_pg_get_int64(res, (int)i, 2);
    }
    op->entry_count = n;
}

static void list_details(pl_chats_op_t *op)
{
    size_t n = op->entry_count;
    int64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!ids) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    size_t valid = 0;
    for (size_t i = 0; i < n; i++)
        if (pl_chats_is_chat_id(op->base->app, op->entries[i].chat_id))
            ids[valid++] = op->entries[i].chat_id;
    uint8_t me[8], cap[8];
    pl_pg_param_t p[2] = {pl_pg_int8(me, op->base->who.account_id), pl_pg_int8(cap, CHATS_UNREAD_CAP)};
    pl_scatter_t sc = {.stmt = ST_LIST_DETAILS,
                       .params = p,
                       .nparams = 2,
                       .array_at = 1,
                       .flags = PL_PG_IDEMPOTENT,
                       .ids = ids,
                       .n = valid};
    if (valid)
        pl_chats_scatter(op, &sc, on_details, "read chats");
    free(ids);
    pl_chats_then(op, list_reply);
}

static void list_start(pl_chats_op_t *op)
{
    const parley_v1_ListChatsRequest *req = op->req;
    if (req->limit < 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "limit must not be negative");
        return;
    }
    if (req->after_chat_id < 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "after_chat_id must not be negative");
        return;
    }
    /* 0: the default; more than the maximum: the maximum */
    size_t limit = req->limit == 0 || req->limit > CHATS_LIST_MAX ? CHATS_LIST_MAX : (size_t)req->limit;
    op->list_limit = limit;
    uint8_t b[3][8];
    pl_pg_param_t p[3] = {pl_pg_int8(b[0], op->base->who.account_id), pl_pg_int8(b[1], req->after_chat_id),
                          pl_pg_int8(b[2], (int64_t)limit + 1)};
    pl_chats_query(op, ST_LIST_PAGE, pl_id_shard(op->base->who.account_id), p, 3, PL_PG_IDEMPOTENT, 0, on_page, NULL,
                   "read chat list");
    pl_chats_then(op, list_details);
}

void pl_chats_list(pl_call_t *call, const parley_v1_ListChatsRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "ListChats", list_start);
}
