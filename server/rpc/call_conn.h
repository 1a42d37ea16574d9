/* call_conn.h — where calls meet the protocol carrying them (http2/), as
 * h2o's request and protocol meet through h2o_conn_callbacks_t: pl_call_ops
 * is what a session does with its calls (one per stream), pl_call_conn_ops_t
 * what a call asks of its session. Neither side includes the other or sees
 * its insides; both run on the connection's worker thread. */
#ifndef PL_SERVER_RPC_CALL_CONN_H
#define PL_SERVER_RPC_CALL_CONN_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/call.h"

struct event_base;

/* The session a call's stream is on: opaque here, defined by http2/. */
typedef struct pl_call_conn pl_call_conn_t;

typedef struct pl_call_conn_ops {
    /* with_body: the body is read with pl_call_ops.read_body. 0 or -1. */
    int (*submit_response)(pl_call_conn_t *conn, int32_t stream_id, const nghttp2_nv *nva, size_t n, bool with_body);
    int (*submit_trailers)(pl_call_conn_t *conn, int32_t stream_id, const nghttp2_nv *nva, size_t n);
    void (*resume)(pl_call_conn_t *conn, int32_t stream_id); /* more response data is queued */
    void (*reset)(pl_call_conn_t *conn, int32_t stream_id, uint32_t error_code);
    void (*kick)(pl_call_conn_t *conn);                                 /* flush queued frames soon */
    void (*consume)(pl_call_conn_t *conn, int32_t stream_id, size_t n); /* n bytes processed: open the window */
    /* May a response of len bytes be queued (the connection's outbound
     * budget; false is counted as a defence)? Queued bytes changed by delta. */
    bool (*out_fits)(pl_call_conn_t *conn, size_t len);
    void (*out_changed)(pl_call_conn_t *conn, int64_t delta);
    /* Bytes of incomplete request messages changed by delta; may call open
     * its window (the inbound budget)? If not, the connection's window
     * opens (consume_held) and the stream's waits (consume_stream). */
    void (*in_changed)(pl_call_conn_t *conn, int64_t delta);
    bool (*in_may_consume)(pl_call_conn_t *conn, const pl_call_t *call);
    void (*consume_held)(pl_call_conn_t *conn, size_t n);
    void (*consume_stream)(pl_call_conn_t *conn, int32_t stream_id, size_t n);
    void (*mark_authenticated)(pl_call_conn_t *conn); /* the larger inbound budget */
    void (*peer)(pl_call_conn_t *conn, char *buf, size_t len);
    const pl_method_entry_t *(*find_method)(pl_call_conn_t *conn, const char *path, size_t len);
    bool (*has_service)(pl_call_conn_t *conn, const char *name);
} pl_call_conn_ops_t;

typedef struct pl_call_ops {
    /* A new request stream on a worker (timers on its base), with the
     * server's limits (they outlive the call); NULL when out of memory. */
    pl_call_t *(*open)(pl_call_conn_t *conn, const pl_call_conn_ops_t *ops, int32_t stream_id,
                       const pl_call_limits_t *limits, pl_worker_t *worker, struct event_base *base);
    /* One request header; problems are answered once the headers end. */
    void (*on_header)(pl_call_t *call, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len);
    void (*on_headers_end)(pl_call_t *call);
    void (*on_data)(pl_call_t *call, const uint8_t *data, size_t len);
    void (*on_remote_end)(pl_call_t *call);
    /* The stream is gone: drops its reference (the call may be freed). */
    void (*on_stream_close)(pl_call_t *call, uint32_t error_code);
    ssize_t (*read_body)(pl_call_t *call, uint8_t *buf, size_t len, uint32_t *data_flags); /* nghttp2 data source */
    int (*finish)(pl_call_t *call, pl_code_t code, const char *message);
    /* For the connection's budgets. */
    int32_t (*stream_id)(const pl_call_t *call);
    uint32_t (*queued_bytes)(const pl_call_t *call);  /* response bytes not yet read */
    uint32_t (*partial_bytes)(const pl_call_t *call); /* of an incomplete request message */
    int64_t (*partial_since)(const pl_call_t *call);  /* when that message began; 0: none */
    void (*on_connection_writable)(pl_call_t *call);  /* a full send may be retried */
    void (*consume_held_back)(pl_call_t *call);       /* held-back input may open the window */
    /* Ends the call for its incomplete request message (why, or NULL:
     * not complete within message_timeout_ms). */
    void (*expire_partial)(pl_call_t *call, const char *why);
    /* The session's list of open calls. */
    pl_call_t *(*next)(const pl_call_t *call);
    void (*link)(pl_call_t **head, pl_call_t *call);
    void (*unlink)(pl_call_t **head, pl_call_t *call);
} pl_call_ops_t;

extern const pl_call_ops_t pl_call_ops;

#endif
