/* parleyd — the Parley server: gRPC over HTTP/2 (h2c or TLS), health and
 * reflection, and the messaging services. SIGTERM/SIGINT drain gracefully. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley_idl_descriptors.h"
#include "rpc/server.h"
#include "services/health.h"
#include "services/reflection.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: parleyd [options]\n"
            "  --host ADDR            listen address (default 127.0.0.1)\n"
            "  --port N               listen port (default 7443; 0 picks a free port)\n"
            "  --workers N            worker threads (default: one per core)\n"
            "  --tls-cert FILE        PEM certificate chain; with --tls-key enables TLS (ALPN h2)\n"
            "  --tls-key FILE         PEM private key\n"
            "  --max-recv-bytes N     largest request message (default 4194304)\n"
            "  --drain-grace-ms N     time in-flight calls get on SIGTERM (default 10000)\n"
            "  --help                 this text\n");
}

static long parse_number(const char *flag, const char *value, long min, long max)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "parleyd: invalid value '%s' for %s (expected %ld..%ld)\n", value, flag, min, max);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    pl_server_config_t cfg = {0};
    cfg.port = 7443;
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'h'},         {"port", required_argument, NULL, 'p'},
        {"workers", required_argument, NULL, 'w'},      {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},      {"max-recv-bytes", required_argument, NULL, 'm'},
        {"drain-grace-ms", required_argument, NULL, 'g'}, {"help", no_argument, NULL, '?'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = (uint16_t)parse_number("--port", optarg, 0, 65535); break;
        case 'w': cfg.workers = (int)parse_number("--workers", optarg, 1, 256); break;
        case 'c': cfg.tls_cert_file = optarg; break;
        case 'k': cfg.tls_key_file = optarg; break;
        case 'm': cfg.max_recv_message = (uint32_t)parse_number("--max-recv-bytes", optarg, 1024, 1 << 30); break;
        case 'g': cfg.drain_grace_ms = (int)parse_number("--drain-grace-ms", optarg, 1, 3600000); break;
        case '?':
            if (optind > 0 && argv[optind - 1] && strcmp(argv[optind - 1], "--help") == 0) {
                usage(stdout);
                return 0;
            }
            usage(stderr);
            return 2;
        default: usage(stderr); return 2;
        }
    }
    if (!cfg.tls_cert_file != !cfg.tls_key_file) {
        fprintf(stderr, "parleyd: --tls-cert and --tls-key go together\n");
        return 2;
    }

    /* Signals are taken by this thread with sigwait; workers never see them. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pl_server_t *srv = pl_server_new(&cfg);
    if (!srv)
        return 1;
    pl_health_t *health = pl_health_register(srv);
    if (!health || pl_reflection_register(srv) != 0 || pl_server_add_descriptors(srv, &parley_idl_descriptors) != 0) {
        fprintf(stderr, "parleyd: cannot register services\n");
        return 1;
    }
    char err[256];
    if (pl_server_start(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        return 1;
    }
    printf("parleyd: listening on %s:%u (%s, %d workers)\n", pl_server_config(srv)->host, pl_server_port(srv),
           cfg.tls_cert_file ? "TLS h2" : "h2c", pl_server_config(srv)->workers);
    fflush(stdout);

    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP)
            continue;
        printf("parleyd: %s: draining (grace %d ms)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               pl_server_config(srv)->drain_grace_ms);
        fflush(stdout);
        pl_server_drain(srv);
        break;
    }
    pl_server_wait(srv);
    pl_server_free(srv);
    pl_health_free(health);
    printf("parleyd: stopped\n");
    return 0;
}
