/* session.h — the server side of one HTTP/2 connection (nghttp2).
 *
 * Sits between the connection (bytes in, bytes out) and the gRPC calls (one
 * per stream): it configures nghttp2 with Parley's limits, turns frames into
 * call events, and gives calls a small API to answer on their stream. */
#ifndef PL_SERVER_HTTP2_SESSION_H
#define PL_SERVER_HTTP2_SESSION_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/server.h"

typedef struct pl_conn pl_conn_t;
typedef struct pl_h2 pl_h2_t;

/* Creates the session and queues our SETTINGS. NULL on allocation failure. */
pl_h2_t *pl_h2_new(pl_conn_t *conn, pl_server_t *srv);
/* Cancels every open call, then frees the session. */
void pl_h2_free(pl_h2_t *h2);

/* Feeds received bytes. 0, or -1 when the connection must close at once
 * (floods and limits instead queue a GOAWAY and return 0). */
int pl_h2_recv(pl_h2_t *h2, const uint8_t *data, size_t len);
/* Next chunk of output (valid until the next call): its length, 0 when
 * there is nothing to send, -1 on a fatal error. */
long pl_h2_send(pl_h2_t *h2, const uint8_t **data);
/* False once both sides are done (GOAWAY exchanged, no streams), or once
 * we sent a GOAWAY with an error code. */
bool pl_h2_wants_io(const pl_h2_t *h2);
bool pl_h2_has_calls(const pl_h2_t *h2);

/* A defence fired on this connection: counted node-wide, logged at most
 * once per connection and kind (with the peer's address and detail). */
void pl_h2_defence(pl_h2_t *h2, pl_defence_t kind, const char *detail);
/* Ends the session for abuse: GOAWAY(error_code, reason as debug data),
 * input ignored from now on; the connection closes once it is written. */
void pl_h2_terminate(pl_h2_t *h2, uint32_t error_code, const char *reason);
/* Since when (pl_now_msec) a frame header, a non-DATA frame or a request
 * header block has been arriving without completing; 0 if none is. */
int64_t pl_h2_incomplete_since(const pl_h2_t *h2);
/* Since when calls have been waiting with the peer's connection-level
 * flow-control window exhausted (no DATA could go out); 0 if they are not. */
int64_t pl_h2_flow_stalled_since(const pl_h2_t *h2);

void pl_h2_ping(pl_h2_t *h2);
void pl_h2_shutdown_notice(pl_h2_t *h2);
void pl_h2_goaway(pl_h2_t *h2, uint32_t error_code);
/* Ends every open call with UNAVAILABLE (drain grace expired). */
void pl_h2_abort_calls(pl_h2_t *h2);

/* ---- budgets the connection's calls share (rpc/call_*.c) ---- */
/* May a response message of len bytes be queued (conn_outbound_limit)? */
bool pl_h2_out_fits(pl_h2_t *h2, size_t len);
/* Queued response bytes changed by delta; room again wakes waiting calls. */
void pl_h2_out_changed(pl_h2_t *h2, int64_t delta);
/* Buffered bytes of incomplete request messages changed by delta; room
 * again lets held-back calls open their windows. */
void pl_h2_in_changed(pl_h2_t *h2, int64_t delta);
/* May call open its flow-control window for what it received (within the
 * inbound budget, or the call whose message began first)? */
bool pl_h2_in_may_consume(const pl_h2_t *h2, const pl_call_t *call);
/* Bytes a call processed while over the budget: the connection's window
 * reopens, the stream's stays shut until pl_h2_consume_stream. */
void pl_h2_consume_held(pl_h2_t *h2, size_t n);
void pl_h2_consume_stream(pl_h2_t *h2, int32_t stream_id, size_t n);
/* The connection's budget for incomplete request messages (inbound_buffer,
 * or inbound_buffer_unauth until a call on it authenticated): past it only
 * the oldest message's stream window reopens; past 4 times it the newest
 * messages' calls end with RESOURCE_EXHAUSTED. */
uint32_t pl_h2_in_budget(const pl_h2_t *h2);
/* A call on this connection authenticated: the larger inbound budget. */
void pl_h2_mark_authenticated(pl_h2_t *h2);
/* When the oldest incomplete request message began (0: none), and ending
 * the calls whose message began at or before a time (message_timeout_ms). */
int64_t pl_h2_oldest_partial_since(const pl_h2_t *h2);
void pl_h2_expire_partials(pl_h2_t *h2, int64_t begun_before_ms);

/* ---- for calls ---- */
pl_server_t *pl_h2_server(const pl_h2_t *h2);
pl_conn_t *pl_h2_conn(const pl_h2_t *h2);
/* with_body: attach a data provider that reads from the call. */
int pl_h2_submit_response(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n, bool with_body);
int pl_h2_submit_trailers(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n);
void pl_h2_resume(pl_h2_t *h2, int32_t stream_id);
void pl_h2_reset(pl_h2_t *h2, int32_t stream_id, uint32_t error_code);
/* Opens the flow-control window by n processed bytes. */
void pl_h2_consume(pl_h2_t *h2, int32_t stream_id, size_t n);
/* Schedules a flush of queued frames. */
void pl_h2_kick(pl_h2_t *h2);

#endif
