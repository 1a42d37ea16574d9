/* reflect.h — a gRPC server reflection client (grpc.reflection.v1, or
 * v1alpha when the server answers v1 with UNIMPLEMENTED) that fills a
 * descriptor pool: the file defining a symbol, then each dependency by
 * file name, until the pool has all it needs. One stream serves every
 * request of a run. */
#ifndef PCTL_REFLECT_H
#define PCTL_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#include "descriptors.h"
#include "err.h"
#include "parley/channel.h"

typedef struct pctl_reflect pctl_reflect_t;

typedef struct pctl_reflect_opts {
    pl_channel_t *ch;        /* borrowed */
    const pl_metadata_t *md; /* request metadata (may be NULL) */
    int64_t deadline_usec;   /* 0: none */
    size_t max_message;      /* largest reflection response accepted */
} pctl_reflect_opts_t;

pctl_reflect_t *pctl_reflect_new(const pctl_reflect_opts_t *opts);
void pctl_reflect_free(pctl_reflect_t *r);

/* The server's services, malloc'd strings in a malloc'd array. */
int pctl_reflect_list_services(pctl_reflect_t *r, char ***names, size_t *count, pctl_err_t *err);
/* Loads the file that defines symbol, and its dependencies, into pool,
 * and links it. */
int pctl_reflect_load_symbol(pctl_reflect_t *r, pctl_pool_t *pool, const char *symbol, pctl_err_t *err);

#endif
