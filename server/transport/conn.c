/* conn.c — socket/TLS I/O for one connection, feeding its session
 * (pl_session_ops_t: HTTP/2 in parleyd).
 *
 * Every entry point (event callbacks and the functions other modules call)
 * brackets its work with conn_enter/conn_leave: a close requested anywhere
 * inside is carried out by the outermost conn_leave, so no code ever touches
 * a freed connection. */
#include "transport/conn.h"

#include <arpa/inet.h>

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

#include "runtime/clock.h"
#include "runtime/errors.h"
#include "runtime/sockio.h"

/* Reads per readiness event before yielding to other connections. */
#define READS_PER_EVENT 8
/* How long a finished connection waits for the peer's FIN (lingering close). */
#define LINGER_MS 2000
/* Flush passes in a row before leaving further kicks to the loop. */
#define FLUSH_PASSES 4

struct pl_conn {
    pl_worker_t *worker;
    int fd;
    SSL *ssl;
    const pl_session_ops_t *ops;
    pl_session_t *session;
    struct event *rev, *wev, *timer;
    pl_conn_t *next, *prev;

    uint8_t *out; /* bytes the socket did not take yet */
    size_t out_len, out_off;
    int64_t out_progress_ms;     /* last time the socket took some of out */
    int64_t stall_since_ms;      /* output blocked (socket full or no flow-control credit) since; 0: flowing */
    int64_t incomplete_since_ms; /* as last seen from ops->incomplete_since */
    int64_t partial_since_ms;    /* as last seen from ops->partial_since */
    pl_addr_slot_t addr_slot;    /* this connection's count in the per-address table */

    uint8_t peer_addr[16]; /* IPv4 (first 4 bytes) or IPv6 */
    uint8_t peer_family;   /* AF_INET, AF_INET6 or 0 */

    int64_t opened_ms;
    int64_t last_read_ms;
    int64_t ping_sent_ms;    /* 0: no keepalive ping outstanding */
    int64_t idle_since_ms;   /* when the last call ended; 0 while calls are open */
    int64_t linger_until_ms; /* lingering close deadline */

    unsigned busy;         /* nesting depth of entry points */
    bool is_ready;         /* TLS done and an HTTP/2 frame seen */
    bool is_handshaking;   /* TLS handshake in progress */
    bool is_reading;       /* rev is added */
    bool is_flush_pending; /* a kick is waiting for a flush */
    bool read_wants_write; /* TLS needs writability to make read progress */
    bool close_requested;
    bool is_lingering; /* our side is done: FIN sent, draining the peer */
    bool is_closed;
};

static void conn_flush(pl_conn_t *c);
static void conn_arm_timer(pl_conn_t *c);

pl_worker_t *pl_conn_worker(const pl_conn_t *c)
{
    return c->worker;
}

void pl_conn_peer(const pl_conn_t *c, char *buf, size_t len)
{
    if (!c->peer_family || !inet_ntop(c->peer_family, c->peer_addr, buf, (socklen_t)len))
        snprintf(buf, len, "unknown");
}
pl_conn_t *pl_conn_next(const pl_conn_t *c)
{
    return c->next;
}
pl_conn_t *pl_conn_prev(const pl_conn_t *c)
{
    return c->prev;
}
void pl_conn_set_next(pl_conn_t *c, pl_conn_t *n)
{
    c->next = n;
}
void pl_conn_set_prev(pl_conn_t *c, pl_conn_t *p)
{
    c->prev = p;
}

static void conn_enter(pl_conn_t *c)
{
    c->busy++;
}

/* Ends an entry point; closes the connection if that was requested and this
 * is the outermost one. */
static void conn_leave(pl_conn_t *c)
{
    if (--c->busy == 0 && c->close_requested)
        pl_conn_close(c);
}

static void conn_request_close(pl_conn_t *c)
{
    c->close_requested = true;
}

static bool conn_is_done(const pl_conn_t *c)
{
    return c->close_requested || c->is_closed;
}

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

/* ---- output ---- */

/* Writes what the socket takes; keeps the rest in c->out (which is empty
 * on entry). false on a fatal error. */
static bool conn_write_or_keep(pl_conn_t *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        long n = pl_sock_send(c->fd, c->ssl, data + off, len - off);
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
        c->out_progress_ms = pl_now_msec();
    }
    return true;
}

/* Appends to c->out (the socket is full). */
static bool conn_keep(pl_conn_t *c, const uint8_t *data, size_t len)
{
    uint8_t *grown = realloc(c->out, c->out_len + len);
    if (!grown)
        return false;
    memcpy(grown + c->out_len, data, len);
    c->out = grown;
    c->out_len += len;
    return true;
}

/* Sends c->out; true once it is all gone. */
static bool conn_drain_out(pl_conn_t *c, bool *failed)
{
    while (c->out_off < c->out_len) {
        long n = pl_sock_send(c->fd, c->ssl, c->out + c->out_off, c->out_len - c->out_off);
        if (n == PL_ERR_FULL)
            return false;
        if (n < 0) {
            *failed = true;
            return false;
        }
        c->out_off += (size_t)n;
        c->out_progress_ms = pl_now_msec();
    }
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    return true;
}

/* The HTTP/2 session is over and everything is written. Closing now could
 * make the kernel answer bytes still in flight from the peer (a window
 * update, a ping) with RST, and the peer would then drop the responses it
 * has not read yet. So: FIN our side, read and discard until the peer
 * closes too or LINGER_MS pass, then close (as nginx's lingering_close). */
static void conn_begin_linger(pl_conn_t *c)
{
    if (c->is_lingering || conn_is_done(c))
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

/* A peer that takes none of our output — its socket is full, or it gives
 * no flow-control credit while calls wait to send — is timed from when
 * that began (send_timeout_ms, see on_timer). */
static void conn_update_stall(pl_conn_t *c)
{
    int64_t since = 0;
    if (c->out)
        since = c->out_progress_ms;
    else if (c->session)
        since = c->ops->stalled_since(c->session);
    if (since != c->stall_since_ms) {
        c->stall_since_ms = since;
        conn_arm_timer(c);
    }
}

/* One pass of moving HTTP/2 output to the socket, batching small frames
 * through the worker's write buffer. While the socket is full we stop
 * pulling from nghttp2 and stop reading from the peer: a client that does
 * not read cannot make us buffer. */
static void conn_flush_once(pl_conn_t *c)
{
    bool failed = false;
    if (c->out && !conn_drain_out(c, &failed)) {
        if (failed) {
            conn_request_close(c);
            return;
        }
        event_add(c->wev, NULL);
        conn_set_reading(c, false);
        conn_update_stall(c);
        return;
    }
    size_t cap, used = 0;
    uint8_t *tx = pl_worker_tx_buf(c->worker, &cap);
    for (;;) {
        const uint8_t *data;
        long n = c->ops->send(c->session, &data);
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
            if (c->out) { /* the socket is full: keep this chunk, stop pulling */
                if (!conn_keep(c, data, (size_t)n))
                    conn_request_close(c);
                break;
            }
            if ((size_t)n > cap) { /* a chunk larger than the buffer goes out alone */
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
        conn_update_stall(c);
        return;
    }
    if (!c->read_wants_write)
        event_del(c->wev);
    conn_set_reading(c, true);
    if (!c->ops->wants_io(c->session)) {
        conn_begin_linger(c);
        return;
    }
    conn_update_stall(c);
}

/* Flushes now, which serves any pending kick; a kick made during the flush
 * (a call reacting to a frame we sent) gets another pass. */
static void conn_flush(pl_conn_t *c)
{
    for (int pass = 0; pass < FLUSH_PASSES; pass++) {
        if (conn_is_done(c) || c->is_handshaking || c->is_lingering || !c->session)
            return;
        c->is_flush_pending = false;
        conn_flush_once(c);
        if (!c->is_flush_pending || c->out)
            return;
    }
    event_active(c->wev, EV_WRITE, 1); /* still kicked: leave it to the loop */
}

void pl_conn_kick(pl_conn_t *c)
{
    if (conn_is_done(c) || c->is_flush_pending || c->is_handshaking || c->is_lingering)
        return;
    c->is_flush_pending = true;
    event_active(c->wev, EV_WRITE, 1);
}

/* ---- input ---- */

static void conn_start_session(pl_conn_t *c)
{
    c->session = c->ops->open(c, pl_worker_server(c->worker));
    if (!c->session) {
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
        const unsigned char *proto;
        unsigned proto_len;
        SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
        if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) { /* tls.c refuses these; never serve them */
            conn_request_close(c);
            return;
        }
        c->is_handshaking = false;
        event_del(c->wev);
        conn_set_reading(c, true);
        conn_start_session(c);
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        event_del(c->wev);
        conn_set_reading(c, true);
        return;
    case SSL_ERROR_WANT_WRITE: event_add(c->wev, NULL); return;
    default: /* bad client hello, no ALPN h2, ...: nothing to say in HTTP/2 */ conn_request_close(c); return;
    }
}

static void conn_read_some(pl_conn_t *c)
{
    size_t cap;
    uint8_t *buf = pl_worker_rx_buf(c->worker, &cap);
    for (int i = 0; i < READS_PER_EVENT && !conn_is_done(c); i++) {
        bool wants_write = false;
        long n = pl_sock_recv(c->fd, c->ssl, buf, cap, &wants_write);
        if (wants_write) { /* TLS must write (e.g. a key update) before reading on */
            c->read_wants_write = true;
            event_add(c->wev, NULL);
        }
        if (n == PL_ERR_FULL)
            break;
        if (n <= 0) { /* EOF or error: nothing more will arrive */
            conn_request_close(c);
            return;
        }
        c->last_read_ms = pl_now_msec();
        if (c->ops->recv(c->session, buf, (size_t)n) != 0) {
            /* a fatal protocol error: send what nghttp2 queued (GOAWAY), then go */
            conn_flush(c);
            conn_request_close(c);
            return;
        }
        int64_t since = c->ops->incomplete_since(c->session);
        int64_t partial = c->ops->partial_since(c->session);
        if (since != c->incomplete_since_ms || partial != c->partial_since_ms) {
            c->incomplete_since_ms = since;
            c->partial_since_ms = partial;
            conn_arm_timer(c);
        }
        if ((size_t)n < cap && !(c->ssl && SSL_pending(c->ssl)))
            break;
        if (c->out) /* the peer is not reading its responses: stop */
            break;
    }
    conn_flush(c);
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
        conn_request_close(c); /* EOF or error: the peer is done too */
        return;
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    conn_enter(c);
    if (c->is_lingering)
        conn_linger_read(c);
    else if (c->is_handshaking)
        conn_handshake(c);
    else
        conn_read_some(c);
    conn_leave(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    conn_enter(c);
    if (c->is_handshaking) {
        conn_handshake(c);
    } else if (!c->is_lingering) {
        if (c->read_wants_write) {
            c->read_wants_write = false;
            conn_read_some(c);
        }
        conn_flush(c);
    }
    conn_leave(c);
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

static void conn_arm_timer(pl_conn_t *c)
{
    if (conn_is_done(c))
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
        if (c->incomplete_since_ms && !c->out) /* while we do not read, the send timeout applies */
            due = min_deadline(due, c->incomplete_since_ms + cfg->header_timeout_ms);
        if (c->partial_since_ms)
            due = min_deadline(due, c->partial_since_ms + cfg->message_timeout_ms);
    }
    if (c->stall_since_ms && !c->is_lingering)
        due = min_deadline(due, c->stall_since_ms + cfg->send_timeout_ms);
    if (due == 0)
        return;
    int64_t wait = due - pl_now_msec();
    if (wait < 1)
        wait = 1;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_conn_t *c = arg;
    const pl_server_config_t *cfg = pl_server_config(pl_worker_server(c->worker));
    int64_t now = pl_now_msec();
    conn_enter(c);
    if (c->is_lingering) {
        if (now >= c->linger_until_ms)
            conn_request_close(c);
    } else if (c->stall_since_ms && now - c->stall_since_ms >= cfg->send_timeout_ms) {
        /* a slow reader: its socket is full (no room even for a GOAWAY), or
         * it gives no flow-control credit while calls wait */
        if (c->out || !c->session) {
            conn_request_close(c);
        } else {
            c->ops->defend(c->session, PL_DEFENCE_NO_CREDIT, "no flow-control credit for send_timeout_ms",
                           "no flow-control credit");
            conn_flush(c);
        }
    } else if (!c->is_ready) {
        if (now - c->opened_ms >= cfg->handshake_timeout_ms)
            conn_request_close(c); /* slowloris: no TLS/h2 preface in time */
    } else if (c->incomplete_since_ms && !c->out && now - c->incomplete_since_ms >= cfg->header_timeout_ms) {
        /* slowloris after the preface: a frame header or request header
         * block trickled in more slowly than header_timeout_ms */
        c->incomplete_since_ms = 0;
        c->ops->defend(c->session, PL_DEFENCE_SLOW_HEADERS, "a frame or header block slower than header_timeout_ms",
                       "request headers too slow");
        conn_flush(c);
    } else if (c->ping_sent_ms && now - c->ping_sent_ms >= cfg->keepalive_timeout_ms) {
        conn_request_close(c); /* the peer stopped answering: a dead link */
    } else if (c->idle_since_ms && cfg->idle_timeout_ms > 0 && now - c->idle_since_ms >= cfg->idle_timeout_ms) {
        c->ops->goaway(c->session);
        c->idle_since_ms = 0;
        conn_flush(c);
    } else if (!c->ping_sent_ms && cfg->keepalive_time_ms > 0 && now - c->last_read_ms >= cfg->keepalive_time_ms) {
        c->ops->ping(c->session);
        c->ping_sent_ms = now;
        conn_flush(c);
    }
    if (c->session && c->partial_since_ms && now - c->partial_since_ms >= cfg->message_timeout_ms) {
        /* request messages begun long ago and still not complete: those
         * calls end (RESOURCE_EXHAUSTED), their buffers go */
        c->ops->expire_partials(c->session, now - cfg->message_timeout_ms);
        c->partial_since_ms = c->ops->partial_since(c->session);
        conn_flush(c);
    }
    conn_arm_timer(c);
    conn_leave(c);
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
    bool has_calls = c->ops->has_calls(c->session);
    if (has_calls && c->idle_since_ms) {
        c->idle_since_ms = 0;
    } else if (!has_calls && !c->idle_since_ms && c->is_ready) {
        c->idle_since_ms = pl_now_msec();
        conn_arm_timer(c);
    }
}

/* ---- lifecycle ---- */

int pl_conn_new(pl_worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
    pl_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return PL_ERR_NOMEM;
    if (peer && peer->sa_family == AF_INET && peer_len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(c->peer_addr, &((const struct sockaddr_in *)peer)->sin_addr, 4);
        c->peer_family = AF_INET;
    } else if (peer && peer->sa_family == AF_INET6 && peer_len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        memcpy(c->peer_addr, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
        c->peer_family = AF_INET6;
    }
    if (!pl_server_conn_admit(pl_worker_server(w), peer, peer ? (unsigned)peer_len : 0, &c->addr_slot)) {
        free(c);
        return PL_ERR_LIMIT;
    }
    c->worker = w;
    c->ops = pl_server_session(pl_worker_server(w));
    c->fd = fd;
    c->opened_ms = c->last_read_ms = pl_now_msec();
    struct event_base *base = pl_worker_base(w);
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(base, fd, EV_WRITE, on_writable, c);
    c->timer = evtimer_new(base, on_timer, c);
    SSL_CTX *tls = pl_server_tls_ctx(pl_worker_server(w)); /* valid until this callback returns */
    if (!c->rev || !c->wev || !c->timer)
        goto fail;
    if (tls) {
        c->ssl = SSL_new(tls);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1)
            goto fail;
        SSL_set_accept_state(c->ssl);
        c->is_handshaking = true;
    }
    pl_worker_conn_added(w, c);
    conn_enter(c);
    conn_set_reading(c, true);
    conn_arm_timer(c);
    if (!tls)
        conn_start_session(c);
    conn_leave(c); /* may already close it: fd is ours either way */
    return 0;
fail:
    pl_server_conn_release(pl_worker_server(w), &c->addr_slot);
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->timer)
        event_free(c->timer);
    free(c);
    return PL_ERR_NOMEM;
}

void pl_conn_close(pl_conn_t *c)
{
    if (c->is_closed)
        return;
    if (c->busy) { /* inside an entry point: the outermost one closes */
        c->close_requested = true;
        return;
    }
    c->is_closed = true;
    c->busy++; /* calls reacting to their cancellation must not re-enter a close */
    if (c->session)
        c->ops->close(c->session); /* calls learn they are cancelled; handlers may keep refs */
    c->session = NULL;
    if (c->ssl)
        SSL_free(c->ssl);
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    close(c->fd);
    free(c->out);
    pl_server_conn_release(pl_worker_server(c->worker), &c->addr_slot);
    pl_worker_conn_removed(c->worker, c);
    free(c);
}

void pl_conn_start_drain(pl_conn_t *c)
{
    conn_enter(c);
    if (!c->session) /* still in the TLS handshake: nothing to drain */
        conn_request_close(c);
    else if (!c->is_lingering) {
        c->ops->shutdown_notice(c->session);
        conn_flush(c);
    }
    conn_leave(c);
}

void pl_conn_final_goaway(pl_conn_t *c)
{
    conn_enter(c);
    if (c->session && !c->is_lingering && !conn_is_done(c)) {
        c->ops->goaway(c->session);
        conn_flush(c);
    }
    conn_leave(c);
}

void pl_conn_abort(pl_conn_t *c)
{
    conn_enter(c);
    if (c->session && !c->is_lingering && !conn_is_done(c)) {
        c->ops->abort_calls(c->session);
        conn_flush(c);
    }
    conn_request_close(c);
    conn_leave(c);
}
