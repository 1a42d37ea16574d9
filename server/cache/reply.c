/* reply.c — typed results from Redis replies (see reply.h). */
#include "cache/reply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/errors.h"

typedef struct int_call {
    pl_cache_int_cb_t cb;
    void *user;
} int_call_t;

static void dispatch(const int_call_t *c, pl_code_t code, const char *message, int64_t value)
{
    switch (c->cb.kind) {
    case PL_CACHE_INT_DONE: c->cb.fn.done(code, message, c->user); return;
    case PL_CACHE_INT_FLAG: c->cb.fn.flag(code, message, value != 0, c->user); return;
    case PL_CACHE_INT_COUNT: c->cb.fn.count(code, message, value, c->user); return;
    }
}

static void on_int_reply(const pl_redis_result_t *res, void *user)
{
    int_call_t *c = user;
    int64_t v = 0;
    if (res->code != PL_CODE_OK)
        dispatch(c, res->code, res->message, 0);
    else if (res->reply->type != REDIS_REPLY_INTEGER)
        dispatch(c, PL_CODE_INTERNAL, "unexpected reply from redis (expected an integer)", 0);
    else if ((v = res->reply->integer) < 0)
        dispatch(c, PL_CODE_RESOURCE_EXHAUSTED, c->cb.limit_message ? c->cb.limit_message : "limit reached", 0);
    else
        dispatch(c, PL_CODE_OK, "OK", v);
    free(c);
}

int pl_cache_int_run(pl_redis_t *r, pl_redis_script_t *s, int nkeys, int argc, const char *const *argv,
                     const size_t *argvlen, const pl_cache_int_cb_t *cb, void *user)
{
    if (!cb || !cb->fn.done)
        return PL_ERR_INVALID;
    int_call_t *c = malloc(sizeof *c);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = *cb;
    c->user = user;
    int rc = s ? pl_redis_script_run(r, s, nkeys, argc - nkeys, argv, argvlen, on_int_reply, c)
               : pl_redis_command_argv(r, argc, argv, argvlen, on_int_reply, c);
    if (rc != 0)
        free(c);
    return rc;
}

static bool parse_digits(const redisReply *reply, char *buf, size_t cap)
{
    if (reply->type != REDIS_REPLY_STRING || reply->len == 0 || reply->len >= cap)
        return false;
    memcpy(buf, reply->str, reply->len);
    buf[reply->len] = '\0';
    return true;
}

bool pl_cache_reply_i64(const redisReply *reply, int64_t *out)
{
    if (!reply)
        return false;
    if (reply->type == REDIS_REPLY_INTEGER) {
        *out = reply->integer;
        return true;
    }
    char buf[24], *end;
    if (!parse_digits(reply, buf, sizeof buf))
        return false;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

bool pl_cache_reply_u64(const redisReply *reply, uint64_t *out)
{
    if (!reply)
        return false;
    if (reply->type == REDIS_REPLY_INTEGER) {
        if (reply->integer < 0)
            return false;
        *out = (uint64_t)reply->integer;
        return true;
    }
    char buf[24], *end;
    if (!parse_digits(reply, buf, sizeof buf) || buf[0] == '-')
        return false;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}
