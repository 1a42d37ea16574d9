/* rpc.h — the contract between generated service code and the runtimes.
 *
 * The protoc plugin (gen/plugin) emits, per service, a table of pl_method_t
 * and static inline typed wrappers around the functions declared here. The
 * server runtime implements the pl_call_* (server/rpc) / pl_server_*
 * (server/transport) half, the client runtime (client/) the pl_channel_* /
 * pl_ccall_* half; a program links only the half it uses. */
#ifndef PL_RUNTIME_RPC_H
#define PL_RUNTIME_RPC_H

#include <pb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/metadata.h"
#include "runtime/status.h"
#include "runtime/views.h"

typedef enum pl_call_shape {
    PL_SHAPE_UNARY = 0,
    PL_SHAPE_CLIENT_STREAMING = 1,
    PL_SHAPE_SERVER_STREAMING = 2,
    PL_SHAPE_BIDI_STREAMING = 3,
} pl_call_shape_t;

static inline bool pl_shape_streams_requests(pl_call_shape_t s)
{
    return s == PL_SHAPE_CLIENT_STREAMING || s == PL_SHAPE_BIDI_STREAMING;
}

static inline bool pl_shape_streams_responses(pl_call_shape_t s)
{
    return s == PL_SHAPE_SERVER_STREAMING || s == PL_SHAPE_BIDI_STREAMING;
}

typedef struct pl_method {
    const char *path; /* "/package.Service/Method", the HTTP/2 :path */
    const char *name; /* "Method" */
    pl_call_shape_t shape;
    const pb_msgdesc_t *request;
    size_t request_size; /* sizeof the request struct */
    const pb_msgdesc_t *response;
    size_t response_size;
} pl_method_t;

typedef struct pl_service_desc {
    const char *name; /* "package.Service" */
    const pl_method_t *const *methods;
    size_t method_count;
} pl_service_desc_t;

/* ---- server half (implemented in server/rpc) ---- */

typedef struct pl_call pl_call_t;
typedef struct pl_server pl_server_t;

/* Generic entry points; generated thunks cast to the typed handlers. */
typedef void (*pl_msg_handler_fn)(pl_call_t *call, const void *msg, void *svc);
typedef void (*pl_call_handler_fn)(pl_call_t *call, void *svc);

typedef struct pl_method_impl {
    const pl_method_t *method;
    /* Unary and server streaming: the one request. Streaming requests: each
     * message. NULL: the method answers UNIMPLEMENTED. */
    pl_msg_handler_fn on_message;
    pl_call_handler_fn on_start;      /* streaming requests only; may be NULL */
    pl_call_handler_fn on_half_close; /* streaming requests only; may be NULL */
} pl_method_impl_t;

/* A registered method, as a call finds it by its path. */
typedef struct pl_method_entry {
    pl_method_impl_t impl;
    const void *handlers;
    void *svc;
} pl_method_entry_t;

/* What a server call may receive and queue (from the server's configuration). */
typedef struct pl_call_limits {
    uint32_t max_recv_message, max_send_message; /* bytes */
    uint32_t max_metadata;                       /* request header list bytes */
    uint32_t call_outbound_limit;                /* queued response bytes per call */
    int message_timeout_ms;                      /* time to receive one request message once begun */
} pl_call_limits_t;

/* Registers a service's methods; handlers is the generated typed handler
 * struct (returned by pl_call_handlers()), svc the service's context. */
int pl_server_add_service(pl_server_t *srv, const pl_service_desc_t *desc, const pl_method_impl_t *impls,
                          const void *handlers, void *svc);
const void *pl_call_handlers(const pl_call_t *call);

/* Queues one response message. 0 on success; PL_ERR_FULL when the call's
 * outbound queue is over its limit (nothing queued: wait for the writable
 * callback); PL_ERR_CLOSED when the call already ended. */
int pl_call_send(pl_call_t *call, const void *msg);
/* Ends the call with a status (trailers). Idempotent: later calls are no-ops. */
int pl_call_finish(pl_call_t *call, pl_code_t code, const char *message);
/* send + finish(OK): the reply of a unary or client-streaming call. */
int pl_call_reply(pl_call_t *call, const void *msg);

/* ---- client half (implemented in client/) ---- */

typedef struct pl_channel pl_channel_t;
typedef struct pl_ccall pl_ccall_t;

typedef struct pl_call_opts {
    int64_t timeout_ms;            /* 0: no deadline */
    const pl_metadata_t *metadata; /* request metadata; may be NULL */
    bool compress;                 /* gzip request messages */
} pl_call_opts_t;

/* Starts a call; NULL only on allocation failure (other failures surface as
 * the call's status). */
pl_ccall_t *pl_ccall_start(pl_channel_t *ch, const pl_method_t *m, const pl_call_opts_t *opts);
/* Sends one request message; blocks while flow control holds it back.
 * 0, or -1 when the call has ended (see pl_ccall_finish for why). */
int pl_ccall_send(pl_ccall_t *c, const void *msg);
int pl_ccall_close_send(pl_ccall_t *c);
/* Receives one response into msg (zeroed by the caller): 1 message,
 * 0 end of stream, -1 the call failed. Views in msg stay valid until the
 * next recv or free. */
int pl_ccall_recv(pl_ccall_t *c, void *msg);
void pl_ccall_cancel(pl_ccall_t *c);
/* Waits for the status; returns its code and fills st if not NULL. */
pl_code_t pl_ccall_finish(pl_ccall_t *c, pl_status_t *st);
void pl_ccall_free(pl_ccall_t *c);
/* Unary in one step: start, send, close, recv, finish, free. */
pl_code_t pl_ccall_unary(pl_channel_t *ch, const pl_method_t *m, const pl_call_opts_t *opts, const void *req,
                         void *resp, pl_status_t *st);

#endif
