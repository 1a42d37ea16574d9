/* chats.c — parley.v1.Chats: the statements and the handler table.
 *
 * Where things live: a chat's row, its members (with their cursors) and its
 * log are on the chat's shard, the one its id carries; each account's chat
 * list (account_chats) is on the account's shard. Membership and settings
 * changes are one group function each on the chat's shard
 * (migrations/0005_group_membership.sql) and then propagate to the chat
 * lists (account_chats.c). */
#include "chats/chats.h"

#include <stdio.h>
#include <stdlib.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "parley/v1/chats.parley.h"

#define GROUP_FN_COLUMNS "SELECT status, event_seq, account, joined, removed FROM {s}."

static const pl_pg_stmt_t statements[ST_COUNT] = {
    /* $1 ids (bigint[] as text), $2 the account they might block */
    [ST_ACCOUNTS_CHECK] = {"chats_accounts_check",
                           "SELECT a.id, EXISTS (SELECT 1 FROM {s}.blocks b"
                           "                      WHERE b.account_id = a.id AND b.blocked_id = $2::bigint)"
                           "  FROM {s}.accounts a WHERE a.id = ANY ($1::bigint[])",
                           false},
    [ST_DIRECT_ENSURE] = {"chats_direct_ensure",
                          "SELECT chat_id, created, account_a, account_b, a_blocks_b, b_blocks_a, last_seq"
                          "  FROM {s}.ensure_direct_chat($1::bigint, $2::bigint, $3::bigint)",
                          false},
    /* the chat row once per current member (one row with NULL member
     * columns if there is none), longest-standing first */
    [ST_CHAT_LOAD] = {"chats_load",
                      "SELECT c.kind, c.name, c.description, c.only_admins_send, c.last_seq,"
                      "       (extract(epoch FROM c.created_at) * 1000)::bigint, c.members_version,"
                      "       m.account_id, m.role, m.joined_seq, m.delivered_seq, m.read_seq"
                      "  FROM {s}.chats c LEFT JOIN {s}.members m ON m.chat_id = c.id AND m.removed_seq IS NULL"
                      " WHERE c.id = $1::bigint ORDER BY m.joined_seq, m.account_id LIMIT 1024",
                      false},
    /* rows as parallel arrays: account, chat, kind, peer (0: none), joined,
     * removed (0: none), membership_seq; applied only if newer, and the
     * count of rows written. Rows that are as new already are filtered out
     * before the upsert, which would lock them (a WAL record and a commit
     * to flush) even when its WHERE leaves them unchanged; ON CONFLICT's
     * WHERE still settles a concurrent write between the two. The filter
     * is a scalar subquery so that it stays one primary-key probe per row
     * (NOT EXISTS may be planned as an anti-join that reads the table). */
    [ST_ACCOUNT_CHATS_PUT] =
        {"chats_account_chats_put",
         "WITH w AS ("
         "INSERT INTO {s}.account_chats AS ac"
         "       (account_id, chat_id, kind, peer_account, joined_seq, removed_seq, membership_seq)"
         "SELECT u.a, u.c, u.k::smallint, NULLIF(u.p, 0), u.j, NULLIF(u.r, 0), u.m"
         "  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],"
         "              $6::bigint[], $7::bigint[]) AS u(a, c, k, p, j, r, m)"
         " WHERE COALESCE((SELECT x.membership_seq FROM {s}.account_chats x"
         "                  WHERE x.account_id = u.a AND x.chat_id = u.c), -1) < u.m"
         "    ON CONFLICT (account_id, chat_id) DO UPDATE"
         "   SET kind = EXCLUDED.kind, peer_account = EXCLUDED.peer_account,"
         "       joined_seq = EXCLUDED.joined_seq, removed_seq = EXCLUDED.removed_seq,"
         "       membership_seq = EXCLUDED.membership_seq"
         " WHERE ac.membership_seq < EXCLUDED.membership_seq"
         " RETURNING 1) SELECT count(*) FROM w",
         false},
    /* the sixth column: the group's id, an earlier one on a retry */
    [ST_CREATE_GROUP] = {"chats_create_group",
                         "SELECT status, event_seq, account, joined, removed, chat FROM {s}."
                         "create_group($1::bigint, $2::bigint, $3::text, $4::text, $5::boolean,"
                         " $6::bigint[], $7::bytea, NULLIF($8::text, ''))",
                         false},
    [ST_UPDATE_GROUP] = {"chats_update_group",
                         GROUP_FN_COLUMNS "update_group($1::bigint, $2::bigint, $3::bigint, $4::text, $5::text,"
                                          " $6::boolean, $7::bytea)",
                         false},
    [ST_ADD_MEMBERS] = {"chats_add_members",
                        GROUP_FN_COLUMNS "add_members($1::bigint, $2::bigint, $3::bigint, $4::bigint[], $5::bigint,"
                                         " $6::bytea)",
                        false},
    [ST_REMOVE_MEMBER] = {"chats_remove_member",
                          GROUP_FN_COLUMNS "remove_member($1::bigint, $2::bigint, $3::bigint, $4::bytea)", false},
    [ST_SET_ROLE] = {"chats_set_role",
                     GROUP_FN_COLUMNS "set_role($1::bigint, $2::bigint, $3::bigint, $4::bigint, $5::bytea)", false},
    [ST_LEAVE_GROUP] = {"chats_leave_group",
                        GROUP_FN_COLUMNS "leave_group($1::bigint, $2::bigint, $3::bigint, $4::bytea, $5::bigint,"
                                         " $6::bytea)",
                        false},
    /* $1 account, $2 after this chat id, $3 rows */
    [ST_LIST_PAGE] = {"chats_list_page",
                      "SELECT chat_id, kind, COALESCE(peer_account, 0) FROM {s}.account_chats"
                      " WHERE account_id = $1::bigint AND chat_id > $2::bigint AND removed_seq IS NULL"
                      " ORDER BY chat_id LIMIT $3::bigint",
                      false},
    /* $1 account, $2 chat ids, $3 unread cap. Unread: messages after my
     * read cursor (and from my joining on), not mine, not expired. */
    [ST_LIST_DETAILS] = {"chats_list_details",
                         "SELECT c.id, c.kind, c.name, c.last_seq, m.delivered_seq, m.read_seq, m.joined_seq,"
                         "       m.removed_seq, COALESCE(c.account_a, 0), COALESCE(c.account_b, 0),"
                         "       CASE WHEN m.removed_seq IS NOT NULL THEN 0 ELSE"
                         "         (SELECT count(*) FROM (SELECT 1 FROM {s}.messages x"
                         "           WHERE x.chat_id = c.id AND x.seq > GREATEST(m.read_seq, m.joined_seq - 1)"
                         "             AND x.sender_account <> $1::bigint"
                         "             AND (x.expires_at IS NULL OR x.expires_at > now())"
                         "           LIMIT $3::bigint) u) END"
                         "  FROM {s}.chats c JOIN {s}.members m ON m.chat_id = c.id AND m.account_id = $1::bigint"
                         " WHERE c.id = ANY ($2::bigint[])",
                         false},
    /* the repair: memberships (current and past) after ($1 chat, $2
     * account) in key order, $3 of them, as chat lists have them: chat,
     * account, kind, peer (0: none), joined, removed (0: none). Walks the
     * primary key. */
    [ST_REPAIR_SCAN] = {"chats_repair_scan",
                        "SELECT m.chat_id, m.account_id, c.kind,"
                        "       CASE WHEN c.kind = 1 THEN CASE WHEN m.account_id = c.account_a"
                        "            THEN c.account_b ELSE c.account_a END ELSE 0 END,"
                        "       m.joined_seq, COALESCE(m.removed_seq, 0)"
                        "  FROM {s}.members m JOIN {s}.chats c ON c.id = m.chat_id"
                        " WHERE (m.chat_id, m.account_id) > ($1::bigint, $2::bigint)"
                        " ORDER BY m.chat_id, m.account_id LIMIT $3::bigint",
                        true},
};

static const parley_v1_Chats_handlers_t handlers = {
    .OpenDirectChat = pl_chats_open_direct,
    .CreateGroup = pl_chats_create_group,
    .UpdateGroup = pl_chats_update_group,
    .AddMembers = pl_chats_add_members,
    .RemoveMember = pl_chats_remove_member,
    .SetRole = pl_chats_set_role,
    .LeaveGroup = pl_chats_leave_group,
    .GetChat = pl_chats_get_chat,
    .ListChats = pl_chats_list,
};

pl_chats_t *pl_chats_register(pl_app_t *app, char *err, size_t err_len)
{
    pl_chats_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "chats: out of memory");
        return NULL;
    }
    s->app = app;
    s->stmt = pl_app_add_statements(app, statements, ST_COUNT);
    if (s->stmt < 0) {
        snprintf(err, err_len, "chats: out of memory");
        free(s);
        return NULL;
    }
    if (pl_chats_repair_register(s) != 0) {
        snprintf(err, err_len, "chats: cannot register the chat list repair");
        free(s);
        return NULL;
    }
    const char *crash = getenv("PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT");
    if (crash && *crash) {
        snprintf(s->crash_after, sizeof(s->crash_after), "%s", crash);
        pl_log_warn("PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT=%s: TEST ONLY: this process kills itself after the first "
                    "committed %s, before the chat lists are written",
                    s->crash_after, s->crash_after);
    }
    if (parley_v1_Chats_register(app->server, &handlers, s) != 0) {
        snprintf(err, err_len, "chats: cannot register parley.v1.Chats");
        free(s);
        return NULL;
    }
    return s;
}

void pl_chats_free(pl_chats_t *s)
{
    free(s);
}
