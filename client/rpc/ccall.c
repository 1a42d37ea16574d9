/* ccall.c — client calls: request headers and messages out, response
 * headers, messages and status in, deadlines and cancellation. Every wait
 * pumps the channel, so calls on one channel progress together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/client_internal.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/errors.h"
#include "runtime/frame.h"
#include "runtime/gzip.h"
#include "runtime/list.h"
#include "runtime/percent.h"
#include "runtime/timeout.h"

/* Queued request bytes before pl_ccall_send waits for the network. */
#define SEND_HIGH_WATER (1u << 20)
#define MAX_RESPONSE_METADATA (64u << 10)

typedef struct chunk {
    pl_list_node_t link; /* first: a chunk kept as last_payload is freed as itself */
    uint32_t len, off;
    bool compressed;
    uint8_t data[];
} chunk_t;

struct pl_ccall {
    pl_channel_t *ch; /* NULL once the connection is gone */
    const pl_method_t *m;
    int32_t stream_id;
    int64_t deadline_usec;
    uint32_t max_recv;
    bool compress;      /* grpc-encoding: gzip announced */
    bool compress_next; /* compress the next request messages */

    pl_list_t out; /* framed request messages (chunk_t) */
    uint32_t out_bytes;
    bool send_closed;

    pl_deframer_t deframer;
    pl_list_t in;          /* complete response messages, payload only (chunk_t) */
    uint8_t *last_payload; /* keeps the last received message's views alive */
    bool last_compressed;

    int http_status;
    bool is_grpc_content;
    bool resp_gzip;
    bool in_trailers;
    bool has_status;
    bool stream_closed;
    pl_metadata_t initial_md, trailing_md;
    pl_code_t code;
    char *message;
};

const pl_metadata_t *pl_ccall_initial_metadata(const pl_ccall_t *c)
{
    return &c->initial_md;
}
const pl_metadata_t *pl_ccall_trailing_metadata(const pl_ccall_t *c)
{
    return &c->trailing_md;
}
bool pl_ccall_last_was_compressed(const pl_ccall_t *c)
{
    return c->last_compressed;
}

void pl_ccall_set_compression(pl_ccall_t *c, bool on)
{
    c->compress_next = on && c->compress;
}

/* Records the final status once; later reports are ignored. */
static void set_status(pl_ccall_t *c, pl_code_t code, const char *message)
{
    if (c->has_status)
        return;
    c->has_status = true;
    c->code = code;
    c->message = message ? strdup(message) : NULL;
}

static chunk_t *chunk_of(pl_list_node_t *n)
{
    return n ? pl_list_entry(n, chunk_t, link) : NULL;
}

static void free_chunks(pl_list_t *l)
{
    chunk_t *k;
    while ((k = chunk_of(pl_list_shift(l))))
        free(k);
}

static void detach_stream(pl_ccall_t *c)
{
    if (c->ch && c->stream_id > 0 && !c->stream_closed)
        nghttp2_session_set_stream_user_data(pl_channel_session(c->ch), c->stream_id, NULL);
}

/* Ends the call from our side (deadline, cancel, local error). */
static void abort_call(pl_ccall_t *c, pl_code_t code, const char *message)
{
    set_status(c, code, message);
    if (c->ch && c->stream_id > 0 && !c->stream_closed) {
        nghttp2_submit_rst_stream(pl_channel_session(c->ch), NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
        detach_stream(c);
        c->stream_closed = true;
        pl_channel_flush(c->ch);
    }
}

/* One turn of the channel, bounded by the call's deadline. -1 when the
 * call can make no more progress (its status is then set); callers still
 * deliver what was queued before. */
static int wait_turn(pl_ccall_t *c)
{
    pl_channel_t *ch = c->ch;
    if (!ch) {
        set_status(c, PL_CODE_UNAVAILABLE, "connection closed");
        return -1;
    }
    int timeout = -1;
    if (c->deadline_usec) {
        int64_t left = c->deadline_usec - pl_now_usec();
        if (left <= 0) {
            abort_call(c, PL_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
            return -1;
        }
        timeout = (int)((left + 999) / 1000);
    }
    if (pl_channel_pump(ch, timeout) != 0) {
        /* the call may have detached from ch meanwhile; ch itself lives on */
        char msg[300];
        snprintf(msg, sizeof(msg), "connection lost: %s", pl_channel_error(ch));
        set_status(c, PL_CODE_UNAVAILABLE, msg);
        return -1;
    }
    return 0;
}

/* ---- channel callbacks ---- */

void pl_ccall_on_header(pl_ccall_t *c, bool trailers, const uint8_t *name, size_t name_len, const uint8_t *value,
                        size_t value_len)
{
#define IS(lit) (name_len == sizeof(lit) - 1 && memcmp(name, lit, sizeof(lit) - 1) == 0)
    if (trailers)
        c->in_trailers = true;
    if (IS(":status")) {
        c->http_status = 0;
        for (size_t i = 0; i < value_len && i < 3; i++)
            c->http_status = c->http_status * 10 + (value[i] - '0');
    } else if (IS("content-type")) {
        static const char base[] = "application/grpc";
        c->is_grpc_content = value_len >= sizeof(base) - 1 && memcmp(value, base, sizeof(base) - 1) == 0;
    } else if (IS("grpc-status")) {
        int code = 0;
        for (size_t i = 0; i < value_len && i < 3; i++)
            code = code * 10 + (value[i] - '0');
        if (!c->has_status) {
            c->code = code >= 0 && code <= PL_CODE_MAX ? (pl_code_t)code : PL_CODE_UNKNOWN;
            c->has_status = true;
        }
    } else if (IS("grpc-message")) {
        free(c->message);
        c->message = pl_percent_decode((const char *)value, value_len);
    } else if (IS("grpc-encoding")) {
        c->resp_gzip = value_len == 4 && memcmp(value, "gzip", 4) == 0;
    } else if (!pl_metadata_key_is_reserved(name, name_len)) {
        /* Trailers-only responses put everything in one block: metadata there
         * is trailing metadata, as in other gRPC implementations. */
        pl_metadata_add_wire(trailers ? &c->trailing_md : &c->initial_md, name, name_len, value, value_len);
    }
#undef IS
}

void pl_ccall_on_headers_end(pl_ccall_t *c, bool end_stream)
{
    if (!end_stream)
        return;
    if (!c->in_trailers && c->initial_md.count) {
        /* trailers-only: the one block's metadata is trailing metadata */
        pl_metadata_t tmp = c->trailing_md;
        c->trailing_md = c->initial_md;
        c->initial_md = tmp;
    }
    if (pl_deframer_is_mid_message(&c->deframer))
        set_status(c, PL_CODE_INTERNAL, "stream ended in the middle of a message");
    if (!c->has_status) {
        if (c->http_status != 200)
            set_status(c, pl_code_from_http(c->http_status), "HTTP status without grpc-status");
        else
            set_status(c, PL_CODE_INTERNAL, "server ended the stream without grpc-status");
    }
}

void pl_ccall_on_data(pl_ccall_t *c, const uint8_t *data, size_t len)
{
    size_t pos = 0;
    while (pos < len && !c->has_status) {
        size_t used;
        pl_deframe_result_t r = pl_deframer_feed(&c->deframer, data + pos, len - pos, &used);
        pos += used;
        if (r == PL_DEFRAME_MESSAGE) {
            uint8_t *payload;
            uint32_t plen;
            bool compressed;
            pl_deframer_take(&c->deframer, &payload, &plen, &compressed);
            chunk_t *k = malloc(sizeof(*k) + plen);
            if (!k) {
                free(payload);
                abort_call(c, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
                return;
            }
            k->len = plen;
            k->off = PL_FRAME_HEADER_LEN + plen; /* wire bytes, returned to the window on recv */
            k->compressed = compressed;
            if (plen)
                memcpy(k->data, payload, plen);
            free(payload);
            pl_list_push(&c->in, &k->link);
        } else if (r == PL_DEFRAME_TOO_LARGE) {
            char msg[96];
            snprintf(msg, sizeof(msg), "received message larger than max (%u vs. %u)",
                     pl_deframer_declared_length(&c->deframer), c->max_recv);
            abort_call(c, PL_CODE_RESOURCE_EXHAUSTED, msg);
            return;
        } else if (r != PL_DEFRAME_NEED_MORE) {
            abort_call(c, PL_CODE_INTERNAL, "malformed response message");
            return;
        }
    }
}

void pl_ccall_on_stream_close(pl_ccall_t *c, uint32_t error_code)
{
    c->stream_closed = true;
    if (!c->has_status) {
        char msg[80];
        snprintf(msg, sizeof(msg), "stream reset by the server (HTTP/2 error 0x%x)", error_code);
        set_status(c, pl_code_from_h2_error(error_code), msg);
    }
}

void pl_ccall_on_channel_lost(pl_ccall_t *c, const char *why)
{
    c->stream_closed = true;
    char msg[300];
    snprintf(msg, sizeof(msg), "connection lost: %s", why);
    set_status(c, PL_CODE_UNAVAILABLE, msg);
    c->ch = NULL;
}

ssize_t pl_ccall_read_body(pl_ccall_t *c, uint8_t *buf, size_t len, uint32_t *data_flags)
{
    size_t n = 0;
    while (n < len && c->out.head) {
        chunk_t *k = chunk_of(c->out.head);
        size_t take = k->len - k->off;
        if (take > len - n)
            take = len - n;
        memcpy(buf + n, k->data + k->off, take);
        k->off += (uint32_t)take;
        n += take;
        if (k->off == k->len) {
            pl_list_remove(&c->out, &k->link);
            free(k);
        }
    }
    c->out_bytes -= (uint32_t)n;
    if (!c->out.head && c->send_closed) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static ssize_t read_body_cb(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                            nghttp2_data_source *source, void *user_data)
{
    (void)user_data;
    pl_ccall_t *c = nghttp2_session_get_stream_user_data(ng, stream_id);
    if (!c || c != source->ptr) { /* freed: end the request stream */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    return pl_ccall_read_body(c, buf, length, data_flags);
}

/* ---- API ---- */

static size_t add_nv(nghttp2_nv *nv, size_t i, const char *name, const char *value, size_t value_len)
{
    nv[i].name = (uint8_t *)(uintptr_t)name;
    nv[i].namelen = strlen(name);
    nv[i].value = (uint8_t *)(uintptr_t)value;
    nv[i].valuelen = value_len;
    nv[i].flags = NGHTTP2_NV_FLAG_NONE;
    return i + 1;
}

pl_ccall_t *pl_ccall_start(pl_channel_t *ch, const pl_method_t *m, const pl_call_opts_t *opts)
{
    pl_ccall_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ch = ch;
    c->m = m;
    c->code = PL_CODE_OK;
    pl_metadata_init(&c->initial_md, MAX_RESPONSE_METADATA);
    pl_metadata_init(&c->trailing_md, MAX_RESPONSE_METADATA);
    c->max_recv = pl_channel_max_recv(ch);
    pl_deframer_init(&c->deframer, c->max_recv);
    if (opts && opts->timeout_ms > 0)
        c->deadline_usec = pl_now_usec() + opts->timeout_ms * 1000;
    c->compress = c->compress_next = opts && opts->compress;
    if (!pl_channel_is_alive(ch)) {
        char msg[300];
        snprintf(msg, sizeof(msg), "connection lost: %s", pl_channel_error(ch));
        set_status(c, PL_CODE_UNAVAILABLE, msg);
        c->ch = NULL;
        return c;
    }

    const pl_metadata_t *md = opts ? opts->metadata : NULL;
    size_t md_count = md ? md->count : 0;
    size_t md_bytes = 0;
    for (size_t i = 0; i < md_count; i++)
        md_bytes += pl_metadata_wire_len(md->entries[i].value_len) + 1;
    nghttp2_nv *nv = malloc((10 + md_count) * sizeof(*nv));
    char *store = malloc(md_bytes + 1);
    if (!nv || !store) {
        free(nv);
        free(store);
        set_status(c, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return c;
    }
    char timeout[10];
    size_t n = 0, used = 0;
    n = add_nv(nv, n, ":method", "POST", 4);
    n = add_nv(nv, n, ":scheme", pl_channel_scheme(ch), strlen(pl_channel_scheme(ch)));
    n = add_nv(nv, n, ":path", m->path, strlen(m->path));
    n = add_nv(nv, n, ":authority", pl_channel_authority(ch), strlen(pl_channel_authority(ch)));
    n = add_nv(nv, n, "content-type", "application/grpc", 16);
    n = add_nv(nv, n, "te", "trailers", 8);
    n = add_nv(nv, n, "user-agent", pl_channel_user_agent(ch), strlen(pl_channel_user_agent(ch)));
    n = add_nv(nv, n, "grpc-accept-encoding", "identity,gzip", 13);
    if (c->compress)
        n = add_nv(nv, n, "grpc-encoding", "gzip", 4);
    if (c->deadline_usec) {
        int len = pl_timeout_format(opts->timeout_ms * 1000, timeout);
        n = add_nv(nv, n, "grpc-timeout", timeout, (size_t)len);
    }
    for (uint32_t i = 0; i < md_count; i++) {
        const char *key;
        size_t key_len, value_len;
        const uint8_t *value;
        pl_metadata_at(md, i, &key, &key_len, &value, &value_len);
        long w =
            pl_metadata_wire_value((const uint8_t *)key, key_len, value, value_len, store + used, md_bytes + 1 - used);
        if (w < 0)
            continue;
        nv[n].name = (uint8_t *)(uintptr_t)key;
        nv[n].namelen = key_len;
        nv[n].value = (uint8_t *)store + used;
        nv[n].valuelen = (size_t)w;
        nv[n].flags = NGHTTP2_NV_FLAG_NONE;
        n++;
        used += (size_t)w;
    }
    nghttp2_data_provider dp;
    dp.source.ptr = c;
    dp.read_callback = read_body_cb;
    int32_t id = nghttp2_submit_request(pl_channel_session(ch), NULL, nv, n, &dp, c);
    free(nv);
    free(store);
    if (id < 0) {
        char msg[120];
        snprintf(msg, sizeof(msg), "cannot start the call: %s", nghttp2_strerror(id));
        set_status(c, PL_CODE_UNAVAILABLE, msg);
        c->ch = NULL;
        return c;
    }
    c->stream_id = id;
    pl_channel_track(ch, c);
    pl_channel_flush(ch);
    return c;
}

/* Frames and queues one request message and starts writing it. */
static int queue_message(pl_ccall_t *c, const void *msg)
{
    if (c->has_status || c->send_closed || !c->ch)
        return -1;
    long size = pl_pb_encoded_size(c->m->request, msg);
    if (size < 0) {
        abort_call(c, PL_CODE_INTERNAL, "cannot encode the request");
        return -1;
    }
    chunk_t *k = malloc(sizeof(*k) + PL_FRAME_HEADER_LEN + (size_t)size);
    if (!k) {
        abort_call(c, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    k->off = 0;
    k->len = PL_FRAME_HEADER_LEN + (uint32_t)size;
    if (pl_pb_encode(c->m->request, msg, k->data + PL_FRAME_HEADER_LEN, (size_t)size) != 0) {
        free(k);
        abort_call(c, PL_CODE_INTERNAL, "cannot encode the request");
        return -1;
    }
    bool compressed = false;
    if (c->compress_next) {
        uint8_t *z;
        size_t zlen;
        if (pl_gzip_compress(k->data + PL_FRAME_HEADER_LEN, (size_t)size, &z, &zlen) == 0) {
            chunk_t *kz = malloc(sizeof(*kz) + PL_FRAME_HEADER_LEN + zlen);
            if (kz) {
                *kz = *k;
                kz->len = PL_FRAME_HEADER_LEN + (uint32_t)zlen;
                memcpy(kz->data + PL_FRAME_HEADER_LEN, z, zlen);
                free(k);
                k = kz;
                compressed = true;
            }
            free(z);
        }
    }
    pl_frame_header_write(k->data, compressed, k->len - PL_FRAME_HEADER_LEN);
    pl_list_push(&c->out, &k->link);
    c->out_bytes += k->len;
    nghttp2_session_resume_data(pl_channel_session(c->ch), c->stream_id);
    pl_channel_flush(c->ch);
    return 0;
}

int pl_ccall_send(pl_ccall_t *c, const void *msg)
{
    if (queue_message(c, msg) != 0)
        return -1;
    while (c->out_bytes > SEND_HIGH_WATER && !c->has_status)
        if (wait_turn(c) != 0)
            return -1;
    return c->has_status ? -1 : 0;
}

int pl_ccall_send_nowait(pl_ccall_t *c, const void *msg)
{
    if (queue_message(c, msg) != 0)
        return -1;
    return c->has_status ? -1 : 0;
}

size_t pl_ccall_send_buffered(const pl_ccall_t *c)
{
    return c->out_bytes;
}

int pl_ccall_close_send(pl_ccall_t *c)
{
    if (c->send_closed)
        return 0;
    c->send_closed = true;
    if (!c->ch || c->stream_closed)
        return -1;
    nghttp2_session_resume_data(pl_channel_session(c->ch), c->stream_id);
    pl_channel_flush(c->ch);
    return 0;
}

/* One queued response into msg: 1; nothing queued: 2 (or the end: 0 / -1). */
static int take_queued(pl_ccall_t *c, void *msg);

int pl_ccall_recv(pl_ccall_t *c, void *msg)
{
    for (;;) {
        int rc = take_queued(c, msg);
        if (rc != PL_CCALL_PENDING)
            return rc;
        wait_turn(c); /* on failure the status is set: the next take ends */
    }
}

int pl_ccall_try_recv(pl_ccall_t *c, void *msg)
{
    if (!c->has_status && c->deadline_usec && pl_now_usec() >= c->deadline_usec)
        abort_call(c, PL_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
    if (!c->has_status && c->ch && !pl_channel_is_alive(c->ch)) {
        char msg_[300];
        snprintf(msg_, sizeof(msg_), "connection lost: %s", pl_channel_error(c->ch));
        set_status(c, PL_CODE_UNAVAILABLE, msg_);
    }
    return take_queued(c, msg);
}

bool pl_ccall_is_done(const pl_ccall_t *c)
{
    return c->has_status && !c->in.head;
}

static int take_queued(pl_ccall_t *c, void *msg)
{
    chunk_t *k = chunk_of(pl_list_shift(&c->in));
    if (k) {
        if (c->ch && !c->stream_closed)
            nghttp2_session_consume(pl_channel_session(c->ch), c->stream_id, k->off);
        const uint8_t *payload = k->data;
        size_t plen = k->len;
        uint8_t *plain = NULL;
        c->last_compressed = k->compressed;
        if (k->compressed) {
            size_t out_len;
            int rc = c->resp_gzip ? pl_gzip_decompress(k->data, k->len, c->max_recv, &plain, &out_len) : PL_ERR_PROTO;
            if (rc != 0) {
                free(k);
                abort_call(c, rc == PL_ERR_LIMIT ? PL_CODE_RESOURCE_EXHAUSTED : PL_CODE_INTERNAL,
                           "cannot decompress the response");
                return -1;
            }
            payload = plain;
            plen = out_len;
        }
        const char *why = NULL;
        /* Views in msg point into the buffer we keep until the next recv. */
        int rc = pl_pb_decode(c->m->response, payload, plen, msg, &why);
        free(c->last_payload);
        if (plain) {
            c->last_payload = plain;
            free(k);
        } else {
            c->last_payload = (uint8_t *)k; /* payload lives inside the chunk */
        }
        if (rc != 0) {
            char text[128];
            snprintf(text, sizeof(text), "cannot decode the response: %s", why ? why : "?");
            abort_call(c, PL_CODE_INTERNAL, text);
            return -1;
        }
        return 1;
    }
    if (c->has_status)
        return c->code == PL_CODE_OK ? 0 : -1;
    return PL_CCALL_PENDING;
}

void pl_ccall_cancel(pl_ccall_t *c)
{
    abort_call(c, PL_CODE_CANCELLED, "cancelled by the client");
}

pl_code_t pl_ccall_finish(pl_ccall_t *c, pl_status_t *st)
{
    pl_ccall_close_send(c);
    while (!c->has_status)
        if (wait_turn(c) != 0)
            break;
    if (!c->has_status)
        set_status(c, PL_CODE_UNKNOWN, "call ended without a status");
    if (st)
        pl_status_set(st, c->code, c->message);
    return c->code;
}

void pl_ccall_free(pl_ccall_t *c)
{
    if (!c)
        return;
    if (c->ch) {
        if (!c->stream_closed && c->stream_id > 0) {
            nghttp2_submit_rst_stream(pl_channel_session(c->ch), NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
            detach_stream(c);
            pl_channel_flush(c->ch);
        }
        pl_channel_untrack(c->ch, c);
    }
    free_chunks(&c->out);
    free_chunks(&c->in);
    free(c->last_payload);
    pl_deframer_dispose(&c->deframer);
    pl_metadata_dispose(&c->initial_md);
    pl_metadata_dispose(&c->trailing_md);
    free(c->message);
    free(c);
}

pl_code_t pl_ccall_unary(pl_channel_t *ch, const pl_method_t *m, const pl_call_opts_t *opts, const void *req,
                         void *resp, pl_status_t *st)
{
    pl_ccall_t *c = pl_ccall_start(ch, m, opts);
    if (!c) {
        if (st)
            pl_status_set(st, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return PL_CODE_RESOURCE_EXHAUSTED;
    }
    if (pl_ccall_send(c, req) == 0)
        pl_ccall_close_send(c);
    int got = pl_ccall_recv(c, resp);
    pl_code_t code = pl_ccall_finish(c, st);
    if (code == PL_CODE_OK && got != 1) {
        code = PL_CODE_INTERNAL;
        if (st)
            pl_status_set(st, code, "server sent no response message");
    }
    pl_channel_keep_unary_payload(ch, c->last_payload);
    c->last_payload = NULL;
    pl_ccall_free(c);
    return code;
}
