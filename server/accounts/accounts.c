/* accounts.c — parley.v1.Accounts on the server: registers the statements
 * of every part of the service and the handlers, and picks the SMS
 * provider. What each method does is described in the file that holds it
 * (accounts_internal.h lists them). */
#include "accounts/accounts.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "accounts/accounts_internal.h"

static const parley_v1_Accounts_handlers_t handlers = {
    .RequestCode = pl_acct_request_code,
    .Verify = pl_acct_verify,
    .GetProfile = pl_acct_get_profile,
    .UpdateProfile = pl_acct_update_profile,
    .UpdatePrivacy = pl_acct_update_privacy,
    .ListDevices = pl_acct_list_devices,
    .RenameDevice = pl_acct_rename_device,
    .RemoveDevice = pl_acct_remove_device,
    .GetDevices = pl_acct_get_devices,
    .AddContacts = pl_acct_add_contacts,
    .RemoveContact = pl_acct_remove_contact,
    .ListContacts = pl_acct_list_contacts,
    .LookupPhones = pl_acct_lookup_phones,
    .Block = pl_acct_block,
    .Unblock = pl_acct_unblock,
    .ListBlocked = pl_acct_list_blocked,
};

#define OWN_COLUMNS "id, phone, display_name, about, last_seen_visibility, online_visibility"

static const pl_pg_stmt_t statements[ST_COUNT] = {
    /* request_code.c */
    [ST_STORE_CODE] = {"acct_store_code", "SELECT {s}.store_code($1::text, $2::bytea, $3::bigint)", true},
    /* verify.c */
    [ST_TAKE_ATTEMPT] =
        {"acct_take_code_attempt",
         "SELECT status, stored_hash, attempts_left FROM {s}.take_code_attempt($1::text, $2::bigint::int)", true},
    [ST_COMPLETE_VERIFICATION] =
        {"acct_complete_verification",
         "SELECT status, account, created FROM {s}.complete_verification($1::text, $2::bytea, $3::bigint, "
         "$4::bigint, $5::text, $6::bytea, $7::bigint::int)",
         true},
    /* profile.c */
    [ST_GET_OWN_PROFILE] = {"acct_get_own_profile", "SELECT " OWN_COLUMNS " FROM {s}.accounts WHERE id = $1::bigint",
                            true},
    [ST_GET_PUBLIC_PROFILE] = {"acct_get_public_profile",
                               "SELECT id, display_name, about FROM {s}.accounts WHERE id = $1::bigint", true},
    [ST_UPDATE_PROFILE] = {"acct_update_profile",
                           "UPDATE {s}.accounts SET display_name = $2::text, about = $3::text WHERE id = $1::bigint "
                           "RETURNING " OWN_COLUMNS,
                           true},
    [ST_UPDATE_PRIVACY] = {"acct_update_privacy",
                           "UPDATE {s}.accounts SET "
                           "last_seen_visibility = COALESCE(NULLIF($2::bigint, 0)::smallint, last_seen_visibility), "
                           "online_visibility = COALESCE(NULLIF($3::bigint, 0)::smallint, online_visibility) "
                           "WHERE id = $1::bigint RETURNING last_seen_visibility, online_visibility",
                           true},
    /* devices.c */
    [ST_LIST_DEVICES] =
        {"acct_list_devices",
         "SELECT id, name, (extract(epoch FROM created_at) * 1000)::bigint, "
         "(extract(epoch FROM last_active_at) * 1000)::bigint FROM {s}.devices "
         "WHERE account_id = $1::bigint AND revoked_at IS NULL ORDER BY id LIMIT 16", /* PL_ACCT_LIST_DEVICES_MAX */
         true},
    [ST_RENAME_DEVICE] = {"acct_rename_device",
                          "SELECT status, device_name, created_ms, last_active_ms "
                          "FROM {s}.rename_device($1::bigint, $2::bigint, $3::text)",
                          true},
    [ST_REVOKE_DEVICE] = {"acct_revoke_device", "SELECT status FROM {s}.revoke_device($1::bigint, $2::bigint)", true},
    /* lookup.c */
    [ST_CURRENT_DEVICES] = {"acct_current_devices",
                            "SELECT a.id, d.id FROM {s}.accounts a LEFT JOIN {s}.devices d "
                            "ON d.account_id = a.id AND d.revoked_at IS NULL "
                            "WHERE a.id = ANY($1::bigint[]) ORDER BY a.id, d.id",
                            true},
    [ST_LOOKUP_PHONES] = {"acct_lookup_phones", "SELECT phone, id FROM {s}.accounts WHERE phone = ANY($1::text[])",
                          true},
    /* contacts.c */
    [ST_EXISTING_ACCOUNTS] = {"acct_existing_accounts", "SELECT id FROM {s}.accounts WHERE id = ANY($1::bigint[])",
                              true},
    [ST_ADD_CONTACTS] = {"acct_add_contacts",
                         "WITH ins AS (INSERT INTO {s}.contacts (account_id, contact_id) "
                         "SELECT $1::bigint, c FROM unnest($2::bigint[]) AS c ON CONFLICT DO NOTHING RETURNING 1) "
                         "SELECT count(*) FROM ins",
                         true},
    [ST_REMOVE_CONTACT] = {"acct_remove_contact",
                           "DELETE FROM {s}.contacts WHERE account_id = $1::bigint AND contact_id = $2::bigint", true},
    [ST_LIST_CONTACTS] =
        {"acct_list_contacts",
         "SELECT contact_id FROM {s}.contacts WHERE account_id = $1::bigint AND contact_id > $2::bigint "
         "ORDER BY contact_id LIMIT $3::bigint",
         true},
    [ST_DISPLAY_NAMES] = {"acct_display_names",
                          "SELECT id, display_name FROM {s}.accounts WHERE id = ANY($1::bigint[])", true},
    /* blocking.c */
    [ST_ACCOUNT_EXISTS] = {"acct_account_exists", "SELECT 1 FROM {s}.accounts WHERE id = $1::bigint", true},
    [ST_BLOCK] =
        {"acct_block",
         "INSERT INTO {s}.blocks (account_id, blocked_id) VALUES ($1::bigint, $2::bigint) ON CONFLICT DO NOTHING",
         true},
    [ST_UNBLOCK] = {"acct_unblock", "DELETE FROM {s}.blocks WHERE account_id = $1::bigint AND blocked_id = $2::bigint",
                    true},
    [ST_SET_DIRECT_BLOCK] =
        {"acct_set_direct_block",
         "SELECT chat_id FROM {s}.set_direct_block($1::bigint, $2::bigint, $3::bigint, $4::boolean)", true},
    [ST_LIST_BLOCKED] = {"acct_list_blocked",
                         "SELECT blocked_id FROM {s}.blocks WHERE account_id = $1::bigint AND blocked_id > $2::bigint "
                         "ORDER BY blocked_id LIMIT $3::bigint",
                         true},
};

pl_accounts_t *pl_accounts_register(pl_app_t *app, char *err, size_t err_len)
{
    if (sodium_init() < 0) {
        snprintf(err, err_len, "accounts: libsodium failed to initialise");
        return NULL;
    }
    pl_accounts_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->app = app;
    if (!(s->sms = pl_sms_new(app->cfg, err, err_len))) {
        free(s);
        return NULL;
    }
    if ((s->stmt = pl_app_add_statements(app, statements, ST_COUNT)) < 0) {
        snprintf(err, err_len, "accounts: out of memory registering statements");
        pl_accounts_free(s);
        return NULL;
    }
    if (parley_v1_Accounts_register(app->server, &handlers, s) != 0) {
        snprintf(err, err_len, "accounts: cannot register parley.v1.Accounts");
        pl_accounts_free(s);
        return NULL;
    }
    return s;
}

void pl_accounts_free(pl_accounts_t *s)
{
    if (!s)
        return;
    pl_sms_free(s->sms);
    free(s);
}
