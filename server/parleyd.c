/* parleyd — the Parley server: gRPC over HTTP/2 (h2c or TLS), health and
 * reflection, and the messaging services on sharded PostgreSQL and Redis.
 * SIGTERM/SIGINT drain gracefully; SIGHUP reloads the TLS certificate, key
 * and client CA (new connections get them; open ones keep theirs). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "app/app.h"
#include "app/log.h"
#include "config/config.h"
#include "http2/session.h"
#include "node.h"
#include "parley_idl_descriptors.h"
#include "services/health.h"
#include "services/reflection.h"
#include "store/cluster.h"
#include "transport/server.h"

static const char usage[] = "usage: parleyd [--config FILE] [options]\n\n"
                            "Serves Parley's gRPC API (parley.v1.Accounts, Chats, Messaging, Push; grpc.health.v1;\n"
                            "server reflection) on the configured PostgreSQL servers and Redis. The cluster\n"
                            "must be initialised and migrated first: parley-migrate init && parley-migrate up.";

/* Many service managers start processes at a soft RLIMIT_NOFILE of 1024,
 * which a few hundred clients exhaust; the hard limit is what the
 * administrator allows, so take all of it (max_connections is derived from
 * the result). *before gets the soft limit found. */
static rlim_t raise_fd_limit(rlim_t *before)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *before = 0;
        return 0;
    }
    *before = rl.rlim_cur;
    if (rl.rlim_cur == rl.rlim_max)
        return rl.rlim_cur;
    struct rlimit raised = {rl.rlim_max, rl.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
        fprintf(stderr, "parleyd: cannot raise the descriptor limit from %llu to %llu: %s\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, strerror(errno));
        return rl.rlim_cur;
    }
    return rl.rlim_max;
}

int main(int argc, char **argv)
{
    pl_log_init();
    pl_config_t cfg;
    char err[512];
    int rc = pl_config_load(&cfg, argc, argv, usage, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc == 0 && cfg.arg_count > 0) {
        snprintf(err, sizeof(err), "unexpected argument (see --help)");
        rc = -1;
    }
    if (rc != 0 || pl_services_check_config(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        pl_config_free(&cfg);
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

    rlim_t fd_limit_before;
    rlim_t fd_limit = raise_fd_limit(&fd_limit_before);
    /* each worker's own (loop, listener, mailbox, reserve) and slack, its
     * PostgreSQL connections, and Redis's command and subscriber links */
    cfg.server.worker_fds = (uint32_t)(16 + cfg.pg_server_count * cfg.pg_connections_per_worker + 2);
    pl_server_t *srv = pl_server_new(&cfg.server, &pl_h2_session);
    pl_app_t app;
    pl_health_t *health = NULL;
    pl_services_t *services = NULL;
    int status = 1;
    bool app_ready = false;
    if (!srv)
        goto out;
    if (pl_app_init(&app, &cfg, srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        status = 2;
        goto out;
    }
    app_ready = true;
    if (pl_cluster_verify(&cfg, &app.map, pl_cluster_schema_version(), err, sizeof(err)) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        goto out;
    }
    health = pl_health_register(srv);
    services = pl_services_register(&app, err, sizeof(err));
    if (!health || !services || pl_reflection_register(srv) != 0 ||
        pl_server_add_descriptors(srv, &parley_idl_descriptors) != 0) {
        fprintf(stderr, "parleyd: cannot register services%s%s\n", services ? "" : ": ", services ? "" : err);
        goto out;
    }
    if (pl_server_start(srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "parleyd: %s\n", err);
        goto out;
    }
    printf("parleyd: node %d listening on %s:%u (%s, %d workers; %d shards on %d PostgreSQL servers; redis %s:%d)\n",
           cfg.node_id, pl_server_config(srv)->host, pl_server_port(srv),
           pl_server_config(srv)->tls_cert_file ? "TLS h2" : "h2c", pl_server_config(srv)->workers, cfg.shards,
           cfg.pg_server_count, cfg.redis_host, cfg.redis_port);
    pl_server_conn_stats_t cs;
    pl_server_conn_stats(srv, &cs);
    printf("parleyd: descriptor limit %llu (soft limit %s %llu); at most %llu client connections\n",
           (unsigned long long)fd_limit, fd_limit != fd_limit_before ? "raised from" : "was already",
           (unsigned long long)fd_limit_before, (unsigned long long)cs.max);
    fflush(stdout);

    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            char desc[512];
            if (pl_server_reload_tls(srv, err, sizeof(err)) != 0) {
                fprintf(stderr, "parleyd: SIGHUP: TLS not reloaded, still serving the old certificate: %s\n", err);
                continue;
            }
            pl_server_tls_describe(srv, desc, sizeof(desc));
            printf("parleyd: SIGHUP: TLS reloaded for new connections (%s)\n", desc);
            fflush(stdout);
            continue;
        }
        printf("parleyd: %s: draining (grace %d ms)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
               pl_server_config(srv)->drain_grace_ms);
        fflush(stdout);
        pl_server_drain(srv);
        break;
    }
    pl_server_wait(srv);
    status = 0;
out:
    pl_server_free(srv);
    pl_services_free(services);
    pl_health_free(health);
    if (app_ready)
        pl_app_dispose(&app);
    pl_config_free(&cfg);
    if (status == 0)
        printf("parleyd: stopped\n");
    return status;
}
