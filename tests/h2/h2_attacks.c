/* h2_attacks — HTTP/2 flood and abuse attacks against a running
 * interop_server (started by tests/harness/with_server.py), one per case:
 *
 *   rapid_reset         HEADERS+RST_STREAM pairs as fast as possible (CVE-2023-44487)
 *   settings_flood      empty SETTINGS frames
 *   ping_flood          PING frames
 *   empty_frames        empty DATA without END_STREAM; empty HEADERS/CONTINUATION
 *                       fragments; PRIORITY frames
 *   continuation_flood  a header block that never ends (CVE-2024-28182)
 *   header_list         header lists over SETTINGS_MAX_HEADER_LIST_SIZE, once and repeated
 *   slow_reader         a client that gives no flow-control credit; one that
 *                       does not read its socket at all
 *   slowloris           preface and headers trickled byte by byte; an idle
 *                       connection kept busy with PINGs
 *   concurrent_streams  more streams than SETTINGS_MAX_CONCURRENT_STREAMS
 *   conn_limit          more connections from one address than allowed
 *   stream_ids          a lower stream id after a higher one, a stream id
 *                       reused, frames flooding a closed stream
 *
 * Every case attacks from 127.0.0.2 while a well-behaved client calls from
 * 127.0.0.1 on its own connection, and checks: the offender gets a GOAWAY
 * (ENHANCE_YOUR_CALM where the defence is ours) and is closed, the
 * well-behaved client was served throughout, and the server's RSS stayed
 * under the case's ceiling. The figures are printed so they can be quoted.
 *
 * usage: h2_attacks --port=N --pid=N --case=NAME */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack_kit.h"
#include "grpc/testing/test.parley.h"
#include "h2_wire.h"
#include "runtime/clock.h"
#include "runtime/codec.h"

#define BATCH_BYTES (64 * 1024)
/* Flood attacks are repeated on new connections, one after another, for at
 * least ROUNDS rounds and ATTACK_MS: budgets are per connection, so memory
 * must not creep up round by round, and the well-behaved client must be
 * served all along. */
#define ROUNDS 20
#define ATTACK_MS 2000
#define FULL_DUPLEX "/grpc.testing.TestService/FullDuplexCall"
#define EMPTY_CALL "/grpc.testing.TestService/EmptyCall"

static bool quiet; /* repeated rounds report only failures */

/* Sends batches made by fill() until a GOAWAY arrives, the server stops
 * taking bytes, or max_frames frames went out. Returns frames sent. */
typedef size_t (*fill_fn)(h2w_buf_t *b, void *state); /* appends frames, returns how many */

static unsigned long flood(h2w_conn_t *c, fill_fn fill, void *state, unsigned long max_frames, h2w_goaway_t *g,
                           unsigned long *counts)
{
    h2w_buf_t b = {0};
    unsigned long frames = 0;
    while (frames < max_frames && !g->seen && !c->is_eof && !c->is_reset) {
        h2w_buf_reset(&b);
        size_t n = 0;
        while (b.len < BATCH_BYTES)
            n += fill(&b, state);
        size_t w = h2w_write(c, b.data, b.len, 2000);
        frames += n;
        h2w_poll_frames(c, g, counts);
        if (w < b.len)
            break; /* the server stopped reading us */
    }
    h2w_buf_free(&b);
    return frames;
}

/* The end of every flood: the GOAWAY and the close. */
static int expect_goaway(h2w_conn_t *c, h2w_goaway_t *g, uint32_t want_code, const char *attack, unsigned long frames)
{
    long ms = h2w_wait_goaway_and_close(c, g, 5000);
    bool ok = g->seen && g->error_code == want_code && ms >= 0;
    if (!quiet || !ok)
        printf("%s: %lu frames written; GOAWAY %s (last stream %u, \"%s\"); connection closed %s%ld ms after\n", attack,
               frames, g->seen ? h2w_error_name(g->error_code) : "none", g->last_stream_id, g->debug,
               ms < 0 ? "NOT within " : "", ms < 0 ? 5000 : ms);
    if (!g->seen)
        FAIL("%s: no GOAWAY", attack);
    if (g->error_code != want_code)
        FAIL("%s: GOAWAY %s, want %s", attack, h2w_error_name(g->error_code), h2w_error_name(want_code));
    if (ms < 0)
        FAIL("%s: the connection was not closed", attack);
    return 0;
}

/* ---- rapid reset ---- */

typedef struct stream_state {
    uint32_t next_id;
    h2w_buf_t block;
} stream_state_t;

static size_t fill_open_reset(h2w_buf_t *b, void *arg)
{
    stream_state_t *s = arg;
    static const uint8_t cancel[4] = {0, 0, 0, NGHTTP2_CANCEL};
    h2w_frame(b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, s->next_id, s->block.data, s->block.len);
    h2w_frame(b, NGHTTP2_RST_STREAM, 0, s->next_id, cancel, sizeof(cancel));
    s->next_id += 2;
    return 2;
}

static int rapid_reset(void)
{
    attack_begin();
    int rc = 0;
    unsigned long written = 0, processed = 0;
    int64_t t0 = pl_now_msec();
    int rounds = 0;
    for (int round = 0; (round < ROUNDS || pl_now_msec() - t0 < ATTACK_MS) && !rc; round++, rounds++) {
        quiet = round > 0;
        h2w_conn_t c;
        if (attacker_connect(&c, NULL, 0) != 0)
            FAIL("connect");
        ack_settings(&c);
        stream_state_t s = {1, {0}};
        h2w_grpc_request_block(&s.block, FULL_DUPLEX);
        h2w_goaway_t g = {0};
        written += flood(&c, fill_open_reset, &s, 200000, &g, NULL);
        if (!quiet)
            printf("rapid reset: %u streams opened and reset (written) before the GOAWAY was read\n",
                   (s.next_id - 1) / 2);
        rc |= expect_goaway(&c, &g, CALM, "rapid reset", written);
        processed += (g.last_stream_id + 1) / 2;
        h2w_conn_close(&c);
        h2w_buf_free(&s.block);
    }
    quiet = false;
    printf("rapid reset on %d connections in turn, %lld ms: %lu frames written, %lu streams taken by the server "
           "(up to each GOAWAY's last stream); every connection got GOAWAY ENHANCE_YOUR_CALM and was closed\n",
           rounds, (long long)(pl_now_msec() - t0), written, processed);
    return rc | attack_end(64);
}

/* ---- SETTINGS, PING, empty frames ---- */

static size_t fill_settings(h2w_buf_t *b, void *arg)
{
    (void)arg;
    h2w_frame(b, NGHTTP2_SETTINGS, 0, 0, NULL, 0);
    return 1;
}

static size_t fill_ping(h2w_buf_t *b, void *arg)
{
    static uint64_t n;
    (void)arg;
    n++;
    h2w_frame(b, NGHTTP2_PING, 0, 0, &n, 8);
    return 1;
}

static int one_flood(const char *what, fill_fn fill, void *state, bool ack)
{
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    if (ack)
        ack_settings(&c);
    h2w_goaway_t g = {0};
    unsigned long frames = flood(&c, fill, state, 2000000, &g, NULL);
    int rc = expect_goaway(&c, &g, CALM, what, frames);
    h2w_conn_close(&c);
    return rc;
}

/* one_flood on new connections in turn (see ROUNDS) */
static int repeated_flood(const char *what, fill_fn fill)
{
    int rc = 0;
    int64_t t0 = pl_now_msec();
    int rounds = 0;
    for (int round = 0; (round < ROUNDS || pl_now_msec() - t0 < ATTACK_MS) && !rc; round++, rounds++) {
        quiet = round > 0;
        rc |= one_flood(what, fill, NULL, true);
    }
    quiet = false;
    printf("%s on %d connections in turn, %lld ms: every one got GOAWAY ENHANCE_YOUR_CALM and was closed\n", what,
           rounds, (long long)(pl_now_msec() - t0));
    return rc;
}

static int settings_flood(void)
{
    attack_begin();
    int rc = repeated_flood("SETTINGS flood", fill_settings);
    return rc | attack_end(64);
}

static int ping_flood(void)
{
    attack_begin();
    int rc = repeated_flood("PING flood", fill_ping);
    return rc | attack_end(64);
}

static size_t fill_empty_data(h2w_buf_t *b, void *arg)
{
    (void)arg;
    h2w_frame(b, NGHTTP2_DATA, 0, 1, NULL, 0);
    return 1;
}

/* Each request's header block split into an empty HEADERS fragment, empty
 * CONTINUATIONs and one that carries the block. */
static size_t fill_empty_fragments(h2w_buf_t *b, void *arg)
{
    stream_state_t *s = arg;
    h2w_frame(b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, s->next_id, NULL, 0);
    for (int i = 0; i < 6; i++)
        h2w_frame(b, NGHTTP2_CONTINUATION, 0, s->next_id, NULL, 0);
    h2w_frame(b, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, s->next_id, s->block.data, s->block.len);
    s->next_id += 2;
    return 8;
}

static size_t fill_priority(h2w_buf_t *b, void *arg)
{
    stream_state_t *s = arg;
    static const uint8_t dep[5] = {0, 0, 0, 0, 16}; /* on stream 0, weight 17 */
    h2w_frame(b, NGHTTP2_PRIORITY, 0, s->next_id, dep, sizeof(dep));
    s->next_id += 2;
    return 1;
}

static int empty_frames(void)
{
    attack_begin();
    int rc = 0;
    { /* empty DATA frames without END_STREAM on an open stream */
        h2w_conn_t c;
        if (attacker_connect(&c, NULL, 0) != 0)
            FAIL("connect");
        ack_settings(&c);
        h2w_buf_t b = {0}, block = {0};
        h2w_grpc_request_block(&block, FULL_DUPLEX);
        h2w_frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block.data, block.len);
        h2w_write(&c, b.data, b.len, 1000);
        h2w_buf_free(&b);
        h2w_buf_free(&block);
        h2w_goaway_t g = {0};
        unsigned long frames = flood(&c, fill_empty_data, NULL, 2000000, &g, NULL);
        rc |= expect_goaway(&c, &g, CALM, "empty DATA flood", frames);
        h2w_conn_close(&c);
    }
    { /* empty HEADERS and CONTINUATION fragments; in batches of ten
       * requests, each answered before the next batch, so that the stream
       * concurrency limit never comes into play */
        h2w_conn_t c;
        if (attacker_connect(&c, NULL, 0) != 0)
            FAIL("connect");
        ack_settings(&c);
        stream_state_t s = {1, {0}};
        h2w_grpc_request_block(&s.block, EMPTY_CALL);
        h2w_goaway_t g = {0};
        h2w_buf_t b = {0};
        unsigned long frames = 0, answered = 0;
        while (frames < 100000 && !g.seen && !c.is_eof && !c.is_reset) {
            h2w_buf_reset(&b);
            for (int i = 0; i < 10; i++)
                frames += fill_empty_fragments(&b, &s);
            h2w_write(&c, b.data, b.len, 2000);
            int64_t until = pl_now_msec() + 2000;
            unsigned long want = answered + 10;
            while (answered < want && !g.seen && pl_now_msec() < until) {
                h2w_frame_t f;
                int r = h2w_read_frame(&c, &f, 100);
                if (r == 0)
                    break;
                if (r != 1)
                    continue;
                if (f.type == NGHTTP2_HEADERS) {
                    char v[8];
                    if (h2w_find_header(&c, &f, "grpc-status", v, sizeof(v)))
                        answered++;
                } else if (f.type == NGHTTP2_RST_STREAM) {
                    answered++;
                } else if (f.type == NGHTTP2_GOAWAY) {
                    g.seen = true;
                    g.last_stream_id = ((uint32_t)f.payload[2] << 8 | f.payload[3]);
                    g.error_code = f.payload[7];
                    snprintf(g.debug, sizeof(g.debug), "%.*s", (int)(f.length - 8), (const char *)f.payload + 8);
                }
            }
        }
        printf("empty fragments: %u requests, each split into 7 empty fragments and one with its headers; "
               "%lu answered\n",
               (s.next_id - 1) / 2, answered);
        rc |= expect_goaway(&c, &g, CALM, "empty HEADERS/CONTINUATION fragments", frames);
        h2w_buf_free(&b);
        h2w_buf_free(&s.block);
        h2w_conn_close(&c);
    }
    { /* PRIORITY frames, which only ever cost us work */
        stream_state_t s = {1, {0}};
        rc |= one_flood("PRIORITY flood", fill_priority, &s, true);
    }
    return rc | attack_end(64);
}

/* ---- header blocks ---- */

static size_t fill_continuations(h2w_buf_t *b, void *arg)
{
    stream_state_t *s = arg;
    h2w_frame(b, NGHTTP2_CONTINUATION, 0, 1, s->block.data, s->block.len);
    return 1;
}

static int continuation_flood(void)
{
    attack_begin();
    stream_state_t s = {1, {0}};
    h2w_buf_t b = {0};
    h2w_grpc_request_block(&b, EMPTY_CALL);
    h2w_buf_t first = {0};
    h2w_frame(&first, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, b.data, b.len);
    char value[1000];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    h2w_hpack_literal(&s.block, "x-filler", value); /* ~1 KiB of header per CONTINUATION */
    int rc = 0;
    int64_t t0 = pl_now_msec();
    int rounds = 0;
    for (int round = 0; (round < ROUNDS || pl_now_msec() - t0 < ATTACK_MS) && !rc; round++, rounds++) {
        quiet = round > 0;
        h2w_conn_t c;
        if (attacker_connect(&c, NULL, 0) != 0)
            FAIL("connect");
        ack_settings(&c);
        h2w_write(&c, first.data, first.len, 1000);
        h2w_goaway_t g = {0};
        unsigned long frames = flood(&c, fill_continuations, &s, 1000000, &g, NULL);
        rc |= expect_goaway(&c, &g, CALM, "CONTINUATION flood", frames + 1);
        h2w_conn_close(&c);
    }
    quiet = false;
    printf("CONTINUATION flood on %d connections in turn, %lld ms: every one got GOAWAY ENHANCE_YOUR_CALM and was "
           "closed\n",
           rounds, (long long)(pl_now_msec() - t0));
    h2w_buf_free(&b);
    h2w_buf_free(&first);
    h2w_buf_free(&s.block);
    return rc | attack_end(64);
}

/* Sends one EmptyCall whose header list has extra_bytes of metadata (in
 * headers of 4000 bytes, split over frames of at most 16 KiB), then its
 * (empty) request message. */
static void send_big_headers(h2w_conn_t *c, uint32_t stream_id, size_t extra_bytes)
{
    h2w_buf_t block = {0}, out = {0};
    h2w_grpc_request_block(&block, EMPTY_CALL);
    char value[4001];
    memset(value, 'v', 4000);
    value[4000] = '\0';
    for (size_t i = 0; i * 4000 < extra_bytes; i++) {
        char name[32];
        snprintf(name, sizeof(name), "x-big-%zu", i);
        h2w_hpack_literal(&block, name, value);
    }
    size_t off = 0;
    bool first = true;
    while (off < block.len || first) {
        size_t n = block.len - off > 16384 ? 16384 : block.len - off;
        bool last = off + n == block.len;
        uint8_t flags = last ? NGHTTP2_FLAG_END_HEADERS : 0;
        h2w_frame(&out, first ? NGHTTP2_HEADERS : NGHTTP2_CONTINUATION, flags, stream_id, block.data + off, n);
        off += n;
        first = false;
    }
    static const uint8_t empty_message[5] = {0, 0, 0, 0, 0};
    h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, stream_id, empty_message, sizeof(empty_message));
    h2w_write(c, out.data, out.len, 2000);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
}

/* Reads until stream_id's response HEADERS; returns its grpc-status or -1. */
static int read_grpc_status(h2w_conn_t *c, uint32_t stream_id, uint32_t *rst_code)
{
    *rst_code = UINT32_MAX;
    int64_t until = pl_now_msec() + 3000;
    while (pl_now_msec() < until) {
        h2w_frame_t f;
        if (h2w_read_frame(c, &f, 200) != 1)
            continue;
        char v[32];
        bool has = f.type == NGHTTP2_HEADERS && h2w_find_header(c, &f, "grpc-status", v, sizeof(v));
        if (f.stream_id != stream_id)
            continue;
        if (has)
            return atoi(v);
        if (f.type == NGHTTP2_RST_STREAM && f.length == 4) {
            *rst_code = (uint32_t)f.payload[3];
            return -1;
        }
    }
    return -1;
}

static bool ping_answered(h2w_conn_t *c)
{
    h2w_buf_t b = {0};
    uint8_t data[8] = "alive?!";
    h2w_frame(&b, NGHTTP2_PING, 0, 0, data, 8);
    h2w_write(c, b.data, b.len, 1000);
    h2w_buf_free(&b);
    int64_t until = pl_now_msec() + 2000;
    while (pl_now_msec() < until) {
        h2w_frame_t f;
        if (h2w_read_frame(c, &f, 200) == 0)
            return false;
        if (f.type == NGHTTP2_HEADERS) {
            char v[8];
            h2w_find_header(c, &f, "grpc-status", v, sizeof(v)); /* keep HPACK in step */
        }
        if (f.type == NGHTTP2_PING && (f.flags & NGHTTP2_FLAG_ACK))
            return true;
    }
    return false;
}

static int header_list(void)
{
    attack_begin();
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    static const size_t sizes[] = {4000, 16000, 100000};
    uint32_t sid = 1;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++, sid += 2) {
        send_big_headers(&c, sid, sizes[i]);
        uint32_t rst;
        int status = read_grpc_status(&c, sid, &rst);
        printf("request with %zu bytes of metadata: grpc-status %d%s%s\n", sizes[i], status,
               rst != UINT32_MAX ? ", RST_STREAM " : "", rst != UINT32_MAX ? h2w_error_name(rst) : "");
        /* OK; over the advertised 8 KiB RESOURCE_EXHAUSTED, either as a
         * status (the crossing header was the block's last) or as
         * RST_STREAM ENHANCE_YOUR_CALM, which gRPC clients read as
         * RESOURCE_EXHAUSTED (the server stops decoding the block there) */
        int want = sizes[i] < 8192 ? 0 : 8;
        bool calm = want == 8 && status == -1 && rst == NGHTTP2_ENHANCE_YOUR_CALM;
        if (status != want && !calm)
            FAIL("a %zu-byte header list got grpc-status %d, want %d", sizes[i], status, want);
        if (!ping_answered(&c))
            FAIL("the connection did not survive one oversized header list");
    }
    /* the same, over and over: a client that keeps doing it is sent away */
    h2w_goaway_t g = {0};
    unsigned long requests = 0;
    while (requests < 1000 && !g.seen && !c.is_eof && !c.is_reset) {
        send_big_headers(&c, sid, 16000);
        sid += 2;
        requests++;
        usleep(1000);
        h2w_poll_frames(&c, &g, NULL);
    }
    printf("repeated oversized header lists: %lu requests of 16000 bytes\n", requests);
    int rc = expect_goaway(&c, &g, CALM, "oversized header lists", requests * 2);
    h2w_conn_close(&c);
    return rc | attack_end(64);
}

/* ---- slow readers ---- */

static int slow_reader(void)
{
    attack_begin();
    int rc = 0;
    const int streams = 8, count = 32; /* 32 responses of 1 MiB: the request's max_count */
    {                                  /* reads its socket, but never gives flow-control credit */
        h2w_conn_t c;
        if (attacker_connect(&c, NULL, 0) != 0)
            FAIL("connect");
        ack_settings(&c);
        int64_t t0 = pl_now_msec();
        open_big_downloads(&c, streams, count, 1 << 20);
        unsigned long data_bytes = 0;
        h2w_goaway_t g = {0};
        long closed_ms = -1;
        while (pl_now_msec() - t0 < 10000) {
            h2w_frame_t f;
            int r = h2w_read_frame(&c, &f, 100);
            if (r == 0) {
                closed_ms = (long)(pl_now_msec() - t0);
                break;
            }
            if (r != 1)
                continue;
            if (f.type == NGHTTP2_DATA)
                data_bytes += f.length;
            if (f.type == NGHTTP2_HEADERS) {
                char v[8];
                h2w_find_header(&c, &f, "grpc-status", v, sizeof(v));
            }
            if (f.type == NGHTTP2_GOAWAY && !g.seen) {
                g.seen = true;
                g.error_code = (uint32_t)f.payload[7];
                printf("no credit: GOAWAY %s \"%.*s\" after %lld ms\n", h2w_error_name(g.error_code),
                       (int)(f.length - 8), (const char *)f.payload + 8, (long long)(pl_now_msec() - t0));
            }
        }
        printf("no credit: %d streams asked for %d MiB; %lu bytes of DATA arrived (the initial window is 65535); "
               "closed after %ld ms\n",
               streams, streams * count, data_bytes, closed_ms);
        if (!g.seen || g.error_code != CALM)
            FAIL("no GOAWAY ENHANCE_YOUR_CALM for a client that gives no credit");
        if (closed_ms < 0)
            FAIL("the connection of a client that gives no credit was not closed");
        if (data_bytes > 65535)
            FAIL("the server sent more than the flow-control window");
        h2w_conn_close(&c);
    }
    {                       /* all the credit in the world, but never reads its socket: the server
                             * cannot even send a GOAWAY, so we watch its descriptors to see it
                             * let go of the connection (reading would unblock it) */
        usleep(300 * 1000); /* the server has let go of the previous connection */
        int fds_before = pl_test_fd_count(server_pid);
        h2w_conn_t c;
        nghttp2_settings_entry big_window = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 31) - 1};
        if (attacker_connect(&c, &big_window, 1) != 0)
            FAIL("connect");
        ack_settings(&c);
        uint8_t inc[4] = {0x7f, 0xff, 0x00, 0x00}; /* +2^31-65536 for the connection */
        h2w_buf_t b = {0};
        h2w_frame(&b, NGHTTP2_WINDOW_UPDATE, 0, 0, inc, 4);
        h2w_write(&c, b.data, b.len, 1000);
        h2w_buf_free(&b);
        int64_t t0 = pl_now_msec();
        open_big_downloads(&c, streams, count, 1 << 20);
        long peak_fds = 0, closed_ms = -1, mid = 0;
        while (pl_now_msec() - t0 < 15000) {
            usleep(50 * 1000);
            int n = pl_test_fd_count(server_pid);
            peak_fds = n > peak_fds ? n : peak_fds;
            mid = pl_test_rss_kib(server_pid);
            if (peak_fds > fds_before && n <= fds_before) {
                closed_ms = (long)(pl_now_msec() - t0);
                break;
            }
        }
        unsigned long bytes = 0;
        h2w_frame_t f;
        int r;
        while ((r = h2w_read_frame(&c, &f, 1000)) == 1)
            bytes += 9 + f.length;
        printf("not reading: the server dropped the connection %ld ms after the requests (server RSS then %ld KiB); "
               "%lu bytes were still in the pipe for us, then %s\n",
               closed_ms, mid, bytes, r == 0 ? "the end of the connection" : "NOT the end");
        if (closed_ms < 0 || r != 0)
            FAIL("a client that does not read was not dropped");
        h2w_conn_close(&c);
    }
    return rc | attack_end(96);
}

/* ---- slowloris ---- */

static int slowloris(void)
{
    attack_begin();
    enum { N = 100 };
    static h2w_conn_t conns[N];
    static const char preface[] = H2W_PREFACE;
    /* (1) N connections trickling the client preface, one byte per 100 ms each */
    for (int i = 0; i < N; i++) {
        int fd = h2w_tcp_connect(port, ATTACKER);
        if (fd < 0)
            FAIL("connect %d", i);
        h2w_conn_init(&conns[i], fd, NULL);
    }
    int64_t t0 = pl_now_msec();
    int open = N;
    long last_close = 0;
    for (size_t k = 0; open > 0 && pl_now_msec() - t0 < 8000; k++) {
        for (int i = 0; i < N; i++) {
            h2w_conn_t *c = &conns[i];
            if (c->fd < 0)
                continue;
            h2w_write(c, &preface[k % (sizeof(preface) - 1)], 1, 0);
            h2w_frame_t f;
            while (h2w_read_frame(c, &f, 0) == 1) {
            }
            if (c->is_eof || c->is_reset) {
                h2w_conn_close(c);
                open--;
                last_close = (long)(pl_now_msec() - t0);
            }
        }
        usleep(100 * 1000);
    }
    printf("slowloris preface: %d connections trickling 1 byte/100 ms: %d still open after %lld ms; "
           "the last closed at %ld ms\n",
           N, open, (long long)(pl_now_msec() - t0), last_close);
    for (int i = 0; i < N; i++)
        if (conns[i].fd >= 0)
            h2w_conn_close(&conns[i]);
    if (open)
        FAIL("%d trickling connections were not closed", open);

    /* (2) a request header block trickled after a complete preface */
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    h2w_buf_t block = {0}, frame = {0};
    h2w_grpc_request_block(&block, FULL_DUPLEX);
    h2w_frame(&frame, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block.data, block.len);
    h2w_goaway_t g = {0};
    t0 = pl_now_msec();
    size_t sent = 0;
    while (sent < frame.len && !g.seen && !c.is_eof && !c.is_reset) {
        sent += h2w_write(&c, frame.data + sent, 1, 100);
        usleep(100 * 1000);
        h2w_poll_frames(&c, &g, NULL);
    }
    printf("slowloris headers: %zu of %zu bytes of a HEADERS frame sent in %lld ms\n", sent, frame.len,
           (long long)(pl_now_msec() - t0));
    int rc = expect_goaway(&c, &g, CALM, "slowloris headers", 1);
    h2w_conn_close(&c);
    h2w_buf_free(&block);
    h2w_buf_free(&frame);

    /* (3) no calls at all, only a PING now and then: idle, so sent away */
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    memset(&g, 0, sizeof(g));
    t0 = pl_now_msec();
    unsigned long pings = 0;
    while (!g.seen && !c.is_eof && pl_now_msec() - t0 < 10000) {
        h2w_buf_t b = {0};
        h2w_frame(&b, NGHTTP2_PING, 0, 0, "keepbusy", 8);
        h2w_write(&c, b.data, b.len, 100);
        h2w_buf_free(&b);
        pings++;
        usleep(200 * 1000);
        h2w_poll_frames(&c, &g, NULL);
    }
    printf("idle connection kept busy with %lu PINGs: GOAWAY after %lld ms\n", pings, (long long)(pl_now_msec() - t0));
    rc |= expect_goaway(&c, &g, NGHTTP2_NO_ERROR, "idle connection", pings);
    h2w_conn_close(&c);
    return rc | attack_end(32);
}

/* ---- concurrent streams ---- */

static int concurrent_streams(void)
{
    attack_begin();
    const uint32_t limit = 10, extra = 20;
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    /* (1) streams over the limit before we acknowledged it: each refused */
    h2w_buf_t block = {0}, out = {0};
    h2w_grpc_request_block(&block, FULL_DUPLEX);
    uint32_t sid = 1;
    for (uint32_t i = 0; i < limit + extra; i++, sid += 2)
        h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, sid, block.data, block.len);
    h2w_write(&c, out.data, out.len, 1000);
    uint32_t advertised = 0, refused = 0, other_rst = 0, first_refused = 0;
    int64_t until = pl_now_msec() + 1500;
    while (pl_now_msec() < until) {
        h2w_frame_t f;
        if (h2w_read_frame(&c, &f, 100) != 1)
            continue;
        if (f.type == NGHTTP2_SETTINGS && !(f.flags & NGHTTP2_FLAG_ACK))
            for (uint32_t k = 0; k + 6 <= f.length; k += 6)
                if ((f.payload[k] << 8 | f.payload[k + 1]) == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                    advertised = (uint32_t)f.payload[k + 2] << 24 | (uint32_t)f.payload[k + 3] << 16 |
                                 (uint32_t)f.payload[k + 4] << 8 | f.payload[k + 5];
        if (f.type == NGHTTP2_RST_STREAM) {
            if (f.payload[3] == NGHTTP2_REFUSED_STREAM) {
                refused++;
                if (!first_refused || f.stream_id < first_refused)
                    first_refused = f.stream_id;
            } else {
                other_rst++;
            }
        }
    }
    printf("concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS %u advertised; %u streams opened at once: "
           "%u refused with REFUSED_STREAM (the first: stream %u), %u other resets\n",
           advertised, limit + extra, refused, first_refused, other_rst);
    if (advertised != limit)
        FAIL("advertised %u concurrent streams, want %u", advertised, limit);
    if (refused != extra || first_refused != 2 * limit + 1)
        FAIL("want the %u streams over the limit refused with REFUSED_STREAM", extra);
    if (!ping_answered(&c))
        FAIL("the connection did not survive refused streams");
    /* (2) with the limit acknowledged, one more stream is a protocol
     * violation: nghttp2 sends GOAWAY(PROTOCOL_ERROR), and we close */
    ack_settings(&c);
    h2w_buf_reset(&out);
    h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, sid, block.data, block.len);
    h2w_write(&c, out.data, out.len, 1000);
    h2w_goaway_t g = {0};
    int rc = expect_goaway(&c, &g, NGHTTP2_PROTOCOL_ERROR, "a stream over the acknowledged limit", 1);
    h2w_conn_close(&c);

    /* (3) a client that never acknowledges and opens stream after stream:
     * every refusal costs it, and it is sent away */
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    stream_state_t s = {1, {0}};
    h2w_buf_put(&s.block, block.data, block.len);
    memset(&g, 0, sizeof(g));
    h2w_buf_t b = {0};
    unsigned long opened = 0;
    while (opened < 100000 && !g.seen && !c.is_eof && !c.is_reset) {
        h2w_buf_reset(&b);
        for (int i = 0; i < 100; i++, s.next_id += 2, opened++)
            h2w_frame(&b, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, s.next_id, s.block.data, s.block.len);
        if (h2w_write(&c, b.data, b.len, 2000) < b.len)
            break;
        h2w_poll_frames(&c, &g, NULL);
    }
    printf("refused-stream flood: %lu streams opened without acknowledging the limit\n", opened);
    rc |= expect_goaway(&c, &g, CALM, "refused-stream flood", opened);
    h2w_conn_close(&c);
    h2w_buf_free(&b);
    h2w_buf_free(&s.block);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
    return rc | attack_end(64);
}

/* ---- connections per address ---- */

/* True if the server greets a new connection with its SETTINGS. */
static bool greeted(h2w_conn_t *c)
{
    h2w_frame_t f;
    return h2w_read_frame(c, &f, 2000) == 1 && f.type == NGHTTP2_SETTINGS;
}

static int conn_limit(void)
{
    attack_begin();
    enum { LIMIT = 50, FLOOD = 2000 };
    static h2w_conn_t conns[LIMIT];
    for (int i = 0; i < LIMIT; i++) {
        if (attacker_connect(&conns[i], NULL, 0) != 0 || !greeted(&conns[i]))
            FAIL("connection %d of %d (within the limit) was not served", i + 1, LIMIT);
    }
    h2w_conn_t extra;
    bool extra_served = attacker_connect(&extra, NULL, 0) == 0 && greeted(&extra);
    printf("connections from %s: %d served; the next one %s (%s)\n", ATTACKER, LIMIT,
           extra_served ? "SERVED" : "refused",
           extra.is_reset ? "reset"
           : extra.is_eof ? "closed"
                          : "no answer");
    h2w_conn_close(&extra);
    if (extra_served)
        FAIL("connection %d from one address was served, limit %d", LIMIT + 1, LIMIT);
    for (int i = 0; i < 5; i++)
        h2w_conn_close(&conns[i]);
    usleep(200 * 1000);
    for (int i = 0; i < 5; i++)
        if (attacker_connect(&conns[i], NULL, 0) != 0 || !greeted(&conns[i]))
            FAIL("a connection after 5 closed was not served");
    printf("after closing 5 of them, 5 new ones were served\n");
    /* a flood of connection attempts over the limit: each reset at accept
     * (a connect that fails outright, e.g. for want of a local port, is
     * counted apart: it never reached the server) */
    int64_t t0 = pl_now_msec();
    int refused = 0, served = 0, silent = 0, no_connect = 0;
    for (int i = 0; i < FLOOD; i++) {
        int fd = h2w_tcp_connect(port, ATTACKER);
        if (fd < 0) {
            no_connect++;
            continue;
        }
        h2w_conn_t c;
        h2w_conn_init(&c, fd, NULL);
        h2w_frame_t f;
        int r = h2w_read_frame(&c, &f, 3000);
        if (r == 0)
            refused++;
        else if (r == 1)
            served++;
        else
            silent++;
        h2w_conn_close(&c);
    }
    printf("connection flood: %d attempts over the limit in %lld ms: %d reset at accept, %d served, %d without an "
           "answer in 3 s, %d failed to connect\n",
           FLOOD, (long long)(pl_now_msec() - t0), refused, served, silent, no_connect);
    for (int i = 0; i < LIMIT; i++)
        h2w_conn_close(&conns[i]);
    if (served || silent)
        FAIL("%d of %d connections over the limit were served (%d more left hanging)", served, FLOOD, silent);
    return attack_end(64);
}

/* ---- stream ids (RFC 9113 §5.1, §5.1.1) ---- */

/* A complete EmptyCall on stream sid; waits for its answer. */
static bool empty_call(h2w_conn_t *c, uint32_t sid)
{
    h2w_buf_t block = {0}, out = {0};
    h2w_grpc_request_block(&block, EMPTY_CALL);
    static const uint8_t empty[5] = {0};
    h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, sid, block.data, block.len);
    h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid, empty, sizeof(empty));
    h2w_write(c, out.data, out.len, 1000);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
    uint32_t rst;
    return read_grpc_status(c, sid, &rst) == 0;
}

/* A request HEADERS on sid, then the GOAWAY it must bring. */
static int expect_id_error(h2w_conn_t *c, uint32_t sid, uint32_t want, const char *what)
{
    h2w_buf_t block = {0}, out = {0};
    h2w_grpc_request_block(&block, EMPTY_CALL);
    h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, sid, block.data, block.len);
    h2w_write(c, out.data, out.len, 1000);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
    h2w_goaway_t g = {0};
    return expect_goaway(c, &g, want, what, 1);
}

static int stream_ids(void)
{
    attack_begin();
    int rc = 0;
    h2w_conn_t c;
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    if (!empty_call(&c, 5))
        FAIL("the call on stream 5 failed");
    rc |= expect_id_error(&c, 3, NGHTTP2_PROTOCOL_ERROR, "a new stream 3 after stream 5");
    h2w_conn_close(&c);
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    if (!empty_call(&c, 1))
        FAIL("the call on stream 1 failed");
    rc |= expect_id_error(&c, 1, NGHTTP2_STREAM_CLOSED, "stream 1 opened again after it ended");
    h2w_conn_close(&c);
    /* frames on a closed stream cost like any frame without progress */
    if (attacker_connect(&c, NULL, 0) != 0)
        FAIL("connect");
    ack_settings(&c);
    if (!empty_call(&c, 1))
        FAIL("the call on stream 1 failed");
    h2w_buf_t b = {0};
    uint8_t inc[4] = {0, 0, 0, 1};
    for (int i = 0; i < 2000; i++)
        h2w_frame(&b, NGHTTP2_WINDOW_UPDATE, 0, 1, inc, 4);
    h2w_write(&c, b.data, b.len, 2000);
    h2w_buf_free(&b);
    h2w_goaway_t g = {0};
    rc |= expect_goaway(&c, &g, CALM, "WINDOW_UPDATE flood on a closed stream", 2000);
    h2w_conn_close(&c);
    return rc | attack_end(32);
}

int main(int argc, char **argv)
{
    static const pl_test_case_t cases[] = {
        {"rapid_reset", rapid_reset},
        {"settings_flood", settings_flood},
        {"ping_flood", ping_flood},
        {"empty_frames", empty_frames},
        {"continuation_flood", continuation_flood},
        {"header_list", header_list},
        {"slow_reader", slow_reader},
        {"slowloris", slowloris},
        {"concurrent_streams", concurrent_streams},
        {"conn_limit", conn_limit},
        {"stream_ids", stream_ids},
    };
    return attack_main(argc, argv, "h2_attacks", cases, sizeof(cases) / sizeof(cases[0]), NULL);
}
