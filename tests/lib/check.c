/* check.c — the counts, failure reports and case runner behind check.h.
 * Failures go to stdout, flushed, so that they sit among the steps a case
 * prints. */
#include "check.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int total;
static atomic_int failed;

/* The running case (pl_test_run): where REQUIRE on its thread returns to. */
static jmp_buf case_stop;
static pthread_t case_thread;
static atomic_bool has_case;

bool pl_test_pass_(void)
{
    atomic_fetch_add(&total, 1);
    return true;
}

static void report_failure(const char *file, int line, const char *expr, const char *fmt, va_list ap)
{
    atomic_fetch_add(&total, 1);
    atomic_fetch_add(&failed, 1);
    flockfile(stdout);
    if (expr)
        printf("%s:%d: FAILED: %s\n", file, line, expr);
    else
        printf("%s:%d: FAILED\n", file, line);
    if (fmt[0]) {
        printf("    ");
        vprintf(fmt, ap);
        printf("\n");
    }
    fflush(stdout);
    funlockfile(stdout);
}

/* The macros' messages come with a " " in front (check.h). */
bool pl_test_fail_(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_failure(file, line, expr, fmt + 1, ap);
    va_end(ap);
    return false;
}

_Noreturn void pl_test_stop_(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_failure(file, line, expr, fmt + 1, ap);
    va_end(ap);
    pl_test_abort_();
}

/* Stops the test after a reported failure. */
_Noreturn void pl_test_abort_(void)
{
    if (atomic_load(&has_case) && pthread_equal(pthread_self(), case_thread))
        longjmp(case_stop, 1);
    /* no case to return to on this thread: the program ends here */
    pl_test_report();
    exit(1);
}

int pl_test_run(const char *name, int (*fn)(void))
{
    int total_before = atomic_load(&total), failed_before = atomic_load(&failed);
    volatile int rc = 1;
    case_thread = pthread_self();
    atomic_store(&has_case, true);
    if (setjmp(case_stop) == 0)
        rc = fn();
    atomic_store(&has_case, false);
    int new_failures = atomic_load(&failed) - failed_before;
    if (rc == 0 && new_failures)
        rc = 1;
    printf("%s %s (%d checks, %d failed)\n", rc == 0 ? "PASS" : "FAIL", name, atomic_load(&total) - total_before,
           new_failures);
    fflush(stdout);
    return rc;
}

int pl_test_report(void)
{
    printf("%d checks, %d failed\n", atomic_load(&total), atomic_load(&failed));
    fflush(stdout);
    return atomic_load(&failed) ? 1 : 0;
}

bool pl_test_check_at(bool ok, const char *file, int line, const char *what, const char *fmt, ...)
{
    if (ok)
        return pl_test_pass_();
    va_list ap;
    va_start(ap, fmt);
    report_failure(file, line, what, fmt, ap);
    va_end(ap);
    return false;
}

bool pl_test_has_failed(void)
{
    return atomic_load(&failed) != 0;
}

void pl_test_step(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    flockfile(stdout);
    printf("-- ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    funlockfile(stdout);
    va_end(ap);
}

bool pl_test_eq_int_(const char *file, int line, const char *what, long long actual, long long expected)
{
    if (actual == expected)
        return pl_test_pass_();
    return pl_test_fail_(file, line, what, " actual %lld, expected %lld", actual, expected);
}

bool pl_test_eq_str_(const char *file, int line, const char *what, const char *actual, const char *expected)
{
    if (!actual || !expected ? actual == expected : strcmp(actual, expected) == 0)
        return pl_test_pass_();
    return pl_test_fail_(file, line, what, " actual   \"%s\"\n    expected \"%s\"", actual ? actual : "(null)",
                         expected ? expected : "(null)");
}

/* Up to 64 bytes as hex, then "..." if there are more. */
static void dump(char *out, size_t len, const void *p, size_t n)
{
    const unsigned char *b = p;
    size_t used = (size_t)snprintf(out, len, "(%zu bytes):", n);
    if (!p) {
        snprintf(out + used, len - used, " NULL");
        return;
    }
    for (size_t i = 0; i < n && i < 64 && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, " %02x", b[i]);
    if (n > 64 && used < len)
        snprintf(out + used, len - used, " ...");
}

bool pl_test_eq_mem_(const char *file, int line, const char *what, const void *actual, size_t actual_len,
                     const void *expected, size_t expected_len)
{
    if (actual_len == expected_len &&
        (!actual_len || (actual && expected && memcmp(actual, expected, actual_len) == 0)))
        return pl_test_pass_();
    char a[256], e[256];
    dump(a, sizeof(a), actual, actual_len);
    dump(e, sizeof(e), expected, expected_len);
    return pl_test_fail_(file, line, what, " actual   %s\n    expected %s", a, e);
}
