/* test_timeout.c — runtime/timeout.c: the grpc-timeout header. Parsing
 * every unit, nanos rounded up to whole microseconds, malformed values
 * rejected; formatting that fits 8 digits without ever shortening the
 * timeout; and the round trip between the two. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "runtime/timeout.h"

static void check_parse(const char *s, int64_t want)
{
    int64_t usec = -12345;
    int rc = pl_timeout_parse(s, strlen(s), &usec);
    if (rc != 0 || usec != want)
        fprintf(stderr, "    (parsing \"%s\")\n", s);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(usec, want);
}

static void check_reject(const char *s, size_t len)
{
    int64_t usec = 0;
    int rc = pl_timeout_parse(s, len, &usec);
    if (rc != -1)
        fprintf(stderr, "    (parsing \"%.*s\" should fail)\n", (int)len, s);
    CHECK_EQ_INT(rc, -1);
}

static void test_parse_units(void)
{
    check_parse("1H", 3600000000LL);
    check_parse("2M", 120000000LL);
    check_parse("3S", 3000000LL);
    check_parse("4m", 4000LL);
    check_parse("5u", 5LL);
    check_parse("6000n", 6LL);
    check_parse("0S", 0);
    check_parse("00000001S", 1000000LL); /* 8 digits, leading zeros */
    check_parse("99999999u", 99999999LL);
    check_parse("99999999H", 99999999LL * 3600 * 1000000);
    check_parse("99999999n", 100000LL);
}

static void test_parse_rounds_nanos_up(void)
{
    check_parse("0n", 0);
    check_parse("1n", 1);
    check_parse("999n", 1);
    check_parse("1000n", 1);
    check_parse("1001n", 2);
    check_parse("1999n", 2);
}

static void test_parse_rejects(void)
{
    check_reject("", 0);
    check_reject("S", 1);
    check_reject("123456789S", 10); /* 9 digits */
    check_reject("10", 2);          /* no unit */
    check_reject("10s", 3);         /* unknown units */
    check_reject("10x", 3);
    check_reject("10h", 3);
    check_reject("10U", 3);
    check_reject("1.5S", 4);
    check_reject("-1S", 3);
    check_reject("+1S", 3);
    check_reject(" 1S", 3);
    check_reject("1 S", 3);
    check_reject("1S ", 3);
    check_reject("0x1S", 4);
    check_reject("1\0S", 3);
    /* the length, not a NUL, bounds the input */
    int64_t usec = 0;
    CHECK_EQ_INT(pl_timeout_parse("15Sxyz", 3, &usec), 0);
    CHECK_EQ_INT(usec, 15000000);
}

static void check_format(int64_t usec, const char *want)
{
    char out[10];
    memset(out, '#', sizeof(out));
    int n = pl_timeout_format(usec, out);
    if (strcmp(out, want) != 0)
        fprintf(stderr, "    (formatting %lld us)\n", (long long)usec);
    CHECK_EQ_STR(out, want);
    CHECK_EQ_INT(n, strlen(want));
}

static void test_format(void)
{
    check_format(0, "0u");
    check_format(-5, "0u");
    check_format(1, "1u");
    check_format(99999999, "99999999u");
    check_format(100000000, "100000m"); /* exact in millis */
    check_format(100000001, "100001m"); /* rounded up, never down */
    check_format(99999999999LL, "100000S");
    check_format(3600000000LL, "3600000m");
    check_format(100000000LL * 1000000, "1666667M");        /* 1e8 s */
    check_format(99999999LL * 3600 * 1000000, "99999999H"); /* the largest expressible */
    check_format(99999999LL * 3600 * 1000000 + 1, "99999999H");
    check_format(1000000000000000000LL, "99999999H"); /* clamped */
}

/* Parses what format wrote: never shorter than asked, exact when the value
 * has an exact 8-digit form, and at most one unit longer otherwise. */
static void test_round_trip(void)
{
    static const int64_t unit_usec[] = {1, 1000, 1000000, 60000000, 3600000000LL};
    static const char units[] = "umSMH";
    int64_t v = 1;
    for (int i = 0; i < 200; i++) {
        char out[10];
        int n = pl_timeout_format(v, out);
        CHECK(n >= 2 && n <= 9);
        CHECK_EQ_INT(strlen(out), n);
        int64_t back = -1;
        CHECK_EQ_INT(pl_timeout_parse(out, (size_t)n, &back), 0);
        const char *u = n > 0 ? strchr(units, out[n - 1]) : NULL;
        CHECK(u != NULL);
        if (u) {
            CHECK(back >= v);
            CHECK(back - v < unit_usec[u - units]);
            if (v < 100000000)
                CHECK_EQ_INT(back, v); /* fits in microseconds: exact */
        }
        v = v * 3 / 2 + 7;
        if (v > 99999999LL * 3600 * 1000000)
            break;
    }
}

/* Values near INT64_MAX (an "infinite" timeout) must clamp like other huge
 * values. Kept last: the round-up overflows int64 in pl_timeout_format, and
 * under UBSan that aborts the program. */
static void test_format_extreme(void)
{
    check_format(INT64_MAX - 1000, "99999999H");
    check_format(INT64_MAX, "99999999H");
}

int main(void)
{
    test_parse_units();
    test_parse_rounds_nanos_up();
    test_parse_rejects();
    test_format();
    test_round_trip();
    test_format_extreme();
    return pl_test_report();
}
