/* conversations.c — the public API's parley.v1.Chats calls and
 * Messaging.GetHistory: chats in, plain parley_chat_t / parley_chat_list_t /
 * parley_history_t out (each one allocation). */
#include <stdlib.h>
#include <string.h>

#include "api/random_id.h"
#include "api/unary.h"
#include "parley/v1/chats.parley.h"
#include "parley/v1/messaging.parley.h"
#include "runtime/codec.h"

/* A history page holds at most this many messages (the server's page cap,
 * history_page_max, is 200 by default). */
#define HISTORY_ITEMS_MAX 4096

static int chat_call(parley_client_t *c, const pl_method_t *m, const void *req, unsigned flags, parley_chat_t **out,
                     parley_error_t *err)
{
    *out = NULL;
    parley_v1_Chat *resp = calloc(1, sizeof(*resp));
    if (!resp) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return PARLEY_E_NOMEM;
    }
    pl_channel_t *held;
    int rc = pl_unary(c, m, req, resp, PL_UNARY_AUTH | flags, &held, err);
    if (rc == PARLEY_OK) {
        size_t head = pl_bump_room(sizeof(parley_chat_t)), extra = pl_chat_size(resp);
        parley_chat_t *chat = calloc(1, head + extra);
        if (chat) {
            pl_bump_t b = {(uint8_t *)chat + head, extra};
            pl_chat_fill(chat, resp, &b);
            *out = chat;
        } else {
            pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
            rc = PARLEY_E_NOMEM;
        }
        pl_unary_release(c, held);
    }
    free(resp);
    return rc;
}

int parley_open_direct_chat(parley_client_t *c, int64_t account_id, parley_chat_t **out, parley_error_t *err)
{
    parley_v1_OpenDirectChatRequest req = {account_id};
    return chat_call(c, &parley_v1_Chats_OpenDirectChat_method, &req, PL_UNARY_IDEMPOTENT, out, err);
}

int parley_get_chat(parley_client_t *c, int64_t chat_id, parley_chat_t **out, parley_error_t *err)
{
    parley_v1_GetChatRequest req = {chat_id};
    return chat_call(c, &parley_v1_Chats_GetChat_method, &req, PL_UNARY_IDEMPOTENT, out, err);
}

int parley_create_group(parley_client_t *c, const char *name, const int64_t *member_ids, size_t count,
                        parley_chat_t **out, parley_error_t *err)
{
    *out = NULL;
    parley_v1_CreateGroupRequest *req = calloc(1, sizeof(*req));
    if (!req) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return PARLEY_E_NOMEM;
    }
    size_t max = sizeof(req->member_ids) / sizeof(req->member_ids[0]);
    int rc = pl_copy_field(req->name, sizeof(req->name), name, "group name", err);
    if (rc == PARLEY_OK && (count > max || (count && !member_ids))) {
        pl_client_error(err, PARLEY_E_INVALID, "at most %zu members", max);
        rc = PARLEY_E_INVALID;
    }
    if (rc == PARLEY_OK) {
        if (count)
            memcpy(req->member_ids, member_ids, count * sizeof(int64_t));
        req->member_ids_count = (pb_size_t)count;
        /* the request id makes a repeat return the first call's group */
        if (pl_random_id(req->client_request_id) != 0) {
            pl_client_error(err, PARLEY_E_NOMEM, "no randomness for the request id");
            rc = PARLEY_E_NOMEM;
        } else {
            rc = chat_call(c, &parley_v1_Chats_CreateGroup_method, req, PL_UNARY_IDEMPOTENT, out, err);
        }
    }
    free(req);
    return rc;
}

void parley_chat_free(parley_chat_t *chat)
{
    free(chat);
}

int parley_list_chats(parley_client_t *c, int64_t after_chat_id, int limit, parley_chat_list_t **out,
                      parley_error_t *err)
{
    *out = NULL;
    parley_v1_ListChatsRequest req = {after_chat_id, limit};
    parley_v1_ListChatsResponse *resp = calloc(1, sizeof(*resp));
    if (!resp) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return PARLEY_E_NOMEM;
    }
    pl_channel_t *held;
    int rc =
        pl_unary(c, &parley_v1_Chats_ListChats_method, &req, resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT, &held, err);
    if (rc == PARLEY_OK) {
        size_t head = pl_bump_room(sizeof(parley_chat_list_t));
        size_t extra = pl_bump_room(resp->chats_count * sizeof(parley_chat_summary_t));
        parley_chat_list_t *list = calloc(1, head + extra);
        if (list) {
            pl_bump_t b = {(uint8_t *)list + head, extra};
            list->count = resp->chats_count;
            list->has_more = resp->has_more;
            list->chats = pl_bump_alloc(&b, list->count * sizeof(parley_chat_summary_t));
            for (size_t i = 0; i < list->count; i++) {
                const parley_v1_ChatSummary *src = &resp->chats[i];
                parley_chat_summary_t *dst = &list->chats[i];
                memset(dst, 0, sizeof(*dst));
                dst->chat_id = src->chat_id;
                dst->kind = (int)src->kind;
                memcpy(dst->name, src->name, sizeof(src->name));
                dst->peer_account_id = src->peer_account_id;
                dst->last_seq = src->last_seq;
                dst->unread_count = src->unread_count;
                dst->my_delivered_seq = src->my_delivered_seq;
                dst->my_read_seq = src->my_read_seq;
            }
            *out = list;
        } else {
            pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
            rc = PARLEY_E_NOMEM;
        }
        pl_unary_release(c, held);
    }
    free(resp);
    return rc;
}

void parley_chat_list_free(parley_chat_list_t *list)
{
    free(list);
}

/* The history page's messages (encoded, as views) into one parley_history_t. */
static parley_history_t *history_from(const pl_bytes_list_t *items, bool has_more, int *rc)
{
    *rc = PARLEY_E_NOMEM;
    parley_v1_Message *msgs = calloc(items->count ? items->count : 1, sizeof(*msgs));
    parley_v1_ChatEvent **events = calloc(items->count ? items->count : 1, sizeof(*events));
    parley_history_t *h = NULL;
    if (!msgs || !events)
        goto done;
    size_t head = pl_bump_room(sizeof(parley_history_t));
    size_t extra = pl_bump_room(items->count * sizeof(parley_message_t));
    for (size_t i = 0; i < items->count; i++) {
        if (pl_pb_decode(parley_v1_Message_fields, items->items[i].data, items->items[i].len, &msgs[i], NULL) != 0) {
            *rc = PARLEY_INTERNAL;
            goto done;
        }
        events[i] = pl_chat_event_decode(&msgs[i]);
        extra += pl_message_size(&msgs[i], events[i]);
    }
    h = calloc(1, head + extra);
    if (!h)
        goto done;
    pl_bump_t b = {(uint8_t *)h + head, extra};
    h->count = items->count;
    h->has_more = has_more;
    h->messages = pl_bump_alloc(&b, items->count * sizeof(parley_message_t));
    for (size_t i = 0; i < items->count; i++)
        pl_message_fill(&h->messages[i], &msgs[i], events[i], &b);
    *rc = PARLEY_OK;
done:
    for (size_t i = 0; events && i < items->count; i++)
        free(events[i]);
    free(events);
    free(msgs);
    return h;
}

int parley_get_history(parley_client_t *c, int64_t chat_id, int64_t before_seq, int64_t after_seq, int limit,
                       parley_history_t **out, parley_error_t *err)
{
    *out = NULL;
    parley_v1_GetHistoryRequest req = {chat_id, before_seq, after_seq, limit};
    parley_v1_GetHistoryResponse resp = {0};
    pl_bytes_t *items = calloc(HISTORY_ITEMS_MAX, sizeof(*items));
    if (!items) {
        pl_client_error(err, PARLEY_E_NOMEM, "out of memory");
        return PARLEY_E_NOMEM;
    }
    resp.messages.items = items;
    resp.messages.capacity = HISTORY_ITEMS_MAX;
    pl_channel_t *held;
    int rc = pl_unary(c, &parley_v1_Messaging_GetHistory_method, &req, &resp, PL_UNARY_AUTH | PL_UNARY_IDEMPOTENT,
                      &held, err);
    if (rc == PARLEY_OK) {
        *out = history_from(&resp.messages, resp.has_more, &rc);
        if (rc != PARLEY_OK)
            pl_client_error(err, rc, "%s",
                            rc == PARLEY_E_NOMEM ? "out of memory" : "GetHistory: a message does not decode");
        pl_unary_release(c, held);
    }
    free(items);
    return rc;
}

void parley_history_free(parley_history_t *history)
{
    free(history);
}
