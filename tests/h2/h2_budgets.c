/* h2_budgets — attacks that make a server hold memory or burn CPU out of
 * proportion to what they send (issue 10), against a running interop_server:
 *
 *   window_starvation     2 connections x 100 streams asking for 4 MiB each,
 *                         with SETTINGS_INITIAL_WINDOW_SIZE 0 and a huge
 *                         connection window: no stream can ever send
 *   queued_amplification  100 unary calls for 4 MiB responses on one
 *                         connection that gives no stream credit
 *   partial_messages      50 streams each declaring a 4 MiB request message
 *                         and sending it as fast as flow control allows,
 *                         never finishing it
 *   many_uploads          not an attack: 30 concurrent 100 KB uploads on one
 *                         connection all complete within the budget
 *   hpack_bomb            a 4000-byte value in the HPACK table, then header
 *                         blocks of one-byte references to it (147 KB on
 *                         the wire, 579 MB decoded each)
 *
 * Each checks the server's RSS growth against a ceiling, that a
 * well-behaved client was served throughout, and how the server reacted;
 * the figures are printed (ctest -L h2 -V).
 *
 * Against parleyd (under with_parleyd.py, which gives PARLEY_ADDR and
 * PARLEY_PIDS): --path=METHOD for the partial messages, --bearer=TOKEN to
 * authenticate the attacking connection first, --health for the
 * well-behaved client's calls.
 *
 * usage: h2_budgets [--port=N --pid=N] --case=NAME [--path=P] [--bearer=T] [--health] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack_kit.h"
#include "grpc/testing/test.parley.h"
#include "runtime/clock.h"

#define UNARY_CALL "/grpc.testing.TestService/UnaryCall"
#define MAX_FRAME 16384

/* The partial-message attack's target, and the token that makes its
 * connection authenticated (parleyd: --path and --bearer). */
static const char *attack_path = UNARY_CALL;
static const char *bearer;

/* A request header block for path (with our token when there is one). */
static void request_block(h2w_buf_t *block, const char *path)
{
    h2w_grpc_request_block(block, path);
    if (bearer) {
        char value[256];
        snprintf(value, sizeof(value), "Bearer %s", bearer);
        h2w_hpack_literal(block, "authorization", value);
    }
}

/* The server's CPU time so far (user + system), in ms. */
static long cpu_ms(pid_t pid)
{
    return (long)(pl_test_cpu_seconds(pid) * 1000);
}

static void write_frames(h2w_conn_t *c, h2w_buf_t *out)
{
    h2w_write(c, out->data, out->len, 3000);
    h2w_buf_reset(out);
}

/* A connection that gives no stream credit (initial window 0) but all the
 * connection credit there is. */
static int starving_connect(h2w_conn_t *c)
{
    nghttp2_settings_entry zero = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0};
    if (attacker_connect(c, &zero, 1) != 0)
        return -1;
    ack_settings(c);
    uint8_t inc[4] = {0x7f, 0xff, 0x00, 0x00};
    h2w_buf_t b = {0};
    h2w_frame(&b, NGHTTP2_WINDOW_UPDATE, 0, 0, inc, 4);
    write_frames(c, &b);
    h2w_buf_free(&b);
    return 0;
}

/* Reads frames for up to ms: GOAWAY, end of connection, and the streams
 * answered with grpc-status 8 (RESOURCE_EXHAUSTED). */
typedef struct outcome {
    h2w_goaway_t goaway;
    long closed_ms; /* -1: still open */
    int exhausted, reset;
    unsigned long data_bytes;
} outcome_t;

static outcome_t watch(h2w_conn_t *c, long ms)
{
    outcome_t o = {.closed_ms = -1};
    int64_t t0 = pl_now_msec();
    while (pl_now_msec() - t0 < ms) {
        h2w_frame_t f;
        int r = h2w_read_frame(c, &f, 100);
        if (r == 0) {
            o.closed_ms = (long)(pl_now_msec() - t0);
            break;
        }
        if (r != 1)
            continue;
        char v[16];
        if (f.type == NGHTTP2_HEADERS && h2w_find_header(c, &f, "grpc-status", v, sizeof(v)) && atoi(v) == 8)
            o.exhausted++;
        else if (f.type == NGHTTP2_RST_STREAM)
            o.reset++;
        else if (f.type == NGHTTP2_DATA)
            o.data_bytes += f.length;
        else if (f.type == NGHTTP2_GOAWAY && !o.goaway.seen && f.length >= 8) {
            o.goaway.seen = true;
            o.goaway.error_code = (uint32_t)f.payload[7];
            snprintf(o.goaway.debug, sizeof(o.goaway.debug), "%.*s", (int)(f.length - 8), (const char *)f.payload + 8);
        }
    }
    return o;
}

/* ---- window starvation ---- */

static int window_starvation(void)
{
    attack_begin();
    h2w_conn_t c[2];
    for (int i = 0; i < 2; i++) {
        if (starving_connect(&c[i]) != 0)
            FAIL("connect");
        open_big_downloads(&c[i], 100, 4, 1 << 20);
    }
    for (int i = 0; i < 2; i++) {
        outcome_t o = watch(&c[i], 8000);
        printf("connection %d: 100 streams x 4 MiB asked, no stream credit: %lu bytes of DATA; GOAWAY %s \"%s\"; "
               "closed after %ld ms\n",
               i, o.data_bytes, o.goaway.seen ? h2w_error_name(o.goaway.error_code) : "none", o.goaway.debug,
               o.closed_ms);
        CHECK(o.goaway.seen && o.goaway.error_code == CALM && o.closed_ms >= 0,
              "connection %d: a connection whose streams get no credit was not ended", i);
        h2w_conn_close(&c[i]);
    }
    return attack_end(64);
}

/* ---- queued responses ---- */

static int queued_amplification(void)
{
    attack_begin();
    h2w_conn_t c;
    if (starving_connect(&c) != 0)
        FAIL("connect");
    grpc_testing_SimpleRequest req = {0};
    req.response_size = 4000000;
    h2w_buf_t msg = {0}, block = {0}, out = {0};
    encode_request(grpc_testing_SimpleRequest_fields, &req, &msg);
    h2w_grpc_request_block(&block, UNARY_CALL);
    for (uint32_t i = 0; i < 100; i++) {
        h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1 + 2 * i, block.data, block.len);
        h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1 + 2 * i, msg.data, msg.len);
    }
    write_frames(&c, &out);
    usleep(500 * 1000);
    long mid = pl_test_rss_kib(server_pid);
    /* each refusal follows building a 4 MB reply: slow under sanitizers */
    outcome_t o = {0};
    for (int64_t t0 = pl_now_msec(); o.exhausted < 96 && pl_now_msec() - t0 < 15000;) {
        outcome_t more = watch(&c, 500);
        o.exhausted += more.exhausted;
        if (more.closed_ms >= 0)
            break;
    }
    printf("100 unary calls for 4 MB responses, no credit (%zu bytes of requests): %d answered RESOURCE_EXHAUSTED; "
           "server RSS %ld KiB meanwhile\n",
           100 * (block.len + msg.len + 18), o.exhausted, mid);
    h2w_buf_free(&msg);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
    h2w_conn_close(&c);
    if (o.exhausted < 90)
        FAIL("only %d of 100 responses beyond the connection's budget were refused", o.exhausted);
    return attack_end(64); /* 16 MiB of budget; the rest is allocator and sanitizer slack */
}

/* ---- partial request messages ---- */

typedef struct credit {
    int64_t conn;
    int64_t stream[128];
} credit_t;

/* Sends the same gRPC-framed message on streams UnaryCall streams, as flow
 * control allows, round robin: send_len bytes of it on each (end: with
 * END_STREAM after them), for up to ms. Returns the bytes sent; ended[i]
 * is set when the server answered or reset stream i, status[i] its
 * grpc-status (-1: none). */
typedef struct upload {
    h2w_conn_t *c;
    int streams;
    uint32_t first_sid;
    int64_t conn0, initial0; /* credit learnt before (0: the protocol's 65535) */
    const uint8_t *msg;
    size_t send_len;
    bool end;
    bool ended[64];
    int status[64];
    size_t off[64];
    long peak_rss;
} upload_t;

static void upload_read(upload_t *u, credit_t *cr, int64_t *initial)
{
    h2w_frame_t f;
    while (h2w_read_frame(u->c, &f, 20) == 1) {
        uint32_t i = (f.stream_id - u->first_sid) / 2;
        if (f.type == NGHTTP2_SETTINGS && !(f.flags & NGHTTP2_FLAG_ACK)) {
            for (uint32_t off = 0; off + 6 <= f.length; off += 6) {
                uint16_t id = (uint16_t)(f.payload[off] << 8 | f.payload[off + 1]);
                int64_t v = (int64_t)f.payload[off + 2] << 24 | f.payload[off + 3] << 16 | f.payload[off + 4] << 8 |
                            f.payload[off + 5];
                if (id == NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) {
                    for (int k = 0; k < u->streams; k++)
                        cr->stream[k] += v - *initial;
                    *initial = v;
                }
            }
            ack_settings(u->c);
        } else if (f.type == NGHTTP2_WINDOW_UPDATE && f.length == 4) {
            int64_t inc = (int64_t)(f.payload[0] & 0x7f) << 24 | f.payload[1] << 16 | f.payload[2] << 8 | f.payload[3];
            if (f.stream_id == 0)
                cr->conn += inc;
            else if (i < (uint32_t)u->streams)
                cr->stream[i] += inc;
        } else if ((f.type == NGHTTP2_HEADERS || f.type == NGHTTP2_RST_STREAM) && f.stream_id &&
                   i < (uint32_t)u->streams) {
            char v[16];
            if (f.type == NGHTTP2_HEADERS && h2w_find_header(u->c, &f, "grpc-status", v, sizeof(v)))
                u->status[i] = atoi(v);
            if (f.type == NGHTTP2_RST_STREAM || (f.flags & NGHTTP2_FLAG_END_STREAM))
                u->ended[i] = true;
        }
    }
}

static unsigned long upload(upload_t *u, long ms)
{
    credit_t cr = {.conn = u->conn0 ? u->conn0 : 65535};
    int64_t initial = u->initial0 ? u->initial0 : 65535;
    h2w_buf_t block = {0}, out = {0};
    request_block(&block, attack_path);
    for (int i = 0; i < u->streams; i++) {
        cr.stream[i] = initial;
        u->status[i] = -1;
        h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, u->first_sid + 2 * (uint32_t)i, block.data,
                  block.len);
    }
    write_frames(u->c, &out);
    unsigned long sent = 0;
    int64_t t0 = pl_now_msec();
    for (int done = 0; pl_now_msec() - t0 < ms && done < u->streams;) {
        upload_read(u, &cr, &initial);
        bool any = false;
        done = 0;
        for (int i = 0; i < u->streams; i++) {
            done += u->ended[i];
            int64_t room = cr.conn < cr.stream[i] ? cr.conn : cr.stream[i];
            size_t left = u->send_len - u->off[i];
            if (u->ended[i] || (!left && !u->end) || (u->end && u->off[i] > u->send_len) || room <= 0)
                continue;
            size_t n = (size_t)room < MAX_FRAME ? (size_t)room : MAX_FRAME;
            n = n > left ? left : n;
            bool last = u->end && u->off[i] + n == u->send_len;
            h2w_buf_reset(&out);
            h2w_frame(&out, NGHTTP2_DATA, last ? NGHTTP2_FLAG_END_STREAM : 0, u->first_sid + 2 * (uint32_t)i,
                      u->msg + u->off[i], n);
            u->off[i] += n + (last ? 1 : 0); /* past send_len: the end went out */
            cr.conn -= (int64_t)n;
            cr.stream[i] -= (int64_t)n;
            sent += n;
            write_frames(u->c, &out);
            any = true;
        }
        long rss = pl_test_rss_kib(server_pid);
        u->peak_rss = rss > u->peak_rss ? rss : u->peak_rss;
        if (!any)
            usleep(5000);
    }
    h2w_buf_free(&block);
    h2w_buf_free(&out);
    return sent;
}

static int partial_messages(void)
{
    enum { STREAMS = 50, DECLARED = 4194303 };
    attack_begin();
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    uint8_t *msg = calloc(1, DECLARED + 5);
    if (!msg)
        FAIL("out of memory");
    msg[1] = DECLARED >> 24, msg[2] = (DECLARED >> 16) & 0xff, msg[3] = (DECLARED >> 8) & 0xff,
    msg[4] = DECLARED & 0xff;
    uint32_t first = 1;
    upload_t u0 = {0};
    if (bearer) { /* one complete call with the token first: the connection is now authenticated */
        h2w_buf_t block = {0}, out = {0};
        request_block(&block, "/parley.v1.Accounts/GetProfile");
        static const uint8_t empty[5] = {0};
        h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block.data, block.len);
        h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, empty, sizeof(empty));
        write_frames(&c, &out);
        int status = -1;
        upload_t warm = {.c = &c, .streams = 1, .first_sid = 1};
        credit_t cr = {.conn = 65535 - 5};
        int64_t initial = 65535;
        for (int64_t t = pl_now_msec(); !warm.ended[0] && pl_now_msec() - t < 5000;)
            upload_read(&warm, &cr, &initial); /* learns the server's windows too */
        status = warm.status[0];
        u0.conn0 = cr.conn;
        u0.initial0 = initial;
        printf("authenticated call on the attacking connection: grpc-status %d\n", status);
        h2w_buf_free(&block);
        h2w_buf_free(&out);
        if (status != 0)
            FAIL("the token did not authenticate (GetProfile: %d)", status);
        first = 3;
    }
    upload_t u = {.c = &c,
                  .streams = STREAMS,
                  .first_sid = first,
                  .conn0 = u0.conn0,
                  .initial0 = u0.initial0,
                  .msg = msg,
                  .send_len = DECLARED + 4}; /* all but the last byte */
    unsigned long sent = upload(&u, 3000);   /* within the message timeout (5 s) */
    printf("50 streams declaring %d-byte messages: %lu bytes sent within 3 s, the newest messages dropped past the "
           "budget (RSS peak %ld KiB)\n",
           DECLARED, sent, u.peak_rss);
    /* then the message timeout ends them */
    int begun = 0, done = 0;
    for (int i = 0; i < STREAMS; i++)
        begun += u.off[i] > 0;
    int64_t t1 = pl_now_msec();
    credit_t cr = {0};
    int64_t initial = 0;
    while (pl_now_msec() - t1 < 6000 && done < begun) {
        upload_read(&u, &cr, &initial);
        done = 0;
        for (int i = 0; i < STREAMS; i++)
            done += u.ended[i] && u.off[i] > 0;
    }
    printf("incomplete messages: %d of the %d streams that began one were ended by the server %lld ms later\n", done,
           begun, (long long)(pl_now_msec() - t1));
    free(msg);
    h2w_conn_close(&c);
    if (done < begun)
        FAIL("only %d of %d incomplete messages were ended by the message timeout", done, begun);
    return attack_end(bearer ? 64 : 48); /* 4 x the budget, the oldest message, and allocator slack */
}

/* Not an attack: 30 concurrent 100 KB uploads on one unauthenticated
 * connection, interleaved frame by frame, all complete (the inbound
 * budget lets the oldest message go on, so it can never deadlock). */
static int many_uploads(void)
{
    enum { STREAMS = 30, BODY = 100000 };
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    /* SimpleRequest{payload: Payload{body: BODY bytes}} */
    h2w_buf_t pb = {0}, msg = {0};
    uint8_t head[8] = {0x1a, 0, 0, 0, 0x12, 0, 0, 0};
    uint32_t inner = BODY + 4; /* tag + 3-byte length + body */
    head[1] = (uint8_t)(0x80 | (inner & 0x7f)), head[2] = (uint8_t)(0x80 | ((inner >> 7) & 0x7f)),
    head[3] = (uint8_t)(inner >> 14);
    head[5] = (uint8_t)(0x80 | (BODY & 0x7f)), head[6] = (uint8_t)(0x80 | ((BODY >> 7) & 0x7f)),
    head[7] = (uint8_t)(BODY >> 14);
    h2w_buf_put(&pb, head, sizeof(head));
    for (int i = 0; i < BODY; i++)
        h2w_buf_put(&pb, "u", 1);
    h2w_grpc_message(&msg, pb.data, pb.len);
    upload_t u = {.c = &c, .streams = STREAMS, .first_sid = 1, .msg = msg.data, .send_len = msg.len, .end = true};
    int64_t t0 = pl_now_msec();
    unsigned long sent = upload(&u, 20000);
    int ok = 0;
    for (int i = 0; i < STREAMS; i++)
        ok += u.status[i] == 0;
    printf("30 concurrent uploads of %zu bytes on one connection: %lu bytes sent, %d answered OK in %lld ms\n", msg.len,
           sent, ok, (long long)(pl_now_msec() - t0));
    h2w_buf_free(&pb);
    h2w_buf_free(&msg);
    h2w_conn_close(&c);
    if (ok < STREAMS)
        FAIL("%d of %d uploads answered OK", ok, STREAMS);
    return 0;
}

/* ---- HPACK bomb ---- */

/* An HPACK integer with an n-bit prefix (RFC 7541 §5.1). */
static void hpack_int(h2w_buf_t *b, uint8_t first, int n, uint32_t v)
{
    uint32_t max = (1u << n) - 1;
    if (v < max) {
        uint8_t x = (uint8_t)(first | v);
        h2w_buf_put(b, &x, 1);
        return;
    }
    uint8_t x = (uint8_t)(first | max);
    h2w_buf_put(b, &x, 1);
    for (v -= max; v >= 128; v /= 128) {
        x = (uint8_t)(v % 128 + 128);
        h2w_buf_put(b, &x, 1);
    }
    x = (uint8_t)v;
    h2w_buf_put(b, &x, 1);
}

/* Sends block as HEADERS + CONTINUATIONs, then an empty message. */
static void send_block(h2w_conn_t *c, uint32_t sid, const h2w_buf_t *block)
{
    h2w_buf_t out = {0};
    size_t off = 0;
    for (bool first = true; off < block->len || first; first = false) {
        size_t n = block->len - off > MAX_FRAME ? MAX_FRAME : block->len - off;
        uint8_t flags = off + n == block->len ? NGHTTP2_FLAG_END_HEADERS : 0;
        h2w_frame(&out, first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, sid, block->data + off, n);
        off += n;
    }
    static const uint8_t empty[5] = {0};
    h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid, empty, sizeof(empty));
    write_frames(c, &out);
    h2w_buf_free(&out);
}

static int hpack_bomb(void)
{
    attack_begin();
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    /* a request that puts "x-bomb: 4000 bytes" in the dynamic table */
    h2w_buf_t block = {0};
    h2w_grpc_request_block(&block, UNARY_CALL);
    char value[4000];
    memset(value, 'b', sizeof(value));
    hpack_int(&block, 0x40, 6, 0); /* literal with incremental indexing, new name */
    hpack_int(&block, 0, 7, 6);
    h2w_buf_put(&block, "x-bomb", 6);
    hpack_int(&block, 0, 7, sizeof(value));
    h2w_buf_put(&block, value, sizeof(value));
    send_block(&c, 1, &block);
    /* then blocks of references to it (index 62: the newest dynamic entry),
     * filling 9 frames: HEADERS + the 8 CONTINUATIONs allowed */
    h2w_buf_reset(&block);
    h2w_grpc_request_block(&block, UNARY_CALL);
    size_t refs = 9 * MAX_FRAME - block.len;
    for (size_t i = 0; i < refs; i++) {
        uint8_t ref = 0x80 | 62;
        h2w_buf_put(&block, &ref, 1);
    }
    long cpu0 = cpu_ms(server_pid);
    int blocks = 0;
    outcome_t o = {.closed_ms = -1};
    for (uint32_t sid = 3; blocks < 20 && !o.goaway.seen && o.closed_ms < 0; sid += 2) {
        send_block(&c, sid, &block);
        blocks++;
        o = watch(&c, 50);
    }
    if (!o.goaway.seen && o.closed_ms < 0)
        o = watch(&c, 2000);
    long cpu = cpu_ms(server_pid) - cpu0;
    printf("HPACK bomb: %d blocks of %zu one-byte references (%zu bytes each, %zu MB decoded each): server CPU "
           "%ld ms in all, %.1f ms a block; GOAWAY %s \"%s\"\n",
           blocks, refs, block.len, refs * (4000 + 6 + 32) / 1000000, cpu, blocks ? (double)cpu / blocks : 0.0,
           o.goaway.seen ? h2w_error_name(o.goaway.error_code) : "none", o.goaway.debug);
    h2w_buf_free(&block);
    h2w_conn_close(&c);
    if (blocks && cpu / blocks > 40)
        FAIL("a block cost %ld ms of server CPU (over 40)", cpu / blocks);
    if (!o.goaway.seen || o.goaway.error_code != CALM)
        FAIL("a client repeating HPACK bombs was not sent away with ENHANCE_YOUR_CALM");
    return attack_end(32);
}

/* --path, --bearer, --health (see the top of this file). */
static bool budget_arg(const char *arg)
{
    if (strncmp(arg, "--path=", 7) == 0)
        attack_path = arg + 7;
    else if (strncmp(arg, "--bearer=", 9) == 0)
        bearer = arg + 9;
    else if (strcmp(arg, "--health") == 0)
        h2w_good_use_health(true);
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    static const pl_test_case_t cases[] = {
        {"window_starvation", window_starvation},
        {"queued_amplification", queued_amplification},
        {"partial_messages", partial_messages},
        {"many_uploads", many_uploads},
        {"hpack_bomb", hpack_bomb},
    };
    return attack_main(argc, argv, "h2_budgets", cases, sizeof(cases) / sizeof(cases[0]), budget_arg);
}
