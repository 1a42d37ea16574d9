/* enqueue.c — recording push jobs after a message is stored: one
 * statement per shard among the recipients' accounts, group-committed
 * with the other writes. Devices without a token cost an index probe and
 * write nothing; the others get a row each, only inserted, so recording
 * never waits for a row lock (the dispatcher folds a device's rows into
 * one push). */
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "push/notify.h"
#include "push/push_internal.h"

typedef struct enqueued {
    pl_push_service_t *svc;
    int shard;
} enqueued_t;

static void on_enqueued(const pl_pg_result_t *r, void *user)
{
    enqueued_t *e = user;
    if (r->code == PL_CODE_OK) {
        atomic_fetch_add_explicit(&e->svc->counters.jobs_recorded, 1, memory_order_relaxed);
        pl_push_due(e->svc, e->shard, pl_push_now_ms() + e->svc->app->cfg->push_grace_ms);
    } else if (r->code != PL_CODE_CANCELLED) {
        atomic_fetch_add_explicit(&e->svc->counters.jobs_lost, 1, memory_order_relaxed);
        pl_log_warn("push: cannot record pushes on shard %d (%s); those devices see the message on their next "
                    "resume",
                    e->shard, r->message);
    }
    free(e);
}

static int by_shard(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    int sx = pl_id_shard(x), sy = pl_id_shard(y);
    return sx != sy ? (sx < sy ? -1 : 1) : (x > y) - (x < y);
}

static void enqueue_shard(pl_push_service_t *svc, pl_worker_t *w, const pl_push_message_t *msg, const int64_t *ids,
                          size_t n)
{
    int shard = pl_id_shard(ids[0]);
    char *array = pl_pg_int8_array(ids, n);
    enqueued_t *e = malloc(sizeof(*e));
    uint8_t chat[8], seq[8], grace[8];
    pl_pg_param_t p[] = {
        pl_pg_text(array ? array : "{}"),
        pl_pg_int8(chat, msg->chat_id),
        pl_pg_int8(seq, msg->seq),
        pl_pg_text(msg->is_call ? "t" : "f"),
        msg->preview_len ? pl_pg_bytes(msg->preview, msg->preview_len) : pl_pg_null(),
        pl_pg_int8(grace, svc->app->cfg->push_grace_ms),
    };
    if (e)
        *e = (enqueued_t){svc, shard};
    if (!array || !e ||
        pl_store_exec(pl_app_store(svc->app, w), pl_push_stmt(svc, ST_ENQUEUE), shard, p, 6,
                      PL_PG_WRITE | PL_PG_IDEMPOTENT, 0, on_enqueued, e) != 0) {
        atomic_fetch_add_explicit(&svc->counters.jobs_lost, 1, memory_order_relaxed);
        pl_log_warn("push: cannot queue pushes for chat %lld on shard %d (out of memory or queue full)",
                    (long long)msg->chat_id, shard);
        free(e);
    }
    free(array);
}

void pl_push_message_stored(const pl_app_t *app, pl_worker_t *w, const pl_push_message_t *msg)
{
    pl_push_service_t *svc = app->push;
    if (!svc || (!svc->has_apns && !svc->has_fcm) || msg->n == 0)
        return;
    int64_t *ids = malloc(sizeof(int64_t) * msg->n);
    if (!ids) {
        pl_log_warn("push: out of memory queueing pushes for chat %lld", (long long)msg->chat_id);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < msg->n; i++)
        if (msg->recipients[i] != msg->sender_account && pl_id_shard(msg->recipients[i]) < app->map.shards)
            ids[n++] = msg->recipients[i];
    qsort(ids, n, sizeof(int64_t), by_shard);
    for (size_t start = 0, i = 1; start < n; i++) {
        if (i == n || pl_id_shard(ids[i]) != pl_id_shard(ids[start])) {
            enqueue_shard(svc, w, msg, ids + start, i - start);
            start = i;
        }
    }
    free(ids);
}
