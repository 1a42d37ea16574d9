/* convert.c — generated wire structs to parley.h's public structs. */
#include "api/convert.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/codec.h"

void *pl_bump_alloc(pl_bump_t *b, size_t len)
{
    size_t room = pl_bump_room(len);
    if (room > b->left) /* sized wrong: a bug, never expected */
        abort();
    void *p = b->p;
    b->p += room;
    b->left -= room;
    return p;
}

const char *pl_bump_str(pl_bump_t *b, const char *s, size_t len)
{
    char *out = pl_bump_alloc(b, len + 1);
    if (len)
        memcpy(out, s, len);
    out[len] = '\0';
    return out;
}

parley_v1_ChatEvent *pl_chat_event_decode(const parley_v1_Message *m)
{
    if (!m->chat_event.len)
        return NULL;
    parley_v1_ChatEvent *ce = calloc(1, sizeof(*ce));
    if (!ce)
        return NULL;
    if (pl_pb_decode(parley_v1_ChatEvent_fields, m->chat_event.data, m->chat_event.len, ce, NULL) != 0) {
        free(ce);
        return NULL;
    }
    return ce;
}

size_t pl_message_size(const parley_v1_Message *m, const parley_v1_ChatEvent *ce)
{
    size_t n = pl_bump_room(strlen(m->client_message_id) + 1) + pl_bump_room(strlen(m->content_type) + 1) +
               pl_bump_room(m->payload.len);
    if (ce)
        n += pl_bump_room(ce->account_ids_count * sizeof(int64_t)) + pl_bump_room(strlen(ce->name) + 1) +
             pl_bump_room(strlen(ce->description) + 1);
    else
        n += 2 * pl_bump_room(1);
    return n;
}

void pl_message_fill(parley_message_t *out, const parley_v1_Message *m, const parley_v1_ChatEvent *ce, pl_bump_t *b)
{
    memset(out, 0, sizeof(*out));
    out->chat_id = m->chat_id;
    out->seq = m->seq;
    out->sender_account_id = m->sender_account_id;
    out->sender_device_id = m->sender_device_id;
    out->client_message_id = pl_bump_str(b, m->client_message_id, strlen(m->client_message_id));
    out->server_time_ms = m->server_time_ms;
    out->content_type = pl_bump_str(b, m->content_type, strlen(m->content_type));
    if (m->payload.len) {
        uint8_t *p = pl_bump_alloc(b, m->payload.len);
        memcpy(p, m->payload.data, m->payload.len);
        out->payload = p;
        out->payload_len = m->payload.len;
    }
    out->reply_to_seq = m->reply_to_seq;
    out->expires_at_ms = m->expires_at_ms;
    out->payload_missing = m->payload_missing;
    out->is_system = m->chat_event.len > 0;
    if (ce) {
        parley_system_event_t *s = &out->system;
        s->type = (int)ce->type;
        s->actor_account_id = ce->actor_account_id;
        s->account_count = ce->account_ids_count;
        if (ce->account_ids_count) {
            int64_t *ids = pl_bump_alloc(b, ce->account_ids_count * sizeof(int64_t));
            memcpy(ids, ce->account_ids, ce->account_ids_count * sizeof(int64_t));
            s->account_ids = ids;
        }
        s->role = (int)ce->role;
        s->name = pl_bump_str(b, ce->name, strlen(ce->name));
        s->description = pl_bump_str(b, ce->description, strlen(ce->description));
        s->only_admins_send = ce->only_admins_send;
    } else {
        out->system.name = pl_bump_str(b, "", 0);
        out->system.description = pl_bump_str(b, "", 0);
    }
}

size_t pl_chat_size(const parley_v1_Chat *chat)
{
    return pl_bump_room(strlen(chat->name) + 1) + pl_bump_room(strlen(chat->description) + 1) +
           pl_bump_room(chat->members_count * sizeof(parley_member_t));
}

void pl_chat_fill(parley_chat_t *out, const parley_v1_Chat *chat, pl_bump_t *b)
{
    memset(out, 0, sizeof(*out));
    out->chat_id = chat->chat_id;
    out->kind = (int)chat->kind;
    out->name = pl_bump_str(b, chat->name, strlen(chat->name));
    out->description = pl_bump_str(b, chat->description, strlen(chat->description));
    out->only_admins_send = chat->only_admins_send;
    out->last_seq = chat->last_seq;
    out->created_ms = chat->created_ms;
    out->delivered_to_all_seq = chat->delivered_to_all_seq;
    out->read_by_all_seq = chat->read_by_all_seq;
    out->member_count = chat->members_count;
    if (chat->members_count) {
        parley_member_t *mm = pl_bump_alloc(b, chat->members_count * sizeof(*mm));
        for (pb_size_t i = 0; i < chat->members_count; i++) {
            const parley_v1_Member *src = &chat->members[i];
            mm[i] =
                (parley_member_t){src->account_id, (int)src->role, src->joined_seq, src->delivered_seq, src->read_seq};
        }
        out->members = mm;
    }
}

size_t pl_mismatch_size(const parley_v1_DeviceMismatch *dm)
{
    size_t n = pl_bump_room(dm->missing_count * sizeof(parley_account_devices_t)) +
               pl_bump_room(dm->stale_device_ids_count * sizeof(int64_t));
    for (pb_size_t i = 0; i < dm->missing_count; i++)
        n += pl_bump_room(dm->missing[i].device_ids_count * sizeof(int64_t));
    return n;
}

void pl_mismatch_fill(const parley_v1_DeviceMismatch *dm, pl_bump_t *b, const parley_account_devices_t **missing,
                      size_t *missing_count, const int64_t **stale, size_t *stale_count)
{
    *missing_count = dm->missing_count;
    *stale_count = dm->stale_device_ids_count;
    *missing = NULL;
    *stale = NULL;
    if (dm->missing_count) {
        parley_account_devices_t *ad = pl_bump_alloc(b, dm->missing_count * sizeof(*ad));
        for (pb_size_t i = 0; i < dm->missing_count; i++) {
            const parley_v1_AccountDevices *src = &dm->missing[i];
            int64_t *ids = NULL;
            if (src->device_ids_count) {
                ids = pl_bump_alloc(b, src->device_ids_count * sizeof(int64_t));
                memcpy(ids, src->device_ids, src->device_ids_count * sizeof(int64_t));
            }
            ad[i] = (parley_account_devices_t){src->account_id, src->device_ids_count, ids};
        }
        *missing = ad;
    }
    if (dm->stale_device_ids_count) {
        int64_t *ids = pl_bump_alloc(b, dm->stale_device_ids_count * sizeof(int64_t));
        memcpy(ids, dm->stale_device_ids, dm->stale_device_ids_count * sizeof(int64_t));
        *stale = ids;
    }
}
