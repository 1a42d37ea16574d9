/* test_ids.c — server/store/ids.c: the bit layout of ids, uniqueness and
 * strict monotonicity on one generator (same millisecond, sequence overflow,
 * clock stepping back, four threads at once), pl_idgen_init's bounds and
 * pl_id_is_valid. */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "store/ids.h"

#define SEQ_PER_MS (1 << PL_ID_SEQ_BITS)
#define TIME_SHIFT (PL_ID_SHARD_BITS + PL_ID_NODE_BITS + PL_ID_SEQ_BITS)
/* An arbitrary instant after the epoch: 2025-01-02 10:17:36.789 UTC. */
#define T0 (PL_ID_EPOCH_MS + 123456789LL)

static int64_t seq_of(int64_t id)
{
    return id & (SEQ_PER_MS - 1);
}

/* The id the layout in ids.h says a (ms, shard, node, seq) tuple has. */
static int64_t expected_id(int64_t unix_ms, int shard, int node, int seq)
{
    return (int64_t)(((uint64_t)(unix_ms - PL_ID_EPOCH_MS) << TIME_SHIFT) | ((uint64_t)shard << 12) |
                     ((uint64_t)node << 7) | (uint64_t)seq);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void test_layout_constants(void)
{
    /* 1 sign bit + 41 time bits + the rest must be 64 */
    CHECK_EQ_INT(TIME_SHIFT, 22);
    CHECK_EQ_INT(PL_ID_MAX_SHARDS, 1024);
    CHECK_EQ_INT(PL_ID_MAX_NODES, 32);
    CHECK_EQ_INT(PL_ID_EPOCH_MS, 1735689600000LL);
}

static void test_init_bounds(void)
{
    pl_idgen_t g;
    CHECK_EQ_INT(pl_idgen_init(&g, -1), -1);
    CHECK_EQ_INT(pl_idgen_init(&g, PL_ID_MAX_NODES), -1);
    CHECK_EQ_INT(pl_idgen_init(&g, 32), -1);
    CHECK_EQ_INT(pl_idgen_init(&g, INT_MIN), -1);
    CHECK_EQ_INT(pl_idgen_init(&g, INT_MAX), -1);
    CHECK_EQ_INT(pl_idgen_init(&g, 0), 0);
    CHECK_EQ_INT(g.node, 0);
    CHECK_EQ_INT(pl_idgen_init(&g, 1), 0);
    CHECK_EQ_INT(g.node, 1);
    CHECK_EQ_INT(pl_idgen_init(&g, 31), 0);
    CHECK_EQ_INT(g.node, 31);
    /* init resets the generator: the first id of a millisecond has sequence 0 */
    CHECK_EQ_INT(pl_id_new_at(&g, 3, T0), expected_id(T0, 3, 31, 0));
    CHECK_EQ_INT(pl_idgen_init(&g, 31), 0);
    CHECK_EQ_INT(pl_id_new_at(&g, 3, T0), expected_id(T0, 3, 31, 0));
}

static void test_layout_round_trip(void)
{
    static const int shards[] = {0, 1, 2, 511, 1022, 1023};
    static const int nodes[] = {0, 1, 16, 30, 31};
    static const int64_t times[] = {
        PL_ID_EPOCH_MS + 1, T0, PL_ID_EPOCH_MS + 86400000LL * 365 * 50,
        PL_ID_EPOCH_MS + ((1LL << 41) - 1), /* the last millisecond that fits */
    };
    for (size_t t = 0; t < sizeof(times) / sizeof(times[0]); t++) {
        for (size_t s = 0; s < sizeof(shards) / sizeof(shards[0]); s++) {
            for (size_t n = 0; n < sizeof(nodes) / sizeof(nodes[0]); n++) {
                pl_idgen_t g;
                CHECK_EQ_INT(pl_idgen_init(&g, nodes[n]), 0);
                int64_t id = pl_id_new_at(&g, shards[s], times[t]);
                CHECK_EQ_INT(id, expected_id(times[t], shards[s], nodes[n], 0));
                CHECK(id > 0);
                CHECK_EQ_INT(pl_id_shard(id), shards[s]);
                CHECK_EQ_INT(pl_id_node(id), nodes[n]);
                CHECK_EQ_INT(pl_id_unix_ms(id), times[t]);
                CHECK_EQ_INT(seq_of(id), 0);
                CHECK(pl_id_is_valid(id));
            }
        }
    }
    /* Hand-computed: time 1, shard 1023, node 31, seq 0. */
    pl_idgen_t g;
    pl_idgen_init(&g, 31);
    CHECK_EQ_INT(pl_id_new_at(&g, 1023, PL_ID_EPOCH_MS + 1), 0x7FFF80LL);
    CHECK_EQ_INT(0x7FFF80LL, (1LL << 22) | (1023LL << 12) | (31LL << 7));
    /* The last millisecond of the layout, all fields at their maximum but
     * the sequence: the id stays positive. */
    pl_idgen_init(&g, 31);
    int64_t id = pl_id_new_at(&g, 1023, PL_ID_EPOCH_MS + ((1LL << 41) - 1));
    CHECK_EQ_INT(id, INT64_MAX - 127);
}

/* A clock before the epoch reads as the epoch; the generator still never
 * returns 0 (the sequence starts above the initial state). */
static void test_before_epoch(void)
{
    pl_idgen_t g;
    pl_idgen_init(&g, 0);
    int64_t a = pl_id_new_at(&g, 0, 0);
    CHECK(a > 0);
    CHECK(pl_id_is_valid(a));
    CHECK_EQ_INT(pl_id_unix_ms(a), PL_ID_EPOCH_MS);
    CHECK_EQ_INT(pl_id_shard(a), 0);
    CHECK_EQ_INT(pl_id_node(a), 0);
    int64_t b = pl_id_new_at(&g, 0, PL_ID_EPOCH_MS);
    CHECK(b > a);
    CHECK_EQ_INT(pl_id_unix_ms(b), PL_ID_EPOCH_MS);
    int64_t c = pl_id_new_at(&g, 0, -5000);
    CHECK(c > b);

    pl_idgen_init(&g, 7);
    int64_t d = pl_id_new_at(&g, 9, PL_ID_EPOCH_MS - 1);
    CHECK(d > 0);
    CHECK_EQ_INT(pl_id_unix_ms(d), PL_ID_EPOCH_MS);
    CHECK_EQ_INT(pl_id_shard(d), 9);
    CHECK_EQ_INT(pl_id_node(d), 7);
}

/* Many ids in one millisecond: sequence 0..127 in that millisecond, then
 * the next milliseconds are borrowed; unique and strictly increasing all
 * along, and shard and node never disturbed by the sequence. */
static void test_same_millisecond_and_overflow(void)
{
    enum { N = 1000 };
    pl_idgen_t g;
    pl_idgen_init(&g, 31);
    int64_t prev = 0;
    int bad_order = 0, bad_fields = 0;
    for (int i = 0; i < N; i++) {
        int64_t id = pl_id_new_at(&g, 1023, T0);
        if (id <= prev)
            bad_order++;
        if (id != expected_id(T0 + i / SEQ_PER_MS, 1023, 31, i % SEQ_PER_MS) || pl_id_shard(id) != 1023 ||
            pl_id_node(id) != 31)
            bad_fields++;
        prev = id;
        if (i == SEQ_PER_MS - 1) {
            CHECK_EQ_INT(pl_id_unix_ms(id), T0);
            CHECK_EQ_INT(seq_of(id), 127);
        }
        if (i == SEQ_PER_MS) {
            /* the 129th id borrows the next millisecond */
            CHECK_EQ_INT(pl_id_unix_ms(id), T0 + 1);
            CHECK_EQ_INT(seq_of(id), 0);
        }
    }
    CHECK_EQ_INT(bad_order, 0);
    CHECK_EQ_INT(bad_fields, 0);
    /* 1000 ids used T0..T0+7 (999 / 128 = 7, seq 999 % 128 = 103). The real
     * clock reaching T0+1 must not go back into what was borrowed. */
    CHECK_EQ_INT(pl_id_unix_ms(prev), T0 + 7);
    CHECK_EQ_INT(seq_of(prev), 103);
    int64_t id = pl_id_new_at(&g, 1023, T0 + 1);
    CHECK_EQ_INT(id, expected_id(T0 + 7, 1023, 31, 104));
    CHECK(id > prev);
    /* A clock ahead of what was borrowed starts its millisecond at sequence 0. */
    int64_t later = pl_id_new_at(&g, 1023, T0 + 100);
    CHECK_EQ_INT(later, expected_id(T0 + 100, 1023, 31, 0));
    /* A full millisecond, then the clock moves on: no borrowing needed. */
    pl_idgen_init(&g, 2);
    for (int i = 0; i < SEQ_PER_MS; i++)
        pl_id_new_at(&g, 5, T0);
    CHECK_EQ_INT(pl_id_new_at(&g, 5, T0 + 1), expected_id(T0 + 1, 5, 2, 0));
    /* One id more than a millisecond holds borrows T0+1 sequence 0; the
     * clock then reaching T0+1 continues at sequence 1. */
    pl_idgen_init(&g, 2);
    for (int i = 0; i < SEQ_PER_MS + 1; i++)
        pl_id_new_at(&g, 5, T0);
    CHECK_EQ_INT(pl_id_new_at(&g, 5, T0 + 1), expected_id(T0 + 1, 5, 2, 1));
}

/* Ids on different shards from one generator share the sequence: order is
 * by (time, sequence), the shard never makes a later id smaller. */
static void test_shards_share_sequence(void)
{
    pl_idgen_t g;
    pl_idgen_init(&g, 4);
    int64_t a = pl_id_new_at(&g, 1023, T0);
    int64_t b = pl_id_new_at(&g, 0, T0 + 1);
    int64_t c = pl_id_new_at(&g, 1023, T0 + 1);
    CHECK(b > a);
    CHECK_EQ_INT(seq_of(b), 0);
    CHECK_EQ_INT(seq_of(c), 1);
    CHECK_EQ_INT(pl_id_unix_ms(c), T0 + 1);
    /* Within one millisecond ids on different shards are unique by sequence. */
    int64_t d = pl_id_new_at(&g, 0, T0 + 1);
    CHECK_EQ_INT(seq_of(d), 2);
    CHECK(d != b);
}

static void test_clock_backwards(void)
{
    pl_idgen_t g;
    pl_idgen_init(&g, 3);
    int64_t a = pl_id_new_at(&g, 10, T0 + 1000);
    CHECK_EQ_INT(a, expected_id(T0 + 1000, 10, 3, 0));
    /* clock steps back by a second: ids continue from the last one */
    int64_t b = pl_id_new_at(&g, 10, T0);
    CHECK(b > a);
    CHECK_EQ_INT(b, expected_id(T0 + 1000, 10, 3, 1));
    int64_t prev = b;
    int bad = 0;
    for (int i = 0; i < 500; i++) {
        int64_t id = pl_id_new_at(&g, 10, T0 + i); /* still behind */
        if (id <= prev || pl_id_unix_ms(id) < T0 + 1000 || pl_id_shard(id) != 10 || pl_id_node(id) != 3)
            bad++;
        prev = id;
    }
    CHECK_EQ_INT(bad, 0);
    /* 502 ids since T0+1000: seq 501 → T0+1003, seq 117 */
    CHECK_EQ_INT(prev, expected_id(T0 + 1003, 10, 3, 117));
    /* a clock back before the epoch changes nothing either */
    int64_t c = pl_id_new_at(&g, 10, 0);
    CHECK(c > prev);
    /* and when the clock catches up it takes over */
    int64_t d = pl_id_new_at(&g, 10, T0 + 2000);
    CHECK_EQ_INT(d, expected_id(T0 + 2000, 10, 3, 0));
}

/* Different nodes at the same instant: ids differ only in the node bits. */
static void test_nodes_apart(void)
{
    pl_idgen_t g1, g2;
    pl_idgen_init(&g1, 1);
    pl_idgen_init(&g2, 2);
    for (int i = 0; i < 300; i++) {
        int64_t a = pl_id_new_at(&g1, 77, T0);
        int64_t b = pl_id_new_at(&g2, 77, T0);
        CHECK(a != b);
        CHECK_EQ_INT(a ^ b, (int64_t)(1 ^ 2) << 7);
    }
}

/* The real clock: increasing, and the time field near now. */
static void test_real_clock(void)
{
    enum { N = 100000 };
    pl_idgen_t g;
    pl_idgen_init(&g, 12);
    int64_t before = now_ms();
    int64_t prev = 0;
    int bad = 0;
    int64_t first = 0;
    for (int i = 0; i < N; i++) {
        int64_t id = pl_id_new(&g, 200);
        if (i == 0)
            first = id;
        if (id <= prev || pl_id_shard(id) != 200 || pl_id_node(id) != 12 || !pl_id_is_valid(id))
            bad++;
        prev = id;
    }
    int64_t after = now_ms();
    CHECK_EQ_INT(bad, 0);
    CHECK(pl_id_unix_ms(first) >= before);
    CHECK(pl_id_unix_ms(first) <= after);
    /* 10^5 ids can borrow at most 10^5 / 128 ≈ 782 ms beyond the clock */
    CHECK(pl_id_unix_ms(prev) >= before);
    CHECK(pl_id_unix_ms(prev) <= after + N / SEQ_PER_MS + 1);
}

/* ---- four threads on one generator ---- */

enum { THREADS = 4, PER_THREAD = 200000, THREAD_SHARD = 513 };

typedef struct worker_arg {
    pl_idgen_t *g;
    int64_t *out;
    int not_increasing;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *a = p;
    int64_t prev = 0;
    for (int i = 0; i < PER_THREAD; i++) {
        int64_t id = pl_id_new(a->g, THREAD_SHARD);
        if (id <= prev)
            a->not_increasing++;
        a->out[i] = prev = id;
    }
    return NULL;
}

static void test_threads(void)
{
    pl_idgen_t g;
    pl_idgen_init(&g, 21);
    int64_t *all = malloc(sizeof(int64_t) * THREADS * PER_THREAD);
    CHECK(all != NULL);
    if (!all)
        return;
    pthread_t th[THREADS];
    worker_arg_t args[THREADS];
    int started = 0;
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg_t){&g, all + (size_t)t * PER_THREAD, 0};
        if (pthread_create(&th[t], NULL, worker, &args[t]) == 0)
            started++;
        else
            break;
    }
    CHECK_EQ_INT(started, THREADS);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    size_t n = (size_t)started * PER_THREAD;
    for (int t = 0; t < started; t++)
        CHECK_EQ_INT(args[t].not_increasing, 0);
    qsort(all, n, sizeof(int64_t), cmp_i64);
    size_t dups = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && all[i] == all[i - 1])
            dups++;
        if (pl_id_shard(all[i]) != THREAD_SHARD || pl_id_node(all[i]) != 21 || !pl_id_is_valid(all[i]))
            bad++;
    }
    CHECK_EQ_INT(dups, 0);
    CHECK_EQ_INT(bad, 0);
    /* The sequence hands out consecutive (ms, seq) values: with no clock
     * jumps ahead, the sorted ids have no duplicates in (ms, seq) either. */
    size_t dup_ms_seq = 0;
    for (size_t i = 1; i < n; i++)
        if (pl_id_unix_ms(all[i]) == pl_id_unix_ms(all[i - 1]) && seq_of(all[i]) == seq_of(all[i - 1]))
            dup_ms_seq++;
    CHECK_EQ_INT(dup_ms_seq, 0);
    /* The generator's state is after every id handed out. */
    int64_t next = pl_id_new(&g, THREAD_SHARD);
    CHECK(next > all[n - 1]);
    free(all);
}

static void test_is_valid(void)
{
    CHECK(!pl_id_is_valid(0));
    CHECK(!pl_id_is_valid(-1));
    CHECK(!pl_id_is_valid(INT64_MIN));
    CHECK(!pl_id_is_valid(-expected_id(T0, 1, 1, 1)));
    CHECK(pl_id_is_valid(1));
    CHECK(pl_id_is_valid(INT64_MAX));
    CHECK(pl_id_is_valid(expected_id(T0, 1023, 31, 127)));
}

int main(void)
{
    test_layout_constants();
    test_init_bounds();
    test_layout_round_trip();
    test_before_epoch();
    test_same_millisecond_and_overflow();
    test_shards_share_sequence();
    test_clock_backwards();
    test_nodes_apart();
    test_real_clock();
    test_threads();
    test_is_valid();
    return pl_test_report();
}
