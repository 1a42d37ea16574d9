/* conn.c — socket/TLS I/O for one connection, feeding its HTTP/2 session. */
#include "transport/conn.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http2/session.h"
#include "runtime/clock.h"
#include "runtime/errors.h"
#include "runtime/sockio.h"

/* Reads per readiness event before yielding to other connections. */
#define READS_PER_EVENT 8
/* How long a finished connection waits for the peer's FIN (lingering close). */
#define LINGER_MS 2000

struct pl_conn {
    pl_worker_t *worker;
    int fd;
    SSL *ssl;
    pl_h2_t *h2;
    struct event *rev, *wev, *timer;
    pl_conn_t *next, *prev;

    uint8_t *out; /* bytes the socket did not take yet */
    size_t out_len, out_off;

    int64_t opened_ms;
    int64_t last_read_ms;
    int64_t ping_sent_ms;  /* 0: no keepalive ping outstanding */
    int64_t idle_since_ms; /* when the last call ended; 0 while calls are open */

    bool is_ready;          /* TLS done and an HTTP/2 frame seen */
    bool is_handshaking;    /* TLS handshake in progress */
    bool is_reading;        /* rev is added */
    bool is_flush_pending;  /* wev activated for a coalesced flush */
    bool read_wants_write;  /* TLS needs writability to make read progress */
    bool in_io;             /* inside on_readable/on_writable: defer close */
    bool close_requested;
    bool is_lingering;      /* our side is done: FIN sent, draining the peer */
    bool is_closed;
    int64_t linger_until_ms;
};

static void conn_arm_timer(pl_conn_t *c);
static void conn_flush(pl_conn_t *c);
static void conn_begin_linger(pl_conn_t *c);

pl_worker_t *pl_conn_worker(const pl_conn_t *c) { return c->worker; }
pl_conn_t *pl_conn_next(const pl_conn_t *c) { return c->next; }
pl_conn_t *pl_conn_prev(const pl_conn_t *c) { return c->prev; }
void pl_conn_set_next(pl_conn_t *c, pl_conn_t *n) { c->next = n; }
void pl_conn_set_prev(pl_conn_t *c, pl_conn_t *p) { c->prev = p; }

static void conn_set_reading(pl_conn_t *c, bool on)
{
    if (on == c->is_reading || c->is_closed)
        return;
    if (on)
        event_add(c->rev, NULL);
    else
        event_del(c->rev);
    c->is_reading = on;
}

/* Requests a close; performed at once unless we are inside this
 * connection's own I/O handler, which finishes it on the way out. */
static void conn_request_close(pl_conn_t *c)
{
    c->close_requested = true;
    if (!c->in_io)
        pl_conn_close(c);
}

static long conn_recv(pl_conn_t *c, uint8_t *buf, size_t len)
{
    bool wants_write = false;
    long n = pl_sock_recv(c->fd, c->ssl, buf, len, &wants_write);
    if (wants_write) { /* TLS must write (e.g. a key update) before reading on */
        c->read_wants_write = true;
        event_add(c->wev, NULL);
    }
    return n;
}

static long conn_send(pl_conn_t *c, const uint8_t *buf, size_t len)
{
    return pl_sock_send(c->fd, c->ssl, buf, len);
}

/* Writes what the socket takes; keeps the rest in c->out. Returns false on a
 * fatal error. Only called with c->out empty. */
static bool conn_write_or_keep(pl_conn_t *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        long n = conn_send(c, data + off, len - off);
        if (n == PL_ERR_FULL)
            break;
        if (n < 0)
            return false;
        off += (size_t)n;
    }
    if (off < len) {
        c->out = malloc(len - off);
        if (!c->out)
            return false;
        memcpy(c->out, data + off, len - off);
        c->out_len = len - off;
        c->out_off = 0;
    }
    return true;
}

/* Sends c->out; true when it is fully gone. */
static bool conn_drain_out(pl_conn_t *c, bool *failed)
{
    while (c->out_off < c->out_len) {
        long n = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n == PL_ERR_FULL)
            return false;
        if (n < 0) {
            *failed = true;
            return false;
        }
        c->out_off += (size_t)n;
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    return true;
}

/* Moves HTTP/2 output to the socket, batching small frames through the
 * worker's write buffer. Stops pulling from nghttp2 while the socket is
 * full, and stops reading from the peer until it drains: a client that does
 * not read cannot make us buffer. */
static void conn_flush(pl_conn_t *c)
{
    if (c->is_closed || c->is_handshaking || c->is_lingering)
        return;
    bool failed = false;
    if (c->out && !conn_drain_out(c, &failed)) {
        if (failed) {
            conn_request_close(c);
            return;
        }
        event_add(c->wev, NULL);
        conn_set_reading(c, false);
        return;
    }
    size_t cap, used = 0;
    uint8_t *tx = pl_worker_tx_buf(c->worker, &cap);
    for (;;) {
        const uint8_t *data;
        long n = pl_h2_send(c->h2, &data);
        if (n < 0) {
            conn_request_close(c);
            return;
        }
        if (n == 0)
            break;
        if (used + (size_t)n > cap) {
            if (used && !conn_write_or_keep(c, tx, used)) {
                conn_request_close(c);
                return;
            }
            used = 0;
            if (c->out) { /* socket full: keep this chunk too, stop pulling */
                uint8_t *grown = realloc(c->out, c->out_len + (size_t)n);
                if (!grown) {
                    conn_request_close(c);
                    return;
                }
                memcpy(grown + c->out_len, data, (size_t)n);
                c->out = grown;
                c->out_len += (size_t)n;
                break;
            }
            if ((size_t)n > cap) {
                if (!conn_write_or_keep(c, data, (size_t)n)) {
                    conn_request_close(c);
                    return;
                }
                if (c->out)
                    break;
                continue;
            }
        }
        memcpy(tx + used, data, (size_t)n);
        used += (size_t)n;
    }
    if (used && !conn_write_or_keep(c, tx, used)) {
        conn_request_close(c);
        return;
    }
    if (c->out) {
        event_add(c->wev, NULL);
        conn_set_reading(c, false);
        return;
    }
    if (!c->read_wants_write)
        event_del(c->wev);
    conn_set_reading(c, true);
    if (!pl_h2_wants_io(c->h2))
        conn_begin_linger(c);
}

/* The HTTP/2 session is over and everything is written. Closing now could
 * make the kernel answer bytes still in flight from the peer (a window
 * update, a ping) with RST, and the peer would then drop the responses it
 * has not read yet. So: FIN our side, read and discard until the peer
 * closes too or LINGER_MS pass, then close (as nginx's lingering_close). */
static void conn_begin_linger(pl_conn_t *c)
{
    if (c->is_lingering || c->is_closed)
        return;
    c->is_lingering = true;
    if (c->ssl)
        SSL_shutdown(c->ssl); /* close_notify; we do not wait for the peer's */
    if (shutdown(c->fd, SHUT_WR) != 0) {
        conn_request_close(c);
        return;
    }
    event_del(c->wev);
    conn_set_reading(c, true);
    c->linger_until_ms = pl_now_msec() + LINGER_MS;
    conn_arm_timer(c);
}

static void conn_linger_read(pl_conn_t *c)
{
    size_t cap;
    uint8_t *buf = pl_worker_rx_buf(c->worker, &cap);
    for (int i = 0; i < READS_PER_EVENT; i++) {
        ssize_t n = recv(c->fd, buf, cap, 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        conn_request_close(c); /* EOF or error: the peer is done */
        return;
    }
}

/* ---- TLS handshake ---- */

static void conn_start_h2(pl_conn_t *c)
{
    c->h2 = pl_h2_new(c, pl_worker_server(c->worker));
    if (!c->h2) {
        conn_request_close(c);
        return;
    }
    conn_flush(c);
}

static void conn_handshake(pl_conn_t *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->is_handshaking = false;
        event_del(c->wev);
        conn_set_reading(c, true);
        conn_start_h2(c);
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        event_del(c->wev);
        conn_set_reading(c, true);
        return;
    case SSL_ERROR_WANT_WRITE:
        event_add(c->wev, NULL);
        return;
    default: /* bad client hello, no ALPN h2, ...: nothing to say in HTTP/2 */
        conn_request_close(c);
        return;
    }
}

/* ---- events ---- */

static void conn_read_some(pl_conn_t *c)
{
    size_t cap;
    uint8_t *buf = pl_worker_rx_buf(c->worker, &cap);
    for (int i = 0; i < READS_PER_EVENT && !c->close_requested; i++) {
        long n = conn_recv(c, buf, cap);
        if (n == PL_ERR_FULL)
            break;
        if (n <= 0) { /* EOF or error: nothing more will arrive */
            conn_request_close(c);
            return;
        }
        c->last_read_ms = pl_now_msec();
        if (pl_h2_recv(c->h2, buf, (size_t)n) != 0) {
            /* protocol error: nghttp2 queued a GOAWAY; try to send it */
            conn_flush(c);
            conn_request_close(c);
            return;
        }
        if ((size_t)n < cap && !(c->ssl && SSL_pending(c->ssl)))
            break;
        if (c->out) /* the peer is not reading its responses: stop */
            break;
    }
    conn_flush(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    c->in_io = true;
    if (c->is_lingering)
        conn_linger_read(c);
    else if (c->is_handshaking)
        conn_handshake(c);
    else
        conn_read_some(c);
    c->in_io = false;
    if (c->close_requested)
        pl_conn_close(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    c->in_io = true;
    c->is_flush_pending = false;
    if (c->is_lingering) {
        /* nothing more to write */
    } else if (c->is_handshaking) {
        conn_handshake(c);
    } else {
        if (c->read_wants_write) {
            c->read_wants_write = false;
            conn_read_some(c);
        }
        conn_flush(c);
    }
    c->in_io = false;
    if (c->close_requested)
        pl_conn_close(c);
}

void pl_conn_kick(pl_conn_t *c)
{
    if (c->is_closed || c->is_flush_pending || c->is_handshaking || c->is_lingering)
        return;
    c->is_flush_pending = true;
    event_active(c->wev, EV_WRITE, 1);
}

/* ---- timers: one per connection, re-armed for the nearest deadline ---- */

static int64_t min_deadline(int64_t a, int64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return a < b ? a : b;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    const pl_server_config_t *cfg = pl_server_config(pl_worker_server(c->worker));
    int64_t now = pl_now_msec();
    if (c->is_lingering) {
        if (now >= c->linger_until_ms) {
            pl_conn_close(c);
            return;
        }
    } else if (!c->is_ready) {
        if (now - c->opened_ms >= cfg->handshake_timeout_ms) {
            pl_conn_close(c); /* slowloris: no TLS/h2 preface in time */
            return;
        }
    } else if (c->ping_sent_ms && now - c->ping_sent_ms >= cfg->keepalive_timeout_ms) {
        pl_conn_close(c); /* the peer stopped answering: dead link */
        return;
    } else if (c->idle_since_ms && cfg->idle_timeout_ms > 0 && now - c->idle_since_ms >= cfg->idle_timeout_ms) {
        pl_h2_goaway(c->h2, 0);
        c->idle_since_ms = 0;
        conn_flush(c);
        if (c->is_closed)
            return;
    } else if (!c->ping_sent_ms && cfg->keepalive_time_ms > 0 && now - c->last_read_ms >= cfg->keepalive_time_ms) {
        pl_h2_ping(c->h2);
        c->ping_sent_ms = now;
        conn_flush(c);
        if (c->is_closed)
            return;
    }
    conn_arm_timer(c);
}

static void conn_arm_timer(pl_conn_t *c)
{
    if (c->is_closed)
        return;
    const pl_server_config_t *cfg = pl_server_config(pl_worker_server(c->worker));
    int64_t due = 0;
    if (c->is_lingering) {
        due = c->linger_until_ms;
    } else if (!c->is_ready) {
        due = c->opened_ms + cfg->handshake_timeout_ms;
    } else {
        if (c->ping_sent_ms)
            due = min_deadline(due, c->ping_sent_ms + cfg->keepalive_timeout_ms);
        else if (cfg->keepalive_time_ms > 0)
            due = min_deadline(due, c->last_read_ms + cfg->keepalive_time_ms);
        if (c->idle_since_ms && cfg->idle_timeout_ms > 0)
            due = min_deadline(due, c->idle_since_ms + cfg->idle_timeout_ms);
    }
    if (due == 0)
        return;
    int64_t wait = due - pl_now_msec();
    if (wait < 1)
        wait = 1;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
}

void pl_conn_on_frame(pl_conn_t *c)
{
    if (!c->is_ready) {
        c->is_ready = true;
        c->idle_since_ms = pl_now_msec();
        conn_arm_timer(c);
    }
}

void pl_conn_on_ping_ack(pl_conn_t *c)
{
    c->ping_sent_ms = 0;
    conn_arm_timer(c);
}

void pl_conn_on_calls_changed(pl_conn_t *c)
{
    bool has_calls = pl_h2_has_calls(c->h2);
    if (has_calls && c->idle_since_ms) {
        c->idle_since_ms = 0;
    } else if (!has_calls && !c->idle_since_ms && c->is_ready) {
        c->idle_since_ms = pl_now_msec();
        conn_arm_timer(c);
    }
}

/* ---- lifecycle ---- */

pl_conn_t *pl_conn_new(pl_worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    (void)peer;
    (void)peer_len;
    pl_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->worker = w;
    c->fd = fd;
    c->opened_ms = c->last_read_ms = pl_now_msec();
    struct event_base *base = pl_worker_base(w);
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(base, fd, EV_WRITE, on_writable, c);
    c->timer = evtimer_new(base, on_timer, c);
    if (!c->rev || !c->wev || !c->timer)
        goto fail;
    SSL_CTX *tls = pl_worker_tls_ctx(w);
    if (tls) {
        c->ssl = SSL_new(tls);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
            goto fail;
        SSL_set_accept_state(c->ssl);
        c->is_handshaking = true;
    }
    pl_worker_conn_added(w, c);
    conn_set_reading(c, true);
    conn_arm_timer(c);
    if (!tls) {
        c->h2 = pl_h2_new(c, pl_worker_server(w));
        if (!c->h2) {
            c->fd = -1; /* caller closes fd */
            pl_conn_close(c);
            return NULL;
        }
        conn_flush(c);
    }
    return c;
fail:
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->timer)
        event_free(c->timer);
    free(c);
    return NULL;
}

void pl_conn_close(pl_conn_t *c)
{
    if (c->is_closed)
        return;
    c->is_closed = true;
    /* calls learn they are cancelled; their handlers may still hold refs */
    if (c->h2)
        pl_h2_free(c->h2);
    c->h2 = NULL;
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    if (c->fd >= 0)
        close(c->fd);
    free(c->out);
    pl_worker_conn_removed(c->worker, c);
    free(c);
}

void pl_conn_start_drain(pl_conn_t *c)
{
    if (c->is_lingering)
        return;
    if (!c->h2) { /* still in the TLS handshake: nothing to drain */
        pl_conn_close(c);
        return;
    }
    pl_h2_shutdown_notice(c->h2);
    conn_flush(c);
}

void pl_conn_final_goaway(pl_conn_t *c)
{
    if (!c->h2 || c->is_lingering)
        return;
    pl_h2_goaway(c->h2, 0);
    conn_flush(c);
}

void pl_conn_abort(pl_conn_t *c)
{
    if (c->h2 && !c->is_lingering) {
        pl_h2_abort_calls(c->h2);
        conn_flush(c);
    }
    if (!c->is_closed)
        pl_conn_close(c);
}
