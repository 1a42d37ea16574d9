/* attack_kit.c — what every attack test shares (attack_kit.h). */
#include "attack_kit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpc/testing/test.parley.h"
#include "runtime/clock.h"
#include "runtime/codec.h"

uint16_t port;
pid_t server_pid;

/* ---- the measurement around every attack ---- */

static long rss_before;

void attack_begin(void)
{
    rss_before = pl_test_rss_kib(server_pid);
    pl_test_rss_peak_start(server_pid);
    h2w_good_start(port);
    usleep(100 * 1000); /* the good client is connected and calling */
}

/* Stops the measurement; 0 if the server held up (RSS growth within
 * ceiling_mib, the good client served without a failure). */
int attack_end(long ceiling_mib)
{
    h2w_good_stats_t good = h2w_good_stop();
    long peak = pl_test_rss_peak_stop();
    usleep(300 * 1000);
    long after = pl_test_rss_kib(server_pid);
    printf("server RSS: before %ld KiB, peak %ld KiB (+%ld KiB), after %ld KiB; ceiling +%ld MiB\n", rss_before, peak,
           peak - rss_before, after, ceiling_mib);
    printf("well-behaved client during the attack: %lu calls OK, %lu failed, slowest %ld ms%s%s\n", good.ok,
           good.failed, good.max_latency_ms, good.failed ? "; last error: " : "", good.failed ? good.last_error : "");
    if (peak - rss_before > ceiling_mib * 1024)
        FAIL("server RSS grew by %ld KiB, over the %ld MiB ceiling", peak - rss_before, ceiling_mib);
    if (good.ok == 0 || good.failed)
        FAIL("the well-behaved client was not served throughout the attack");
    return 0;
}

/* ---- helpers ---- */

const char *attack_tls_ca;

int attacker_connect(h2w_conn_t *c, const nghttp2_settings_entry *iv, size_t n)
{
    int fd = h2w_tcp_connect(port, ATTACKER);
    if (fd < 0)
        return -1;
    SSL *ssl = NULL;
    if (attack_tls_ca && !(ssl = h2w_tls_handshake(fd, attack_tls_ca))) {
        close(fd);
        return -1;
    }
    h2w_conn_init(c, fd, ssl);
    return h2w_send_preface(c, iv, n);
}

void ack_settings(h2w_conn_t *c)
{
    h2w_buf_t b = {0};
    h2w_frame(&b, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, NULL, 0);
    h2w_write(c, b.data, b.len, 1000);
    h2w_buf_free(&b);
}

size_t encode_request(const pb_msgdesc_t *desc, const void *msg, h2w_buf_t *out)
{
    long size = pl_pb_encoded_size(desc, msg);
    uint8_t *tmp = malloc(size > 0 ? (size_t)size : 1);
    if (size < 0 || !tmp || pl_pb_encode(desc, msg, tmp, (size_t)size) != 0) {
        fprintf(stderr, "cannot encode the request\n");
        exit(2);
    }
    h2w_grpc_message(out, tmp, (size_t)size);
    free(tmp);
    return (size_t)size;
}

/* Opens streams StreamingOutputCall calls, each asking for count responses
 * of size bytes. */
void open_big_downloads(h2w_conn_t *c, int streams, int count, int32_t size)
{
    grpc_testing_StreamingOutputCallRequest req = {0};
    size_t cap = sizeof(req.response_parameters) / sizeof(req.response_parameters[0]);
    if ((size_t)count > cap)
        count = (int)cap;
    req.response_parameters_count = (pb_size_t)count;
    for (int i = 0; i < count; i++)
        req.response_parameters[i].size = size;
    h2w_buf_t msg = {0}, block = {0}, out = {0};
    encode_request(grpc_testing_StreamingOutputCallRequest_fields, &req, &msg);
    h2w_grpc_request_block(&block, "/grpc.testing.TestService/StreamingOutputCall");
    for (int i = 0; i < streams; i++) {
        uint32_t sid = 1 + 2 * (uint32_t)i;
        h2w_frame(&out, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, sid, block.data, block.len);
        h2w_frame(&out, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, sid, msg.data, msg.len);
    }
    h2w_write(c, out.data, out.len, 2000);
    h2w_buf_free(&msg);
    h2w_buf_free(&block);
    h2w_buf_free(&out);
}

static bool (*extra_arg)(const char *arg);

static bool attack_arg(const char *arg)
{
    if (strncmp(arg, "--tls=", 6) == 0) { /* the attacker and the good client over TLS */
        h2w_good_use_tls(attack_tls_ca = arg + 6);
        return true;
    }
    return extra_arg && extra_arg(arg);
}

int attack_main(int argc, char **argv, const char *prog, const pl_test_case_t *cases, size_t n,
                bool (*extra)(const char *arg))
{
    const char *which = NULL;
    extra_arg = extra;
    int rc = pl_test_cases_parse(argc, argv, prog, attack_arg, &port, &server_pid, &which);
    return rc ? rc : pl_test_cases_run(prog, cases, n, which);
}
