/* h2_wire.c — see h2_wire.h. */
#include "h2_wire.h"

#include "grpc/health/v1/health.parley.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "grpc/testing/test.parley.h"
#include "parley/channel.h"
#include "runtime/clock.h"

#define READ_CHUNK 65536

/* ---- buffers and frames ---- */

void h2w_buf_put(h2w_buf_t *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + len)
            cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
            fprintf(stderr, "h2_wire: out of memory\n");
            abort();
        }
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

void h2w_buf_reset(h2w_buf_t *b)
{
    b->len = 0;
}

void h2w_buf_free(h2w_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void h2w_frame(h2w_buf_t *b, uint8_t type, uint8_t flags, uint32_t stream_id, const void *payload, size_t len)
{
    uint8_t hd[9] = {(uint8_t)(len >> 16),
                     (uint8_t)(len >> 8),
                     (uint8_t)len,
                     type,
                     flags,
                     (uint8_t)(stream_id >> 24 & 0x7f),
                     (uint8_t)(stream_id >> 16),
                     (uint8_t)(stream_id >> 8),
                     (uint8_t)stream_id};
    h2w_buf_put(b, hd, sizeof(hd));
    h2w_buf_put(b, payload, len);
}

/* RFC 7541 §5.1 integer with a 7-bit prefix (string lengths, H=0). */
static void hpack_len(h2w_buf_t *b, size_t n)
{
    uint8_t out[8];
    size_t k = 0;
    if (n < 127) {
        out[k++] = (uint8_t)n;
    } else {
        out[k++] = 127;
        n -= 127;
        while (n >= 128) {
            out[k++] = (uint8_t)(n % 128 + 128);
            n /= 128;
        }
        out[k++] = (uint8_t)n;
    }
    h2w_buf_put(b, out, k);
}

void h2w_hpack_literal(h2w_buf_t *b, const char *name, const char *value)
{
    uint8_t zero = 0; /* literal without indexing, new name */
    h2w_buf_put(b, &zero, 1);
    hpack_len(b, strlen(name));
    h2w_buf_put(b, name, strlen(name));
    hpack_len(b, strlen(value));
    h2w_buf_put(b, value, strlen(value));
}

void h2w_grpc_request_block(h2w_buf_t *b, const char *path)
{
    h2w_hpack_literal(b, ":method", "POST");
    h2w_hpack_literal(b, ":scheme", "http");
    h2w_hpack_literal(b, ":path", path);
    h2w_hpack_literal(b, ":authority", "localhost");
    h2w_hpack_literal(b, "content-type", "application/grpc");
    h2w_hpack_literal(b, "te", "trailers");
}

void h2w_grpc_message(h2w_buf_t *b, const void *pb, size_t len)
{
    uint8_t hd[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    h2w_buf_put(b, hd, sizeof(hd));
    h2w_buf_put(b, pb, len);
}

const char *h2w_error_name(uint32_t code)
{
    static const char *const names[] = {"NO_ERROR",
                                        "PROTOCOL_ERROR",
                                        "INTERNAL_ERROR",
                                        "FLOW_CONTROL_ERROR",
                                        "SETTINGS_TIMEOUT",
                                        "STREAM_CLOSED",
                                        "FRAME_SIZE_ERROR",
                                        "REFUSED_STREAM",
                                        "CANCEL",
                                        "COMPRESSION_ERROR",
                                        "CONNECT_ERROR",
                                        "ENHANCE_YOUR_CALM",
                                        "INADEQUATE_SECURITY",
                                        "HTTP_1_1_REQUIRED"};
    return code < sizeof(names) / sizeof(names[0]) ? names[code] : "unknown";
}

/* ---- connections ---- */

int h2w_tcp_connect(uint16_t port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (src) {
        struct sockaddr_in s = {0};
        s.sin_family = AF_INET;
        inet_pton(AF_INET, src, &s.sin_addr);
        if (bind(fd, (struct sockaddr *)&s, sizeof(s)) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

void h2w_conn_init(h2w_conn_t *c, int fd, SSL *ssl)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->ssl = ssl;
    c->rcap = 1u << 20;
    c->rbuf = malloc(c->rcap);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    nghttp2_hd_inflate_new(&c->inflater);
}

void h2w_conn_close(h2w_conn_t *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    if (c->inflater)
        nghttp2_hd_inflate_del(c->inflater);
    free(c->rbuf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

size_t h2w_write(h2w_conn_t *c, const void *data, size_t len, int timeout_ms)
{
    const uint8_t *p = data;
    size_t off = 0;
    int64_t until = pl_now_msec() + timeout_ms;
    while (off < len) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_write(c->ssl, p + off, (int)(len - off > INT32_MAX ? INT32_MAX : len - off));
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                n = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? -2 : -1;
            }
        } else {
            n = send(c->fd, p + off, len - off, MSG_NOSIGNAL);
            if (n < 0)
                n = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -2 : -1;
        }
        if (n == -1)
            return off;
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        int left = (int)(until - pl_now_msec());
        if (left <= 0)
            return off;
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        poll(&pfd, 1, left);
    }
    return off;
}

/* Reads what is available (waiting up to timeout_ms for the first byte).
 * 1 read something, 0 end of connection, -1 timeout. */
static int fill(h2w_conn_t *c, int timeout_ms)
{
    if (c->is_eof || c->is_reset)
        return 0;
    if (c->rlen == c->rcap) {
        c->rcap *= 2;
        c->rbuf = realloc(c->rbuf, c->rcap);
    }
    for (;;) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
            if (r > 0) {
                n = r;
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                    n = -2;
                else if (e == SSL_ERROR_ZERO_RETURN)
                    n = 0;
                else
                    n = -1;
            }
        } else {
            n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
            if (n < 0)
                n = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? -2 : -1;
        }
        if (n > 0) {
            c->rlen += (size_t)n;
            return 1;
        }
        if (n == 0) {
            c->is_eof = true;
            return 0;
        }
        if (n == -1) {
            c->is_reset = true;
            return 0;
        }
        if (timeout_ms <= 0)
            return -1;
        struct pollfd pfd = {c->fd, POLLIN, 0};
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -1;
        timeout_ms = 0; /* readable now; one more try */
        if (c->ssl && SSL_pending(c->ssl) == 0) {
            /* TLS may still want more records: allow a short wait */
            timeout_ms = 1;
        }
    }
}

static uint8_t frame_payload[1 << 24];

int h2w_read_frame(h2w_conn_t *c, h2w_frame_t *f, int timeout_ms)
{
    int64_t until = pl_now_msec() + timeout_ms;
    for (;;) {
        if (c->rlen >= 9) {
            uint32_t len = (uint32_t)c->rbuf[0] << 16 | (uint32_t)c->rbuf[1] << 8 | c->rbuf[2];
            if (c->rlen >= 9 + (size_t)len) {
                f->length = len;
                f->type = c->rbuf[3];
                f->flags = c->rbuf[4];
                f->stream_id =
                    ((uint32_t)c->rbuf[5] << 24 | (uint32_t)c->rbuf[6] << 16 | (uint32_t)c->rbuf[7] << 8 | c->rbuf[8]) &
                    0x7fffffffu;
                memcpy(frame_payload, c->rbuf + 9, len);
                f->payload = frame_payload;
                memmove(c->rbuf, c->rbuf + 9 + len, c->rlen - 9 - len);
                c->rlen -= 9 + len;
                return 1;
            }
        }
        int left = (int)(until - pl_now_msec());
        int r = fill(c, left > 0 ? left : 0);
        if (r == 0)
            return 0;
        if (r < 0 && pl_now_msec() >= until)
            return -1;
    }
}

static void note_goaway(const h2w_frame_t *f, h2w_goaway_t *g)
{
    if (g->seen || f->length < 8)
        return;
    g->seen = true;
    g->last_stream_id =
        ((uint32_t)f->payload[0] << 24 | (uint32_t)f->payload[1] << 16 | (uint32_t)f->payload[2] << 8 | f->payload[3]) &
        0x7fffffffu;
    g->error_code =
        (uint32_t)f->payload[4] << 24 | (uint32_t)f->payload[5] << 16 | (uint32_t)f->payload[6] << 8 | f->payload[7];
    size_t dl = f->length - 8 < sizeof(g->debug) - 1 ? f->length - 8 : sizeof(g->debug) - 1;
    memcpy(g->debug, f->payload + 8, dl);
    g->debug[dl] = '\0';
}

int h2w_poll_frames(h2w_conn_t *c, h2w_goaway_t *g, unsigned long *counts)
{
    h2w_frame_t f;
    while (h2w_read_frame(c, &f, 0) == 1) {
        if (counts && f.type < 10)
            counts[f.type]++;
        if (f.type == NGHTTP2_GOAWAY)
            note_goaway(&f, g);
    }
    return g->seen;
}

long h2w_wait_goaway_and_close(h2w_conn_t *c, h2w_goaway_t *g, int timeout_ms)
{
    int64_t start = pl_now_msec();
    for (;;) {
        int left = timeout_ms - (int)(pl_now_msec() - start);
        if (left <= 0)
            return -1;
        h2w_frame_t f;
        int r = h2w_read_frame(c, &f, left);
        if (r == 0)
            return (long)(pl_now_msec() - start);
        if (r == 1 && f.type == NGHTTP2_GOAWAY)
            note_goaway(&f, g);
    }
}

bool h2w_find_header(h2w_conn_t *c, const h2w_frame_t *f, const char *name, char *value, size_t value_len)
{
    const uint8_t *in = f->payload;
    size_t left = f->length;
    if (f->flags & NGHTTP2_FLAG_PADDED) {
        size_t pad = in[0];
        in++;
        left = left > pad + 1 ? left - pad - 1 : 0;
    }
    if (f->flags & NGHTTP2_FLAG_PRIORITY) {
        in += 5;
        left = left > 5 ? left - 5 : 0;
    }
    bool found = false;
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(c->inflater, &nv, &flags, in, left, 1);
        if (n < 0)
            return false;
        in += n;
        left -= (size_t)n;
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) && !found && nv.namelen == strlen(name) &&
            memcmp(nv.name, name, nv.namelen) == 0) {
            snprintf(value, value_len, "%.*s", (int)nv.valuelen, nv.value);
            found = true;
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(c->inflater);
            break;
        }
        if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && left == 0)
            break;
    }
    return found;
}

int h2w_send_preface(h2w_conn_t *c, const nghttp2_settings_entry *iv, size_t n)
{
    h2w_buf_t b = {0};
    h2w_buf_put(&b, H2W_PREFACE, sizeof(H2W_PREFACE) - 1);
    uint8_t payload[6 * 16];
    for (size_t i = 0; i < n && i < 16; i++) {
        payload[6 * i] = (uint8_t)(iv[i].settings_id >> 8);
        payload[6 * i + 1] = (uint8_t)iv[i].settings_id;
        payload[6 * i + 2] = (uint8_t)(iv[i].value >> 24);
        payload[6 * i + 3] = (uint8_t)(iv[i].value >> 16);
        payload[6 * i + 4] = (uint8_t)(iv[i].value >> 8);
        payload[6 * i + 5] = (uint8_t)iv[i].value;
    }
    h2w_frame(&b, NGHTTP2_SETTINGS, 0, 0, payload, 6 * (n < 16 ? n : 16));
    size_t w = h2w_write(c, b.data, b.len, 5000);
    int rc = w == b.len ? 0 : -1;
    h2w_buf_free(&b);
    return rc;
}

/* ---- the well-behaved client ---- */

static pthread_t good_thread;
static atomic_bool good_running;
static uint16_t good_port;
static bool good_uses_health;
static h2w_good_stats_t good_stats;

static const char *good_tls_ca;

void h2w_good_use_health(bool on)
{
    good_uses_health = on;
}

void h2w_good_use_tls(const char *ca_file)
{
    good_tls_ca = ca_file;
}

SSL *h2w_tls_handshake(int fd, const char *ca_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return NULL;
    SSL_CTX_load_verify_locations(ctx, ca_file, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_alpn_protos(ctx, (const unsigned char *)"\x02h2", 3);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps its reference */
    if (!ssl)
        return NULL;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (SSL_connect(ssl) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* One call of the well-behaved client: EmptyCall, or Health/Check for a
 * server that has no TestService (parleyd). */
static pl_code_t good_call(pl_channel_t *ch, const pl_call_opts_t *co, pl_status_t *st)
{
    if (good_uses_health) {
        grpc_health_v1_HealthCheckRequest req = {0};
        grpc_health_v1_HealthCheckResponse resp = {0};
        return grpc_health_v1_Health_Check(ch, co, &req, &resp, st);
    }
    grpc_testing_Empty req = {0}, resp = {0};
    return grpc_testing_TestService_EmptyCall(ch, co, &req, &resp, st);
}

static void *good_main(void *arg)
{
    (void)arg;
    pl_channel_opts_t o = {0};
    o.host = "127.0.0.1";
    o.port = good_port;
    if (good_tls_ca) {
        o.use_tls = true;
        o.ca_file = good_tls_ca;
        o.server_name = "localhost";
    }
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    if (!ch) {
        good_stats.failed++;
        snprintf(good_stats.last_error, sizeof(good_stats.last_error), "connect: %.140s", err);
        return NULL;
    }
    while (atomic_load(&good_running)) {
        pl_call_opts_t co = {5000, NULL, false};
        pl_status_t st = {0};
        int64_t t0 = pl_now_msec();
        pl_code_t code = good_call(ch, &co, &st);
        long took = (long)(pl_now_msec() - t0);
        if (took > good_stats.max_latency_ms)
            good_stats.max_latency_ms = took;
        if (code == PL_CODE_OK) {
            good_stats.ok++;
        } else {
            good_stats.failed++;
            snprintf(good_stats.last_error, sizeof(good_stats.last_error), "%s: %s", pl_code_name(code),
                     st.message ? st.message : "");
        }
        pl_status_reset(&st);
        if (!pl_channel_is_alive(ch))
            break;
        usleep(2000);
    }
    pl_channel_free(ch);
    return NULL;
}

void h2w_good_start(uint16_t port)
{
    memset(&good_stats, 0, sizeof(good_stats));
    good_port = port;
    atomic_store(&good_running, true);
    pthread_create(&good_thread, NULL, good_main, NULL);
}

h2w_good_stats_t h2w_good_stop(void)
{
    atomic_store(&good_running, false);
    pthread_join(good_thread, NULL);
    return good_stats;
}
