/* tls.h — the server's TLS context: TLS 1.2/1.3 only, AEAD suites with
 * forward secrecy, ALPN "h2" required (no common protocol fails the
 * handshake), small per-connection buffers. */
#ifndef PL_SERVER_TRANSPORT_TLS_H
#define PL_SERVER_TRANSPORT_TLS_H

#include <stddef.h>

typedef struct ssl_ctx_st SSL_CTX;

/* NULL with a message in err on failure (unreadable file, key mismatch). */
SSL_CTX *pl_tls_server_ctx_new(const char *cert_file, const char *key_file, char *err, size_t err_len);

/* The OpenSSL error queue as one line (drains the queue). */
void pl_tls_error_string(char *out, size_t len);

#endif
