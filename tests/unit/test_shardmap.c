/* test_shardmap.c — server/store/shardmap.c: default ranges, explicit maps,
 * every kind of bad map, schema names and the key → shard hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/ids.h"
#include "store/shardmap.h"

static char err[256];

/* Checks a map against the server each shard should have. */
static void check_map(const pl_shardmap_t *m, int shards, int servers, const int *expect)
{
    CHECK_EQ_INT(m->shards, shards);
    CHECK_EQ_INT(m->servers, servers);
    CHECK(m->server_of != NULL);
    if (!m->server_of)
        return;
    int wrong = 0;
    for (int s = 0; s < shards; s++)
        if (pl_shardmap_server(m, s) != expect[s]) {
            if (wrong++ < 5)
                fprintf(stderr, "    shard %d on server %d, expected %d\n", s, pl_shardmap_server(m, s), expect[s]);
        }
    CHECK_EQ_INT(wrong, 0);
}

/* ---- defaults ---- */

static void test_default_256_2(void)
{
    pl_shardmap_t m;
    int expect[256];
    for (int s = 0; s < 256; s++)
        expect[s] = s < 128 ? 0 : 1;
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, NULL, err, sizeof(err)), 0);
    check_map(&m, 256, 2, expect);
    CHECK_EQ_INT(pl_shardmap_server(&m, 127), 0);
    CHECK_EQ_INT(pl_shardmap_server(&m, 128), 1);
    pl_shardmap_dispose(&m);
    CHECK(m.server_of == NULL);
    CHECK_EQ_INT(m.shards, 0);
    /* "" is the same as NULL */
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, "", err, sizeof(err)), 0);
    check_map(&m, 256, 2, expect);
    pl_shardmap_dispose(&m);
}

static void test_default_16_3(void)
{
    pl_shardmap_t m;
    /* contiguous, sizes 6/5/5 (s * 3 / 16) */
    static const int expect[16] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2};
    CHECK_EQ_INT(pl_shardmap_init(&m, 16, 3, NULL, err, sizeof(err)), 0);
    check_map(&m, 16, 3, expect);
    pl_shardmap_dispose(&m);
}

static void test_default_small(void)
{
    pl_shardmap_t m;
    static const int one[1] = {0};
    CHECK_EQ_INT(pl_shardmap_init(&m, 1, 1, NULL, err, sizeof(err)), 0);
    check_map(&m, 1, 1, one);
    pl_shardmap_dispose(&m);

    static const int ident[3] = {0, 1, 2};
    CHECK_EQ_INT(pl_shardmap_init(&m, 3, 3, NULL, err, sizeof(err)), 0);
    check_map(&m, 3, 3, ident);
    pl_shardmap_dispose(&m);
}

/* Every (shards, servers) combination: contiguous non-decreasing ranges
 * starting at server 0, ending at servers-1, sizes within one of each
 * other. */
static void test_default_properties(void)
{
    static const int shard_counts[] = {1, 2, 3, 7, 16, 100, 256, 1000, 1024};
    static const int server_counts[] = {1, 2, 3, 5, 7, 16, 64, 255};
    int bad = 0, combos = 0;
    for (size_t a = 0; a < sizeof(shard_counts) / sizeof(shard_counts[0]); a++) {
        for (size_t b = 0; b < sizeof(server_counts) / sizeof(server_counts[0]); b++) {
            int shards = shard_counts[a], servers = server_counts[b];
            if (servers > shards)
                continue;
            combos++;
            pl_shardmap_t m;
            if (pl_shardmap_init(&m, shards, servers, NULL, err, sizeof(err)) != 0) {
                fprintf(stderr, "    %d/%d: %s\n", shards, servers, err);
                bad++;
                continue;
            }
            int size[255] = {0};
            int ok = pl_shardmap_server(&m, 0) == 0 && pl_shardmap_server(&m, shards - 1) == servers - 1;
            for (int s = 0; s < shards; s++) {
                int v = pl_shardmap_server(&m, s);
                if (v < 0 || v >= servers) {
                    ok = 0;
                    break;
                }
                size[v]++;
                if (s && v != pl_shardmap_server(&m, s - 1) && v != pl_shardmap_server(&m, s - 1) + 1)
                    ok = 0;
            }
            for (int v = 0; v < servers; v++)
                if (size[v] < shards / servers || size[v] > shards / servers + 1)
                    ok = 0;
            if (!ok) {
                fprintf(stderr, "    default map %d shards / %d servers is not even and contiguous\n", shards, servers);
                bad++;
            }
            pl_shardmap_dispose(&m);
        }
    }
    CHECK(combos > 40);
    CHECK_EQ_INT(bad, 0);
}

/* ---- explicit maps ---- */

static void test_explicit(void)
{
    pl_shardmap_t m;
    int expect[256];
    for (int s = 0; s < 256; s++)
        expect[s] = s < 128 ? 0 : 1;
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, "0-127=0,128-255=1", err, sizeof(err)), 0);
    check_map(&m, 256, 2, expect);
    pl_shardmap_dispose(&m);

    /* unordered ranges */
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, "128-255=1,0-127=0", err, sizeof(err)), 0);
    check_map(&m, 256, 2, expect);
    pl_shardmap_dispose(&m);

    /* reversed assignment: not the default */
    for (int s = 0; s < 256; s++)
        expect[s] = s < 128 ? 1 : 0;
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, "0-127=1,128-255=0", err, sizeof(err)), 0);
    check_map(&m, 256, 2, expect);
    pl_shardmap_dispose(&m);

    /* single shards mixed with ranges, a server holding non-contiguous shards */
    static const int e8[8] = {0, 0, 0, 0, 0, 1, 0, 0};
    CHECK_EQ_INT(pl_shardmap_init(&m, 8, 2, "0-4=0,5=1,6-7=0", err, sizeof(err)), 0);
    check_map(&m, 8, 2, e8);
    pl_shardmap_dispose(&m);

    static const int e4[4] = {2, 0, 1, 2};
    CHECK_EQ_INT(pl_shardmap_init(&m, 4, 3, "3=2,1=0,0=2,2=1", err, sizeof(err)), 0);
    check_map(&m, 4, 3, e4);
    pl_shardmap_dispose(&m);

    /* one shard, one server; degenerate range a-a */
    static const int e1[1] = {0};
    CHECK_EQ_INT(pl_shardmap_init(&m, 1, 1, "0-0=0", err, sizeof(err)), 0);
    check_map(&m, 1, 1, e1);
    pl_shardmap_dispose(&m);

    /* the largest cluster: 1024 shards, 255 servers */
    int e1024[1024];
    for (int s = 0; s < 1024; s++)
        e1024[s] = s < 1000 ? s % 250 : 254;
    char spec[16384];
    size_t off = 0;
    for (int s = 0; s < 1000; s++)
        off += (size_t)snprintf(spec + off, sizeof(spec) - off, "%d=%d,", s, s % 250);
    snprintf(spec + off, sizeof(spec) - off, "1000-1023=254");
    CHECK_EQ_INT(pl_shardmap_init(&m, 1024, 255, spec, err, sizeof(err)), 0);
    check_map(&m, 1024, 255, e1024);
    pl_shardmap_dispose(&m);
}

/* ---- errors ---- */

/* Expects failure with a message containing needle, and a map left empty. */
static void expect_fail(int shards, int servers, const char *spec, const char *needle, int line)
{
    pl_shardmap_t m;
    memset(&m, 0x5a, sizeof(m));
    strcpy(err, "(untouched)");
    int rc = pl_shardmap_init(&m, shards, servers, spec, err, sizeof(err));
    pl_test_check_at(rc == -1 && strstr(err, needle), __FILE__, line, "pl_shardmap_init fails naming the problem",
                     "%d shards, %d servers, spec \"%s\": rc %d, err \"%s\", expected -1 and \"%s\"", shards, servers,
                     spec ? spec : "(null)", rc, err, needle);
    if (rc == 0)
        pl_shardmap_dispose(&m);
    else
        CHECK(m.server_of == NULL);
    /* disposing a failed map is harmless */
    pl_shardmap_dispose(&m);
}
#define EXPECT_FAIL(shards, servers, spec, needle) expect_fail(shards, servers, spec, needle, __LINE__)

static void test_errors(void)
{
    /* overlap */
    EXPECT_FAIL(256, 2, "0-128=0,128-255=1", "shard 128 mapped twice");
    EXPECT_FAIL(256, 2, "0-255=0,7=1", "shard 7 mapped twice");
    EXPECT_FAIL(8, 1, "0-7=0,0-7=0", "shard 0 mapped twice");
    /* gap */
    EXPECT_FAIL(256, 2, "0-126=0,128-255=1", "shard 127 is not mapped");
    EXPECT_FAIL(256, 2, "0-127=0", "shard 128 is not mapped");
    EXPECT_FAIL(256, 2, "1-255=1", "shard 0 is not mapped");
    /* shard out of range */
    EXPECT_FAIL(256, 2, "0-127=0,128-256=1", "range 128-256 outside 0..255");
    EXPECT_FAIL(256, 2, "0-255=0,300=1", "range 300-300 outside 0..255");
    EXPECT_FAIL(16, 1, "-1-15=0", "outside 0..15");
    /* a reversed range */
    EXPECT_FAIL(16, 1, "15-0=0", "15-0");
    /* server out of range */
    EXPECT_FAIL(256, 2, "0-127=0,128-255=2", "server 2 does not exist (2 configured)");
    EXPECT_FAIL(256, 2, "0-127=0,128-255=-1", "server -1 does not exist");
    EXPECT_FAIL(4, 1, "0-3=255", "server 255 does not exist");
    /* garbage */
    static const char *garbage[] = {
        "abc",
        "0-127",
        "0-127=",
        "=0",
        "0-127=0;128-255=1",
        "0..127=0",
        "0-127=0x",
        "0-127=0 ,128-255=1",
        "0-127=0,,128-255=1",
        ",0-255=0",
        "0-=0",
        "0-255==0",
        "0-255=0-1",
        "99999999999999999999=0",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
        EXPECT_FAIL(256, 2, garbage[i], "cannot parse");
    /* the whole spec is quoted back */
    EXPECT_FAIL(256, 2, "0-127=zero", "'0-127=zero'");
    /* trailing comma: an incomplete entry, not a valid map */
    EXPECT_FAIL(256, 2, "0-127=0,128-255=1,", "shard map");
    EXPECT_FAIL(1, 1, "0=0,", "shard map");
    /* counts */
    EXPECT_FAIL(4, 5, NULL, "5 PostgreSQL servers for 4 shards");
    EXPECT_FAIL(4, 5, "0-3=0", "5 PostgreSQL servers for 4 shards");
    EXPECT_FAIL(256, 0, NULL, "0 PostgreSQL servers");
    EXPECT_FAIL(256, -1, NULL, "-1 PostgreSQL servers");
    EXPECT_FAIL(1024, 256, NULL, "256 PostgreSQL servers");
    EXPECT_FAIL(0, 1, NULL, "shard count 0 out of range 1..1024");
    EXPECT_FAIL(1025, 1, NULL, "shard count 1025 out of range 1..1024");
    EXPECT_FAIL(-3, 1, NULL, "shard count -3");

    /* a short err buffer is truncated, not overrun */
    pl_shardmap_t m;
    char small[8];
    memset(small, 'X', sizeof(small));
    CHECK_EQ_INT(pl_shardmap_init(&m, 256, 2, "0-1=0", small, 4), -1);
    CHECK_EQ_INT(strlen(small), 3);
    CHECK_EQ_INT(small[4], 'X');
}

/* ---- schema names ---- */

static void test_schema(void)
{
    char buf[PL_SHARD_SCHEMA_LEN + 4];
    memset(buf, 'X', sizeof(buf));
    pl_shard_schema(0, buf);
    CHECK_EQ_STR(buf, "shard_0000");
    CHECK_EQ_INT(buf[11], 'X'); /* nothing written past the terminator */
    pl_shard_schema(1, buf);
    CHECK_EQ_STR(buf, "shard_0001");
    pl_shard_schema(42, buf);
    CHECK_EQ_STR(buf, "shard_0042");
    pl_shard_schema(999, buf);
    CHECK_EQ_STR(buf, "shard_0999");
    pl_shard_schema(1023, buf);
    CHECK_EQ_STR(buf, "shard_1023");
    /* never more than PL_SHARD_SCHEMA_LEN bytes, whatever the number */
    memset(buf, 'X', sizeof(buf));
    pl_shard_schema(-2147483647 - 1, buf);
    CHECK(strlen(buf) < PL_SHARD_SCHEMA_LEN);
    CHECK_EQ_INT(buf[PL_SHARD_SCHEMA_LEN], 'X');
}

/* ---- key → shard ---- */

static int shard_of_str(const char *s, int shards)
{
    return pl_shard_for_key(s, strlen(s), shards);
}

/* Pinned: SipHash-2-4 with an all-zero key, first 8 output bytes read
 * big-endian, modulo the shard count (values computed independently). The
 * mapping is stored data's address: it must never change. */
static void test_for_key_pinned(void)
{
    CHECK_EQ_INT(shard_of_str("", 256), 30);
    CHECK_EQ_INT(shard_of_str("", 1024), 542);
    CHECK_EQ_INT(shard_of_str("a", 256), 150);
    CHECK_EQ_INT(shard_of_str("a", 1024), 662);
    CHECK_EQ_INT(shard_of_str("a", 3), 0);
    CHECK_EQ_INT(shard_of_str("+15551234567", 256), 112);
    CHECK_EQ_INT(shard_of_str("+15551234567", 3), 2);
    CHECK_EQ_INT(shard_of_str("+447700900123", 256), 63);
    CHECK_EQ_INT(shard_of_str("+447700900123", 3), 1);
    CHECK_EQ_INT(shard_of_str("parley", 256), 35);
    CHECK_EQ_INT(shard_of_str("parley", 1024), 803);
    unsigned char bin[16];
    for (int i = 0; i < 16; i++)
        bin[i] = (unsigned char)i;
    CHECK_EQ_INT(pl_shard_for_key(bin, sizeof(bin), 256), 201);
    CHECK_EQ_INT(pl_shard_for_key(bin, sizeof(bin), 1024), 713);
    /* only len bytes count */
    CHECK_EQ_INT(pl_shard_for_key("parley-and-more", 6, 1024), 803);
    /* stable across calls */
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(shard_of_str("+15551234567", 256), 112);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so the keys (and the statistic) are fixed */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static void test_for_key_range_and_uniformity(void)
{
    enum { KEYS = 100000, SHARDS = 256 };
    static int count[SHARDS];
    int out_of_range = 0;
    for (int i = 0; i < KEYS; i++) {
        /* phone-number-like keys of varying length */
        char key[24];
        int len = snprintf(key, sizeof(key), "+%llu", (unsigned long long)(rng() % 100000000000000ULL));
        int s = pl_shard_for_key(key, (size_t)len, SHARDS);
        if (s < 0 || s >= SHARDS)
            out_of_range++;
        else
            count[s]++;
    }
    CHECK_EQ_INT(out_of_range, 0);
    double expected = (double)KEYS / SHARDS, chi2 = 0;
    int min = KEYS, max = 0;
    for (int s = 0; s < SHARDS; s++) {
        double d = count[s] - expected;
        chi2 += d * d / expected;
        if (count[s] < min)
            min = count[s];
        if (count[s] > max)
            max = count[s];
    }
    /* 255 degrees of freedom: mean 255, sd √510 ≈ 22.6. 255 + 7 sd ≈ 413
     * would be a one-in-10^11 accident for a uniform hash; the keys are
     * fixed anyway, so this never flakes. */
    fprintf(stderr, "    chi-square %.1f (255 df), buckets %d..%d\n", chi2, min, max);
    CHECK(chi2 < 413.0);
    CHECK(chi2 > 130.0); /* suspiciously perfect would mean the keys are not hashed */
    CHECK(min > expected * 0.75);
    CHECK(max < expected * 1.25);

    /* any shard count: always in range; 1 shard: always 0 */
    static const int counts[] = {1, 2, 3, 7, 100, 1023, 1024};
    int bad = 0;
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        for (int i = 0; i < 2000; i++) {
            uint64_t k = rng();
            int s = pl_shard_for_key(&k, sizeof(k), counts[c]);
            if (s < 0 || s >= counts[c])
                bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    int nonzero = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t k = rng();
        nonzero += pl_shard_for_key(&k, sizeof(k), 1) != 0;
    }
    CHECK_EQ_INT(nonzero, 0);
}

int main(void)
{
    test_default_256_2();
    test_default_16_3();
    test_default_small();
    test_default_properties();
    test_explicit();
    test_errors();
    test_schema();
    test_for_key_pinned();
    test_for_key_range_and_uniformity();
    return pl_test_report();
}
