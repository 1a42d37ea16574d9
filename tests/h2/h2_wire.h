/* h2_wire.h — a raw HTTP/2 client for attack tests: frames built byte by
 * byte (so tests can send what no well-behaved client would), read back one
 * at a time, response header blocks decoded with nghttp2's HPACK inflater;
 * plus what every attack test measures: the server's RSS over time and a
 * well-behaved client that keeps calling during the attack. */
#ifndef PL_TESTS_H2_WIRE_H
#define PL_TESTS_H2_WIRE_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cases.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

/* ---- byte buffers ---- */
typedef struct h2w_buf {
    uint8_t *data;
    size_t len, cap;
} h2w_buf_t;

void h2w_buf_put(h2w_buf_t *b, const void *data, size_t len);
void h2w_buf_reset(h2w_buf_t *b);
void h2w_buf_free(h2w_buf_t *b);

/* One frame appended to b. */
void h2w_frame(h2w_buf_t *b, uint8_t type, uint8_t flags, uint32_t stream_id, const void *payload, size_t len);
/* A header field as an HPACK literal without indexing (no Huffman). */
void h2w_hpack_literal(h2w_buf_t *b, const char *name, const char *value);
/* The header block of a gRPC POST to path (no metadata beyond the required). */
void h2w_grpc_request_block(h2w_buf_t *b, const char *path);
/* A gRPC length-prefixed message (uncompressed). */
void h2w_grpc_message(h2w_buf_t *b, const void *pb, size_t len);

#define H2W_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

/* ---- connections ---- */
typedef struct h2w_conn {
    int fd;
    SSL *ssl;
    uint8_t *rbuf;
    size_t rlen, rcap;
    nghttp2_hd_inflater *inflater;
    bool is_eof;   /* the server closed (FIN) */
    bool is_reset; /* ... or reset the connection */
} h2w_conn_t;

/* TCP to 127.0.0.1:port, from source address src (NULL: any). -1 on failure. */
int h2w_tcp_connect(uint16_t port, const char *src);
/* A connection over fd (plain), or over TLS when ssl is set. */
void h2w_conn_init(h2w_conn_t *c, int fd, SSL *ssl);
void h2w_conn_close(h2w_conn_t *c);
/* Sends the client preface and an empty SETTINGS frame (plus extra settings). */
int h2w_send_preface(h2w_conn_t *c, const nghttp2_settings_entry *iv, size_t n);

/* Writes everything within timeout_ms (the socket is non-blocking): bytes
 * written; less than len when the peer stopped taking them or the
 * connection ended. */
size_t h2w_write(h2w_conn_t *c, const void *data, size_t len, int timeout_ms);

typedef struct h2w_frame {
    uint32_t length;
    uint8_t type, flags;
    uint32_t stream_id;
    uint8_t *payload; /* valid until the next read */
} h2w_frame_t;

/* Reads one frame: 1, 0 at end of connection, -1 on timeout. */
int h2w_read_frame(h2w_conn_t *c, h2w_frame_t *f, int timeout_ms);
/* Reads what is there without waiting; returns 1 if a GOAWAY arrived
 * (filled in), 0 otherwise; counts frames by type into counts[0..9] when
 * counts is not NULL. */
typedef struct h2w_goaway {
    bool seen;
    uint32_t last_stream_id;
    uint32_t error_code;
    char debug[128];
} h2w_goaway_t;
int h2w_poll_frames(h2w_conn_t *c, h2w_goaway_t *g, unsigned long *counts);
/* Reads frames until a GOAWAY (filled in) and then the end of the
 * connection. Returns ms from the call until the connection ended, or -1
 * if it was still open after timeout_ms. Acks the server's SETTINGS if
 * ack_settings. */
long h2w_wait_goaway_and_close(h2w_conn_t *c, h2w_goaway_t *g, int timeout_ms);
/* Finds a header in a HEADERS frame's block (decoded with the connection's
 * inflater; CONTINUATION is not expected from our server). */
bool h2w_find_header(h2w_conn_t *c, const h2w_frame_t *f, const char *name, char *value, size_t value_len);

const char *h2w_error_name(uint32_t code);

/* Measuring the server process: tests/lib/cases.h. */

/* A well-behaved client: EmptyCall over its own h2c (or TLS) connection in a
 * loop, from the default source address, until stopped. */
typedef struct h2w_good_stats {
    unsigned long ok, failed;
    long max_latency_ms;
    char last_error[200];
} h2w_good_stats_t;
void h2w_good_start(uint16_t port);
/* The well-behaved client calls grpc.health.v1.Health/Check instead (for
 * servers without the interop TestService). */
void h2w_good_use_health(bool on);
/* ... and connects over TLS (ALPN h2, name "localhost"), trusting ca_file. */
void h2w_good_use_tls(const char *ca_file);
/* A TLS client handshake on a connected socket (ALPN h2, name "localhost",
 * verified against ca_file): the SSL, or NULL. */
SSL *h2w_tls_handshake(int fd, const char *ca_file);
h2w_good_stats_t h2w_good_stop(void);

#endif
