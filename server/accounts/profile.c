/* profile.c — GetProfile, UpdateProfile, UpdatePrivacy.
 *
 * The caller's own profile carries the phone number and the privacy
 * settings; anyone else's only the display name and about. UpdateProfile
 * replaces both text fields (proto3 strings have no presence: send the
 * current value to keep it). UpdatePrivacy leaves UNSPECIFIED fields
 * unchanged and tells the streams (pl_notify_privacy_changed). */
#include <string.h>

#include "accounts/accounts_internal.h"
#include "messaging/notify.h"

static void copy_column(char *dst, size_t cap, const PGresult *res, int col)
{
    pl_acct_copy_text(dst, cap, PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
}

/* Row 0 of an own profile (accounts.c's OWN_COLUMNS) into p. */
static void own_profile(const PGresult *res, parley_v1_Profile *p)
{
    p->account_id = pl_pg_get_int64(res, 0, 0);
    copy_column(p->phone_number, sizeof(p->phone_number), res, 1);
    copy_column(p->display_name, sizeof(p->display_name), res, 2);
    copy_column(p->about, sizeof(p->about), res, 3);
    p->has_privacy = true;
    p->privacy.last_seen = (parley_v1_Visibility)pl_pg_get_int64(res, 0, 4);
    p->privacy.online = (parley_v1_Visibility)pl_pg_get_int64(res, 0, 5);
}

/* ---- GetProfile ---- */

typedef struct get_profile {
    pl_acct_req_t base;
    bool is_own;
} get_profile_t;

static void on_profile(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    get_profile_t *g = op->state;
    if (PQntuples(res->res) != 1) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such account");
        return;
    }
    parley_v1_Profile p = {0};
    if (g->is_own) {
        own_profile(res->res, &p);
    } else {
        p.account_id = pl_pg_get_int64(res->res, 0, 0);
        copy_column(p.display_name, sizeof(p.display_name), res->res, 1);
        copy_column(p.about, sizeof(p.about), res->res, 2);
    }
    parley_v1_Accounts_GetProfile_reply(op->call, &p);
}

static void get_profile(pl_op_t *op)
{
    get_profile_t *g = op->state;
    const parley_v1_GetProfileRequest *req = g->base.msg;
    int64_t id = req->account_id ? req->account_id : op->who.account_id;
    g->is_own = id == op->who.account_id;
    if (!pl_acct_id_is_routable(g->base.svc, id)) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such account");
        return;
    }
    uint8_t b[8];
    pl_pg_param_t p = pl_pg_int8(b, id);
    pl_acct_query(op, (g->is_own ? ST_GET_OWN_PROFILE : ST_GET_PUBLIC_PROFILE), pl_id_shard(id), &p, 1,
                  PL_PG_IDEMPOTENT, on_profile, "get profile");
}

void pl_acct_get_profile(pl_call_t *call, const parley_v1_GetProfileRequest *req, void *svc)
{
    if (req->account_id < 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "account_id must be positive (or 0 for your own)");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(get_profile_t), get_profile);
}

/* ---- UpdateProfile ---- */

static void on_profile_updated(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    if (PQntuples(res->res) != 1) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "account not found");
        return;
    }
    parley_v1_Profile p = {0};
    own_profile(res->res, &p);
    parley_v1_Accounts_UpdateProfile_reply(op->call, &p);
}

static void update_profile(pl_op_t *op)
{
    const parley_v1_UpdateProfileRequest *req = pl_acct_msg(op);
    uint8_t b[8];
    pl_pg_param_t p[] = {pl_pg_int8(b, op->who.account_id), pl_pg_text(req->display_name), pl_pg_text(req->about)};
    pl_acct_query(op, ST_UPDATE_PROFILE, pl_acct_own_shard(op), p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT,
                  on_profile_updated, "update profile");
}

void pl_acct_update_profile(pl_call_t *call, const parley_v1_UpdateProfileRequest *req, void *svc)
{
    const char *why =
        pl_acct_text_problem(req->display_name, strlen(req->display_name), PL_ACCT_DISPLAY_NAME_MAX, false);
    if (why) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "display_name %s (at most %d bytes of UTF-8)", why,
                      PL_ACCT_DISPLAY_NAME_MAX);
        return;
    }
    if ((why = pl_acct_text_problem(req->about, strlen(req->about), PL_ACCT_ABOUT_MAX, true))) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "about %s (at most %d bytes of UTF-8)", why, PL_ACCT_ABOUT_MAX);
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), update_profile);
}

/* ---- UpdatePrivacy ---- */

static void on_privacy_updated(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    if (PQntuples(res->res) != 1) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "account not found");
        return;
    }
    const parley_v1_UpdatePrivacyRequest *req = pl_acct_msg(op);
    if (req->last_seen || req->online)
        pl_notify_privacy_changed(op->app, pl_call_worker(op->call), op->who.account_id);
    parley_v1_PrivacySettings p = {0};
    p.last_seen = (parley_v1_Visibility)pl_pg_get_int64(res->res, 0, 0);
    p.online = (parley_v1_Visibility)pl_pg_get_int64(res->res, 0, 1);
    parley_v1_Accounts_UpdatePrivacy_reply(op->call, &p);
}

static void update_privacy(pl_op_t *op)
{
    const parley_v1_UpdatePrivacyRequest *req = pl_acct_msg(op);
    uint8_t b[3][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], op->who.account_id), pl_pg_int8(b[1], req->last_seen),
                         pl_pg_int8(b[2], req->online)};
    pl_acct_query(op, ST_UPDATE_PRIVACY, pl_acct_own_shard(op), p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT,
                  on_privacy_updated, "update privacy");
}
static bool visibility_is_valid(parley_v1_Visibility v)
{
    return (int)v >= (int)parley_v1_Visibility_VISIBILITY_UNSPECIFIED &&
           (int)v <= (int)parley_v1_Visibility_VISIBILITY_NOBODY;
}

void pl_acct_update_privacy(pl_call_t *call, const parley_v1_UpdatePrivacyRequest *req, void *svc)
{
    if (!visibility_is_valid(req->last_seen) || !visibility_is_valid(req->online)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       "last_seen and online must be VISIBILITY_EVERYONE, _CONTACTS, _NOBODY or _UNSPECIFIED");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), update_privacy);
}
