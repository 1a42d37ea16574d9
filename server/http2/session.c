/* session.c — nghttp2 server session: limits, callbacks, call dispatch. */
#include "http2/session.h"

#include <stdlib.h>
#include <string.h>

#include "rpc/call_internal.h"
#include "transport/conn.h"

/* Rapid reset (CVE-2023-44487): a burst of 1000 resets, then 33/s; nghttp2
 * answers abuse with GOAWAY(ENHANCE_YOUR_CALM). */
#define RESET_BURST 1000
#define RESET_RATE 33
/* CONTINUATION frames per header block (nghttp2's own default is 8). */
#define MAX_CONTINUATIONS 8
/* Queued SETTINGS/PING acks before we call it a flood. */
#define MAX_OUTBOUND_ACK 1000
#define MAX_SETTINGS_ENTRIES 32
/* Our HPACK encoder table: smaller than the 4 KiB default to keep idle
 * connections light; response headers repeat little. */
#define DEFLATE_TABLE_SIZE 1024

struct pl_h2 {
    nghttp2_session *ng;
    pl_conn_t *conn;
    pl_server_t *server;
    pl_call_t *calls;
    size_t call_count;
    bool is_freeing;
};

pl_server_t *pl_h2_server(const pl_h2_t *h2) { return h2->server; }
pl_conn_t *pl_h2_conn(const pl_h2_t *h2) { return h2->conn; }
bool pl_h2_has_calls(const pl_h2_t *h2) { return h2->call_count > 0; }

static pl_call_t *stream_call(nghttp2_session *ng, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(ng, stream_id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    pl_h2_t *h2 = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    pl_call_t *call = pl_call_new(h2, frame->hd.stream_id);
    if (!call) /* out of memory: refuse this stream only */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, call);
    pl_call_link(&h2->calls, call);
    h2->call_count++;
    pl_conn_on_calls_changed(h2->conn);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers carry nothing gRPC uses */
    pl_call_t *call = stream_call(ng, frame->hd.stream_id);
    if (call)
        pl_call_on_header(call, name, namelen, value, valuelen);
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    pl_h2_t *h2 = user_data;
    pl_conn_on_frame(h2->conn);
    pl_call_t *call;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        call = stream_call(ng, frame->hd.stream_id);
        if (!call)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            pl_call_on_headers_end(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            pl_call_on_remote_end(call);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            call = stream_call(ng, frame->hd.stream_id);
            if (call)
                pl_call_on_remote_end(call);
        }
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            pl_conn_on_ping_ack(h2->conn);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data)
{
    (void)flags;
    (void)user_data;
    pl_call_t *call = stream_call(ng, stream_id);
    if (call)
        pl_call_on_data(call, data, len);
    else /* no call to account it to: keep the window open */
        nghttp2_session_consume(ng, stream_id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t stream_id, uint32_t error_code, void *user_data)
{
    pl_h2_t *h2 = user_data;
    pl_call_t *call = stream_call(ng, stream_id);
    if (!call)
        return 0;
    nghttp2_session_set_stream_user_data(ng, stream_id, NULL);
    pl_call_unlink(&h2->calls, call);
    h2->call_count--;
    pl_call_on_stream_close(call, error_code);
    if (!h2->is_freeing)
        pl_conn_on_calls_changed(h2->conn);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user_data)
{
    (void)user_data;
    pl_call_t *call = source->ptr;
    if (!call || stream_call(ng, stream_id) != call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return pl_call_read_body(call, buf, length, data_flags);
}

pl_h2_t *pl_h2_new(pl_conn_t *conn, pl_server_t *srv)
{
    const pl_server_config_t *cfg = pl_server_config(srv);
    pl_h2_t *h2 = calloc(1, sizeof(*h2));
    if (!h2)
        return NULL;
    h2->conn = conn;
    h2->server = srv;

    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0) {
        free(h2);
        return NULL;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        free(h2);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

    /* Window updates follow what calls have processed, not what arrived. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_stream_reset_rate_limit(opt, RESET_BURST, RESET_RATE);
    nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
    nghttp2_option_set_max_outbound_ack(opt, MAX_OUTBOUND_ACK);
    nghttp2_option_set_max_settings(opt, MAX_SETTINGS_ENTRIES);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, DEFLATE_TABLE_SIZE);

    int rv = nghttp2_session_server_new2(&h2->ng, cbs, h2, opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(h2);
        return NULL;
    }

    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->initial_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_metadata},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    /* The connection window covers all streams: let each have its window. */
    int32_t conn_window = (int32_t)(cfg->initial_window > (1u << 29) ? (1u << 30) : cfg->initial_window * 2);
    if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, settings, sizeof(settings) / sizeof(settings[0])) != 0 ||
        nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0, conn_window) != 0) {
        nghttp2_session_del(h2->ng);
        free(h2);
        return NULL;
    }
    return h2;
}

void pl_h2_free(pl_h2_t *h2)
{
    h2->is_freeing = true;
    /* nghttp2_session_del does not report open streams: tell each call. */
    while (h2->calls) {
        pl_call_t *call = h2->calls;
        pl_call_unlink(&h2->calls, call);
        h2->call_count--;
        pl_call_on_stream_close(call, NGHTTP2_CANCEL);
    }
    nghttp2_session_del(h2->ng);
    free(h2);
}

int pl_h2_recv(pl_h2_t *h2, const uint8_t *data, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(h2->ng, data, len);
    return rv < 0 ? -1 : 0;
}

long pl_h2_send(pl_h2_t *h2, const uint8_t **data)
{
    ssize_t n = nghttp2_session_mem_send(h2->ng, data);
    return n < 0 ? -1 : (long)n;
}

bool pl_h2_wants_io(const pl_h2_t *h2)
{
    return nghttp2_session_want_read(h2->ng) || nghttp2_session_want_write(h2->ng);
}

void pl_h2_ping(pl_h2_t *h2)
{
    nghttp2_submit_ping(h2->ng, NGHTTP2_FLAG_NONE, NULL);
}

void pl_h2_shutdown_notice(pl_h2_t *h2)
{
    nghttp2_submit_shutdown_notice(h2->ng);
}

void pl_h2_goaway(pl_h2_t *h2, uint32_t error_code)
{
    int32_t last = nghttp2_session_get_last_proc_stream_id(h2->ng);
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE, last, error_code, NULL, 0);
}

void pl_h2_abort_calls(pl_h2_t *h2)
{
    for (pl_call_t *c = h2->calls; c; c = pl_call_next_in_session(c))
        pl_call_finish(c, PL_CODE_UNAVAILABLE, "server shutting down");
}

int pl_h2_submit_response(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n, bool with_body)
{
    nghttp2_data_provider dp;
    if (with_body) {
        dp.source.ptr = stream_call(h2->ng, stream_id);
        dp.read_callback = read_body;
    }
    return nghttp2_submit_response(h2->ng, stream_id, nva, n, with_body ? &dp : NULL) == 0 ? 0 : -1;
}

int pl_h2_submit_trailers(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n)
{
    return nghttp2_submit_trailer(h2->ng, stream_id, nva, n) == 0 ? 0 : -1;
}

void pl_h2_resume(pl_h2_t *h2, int32_t stream_id)
{
    nghttp2_session_resume_data(h2->ng, stream_id);
}

void pl_h2_reset(pl_h2_t *h2, int32_t stream_id, uint32_t error_code)
{
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

void pl_h2_consume(pl_h2_t *h2, int32_t stream_id, size_t n)
{
    if (n)
        nghttp2_session_consume(h2->ng, stream_id, n);
}

void pl_h2_kick(pl_h2_t *h2)
{
    pl_conn_kick(h2->conn);
}
