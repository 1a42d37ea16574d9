/* chat_view.c — reading a chat with its current members and cursors from
 * the chat's shard, and answering with it as a parley.v1.Chat. GetChat is
 * this and a membership check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "parley/v1/chats.parley.h"

void pl_chats_view_dispose(pl_chats_view_t *v)
{
    free(v->members);
    memset(v, 0, sizeof(*v));
}

const pl_chats_member_t *pl_chats_view_member(const pl_chats_view_t *v, int64_t account_id)
{
    for (size_t i = 0; i < v->member_count; i++)
        if (v->members[i].account_id == account_id)
            return &v->members[i];
    return NULL;
}

static void copy_text(char *dst, size_t cap, const PGresult *res, int row, int col)
{
    snprintf(dst, cap, "%s", PQgetvalue(res, row, col));
}

static void on_chat(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    pl_chats_view_t *v = &op->view;
    pl_chats_view_dispose(v);
    v->chat_id = op->chat_id;
    int n = PQntuples(res);
    if (n == 0)
        return;
    v->members = calloc((size_t)n, sizeof(*v->members));
    if (!v->members) {
        pl_log_error("chats %s: out of memory reading chat %lld", op->base->name, (long long)op->chat_id);
        return;
    }
    v->kind = (int)pl_pg_get_int64(res, 0, 0);
    copy_text(v->name, sizeof(v->name), res, 0, 1);
    copy_text(v->description, sizeof(v->description), res, 0, 2);
    v->only_admins_send = pl_pg_get_bool(res, 0, 3);
    v->last_seq = pl_pg_get_int64(res, 0, 4);
    v->created_ms = pl_pg_get_int64(res, 0, 5);
    v->members_version = pl_pg_get_int64(res, 0, 6);
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(res, i, 7))
            continue; /* LEFT JOIN: a chat nobody is in any more */
        pl_chats_member_t *m = &v->members[v->member_count++];
        m->account_id = pl_pg_get_int64(res, i, 7);
        m->role = (int)pl_pg_get_int64(res, i, 8);
        m->joined_seq = pl_pg_get_int64(res, i, 9);
        m->delivered_seq = pl_pg_get_int64(res, i, 10);
        m->read_seq = pl_pg_get_int64(res, i, 11);
    }
    v->is_found = true;
}

void pl_chats_load(pl_chats_op_t *op, unsigned flags)
{
    uint8_t id[8];
    pl_pg_param_t p = pl_pg_int8(id, op->chat_id);
    pl_chats_view_dispose(&op->view);
    pl_chats_query(op, ST_CHAT_LOAD, pl_id_shard(op->chat_id), &p, 1, PL_PG_IDEMPOTENT, flags, on_chat, NULL,
                   "read chat");
}

void pl_chats_reply_chat(pl_chats_op_t *op)
{
    const pl_chats_view_t *v = &op->view;
    if (!v->is_found) {
        /* the change is durable, but the chat could not be read back */
        pl_call_finish(op->base->call, PL_CODE_UNAVAILABLE,
                       "the change was made; reading the chat failed, retry GetChat");
        return;
    }
    parley_v1_Chat *c = calloc(1, sizeof(*c));
    if (!c) {
        pl_call_finish(op->base->call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    c->chat_id = v->chat_id;
    c->kind = v->kind == CHATS_KIND_DIRECT ? parley_v1_ChatKind_CHAT_KIND_DIRECT : parley_v1_ChatKind_CHAT_KIND_GROUP;
    snprintf(c->name, sizeof(c->name), "%s", v->name);
    snprintf(c->description, sizeof(c->description), "%s", v->description);
    c->only_admins_send = v->only_admins_send;
    c->last_seq = v->last_seq;
    c->created_ms = v->created_ms;
    size_t n = v->member_count;
    if (n > sizeof(c->members) / sizeof(c->members[0]))
        n = sizeof(c->members) / sizeof(c->members[0]);
    for (size_t i = 0; i < n; i++) {
        const pl_chats_member_t *m = &v->members[i];
        parley_v1_Member *o = &c->members[i];
        o->account_id = m->account_id;
        o->role = m->role == CHATS_ROLE_ADMIN ? parley_v1_Role_ROLE_ADMIN : parley_v1_Role_ROLE_MEMBER;
        o->joined_seq = m->joined_seq;
        o->delivered_seq = m->delivered_seq;
        o->read_seq = m->read_seq;
        if (i == 0 || m->delivered_seq < c->delivered_to_all_seq)
            c->delivered_to_all_seq = m->delivered_seq;
        if (i == 0 || m->read_seq < c->read_by_all_seq)
            c->read_by_all_seq = m->read_seq;
    }
    c->members_count = (pb_size_t)n;
    pl_call_reply(op->base->call, c);
    free(c);
}

/* ---- GetChat ---- */

static void get_loaded(pl_chats_op_t *op)
{
    if (!op->view.is_found || !pl_chats_view_member(&op->view, op->base->who.account_id)) {
        pl_chats_fail(op, PL_CODE_NOT_FOUND, "chat not found");
        return;
    }
    pl_chats_reply_chat(op);
}

static void get_start(pl_chats_op_t *op)
{
    const parley_v1_GetChatRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    pl_chats_load(op, 0);
    pl_chats_then(op, get_loaded);
}

void pl_chats_get_chat(pl_call_t *call, const parley_v1_GetChatRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "GetChat", get_start);
}
