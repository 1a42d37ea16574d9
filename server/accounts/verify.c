/* verify.c — Verify: a code for a device.
 *
 *   1. phone E.164, code six digits, device name bounded text
 *      (INVALID_ARGUMENT; a malformed code costs no attempt)
 *   2. take_code_attempt() counts the attempt and hands back the sealed
 *      code: none pending, expired, or out of attempts → FAILED_PRECONDITION
 *   3. the code is compared here, in constant time (it never goes to
 *      PostgreSQL): wrong → INVALID_ARGUMENT with the attempts left
 *   4. complete_verification() — one statement, one transaction: consumes
 *      the code (only the very row that was checked, so of two Verify calls
 *      racing with one code exactly one wins), creates the account on first
 *      verification, enforces [limits] devices_per_account, and stores the
 *      new device with its token's hash. At the device limit the code is
 *      kept, so the user can remove a device elsewhere and try it again.
 *
 * Account and device ids are made on the number's shard, where the account
 * lives; the token (app/auth.h) is returned once and only its hash kept. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "accounts/accounts_internal.h"
#include "messaging/notify.h"

typedef struct verify {
    pl_acct_req_t base;
    uint8_t sealed[PL_OTP_STORED_BYTES]; /* the row that was checked */
    int64_t device_id;
    char token[PL_TOKEN_LEN + 1];
} verify_t;

static void wipe(pl_op_t *op)
{
    verify_t *v = op->state;
    sodium_memzero(v->token, sizeof(v->token));
}

/* Fails op unless the status in column 0 of the one row is 0 (the reasons
 * for 1, 2, ...); true if it did. */
static bool failed_status(pl_op_t *op, const PGresult *res, const char *const *reasons, int64_t nreasons)
{
    int64_t status = PQntuples(res) == 1 ? pl_pg_get_int64(res, 0, 0) : -1;
    if (status == 0)
        return false;
    if (status > 0 && status <= nreasons)
        pl_op_fail(op, PL_CODE_FAILED_PRECONDITION, "%s", reasons[status - 1]);
    else
        pl_op_fail(op, PL_CODE_INTERNAL, "internal error");
    return true;
}

static void on_completed(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    static const char *const reasons[] = {"code already used or replaced; request a new code",
                                          "device limit reached: remove a device first"};
    verify_t *v = op->state;
    if (failed_status(op, res->res, reasons, 2))
        return;
    parley_v1_VerifyResponse resp = {0};
    resp.account_id = pl_pg_get_int64(res->res, 0, 1);
    resp.device_id = v->device_id;
    resp.new_account = pl_pg_get_bool(res->res, 0, 2);
    memcpy(resp.token, v->token, sizeof(v->token));
    wipe(op);
    pl_notify_devices_changed(op->app, pl_call_worker(op->call), resp.account_id);
    parley_v1_Accounts_Verify_reply(op->call, &resp);
    sodium_memzero(resp.token, sizeof(resp.token));
}

static void complete(pl_op_t *op)
{
    verify_t *v = op->state;
    pl_accounts_t *s = v->base.svc;
    const parley_v1_VerifyRequest *req = pl_acct_msg(op);
    int shard = pl_acct_phone_shard(s, req->phone_number);
    int64_t account_id = pl_id_new(&s->app->ids, shard);
    v->device_id = pl_id_new(&s->app->ids, shard);
    uint8_t token_hash[PL_TOKEN_HASH_BYTES];
    pl_auth_new_token(v->device_id, v->token, token_hash);
    uint8_t b_account[8], b_device[8], b_max[8];
    pl_pg_param_t p[] = {
        pl_pg_text(req->phone_number),
        pl_pg_bytes(v->sealed, sizeof(v->sealed)),
        pl_pg_int8(b_account, account_id),
        pl_pg_int8(b_device, v->device_id),
        pl_pg_text(req->device_name),
        pl_pg_bytes(token_hash, sizeof(token_hash)),
        pl_pg_int8(b_max, s->app->cfg->devices_per_account),
    };
    pl_acct_query(op, ST_COMPLETE_VERIFICATION, shard, p, 7, PL_PG_WRITE, on_completed, "complete verification");
    sodium_memzero(token_hash, sizeof(token_hash));
}

static void on_attempt(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    static const char *const reasons[] = {"no code pending for this number; request a code first",
                                          "code expired; request a new code",
                                          "too many wrong attempts; request a new code"};
    verify_t *v = op->state;
    if (failed_status(op, res->res, reasons, 3))
        return;
    size_t len;
    const uint8_t *stored = pl_pg_get_bytes(res->res, 0, 1, &len);
    const parley_v1_VerifyRequest *req = pl_acct_msg(op);
    if (!pl_otp_matches(req->phone_number, req->code, stored, len)) {
        int64_t left = pl_pg_get_int64(res->res, 0, 2);
        pl_op_fail(op, PL_CODE_INVALID_ARGUMENT, "wrong code (%d attempt%s left)", (int)left, left == 1 ? "" : "s");
        return;
    }
    memcpy(v->sealed, stored, sizeof(v->sealed));
    pl_op_then(op, complete);
}

static void take_attempt(pl_op_t *op)
{
    const parley_v1_VerifyRequest *req = pl_acct_msg(op);
    uint8_t max[8];
    pl_pg_param_t p[] = {pl_pg_text(req->phone_number), pl_pg_int8(max, PL_ACCT_CODE_MAX_ATTEMPTS)};
    pl_acct_query(op, ST_TAKE_ATTEMPT, pl_acct_phone_shard(pl_acct_svc(op), req->phone_number), p, 2, PL_PG_WRITE,
                  on_attempt, "code attempt");
}

void pl_acct_verify(pl_call_t *call, const parley_v1_VerifyRequest *req, void *svc)
{
    if (!pl_acct_phone_is_valid(req->phone_number)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       "phone_number must be E.164: \"+\" and 8 to 15 digits, the first not 0 (\"+15551234567\")");
        return;
    }
    if (!pl_otp_is_well_formed(req->code)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "code must be the 6 digits sent by SMS");
        return;
    }
    const char *why = pl_acct_text_problem(req->device_name, strlen(req->device_name), PL_ACCT_DEVICE_NAME_MAX, false);
    if (why) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "device_name %s (at most %d bytes of UTF-8)", why,
                      PL_ACCT_DEVICE_NAME_MAX);
        return;
    }
    pl_op_t *op = pl_acct_op(call, svc, req, sizeof(verify_t));
    if (!op)
        return;
    pl_op_on_end(op, wipe);
    pl_op_start_public(op, take_attempt);
}
