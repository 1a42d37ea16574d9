/* redis.c — the command client (see redis.h): commands in flight, their
 * deadline, their bound, and the callback contract.
 *
 * Every command gets a record that hiredis carries as privdata. The records
 * in flight form a list in submission order, which is also reply order and
 * deadline order (one timeout for all), so a single timer watching the
 * oldest one enforces every deadline. When it passes, the server is hung or
 * the link is dead: the connection is dropped, which fails everything still
 * in flight, and link.c reconnects. A record whose callback has already run
 * (pl_redis_free) is "detached" (r == NULL) and merely freed when hiredis
 * hands it back, so a late reply can never reach a finished caller.
 *
 * Re-entrancy: callbacks may submit commands or free r. Every entry point
 * from the loop holds r->depth, and pl_redis_free() only tears down once the
 * outermost one unwinds. */
#include "cache/redis.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "cache/link.h"
#include "runtime/clock.h"
#include "runtime/errors.h"
#include "runtime/list.h"

/* libevent's coarse clock may wake us a little before a deadline; closer
 * than this counts as passed rather than re-arming for a few microseconds. */
#define TIMER_SLACK_US 2000

typedef struct pl_redis_cmd pl_redis_cmd_t;

typedef enum fail_kind {
    FAIL_DOWN,     /* not connected */
    FAIL_INFLIGHT, /* max_inflight reached */
    FAIL_BUFFER,   /* PL_REDIS_MAX_PENDING_BYTES reached */
} fail_kind_t;

struct pl_redis_cmd {
    pl_list_node_t link; /* in inflight or failed */
    pl_redis_t *r;       /* NULL once detached: the callback has run, hiredis still holds the record */
    pl_redis_cb cb;
    void *user;
    int64_t deadline_us;
    fail_kind_t fail; /* for records in the failed queue */
};

struct pl_redis {
    struct event_base *base;
    pl_redis_link_t *link;
    pl_list_t inflight;       /* sent, oldest first */
    pl_list_t failed;         /* failed before reaching Redis; completed from fail_ev */
    struct event *fail_ev;    /* runs the failed queue on the next loop turn */
    struct event *timeout_ev; /* the oldest in-flight command's deadline */
    int timeout_ms;
    size_t max_inflight;
    int depth; /* entry points on the stack */
    bool is_freed;
    uint64_t stat_completed, stat_failed, stat_timeouts;
};

static pl_redis_cmd_t *cmd_of(pl_list_node_t *n)
{
    return n ? pl_list_entry(n, pl_redis_cmd_t, link) : NULL;
}

static void teardown(pl_redis_t *r)
{
    pl_redis_link_free(r->link); /* hiredis hands back the detached records: freed in on_reply */
    event_free(r->fail_ev);
    event_free(r->timeout_ev);
    free(r);
}

static void enter(pl_redis_t *r)
{
    r->depth++;
}

/* Ends an entry point; r may be gone afterwards. */
static void leave(pl_redis_t *r)
{
    if (--r->depth == 0 && r->is_freed)
        teardown(r);
}

static void run_cb(pl_redis_t *r, pl_redis_cb cb, void *user, pl_code_t code, const char *message,
                   const redisReply *reply)
{
    r->stat_completed++;
    r->stat_failed += code != PL_CODE_OK;
    pl_redis_result_t res = {.code = code, .message = message, .reply = reply};
    cb(&res, user);
}

/* Error replies that mean "Redis cannot serve this right now", not "this
 * command is wrong". */
static pl_code_t code_for_error(const char *msg)
{
    static const char *const transient[] = {"LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof transient / sizeof transient[0]; i++) {
        size_t n = strlen(transient[i]);
        if (msg && strncmp(msg, transient[i], n) == 0 && (msg[n] == ' ' || msg[n] == '\0'))
            return PL_CODE_UNAVAILABLE;
    }
    return PL_CODE_INTERNAL;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    pl_redis_cmd_t *cmd = privdata;
    pl_redis_t *r = cmd->r;
    const redisReply *reply = reply_;
    if (!r) {
        free(cmd); /* its callback already ran */
        return;
    }
    pl_list_remove(&r->inflight, &cmd->link);
    enter(r);
    if (!reply) {
        /* hiredis is failing everything pending: an error (ac->err says
         * which) or our own drop (the link recorded why). */
        char msg[200];
        snprintf(msg, sizeof msg, "redis unavailable: %s",
                 ac->err && ac->c.errstr[0] ? ac->c.errstr : pl_redis_link_error(r->link));
        run_cb(r, cmd->cb, cmd->user, PL_CODE_UNAVAILABLE, msg, NULL);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        run_cb(r, cmd->cb, cmd->user, code_for_error(reply->str), reply->str ? reply->str : "redis error", reply);
    } else {
        run_cb(r, cmd->cb, cmd->user, PL_CODE_OK, "OK", reply);
    }
    free(cmd);
    leave(r);
}

static void arm_timeout(pl_redis_t *r, int64_t usec)
{
    if (usec < 0)
        usec = 0;
    struct timeval tv = {.tv_sec = (time_t)(usec / 1000000), .tv_usec = (suseconds_t)(usec % 1000000)};
    evtimer_add(r->timeout_ev, &tv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_redis_t *r = arg;
    pl_redis_cmd_t *oldest = cmd_of(r->inflight.head);
    if (!oldest)
        return;
    int64_t now = pl_now_usec();
    if (oldest->deadline_us > now + TIMER_SLACK_US) {
        arm_timeout(r, oldest->deadline_us - now);
        return;
    }
    enter(r);
    char why[96];
    snprintf(why, sizeof why, "no reply within %d ms (connection reset)", r->timeout_ms);
    r->stat_timeouts++;
    pl_redis_link_drop(r->link, why); /* fails everything in flight through on_reply */
    /* Only a record hiredis lost (it ignores an allocation failure when
     * queueing a callback) can still be here; fail it ourselves. */
    pl_redis_cmd_t *cmd;
    while (!r->is_freed && (cmd = cmd_of(pl_list_shift(&r->inflight)))) {
        run_cb(r, cmd->cb, cmd->user, PL_CODE_UNAVAILABLE, "redis unavailable: no reply", NULL);
        free(cmd);
    }
    leave(r);
}

static const char *fail_message(const pl_redis_t *r, fail_kind_t kind, char *buf, size_t len)
{
    switch (kind) {
    case FAIL_DOWN: {
        const char *why = pl_redis_link_error(r->link);
        snprintf(buf, len, "redis unavailable: %s", why[0] ? why : "not connected yet");
        return buf;
    }
    case FAIL_INFLIGHT:
        snprintf(buf, len, "too many redis commands in flight (limit %zu)", r->max_inflight);
        return buf;
    case FAIL_BUFFER: return "redis output buffer full";
    }
    return "redis unavailable";
}

static pl_code_t fail_code(fail_kind_t kind)
{
    return kind == FAIL_DOWN ? PL_CODE_UNAVAILABLE : PL_CODE_RESOURCE_EXHAUSTED;
}

/* Completes the failures queued before this turn; later ones (queued by
 * these callbacks) wait for the next turn, so a caller that retries on
 * failure cannot keep the loop here forever. */
static void on_failed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_redis_t *r = arg;
    enter(r);
    size_t n = r->failed.count;
    pl_redis_cmd_t *cmd;
    char buf[200];
    while (n-- > 0 && !r->is_freed && (cmd = cmd_of(pl_list_shift(&r->failed)))) {
        const char *msg = fail_message(r, cmd->fail, buf, sizeof buf);
        run_cb(r, cmd->cb, cmd->user, fail_code(cmd->fail), msg, NULL);
        free(cmd);
    }
    if (!r->is_freed && r->failed.count)
        event_active(r->fail_ev, EV_TIMEOUT, 0);
    leave(r);
}

static int fail_later(pl_redis_t *r, pl_redis_cmd_t *cmd, fail_kind_t kind)
{
    cmd->fail = kind;
    cmd->r = NULL;
    pl_list_push(&r->failed, &cmd->link);
    event_active(r->fail_ev, EV_TIMEOUT, 0);
    return 0;
}

int pl_redis_command_argv(pl_redis_t *r, int argc, const char *const *argv, const size_t *argvlen, pl_redis_cb cb,
                          void *user)
{
    if (!r || argc <= 0 || !argv || !cb)
        return PL_ERR_INVALID;
    if (r->is_freed)
        return PL_ERR_CLOSED;
    pl_redis_cmd_t *cmd = calloc(1, sizeof *cmd);
    if (!cmd)
        return PL_ERR_NOMEM;
    cmd->cb = cb;
    cmd->user = user;
    redisAsyncContext *ac = pl_redis_link_context(r->link);
    if (!ac)
        return fail_later(r, cmd, FAIL_DOWN);
    if (r->inflight.count >= r->max_inflight)
        return fail_later(r, cmd, FAIL_INFLIGHT);
    if (sdslen(ac->c.obuf) >= PL_REDIS_MAX_PENDING_BYTES)
        return fail_later(r, cmd, FAIL_BUFFER);
    cmd->r = r;
    cmd->deadline_us = pl_now_usec() + (int64_t)r->timeout_ms * 1000;
    /* hiredis copies the arguments into its output buffer here. */
    if (redisAsyncCommandArgv(ac, on_reply, cmd, argc, (const char **)argv, argvlen) != REDIS_OK)
        return fail_later(r, cmd, FAIL_DOWN);
    pl_list_push(&r->inflight, &cmd->link);
    if (!evtimer_pending(r->timeout_ev, NULL))
        arm_timeout(r, (int64_t)r->timeout_ms * 1000);
    return 0;
}

pl_redis_t *pl_redis_new(struct event_base *base, const pl_redis_config_t *cfg, char *err, size_t err_len)
{
    pl_redis_t *r = calloc(1, sizeof *r);
    if (!r) {
        if (err && err_len)
            snprintf(err, err_len, "redis: out of memory");
        return NULL;
    }
    r->base = base;
    r->timeout_ms = cfg && cfg->timeout_ms > 0 ? cfg->timeout_ms : PL_REDIS_DEFAULT_TIMEOUT_MS;
    r->max_inflight = cfg && cfg->max_inflight > 0 ? (size_t)cfg->max_inflight : PL_REDIS_DEFAULT_MAX_INFLIGHT;
    if (!base || !(r->fail_ev = event_new(base, -1, 0, on_failed, r)) ||
        !(r->timeout_ev = evtimer_new(base, on_timeout, r))) {
        if (err && err_len)
            snprintf(err, err_len, "redis: cannot create events");
        if (r->fail_ev)
            event_free(r->fail_ev);
        free(r);
        return NULL;
    }
    /* The command connection needs no hooks: hiredis fails what is in
     * flight when it goes down, and nothing waits for it to come up. */
    r->link = pl_redis_link_new(base, cfg, "cmd", NULL, r, err, err_len);
    if (!r->link) {
        event_free(r->fail_ev);
        event_free(r->timeout_ev);
        free(r);
        return NULL;
    }
    return r;
}

void pl_redis_free(pl_redis_t *r)
{
    if (!r || r->is_freed)
        return;
    r->is_freed = true; /* from here, new commands are refused */
    enter(r);
    pl_redis_cmd_t *cmd;
    while ((cmd = cmd_of(pl_list_shift(&r->failed)))) {
        run_cb(r, cmd->cb, cmd->user, PL_CODE_CANCELLED, "redis client closed", NULL);
        free(cmd);
    }
    while ((cmd = cmd_of(pl_list_shift(&r->inflight)))) {
        cmd->r = NULL; /* hiredis still holds it; on_reply frees it */
        run_cb(r, cmd->cb, cmd->user, PL_CODE_CANCELLED, "redis client closed", NULL);
    }
    leave(r);
}

bool pl_redis_is_up(const pl_redis_t *r)
{
    return r && !r->is_freed && pl_redis_link_is_up(r->link);
}

size_t pl_redis_inflight(const pl_redis_t *r)
{
    return r ? r->inflight.count : 0;
}

void pl_redis_stats(const pl_redis_t *r, pl_redis_stats_t *out)
{
    uint64_t ups = pl_redis_link_ups(r->link);
    *out = (pl_redis_stats_t){
        .completed = r->stat_completed,
        .failed = r->stat_failed,
        .timeouts = r->stat_timeouts,
        .reconnects = ups ? ups - 1 : 0,
    };
}
