/* session.h — the server side of one HTTP/2 connection (nghttp2).
 *
 * Sits between the connection (bytes in, bytes out) and the gRPC calls (one
 * per stream): it configures nghttp2 with Parley's limits, turns frames into
 * call events and answers on the calls' behalf, both through the tables of
 * rpc/call_conn.h (pl_call_ops, pl_call_conn_ops_t): it knows no call's insides. */
#ifndef PL_SERVER_HTTP2_SESSION_H
#define PL_SERVER_HTTP2_SESSION_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/server.h"

typedef struct pl_conn pl_conn_t;
typedef struct pl_call_conn pl_h2_t;

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

/* When the oldest incomplete request message began (0: none), and ending
 * the calls whose message began at or before a time (message_timeout_ms). */
int64_t pl_h2_oldest_partial_since(const pl_h2_t *h2);
void pl_h2_expire_partials(pl_h2_t *h2, int64_t begun_before_ms);

#endif
