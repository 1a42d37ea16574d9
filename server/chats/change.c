/* change.c — running one group function on the chat's shard (the whole
 * change, with its system message, in one statement), and what follows a
 * committed change: the affected accounts' chat lists, reading the chat
 * back, telling the streams, replying. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "messaging/notify.h"
#include "parley/v1/chats.parley.h"

static void on_change_rows(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    int n = PQntuples(res);
    if (n < 1) {
        op->status = -1;
        return;
    }
    op->status = (int)pl_pg_get_int64(res, 0, 0);
    op->seq = pl_pg_get_int64(res, 0, 1);
    if (PQnfields(res) > 5 && !PQgetisnull(res, 0, 5)) /* create_group: a retry's group */
        op->chat_id = pl_pg_get_int64(res, 0, 5);
    op->last_seq = op->seq;
    free(op->listings);
    op->listings = NULL;
    op->listing_count = 0;
    if (op->status != CHG_OK)
        return;
    /* durable from here on: finish the side effects even if the client left */
    op->base->is_committed = true;
    op->listings = calloc((size_t)n, sizeof(*op->listings));
    if (!op->listings) {
        pl_log_error("chats %s: out of memory after changing chat %lld; chat lists not updated", op->base->name,
                     (long long)op->chat_id);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 2))
            continue;
        pl_chats_listing_t *l = &op->listings[op->listing_count++];
        l->account_id = pl_pg_get_int64(res, i, 2);
        l->chat_id = op->chat_id;
        l->kind = CHATS_KIND_GROUP;
        l->joined = pl_pg_get_int64(res, i, 3);
        l->removed = pl_pg_get_int64(res, i, 4); /* NULL reads as 0: a member */
        l->membership_seq = op->seq;
    }
}

static void on_changed(pl_chats_op_t *op)
{
    switch (op->status) {
    case CHG_OK:
    case CHG_UNCHANGED: op->change_done(op); return;
    case CHG_NO_CHAT: pl_chats_fail(op, PL_CODE_NOT_FOUND, "chat not found"); return;
    case CHG_NOT_GROUP: pl_chats_fail(op, PL_CODE_FAILED_PRECONDITION, "not a group chat"); return;
    case CHG_NOT_ADMIN: pl_chats_fail(op, PL_CODE_PERMISSION_DENIED, "only group admins can do this"); return;
    case CHG_NOT_MEMBER:
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "account %lld is not a member of this group", (long long)op->target);
        return;
    case CHG_FULL:
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "a group has at most %d members",
                      op->base->app->cfg->group_max_members);
        return;
    case CHG_LAST_ADMIN:
        pl_chats_fail(op, PL_CODE_FAILED_PRECONDITION, "a group needs an admin: make another member admin first");
        return;
    case CHG_STALE:
        if (op->change_retry && ++op->attempts < CHATS_STALE_ATTEMPTS) {
            pl_log_debug("chats %s: chat %lld changed meanwhile; reading it again", op->base->name,
                         (long long)op->chat_id);
            op->change_retry(op);
            return;
        }
        pl_chats_fail(op, PL_CODE_ABORTED, "the group is changing concurrently; retry");
        return;
    default:
        pl_log_error("chats %s: chat %lld: unexpected status %d", op->base->name, (long long)op->chat_id, op->status);
        pl_chats_fail(op, PL_CODE_INTERNAL, "internal error");
    }
}

void pl_chats_change(pl_chats_op_t *op, int stmt, const pl_pg_param_t *params, int nparams, pl_chats_step_fn retry,
                     pl_chats_step_fn on_done)
{
    op->change_retry = retry;
    op->change_done = on_done;
    op->status = -1;
    pl_chats_query(op, stmt, op->chat_shard, params, nparams, PL_PG_WRITE, 0, on_change_rows, NULL, "change group");
    pl_chats_then(op, on_changed);
}

bool pl_chats_check_view(pl_chats_op_t *op, bool need_admin)
{
    const pl_chats_member_t *me = op->view.is_found ? pl_chats_view_member(&op->view, op->base->who.account_id) : NULL;
    if (!me) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "chat not found");
        return false;
    }
    if (op->view.kind != CHATS_KIND_GROUP) {
        pl_chats_fail(op, PL_CODE_FAILED_PRECONDITION, "not a group chat");
        return false;
    }
    if (need_admin && me->role != CHATS_ROLE_ADMIN) {
        pl_chats_fail(op, PL_CODE_PERMISSION_DENIED, "only group admins can do this");
        return false;
    }
    return true;
}

bool pl_chats_take_chat_id(pl_chats_op_t *op, int64_t chat_id)
{
    if (chat_id == 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "chat_id is required");
        return false;
    }
    if (!pl_chats_is_chat_id(op->base->app, chat_id)) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "chat not found");
        return false;
    }
    op->chat_id = chat_id;
    op->chat_shard = pl_id_shard(chat_id);
    return true;
}

static bool contains(const int64_t *ids, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

void pl_chats_notify(pl_chats_op_t *op, int64_t seq)
{
    size_t cap = op->view.member_count + op->listing_count + 1;
    int64_t *acc = malloc(cap * sizeof(*acc));
    if (!acc) {
        pl_log_error("chats %s: out of memory; chat %lld changed without notifying streams", op->base->name,
                     (long long)op->chat_id);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < op->view.member_count; i++)
        acc[n++] = op->view.members[i].account_id;
    /* those removed by the change see their removal; the view lacks them
     * (added members are in it already) */
    for (size_t i = 0; i < op->listing_count; i++)
        if (op->listings[i].removed && !contains(acc, n, op->listings[i].account_id))
            acc[n++] = op->listings[i].account_id;
    if (!op->view.is_found) /* could not read the members back: tell those we know of */
        for (size_t i = 0; i < op->listing_count; i++)
            if (!contains(acc, n, op->listings[i].account_id))
                acc[n++] = op->listings[i].account_id;
    pl_notify_chat_changed(op->base->app, pl_call_worker(op->base->call), op->chat_id, seq, acc, n);
    free(acc);
}

static void finish_reply(pl_chats_op_t *op)
{
    if (!op->view.is_found)
        pl_log_error("chats %s: chat %lld changed (seq %lld) but could not be read back", op->base->name,
                     (long long)op->chat_id, (long long)op->last_seq);
    int64_t seq = op->view.last_seq > op->last_seq ? op->view.last_seq : op->last_seq;
    pl_chats_notify(op, seq);
    if (op->is_leave_reply) {
        parley_v1_LeaveGroupResponse resp = {0};
        resp.seq = op->seq;
        parley_v1_Chats_LeaveGroup_reply(op->base->call, &resp);
    } else {
        pl_chats_reply_chat(op);
    }
}

/* The test-only fault ($PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT): a crash
 * between the chat's shard and the accounts' shards, which the repair
 * (repair.c) has to make good. SIGKILL, as a crash would: nothing is
 * flushed or cleaned up. */
static void maybe_crash(const pl_chats_op_t *op)
{
    if (!op->svc->crash_after[0] || !op->base->is_committed || strcmp(op->svc->crash_after, op->base->name) != 0)
        return;
    pl_log_error("chats %s: chat %lld committed (seq %lld); TEST HOOK: killing this process before the chat lists "
                 "are written",
                 op->base->name, (long long)op->chat_id, (long long)op->seq);
    raise(SIGKILL);
}

void pl_chats_finish_change(pl_chats_op_t *op)
{
    maybe_crash(op);
    pl_chats_put_listings(op, op->listings, op->listing_count);
    pl_chats_load(op, PL_OP_SOFT);
    pl_chats_then(op, finish_reply);
}
