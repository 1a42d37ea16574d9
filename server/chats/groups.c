/* groups.c — CreateGroup and UpdateGroup: a group's creation with its
 * first members, and its settings (name, description, who may send).
 *
 * A group lives on a random shard (groups spread evenly whoever creates
 * them); its id carries that shard. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chats/chats_internal.h"
#include "store/shardmap.h"

/* ---- CreateGroup ---- */

/* A random shard, or with a retry key one derived from (creator, key): a
 * retry must find the first call's group on the shard it wrote to. */
static int group_shard(const pl_app_t *app, int64_t creator, const char *request_id)
{
    int shards = app->map.shards;
    if (!request_id[0])
        return (int)randombytes_uniform((uint32_t)shards);
    uint8_t key[8 + CHATS_REQUEST_ID_MAX];
    size_t len = strlen(request_id); /* checked: at most CHATS_REQUEST_ID_MAX */
    for (int i = 0; i < 8; i++)      /* little-endian: the same on every node */
        key[i] = (uint8_t)((uint64_t)creator >> (8 * i));
    memcpy(key + 8, request_id, len);
    return pl_shard_for_key(key, 8 + len, shards);
}

static void create_checked(pl_chats_op_t *op)
{
    const parley_v1_CreateGroupRequest *req = op->req;
    int64_t me = op->base->who.account_id;
    op->chat_shard = group_shard(op->base->app, me, req->client_request_id);
    op->chat_id = pl_id_new(&op->svc->app->ids, op->chat_shard);

    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_CREATED, me);
    char *members = pl_pg_int8_array(op->ids, op->id_count);
    if (!ev || !members) {
        free(ev);
        free(members);
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    ev->account_ids[0] = me;
    memcpy(ev->account_ids + 1, op->ids, op->id_count * sizeof(*op->ids));
    ev->account_ids_count = (pb_size_t)(op->id_count + 1);
    memcpy(ev->name, req->name, sizeof(ev->name));
    memcpy(ev->description, req->description, sizeof(ev->description));
    ev->only_admins_send = req->only_admins_send;
    int rc = pl_chats_event_encode(ev, &op->event, &op->event_len);
    free(ev);
    if (rc != 0) {
        free(members);
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    uint8_t b[2][8];
    pl_pg_param_t p[8] = {
        pl_pg_int8(b[0], op->chat_id),
        pl_pg_int8(b[1], me),
        pl_pg_text(req->name),
        pl_pg_text(req->description),
        pl_pg_text(req->only_admins_send ? "t" : "f"),
        pl_pg_text(members),
        pl_pg_bytes(op->event, op->event_len),
        pl_pg_text(req->client_request_id),
    };
    pl_chats_change(op, ST_CREATE_GROUP, p, 8, NULL, pl_chats_finish_change);
    free(members);
}

static void create_throttled(pl_chats_op_t *op)
{
    pl_chats_check_accounts(op, op->ids, op->id_count, op->base->who.account_id, create_checked);
}

static void create_start(pl_chats_op_t *op)
{
    const parley_v1_CreateGroupRequest *req = op->req;
    int64_t me = op->base->who.account_id;
    const char *why = pl_chats_check_name(req->name);
    if (!why)
        why = pl_chats_check_description(req->description);
    if (!why)
        why = pl_chats_check_request_id(req->client_request_id);
    if (why) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "%s", why);
        return;
    }
    size_t n = req->member_ids_count;
    for (size_t i = 0; i < n; i++) {
        int64_t id = req->member_ids[i];
        if (id == me) {
            pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "member_ids must not include yourself");
            return;
        }
        if (!pl_chats_is_account_id(op->base->app, id)) {
            pl_chats_fail(op, id <= 0 ? PL_CODE_INVALID_ARGUMENT : PL_CODE_NOT_FOUND, "account %lld does not exist",
                          (long long)id);
            return;
        }
    }
    if (n + 1 > (size_t)op->base->app->cfg->group_max_members) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "a group has at most %d members (you and %d others)",
                      op->base->app->cfg->group_max_members, op->base->app->cfg->group_max_members - 1);
        return;
    }
    op->ids = malloc((n ? n : 1) * sizeof(*op->ids));
    if (!op->ids) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(op->ids, req->member_ids, n * sizeof(*op->ids));
    op->id_count = n;
    if (pl_ids_sort_unique(op->ids, n) != n) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "member_ids has duplicates");
        return;
    }
    pl_chats_throttle(op, create_throttled);
}

void pl_chats_create_group(pl_call_t *call, const parley_v1_CreateGroupRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "CreateGroup", create_start);
}

/* ---- UpdateGroup ---- */

static void update_read(pl_chats_op_t *op);

static void update_apply(pl_chats_op_t *op)
{
    const parley_v1_UpdateGroupRequest *req = op->req;
    if (!pl_chats_check_view(op, true))
        return;
    const pl_chats_view_t *v = &op->view;
    const char *name = req->has_name ? req->name : v->name;
    const char *description = req->has_description ? req->description : v->description;
    bool only_admins = req->has_only_admins_send ? req->only_admins_send : v->only_admins_send;
    if (strcmp(name, v->name) == 0 && strcmp(description, v->description) == 0 && only_admins == v->only_admins_send) {
        pl_chats_reply_chat(op); /* nothing changes: no system message */
        return;
    }
    parley_v1_ChatEvent *ev = pl_chats_event_new(parley_v1_ChatEvent_Type_SETTINGS_CHANGED, op->base->who.account_id);
    if (!ev) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    snprintf(ev->name, sizeof(ev->name), "%s", name);
    snprintf(ev->description, sizeof(ev->description), "%s", description);
    ev->only_admins_send = only_admins;
    free(op->event);
    op->event = NULL;
    int rc = pl_chats_event_encode(ev, &op->event, &op->event_len);
    free(ev);
    if (rc != 0) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    /* name and description may point into the view, which the change's
     * read-back replaces: the parameters are copied before that */
    uint8_t b[3][8];
    pl_pg_param_t p[7] = {
        pl_pg_int8(b[0], op->chat_id),
        pl_pg_int8(b[1], op->base->who.account_id),
        pl_pg_int8(b[2], v->members_version),
        pl_pg_text(name),
        pl_pg_text(description),
        pl_pg_text(only_admins ? "t" : "f"),
        pl_pg_bytes(op->event, op->event_len),
    };
    pl_chats_change(op, ST_UPDATE_GROUP, p, 7, update_read, pl_chats_finish_change);
}

static void update_read(pl_chats_op_t *op)
{
    pl_chats_load(op, 0);
    pl_chats_then(op, update_apply);
}

static void update_start(pl_chats_op_t *op)
{
    const parley_v1_UpdateGroupRequest *req = op->req;
    if (!pl_chats_take_chat_id(op, req->chat_id))
        return;
    if (!req->has_name && !req->has_description && !req->has_only_admins_send) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "nothing to update: set name, description or only_admins_send");
        return;
    }
    const char *why = req->has_name ? pl_chats_check_name(req->name) : NULL;
    if (!why && req->has_description)
        why = pl_chats_check_description(req->description);
    if (why) {
        pl_chats_fail(op, PL_CODE_INVALID_ARGUMENT, "%s", why);
        return;
    }
    pl_chats_throttle(op, update_read);
}

void pl_chats_update_group(pl_call_t *call, const parley_v1_UpdateGroupRequest *req, void *svc)
{
    pl_chats_start(svc, call, req, "UpdateGroup", update_start);
}
