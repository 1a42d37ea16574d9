/* push_internal.h — what the push service's files share. */
#ifndef PL_PUSH_PUSH_INTERNAL_H
#define PL_PUSH_PUSH_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app/op.h"
#include "parley/v1/push.pb.h"
#include "push/provider.h"
#include "push/push.h"

/* Statements, relative to pl_push_service_t.stmt. */
enum pl_push_stmt {
    ST_TOKEN_PUT,
    ST_TOKEN_DELETE,
    ST_TOKEN_GET,
    ST_MUTE,
    ST_SETTINGS,
    ST_ENQUEUE,
    ST_CLAIM,
    ST_NEXT_DUE,
    ST_QUEUE_DEPTH,
    ST_JOBS_DROP,
    ST_JOBS_DONE,
    ST_JOBS_LATER,
    ST_TOKEN_USED,
    ST_TOKEN_DEAD,
    ST_TOKENS_EXPIRE,
    ST_COUNT
};

/* Figures an operator will want (the metrics endpoint comes later). */
typedef struct pl_push_counters {
    _Atomic uint64_t jobs_recorded;   /* enqueue statements that succeeded */
    _Atomic uint64_t jobs_lost;       /* enqueue statements that failed */
    _Atomic uint64_t sent;            /* pushes the provider accepted */
    _Atomic uint64_t retried;         /* answers that asked for a later try */
    _Atomic uint64_t refused;         /* pushes dropped as never deliverable */
    _Atomic uint64_t tokens_cleared;  /* dead or expired tokens removed */
    _Atomic uint64_t delivered_first; /* jobs dropped: the device had the message */
    _Atomic uint64_t coalesced;       /* jobs that rode along another push or waited for the interval */
    _Atomic uint64_t latency_us_sum;  /* provider request to answer */
    _Atomic uint64_t latency_count;
    _Atomic int64_t queue_depth; /* jobs in every shard's queue, as of the last sweep (a gauge) */
} pl_push_counters_t;

struct pl_push_service {
    pl_app_t *app;
    int stmt;
    int module; /* per-worker state: the dispatcher on worker 0 */
    bool has_apns, has_fcm;
    _Atomic int64_t *due_ms;     /* per shard: when this node next expects a job due (INT64_MAX: not known) */
    _Atomic int64_t next_due_ms; /* the soonest of them, so an idle tick looks at one number */
    pl_push_counters_t counters;
};

static inline int pl_push_stmt(const pl_push_service_t *svc, enum pl_push_stmt st)
{
    return svc->stmt + (int)st;
}

/* Wall-clock milliseconds (the database's now() is on this clock). */
int64_t pl_push_now_ms(void);
/* *slot = min(*slot, ms), atomically. */
void pl_push_lower(_Atomic int64_t *slot, int64_t ms);
/* Tells the dispatcher that shard may have a job due at ms. */
void pl_push_due(pl_push_service_t *svc, int shard, int64_t ms);

/* The handlers (tokens.c, test_push.c). */
void pl_push_register_token(pl_call_t *call, const parley_v1_RegisterPushTokenRequest *req, void *svc);
void pl_push_unregister_token(pl_call_t *call, const parley_v1_UnregisterPushTokenRequest *req, void *svc);
void pl_push_mute_chat(pl_call_t *call, const parley_v1_MuteChatRequest *req, void *svc);
void pl_push_set_settings(pl_call_t *call, const parley_v1_PushSettings *req, void *svc);
void pl_push_test(pl_call_t *call, const parley_v1_TestPushRequest *req, void *svc);

/* The dispatcher (dispatch.c): registers its per-worker module. */
int pl_push_dispatch_register(pl_push_service_t *svc);
/* Sends one push from worker 0 (the one holding the provider connections)
 * and runs fn on the worker w with the result. From any worker. 0, or -1
 * when it could not be handed over (fn will not run). */
int pl_push_send_via_dispatcher(pl_push_service_t *svc, pl_worker_t *w, const pl_push_t *push, pl_push_done_fn fn,
                                void *user);

#endif
