/* presence.c — online state and last seen (Redis only, with TTLs), who may
 * see them (privacy settings, contacts, blocking), and the subscriptions
 * streams hold. A node watching an account records itself in
 * parley:watch:<account>, so a node where that account's presence changes
 * knows where to publish it. Also the worker's slow heartbeat: routes and
 * watch records are refreshed a slice at a time. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "cache/presence.h"
#include "cache/routes.h"
#include "messaging/messaging_internal.h"

#define WATCH_TTL_S 300
#define TICK_MS 1000
#define REFRESH_PERIOD_S 60 /* every stream's route once a minute */

/* One stream watching one account, on the worker's list for that account. */
typedef struct watch {
    struct watch *next;
    pl_stream_t *s;
    int64_t target;
    bool online_ok, last_seen_ok; /* what privacy lets this viewer see */
    bool is_checked;              /* privacy known */
    bool is_dead;                 /* unsubscribed while a lookup was out */
    int busy;                     /* lookups out (they hold the call, not this) */
} watch_t;

/* Drops a lookup's hold; true if w was freed. */
static bool watch_release(watch_t *w)
{
    if (--w->busy == 0 && w->is_dead) {
        free(w);
        return true;
    }
    return false;
}

static void watch_free(watch_t *w)
{
    if (w->busy)
        w->is_dead = true;
    else
        free(w);
}

static void watch_node_key(int64_t account, char *key, size_t len)
{
    snprintf(key, len, "parley:watch:%lld", (long long)account);
}

static void ignore_reply(const pl_redis_result_t *res, void *user)
{
    (void)res;
    (void)user;
}

static void record_watch(pl_msg_worker_t *mw, int64_t account)
{
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    if (!r)
        return;
    char key[48], node[16], ttl[16];
    watch_node_key(account, key, sizeof(key));
    snprintf(node, sizeof(node), "%d", mw->m->app->cfg->node_id);
    snprintf(ttl, sizeof(ttl), "%d", WATCH_TTL_S);
    const char *sadd[] = {"SADD", key, node};
    size_t sadd_len[] = {4, strlen(key), strlen(node)};
    const char *exp[] = {"EXPIRE", key, ttl};
    size_t exp_len[] = {6, strlen(key), strlen(ttl)};
    pl_redis_command_argv(r, 3, sadd, sadd_len, ignore_reply, NULL);
    pl_redis_command_argv(r, 3, exp, exp_len, ignore_reply, NULL);
}

/* ---- announcing this account's presence ---- */

static void announce(pl_msg_worker_t *mw, int64_t account, bool online, int64_t last_seen_ms)
{
    parley_internal_v1_NodeEvent ev = {0};
    ev.which_event = parley_internal_v1_NodeEvent_presence_tag;
    ev.event.presence.account_id = account;
    ev.event.presence.online = online;
    ev.event.presence.last_seen_ms = last_seen_ms;
    pl_fanout(mw, &ev, &account, 1, true);
}

static void on_online_set(pl_code_t code, const char *message, void *user)
{
    (void)user;
    if (code != PL_CODE_OK)
        pl_log_debug("presence: set online: %s", message);
}

void pl_presence_online(pl_stream_t *s, bool is_connect)
{
    pl_redis_t *r = pl_app_redis(s->mw->m->app, s->mw->w);
    if (r &&
        pl_cache_presence_set_online(r, s->account_id, s->device_id, PL_PRESENCE_TTL_S, on_online_set, NULL) == 0 &&
        is_connect)
        announce(s->mw, s->account_id, true, 0); /* on connect, not on every heartbeat */
}

/* Setting a device offline, then announcing the account's state. */
typedef struct presence_job {
    pl_msg_worker_t *mw;
    int64_t account;
} presence_job_t;

static void on_state_after_offline(pl_code_t code, const char *message, const pl_cache_presence_t *p, size_t count,
                                   void *user)
{
    (void)message;
    presence_job_t *j = user;
    if (code == PL_CODE_OK && count == 1)
        announce(j->mw, j->account, p->is_online, p->last_seen_ms);
    free(j);
}

static void on_offline_set(pl_code_t code, const char *message, int64_t last_seen, void *user)
{
    (void)last_seen;
    presence_job_t *j = user;
    if (code != PL_CODE_OK) {
        /* includes CANCELLED at shutdown, when j->mw is gone already */
        pl_log_debug("presence: set offline: %s", message);
        free(j);
        return;
    }
    pl_redis_t *r = pl_app_redis(j->mw->m->app, j->mw->w);
    /* other devices may still be online: announce the account's state */
    if (!r || pl_cache_presence_get(r, &j->account, 1, on_state_after_offline, j) != 0)
        free(j);
}

void pl_presence_offline(pl_stream_t *s)
{
    pl_redis_t *r = pl_app_redis(s->mw->m->app, s->mw->w);
    presence_job_t *j = malloc(sizeof(*j));
    if (!r || !j) {
        free(j);
        return;
    }
    *j = (presence_job_t){s->mw, s->account_id};
    if (pl_cache_presence_set_offline(r, s->account_id, s->device_id, on_offline_set, j) != 0)
        free(j);
}

/* ---- what a viewer may see ---- */

static void emit_presence(watch_t *w, const parley_v1_Presence *p)
{
    if (!w->is_checked || w->is_dead || w->s->is_closing)
        return;
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_presence_tag;
    ev.event.presence.account_id = p->account_id;
    ev.event.presence.online = p->online && w->online_ok;
    /* while online, last seen reads "now": hidden with the online state */
    ev.event.presence.last_seen_ms = w->last_seen_ok && (!p->online || w->online_ok) ? p->last_seen_ms : 0;
    pl_stream_emit(w->s, &ev); /* ephemeral */
}

static void on_current(pl_code_t code, const char *message, const pl_cache_presence_t *p, size_t count, void *user)
{
    (void)message;
    watch_t *w = user;
    pl_call_t *call = w->s->call;
    if (code == PL_CODE_OK && count == 1) {
        parley_v1_Presence pr = {p->account_id, p->is_online, p->last_seen_ms};
        emit_presence(w, &pr);
    }
    watch_release(w);
    pl_call_unref(call);
}

/* Visibility values: 1 everyone, 2 contacts, 3 nobody. */
static bool visible(int64_t visibility, bool is_contact, bool is_blocked)
{
    if (is_blocked)
        return false;
    return visibility == 1 || (visibility == 2 && is_contact);
}

static void on_privacy(pl_call_t *call, const pl_pg_result_t *r, void *user)
{
    watch_t *w = user;
    pl_stream_t *s = w->s;
    if (!w->is_dead && !s->is_closing && r->code == PL_CODE_OK) {
        if (PQntuples(r->res) == 1) {
            bool contact = pl_pg_get_bool(r->res, 0, 2), blocked = pl_pg_get_bool(r->res, 0, 3);
            bool self = w->target == s->account_id;
            w->online_ok = self || visible(pl_pg_get_int64(r->res, 0, 0), contact, blocked);
            w->last_seen_ok = self || visible(pl_pg_get_int64(r->res, 0, 1), contact, blocked);
        } else {
            w->online_ok = w->last_seen_ok = false; /* no such account: always offline */
        }
        w->is_checked = true;
        pl_redis_t *redis = pl_app_redis(s->mw->m->app, s->mw->w);
        pl_call_ref(call);
        w->busy++;
        if (!redis || pl_cache_presence_get(redis, &w->target, 1, on_current, w) != 0) {
            w->busy--;
            pl_call_unref(call);
        }
    }
    watch_release(w);
}

static void check_privacy(watch_t *w)
{
    pl_stream_t *s = w->s;
    pl_messaging_t *m = s->mw->m;
    uint8_t t[8], v[8];
    pl_pg_param_t p[2] = {pl_pg_int8(t, w->target), pl_pg_int8(v, s->account_id)};
    w->busy++;
    if (pl_call_query(m->app, s->call, pl_msg_stmt(m, ST_PRIVACY), pl_id_shard(w->target), p, 2, PL_PG_IDEMPOTENT,
                      on_privacy, w) != 0)
        w->busy--;
}

/* ---- subscriptions ---- */

static void unlink_watch(pl_msg_worker_t *mw, watch_t *w)
{
    watch_t *first = pl_idmap_get(&mw->watchers, w->target);
    if (first == w) {
        if (w->next)
            pl_idmap_put(&mw->watchers, w->target, w->next);
        else
            pl_idmap_del(&mw->watchers, w->target);
        return;
    }
    for (watch_t *p = first; p; p = p->next)
        if (p->next == w) {
            p->next = w->next;
            return;
        }
}

void pl_presence_subscribe(pl_stream_t *s, uint64_t request_id, const parley_v1_AccountList *l, bool on)
{
    pl_msg_worker_t *mw = s->mw;
    const pl_config_t *cfg = mw->m->app->cfg;
    if (l->account_ids_count > (pb_size_t)cfg->lookup_batch_max) {
        pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, "too many accounts in one presence request", NULL, 0,
                        NULL);
        return;
    }
    for (pb_size_t i = 0; i < l->account_ids_count; i++) {
        int64_t target = l->account_ids[i];
        if (target <= 0 || pl_id_shard(target) >= mw->m->app->map.shards) {
            char msg[96];
            snprintf(msg, sizeof(msg), "presence: account id %lld is not a valid id", (long long)target);
            pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, msg, NULL, 0, NULL);
            continue;
        }
        watch_t *w = pl_idmap_get(&s->presence_subs, target);
        if (!on) {
            if (w) {
                pl_idmap_del(&s->presence_subs, target);
                unlink_watch(mw, w);
                watch_free(w);
            }
            continue;
        }
        if (w)
            continue;
        if (s->presence_subs.count >= 4 * (size_t)cfg->lookup_batch_max) {
            pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "too many presence subscriptions", NULL, 0,
                            NULL);
            return;
        }
        w = calloc(1, sizeof(*w));
        if (!w || pl_idmap_put(&s->presence_subs, target, w) != 0) {
            free(w);
            return;
        }
        w->s = s;
        w->target = target;
        w->next = pl_idmap_get(&mw->watchers, target);
        if (pl_idmap_put(&mw->watchers, target, w) != 0) {
            pl_idmap_del(&s->presence_subs, target);
            free(w);
            return;
        }
        record_watch(mw, target);
        check_privacy(w);
    }
}

void pl_presence_rewatch(pl_stream_t *s)
{
    for (size_t i = 0; i < s->presence_subs.cap; i++)
        if (s->presence_subs.slots[i].key)
            record_watch(s->mw, s->presence_subs.slots[i].key);
}

void pl_presence_stream_gone(pl_stream_t *s)
{
    for (size_t i = 0; i < s->presence_subs.cap; i++) {
        watch_t *w = s->presence_subs.slots[i].value;
        if (!s->presence_subs.slots[i].key)
            continue;
        unlink_watch(s->mw, w);
        watch_free(w);
    }
    pl_idmap_dispose(&s->presence_subs);
}

void pl_presence_deliver(pl_msg_worker_t *mw, const parley_v1_Presence *p, const int64_t *accounts, size_t n)
{
    (void)n;
    if (!p) {
        /* privacy or blocking changed: every watcher looks again */
        for (watch_t *w = pl_idmap_get(&mw->watchers, accounts[0]); w; w = w->next)
            if (!w->s->is_closing)
                check_privacy(w);
        return;
    }
    for (watch_t *w = pl_idmap_get(&mw->watchers, p->account_id); w; w = w->next)
        emit_presence(w, p);
}

/* ---- the slow heartbeat ---- */

static void on_refreshed(pl_code_t code, const char *message, bool still_ours, void *user)
{
    pl_stream_t *s = user;
    (void)message;
    if (code == PL_CODE_OK && !still_ours && !s->is_closing)
        pl_stream_end(s, PL_CODE_ABORTED, "replaced by a newer stream of this device");
    pl_call_unref(s->call);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_msg_worker_t *mw = arg;
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    if (!r || !pl_redis_is_up(r) || !mw->by_device.cap)
        return;
    /* a slice of the streams each tick, so a large node spreads its load */
    size_t cap = mw->by_device.cap, slice = cap * TICK_MS / (REFRESH_PERIOD_S * 1000) + 1;
    size_t next_slot = mw->refresh_slot;
    for (size_t k = 0; k < slice; k++) {
        size_t i = (next_slot + k) % cap;
        pl_stream_t *s = mw->by_device.slots[i].value;
        if (!mw->by_device.slots[i].key || s->is_closing)
            continue;
        pl_cache_route_t route = {s->account_id, s->device_id, mw->m->app->cfg->node_id, s->epoch};
        pl_call_ref(s->call);
        if (pl_cache_route_refresh(r, &route, PL_STREAM_ROUTE_TTL_S, on_refreshed, s) != 0)
            pl_call_unref(s->call);
        for (size_t k2 = 0; k2 < s->presence_subs.cap; k2++)
            if (s->presence_subs.slots[k2].key)
                record_watch(mw, s->presence_subs.slots[k2].key);
    }
    mw->refresh_slot = (next_slot + slice) % cap;
}

int pl_presence_worker_start(pl_msg_worker_t *mw)
{
    mw->refresh_ev = event_new(pl_worker_base(mw->w), -1, EV_PERSIST, on_tick, mw);
    if (!mw->refresh_ev)
        return -1;
    struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
    return event_add(mw->refresh_ev, &tv);
}

void pl_presence_worker_stop(pl_msg_worker_t *mw)
{
    if (mw->refresh_ev)
        event_free(mw->refresh_ev);
    mw->refresh_ev = NULL;
}
