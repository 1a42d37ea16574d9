/* session.h — the server side of one HTTP/2 connection (nghttp2).
 *
 * Sits between the connection (bytes in, bytes out) and the gRPC calls (one
 * per stream): it configures nghttp2 with Parley's limits, turns frames into
 * call events and answers on the calls' behalf, both through the tables of
 * rpc/call_conn.h (pl_call_ops, pl_call_conn_ops_t): it knows no call's insides. */
#ifndef PL_SERVER_HTTP2_SESSION_H
#define PL_SERVER_HTTP2_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/server.h"

typedef struct pl_call_conn pl_h2_t;

/* What a connection carries in parleyd: pass to pl_server_new. */
extern const pl_session_ops_t pl_h2_session;

#endif
