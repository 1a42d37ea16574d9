/* http.h — HTTP/2 requests to push providers from a worker's event loop.
 *
 * libcurl's multi interface on the worker's libevent base: requests to one
 * host share one long-lived connection (HTTP/2 streams, TLS with ALPN; h2c
 * with prior knowledge for http:// URLs), so a burst of pushes costs no
 * handshakes. One client per loop; nothing here is thread-safe. */
#ifndef PL_PUSH_HTTP_H
#define PL_PUSH_HTTP_H

#include <stddef.h>

struct event_base;

typedef struct pl_http pl_http_t;

typedef struct pl_http_response {
    long status;       /* 0: no answer (error says why) */
    const char *error; /* transport failure, else NULL */
    const char *body;  /* NUL-terminated, at most 64 KiB kept */
    size_t body_len;
    long retry_after_s; /* the Retry-After header in seconds, -1 if none */
    double seconds;     /* request to answer */
} pl_http_response_t;

typedef void (*pl_http_done_fn)(const pl_http_response_t *r, void *user);

/* ca_file: CA certificates to check servers against (NULL or "": the
 * system's). NULL with a message in err. */
pl_http_t *pl_http_new(struct event_base *base, const char *ca_file, char *err, size_t err_len);
/* Requests still out end with status 0 and error "cancelled". */
void pl_http_free(pl_http_t *h);

/* POSTs body (copied) to url with headers ("Name: value", NULL-terminated;
 * copied); fn runs once, from the loop, never from inside this call. 0, or
 * -1 when it could not be started (fn will not run). */
int pl_http_post(pl_http_t *h, const char *url, const char *const *headers, const char *body, size_t body_len,
                 long timeout_ms, pl_http_done_fn fn, void *user);

/* Requests out now. */
int pl_http_pending(const pl_http_t *h);

#endif
