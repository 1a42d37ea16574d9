/* log.h — one line per event on stderr, with time, level and worker, for
 * operators. Messages never contain message payloads or tokens. */
#ifndef PL_APP_LOG_H
#define PL_APP_LOG_H

typedef enum pl_log_level {
    PL_LOG_ERROR = 0,
    PL_LOG_WARN = 1,
    PL_LOG_INFO = 2,
    PL_LOG_DEBUG = 3,
} pl_log_level_t;

/* Lines above this level are dropped (default INFO; PARLEY_LOG=debug|info|warn|error). */
void pl_log_init(void);
void pl_log(pl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pl_log_error(...) pl_log(PL_LOG_ERROR, __VA_ARGS__)
#define pl_log_warn(...) pl_log(PL_LOG_WARN, __VA_ARGS__)
#define pl_log_info(...) pl_log(PL_LOG_INFO, __VA_ARGS__)
#define pl_log_debug(...) pl_log(PL_LOG_DEBUG, __VA_ARGS__)

#endif
