/* accounts.c — placeholder until the service lands (being written now). */
#include "accounts/accounts.h"

#include <stdlib.h>

struct pl_accounts {
    pl_app_t *app;
};

pl_accounts_t *pl_accounts_register(pl_app_t *app, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    pl_accounts_t *s = calloc(1, sizeof(*s));
    if (s)
        s->app = app;
    return s;
}

void pl_accounts_free(pl_accounts_t *s)
{
    free(s);
}
