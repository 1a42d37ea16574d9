/* chats_internal.h — what the files of the Chats service share: the service,
 * its statements, and the per-call operation that carries one request
 * through its asynchronous steps (auth, rate limit, queries on several
 * shards, the change on the chat's shard, the chat lists, the reply).
 *
 * Ownership: an operation belongs to its call (pl_call_set_user) and is
 * freed with it. Every query holds a reference on the call until its
 * callback has run, so the operation (and the request, which the call also
 * owns) is alive in every callback. */
#ifndef PL_CHATS_CHATS_INTERNAL_H
#define PL_CHATS_CHATS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/app.h"
#include "app/auth.h"
#include "app/op.h"
#include "chats/chats.h"
#include "parley/v1/chats.pb.h"
#include "parley/v1/messaging.pb.h"

/* ListChats page size: default and maximum (chats.proto). */
#define CHATS_LIST_MAX 250
/* unread_count stops counting here (a badge shows "9999+"); bounds the work
 * of one ListChats on a chat with a huge backlog. */
#define CHATS_UNREAD_CAP 9999
/* A change built from a snapshot of the membership is retried this often
 * when the membership moved meanwhile, then refused with ABORTED. */
#define CHATS_STALE_ATTEMPTS 8
/* Group name and description limits in bytes of UTF-8 (chats.options
 * leaves room for the terminating NUL). */
#define CHATS_NAME_MAX 128
#define CHATS_DESCRIPTION_MAX 1024
#define CHATS_REQUEST_ID_MAX 64

/* Chat kinds and roles as stored (0002_chats.sql). */
enum { CHATS_KIND_DIRECT = 1, CHATS_KIND_GROUP = 2 };
enum { CHATS_ROLE_MEMBER = 1, CHATS_ROLE_ADMIN = 2 };

/* Statements, relative to pl_chats_t.stmt. */
enum pl_chats_stmt {
    ST_ACCOUNTS_CHECK,
    ST_DIRECT_ENSURE,
    ST_CHAT_LOAD,
    ST_ACCOUNT_CHATS_PUT,
    ST_CREATE_GROUP,
    ST_UPDATE_GROUP,
    ST_ADD_MEMBERS,
    ST_REMOVE_MEMBER,
    ST_SET_ROLE,
    ST_LEAVE_GROUP,
    ST_LIST_PAGE,
    ST_LIST_DETAILS,
    ST_REPAIR_SCAN,
    ST_COUNT
};

/* Status codes of the group functions (migrations/0005_group_membership.sql). */
enum {
    CHG_OK = 0,
    CHG_NO_CHAT = 1,
    CHG_NOT_GROUP = 2,
    CHG_NOT_ADMIN = 3,
    CHG_NOT_MEMBER = 4,
    CHG_STALE = 5,
    CHG_FULL = 6,
    CHG_LAST_ADMIN = 7,
    CHG_UNCHANGED = 8,
};

struct pl_chats {
    pl_app_t *app;
    int stmt;                          /* base index of our statements */
    int module;                        /* per-worker state: the repair (repair.c) */
    _Atomic int64_t redis_warned_usec; /* last "rate limit skipped" warning */
    /* Test only ($PARLEY_TEST_CRASH_AFTER_CHAT_COMMIT, read once at start):
     * the method whose committed change kills this process before the
     * chat lists are written. Empty: never. */
    char crash_after[32];
};

/* A chat as chat_load read it: the chat row and its current members
 * (ordered by joined_seq, then account id). */
typedef struct pl_chats_member {
    int64_t account_id;
    int role;
    int64_t joined_seq, delivered_seq, read_seq;
} pl_chats_member_t;

typedef struct pl_chats_view {
    bool is_found; /* the chat exists and has at least one current member */
    int64_t chat_id;
    int kind;
    char name[CHATS_NAME_MAX + 1];
    char description[CHATS_DESCRIPTION_MAX + 1];
    bool only_admins_send;
    int64_t last_seq, created_ms, members_version;
    pl_chats_member_t *members; /* owned */
    size_t member_count;
} pl_chats_view_t;

/* One account's membership of one chat, for its chat list (account_chats
 * on the account's shard). removed 0: a current member. */
typedef struct pl_chats_listing {
    int64_t account_id, chat_id, peer, joined, removed, membership_seq;
    int kind;
} pl_chats_listing_t;
/* ST_ACCOUNT_CHATS_PUT's parameters: one array per column of the rows. */
#define CHATS_LISTING_COLUMNS 7

/* One entry of a ListChats page. */
typedef struct pl_chats_list_entry {
    int64_t chat_id, peer;
    int kind;
    bool is_current; /* the chat's shard confirms a current membership */
    bool is_stale;   /* the chat's shard says removed: repair the list */
    int64_t joined, removed;
    parley_v1_ChatSummary summary;
} pl_chats_list_entry_t;

typedef struct pl_chats_op pl_chats_op_t;
typedef void (*pl_chats_step_fn)(pl_chats_op_t *op);
typedef void (*pl_chats_result_fn)(pl_chats_op_t *op, const PGresult *res, void *arg);

/* Which accounts checked by pl_chats_check_accounts exist / blocked "who". */
typedef struct pl_chats_check {
    int64_t *ids; /* sorted */
    bool *exists, *blocks;
    size_t n;
} pl_chats_check_t;

struct pl_chats_op {
    pl_op_t *base; /* the operation: call, principal, steps, failures (app/op.h) */
    pl_chats_t *svc;
    const void *req;       /* the request (owned by the call) */
    pl_chats_step_fn step; /* the next step, run by pl_op */

    /* the chat and what was read of it */
    int64_t chat_id;
    int chat_shard;
    pl_chats_view_t view;
    pl_chats_check_t check;
    pl_chats_step_fn check_next; /* after pl_chats_check_accounts */
    int attempts;

    /* the change: arguments, events (encoded), results */
    int64_t target; /* the other account (direct chat, remove, set role) */
    int role;
    int64_t promote; /* leave: who becomes admin (0: nobody) */
    uint8_t *event, *event2;
    size_t event_len, event2_len;
    int status;
    int64_t seq, last_seq;
    pl_chats_step_fn change_retry, change_done; /* pl_chats_change */
    pl_chats_listing_t *listings;               /* affected memberships, owned */
    size_t listing_count;
    int64_t *ids; /* request ids, sorted copy, owned */
    size_t id_count;
    int64_t *cands; /* AddMembers: those not yet members, owned */
    size_t cand_count;
    bool is_created;                              /* direct chat: created by this call */
    bool other_exists, other_blocks, self_blocks; /* direct chat checks */
    bool is_leave_reply;                          /* reply LeaveGroupResponse, not the Chat */

    /* ListChats */
    pl_chats_list_entry_t *entries; /* owned */
    size_t entry_count;
    size_t list_limit;
    bool has_more;
};

/* ---- op.c: lifecycle, steps and queries ---- */

/* A new operation owned by call (out of memory: the call is finished with
 * RESOURCE_EXHAUSTED): authenticates the call, then runs first. */
void pl_chats_start(pl_chats_t *svc, pl_call_t *call, const void *req, const char *name, pl_chats_step_fn first);
/* Runs next once every query in flight has completed (at once if none),
 * unless the operation failed, or the call ended before the change was
 * committed. */
void pl_chats_then(pl_chats_op_t *op, pl_chats_step_fn next);

/* Queues a query for op; fn runs with the rows on success. On failure the
 * call ends with the status a client should see (unless flags has
 * PL_OP_SOFT: then it is logged). */
void pl_chats_query(pl_chats_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                    unsigned flags, pl_chats_result_fn fn, void *arg, const char *what);
/* pl_chats_query for sc's keys, one query per shard (store/scatter.h; sc->stmt
 * relative to ours; the call's deadline): fn runs with each shard's rows. */
void pl_chats_scatter(pl_chats_op_t *op, const pl_scatter_t *sc, pl_chats_result_fn fn, const char *what);
/* Ends the call with an error; no more steps run (but see is_committed). */
#define pl_chats_fail(op, ...) pl_op_fail((op)->base, __VA_ARGS__)

/* ---- validate.c ---- */

bool pl_chats_is_utf8(const char *s, size_t len);
/* NULL if s is an acceptable group name, else why not. */
const char *pl_chats_check_name(const char *s);
const char *pl_chats_check_description(const char *s);
/* CreateGroup's optional retry key: empty, or 1 to 64 printable ASCII. */
const char *pl_chats_check_request_id(const char *s);
/* An id some account could have in this cluster. */
bool pl_chats_is_account_id(const pl_app_t *app, int64_t id);
bool pl_chats_is_chat_id(const pl_app_t *app, int64_t id);

/* ---- throttle.c ---- */

/* Takes a token from the caller's group-operation bucket, then runs next;
 * refuses with RESOURCE_EXHAUSTED ("retry after N ms"). Redis down: runs
 * next anyway (fail open) and logs a warning. */
void pl_chats_throttle(pl_chats_op_t *op, pl_chats_step_fn next);

/* ---- accounts_check.c ---- */

/* Checks that every one of ids exists and has not blocked `who`, with one
 * query per account shard, then runs next; NOT_FOUND naming a missing
 * account, PERMISSION_DENIED naming nobody for a block. */
void pl_chats_check_accounts(pl_chats_op_t *op, const int64_t *ids, size_t n, int64_t who, pl_chats_step_fn next);

/* ---- chat_view.c ---- */

/* Reads the chat and its current members into op->view. Soft: a failure
 * leaves is_found false and logs (for after a commit). */
void pl_chats_load(pl_chats_op_t *op, unsigned flags);
void pl_chats_view_dispose(pl_chats_view_t *v);
const pl_chats_member_t *pl_chats_view_member(const pl_chats_view_t *v, int64_t account_id);
/* Replies with op->view as a parley.v1.Chat. */
void pl_chats_reply_chat(pl_chats_op_t *op);

/* ---- account_chats.c ---- */

/* Writes memberships to the accounts' chat lists, one statement per
 * account shard, each applied only if newer (membership_seq). Failures
 * are logged: the chat's shard is the source of truth (ListChats repairs
 * what it finds stale, repair.c what is missing or older). */
void pl_chats_put_listings(pl_chats_op_t *op, const pl_chats_listing_t *rows, size_t n);
/* qsort order of listings: by account shard, account, chat (the order the
 * writes lock rows in). */
int pl_chats_listing_order(const void *a, const void *b);
/* ST_ACCOUNT_CHATS_PUT's parameters for rows[0..n) (one account shard):
 * CHATS_LISTING_COLUMNS array texts. 0, or -1 out of memory (arr all
 * NULL). Free with pl_chats_listing_arrays_free. */
int pl_chats_listing_arrays(const pl_chats_listing_t *rows, size_t n, char *arr[CHATS_LISTING_COLUMNS]);
void pl_chats_listing_arrays_free(char *arr[CHATS_LISTING_COLUMNS]);

/* ---- repair.c: chat lists out of step ---- */

/* Registers the repair on the server (before it starts): worker 0 walks
 * the chat shards' members every [limits] chat_repair_interval_ms and
 * writes the memberships the accounts' chat lists miss. 0, or -1. */
int pl_chats_repair_register(pl_chats_t *s);

/* ---- chat_events.c ---- */

/* Encodes ev into a new buffer (*out, *len); 0, or -1 out of memory. */
int pl_chats_event_encode(const parley_v1_ChatEvent *ev, uint8_t **out, size_t *len);
/* A new zeroed event of type t by actor; NULL out of memory. */
parley_v1_ChatEvent *pl_chats_event_new(parley_v1_ChatEvent_Type t, int64_t actor);

/* ---- change.c: applying a group change ---- */

/* Runs a group function (ST_*_GROUP..): reads its rows into op (status,
 * seq, listings) and continues with on_done, or ends the call with the
 * error its status means. A stale snapshot re-runs retry (the step that
 * reads the chat again) up to CHATS_STALE_ATTEMPTS times. */
void pl_chats_change(pl_chats_op_t *op, int stmt, const pl_pg_param_t *params, int nparams, pl_chats_step_fn retry,
                     pl_chats_step_fn on_done);
/* After a committed change: the chat lists of the affected accounts, the
 * chat read back, the streams notified (members plus removed accounts),
 * then the reply: the Chat, or (leave) op->seq. */
void pl_chats_finish_change(pl_chats_op_t *op);
/* Checks op->view (a group just read) for the caller: NOT_FOUND unless a
 * current member, FAILED_PRECONDITION for a direct chat, PERMISSION_DENIED
 * unless an admin when need_admin. false after ending the call. */
bool pl_chats_check_view(pl_chats_op_t *op, bool need_admin);
/* Validates a chat id from a request into op->chat_id/chat_shard; false
 * after ending the call (INVALID_ARGUMENT for 0, NOT_FOUND otherwise). */
bool pl_chats_take_chat_id(pl_chats_op_t *op, int64_t chat_id);
/* Notifies the members of op->view plus the affected accounts. */
void pl_chats_notify(pl_chats_op_t *op, int64_t seq);

/* ---- handlers ---- */

void pl_chats_open_direct(pl_call_t *call, const parley_v1_OpenDirectChatRequest *req, void *svc);
void pl_chats_create_group(pl_call_t *call, const parley_v1_CreateGroupRequest *req, void *svc);
void pl_chats_update_group(pl_call_t *call, const parley_v1_UpdateGroupRequest *req, void *svc);
void pl_chats_add_members(pl_call_t *call, const parley_v1_AddMembersRequest *req, void *svc);
void pl_chats_remove_member(pl_call_t *call, const parley_v1_RemoveMemberRequest *req, void *svc);
void pl_chats_set_role(pl_call_t *call, const parley_v1_SetRoleRequest *req, void *svc);
void pl_chats_leave_group(pl_call_t *call, const parley_v1_LeaveGroupRequest *req, void *svc);
void pl_chats_get_chat(pl_call_t *call, const parley_v1_GetChatRequest *req, void *svc);
void pl_chats_list(pl_call_t *call, const parley_v1_ListChatsRequest *req, void *svc);

/* Leaving, shared by LeaveGroup and RemoveMember of oneself: op->chat_id
 * set, authenticated and throttled; replies with LeaveGroupResponse if
 * op->is_leave_reply, else with the Chat. */
void pl_chats_leave_start(pl_chats_op_t *op);

#endif
