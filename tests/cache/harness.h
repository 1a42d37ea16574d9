/* harness.h — what the tests in tests/cache share: one libevent loop to run
 * until something happens, the Redis that tests/harness/with_stack.sh
 * started, a synchronous way to send a raw command (for checking what the
 * typed layer stored), and the stack's controls (stop, start, pause Redis).
 * Checks come from the test kit (tests/lib). One test program per
 * translation unit: the loop and the flags here are file statics. */
#ifndef PL_TESTS_CACHE_HARNESS_H
#define PL_TESTS_CACHE_HARNESS_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <event2/event.h>

#include "cache/redis.h"
#include "check.h"
#include "runtime/clock.h"

static struct event_base *base;

/* Set around every submission: a callback that sees it set ran
 * synchronously, which the contract forbids. */
static bool in_submit;

static inline void harness_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    if (arg)
        (*(int *)arg)++;
}

typedef bool (*harness_pred)(void *arg);

/* Runs the loop until pred(arg) holds or ms pass; returns pred(arg). */
static inline bool run_until(harness_pred pred, void *arg, int ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, harness_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    int64_t end = pl_now_msec() + ms;
    while (!pred(arg) && pl_now_msec() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return pred(arg);
}

static inline bool pred_flag(void *arg)
{
    return *(const bool *)arg;
}

static inline bool pred_never(void *arg)
{
    (void)arg;
    return false;
}

static inline bool pred_redis_up(void *arg)
{
    return pl_redis_is_up(arg);
}

static inline bool wait_flag(const bool *flag, int ms)
{
    return run_until(pred_flag, (void *)flag, ms);
}

static inline void run_for(int ms)
{
    run_until(pred_never, NULL, ms);
}

static inline bool wait_up(pl_redis_t *r, int ms)
{
    return run_until(pred_redis_up, r, ms);
}

static inline pl_redis_config_t test_config(int node_id, int timeout_ms)
{
    const char *host = getenv("PARLEY_REDIS_HOST");
    const char *port = getenv("PARLEY_REDIS_PORT");
    if (!host || !port) {
        fprintf(stderr, "PARLEY_REDIS_HOST/PORT unset: run under tests/harness/with_stack.sh\n");
        exit(2);
    }
    return (pl_redis_config_t){.host = host, .port = atoi(port), .timeout_ms = timeout_ms, .node_id = node_id};
}

static inline pl_redis_t *new_client(const pl_redis_config_t *cfg)
{
    char err[256] = "";
    pl_redis_t *r = pl_redis_new(base, cfg, err, sizeof err);
    if (!r) {
        fprintf(stderr, "pl_redis_new: %s\n", err);
        exit(1);
    }
    return r;
}

/* What one raw command's callback saw. */
typedef struct raw_reply {
    bool done;
    int calls;
    pl_code_t code;
    char message[256];
    int type;
    long long integer;
    char *str; /* a copy of a string reply, NUL-terminated */
    size_t len;
    size_t elements;
    long long first; /* an array's first element, when an integer */
} raw_reply_t;

static raw_reply_t raw;

static inline void on_raw(const pl_redis_result_t *res, void *user)
{
    raw_reply_t *out = user;
    CHECK(!in_submit);
    out->calls++;
    out->done = true;
    out->code = res->code;
    snprintf(out->message, sizeof out->message, "%s", res->message);
    if (res->reply) {
        out->type = res->reply->type;
        out->integer = res->reply->integer;
        out->elements = res->reply->elements;
        if (res->reply->type == REDIS_REPLY_ARRAY && res->reply->elements &&
            res->reply->element[0]->type == REDIS_REPLY_INTEGER)
            out->first = res->reply->element[0]->integer;
        if (res->reply->str) {
            out->str = malloc(res->reply->len + 1);
            if (out->str) {
                memcpy(out->str, res->reply->str, res->reply->len);
                out->str[res->reply->len] = '\0';
                out->len = res->reply->len;
            }
        }
    }
}

static inline void raw_reset(raw_reply_t *out)
{
    free(out->str);
    memset(out, 0, sizeof *out);
}

/* Sends argv (binary: lens given) and waits up to 5 s for its reply. */
static inline const raw_reply_t *raw_argv(pl_redis_t *r, int argc, const char **argv, const size_t *lens)
{
    raw_reset(&raw);
    in_submit = true;
    int rc = pl_redis_command_argv(r, argc, argv, lens, on_raw, &raw);
    in_submit = false;
    CHECK_EQ_INT(rc, 0);
    if (rc == 0)
        CHECK(wait_flag(&raw.done, 5000));
    return &raw;
}

/* Sends the NULL-terminated C-string arguments and waits for the reply;
 * raw_cmd() adds the NULL. */
static inline const raw_reply_t *raw_cmd_(pl_redis_t *r, ...)
{
    const char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, r);
    const char *a;
    while (argc < 16 && (a = va_arg(ap, const char *)))
        argv[argc++] = a;
    va_end(ap);
    return raw_argv(r, argc, argv, NULL);
}

/* Redis's clock, Unix ms. */
#define raw_cmd(r, ...) raw_cmd_((r), __VA_ARGS__, (const char *)NULL)

static inline int64_t redis_time_ms(pl_redis_t *r)
{
    const char *argv[] = {"EVAL", "local t = redis.call('TIME') return t[1] * 1000 + math.floor(t[2] / 1000)", "0"};
    const raw_reply_t *x = raw_argv(r, 3, argv, NULL);
    CHECK_EQ_INT(x->code, PL_CODE_OK);
    return x->integer;
}

/* tools/stack CMD --dir $PARLEY_STACK_DIR; the loop stands still meanwhile. */
static inline int stack_run(const char *cmd)
{
    const char *dir = getenv("PARLEY_STACK_DIR");
    if (!dir) {
        fprintf(stderr, "PARLEY_STACK_DIR unset: run under tests/harness/with_stack.sh\n");
        exit(2);
    }
    char line[2048];
    snprintf(line, sizeof line, "'%s/tools/stack' %s --dir '%s' >&2", PARLEY_SOURCE_DIR, cmd, dir);
    return system(line);
}

static inline pid_t redis_pid(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/redis/redis.pid", getenv("PARLEY_STACK_DIR"));
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

static inline void harness_begin(void)
{
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base) {
        fprintf(stderr, "event_base_new failed\n");
        exit(1);
    }
}

static inline int harness_end(void)
{
    raw_reset(&raw);
    event_base_free(base);
    libevent_global_shutdown();
    return pl_test_report();
}

#endif
