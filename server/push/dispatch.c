/* dispatch.c — sending what the queue holds: worker 0 of every node.
 *
 * A tick every TICK_MS claims the due jobs of the shards this node knows
 * to have some (the send path marks them, pl_push_due) and, every [push]
 * sweep_interval_ms, of every shard: jobs recorded by other nodes, by this
 * node before a restart, or whose lease ran out on a node that died. A
 * claim leases its rows (LEASE_MS), so nodes never send one job twice at
 * once.
 *
 * Of what a claim returns: jobs whose message the device has acknowledged
 * are dropped unsent; the rest are grouped per device, provider and kind,
 * and each group is one push (a burst in several chats is one alert). An
 * alert within [push] alert_interval_ms of the device's last one, or a
 * background push within background_interval_ms, waits for the interval
 * instead. Then, by the provider's answer: sent, the jobs go (with any
 * older ones in their chats: the push covered them); later (429, 5xx,
 * no connection, credentials renewed), exponential backoff with jitter,
 * or the provider's Retry-After, capped at [push] max_backoff_ms; token
 * dead, the token and its jobs go (unless it was registered again after
 * the provider's timestamp); refused, the jobs go and the reason is
 * logged. Nothing else drops a job.
 *
 * The dispatcher's writes touch only rows it holds the lease of, and the
 * send path only inserts: no two transactions wait for each other's rows. */
#include <event2/event.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "push/apns.h"
#include "push/fcm.h"
#include "push/http.h"
#include "push/push_internal.h"
#include "runtime/idmap.h"
#include "transport/worker.h"

#define TICK_MS 20     /* an idle tick reads one atomic */
#define CLAIM_ROWS 100 /* jobs per claim */
/* A claimed job waits this long before another claim may take it: longer
 * than a provider request can take (an FCM token fetch, then the send: 15 s
 * each). */
#define LEASE_MS 60000
#define PUSHES_MAX 1000 /* pushes out at once */
#define FIRST_BACKOFF_MS 1000
#define INFLIGHT_WAIT_MS 250 /* a device's jobs claimed while a push to it is out wait this long */
#define EXPIRE_EVERY_MS 3600000
#define EXPIRE_ROWS 1000

/* Columns of ST_CLAIM. */
enum {
    C_DEVICE,
    C_PROVIDER,
    C_KIND,
    C_CHAT,
    C_SEQ,
    C_ATTEMPTS,
    C_DELIVERED,
    C_TOKEN,
    C_APP_ID,
    C_SANDBOX,
    C_LAST_ALERT,
    C_LAST_BACKGROUND,
    C_NO_PREVIEWS,
    C_PREVIEW,
    C_CLAIMED_AT
};

typedef struct dispatcher {
    pl_push_service_t *svc;
    pl_worker_t *w;
    bool is_active; /* worker 0 */
    bool is_stopping;
    struct event *tick;
    pl_http_t *http;
    pl_apns_t *apns;
    pl_fcm_t *fcm;
    int queries;    /* statements out (the last callback frees a stopping dispatcher) */
    int pushes;     /* pushes out */
    bool *claiming; /* per shard: a claim is out */
    /* device id -> a bit per (provider, kind) with a push out: a claim
     * made meanwhile must not push again before the answer has set the
     * device's last push time */
    pl_idmap_t inflight;
    int64_t *depth; /* per shard: jobs waiting at the last sweep */
    int64_t next_sweep_ms, next_expire_ms;
    uint64_t rng;
    uint64_t failures; /* claim failures since the last sweep, for one warning per sweep */
    int64_t next_figures_ms;
    uint64_t figures_sent, figures_retried, figures_refused, figures_lost; /* as last logged */
} dispatcher_t;

/* One job of a group being pushed. */
typedef struct job {
    int64_t chat_id, seq;
    int attempts;
} job_t;

typedef struct pushing {
    dispatcher_t *d;
    int shard;
    int64_t device_id;
    int64_t claimed_at_ms; /* the database's clock */
    pl_push_t push;
    char *token, *app_id;
    uint8_t *preview;
    size_t njobs;
    job_t jobs[];
} pushing_t;

static void dispatcher_free(dispatcher_t *d)
{
    pl_idmap_dispose(&d->inflight);
    free(d->claiming);
    free(d->depth);
    free(d);
}

/* ---- statements ---- */

typedef void (*done_fn)(dispatcher_t *d, const pl_pg_result_t *r, void *arg);

typedef struct query {
    dispatcher_t *d;
    done_fn fn;
    void *arg;
    int shard;
    const char *what;
} query_t;

static void on_query(const pl_pg_result_t *r, void *user)
{
    query_t *q = user;
    dispatcher_t *d = q->d;
    d->queries--;
    if (!d->is_stopping && r->code != PL_CODE_OK && r->code != PL_CODE_CANCELLED && d->failures++ == 0)
        pl_log_warn("push: %s on shard %d: %s (tried again later)", q->what, q->shard, r->message);
    if (q->fn)
        q->fn(d, r, q->arg); /* also while stopping: it frees what it holds */
    free(q);
    if (d->is_stopping && d->queries == 0)
        dispatcher_free(d);
}

static int query(dispatcher_t *d, enum pl_push_stmt st, int shard, const pl_pg_param_t *p, int n, unsigned flags,
                 done_fn fn, void *arg, const char *what)
{
    query_t *q = malloc(sizeof(*q));
    if (!q)
        return -1;
    *q = (query_t){d, fn, arg, shard, what};
    if (pl_store_exec(pl_app_store(d->svc->app, d->w), pl_push_stmt(d->svc, st), shard, p, n, flags, 0, on_query, q) !=
        0) {
        free(q);
        return -1;
    }
    d->queries++;
    return 0;
}

/* ST_JOBS_DROP or ST_JOBS_LATER (then with delay_ms, why and whether the
 * claim's attempt is given back) for jobs of one device, provider and
 * kind. One that cannot be queued is left to its lease. */
static void jobs_write(dispatcher_t *d, enum pl_push_stmt st, int shard, int64_t device, int provider, int kind,
                       const job_t *jobs, size_t n, int64_t delay_ms, const char *why, bool give_back)
{
    if (n == 0)
        return;
    int64_t *ids = malloc(sizeof(int64_t) * n * 2);
    char *chats = NULL, *seqs = NULL;
    if (ids) {
        for (size_t i = 0; i < n; i++) {
            ids[i] = jobs[i].chat_id;
            ids[n + i] = jobs[i].seq;
        }
        chats = pl_pg_int8_array(ids, n);
        seqs = pl_pg_int8_array(ids + n, n);
    }
    uint8_t b[4][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], device), pl_pg_int8(b[1], provider),
                         pl_pg_int8(b[2], kind),   pl_pg_text(chats),
                         pl_pg_text(seqs),         pl_pg_int8(b[3], delay_ms),
                         pl_pg_text(why),          pl_pg_text(give_back ? "1" : "0")};
    bool is_done = st == ST_JOBS_DROP;
    if (!chats || !seqs ||
        query(d, st, shard, p, is_done ? 5 : 8, PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, NULL,
              is_done ? "dropping push jobs" : "rescheduling push jobs") != 0)
        pl_log_warn("push: cannot %s %zu jobs of device %lld now; their lease runs out first",
                    is_done ? "drop" : "reschedule", n, (long long)device);
    else if (!is_done)
        pl_push_due(d->svc, shard, pl_push_now_ms() + delay_ms);
    free(ids);
    free(chats);
    free(seqs);
}

/* The push went (or never will): its jobs go, with every other job of
 * the device stored before the claim. */
static void jobs_done(dispatcher_t *d, const pushing_t *g)
{
    uint8_t b[4][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], g->device_id), pl_pg_int8(b[1], g->push.provider),
                         pl_pg_int8(b[2], g->push.kind), pl_pg_int8(b[3], g->claimed_at_ms)};
    if (query(d, ST_JOBS_DONE, g->shard, p, 4, PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, NULL, "dropping push jobs") != 0)
        pl_log_warn("push: cannot drop the jobs of device %lld now; their lease runs out first",
                    (long long)g->device_id);
}

static void jobs_later(dispatcher_t *d, const pushing_t *g, int64_t delay_ms, const char *why, bool give_back)
{
    jobs_write(d, ST_JOBS_LATER, g->shard, g->device_id, (int)g->push.provider, (int)g->push.kind, g->jobs, g->njobs,
               delay_ms, why, give_back);
}

/* ---- sending ---- */

static void send_push(dispatcher_t *d, const pl_push_t *p, pl_push_done_fn fn, void *user)
{
    bool is_fcm = p->provider == PL_PROVIDER_FCM;
    if (is_fcm ? d->fcm != NULL : d->apns != NULL) {
        if (is_fcm)
            pl_fcm_send(d->fcm, p, fn, user);
        else
            pl_apns_send(d->apns, p, fn, user);
        return;
    }
    pl_push_answer_unsent(fn, user, PL_PUSH_REFUSED,
                          is_fcm ? "this server has no FCM credentials" : "this server has no APNs credentials");
}

static int64_t backoff_ms(dispatcher_t *d, int attempts)
{
    int64_t cap = d->svc->app->cfg->push_max_backoff_ms, ms = FIRST_BACKOFF_MS;
    for (int i = 1; i < attempts && ms < cap; i++)
        ms *= 2;
    if (ms > cap)
        ms = cap;
    /* jitter: somewhere in the second half, so a provider's recovery is not met by every job at once */
    d->rng ^= d->rng << 13;
    d->rng ^= d->rng >> 7;
    d->rng ^= d->rng << 17;
    return ms / 2 + (int64_t)(d->rng % (uint64_t)(ms / 2 + 1));
}

static void on_dead_token(dispatcher_t *d, const pl_pg_result_t *r, void *arg)
{
    pushing_t *g = arg;
    if (d->is_stopping || r->code != PL_CODE_OK) {
        /* the lease runs out and the push is tried again */
    } else if (pl_pg_get_int64(r->res, 0, 0) > 0) {
        atomic_fetch_add_explicit(&d->svc->counters.tokens_cleared, 1, memory_order_relaxed);
        pl_log_info("push: the %s token of device %lld is gone (the provider said so): removed with its pushes",
                    pl_push_provider_name(g->push.provider), (long long)g->device_id);
    } else {
        /* registered again after the provider's timestamp, or replaced: a
         * new token gets the jobs soon; the same one only after a backoff,
         * in case the provider goes on refusing it */
        jobs_later(d, g, backoff_ms(d, g->jobs[0].attempts), "token registered again after the provider's 410", false);
    }
    free(g);
}

static uintptr_t inflight_bit(const pl_push_t *p)
{
    return (uintptr_t)1 << ((unsigned)p->provider * 4 + (unsigned)p->kind);
}

static bool is_inflight(const dispatcher_t *d, int64_t device, const pl_push_t *p)
{
    return ((uintptr_t)pl_idmap_get(&d->inflight, device) & inflight_bit(p)) != 0;
}

static void set_inflight(dispatcher_t *d, int64_t device, const pl_push_t *p, bool on)
{
    uintptr_t bits = (uintptr_t)pl_idmap_get(&d->inflight, device);
    bits = on ? bits | inflight_bit(p) : bits & ~inflight_bit(p);
    if (bits)
        pl_idmap_put(&d->inflight, device, (void *)bits); /* out of memory: no guard, at worst one more push */
    else
        pl_idmap_del(&d->inflight, device);
}

static void pushing_free(pushing_t *g)
{
    free(g->token);
    free(g->app_id);
    free(g->preview);
    free(g);
}

/* A sent push's guard (set_inflight) holds until its "last push" time is
 * written: a claim that ran before that write must not push again. */
typedef struct settled {
    int64_t device_id;
    pl_push_t push;
} settled_t;

static void on_settled(dispatcher_t *d, const pl_pg_result_t *r, void *arg)
{
    (void)r;
    settled_t *st = arg;
    set_inflight(d, st->device_id, &st->push, false);
    free(st);
}

static void note_sent(dispatcher_t *d, const pushing_t *g)
{
    uint8_t b[3][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], g->device_id), pl_pg_int8(b[1], g->push.provider),
                         pl_pg_int8(b[2], g->push.kind)};
    settled_t *st = malloc(sizeof(*st));
    if (st)
        *st = (settled_t){g->device_id, g->push};
    /* for a call it changes nothing, but its answer still comes after the claims sent before it */
    if (!st ||
        query(d, ST_TOKEN_USED, g->shard, p, 3, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_settled, st, "noting a push") != 0) {
        free(st);
        set_inflight(d, g->device_id, &g->push, false);
    }
}

static void on_pushed(const pl_push_result_t *res, void *user)
{
    pushing_t *g = user;
    dispatcher_t *d = g->d;
    pl_push_counters_t *c = &d->svc->counters;
    d->pushes--;
    if (d->is_stopping || res->outcome != PL_PUSH_SENT)
        set_inflight(d, g->device_id, &g->push, false);
    atomic_fetch_add_explicit(&c->latency_us_sum, (uint64_t)(res->seconds * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&c->latency_count, 1, memory_order_relaxed);
    if (d->is_stopping) {
        /* the lease runs out and the next sweep, here or elsewhere, sends them */
        pushing_free(g);
        return;
    }
    int provider = (int)g->push.provider;
    switch (res->outcome) {
    case PL_PUSH_SENT:
        atomic_fetch_add_explicit(&c->sent, 1, memory_order_relaxed);
        jobs_done(d, g);
        note_sent(d, g);
        break;
    case PL_PUSH_RETRY: {
        atomic_fetch_add_explicit(&c->retried, 1, memory_order_relaxed);
        int64_t cap = d->svc->app->cfg->push_max_backoff_ms;
        int64_t delay = res->retry_after_ms >= 0 ? res->retry_after_ms : backoff_ms(d, g->jobs[0].attempts);
        if (delay > cap)
            delay = cap; /* a provider's Retry-After too */
        char why[128];
        snprintf(why, sizeof(why), "%d %s", res->http_status, res->reason);
        pl_log_debug("push: device %lld: %s; again in %lld ms", (long long)g->device_id, why, (long long)delay);
        jobs_later(d, g, delay, why, false);
        break;
    }
    case PL_PUSH_TOKEN_DEAD: {
        uint8_t b[3][8];
        pl_pg_param_t p[] = {pl_pg_int8(b[0], g->device_id), pl_pg_int8(b[1], provider), pl_pg_text(g->token),
                             pl_pg_int8(b[2], res->dead_since_ms)};
        if (query(d, ST_TOKEN_DEAD, g->shard, p, 4, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_dead_token, g,
                  "removing a dead token") == 0) {
            free(g->token); /* the store copied it; g goes in on_dead_token */
            g->token = NULL;
            free(g->app_id);
            free(g->preview);
            g->app_id = NULL;
            g->preview = NULL;
            return;
        }
        break;
    }
    case PL_PUSH_REFUSED:
        atomic_fetch_add_explicit(&c->refused, 1, memory_order_relaxed);
        pl_log_error("push: %s refused a push to device %lld for good: %d %s (dropped)",
                     pl_push_provider_name(g->push.provider), (long long)g->device_id, res->http_status, res->reason);
        jobs_done(d, g);
        break;
    }
    pushing_free(g);
}

/* Rows [from, to) of a claim: one device, provider and kind, in chat and
 * seq order. Those the device has (or whose token went) are dropped; the
 * rest are one push, or wait for the device's interval. */
static void push_group(dispatcher_t *d, int shard, const PGresult *res, int from, int to)
{
    pl_push_counters_t *c = &d->svc->counters;
    size_t rows = (size_t)(to - from);
    pushing_t *g = calloc(1, sizeof(*g) + sizeof(job_t) * rows);
    job_t *dropped = malloc(sizeof(job_t) * rows);
    if (!g || !dropped) {
        free(g);
        free(dropped);
        return; /* the lease runs out; the next sweep tries again */
    }
    *g = (pushing_t){.d = d,
                     .shard = shard,
                     .device_id = pl_pg_get_int64(res, from, C_DEVICE),
                     .claimed_at_ms = pl_pg_get_int64(res, from, C_CLAIMED_AT)};
    g->push.provider = (pl_push_provider_t)pl_pg_get_int64(res, from, C_PROVIDER);
    g->push.kind = (pl_push_kind_t)pl_pg_get_int64(res, from, C_KIND);
    size_t ndropped = 0;
    int preview_row = -1; /* the newest message's preview */
    for (int i = from; i < to; i++) {
        job_t j = {pl_pg_get_int64(res, i, C_CHAT), pl_pg_get_int64(res, i, C_SEQ),
                   (int)pl_pg_get_int64(res, i, C_ATTEMPTS)};
        if (pl_pg_get_bool(res, i, C_DELIVERED) || PQgetisnull(res, i, C_TOKEN)) {
            dropped[ndropped++] = j;
            continue;
        }
        if (!PQgetisnull(res, i, C_PREVIEW) && !pl_pg_get_bool(res, i, C_NO_PREVIEWS))
            preview_row = i;
        g->jobs[g->njobs++] = j;
    }
    atomic_fetch_add_explicit(&c->delivered_first, ndropped, memory_order_relaxed);
    jobs_write(d, ST_JOBS_DROP, shard, g->device_id, (int)g->push.provider, (int)g->push.kind, dropped, ndropped, 0, "",
               false);
    free(dropped);
    if (g->njobs == 0) {
        free(g);
        return;
    }
    if (is_inflight(d, g->device_id, &g->push)) {
        /* its answer sets the device's last push; these wait for it */
        atomic_fetch_add_explicit(&c->coalesced, g->njobs, memory_order_relaxed);
        jobs_later(d, g, INFLIGHT_WAIT_MS, "", true);
        free(g);
        return;
    }
    const pl_config_t *cfg = d->svc->app->cfg;
    int64_t now = pl_push_now_ms(), last = 0, interval = 0;
    if (g->push.kind == PL_PUSH_ALERT) {
        last = pl_pg_get_int64(res, from, C_LAST_ALERT);
        interval = cfg->push_alert_interval_ms;
    } else if (g->push.kind == PL_PUSH_BACKGROUND) {
        last = pl_pg_get_int64(res, from, C_LAST_BACKGROUND);
        interval = cfg->push_background_interval_ms;
    }
    if (last && now < last + interval) {
        atomic_fetch_add_explicit(&c->coalesced, g->njobs, memory_order_relaxed);
        jobs_later(d, g, last + interval - now, "", true);
        free(g);
        return;
    }
    atomic_fetch_add_explicit(&c->coalesced, g->njobs - 1, memory_order_relaxed);
    g->token = strdup(PQgetvalue(res, from, C_TOKEN));
    g->app_id = strdup(PQgetvalue(res, from, C_APP_ID));
    size_t plen = 0;
    if (preview_row >= 0) {
        const uint8_t *pv = pl_pg_get_bytes(res, preview_row, C_PREVIEW, &plen);
        if (plen > PL_PUSH_PREVIEW_MAX)
            plen = 0;
        if (plen && (g->preview = malloc(plen)))
            memcpy(g->preview, pv, plen);
    }
    if (!g->token || !g->app_id) {
        pushing_free(g);
        return;
    }
    g->push.token = g->token;
    g->push.app_id = g->app_id;
    g->push.sandbox = pl_pg_get_bool(res, from, C_SANDBOX);
    g->push.preview = g->preview;
    g->push.preview_len = g->preview ? plen : 0;
    d->pushes++;
    set_inflight(d, g->device_id, &g->push, true);
    send_push(d, &g->push, on_pushed, g);
}

static void on_next_due(dispatcher_t *d, const pl_pg_result_t *r, void *arg)
{
    int shard = (int)(intptr_t)arg;
    if (d->is_stopping)
        return;
    if (r->code != PL_CODE_OK) {
        pl_push_due(d->svc, shard, pl_push_now_ms() + 1000);
    } else if (!PQgetisnull(r->res, 0, 0)) {
        int64_t in_ms = pl_pg_get_int64(r->res, 0, 0); /* by the database's clock, so no skew between the two */
        pl_push_due(d->svc, shard, pl_push_now_ms() + (in_ms > 0 ? in_ms : 0));
    }
}

static void on_claimed(dispatcher_t *d, const pl_pg_result_t *r, void *arg)
{
    int shard = (int)(intptr_t)arg;
    d->claiming[shard] = false;
    if (d->is_stopping)
        return; /* what it claimed waits for its lease */
    if (r->code != PL_CODE_OK) {
        pl_push_due(d->svc, shard, pl_push_now_ms() + 1000);
        return;
    }
    int n = PQntuples(r->res);
    if (n == CLAIM_ROWS)
        pl_push_due(d->svc, shard, 0); /* more are waiting */
    else if (query(d, ST_NEXT_DUE, shard, NULL, 0, PL_PG_IDEMPOTENT, on_next_due, arg, "reading the next push due") !=
             0)
        pl_push_due(d->svc, shard, pl_push_now_ms() + 1000);
    for (int from = 0, i = 1; from < n; i++) {
        if (i == n || pl_pg_get_int64(r->res, i, C_DEVICE) != pl_pg_get_int64(r->res, from, C_DEVICE) ||
            pl_pg_get_int64(r->res, i, C_PROVIDER) != pl_pg_get_int64(r->res, from, C_PROVIDER) ||
            pl_pg_get_int64(r->res, i, C_KIND) != pl_pg_get_int64(r->res, from, C_KIND)) {
            push_group(d, shard, r->res, from, i);
            from = i;
        }
    }
}

static void claim(dispatcher_t *d, int shard)
{
    uint8_t rows[8], lease[8];
    pl_pg_param_t p[] = {pl_pg_int8(rows, CLAIM_ROWS), pl_pg_int8(lease, LEASE_MS)};
    if (query(d, ST_CLAIM, shard, p, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_claimed, (void *)(intptr_t)shard,
              "claiming push jobs") == 0)
        d->claiming[shard] = true;
    else
        pl_push_due(d->svc, shard, pl_push_now_ms() + 1000);
}

static void on_depth(dispatcher_t *d, const pl_pg_result_t *r, void *arg)
{
    int shard = (int)(intptr_t)arg;
    if (d->is_stopping || r->code != PL_CODE_OK)
        return;
    int64_t n = pl_pg_get_int64(r->res, 0, 0);
    atomic_fetch_add_explicit(&d->svc->counters.queue_depth, n - d->depth[shard], memory_order_relaxed);
    d->depth[shard] = n;
}

static void expire_tokens(dispatcher_t *d)
{
    for (int s = 0; s < d->svc->app->map.shards; s++) {
        uint8_t days[8], rows[8];
        pl_pg_param_t p[] = {pl_pg_int8(days, d->svc->app->cfg->push_token_days), pl_pg_int8(rows, EXPIRE_ROWS)};
        query(d, ST_TOKENS_EXPIRE, s, p, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, NULL, "expiring old push tokens");
    }
}

/* At most once a minute, and only when something happened: what the
 * counters say (the metrics endpoint will serve them). */
static void log_figures(dispatcher_t *d, bool is_last)
{
    pl_push_counters_t *c = &d->svc->counters;
    int64_t now = pl_push_now_ms();
    uint64_t sent = atomic_load(&c->sent), retried = atomic_load(&c->retried), refused = atomic_load(&c->refused),
             lost = atomic_load(&c->jobs_lost);
    if ((now < d->next_figures_ms && !is_last) || (sent == d->figures_sent && retried == d->figures_retried &&
                                                   refused == d->figures_refused && lost == d->figures_lost))
        return;
    d->next_figures_ms = now + 60000;
    d->figures_sent = sent;
    d->figures_retried = retried;
    d->figures_refused = refused;
    d->figures_lost = lost;
    uint64_t n = atomic_load(&c->latency_count);
    pl_log_info("push: %llu sent, %llu retried, %llu refused, %llu tokens cleared; jobs: %llu recorded, %llu not "
                "recordable, %llu delivered first, %llu coalesced, %lld queued; provider answers in %.1f ms on "
                "average",
                (unsigned long long)sent, (unsigned long long)retried, (unsigned long long)refused,
                (unsigned long long)atomic_load(&c->tokens_cleared), (unsigned long long)atomic_load(&c->jobs_recorded),
                (unsigned long long)lost, (unsigned long long)atomic_load(&c->delivered_first),
                (unsigned long long)atomic_load(&c->coalesced), (long long)atomic_load(&c->queue_depth),
                n ? (double)atomic_load(&c->latency_us_sum) / (double)n / 1000.0 : 0.0);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatcher_t *d = arg;
    pl_push_service_t *svc = d->svc;
    int64_t now = pl_push_now_ms();
    int shards = svc->app->map.shards;
    if (now >= d->next_sweep_ms) {
        d->next_sweep_ms = now + svc->app->cfg->push_sweep_interval_ms;
        d->failures = 0;
        for (int s = 0; s < shards; s++) {
            pl_push_due(svc, s, now);
            query(d, ST_QUEUE_DEPTH, s, NULL, 0, PL_PG_IDEMPOTENT, on_depth, (void *)(intptr_t)s,
                  "counting queued pushes");
        }
        log_figures(d, false);
    }
    if (now >= d->next_expire_ms) {
        d->next_expire_ms = now + EXPIRE_EVERY_MS;
        expire_tokens(d);
    }
    /* taken before the shards are read: a mark made meanwhile sets it again */
    int64_t soonest = atomic_exchange_explicit(&svc->next_due_ms, INT64_MAX, memory_order_acquire);
    if (soonest > now) {
        pl_push_lower(&svc->next_due_ms, soonest);
        return;
    }
    int64_t later = INT64_MAX;
    for (int s = 0; s < shards; s++) {
        int64_t due = atomic_load_explicit(&svc->due_ms[s], memory_order_relaxed);
        if (due > now || d->claiming[s] || d->pushes + CLAIM_ROWS > PUSHES_MAX) {
            later = due < later ? due : later; /* a shard still due is looked at again next tick */
            continue;
        }
        atomic_store_explicit(&svc->due_ms[s], INT64_MAX, memory_order_relaxed);
        claim(d, s);
    }
    pl_push_lower(&svc->next_due_ms, later);
}

/* ---- the module ---- */

static void *dispatch_start(pl_worker_t *w, void *arg)
{
    pl_push_service_t *svc = arg;
    dispatcher_t *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->svc = svc;
    d->w = w;
    if (pl_worker_index(w) != 0 || (!svc->has_apns && !svc->has_fcm))
        return d; /* idle */
    const pl_config_t *cfg = svc->app->cfg;
    char err[256] = "out of memory";
    d->rng = (uint64_t)pl_push_now_ms() | 1;
    d->claiming = calloc((size_t)svc->app->map.shards, sizeof(bool));
    d->depth = calloc((size_t)svc->app->map.shards, sizeof(int64_t));
    d->tick = event_new(pl_worker_base(w), -1, EV_PERSIST, on_tick, d);
    if (!d->claiming || !d->depth || !d->tick ||
        !(d->http = pl_http_new(pl_worker_base(w), cfg->push_ca_file, err, sizeof(err))) ||
        (svc->has_apns && !(d->apns = pl_apns_new(cfg, d->http, err, sizeof(err)))) ||
        (svc->has_fcm && !(d->fcm = pl_fcm_new(cfg, d->http, err, sizeof(err))))) {
        pl_log_error("push: the dispatcher cannot start (%s): no pushes are sent from this node", err);
        pl_fcm_free(d->fcm);
        pl_apns_free(d->apns);
        pl_http_free(d->http);
        if (d->tick)
            event_free(d->tick);
        d->tick = NULL;
        d->fcm = NULL;
        d->apns = NULL;
        d->http = NULL;
        return d;
    }
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(d->tick, &tv);
    d->is_active = true;
    return d;
}

static void dispatch_stop(pl_worker_t *w, void *state, void *arg)
{
    (void)w;
    (void)arg;
    dispatcher_t *d = state;
    if (!d)
        return;
    if (d->is_active)
        log_figures(d, true);
    d->is_stopping = true;
    if (d->tick)
        event_free(d->tick);
    /* requests out end here, before the providers they point to (their
     * callbacks only free); their jobs' leases run out and the next sweep
     * sends them */
    pl_http_free(d->http);
    pl_fcm_free(d->fcm);
    pl_apns_free(d->apns);
    if (d->queries == 0)
        dispatcher_free(d);
}

int pl_push_dispatch_register(pl_push_service_t *svc)
{
    svc->module = pl_server_add_module(svc->app->server, dispatch_start, dispatch_stop, svc);
    return svc->module < 0 ? -1 : 0;
}

/* ---- one push on request (TestPush) ---- */

typedef struct handover {
    pl_push_service_t *svc;
    pl_worker_t *origin;
    pl_push_t push;
    char *token, *app_id;
    pl_push_done_fn fn;
    void *user;
    pl_push_result_t result;
} handover_t;

static void handover_free(handover_t *h)
{
    free(h->token);
    free(h->app_id);
    free(h);
}

static void back_on_origin(pl_worker_t *w, void *arg)
{
    (void)w;
    handover_t *h = arg;
    h->fn(&h->result, h->user);
    handover_free(h);
}

static void on_test_pushed(const pl_push_result_t *res, void *user)
{
    handover_t *h = user;
    h->result = *res;
    if (pl_worker_post(h->origin, back_on_origin, h) != 0) {
        pl_log_error("push: cannot hand a TestPush answer back to its worker");
        handover_free(h); /* the call ends with its deadline */
    }
}

static void on_worker0(pl_worker_t *w, void *arg)
{
    handover_t *h = arg;
    dispatcher_t *d = pl_worker_module(w, h->svc->module);
    if (!d || !d->is_active || d->is_stopping) {
        pl_push_answer_unsent(on_test_pushed, h, PL_PUSH_RETRY, "the push dispatcher is not running");
        return;
    }
    send_push(d, &h->push, on_test_pushed, h);
}

int pl_push_send_via_dispatcher(pl_push_service_t *svc, pl_worker_t *w, const pl_push_t *push, pl_push_done_fn fn,
                                void *user)
{
    handover_t *h = calloc(1, sizeof(*h));
    if (!h)
        return -1;
    *h = (handover_t){.svc = svc, .origin = w, .push = *push, .fn = fn, .user = user};
    h->token = strdup(push->token);
    h->app_id = strdup(push->app_id);
    h->push.token = h->token;
    h->push.app_id = h->app_id;
    h->push.preview = NULL;
    h->push.preview_len = 0;
    if (!h->token || !h->app_id || pl_worker_post(pl_server_worker(svc->app->server, 0), on_worker0, h) != 0) {
        handover_free(h);
        return -1;
    }
    return 0;
}
