/* reflection.h — gRPC server reflection, v1 and v1alpha, answered from the
 * descriptor sets the build embedded (pl_server_add_descriptors). */
#ifndef PL_SERVER_SERVICES_REFLECTION_H
#define PL_SERVER_SERVICES_REFLECTION_H

#include "transport/server.h"

/* Registers both versions on srv (before start). 0 or PL_ERR_*. */
int pl_reflection_register(pl_server_t *srv);

#endif
