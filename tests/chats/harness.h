/* harness.h — what the Chats tests share: accounts with tokens, calls
 * through the C client, and direct looks at the shards (the message log,
 * chat lists) to check what the service stored.
 *
 * Runs under with_stack.sh + with_parleyd.py: PARLEY_ADDR, PARLEY_SMS_FILE
 * and the PARLEY_POSTGRES_* settings come from the environment. Checks,
 * registering and shard SQL come from the test kit (tests/lib). */
#ifndef PL_TESTS_CHATS_HARNESS_H
#define PL_TESTS_CHATS_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "app/auth.h"
#include "check.h"
#include "parley/channel.h"
#include "parley/v1/accounts.parley.h"
#include "parley/v1/chats.parley.h"
#include "parley/v1/messaging.pb.h"

/* A call's outcome: code must be want; the failure shows the server's message. */
#define REQUIRE_CODE(code, want)                                                                                       \
    do {                                                                                                               \
        pl_code_t c_ = (code);                                                                                         \
        REQUIRE(c_ == (want), "got %s (%s), want %s", pl_code_name(c_), t_message, pl_code_name(want));                \
    } while (0)

typedef struct t_user {
    int64_t account_id, device_id;
    char phone[24];
    char token[PL_TOKEN_LEN + 1];
    pl_metadata_t md;
    pl_channel_t *ch;
} t_user_t;

/* The status message of the last call (empty if none). */
extern _Thread_local char t_message[512];
extern int t_shards;

void t_init(void);
/* Closes every channel and connection and frees the users. */
void t_done(void);
/* A new account with one device, registered through Accounts RequestCode
 * and Verify, or (while that service is not there) written to its shard. */
t_user_t *t_user(void);
/* An id no account has, on shard (a well-formed stranger). */
int64_t t_new_id(int shard);
/* A channel to PARLEY_ADDR (a second one, for concurrent calls). */
pl_channel_t *t_connect(void);

/* A unary call as u (on ch, or u's own channel if NULL). */
pl_code_t t_call(t_user_t *u, pl_channel_t *ch, const pl_method_t *m, const void *req, void *resp);
/* Without credentials / with a made-up token. */
pl_code_t t_call_anonymous(const pl_method_t *m, const void *req, void *resp, bool bad_token);

/* Blocks through Accounts.Block, or (while that is not there) as it would. */
void t_block(t_user_t *blocker, int64_t blocked);

/* ---- Chats calls (heap results: free them) ---- */
parley_v1_Chat *t_chat_new(void);
pl_code_t t_open_direct(t_user_t *u, int64_t other, parley_v1_Chat *out);
pl_code_t t_create_group(t_user_t *u, const char *name, const int64_t *members, size_t n, parley_v1_Chat *out);
/* The same with a client_request_id ("" for none), on channel ch (NULL:
 * the user's own). */
pl_code_t t_create_group_keyed(t_user_t *u, pl_channel_t *ch, const char *name, const int64_t *members, size_t n,
                               const char *request_id, parley_v1_Chat *out);
pl_code_t t_add_members(t_user_t *u, int64_t chat, const int64_t *ids, size_t n, parley_v1_Chat *out);
pl_code_t t_remove_member(t_user_t *u, int64_t chat, int64_t account, parley_v1_Chat *out);
pl_code_t t_set_role(t_user_t *u, int64_t chat, int64_t account, parley_v1_Role role, parley_v1_Chat *out);
pl_code_t t_leave(t_user_t *u, int64_t chat, int64_t *seq);
pl_code_t t_get_chat(t_user_t *u, int64_t chat, parley_v1_Chat *out);
/* NULL / -1: leave unchanged */
pl_code_t t_update_group(t_user_t *u, int64_t chat, const char *name, const char *description, int only_admins,
                         parley_v1_Chat *out);
pl_code_t t_update_name(t_user_t *u, int64_t chat, const char *name, parley_v1_Chat *out);
pl_code_t t_list(t_user_t *u, int64_t after, int32_t limit, parley_v1_ListChatsResponse *out);

const parley_v1_Member *t_member(const parley_v1_Chat *c, int64_t account);
const parley_v1_ChatSummary *t_summary(const parley_v1_ListChatsResponse *r, int64_t chat);

/* ---- the shards ---- */

/* Runs sql ("{s}" for the shard's schema) with text parameters on shard's
 * server; exits on error. Caller PQclear()s. */
PGresult *t_sql(int shard, const char *sql, int nparams, const char *const *params);
int64_t t_sql_int(int shard, const char *sql, int nparams, const char *const *params);

/* One message of a chat's log as stored. */
typedef struct t_logged {
    int64_t seq, sender_account, sender_device;
    char client_msg_id[80];
    bool has_payload, has_event;
    parley_v1_ChatEvent event;
} t_logged_t;
/* The chat's log in seq order; *n entries (heap: free). */
t_logged_t *t_log(int64_t chat, size_t *n);

/* Stores a message from u in chat the way Send does (send_message), and
 * moves u's cursors (update_cursor). */
int64_t t_send(t_user_t *u, int64_t chat, const char *client_id);
/* send_message's status (0 stored, 2 not a member, 4 only admins send...) */
int t_send_status(t_user_t *u, int64_t chat, const char *client_id);
void t_read_up_to(t_user_t *u, int64_t chat, int64_t seq);

/* ---- parleyd nodes of a test's own (besides PARLEY_ADDR's) ---- */

typedef struct t_node {
    pid_t pid; /* 0: not running */
    char addr[64];
    char log[256]; /* its stdout and stderr */
} t_node_t;

/* Starts parleyd (the build's) as node_id on a port of its choosing, with
 * the stack's settings from the environment plus env ("NAME=VALUE", or
 * NULL) and flags (NULL-terminated, or NULL); waits until it listens.
 * Nodes still running when the test exits are killed, their logs shown. */
void t_node_start(t_node_t *n, int node_id, const char *env, const char *const *flags);
/* Waits up to ms for the node to exit by itself: its wait status, or -1. */
int t_node_wait(t_node_t *n, int ms);
/* SIGTERM, then waits: 0 for a clean exit (no sanitizer report). */
int t_node_stop(t_node_t *n);
/* Whether its log has a line containing needle. */
bool t_node_log_has(const t_node_t *n, const char *needle);
/* A channel to addr ("host:port"). */
pl_channel_t *t_connect_to(const char *addr);

/* ---- cases in files of their own, for test_chats.c's table ---- */

int case_repair_crash(void); /* test_repair.c */
int case_repair_quiet(void);

#endif
