/* health.c — grpc.health.v1.Health Check and Watch. */
#include "services/health.h"

#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.parley.h"
#include "rpc/call.h"
#include "transport/worker.h"

/* A Watch call waiting for changes; lives in its worker's list. */
typedef struct watcher {
    struct watcher *next, *prev;
    pl_call_t *call;
    int worker;
    pl_health_t *health;
} watcher_t;

struct pl_health {
    pl_server_t *server;
    int worker_count;
    watcher_t **watchers; /* per worker: touched only on that worker's thread */
};

static grpc_health_v1_HealthCheckResponse_ServingStatus status_of(pl_health_t *h, const char *service)
{
    if (service[0] && !pl_server_has_service(h->server, service))
        return grpc_health_v1_HealthCheckResponse_ServingStatus_SERVICE_UNKNOWN;
    return pl_server_is_draining(h->server) ? grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING
                                            : grpc_health_v1_HealthCheckResponse_ServingStatus_SERVING;
}

static void check(pl_call_t *call, const grpc_health_v1_HealthCheckRequest *req, void *svc)
{
    pl_health_t *h = svc;
    grpc_health_v1_HealthCheckResponse resp = {0};
    resp.status = status_of(h, req->service);
    if (resp.status == grpc_health_v1_HealthCheckResponse_ServingStatus_SERVICE_UNKNOWN) {
        pl_call_finish(call, PL_CODE_NOT_FOUND, "unknown service");
        return;
    }
    grpc_health_v1_Health_Check_reply(call, &resp);
}

static void watcher_unlink(watcher_t *w)
{
    watcher_t **head = &w->health->watchers[w->worker];
    if (w->prev)
        w->prev->next = w->next;
    else if (*head == w)
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->next = w->prev = NULL;
}

static void watcher_free(void *user)
{
    watcher_t *w = user;
    watcher_unlink(w);
    free(w);
}

static void watch(pl_call_t *call, const grpc_health_v1_HealthCheckRequest *req, void *svc)
{
    pl_health_t *h = svc;
    grpc_health_v1_HealthCheckResponse resp = {0};
    resp.status = status_of(h, req->service);
    if (grpc_health_v1_Health_Watch_write(call, &resp) != 0)
        return;
    if (pl_server_is_draining(h->server)) {
        pl_call_finish(call, PL_CODE_OK, NULL);
        return;
    }
    watcher_t *w = calloc(1, sizeof(*w));
    if (!w) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->call = call;
    w->health = h;
    w->worker = pl_worker_index(pl_call_worker(call));
    w->next = h->watchers[w->worker];
    if (w->next)
        w->next->prev = w;
    h->watchers[w->worker] = w;
    pl_call_set_user(call, w, watcher_free);
}

/* On drain, each worker tells its watchers and ends their calls. */
static void on_drain(pl_worker_t *worker, void *arg)
{
    pl_health_t *h = arg;
    int i = pl_worker_index(worker);
    while (h->watchers[i]) {
        watcher_t *w = h->watchers[i];
        watcher_unlink(w);
        grpc_health_v1_HealthCheckResponse resp = {0};
        resp.status = grpc_health_v1_HealthCheckResponse_ServingStatus_NOT_SERVING;
        grpc_health_v1_Health_Watch_write(w->call, &resp);
        pl_call_finish(w->call, PL_CODE_OK, NULL);
    }
}

static const grpc_health_v1_Health_handlers_t handlers = {
    .Check = check,
    .Watch = watch,
};

pl_health_t *pl_health_register(pl_server_t *srv)
{
    pl_health_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->server = srv;
    h->worker_count = pl_server_config(srv)->workers;
    h->watchers = calloc((size_t)h->worker_count, sizeof(*h->watchers));
    if (!h->watchers || grpc_health_v1_Health_register(srv, &handlers, h) != 0 ||
        pl_server_on_drain(srv, on_drain, h) != 0) {
        pl_health_free(h);
        return NULL;
    }
    return h;
}

void pl_health_free(pl_health_t *h)
{
    if (!h)
        return;
    free(h->watchers);
    free(h);
}
