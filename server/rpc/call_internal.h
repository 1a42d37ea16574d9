/* call_internal.h — how the HTTP/2 session drives a call (one per stream).
 * Not for service handlers: they use rpc/call.h. */
#ifndef PL_SERVER_RPC_CALL_INTERNAL_H
#define PL_SERVER_RPC_CALL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http2/session.h"
#include "rpc/call.h"

pl_call_t *pl_call_new(pl_h2_t *h2, int32_t stream_id);
/* One request header. Never fails the stream: problems are recorded and
 * answered with a status once the headers are complete. */
void pl_call_on_header(pl_call_t *call, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len);
void pl_call_on_headers_end(pl_call_t *call);
void pl_call_on_data(pl_call_t *call, const uint8_t *data, size_t len);
void pl_call_on_remote_end(pl_call_t *call);
/* The stream is gone (error_code 0 after a normal end). Drops the stream's
 * reference: the call may be freed. */
void pl_call_on_stream_close(pl_call_t *call, uint32_t error_code);
/* Fills buf from the response queue for nghttp2's data provider. */
ssize_t pl_call_read_body(pl_call_t *call, uint8_t *buf, size_t len, uint32_t *data_flags);

/* For the connection's budgets (http2/session.c). */
int32_t pl_call_stream_id(const pl_call_t *call);
uint32_t pl_call_queued_bytes(const pl_call_t *call);  /* response bytes not yet given to nghttp2 */
uint32_t pl_call_partial_bytes(const pl_call_t *call); /* of an incomplete request message */
int64_t pl_call_partial_since(const pl_call_t *call);  /* when that message began; 0: none */
/* The connection has room again: a send that failed with PL_ERR_FULL may
 * be retried / held-back input may open the window. */
void pl_call_on_connection_writable(pl_call_t *call);
void pl_call_consume_held_back(pl_call_t *call);
/* Ends the call for its incomplete request message (RESOURCE_EXHAUSTED):
 * why, or NULL for taking longer than message_timeout_ms. */
void pl_call_expire_partial(pl_call_t *call, const char *why);

/* The session's list of open calls. */
pl_call_t *pl_call_next_in_session(const pl_call_t *call);
void pl_call_link(pl_call_t **head, pl_call_t *call);
void pl_call_unlink(pl_call_t **head, pl_call_t *call);

#endif
