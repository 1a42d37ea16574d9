/* session.c — nghttp2 server session: limits, flood defences, callbacks,
 * call dispatch.
 *
 * Debian 12's nghttp2 (1.52.0+deb12u3) brings a rapid-reset limiter, a
 * CONTINUATION limit and a bound on queued SETTINGS/PING acks, but no limit
 * on frames that make a server work without making progress (the newer
 * "glitch" limiter). So every received byte first passes a small frame
 * scanner here, which sees each frame header before nghttp2 does and
 * charges two per-connection token buckets:
 *
 *   resets   RST_STREAM from the client (CVE-2023-44487, rapid reset)
 *   useless  PING, SETTINGS, PRIORITY, GOAWAY, unknown frame types, empty
 *            DATA without END_STREAM, empty HEADERS/CONTINUATION fragments,
 *            frames nghttp2 rejects (refused or malformed streams), and
 *            header blocks over the advertised header list size
 *
 * An empty bucket, or more CONTINUATION frames than allowed in one header
 * block, ends the connection: nghttp2 is fed only the bytes before the
 * offending frame, then we send GOAWAY(ENHANCE_YOUR_CALM) and the
 * connection closes once it is written. Any GOAWAY we send with an error
 * code (ours or nghttp2's own) ends the session the same way. */
#include "http2/session.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/call_conn.h"
#include "runtime/clock.h"
#include "transport/conn.h"

/* CONTINUATION frames per header block (nghttp2's own default is 8). */
#define MAX_CONTINUATIONS 8
/* Queued SETTINGS/PING acks before nghttp2 calls it a flood. */
#define MAX_OUTBOUND_ACK 1000
#define MAX_SETTINGS_ENTRIES 32
/* Our HPACK encoder table: smaller than the 4 KiB default to keep idle
 * connections light; response headers repeat little. */
#define DEFLATE_TABLE_SIZE 1024
/* What a header block larger than the advertised list size costs in the
 * useless-frame budget: a client repeating it is soon told to go. */
#define OVERSIZE_HEADERS_COST 50

#define FRAME_HEADER_LEN 9
#define CLIENT_MAGIC_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", checked by nghttp2 */
#define PRIORITY_FIELDS_LEN 5

/* A token bucket in thousandths of a token, refilled per millisecond. */
typedef struct budget {
    int64_t milli;
    int64_t last_ms;
} budget_t;

/* The client's recent stream ids (RFC 9113 §5.1.1: they only grow): a
 * ring indexed by id, so that a HEADERS frame for an id below the highest
 * can be told apart — never opened (out of order), opened and finished by
 * the client (reused), or opened and still sending when we closed it (a
 * late trailer: ignored). Older ids than the ring holds are only charged. */
#define ID_RING 512
enum { ID_OPENED = 1, ID_FINISHED = 2 };
typedef struct id_ring {
    int32_t id[ID_RING];
    uint8_t state[ID_RING];
    int32_t highest;
} id_ring_t;

/* The frame scanner: frame boundaries in the received byte stream. */
typedef struct scan {
    uint32_t magic_left; /* client preface bytes still to skip */
    uint8_t hdr[FRAME_HEADER_LEN];
    uint8_t hdr_len; /* bytes of the current frame header seen */
    uint8_t type, flags;
    uint32_t length;        /* the current frame's payload length */
    uint32_t payload_left;  /* payload bytes still to skip */
    bool wants_pad;         /* classification waits for the pad length byte */
    bool in_block;          /* a header block is open: CONTINUATION follows */
    uint32_t continuations; /* in the open block */
    int64_t frame_since;    /* a non-DATA frame began arriving; 0: none in progress */
    int64_t block_since;    /* the open header block began */
} scan_t;

/* The session: the connection its calls see (pl_call_conn_t, rpc/call_conn.h). */
struct pl_call_conn {
    nghttp2_session *ng;
    pl_conn_t *conn;
    pl_server_t *server;
    const pl_call_ops_t *ops; /* what we do with calls: rpc/call_conn.h */
    pl_call_t *calls;
    size_t call_count;
    bool is_freeing;

    scan_t scan;
    budget_t resets, useless;
    int64_t now_ms;         /* of the bytes being processed */
    const char *flood;      /* set by a callback: end the session after this chunk */
    bool is_terminated;     /* our GOAWAY(error) is queued: input is ignored */
    bool sent_error_goaway; /* a GOAWAY with an error code went out: we are done */
    int64_t last_data_sent_ms;
    uint32_t block_bytes; /* decoded size of the header block being received */
    bool block_oversize;  /* ... which went over max_metadata */
    uint32_t block_wire;  /* its bytes on the wire (HEADERS and CONTINUATION payloads) */
    /* budgets shared by the connection's calls */
    uint64_t out_queued; /* response bytes queued in calls, not yet given to nghttp2 */
    uint64_t in_partial; /* bytes of request messages received but not complete */
    int64_t created_ms;
    bool is_authenticated;   /* a call on it proved who it is: the larger inbound budget */
    uint32_t logged;         /* defences already logged for this connection (bit per kind) */
    bool is_out_blocked;     /* a send was refused for the connection's queue: wake senders when it drains */
    bool is_in_held;         /* some call holds back window: give it back when messages complete */
    id_ring_t ids;           /* the client's recent stream ids */
    uint32_t protocol_error; /* a connection error to answer after this chunk (0: none) */
    const char *protocol_why;
};

static bool pl_h2_has_calls(const pl_h2_t *h2)
{
    return h2->call_count > 0;
}

static const pl_call_conn_ops_t conn_ops; /* what calls ask of the session: at the end */
static void pl_h2_defence(pl_h2_t *h2, pl_defence_t kind, const char *detail);

/* ---- budgets ---- */

static void budget_init(budget_t *b, uint32_t burst, int64_t now_ms)
{
    b->milli = (int64_t)burst * 1000;
    b->last_ms = now_ms;
}

/* Takes cost tokens; false (taking nothing) if there are not that many. */
static bool budget_take(budget_t *b, uint32_t burst, uint32_t per_second, int64_t now_ms, uint32_t cost)
{
    if (now_ms > b->last_ms) {
        b->milli += (now_ms - b->last_ms) * (int64_t)per_second; /* per_second/1000 tokens a ms */
        if (b->milli > (int64_t)burst * 1000)
            b->milli = (int64_t)burst * 1000;
        b->last_ms = now_ms;
    }
    if (b->milli < (int64_t)cost * 1000)
        return false;
    b->milli -= (int64_t)cost * 1000;
    return true;
}

static bool charge_useless(pl_h2_t *h2, uint32_t cost)
{
    const pl_server_config_t *cfg = pl_server_config(h2->server);
    return budget_take(&h2->useless, cfg->useless_burst, cfg->useless_rate, h2->now_ms, cost);
}

/* ---- the frame scanner ---- */

/* Decides about the frame whose header (and pad length, if padded) was
 * just seen. NULL: go on; else why the connection must end. */
static const char *scan_judge(pl_h2_t *h2, uint8_t pad_len)
{
    const pl_server_config_t *cfg = pl_server_config(h2->server);
    scan_t *s = &h2->scan;
    uint32_t pad = (s->flags & NGHTTP2_FLAG_PADDED) ? 1u + pad_len : 0;
    bool useless;
    switch (s->type) {
    case NGHTTP2_DATA: useless = s->length <= pad && !(s->flags & NGHTTP2_FLAG_END_STREAM); break;
    case NGHTTP2_HEADERS:
        if (s->flags & NGHTTP2_FLAG_PRIORITY)
            pad += PRIORITY_FIELDS_LEN;
        useless = s->length <= pad && !(s->flags & NGHTTP2_FLAG_END_HEADERS);
        break;
    case NGHTTP2_CONTINUATION:
        if (++s->continuations > MAX_CONTINUATIONS)
            return "CONTINUATION flood";
        useless = s->length == 0 && !(s->flags & NGHTTP2_FLAG_END_HEADERS);
        break;
    case NGHTTP2_RST_STREAM:
        if (!budget_take(&h2->resets, cfg->reset_burst, cfg->reset_rate, h2->now_ms, 1))
            return "rapid reset: too many RST_STREAM";
        return NULL;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING: useless = !(s->flags & NGHTTP2_FLAG_ACK); break;
    case NGHTTP2_WINDOW_UPDATE:
    case NGHTTP2_PUSH_PROMISE: /* a protocol error from a client: nghttp2 says so */ useless = false; break;
    default: /* PRIORITY, GOAWAY, extension and unknown types */ useless = true; break;
    }
    if (useless && !charge_useless(h2, 1))
        return "flood of frames without progress";
    return NULL;
}

/* Called when the frame header is complete. */
static const char *scan_frame_header(pl_h2_t *h2)
{
    scan_t *s = &h2->scan;
    s->length = (uint32_t)s->hdr[0] << 16 | (uint32_t)s->hdr[1] << 8 | s->hdr[2];
    s->type = s->hdr[3];
    s->flags = s->hdr[4];
    s->payload_left = s->length;
    s->hdr_len = 0;
    if (s->type == NGHTTP2_HEADERS) {
        s->in_block = !(s->flags & NGHTTP2_FLAG_END_HEADERS);
        s->continuations = 0;
        s->block_since = s->frame_since;
        h2->block_wire = s->length;
    } else if (s->type == NGHTTP2_CONTINUATION) {
        h2->block_wire += s->length;
        if (s->flags & NGHTTP2_FLAG_END_HEADERS)
            s->in_block = false;
    }
    /* a DATA payload may take its time (flow control bounds it); any other
     * frame, and a header block, must arrive within header_timeout_ms */
    if (s->type == NGHTTP2_DATA || s->length == 0)
        s->frame_since = 0;
    bool padded = (s->flags & NGHTTP2_FLAG_PADDED) && (s->type == NGHTTP2_DATA || s->type == NGHTTP2_HEADERS);
    if (padded && s->length > 0) {
        s->wants_pad = true;
        return NULL;
    }
    return scan_judge(h2, 0);
}

/* Scans len bytes; returns how many of them nghttp2 may see: len, or the
 * offset of the frame that must not be processed (*why says why). */
static size_t scan(pl_h2_t *h2, const uint8_t *data, size_t len, const char **why)
{
    scan_t *s = &h2->scan;
    size_t pos = 0, frame_start = 0;
    *why = NULL;
    while (pos < len) {
        if (s->magic_left) {
            size_t n = len - pos < s->magic_left ? len - pos : s->magic_left;
            s->magic_left -= (uint32_t)n;
            pos += n;
            continue;
        }
        if (s->wants_pad) {
            s->wants_pad = false;
            *why = scan_judge(h2, data[pos]);
            if (*why)
                return frame_start;
        }
        if (s->payload_left) {
            size_t n = len - pos < s->payload_left ? len - pos : s->payload_left;
            s->payload_left -= (uint32_t)n;
            pos += n;
            if (!s->payload_left)
                s->frame_since = 0;
            continue;
        }
        if (s->hdr_len == 0) {
            frame_start = pos;
            s->frame_since = h2->now_ms;
        }
        size_t want = (size_t)(FRAME_HEADER_LEN - s->hdr_len);
        size_t n = len - pos < want ? len - pos : want;
        memcpy(s->hdr + s->hdr_len, data + pos, n);
        s->hdr_len = (uint8_t)(s->hdr_len + n);
        pos += n;
        if (s->hdr_len < FRAME_HEADER_LEN)
            break;
        *why = scan_frame_header(h2);
        if (*why)
            return frame_start;
    }
    return len;
}

static int64_t pl_h2_incomplete_since(const pl_h2_t *h2)
{
    if (h2->is_terminated || h2->sent_error_goaway)
        return 0;
    if (h2->scan.in_block)
        return h2->scan.block_since;
    return h2->scan.frame_since;
}

/* Stalled: calls have output queued and none of them may send it, for
 * want of connection credit or of their own stream's (a peer can starve
 * each stream while keeping the connection window open). */
static int64_t pl_h2_flow_stalled_since(const pl_h2_t *h2)
{
    if (!h2->call_count || h2->sent_error_goaway || !h2->out_queued)
        return 0;
    if (nghttp2_session_get_remote_window_size(h2->ng) > 0) {
        for (pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
            if (h2->ops->queued_bytes(c) &&
                nghttp2_session_get_stream_remote_window_size(h2->ng, h2->ops->stream_id(c)) > 0)
                return 0; /* one call can still send */
    }
    return h2->last_data_sent_ms ? h2->last_data_sent_ms : h2->created_ms;
}

/* ---- budgets shared by the calls ---- */

/* The budget for incomplete request messages (inbound_buffer, or
 * inbound_buffer_unauth until a call on it authenticated): past it only the
 * oldest message's stream window reopens; past 4 times it the newest
 * messages' calls end with RESOURCE_EXHAUSTED. */
static uint32_t in_budget(const pl_h2_t *h2)
{
    const pl_server_config_t *cfg = pl_server_config(h2->server);
    return h2->is_authenticated ? cfg->inbound_buffer : cfg->inbound_buffer_unauth;
}

static bool out_fits(pl_h2_t *h2, size_t len)
{
    /* one message always fits an empty queue (max_send_message bounds it) */
    if (!h2->out_queued || h2->out_queued + len <= pl_server_config(h2->server)->conn_outbound_limit)
        return true;
    h2->is_out_blocked = true;
    pl_h2_defence(h2, PL_DEFENCE_OUTBOUND_BUDGET, "responses over connection_outbound_bytes");
    return false;
}

static void out_changed(pl_h2_t *h2, int64_t delta)
{
    h2->out_queued = (uint64_t)((int64_t)h2->out_queued + delta);
    if (delta < 0 && h2->is_out_blocked && h2->out_queued < pl_server_config(h2->server)->conn_outbound_limit / 2) {
        h2->is_out_blocked = false;
        for (pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
            h2->ops->on_connection_writable(c);
    }
}

static void mark_authenticated(pl_h2_t *h2)
{
    h2->is_authenticated = true;
}

/* The call whose partial message began first: it may always go on, so the
 * budget can never leave every call waiting for the others. */
static const pl_call_t *oldest_partial(const pl_h2_t *h2)
{
    const pl_call_t *oldest = NULL;
    for (const pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
        if (h2->ops->partial_since(c) && (!oldest || h2->ops->partial_since(c) < h2->ops->partial_since(oldest)))
            oldest = c;
    return oldest;
}

/* The call whose incomplete message began last (never the oldest). */
static pl_call_t *youngest_partial(const pl_h2_t *h2)
{
    pl_call_t *young = NULL;
    for (pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
        if (h2->ops->partial_since(c) && (!young || h2->ops->partial_since(c) >= h2->ops->partial_since(young)))
            young = c;
    return young == oldest_partial(h2) ? NULL : young;
}

static bool in_may_consume(pl_h2_t *h2, const pl_call_t *call)
{
    return h2->in_partial <= in_budget(h2) || oldest_partial(h2) == call;
}

static void in_changed(pl_h2_t *h2, int64_t delta)
{
    h2->in_partial = (uint64_t)((int64_t)h2->in_partial + delta);
    if (delta < 0) {
        if (!h2->is_in_held)
            return;
        /* under the budget every call may go on; over it, the oldest may
         * now be another one */
        h2->is_in_held = h2->in_partial > in_budget(h2);
        for (pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
            h2->ops->consume_held_back(c);
        return;
    }
    /* Past the hard cap (4 x the budget) the newest incomplete messages
     * go, RESOURCE_EXHAUSTED, until the connection is back under it. */
    pl_call_t *young;
    while (h2->in_partial > 4ull * in_budget(h2) && (young = youngest_partial(h2))) {
        pl_h2_defence(h2, PL_DEFENCE_INBOUND_BUDGET, "incomplete request messages over 4 x the inbound budget");
        h2->ops->expire_partial(young, "too many incomplete request messages on this connection");
    }
}

static void consume_held(pl_h2_t *h2, size_t n)
{
    h2->is_in_held = true;
    /* Only the stream's window stays shut: the connection's always
     * reopens, so the call allowed to go on (the oldest) is never starved
     * of connection credit by the others; what the others can still send
     * is bounded by their stream windows and by the hard cap below. */
    nghttp2_session_consume_connection(h2->ng, n);
}

static void consume_stream(pl_h2_t *h2, int32_t stream_id, size_t n)
{
    if (n)
        nghttp2_session_consume_stream(h2->ng, stream_id, n);
}

static int64_t pl_h2_oldest_partial_since(const pl_h2_t *h2)
{
    const pl_call_t *c = h2->in_partial ? oldest_partial(h2) : NULL;
    return c ? h2->ops->partial_since(c) : 0;
}

static void pl_h2_expire_partials(pl_h2_t *h2, int64_t begun_before_ms)
{
    pl_call_t *next;
    for (pl_call_t *c = h2->calls; c; c = next) {
        next = h2->ops->next(c);
        int64_t since = h2->ops->partial_since(c);
        if (since && since <= begun_before_ms) {
            pl_h2_defence(h2, PL_DEFENCE_MESSAGE_TIMEOUT, "a request message not complete in message_timeout_ms");
            h2->ops->expire_partial(c, NULL);
        }
    }
}

/* ---- nghttp2 callbacks ---- */

static pl_call_t *stream_call(nghttp2_session *ng, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(ng, stream_id);
}

static void id_mark(id_ring_t *r, int32_t id, uint8_t state)
{
    size_t slot = (size_t)(id >> 1) % ID_RING;
    if (r->id[slot] != id) {
        r->id[slot] = id;
        r->state[slot] = 0;
    }
    r->state[slot] |= state;
    if (id > r->highest)
        r->highest = id;
}

/* A HEADERS frame for an id below the highest that nghttp2 no longer
 * knows: 0 (a late trailer, or too old to tell), or the RFC 9113 error. */
static uint32_t id_reuse_error(const id_ring_t *r, int32_t id, const char **why)
{
    if ((id & 1) == 0 || id <= r->highest - 2 * ID_RING)
        return 0;
    size_t slot = (size_t)(id >> 1) % ID_RING;
    if (r->id[slot] != id) { /* a lower id opened after a higher one (§5.1.1) */
        *why = "stream id lower than one already opened";
        return NGHTTP2_PROTOCOL_ERROR;
    }
    if (r->state[slot] & ID_FINISHED) { /* the client had ended it: a reused id (§5.1) */
        *why = "HEADERS on a stream the client had closed";
        return NGHTTP2_STREAM_CLOSED;
    }
    return 0;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    pl_h2_t *h2 = user_data;
    h2->block_bytes = 0;
    h2->block_oversize = false;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    id_mark(&h2->ids, frame->hd.stream_id, ID_OPENED);
    pl_worker_t *w = pl_conn_worker(h2->conn);
    pl_call_t *call =
        h2->ops->open(h2, &conn_ops, frame->hd.stream_id, pl_server_call_limits(h2->server), w, pl_worker_base(w));
    if (!call) /* out of memory: refuse this stream only */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, call);
    h2->ops->link(&h2->calls, call);
    h2->call_count++;
    pl_conn_on_calls_changed(h2->conn);
    return 0;
}

/* RFC 7541 §4.1 per-header overhead, as SETTINGS_MAX_HEADER_LIST_SIZE counts. */
#define HEADER_OVERHEAD 32

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data)
{
    (void)flags;
    pl_h2_t *h2 = user_data;
    /* nghttp2 does not enforce the MAX_HEADER_LIST_SIZE we advertise. Past
     * it the call answers RESOURCE_EXHAUSTED (it sees the header that
     * crosses the limit); the rest of the block is not passed on, and the
     * client pays for the block in its budget. */
    if (h2->block_oversize) {
        /* Past the limit nothing more of this block is looked at: the
         * stream is reset (gRPC clients read ENHANCE_YOUR_CALM as
         * RESOURCE_EXHAUSTED) and nghttp2 only keeps its HPACK table in
         * step, without validating or passing on the rest — a block of
         * one-byte references to a large table entry costs no more than
         * its wire size. */
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    h2->block_bytes += (uint32_t)(namelen + valuelen + HEADER_OVERHEAD);
    if (h2->block_bytes > pl_server_config(h2->server)->max_metadata) {
        h2->block_oversize = true;
        pl_h2_defence(h2, PL_DEFENCE_HEADER_LIST, "a request header block over max_metadata_bytes");
        /* charged for its size on the wire as well: repeating large
         * oversized blocks soon ends the connection */
        if (!charge_useless(h2, OVERSIZE_HEADERS_COST + h2->block_wire / 1024))
            h2->flood = "repeated oversized header lists";
    }
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers carry nothing gRPC uses */
    pl_call_t *call = stream_call(ng, frame->hd.stream_id);
    if (call)
        h2->ops->on_header(call, name, namelen, value, valuelen);
    return 0;
}

/* Frames for streams that are gone (closed, reset, or never opened below
 * the highest one) do no work for anyone: each costs from the useless-frame
 * budget, so a flood of them ends the connection. */
static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user_data)
{
    pl_h2_t *h2 = user_data;
    bool on_stream = hd->type == NGHTTP2_DATA || hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_WINDOW_UPDATE ||
                     hd->type == NGHTTP2_RST_STREAM;
    if (!on_stream || !hd->stream_id || hd->stream_id > nghttp2_session_get_last_proc_stream_id(ng) ||
        nghttp2_session_find_stream(ng, hd->stream_id))
        return 0;
    if (hd->type == NGHTTP2_HEADERS && !h2->protocol_error)
        h2->protocol_error = id_reuse_error(&h2->ids, hd->stream_id, &h2->protocol_why);
    if (!charge_useless(h2, 1))
        h2->flood = "flood of frames on closed streams";
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    pl_h2_t *h2 = user_data;
    pl_conn_on_frame(h2->conn);
    pl_call_t *call;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        h2->block_bytes = 0;
        h2->block_oversize = false;
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            id_mark(&h2->ids, frame->hd.stream_id, ID_FINISHED);
        call = stream_call(ng, frame->hd.stream_id);
        if (!call)
            break;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            h2->ops->on_headers_end(call);
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
            h2->ops->on_remote_end(call);
        break;
    case NGHTTP2_DATA:
        if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
            id_mark(&h2->ids, frame->hd.stream_id, ID_FINISHED);
            call = stream_call(ng, frame->hd.stream_id);
            if (call)
                h2->ops->on_remote_end(call);
        }
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            pl_conn_on_ping_ack(h2->conn);
        break;
    default: break;
    }
    return 0;
}

/* A frame nghttp2 refused: a stream over the concurrency limit (before the
 * client acknowledged it), a malformed request, a bad window update... */
static int on_invalid_frame(nghttp2_session *ng, const nghttp2_frame *frame, int lib_error_code, void *user_data)
{
    (void)ng;
    (void)frame;
    (void)lib_error_code;
    pl_h2_t *h2 = user_data;
    if (!charge_useless(h2, 1))
        h2->flood = "flood of invalid frames";
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    (void)ng;
    pl_h2_t *h2 = user_data;
    if (frame->hd.type == NGHTTP2_DATA)
        h2->last_data_sent_ms = pl_now_msec();
    else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR)
        h2->sent_error_goaway = true;
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data)
{
    (void)flags;
    pl_h2_t *h2 = user_data;
    pl_call_t *call = stream_call(ng, stream_id);
    if (call)
        h2->ops->on_data(call, data, len);
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
    h2->ops->unlink(&h2->calls, call);
    h2->call_count--;
    uint32_t queued = h2->ops->queued_bytes(call), partial = h2->ops->partial_bytes(call);
    h2->ops->on_stream_close(call, error_code);
    if (!h2->is_freeing) { /* its share of the budgets is free for the others */
        out_changed(h2, -(int64_t)queued);
        in_changed(h2, -(int64_t)partial);
    }
    if (!h2->is_freeing)
        pl_conn_on_calls_changed(h2->conn);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user_data)
{
    pl_h2_t *h2 = user_data;
    pl_call_t *call = source->ptr;
    if (!call || stream_call(ng, stream_id) != call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return h2->ops->read_body(call, buf, length, data_flags);
}

static pl_h2_t *pl_h2_new(pl_conn_t *conn, pl_server_t *srv)
{
    const pl_server_config_t *cfg = pl_server_config(srv);
    pl_h2_t *h2 = calloc(1, sizeof(*h2));
    if (!h2)
        return NULL;
    h2->conn = conn;
    h2->server = srv;
    h2->ops = &pl_call_ops; /* the one place http2 names the call layer (README.md) */
    h2->scan.magic_left = CLIENT_MAGIC_LEN;
    int64_t now = pl_now_msec();
    h2->created_ms = now;
    budget_init(&h2->resets, cfg->reset_burst, now);
    budget_init(&h2->useless, cfg->useless_burst, now);

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
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, on_invalid_frame);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);

    /* Window updates follow what calls have processed, not what arrived. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* nghttp2's own rapid-reset limiter stays as a backstop, one second's
     * refill looser than ours so that ours (GOAWAY ENHANCE_YOUR_CALM, and
     * the connection closed) acts first; nghttp2's answers INTERNAL_ERROR
     * and leaves the connection open, which on_frame_send turns into a close. */
    nghttp2_option_set_stream_reset_rate_limit(opt, (uint64_t)cfg->reset_burst + cfg->reset_rate + 1, cfg->reset_rate);
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
        /* RFC 9218: no RFC 7540 priority tree to maintain (PRIORITY floods
         * would make us rebuild it); gRPC clients never use it */
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
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

static void pl_h2_free(pl_h2_t *h2)
{
    h2->is_freeing = true;
    /* nghttp2_session_del does not report open streams: tell each call. */
    while (h2->calls) {
        pl_call_t *call = h2->calls;
        h2->ops->unlink(&h2->calls, call);
        h2->call_count--;
        h2->ops->on_stream_close(call, NGHTTP2_CANCEL);
    }
    nghttp2_session_del(h2->ng);
    free(h2);
}

static void pl_h2_defence(pl_h2_t *h2, pl_defence_t kind, const char *detail)
{
    uint64_t total = pl_server_defence_fired(h2->server, kind);
    if (h2->logged & (1u << kind))
        return;
    h2->logged |= 1u << kind;
    char peer[64];
    pl_conn_peer(h2->conn, peer, sizeof(peer));
    fprintf(stderr, "parleyd: defence %s on a connection from %s: %s (%llu on this node so far)\n",
            pl_defence_name(kind), peer, detail, (unsigned long long)total);
}

static void pl_h2_terminate(pl_h2_t *h2, uint32_t error_code, const char *reason)
{
    if (h2->is_terminated)
        return;
    h2->is_terminated = true;
    int32_t last = nghttp2_session_get_last_proc_stream_id(h2->ng);
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE, last, error_code, (const uint8_t *)reason,
                          reason ? strlen(reason) : 0);
    pl_conn_kick(h2->conn);
}

static int pl_h2_recv(pl_h2_t *h2, const uint8_t *data, size_t len)
{
    if (h2->is_terminated || h2->sent_error_goaway)
        return 0; /* going away: what the peer still sends is discarded */
    h2->now_ms = pl_now_msec();
    const char *why;
    size_t ok = scan(h2, data, len, &why);
    ssize_t rv = ok ? nghttp2_session_mem_recv(h2->ng, data, ok) : 0;
    if (rv == NGHTTP2_ERR_FLOODED)
        why = "flood: too many SETTINGS/PING acks queued";
    else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
        why = "CONTINUATION flood";
    else if (rv < 0)
        return -1; /* bad preface, out of memory: nothing more to say */
    if (!why && h2->protocol_error) {
        pl_h2_defence(h2, PL_DEFENCE_FRAME_FLOOD, h2->protocol_why);
        pl_h2_terminate(h2, h2->protocol_error, h2->protocol_why);
        return 0;
    }
    if (!why)
        why = h2->flood;
    if (why) {
        pl_h2_defence(h2,
                      strncmp(why, "rapid reset", 11) == 0          ? PL_DEFENCE_RAPID_RESET
                      : strncmp(why, "repeated oversized", 18) == 0 ? PL_DEFENCE_HEADER_LIST
                                                                    : PL_DEFENCE_FRAME_FLOOD,
                      why);
        pl_h2_terminate(h2, NGHTTP2_ENHANCE_YOUR_CALM, why);
    }
    return 0;
}

static long pl_h2_send(pl_h2_t *h2, const uint8_t **data)
{
    if (h2->sent_error_goaway)
        return 0; /* the GOAWAY is out: nothing after it matters */
    ssize_t n = nghttp2_session_mem_send(h2->ng, data);
    return n < 0 ? -1 : (long)n;
}

static bool pl_h2_wants_io(const pl_h2_t *h2)
{
    if (h2->sent_error_goaway)
        return false;
    return nghttp2_session_want_read(h2->ng) || nghttp2_session_want_write(h2->ng);
}

static void pl_h2_ping(pl_h2_t *h2)
{
    nghttp2_submit_ping(h2->ng, NGHTTP2_FLAG_NONE, NULL);
}

static void pl_h2_shutdown_notice(pl_h2_t *h2)
{
    nghttp2_submit_shutdown_notice(h2->ng);
}

static void pl_h2_goaway(pl_h2_t *h2)
{
    int32_t last = nghttp2_session_get_last_proc_stream_id(h2->ng);
    nghttp2_submit_goaway(h2->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0);
}

static void pl_h2_abort_calls(pl_h2_t *h2)
{
    for (pl_call_t *c = h2->calls; c; c = h2->ops->next(c))
        h2->ops->finish(c, PL_CODE_UNAVAILABLE, "server shutting down");
}

static int submit_response(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n, bool with_body)
{
    nghttp2_data_provider dp;
    if (with_body) {
        dp.source.ptr = stream_call(h2->ng, stream_id);
        dp.read_callback = read_body;
    }
    return nghttp2_submit_response(h2->ng, stream_id, nva, n, with_body ? &dp : NULL) == 0 ? 0 : -1;
}

static int submit_trailers(pl_h2_t *h2, int32_t stream_id, const nghttp2_nv *nva, size_t n)
{
    return nghttp2_submit_trailer(h2->ng, stream_id, nva, n) == 0 ? 0 : -1;
}

static void resume(pl_h2_t *h2, int32_t stream_id)
{
    nghttp2_session_resume_data(h2->ng, stream_id);
}

static void reset(pl_h2_t *h2, int32_t stream_id, uint32_t error_code)
{
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

static void consume(pl_h2_t *h2, int32_t stream_id, size_t n)
{
    if (n)
        nghttp2_session_consume(h2->ng, stream_id, n);
}

static void kick(pl_h2_t *h2)
{
    pl_conn_kick(h2->conn);
}

static void peer(pl_h2_t *h2, char *buf, size_t len)
{
    pl_conn_peer(h2->conn, buf, len);
}

static const pl_method_entry_t *find_method(pl_h2_t *h2, const char *path, size_t len)
{
    return pl_server_find_method(h2->server, path, len);
}

static bool has_service(pl_h2_t *h2, const char *name)
{
    return pl_server_has_service(h2->server, name);
}

static const pl_call_conn_ops_t conn_ops = {.submit_response = submit_response,
                                            .submit_trailers = submit_trailers,
                                            .resume = resume,
                                            .reset = reset,
                                            .kick = kick,
                                            .consume = consume,
                                            .out_fits = out_fits,
                                            .out_changed = out_changed,
                                            .in_changed = in_changed,
                                            .in_may_consume = in_may_consume,
                                            .consume_held = consume_held,
                                            .consume_stream = consume_stream,
                                            .mark_authenticated = mark_authenticated,
                                            .peer = peer,
                                            .find_method = find_method,
                                            .has_service = has_service};

static void defend(pl_h2_t *h2, pl_defence_t kind, const char *detail, const char *reason)
{
    pl_h2_defence(h2, kind, detail);
    pl_h2_terminate(h2, NGHTTP2_ENHANCE_YOUR_CALM, reason);
}

const pl_session_ops_t pl_h2_session = {
    .open = pl_h2_new,
    .close = pl_h2_free,
    .recv = pl_h2_recv,
    .send = pl_h2_send,
    .wants_io = pl_h2_wants_io,
    .has_calls = pl_h2_has_calls,
    .incomplete_since = pl_h2_incomplete_since,
    .partial_since = pl_h2_oldest_partial_since,
    .stalled_since = pl_h2_flow_stalled_since,
    .expire_partials = pl_h2_expire_partials,
    .defend = defend,
    .ping = pl_h2_ping,
    .shutdown_notice = pl_h2_shutdown_notice,
    .goaway = pl_h2_goaway,
    .abort_calls = pl_h2_abort_calls,
};
