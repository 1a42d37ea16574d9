/* accounts_internal.h — what the files of server/accounts share: the service
 * struct, the operation state every handler starts from, the limits,
 * and the small helpers (validation, shard queries, rate limits).
 *
 * Layout: accounts.c registers the service and holds its SQL (one table,
 * grouped by the file that uses it); request_code.c and verify.c
 * are registration; profile.c, devices.c, contacts.c, lookup.c and
 * blocking.c are the authenticated methods; request.c, phone.c, text.c,
 * otp.c and sms.c are their building blocks. */
#ifndef PL_ACCOUNTS_INTERNAL_H
#define PL_ACCOUNTS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts/accounts.h"
#include "accounts/sms.h"
#include "app/app.h"
#include "app/auth.h"
#include "app/op.h"
#include "app/rate.h"
#include "cache/ratelimit.h"
#include "parley/v1/accounts.parley.h"

/* ---- limits (the contract's; config-driven ones are in pl_config_t) ---- */

#define PL_ACCT_CODE_TTL_MS 600000   /* a code is good for 10 minutes */
#define PL_ACCT_CODE_MAX_ATTEMPTS 5  /* Verify tries per code, the right one included */
#define PL_ACCT_DISPLAY_NAME_MAX 128 /* bytes of UTF-8 */
#define PL_ACCT_ABOUT_MAX 512
#define PL_ACCT_DEVICE_NAME_MAX 64
#define PL_ACCT_CONTACTS_PAGE_MAX 200
#define PL_ACCT_BLOCKED_PAGE_MAX 1000

/* Elements of a generated struct's repeated field (its .options max_count). */
#define PL_ACCT_MAX_COUNT(type, field) (sizeof(((type *)0)->field) / sizeof(((type *)0)->field[0]))

#define PL_ACCT_LIST_DEVICES_MAX PL_ACCT_MAX_COUNT(parley_v1_ListDevicesResponse, devices)
#define PL_ACCT_DEVICE_IDS_MAX PL_ACCT_MAX_COUNT(parley_v1_AccountDevices, device_ids)

/* ---- the service ---- */

struct pl_accounts {
    pl_app_t *app;
    pl_sms_t *sms;
    int stmt; /* base index of our statements (accounts.c) */
    /* when the last "rate limiter unavailable" line was logged (pl_now_msec):
     * one line a second at most, however many calls see Redis down */
    _Atomic int64_t limiter_warned_ms;
};

/* Statements, relative to pl_accounts_t.stmt; the SQL is in accounts.c,
 * grouped by the file that uses it. */
enum pl_acct_stmt {
    ST_STORE_CODE,
    ST_TAKE_ATTEMPT,
    ST_COMPLETE_VERIFICATION,
    ST_GET_OWN_PROFILE,
    ST_GET_PUBLIC_PROFILE,
    ST_UPDATE_PROFILE,
    ST_UPDATE_PRIVACY,
    ST_LIST_DEVICES,
    ST_RENAME_DEVICE,
    ST_REVOKE_DEVICE,
    ST_CURRENT_DEVICES,
    ST_LOOKUP_PHONES,
    ST_EXISTING_ACCOUNTS,
    ST_ADD_CONTACTS,
    ST_REMOVE_CONTACT,
    ST_LIST_CONTACTS,
    ST_DISPLAY_NAMES,
    ST_ACCOUNT_EXISTS,
    ST_BLOCK,
    ST_UNBLOCK,
    ST_SET_DIRECT_BLOCK,
    ST_LIST_BLOCKED,
    ST_COUNT
};

/* ---- handlers (one file per group) ---- */

void pl_acct_request_code(pl_call_t *call, const parley_v1_RequestCodeRequest *req, void *svc);
void pl_acct_verify(pl_call_t *call, const parley_v1_VerifyRequest *req, void *svc);
void pl_acct_get_profile(pl_call_t *call, const parley_v1_GetProfileRequest *req, void *svc);
void pl_acct_update_profile(pl_call_t *call, const parley_v1_UpdateProfileRequest *req, void *svc);
void pl_acct_update_privacy(pl_call_t *call, const parley_v1_UpdatePrivacyRequest *req, void *svc);
void pl_acct_list_devices(pl_call_t *call, const parley_v1_ListDevicesRequest *req, void *svc);
void pl_acct_rename_device(pl_call_t *call, const parley_v1_RenameDeviceRequest *req, void *svc);
void pl_acct_remove_device(pl_call_t *call, const parley_v1_RemoveDeviceRequest *req, void *svc);
void pl_acct_get_devices(pl_call_t *call, const parley_v1_GetDevicesRequest *req, void *svc);
void pl_acct_lookup_phones(pl_call_t *call, const parley_v1_LookupPhonesRequest *req, void *svc);
void pl_acct_add_contacts(pl_call_t *call, const parley_v1_AddContactsRequest *req, void *svc);
void pl_acct_remove_contact(pl_call_t *call, const parley_v1_RemoveContactRequest *req, void *svc);
void pl_acct_list_contacts(pl_call_t *call, const parley_v1_ListContactsRequest *req, void *svc);
void pl_acct_block(pl_call_t *call, const parley_v1_BlockRequest *req, void *svc);
void pl_acct_unblock(pl_call_t *call, const parley_v1_UnblockRequest *req, void *svc);
void pl_acct_list_blocked(pl_call_t *call, const parley_v1_ListBlockedRequest *req, void *svc);

/* ---- a request as an operation (request.c) ----
 *
 * Every handler runs as an operation (app/op.h) whose state starts with
 * pl_acct_req_t: it belongs to the call, failures go through pl_op, and
 * the next step runs once every query, scatter and rate take is done. */
typedef struct pl_acct_req {
    pl_accounts_t *svc;
    const void *msg; /* the decoded request, owned by the call */
} pl_acct_req_t;

/* A new operation with a zeroed state of size bytes (>= sizeof(pl_acct_req_t)).
 * NULL if out of memory, and then the call has been finished. */
pl_op_t *pl_acct_op(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size);
/* pl_acct_op, then authenticates the call and runs first (pl_op_start). */
void pl_acct_authenticate(pl_call_t *call, pl_accounts_t *svc, const void *msg, size_t size, pl_op_step_fn first);

static inline pl_accounts_t *pl_acct_svc(const pl_op_t *op)
{
    return ((const pl_acct_req_t *)op->state)->svc;
}
static inline const void *pl_acct_msg(const pl_op_t *op)
{
    return ((const pl_acct_req_t *)op->state)->msg;
}

/* One of the service's statements, with no row lock. */
void pl_acct_query(pl_op_t *op, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned pg_flags,
                   pl_op_rows_fn fn, const char *what);

/* One idempotent read of statement stmt per shard of the n ids (routable) or phones
 * (valid E.164), the shard's keys as $1 (pl_op_scatter). */
void pl_acct_query_shards(pl_op_t *op, int stmt, const int64_t *ids, const char *const *phones, size_t n,
                          pl_op_rows_fn fn, const char *what);

/* How long a rate limit waits for Redis to (re)connect before RequestCode
 * fails closed and lookups fail open (pl_op_rate_take). */
#define PL_ACCT_RATE_WAIT_MS 2000
/* Logs that the rate limiter is unavailable (why), at most once a second. */
void pl_acct_limiter_down(pl_op_t *op, const char *why);

/* The caller's lookup bucket ([rate] lookups_per_minute), shared by
 * GetDevices, LookupPhones and AddContacts (each reveals which accounts
 * exist): takes cost tokens, at most the bucket's capacity, so a full batch
 * always fits a full bucket. */
void pl_acct_take_lookups(pl_op_t *op, size_t cost, pl_op_rate_fn fn);
/* For pl_acct_take_lookups' fn: whether the lookup may go on. Redis
 * unavailable: yes (lookups fail open: cheap reads, and messaging must not
 * stop with Redis). Over the limit: no, and the operation has failed with
 * RESOURCE_EXHAUSTED "... retry after N ms". */
bool pl_acct_lookup_allowed(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate);

/* The caller's account shard. */
static inline int pl_acct_own_shard(const pl_op_t *op)
{
    return pl_id_shard(op->who.account_id);
}

/* For GetDevices and AddContacts: finishes the call with INVALID_ARGUMENT
 * and returns true unless the n ids fit [limits] lookup_batch_max and are
 * all positive. */
bool pl_acct_refuse_ids(pl_call_t *call, const pl_accounts_t *s, const int64_t *ids, size_t n);

/* True if id could name a row of this cluster (a well-formed id whose
 * shard exists); anything else cannot exist. */
bool pl_acct_id_is_routable(const pl_accounts_t *s, int64_t id);

/* A page size: 0 means max, larger is clamped to max; negative: -1. */
int pl_acct_page_limit(int32_t requested, int max);

/* ---- phone numbers (phone.c) ---- */

#define PL_PHONE_MIN_DIGITS 8
#define PL_PHONE_MAX_DIGITS 15

/* E.164: "+", then 8 to 15 digits, the first not 0. Nothing else. */
bool pl_acct_phone_is_valid(const char *s);
/* The logical shard the number's account lives on. */
int pl_acct_phone_shard(const pl_accounts_t *s, const char *phone);

/* The per-address RequestCode bucket's name for a client address
 * (pl_call_peer): "otp:addr:<IPv4>", or "otp:addr:<IPv6 /64>/64"
 * (request_code.c). */
void pl_acct_address_bucket(const char *peer, char *name, size_t len);

/* ---- user-visible text (text.c) ---- */

/* NULL if s (len bytes) is valid UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF), at most max bytes, without control
 * characters (C0, DEL, C1; newline allowed when allow_newline); otherwise
 * a short reason ("is not valid UTF-8"). */
const char *pl_acct_text_problem(const char *s, size_t len, size_t max, bool allow_newline);
/* Copies a stored text column (len bytes) into dst (cap bytes, cap >= 1),
 * NUL-terminated, cut at a character boundary if it does not fit. */
void pl_acct_copy_text(char *dst, size_t cap, const char *src, size_t len);

/* ---- verification codes (otp.c) ---- */

#define PL_OTP_DIGITS 6
#define PL_OTP_SALT_BYTES 16
#define PL_OTP_MAC_BYTES 32
#define PL_OTP_STORED_BYTES (PL_OTP_SALT_BYTES + PL_OTP_MAC_BYTES)

/* A uniformly random 6-digit code ("004217") into code (7 bytes). */
void pl_otp_new(char code[PL_OTP_DIGITS + 1]);
/* True for exactly six ASCII digits. */
bool pl_otp_is_well_formed(const char *code);
/* What the database keeps for (phone, code): a fresh random salt followed
 * by the keyed BLAKE2b MAC of the phone and code under that salt. */
void pl_otp_seal(const char *phone, const char *code, uint8_t out[PL_OTP_STORED_BYTES]);
/* Whether code is the one sealed in stored (constant time in the code). */
bool pl_otp_matches(const char *phone, const char *code, const uint8_t *stored, size_t stored_len);

#endif
