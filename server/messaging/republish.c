/* republish.c — events that did not reach the other nodes because Redis
 * failed the route lookup or the publish (a timeout, a reset connection)
 * while the nodes' own subscriptions stayed up, so no resync would follow:
 * kept per worker and sent again once Redis answers, until a deadline. A
 * late event is harmless: streams deliver each seq once and in order, and a
 * receiver that already caught up ignores it. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "cache/redis.h"
#include "messaging/messaging_internal.h"
#include "runtime/clock.h"

#define REPUBLISH_MAX 8192 /* waiting per worker; past it, streams get what is dropped on their next catch-up */
#define REPUBLISH_RETRY_MS 200
#define REPUBLISH_GIVE_UP_MS 60000 /* by then subscribers have lost Redis too, and resync */

struct pl_republish {
    pl_list_node_t link;
    pl_msg_event_t *e;
    int node;          /* >= 0: publish to this node; -1: look the routes up first */
    int64_t device_id; /* device events: only nodes holding that device */
    int64_t give_up_ms;
    size_t n;
    int64_t accounts[]; /* for a lookup */
};

static void on_retry(evutil_socket_t fd, short what, void *arg);

static void arm(pl_msg_worker_t *mw)
{
    if (!mw->republish_ev)
        mw->republish_ev = evtimer_new(pl_worker_base(mw->w), on_retry, mw);
    if (mw->republish_ev && !evtimer_pending(mw->republish_ev, NULL)) {
        struct timeval tv = {0, REPUBLISH_RETRY_MS * 1000};
        evtimer_add(mw->republish_ev, &tv);
    }
}

void pl_republish_later(pl_msg_worker_t *mw, pl_msg_event_t *e, int node, int64_t device_id, const int64_t *accounts,
                        size_t n, int64_t give_up_ms)
{
    int64_t now = pl_now_usec() / 1000;
    if (!give_up_ms)
        give_up_ms = now + REPUBLISH_GIVE_UP_MS;
    if (now >= give_up_ms || mw->republish.count >= REPUBLISH_MAX) {
        mw->republish_dropped++;
        if (mw->republish_dropped == 1 || mw->republish_dropped % 1000 == 0)
            pl_log_error("fanout: %llu events could not reach other nodes through Redis; their streams get them "
                         "when they next catch up",
                         (unsigned long long)mw->republish_dropped);
        return;
    }
    pl_republish_t *r = malloc(sizeof(*r) + (node < 0 ? n : 0) * sizeof(int64_t));
    if (!r) {
        mw->republish_dropped++;
        return;
    }
    *r = (pl_republish_t){{0}, e, node, device_id, give_up_ms, node < 0 ? n : 0};
    if (node < 0 && n)
        memcpy(r->accounts, accounts, n * sizeof(int64_t));
    pl_msg_event_ref(e);
    pl_list_push(&mw->republish, &r->link);
    arm(mw);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_msg_worker_t *mw = arg;
    pl_redis_t *redis = pl_app_redis(mw->m->app, mw->w);
    if (!redis || !pl_redis_is_up(redis)) {
        arm(mw); /* still reconnecting */
        return;
    }
    /* take the list: what fails again is queued anew (with its deadline) */
    pl_list_t taken = mw->republish;
    mw->republish = (pl_list_t){0};
    pl_list_each_safe (&taken, n, next) {
        pl_republish_t *r = pl_list_entry(n, pl_republish_t, link);
        if (r->node >= 0)
            pl_fanout_publish_node(mw, r->e, r->node, r->give_up_ms);
        else
            pl_fanout_publish_lookup(mw, r->e, r->accounts, r->n, r->device_id, r->give_up_ms);
        pl_msg_event_unref(r->e);
        free(r);
    }
}

void pl_republish_stop(pl_msg_worker_t *mw)
{
    if (mw->republish_ev)
        event_free(mw->republish_ev);
    mw->republish_ev = NULL;
    pl_list_each_safe (&mw->republish, n, next) {
        pl_republish_t *r = pl_list_entry(n, pl_republish_t, link);
        pl_msg_event_unref(r->e);
        free(r);
    }
    mw->republish = (pl_list_t){0};
}
