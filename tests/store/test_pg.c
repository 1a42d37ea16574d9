/* test_pg.c — the asynchronous PostgreSQL layer against real servers
 * (run under tests/harness/with_stack.sh): routing, results, errors, group
 * commit, timeouts, deadlines, server restarts and outages. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runtime/clock.h"
#include "store/store.h"

enum { S_SCHEMA, S_TABLE, S_INSERT, S_SELECT, S_COUNT, S_SLEEP, S_BAD, S_PORT, S_TRUNCATE };
static const pl_pg_stmt_t statements[] = {
    {"schema", "CREATE SCHEMA IF NOT EXISTS {s}", false},
    {"table", "CREATE TABLE IF NOT EXISTS {s}.t (id bigint PRIMARY KEY, v bytea)", false},
    {"insert", "INSERT INTO {s}.t (id, v) VALUES ($1::bigint, $2::bytea)", false},
    {"select", "SELECT id, v, $1::bigint > 0 FROM {s}.t WHERE id = $1::bigint", true},
    {"count", "SELECT count(*) FROM {s}.t", false},
    {"sleep", "SELECT pg_sleep($1::float8)", false},
    {"bad", "SELEC 1", false},
    {"port", "SELECT current_setting('port')::int", false},
    {"truncate", "TRUNCATE {s}.t", false},
};

static struct event_base *base;
static pl_shardmap_t map;
static char *servers[8];
static int server_ports[8];
static pl_stmt_table_t table;

/* ---- driving the loop ---- */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (*(long *)arg)++;
}

static long ticks;

/* Runs the loop until *pending reaches 0 or timeout_ms passes. */
static bool run_until_done(int *pending, int timeout_ms)
{
    int64_t end = pl_now_usec() + (int64_t)timeout_ms * 1000;
    while (*pending > 0 && pl_now_usec() < end)
        event_base_loop(base, EVLOOP_ONCE);
    return *pending == 0;
}

static void run_for(int ms)
{
    int64_t end = pl_now_usec() + (int64_t)ms * 1000;
    while (pl_now_usec() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

/* ---- a result collector ---- */

typedef struct outcome {
    int *pending;
    pl_code_t code;
    char sqlstate[6];
    int64_t value;
    uint8_t bytes[64];
    size_t nbytes;
    int64_t done_at;
    bool called;
    int calls;
} outcome_t;

static void on_done(const pl_pg_result_t *r, void *user)
{
    outcome_t *o = user;
    o->calls++;
    o->called = true;
    o->code = r->code;
    o->done_at = pl_now_usec();
    snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", r->sqlstate);
    if (r->code == PL_CODE_OK && PQntuples(r->res) > 0) {
        o->value = pl_pg_get_int64(r->res, 0, 0);
        if (PQnfields(r->res) > 1) {
            size_t n;
            const uint8_t *b = pl_pg_get_bytes(r->res, 0, 1, &n);
            o->nbytes = n < sizeof(o->bytes) ? n : sizeof(o->bytes);
            memcpy(o->bytes, b, o->nbytes);
        }
    }
    (*o->pending)--;
}

static int exec(pl_store_t *st, int stmt, int shard, const pl_pg_param_t *p, int n, unsigned flags, int64_t deadline,
                outcome_t *o, int *pending)
{
    memset(o, 0, sizeof(*o));
    o->pending = pending;
    int rc = pl_store_exec(st, stmt, shard, p, n, flags, deadline, on_done, o);
    if (rc == 0)
        (*pending)++;
    return rc;
}

static pl_store_t *new_store(int statement_timeout_ms, int batch_max)
{
    pl_pg_opts_t opts = {.statement_timeout_ms = statement_timeout_ms, .batch_max = batch_max, .op_timeout_ms = 10000};
    return pl_store_new(base, &map, servers, &opts, &table);
}

static void stack(const char *what)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/tools/stack %s --dir %s", PARLEY_SOURCE_DIR, what, getenv("PARLEY_STACK_DIR"));
    if (system(cmd) != 0)
        fprintf(stderr, "'%s' failed\n", cmd);
}

/* ---- the cases ---- */

static void test_schema_and_routing(pl_store_t *st)
{
    int pending = 0;
    outcome_t o[64];
    for (int s = 0; s < map.shards; s++)
        exec(st, S_SCHEMA, s, NULL, 0, 0, 0, &o[s], &pending);
    CHECK(run_until_done(&pending, 10000));
    for (int s = 0; s < map.shards; s++)
        exec(st, S_TABLE, s, NULL, 0, 0, 0, &o[s], &pending);
    CHECK(run_until_done(&pending, 10000));
    for (int s = 0; s < map.shards; s++)
        CHECK_EQ_INT(o[s].code, PL_CODE_OK);
    /* each shard's statements reach the server the map names */
    for (int s = 0; s < map.shards; s++)
        exec(st, S_PORT, s, NULL, 0, PL_PG_IDEMPOTENT, 0, &o[s], &pending);
    CHECK(run_until_done(&pending, 10000));
    for (int s = 0; s < map.shards; s++)
        CHECK_EQ_INT(o[s].value, server_ports[pl_shardmap_server(&map, s)]);
    CHECK(pl_store_is_up(st));
}

static void test_values_and_errors(pl_store_t *st)
{
    int pending = 0;
    outcome_t ins, sel, dup, bad, miss;
    uint8_t k[8], k2[8];
    static const uint8_t blob[] = {0, 1, 2, 0xff, 0, 'x'};
    int shard = map.shards - 1;
    pl_pg_param_t p[2] = {pl_pg_int8(k, 42), pl_pg_bytes(blob, sizeof(blob))};
    exec(st, S_INSERT, shard, p, 2, PL_PG_WRITE, 0, &ins, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(ins.code, PL_CODE_OK);
    exec(st, S_SELECT, shard, p, 1, PL_PG_IDEMPOTENT, 0, &sel, &pending);
    exec(st, S_INSERT, shard, p, 2, PL_PG_WRITE, 0, &dup, &pending);
    exec(st, S_BAD, shard, NULL, 0, 0, 0, &bad, &pending);
    pl_pg_param_t q = pl_pg_int8(k2, -7);
    exec(st, S_SELECT, shard, &q, 1, 0, 0, &miss, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(sel.code, PL_CODE_OK);
    CHECK_EQ_INT(sel.value, 42);
    CHECK_EQ_MEM(sel.bytes, sel.nbytes, blob, sizeof(blob));
    CHECK_EQ_INT(dup.code, PL_CODE_INTERNAL);
    CHECK_EQ_STR(dup.sqlstate, "23505");
    CHECK_EQ_INT(bad.code, PL_CODE_INTERNAL);
    CHECK_EQ_STR(bad.sqlstate, "42601");
    CHECK_EQ_INT(miss.code, PL_CODE_OK);
    CHECK_EQ_INT(miss.value, 0);
    CHECK(pl_store_exec(st, S_SELECT, map.shards, &q, 1, 0, 0, on_done, &miss) != 0); /* no such shard */
}

/* Many writes in one loop turn share transactions; a bad one among them
 * fails alone. */
static void test_group_commit(pl_store_t *st)
{
    enum { N = 2000 };
    static outcome_t o[N];
    int pending = 0;
    int shard = 0;
    outcome_t t;
    exec(st, S_TRUNCATE, shard, NULL, 0, 0, 0, &t, &pending);
    CHECK(run_until_done(&pending, 5000));
    pl_pg_stats_t before;
    pl_pg_stats(pl_store_server(st, 0), &before);
    uint8_t k[8];
    for (int i = 0; i < N; i++) {
        /* row 777 twice: the second must fail, nothing else */
        int64_t id = i == N - 1 ? 777 : i;
        pl_pg_param_t p[2] = {pl_pg_int8(k, id), pl_pg_bytes("v", 1)};
        CHECK_EQ_INT(exec(st, S_INSERT, shard, p, 2, PL_PG_WRITE, 0, &o[i], &pending), 0);
    }
    CHECK(run_until_done(&pending, 30000));
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += o[i].code == PL_CODE_OK;
    CHECK_EQ_INT(ok, N - 1);
    CHECK_EQ_STR(o[N - 1].sqlstate, "23505");
    outcome_t c;
    exec(st, S_COUNT, shard, NULL, 0, 0, 0, &c, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(c.value, N - 1);
    pl_pg_stats_t after;
    pl_pg_stats(pl_store_server(st, 0), &after);
    uint64_t batches = after.batches - before.batches, writes = after.batched_writes - before.batched_writes;
    fprintf(stderr, "group commit: %llu writes in %llu transactions\n", (unsigned long long)writes,
            (unsigned long long)batches);
    CHECK(batches > 0 && batches * 10 < (uint64_t)N); /* at least 10 writes per commit on average */
    CHECK(writes >= N - 1);
}

/* A batch that fails early while later writes still need their statements
 * prepared (first use on their shards): the aborted Parses must not leave
 * the connection's results out of step with its requests. */
static void test_failed_batch_with_parses(pl_store_t *st)
{
    enum { N = 40 };
    static outcome_t o[N];
    int pending = 0;
    uint8_t k[8];
    /* a duplicate key first, on server 0's shard 0 (row 5 exists from the group commit test) */
    pl_pg_param_t dup[2] = {pl_pg_int8(k, 5), pl_pg_bytes("d", 1)};
    exec(st, S_INSERT, 0, dup, 2, PL_PG_WRITE, 0, &o[0], &pending);
    /* then inserts on shards of server 0 never written before through this store */
    int shards_on_0 = 0;
    for (int s = 1; s < map.shards && pl_shardmap_server(&map, s) == 0; s++)
        shards_on_0++;
    for (int i = 1; i < N; i++) {
        int shard = 1 + (i % (shards_on_0 ? shards_on_0 : 1));
        pl_pg_param_t p[2] = {pl_pg_int8(k, 1000000 + i), pl_pg_bytes("v", 1)};
        exec(st, S_INSERT, shards_on_0 ? shard : 0, p, 2, PL_PG_WRITE, 0, &o[i], &pending);
    }
    CHECK(run_until_done(&pending, 10000));
    CHECK_EQ_STR(o[0].sqlstate, "23505");
    for (int i = 1; i < N; i++)
        CHECK_EQ_INT(o[i].code, PL_CODE_OK);
    /* and the connection still answers each query with its own result */
    outcome_t port[16], sel[16];
    for (int i = 0; i < 16; i++) {
        uint8_t id[8];
        pl_pg_param_t q = pl_pg_int8(id, 1000000 + 1 + i);
        exec(st, S_PORT, 0, NULL, 0, 0, 0, &port[i], &pending);
        exec(st, S_SELECT, shards_on_0 ? 1 + ((1 + i) % shards_on_0) : 0, &q, 1, 0, 0, &sel[i], &pending);
    }
    CHECK(run_until_done(&pending, 10000));
    for (int i = 0; i < 16; i++) {
        CHECK_EQ_INT(port[i].value, server_ports[0]);
        CHECK_EQ_INT(sel[i].value, 1000000 + 1 + i);
    }
}

static void test_statement_timeout(void)
{
    pl_store_t *st = new_store(300, 0);
    int pending = 0;
    outcome_t o;
    int64_t t0 = pl_now_usec();
    pl_pg_param_t p = pl_pg_text("2");
    exec(st, S_SLEEP, 0, &p, 1, 0, 0, &o, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(o.code, PL_CODE_DEADLINE_EXCEEDED);
    CHECK_EQ_STR(o.sqlstate, "57014");
    CHECK((o.done_at - t0) < 1500000);
    pl_store_free(st);
}

static void test_op_deadline_in_flight(pl_store_t *st)
{
    int pending = 0;
    outcome_t slow, after;
    int64_t t0 = pl_now_usec();
    pl_pg_param_t p = pl_pg_text("1.5");
    exec(st, S_SLEEP, 0, &p, 1, 0, t0 + 400000, &slow, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(slow.code, PL_CODE_DEADLINE_EXCEEDED);
    CHECK((slow.done_at - t0) < 900000);
    /* the late result is dropped; the connection goes on */
    exec(st, S_PORT, 0, NULL, 0, 0, 0, &after, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(after.code, PL_CODE_OK);
    CHECK_EQ_INT(slow.calls, 1);
}

/* Server 0 restarts (immediate stop, as in a crash) under a stream of
 * idempotent reads: they all succeed, the loop never stalls. */
static void test_restart_under_load(pl_store_t *st)
{
    enum { N = 400 };
    static outcome_t o[N];
    int pending = 0;
    pl_pg_stats_t before;
    pl_pg_stats(pl_store_server(st, 0), &before);
    long ticks_before = ticks;
    int64_t t0 = pl_now_usec();
    for (int i = 0; i < N; i++) {
        exec(st, S_PORT, 0, NULL, 0, PL_PG_IDEMPOTENT, pl_now_usec() + 15000000, &o[i], &pending);
        if (i == N / 4)
            stack("pg-stop 0 --mode immediate");
        if (i == N / 2)
            stack("pg-start 0");
        run_for(5);
    }
    CHECK(run_until_done(&pending, 20000));
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += o[i].code == PL_CODE_OK;
    CHECK_EQ_INT(ok, N);
    pl_pg_stats_t after;
    pl_pg_stats(pl_store_server(st, 0), &after);
    CHECK(after.reconnects > before.reconnects);
    /* the 10 ms tick kept running: nothing blocked the loop */
    long elapsed_ms = (long)((pl_now_usec() - t0) / 1000);
    fprintf(stderr, "restart: %d/%d ok, %llu retries, %ld ticks in %ld ms\n", ok, N,
            (unsigned long long)(after.retries - before.retries), ticks - ticks_before, elapsed_ms);
    CHECK(ticks - ticks_before >= elapsed_ms / 10 / 3);
}

/* Server 1 down: its shards fail with UNAVAILABLE at their deadline while
 * server 0's shards keep working; after it is back, so is everything. */
static void test_outage(pl_store_t *st)
{
    int pending = 0;
    outcome_t down, up, back;
    int shard_on_1 = map.shards - 1;
    stack("pg-stop 1 --mode fast");
    int64_t t0 = pl_now_usec();
    exec(st, S_PORT, shard_on_1, NULL, 0, PL_PG_IDEMPOTENT, t0 + 700000, &down, &pending);
    exec(st, S_PORT, 0, NULL, 0, PL_PG_IDEMPOTENT, 0, &up, &pending);
    CHECK(run_until_done(&pending, 5000));
    CHECK_EQ_INT(down.code, PL_CODE_UNAVAILABLE);
    CHECK(down.done_at - t0 < 1500000);
    CHECK_EQ_INT(up.code, PL_CODE_OK);
    CHECK(!pl_store_is_up(st));
    stack("pg-start 1");
    exec(st, S_PORT, shard_on_1, NULL, 0, PL_PG_IDEMPOTENT, pl_now_usec() + 10000000, &back, &pending);
    CHECK(run_until_done(&pending, 12000));
    CHECK_EQ_INT(back.code, PL_CODE_OK);
    CHECK_EQ_INT(back.value, server_ports[1]);
}

static void test_free_cancels(void)
{
    pl_store_t *st = new_store(5000, 0);
    int pending = 0;
    outcome_t o[10];
    pl_pg_param_t p = pl_pg_text("5");
    for (int i = 0; i < 10; i++)
        exec(st, S_SLEEP, i % map.shards, &p, 1, i % 2 ? PL_PG_WRITE : 0, 0, &o[i], &pending);
    run_for(200);
    pl_store_free(st);
    CHECK_EQ_INT(pending, 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(o[i].code, PL_CODE_CANCELLED);
}

static int parse_servers(void)
{
    const char *env = getenv("PARLEY_POSTGRES_SERVER");
    const char *shards = getenv("PARLEY_POSTGRES_SHARDS");
    if (!env || !shards) {
        fprintf(stderr, "test_pg: run under tests/harness/with_stack.sh\n");
        return -1;
    }
    char *copy = strdup(env), *save = NULL;
    int n = 0;
    for (char *s = strtok_r(copy, ";", &save); s && n < 8; s = strtok_r(NULL, ";", &save)) {
        servers[n] = strdup(s);
        const char *port = strstr(s, "port=");
        server_ports[n++] = port ? atoi(port + 5) : 0;
    }
    free(copy);
    char err[200];
    if (pl_shardmap_init(&map, atoi(shards), n, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_pg: %s\n", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    if (parse_servers() != 0)
        return 2;
    base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &ticks);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    pl_stmt_table_add(&table, statements, sizeof(statements) / sizeof(statements[0]));

    pl_store_t *st = new_store(5000, 0);
    test_schema_and_routing(st);
    test_values_and_errors(st);
    test_group_commit(st);
    test_failed_batch_with_parses(st);
    test_statement_timeout();
    test_op_deadline_in_flight(st);
    test_restart_under_load(st);
    test_outage(st);
    pl_store_free(st);
    test_free_cancels();

    event_free(tick);
    event_base_free(base);
    pl_stmt_table_dispose(&table);
    pl_shardmap_dispose(&map);
    for (int i = 0; i < 8; i++)
        free(servers[i]);
    return pl_test_report();
}
