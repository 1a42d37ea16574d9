/* repair.c — making good the chat lists that missed a membership change:
 * the change committed on the chat's shard, but its write to an account's
 * chat list (account_chats, on the account's shard) was lost, because the
 * process died between the two or the account's shard refused it past its
 * retries. ListChats finds only rows that are listed but stale; a row that
 * was never written is found here.
 *
 * Worker 0 of every node walks every chat shard's members (current and
 * past memberships) in primary-key order, REPAIR_BATCH rows per read, and
 * sorts what it read into one bucket per account shard; a bucket that is
 * full, and every bucket at the end of the pass, is written with the
 * handlers' own upsert (account_chats.c): applied only if newer, and a row
 * that is as new already is not even locked, so a pass over lists that are
 * in step writes nothing. Buckets keep the statements few: one per
 * REPAIR_BUCKET memberships, not one per account shard a read touches.
 *
 * One step (a read and the writes it filled) at a time, REPAIR_PAUSE_MS
 * apart. A pass over every shard starts every [limits]
 * chat_repair_interval_ms, the first one an interval after start; one that
 * takes longer is followed by the next at once. Nodes walk independently:
 * their passes overlapping is as harmless as two handlers' writes. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"
#include "runtime/clock.h"
#include "transport/worker.h"

#define REPAIR_BATCH 1000 /* memberships read per query */
#define REPAIR_BUCKET 128 /* memberships written per statement, at most */
#define REPAIR_PAUSE_MS 5 /* between two steps: the worker's calls share its connections */

/* Memberships read whose accounts are on one shard, not written yet. */
typedef struct bucket {
    pl_chats_listing_t *rows; /* grows to REPAIR_BUCKET */
    size_t n, cap;
} bucket_t;

typedef struct repair {
    pl_chats_t *svc;
    pl_worker_t *w;
    struct event *timer;
    int pending;      /* queries in flight */
    bool is_stopping; /* the worker is going: the last callback frees */
    bool is_in_pass;
    int shard;                         /* the chat shard being walked */
    int64_t after_chat, after_account; /* where its walk stopped */
    bucket_t *buckets;                 /* per account shard */
    /* the pass, for its log line */
    uint64_t pass;
    int64_t pass_start_usec, step_start_usec, query_usec;
    uint64_t scanned, written, failures, statements;
} repair_t;

static void repair_free(repair_t *r)
{
    if (r->buckets)
        for (int i = 0; i < r->svc->app->map.shards; i++)
            free(r->buckets[i].rows);
    free(r->buckets);
    free(r);
}

static void arm(repair_t *r, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    if (evtimer_add(r->timer, &tv) != 0)
        pl_log_error("chats repair: cannot arm the timer; chat lists are no longer repaired on this node");
}

static void failed(repair_t *r, const char *what, int shard, const char *why)
{
    /* a server that is down fails every shard it holds: say it once a pass */
    if (r->failures++ == 0)
        pl_log_warn("chats repair: %s on shard %d: %s (tried again next pass)", what, shard, why);
    else
        pl_log_debug("chats repair: %s on shard %d: %s", what, shard, why);
}

static void pass_done(repair_t *r)
{
    int64_t took_ms = (pl_now_usec() - r->pass_start_usec) / 1000;
    r->is_in_pass = false;
    pl_log(r->failures ? PL_LOG_WARN : PL_LOG_INFO,
           "chats repair: pass %llu: %llu memberships on %d shards in %lld ms (%lld ms querying, %llu statements); "
           "%llu chat list rows written, %llu failures",
           (unsigned long long)r->pass, (unsigned long long)r->scanned, r->svc->app->map.shards, (long long)took_ms,
           (long long)(r->query_usec / 1000), (unsigned long long)r->statements, (unsigned long long)r->written,
           (unsigned long long)r->failures);
    int64_t wait_ms = r->svc->app->cfg->chat_repair_interval_ms - took_ms;
    arm(r, wait_ms > REPAIR_PAUSE_MS ? wait_ms : REPAIR_PAUSE_MS);
}

/* Every query of a step has completed: the next step, or the pass is done
 * (the walk is past the last shard, and so are the last writes). */
static void step_done(repair_t *r)
{
    r->query_usec += pl_now_usec() - r->step_start_usec;
    if (r->shard == r->svc->app->map.shards)
        pass_done(r);
    else
        arm(r, REPAIR_PAUSE_MS);
}

/* Counts a callback in; false if the repair is stopping (freed when the
 * last one is in). */
static bool settle(repair_t *r)
{
    r->pending--;
    if (!r->is_stopping)
        return true;
    if (r->pending == 0)
        repair_free(r);
    return false;
}

typedef struct write {
    repair_t *r;
    int shard;
} write_t;

static void on_written(const pl_pg_result_t *res, void *user)
{
    write_t *wr = user;
    repair_t *r = wr->r;
    int shard = wr->shard;
    free(wr);
    if (!settle(r))
        return;
    if (res->code == PL_CODE_OK)
        r->written += (uint64_t)pl_pg_get_int64(res->res, 0, 0);
    else
        failed(r, "writing chat lists", shard, res->message);
    if (r->pending == 0)
        step_done(r);
}

/* Queues the write of an account shard's bucket and empties it. */
static void flush(repair_t *r, int shard)
{
    bucket_t *b = &r->buckets[shard];
    if (b->n == 0)
        return;
    qsort(b->rows, b->n, sizeof(*b->rows), pl_chats_listing_order); /* lock order */
    char *arr[CHATS_LISTING_COLUMNS];
    write_t *wr = malloc(sizeof(*wr));
    if (!wr || pl_chats_listing_arrays(b->rows, b->n, arr) != 0) {
        free(wr);
        failed(r, "writing chat lists", shard, "out of memory");
        b->n = 0;
        return;
    }
    *wr = (write_t){r, shard};
    pl_pg_param_t p[CHATS_LISTING_COLUMNS];
    for (int c = 0; c < CHATS_LISTING_COLUMNS; c++)
        p[c] = pl_pg_text(arr[c]);
    if (pl_store_exec(pl_app_store(r->svc->app, r->w), r->svc->stmt + ST_ACCOUNT_CHATS_PUT, shard, p,
                      CHATS_LISTING_COLUMNS, PL_PG_WRITE | PL_PG_IDEMPOTENT, 0, on_written, wr) == 0) {
        r->pending++;
        r->statements++;
    } else {
        free(wr);
        failed(r, "writing chat lists", shard, "not queued (queue full or out of memory)");
    }
    pl_chats_listing_arrays_free(arr);
    b->n = 0;
}

/* Puts one membership in its account shard's bucket, writing the bucket
 * when it is full. */
static void collect(repair_t *r, const pl_chats_listing_t *l)
{
    int shard = pl_id_shard(l->account_id);
    bucket_t *b = &r->buckets[shard];
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 16;
        pl_chats_listing_t *rows = realloc(b->rows, cap * sizeof(*rows));
        if (!rows) {
            failed(r, "collecting memberships", shard, "out of memory");
            return;
        }
        b->rows = rows;
        b->cap = cap;
    }
    b->rows[b->n++] = *l;
    if (b->n == REPAIR_BUCKET)
        flush(r, shard);
}

/* The walk of r->shard is over: on to the next one; past the last, what
 * the buckets still hold is written, and their memory goes until the next
 * pass. */
static void next_shard(repair_t *r)
{
    r->shard++;
    r->after_chat = r->after_account = 0;
    if (r->shard < r->svc->app->map.shards)
        return;
    for (int s = 0; s < r->svc->app->map.shards; s++) {
        flush(r, s);
        free(r->buckets[s].rows);
        r->buckets[s] = (bucket_t){0};
    }
}

static void on_scanned(const pl_pg_result_t *res, void *user)
{
    repair_t *r = user;
    if (!settle(r))
        return;
    if (res->code != PL_CODE_OK) {
        failed(r, "reading members", r->shard, res->message);
        next_shard(r); /* the rest of this one next pass */
    } else {
        int n = PQntuples(res->res);
        r->scanned += (uint64_t)n;
        for (int i = 0; i < n; i++) {
            pl_chats_listing_t l = {
                .chat_id = pl_pg_get_int64(res->res, i, 0),
                .account_id = pl_pg_get_int64(res->res, i, 1),
                .kind = (int)pl_pg_get_int64(res->res, i, 2),
                .peer = pl_pg_get_int64(res->res, i, 3),
                .joined = pl_pg_get_int64(res->res, i, 4),
                .removed = pl_pg_get_int64(res->res, i, 5),
            };
            /* what the change that made this membership wrote (change.c) */
            l.membership_seq = l.removed ? l.removed : l.joined;
            collect(r, &l);
            r->after_chat = l.chat_id;
            r->after_account = l.account_id;
        }
        if (n < REPAIR_BATCH)
            next_shard(r);
    }
    if (r->pending == 0)
        step_done(r);
}

static void scan(repair_t *r)
{
    uint8_t b[3][8];
    pl_pg_param_t p[3] = {pl_pg_int8(b[0], r->after_chat), pl_pg_int8(b[1], r->after_account),
                          pl_pg_int8(b[2], REPAIR_BATCH)};
    r->step_start_usec = pl_now_usec();
    if (pl_store_exec(pl_app_store(r->svc->app, r->w), r->svc->stmt + ST_REPAIR_SCAN, r->shard, p, 3, PL_PG_IDEMPOTENT,
                      0, on_scanned, r) == 0) {
        r->pending++;
        r->statements++;
        return;
    }
    failed(r, "reading members", r->shard, "not queued (queue full or out of memory)");
    arm(r, REPAIR_PAUSE_MS); /* the same read again */
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    repair_t *r = arg;
    if (r->pending > 0) /* cannot happen: the timer is armed when a step is done */
        return;
    if (!r->is_in_pass) {
        r->is_in_pass = true;
        r->pass++;
        r->pass_start_usec = pl_now_usec();
        r->query_usec = 0;
        r->scanned = r->written = r->failures = r->statements = 0;
        r->shard = 0;
        r->after_chat = r->after_account = 0;
    }
    scan(r);
}

static void *repair_start(pl_worker_t *w, void *arg)
{
    pl_chats_t *svc = arg;
    repair_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->svc = svc;
    r->w = w;
    int interval = svc->app->cfg->chat_repair_interval_ms;
    if (pl_worker_index(w) != 0 || interval == 0)
        return r; /* idle */
    r->buckets = calloc((size_t)svc->app->map.shards, sizeof(*r->buckets));
    r->timer = evtimer_new(pl_worker_base(w), on_timer, r);
    if (!r->buckets || !r->timer) {
        if (r->timer)
            event_free(r->timer);
        repair_free(r);
        return NULL;
    }
    arm(r, interval);
    return r;
}

static void repair_stop(pl_worker_t *w, void *state, void *arg)
{
    (void)w;
    (void)arg;
    repair_t *r = state;
    if (r->timer)
        event_free(r->timer);
    r->timer = NULL;
    r->is_stopping = true;
    /* queries in flight are cancelled when the store stops, after this */
    if (r->pending == 0)
        repair_free(r);
}

int pl_chats_repair_register(pl_chats_t *s)
{
    s->module = pl_server_add_module(s->app->server, repair_start, repair_stop, s);
    return s->module < 0 ? -1 : 0;
}
