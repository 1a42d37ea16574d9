/* group_commit — durable inserts per second through Parley's PostgreSQL
 * layer: naive (every row its own commit) against group commit (rows that
 * arrive while a commit is in flight share the next one). Closed loop: each
 * configuration keeps a fixed number of inserts outstanding for a fixed
 * time. Run by tools/bench-store against a private, durable PostgreSQL
 * (synchronous_commit=on, fsync=on).
 *
 *   group_commit CONNINFO [SECONDS]
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "store/pg.h"

enum { S_SCHEMA, S_TABLE, S_TRUNCATE, S_INSERT };
static const pl_pg_stmt_t statements[] = {
    {"schema", "CREATE SCHEMA IF NOT EXISTS {s}", false},
    {"table", "CREATE TABLE IF NOT EXISTS {s}.bench (id bigint PRIMARY KEY, chat bigint, v bytea)", false},
    {"truncate", "TRUNCATE {s}.bench", false},
    {"insert", "INSERT INTO {s}.bench (id, chat, v) VALUES ($1::bigint, $2::bigint, $3::bytea)", false},
};
#define NSTMTS (sizeof(statements) / sizeof(statements[0]))

#define MAX_SAMPLES (1 << 22)

typedef struct run {
    struct event_base *base;
    pl_pg_t *pg;
    unsigned flags;
    int64_t next_id;
    int64_t end;
    int outstanding;
    long done, failed;
    int64_t *lat; /* microseconds per insert */
    long nlat;
} run_t;

typedef struct slot {
    run_t *run;
    int64_t started;
} slot_t;

static void issue(run_t *r, slot_t *s);

static void on_insert(const pl_pg_result_t *res, void *user)
{
    slot_t *s = user;
    run_t *r = s->run;
    r->outstanding--;
    if (res->code == PL_CODE_OK) {
        r->done++;
        if (r->nlat < MAX_SAMPLES)
            r->lat[r->nlat++] = pl_now_usec() - s->started;
    } else {
        r->failed++;
        if (r->failed == 1)
            fprintf(stderr, "group_commit: insert failed: %s\n", res->message);
    }
    if (pl_now_usec() < r->end)
        issue(r, s);
}

static void issue(run_t *r, slot_t *s)
{
    uint8_t id[8], chat[8];
    static const char payload[64] = "ciphertext-sized payload: 64 bytes, like a short message........";
    int64_t n = r->next_id++;
    pl_pg_param_t p[3] = {pl_pg_int8(id, n), pl_pg_int8(chat, n % 1000), pl_pg_bytes(payload, sizeof(payload))};
    s->started = pl_now_usec();
    if (pl_pg_exec(r->pg, S_INSERT, 0, p, 3, r->flags, 0, on_insert, s) == 0)
        r->outstanding++;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_setup(const pl_pg_result_t *res, void *user)
{
    if (res->code != PL_CODE_OK) {
        fprintf(stderr, "group_commit: setup failed: %s\n", res->message);
        exit(1);
    }
    (*(int *)user)--;
}

static void setup(struct event_base *base, const char *conninfo)
{
    pl_pg_opts_t o = {.conninfo = conninfo, .label = "bench"};
    pl_pg_t *pg = pl_pg_new(base, &o, statements, NSTMTS);
    int pending = 0;
    for (int s = S_SCHEMA; s <= S_TRUNCATE; s++) {
        pending++;
        pl_pg_exec(pg, s, 0, NULL, 0, 0, 0, on_setup, &pending);
        while (pending)
            event_base_loop(base, EVLOOP_ONCE);
    }
    pl_pg_free(pg);
}

static void measure(struct event_base *base, const char *conninfo, const char *mode, bool batched, int conns,
                    int inflight, int seconds, int64_t *lat)
{
    pl_pg_opts_t o = {.conninfo = conninfo,
                      .label = "bench",
                      .connections = conns,
                      .batch_max = 1024,
                      .queue_max = 1 << 20,
                      .op_timeout_ms = 60000};
    run_t r = {.base = base, .flags = batched ? PL_PG_WRITE : 0, .lat = lat};
    r.pg = pl_pg_new(base, &o, statements, NSTMTS);
    static int64_t next_id = 1;
    /* let the connections come up before the clock starts */
    int64_t wait_end = pl_now_usec() + 5000000;
    while (pl_now_usec() < wait_end) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (pl_pg_is_up(r.pg))
            break;
    }
    slot_t *slots = calloc((size_t)inflight, sizeof(slot_t));
    r.next_id = next_id;
    int64_t start = pl_now_usec();
    r.end = start + (int64_t)seconds * 1000000;
    for (int i = 0; i < inflight; i++) {
        slots[i].run = &r;
        issue(&r, &slots[i]);
    }
    while (r.outstanding > 0)
        event_base_loop(base, EVLOOP_ONCE);
    double elapsed = (double)(pl_now_usec() - start) / 1e6;
    next_id = r.next_id;
    pl_pg_stats_t st;
    pl_pg_stats(r.pg, &st);
    qsort(lat, (size_t)r.nlat, sizeof(int64_t), cmp64);
    double p50 = r.nlat ? (double)lat[r.nlat / 2] / 1000 : 0;
    double p99 = r.nlat ? (double)lat[r.nlat * 99 / 100] / 1000 : 0;
    double per_commit = batched && st.batches ? (double)st.batched_writes / (double)st.batches : 1.0;
    printf("%-34s %5d %9d %11.0f %9.1f %8.2f %8.2f %7ld\n", mode, conns, inflight, (double)r.done / elapsed, per_commit,
           p50, p99, r.failed);
    fflush(stdout);
    pl_pg_free(r.pg);
    free(slots);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(stderr, "usage: group_commit CONNINFO [SECONDS]\n");
        return 2;
    }
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    if (seconds < 1)
        seconds = 1;
    struct event_base *base = event_base_new();
    int64_t *lat = malloc(sizeof(int64_t) * MAX_SAMPLES);
    if (!base || !lat)
        return 1;
    setup(base, argv[1]);
    printf("%-34s %5s %9s %11s %9s %8s %8s %7s\n", "mode", "conns", "in-flight", "rows/s", "rows/txn", "p50 ms",
           "p99 ms", "errors");
    measure(base, argv[1], "naive: one commit per row", false, 1, 1, seconds, lat);
    measure(base, argv[1], "naive: one commit per row", false, 1, 64, seconds, lat);
    measure(base, argv[1], "naive: one commit per row", false, 32, 64, seconds, lat);
    measure(base, argv[1], "batched: group commit", true, 1, 64, seconds, lat);
    measure(base, argv[1], "batched: group commit", true, 1, 1024, seconds, lat);
    measure(base, argv[1], "batched: group commit", true, 2, 4096, seconds, lat);
    free(lat);
    event_base_free(base);
    return 0;
}
