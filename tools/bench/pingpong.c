/* pingpong — latency probe for tools/bench-rpc, on libparley's generated
 * client stubs for grpc.testing.TestService.
 *
 * Default mode: one FullDuplexCall; send one request, wait for its one
 * response, repeat: per-round-trip latency with no queueing in it.
 * --unary-clients=C: C threads, each with its own connection, making
 * back-to-back UnaryCalls for --duration seconds (closed-loop throughput).
 * Results go to stdout as name=value pairs so the script can pick them up. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/testing/test.parley.h"
#include "parley/channel.h"

#define MAX_SIZE (4u << 20) /* the servers' payload limit */
#define MAX_CLIENTS 256
#define MAX_SAMPLES (50u << 20) /* per unary thread: bounds memory at 200 MiB */

typedef struct options {
    const char *host;
    uint16_t port;
    long iterations, warmup;
    long per_call; /* round trips per FullDuplexCall; 0: all on one */
    size_t size;
    int unary_clients;
    double duration;
} options_t;

/* One unary thread's connection, results and samples (owned). */
typedef struct unary_worker {
    const options_t *opt;
    pthread_t thread;
    uint32_t *samples;
    size_t count, capacity;
    long failures;
    char error[256];
} unary_worker_t;

static const uint8_t zeros[MAX_SIZE];

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static uint32_t percentile(const uint32_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    return sorted[rank ? rank - 1 : 0];
}

static void print_latency(uint32_t *samples, size_t n)
{
    qsort(samples, n, sizeof(*samples), cmp_u32);
    printf("p50_us=%" PRIu32 " p90_us=%" PRIu32 " p99_us=%" PRIu32 " p999_us=%" PRIu32 " max_us=%" PRIu32 "\n",
           percentile(samples, n, 50), percentile(samples, n, 90), percentile(samples, n, 99),
           percentile(samples, n, 99.9), samples[n - 1]);
}

static pl_channel_t *connect_to(const options_t *opt, char *err, size_t err_len)
{
    pl_channel_opts_t co = {0};
    co.host = opt->host;
    co.port = opt->port;
    return pl_channel_connect(&co, err, err_len);
}

/* Sends one request and waits for its one response of the asked size;
 * 0, or -1 with a reason in err. */
static int round_trip(pl_ccall_t *c, const grpc_testing_StreamingOutputCallRequest *req, char *err, size_t err_len)
{
    if (grpc_testing_TestService_FullDuplexCall_send(c, req) != 0) {
        snprintf(err, err_len, "send failed (the call ended)");
        return -1;
    }
    grpc_testing_StreamingOutputCallResponse resp = {0};
    int rc = grpc_testing_TestService_FullDuplexCall_recv(c, &resp);
    if (rc != 1) {
        snprintf(err, err_len, "%s", rc == 0 ? "stream ended early" : "receive failed");
        return -1;
    }
    if (resp.payload.body.len != (size_t)req->response_parameters[0].size) {
        snprintf(err, err_len, "response has %zu bytes, asked for %" PRId32, resp.payload.body.len,
                 req->response_parameters[0].size);
        return -1;
    }
    return 0;
}

/* One FullDuplexCall: `warm` untimed round trips, then `timed` ones whose
 * latencies go to samples (and their sum to *busy_ns), then a half-close
 * that must end in OK, so a server that mangles the stream cannot pass for
 * a fast one. 0, or -1 after printing why. */
static int pingpong_call(pl_channel_t *ch, const grpc_testing_StreamingOutputCallRequest *req, long warm, long timed,
                         uint32_t *samples, uint64_t *busy_ns)
{
    pl_ccall_t *c = grpc_testing_TestService_FullDuplexCall_start(ch, NULL);
    if (!c) {
        fprintf(stderr, "pingpong: out of memory\n");
        return -1;
    }
    char err[256];
    int ret = 0;
    for (long i = -warm; i < timed; i++) {
        uint64_t t0 = now_ns();
        if (round_trip(c, req, err, sizeof(err)) != 0) {
            fprintf(stderr, "pingpong: round trip %ld of this call: %s\n", i + warm + 1, err);
            ret = -1;
            break;
        }
        uint64_t dt = now_ns() - t0;
        if (i >= 0) {
            samples[i] = (uint32_t)(dt / 1000);
            *busy_ns += dt;
        }
    }
    if (ret == 0) {
        grpc_testing_StreamingOutputCallResponse extra = {0};
        pl_ccall_close_send(c);
        if (grpc_testing_TestService_FullDuplexCall_recv(c, &extra) != 0) {
            fprintf(stderr, "pingpong: unexpected message after half-close\n");
            ret = -1;
        }
    }
    pl_status_t st = {0};
    pl_code_t code = pl_ccall_finish(c, &st);
    if (code != PL_CODE_OK) {
        fprintf(stderr, "pingpong: call ended with %s: %s\n", pl_code_name(code), st.message ? st.message : "");
        ret = -1;
    }
    pl_status_reset(&st);
    pl_ccall_free(c);
    return ret;
}

static int run_pingpong(const options_t *opt)
{
    char err[256];
    pl_channel_t *ch = connect_to(opt, err, sizeof(err));
    if (!ch) {
        fprintf(stderr, "pingpong: cannot connect to %s:%u: %s\n", opt->host, opt->port, err);
        return 1;
    }
    uint32_t *samples = malloc((size_t)opt->iterations * sizeof(*samples));
    if (!samples) {
        fprintf(stderr, "pingpong: out of memory\n");
        pl_channel_free(ch);
        return 1;
    }
    grpc_testing_StreamingOutputCallRequest req = {0};
    req.response_parameters_count = 1;
    req.response_parameters[0].size = (int32_t)opt->size;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, opt->size);

    /* A call's first round trip carries the stream's HEADERS both ways, so
     * it is never timed: every sample is a pure message round trip. With
     * --per-call the warm-up, then the timed round trips, are spread over
     * calls of at most per_call round trips each. */
    long warm_left = opt->warmup, done = 0, calls = 0;
    uint64_t busy_ns = 0;
    int ret = 0;
    while (ret == 0 && done < opt->iterations) {
        long budget = opt->per_call ? opt->per_call : LONG_MAX;
        long warm = warm_left < budget ? warm_left : budget;
        if (warm < 1)
            warm = 1;
        warm_left = warm_left > warm ? warm_left - warm : 0;
        long timed = opt->iterations - done;
        if (timed > budget - warm)
            timed = budget - warm;
        if (pingpong_call(ch, &req, warm, timed, samples + done, &busy_ns) != 0)
            ret = 1;
        done += timed;
        calls++;
    }
    if (ret == 0) {
        printf("pingpong: %ld round trips of %zu bytes on %ld FullDuplexCall(s) to %s:%u\n", opt->iterations, opt->size,
               calls, opt->host, opt->port);
        printf("rt_per_s=%.0f ", (double)opt->iterations / ((double)busy_ns / 1e9));
        print_latency(samples, (size_t)opt->iterations);
    }
    pl_channel_free(ch);
    free(samples);
    return ret;
}

static int record(unary_worker_t *w, uint32_t us)
{
    if (w->count == w->capacity) {
        size_t cap = w->capacity ? w->capacity * 2 : 65536;
        if (cap > MAX_SAMPLES)
            return -1;
        uint32_t *s = realloc(w->samples, cap * sizeof(*s));
        if (!s)
            return -1;
        w->samples = s;
        w->capacity = cap;
    }
    w->samples[w->count++] = us;
    return 0;
}

static void *unary_worker_main(void *arg)
{
    unary_worker_t *w = arg;
    const options_t *opt = w->opt;
    pl_channel_t *ch = connect_to(opt, w->error, sizeof(w->error));
    if (!ch)
        return NULL;
    grpc_testing_SimpleRequest req = {0};
    req.response_size = (int32_t)opt->size;
    req.has_payload = true;
    req.payload.body = pl_bytes_of(zeros, opt->size);
    uint64_t end = now_ns() + (uint64_t)(opt->duration * 1e9);
    for (;;) {
        uint64_t t0 = now_ns();
        if (t0 >= end)
            break;
        grpc_testing_SimpleResponse resp = {0};
        pl_status_t st = {0};
        pl_code_t code = grpc_testing_TestService_UnaryCall(ch, NULL, &req, &resp, &st);
        uint64_t t1 = now_ns();
        if (code != PL_CODE_OK || resp.payload.body.len != opt->size) {
            if (!w->failures++)
                snprintf(w->error, sizeof(w->error), "%s: %s", pl_code_name(code),
                         st.message ? st.message : "wrong response size");
            pl_status_reset(&st);
            if (!pl_channel_is_alive(ch))
                break;
            continue;
        }
        if (record(w, (uint32_t)((t1 - t0) / 1000)) != 0) {
            snprintf(w->error, sizeof(w->error), "cannot store more latency samples");
            break;
        }
    }
    pl_channel_free(ch);
    return NULL;
}

static int run_unary(const options_t *opt)
{
    unary_worker_t *workers = calloc((size_t)opt->unary_clients, sizeof(*workers));
    if (!workers) {
        fprintf(stderr, "pingpong: out of memory\n");
        return 1;
    }
    int started = 0, ret = 0;
    uint64_t t0 = now_ns();
    for (; started < opt->unary_clients; started++) {
        workers[started].opt = opt;
        int rc = pthread_create(&workers[started].thread, NULL, unary_worker_main, &workers[started]);
        if (rc != 0) {
            fprintf(stderr, "pingpong: cannot start a client thread: %s\n", strerror(rc));
            ret = 1;
            break;
        }
    }
    size_t total = 0;
    long failures = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(workers[i].thread, NULL);
        total += workers[i].count;
        failures += workers[i].failures;
        if (workers[i].error[0]) {
            fprintf(stderr, "pingpong: client %d: %s\n", i, workers[i].error);
            ret = 1;
        }
    }
    double elapsed = (double)(now_ns() - t0) / 1e9;
    uint32_t *all = total ? malloc(total * sizeof(*all)) : NULL;
    if (total && !all) {
        fprintf(stderr, "pingpong: out of memory\n");
        ret = 1;
    } else if (total) {
        size_t off = 0;
        for (int i = 0; i < started; i++) {
            memcpy(all + off, workers[i].samples, workers[i].count * sizeof(*all));
            off += workers[i].count;
        }
        printf("pingpong: %zu UnaryCalls of %zu bytes from %d clients in %.2f s to %s:%u\n", total, opt->size, started,
               elapsed, opt->host, opt->port);
        printf("qps=%.0f failures=%ld ", (double)total / elapsed, failures);
        print_latency(all, total);
    } else {
        ret = 1;
    }
    for (int i = 0; i < opt->unary_clients; i++)
        free(workers[i].samples);
    free(workers);
    free(all);
    return ret;
}

static bool flag_value(const char *arg, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return false;
    *value = arg + n + 1;
    return true;
}

/* Parses a whole decimal number in [min, max]; false otherwise. */
static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: pingpong --port=N [--host=127.0.0.1] [--size=16] [--iterations=10000] [--warmup=1000]\n"
               "                [--per-call=N (max round trips per FullDuplexCall, >= 2; 0: one call)]\n"
               "       pingpong --port=N --unary-clients=C [--duration=5] [--size=16]\n"
               "Ping-pong latency over one FullDuplexCall, or closed-loop UnaryCall throughput with C\n"
               "connections, against a grpc.testing.TestService server (h2c).\n");
}

int main(int argc, char **argv)
{
    options_t opt = {.host = "127.0.0.1", .iterations = 10000, .warmup = 1000, .size = 16, .duration = 5};
    long port = 0, v;
    for (int i = 1; i < argc; i++) {
        const char *s;
        bool ok = true;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (flag_value(argv[i], "--host", &s))
            opt.host = s;
        else if (flag_value(argv[i], "--port", &s))
            ok = parse_long(s, 1, 65535, &port);
        else if (flag_value(argv[i], "--iterations", &s))
            ok = parse_long(s, 1, 100000000, &opt.iterations);
        else if (flag_value(argv[i], "--per-call", &s))
            ok = parse_long(s, 0, 100000000, &opt.per_call) && opt.per_call != 1;
        else if (flag_value(argv[i], "--warmup", &s))
            ok = parse_long(s, 0, 100000000, &opt.warmup);
        else if (flag_value(argv[i], "--size", &s)) {
            ok = parse_long(s, 0, MAX_SIZE, &v);
            opt.size = (size_t)v;
        } else if (flag_value(argv[i], "--unary-clients", &s)) {
            ok = parse_long(s, 1, MAX_CLIENTS, &v);
            opt.unary_clients = (int)v;
        } else if (flag_value(argv[i], "--duration", &s)) {
            ok = parse_long(s, 1, 3600, &v);
            opt.duration = (double)v;
        } else
            ok = false;
        if (!ok) {
            fprintf(stderr, "pingpong: bad argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!port) {
        usage(stderr);
        return 2;
    }
    opt.port = (uint16_t)port;
    signal(SIGPIPE, SIG_IGN);
    return opt.unary_clients ? run_unary(&opt) : run_pingpong(&opt);
}
