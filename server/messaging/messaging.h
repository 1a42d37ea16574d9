/* messaging.h — parley.v1.Messaging: the device streams, Send, GetHistory,
 * and the fan-out that carries messages, receipts, typing and presence to
 * every device on this node and, through Redis, on the others. */
#ifndef PL_MESSAGING_MESSAGING_H
#define PL_MESSAGING_MESSAGING_H

#include <stddef.h>

#include "app/app.h"

/* Registers the service and sets app->messaging. NULL with a message in err. */
pl_messaging_t *pl_messaging_register(pl_app_t *app, char *err, size_t err_len);
void pl_messaging_free(pl_messaging_t *m);

#endif
