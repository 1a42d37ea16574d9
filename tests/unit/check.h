/* check.h — the unit tests' whole assertion kit. Each CHECK_* counts one
 * check; a failure prints file:line with the values and is counted, and the
 * test goes on. A test program ends with `return check_report();`, which is
 * nonzero if anything failed. One test program per translation unit. */
#ifndef PL_TESTS_CHECK_H
#define PL_TESTS_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_total;
static int check_failed;

static inline void check_fail_begin(const char *file, int line, const char *what)
{
    check_failed++;
    fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what);
}

/* Prints up to 64 bytes as hex, then "..." if there are more. */
static inline void check_dump(const char *label, const void *p, size_t len)
{
    const unsigned char *b = p;
    fprintf(stderr, "    %s (%zu bytes):", label, len);
    if (!p) {
        fprintf(stderr, " NULL\n");
        return;
    }
    for (size_t i = 0; i < len && i < 64; i++)
        fprintf(stderr, " %02x", b[i]);
    fprintf(stderr, "%s\n", len > 64 ? " ..." : "");
}

static inline int check_report(void)
{
    fprintf(stderr, "%d checks, %d failed\n", check_total, check_failed);
    return check_failed ? 1 : 0;
}

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        check_total++;                                                                                                 \
        if (!(cond))                                                                                                   \
            check_fail_begin(__FILE__, __LINE__, #cond);                                                               \
    } while (0)

#define CHECK_EQ_INT(actual, expected)                                                                                 \
    do {                                                                                                               \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);                                    \
        check_total++;                                                                                                 \
        if (check_a_ != check_e_) {                                                                                    \
            check_fail_begin(__FILE__, __LINE__, #actual " == " #expected);                                            \
            fprintf(stderr, "    actual %lld, expected %lld\n", check_a_, check_e_);                                   \
        }                                                                                                              \
    } while (0)

/* NUL-terminated strings; NULL compares equal only to NULL. */
#define CHECK_EQ_STR(actual, expected)                                                                                 \
    do {                                                                                                               \
        const char *check_a_ = (actual), *check_e_ = (expected);                                                       \
        check_total++;                                                                                                 \
        if (!check_a_ || !check_e_ ? check_a_ != check_e_ : strcmp(check_a_, check_e_) != 0) {                         \
            check_fail_begin(__FILE__, __LINE__, #actual " == " #expected);                                            \
            fprintf(stderr, "    actual   \"%s\"\n    expected \"%s\"\n", check_a_ ? check_a_ : "(null)",              \
                    check_e_ ? check_e_ : "(null)");                                                                   \
        }                                                                                                              \
    } while (0)

/* Byte ranges: equal lengths and equal bytes (two empty ranges are equal
 * whatever their pointers). */
#define CHECK_EQ_MEM(actual, actual_len, expected, expected_len)                                                       \
    do {                                                                                                               \
        const void *check_a_ = (actual), *check_e_ = (expected);                                                       \
        size_t check_al_ = (actual_len), check_el_ = (expected_len);                                                   \
        check_total++;                                                                                                 \
        if (check_al_ != check_el_ ||                                                                                  \
            (check_al_ && (!check_a_ || !check_e_ || memcmp(check_a_, check_e_, check_al_) != 0))) {                   \
            check_fail_begin(__FILE__, __LINE__, #actual " == " #expected);                                            \
            check_dump("actual  ", check_a_, check_al_);                                                               \
            check_dump("expected", check_e_, check_el_);                                                               \
        }                                                                                                              \
    } while (0)

#endif
