/* node.h — the composition root: which services a Parley node runs,
 * registered on its server in dependency order (for parleyd). app/ stays
 * below the services, which build on it. */
#ifndef PL_SERVER_NODE_H
#define PL_SERVER_NODE_H

#include <stddef.h>

#include "app/app.h"

typedef struct pl_services pl_services_t;

/* The services' own configuration checks (those the config parser cannot
 * know, such as provider names), before anything connects anywhere: an
 * operator's typo fails at once, naming the key. -1 with a message in err. */
int pl_services_check_config(const pl_config_t *cfg, char *err, size_t err_len);
/* Registers auth, accounts, chats and messaging on app's server (before it
 * starts). NULL with a message in err. */
pl_services_t *pl_services_register(pl_app_t *app, char *err, size_t err_len);
/* After the server has stopped. */
void pl_services_free(pl_services_t *s);

#endif
