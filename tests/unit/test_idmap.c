/* test_idmap.c — server/app/idmap.c: put/get/replace/del, key 0, growth,
 * backward-shift deletion (wrapping clusters, and 10^5 random operations
 * against a reference array), iteration and dispose. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/errors.h"
#include "runtime/idmap.h"
#include "store/ids.h"

/* Values are tagged integers: never dereferenced. */
#define VAL(x) ((void *)(uintptr_t)(x))

static uint64_t rng_state = 0x243F6A8885A308D3ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Structural invariants: capacity a power of two, load at most 1/2, count
 * equal to the occupied slots, and every key reachable from its home slot
 * without crossing an empty slot (checked through get). */
static int map_is_sound(const pl_idmap_t *m)
{
    if (m->cap == 0)
        return m->count == 0 && m->slots == NULL;
    if (m->cap & (m->cap - 1))
        return 0;
    if (m->count * 2 > m->cap)
        return 0;
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key)
            continue;
        used++;
        if (pl_idmap_get(m, m->slots[i].key) != m->slots[i].value)
            return 0;
    }
    return used == m->count;
}

static void test_empty(void)
{
    pl_idmap_t m = {0};
    CHECK(pl_idmap_get(&m, 1) == NULL);
    CHECK(pl_idmap_get(&m, 0) == NULL);
    CHECK(pl_idmap_del(&m, 1) == NULL);
    CHECK(pl_idmap_del(&m, 0) == NULL);
    CHECK_EQ_INT(m.count, 0);
    CHECK_EQ_INT(m.cap, 0);
    pl_idmap_dispose(&m);
    CHECK(m.slots == NULL);
}

static void test_basic(void)
{
    pl_idmap_t m = {0};
    CHECK_EQ_INT(pl_idmap_put(&m, 5, VAL(50)), 0);
    CHECK_EQ_INT(m.count, 1);
    CHECK(m.cap >= 2);
    CHECK(pl_idmap_get(&m, 5) == VAL(50));
    CHECK(pl_idmap_get(&m, 6) == NULL);
    CHECK(pl_idmap_get(&m, -5) == NULL);
    /* replace: same count, new value */
    CHECK_EQ_INT(pl_idmap_put(&m, 5, VAL(51)), 0);
    CHECK_EQ_INT(m.count, 1);
    CHECK(pl_idmap_get(&m, 5) == VAL(51));
    /* a second key */
    CHECK_EQ_INT(pl_idmap_put(&m, 6, VAL(60)), 0);
    CHECK_EQ_INT(m.count, 2);
    CHECK(pl_idmap_get(&m, 5) == VAL(51));
    CHECK(pl_idmap_get(&m, 6) == VAL(60));
    /* delete returns the value, the other key stays */
    CHECK(pl_idmap_del(&m, 5) == VAL(51));
    CHECK_EQ_INT(m.count, 1);
    CHECK(pl_idmap_get(&m, 5) == NULL);
    CHECK(pl_idmap_get(&m, 6) == VAL(60));
    CHECK(pl_idmap_del(&m, 5) == NULL);
    CHECK_EQ_INT(m.count, 1);
    CHECK(pl_idmap_del(&m, 999) == NULL);
    CHECK_EQ_INT(m.count, 1);
    /* put back after delete */
    CHECK_EQ_INT(pl_idmap_put(&m, 5, VAL(52)), 0);
    CHECK(pl_idmap_get(&m, 5) == VAL(52));
    CHECK_EQ_INT(m.count, 2);
    /* a NULL value is stored (counted) though get cannot tell it from absent */
    CHECK_EQ_INT(pl_idmap_put(&m, 7, NULL), 0);
    CHECK_EQ_INT(m.count, 3);
    CHECK(pl_idmap_del(&m, 7) == NULL);
    CHECK_EQ_INT(m.count, 2);
    CHECK(map_is_sound(&m));
    pl_idmap_dispose(&m);
}

static void test_key_zero(void)
{
    pl_idmap_t m = {0};
    CHECK_EQ_INT(pl_idmap_put(&m, 0, VAL(1)), PL_ERR_INVALID);
    CHECK_EQ_INT(m.count, 0);
    CHECK_EQ_INT(pl_idmap_put(&m, 1, VAL(1)), 0);
    CHECK_EQ_INT(pl_idmap_put(&m, 0, VAL(2)), PL_ERR_INVALID);
    CHECK_EQ_INT(m.count, 1);
    CHECK(pl_idmap_get(&m, 0) == NULL);
    CHECK(pl_idmap_del(&m, 0) == NULL);
    CHECK(pl_idmap_get(&m, 1) == VAL(1));
    CHECK_EQ_INT(m.count, 1);
    pl_idmap_dispose(&m);
}

static void test_extreme_keys(void)
{
    pl_idmap_t m = {0};
    static const int64_t keys[] = {INT64_MIN, INT64_MIN + 1, -1, 1, INT64_MAX, INT64_MAX - 1, 1LL << 32, -(1LL << 32)};
    enum { N = sizeof(keys) / sizeof(keys[0]) };
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(pl_idmap_put(&m, keys[i], VAL(i + 100)), 0);
    CHECK_EQ_INT(m.count, N);
    for (int i = 0; i < N; i++)
        CHECK(pl_idmap_get(&m, keys[i]) == VAL(i + 100));
    CHECK(pl_idmap_del(&m, INT64_MIN) == VAL(100));
    CHECK(pl_idmap_get(&m, INT64_MIN) == NULL);
    CHECK(pl_idmap_get(&m, INT64_MAX) == VAL(104));
    CHECK(map_is_sound(&m));
    pl_idmap_dispose(&m);
}

/* Growth through many sizes: every key findable at every size, load at most
 * 1/2, the capacity doubling. Keys are real ids (time-ordered, low bits
 * similar): the worst case for a map that masks without mixing. */
static void test_growth(void)
{
    enum { N = 100000 };
    int64_t *keys = malloc(sizeof(int64_t) * N);
    CHECK(keys != NULL);
    if (!keys)
        return;
    pl_idgen_t g;
    pl_idgen_init(&g, 3);
    for (int i = 0; i < N; i++)
        keys[i] = pl_id_new_at(&g, 17, PL_ID_EPOCH_MS + 1000000 + i / 3);
    pl_idmap_t m = {0};
    size_t last_cap = 0;
    int bad_put = 0, bad_cap = 0, bad_find = 0, checkpoints = 0;
    for (int i = 0; i < N; i++) {
        if (pl_idmap_put(&m, keys[i], VAL(i + 1)) != 0)
            bad_put++;
        if (m.cap != last_cap) {
            if (last_cap && m.cap != last_cap * 2)
                bad_cap++;
            last_cap = m.cap;
        }
        if (m.count != (size_t)i + 1 || m.count * 2 > m.cap)
            bad_cap++;
        /* full check at 1, 2, 3, 4, 5, 8, 9, 16, 17, ... and at the end */
        int n = i + 1;
        if (n <= 5 || (n & (n - 1)) == 0 || ((n - 1) & (n - 2)) == 0 || n == N) {
            checkpoints++;
            for (int k = 0; k <= i; k++)
                if (pl_idmap_get(&m, keys[k]) != VAL(k + 1))
                    bad_find++;
            /* keys are increasing: nothing above the newest key is present */
            if (pl_idmap_get(&m, keys[i] + 1) != NULL)
                bad_find++;
        }
    }
    CHECK_EQ_INT(bad_put, 0);
    CHECK_EQ_INT(bad_cap, 0);
    CHECK_EQ_INT(bad_find, 0);
    CHECK(checkpoints > 30);
    CHECK_EQ_INT(m.count, N);
    CHECK_EQ_INT(m.cap, 262144); /* the smallest power of two with 100000 <= cap / 2 */
    CHECK(map_is_sound(&m));
    /* delete every other key, then everything */
    int bad_del = 0;
    for (int i = 0; i < N; i += 2)
        if (pl_idmap_del(&m, keys[i]) != VAL(i + 1))
            bad_del++;
    CHECK_EQ_INT(bad_del, 0);
    CHECK_EQ_INT(m.count, N / 2);
    for (int i = 0; i < N; i++)
        if (pl_idmap_get(&m, keys[i]) != (i % 2 ? VAL(i + 1) : NULL))
            bad_find++;
    CHECK_EQ_INT(bad_find, 0);
    CHECK(map_is_sound(&m));
    for (int i = 1; i < N; i += 2)
        if (pl_idmap_del(&m, keys[i]) != VAL(i + 1))
            bad_del++;
    CHECK_EQ_INT(bad_del, 0);
    CHECK_EQ_INT(m.count, 0);
    size_t occupied = 0;
    for (size_t i = 0; i < m.cap; i++)
        occupied += m.slots[i].key != 0;
    CHECK_EQ_INT(occupied, 0);
    pl_idmap_dispose(&m);
    free(keys);
}

/* The home slot, as idmap.c computes it. Used only to build colliding keys
 * for the deletion tests; if the hash changes these tests still check
 * correctness, they just collide less. */
static size_t home_of(int64_t key, size_t cap)
{
    uint64_t x = (uint64_t)key;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

/* Keys with the given home slot in a map of capacity cap. */
static void keys_with_home(size_t cap, size_t home, int64_t *out, int n, int64_t start)
{
    for (int64_t k = start; n > 0; k++)
        if (home_of(k, cap) == home) {
            *out++ = k;
            n--;
        }
}

/* A cluster that wraps from the last slot to the first, with keys from two
 * homes interleaved; deleting each key in turn must leave all the others
 * findable. The map stays at capacity 32 (at most 16 keys). */
static void test_delete_wrapping_cluster(void)
{
    enum { CAP = 32 };
    int64_t a[4], b[4], c[3];
    keys_with_home(CAP, CAP - 2, a, 4, 1);
    keys_with_home(CAP, CAP - 1, b, 4, 1);
    keys_with_home(CAP, 1, c, 3, 1);
    int64_t all[11];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        all[n++] = a[i];
        all[n++] = b[i];
    }
    for (int i = 0; i < 3; i++)
        all[n++] = c[i];
    int bad = 0;
    for (int victim = 0; victim < n; victim++) {
        pl_idmap_t m = {0};
        /* fill to capacity 32 first with 9 far-away keys, then remove them */
        int64_t filler[9];
        keys_with_home(CAP, CAP / 2, filler, 9, 1000000);
        for (int i = 0; i < 9; i++)
            pl_idmap_put(&m, filler[i], VAL(1));
        for (int i = 0; i < 9; i++)
            pl_idmap_del(&m, filler[i]);
        if (m.cap != CAP) {
            bad++;
            pl_idmap_dispose(&m);
            continue;
        }
        for (int i = 0; i < n; i++)
            pl_idmap_put(&m, all[i], VAL(i + 1));
        /* the cluster really wraps: slot 0 is occupied by a wrapped key */
        if (victim == 0 && (m.slots[0].key == 0 || home_of(m.slots[0].key, CAP) < CAP - 2))
            bad++;
        if (pl_idmap_del(&m, all[victim]) != VAL(victim + 1))
            bad++;
        for (int i = 0; i < n; i++)
            if (pl_idmap_get(&m, all[i]) != (i == victim ? NULL : VAL(i + 1)))
                bad++;
        if (!map_is_sound(&m) || m.count != (size_t)n - 1 || m.cap != CAP)
            bad++;
        /* delete the rest in reverse order, checking as we go */
        for (int i = n - 1; i >= 0; i--) {
            if (i == victim)
                continue;
            if (pl_idmap_del(&m, all[i]) != VAL(i + 1))
                bad++;
            for (int k = 0; k < i; k++)
                if (k != victim && pl_idmap_get(&m, all[k]) != VAL(k + 1))
                    bad++;
        }
        if (m.count != 0)
            bad++;
        pl_idmap_dispose(&m);
    }
    CHECK_EQ_INT(bad, 0);
}

/* 10^5 random operations on keys from a small range (so puts replace,
 * deletes hit, and clusters form), checked against a reference array. */
static void test_random_against_reference(void)
{
    enum { RANGE = 3000, OPS = 100000 };
    /* key k (1..RANGE) stands for the id k * 4096 (or its negation for odd
     * k): ids from one millisecond differ only in low bits. */
    static uintptr_t ref[RANGE + 1]; /* 0: absent */
    pl_idmap_t m = {0};
    size_t ref_count = 0;
    int bad_op = 0, bad_state = 0, full_checks = 0;
    size_t max_count = 0;
    for (int op = 0; op < OPS; op++) {
        int k = 1 + (int)(rng() % RANGE);
        int64_t key = (int64_t)k * 4096 * (k % 2 ? -1 : 1);
        /* bias phases: grow for a while, then shrink, then mixed */
        int phase = (op / 10000) % 3;
        unsigned r = (unsigned)(rng() % 100);
        int do_put = phase == 0 ? r < 70 : phase == 1 ? r < 25 : r < 50;
        if (rng() % 5 == 0) {
            if (pl_idmap_get(&m, key) != (void *)ref[k])
                bad_op++;
        } else if (do_put) {
            uintptr_t v = (uintptr_t)op + 1;
            if (pl_idmap_put(&m, key, (void *)v) != 0)
                bad_op++;
            if (!ref[k])
                ref_count++;
            ref[k] = v;
        } else {
            if (pl_idmap_del(&m, key) != (void *)ref[k])
                bad_op++;
            if (ref[k])
                ref_count--;
            ref[k] = 0;
        }
        if (m.count != ref_count)
            bad_state++;
        if (m.count > max_count)
            max_count = m.count;
        if (op % 997 == 0 || op == OPS - 1) {
            full_checks++;
            for (int j = 1; j <= RANGE; j++) {
                int64_t kj = (int64_t)j * 4096 * (j % 2 ? -1 : 1);
                if (pl_idmap_get(&m, kj) != (void *)ref[j])
                    bad_state++;
            }
            if (!map_is_sound(&m))
                bad_state++;
        }
    }
    CHECK_EQ_INT(bad_op, 0);
    CHECK_EQ_INT(bad_state, 0);
    CHECK(full_checks > 100);
    CHECK(max_count > RANGE / 2); /* the map really filled up */

    /* iteration sees each present key exactly once, with its value */
    static unsigned char seen[RANGE + 1];
    int bad_iter = 0;
    size_t visited = 0;
    for (size_t i = 0; i < m.cap; i++) {
        int64_t key = m.slots[i].key;
        if (!key)
            continue;
        visited++;
        int64_t mag = key < 0 ? -key : key;
        if (mag % 4096 != 0 || mag / 4096 < 1 || mag / 4096 > RANGE) {
            bad_iter++;
            continue;
        }
        int k = (int)(mag / 4096);
        if (seen[k]++ || ref[k] == 0 || m.slots[i].value != (void *)ref[k])
            bad_iter++;
    }
    for (int k = 1; k <= RANGE; k++)
        if ((ref[k] != 0) != (seen[k] == 1))
            bad_iter++;
    CHECK_EQ_INT(bad_iter, 0);
    CHECK_EQ_INT(visited, ref_count);
    pl_idmap_dispose(&m);
}

/* The same over random 64-bit keys and a larger population. */
static void test_random_wide(void)
{
    enum { N = 20000 };
    int64_t *keys = malloc(sizeof(int64_t) * N);
    unsigned char *present = calloc(N, 1);
    CHECK(keys && present);
    if (!keys || !present) {
        free(keys);
        free(present);
        return;
    }
    for (int i = 0; i < N; i++) {
        do
            keys[i] = (int64_t)rng();
        while (!keys[i]);
    }
    pl_idmap_t m = {0};
    int bad = 0;
    size_t count = 0;
    for (int op = 0; op < 100000; op++) {
        int i = (int)(rng() % N);
        if (rng() % 3) {
            if (pl_idmap_put(&m, keys[i], VAL(i + 1)) != 0)
                bad++;
            count += !present[i];
            present[i] = 1;
        } else {
            if (pl_idmap_del(&m, keys[i]) != (present[i] ? VAL(i + 1) : NULL))
                bad++;
            count -= present[i];
            present[i] = 0;
        }
    }
    CHECK_EQ_INT(m.count, count);
    for (int i = 0; i < N; i++)
        if (pl_idmap_get(&m, keys[i]) != (present[i] ? VAL(i + 1) : NULL))
            bad++;
    CHECK_EQ_INT(bad, 0);
    CHECK(map_is_sound(&m));
    pl_idmap_dispose(&m);
    free(keys);
    free(present);
}

static void test_dispose_and_reuse(void)
{
    pl_idmap_t m = {0};
    for (int64_t k = 1; k <= 100; k++)
        pl_idmap_put(&m, k, VAL(k));
    CHECK_EQ_INT(m.count, 100);
    pl_idmap_dispose(&m);
    CHECK(m.slots == NULL);
    CHECK_EQ_INT(m.cap, 0);
    CHECK_EQ_INT(m.count, 0);
    CHECK(pl_idmap_get(&m, 1) == NULL);
    CHECK(pl_idmap_del(&m, 1) == NULL);
    /* usable again after dispose */
    CHECK_EQ_INT(pl_idmap_put(&m, 1, VAL(9)), 0);
    CHECK(pl_idmap_get(&m, 1) == VAL(9));
    CHECK_EQ_INT(m.count, 1);
    pl_idmap_dispose(&m);
    pl_idmap_dispose(&m); /* twice is harmless */
    CHECK(m.slots == NULL);
}

int main(void)
{
    test_empty();
    test_basic();
    test_key_zero();
    test_extreme_keys();
    test_growth();
    test_delete_wrapping_cluster();
    test_random_against_reference();
    test_random_wide();
    test_dispose_and_reuse();
    return pl_test_report();
}
