/* rpc_behaviour — server behaviours beyond the interop cases, checked
 * against a running interop_server (started by tests/harness/with_server.py):
 *
 *   size_limits   oversize request message and metadata → RESOURCE_EXHAUSTED,
 *                 oversize response → RESOURCE_EXHAUSTED at the client
 *   slow_reader   a client that stops reading cannot grow server memory
 *   deadline      the server ends a call at its grpc-timeout
 *   drain         SIGTERM: in-flight calls finish, health goes NOT_SERVING,
 *                 new connections are refused
 *   handshake     a silent connection is closed (slowloris)
 *   keepalive     a peer that stops answering PINGs is closed
 *   idle          a connection without calls gets GOAWAY
 *
 * usage: rpc_behaviour --port=N --pid=N --case=NAME */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cases.h"
#include "check.h"
#include "grpc/health/v1/health.parley.h"
#include "grpc/testing/test.parley.h"
#include "parley/channel.h"
#include "runtime/clock.h"

static uint16_t port;
static pid_t server_pid;
static uint8_t zeros[5u << 20];

static pl_channel_t *connect_channel(uint32_t max_recv)
{
    pl_channel_opts_t o = {0};
    o.host = "127.0.0.1";
    o.port = port;
    o.max_recv_message = max_recv;
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    if (!ch)
        printf("connect: %s\n", err);
    return ch;
}

static pl_code_t empty_call(pl_channel_t *ch)
{
    grpc_testing_Empty req = {0}, resp = {0};
    pl_call_opts_t o = {5000, NULL, false};
    return grpc_testing_TestService_EmptyCall(ch, &o, &req, &resp, NULL);
}

static int size_limits(void)
{
    pl_channel_t *ch = connect_channel(64u << 10);
    if (!ch)
        FAIL("no channel");
    pl_call_opts_t o = {10000, NULL, false};
    pl_status_t st = {0};

    grpc_testing_SimpleRequest req = {0};
    grpc_testing_SimpleResponse resp = {0};
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, 5u << 20); /* over the 4 MiB default */
    pl_code_t code = grpc_testing_TestService_UnaryCall(ch, &o, &req, &resp, &st);
    printf("oversize request: %s: %s\n", pl_code_name(code), st.message ? st.message : "");
    if (code != PL_CODE_RESOURCE_EXHAUSTED || !st.message || !strstr(st.message, "larger than max"))
        FAIL("oversize request: want RESOURCE_EXHAUSTED 'larger than max'");
    if (empty_call(ch) != PL_CODE_OK)
        FAIL("channel unusable after an oversize request");

    static char big[9000];
    memset(big, 'a', sizeof(big));
    pl_metadata_t md = PL_METADATA_INIT(64u << 10);
    pl_metadata_add(&md, "x-big", big, sizeof(big));
    pl_call_opts_t mo = {10000, &md, false};
    grpc_testing_Empty e = {0}, eresp = {0};
    code = grpc_testing_TestService_EmptyCall(ch, &mo, &e, &eresp, &st);
    printf("oversize metadata: %s: %s\n", pl_code_name(code), st.message ? st.message : "");
    pl_metadata_dispose(&md);
    if (code != PL_CODE_RESOURCE_EXHAUSTED)
        FAIL("oversize metadata: want RESOURCE_EXHAUSTED");
    if (empty_call(ch) != PL_CODE_OK)
        FAIL("channel unusable after oversize metadata");

    memset(&req, 0, sizeof(req));
    req.response_size = 100000; /* over this client's 64 KiB limit */
    code = grpc_testing_TestService_UnaryCall(ch, &o, &req, &resp, &st);
    printf("oversize response: %s: %s\n", pl_code_name(code), st.message ? st.message : "");
    if (code != PL_CODE_RESOURCE_EXHAUSTED)
        FAIL("oversize response: want RESOURCE_EXHAUSTED");
    if (empty_call(ch) != PL_CODE_OK)
        FAIL("channel unusable after an oversize response");
    pl_status_reset(&st);
    pl_channel_free(ch);
    return 0;
}

static int slow_reader(void)
{
    pl_channel_t *ch = connect_channel(0);
    if (!ch)
        FAIL("no channel");
    long before = pl_test_rss_kib(server_pid);
    /* 32 x 3 MiB = 96 MiB of responses that we will not read */
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 32;
    for (int i = 0; i < 32; i++)
        req.response_parameters[i].size = 3 << 20;
    pl_call_opts_t o = {30000, NULL, false};
    pl_ccall_t *c = grpc_testing_TestService_StreamingOutputCall_start(ch, &o, &req);
    int64_t until = pl_now_msec() + 1500;
    while (pl_now_msec() < until)
        pl_channel_pump(ch, 50); /* keep the connection alive, read nothing into the app */
    long during = pl_test_rss_kib(server_pid);
    printf("server RSS before %ld KiB, while the client does not read %ld KiB (+%ld KiB)\n", before, during,
           during - before);
    /* the client has taken at most its window; now read it all to prove the
     * stream was paused, not broken */
    int got = 0;
    grpc_testing_StreamingOutputCallResponse resp = {0};
    while (grpc_testing_TestService_StreamingOutputCall_recv(c, &resp) == 1) {
        if (resp.payload.body.len != 3u << 20)
            FAIL("response %d has %zu bytes", got, resp.payload.body.len);
        got++;
        memset(&resp, 0, sizeof(resp));
    }
    pl_code_t code = pl_ccall_finish(c, NULL);
    pl_ccall_free(c);
    pl_channel_free(ch);
    if (before < 0 || during < 0)
        FAIL("cannot read server RSS");
    if (during - before > 32 * 1024)
        FAIL("server grew by %ld KiB for a client that does not read (limit 32 MiB of 96 MiB sent)", during - before);
    if (code != PL_CODE_OK || got != 32)
        FAIL("after reading: %s, %d of 32 responses", pl_code_name(code), got);
    return 0;
}

static int deadline(void)
{
    pl_channel_t *ch = connect_channel(0);
    if (!ch)
        FAIL("no channel");
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 1;
    req.response_parameters[0].size = 10;
    req.response_parameters[0].interval_us = 5 * 1000 * 1000;
    pl_call_opts_t o = {200, NULL, false};
    int64_t start = pl_now_msec();
    pl_ccall_t *c = grpc_testing_TestService_StreamingOutputCall_start(ch, &o, &req);
    grpc_testing_StreamingOutputCallResponse resp = {0};
    int got = grpc_testing_TestService_StreamingOutputCall_recv(c, &resp);
    pl_code_t code = pl_ccall_finish(c, NULL);
    int64_t took = pl_now_msec() - start;
    pl_ccall_free(c);
    printf("deadline 200 ms: %s after %lld ms\n", pl_code_name(code), (long long)took);
    if (got == 1 || code != PL_CODE_DEADLINE_EXCEEDED || took > 2000)
        FAIL("want DEADLINE_EXCEEDED in about 200 ms");
    if (empty_call(ch) != PL_CODE_OK)
        FAIL("channel unusable after a deadline");
    pl_channel_free(ch);
    return 0;
}

static int drain(void)
{
    pl_channel_t *ch = connect_channel(0);
    pl_channel_t *watch_ch = connect_channel(0);
    if (!ch || !watch_ch)
        FAIL("no channel");
    grpc_health_v1_HealthCheckRequest hreq = {0};
    pl_ccall_t *watch = grpc_health_v1_Health_Watch_start(watch_ch, NULL, &hreq);
    grpc_health_v1_HealthCheckResponse hresp = {0};
    if (grpc_health_v1_Health_Watch_recv(watch, &hresp) != 1 ||
        hresp.status != grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING)
        FAIL("health watch did not start SERVING");

    /* three responses 400 ms apart: the call spans the drain */
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 3;
    for (int i = 0; i < 3; i++) {
        req.response_parameters[i].size = 100;
        req.response_parameters[i].interval_us = 400 * 1000;
    }
    pl_call_opts_t o = {10000, NULL, false};
    pl_ccall_t *c = grpc_testing_TestService_StreamingOutputCall_start(ch, &o, &req);
    pl_channel_pump(ch, 100);
    if (kill(server_pid, SIGTERM) != 0)
        FAIL("kill: %s", strerror(errno));

    memset(&hresp, 0, sizeof(hresp));
    int w = grpc_health_v1_Health_Watch_recv(watch, &hresp);
    printf("health after SIGTERM: %s\n", w == 1 ? (hresp.status == 2 ? "NOT_SERVING" : "other") : "no message");
    if (w != 1 || hresp.status != grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING)
        FAIL("health watch did not report NOT_SERVING on drain");
    pl_ccall_free(watch);
    pl_channel_free(watch_ch);

    int got = 0;
    grpc_testing_StreamingOutputCallResponse resp = {0};
    while (grpc_testing_TestService_StreamingOutputCall_recv(c, &resp) == 1)
        got++;
    pl_status_t st = {0};
    pl_code_t code = pl_ccall_finish(c, &st);
    printf("in-flight call during drain: %s, %d of 3 responses\n", pl_code_name(code), got);
    pl_ccall_free(c);
    if (code != PL_CODE_OK || got != 3)
        FAIL("in-flight call did not complete: %s %s", pl_code_name(code), st.message ? st.message : "");
    pl_status_reset(&st);

    /* after the GOAWAY no new call starts on the old connection... */
    pl_code_t late = empty_call(ch);
    printf("new call on the draining connection: %s\n", pl_code_name(late));
    if (late != PL_CODE_UNAVAILABLE)
        FAIL("new call after GOAWAY: %s, want UNAVAILABLE", pl_code_name(late));
    pl_channel_free(ch);
    /* ...and no new connection is accepted */
    pl_channel_t *late_ch = connect_channel(0);
    if (late_ch && empty_call(late_ch) == PL_CODE_OK)
        FAIL("a new connection was served while draining");
    pl_channel_free(late_ch);
    return 0;
}

/* ---- raw connections, for timeouts ---- */

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        return -1;
    return fd;
}

/* Reads until EOF or timeout; returns ms until EOF (-1 on timeout) and
 * counts PING frames seen (frames parsed from the byte stream). */
static long wait_for_close(int fd, int timeout_ms, int *pings)
{
    uint8_t buf[65536];
    size_t have = 0;
    int64_t start = pl_now_msec();
    *pings = 0;
    for (;;) {
        int left = timeout_ms - (int)(pl_now_msec() - start);
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, left) <= 0)
            continue;
        ssize_t n = read(fd, buf + have, sizeof(buf) - have);
        if (n <= 0)
            return (long)(pl_now_msec() - start);
        have += (size_t)n;
        while (have >= 9) { /* HTTP/2 frame header: len(3) type(1) flags(1) id(4) */
            size_t len = (size_t)buf[0] << 16 | (size_t)buf[1] << 8 | buf[2];
            if (have < 9 + len)
                break;
            if (buf[3] == 6 && !(buf[4] & 1))
                (*pings)++;
            memmove(buf, buf + 9 + len, have - 9 - len);
            have -= 9 + len;
        }
    }
}

static int handshake(void)
{
    int fd = raw_connect();
    if (fd < 0)
        FAIL("connect");
    int pings;
    long ms = wait_for_close(fd, 5000, &pings);
    close(fd);
    printf("silent connection closed after %ld ms\n", ms);
    if (ms < 0)
        FAIL("a connection that never sent the HTTP/2 preface was not closed");
    return 0;
}

static int keepalive(void)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    static const uint8_t settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    int fd = raw_connect();
    if (fd < 0 || write(fd, preface, sizeof(preface) - 1) < 0 || write(fd, settings, 9) < 0)
        FAIL("connect");
    int pings;
    long ms = wait_for_close(fd, 5000, &pings); /* we never answer */
    close(fd);
    printf("unresponsive peer: %d ping(s), closed after %ld ms\n", pings, ms);
    if (pings < 1 || ms < 0)
        FAIL("want a keepalive PING and then a close");
    return 0;
}

static int idle(void)
{
    pl_channel_t *ch = connect_channel(0);
    if (!ch || empty_call(ch) != PL_CODE_OK)
        FAIL("no channel");
    int64_t start = pl_now_msec();
    while (pl_channel_is_alive(ch) && pl_now_msec() - start < 5000)
        pl_channel_pump(ch, 100);
    long ms = (long)(pl_now_msec() - start);
    printf("idle connection ended after %ld ms: %s\n", ms, pl_channel_error(ch));
    bool alive = pl_channel_is_alive(ch);
    pl_channel_free(ch);
    if (alive)
        FAIL("an idle connection was not closed");
    return 0;
}

int main(int argc, char **argv)
{
    static const pl_test_case_t cases[] = {
        {"size_limits", size_limits}, {"slow_reader", slow_reader}, {"deadline", deadline}, {"drain", drain},
        {"handshake", handshake},     {"keepalive", keepalive},     {"idle", idle}};
    const char *which = NULL;
    int rc = pl_test_cases_parse(argc, argv, "rpc_behaviour", NULL, &port, &server_pid, &which);
    return rc ? rc : pl_test_cases_run("rpc_behaviour", cases, sizeof(cases) / sizeof(cases[0]), which);
}
