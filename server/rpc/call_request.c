/* call_request.c — the request side of a server call: header validation
 * (PROTOCOL-HTTP2.md), message reassembly, decompression, decoding and
 * dispatch to the service handler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/call_state.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/errors.h"
#include "runtime/gzip.h"
#include "runtime/timeout.h"

/* RFC 7541 §4.1 per-header overhead, also used for our header list cap. */
#define HEADER_OVERHEAD 32

static bool equals(const uint8_t *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/* "application/grpc", optionally followed by "+proto", ";charset=..." etc. */
static bool is_grpc_content_type(const uint8_t *v, size_t len)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof(base) - 1;
    if (len < n || memcmp(v, base, n) != 0)
        return false;
    return len == n || v[n] == '+' || v[n] == ';';
}

/* True if a comma-separated list (grpc-accept-encoding) names token. */
static bool list_has_token(const uint8_t *v, size_t len, const char *token)
{
    size_t tl = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',' && v[i] != ' ')
            i++;
        if (i - start == tl && memcmp(v + start, token, tl) == 0)
            return true;
    }
    return false;
}

void pl_call_on_header(pl_call_t *call, const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len)
{
    const pl_call_limits_t *cfg = call->limits;
    /* nghttp2 does not enforce the MAX_HEADER_LIST_SIZE we advertise: do it. */
    call->header_bytes += (uint32_t)(name_len + value_len + HEADER_OVERHEAD);
    if (call->header_bytes > cfg->max_metadata) {
        call->metadata_too_large = true;
        return;
    }
    if (name_len && name[0] == ':') {
        if (equals(name, name_len, ":method")) {
            call->is_post = equals(value, value_len, "POST");
        } else if (equals(name, name_len, ":path")) {
            free(call->path);
            call->path = strndup((const char *)value, value_len);
            call->has_path = call->path != NULL;
        }
        return;
    }
    if (equals(name, name_len, "content-type")) {
        call->is_grpc_content = is_grpc_content_type(value, value_len);
    } else if (equals(name, name_len, "grpc-timeout")) {
        int64_t usec;
        if (pl_timeout_parse((const char *)value, value_len, &usec) == 0)
            call->deadline_usec = pl_now_usec() + usec;
        /* a malformed timeout is ignored, as gRPC implementations do */
    } else if (equals(name, name_len, "grpc-encoding")) {
        if (equals(value, value_len, "gzip"))
            call->req_encoding = PL_ENC_GZIP;
        else if (equals(value, value_len, "identity"))
            call->req_encoding = PL_ENC_IDENTITY;
        else
            call->req_encoding = PL_ENC_UNSUPPORTED;
    } else if (equals(name, name_len, "grpc-accept-encoding")) {
        call->accepts_gzip = list_has_token(value, value_len, "gzip");
    } else if (!pl_metadata_key_is_reserved(name, name_len)) {
        int rc = pl_metadata_add_wire(&call->md, name, name_len, value, value_len);
        if (rc == PL_ERR_LIMIT || rc == PL_ERR_NOMEM)
            call->metadata_too_large = true;
        /* PL_ERR_INVALID (bad base64 in a -bin value): dropped, like grpc-go */
    }
}

/* "/pkg.Service/Method" -> message naming the unknown part. */
static void reject_unknown(pl_call_t *call)
{
    char msg[400];
    const char *path = call->path ? call->path : "";
    const char *slash = path[0] == '/' ? strchr(path + 1, '/') : NULL;
    if (!slash) {
        snprintf(msg, sizeof(msg), "malformed method name: %.200s", path);
        pl_call_reject(call, PL_CODE_UNIMPLEMENTED, msg);
        return;
    }
    int svc_len = (int)(slash - path - 1);
    char svc[256];
    snprintf(svc, sizeof(svc), "%.*s", svc_len > 200 ? 200 : svc_len, path + 1);
    if (!call->ops->has_service(call->conn, svc))
        snprintf(msg, sizeof(msg), "unknown service %s", svc);
    else
        snprintf(msg, sizeof(msg), "unknown method %.100s for service %s", slash + 1, svc);
    pl_call_reject(call, PL_CODE_UNIMPLEMENTED, msg);
}

void pl_call_on_headers_end(pl_call_t *call)
{
    const pl_call_limits_t *cfg = call->limits;
    if (!call->is_grpc_content) {
        /* Not gRPC. "/" answers 200 so HTTP/2 conformance tools (h2spec)
         * have a resource to exercise; anything else is the wrong media type. */
        if (call->path && strcmp(call->path, "/") == 0)
            pl_call_plain_http(call, 200, "parley: gRPC server (use a gRPC client)\n");
        else
            pl_call_plain_http(call, 415, "parley: expected content-type application/grpc\n");
        return;
    }
    if (!call->is_post) {
        pl_call_plain_http(call, 405, "parley: gRPC requires POST\n");
        return;
    }
    if (call->metadata_too_large) {
        char msg[96];
        snprintf(msg, sizeof(msg), "request metadata exceeds the limit of %u bytes", cfg->max_metadata);
        pl_call_reject(call, PL_CODE_RESOURCE_EXHAUSTED, msg);
        return;
    }
    if (!call->has_path) {
        pl_call_reject(call, PL_CODE_INTERNAL, "missing :path");
        return;
    }
    call->entry = call->ops->find_method(call->conn, call->path, strlen(call->path));
    if (!call->entry || !call->entry->impl.on_message) {
        reject_unknown(call);
        return;
    }
    if (call->req_encoding == PL_ENC_UNSUPPORTED) {
        pl_call_reject(call, PL_CODE_UNIMPLEMENTED, "unsupported grpc-encoding (supported: identity, gzip)");
        return;
    }
    free(call->path); /* only needed to route */
    call->path = NULL;
    call->headers_done = true;
    if (call->deadline_usec) {
        if (call->deadline_usec <= pl_now_usec()) {
            pl_call_reject(call, PL_CODE_DEADLINE_EXCEEDED, "deadline exceeded before the call started");
            return;
        }
        if (pl_call_arm_deadline(call) != 0) {
            pl_call_reject(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
            return;
        }
    }
    const pl_method_impl_t *impl = &call->entry->impl;
    if (pl_shape_streams_requests(impl->method->shape)) {
        call->dispatched = true;
        if (impl->on_start) {
            pl_call_ref(call);
            impl->on_start(call, call->entry->svc);
            pl_call_unref(call);
        }
    }
}

/* Decodes one complete message and hands it to the handler (streamed
 * requests) or keeps it for the half-close (unary, server streaming).
 * Takes ownership of payload. */
static void deliver_message(pl_call_t *call, uint8_t *payload, uint32_t len, bool compressed)
{
    const pl_call_limits_t *cfg = call->limits;
    const pl_method_impl_t *impl = &call->entry->impl;
    const pl_method_t *m = impl->method;
    bool streaming = pl_shape_streams_requests(m->shape);

    if (compressed) {
        if (call->req_encoding != PL_ENC_GZIP) {
            free(payload);
            pl_call_finish(call, PL_CODE_INTERNAL, "compressed message without grpc-encoding");
            return;
        }
        uint8_t *plain;
        size_t plain_len;
        int rc = pl_gzip_decompress(payload, len, cfg->max_recv_message, &plain, &plain_len);
        free(payload);
        if (rc != 0) {
            char msg[96];
            if (rc == PL_ERR_LIMIT)
                snprintf(msg, sizeof(msg), "decompressed message larger than the limit of %u bytes",
                         cfg->max_recv_message);
            else
                snprintf(msg, sizeof(msg), "cannot decompress message");
            pl_call_finish(call, rc == PL_ERR_LIMIT ? PL_CODE_RESOURCE_EXHAUSTED : PL_CODE_INTERNAL, msg);
            return;
        }
        payload = plain;
        len = (uint32_t)plain_len;
    }
    call->last_in_compressed = compressed;

    if (!streaming && call->messages_in > 0) {
        free(payload);
        pl_call_finish(call, PL_CODE_INTERNAL, "more than one request message for a unary request");
        return;
    }
    call->messages_in++;
    /* A unary request lives as long as the call; a streamed one only for
     * its callback, so a long-lived stream holds no decoded struct. */
    void *req = calloc(1, m->request_size);
    if (!req) {
        free(payload);
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    const char *why = NULL;
    if (pl_pb_decode(m->request, payload, len, req, &why) != 0) {
        char msg[128];
        bool overflow = pl_pb_error_is_overflow(why);
        snprintf(msg, sizeof(msg), "%s: %s", overflow ? "request field exceeds its size limit" : "invalid request",
                 why ? why : "decode error");
        free(req);
        /* the client's fault either way: INVALID_ARGUMENT, never INTERNAL */
        if (streaming && call->on_invalid) {
            pl_call_ref(call);
            call->on_invalid(call, payload, len, PL_CODE_INVALID_ARGUMENT, msg, call->user);
            free(payload);
            pl_call_unref(call);
            return;
        }
        free(payload);
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, msg);
        return;
    }
    if (!streaming) {
        call->req = req;
        call->req_payload = payload; /* views in call->req point here */
        return;
    }
    pl_call_ref(call);
    impl->on_message(call, req, call->entry->svc);
    free(payload);
    free(req);
    pl_call_unref(call);
}

/* Runs the deframer over data; returns the bytes it consumed (all of them
 * unless the call ended or a message left the call paused). */
static size_t feed(pl_call_t *call, const uint8_t *data, size_t len)
{
    const pl_call_limits_t *cfg = call->limits;
    size_t pos = 0;
    while (pos < len && !pl_call_is_finished(call) && !call->recv_paused) {
        size_t used;
        pl_deframe_result_t r = pl_deframer_feed(&call->deframer, data + pos, len - pos, &used);
        pos += used;
        if (r == PL_DEFRAME_MESSAGE) {
            uint8_t *payload;
            uint32_t plen;
            bool compressed;
            pl_deframer_take(&call->deframer, &payload, &plen, &compressed);
            deliver_message(call, payload, plen, compressed);
        } else if (r == PL_DEFRAME_TOO_LARGE) {
            char msg[96];
            snprintf(msg, sizeof(msg), "received message larger than max (%u vs. %u)",
                     pl_deframer_declared_length(&call->deframer), cfg->max_recv_message);
            pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, msg);
        } else if (r == PL_DEFRAME_BAD_FLAG) {
            pl_call_finish(call, PL_CODE_INTERNAL, "invalid message compression flag");
        } else if (r == PL_DEFRAME_NOMEM) {
            pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        }
    }
    return pl_call_is_finished(call) ? len : pos;
}

int32_t pl_call_stream_id(const pl_call_t *call)
{
    return call->stream_id;
}

uint32_t pl_call_partial_bytes(const pl_call_t *call)
{
    return call->partial_bytes;
}

int64_t pl_call_partial_since(const pl_call_t *call)
{
    return call->partial_since_ms;
}

/* Tells the connection how much of an incomplete message this call holds
 * now (after the deframer ran). */
static void account_partial(pl_call_t *call)
{
    bool is_mid = pl_deframer_is_mid_message(&call->deframer);
    uint32_t bytes = is_mid ? call->deframer.have : 0;
    if (!is_mid)
        call->partial_since_ms = 0;
    else if (!call->partial_since_ms)
        call->partial_since_ms = pl_now_msec();
    if (bytes == call->partial_bytes)
        return;
    int64_t delta = (int64_t)bytes - (int64_t)call->partial_bytes;
    call->partial_bytes = bytes;
    if (call->conn)
        call->ops->in_changed(call->conn, delta);
}

/* Gives n processed bytes back as flow-control window, unless the
 * connection's incomplete messages are over its budget: then the window
 * stays shut (the peer must wait) until room is made. */
static void consume(pl_call_t *call, size_t n)
{
    if (!call->conn)
        return;
    if (!call->ops->in_may_consume(call->conn, call)) {
        call->held_back += n;
        call->ops->consume_held(call->conn, n);
        return;
    }
    if (call->held_back)
        pl_call_consume_held_back(call);
    call->ops->consume(call->conn, call->stream_id, n);
}

void pl_call_consume_held_back(pl_call_t *call)
{
    if (call->held_back && call->conn && call->ops->in_may_consume(call->conn, call)) {
        call->ops->consume_stream(call->conn, call->stream_id, call->held_back);
        call->held_back = 0;
        call->ops->kick(call->conn);
    }
}

void pl_call_expire_partial(pl_call_t *call, const char *why)
{
    const pl_call_limits_t *cfg = call->limits;
    char msg[96];
    snprintf(msg, sizeof(msg), "request message not received within %d ms", cfg->message_timeout_ms);
    pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, why ? why : msg);
    pl_deframer_dispose(&call->deframer); /* nothing more of it is read */
    pl_deframer_init(&call->deframer, cfg->max_recv_message);
    account_partial(call);
    if (call->conn) /* and the client need not send the rest */
        call->ops->reset(call->conn, call->stream_id, NGHTTP2_NO_ERROR);
}

void pl_call_on_data(pl_call_t *call, const uint8_t *data, size_t len)
{
    pl_call_conn_t *conn = call->conn;
    if (!call->headers_done || pl_call_is_finished(call)) {
        call->ops->consume(conn, call->stream_id, len); /* nobody will read it */
        return;
    }
    if (call->recv_paused || call->held_len) {
        /* Held without opening the window, so the client can send at most
         * one window's worth before it must wait for us. */
        uint8_t *held = realloc(call->held, call->held_len + len);
        if (!held) {
            pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
            call->ops->consume(conn, call->stream_id, len);
            return;
        }
        memcpy(held + call->held_len, data, len);
        call->held = held;
        call->held_len += (uint32_t)len;
        return;
    }
    pl_call_ref(call);
    size_t used = feed(call, data, len);
    if (used < len) { /* the handler paused mid-chunk: hold the rest */
        uint8_t *held = malloc(len - used);
        if (held) {
            memcpy(held, data + used, len - used);
            call->held = held;
            call->held_len = (uint32_t)(len - used);
            len = used;
        }
    }
    account_partial(call);
    consume(call, len);
    pl_call_unref(call);
}

static void dispatch_half_close(pl_call_t *call)
{
    if (!call->headers_done || pl_call_is_finished(call))
        return;
    if (pl_deframer_is_mid_message(&call->deframer)) {
        pl_call_finish(call, PL_CODE_INTERNAL, "stream ended in the middle of a message");
        return;
    }
    const pl_method_impl_t *impl = &call->entry->impl;
    if (pl_shape_streams_requests(impl->method->shape)) {
        if (impl->on_half_close) {
            pl_call_ref(call);
            impl->on_half_close(call, call->entry->svc);
            pl_call_unref(call);
        }
        return;
    }
    if (call->messages_in == 0) {
        pl_call_finish(call, PL_CODE_INTERNAL, "missing request message");
        return;
    }
    call->dispatched = true;
    pl_call_ref(call);
    impl->on_message(call, call->req, call->entry->svc);
    pl_call_unref(call);
}

void pl_call_on_remote_end(pl_call_t *call)
{
    call->remote_ended = true;
    if (call->recv_paused || call->held_len)
        return; /* delivered after the held messages, on resume */
    dispatch_half_close(call);
}

void pl_call_pause_recv(pl_call_t *call)
{
    call->recv_paused = true;
}

void pl_call_resume_recv(pl_call_t *call)
{
    if (!call->recv_paused)
        return;
    call->recv_paused = false;
    pl_call_ref(call);
    while (call->held_len && !call->recv_paused && !pl_call_is_finished(call)) {
        uint8_t *held = call->held;
        uint32_t held_len = call->held_len;
        call->held = NULL;
        call->held_len = 0;
        size_t used = feed(call, held, held_len);
        if (used < held_len && !pl_call_is_finished(call)) {
            call->held_len = held_len - (uint32_t)used;
            call->held = malloc(call->held_len);
            if (call->held)
                memcpy(call->held, held + used, call->held_len);
            else
                call->held_len = 0;
        }
        account_partial(call);
        consume(call, used < held_len && !pl_call_is_finished(call) ? used : held_len);
        free(held);
    }
    if (!call->recv_paused && !call->held_len && call->remote_ended)
        dispatch_half_close(call);
    if (call->conn)
        call->ops->kick(call->conn);
    pl_call_unref(call);
}
