/* interop_server — grpc.testing.TestService (the gRPC project's interop
 * service) on Parley's server runtime. Its options are parleyd's (the one
 * option table, config/config.c: --port=N, --limits.keepalive_time_ms=N, ...)
 * plus the interop suite's --use_tls=true|false, which without a
 * certificate uses the test ones in tests/certs. SIGHUP reloads the
 * certificate files (as parleyd). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "grpc/testing/test.parley.h"
#include "http2/session.h"
#include "interop_descriptors.h"
#include "parley_idl_descriptors.h"
#include "rpc/call.h"
#include "runtime/errors.h"
#include "services/health.h"
#include "services/reflection.h"
#include "transport/server.h"

#define MAX_PAYLOAD (4u << 20)
#define MAX_STEPS 256

static uint8_t zeros[MAX_PAYLOAD]; /* response bodies: "size bytes of zeros" */

static bool flag_value(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return false;
    *value = arg + n + 1;
    return true;
}

/* Validates expect_compressed against how the request arrived. */
static bool check_compression(pl_call_t *call, bool has_expect, const grpc_testing_BoolValue *expect)
{
    if (!has_expect)
        return true;
    bool was = pl_call_request_was_compressed(call);
    if (expect->value != was) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       expect->value ? "expected a compressed request" : "expected an uncompressed request");
        return false;
    }
    return true;
}

static void echo_metadata(pl_call_t *call)
{
    size_t len;
    const uint8_t *v = pl_metadata_get(pl_call_metadata(call), "x-grpc-test-echo-initial", &len);
    if (v)
        pl_call_add_initial_metadata(call, "x-grpc-test-echo-initial", v, len);
    v = pl_metadata_get(pl_call_metadata(call), "x-grpc-test-echo-trailing-bin", &len);
    if (v)
        pl_call_add_trailing_metadata(call, "x-grpc-test-echo-trailing-bin", v, len);
}

static bool payload_size_ok(pl_call_t *call, int32_t size)
{
    if (size < 0 || (uint32_t)size > MAX_PAYLOAD) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "response size out of range");
        return false;
    }
    return true;
}

static void empty_call(pl_call_t *call, const grpc_testing_Empty *req, void *svc)
{
    (void)req;
    (void)svc;
    grpc_testing_Empty resp = {0};
    echo_metadata(call);
    grpc_testing_TestService_EmptyCall_reply(call, &resp);
}

static void unary_call(pl_call_t *call, const grpc_testing_SimpleRequest *req, void *svc)
{
    (void)svc;
    echo_metadata(call);
    if (!check_compression(call, req->has_expect_compressed, &req->expect_compressed))
        return;
    if (req->has_response_status && req->response_status.code != 0) {
        pl_call_finish(call, (pl_code_t)req->response_status.code, req->response_status.message);
        return;
    }
    if (!payload_size_ok(call, req->response_size))
        return;
    if (req->has_response_compressed)
        pl_call_set_compression(call, req->response_compressed.value);
    grpc_testing_SimpleResponse resp = {0};
    resp.has_payload = true;
    resp.payload.body = pl_bytes_of(zeros, (size_t)req->response_size);
    grpc_testing_TestService_UnaryCall_reply(call, &resp);
}

/* ---- streamed responses: a schedule of (size, interval, compressed) ---- */

typedef struct step {
    int32_t size;
    int32_t interval_us;
    bool has_compressed, compressed;
} step_t;

typedef struct schedule {
    step_t steps[MAX_STEPS];
    size_t head, count;
    bool input_done; /* no more steps will be added */
    bool waited;     /* the head step's interval has passed */
    bool busy;       /* a timer or a writable callback is pending */
    bool buffer_all; /* HalfDuplexCall: answer only after the half-close */
    int64_t aggregated;
} schedule_t;

static void run_schedule(pl_call_t *call, void *user);

static void on_schedule_timer(pl_call_t *call, void *user)
{
    schedule_t *s = user;
    s->busy = false;
    s->waited = true;
    run_schedule(call, user);
}

static void on_schedule_writable(pl_call_t *call, void *user)
{
    schedule_t *s = user;
    s->busy = false;
    run_schedule(call, user);
}

static void run_schedule(pl_call_t *call, void *user)
{
    schedule_t *s = user;
    if (s->busy || pl_call_is_finished(call) || (s->buffer_all && !s->input_done))
        return;
    while (s->head < s->count) {
        step_t *st = &s->steps[s->head];
        if (st->interval_us > 0 && !s->waited) {
            s->busy = true;
            pl_call_defer(call, st->interval_us, on_schedule_timer);
            return;
        }
        if (st->has_compressed)
            pl_call_set_compression(call, st->compressed);
        grpc_testing_StreamingOutputCallResponse resp = {0};
        resp.has_payload = true;
        resp.payload.body = pl_bytes_of(zeros, (size_t)st->size);
        int rc = pl_call_send(call, &resp);
        if (rc == PL_ERR_FULL) {
            s->busy = true;
            pl_call_on_writable(call, on_schedule_writable);
            return;
        }
        if (rc != 0)
            return;
        s->head++;
        s->waited = false;
    }
    s->head = s->count = 0; /* all sent: reuse the queue for the next requests */
    if (s->input_done)
        pl_call_finish(call, PL_CODE_OK, NULL);
}

static schedule_t *schedule_for(pl_call_t *call)
{
    schedule_t *s = pl_call_user(call);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    pl_call_set_user(call, s, free);
    return s;
}

/* Queues a request's response_parameters; false if the call ended. */
static bool add_steps(pl_call_t *call, schedule_t *s, const grpc_testing_StreamingOutputCallRequest *req)
{
    if (req->has_response_status && req->response_status.code != 0) {
        pl_call_finish(call, (pl_code_t)req->response_status.code, req->response_status.message);
        return false;
    }
    for (pb_size_t i = 0; i < req->response_parameters_count; i++) {
        const grpc_testing_ResponseParameters *p = &req->response_parameters[i];
        if (!payload_size_ok(call, p->size))
            return false;
        if (s->count == MAX_STEPS) {
            pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "too many response parameters");
            return false;
        }
        step_t *st = &s->steps[s->count++];
        st->size = p->size;
        st->interval_us = p->interval_us;
        st->has_compressed = p->has_compressed;
        st->compressed = p->compressed.value;
    }
    return true;
}

static void streaming_output_call(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req, void *svc)
{
    (void)svc;
    echo_metadata(call);
    schedule_t *s = schedule_for(call);
    if (!s || !add_steps(call, s, req))
        return;
    s->input_done = true;
    run_schedule(call, s);
}

static void duplex_start(pl_call_t *call, void *svc)
{
    (void)svc;
    echo_metadata(call);
    schedule_for(call);
}

static void duplex_message(pl_call_t *call, const grpc_testing_StreamingOutputCallRequest *req, void *svc)
{
    (void)svc;
    schedule_t *s = schedule_for(call);
    if (s && add_steps(call, s, req))
        run_schedule(call, s);
}

static void duplex_half_close(pl_call_t *call, void *svc)
{
    (void)svc;
    schedule_t *s = schedule_for(call);
    if (!s)
        return;
    s->input_done = true;
    run_schedule(call, s);
}

static void half_duplex_start(pl_call_t *call, void *svc)
{
    duplex_start(call, svc);
    schedule_t *s = pl_call_user(call);
    if (s)
        s->buffer_all = true;
}

static void input_message(pl_call_t *call, const grpc_testing_StreamingInputCallRequest *req, void *svc)
{
    (void)svc;
    schedule_t *s = schedule_for(call);
    if (!s || !check_compression(call, req->has_expect_compressed, &req->expect_compressed))
        return;
    s->aggregated += (int64_t)req->payload.body.len;
}

static void input_half_close(pl_call_t *call, void *svc)
{
    (void)svc;
    schedule_t *s = schedule_for(call);
    if (!s)
        return;
    grpc_testing_StreamingInputCallResponse resp = {0};
    resp.aggregated_payload_size = (int32_t)s->aggregated;
    grpc_testing_TestService_StreamingInputCall_reply(call, &resp);
}

static const grpc_testing_TestService_handlers_t handlers = {
    .EmptyCall = empty_call,
    .UnaryCall = unary_call,
    .CacheableUnaryCall = unary_call,
    .StreamingOutputCall = streaming_output_call,
    .StreamingInputCall_start = duplex_start,
    .StreamingInputCall = input_message,
    .StreamingInputCall_half_close = input_half_close,
    .FullDuplexCall_start = duplex_start,
    .FullDuplexCall = duplex_message,
    .FullDuplexCall_half_close = duplex_half_close,
    .HalfDuplexCall_start = half_duplex_start,
    .HalfDuplexCall = duplex_message,
    .HalfDuplexCall_half_close = duplex_half_close,
    /* UnimplementedCall stays NULL: it must answer UNIMPLEMENTED */
};

static const char usage[] =
    "usage: interop_server [--use_tls=true|false] [parleyd's server and limits options, e.g. --port=N\n"
    "       --server.tls_cert=F --server.tls_key=F --limits.keepalive_time_ms=N]\n\n"
    "The gRPC interop test service on Parley's server runtime. --use_tls=true without a certificate\n"
    "uses the test certificates (tests/certs).";

int main(int argc, char **argv)
{
    /* --use_tls is the interop suite's own flag; everything else is
     * parleyd's option table, defaults included */
    bool use_tls = false;
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    int nargs = 0;
    if (!args)
        return 1;
    for (int i = 0; i < argc; i++) {
        const char *v;
        if (i > 0 && flag_value(argv[i], "--use_tls", &v))
            use_tls = strcmp(v, "true") == 0;
        else
            args[nargs++] = argv[i];
    }
    static pl_config_t config;
    char err[512];
    int rc = pl_config_load(&config, nargs, args, usage, err, sizeof(err));
    free(args);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "interop_server: %s\n", err);
        return rc < 0 ? 2 : 0;
    }
    pl_server_config_t cfg = config.server;
    if (use_tls && !cfg.tls_cert_file[0]) {
        cfg.tls_cert_file = PARLEY_TEST_CERTS "/server.pem";
        cfg.tls_key_file = PARLEY_TEST_CERTS "/server.key";
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pl_server_t *srv = pl_server_new(&cfg, &pl_h2_session);
    if (!srv)
        return 1;
    pl_health_t *health = pl_health_register(srv);
    if (!health || pl_reflection_register(srv) != 0 || grpc_testing_TestService_register(srv, &handlers, NULL) != 0 ||
        pl_server_add_descriptors(srv, &interop_descriptors) != 0 ||
        pl_server_add_descriptors(srv, &parley_idl_descriptors) != 0) {
        fprintf(stderr, "interop_server: cannot register services\n");
        return 1;
    }
    if (pl_server_start(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "interop_server: %s\n", err);
        return 1;
    }
    printf("interop_server: listening on %s:%u (%s)\n", pl_server_config(srv)->host, pl_server_port(srv),
           use_tls ? "tls" : "h2c");
    fflush(stdout);
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0 || sig == SIGHUP) {
        if (sig != SIGHUP)
            continue;
        char desc[512];
        if (pl_server_reload_tls(srv, err, sizeof(err)) != 0) {
            printf("interop_server: SIGHUP: TLS not reloaded: %s\n", err);
        } else {
            pl_server_tls_describe(srv, desc, sizeof(desc));
            printf("interop_server: SIGHUP: TLS reloaded (%s)\n", desc);
        }
        fflush(stdout);
    }
    pl_server_drain(srv);
    pl_server_wait(srv);
    pl_server_free(srv);
    pl_health_free(health);
    return 0;
}
