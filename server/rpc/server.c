/* server.c — the server object: configuration defaults, the method
 * registry, listening sockets and the workers' lifecycle. */
#include "rpc/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/errors.h"
#include "transport/tls.h"
#include "transport/worker.h"

#define LISTEN_BACKLOG 4096
#define MAX_SERVICES 128
#define MAX_DESCRIPTOR_SETS 16
#define MAX_DRAIN_HOOKS 16
#define MAX_MODULES 16

typedef struct module {
    pl_module_start_fn start;
    pl_module_stop_fn stop;
    void *arg;
} module_t;

typedef struct drain_hook {
    pl_drain_hook_fn fn;
    void *arg;
} drain_hook_t;

struct pl_server {
    pl_server_config_t cfg;
    char *host;

    pl_method_entry_t *methods; /* sorted by path after start */
    size_t method_count, method_cap;
    const char *services[MAX_SERVICES];
    size_t service_count;
    const pl_descriptor_set_t *sets[MAX_DESCRIPTOR_SETS];
    size_t set_count;
    drain_hook_t hooks[MAX_DRAIN_HOOKS];
    size_t hook_count;
    module_t modules[MAX_MODULES];
    int module_count;

    SSL_CTX *tls;
    pl_worker_t **workers;
    int worker_count;
    uint16_t port;
    bool started;
    volatile int draining;
};

void pl_server_config_defaults(pl_server_config_t *cfg)
{
    if (!cfg->host)
        cfg->host = "127.0.0.1";
    if (cfg->workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)n : 1;
    }
    if (!cfg->max_recv_message)
        cfg->max_recv_message = 4u << 20;
    if (!cfg->max_send_message)
        cfg->max_send_message = 4u << 20;
    if (!cfg->max_metadata)
        cfg->max_metadata = 8u << 10;
    if (!cfg->max_concurrent_streams)
        cfg->max_concurrent_streams = 100;
    if (!cfg->initial_window)
        cfg->initial_window = 1u << 20;
    if (!cfg->call_outbound_limit)
        cfg->call_outbound_limit = 1u << 20;
    if (!cfg->keepalive_time_ms)
        cfg->keepalive_time_ms = 120 * 1000;
    if (!cfg->keepalive_timeout_ms)
        cfg->keepalive_timeout_ms = 20 * 1000;
    if (!cfg->idle_timeout_ms)
        cfg->idle_timeout_ms = 30 * 60 * 1000;
    if (!cfg->handshake_timeout_ms)
        cfg->handshake_timeout_ms = 10 * 1000;
    if (!cfg->drain_grace_ms)
        cfg->drain_grace_ms = 10 * 1000;
}

pl_server_t *pl_server_new(const pl_server_config_t *cfg)
{
    pl_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->cfg = *cfg;
    pl_server_config_defaults(&srv->cfg);
    srv->host = strdup(srv->cfg.host);
    if (!srv->host) {
        free(srv);
        return NULL;
    }
    srv->cfg.host = srv->host;
    srv->cfg.tls_cert_file = NULL; /* only used during start; see pl_server_start */
    srv->cfg.tls_key_file = NULL;
    if (cfg->tls_cert_file && cfg->tls_key_file) {
        char err[512];
        srv->tls = pl_tls_server_ctx_new(cfg->tls_cert_file, cfg->tls_key_file, err, sizeof(err));
        if (!srv->tls) {
            fprintf(stderr, "parleyd: %s\n", err);
            free(srv->host);
            free(srv);
            return NULL;
        }
    }
    return srv;
}

void pl_server_free(pl_server_t *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_free(srv->workers[i]);
    free(srv->workers);
    free(srv->methods);
    if (srv->tls)
        SSL_CTX_free(srv->tls);
    free(srv->host);
    free(srv);
}

const pl_server_config_t *pl_server_config(const pl_server_t *srv) { return &srv->cfg; }
uint16_t pl_server_port(const pl_server_t *srv) { return srv->port; }
bool pl_server_is_draining(const pl_server_t *srv) { return srv->draining != 0; }
int pl_server_worker_count(const pl_server_t *srv) { return srv->worker_count; }
pl_worker_t *pl_server_worker(const pl_server_t *srv, int i) { return srv->workers[i]; }
size_t pl_server_service_count(const pl_server_t *srv) { return srv->service_count; }
const char *pl_server_service_name(const pl_server_t *srv, size_t i) { return srv->services[i]; }
size_t pl_server_descriptor_set_count(const pl_server_t *srv) { return srv->set_count; }
const pl_descriptor_set_t *pl_server_descriptor_set(const pl_server_t *srv, size_t i) { return srv->sets[i]; }

bool pl_server_has_service(const pl_server_t *srv, const char *name)
{
    for (size_t i = 0; i < srv->service_count; i++)
        if (strcmp(srv->services[i], name) == 0)
            return true;
    return false;
}

int pl_server_add_service(pl_server_t *srv, const pl_service_desc_t *desc, const pl_method_impl_t *impls,
                          const void *handlers, void *svc)
{
    if (srv->started || srv->service_count == MAX_SERVICES || pl_server_has_service(srv, desc->name))
        return PL_ERR_INVALID;
    if (srv->method_count + desc->method_count > srv->method_cap) {
        size_t cap = srv->method_cap ? srv->method_cap * 2 : 32;
        while (cap < srv->method_count + desc->method_count)
            cap *= 2;
        pl_method_entry_t *m = realloc(srv->methods, cap * sizeof(*m));
        if (!m)
            return PL_ERR_NOMEM;
        srv->methods = m;
        srv->method_cap = cap;
    }
    for (size_t i = 0; i < desc->method_count; i++) {
        pl_method_entry_t *e = &srv->methods[srv->method_count++];
        e->impl = impls[i];
        e->handlers = handlers;
        e->svc = svc;
    }
    srv->services[srv->service_count++] = desc->name;
    return 0;
}

int pl_server_add_descriptors(pl_server_t *srv, const pl_descriptor_set_t *set)
{
    if (srv->started || srv->set_count == MAX_DESCRIPTOR_SETS)
        return PL_ERR_INVALID;
    for (size_t i = 0; i < srv->set_count; i++)
        if (srv->sets[i] == set)
            return 0;
    srv->sets[srv->set_count++] = set;
    return 0;
}

int pl_server_on_drain(pl_server_t *srv, pl_drain_hook_fn fn, void *arg)
{
    if (srv->started || srv->hook_count == MAX_DRAIN_HOOKS)
        return PL_ERR_INVALID;
    srv->hooks[srv->hook_count].fn = fn;
    srv->hooks[srv->hook_count].arg = arg;
    srv->hook_count++;
    return 0;
}

int pl_server_add_module(pl_server_t *srv, pl_module_start_fn start, pl_module_stop_fn stop, void *arg)
{
    if (srv->started || srv->module_count == MAX_MODULES || !start)
        return PL_ERR_INVALID;
    srv->modules[srv->module_count] = (module_t){start, stop, arg};
    return srv->module_count++;
}

static int start_modules(pl_server_t *srv, pl_worker_t *w)
{
    for (int i = 0; i < srv->module_count; i++) {
        void *state = srv->modules[i].start(w, srv->modules[i].arg);
        if (!state)
            return -1;
        pl_worker_set_module(w, i, state);
    }
    return 0;
}

void pl_server_stop_modules(pl_server_t *srv, pl_worker_t *w)
{
    for (int i = srv->module_count - 1; i >= 0; i--) {
        void *state = pl_worker_module(w, i);
        if (state && srv->modules[i].stop)
            srv->modules[i].stop(w, state, srv->modules[i].arg);
        pl_worker_set_module(w, i, NULL);
    }
}

void pl_server_run_drain_hooks(pl_server_t *srv, pl_worker_t *w)
{
    for (size_t i = 0; i < srv->hook_count; i++)
        srv->hooks[i].fn(w, srv->hooks[i].arg);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const pl_method_entry_t *)a)->impl.method->path, ((const pl_method_entry_t *)b)->impl.method->path);
}

const pl_method_entry_t *pl_server_find_method(const pl_server_t *srv, const char *path, size_t len)
{
    size_t lo = 0, hi = srv->method_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = srv->methods[mid].impl.method->path;
        int c = strncmp(p, path, len);
        if (c == 0)
            c = p[len] == '\0' ? 0 : 1;
        if (c == 0)
            return &srv->methods[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One SO_REUSEPORT socket per worker: the kernel spreads connections over
 * the workers without a shared accept lock. */
static int open_listener(const char *host, uint16_t port, uint16_t *bound, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        snprintf(err, err_len, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int pl_server_start(pl_server_t *srv, char *err, size_t err_len)
{
    qsort(srv->methods, srv->method_count, sizeof(*srv->methods), entry_cmp);
    srv->workers = calloc((size_t)srv->cfg.workers, sizeof(*srv->workers));
    if (!srv->workers) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uint16_t port = srv->cfg.port;
    for (int i = 0; i < srv->cfg.workers; i++) {
        uint16_t bound = 0;
        int fd = open_listener(srv->cfg.host, port, &bound, err, err_len);
        if (fd < 0)
            goto fail;
        port = bound; /* port 0: the first socket picks, the others share it */
        pl_worker_t *w = pl_worker_new(srv, i, fd, srv->tls);
        if (!w) {
            close(fd);
            snprintf(err, err_len, "cannot create worker %d", i);
            goto fail;
        }
        srv->workers[srv->worker_count++] = w;
        if (start_modules(srv, w) != 0) {
            snprintf(err, err_len, "worker %d: a module failed to start", i);
            goto fail;
        }
    }
    srv->port = port;
    srv->started = true;
    for (int i = 0; i < srv->worker_count; i++) {
        if (pl_worker_start(srv->workers[i]) != 0) {
            snprintf(err, err_len, "cannot start worker thread %d", i);
            for (int j = 0; j < i; j++)
                pl_worker_post(srv->workers[j], pl_worker_drain, NULL);
            for (int j = 0; j < i; j++)
                pl_worker_join(srv->workers[j]);
            return -1;
        }
    }
    return 0;
fail:
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_free(srv->workers[i]);
    srv->worker_count = 0;
    return -1;
}

void pl_server_drain(pl_server_t *srv)
{
    if (__atomic_exchange_n(&srv->draining, 1, __ATOMIC_SEQ_CST))
        return;
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_post(srv->workers[i], pl_worker_drain, NULL);
}

void pl_server_wait(pl_server_t *srv)
{
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_join(srv->workers[i]);
}
