/* test_chats — parley.v1.Chats against parleyd on a throw-away stack
 * (tests/chats/CMakeLists.txt starts both). One case per run:
 *
 *   direct          one chat per pair: twice, from both sides, concurrently;
 *                   bad arguments, strangers and missing credentials
 *   direct_blocked  blocked either way: PERMISSION_DENIED
 *   group           create/add/remove/role/update/leave with their
 *                   permissions; non-members get NOT_FOUND; the system
 *                   messages in the log, in order, with their ChatEvents;
 *                   the chat lists on the accounts' shards
 *   concurrent      admins adding members at the same time
 *   size_limit      [limits] group_max_members (run with 4)
 *   blocked_add     an account that blocked you cannot be added by you
 *   last_admin      the last admin leaving promotes the longest-standing member
 *   list            ListChats paging, contents, current memberships only,
 *                   repair of a stale chat list row
 *   unread          unread counts and cursors, chat-wide minimums
 *   rate_limit      [rate] group_ops_per_minute (run with 3); Redis down
 *   repair_crash, repair_quiet  the chat list repair (test_repair.c)
 *
 * usage: test_chats CASE */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "app/direct.h"
#include "harness.h"

#define OK PL_CODE_OK

static void expect_event(const t_logged_t *m, int64_t seq, parley_v1_ChatEvent_Type type, const t_user_t *actor,
                         const int64_t *accounts, size_t n)
{
    REQUIRE(m->seq == seq, "log entry: seq %lld, want %lld", (long long)m->seq, (long long)seq);
    REQUIRE(m->has_event, "seq %lld: no chat_event", (long long)seq);
    REQUIRE(m->event.type == type, "seq %lld: event type %d, want %d", (long long)seq, m->event.type, type);
    REQUIRE_EQ_INT(m->event.actor_account_id, actor->account_id);
    REQUIRE_EQ_INT(m->sender_account, actor->account_id);
    REQUIRE_EQ_INT(m->sender_device, 0);
    char want[32];
    snprintf(want, sizeof(want), "sys:%lld", (long long)seq);
    REQUIRE(strcmp(m->client_msg_id, want) == 0, "seq %lld: client_msg_id %s", (long long)seq, m->client_msg_id);
    REQUIRE(!m->has_payload, "seq %lld: a system message with a payload", (long long)seq);
    REQUIRE(m->event.account_ids_count == n, "seq %lld: %d accounts, want %zu", (long long)seq,
            (int)m->event.account_ids_count, n);
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (pb_size_t k = 0; k < m->event.account_ids_count; k++)
            found |= m->event.account_ids[k] == accounts[i];
        REQUIRE(found, "seq %lld: account %lld missing from the event", (long long)seq, (long long)accounts[i]);
    }
}

static void expect_member(const parley_v1_Chat *c, const t_user_t *u, parley_v1_Role role, int64_t joined)
{
    const parley_v1_Member *m = t_member(c, u->account_id);
    REQUIRE(m != NULL, "account %lld is not a member of chat %lld", (long long)u->account_id, (long long)c->chat_id);
    REQUIRE(m->role == role, "account %lld: role %d, want %d", (long long)u->account_id, m->role, role);
    REQUIRE_EQ_INT(m->joined_seq, joined);
}

/* the account_chats row of u for chat: joined, removed (-1: NULL), membership_seq */
static void expect_listing(const t_user_t *u, int64_t chat, int64_t joined, int64_t removed, int64_t mseq)
{
    char a[24], c[24];
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    const char *p[] = {a, c};
    PGresult *r = t_sql(pl_id_shard(u->account_id),
                        "SELECT joined_seq, COALESCE(removed_seq, -1), membership_seq FROM {s}.account_chats"
                        " WHERE account_id = $1 AND chat_id = $2",
                        2, p);
    REQUIRE(PQntuples(r) == 1, "no account_chats row for account %s chat %s", a, c);
    REQUIRE_EQ_INT(strtoll(PQgetvalue(r, 0, 0), NULL, 10), joined);
    REQUIRE_EQ_INT(strtoll(PQgetvalue(r, 0, 1), NULL, 10), removed);
    REQUIRE_EQ_INT(strtoll(PQgetvalue(r, 0, 2), NULL, 10), mseq);
    PQclear(r);
}

/* ---- direct ---- */

typedef struct opener {
    t_user_t *u;
    int64_t other, chat;
    pl_code_t code;
    pthread_barrier_t *start;
} opener_t;

static void *open_thread(void *arg)
{
    opener_t *o = arg;
    pl_channel_t *ch = t_connect();
    parley_v1_Chat *c = t_chat_new();
    parley_v1_OpenDirectChatRequest rq = {0};
    rq.account_id = o->other;
    pthread_barrier_wait(o->start);
    o->code = t_call(o->u, ch, &parley_v1_Chats_OpenDirectChat_method, &rq, c);
    o->chat = c->chat_id;
    free(c);
    pl_channel_free(ch);
    return NULL;
}

static int case_direct(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *x = t_chat_new(), *y = t_chat_new();
    REQUIRE_CODE(t_open_direct(a, b->account_id, x), OK);
    REQUIRE(x->chat_id > 0, "no chat id");
    REQUIRE_EQ_INT(x->kind, parley_v1_ChatKind_CHAT_KIND_DIRECT);
    REQUIRE_EQ_INT(pl_id_shard(x->chat_id), pl_direct_chat_shard(a->account_id, b->account_id, t_shards));
    REQUIRE_EQ_INT(x->members_count, 2);
    expect_member(x, a, parley_v1_Role_ROLE_MEMBER, 0);
    expect_member(x, b, parley_v1_Role_ROLE_MEMBER, 0);
    REQUIRE_EQ_INT(x->last_seq, 0);
    REQUIRE(x->created_ms > 1700000000000LL, "created_ms %lld", (long long)x->created_ms);

    /* twice, and from the other side: the same chat */
    REQUIRE_CODE(t_open_direct(a, b->account_id, y), OK);
    REQUIRE_EQ_INT(y->chat_id, x->chat_id);
    REQUIRE_CODE(t_open_direct(b, a->account_id, y), OK);
    REQUIRE_EQ_INT(y->chat_id, x->chat_id);

    /* concurrently from both sides, for a pair without a chat yet */
    enum { N = 8 };
    pthread_t th[N];
    opener_t o[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        o[i] = (opener_t){i % 2 ? a : c, i % 2 ? c->account_id : a->account_id, 0, 0, &start};
        REQUIRE(pthread_create(&th[i], NULL, open_thread, &o[i]) == 0, "thread");
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++) {
        REQUIRE(o[i].code == OK, "concurrent open %d: %s", i, pl_code_name(o[i].code));
        REQUIRE_EQ_INT(o[i].chat, o[0].chat);
    }
    char lo[24], hi[24];
    snprintf(lo, sizeof(lo), "%lld", (long long)(a->account_id < c->account_id ? a->account_id : c->account_id));
    snprintf(hi, sizeof(hi), "%lld", (long long)(a->account_id < c->account_id ? c->account_id : a->account_id));
    const char *pair[] = {lo, hi};
    REQUIRE_EQ_INT(t_sql_int(pl_direct_chat_shard(a->account_id, c->account_id, t_shards),
                             "SELECT count(*) FROM {s}.chats WHERE kind = 1 AND account_a = $1 AND account_b = $2", 2,
                             pair),
                   1);
    REQUIRE_EQ_INT(t_sql_int(pl_direct_chat_shard(a->account_id, c->account_id, t_shards),
                             "SELECT count(*) FROM {s}.members m JOIN {s}.chats c ON c.id = m.chat_id"
                             " WHERE c.kind = 1 AND c.account_a = $1 AND c.account_b = $2",
                             2, pair),
                   2);

    /* both chats in a's list, with their peers; one in b's */
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));
    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 2);
    REQUIRE(!l->has_more, "has_more");
    const parley_v1_ChatSummary *s = t_summary(l, x->chat_id);
    REQUIRE(s != NULL, "chat with b not listed");
    REQUIRE_EQ_INT(s->kind, parley_v1_ChatKind_CHAT_KIND_DIRECT);
    REQUIRE_EQ_INT(s->peer_account_id, b->account_id);
    REQUIRE_EQ_INT(s->last_seq, 0);
    REQUIRE_EQ_INT(s->unread_count, 0);
    s = t_summary(l, o[0].chat);
    REQUIRE(s != NULL, "chat with c not listed");
    REQUIRE_EQ_INT(s->peer_account_id, c->account_id);
    REQUIRE_CODE(t_list(b, 0, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 1);
    REQUIRE_EQ_INT(l->chats[0].chat_id, x->chat_id);
    REQUIRE_EQ_INT(l->chats[0].peer_account_id, a->account_id);
    expect_listing(a, x->chat_id, 0, -1, 0);
    expect_listing(b, x->chat_id, 0, -1, 0);

    /* members only */
    REQUIRE_CODE(t_get_chat(a, x->chat_id, y), OK);
    REQUIRE_EQ_INT(y->members_count, 2);
    REQUIRE_CODE(t_get_chat(c, x->chat_id, y), PL_CODE_NOT_FOUND);

    /* bad arguments and strangers */
    REQUIRE_CODE(t_open_direct(a, a->account_id, y), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_open_direct(a, 0, y), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_open_direct(a, t_new_id(3 % t_shards), y), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_open_direct(a, -7, y), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_open_direct(a, (int64_t)1 << 62, y), PL_CODE_NOT_FOUND); /* a shard this cluster lacks */

    /* credentials */
    parley_v1_OpenDirectChatRequest rq = {0};
    rq.account_id = b->account_id;
    REQUIRE_CODE(t_call_anonymous(&parley_v1_Chats_OpenDirectChat_method, &rq, y, false), PL_CODE_UNAUTHENTICATED);
    REQUIRE_CODE(t_call_anonymous(&parley_v1_Chats_OpenDirectChat_method, &rq, y, true), PL_CODE_UNAUTHENTICATED);
    parley_v1_ListChatsRequest lq = {0};
    REQUIRE_CODE(t_call_anonymous(&parley_v1_Chats_ListChats_method, &lq, l, false), PL_CODE_UNAUTHENTICATED);
    free(l);
    free(x);
    free(y);
    return 0;
}

static int case_direct_blocked(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user(), *d = t_user();
    parley_v1_Chat *x = t_chat_new();
    t_block(b, a->account_id);
    REQUIRE_CODE(t_open_direct(a, b->account_id, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_open_direct(b, a->account_id, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_open_direct(c, a->account_id, x), OK);
    /* blocked after the chat exists */
    REQUIRE_CODE(t_open_direct(a, d->account_id, x), OK);
    t_block(d, a->account_id);
    REQUIRE_CODE(t_open_direct(a, d->account_id, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_open_direct(d, a->account_id, x), PL_CODE_PERMISSION_DENIED);
    free(x);
    return 0;
}

/* ---- groups ---- */

static int case_group(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user(), *d = t_user(), *e = t_user();
    parley_v1_Chat *g = t_chat_new(), *x = t_chat_new();
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));

    /* refused creations create nothing */
    int64_t bb[] = {b->account_id, b->account_id};
    int64_t self[] = {b->account_id, a->account_id};
    int64_t stranger[] = {b->account_id, t_new_id(1 % t_shards)};
    REQUIRE_CODE(t_create_group(a, "", bb, 1, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group(a, "   ", bb, 1, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group(a, "bad \xff\xfe utf8", bb, 1, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group(a, "Team", bb, 2, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group(a, "Team", self, 2, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group(a, "Team", stranger, 2, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 0);

    int64_t bc[] = {b->account_id, c->account_id};
    REQUIRE_CODE(t_create_group(a, "Team", bc, 2, g), OK);
    int64_t chat = g->chat_id;
    REQUIRE(chat > 0 && pl_id_shard(chat) < t_shards, "chat id %lld", (long long)chat);
    REQUIRE_EQ_INT(g->kind, parley_v1_ChatKind_CHAT_KIND_GROUP);
    REQUIRE(strcmp(g->name, "Team") == 0, "name %s", g->name);
    REQUIRE_EQ_INT(g->last_seq, 1);
    REQUIRE_EQ_INT(g->members_count, 3);
    expect_member(g, a, parley_v1_Role_ROLE_ADMIN, 1);
    expect_member(g, b, parley_v1_Role_ROLE_MEMBER, 1);
    expect_member(g, c, parley_v1_Role_ROLE_MEMBER, 1);
    for (int i = 0; i < 3; i++)
        expect_listing((t_user_t *[]){a, b, c}[i], chat, 1, -1, 1);

    /* members who are not admins; strangers */
    int64_t dd[] = {d->account_id};
    REQUIRE_CODE(t_add_members(b, chat, dd, 1, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_remove_member(b, chat, c->account_id, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_set_role(b, chat, b->account_id, parley_v1_Role_ROLE_ADMIN, x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_update_name(b, chat, "Mine", x), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_add_members(e, chat, dd, 1, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_get_chat(e, chat, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_update_name(e, chat, "Mine", x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_remove_member(e, chat, b->account_id, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_set_role(e, chat, e->account_id, parley_v1_Role_ROLE_ADMIN, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_leave(e, chat, NULL), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_get_chat(a, t_new_id(pl_id_shard(chat)), x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_get_chat(a, 0, x), PL_CODE_INVALID_ARGUMENT);

    /* 2: add d (b is already in: ignored) */
    int64_t db[] = {d->account_id, b->account_id};
    REQUIRE_CODE(t_add_members(a, chat, db, 2, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 2);
    REQUIRE_EQ_INT(g->members_count, 4);
    expect_member(g, d, parley_v1_Role_ROLE_MEMBER, 2);
    expect_member(g, b, parley_v1_Role_ROLE_MEMBER, 1);
    REQUIRE_EQ_INT(t_member(g, d->account_id)->read_seq, 1); /* starts before the first message d sees */
    REQUIRE_CODE(t_add_members(a, chat, db, 2, g), OK);      /* all members already: nothing happens */
    REQUIRE_EQ_INT(g->last_seq, 2);
    int64_t zero[] = {0};
    REQUIRE_CODE(t_add_members(a, chat, zero, 1, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_add_members(a, chat, zero, 0, x), PL_CODE_INVALID_ARGUMENT);

    /* 3: settings */
    REQUIRE_CODE(t_update_name(a, chat, "Team 2", g), OK);
    REQUIRE_EQ_INT(g->last_seq, 3);
    REQUIRE(strcmp(g->name, "Team 2") == 0, "name %s", g->name);
    REQUIRE_CODE(t_update_name(a, chat, "Team 2", g), OK); /* unchanged: no system message */
    REQUIRE_EQ_INT(g->last_seq, 3);
    REQUIRE_CODE(t_update_name(a, chat, "", g), PL_CODE_INVALID_ARGUMENT);

    /* 4: b becomes admin */
    REQUIRE_CODE(t_set_role(a, chat, b->account_id, parley_v1_Role_ROLE_ADMIN, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 4);
    expect_member(g, b, parley_v1_Role_ROLE_ADMIN, 1);
    REQUIRE_CODE(t_set_role(a, chat, b->account_id, parley_v1_Role_ROLE_ADMIN, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 4);
    REQUIRE_CODE(t_set_role(a, chat, e->account_id, parley_v1_Role_ROLE_ADMIN, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_set_role(a, chat, b->account_id, parley_v1_Role_ROLE_UNSPECIFIED, x), PL_CODE_INVALID_ARGUMENT);

    /* 5: b removes c, who no longer sees the group */
    REQUIRE_CODE(t_remove_member(b, chat, c->account_id, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 5);
    REQUIRE(t_member(g, c->account_id) == NULL, "c still a member");
    REQUIRE_CODE(t_get_chat(c, chat, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_list(c, 0, 0, l), OK);
    REQUIRE(t_summary(l, chat) == NULL, "c still lists the group");
    expect_listing(c, chat, 1, 5, 5);
    REQUIRE_CODE(t_remove_member(b, chat, c->account_id, x), PL_CODE_NOT_FOUND);

    /* 6: an admin removes another admin */
    REQUIRE_CODE(t_remove_member(b, chat, a->account_id, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 6);
    REQUIRE_CODE(t_get_chat(a, chat, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_add_members(a, chat, dd, 1, x), PL_CODE_NOT_FOUND);

    /* the last admin cannot step down */
    REQUIRE_CODE(t_set_role(b, chat, b->account_id, parley_v1_Role_ROLE_MEMBER, x), PL_CODE_FAILED_PRECONDITION);

    /* 7: c comes back, with a new joined_seq */
    int64_t cc[] = {c->account_id};
    REQUIRE_CODE(t_add_members(b, chat, cc, 1, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 7);
    expect_member(g, c, parley_v1_Role_ROLE_MEMBER, 7);
    REQUIRE_EQ_INT(t_member(g, c->account_id)->read_seq, 6);
    REQUIRE_CODE(t_get_chat(c, chat, x), OK);
    REQUIRE_CODE(t_list(c, 0, 0, l), OK);
    REQUIRE(t_summary(l, chat) != NULL, "c does not list the group again");
    REQUIRE_EQ_INT(t_summary(l, chat)->unread_count, 1); /* MEMBERS_ADDED */
    expect_listing(c, chat, 7, -1, 7);

    /* 8: d leaves */
    int64_t seq = 0;
    REQUIRE_CODE(t_leave(d, chat, &seq), OK);
    REQUIRE_EQ_INT(seq, 8);
    REQUIRE_CODE(t_get_chat(d, chat, x), PL_CODE_NOT_FOUND);
    REQUIRE_CODE(t_leave(d, chat, &seq), PL_CODE_NOT_FOUND);
    expect_listing(d, chat, 2, 8, 8);

    /* 9, 10: b, the last admin, removes itself (= leaves): c is promoted */
    REQUIRE_CODE(t_remove_member(b, chat, b->account_id, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 10);
    REQUIRE_EQ_INT(g->members_count, 1);
    expect_member(g, c, parley_v1_Role_ROLE_ADMIN, 7);
    expect_listing(b, chat, 1, 9, 9);
    expect_listing(a, chat, 1, 6, 6);

    /* the log: every change, in order */
    size_t n;
    t_logged_t *log = t_log(chat, &n);
    REQUIRE_EQ_INT(n, 10);
    int64_t abc[] = {a->account_id, b->account_id, c->account_id};
    expect_event(&log[0], 1, parley_v1_ChatEvent_Type_CREATED, a, abc, 3);
    REQUIRE(strcmp(log[0].event.name, "Team") == 0, "CREATED name %s", log[0].event.name);
    expect_event(&log[1], 2, parley_v1_ChatEvent_Type_MEMBERS_ADDED, a, dd, 1);
    expect_event(&log[2], 3, parley_v1_ChatEvent_Type_SETTINGS_CHANGED, a, NULL, 0);
    REQUIRE(strcmp(log[2].event.name, "Team 2") == 0, "SETTINGS_CHANGED name %s", log[2].event.name);
    int64_t just_b[] = {b->account_id}, just_a[] = {a->account_id}, just_d[] = {d->account_id};
    expect_event(&log[3], 4, parley_v1_ChatEvent_Type_ROLE_CHANGED, a, just_b, 1);
    REQUIRE_EQ_INT(log[3].event.role, parley_v1_Role_ROLE_ADMIN);
    expect_event(&log[4], 5, parley_v1_ChatEvent_Type_MEMBER_REMOVED, b, cc, 1);
    expect_event(&log[5], 6, parley_v1_ChatEvent_Type_MEMBER_REMOVED, b, just_a, 1);
    expect_event(&log[6], 7, parley_v1_ChatEvent_Type_MEMBERS_ADDED, b, cc, 1);
    expect_event(&log[7], 8, parley_v1_ChatEvent_Type_MEMBER_LEFT, d, just_d, 1);
    expect_event(&log[8], 9, parley_v1_ChatEvent_Type_MEMBER_LEFT, b, just_b, 1);
    expect_event(&log[9], 10, parley_v1_ChatEvent_Type_ROLE_CHANGED, b, cc, 1);
    REQUIRE_EQ_INT(log[9].event.role, parley_v1_Role_ROLE_ADMIN);
    free(log);

    /* settings: all three carried by the event; only admins send */
    REQUIRE_CODE(t_create_group(a, "Quiet", just_b, 1, g), OK);
    int64_t quiet = g->chat_id;
    REQUIRE_CODE(t_update_group(a, quiet, NULL, "Announcements only", 1, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 2);
    REQUIRE(strcmp(g->name, "Quiet") == 0 && strcmp(g->description, "Announcements only") == 0, "settings %s / %s",
            g->name, g->description);
    REQUIRE(g->only_admins_send, "only_admins_send not set");
    REQUIRE_CODE(t_update_group(a, quiet, NULL, NULL, -1, x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_update_group(a, quiet, NULL, "bad \x01 control", -1, x), PL_CODE_INVALID_ARGUMENT);
    log = t_log(quiet, &n);
    REQUIRE_EQ_INT(n, 2);
    expect_event(&log[1], 2, parley_v1_ChatEvent_Type_SETTINGS_CHANGED, a, NULL, 0);
    REQUIRE(strcmp(log[1].event.name, "Quiet") == 0, "event name %s", log[1].event.name);
    REQUIRE(strcmp(log[1].event.description, "Announcements only") == 0, "event description");
    REQUIRE(log[1].event.only_admins_send, "event only_admins_send");
    free(log);
    REQUIRE_EQ_INT(t_send_status(b, quiet, "m1"), 4);
    REQUIRE_EQ_INT(t_send_status(a, quiet, "m1"), 0);
    REQUIRE_EQ_INT(t_send_status(e, quiet, "m1"), 2);

    /* a direct chat is not a group */
    REQUIRE_CODE(t_open_direct(a, b->account_id, x), OK);
    REQUIRE_CODE(t_add_members(a, x->chat_id, cc, 1, g), PL_CODE_FAILED_PRECONDITION);
    REQUIRE_CODE(t_leave(a, x->chat_id, NULL), PL_CODE_FAILED_PRECONDITION);
    free(g);
    free(x);
    free(l);
    return 0;
}

typedef struct adder {
    t_user_t *u;
    int64_t chat;
    int64_t ids[3];
    size_t n;
    pl_code_t code;
    pthread_barrier_t *start;
} adder_t;

static void *add_thread(void *arg)
{
    adder_t *o = arg;
    pl_channel_t *ch = t_connect();
    parley_v1_Chat *c = t_chat_new();
    parley_v1_AddMembersRequest *rq = calloc(1, sizeof(*rq));
    rq->chat_id = o->chat;
    memcpy(rq->account_ids, o->ids, o->n * sizeof(int64_t));
    rq->account_ids_count = (pb_size_t)o->n;
    pthread_barrier_wait(o->start);
    o->code = t_call(o->u, ch, &parley_v1_Chats_AddMembers_method, rq, c);
    free(rq);
    free(c);
    pl_channel_free(ch);
    return NULL;
}

static int case_concurrent(void)
{
    t_user_t *a = t_user(), *b = t_user(), *shared = t_user();
    t_user_t *news[6];
    for (int i = 0; i < 6; i++)
        news[i] = t_user();
    parley_v1_Chat *g = t_chat_new();
    int64_t just_b[] = {b->account_id};
    REQUIRE_CODE(t_create_group(a, "Busy", just_b, 1, g), OK);
    REQUIRE_CODE(t_set_role(a, g->chat_id, b->account_id, parley_v1_Role_ROLE_ADMIN, g), OK);
    int64_t chat = g->chat_id;

    enum { N = 4 };
    adder_t o[N];
    pthread_t th[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        o[i] = (adder_t){i % 2 ? b : a, chat, {0}, 0, 0, &start};
        o[i].ids[o[i].n++] = news[i]->account_id;
        if (i < 2)
            o[i].ids[o[i].n++] = news[4 + i]->account_id;
        o[i].ids[o[i].n++] = shared->account_id; /* everyone adds this one */
        REQUIRE(pthread_create(&th[i], NULL, add_thread, &o[i]) == 0, "thread");
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++)
        REQUIRE(o[i].code == OK, "concurrent add %d: %s (%s)", i, pl_code_name(o[i].code), t_message);

    REQUIRE_CODE(t_get_chat(a, chat, g), OK);
    REQUIRE_EQ_INT(g->members_count, 2 + 6 + 1);
    size_t n;
    t_logged_t *log = t_log(chat, &n);
    REQUIRE_EQ_INT((int64_t)n, g->last_seq);
    int seen_shared = 0, added = 0;
    for (size_t i = 0; i < n; i++) {
        REQUIRE_EQ_INT(log[i].seq, (int64_t)i + 1);
        if (log[i].event.type != parley_v1_ChatEvent_Type_MEMBERS_ADDED)
            continue;
        for (pb_size_t k = 0; k < log[i].event.account_ids_count; k++) {
            int64_t id = log[i].event.account_ids[k];
            seen_shared += id == shared->account_id;
            added++;
            const parley_v1_Member *m = t_member(g, id);
            REQUIRE(m != NULL, "added account %lld is not a member", (long long)id);
            REQUIRE_EQ_INT(m->joined_seq, log[i].seq);
        }
    }
    REQUIRE_EQ_INT(seen_shared, 1);
    REQUIRE_EQ_INT(added, 7);
    free(log);
    free(g);
    return 0;
}

typedef struct creator {
    t_user_t *u;
    int64_t member;
    int64_t chat;
    pl_code_t code;
    pthread_barrier_t *start;
} creator_t;

static void *create_thread(void *arg)
{
    creator_t *o = arg;
    pl_channel_t *ch = t_connect();
    parley_v1_Chat *c = t_chat_new();
    pthread_barrier_wait(o->start);
    o->code = t_create_group_keyed(o->u, ch, "Race", &o->member, 1, "race-1", c);
    o->chat = c->chat_id;
    free(c);
    pl_channel_free(ch);
    return NULL;
}

static size_t groups_listed(t_user_t *u)
{
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));
    REQUIRE(l != NULL, "out of memory");
    REQUIRE_CODE(t_list(u, 0, 0, l), OK);
    size_t n = 0;
    for (pb_size_t i = 0; i < l->chats_count; i++)
        n += l->chats[i].kind == parley_v1_ChatKind_CHAT_KIND_GROUP;
    free(l);
    return n;
}

/* CreateGroup with a client_request_id: a retry returns the first call's
 * group and writes nothing; the key is per creator. */
static int case_create_retry(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *g = t_chat_new(), *x = t_chat_new();
    int64_t just_b[] = {b->account_id}, just_c[] = {c->account_id};

    /* a retry with the same key: the same group, as the first call made it */
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Retry", just_b, 1, "req-1", g), OK);
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Other name", just_c, 1, "req-1", x), OK);
    REQUIRE_EQ_INT(x->chat_id, g->chat_id);
    REQUIRE(strcmp(x->name, "Retry") == 0, "retry renamed the group to %s", x->name);
    REQUIRE_EQ_INT(x->members_count, 2);
    REQUIRE(t_member(x, b->account_id) != NULL && t_member(x, c->account_id) == NULL, "retry changed the members");
    REQUIRE_EQ_INT(x->last_seq, 1);
    size_t n;
    free(t_log(g->chat_id, &n));
    REQUIRE_EQ_INT((int64_t)n, 1); /* one CREATED message */
    REQUIRE_EQ_INT((int64_t)groups_listed(a), 1);

    /* a retry after the group changed: the group as it is now */
    REQUIRE_CODE(t_add_members(a, g->chat_id, just_c, 1, x), OK);
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Retry", just_b, 1, "req-1", x), OK);
    REQUIRE_EQ_INT(x->chat_id, g->chat_id);
    REQUIRE_EQ_INT(x->members_count, 3);
    REQUIRE_EQ_INT(x->last_seq, 2);
    REQUIRE(groups_listed(c) == 1, "c lists %zu groups", groups_listed(c));

    /* another key, or another creator with the same key: a new group */
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Second", just_b, 1, "req-2", x), OK);
    REQUIRE(x->chat_id != g->chat_id, "a new key returned the old group");
    REQUIRE_CODE(t_create_group_keyed(c, NULL, "C's", just_b, 1, "req-1", x), OK);
    REQUIRE(x->chat_id != g->chat_id, "another creator's key returned a's group");
    REQUIRE_EQ_INT((int64_t)groups_listed(a), 2);

    /* no key: every call creates */
    int64_t first;
    REQUIRE_CODE(t_create_group(a, "Plain", just_b, 1, x), OK);
    first = x->chat_id;
    REQUIRE_CODE(t_create_group(a, "Plain", just_b, 1, x), OK);
    REQUIRE(x->chat_id != first, "two unkeyed creates returned one group");

    /* four concurrent creates with one key: one group */
    enum { N = 4 };
    creator_t o[N];
    pthread_t th[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        o[i] = (creator_t){b, c->account_id, 0, 0, &start};
        REQUIRE(pthread_create(&th[i], NULL, create_thread, &o[i]) == 0, "thread");
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int i = 0; i < N; i++) {
        REQUIRE(o[i].code == OK, "concurrent create %d: %s (%s)", i, pl_code_name(o[i].code), t_message);
        REQUIRE_EQ_INT(o[i].chat, o[0].chat);
    }
    free(t_log(o[0].chat, &n));
    REQUIRE_EQ_INT((int64_t)n, 1);

    /* bad keys: INVALID_ARGUMENT */
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Bad", just_b, 1, "has space", x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Bad", just_b, 1, "tab\there", x), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_create_group_keyed(a, NULL, "Bad", just_b, 1, "caf\xc3\xa9", x), PL_CODE_INVALID_ARGUMENT);
    free(g);
    free(x);
    return 0;
}

static int case_size_limit(void)
{
    /* parleyd runs with --limits.group_max_members=4 */
    t_user_t *a = t_user(), *b = t_user(), *c = t_user(), *d = t_user(), *e = t_user();
    parley_v1_Chat *g = t_chat_new();
    int64_t four[] = {b->account_id, c->account_id, d->account_id, e->account_id};
    REQUIRE_CODE(t_create_group(a, "Big", four, 4, g), PL_CODE_RESOURCE_EXHAUSTED);
    REQUIRE(strstr(t_message, "4") != NULL, "message does not say the limit: %s", t_message);
    REQUIRE_CODE(t_create_group(a, "Big", four, 3, g), OK);
    REQUIRE_EQ_INT(g->members_count, 4);
    int64_t chat = g->chat_id;
    int64_t just_e[] = {e->account_id};
    REQUIRE_CODE(t_add_members(a, chat, just_e, 1, g), PL_CODE_RESOURCE_EXHAUSTED);
    REQUIRE_CODE(t_get_chat(a, chat, g), OK);
    REQUIRE_EQ_INT(g->members_count, 4);
    REQUIRE_EQ_INT(g->last_seq, 1);
    REQUIRE_CODE(t_remove_member(a, chat, d->account_id, g), OK);
    REQUIRE_CODE(t_add_members(a, chat, just_e, 1, g), OK);
    REQUIRE_EQ_INT(g->members_count, 4);
    expect_member(g, e, parley_v1_Role_ROLE_MEMBER, 3);
    free(g);
    return 0;
}

static int case_blocked_add(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *g = t_chat_new();
    t_block(c, a->account_id);
    int64_t bc[] = {b->account_id, c->account_id};
    REQUIRE_CODE(t_create_group(a, "Nope", bc, 2, g), PL_CODE_PERMISSION_DENIED);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)c->account_id);
    REQUIRE(strstr(t_message, id) == NULL, "the refusal names the blocker: %s", t_message);
    snprintf(id, sizeof(id), "%lld", (long long)b->account_id);
    REQUIRE(strstr(t_message, id) == NULL, "the refusal names an account: %s", t_message);
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));
    REQUIRE_CODE(t_list(b, 0, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 0);

    REQUIRE_CODE(t_create_group(a, "Ok", bc, 1, g), OK);
    int64_t chat = g->chat_id;
    int64_t just_c[] = {c->account_id};
    REQUIRE_CODE(t_add_members(a, chat, just_c, 1, g), PL_CODE_PERMISSION_DENIED);
    REQUIRE_CODE(t_get_chat(a, chat, g), OK);
    REQUIRE_EQ_INT(g->members_count, 2);
    REQUIRE_EQ_INT(g->last_seq, 1);
    /* another admin, whom c did not block, may add c */
    REQUIRE_CODE(t_set_role(a, chat, b->account_id, parley_v1_Role_ROLE_ADMIN, g), OK);
    REQUIRE_CODE(t_add_members(b, chat, just_c, 1, g), OK);
    expect_member(g, c, parley_v1_Role_ROLE_MEMBER, 3);
    free(l);
    free(g);
    return 0;
}

static int case_last_admin(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *g = t_chat_new();
    int64_t just_c[] = {c->account_id}, just_b[] = {b->account_id}, just_a[] = {a->account_id};

    /* c joined first (seq 1), b later (seq 2): c is promoted whatever the ids */
    REQUIRE_CODE(t_create_group(a, "Old", just_c, 1, g), OK);
    int64_t chat = g->chat_id;
    REQUIRE_CODE(t_add_members(a, chat, just_b, 1, g), OK);
    int64_t seq = 0;
    REQUIRE_CODE(t_leave(a, chat, &seq), OK);
    REQUIRE_EQ_INT(seq, 3);
    REQUIRE_CODE(t_get_chat(c, chat, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 4);
    REQUIRE_EQ_INT(g->members_count, 2);
    expect_member(g, c, parley_v1_Role_ROLE_ADMIN, 1);
    expect_member(g, b, parley_v1_Role_ROLE_MEMBER, 2);
    REQUIRE_CODE(t_get_chat(a, chat, g), PL_CODE_NOT_FOUND);
    size_t n;
    t_logged_t *log = t_log(chat, &n);
    REQUIRE_EQ_INT(n, 4);
    expect_event(&log[2], 3, parley_v1_ChatEvent_Type_MEMBER_LEFT, a, just_a, 1);
    expect_event(&log[3], 4, parley_v1_ChatEvent_Type_ROLE_CHANGED, a, just_c, 1);
    REQUIRE_EQ_INT(log[3].event.role, parley_v1_Role_ROLE_ADMIN);
    free(log);

    /* joined together: the smaller account id */
    int64_t bc[] = {b->account_id, c->account_id};
    REQUIRE_CODE(t_create_group(a, "Tie", bc, 2, g), OK);
    chat = g->chat_id;
    REQUIRE_CODE(t_leave(a, chat, &seq), OK);
    REQUIRE_CODE(t_get_chat(b, chat, g), OK);
    t_user_t *first = b->account_id < c->account_id ? b : c, *second = first == b ? c : b;
    expect_member(g, first, parley_v1_Role_ROLE_ADMIN, 1);
    expect_member(g, second, parley_v1_Role_ROLE_MEMBER, 1);

    /* another admin remains: nobody is promoted */
    REQUIRE_CODE(t_create_group(a, "Two admins", bc, 2, g), OK);
    chat = g->chat_id;
    REQUIRE_CODE(t_set_role(a, chat, b->account_id, parley_v1_Role_ROLE_ADMIN, g), OK);
    REQUIRE_CODE(t_leave(a, chat, &seq), OK);
    REQUIRE_EQ_INT(seq, 3);
    REQUIRE_CODE(t_get_chat(b, chat, g), OK);
    REQUIRE_EQ_INT(g->last_seq, 3);
    expect_member(g, c, parley_v1_Role_ROLE_MEMBER, 1);

    /* the last member leaves */
    REQUIRE_CODE(t_create_group(c, "Alone", NULL, 0, g), OK);
    chat = g->chat_id;
    REQUIRE_EQ_INT(g->members_count, 1);
    REQUIRE_CODE(t_leave(c, chat, &seq), OK);
    REQUIRE_EQ_INT(seq, 2);
    REQUIRE_CODE(t_get_chat(c, chat, g), PL_CODE_NOT_FOUND);
    free(g);
    return 0;
}

/* ---- the chat list ---- */

static int case_list(void)
{
    t_user_t *a = t_user(), *p[3];
    parley_v1_Chat *x = t_chat_new();
    int64_t all[7];
    int kinds[7];
    for (int i = 0; i < 3; i++) {
        p[i] = t_user();
        REQUIRE_CODE(t_open_direct(a, p[i]->account_id, x), OK);
        all[i] = x->chat_id;
        kinds[i] = parley_v1_ChatKind_CHAT_KIND_DIRECT;
    }
    for (int i = 3; i < 7; i++) {
        char name[16];
        snprintf(name, sizeof(name), "G%d", i);
        int64_t m[] = {p[i % 3]->account_id};
        REQUIRE_CODE(t_create_group(a, name, m, 1, x), OK);
        all[i] = x->chat_id;
        kinds[i] = parley_v1_ChatKind_CHAT_KIND_GROUP;
    }
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));
    int64_t after = 0, last = 0;
    int total = 0, pages = 0;
    bool more = true;
    while (more) {
        REQUIRE_CODE(t_list(a, after, 3, l), OK);
        pages++;
        REQUIRE(pages <= 3, "too many pages");
        REQUIRE_EQ_INT(l->chats_count, pages < 3 ? 3 : 1);
        REQUIRE(l->has_more == (pages < 3), "page %d: has_more %d", pages, l->has_more);
        for (pb_size_t i = 0; i < l->chats_count; i++) {
            const parley_v1_ChatSummary *s = &l->chats[i];
            REQUIRE(s->chat_id > last, "chats out of order");
            last = s->chat_id;
            int k = -1;
            for (int j = 0; j < 7; j++)
                if (all[j] == s->chat_id)
                    k = j;
            REQUIRE(k >= 0, "unknown chat %lld listed", (long long)s->chat_id);
            REQUIRE_EQ_INT(s->kind, kinds[k]);
            if (k < 3) {
                REQUIRE_EQ_INT(s->peer_account_id, p[k]->account_id);
                REQUIRE_EQ_INT(s->last_seq, 0);
            } else {
                char name[16];
                snprintf(name, sizeof(name), "G%d", k);
                REQUIRE(strcmp(s->name, name) == 0, "name %s, want %s", s->name, name);
                REQUIRE_EQ_INT(s->peer_account_id, 0);
                REQUIRE_EQ_INT(s->last_seq, 1);
            }
            total++;
        }
        after = last;
        more = l->has_more;
    }
    REQUIRE_EQ_INT(total, 7);
    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 7);
    REQUIRE(!l->has_more, "has_more with the default limit");
    REQUIRE_CODE(t_list(a, 0, 100000, l), OK); /* above the maximum: the maximum */
    REQUIRE_EQ_INT(l->chats_count, 7);
    REQUIRE_CODE(t_list(a, last, 0, l), OK);
    REQUIRE_EQ_INT(l->chats_count, 0);
    REQUIRE(!l->has_more, "has_more after the end");
    REQUIRE_CODE(t_list(a, 0, -1, l), PL_CODE_INVALID_ARGUMENT);
    REQUIRE_CODE(t_list(a, -5, 10, l), PL_CODE_INVALID_ARGUMENT);

    /* removed from a group: gone from the list */
    int64_t g = all[3];
    t_user_t *q = p[0];
    REQUIRE_CODE(t_list(q, 0, 0, l), OK);
    REQUIRE(t_summary(l, g) != NULL, "member does not list the group");
    REQUIRE_CODE(t_remove_member(a, g, q->account_id, x), OK);
    REQUIRE_CODE(t_list(q, 0, 0, l), OK);
    REQUIRE(t_summary(l, g) == NULL, "removed member still lists the group");
    REQUIRE(t_summary(l, all[0]) != NULL, "the direct chat vanished");

    /* a chat list row that missed the removal is not listed, and repaired */
    char acc[24], chat[24];
    snprintf(acc, sizeof(acc), "%lld", (long long)q->account_id);
    snprintf(chat, sizeof(chat), "%lld", (long long)g);
    const char *pp[] = {acc, chat};
    PQclear(t_sql(pl_id_shard(q->account_id),
                  "UPDATE {s}.account_chats SET removed_seq = NULL, membership_seq = 1"
                  " WHERE account_id = $1 AND chat_id = $2",
                  2, pp));
    REQUIRE_CODE(t_list(q, 0, 0, l), OK);
    REQUIRE(t_summary(l, g) == NULL, "a stale row is listed");
    int64_t removed = -1;
    for (int i = 0; i < 100 && removed < 0; i++) {
        removed = t_sql_int(pl_id_shard(q->account_id),
                            "SELECT COALESCE(removed_seq, -1) FROM {s}.account_chats"
                            " WHERE account_id = $1 AND chat_id = $2",
                            2, pp);
        if (removed < 0)
            usleep(50000);
    }
    REQUIRE_EQ_INT(removed, 2);
    free(l);
    free(x);
    return 0;
}

static int case_unread(void)
{
    t_user_t *a = t_user(), *b = t_user(), *d = t_user();
    parley_v1_Chat *g = t_chat_new();
    parley_v1_ListChatsResponse *l = calloc(1, sizeof(*l));
    int64_t just_b[] = {b->account_id};
    REQUIRE_CODE(t_create_group(a, "Talk", just_b, 1, g), OK); /* 1: CREATED by a */
    int64_t chat = g->chat_id;
    REQUIRE_EQ_INT(t_send(b, chat, "b1"), 2);
    REQUIRE_EQ_INT(t_send(b, chat, "b2"), 3);
    REQUIRE_EQ_INT(t_send(a, chat, "a1"), 4);
    REQUIRE_EQ_INT(t_send(b, chat, "b3"), 5);
    REQUIRE_EQ_INT(t_send(a, chat, "a2"), 6);

    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    const parley_v1_ChatSummary *s = t_summary(l, chat);
    REQUIRE(s != NULL, "not listed");
    REQUIRE_EQ_INT(s->last_seq, 6);
    REQUIRE_EQ_INT(s->unread_count, 3); /* b's 2, 3, 5 */
    REQUIRE_EQ_INT(s->my_read_seq, 0);
    REQUIRE_CODE(t_list(b, 0, 0, l), OK);
    REQUIRE_EQ_INT(t_summary(l, chat)->unread_count, 3); /* a's 1, 4, 6 */

    t_read_up_to(a, chat, 3);
    t_read_up_to(b, chat, 4);
    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    s = t_summary(l, chat);
    REQUIRE_EQ_INT(s->unread_count, 1);
    REQUIRE_EQ_INT(s->my_read_seq, 3);
    REQUIRE_EQ_INT(s->my_delivered_seq, 3);
    REQUIRE_CODE(t_list(b, 0, 0, l), OK);
    REQUIRE_EQ_INT(t_summary(l, chat)->unread_count, 1);
    REQUIRE_EQ_INT(t_summary(l, chat)->my_read_seq, 4);

    REQUIRE_CODE(t_get_chat(a, chat, g), OK);
    REQUIRE_EQ_INT(g->read_by_all_seq, 3);
    REQUIRE_EQ_INT(g->delivered_to_all_seq, 3);
    REQUIRE_EQ_INT(t_member(g, b->account_id)->read_seq, 4);

    /* a new member starts at the message that added them */
    int64_t just_d[] = {d->account_id};
    REQUIRE_CODE(t_add_members(a, chat, just_d, 1, g), OK); /* 7 */
    REQUIRE_EQ_INT(g->read_by_all_seq, 3);
    REQUIRE_CODE(t_list(d, 0, 0, l), OK);
    s = t_summary(l, chat);
    REQUIRE(s != NULL, "the new member does not list the group");
    REQUIRE_EQ_INT(s->unread_count, 1);
    REQUIRE_EQ_INT(s->my_read_seq, 6);
    REQUIRE_EQ_INT(s->last_seq, 7);

    /* a direct chat */
    parley_v1_Chat *x = t_chat_new();
    REQUIRE_CODE(t_open_direct(a, b->account_id, x), OK);
    t_send(b, x->chat_id, "hi");
    t_send(b, x->chat_id, "there");
    REQUIRE_CODE(t_list(a, 0, 0, l), OK);
    s = t_summary(l, x->chat_id);
    REQUIRE(s != NULL, "direct chat not listed");
    REQUIRE_EQ_INT(s->unread_count, 2);
    REQUIRE_EQ_INT(s->last_seq, 2);
    REQUIRE_CODE(t_list(b, 0, 0, l), OK);
    REQUIRE_EQ_INT(t_summary(l, x->chat_id)->unread_count, 0);
    free(x);
    free(g);
    free(l);
    return 0;
}

static int case_rate_limit(void)
{
    /* parleyd runs with --rate.group_ops_per_minute=3 */
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *g = t_chat_new();
    int64_t first = 0;
    for (int i = 0; i < 3; i++) {
        REQUIRE_CODE(t_create_group(a, "Mine", NULL, 0, g), OK);
        if (!first)
            first = g->chat_id;
    }
    REQUIRE_CODE(t_create_group(a, "Mine", NULL, 0, g), PL_CODE_RESOURCE_EXHAUSTED);
    long long ms = 0;
    const char *at = strstr(t_message, "retry after ");
    REQUIRE(at && sscanf(at, "retry after %lld ms", &ms) == 1, "message: %s", t_message);
    REQUIRE(ms > 0 && ms <= 60000, "retry after %lld ms", ms);
    REQUIRE_CODE(t_update_name(a, first, "Still mine", g), PL_CODE_RESOURCE_EXHAUSTED);
    /* per account; reads and leaving are not limited */
    REQUIRE_CODE(t_create_group(b, "Theirs", NULL, 0, g), OK);
    REQUIRE_CODE(t_get_chat(a, first, g), OK);
    REQUIRE_CODE(t_leave(a, first, NULL), OK);

    /* Redis down: group operations go on (fail open) */
    const char *dir = getenv("PARLEY_STACK_DIR");
    REQUIRE(dir != NULL, "PARLEY_STACK_DIR not set");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tools/stack redis-stop --dir '%s' >/dev/null", PARLEY_SOURCE_DIR, dir);
    REQUIRE(system(cmd) == 0, "%s failed", cmd);
    for (int i = 0; i < 5; i++)
        REQUIRE_CODE(t_create_group(c, "Redis down", NULL, 0, g), OK);
    free(g);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(void);
    } cases[] = {
        {"direct", case_direct},
        {"direct_blocked", case_direct_blocked},
        {"group", case_group},
        {"concurrent", case_concurrent},
        {"size_limit", case_size_limit},
        {"blocked_add", case_blocked_add},
        {"last_admin", case_last_admin},
        {"list", case_list},
        {"unread", case_unread},
        {"rate_limit", case_rate_limit},
        {"create_retry", case_create_retry},
        {"repair_crash", case_repair_crash},
        {"repair_quiet", case_repair_quiet},
    };
    if (argc != 2) {
        fprintf(stderr, "usage: test_chats CASE\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(argv[1], cases[i].name) != 0)
            continue;
        t_init();
        int rc = pl_test_run(argv[1], cases[i].fn);
        t_done();
        return rc;
    }
    fprintf(stderr, "test_chats: unknown case %s\n", argv[1]);
    return 2;
}
