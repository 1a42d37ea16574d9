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

static int (*const statement_inits[])(pl_accounts_t *) = {
    pl_acct_request_code_init, pl_acct_verify_init,   pl_acct_profile_init,  pl_acct_devices_init,
    pl_acct_lookup_init,       pl_acct_contacts_init, pl_acct_blocking_init,
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
    for (size_t i = 0; i < sizeof(statement_inits) / sizeof(statement_inits[0]); i++) {
        if (statement_inits[i](s) != 0) {
            snprintf(err, err_len, "accounts: out of memory registering statements");
            pl_accounts_free(s);
            return NULL;
        }
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
