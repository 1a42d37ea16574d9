/* invoke.h — `call`: one RPC of any shape with JSON requests in and JSON
 * responses out. Requests are sent as they are read and responses printed
 * as they arrive (bidi interleaves both); unary and client-streaming
 * responses print pretty (two spaces, like grpcurl), streamed ones one
 * compact object per line; a non-OK status prints grpcurl's ERROR block
 * on stderr. */
#ifndef PCTL_INVOKE_H
#define PCTL_INVOKE_H

#include <stdbool.h>

#include "descriptors.h"
#include "parley/channel.h"

typedef struct pctl_invoke_opts {
    const pl_metadata_t *md; /* request metadata (may be NULL) */
    int64_t deadline_usec;   /* 0: none */
    const char *data;        /* -d text; NULL: read requests from in_fd */
    int in_fd;
    bool compact;       /* every response on one line */
    bool emit_defaults; /* print fields at their default value */
    bool verbose;       /* response headers and trailers on stderr */
    size_t max_message; /* largest response accepted */
} pctl_invoke_opts_t;

/* Runs the call; returns the exit status (codes.h). */
int pctl_invoke(pl_channel_t *ch, const pctl_method_t *m, const pctl_invoke_opts_t *opts);

#endif
