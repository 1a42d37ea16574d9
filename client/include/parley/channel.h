/* channel.h — a client connection to a gRPC server (h2c or TLS with ALPN
 * h2), on which the generated client stubs make calls.
 *
 * Threading: a channel and its calls belong to one thread at a time. Calls
 * block, driving the connection's I/O themselves (pl_channel_pump), so
 * several calls can be open at once on one thread and progress together. */
#ifndef PARLEY_CHANNEL_H
#define PARLEY_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rpc.h"

typedef struct pl_channel_opts {
    const char *host; /* name or address to connect to */
    uint16_t port;
    bool use_tls;
    const char *ca_file;       /* PEM roots to trust; NULL: the system's */
    const char *server_name;   /* TLS name to verify and :authority; default host */
    bool insecure;             /* TLS without certificate verification (debugging only) */
    int connect_timeout_ms;    /* default 10000 */
    uint32_t max_recv_message; /* default 4 MiB */
    const char *user_agent;    /* default "parley-c/VERSION" */
} pl_channel_opts_t;

/* Connects (TCP, TLS, HTTP/2 preface). NULL with a reason in err. */
pl_channel_t *pl_channel_connect(const pl_channel_opts_t *opts, char *err, size_t err_len);
/* Closes the connection; open calls end with UNAVAILABLE. */
void pl_channel_free(pl_channel_t *ch);

/* Runs the connection's I/O once, waiting up to timeout_ms (-1: forever)
 * for something to happen. 0, or -1 once the connection is gone. */
int pl_channel_pump(pl_channel_t *ch, int timeout_ms);
bool pl_channel_is_alive(const pl_channel_t *ch);
/* Why the connection ended ("" while alive). */
const char *pl_channel_error(const pl_channel_t *ch);
/* Sends a PING and waits for its ACK; round-trip time in microseconds or -1. */
long pl_channel_ping(pl_channel_t *ch, int timeout_ms);

/* ---- driving channels from an event loop (many channels, one thread) ----
 * Watch pl_channel_fd() for reading (and writing while
 * pl_channel_wants_write()), call pl_channel_pump(ch, 0) when it is ready,
 * then take responses with pl_ccall_try_recv. Sends queue without waiting
 * below 1 MiB of unsent request bytes per call. */
int pl_channel_fd(const pl_channel_t *ch);
bool pl_channel_wants_write(const pl_channel_t *ch);
#define PL_CCALL_PENDING 2
/* Like pl_ccall_recv without waiting: 1 a message, 0 the end (OK), -1 the
 * call failed, PL_CCALL_PENDING nothing yet. */
int pl_ccall_try_recv(pl_ccall_t *c, void *msg);
/* The status is in and every message was taken. */
bool pl_ccall_is_done(const pl_ccall_t *c);
/* Like pl_ccall_send without ever waiting: the message is queued whatever
 * the flow control says (watch pl_ccall_send_buffered to stay bounded).
 * 0, or -1 when the call has ended. */
int pl_ccall_send_nowait(pl_ccall_t *c, const void *msg);
/* Request bytes queued on the call and not yet handed to the connection. */
size_t pl_ccall_send_buffered(const pl_ccall_t *c);
/* Submits a PING without waiting for its ACK: 0, or -1 if the connection is
 * gone. pl_channel_ping_acked_usec() then tells when the last ACK came
 * (monotonic, pl_now_usec(); 0 before the first). */
int pl_channel_ping_send(pl_channel_t *ch);
int64_t pl_channel_ping_acked_usec(const pl_channel_t *ch);

/* Metadata a finished or ongoing call received (valid until pl_ccall_free). */
const pl_metadata_t *pl_ccall_initial_metadata(const pl_ccall_t *c);
const pl_metadata_t *pl_ccall_trailing_metadata(const pl_ccall_t *c);
/* Compress the following request messages (only if the call started with
 * pl_call_opts_t.compress, which announces grpc-encoding: gzip). */
void pl_ccall_set_compression(pl_ccall_t *c, bool on);
/* True if the last received message had the compressed flag set. */
bool pl_ccall_last_was_compressed(const pl_ccall_t *c);

#endif
