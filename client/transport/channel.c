/* channel.c — client connection: TCP connect, TLS with ALPN h2, the
 * nghttp2 client session, and the poll-driven pump calls block on. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rpc/client_internal.h"
#include "runtime/clock.h"
#include "runtime/errors.h"
#include "runtime/sockio.h"

#define READ_CHUNK (64 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RECV (4u << 20)
#define MAX_HEADER_LIST (64u << 10)

struct pl_channel {
    int fd;
    SSL_CTX *tls_ctx;
    SSL *ssl;
    nghttp2_session *ng;
    char *authority;
    char *user_agent;
    uint32_t max_recv;
    bool is_alive;
    char error[256];

    uint8_t *out; /* bytes the socket did not take yet */
    size_t out_len, out_off;

    pl_ccall_t **calls;
    size_t call_count, call_cap;
    uint8_t *unary_payload;

    int64_t ping_acked_usec;
};

nghttp2_session *pl_channel_session(pl_channel_t *ch)
{
    return ch->ng;
}
const char *pl_channel_authority(const pl_channel_t *ch)
{
    return ch->authority;
}
const char *pl_channel_scheme(const pl_channel_t *ch)
{
    return ch->ssl ? "https" : "http";
}
const char *pl_channel_user_agent(const pl_channel_t *ch)
{
    return ch->user_agent;
}
uint32_t pl_channel_max_recv(const pl_channel_t *ch)
{
    return ch->max_recv;
}
bool pl_channel_is_alive(const pl_channel_t *ch)
{
    return ch->is_alive;
}
int pl_channel_fd(const pl_channel_t *ch)
{
    return ch->fd;
}

bool pl_channel_wants_write(const pl_channel_t *ch)
{
    return ch->is_alive && (ch->out || nghttp2_session_want_write(ch->ng));
}
const char *pl_channel_error(const pl_channel_t *ch)
{
    return ch->error;
}

void pl_channel_keep_unary_payload(pl_channel_t *ch, uint8_t *payload)
{
    free(ch->unary_payload);
    ch->unary_payload = payload;
}

void pl_channel_track(pl_channel_t *ch, pl_ccall_t *c)
{
    if (ch->call_count == ch->call_cap) {
        size_t cap = ch->call_cap ? ch->call_cap * 2 : 8;
        pl_ccall_t **v = realloc(ch->calls, cap * sizeof(*v));
        if (!v)
            return; /* untracked: it still works, it only misses a lost-connection notice */
        ch->calls = v;
        ch->call_cap = cap;
    }
    ch->calls[ch->call_count++] = c;
}

void pl_channel_untrack(pl_channel_t *ch, pl_ccall_t *c)
{
    for (size_t i = 0; i < ch->call_count; i++)
        if (ch->calls[i] == c) {
            ch->calls[i] = ch->calls[--ch->call_count];
            return;
        }
}

static void channel_lost(pl_channel_t *ch, const char *why)
{
    if (!ch->is_alive)
        return;
    ch->is_alive = false;
    snprintf(ch->error, sizeof(ch->error), "%s", why);
    /* the call list changes as calls react; walk a snapshot */
    size_t n = ch->call_count;
    pl_ccall_t **snap = n ? malloc(n * sizeof(*snap)) : NULL;
    if (snap) {
        memcpy(snap, ch->calls, n * sizeof(*snap));
        for (size_t i = 0; i < n; i++)
            pl_ccall_on_channel_lost(snap[i], why);
        free(snap);
    }
    ch->call_count = 0; /* the calls have detached from us */
}

/* ---- nghttp2 callbacks ---- */

static pl_ccall_t *stream_call(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    pl_ccall_t *c = stream_call(ng, frame->hd.stream_id);
    if (c)
        pl_ccall_on_header(c, frame->headers.cat == NGHTTP2_HCAT_HEADERS, name, namelen, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    pl_channel_t *ch = user_data;
    pl_ccall_t *c;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        c = stream_call(ng, frame->hd.stream_id);
        if (c)
            pl_ccall_on_headers_end(c, frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            c = stream_call(ng, frame->hd.stream_id);
            if (c)
                pl_ccall_on_headers_end(c, true);
        }
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            ch->ping_acked_usec = pl_now_usec();
        break;
    default: break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data)
{
    (void)flags;
    (void)user_data;
    pl_ccall_t *c = stream_call(ng, stream_id);
    if (c)
        pl_ccall_on_data(c, data, len);
    else
        nghttp2_session_consume(ng, stream_id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *user_data)
{
    (void)user_data;
    pl_ccall_t *c = stream_call(ng, stream_id);
    if (c) {
        nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
        pl_ccall_on_stream_close(c, error_code);
    }
    return 0;
}

/* ---- I/O ---- */

static bool write_all_or_keep(pl_channel_t *ch, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        long n = pl_sock_send(ch->fd, ch->ssl, data + off, len - off);
        if (n == PL_ERR_FULL)
            break;
        if (n < 0)
            return false;
        off += (size_t)n;
    }
    if (off < len) {
        uint8_t *grown = realloc(ch->out, ch->out_len + (len - off));
        if (!grown)
            return false;
        memcpy(grown + ch->out_len, data + off, len - off);
        ch->out = grown;
        ch->out_len += len - off;
    }
    return true;
}

void pl_channel_flush(pl_channel_t *ch)
{
    if (!ch->is_alive)
        return;
    while (ch->out_off < ch->out_len) {
        long n = pl_sock_send(ch->fd, ch->ssl, ch->out + ch->out_off, ch->out_len - ch->out_off);
        if (n == PL_ERR_FULL)
            return;
        if (n < 0) {
            channel_lost(ch, "connection lost while writing");
            return;
        }
        ch->out_off += (size_t)n;
    }
    free(ch->out);
    ch->out = NULL;
    ch->out_len = ch->out_off = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(ch->ng, &data);
        if (n < 0) {
            channel_lost(ch, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (!write_all_or_keep(ch, data, (size_t)n)) {
            channel_lost(ch, "connection lost while writing");
            return;
        }
        if (ch->out)
            break; /* socket full: the rest waits for POLLOUT */
    }
}

static void read_available(pl_channel_t *ch)
{
    uint8_t buf[READ_CHUNK];
    for (;;) {
        bool wants_write = false;
        long n = pl_sock_recv(ch->fd, ch->ssl, buf, sizeof(buf), &wants_write);
        if (n == PL_ERR_FULL)
            return;
        if (n == 0) {
            channel_lost(ch, "connection closed by the server");
            return;
        }
        if (n < 0) {
            channel_lost(ch, "connection lost while reading");
            return;
        }
        ssize_t rv = nghttp2_session_mem_recv(ch->ng, buf, (size_t)n);
        if (rv < 0) {
            char why[128];
            snprintf(why, sizeof(why), "HTTP/2 error: %s", nghttp2_strerror((int)rv));
            channel_lost(ch, why);
            return;
        }
    }
}

int pl_channel_pump(pl_channel_t *ch, int timeout_ms)
{
    if (!ch->is_alive)
        return -1;
    pl_channel_flush(ch);
    if (!ch->is_alive)
        return -1;
    if (!nghttp2_session_want_read(ch->ng) && !nghttp2_session_want_write(ch->ng) && !ch->out) {
        channel_lost(ch, "connection closed (GOAWAY)");
        return -1;
    }
    struct pollfd p = {ch->fd, POLLIN, 0};
    if (ch->out || nghttp2_session_want_write(ch->ng))
        p.events |= POLLOUT;
    if (ch->ssl && SSL_pending(ch->ssl) > 0)
        timeout_ms = 0;
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0 && errno != EINTR) {
        channel_lost(ch, strerror(errno));
        return -1;
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) || (ch->ssl && SSL_pending(ch->ssl) > 0))
        read_available(ch);
    pl_channel_flush(ch);
    return ch->is_alive ? 0 : -1;
}

long pl_channel_ping(pl_channel_t *ch, int timeout_ms)
{
    ch->ping_acked_usec = 0;
    int64_t start = pl_now_usec();
    if (nghttp2_submit_ping(ch->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        return -1;
    int64_t deadline = start + (int64_t)timeout_ms * 1000;
    while (!ch->ping_acked_usec) {
        int64_t left = deadline - pl_now_usec();
        if (left <= 0 || pl_channel_pump(ch, (int)(left / 1000) + 1) != 0)
            return -1;
    }
    return (long)(ch->ping_acked_usec - start);
}

int pl_channel_ping_send(pl_channel_t *ch)
{
    if (!ch->is_alive || nghttp2_submit_ping(ch->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        return -1;
    pl_channel_flush(ch);
    return ch->is_alive ? 0 : -1;
}

int64_t pl_channel_ping_acked_usec(const pl_channel_t *ch)
{
    return ch->ping_acked_usec;
}

/* ---- connect ---- */

static int connect_tcp(const pl_channel_opts_t *o, int timeout_ms, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof(port), "%u", o->port);
    int rc = getaddrinfo(o->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve %s: %s", o->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {fd, POLLOUT, 0};
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            snprintf(err, err_len, "cannot connect to %s:%u: %s", o->host, o->port,
                     soerr ? strerror(soerr) : "timed out");
        } else {
            snprintf(err, err_len, "cannot connect to %s:%u: %s", o->host, o->port, strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    return fd;
}

static void tls_err(char *err, size_t err_len, const char *what)
{
    unsigned long e = ERR_get_error();
    char detail[200] = "unknown error";
    if (e)
        ERR_error_string_n(e, detail, sizeof(detail));
    snprintf(err, err_len, "%s: %s", what, detail);
}

static int connect_tls(pl_channel_t *ch, const pl_channel_opts_t *o, int timeout_ms, char *err, size_t err_len)
{
    static const unsigned char alpn[] = "\x02h2";
    const char *name = o->server_name ? o->server_name : o->host;
    ch->tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!ch->tls_ctx) {
        tls_err(err, err_len, "tls");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ch->tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ch->tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!o->insecure) {
        int ok = o->ca_file ? SSL_CTX_load_verify_locations(ch->tls_ctx, o->ca_file, NULL)
                            : SSL_CTX_set_default_verify_paths(ch->tls_ctx);
        if (ok != 1) {
            tls_err(err, err_len, o->ca_file ? "cannot load CA file" : "cannot load system CAs");
            return -1;
        }
        SSL_CTX_set_verify(ch->tls_ctx, SSL_VERIFY_PEER, NULL);
    }
    SSL_CTX_set_alpn_protos(ch->tls_ctx, alpn, sizeof(alpn) - 1);
    ch->ssl = SSL_new(ch->tls_ctx);
    if (!ch->ssl || SSL_set_fd(ch->ssl, ch->fd) != 1) {
        tls_err(err, err_len, "tls");
        return -1;
    }
    struct in6_addr a6;
    struct in_addr a4;
    bool is_ip = inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ch->ssl, name);
    if (!o->insecure) {
        X509_VERIFY_PARAM *param = SSL_get0_param(ch->ssl);
        if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1
                  : X509_VERIFY_PARAM_set1_host(param, name, 0) != 1) {
            tls_err(err, err_len, "tls: cannot set the name to verify");
            return -1;
        }
    }
    int64_t deadline = pl_now_msec() + timeout_ms;
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(ch->ssl);
        if (rc == 1)
            break;
        int e = SSL_get_error(ch->ssl, rc);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        int64_t left = deadline - pl_now_msec();
        if (!ev) {
            long vr = SSL_get_verify_result(ch->ssl);
            if (vr != X509_V_OK)
                snprintf(err, err_len, "tls handshake with %s failed: certificate: %s", name,
                         X509_verify_cert_error_string(vr));
            else
                tls_err(err, err_len, "tls handshake failed");
            return -1;
        }
        struct pollfd p = {ch->fd, ev, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
            snprintf(err, err_len, "tls handshake with %s timed out", name);
            return -1;
        }
    }
    const unsigned char *proto = NULL;
    unsigned int proto_len = 0;
    SSL_get0_alpn_selected(ch->ssl, &proto, &proto_len);
    if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
        snprintf(err, err_len, "server %s did not negotiate HTTP/2 (ALPN h2)", name);
        return -1;
    }
    return 0;
}

static int start_session(pl_channel_t *ch)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return -1;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    /* Windows open as the application takes messages, so a server cannot
     * make us buffer more than one window per stream. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    int rv = nghttp2_session_client_new2(&ch->ng, cbs, ch, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0)
        return -1;
    /* The stream window fits a whole maximal message: a message never waits
     * for a window update that only its own consumption would send. */
    uint32_t window = ch->max_recv + (64u << 10);
    if (window > (uint32_t)INT32_MAX)
        window = INT32_MAX;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
    };
    int32_t conn_window = window > (uint32_t)INT32_MAX / 4 ? INT32_MAX : (int32_t)window * 4;
    if (nghttp2_submit_settings(ch->ng, NGHTTP2_FLAG_NONE, settings, 3) != 0 ||
        nghttp2_session_set_local_window_size(ch->ng, NGHTTP2_FLAG_NONE, 0, conn_window) != 0)
        return -1;
    return 0;
}

pl_channel_t *pl_channel_connect(const pl_channel_opts_t *o, char *err, size_t err_len)
{
    pl_channel_t *ch = calloc(1, sizeof(*ch));
    if (!ch) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    ch->fd = -1;
    ch->max_recv = o->max_recv_message ? o->max_recv_message : DEFAULT_MAX_RECV;
    int timeout = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    const char *name = o->server_name ? o->server_name : o->host;
    size_t alen = strlen(name) + 8;
    ch->authority = malloc(alen);
    ch->user_agent = strdup(o->user_agent ? o->user_agent : "parley-c/0.1");
    if (!ch->authority || !ch->user_agent) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    snprintf(ch->authority, alen, "%s:%u", name, o->port);
    ch->fd = connect_tcp(o, timeout, err, err_len);
    if (ch->fd < 0)
        goto fail;
    if (o->use_tls && connect_tls(ch, o, timeout, err, err_len) != 0)
        goto fail;
    if (start_session(ch) != 0) {
        snprintf(err, err_len, "cannot start the HTTP/2 session");
        goto fail;
    }
    ch->is_alive = true;
    pl_channel_flush(ch);
    if (!ch->is_alive) {
        snprintf(err, err_len, "%s", ch->error);
        goto fail;
    }
    return ch;
fail:
    pl_channel_free(ch);
    return NULL;
}

void pl_channel_free(pl_channel_t *ch)
{
    if (!ch)
        return;
    channel_lost(ch, "channel closed by the application");
    if (ch->ng)
        nghttp2_session_del(ch->ng);
    if (ch->ssl) {
        SSL_shutdown(ch->ssl);
        SSL_free(ch->ssl);
    }
    if (ch->tls_ctx)
        SSL_CTX_free(ch->tls_ctx);
    if (ch->fd >= 0)
        close(ch->fd);
    free(ch->out);
    free(ch->calls);
    free(ch->unary_payload);
    free(ch->authority);
    free(ch->user_agent);
    free(ch);
}
