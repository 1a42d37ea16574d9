/* harness.c — accounts, calls and shard access for the Chats tests. */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/direct.h"
#include "register.h"
#include "runtime/codec.h"
#include "shards.h"
#include "store/ids.h"
#include "store/shardmap.h"

_Thread_local char t_message[512];
int t_shards;

static pl_test_db_t *db;
static pl_idgen_t ids;
static char host[64];
static uint16_t port;
static atomic_int phone_seq;
static bool accounts_rpc = true;
static t_user_t *users[256];
static atomic_int user_count;

void t_init(void)
{
    char err[1024];
    db = pl_test_db_open(err, sizeof(err));
    REQUIRE(db != NULL, "%s", err);
    t_shards = pl_test_db_shards(db);
    pl_idgen_init(&ids, PL_ID_MAX_NODES - 1); /* parleyd nodes start at 0 */
    const char *addr = getenv("PARLEY_ADDR");
    REQUIRE(addr != NULL, "PARLEY_ADDR not set (run under with_parleyd.py)");
    const char *colon = strrchr(addr, ':');
    REQUIRE(colon && (size_t)(colon - addr) < sizeof(host), "bad PARLEY_ADDR %s", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    port = (uint16_t)atoi(colon + 1);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    atomic_store(&phone_seq, rand() % 100000);
}

void t_done(void)
{
    for (int i = 0; i < atomic_load(&user_count); i++) {
        pl_channel_free(users[i]->ch);
        pl_metadata_dispose(&users[i]->md);
        free(users[i]);
    }
    pl_test_db_close(db);
    db = NULL;
}

int64_t t_new_id(int shard)
{
    return pl_id_new(&ids, shard);
}

pl_channel_t *t_connect(void)
{
    pl_channel_opts_t o = {0};
    o.host = host;
    o.port = port;
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    REQUIRE(ch != NULL, "connect: %s", err);
    return ch;
}

static pl_code_t call_md(pl_channel_t *ch, const pl_metadata_t *md, const pl_method_t *m, const void *req, void *resp)
{
    pl_call_opts_t o = {20000, md, false};
    pl_status_t st = {0};
    pl_code_t code = pl_ccall_unary(ch, m, &o, req, resp, &st);
    snprintf(t_message, sizeof(t_message), "%s", st.message ? st.message : "");
    pl_status_reset(&st);
    return code;
}

pl_code_t t_call(t_user_t *u, pl_channel_t *ch, const pl_method_t *m, const void *req, void *resp)
{
    return call_md(ch ? ch : u->ch, &u->md, m, req, resp);
}

pl_code_t t_call_anonymous(const pl_method_t *m, const void *req, void *resp, bool bad_token)
{
    pl_channel_t *ch = t_connect();
    pl_metadata_t md = PL_METADATA_INIT(8192);
    if (bad_token) {
        char token[PL_TOKEN_LEN + 1];
        uint8_t hash[PL_TOKEN_HASH_BYTES];
        pl_auth_new_token(pl_id_new(&ids, 0), token, hash);
        char value[PL_TOKEN_LEN + 8];
        snprintf(value, sizeof(value), "Bearer %s", token);
        pl_metadata_add(&md, "authorization", value, strlen(value));
    }
    pl_code_t code = call_md(ch, &md, m, req, resp);
    pl_metadata_dispose(&md);
    pl_channel_free(ch);
    return code;
}

/* ---- accounts ---- */

static bool register_rpc(t_user_t *u)
{
    pl_test_reg_t reg;
    pl_code_t code = pl_test_register(u->ch, u->phone, "test", 20000, &reg);
    if (code == PL_CODE_UNIMPLEMENTED && strcmp(reg.failed_step, "RequestCode") == 0)
        return false;
    snprintf(t_message, sizeof(t_message), "%s", reg.message);
    REQUIRE(code == PL_CODE_OK, "register %s: %s: got %s (%s)", u->phone, reg.failed_step, pl_code_name(code),
            t_message);
    u->account_id = reg.account_id;
    u->device_id = reg.device_id;
    REQUIRE(strlen(reg.token) == PL_TOKEN_LEN, "token of %zu bytes", strlen(reg.token));
    memcpy(u->token, reg.token, PL_TOKEN_LEN + 1);
    return true;
}

static void register_db(t_user_t *u)
{
    int shard = pl_shard_for_key(u->phone, strlen(u->phone), t_shards);
    u->account_id = pl_id_new(&ids, shard);
    u->device_id = pl_id_new(&ids, shard);
    uint8_t hash[PL_TOKEN_HASH_BYTES];
    pl_auth_new_token(u->device_id, u->token, hash);
    char acc[24], dev[24], hex[2 * PL_TOKEN_HASH_BYTES + 3] = "\\x";
    snprintf(acc, sizeof(acc), "%lld", (long long)u->account_id);
    snprintf(dev, sizeof(dev), "%lld", (long long)u->device_id);
    for (int i = 0; i < PL_TOKEN_HASH_BYTES; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", hash[i]);
    const char *p1[] = {acc, u->phone};
    PQclear(t_sql(shard, "INSERT INTO {s}.accounts (id, phone) VALUES ($1, $2)", 2, p1));
    const char *p2[] = {dev, acc, hex};
    PQclear(t_sql(shard, "INSERT INTO {s}.devices (id, account_id, token_hash) VALUES ($1, $2, $3)", 3, p2));
}

t_user_t *t_user(void)
{
    t_user_t *u = calloc(1, sizeof(*u));
    REQUIRE(u != NULL, "out of memory");
    snprintf(u->phone, sizeof(u->phone), "+1555%07d", atomic_fetch_add(&phone_seq, 1) % 10000000);
    u->ch = t_connect();
    static bool said;
    if (!accounts_rpc || !register_rpc(u)) {
        accounts_rpc = false;
        register_db(u);
    }
    if (!said) {
        said = true;
        printf("accounts: %s\n", accounts_rpc ? "registered through Accounts RequestCode/Verify"
                                              : "written to their shards (Accounts not implemented yet)");
    }
    int slot = atomic_fetch_add(&user_count, 1);
    REQUIRE(slot < (int)(sizeof(users) / sizeof(users[0])), "too many users");
    users[slot] = u;
    pl_metadata_init(&u->md, 8192);
    char value[PL_TOKEN_LEN + 8];
    snprintf(value, sizeof(value), "Bearer %s", u->token);
    REQUIRE(pl_metadata_add(&u->md, "authorization", value, strlen(value)) == 0, "metadata");
    return u;
}

void t_block(t_user_t *blocker, int64_t blocked)
{
    parley_v1_BlockRequest rq = {0};
    parley_v1_BlockResponse rr = {0};
    rq.account_id = blocked;
    pl_code_t code = t_call(blocker, NULL, &parley_v1_Accounts_Block_method, &rq, &rr);
    if (code != PL_CODE_UNIMPLEMENTED) {
        REQUIRE_CODE(code, PL_CODE_OK);
        return;
    }
    /* what Block records: the row on the blocker's shard, and the flag on
     * the pair's direct chat for the send path */
    char a[24], b[24], id[24];
    snprintf(a, sizeof(a), "%lld", (long long)blocker->account_id);
    snprintf(b, sizeof(b), "%lld", (long long)blocked);
    const char *p[] = {a, b};
    PQclear(t_sql(pl_id_shard(blocker->account_id),
                  "INSERT INTO {s}.blocks (account_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, p));
    int shard = pl_direct_chat_shard(blocker->account_id, blocked, t_shards);
    snprintf(id, sizeof(id), "%lld", (long long)pl_id_new(&ids, shard));
    const char *q[] = {id, a, b};
    PQclear(t_sql(shard, "SELECT * FROM {s}.set_direct_block($1, $2, $3, true)", 3, q));
}

/* ---- Chats calls ---- */

parley_v1_Chat *t_chat_new(void)
{
    parley_v1_Chat *c = calloc(1, sizeof(*c));
    REQUIRE(c != NULL, "out of memory");
    return c;
}

static parley_v1_Chat *scratch(parley_v1_Chat *out, parley_v1_Chat **mine)
{
    *mine = out ? NULL : t_chat_new();
    if (out)
        memset(out, 0, sizeof(*out));
    return out ? out : *mine;
}

pl_code_t t_open_direct(t_user_t *u, int64_t other, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_OpenDirectChatRequest rq = {0};
    rq.account_id = other;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_OpenDirectChat_method, &rq, scratch(out, &mine));
    free(mine);
    return code;
}

pl_code_t t_create_group(t_user_t *u, const char *name, const int64_t *members, size_t n, parley_v1_Chat *out)
{
    return t_create_group_keyed(u, NULL, name, members, n, "", out);
}

pl_code_t t_create_group_keyed(t_user_t *u, pl_channel_t *ch, const char *name, const int64_t *members, size_t n,
                               const char *request_id, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_CreateGroupRequest *rq = calloc(1, sizeof(*rq));
    REQUIRE(rq != NULL, "out of memory");
    snprintf(rq->name, sizeof(rq->name), "%s", name);
    snprintf(rq->client_request_id, sizeof(rq->client_request_id), "%s", request_id);
    if (n)
        memcpy(rq->member_ids, members, n * sizeof(*members));
    rq->member_ids_count = (pb_size_t)n;
    pl_code_t code = t_call(u, ch, &parley_v1_Chats_CreateGroup_method, rq, scratch(out, &mine));
    free(rq);
    free(mine);
    return code;
}

pl_code_t t_add_members(t_user_t *u, int64_t chat, const int64_t *idl, size_t n, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_AddMembersRequest *rq = calloc(1, sizeof(*rq));
    REQUIRE(rq != NULL, "out of memory");
    rq->chat_id = chat;
    if (n)
        memcpy(rq->account_ids, idl, n * sizeof(*idl));
    rq->account_ids_count = (pb_size_t)n;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_AddMembers_method, rq, scratch(out, &mine));
    free(rq);
    free(mine);
    return code;
}

pl_code_t t_remove_member(t_user_t *u, int64_t chat, int64_t account, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_RemoveMemberRequest rq = {0};
    rq.chat_id = chat;
    rq.account_id = account;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_RemoveMember_method, &rq, scratch(out, &mine));
    free(mine);
    return code;
}

pl_code_t t_set_role(t_user_t *u, int64_t chat, int64_t account, parley_v1_Role role, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_SetRoleRequest rq = {0};
    rq.chat_id = chat;
    rq.account_id = account;
    rq.role = role;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_SetRole_method, &rq, scratch(out, &mine));
    free(mine);
    return code;
}

pl_code_t t_leave(t_user_t *u, int64_t chat, int64_t *seq)
{
    parley_v1_LeaveGroupRequest rq = {0};
    parley_v1_LeaveGroupResponse rr = {0};
    rq.chat_id = chat;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_LeaveGroup_method, &rq, &rr);
    if (seq)
        *seq = rr.seq;
    return code;
}

pl_code_t t_get_chat(t_user_t *u, int64_t chat, parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_GetChatRequest rq = {0};
    rq.chat_id = chat;
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_GetChat_method, &rq, scratch(out, &mine));
    free(mine);
    return code;
}

pl_code_t t_update_group(t_user_t *u, int64_t chat, const char *name, const char *description, int only_admins,
                         parley_v1_Chat *out)
{
    parley_v1_Chat *mine;
    parley_v1_UpdateGroupRequest *rq = calloc(1, sizeof(*rq));
    REQUIRE(rq != NULL, "out of memory");
    rq->chat_id = chat;
    if (name) {
        rq->has_name = true;
        snprintf(rq->name, sizeof(rq->name), "%s", name);
    }
    if (description) {
        rq->has_description = true;
        snprintf(rq->description, sizeof(rq->description), "%s", description);
    }
    if (only_admins >= 0) {
        rq->has_only_admins_send = true;
        rq->only_admins_send = only_admins != 0;
    }
    pl_code_t code = t_call(u, NULL, &parley_v1_Chats_UpdateGroup_method, rq, scratch(out, &mine));
    free(rq);
    free(mine);
    return code;
}

pl_code_t t_update_name(t_user_t *u, int64_t chat, const char *name, parley_v1_Chat *out)
{
    return t_update_group(u, chat, name, NULL, -1, out);
}

pl_code_t t_list(t_user_t *u, int64_t after, int32_t limit, parley_v1_ListChatsResponse *out)
{
    parley_v1_ListChatsRequest rq = {0};
    rq.after_chat_id = after;
    rq.limit = limit;
    memset(out, 0, sizeof(*out));
    return t_call(u, NULL, &parley_v1_Chats_ListChats_method, &rq, out);
}

const parley_v1_Member *t_member(const parley_v1_Chat *c, int64_t account)
{
    for (pb_size_t i = 0; i < c->members_count; i++)
        if (c->members[i].account_id == account)
            return &c->members[i];
    return NULL;
}

const parley_v1_ChatSummary *t_summary(const parley_v1_ListChatsResponse *r, int64_t chat)
{
    for (pb_size_t i = 0; i < r->chats_count; i++)
        if (r->chats[i].chat_id == chat)
            return &r->chats[i];
    return NULL;
}

/* ---- the shards ---- */

PGresult *t_sql(int shard, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = pl_test_sql(db, shard, sql, nparams, params);
    REQUIRE(r != NULL, "the statement above failed on shard %d", shard);
    return r;
}

int64_t t_sql_int(int shard, const char *sql, int nparams, const char *const *params)
{
    return pl_test_sql_int(db, shard, sql, nparams, params);
}

t_logged_t *t_log(int64_t chat, size_t *count)
{
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)chat);
    const char *p[] = {id};
    PGresult *r = t_sql(pl_id_shard(chat),
                        "SELECT seq, sender_account, sender_device, client_msg_id, payload IS NOT NULL, chat_event"
                        "  FROM {s}.messages WHERE chat_id = $1 ORDER BY seq",
                        1, p);
    int n = PQntuples(r);
    t_logged_t *out = calloc((size_t)n + 1, sizeof(*out));
    REQUIRE(out != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        t_logged_t *m = &out[i];
        m->seq = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        m->sender_account = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        m->sender_device = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        snprintf(m->client_msg_id, sizeof(m->client_msg_id), "%s", PQgetvalue(r, i, 3));
        m->has_payload = PQgetvalue(r, i, 4)[0] == 't';
        if (!PQgetisnull(r, i, 5)) {
            size_t len;
            unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 5), &len);
            REQUIRE(raw != NULL, "bytea");
            const char *why = NULL;
            REQUIRE(pl_pb_decode(parley_v1_ChatEvent_fields, raw, len, &m->event, &why) == 0,
                    "chat %lld seq %lld: undecodable chat_event: %s", (long long)chat, (long long)m->seq, why);
            PQfreemem(raw);
            m->has_event = true;
        }
    }
    PQclear(r);
    *count = (size_t)n;
    return out;
}

int t_send_status(t_user_t *u, int64_t chat, const char *client_id)
{
    char c[24], a[24], d[24];
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(d, sizeof(d), "%lld", (long long)u->device_id);
    const char *p[] = {c, a, d, client_id};
    return (int)t_sql_int(pl_id_shard(chat),
                          "SELECT status FROM {s}.send_message($1, $2, $3, $4, 'text', '\\x01', NULL, 0, 0)", 4, p);
}

int64_t t_send(t_user_t *u, int64_t chat, const char *client_id)
{
    char c[24], a[24], d[24];
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(d, sizeof(d), "%lld", (long long)u->device_id);
    const char *p[] = {c, a, d, client_id};
    PGresult *r = t_sql(pl_id_shard(chat),
                        "SELECT status, seq FROM {s}.send_message($1, $2, $3, $4, 'text', '\\x01', NULL, 0, 0)", 4, p);
    REQUIRE_EQ_INT(strtoll(PQgetvalue(r, 0, 0), NULL, 10), 0);
    int64_t seq = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return seq;
}

void t_read_up_to(t_user_t *u, int64_t chat, int64_t seq)
{
    char c[24], a[24], s[24];
    snprintf(c, sizeof(c), "%lld", (long long)chat);
    snprintf(a, sizeof(a), "%lld", (long long)u->account_id);
    snprintf(s, sizeof(s), "%lld", (long long)seq);
    const char *p[] = {c, a, s, s};
    PGresult *r = t_sql(pl_id_shard(chat), "SELECT status FROM {s}.update_cursor($1, $2, $3, $4)", 4, p);
    REQUIRE_EQ_INT(strtoll(PQgetvalue(r, 0, 0), NULL, 10), 0);
    PQclear(r);
}

/* ---- parleyd nodes of a test's own ---- */

#define T_NODES_MAX 8
static t_node_t *nodes[T_NODES_MAX];
static int node_count;

static void print_log_tail(const t_node_t *n, int lines)
{
    FILE *f = fopen(n->log, "r");
    if (!f)
        return;
    static char ring[64][512];
    int count = 0;
    while (fgets(ring[count % 64], sizeof(ring[0]), f))
        count++;
    fclose(f);
    int first = count > lines ? count - lines : 0;
    printf("node log %s (last %d lines):\n", n->log, count - first);
    for (int i = first; i < count; i++)
        printf("  %s", ring[i % 64]);
}

/* a test that failed (CHECK exits) leaves no parleyd behind, and shows why */
static void kill_nodes(void)
{
    for (int i = 0; i < node_count; i++) {
        t_node_t *n = nodes[i];
        if (n->pid <= 0)
            continue;
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
        print_log_tail(n, 40);
    }
    fflush(stdout);
}

pl_channel_t *t_connect_to(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    char h[64];
    REQUIRE(colon && (size_t)(colon - addr) < sizeof(h), "bad address %s", addr);
    memcpy(h, addr, (size_t)(colon - addr));
    h[colon - addr] = '\0';
    pl_channel_opts_t o = {0};
    o.host = h;
    o.port = (uint16_t)atoi(colon + 1);
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    REQUIRE(ch != NULL, "connect to %s: %s", addr, err);
    return ch;
}

bool t_node_log_has(const t_node_t *n, const char *needle)
{
    FILE *f = fopen(n->log, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* "parleyd: node N listening on HOST:PORT (...)" from its log */
static bool node_address(t_node_t *n)
{
    FILE *f = fopen(n->log, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        const char *at = strstr(line, " listening on ");
        char a[64];
        if (at && sscanf(at, " listening on %63s", a) == 1) {
            snprintf(n->addr, sizeof(n->addr), "%s", a);
            found = true;
        }
    }
    fclose(f);
    return found;
}

void t_node_start(t_node_t *n, int node_id, const char *env, const char *const *flags)
{
    memset(n, 0, sizeof(*n));
    const char *dir = getenv("TMPDIR");
    snprintf(n->log, sizeof(n->log), "%s/parley-chats-%d-node%d.log", dir && *dir ? dir : "/tmp", (int)getpid(),
             node_id);
    unlink(n->log);
    char *argv[32];
    char id[32];
    int argc = 0;
    snprintf(id, sizeof(id), "--node-id=%d", node_id);
    argv[argc++] = PARLEYD_BIN;
    argv[argc++] = "--port=0";
    argv[argc++] = id;
    argv[argc++] = "--workers=2";
    for (int i = 0; flags && flags[i]; i++) {
        REQUIRE(argc < 31, "too many flags");
        argv[argc++] = (char *)flags[i];
    }
    argv[argc] = NULL;
    /* the environment it gets, built before fork (the child only execs):
     * ours, without the crash hook, plus env */
    extern char **environ;
    size_t envc = 0;
    while (environ[envc])
        envc++;
    char **envp = calloc(envc + 2, sizeof(*envp));
    REQUIRE(envp != NULL, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < envc; i++)
        if (strncmp(environ[i], "PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT=", 36) != 0)
            envp[k++] = environ[i];
    if (env)
        envp[k++] = (char *)env;
    envp[k] = NULL;
    if (node_count == 0)
        atexit(kill_nodes);
    REQUIRE(node_count < T_NODES_MAX, "too many nodes");
    nodes[node_count++] = n;
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execve(argv[0], argv, envp);
        _exit(127);
    }
    free(envp);
    n->pid = pid;
    for (int i = 0; i < 600; i++) {
        if (node_address(n)) {
            printf("node %d (pid %d) on %s, log %s\n", node_id, (int)pid, n->addr, n->log);
            return;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            n->pid = 0;
            print_log_tail(n, 40);
            REQUIRE(false, "node %d exited before listening", node_id);
        }
        usleep(50 * 1000);
    }
    REQUIRE(false, "node %d did not listen within 30 s", node_id);
}

int t_node_wait(t_node_t *n, int ms)
{
    for (int waited = 0; n->pid > 0; waited += 20) {
        int status;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            return status;
        }
        if (waited >= ms)
            break;
        usleep(20 * 1000);
    }
    return -1;
}

int t_node_stop(t_node_t *n)
{
    if (n->pid <= 0)
        return 0;
    kill(n->pid, SIGTERM);
    int status = t_node_wait(n, 30000);
    if (status < 0) {
        printf("node on %s did not stop within 30 s of SIGTERM\n", n->addr);
        return 1;
    }
    if (t_node_log_has(n, "ERROR: AddressSanitizer") || t_node_log_has(n, "runtime error:")) {
        print_log_tail(n, 40);
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_log_tail(n, 40);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    unlink(n->log);
    return 0;
}
