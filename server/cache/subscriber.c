/* subscriber.c — a node's subscription to its own channel (see pubsub.h):
 * SUBSCRIBE once the link is up, probe it, and report each activation.
 *
 * hiredis 0.14 routes pub/sub replies through a per-channel callback table
 * and may hand a reply it cannot place to the previous callback, so every
 * reply on this connection goes to on_reply(), which looks at what the reply
 * is rather than trusting which callback got it. User callbacks may free the
 * subscriber; s->depth defers the teardown until on_reply() unwinds. */
#include "cache/pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/async.h>

#include "cache/keys.h"
#include "cache/link.h"
#include "runtime/clock.h"

struct pl_cache_sub {
    pl_redis_link_t *link;
    struct event *timer; /* the next probe, or the pending probe's deadline */
    char channel[PL_CACHE_KEY_MAX];
    size_t channel_len;
    pl_cache_message_fn on_message;
    pl_cache_subscribed_fn on_subscribed;
    void *user;
    int timeout_ms;
    int64_t probe_sent_us; /* 0: no SUBSCRIBE awaiting its confirmation */
    bool is_subscribed;
    bool has_subscribed; /* ever: the next activation is a resync */
    int depth;           /* user callbacks on the stack */
    bool is_freed;
};

static void teardown(pl_cache_sub_t *s)
{
    pl_redis_link_free(s->link);
    if (s->timer)
        event_free(s->timer);
    free(s);
}

/* Ends a user callback; s may be gone afterwards. */
static void leave(pl_cache_sub_t *s)
{
    if (--s->depth == 0 && s->is_freed)
        teardown(s);
}

static void arm(pl_cache_sub_t *s, int64_t usec)
{
    if (usec < 0)
        usec = 0;
    struct timeval tv = {.tv_sec = (time_t)(usec / 1000000), .tv_usec = (suseconds_t)(usec % 1000000)};
    evtimer_add(s->timer, &tv);
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)privdata;
    pl_cache_sub_t *s = pl_redis_link_owner(ac);
    const redisReply *reply = reply_;
    if (!s || s->is_freed || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return; /* going down, or not a pub/sub push */
    const char *kind = reply->element[0]->str;
    const redisReply *channel = reply->element[1];
    if (channel->type != REDIS_REPLY_STRING || channel->len != s->channel_len ||
        memcmp(channel->str, s->channel, channel->len) != 0)
        return;
    if (strcasecmp(kind, "message") == 0) {
        const redisReply *payload = reply->element[2];
        if (payload->type != REDIS_REPLY_STRING)
            return;
        s->depth++;
        s->on_message(payload->str, payload->len, s->user);
        leave(s);
    } else if (strcasecmp(kind, "subscribe") == 0) {
        s->probe_sent_us = 0;
        arm(s, (int64_t)PL_CACHE_SUB_PROBE_MS * 1000);
        if (s->is_subscribed)
            return; /* a probe's confirmation */
        s->is_subscribed = true;
        bool is_resync = s->has_subscribed;
        s->has_subscribed = true;
        s->depth++;
        s->on_subscribed(is_resync, s->user);
        leave(s);
    } else if (strcasecmp(kind, "unsubscribe") == 0) {
        pl_redis_link_drop(s->link, "unsubscribed by the server");
    }
}

/* SUBSCRIBE, the first time on a connection and then as the probe. A
 * command that cannot even be queued is left to fail at its deadline. */
static void send_subscribe(pl_cache_sub_t *s)
{
    redisAsyncContext *ac = pl_redis_link_context(s->link);
    if (!ac)
        return;
    const char *argv[2] = {"SUBSCRIBE", s->channel};
    size_t argvlen[2] = {9, s->channel_len};
    (void)redisAsyncCommandArgv(ac, on_reply, NULL, 2, argv, argvlen);
    s->probe_sent_us = pl_now_usec();
    arm(s, (int64_t)s->timeout_ms * 1000);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_cache_sub_t *s = arg;
    if (!pl_redis_link_is_up(s->link))
        return;
    if (!s->probe_sent_us) {
        send_subscribe(s);
        return;
    }
    int64_t left = s->probe_sent_us + (int64_t)s->timeout_ms * 1000 - pl_now_usec();
    if (left > 2000) {
        arm(s, left); /* woken early */
        return;
    }
    char why[96];
    snprintf(why, sizeof why, "subscription not confirmed within %d ms", s->timeout_ms);
    pl_redis_link_drop(s->link, why); /* on_down resets the state; the link reconnects */
}

static void on_link_up(void *owner)
{
    send_subscribe(owner);
}

static void on_link_down(void *owner)
{
    pl_cache_sub_t *s = owner;
    s->is_subscribed = false;
    s->probe_sent_us = 0;
    evtimer_del(s->timer);
}

pl_cache_sub_t *pl_cache_sub_new(struct event_base *base, const pl_redis_config_t *cfg, pl_cache_message_fn on_message,
                                 pl_cache_subscribed_fn on_subscribed, void *user, char *err, size_t err_len)
{
    if (!base || !cfg || cfg->node_id < 0 || !on_message || !on_subscribed) {
        if (err && err_len)
            snprintf(err, err_len,
                     "redis subscriber: a loop, a config with a node id >= 0 and two callbacks are required");
        return NULL;
    }
    pl_cache_sub_t *s = calloc(1, sizeof *s);
    if (!s || !(s->timer = evtimer_new(base, on_timer, s))) {
        if (err && err_len)
            snprintf(err, err_len, "redis subscriber: out of memory");
        free(s);
        return NULL;
    }
    s->channel_len = pl_cache_key_id(s->channel, PL_CACHE_KEY_NODE, cfg->node_id);
    s->on_message = on_message;
    s->on_subscribed = on_subscribed;
    s->user = user;
    s->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : PL_REDIS_DEFAULT_TIMEOUT_MS;
    pl_redis_link_hooks_t hooks = {.on_up = on_link_up, .on_down = on_link_down};
    if (!(s->link = pl_redis_link_new(base, cfg, "sub", &hooks, s, err, err_len))) {
        event_free(s->timer);
        free(s);
        return NULL;
    }
    return s;
}

void pl_cache_sub_free(pl_cache_sub_t *s)
{
    if (!s || s->is_freed)
        return;
    s->is_freed = true;
    if (s->depth == 0)
        teardown(s);
}

bool pl_cache_sub_is_subscribed(const pl_cache_sub_t *s)
{
    return s && !s->is_freed && s->is_subscribed && pl_redis_link_is_up(s->link);
}
