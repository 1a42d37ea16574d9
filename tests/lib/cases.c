/* cases.c — see cases.h. */
#include "cases.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define RSS_SAMPLE_US 5000

int pl_test_cases_parse(int argc, char **argv, const char *prog, bool (*extra)(const char *arg), uint16_t *port,
                        pid_t *pid, const char **which)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--port=", 7) == 0)
            *port = (uint16_t)atoi(argv[i] + 7);
        else if (strncmp(argv[i], "--pid=", 6) == 0)
            *pid = (pid_t)atoi(argv[i] + 6);
        else if (strncmp(argv[i], "--case=", 7) == 0)
            *which = argv[i] + 7;
        else if (!extra || !extra(argv[i])) {
            fprintf(stderr, "%s: unknown argument %s\n", prog, argv[i]);
            return 2;
        }
    }
    const char *addr = getenv("PARLEY_ADDR"), *pids = getenv("PARLEY_PIDS");
    if (!*port && addr && strrchr(addr, ':'))
        *port = (uint16_t)atoi(strrchr(addr, ':') + 1);
    if (!*pid && pids)
        *pid = (pid_t)atoi(pids);
    if (!*port || !*pid || !*which) {
        fprintf(stderr, "usage: %s --port=N --pid=N --case=NAME ...\n", prog);
        return 2;
    }
    return 0;
}

int pl_test_cases_run(const char *prog, const pl_test_case_t *cases, size_t n, const char *which)
{
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(cases[i].name, which) == 0)
            return pl_test_run(which, cases[i].run);
    fprintf(stderr, "%s: unknown case %s\n", prog, which);
    return 2;
}

long pl_test_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

double pl_test_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long utime, stime;
    /* after ")": state, then fields 4..13, then utime (14) and stime (15) */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

int pl_test_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static pthread_t rss_thread;
static atomic_bool rss_running;
static atomic_long rss_peak;
static pid_t rss_pid;

static void note_rss(void)
{
    long v = pl_test_rss_kib(rss_pid);
    if (v > atomic_load(&rss_peak))
        atomic_store(&rss_peak, v);
}

static void *rss_main(void *arg)
{
    (void)arg;
    while (atomic_load(&rss_running)) {
        note_rss();
        usleep(RSS_SAMPLE_US);
    }
    return NULL;
}

void pl_test_rss_peak_start(pid_t pid)
{
    rss_pid = pid;
    atomic_store(&rss_peak, pl_test_rss_kib(pid));
    atomic_store(&rss_running, true);
    pthread_create(&rss_thread, NULL, rss_main, NULL);
}

long pl_test_rss_peak_stop(void)
{
    atomic_store(&rss_running, false);
    pthread_join(rss_thread, NULL);
    note_rss();
    return atomic_load(&rss_peak);
}
