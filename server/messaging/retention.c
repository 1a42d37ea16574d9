/* retention.c — deleting what the log no longer keeps: messages older than
 * retention_days and expired disappearing messages. Worker 0 of every node
 * visits one shard per tick, in a bounded batch; concurrent sweeps from
 * several nodes are harmless (a row is deleted once). Devices that were
 * behind get a Gap for what went (catchup.c). */
#include <event2/event.h>
#include <stdio.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"

#define TICK_MS 1000
#define BATCH 5000

static void on_swept(const pl_pg_result_t *r, void *user)
{
    if (r->code == PL_CODE_CANCELLED)
        return; /* the store is going down after this worker: mw is freed */
    pl_msg_worker_t *mw = user;
    mw->sweep_busy = false;
    if (r->code != PL_CODE_OK) {
        pl_log_warn("retention: shard %d: %s", mw->sweep_shard, r->message);
        return;
    }
    int64_t n = pl_pg_get_int64(r->res, 0, 0);
    if (n > 0)
        pl_log_info("retention: shard %d: deleted %lld messages", mw->sweep_shard, (long long)n);
    if (n < BATCH) /* done with this shard: the next one on the next tick */
        mw->sweep_shard = (mw->sweep_shard + 1) % mw->m->app->map.shards;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_msg_worker_t *mw = arg;
    if (mw->sweep_busy)
        return;
    pl_messaging_t *m = mw->m;
    char days[16], batch[16];
    snprintf(days, sizeof(days), "%d", m->app->cfg->retention_days);
    snprintf(batch, sizeof(batch), "%d", BATCH);
    pl_pg_param_t p[2] = {pl_pg_text(days), pl_pg_text(batch)};
    mw->sweep_busy = true;
    if (pl_store_exec(pl_app_store(m->app, mw->w), pl_msg_stmt(m, ST_SWEEP), mw->sweep_shard, p, 2, PL_PG_IDEMPOTENT, 0,
                      on_swept, mw) != 0)
        mw->sweep_busy = false;
}

int pl_retention_worker_start(pl_msg_worker_t *mw)
{
    if (pl_worker_index(mw->w) != 0)
        return 0;
    mw->sweep_ev = event_new(pl_worker_base(mw->w), -1, EV_PERSIST, on_tick, mw);
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    return mw->sweep_ev && event_add(mw->sweep_ev, &tv) == 0 ? 0 : -1;
}

void pl_retention_worker_stop(pl_msg_worker_t *mw)
{
    if (mw->sweep_ev)
        event_free(mw->sweep_ev);
    mw->sweep_ev = NULL;
}
