/* dispatch.c — what one worker does with a node event that reached it
 * (fanout.c carries them): the NodeEvent switch that hands each kind to the
 * streams of the accounts it names (deliver.c, receipts.c, typing.c,
 * presence.c), and the resync of this worker's streams after Redis came
 * back. */
#include <event2/event.h>

#include "cache/routes.h"
#include "messaging/dispatch.h"

static int64_t account_at(const parley_internal_v1_NodeEvent *ev, size_t i)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | ev->accounts.data[i * 8 + (size_t)k];
    return (int64_t)v;
}

static void end_device_streams(pl_msg_worker_t *mw, const parley_internal_v1_DeviceEvent *d, bool removed)
{
    pl_stream_t *s = pl_idmap_get(&mw->by_device, d->device_id);
    if (!s || s->account_id != d->account_id)
        return;
    if (removed) {
        pl_stream_end(s, PL_CODE_UNAUTHENTICATED, "this device was removed");
        return;
    }
    /* a newer stream (by epoch, then node) took the device over */
    int my_node = mw->m->app->cfg->node_id;
    if ((uint64_t)d->epoch > s->epoch || ((uint64_t)d->epoch == s->epoch && d->node != my_node))
        pl_stream_end(s, PL_CODE_ABORTED, "replaced by a newer stream of this device");
}

void pl_dispatch(pl_msg_worker_t *mw, pl_msg_event_t *e)
{
    const parley_internal_v1_NodeEvent *ev = pl_msg_event_node(e);
    size_t n = ev->accounts.len / 8;
    switch (ev->which_event) {
    case parley_internal_v1_NodeEvent_device_connected_tag:
        end_device_streams(mw, &ev->event.device_connected, false);
        return;
    case parley_internal_v1_NodeEvent_device_removed_tag:
        end_device_streams(mw, &ev->event.device_removed, true);
        return;
    case parley_internal_v1_NodeEvent_presence_tag: {
        int64_t accounts[64];
        size_t k = pl_fanout_accounts(ev, accounts, 64);
        pl_presence_deliver(mw, &ev->event.presence, accounts, k);
        return;
    }
    case parley_internal_v1_NodeEvent_privacy_changed_tag:
        pl_presence_deliver(mw, NULL, &ev->event.privacy_changed.account_id, 1);
        return;
    case parley_internal_v1_NodeEvent_devices_changed_tag: return; /* no per-worker device cache to drop yet */
    case parley_internal_v1_NodeEvent_chat_changed_tag: pl_members_forget(mw, ev->event.chat_changed.chat_id); break;
    default: break;
    }
    for (size_t i = 0; i < n; i++) {
        pl_stream_t *next;
        for (pl_stream_t *s = pl_registry_first(mw, account_at(ev, i)); s; s = next) {
            next = s->next_of_account; /* delivery may end the stream */
            switch (ev->which_event) {
            case parley_internal_v1_NodeEvent_message_tag:
                pl_deliver_message(s, e); /* the sender's own device only takes its place */
                break;
            case parley_internal_v1_NodeEvent_chat_changed_tag:
                if (ev->event.chat_changed.seq > 0) { /* seq 0: only the caches change */
                    chat_state_t *cs = pl_deliver_chat(s, ev->event.chat_changed.chat_id, true);
                    if (cs)
                        pl_deliver_exists(cs, ev->event.chat_changed.seq);
                    pl_deliver_hint(s, ev->event.chat_changed.chat_id, ev->event.chat_changed.seq);
                }
                break;
            case parley_internal_v1_NodeEvent_receipt_tag: pl_receipts_deliver(s, &ev->event.receipt); break;
            case parley_internal_v1_NodeEvent_typing_tag:
                if (s->device_id != ev->event.typing.device_id)
                    pl_typing_deliver(s, &ev->event.typing);
                break;
            default: break;
            }
        }
    }
}

#define RESYNC_RETRY_MS 250

static void resync_streams(pl_msg_worker_t *mw);

static void on_resync_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resync_streams(arg);
}

/* Tries the whole worker again shortly (Redis is not back on this worker's
 * connection yet, or a route could not be written). */
static void retry_resync(pl_msg_worker_t *mw)
{
    if (!mw->resync_ev)
        mw->resync_ev = evtimer_new(pl_worker_base(mw->w), on_resync_retry, mw);
    if (mw->resync_ev && !evtimer_pending(mw->resync_ev, NULL)) {
        struct timeval tv = {0, RESYNC_RETRY_MS * 1000};
        evtimer_add(mw->resync_ev, &tv);
    }
}

static void on_route_back(pl_code_t code, const char *message, bool still_ours, void *user)
{
    (void)message;
    pl_stream_t *s = user;
    if (code != PL_CODE_OK) {
        if (!s->is_closing)
            retry_resync(s->mw);
    } else if (!still_ours) {
        if (!s->is_closing)
            pl_stream_end(s, PL_CODE_ABORTED, "replaced by a newer stream of this device");
    } else {
        pl_deliver_resync(s); /* what was stored while we were unreachable */
    }
    pl_call_unref(s->call);
}

/* Redis came back (perhaps empty): first make this worker's streams
 * reachable again (routes, watch records), then catch each up, so that
 * nothing stored in between is missed. */
static void resync_streams(pl_msg_worker_t *mw)
{
    pl_messaging_t *m = mw->m;
    pl_redis_t *r = pl_app_redis(m->app, mw->w);
    if (!r || !pl_redis_is_up(r)) {
        retry_resync(mw);
        return;
    }
    for (size_t i = 0; i < mw->by_device.cap; i++) {
        pl_stream_t *s = mw->by_device.slots[i].value;
        if (!mw->by_device.slots[i].key || s->is_closing)
            continue;
        pl_cache_route_t route = {s->account_id, s->device_id, m->app->cfg->node_id, s->epoch};
        pl_call_ref(s->call);
        if (pl_cache_route_refresh(r, &route, PL_STREAM_ROUTE_TTL_S, on_route_back, s) != 0) {
            pl_call_unref(s->call);
            retry_resync(mw);
        }
        pl_presence_rewatch(s);
    }
}

void pl_dispatch_resync_worker(pl_worker_t *w, void *arg)
{
    pl_msg_worker_t *mw = pl_msg_worker(arg, w);
    if (mw)
        resync_streams(mw);
}

void pl_dispatch_stop(pl_msg_worker_t *mw)
{
    if (mw->resync_ev)
        event_free(mw->resync_ev);
    mw->resync_ev = NULL;
}
