/* interop_client — the gRPC interop cases from Parley's own C client
 * (generated stubs over libparley's channel), with the standard interop
 * client flags; --test_case takes a comma-separated list or "all". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "grpc/testing/test.parley.h"
#include "parley/channel.h"

#define BIG_ZEROS (1u << 20)

static uint8_t zeros[BIG_ZEROS];

static const char special_message[] = "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP "
                                      "\xf0\x9f\x98\x88\t\n";

static bool all_zero(pl_bytes_t b)
{
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i])
            return false;
    return true;
}

static grpc_testing_StreamingOutputCallRequest duplex_request(int32_t size, size_t body)
{
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 1;
    req.response_parameters[0].size = size;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, body);
    return req;
}

static const pl_call_opts_t opts10 = {10000, NULL, false};

static bool empty_unary(pl_channel_t *ch)
{
    grpc_testing_Empty req = {0}, resp = {0};
    pl_status_t st = {0};
    pl_code_t code = grpc_testing_TestService_EmptyCall(ch, &opts10, &req, &resp, &st);
    REQUIRE(code == PL_CODE_OK, "EmptyCall: %s %s", pl_code_name(code), st.message ? st.message : "");
    pl_status_reset(&st);
    return true;
}

static bool large_unary(pl_channel_t *ch)
{
    grpc_testing_SimpleRequest req = {0};
    grpc_testing_SimpleResponse resp = {0};
    req.response_size = 314159;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, 271828);
    pl_code_t code = grpc_testing_TestService_UnaryCall(ch, &opts10, &req, &resp, NULL);
    REQUIRE(code == PL_CODE_OK, "UnaryCall: %s", pl_code_name(code));
    REQUIRE(resp.payload.body.len == 314159, "payload %zu bytes, want 314159", resp.payload.body.len);
    REQUIRE(all_zero(resp.payload.body), "payload not all zeros");
    return true;
}

static bool client_streaming(pl_channel_t *ch)
{
    static const size_t sizes[] = {27182, 8, 1828, 45904};
    pl_ccall_t *c = grpc_testing_TestService_StreamingInputCall_start(ch, &opts10);
    REQUIRE(c, "start failed");
    for (size_t i = 0; i < 4; i++) {
        grpc_testing_StreamingInputCallRequest req = {0};
        req.has_payload = true;
        req.payload.body = pl_bytes_of(zeros, sizes[i]);
        grpc_testing_TestService_StreamingInputCall_send(c, &req);
    }
    grpc_testing_StreamingInputCallResponse resp = {0};
    pl_code_t code = grpc_testing_TestService_StreamingInputCall_close_and_recv(c, &resp, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_OK, "status %s", pl_code_name(code));
    REQUIRE(resp.aggregated_payload_size == 74922, "aggregated %d, want 74922", resp.aggregated_payload_size);
    return true;
}

static bool server_streaming(pl_channel_t *ch)
{
    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 4;
    for (int i = 0; i < 4; i++)
        req.response_parameters[i].size = sizes[i];
    pl_ccall_t *c = grpc_testing_TestService_StreamingOutputCall_start(ch, &opts10, &req);
    REQUIRE(c, "start failed");
    int n = 0;
    for (;;) {
        grpc_testing_StreamingOutputCallResponse resp = {0};
        int rc = grpc_testing_TestService_StreamingOutputCall_recv(c, &resp);
        if (rc != 1)
            break;
        if (n >= 4 || resp.payload.body.len != (size_t)sizes[n]) {
            pl_ccall_free(c);
            FAIL("response %d has %zu bytes", n, resp.payload.body.len);
        }
        n++;
    }
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_OK, "status %s", pl_code_name(code));
    REQUIRE(n == 4, "%d responses, want 4", n);
    return true;
}

static bool ping_pong(pl_channel_t *ch)
{
    static const int32_t sizes[] = {31415, 9, 2653, 58979};
    static const size_t bodies[] = {27182, 8, 1828, 45904};
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, &opts10);
    REQUIRE(c, "start failed");
    bool ok = true;
    for (int i = 0; i < 4 && ok; i++) {
        grpc_testing_StreamingOutputCallRequest req = duplex_request(sizes[i], bodies[i]);
        grpc_testing_StreamingOutputCallResponse resp = {0};
        ok = grpc_testing_TestService_FullDuplexCall_send(c, &req) == 0 &&
             grpc_testing_TestService_FullDuplexCall_recv(c, &resp) == 1 && resp.payload.body.len == (size_t)sizes[i];
        CHECK(ok, "round %d failed", i);
    }
    pl_ccall_close_send(c);
    grpc_testing_StreamingOutputCallResponse extra = {0};
    int rc = ok ? grpc_testing_TestService_FullDuplexCall_recv(c, &extra) : -1;
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    if (!ok)
        return false;
    REQUIRE(rc == 0, "extra response after half-close");
    REQUIRE(code == PL_CODE_OK, "status %s", pl_code_name(code));
    return true;
}

static bool empty_stream(pl_channel_t *ch)
{
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, &opts10);
    REQUIRE(c, "start failed");
    pl_ccall_close_send(c);
    grpc_testing_StreamingOutputCallResponse resp = {0};
    int rc = grpc_testing_TestService_FullDuplexCall_recv(c, &resp);
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(rc == 0, "got a response on an empty stream");
    REQUIRE(code == PL_CODE_OK, "status %s", pl_code_name(code));
    return true;
}

static bool check_echoed(pl_ccall_t *c)
{
    size_t len;
    const uint8_t *v = pl_metadata_get(pl_ccall_initial_metadata(c), "x-grpc-test-echo-initial", &len);
    bool ok = CHECK(v && len == 27 && memcmp(v, "test_initial_metadata_value", 27) == 0, "initial metadata not echoed");
    v = pl_metadata_get(pl_ccall_trailing_metadata(c), "x-grpc-test-echo-trailing-bin", &len);
    return CHECK(v && len == 3 && memcmp(v, "\xab\xab\xab", 3) == 0, "trailing binary metadata not echoed") && ok;
}

static bool custom_metadata(pl_channel_t *ch)
{
    pl_metadata_t md = PL_METADATA_INIT(4096);
    pl_metadata_add(&md, "x-grpc-test-echo-initial", "test_initial_metadata_value", 27);
    pl_metadata_add(&md, "x-grpc-test-echo-trailing-bin", "\xab\xab\xab", 3);
    pl_call_opts_t o = {10000, &md, false};
    bool ok = true;

    grpc_testing_SimpleRequest req = {0};
    req.response_size = 314159;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, 271828);
    pl_ccall_t *c = pl_ccall_start(ch, &grpc_testing_TestService_UnaryCall_method, &o);
    if (c && pl_ccall_send(c, &req) == 0)
        pl_ccall_close_send(c);
    grpc_testing_SimpleResponse resp = {0};
    int got = c ? pl_ccall_recv(c, &resp) : -1;
    pl_code_t code = c ? pl_ccall_finish(c, NULL) : PL_CODE_INTERNAL;
    ok = CHECK(got == 1 && code == PL_CODE_OK, "unary: %s", pl_code_name(code)) && check_echoed(c);
    pl_ccall_free(c);

    if (ok) {
        grpc_testing_StreamingOutputCallRequest dreq = duplex_request(314159, 271828);
        c = grpc_testing_TestService_FullDuplexCall_start(ch, &o);
        grpc_testing_TestService_FullDuplexCall_send(c, &dreq);
        pl_ccall_close_send(c);
        grpc_testing_StreamingOutputCallResponse dresp = {0};
        got = grpc_testing_TestService_FullDuplexCall_recv(c, &dresp);
        code = pl_ccall_finish(c, NULL);
        ok = CHECK(got == 1 && code == PL_CODE_OK, "duplex: %s", pl_code_name(code)) && check_echoed(c);
        pl_ccall_free(c);
    }
    pl_metadata_dispose(&md);
    return ok;
}

static bool echo_status(pl_channel_t *ch, const char *message, bool with_duplex)
{
    grpc_testing_SimpleRequest req = {0};
    grpc_testing_SimpleResponse resp = {0};
    req.has_response_status = true;
    req.response_status.code = 2;
    snprintf(req.response_status.message, sizeof(req.response_status.message), "%s", message);
    pl_status_t st = {0};
    pl_code_t code = grpc_testing_TestService_UnaryCall(ch, &opts10, &req, &resp, &st);
    bool same = st.message && strcmp(st.message, message) == 0;
    pl_status_reset(&st);
    REQUIRE(code == PL_CODE_UNKNOWN, "unary status %s, want UNKNOWN", pl_code_name(code));
    REQUIRE(same, "unary status message differs");
    if (!with_duplex)
        return true;
    grpc_testing_StreamingOutputCallRequest dreq = {0};
    dreq.has_response_status = true;
    dreq.response_status = req.response_status;
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, &opts10);
    grpc_testing_TestService_FullDuplexCall_send(c, &dreq);
    pl_ccall_close_send(c);
    code = pl_ccall_finish(c, &st);
    same = st.message && strcmp(st.message, message) == 0;
    pl_status_reset(&st);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_UNKNOWN, "duplex status %s, want UNKNOWN", pl_code_name(code));
    REQUIRE(same, "duplex status message differs");
    return true;
}

static bool status_code_and_message(pl_channel_t *ch)
{
    return echo_status(ch, "test status message", true);
}

static bool special_status_message(pl_channel_t *ch)
{
    return echo_status(ch, special_message, false);
}

static bool unimplemented_method(pl_channel_t *ch)
{
    grpc_testing_Empty req = {0}, resp = {0};
    pl_code_t code = grpc_testing_TestService_UnimplementedCall(ch, &opts10, &req, &resp, NULL);
    REQUIRE(code == PL_CODE_UNIMPLEMENTED, "status %s, want UNIMPLEMENTED", pl_code_name(code));
    return true;
}

static bool unimplemented_service(pl_channel_t *ch)
{
    grpc_testing_Empty req = {0}, resp = {0};
    pl_code_t code = grpc_testing_UnimplementedService_UnimplementedCall(ch, &opts10, &req, &resp, NULL);
    REQUIRE(code == PL_CODE_UNIMPLEMENTED, "status %s, want UNIMPLEMENTED", pl_code_name(code));
    return true;
}

static bool cancel_after_begin(pl_channel_t *ch)
{
    pl_ccall_t *c = grpc_testing_TestService_StreamingInputCall_start(ch, &opts10);
    REQUIRE(c, "start failed");
    pl_ccall_cancel(c);
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_CANCELLED, "status %s, want CANCELLED", pl_code_name(code));
    /* the channel must still work after a cancel */
    return empty_unary(ch);
}

static bool cancel_after_first_response(pl_channel_t *ch)
{
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, &opts10);
    REQUIRE(c, "start failed");
    grpc_testing_StreamingOutputCallRequest req = duplex_request(31415, 27182);
    grpc_testing_StreamingOutputCallResponse resp = {0};
    grpc_testing_TestService_FullDuplexCall_send(c, &req);
    int got = grpc_testing_TestService_FullDuplexCall_recv(c, &resp);
    pl_ccall_cancel(c);
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(got == 1 && resp.payload.body.len == 31415, "no first response");
    REQUIRE(code == PL_CODE_CANCELLED, "status %s, want CANCELLED", pl_code_name(code));
    return empty_unary(ch);
}

static bool timeout_on_sleeping_server(pl_channel_t *ch)
{
    pl_call_opts_t o = {1, NULL, false};
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, &o);
    REQUIRE(c, "start failed");
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, 27182);
    grpc_testing_TestService_FullDuplexCall_send(c, &req);
    grpc_testing_StreamingOutputCallResponse resp = {0};
    while (grpc_testing_TestService_FullDuplexCall_recv(c, &resp) == 1)
        ;
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_DEADLINE_EXCEEDED, "status %s, want DEADLINE_EXCEEDED", pl_code_name(code));
    return empty_unary(ch);
}

/* ---- compression (beyond the 14 required cases: gzip both ways) ---- */

static pl_code_t unary_compressed(pl_channel_t *ch, bool compress_req, bool expect_compressed, bool resp_compressed,
                                  bool *resp_was_compressed)
{
    grpc_testing_SimpleRequest req = {0};
    req.has_expect_compressed = true;
    req.expect_compressed.value = expect_compressed;
    req.has_response_compressed = true;
    req.response_compressed.value = resp_compressed;
    req.response_size = 314159;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, 271828);
    pl_call_opts_t o = {10000, NULL, compress_req};
    pl_ccall_t *c = pl_ccall_start(ch, &grpc_testing_TestService_UnaryCall_method, &o);
    if (!c)
        return PL_CODE_INTERNAL;
    if (pl_ccall_send(c, &req) == 0)
        pl_ccall_close_send(c);
    grpc_testing_SimpleResponse resp = {0};
    int got = pl_ccall_recv(c, &resp);
    *resp_was_compressed = got == 1 && pl_ccall_last_was_compressed(c);
    pl_code_t code = pl_ccall_finish(c, NULL);
    if (code == PL_CODE_OK && (got != 1 || resp.payload.body.len != 314159 || !all_zero(resp.payload.body)))
        code = PL_CODE_DATA_LOSS;
    pl_ccall_free(c);
    return code;
}

static bool client_compressed_unary(pl_channel_t *ch)
{
    bool rc;
    pl_code_t code = unary_compressed(ch, false, true, false, &rc);
    REQUIRE(code == PL_CODE_INVALID_ARGUMENT, "probe: %s, want INVALID_ARGUMENT", pl_code_name(code));
    code = unary_compressed(ch, true, true, false, &rc);
    REQUIRE(code == PL_CODE_OK, "compressed request: %s", pl_code_name(code));
    code = unary_compressed(ch, false, false, false, &rc);
    REQUIRE(code == PL_CODE_OK, "uncompressed request: %s", pl_code_name(code));
    return true;
}

static bool server_compressed_unary(pl_channel_t *ch)
{
    bool was;
    pl_code_t code = unary_compressed(ch, false, false, true, &was);
    REQUIRE(code == PL_CODE_OK && was, "compressed response: %s, flag %d", pl_code_name(code), was);
    code = unary_compressed(ch, false, false, false, &was);
    REQUIRE(code == PL_CODE_OK && !was, "uncompressed response: %s, flag %d", pl_code_name(code), was);
    return true;
}

static bool client_compressed_streaming(pl_channel_t *ch)
{
    static const size_t sizes[] = {27182, 45904};
    pl_call_opts_t o = {10000, NULL, true};
    pl_ccall_t *c = grpc_testing_TestService_StreamingInputCall_start(ch, &o);
    REQUIRE(c, "start failed");
    for (int i = 0; i < 2; i++) {
        grpc_testing_StreamingInputCallRequest req = {0};
        req.has_expect_compressed = true;
        req.expect_compressed.value = i == 0;
        req.has_payload = true;
        req.payload.body = pl_bytes_of(zeros, sizes[i]);
        pl_ccall_set_compression(c, i == 0);
        grpc_testing_TestService_StreamingInputCall_send(c, &req);
    }
    grpc_testing_StreamingInputCallResponse resp = {0};
    pl_code_t code = grpc_testing_TestService_StreamingInputCall_close_and_recv(c, &resp, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_OK, "status %s", pl_code_name(code));
    REQUIRE(resp.aggregated_payload_size == 73086, "aggregated %d, want 73086", resp.aggregated_payload_size);
    return true;
}

static bool server_compressed_streaming(pl_channel_t *ch)
{
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 2;
    req.response_parameters[0].size = 31415;
    req.response_parameters[0].has_compressed = true;
    req.response_parameters[0].compressed.value = true;
    req.response_parameters[1].size = 92653;
    req.response_parameters[1].has_compressed = true;
    req.response_parameters[1].compressed.value = false;
    pl_ccall_t *c = grpc_testing_TestService_StreamingOutputCall_start(ch, &opts10, &req);
    REQUIRE(c, "start failed");
    bool flags[2] = {false, false};
    size_t lens[2] = {0, 0};
    int n = 0;
    grpc_testing_StreamingOutputCallResponse resp = {0};
    while (n < 2 && grpc_testing_TestService_StreamingOutputCall_recv(c, &resp) == 1) {
        flags[n] = pl_ccall_last_was_compressed(c);
        lens[n++] = resp.payload.body.len;
        memset(&resp, 0, sizeof(resp));
    }
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    REQUIRE(code == PL_CODE_OK && n == 2, "status %s, %d responses", pl_code_name(code), n);
    REQUIRE(lens[0] == 31415 && lens[1] == 92653, "sizes %zu %zu", lens[0], lens[1]);
    REQUIRE(flags[0] && !flags[1], "compressed flags %d %d, want 1 0", flags[0], flags[1]);
    return true;
}

typedef struct test_case {
    const char *name;
    bool (*run)(pl_channel_t *ch);
} test_case_t;

static const test_case_t cases[] = {
    {"empty_unary", empty_unary},
    {"large_unary", large_unary},
    {"client_streaming", client_streaming},
    {"server_streaming", server_streaming},
    {"ping_pong", ping_pong},
    {"empty_stream", empty_stream},
    {"custom_metadata", custom_metadata},
    {"status_code_and_message", status_code_and_message},
    {"special_status_message", special_status_message},
    {"unimplemented_method", unimplemented_method},
    {"unimplemented_service", unimplemented_service},
    {"cancel_after_begin", cancel_after_begin},
    {"cancel_after_first_response", cancel_after_first_response},
    {"timeout_on_sleeping_server", timeout_on_sleeping_server},
    {"client_compressed_unary", client_compressed_unary},
    {"server_compressed_unary", server_compressed_unary},
    {"client_compressed_streaming", client_compressed_streaming},
    {"server_compressed_streaming", server_compressed_streaming},
};
#define CASE_COUNT (sizeof(cases) / sizeof(cases[0]))

/* The case main runs through pl_test_run, and its fresh channel. */
static const test_case_t *current;
static pl_channel_t *current_channel;

static int run_current(void)
{
    return current->run(current_channel) ? 0 : 1;
}

static bool flag_value(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return false;
    *value = arg + n + 1;
    return true;
}

static bool wanted(const char *list, const char *name)
{
    if (strcmp(list, "all") == 0)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    pl_channel_opts_t o = {0};
    o.host = "127.0.0.1";
    const char *test_case = "all", *override = NULL;
    bool use_test_ca = false;
    o.ca_file = PARLEY_TEST_CERTS "/ca.pem";
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (flag_value(argv[i], "--server_host", &v))
            o.host = v;
        else if (flag_value(argv[i], "--server_port", &v))
            o.port = (uint16_t)atoi(v);
        else if (flag_value(argv[i], "--test_case", &v))
            test_case = v;
        else if (flag_value(argv[i], "--use_tls", &v))
            o.use_tls = strcmp(v, "true") == 0;
        else if (flag_value(argv[i], "--use_test_ca", &v))
            use_test_ca = strcmp(v, "true") == 0;
        else if (flag_value(argv[i], "--server_host_override", &v))
            override = v;
        else if (flag_value(argv[i], "--ca_file", &v))
            o.ca_file = v;
        else {
            fprintf(stderr, "usage: interop_client --server_port=N [--server_host=H] [--test_case=a,b|all] "
                            "[--use_tls=true] [--use_test_ca=true] [--server_host_override=NAME] [--ca_file=F]\n");
            return 2;
        }
    }
    if (!use_test_ca)
        o.ca_file = NULL;
    if (override && *override)
        o.server_name = override;
    int failed = 0, ran = 0;
    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (!wanted(test_case, cases[i].name))
            continue;
        ran++;
        char err[256];
        /* a fresh channel per case, as the reference clients do */
        pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
        if (!ch) {
            printf("FAIL c %s: connect: %s\n", cases[i].name, err);
            failed++;
            continue;
        }
        current = &cases[i];
        current_channel = ch;
        if (pl_test_run(cases[i].name, run_current) != 0)
            failed++;
        pl_channel_free(ch);
    }
    if (ran == 0) {
        fprintf(stderr, "interop_client: no test case matches '%s'\n", test_case);
        return 2;
    }
    return failed ? 1 : 0;
}
