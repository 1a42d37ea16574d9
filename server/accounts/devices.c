/* devices.c — ListDevices, RenameDevice, RemoveDevice: the caller's own
 * devices.
 *
 * Ownership: a device id that exists but belongs to another account is
 * PERMISSION_DENIED (the contract's rule for acting on what the caller does
 * not own; device ids are not secret, GetDevices hands them out); an id
 * that names no device, or one of the caller's removed devices, is
 * NOT_FOUND. Both methods follow that rule, from one SQL function each
 * (migrations/0004), so the check and the change are one statement.
 * Removing is idempotent (removing an already removed own device succeeds)
 * and may remove the calling device itself; the device's token stops
 * working at once and its streams are ended (pl_notify_device_removed). */
#include <string.h>

#include "accounts/accounts_internal.h"
#include "messaging/notify.h"

enum { LIST, RENAME, REVOKE };

static const pl_pg_stmt_t statements[] = {
    [LIST] =
        {"acct_list_devices",
         "SELECT id, name, (extract(epoch FROM created_at) * 1000)::bigint, "
         "(extract(epoch FROM last_active_at) * 1000)::bigint FROM {s}.devices "
         "WHERE account_id = $1::bigint AND revoked_at IS NULL ORDER BY id LIMIT 16", /* PL_ACCT_LIST_DEVICES_MAX */
         true},
    [RENAME] = {"acct_rename_device",
                "SELECT status, device_name, created_ms, last_active_ms "
                "FROM {s}.rename_device($1::bigint, $2::bigint, $3::text)",
                true},
    [REVOKE] = {"acct_revoke_device", "SELECT status FROM {s}.revoke_device($1::bigint, $2::bigint)", true},
};

int pl_acct_devices_init(pl_accounts_t *s)
{
    s->stmt_devices = pl_app_add_statements(s->app, statements, sizeof(statements) / sizeof(statements[0]));
    return s->stmt_devices < 0 ? -1 : 0;
}

/* Ends the call for a status of rename_device/revoke_device other than 0;
 * true if it did. */
static bool fail_ownership(pl_call_t *call, int64_t status)
{
    switch (status) {
    case 0: return false;
    case 1: pl_call_finish(call, PL_CODE_NOT_FOUND, "no such device"); return true;
    case 2: pl_call_finish(call, PL_CODE_PERMISSION_DENIED, "the device belongs to another account"); return true;
    default: pl_call_finish(call, PL_CODE_INTERNAL, "internal error"); return true;
    }
}

/* ---- ListDevices ---- */

static void on_list(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    pl_acct_req_t *r = user;
    if (!pl_acct_query_ok(call, res, "accounts: list devices"))
        return;
    parley_v1_ListDevicesResponse resp = {0};
    int n = PQntuples(res->res);
    for (int i = 0; i < n && (size_t)i < PL_ACCT_LIST_DEVICES_MAX; i++) {
        parley_v1_Device *d = &resp.devices[resp.devices_count++];
        d->device_id = pl_pg_get_int64(res->res, i, 0);
        pl_acct_copy_text(d->name, sizeof(d->name), PQgetvalue(res->res, i, 1), (size_t)PQgetlength(res->res, i, 1));
        d->created_ms = pl_pg_get_int64(res->res, i, 2);
        d->last_active_ms = pl_pg_get_int64(res->res, i, 3);
        d->current = d->device_id == r->who.device_id;
    }
    parley_v1_Accounts_ListDevices_reply(call, &resp);
}

static void list_devices(pl_call_t *call, pl_acct_req_t *r)
{
    uint8_t b[8];
    pl_pg_param_t p = pl_pg_int8(b, r->who.account_id);
    pl_acct_query(call, r, r->svc->stmt_devices + LIST, pl_acct_own_shard(r), &p, 1, PL_PG_IDEMPOTENT, on_list);
}

void pl_acct_list_devices(pl_call_t *call, const parley_v1_ListDevicesRequest *req, void *svc)
{
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), list_devices);
}

/* ---- RenameDevice ---- */

static void on_renamed(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    pl_acct_req_t *r = user;
    if (!pl_acct_query_ok(call, res, "accounts: rename device"))
        return;
    if (PQntuples(res->res) != 1) {
        pl_call_finish(call, PL_CODE_INTERNAL, "internal error");
        return;
    }
    if (fail_ownership(call, pl_pg_get_int64(res->res, 0, 0)))
        return;
    const parley_v1_RenameDeviceRequest *req = r->msg;
    parley_v1_Device d = {0};
    d.device_id = req->device_id;
    pl_acct_copy_text(d.name, sizeof(d.name), PQgetvalue(res->res, 0, 1), (size_t)PQgetlength(res->res, 0, 1));
    d.created_ms = pl_pg_get_int64(res->res, 0, 2);
    d.last_active_ms = pl_pg_get_int64(res->res, 0, 3);
    d.current = d.device_id == r->who.device_id;
    parley_v1_Accounts_RenameDevice_reply(call, &d);
}

static void rename_device(pl_call_t *call, pl_acct_req_t *r)
{
    const parley_v1_RenameDeviceRequest *req = r->msg;
    if (!pl_acct_id_is_routable(r->svc, req->device_id)) {
        pl_call_finish(call, PL_CODE_NOT_FOUND, "no such device");
        return;
    }
    uint8_t b[2][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], req->device_id), pl_pg_int8(b[1], r->who.account_id), pl_pg_text(req->name)};
    pl_acct_query(call, r, r->svc->stmt_devices + RENAME, pl_id_shard(req->device_id), p, 3,
                  PL_PG_WRITE | PL_PG_IDEMPOTENT, on_renamed);
}

void pl_acct_rename_device(pl_call_t *call, const parley_v1_RenameDeviceRequest *req, void *svc)
{
    const char *why = pl_acct_text_problem(req->name, strlen(req->name), PL_ACCT_DEVICE_NAME_MAX, false);
    if (why) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "name %s (at most %d bytes of UTF-8)", why,
                      PL_ACCT_DEVICE_NAME_MAX);
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), rename_device);
}

/* ---- RemoveDevice ---- */

static void on_revoked(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    pl_acct_req_t *r = user;
    if (!pl_acct_query_ok(call, res, "accounts: remove device"))
        return;
    if (PQntuples(res->res) != 1) {
        pl_call_finish(call, PL_CODE_INTERNAL, "internal error");
        return;
    }
    if (fail_ownership(call, pl_pg_get_int64(res->res, 0, 0)))
        return;
    const parley_v1_RemoveDeviceRequest *req = r->msg;
    pl_worker_t *w = pl_call_worker(call);
    pl_notify_device_removed(r->svc->app, w, r->who.account_id, req->device_id);
    pl_notify_devices_changed(r->svc->app, w, r->who.account_id);
    parley_v1_RemoveDeviceResponse resp = {0};
    parley_v1_Accounts_RemoveDevice_reply(call, &resp);
}

static void remove_device(pl_call_t *call, pl_acct_req_t *r)
{
    const parley_v1_RemoveDeviceRequest *req = r->msg;
    if (!pl_acct_id_is_routable(r->svc, req->device_id)) {
        pl_call_finish(call, PL_CODE_NOT_FOUND, "no such device");
        return;
    }
    uint8_t b[2][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], req->device_id), pl_pg_int8(b[1], r->who.account_id)};
    pl_acct_query(call, r, r->svc->stmt_devices + REVOKE, pl_id_shard(req->device_id), p, 2,
                  PL_PG_WRITE | PL_PG_IDEMPOTENT, on_revoked);
}

void pl_acct_remove_device(pl_call_t *call, const parley_v1_RemoveDeviceRequest *req, void *svc)
{
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), remove_device);
}
