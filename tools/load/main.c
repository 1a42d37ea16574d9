/* parley-load — a streaming load tester for Parley: registers devices
 * through the normal API (or reuses a saved set), opens one stream per
 * device at a set rate, drives 1:1 and group sends at a target rate or as
 * fast as possible, and reports throughput, send→deliver latency
 * percentiles, errors by status, lost and duplicated messages, and the
 * server's memory per connected device. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "engine.h"
#include "provision.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: parley-load [options]\n\n"
                 "  --addr HOST:PORT     server (repeat to spread devices over several addresses,\n"
                 "                       e.g. 127.0.0.1:7443 127.0.0.2:7443 ... past one address's ports)\n"
                 "  --devices N          devices (one account each), in pairs with a direct chat (default 100)\n"
                 "  --group-size G       also groups of G devices (default 0: none)\n"
                 "  --group-ratio R      share of sends that go to groups, 0..1 (default 0)\n"
                 "  --devices-file FILE  reuse this device set, or save the one registered here\n"
                 "  --sms-file FILE      where the server's file SMS provider writes codes (default .parley/sms.log)\n"
                 "  --rate R             messages per second over all devices (default 0: as fast as possible)\n"
                 "  --window N           sends in flight per device (default 8)\n"
                 "  --payload BYTES      payload size, at least 16 (default 64)\n"
                 "  --ramp R             new connections per second (default 2000)\n"
                 "  --warmup S           seconds of load before measuring (default 2)\n"
                 "  --duration S         measured seconds (default 10)\n"
                 "  --idle               hold the streams open, send nothing: memory per idle stream\n"
                 "  --server-pid PID     read the server's RSS (memory per stream)\n"
                 "  --json FILE          write the result as JSON too ('-': stdout)\n"
                 "  --tls, --cacert FILE, --servername NAME\n"
                 "  --quiet              no progress line\n"
                 "  --help\n\n"
                 "The server must allow the load: start it with generous rate limits, e.g.\n"
                 "  --rate.sends_per_second=1000000 --rate.sends_burst=1000000\n"
                 "  --rate.codes_per_address_per_hour=1000000 --rate.codes_per_phone_per_hour=1000000\n"
                 "Exit status: 0, or 1 if anything was lost, refused or failed.\n");
}

static int parse_addr(const char *s, pl_load_target_t *t)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    char *host = strndup(s, (size_t)(colon - s));
    long port = strtol(colon + 1, NULL, 10);
    if (!host || port <= 0 || port > 65535) {
        free(host);
        return -1;
    }
    t->host = host;
    t->port = (uint16_t)port;
    return 0;
}

static const char *code_key(int code)
{
    static const char *const names[] = {
        "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
        "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
        "DATA_LOSS", "UNAUTHENTICATED"};
    return names[code];
}

static void report_json(FILE *f, const pl_load_opts_t *o, const pl_load_result_t *r)
{
    double rate = r->seconds > 0 ? (double)r->accepted / r->seconds : 0;
    double drate = r->seconds > 0 ? (double)r->window_deliveries / r->seconds : 0;
    fprintf(f, "{\"devices\":%d,\"connected\":%d,\"ready\":%d,\"connect_failures\":%d,\"streams_lost\":%d,", r->devices,
            r->connected, r->ready, r->connect_failures, r->streams_lost);
    fprintf(f, "\"mode\":\"%s\",\"rate_target\":%.0f,\"group_size\":%d,\"group_ratio\":%.2f,\"seconds\":%.2f,",
            o->idle ? "idle" : "send", o->rate, o->group_size, o->group_ratio, r->seconds);
    fprintf(f, "\"sent\":%llu,\"accepted\":%llu,\"accepted_per_s\":%.0f,\"delivered\":%llu,\"delivered_per_s\":%.0f,",
            (unsigned long long)r->sent, (unsigned long long)r->accepted, rate, (unsigned long long)r->delivered,
            drate);
    fprintf(f, "\"expected\":%llu,\"lost\":%llu,\"duplicates\":%llu,\"duplicate_acks\":%llu,",
            (unsigned long long)r->expected, (unsigned long long)r->lost, (unsigned long long)r->duplicates,
            (unsigned long long)r->duplicate_acks);
    const pl_hist_t *hs[2] = {&r->deliver, &r->ack};
    const char *names[2] = {"deliver_latency_us", "ack_latency_us"};
    for (int k = 0; k < 2; k++)
        fprintf(f, "\"%s\":{\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"p99.9\":%lld,\"max\":%lld,\"mean\":%.0f},",
                names[k], (long long)pl_hist_percentile(hs[k], 50), (long long)pl_hist_percentile(hs[k], 90),
                (long long)pl_hist_percentile(hs[k], 99), (long long)pl_hist_percentile(hs[k], 99.9),
                (long long)hs[k]->max, pl_hist_mean(hs[k]));
    fprintf(f, "\"errors\":{");
    bool first = true;
    for (int c = 1; c <= PL_CODE_MAX; c++)
        if (r->errors[c]) {
            fprintf(f, "%s\"%s\":%llu", first ? "" : ",", code_key(c), (unsigned long long)r->errors[c]);
            first = false;
        }
    long per_stream = r->ready && r->rss_after_kb ? (r->rss_after_kb - r->rss_before_kb) * 1024 / r->ready : 0;
    fprintf(f, "},\"server_rss_before_kb\":%ld,\"server_rss_after_kb\":%ld,\"server_bytes_per_stream\":%ld}\n",
            r->rss_before_kb, r->rss_after_kb, per_stream);
}

static void report_text(const pl_load_opts_t *o, const pl_load_result_t *r)
{
    printf("devices %d: %d connected, %d ready, %d connect failures, %d streams lost\n", r->devices, r->connected,
           r->ready, r->connect_failures, r->streams_lost);
    if (!o->idle) {
        printf("messages: %llu sent, %llu accepted (%.0f/s), %llu deliveries during them (%.0f/s) in %.1f s\n",
               (unsigned long long)r->sent, (unsigned long long)r->accepted,
               r->seconds > 0 ? (double)r->accepted / r->seconds : 0, (unsigned long long)r->window_deliveries,
               r->seconds > 0 ? (double)r->window_deliveries / r->seconds : 0, r->seconds);
        printf("no-loss check: %llu expected deliveries, %llu lost, %llu duplicates suppressed, %llu sends "
               "answered as duplicates\n",
               (unsigned long long)r->expected, (unsigned long long)r->lost, (unsigned long long)r->duplicates,
               (unsigned long long)r->duplicate_acks);
        printf("send->deliver latency (ms): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
               (double)pl_hist_percentile(&r->deliver, 50) / 1e3, (double)pl_hist_percentile(&r->deliver, 90) / 1e3,
               (double)pl_hist_percentile(&r->deliver, 99) / 1e3, (double)pl_hist_percentile(&r->deliver, 99.9) / 1e3,
               (double)r->deliver.max / 1e3);
        printf("send->accepted latency (ms): p50 %.2f  p99 %.2f\n", (double)pl_hist_percentile(&r->ack, 50) / 1e3,
               (double)pl_hist_percentile(&r->ack, 99) / 1e3);
    }
    for (int c = 1; c <= PL_CODE_MAX; c++)
        if (r->errors[c])
            printf("errors: %s %llu\n", code_key(c), (unsigned long long)r->errors[c]);
    if (r->rss_after_kb)
        printf("server RSS: %ld MiB before, %ld MiB with the streams: %ld bytes per stream\n", r->rss_before_kb / 1024,
               r->rss_after_kb / 1024, r->ready ? (r->rss_after_kb - r->rss_before_kb) * 1024 / r->ready : 0);
}

int main(int argc, char **argv)
{
    pl_load_target_t targets[64];
    pl_load_opts_t o = {
        .targets = targets, .window = 8, .payload_bytes = 64, .ramp = 2000, .warmup_s = 2, .duration_s = 10};
    int devices = 100;
    const char *devices_file = NULL, *sms_file = ".parley/sms.log", *json = NULL, *cacert = NULL, *servername = NULL;
    bool tls = false;
    static const struct option opts[] = {
        {"addr", required_argument, NULL, 'a'},
        {"devices", required_argument, NULL, 'n'},
        {"group-size", required_argument, NULL, 'g'},
        {"group-ratio", required_argument, NULL, 'G'},
        {"devices-file", required_argument, NULL, 'f'},
        {"sms-file", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},
        {"window", required_argument, NULL, 'w'},
        {"payload", required_argument, NULL, 'p'},
        {"ramp", required_argument, NULL, 'R'},
        {"warmup", required_argument, NULL, 'W'},
        {"duration", required_argument, NULL, 'd'},
        {"idle", no_argument, NULL, 'i'},
        {"server-pid", required_argument, NULL, 'P'},
        {"json", required_argument, NULL, 'j'},
        {"tls", no_argument, NULL, 't'},
        {"cacert", required_argument, NULL, 'c'},
        {"servername", required_argument, NULL, 'S'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            if (o.ntargets == 64 || parse_addr(optarg, &targets[o.ntargets]) != 0) {
                fprintf(stderr, "parley-load: bad --addr %s (HOST:PORT)\n", optarg);
                return 2;
            }
            o.ntargets++;
            break;
        case 'n': devices = atoi(optarg); break;
        case 'g': o.group_size = atoi(optarg); break;
        case 'G': o.group_ratio = atof(optarg); break;
        case 'f': devices_file = optarg; break;
        case 's': sms_file = optarg; break;
        case 'r': o.rate = atof(optarg); break;
        case 'w': o.window = atoi(optarg); break;
        case 'p': o.payload_bytes = atoi(optarg); break;
        case 'R': o.ramp = atof(optarg); break;
        case 'W': o.warmup_s = atoi(optarg); break;
        case 'd': o.duration_s = atoi(optarg); break;
        case 'i': o.idle = true; break;
        case 'P': o.server_pid = atoi(optarg); break;
        case 'j': json = optarg; break;
        case 't': tls = true; break;
        case 'c': cacert = optarg; break;
        case 'S': servername = optarg; break;
        case 'q': o.quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!o.ntargets)
        parse_addr("127.0.0.1:7443", &targets[o.ntargets++]);
    if (devices < 2 || o.window < 1 || o.window > 512 || o.group_ratio < 0 || o.group_ratio > 1 ||
        (o.group_ratio > 0 && o.group_size < 2) || o.duration_s < 1 || o.ramp <= 0) {
        fprintf(stderr, "parley-load: inconsistent options (see --help)\n");
        return 2;
    }
    for (int i = 0; i < o.ntargets; i++) {
        targets[i].use_tls = tls;
        targets[i].ca_file = cacert;
        targets[i].server_name = servername;
    }
    /* one descriptor per device */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    pl_load_device_t *devs = NULL;
    int have = 0;
    char err[512];
    if (devices_file && pl_load_read(devices_file, &devs, &have) == 0 && have >= devices) {
        if (!o.quiet)
            fprintf(stderr, "parley-load: reusing %d devices from %s\n", devices, devices_file);
    } else {
        free(devs);
        devs = calloc((size_t)devices, sizeof(*devs));
        if (!devs)
            return 1;
        if (!o.quiet)
            fprintf(stderr, "parley-load: registering %d devices\n", devices);
        if (pl_load_provision(&targets[0], sms_file, devs, devices, o.group_size, o.quiet, err, sizeof(err)) != 0) {
            fprintf(stderr, "parley-load: %s\n", err);
            return 1;
        }
        if (devices_file && pl_load_save(devices_file, devs, devices) != 0)
            fprintf(stderr, "parley-load: cannot save %s\n", devices_file);
    }
    pl_load_result_t *r = calloc(1, sizeof(*r));
    if (!r || pl_load_run(&o, devs, devices, r, err, sizeof(err)) != 0) {
        fprintf(stderr, "parley-load: %s\n", r ? err : "out of memory");
        return 1;
    }
    report_text(&o, r);
    if (json) {
        FILE *f = strcmp(json, "-") == 0 ? stdout : fopen(json, "w");
        if (f) {
            report_json(f, &o, r);
            if (f != stdout)
                fclose(f);
        }
    }
    uint64_t errors = 0;
    for (int c = 1; c <= PL_CODE_MAX; c++)
        errors += r->errors[c];
    int rc = r->lost || errors || r->duplicate_acks || r->connect_failures || r->streams_lost || r->ready < r->devices
                 ? 1
                 : 0;
    free(r);
    free(devs);
    for (int i = 0; i < o.ntargets; i++)
        free((char *)targets[i].host);
    return rc;
}
