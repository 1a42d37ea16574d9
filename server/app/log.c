/* log.c — timestamped lines on stderr; one write per line, so lines from
 * different threads never interleave. */
#include "app/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static pl_log_level_t max_level = PL_LOG_INFO;

void pl_log_init(void)
{
    const char *v = getenv("PARLEY_LOG");
    if (!v)
        return;
    if (strcasecmp(v, "debug") == 0)
        max_level = PL_LOG_DEBUG;
    else if (strcasecmp(v, "warn") == 0)
        max_level = PL_LOG_WARN;
    else if (strcasecmp(v, "error") == 0)
        max_level = PL_LOG_ERROR;
}

void pl_log(pl_log_level_t level, const char *fmt, ...)
{
    if (level > max_level)
        return;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char line[1024];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03ldZ parleyd %s: ", ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : (n + m > (int)sizeof(line) - 2 ? (int)sizeof(line) - 2 : n + m);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}
