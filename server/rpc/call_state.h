/* call_state.h — the server call's private state, shared by call.c
 * (lifecycle), call_request.c (headers, messages, dispatch) and
 * call_response.c (queue, headers, trailers). */
#ifndef PL_SERVER_RPC_CALL_STATE_H
#define PL_SERVER_RPC_CALL_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "rpc/call_conn.h"
#include "runtime/frame.h"
#include "runtime/list.h"
#include "runtime/metadata.h"

struct event;

typedef struct pl_outmsg {
    pl_list_node_t link; /* in the call's out */
    uint32_t len, off;
    uint8_t data[];
} pl_outmsg_t;

typedef enum pl_req_encoding {
    PL_ENC_IDENTITY = 0,
    PL_ENC_GZIP = 1,
    PL_ENC_UNSUPPORTED = 2,
} pl_req_encoding_t;

struct pl_call {
    pl_call_conn_t *conn; /* NULL once the stream has closed */
    const pl_call_conn_ops_t *ops;
    int32_t stream_id;
    uint32_t refs;
    const pl_call_limits_t *limits; /* the server's */
    pl_worker_t *worker;
    struct event_base *base; /* the worker's */
    pl_call_t *next, *prev;  /* the session's open calls */

    /* request headers, until they are complete */
    char *path;
    uint32_t header_bytes;
    bool is_post, is_grpc_content, has_path, metadata_too_large;
    pl_req_encoding_t req_encoding;
    bool accepts_gzip;

    const pl_method_entry_t *entry;
    pl_metadata_t md;
    int64_t deadline_usec;
    struct event *deadline_ev;

    /* request messages */
    pl_deframer_t deframer;
    uint8_t *req_payload; /* unary/server-streaming: keeps the request's views alive */
    void *req;            /* decoded request (one struct, reused for streamed requests) */
    uint32_t messages_in;
    uint32_t partial_bytes;   /* of the request message being received (the connection's budget) */
    int64_t partial_since_ms; /* when it began; 0: none */
    size_t held_back;         /* bytes processed but not yet given back as stream window (budget full) */
    uint8_t *held;            /* bytes received while paused, not yet consumed */
    uint32_t held_len;

    /* response */
    pl_metadata_t initial_md, trailing_md;
    pl_list_t out; /* response messages not yet taken by HTTP/2 (pl_outmsg_t) */
    uint32_t out_bytes;
    pl_code_t status;
    char *status_message;

    struct pl_deferred *deferred; /* pending pl_call_defer timers, each holding a ref */

    void *user;
    void (*user_free)(void *user);
    pl_call_event_fn on_cancel, on_writable;
    pl_call_invalid_fn on_invalid; /* streamed requests that do not decode */

    bool headers_done;     /* request headers complete and validated */
    bool remote_ended;     /* client half-closed */
    bool dispatched;       /* the handler has seen the call */
    bool finished;         /* a status was decided */
    bool response_started; /* response HEADERS submitted */
    bool trailers_sent;
    bool is_plain_http; /* non-gRPC fallback response */
    bool cancelled;
    bool stream_closed;
    bool compress_out;
    bool out_gzip; /* response headers announced grpc-encoding: gzip */
    bool last_in_compressed;
    bool recv_paused;
    bool writable_wanted;
    bool writable_scheduled;
};

/* pl_call_ops (rpc/call_conn.h), in call.c, call_request.c, call_response.c */
pl_call_t *pl_call_new(pl_call_conn_t *conn, const pl_call_conn_ops_t *ops, int32_t stream_id,
                       const pl_call_limits_t *limits, pl_worker_t *worker, struct event_base *base);
void pl_call_on_header(pl_call_t *call, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len);
void pl_call_on_headers_end(pl_call_t *call);
void pl_call_on_data(pl_call_t *call, const uint8_t *data, size_t len);
void pl_call_on_remote_end(pl_call_t *call);
void pl_call_on_stream_close(pl_call_t *call, uint32_t error_code);
ssize_t pl_call_read_body(pl_call_t *call, uint8_t *buf, size_t len, uint32_t *data_flags);
int32_t pl_call_stream_id(const pl_call_t *call);
uint32_t pl_call_queued_bytes(const pl_call_t *call);
uint32_t pl_call_partial_bytes(const pl_call_t *call);
int64_t pl_call_partial_since(const pl_call_t *call);
void pl_call_on_connection_writable(pl_call_t *call);
void pl_call_consume_held_back(pl_call_t *call);
void pl_call_expire_partial(pl_call_t *call, const char *why);

/* call.c */
void pl_call_cancel_internal(pl_call_t *call);
/* Cancels pending deferred work (the call has ended: it would not run). */
void pl_call_drop_deferred(pl_call_t *call);
void pl_call_clear_deadline(pl_call_t *call);
int pl_call_arm_deadline(pl_call_t *call);
void pl_call_schedule_writable(pl_call_t *call);

/* call_response.c */
void pl_call_free_response(pl_call_t *call);
/* Answers a request that never reached a handler (bad headers, unknown
 * method): a trailers-only response. */
void pl_call_reject(pl_call_t *call, pl_code_t code, const char *message);
/* Answers a non-gRPC request (e.g. h2spec's GET /) with an HTTP status. */
void pl_call_plain_http(pl_call_t *call, int http_status, const char *body);

#endif
