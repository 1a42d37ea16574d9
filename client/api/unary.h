/* unary.h — blocking unary calls from any app thread, over a small pool of
 * connections separate from the device stream's: a caller takes an idle
 * connection (or opens one), makes its call, converts the response, and
 * gives the connection back. SIGPIPE is held off during the call. */
#ifndef PL_CLIENT_API_UNARY_H
#define PL_CLIENT_API_UNARY_H

#include "api/client_impl.h"

enum {
    PL_UNARY_AUTH = 1,       /* with the device's token (UNAUTHENTICATED-free calls omit it) */
    PL_UNARY_IDEMPOTENT = 2, /* may be repeated on a fresh connection when a pooled one was dead */
};

/* Makes the call; resp is zeroed by the caller (and its view lists set up).
 * On PARLEY_OK *held is the connection whose buffers resp's views point
 * into: convert, then pl_unary_release. On failure nothing is held and err
 * says why. */
int pl_unary(parley_client_t *c, const pl_method_t *m, const void *req, void *resp, unsigned flags, pl_channel_t **held,
             parley_error_t *err);
void pl_unary_release(parley_client_t *c, pl_channel_t *ch);
void pl_unary_pool_clear(parley_client_t *c);

/* Copies s into a fixed-size field, or fails with INVALID_ARGUMENT naming what. */
int pl_copy_field(char *dst, size_t cap, const char *s, const char *what, parley_error_t *err);

#endif
