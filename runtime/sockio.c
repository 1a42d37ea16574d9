/* sockio.c — plain and TLS socket I/O with a single error convention. */
#include "runtime/sockio.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "runtime/errors.h"

long pl_sock_recv(int fd, SSL *ssl, uint8_t *buf, size_t len, bool *wants_write)
{
    if (len > INT32_MAX)
        len = INT32_MAX;
    if (ssl) {
        ERR_clear_error();
        int n = SSL_read(ssl, buf, (int)len);
        if (n > 0)
            return n;
        switch (SSL_get_error(ssl, n)) {
        case SSL_ERROR_WANT_READ: return PL_ERR_FULL;
        case SSL_ERROR_WANT_WRITE:
            if (wants_write)
                *wants_write = true;
            return PL_ERR_FULL;
        case SSL_ERROR_ZERO_RETURN: return 0;
        default: return PL_ERR_IO;
        }
    }
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? PL_ERR_FULL : PL_ERR_IO;
    }
}

long pl_sock_send(int fd, SSL *ssl, const uint8_t *buf, size_t len)
{
    if (len > INT32_MAX)
        len = INT32_MAX;
    if (ssl) {
        ERR_clear_error();
        int n = SSL_write(ssl, buf, (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(ssl, n);
        return (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? PL_ERR_FULL : PL_ERR_IO;
    }
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? PL_ERR_FULL : PL_ERR_IO;
    }
}
