/* health.h — grpc.health.v1.Health: every registered service (and "", the
 * server as a whole) is SERVING until the server drains, then NOT_SERVING;
 * Watch streams the change to every watcher. */
#ifndef PL_SERVER_SERVICES_HEALTH_H
#define PL_SERVER_SERVICES_HEALTH_H

#include "transport/server.h"

typedef struct pl_health pl_health_t;

/* Registers the service and its drain hook on srv (before start). */
pl_health_t *pl_health_register(pl_server_t *srv);
void pl_health_free(pl_health_t *h);

#endif
