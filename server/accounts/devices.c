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

/* Fails op for a status of rename_device/revoke_device other than 0 (or
 * for a missing row); true if it did. */
static bool fail_ownership(pl_op_t *op, const PGresult *res)
{
    switch (PQntuples(res) == 1 ? pl_pg_get_int64(res, 0, 0) : -1) {
    case 0: return false;
    case 1: pl_op_fail(op, PL_CODE_NOT_FOUND, "no such device"); return true;
    case 2: pl_op_fail(op, PL_CODE_PERMISSION_DENIED, "the device belongs to another account"); return true;
    default: pl_op_fail(op, PL_CODE_INTERNAL, "internal error"); return true;
    }
}

/* ---- ListDevices ---- */

static void on_list(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    parley_v1_ListDevicesResponse resp = {0};
    int n = PQntuples(res->res);
    for (int i = 0; i < n && (size_t)i < PL_ACCT_LIST_DEVICES_MAX; i++) {
        parley_v1_Device *d = &resp.devices[resp.devices_count++];
        d->device_id = pl_pg_get_int64(res->res, i, 0);
        pl_acct_copy_text(d->name, sizeof(d->name), PQgetvalue(res->res, i, 1), (size_t)PQgetlength(res->res, i, 1));
        d->created_ms = pl_pg_get_int64(res->res, i, 2);
        d->last_active_ms = pl_pg_get_int64(res->res, i, 3);
        d->current = d->device_id == op->who.device_id;
    }
    parley_v1_Accounts_ListDevices_reply(op->call, &resp);
}

static void list_devices(pl_op_t *op)
{
    uint8_t b[8];
    pl_pg_param_t p = pl_pg_int8(b, op->who.account_id);
    pl_acct_query(op, ST_LIST_DEVICES, pl_acct_own_shard(op), &p, 1, PL_PG_IDEMPOTENT, on_list, "list devices");
}

void pl_acct_list_devices(pl_call_t *call, const parley_v1_ListDevicesRequest *req, void *svc)
{
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), list_devices);
}

/* ---- RenameDevice ---- */

static void on_renamed(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    if (fail_ownership(op, res->res))
        return;
    const parley_v1_RenameDeviceRequest *req = pl_acct_msg(op);
    parley_v1_Device d = {0};
    d.device_id = req->device_id;
    pl_acct_copy_text(d.name, sizeof(d.name), PQgetvalue(res->res, 0, 1), (size_t)PQgetlength(res->res, 0, 1));
    d.created_ms = pl_pg_get_int64(res->res, 0, 2);
    d.last_active_ms = pl_pg_get_int64(res->res, 0, 3);
    d.current = d.device_id == op->who.device_id;
    parley_v1_Accounts_RenameDevice_reply(op->call, &d);
}

/* A device id the caller named, on its shard: NOT_FOUND if it cannot exist. */
static void device_query(pl_op_t *op, int64_t device_id, int stmt, pl_pg_param_t *p, int n, pl_op_rows_fn fn,
                         const char *what)
{
    if (!pl_acct_id_is_routable(pl_acct_svc(op), device_id)) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "no such device");
        return;
    }
    uint8_t b[2][8];
    p[0] = pl_pg_int8(b[0], device_id);
    p[1] = pl_pg_int8(b[1], op->who.account_id);
    pl_acct_query(op, stmt, pl_id_shard(device_id), p, n, PL_PG_WRITE | PL_PG_IDEMPOTENT, fn, what);
}

static void rename_device(pl_op_t *op)
{
    const parley_v1_RenameDeviceRequest *req = pl_acct_msg(op);
    pl_pg_param_t p[3] = {[2] = pl_pg_text(req->name)};
    device_query(op, req->device_id, ST_RENAME_DEVICE, p, 3, on_renamed, "rename device");
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

static void on_revoked(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    if (fail_ownership(op, res->res))
        return;
    const parley_v1_RemoveDeviceRequest *req = pl_acct_msg(op);
    pl_worker_t *w = pl_call_worker(op->call);
    pl_notify_device_removed(op->app, w, op->who.account_id, req->device_id);
    pl_notify_devices_changed(op->app, w, op->who.account_id);
    parley_v1_RemoveDeviceResponse resp = {0};
    parley_v1_Accounts_RemoveDevice_reply(op->call, &resp);
}

static void remove_device(pl_op_t *op)
{
    const parley_v1_RemoveDeviceRequest *req = pl_acct_msg(op);
    pl_pg_param_t p[2];
    device_query(op, req->device_id, ST_REVOKE_DEVICE, p, 2, on_revoked, "remove device");
}

void pl_acct_remove_device(pl_call_t *call, const parley_v1_RemoveDeviceRequest *req, void *svc)
{
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), remove_device);
}
