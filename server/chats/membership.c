/* membership.c — AddMembers, RemoveMember, SetRole and LeaveGroup.
 *
 * Admins change membership and roles; any member leaves. Each change is
 * one group function on the chat's shard (change.c), recorded as a system
 * message. Leaving is not rate-limited: nobody should be stuck in a group
 * (think of being added to spam groups faster than the limit allows
 * leaving them). */
#include <stdlib.h>
#include <string.h>

#include "chats/chats_internal.h"

static bool encode(pl_chats_op_t *op, parley_v1_ChatEvent *ev, uint8_t **out, size_t *len)
{
    free(*out);
    *out = NULL;
    int rc = ev ? pl_chats_event_encode(ev, out, len) : -1;
    free(ev);
    if (rc != 0)
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return rc == 0;
}

/* Validates an account id naming a member (NOT_FOUND if it cannot be one). */
static bool take_target(pl_chats_op_t *op, int64_t id)
{
    if (id == 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "account_id is required");
        return false;
    }
    op->target = id;
    if (!pl_chats_is_account_id(op->base->app, id)) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "account %lld is not a member of this group", (long long)id);
        return false;
    }
    return true;
}

/* ---- AddMembers ---- */

static void add_read(pl_chats_op_t *op);

static void add_checked(pl_chats_op_t *op)
{
    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_MEMBERS_ADDED, op->base->who.account_id);
    if (ev) {
        memcpy(ev->account_ids, op->cands, op->cand_count * sizeof(*op->cands));
        ev->account_ids_count = (pb_size_t)op->cand_count;
    }
    if (!encode(op, ev, &op->event, &op->event_len))
        return;
    char *arr = pl_pg_int8_array(op->cands, op->cand_count);
    if (!arr) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    uint8_t b[4][8];
    pl_pg_param_t p[6] = {
        pl_pg_int8(b[0], op->chat_id),
        pl_pg_int8(b[1], op->base->who.account_id),
        pl_pg_int8(b[2], op->view.members_version),
        pl_pg_text(arr),
        pl_pg_int8(b[3], op->base->app->cfg->group_max_members),
        pl_pg_bytes(op->event, op->event_len),
    };
    pl_chats_change(op, ST_ADD_MEMBERS, p, 6, add_read, pl_chats_finish_change);
    free(arr);
}

static void add_filter(pl_chats_op_t *op)
{
    if (!pl_chats_check_view(op, true))
        return;
    /* existing members are ignored; removed ones come back */
    free(op->cands);
    op->cands = malloc(op->id_count * sizeof(*op->cands));
    op->cand_count = 0;
    if (!op->cands) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < op->id_count; i++)
        if (!pl_chats_view_member(&op->view, op->ids[i]))
            op->cands[op->cand_count++] = op->ids[i];
    if (op->cand_count == 0) {
        pl_chats_reply_chat(op);
        return;
    }
    int max = op->base->app->cfg->group_max_members;
    if (op->view.member_count + op->cand_count > (size_t)max) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "a group has at most %d members; this one has %zu", max,
                      op->view.member_count);
        return;
    }
    pl_chats_check_accounts(op, op->cands, op->cand_count, op->base->who.account_id, add_checked);
}

static void add_read(pl_chats_op_t *op)
{
    pl_chats_load(op, 0);
    pl_chats_then(op, add_filter);
}

static void add_start(pl_chats_op_t *op)
{
    const parley_v1_AddMembersRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    size_t n = req->account_ids_count;
    if (n == 0) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "account_ids is empty");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t id = req->account_ids[i];
        if (!pl_chats_is_account_id(op->base->app, id)) {
            pl_chats_fail(op, id <= 0 ? PL_CODE_INVALID_ARGUMENT : PL_CODE_NOT_FOUND, "account %lld does not exist",
                          (long long)id);
            return;
        }
    }
    op->ids = malloc(n * sizeof(*op->ids));
    if (!op->ids) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(op->ids, req->account_ids, n * sizeof(*op->ids));
    op->id_count = n;
    if (pl_ids_sort_unique(op->ids, n) != n) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "account_ids has duplicates");
        return;
    }
    pl_chats_throttle(op, add_read);
}

void pl_chats_add_members(pl_call_t *call, const parley_v1_AddMembersRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "AddMembers", add_start);
}

/* ---- RemoveMember ---- */

static void remove_apply(pl_chats_op_t *op)
{
    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_MEMBER_REMOVED, op->base->who.account_id);
    if (ev) {
        ev->account_ids[0] = op->target;
        ev->account_ids_count = 1;
    }
    if (!encode(op, ev, &op->event, &op->event_len))
        return;
    uint8_t b[3][8];
    pl_pg_param_t p[4] = {
        pl_pg_int8(b[0], op->chat_id),
        pl_pg_int8(b[1], op->base->who.account_id),
        pl_pg_int8(b[2], op->target),
        pl_pg_bytes(op->event, op->event_len),
    };
    pl_chats_change(op, ST_REMOVE_MEMBER, p, 4, NULL, pl_chats_finish_change);
}

static void remove_start(pl_chats_op_t *op)
{
    const parley_v1_RemoveMemberRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    if (req->account_id != 0 && req->account_id == op->base->who.account_id) {
        pl_chats_leave_start(op); /* removing yourself is leaving */
        return;
    }
    if (!take_target(op, req->account_id))
        return;
    pl_chats_throttle(op, remove_apply);
}

void pl_chats_remove_member(pl_call_t *call, const parley_v1_RemoveMemberRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "RemoveMember", remove_start);
}

/* ---- SetRole ---- */

static void role_reply(pl_chats_op_t *op)
{
    pl_chats_reply_chat(op);
}

static void role_done(pl_chats_op_t *op)
{
    if (op->status == CHG_UNCHANGED) {
        pl_chats_load(op, 0);
        pl_chats_then(op, role_reply);
        return;
    }
    pl_chats_finish_change(op);
}

static void role_apply(pl_chats_op_t *op)
{
    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_ROLE_CHANGED, op->base->who.account_id);
    if (ev) {
        ev->account_ids[0] = op->target;
        ev->account_ids_count = 1;
        ev->role = op->role == CHATS_ROLE_ADMIN ? parley_v1_Role_ROLE_ADMIN : parley_v1_Role_ROLE_MEMBER;
    }
    if (!encode(op, ev, &op->event, &op->event_len))
        return;
    uint8_t b[4][8];
    pl_pg_param_t p[5] = {
        pl_pg_int8(b[0], op->chat_id), pl_pg_int8(b[1], op->base->who.account_id), pl_pg_int8(b[2], op->target),
        pl_pg_int8(b[3], op->role),    pl_pg_bytes(op->event, op->event_len),
    };
    pl_chats_change(op, ST_SET_ROLE, p, 5, NULL, role_done);
}

static void role_start(pl_chats_op_t *op)
{
    const parley_v1_SetRoleRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    if (req->role != parley_v1_Role_ROLE_MEMBER && req->role != parley_v1_Role_ROLE_ADMIN) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "role must be ROLE_MEMBER or ROLE_ADMIN");
        return;
    }
    if (!take_target(op, req->account_id))
        return;
    op->role = req->role == parley_v1_Role_ROLE_ADMIN ? CHATS_ROLE_ADMIN : CHATS_ROLE_MEMBER;
    pl_chats_throttle(op, role_apply);
}

void pl_chats_set_role(pl_call_t *call, const parley_v1_SetRoleRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "SetRole", role_start);
}

/* ---- LeaveGroup (and RemoveMember of oneself) ---- */

static void leave_done(pl_chats_op_t *op)
{
    if (op->promote)
        op->last_seq = op->seq + 1; /* the ROLE_CHANGED right after MEMBER_LEFT */
    pl_chats_finish_change(op);
}

static void leave_read(pl_chats_op_t *op);

/* The last admin leaving promotes the longest-standing remaining member:
 * the smallest joined_seq, then the smallest account id (the view's
 * order). It is a second system message, ROLE_CHANGED by the leaver, right
 * after MEMBER_LEFT, so devices see it like any other promotion. */
static void leave_apply(pl_chats_op_t *op)
{
    if (!pl_chats_check_view(op, false))
        return;
    const pl_chats_view_t *v = &op->view;
    int64_t me = op->base->who.account_id;
    bool other_admin = false;
    op->promote = 0;
    for (size_t i = 0; i < v->member_count; i++) {
        const pl_chats_member_t *m = &v->members[i];
        if (m->account_id == me)
            continue;
        if (m->role == CHATS_ROLE_ADMIN)
            other_admin = true;
        if (!op->promote)
            op->promote = m->account_id;
    }
    if (other_admin || pl_chats_view_member(v, me)->role != CHATS_ROLE_ADMIN)
        op->promote = 0;

    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_MEMBER_LEFT, me);
    if (ev) {
        ev->account_ids[0] = me;
        ev->account_ids_count = 1;
    }
    if (!encode(op, ev, &op->event, &op->event_len))
        return;
    free(op->event2);
    op->event2 = NULL;
    op->event2_len = 0;
    if (op->promote) {
        ev = pl_chats_event_new(parley_v1_ChatEvent_Type_ROLE_CHANGED, me);
        if (ev) {
            ev->account_ids[0] = op->promote;
            ev->account_ids_count = 1;
            ev->role = parley_v1_Role_ROLE_ADMIN;
        }
        if (!encode(op, ev, &op->event2, &op->event2_len))
            return;
    }
    uint8_t b[4][8];
    pl_pg_param_t p[6] = {
        pl_pg_int8(b[0], op->chat_id),        pl_pg_int8(b[1], me),
        pl_pg_int8(b[2], v->members_version), pl_pg_bytes(op->event, op->event_len),
        pl_pg_int8(b[3], op->promote),        op->event2 ? pl_pg_bytes(op->event2, op->event2_len) : pl_pg_null(),
    };
    pl_chats_change(op, ST_LEAVE_GROUP, p, 6, leave_read, leave_done);
}

static void leave_read(pl_chats_op_t *op)
{
    pl_chats_load(op, 0);
    pl_chats_then(op, leave_apply);
}

void pl_chats_leave_start(pl_chats_op_t *op)
{
    leave_read(op);
}

static void leave_start(pl_chats_op_t *op)
{
    const parley_v1_LeaveGroupRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    op->is_leave_reply = true;
    pl_chats_leave_start(op);
}

void pl_chats_leave_group(pl_call_t *call, const parley_v1_LeaveGroupRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "LeaveGroup", leave_start);
}
