/* push.h — parley.v1.Push and the push dispatcher: tokens, mutes and
 * settings; the durable queue the send path fills (push/notify.h); the
 * sending to APNs and FCM from worker 0 of every node. */
#ifndef PL_PUSH_PUSH_H
#define PL_PUSH_PUSH_H

#include <stddef.h>

#include "app/app.h"

/* Registers the service and the dispatcher, and checks the credentials in
 * [push] (a key that cannot be loaded stops the start). NULL with a
 * message in err. */
pl_push_service_t *pl_push_register(pl_app_t *app, char *err, size_t err_len);
void pl_push_free(pl_push_service_t *svc);

#endif
