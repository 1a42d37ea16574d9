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
    const char *host;         /* name or address to connect to */
    uint16_t port;
    bool use_tls;
    const char *ca_file;      /* PEM roots to trust; NULL: the system's */
    const char *server_name;  /* TLS name to verify and :authority; default host */
    bool insecure;            /* TLS without certificate verification (debugging only) */
    int connect_timeout_ms;   /* default 10000 */
    uint32_t max_recv_message;/* default 4 MiB */
    const char *user_agent;   /* default "parley-c/VERSION" */
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

/* Metadata a finished or ongoing call received (valid until pl_ccall_free). */
const pl_metadata_t *pl_ccall_initial_metadata(const pl_ccall_t *c);
const pl_metadata_t *pl_ccall_trailing_metadata(const pl_ccall_t *c);
/* Compress the following request messages (only if the call started with
 * pl_call_opts_t.compress, which announces grpc-encoding: gzip). */
void pl_ccall_set_compression(pl_ccall_t *c, bool on);
/* True if the last received message had the compressed flag set. */
bool pl_ccall_last_was_compressed(const pl_ccall_t *c);

#endif
