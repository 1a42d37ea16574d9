/* fuzz_server — the server's whole receive path for one connection: bytes
 * from a client go through a socketpair into a real connection (conn.c) on
 * a real worker (its event loop driven here, on this thread: no thread is
 * started), then the frame scanner and nghttp2 (session.c), the gRPC call
 * layer (rpc/), and the handlers: a small grpc.testing.TestService plus
 * health and reflection. Each input is one connection, closed and freed
 * before the next; the server lives across inputs.
 *
 * The input is what the client sends (start it with the HTTP/2 preface; the
 * seed corpus has real captures). It is written in chunks whose size comes
 * from the input's length, so frames are also split across reads. */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "grpc/testing/test.parley.h"
#include "http2/session.h"
#include "interop_descriptors.h"
#include "rpc/call.h"
#include "runtime/errors.h"
#include "services/health.h"
#include "services/reflection.h"
#include "transport/conn.h"
#include "transport/server.h"
#include "transport/worker.h"

#define MAX_RESPONSE 2048 /* bytes per response message the handlers make */
#define LOOP_TURNS 64     /* event loop passes per input at most */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pl_server_t *server;
static pl_worker_t *worker;
static uint8_t zeros[MAX_RESPONSE];

static size_t clamp(int32_t n)
{
    return n < 0 ? 0 : (size_t)n > MAX_RESPONSE ? MAX_RESPONSE : (size_t)n;
}

static void empty_call(pl_call_t *call, const grpc_testing_Empty *req, void *svc)
{
    (void)req;
    (void)svc;
    grpc_testing_Empty resp = {0};
    size_t len;
    const uint8_t *v = pl_metadata_get(pl_call_metadata(call), "x-grpc-test-echo-initial", &len);
    if (v)
        pl_call_add_initial_metadata(call, "x-grpc-test-echo-initial", v, len);
    grpc_testing_TestService_EmptyCall_reply(call, &resp);
}

static void unary_call(pl_call_t *call, const grpc_testing_SimpleRequest *req, void *svc)
{
    (void)svc;
    if (req->has_response_status && req->response_status.code != 0) {
        pl_call_finish(call, (pl_code_t)(req->response_status.code & 0xff), req->response_status.message);
        return;
    }
    if (req->has_response_compressed)
        pl_call_set_compression(call, req->response_compressed.value);
    grpc_testing_SimpleResponse resp = {0};
    resp.has_payload = true;
    resp.payload.body = pl_bytes_of(zeros, clamp(req->response_size));
    grpc_testing_TestService_UnaryCall_reply(call, &resp);
}

/* Sends what a streaming request asks for at once (no intervals). */
static void send_steps(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req)
{
    if (req->has_response_status && req->response_status.code != 0) {
        pl_call_finish(call, (pl_code_t)(req->response_status.code & 0xff), req->response_status.message);
        return;
    }
    for (pb_size_t i = 0; i < req->response_parameters_count; i++) {
        const grpc_testing_ResponseParameters *p = &req->response_parameters[i];
        if (p->has_compressed)
            pl_call_set_compression(call, p->compressed.value);
        grpc_testing_StreamingOutputCallResponse resp = {0};
        resp.has_payload = true;
        resp.payload.body = pl_bytes_of(zeros, clamp(p->size));
        if (pl_call_send(call, &resp) != 0)
            return; /* full or ended: drop the rest */
    }
}

static void streaming_output(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req, void *svc)
{
    (void)svc;
    send_steps(call, req);
    pl_call_finish(call, PL_CODE_OK, NULL);
}

static void duplex_message(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req, void *svc)
{
    (void)svc;
    send_steps(call, req);
}

static void finish_ok(pl_call_t *call, void *svc)
{
    (void)svc;
    pl_call_finish(call, PL_CODE_OK, NULL);
}

static void resume(pl_call_t *call, void *user)
{
    (void)user;
    pl_call_resume_recv(call);
}

static void input_message(pl_call_t *call, const grpc_testing_StreamingInputCallRequest *req, void *svc)
{
    (void)svc;
    uintptr_t total = (uintptr_t)pl_call_user(call) + req->payload.body.len;
    pl_call_set_user(call, (void *)total, NULL);
    if (req->payload.body.len & 1) { /* hold what follows until the next loop turn */
        pl_call_pause_recv(call);
        if (pl_call_defer(call, 0, resume) != 0)
            pl_call_resume_recv(call);
    }
}

static void input_half_close(pl_call_t *call, void *svc)
{
    (void)svc;
    grpc_testing_StreamingInputCallResponse resp = {0};
    resp.aggregated_payload_size = (int32_t)(uintptr_t)pl_call_user(call);
    grpc_testing_TestService_StreamingInputCall_reply(call, &resp);
}

static const grpc_testing_TestService_handlers_t handlers = {
    .EmptyCall = empty_call,
    .UnaryCall = unary_call,
    .StreamingOutputCall = streaming_output,
    .StreamingInputCall = input_message,
    .StreamingInputCall_half_close = input_half_close,
    .FullDuplexCall = duplex_message,
    .FullDuplexCall_half_close = finish_ok,
    .HalfDuplexCall = duplex_message,
    .HalfDuplexCall_half_close = finish_ok,
};

static void setup(void)
{
    /* parleyd's defaults (the option table), then smaller limits so the
     * fuzzer reaches them */
    static pl_config_t config;
    char *argv[] = {"fuzz_server", NULL};
    char err[256];
    if (pl_config_load(&config, 1, argv, "", err, sizeof(err)) != 0)
        abort();
    pl_server_config_t cfg = config.server;
    cfg.max_recv_message = 64u << 10;
    cfg.max_send_message = 64u << 10;
    cfg.call_outbound_limit = 16u << 10;
    cfg.max_concurrent_streams = 32;
    cfg.initial_window = 65535;
    cfg.useless_burst = 200;
    cfg.reset_burst = 100;
    server = pl_server_new(&cfg, &pl_h2_session);
    if (!server || !pl_health_register(server) || pl_reflection_register(server) != 0 ||
        grpc_testing_TestService_register(server, &handlers, NULL) != 0 ||
        pl_server_add_descriptors(server, &interop_descriptors) != 0 ||
        pl_server_start_inline(server, err, sizeof(err)) != 0)
        abort();
    worker = pl_server_worker(server, 0);
}

/* Reads and discards what the server wrote. */
static void drain(int fd)
{
    uint8_t buf[65536];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
}

static void turn(int peer)
{
    event_base_loop(pl_worker_base(worker), EVLOOP_NONBLOCK);
    if (peer >= 0)
        drain(peer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        setup();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    if (pl_conn_new(worker, sv[0], NULL, 0) != 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    size_t chunk = 1 + (size * 7919) % 1500;
    size_t off = 0;
    int turns = 0;
    while (off < size && turns < LOOP_TURNS * 4) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
        if (w > 0)
            off += (size_t)w;
        turn(sv[1]);
        turns++;
    }
    for (int i = 0; i < LOOP_TURNS / 4; i++)
        turn(sv[1]);
    close(sv[1]); /* the client goes: the server sees EOF */
    for (int i = 0; i < LOOP_TURNS && pl_worker_conn_count(worker) > 0; i++)
        turn(-1);
    pl_worker_close_connections(worker); /* still lingering or waiting: go */
    for (int i = 0; i < 4; i++)
        turn(-1); /* deferred work that must run out (none may outlive its call) */
    return 0;
}
