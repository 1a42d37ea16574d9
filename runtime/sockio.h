/* sockio.h — non-blocking reads and writes on a socket, in the clear or
 * through an OpenSSL SSL*, with one result convention for both. Shared by
 * the server's connections and the client's channels. */
#ifndef PL_RUNTIME_SOCKIO_H
#define PL_RUNTIME_SOCKIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ssl_st SSL;

/* Bytes read, 0 at end of stream, PL_ERR_FULL when nothing is available
 * (*wants_write set if TLS needs the socket writable first), PL_ERR_IO. */
long pl_sock_recv(int fd, SSL *ssl, uint8_t *buf, size_t len, bool *wants_write);
/* Bytes written, PL_ERR_FULL when the socket is full, PL_ERR_IO. */
long pl_sock_send(int fd, SSL *ssl, const uint8_t *buf, size_t len);

#endif
