/* server.h — the gRPC server: configuration, service registry, lifecycle.
 *
 * A server owns N workers (server/transport/worker.h), each with its own
 * event loop, listening socket (SO_REUSEPORT) and connections. Services are
 * registered before pl_server_start(); the registry is read-only afterwards,
 * so workers read it without locks. */
#ifndef PL_SERVER_RPC_SERVER_H
#define PL_SERVER_RPC_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/descriptors.h"
#include "runtime/rpc.h"

typedef struct pl_server_config {
    const char *host;              /* listen address; default "127.0.0.1" */
    uint16_t port;                 /* 0: pick a free port (see pl_server_port) */
    int workers;                   /* 0: one per core */
    const char *tls_cert_file;     /* both set: TLS with ALPN h2; else h2c */
    const char *tls_key_file;
    uint32_t max_recv_message;     /* bytes; default 4 MiB */
    uint32_t max_send_message;     /* bytes; default 4 MiB */
    uint32_t max_metadata;         /* request header list bytes; default 8 KiB */
    uint32_t max_concurrent_streams; /* per connection; default 100 */
    uint32_t initial_window;       /* HTTP/2 stream window; default 1 MiB */
    uint32_t call_outbound_limit;  /* queued response bytes per call; default 1 MiB */
    int keepalive_time_ms;         /* ping an idle connection after; default 120 s */
    int keepalive_timeout_ms;      /* close if the ping is not answered; default 20 s */
    int idle_timeout_ms;           /* close a connection without calls after; default 30 min */
    int handshake_timeout_ms;      /* TLS handshake + client preface; default 10 s */
    int drain_grace_ms;            /* in-flight calls' time to finish on drain; default 10 s */
} pl_server_config_t;

/* Fills unset (zero) fields with the defaults above. */
void pl_server_config_defaults(pl_server_config_t *cfg);

/* A registered method, as the call layer sees it. */
typedef struct pl_method_entry {
    pl_method_impl_t impl;
    const void *handlers;
    void *svc;
} pl_method_entry_t;

pl_server_t *pl_server_new(const pl_server_config_t *cfg);
void pl_server_free(pl_server_t *srv);

/* Makes a descriptor set available to reflection. */
int pl_server_add_descriptors(pl_server_t *srv, const pl_descriptor_set_t *set);

/* Binds and starts the workers. 0, or -1 with a message in err. */
int pl_server_start(pl_server_t *srv, char *err, size_t err_len);
/* The bound port (after start). */
uint16_t pl_server_port(const pl_server_t *srv);
/* Begins a graceful shutdown: stop accepting, GOAWAY, let calls finish for
 * drain_grace_ms, then cancel the rest. Safe from any thread. */
void pl_server_drain(pl_server_t *srv);
/* Waits until every worker has stopped. */
void pl_server_wait(pl_server_t *srv);

const pl_server_config_t *pl_server_config(const pl_server_t *srv);
const pl_method_entry_t *pl_server_find_method(const pl_server_t *srv, const char *path, size_t len);
bool pl_server_is_draining(const pl_server_t *srv);

/* Registered service names and descriptor sets, for reflection and health. */
size_t pl_server_service_count(const pl_server_t *srv);
const char *pl_server_service_name(const pl_server_t *srv, size_t i);
bool pl_server_has_service(const pl_server_t *srv, const char *name);
size_t pl_server_descriptor_set_count(const pl_server_t *srv);
const pl_descriptor_set_t *pl_server_descriptor_set(const pl_server_t *srv, size_t i);

/* Workers, for code that needs to reach every loop (e.g. health Watch). */
typedef struct pl_worker pl_worker_t;
int pl_server_worker_count(const pl_server_t *srv);
pl_worker_t *pl_server_worker(const pl_server_t *srv, int i);

/* Per-worker state of a module (a database pool, a cache connection). start
 * runs for each worker before its thread starts (on the caller's thread,
 * with the worker's event base ready) and returns the worker's state, NULL
 * to fail the server's start; stop runs after the worker's thread ended and
 * its connections closed. Both before pl_server_start / from pl_server_free.
 * Returns the module's id for pl_worker_module(), or a negative error. */
typedef void *(*pl_module_start_fn)(pl_worker_t *w, void *arg);
typedef void (*pl_module_stop_fn)(pl_worker_t *w, void *state, void *arg);
int pl_server_add_module(pl_server_t *srv, pl_module_start_fn start, pl_module_stop_fn stop, void *arg);
void *pl_worker_module(const pl_worker_t *w, int id);
/* Runs every module's stop for w (called by the worker as it is freed). */
void pl_server_stop_modules(pl_server_t *srv, pl_worker_t *w);

/* A hook run on every worker's thread when the server starts draining. */
typedef void (*pl_drain_hook_fn)(pl_worker_t *w, void *arg);
int pl_server_on_drain(pl_server_t *srv, pl_drain_hook_fn fn, void *arg);
void pl_server_run_drain_hooks(pl_server_t *srv, pl_worker_t *w);

#endif
