/* call_response.c — the response side of a server call: the bounded
 * outbound queue, response headers, trailers and trailers-only answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/call_state.h"
#include "runtime/codec.h"
#include "runtime/errors.h"
#include "runtime/gzip.h"
#include "runtime/percent.h"

/* Messages smaller than this are not worth gzip's header and CPU. */
#define GZIP_MIN_BYTES 256
/* Fixed headers in any response block besides metadata. */
#define MAX_FIXED_HEADERS 6

/* A header block under construction: nghttp2 copies names and values on
 * submit, so the storage lives only until then. */
typedef struct headers {
    nghttp2_nv *nv;
    size_t count, cap;
    char *store;
    size_t used, store_cap;
} headers_t;

static int headers_init(headers_t *h, const pl_metadata_t *a, const pl_metadata_t *b)
{
    memset(h, 0, sizeof(*h));
    h->cap = MAX_FIXED_HEADERS + a->count + (b ? b->count : 0);
    size_t bytes = 256;
    const pl_metadata_t *lists[2] = {a, b};
    for (int l = 0; l < 2; l++) {
        const pl_metadata_t *md = lists[l];
        for (uint32_t i = 0; md && i < md->count; i++)
            bytes += md->entries[i].key_len + pl_metadata_wire_len(md->entries[i].value_len) + 2;
    }
    h->nv = malloc(h->cap * sizeof(*h->nv));
    h->store = malloc(bytes);
    h->store_cap = bytes;
    if (!h->nv || !h->store) {
        free(h->nv);
        free(h->store);
        return PL_ERR_NOMEM;
    }
    return 0;
}

static void headers_dispose(headers_t *h)
{
    free(h->nv);
    free(h->store);
}

static void headers_add(headers_t *h, const char *name, size_t name_len, const char *value, size_t value_len)
{
    nghttp2_nv *nv = &h->nv[h->count++];
    nv->name = (uint8_t *)(uintptr_t)name;
    nv->namelen = name_len;
    nv->value = (uint8_t *)(uintptr_t)value;
    nv->valuelen = value_len;
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

#define HEADERS_ADD_LIT(h, n, v) headers_add((h), (n), sizeof(n) - 1, (v), sizeof(v) - 1)

static void headers_add_metadata(headers_t *h, const pl_metadata_t *md)
{
    for (uint32_t i = 0; i < md->count; i++) {
        const char *key;
        size_t key_len, value_len;
        const uint8_t *value;
        pl_metadata_at(md, i, &key, &key_len, &value, &value_len);
        char *out = h->store + h->used;
        long n = pl_metadata_wire_value((const uint8_t *)key, key_len, value, value_len, out, h->store_cap - h->used);
        if (n < 0)
            continue; /* cannot happen: headers_init sized the store */
        h->used += (size_t)n;
        headers_add(h, key, key_len, out, (size_t)n);
    }
}

/* grpc-status and grpc-message; message_enc stays owned by the caller. */
static void headers_add_status(headers_t *h, pl_code_t code, const char *message_enc)
{
    char *digits = h->store + h->used;
    int n = snprintf(digits, 4, "%d", (int)code);
    h->used += (size_t)n + 1;
    headers_add(h, "grpc-status", 11, digits, (size_t)n);
    if (message_enc && *message_enc)
        headers_add(h, "grpc-message", 12, message_enc, strlen(message_enc));
}

void pl_call_free_response(pl_call_t *call)
{
    pl_list_node_t *n;
    while ((n = pl_list_shift(&call->out)))
        free(pl_list_entry(n, pl_outmsg_t, link));
    call->out_bytes = 0;
}

static void submit_trailers_only(pl_call_t *call)
{
    headers_t h;
    if (headers_init(&h, &call->initial_md, &call->trailing_md) != 0) {
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
        call->trailers_sent = true;
        return;
    }
    char *msg = call->status_message ? pl_percent_encode(call->status_message, strlen(call->status_message)) : NULL;
    HEADERS_ADD_LIT(&h, ":status", "200");
    HEADERS_ADD_LIT(&h, "content-type", "application/grpc");
    headers_add_status(&h, call->status, msg);
    headers_add_metadata(&h, &call->initial_md);
    headers_add_metadata(&h, &call->trailing_md);
    if (call->ops->submit_response(call->conn, call->stream_id, h.nv, h.count, false) != 0)
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
    call->response_started = true;
    call->trailers_sent = true;
    free(msg);
    headers_dispose(&h);
}

static void submit_trailers(pl_call_t *call)
{
    headers_t h;
    if (headers_init(&h, &call->trailing_md, NULL) != 0) {
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
        call->trailers_sent = true;
        return;
    }
    char *msg = call->status_message ? pl_percent_encode(call->status_message, strlen(call->status_message)) : NULL;
    headers_add_status(&h, call->status, msg);
    headers_add_metadata(&h, &call->trailing_md);
    if (call->ops->submit_trailers(call->conn, call->stream_id, h.nv, h.count) != 0)
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
    call->trailers_sent = true;
    free(msg);
    headers_dispose(&h);
}

static int submit_response_headers(pl_call_t *call)
{
    headers_t h;
    if (headers_init(&h, &call->initial_md, NULL) != 0)
        return PL_ERR_NOMEM;
    call->out_gzip = call->compress_out && call->accepts_gzip;
    HEADERS_ADD_LIT(&h, ":status", "200");
    HEADERS_ADD_LIT(&h, "content-type", "application/grpc");
    if (call->out_gzip)
        HEADERS_ADD_LIT(&h, "grpc-encoding", "gzip");
    HEADERS_ADD_LIT(&h, "grpc-accept-encoding", "identity,gzip");
    headers_add_metadata(&h, &call->initial_md);
    int rc = call->ops->submit_response(call->conn, call->stream_id, h.nv, h.count, true);
    headers_dispose(&h);
    if (rc != 0)
        return PL_ERR_NOMEM;
    call->response_started = true;
    return 0;
}

void pl_call_reject(pl_call_t *call, pl_code_t code, const char *message)
{
    call->finished = true;
    call->status = code;
    free(call->status_message);
    call->status_message = message ? strdup(message) : NULL;
    if (call->conn) {
        submit_trailers_only(call);
        call->ops->kick(call->conn);
    }
}

void pl_call_plain_http(pl_call_t *call, int http_status, const char *body)
{
    call->finished = true;
    call->is_plain_http = true;
    call->trailers_sent = true; /* nothing more will be said */
    size_t len = strlen(body);
    pl_outmsg_t *m = malloc(sizeof(*m) + len);
    if (!m) {
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    m->len = (uint32_t)len;
    m->off = 0;
    memcpy(m->data, body, len);
    pl_list_push(&call->out, &m->link);
    call->out_bytes = (uint32_t)len;
    char status[4];
    snprintf(status, sizeof(status), "%d", http_status);
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)status, 7, strlen(status), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"text/plain; charset=utf-8", 12, 25, NGHTTP2_NV_FLAG_NONE},
    };
    if (call->ops->submit_response(call->conn, call->stream_id, nv, 2, true) != 0)
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_INTERNAL_ERROR);
    call->response_started = true;
    call->ops->kick(call->conn);
}

static pl_outmsg_t *encode_message(pl_call_t *call, const void *msg, int *err)
{
    const pl_call_limits_t *cfg = call->limits;
    const pl_method_t *m = call->entry->impl.method;
    long size = pl_pb_encoded_size(m->response, msg);
    if (size < 0) {
        *err = PL_ERR_INVALID;
        return NULL;
    }
    if ((uint64_t)size > cfg->max_send_message) {
        *err = PL_ERR_LIMIT;
        return NULL;
    }
    pl_outmsg_t *out = malloc(sizeof(*out) + PL_FRAME_HEADER_LEN + (size_t)size);
    if (!out) {
        *err = PL_ERR_NOMEM;
        return NULL;
    }
    out->off = 0;
    out->len = PL_FRAME_HEADER_LEN + (uint32_t)size;
    if (pl_pb_encode(m->response, msg, out->data + PL_FRAME_HEADER_LEN, (size_t)size) != 0) {
        free(out);
        *err = PL_ERR_INVALID;
        return NULL;
    }
    bool compressed = false;
    if (call->out_gzip && call->compress_out && size >= GZIP_MIN_BYTES) {
        uint8_t *z;
        size_t zlen;
        if (pl_gzip_compress(out->data + PL_FRAME_HEADER_LEN, (size_t)size, &z, &zlen) == 0) {
            if (zlen < (size_t)size) {
                memcpy(out->data + PL_FRAME_HEADER_LEN, z, zlen);
                out->len = PL_FRAME_HEADER_LEN + (uint32_t)zlen;
                compressed = true;
            }
            free(z);
        }
    }
    pl_frame_header_write(out->data, compressed, out->len - PL_FRAME_HEADER_LEN);
    return out;
}

int pl_call_send(pl_call_t *call, const void *msg)
{
    const pl_call_limits_t *cfg = call->limits;
    if (pl_call_is_finished(call) || !call->conn || !call->entry)
        return PL_ERR_CLOSED;
    if (call->out_bytes >= cfg->call_outbound_limit) {
        call->writable_wanted = true;
        return PL_ERR_FULL;
    }
    if (!call->response_started) {
        /* decided before encoding: gzip needs the header */
        call->out_gzip = call->compress_out && call->accepts_gzip;
    }
    int err = 0;
    pl_outmsg_t *out = encode_message(call, msg, &err);
    if (out && call->out_bytes && call->out_bytes + out->len > cfg->call_outbound_limit) {
        free(out); /* the call's own queue: only an empty one takes any size */
        call->writable_wanted = true;
        return PL_ERR_FULL;
    }
    if (out && !call->ops->out_fits(call->conn, out->len)) {
        /* the connection's queue is full (its peer reads slowly or gives
         * no credit): nothing more is queued until it drains */
        free(out);
        call->writable_wanted = true;
        return PL_ERR_FULL;
    }
    if (!out) {
        if (err == PL_ERR_LIMIT) {
            char text[96];
            snprintf(text, sizeof(text), "response message larger than max (%u bytes)", cfg->max_send_message);
            pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, text);
        } else {
            pl_call_finish(call, PL_CODE_INTERNAL, err == PL_ERR_NOMEM ? "out of memory" : "cannot encode response");
        }
        return err;
    }
    pl_list_push(&call->out, &out->link);
    call->out_bytes += out->len;
    call->ops->out_changed(call->conn, out->len);
    if (!call->response_started) {
        if (submit_response_headers(call) != 0) {
            pl_call_finish(call, PL_CODE_INTERNAL, "out of memory");
            return PL_ERR_NOMEM;
        }
    } else {
        call->ops->resume(call->conn, call->stream_id);
    }
    call->ops->kick(call->conn);
    return 0;
}

int pl_call_finish(pl_call_t *call, pl_code_t code, const char *message)
{
    if (pl_call_is_finished(call))
        return PL_ERR_CLOSED;
    call->finished = true;
    call->status = code;
    free(call->status_message);
    call->status_message = message ? strdup(message) : NULL;
    pl_call_clear_deadline(call);
    pl_call_drop_deferred(call); /* deferred work never runs on a finished call */
    if (!call->conn)
        return 0;
    if (!call->response_started)
        submit_trailers_only(call);
    else
        call->ops->resume(call->conn, call->stream_id); /* trailers follow the queue */
    call->ops->kick(call->conn);
    return 0;
}

int pl_call_reply(pl_call_t *call, const void *msg)
{
    int rc = pl_call_send(call, msg);
    if (rc == PL_ERR_FULL) /* a reply cannot wait: the connection holds too much already */
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "too many responses waiting on this connection");
    if (rc != 0)
        return rc;
    return pl_call_finish(call, PL_CODE_OK, NULL);
}

int pl_call_add_initial_metadata(pl_call_t *call, const char *key, const void *value, size_t len)
{
    if (call->response_started)
        return PL_ERR_CLOSED;
    return pl_metadata_add(&call->initial_md, key, value, len);
}

int pl_call_add_trailing_metadata(pl_call_t *call, const char *key, const void *value, size_t len)
{
    if (call->trailers_sent)
        return PL_ERR_CLOSED;
    return pl_metadata_add(&call->trailing_md, key, value, len);
}

void pl_call_set_compression(pl_call_t *call, bool on)
{
    call->compress_out = on;
}

ssize_t pl_call_read_body(pl_call_t *call, uint8_t *buf, size_t len, uint32_t *data_flags)
{
    const pl_call_limits_t *cfg = call->limits;
    size_t n = 0;
    while (n < len && call->out.head) {
        pl_outmsg_t *m = pl_list_entry(call->out.head, pl_outmsg_t, link);
        size_t take = m->len - m->off;
        if (take > len - n)
            take = len - n;
        memcpy(buf + n, m->data + m->off, take);
        m->off += (uint32_t)take;
        n += take;
        if (m->off == m->len) {
            pl_list_remove(&call->out, &m->link);
            free(m);
        }
    }
    call->out_bytes -= (uint32_t)n;
    if (n && call->conn)
        call->ops->out_changed(call->conn, -(int64_t)n);
    if (call->writable_wanted && call->out_bytes < cfg->call_outbound_limit / 2)
        pl_call_schedule_writable(call);
    if (!call->out.head && call->finished) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!call->is_plain_http) {
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (!call->trailers_sent)
                submit_trailers(call);
        }
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

uint32_t pl_call_queued_bytes(const pl_call_t *call)
{
    return call->out_bytes;
}

void pl_call_on_connection_writable(pl_call_t *call)
{
    const pl_call_limits_t *cfg = call->limits;
    if (call->writable_wanted && call->out_bytes < cfg->call_outbound_limit / 2)
        pl_call_schedule_writable(call);
}
