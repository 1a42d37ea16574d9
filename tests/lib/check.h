/* check.h — the tests' one assertion kit (tests/lib, parley_testkit).
 *
 * CHECK(cond[, fmt, ...]) counts a check; when cond is false it prints
 * file:line, the expression and the message, counts the failure and the
 * test goes on. Its value is cond, so `if (!CHECK(p, "..."))` skips what
 * depends on it. REQUIRE(cond[, fmt, ...]) is the same but stops the test:
 * it returns to pl_test_run() when the case runs there on this thread, and
 * otherwise ends the program with the tally (exit status 1). FAIL(fmt, ...)
 * is a REQUIRE already known to fail. The message, when given, must be a
 * string literal; its arguments are evaluated only on failure.
 *
 * A program either ends with `return pl_test_report();` or runs its case
 * with `return pl_test_run(name, fn);`. Counts are per process and may be
 * updated from any thread. */
#ifndef PL_TESTS_LIB_CHECK_H
#define PL_TESTS_LIB_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* The " " in front of the message keeps the format a non-empty literal when
 * there is no message; the kit prints from the second character on. */
#define CHECK(cond, ...)                                                                                               \
    pl_test_result_((cond) ? pl_test_pass_() : pl_test_fail_(__FILE__, __LINE__, #cond, " " __VA_ARGS__))
#define REQUIRE(cond, ...) ((cond) ? (void)pl_test_pass_() : pl_test_stop_(__FILE__, __LINE__, #cond, " " __VA_ARGS__))
#define FAIL(...) pl_test_stop_(__FILE__, __LINE__, NULL, " " __VA_ARGS__)

/* CHECKs that print both values on failure. Integers compare as long long;
 * strings are NUL-terminated (NULL equals only NULL); byte ranges are
 * equal when their lengths and bytes are (two empty ranges always are). */
#define CHECK_EQ_INT(actual, expected)                                                                                 \
    pl_test_eq_int_(__FILE__, __LINE__, #actual " == " #expected, (long long)(actual), (long long)(expected))
#define CHECK_EQ_STR(actual, expected)                                                                                 \
    pl_test_eq_str_(__FILE__, __LINE__, #actual " == " #expected, (actual), (expected))
#define CHECK_EQ_MEM(actual, actual_len, expected, expected_len)                                                       \
    pl_test_eq_mem_(__FILE__, __LINE__, #actual " == " #expected, (actual), (actual_len), (expected), (expected_len))
/* CHECK_EQ_INT that stops the test, as REQUIRE does. */
#define REQUIRE_EQ_INT(actual, expected) (CHECK_EQ_INT(actual, expected) ? (void)0 : pl_test_abort_())

/* Runs one test case: fn's REQUIREs return here. Prints "PASS name" or
 * "FAIL name" with the tally; returns 0 if fn returned 0 and no check
 * failed during it, else fn's nonzero value or 1. Not nested. */
int pl_test_run(const char *name, int (*fn)(void));

/* Prints "N checks, M failed"; returns the exit status: 0, or 1 if any
 * check failed. */
int pl_test_report(void);

/* A check on behalf of a helper's caller (file:line are the caller's):
 * counts it and, when ok is false, reports what and the message (fmt may
 * be empty). Returns ok. */
bool pl_test_check_at(bool ok, const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Whether any check has failed so far. */
bool pl_test_has_failed(void);

/* Prints "-- " and the step, for a failure's context. */
void pl_test_step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The macros' implementation. pl_test_result_ lets CHECK be a statement
 * as well as a value without "value computed is not used". */
static inline bool pl_test_result_(bool ok)
{
    return ok;
}
bool pl_test_pass_(void);
bool pl_test_fail_(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
_Noreturn void pl_test_stop_(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
_Noreturn void pl_test_abort_(void);
bool pl_test_eq_int_(const char *file, int line, const char *what, long long actual, long long expected);
bool pl_test_eq_str_(const char *file, int line, const char *what, const char *actual, const char *expected);
bool pl_test_eq_mem_(const char *file, int line, const char *what, const void *actual, size_t actual_len,
                     const void *expected, size_t expected_len);

#endif
