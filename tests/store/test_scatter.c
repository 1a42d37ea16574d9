/* test_scatter.c — pl_store_scatter against real servers (run under
 * tests/harness/with_stack.sh): keys grouped by shard and routed to it, any
 * number of keys on one shard, string keys quoted, parameters around the
 * array, and one completion however the shards answer: a failing shard, a
 * shard that cannot be queued, a store going down. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/clock.h"
#include "runtime/errors.h"
#include "store/ids.h"
#include "store/scatter.h"

enum { S_ECHO, S_ECHO_AROUND, S_TEXTS, S_FAIL_ONE, S_SLEEP, S_ORDER };
static const pl_pg_stmt_t statements[] = {
    {"echo", "SELECT x, '{s}' FROM unnest($1::bigint[]) x", false},
    {"echo_around", "SELECT x + $1::bigint, $3::int FROM unnest($2::bigint[]) x", false},
    {"texts", "SELECT k, '{s}' FROM unnest($1::text[]) k", false},
    /* division by zero on shard 3 only, at run time (x is not a constant) */
    {"fail_one",
     "SELECT x FROM unnest($1::bigint[]) x WHERE 1 / (x - x + CASE '{s}' WHEN 'shard_0003' THEN 0 ELSE 1 END) = 1",
     false},
    {"sleep", "SELECT pg_sleep(5), x FROM unnest($1::bigint[]) x", false},
    {"order", "SELECT x, '{s}', o FROM unnest($1::bigint[]) WITH ORDINALITY AS u(x, o)", false},
};

static struct event_base *base;
static pl_shardmap_t map;
static char *servers[8];
static pl_stmt_table_t table;
static pl_idgen_t idgen;

#define MAX_ROWS 1024

/* What a scatter delivered. */
typedef struct gathered {
    int rows_calls;      /* calls with a shard's rows */
    int rows_after_done; /* rows after the end: must stay 0 */
    int done_calls;      /* calls that end the scatter (res NULL) */
    pl_code_t code;
    char sqlstate[6];
    size_t nrows;
    int64_t value[MAX_ROWS];
    char text[MAX_ROWS][48];
    char schema[MAX_ROWS][PL_SHARD_SCHEMA_LEN];
    int64_t third[MAX_ROWS]; /* a third column, if any */
} gathered_t;

static void on_result(const pl_pg_result_t *r, void *user)
{
    gathered_t *g = user;
    if (!r->res) { /* the end */
        g->done_calls++;
        g->code = r->code;
        snprintf(g->sqlstate, sizeof(g->sqlstate), "%s", r->sqlstate);
        return;
    }
    const PGresult *res = r->res;
    g->rows_calls++;
    if (g->done_calls)
        g->rows_after_done++;
    for (int i = 0; i < PQntuples(res) && g->nrows < MAX_ROWS; i++, g->nrows++) {
        g->value[g->nrows] = pl_pg_get_int64(res, i, 0);
        snprintf(g->text[g->nrows], sizeof(g->text[0]), "%s", PQgetvalue(res, i, 0));
        snprintf(g->schema[g->nrows], sizeof(g->schema[0]), "%s", PQgetvalue(res, i, 1));
        g->third[g->nrows] = PQnfields(res) > 2 ? pl_pg_get_int64(res, i, 2) : 0;
    }
}

/* A 10 ms tick, so that the loop wakes to look at the clock. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void run_until_done(gathered_t *g, int timeout_ms)
{
    int64_t end = pl_now_usec() + (int64_t)timeout_ms * 1000;
    while (!g->done_calls && pl_now_usec() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static void run_for(int ms)
{
    int64_t end = pl_now_usec() + (int64_t)ms * 1000;
    while (pl_now_usec() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static pl_store_t *new_store(int queue_max)
{
    pl_pg_opts_t opts = {.statement_timeout_ms = 10000, .op_timeout_ms = 10000, .queue_max = queue_max};
    return pl_store_new(base, &map, servers, &opts, &table);
}

/* n ids on shard, appended to ids at *count. */
static void add_ids(int64_t *ids, size_t *count, int shard, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ids[(*count)++] = pl_id_new(&idgen, shard);
}

static bool has_value(const gathered_t *g, int64_t v, const char **schema)
{
    for (size_t i = 0; i < g->nrows; i++)
        if (g->value[i] == v) {
            *schema = g->schema[i];
            return true;
        }
    return false;
}

static void test_many_ids_on_one_shard(pl_store_t *st)
{
    /* 200 ids on one shard (far past the 64 a fixed buffer once held) and a
     * few on three others, interleaved */
    int64_t ids[300];
    size_t n = 0;
    int crowded = 5 % map.shards, others[3] = {0, 9 % map.shards, map.shards - 1};
    add_ids(ids, &n, others[0], 3);
    add_ids(ids, &n, crowded, 100);
    add_ids(ids, &n, others[1], 3);
    add_ids(ids, &n, crowded, 100);
    add_ids(ids, &n, others[2], 3);
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_ECHO, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    CHECK_EQ_INT(g.done_calls, 0); /* never from inside the call */
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.done_calls, 1);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.rows_calls, 4); /* one query per shard */
    CHECK_EQ_INT(g.nrows, n);
    for (size_t i = 0; i < n; i++) {
        const char *schema = NULL;
        char want[PL_SHARD_SCHEMA_LEN];
        pl_shard_schema(pl_id_shard(ids[i]), want);
        CHECK(has_value(&g, ids[i], &schema));
        if (schema)
            CHECK_EQ_STR(schema, want);
    }
    run_for(100);
    CHECK_EQ_INT(g.done_calls, 1);
}

/* Within a shard the keys go in the order given, repeats included. */
static void test_order_as_given(pl_store_t *st)
{
    int64_t ids[40];
    for (int i = 0; i < 40; i++)
        ids[i] = pl_id_new(&idgen, i % 5 * 3 % map.shards); /* shards 0,3,6,9,12 */
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_ORDER, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = 40};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.rows_calls, 5);
    CHECK_EQ_INT(g.nrows, 40);
    for (size_t k = 0; k < g.nrows; k++) {
        /* the o-th key of its shard is ids[(o - 1) * 5 + the shard's first index] */
        int first = 0;
        while (first < 5 && pl_id_shard(ids[first]) != pl_id_shard(g.value[k]))
            first++;
        CHECK(first < 5);
        if (first < 5)
            CHECK_EQ_INT(g.value[k], ids[(g.third[k] - 1) * 5 + first]);
    }
    const char *phones[] = {"+15551234567", "+447700900123", "+15551234567"};
    memset(&g, 0, sizeof(g));
    pl_scatter_t texts = {.stmt = S_TEXTS, .flags = PL_PG_IDEMPOTENT, .texts = phones, .n = 3};
    CHECK_EQ_INT(pl_store_scatter(st, &texts, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.nrows, 3);
}

static void test_params_around_the_array(pl_store_t *st)
{
    int64_t ids[4];
    size_t n = 0;
    add_ids(ids, &n, 1, 2);
    add_ids(ids, &n, 2, 2);
    uint8_t plus[8];
    pl_pg_param_t p[2] = {pl_pg_int8(plus, 1000), pl_pg_text("7")};
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {
        .stmt = S_ECHO_AROUND, .params = p, .nparams = 2, .array_at = 1, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.nrows, 4);
    for (size_t i = 0; i < n; i++) {
        const char *second = NULL;
        CHECK(has_value(&g, ids[i] + 1000, &second));
        if (second)
            CHECK_EQ_STR(second, "7");
    }
}

static void test_text_keys(pl_store_t *st)
{
    static char phones[100][20];
    const char *keys[106] = {"quote\"d", "back\\slash", "com,ma", "{braces}", "NULL", ""};
    size_t n = 6;
    for (int i = 0; i < 100; i++, n++) {
        snprintf(phones[i], sizeof(phones[i]), "+1555000%04d", i);
        keys[n] = phones[i];
    }
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_TEXTS, .flags = PL_PG_IDEMPOTENT, .texts = keys, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.nrows, n);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < g.nrows && strcmp(g.text[k], keys[i]) != 0)
            k++;
        CHECK(k < g.nrows);
        if (k == g.nrows)
            continue;
        char want[PL_SHARD_SCHEMA_LEN];
        pl_shard_schema(pl_shard_for_key(keys[i], strlen(keys[i]), map.shards), want);
        CHECK_EQ_STR(g.schema[k], want);
    }
}

static void test_failing_shard(pl_store_t *st)
{
    int64_t ids[200];
    size_t n = 0;
    for (int s = 0; s < map.shards && s < 8; s++)
        add_ids(ids, &n, s, s == 3 ? 80 : 5);
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_FAIL_ONE, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    /* the other shards' answers come and go without a word */
    run_for(500);
    CHECK_EQ_INT(g.done_calls, 1);
    CHECK(g.code != PL_CODE_OK);
    CHECK_EQ_STR(g.sqlstate, "22012");
    CHECK_EQ_INT(g.rows_after_done, 0);
    /* the store is fine afterwards */
    memset(&g, 0, sizeof(g));
    pl_scatter_t ok = {.stmt = S_ECHO, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &ok, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    CHECK_EQ_INT(g.code, PL_CODE_OK);
    CHECK_EQ_INT(g.nrows, n);
}

static void test_refused(pl_store_t *st)
{
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    int64_t ids[2] = {pl_id_new(&idgen, 0), 0};
    pl_scatter_t none = {.stmt = S_ECHO, .ids = ids, .n = 0};
    CHECK_EQ_INT(pl_store_scatter(st, &none, 0, on_result, &g), PL_ERR_INVALID);
    pl_pg_param_t p[PL_SCATTER_MAX_PARAMS] = {0};
    pl_scatter_t crowded = {.stmt = S_ECHO, .params = p, .nparams = PL_SCATTER_MAX_PARAMS, .ids = ids, .n = 1};
    CHECK_EQ_INT(pl_store_scatter(st, &crowded, 0, on_result, &g), PL_ERR_INVALID);
    if (map.shards < PL_ID_MAX_SHARDS) {
        ids[1] = pl_id_new(&idgen, map.shards); /* a shard this cluster does not have */
        pl_scatter_t stray = {.stmt = S_ECHO, .ids = ids, .n = 2};
        CHECK_EQ_INT(pl_store_scatter(st, &stray, 0, on_result, &g), PL_ERR_INVALID);
    }
    run_for(100);
    CHECK_EQ_INT(g.done_calls, 0);
}

/* A shard that cannot be queued after others were fails the whole, once. */
static void test_queue_full_midway(void)
{
    pl_store_t *st = new_store(2); /* two operations per server */
    int64_t ids[3];
    size_t n = 0;
    for (int s = 0; s < map.shards && n < 3; s++)
        if (pl_shardmap_server(&map, s) == 0)
            add_ids(ids, &n, s, 1);
    CHECK_EQ_INT(n, 3);
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_ECHO, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_until_done(&g, 10000);
    run_for(200);
    CHECK_EQ_INT(g.done_calls, 1);
    CHECK_EQ_INT(g.code, PL_CODE_UNAVAILABLE);
    CHECK_EQ_INT(g.rows_calls, 0);
    pl_store_free(st);
}

/* The store going down ends a scatter once, with CANCELLED. */
static void test_free_cancels(void)
{
    pl_store_t *st = new_store(0);
    int64_t ids[8];
    size_t n = 0;
    for (int s = 0; s < map.shards && n < 8; s += 2)
        add_ids(ids, &n, s, 1);
    static gathered_t g;
    memset(&g, 0, sizeof(g));
    pl_scatter_t sc = {.stmt = S_SLEEP, .flags = PL_PG_IDEMPOTENT, .ids = ids, .n = n};
    CHECK_EQ_INT(pl_store_scatter(st, &sc, 0, on_result, &g), 0);
    run_for(300);
    CHECK_EQ_INT(g.done_calls, 0);
    pl_store_free(st);
    CHECK_EQ_INT(g.done_calls, 1);
    CHECK_EQ_INT(g.code, PL_CODE_CANCELLED);
}

static int parse_servers(void)
{
    const char *env = getenv("PARLEY_POSTGRES_SERVER");
    const char *shards = getenv("PARLEY_POSTGRES_SHARDS");
    if (!env || !shards) {
        fprintf(stderr, "test_scatter: run under tests/harness/with_stack.sh\n");
        return -1;
    }
    char *copy = strdup(env), *save = NULL;
    int n = 0;
    for (char *s = strtok_r(copy, ";", &save); s && n < 8; s = strtok_r(NULL, ";", &save))
        servers[n++] = strdup(s);
    free(copy);
    char err[200];
    if (pl_shardmap_init(&map, atoi(shards), n, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "test_scatter: %s\n", err);
        return -1;
    }
    return 0;
}

int main(void)
{
    if (parse_servers() != 0)
        return 2;
    if (map.shards < 16) {
        fprintf(stderr, "test_scatter: needs at least 16 shards\n");
        return 2;
    }
    base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 10000};
    event_add(tick, &tv);
    pl_idgen_init(&idgen, 1);
    pl_stmt_table_add(&table, statements, sizeof(statements) / sizeof(statements[0]));

    pl_store_t *st = new_store(0);
    test_many_ids_on_one_shard(st);
    test_order_as_given(st);
    test_params_around_the_array(st);
    test_text_keys(st);
    test_failing_shard(st);
    test_refused(st);
    pl_store_free(st);
    test_queue_full_midway();
    test_free_cancels();

    event_free(tick);
    event_base_free(base);
    pl_stmt_table_dispose(&table);
    pl_shardmap_dispose(&map);
    for (int i = 0; i < 8; i++)
        free(servers[i]);
    return pl_test_report();
}
