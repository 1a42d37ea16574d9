/* pool_internal.h — what the FileDescriptorProto reader (descparse.c)
 * needs from the pool (descriptors.c). */
#ifndef PCTL_POOL_INTERNAL_H
#define PCTL_POOL_INTERNAL_H

#include "arena.h"
#include "descriptors.h"

/* Bounds on what a peer's descriptors can make us build. */
#define PCTL_MAX_FILES 4096
#define PCTL_MAX_NAME 4096  /* bytes in one name */
#define PCTL_MAX_NESTING 64 /* nested message declarations */
#define PCTL_MAX_POOL_BYTES (256u << 20)

pctl_arena_t *pctl_pool_arena(pctl_pool_t *pool);
/* Decodes a FileDescriptorProto into arena memory, not yet registered. */
int pctl_descparse_file(pctl_pool_t *pool, const uint8_t *data, size_t len, pctl_file_t **out, pctl_err_t *err);

#endif
