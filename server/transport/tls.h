/* tls.h — the server's TLS context: TLS 1.2/1.3 only, AEAD suites with
 * forward secrecy, ALPN "h2" required (a ClientHello without ALPN, or
 * without "h2" in it, fails the handshake), optional client certificates
 * (mTLS), small per-connection buffers. */
#ifndef PL_SERVER_TRANSPORT_TLS_H
#define PL_SERVER_TRANSPORT_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* client_ca_file may be NULL (no client certificates asked for); when set,
 * a client without a certificate signed by it fails the handshake. NULL
 * with a message in err on failure (unreadable file, key mismatch). */
SSL_CTX *pl_tls_server_ctx_new(const char *cert_file, const char *key_file, const char *client_ca_file, char *err,
                               size_t err_len);

/* "subject CN=..., serial 0A1B..., expires ..." of the context's certificate. */
void pl_tls_describe(SSL_CTX *ctx, char *out, size_t len);

/* The OpenSSL error queue as one line (drains the queue). */
void pl_tls_error_string(char *out, size_t len);

#endif
