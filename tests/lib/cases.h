/* cases.h — a program of named cases against a server that a harness
 * started (tests/harness/with_server.py, with_parleyd.py): the arguments
 * every such program takes, the case it runs, and what a case measures of
 * the server's process (RSS, CPU time, open descriptors) from /proc. */
#ifndef PL_TESTS_LIB_CASES_H
#define PL_TESTS_LIB_CASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct pl_test_case {
    const char *name;
    int (*run)(void);
} pl_test_case_t;

/* --port=N, --pid=N (else PARLEY_ADDR's port and PARLEY_PIDS' first pid)
 * and --case=NAME; every other argument goes to extra (NULL: none allowed),
 * which returns false for one it does not know. 0, or 2 after printing the
 * usage when an argument is unknown or one of the three is missing. */
int pl_test_cases_parse(int argc, char **argv, const char *prog, bool (*extra)(const char *arg), uint16_t *port,
                        pid_t *pid, const char **which);
/* Runs the case named which (pl_test_run) with SIGPIPE ignored and stdout
 * line-buffered; its exit status, or 2 for a name not among the n cases. */
int pl_test_cases_run(const char *prog, const pl_test_case_t *cases, size_t n, const char *which);

/* The process's resident set in KiB, CPU time (user + system) in seconds,
 * open descriptors; -1 if it cannot be read. */
long pl_test_rss_kib(pid_t pid);
double pl_test_cpu_seconds(pid_t pid);
int pl_test_fd_count(pid_t pid);
/* Samples pid's RSS every 5 ms on a thread until pl_test_rss_peak_stop,
 * which returns the peak in KiB. One at a time. */
void pl_test_rss_peak_start(pid_t pid);
long pl_test_rss_peak_stop(void);

#endif
