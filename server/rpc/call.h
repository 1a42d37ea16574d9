/* call.h — what a service handler can do with a server call.
 *
 * A call belongs to its worker's thread: handlers run there, and every
 * function here must be called there. Generated wrappers (NAME_reply,
 * NAME_write) cover sending; this header covers the rest: status, metadata,
 * deadlines, cancellation, flow control and keeping a call alive across
 * asynchronous work (pl_call_ref/unref). */
#ifndef PL_SERVER_RPC_CALL_H
#define PL_SERVER_RPC_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rpc.h"

typedef struct pl_worker pl_worker_t;
typedef void (*pl_call_event_fn)(pl_call_t *call, void *user);

/* A handler that keeps using the call after returning (waiting on a
 * database, a timer...) holds a reference; the call is freed when the
 * stream has closed and the last reference is dropped. */
void pl_call_ref(pl_call_t *call);
void pl_call_unref(pl_call_t *call);

/* Per-call state for the handler; free_fn (may be NULL) runs when the call
 * is freed. */
void pl_call_set_user(pl_call_t *call, void *user, void (*free_fn)(void *user));
void *pl_call_user(const pl_call_t *call);

/* Runs once if the call ends before the handler finished it: the client
 * cancelled, the deadline passed, the connection died or the server is
 * shutting down. After it, sends fail with PL_ERR_CLOSED. */
void pl_call_on_cancel(pl_call_t *call, pl_call_event_fn fn);
/* Runs when a send that failed with PL_ERR_FULL may be retried. */
void pl_call_on_writable(pl_call_t *call, pl_call_event_fn fn);

/* A streamed request message that does not decode (not protobuf, or a
 * field over its bound): the raw bytes, what is wrong, and the status the
 * call would otherwise end with. */
typedef void (*pl_call_invalid_fn)(pl_call_t *call, const uint8_t *payload, size_t len, pl_code_t code, const char *why,
                                   void *user);
/* Streaming requests only: bad messages go to fn and the call goes on,
 * instead of ending with INVALID_ARGUMENT (a long-lived stream answers a
 * bad request without losing the good ones around it). */
void pl_call_on_invalid_message(pl_call_t *call, pl_call_invalid_fn fn);

bool pl_call_is_finished(const pl_call_t *call);
const pl_method_t *pl_call_method(const pl_call_t *call);
const pl_metadata_t *pl_call_metadata(const pl_call_t *call);
/* Monotonic deadline in microseconds (pl_now_usec), 0 if none. */
int64_t pl_call_deadline(const pl_call_t *call);
/* True if the last request message arrived compressed. */
bool pl_call_request_was_compressed(const pl_call_t *call);
pl_worker_t *pl_call_worker(const pl_call_t *call);
/* The client's IP address as text (for per-address rate limits); "unknown"
 * once the stream has closed. len >= 46 holds any address. */
void pl_call_peer(const pl_call_t *call, char *buf, size_t len);

/* The call proved who its client is (a valid token): its connection gets
 * the larger budget for incomplete request messages. */
void pl_call_mark_authenticated(pl_call_t *call);

/* Response metadata: initial (before the first message) and trailing. */
int pl_call_add_initial_metadata(pl_call_t *call, const char *key, const void *value, size_t len);
int pl_call_add_trailing_metadata(pl_call_t *call, const char *key, const void *value, size_t len);
/* Compress the following response messages with gzip (when the client
 * accepts gzip; otherwise ignored). */
void pl_call_set_compression(pl_call_t *call, bool on);

/* Runs fn after delay_usec on the call's worker, unless the call is freed
 * first; holds a reference meanwhile. 0 or PL_ERR_NOMEM. */
int pl_call_defer(pl_call_t *call, int64_t delay_usec, pl_call_event_fn fn);

/* Stop/resume delivering streamed request messages; while paused the
 * client's flow-control window closes. */
void pl_call_pause_recv(pl_call_t *call);
void pl_call_resume_recv(pl_call_t *call);

#endif
