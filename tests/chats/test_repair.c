/* test_repair.c — the chat list repair (server/chats/repair.c), with
 * parleyd nodes of the test's own besides PARLEY_ADDR's (which runs with
 * the repair off, so that only the node a case starts repairs):
 *
 *   repair_crash  a node killed between a membership change's commit on the
 *                 chat's shard and the chat list write (the test-only
 *                 PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT): the added member does
 *                 not list the chat; a node with the repair writes that one
 *                 row and then nothing more
 *   repair_quiet  passes over chat lists in step write nothing (no row
 *                 version moves); lists broken by hand in both directions
 *                 (missing rows, a stale current row, a lost re-add) are
 *                 repaired, and only those rows are written */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define OK PL_CODE_OK
#define REPAIR_FAST "--limits.chat_repair_interval_ms=100"
#define REPAIR_OFF "--limits.chat_repair_interval_ms=0"

/* What a node's repair passes logged ("chats repair: pass ..."). */
typedef struct passes {
    int count;
    unsigned long long memberships;       /* the last pass's */
    unsigned long long written, failures; /* over all passes */
} passes_t;

static passes_t read_passes(const t_node_t *n)
{
    passes_t p = {0};
    FILE *f = fopen(n->log, "r");
    if (!f)
        return p;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, "chats repair: pass ");
        unsigned long long pass, members, statements, written, failures;
        int shards;
        long long ms, qms;
        if (at && sscanf(at,
                         "chats repair: pass %llu: %llu memberships on %d shards in %lld ms (%lld ms querying, %llu "
                         "statements); %llu chat list rows written, %llu failures",
                         &pass, &members, &shards, &ms, &qms, &statements, &written, &failures) == 8) {
            REQUIRE_EQ_INT(shards, t_shards);
            p.count++;
            p.memberships = members;
            p.written += written;
            p.failures += failures;
        }
    }
    fclose(f);
    return p;
}

static passes_t wait_passes(const t_node_t *n, int count)
{
    passes_t p = read_passes(n);
    for (int i = 0; i < 600 && p.count < count; i++) {
        usleep(50 * 1000);
        p = read_passes(n);
    }
    REQUIRE(p.count >= count, "%d repair passes logged in 30 s, want %d", p.count, count);
    return p;
}

static int64_t members_total(void)
{
    int64_t n = 0;
    for (int s = 0; s < t_shards; s++)
        n += t_sql_int(s, "SELECT count(*) FROM {s}.members", 0, NULL);
    return n;
}

/* Every chat list row of the cluster, one line each, in a fixed order;
 * with the row version (xmin, xmax) when with_version: it moves when a
 * row is written or even locked. */
typedef struct rows {
    char **line;
    size_t n;
} rows_t;

static rows_t snapshot(bool with_version)
{
    rows_t r = {0};
    for (int s = 0; s < t_shards; s++) {
        PGresult *res = t_sql(s,
                              "SELECT account_id, chat_id, kind, COALESCE(peer_account, 0), joined_seq,"
                              "       COALESCE(removed_seq, -1), membership_seq, xmin::text, xmax::text"
                              "  FROM {s}.account_chats ORDER BY account_id, chat_id",
                              0, NULL);
        int n = PQntuples(res);
        r.line = realloc(r.line, (r.n + (size_t)n + 1) * sizeof(*r.line));
        REQUIRE(r.line != NULL, "out of memory");
        for (int i = 0; i < n; i++) {
            char buf[512];
            int len =
                snprintf(buf, sizeof(buf), "%s %s kind %s peer %s joined %s removed %s mseq %s", PQgetvalue(res, i, 0),
                         PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                         PQgetvalue(res, i, 5), PQgetvalue(res, i, 6));
            if (with_version)
                snprintf(buf + len, sizeof(buf) - (size_t)len, " version %s/%s", PQgetvalue(res, i, 7),
                         PQgetvalue(res, i, 8));
            r.line[r.n++] = strdup(buf);
        }
        PQclear(res);
    }
    return r;
}

static void rows_free(rows_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->line[i]);
    free(r->line);
}

/* The lines that differ (the same rows, in the same order, expected). */
static int rows_diff(const rows_t *a, const rows_t *b)
{
    REQUIRE(a->n == b->n, "%zu chat list rows, then %zu", a->n, b->n);
    int d = 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->line[i], b->line[i]) != 0) {
            printf("  was: %s\n  now: %s\n", a->line[i], b->line[i]);
            d++;
        }
    return d;
}

/* u's chat list row of chat: joined, removed (-1: NULL), membership_seq;
 * false if there is none */
static bool listing(const t_user_t *u, int64_t chat, int64_t out[3])
{
    char a[24], c[24];
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    const char *p[] = {a, c};
    PGresult *r = t_sql(pl_id_shard(u->account_id),
                        "SELECT joined_seq, COALESCE(removed_seq, -1), membership_seq FROM {s}.account_chats"
                        " WHERE account_id = $1 AND chat_id = $2",
                        2, p);
    bool found = PQntuples(r) == 1;
    for (int i = 0; found && i < 3; i++)
        out[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
    PQclear(r);
    return found;
}

static void edit_listing(const t_user_t *u, int64_t chat, const char *set)
{
    char a[24], c[24], sql[512];
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    const char *p[] = {a, c};
    if (set)
        snprintf(sql, sizeof(sql), "UPDATE {s}.account_chats SET %s WHERE account_id = $1 AND chat_id = $2", set);
    else
        snprintf(sql, sizeof(sql), "DELETE FROM {s}.account_chats WHERE account_id = $1 AND chat_id = $2");
    PGresult *r = t_sql(pl_id_shard(u->account_id), sql, 2, p);
    REQUIRE(strcmp(PQcmdTuples(r), "1") == 0, "%s: %s rows", sql, PQcmdTuples(r));
    PQclear(r);
}

int case_repair_crash(void)
{
    t_user_t *a = t_user(), *b = t_user(), *c = t_user();
    parley_v1_Chat *g = t_chat_new(), *x = t_chat_new();
    int64_t just_c[] = {c->account_id};
    REQUIRE_CODE(t_create_group(a, "Crash", just_c, 1, g), OK);
    int64_t chat = g->chat_id;

    /* AddMembers through a node that dies once the chat's shard committed it */
    t_node_t crashing;
    const char *off[] = {REPAIR_OFF, NULL};
    t_node_start(&crashing, 1, "PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT=AddMembers", off);
    pl_channel_t *ch = t_connect_to(crashing.addr);
    parley_v1_AddMembersRequest *rq = calloc(1, sizeof(*rq));
    REQUIRE(rq != NULL, "out of memory");
    rq->chat_id = chat;
    rq->account_ids[0] = b->account_id;
    rq->account_ids_count = 1;
    pl_code_t code = t_call(a, ch, &parley_v1_Chats_AddMembers_method, rq, x);
    REQUIRE(code != OK, "AddMembers through the crashing node answered OK");
    int status = t_node_wait(&crashing, 30000);
    REQUIRE(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
            "the crashing node: wait status %d, want killed by SIGKILL", status);
    REQUIRE(t_node_log_has(&crashing, "TEST HOOK"), "the node died, but not in the hook");
    pl_channel_free(ch);
    free(rq);
    unlink(crashing.log);

    /* between the two writes: a member on the chat's shard, missing from
     * its chat list; ListChats (node 0 repairs nothing) leaves the chat out */
    char cs[24], bs[24];
    snprintf(cs, sizeof(cs), "%lld", (long long)chat);
    snprintf(bs, sizeof(bs), "%lld", (long long)b->account_id);
    const char *p[] = {cs, bs};
    REQUIRE_EQ_INT(t_sql_int(pl_id_shard(chat),
                             "SELECT joined_seq FROM {s}.members WHERE chat_id = $1 AND account_id = $2"
                             " AND removed_seq IS NULL",
                             2, p),
                   2);
    int64_t l[3];
    REQUIRE(!listing(b, chat, l), "the chat list was written before the crash");
    REQUIRE(listing(a, chat, l) && listing(c, chat, l), "the creation's chat list rows are missing");
    parley_v1_ListChatsResponse *list = calloc(1, sizeof(*list));
    REQUIRE(list != NULL, "out of memory");
    REQUIRE_CODE(t_list(b, 0, 0, list), OK);
    REQUIRE(t_summary(list, chat) == NULL, "b lists the chat before any repair");
    REQUIRE_CODE(t_get_chat(b, chat, x), OK); /* the chat's shard decides */
    REQUIRE(t_member(x, b->account_id) != NULL, "b is not a member");

    /* a node with the repair on: the chat appears in b's list */
    t_node_t repairing;
    const char *fast[] = {REPAIR_FAST, NULL};
    t_node_start(&repairing, 2, NULL, fast);
    const parley_v1_ChatSummary *s = NULL;
    for (int i = 0; i < 600 && !s; i++) {
        REQUIRE_CODE(t_list(b, 0, 0, list), OK);
        s = t_summary(list, chat);
        if (!s)
            usleep(50 * 1000);
    }
    REQUIRE(s != NULL, "the repair did not list the chat for b within 30 s");
    REQUIRE_EQ_INT(s->kind, parley_v1_ChatKind_CHAT_KIND_GROUP);
    REQUIRE(strcmp(s->name, "Crash") == 0, "name %s", s->name);
    REQUIRE_EQ_INT(s->last_seq, 2);
    REQUIRE(listing(b, chat, l), "no row");
    REQUIRE_EQ_INT(l[0], 2);
    REQUIRE_EQ_INT(l[1], -1);
    REQUIRE_EQ_INT(l[2], 2);
    REQUIRE_CODE(t_get_chat(b, chat, x), OK);
    REQUIRE(t_member(x, b->account_id) != NULL, "b is not a member");

    /* that one row was written, by the first pass, and nothing since */
    passes_t ps = wait_passes(&repairing, 3);
    REQUIRE_EQ_INT(ps.written, 1);
    REQUIRE_EQ_INT(ps.failures, 0);
    REQUIRE_EQ_INT(ps.memberships, members_total());
    printf("repair passes: %d, %llu memberships each, %llu row written\n", ps.count, ps.memberships, ps.written);
    REQUIRE_EQ_INT(t_node_stop(&repairing), 0);
    free(list);
    free(g);
    free(x);
    return 0;
}

int case_repair_quiet(void)
{
    t_user_t *u[6];
    for (int i = 0; i < 6; i++)
        u[i] = t_user();
    parley_v1_Chat *x = t_chat_new();
    /* direct chats, and groups with every kind of membership change:
     * g1: created (seq 1) with u1-u3, u3 removed (2), u2 leaves (3), u3
     * added again (4); g2: created by u1 with u4 and u5, a role, a rename */
    REQUIRE_CODE(t_open_direct(u[0], u[1]->account_id, x), OK);
    int64_t direct = x->chat_id;
    REQUIRE_CODE(t_open_direct(u[0], u[2]->account_id, x), OK);
    int64_t m1[] = {u[1]->account_id, u[2]->account_id, u[3]->account_id};
    REQUIRE_CODE(t_create_group(u[0], "Quiet", m1, 3, x), OK);
    int64_t g1 = x->chat_id;
    REQUIRE_CODE(t_remove_member(u[0], g1, u[3]->account_id, x), OK);
    REQUIRE_CODE(t_leave(u[2], g1, NULL), OK);
    int64_t back[] = {u[3]->account_id};
    REQUIRE_CODE(t_add_members(u[0], g1, back, 1, x), OK);
    int64_t m2[] = {u[4]->account_id, u[5]->account_id};
    REQUIRE_CODE(t_create_group(u[1], "Other", m2, 2, x), OK);
    int64_t g2 = x->chat_id;
    REQUIRE_CODE(t_set_role(u[1], g2, u[4]->account_id, parley_v1_Role_ROLE_ADMIN, x), OK);
    REQUIRE_CODE(t_update_name(u[1], g2, "Renamed", x), OK);
    int64_t l[3];
    REQUIRE(listing(u[3], g1, l) && l[0] == 4 && l[1] == -1 && l[2] == 4, "u3's row of g1 is not the re-add");
    REQUIRE(listing(u[2], g1, l) && l[1] == 3, "u2's row of g1 does not say it left");

    /* lists in step: passes write nothing, not a row version moves */
    rows_t before = snapshot(true), values = snapshot(false);
    int64_t members = members_total();
    REQUIRE_EQ_INT(members, 4 + 4 + 3);
    t_node_t n;
    const char *fast[] = {REPAIR_FAST, NULL};
    t_node_start(&n, 1, NULL, fast);
    passes_t ps = wait_passes(&n, 2);
    REQUIRE_EQ_INT(ps.written, 0);
    REQUIRE_EQ_INT(ps.failures, 0);
    REQUIRE_EQ_INT(ps.memberships, members);
    rows_t after = snapshot(true);
    REQUIRE_EQ_INT(rows_diff(&before, &after), 0);
    rows_free(&after);

    /* broken by hand: two rows never written (a group member, a direct
     * chat), a left member's row that says current, a re-add that was
     * lost; two passes that began after this repair them, and only them */
    edit_listing(u[4], g2, NULL);
    edit_listing(u[1], direct, NULL);
    edit_listing(u[2], g1, "removed_seq = NULL, membership_seq = 1");
    edit_listing(u[3], g1, "joined_seq = 1, removed_seq = 2, membership_seq = 2");
    wait_passes(&n, ps.count + 2);
    ps = read_passes(&n);
    REQUIRE_EQ_INT(ps.written, 4);
    REQUIRE_EQ_INT(ps.failures, 0);
    after = snapshot(false);
    REQUIRE_EQ_INT(rows_diff(&values, &after), 0);
    rows_free(&after);
    /* versions: the two rebuilt rows are new, the two fixed ones moved,
     * every other row is as it was before */
    after = snapshot(true);
    REQUIRE_EQ_INT(rows_diff(&before, &after), 2 + 2);
    printf("repair passes: %d, %llu memberships each, %llu rows written\n", ps.count, ps.memberships, ps.written);
    REQUIRE_EQ_INT(t_node_stop(&n), 0);
    rows_free(&after);
    rows_free(&before);
    rows_free(&values);
    free(x);
    return 0;
}
