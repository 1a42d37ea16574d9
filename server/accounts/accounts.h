/* accounts.h — parley.v1.Accounts: registration by phone number, device
 * credentials, profile, privacy, contacts and blocking. */
#ifndef PL_ACCOUNTS_ACCOUNTS_H
#define PL_ACCOUNTS_ACCOUNTS_H

#include <stddef.h>

#include "app/app.h"

typedef struct pl_accounts pl_accounts_t;

/* Registers the service (statements, handlers). NULL with a message in err. */
pl_accounts_t *pl_accounts_register(pl_app_t *app, char *err, size_t err_len);
void pl_accounts_free(pl_accounts_t *a);

#endif
