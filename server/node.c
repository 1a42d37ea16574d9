/* node.c — registering every Parley service, in dependency order. */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>

#include "accounts/accounts.h"
#include "accounts/sms.h"
#include "app/auth.h"
#include "chats/chats.h"
#include "messaging/messaging.h"
#include "push/push.h"

struct pl_services {
    pl_messaging_t *messaging;
    pl_accounts_t *accounts;
    pl_chats_t *chats;
    pl_push_service_t *push;
};

int pl_services_check_config(const pl_config_t *cfg, char *err, size_t err_len)
{
    return pl_sms_check_config(cfg, err, err_len);
}

pl_services_t *pl_services_register(pl_app_t *app, char *err, size_t err_len)
{
    pl_services_t *s = calloc(1, sizeof(*s));
    if (!s || pl_auth_init(app) != 0) {
        snprintf(err, err_len, "out of memory");
        free(s);
        return NULL;
    }
    /* messaging first: the others notify it (app->messaging) */
    if (!(s->messaging = pl_messaging_register(app, err, err_len)) ||
        !(s->accounts = pl_accounts_register(app, err, err_len)) ||
        !(s->chats = pl_chats_register(app, err, err_len)) || !(s->push = pl_push_register(app, err, err_len))) {
        pl_services_free(s);
        return NULL;
    }
    return s;
}

void pl_services_free(pl_services_t *s)
{
    if (!s)
        return;
    pl_push_free(s->push);
    pl_chats_free(s->chats);
    pl_accounts_free(s->accounts);
    pl_messaging_free(s->messaging);
    free(s);
}
