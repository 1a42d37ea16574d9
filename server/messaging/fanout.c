/* fanout.c — carrying an event to the workers that hold the streams it
 * concerns: to every worker of this node (one immutable, reference-counted
 * copy shared by all), and through Redis to the other nodes that hold those
 * accounts' routes. What a worker then does with it is dispatch.c's. The
 * storing node looks the routes up after its commit, and a connecting
 * device registers its route before it reads what it missed, so between
 * the two every message reaches every device. Each node listens on its own
 * channel (worker 0 holds the subscription); after a subscription loss the
 * node's streams catch up from PostgreSQL. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "cache/pubsub.h"
#include "cache/routes.h"
#include "messaging/dispatch.h"
#include "messaging/messaging_internal.h"
#include "runtime/codec.h"
#include "runtime/errors.h"

struct pl_msg_event {
    _Atomic int refs;
    parley_internal_v1_NodeEvent ev; /* decoded; views point into buf */
    size_t len;
    uint8_t buf[];
};

static void event_unref(pl_msg_event_t *e)
{
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        free(e);
}

void pl_msg_event_ref(pl_msg_event_t *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

void pl_msg_event_unref(pl_msg_event_t *e)
{
    event_unref(e);
}

const parley_internal_v1_StoredMessage *pl_msg_event_message(const pl_msg_event_t *e)
{
    return &e->ev.event.message;
}

const parley_internal_v1_NodeEvent *pl_msg_event_node(const pl_msg_event_t *e)
{
    return &e->ev;
}

/* An event from its encoding (copied). NULL if it does not decode. */
static pl_msg_event_t *event_from(const uint8_t *data, size_t len, int refs)
{
    pl_msg_event_t *e = malloc(sizeof(*e) + len);
    if (!e)
        return NULL;
    memcpy(e->buf, data, len);
    e->len = len;
    memset(&e->ev, 0, sizeof(e->ev));
    const char *why = NULL;
    if (pl_pb_decode(parley_internal_v1_NodeEvent_fields, e->buf, len, &e->ev, &why) != 0) {
        pl_log_warn("fanout: dropping an undecodable node event (%s)", why ? why : "?");
        free(e);
        return NULL;
    }
    atomic_init(&e->refs, refs);
    return e;
}

size_t pl_fanout_accounts(const parley_internal_v1_NodeEvent *ev, int64_t *out, size_t cap)
{
    size_t n = ev->accounts.len / 8;
    if (n > cap)
        n = cap;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (int k = 0; k < 8; k++)
            v = v << 8 | ev->accounts.data[i * 8 + (size_t)k];
        out[i] = (int64_t)v;
    }
    return n;
}

typedef struct worker_task {
    pl_messaging_t *m;
    pl_msg_event_t *e;
} worker_task_t;

static void run_worker_task(pl_worker_t *w, void *arg)
{
    worker_task_t *t = arg;
    pl_msg_worker_t *mw = pl_msg_worker(t->m, w);
    if (mw)
        pl_dispatch(mw, t->e);
    event_unref(t->e);
    free(t);
}

static void post_all(pl_messaging_t *m, pl_msg_event_t *e)
{
    for (int i = 0; i < m->nworkers; i++) {
        pl_worker_t *w = pl_server_worker(m->app->server, i);
        worker_task_t *t = malloc(sizeof(*t));
        if (t)
            *t = (worker_task_t){m, e};
        if (!t || pl_worker_post(w, run_worker_task, t) != 0) {
            free(t);
            pl_log_error("fanout: cannot post an event to worker %d (out of memory)", i);
            event_unref(e);
        }
    }
}

/* ---- other nodes ---- */

typedef struct publish_ctx {
    pl_msg_worker_t *mw;
    pl_msg_event_t *e;  /* a reference */
    int64_t device_id;  /* device events: only nodes holding that device */
    int node;           /* a publish: to this node */
    int64_t give_up_ms; /* when a failed one stops being sent again (0: not yet failed) */
    size_t n;
    int64_t accounts[]; /* a lookup: these accounts' routes */
} publish_ctx_t;

static publish_ctx_t *ctx_new(pl_msg_worker_t *mw, pl_msg_event_t *e, int64_t device_id, int node, int64_t give_up_ms,
                              const int64_t *accounts, size_t n)
{
    publish_ctx_t *p = malloc(sizeof(*p) + n * sizeof(int64_t));
    if (!p)
        return NULL;
    *p = (publish_ctx_t){mw, e, device_id, node, give_up_ms, n};
    if (n)
        memcpy(p->accounts, accounts, n * sizeof(int64_t));
    pl_msg_event_ref(e);
    return p;
}

static void ctx_free(publish_ctx_t *p)
{
    event_unref(p->e);
    free(p);
}

/* Typing is ephemeral: a late indicator is worse than none. Everything
 * else that crosses nodes is sent again when Redis fails it. */
static bool is_worth_republishing(const pl_msg_event_t *e)
{
    return e->ev.which_event != parley_internal_v1_NodeEvent_typing_tag;
}

static void on_published(pl_code_t code, const char *message, int64_t count, void *user)
{
    (void)count;
    publish_ctx_t *p = user;
    /* CANCELLED: the worker is going down (p->mw may be gone already) */
    if (code != PL_CODE_OK && code != PL_CODE_CANCELLED) {
        pl_log_warn("fanout: publish failed: %s", message);
        if (p && is_worth_republishing(p->e))
            pl_republish_later(p->mw, p->e, p->node, 0, NULL, 0, p->give_up_ms);
    }
    if (p)
        ctx_free(p);
}

/* What crosses to other nodes: the event itself, or for a message only a
 * reference to it (payloads never pass through Redis). Encoded into buf
 * (malloc'd) once per publish. */
static uint8_t *publishable(const pl_msg_event_t *e, size_t *len)
{
    if (e->ev.which_event != parley_internal_v1_NodeEvent_message_tag) {
        uint8_t *copy = malloc(e->len);
        if (copy)
            memcpy(copy, e->buf, e->len);
        *len = e->len;
        return copy;
    }
    parley_internal_v1_NodeEvent ref = {0};
    ref.accounts = e->ev.accounts;
    ref.from_node = e->ev.from_node;
    ref.which_event = parley_internal_v1_NodeEvent_message_ref_tag;
    ref.event.message_ref.chat_id = e->ev.event.message.message.chat_id;
    ref.event.message_ref.seq = e->ev.event.message.message.seq;
    long n = pl_pb_encoded_size(parley_internal_v1_NodeEvent_fields, &ref);
    uint8_t *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && pl_pb_encode(parley_internal_v1_NodeEvent_fields, &ref, buf, (size_t)n) != 0) {
        free(buf);
        buf = NULL;
    }
    *len = (size_t)(n > 0 ? n : 0);
    return buf;
}

/* Publishes buf (e's publishable form) to node; a failure is sent again. */
static void publish_buf(pl_msg_worker_t *mw, pl_msg_event_t *e, int node, const uint8_t *buf, size_t len,
                        int64_t give_up_ms)
{
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    publish_ctx_t *p = ctx_new(mw, e, 0, node, give_up_ms, NULL, 0);
    if (!p || !r || pl_cache_publish(r, node, buf, len, on_published, p) != 0) {
        pl_log_warn("fanout: cannot publish to node %d now; trying again", node);
        if (p)
            ctx_free(p);
        if (is_worth_republishing(e))
            pl_republish_later(mw, e, node, 0, NULL, 0, give_up_ms);
    }
}

void pl_fanout_publish_node(pl_msg_worker_t *mw, pl_msg_event_t *e, int node, int64_t give_up_ms)
{
    size_t len = 0;
    uint8_t *buf = publishable(e, &len);
    if (buf)
        publish_buf(mw, e, node, buf, len, give_up_ms);
    free(buf);
}

static void on_routes(pl_code_t code, const char *message, const pl_cache_route_t *routes, size_t count, void *user)
{
    publish_ctx_t *p = user;
    if (code == PL_CODE_CANCELLED) {
        /* the worker is going down (p->mw may be gone already) */
    } else if (code != PL_CODE_OK) {
        /* Redis failed us while the other nodes may well still hear it:
         * without another try their streams would not learn of this */
        pl_log_debug("fanout: route lookup failed: %s", message);
        if (is_worth_republishing(p->e))
            pl_republish_later(p->mw, p->e, -1, p->device_id, p->accounts, p->n, p->give_up_ms);
    } else {
        int self = p->mw->m->app->cfg->node_id;
        uint32_t sent = 0; /* node ids are < 32 */
        uint8_t *buf = NULL;
        size_t len = 0;
        for (size_t i = 0; i < count; i++) {
            int node = routes[i].node_id;
            if (node == self || node < 0 || node >= 32 || (sent & (1u << node)))
                continue;
            if (p->device_id && routes[i].device_id != p->device_id)
                continue;
            if (!buf && !(buf = publishable(p->e, &len)))
                break;
            sent |= 1u << node;
            publish_buf(p->mw, p->e, node, buf, len, p->give_up_ms);
        }
        free(buf);
    }
    ctx_free(p);
}

void pl_fanout_publish_lookup(pl_msg_worker_t *mw, pl_msg_event_t *e, const int64_t *accounts, size_t n,
                              int64_t device_id, int64_t give_up_ms)
{
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    for (size_t off = 0; off < n; off += PL_CACHE_MAX_BATCH) {
        size_t k = n - off < PL_CACHE_MAX_BATCH ? n - off : PL_CACHE_MAX_BATCH;
        publish_ctx_t *p = ctx_new(mw, e, device_id, -1, give_up_ms, accounts + off, k);
        if (!p || !r || pl_cache_route_lookup(r, accounts + off, k, on_routes, p) != 0) {
            if (p)
                ctx_free(p);
            if (is_worth_republishing(e))
                pl_republish_later(mw, e, -1, device_id, accounts + off, k, give_up_ms);
        }
    }
}

/* Presence and privacy events go to the nodes watching the account. */
static void on_watchers(const pl_redis_result_t *res, void *user)
{
    publish_ctx_t *p = user;
    if (res->code == PL_CODE_OK && res->reply && res->reply->type == REDIS_REPLY_ARRAY) {
        int self = p->mw->m->app->cfg->node_id;
        pl_redis_t *r = pl_app_redis(p->mw->m->app, p->mw->w);
        for (size_t i = 0; i < res->reply->elements; i++) {
            const redisReply *el = res->reply->element[i];
            if (el->type != REDIS_REPLY_STRING)
                continue;
            int node = atoi(el->str);
            if (node != self && node >= 0 && node < 32)
                pl_cache_publish(r, node, p->e->buf, p->e->len, on_published, NULL);
        }
    }
    ctx_free(p);
}

static void publish_to_watchers(pl_msg_worker_t *mw, pl_msg_event_t *e, int64_t account_id)
{
    pl_redis_t *r = pl_app_redis(mw->m->app, mw->w);
    publish_ctx_t *p = r ? ctx_new(mw, e, 0, -1, 0, NULL, 0) : NULL;
    if (!p)
        return;
    char key[48];
    snprintf(key, sizeof(key), "parley:watch:%lld", (long long)account_id);
    const char *argv[] = {"SMEMBERS", key};
    size_t lens[] = {8, strlen(key)};
    if (pl_redis_command_argv(r, 2, argv, lens, on_watchers, p) != 0)
        ctx_free(p);
}

void pl_fanout(pl_msg_worker_t *mw, parley_internal_v1_NodeEvent *ev, const int64_t *accounts, size_t n, bool publish)
{
    pl_messaging_t *m = mw->m;
    uint8_t *packed = n ? malloc(n * 8) : NULL;
    if (n && !packed)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            packed[i * 8 + (size_t)k] = (uint8_t)((uint64_t)accounts[i] >> (56 - 8 * k));
    ev->accounts = pl_bytes_of(packed, n * 8);
    ev->from_node = m->app->cfg->node_id;
    long size = pl_pb_encoded_size(parley_internal_v1_NodeEvent_fields, ev);
    uint8_t *buf = size > 0 ? malloc((size_t)size) : NULL;
    if (size <= 0 || !buf || pl_pb_encode(parley_internal_v1_NodeEvent_fields, ev, buf, (size_t)size) != 0) {
        free(buf);
        free(packed);
        goto nomem;
    }
    free(packed);
    ev->accounts = pl_bytes_of(NULL, 0);
    pl_msg_event_t *e = event_from(buf, (size_t)size, m->nworkers + 1);
    free(buf);
    if (!e)
        goto nomem;
    post_all(m, e);
    if (publish && n) {
        switch (e->ev.which_event) {
        case parley_internal_v1_NodeEvent_presence_tag:
            publish_to_watchers(mw, e, e->ev.event.presence.account_id);
            break;
        case parley_internal_v1_NodeEvent_privacy_changed_tag:
            publish_to_watchers(mw, e, e->ev.event.privacy_changed.account_id);
            break;
        case parley_internal_v1_NodeEvent_device_connected_tag:
            pl_fanout_publish_lookup(mw, e, accounts, n, e->ev.event.device_connected.device_id, 0);
            break;
        default: pl_fanout_publish_lookup(mw, e, accounts, n, 0, 0);
        }
    }
    event_unref(e);
    return;
nomem:
    pl_log_error("fanout: out of memory; streams will catch up on resume");
}

/* ---- this node's subscription (worker 0) ---- */

typedef struct ref_fetch {
    pl_msg_worker_t *mw;
    pl_msg_event_t *e; /* the message_ref event (holds the accounts) */
} ref_fetch_t;

static void on_ref_fetched(const pl_pg_result_t *r, void *user)
{
    ref_fetch_t *f = user;
    const parley_internal_v1_ChatChanged *ref = &f->e->ev.event.message_ref;
    if (r->code == PL_CODE_OK && PQntuples(r->res) == 1) {
        parley_internal_v1_NodeEvent ev = {0};
        ev.which_event = parley_internal_v1_NodeEvent_message_tag;
        pl_catchup_row_stored(r->res, 0, ref->chat_id, &ev.event.message);
        enum { MAX_ACCOUNTS = 2048 };
        int64_t *accounts = malloc(sizeof(int64_t) * MAX_ACCOUNTS);
        if (accounts) {
            size_t n = pl_fanout_accounts(&f->e->ev, accounts, MAX_ACCOUNTS);
            pl_fanout(f->mw, &ev, accounts, n, false);
            free(accounts);
        }
    } else if (r->code != PL_CODE_CANCELLED) {
        /* the recipients' streams find it when they catch up */
        pl_log_warn("fanout: message %lld/%lld from another node: %s", (long long)ref->chat_id, (long long)ref->seq,
                    r->code == PL_CODE_OK ? "not found" : r->message);
    }
    event_unref(f->e);
    free(f);
}

/* A message another node stored: read it once here, then deliver. */
static void fetch_ref(pl_msg_worker_t *mw, pl_msg_event_t *e)
{
    const parley_internal_v1_ChatChanged *ref = &e->ev.event.message_ref;
    ref_fetch_t *f = malloc(sizeof(*f));
    uint8_t chat[8], seq[8];
    pl_pg_param_t p[2] = {pl_pg_int8(chat, ref->chat_id), pl_pg_int8(seq, ref->seq)};
    if (f)
        *f = (ref_fetch_t){mw, e};
    if (!f || ref->chat_id <= 0 || pl_id_shard(ref->chat_id) >= mw->m->app->map.shards ||
        pl_store_exec(pl_app_store(mw->m->app, mw->w), pl_msg_stmt(mw->m, ST_FETCH_ONE), pl_id_shard(ref->chat_id), p,
                      2, PL_PG_IDEMPOTENT, 0, on_ref_fetched, f) != 0) {
        free(f);
        event_unref(e);
    }
}

static void on_node_message(const void *data, size_t len, void *user)
{
    pl_msg_worker_t *mw = user;
    pl_msg_event_t *e = event_from(data, len, 1);
    if (!e)
        return;
    if (e->ev.which_event == parley_internal_v1_NodeEvent_message_ref_tag) {
        fetch_ref(mw, e);
        return;
    }
    atomic_store_explicit(&e->refs, mw->m->nworkers, memory_order_relaxed);
    post_all(mw->m, e);
}

static void on_subscribed(bool is_resync, void *user)
{
    pl_msg_worker_t *mw = user;
    mw->is_subscribed = true;
    if (!is_resync)
        return;
    pl_log_info("fanout: node subscription restored; catching streams up");
    for (int i = 0; i < mw->m->nworkers; i++)
        pl_worker_post(pl_server_worker(mw->m->app->server, i), pl_dispatch_resync_worker, mw->m);
}

int pl_fanout_worker_start(pl_msg_worker_t *mw)
{
    if (pl_worker_index(mw->w) != 0)
        return 0;
    const pl_config_t *cfg = mw->m->app->cfg;
    pl_redis_config_t rc = {
        .host = cfg->redis_host,
        .port = cfg->redis_port,
        .password = cfg->redis_password,
        .timeout_ms = cfg->redis_timeout_ms,
        .node_id = cfg->node_id,
    };
    char err[256];
    mw->subscriber = pl_cache_sub_new(pl_worker_base(mw->w), &rc, on_node_message, on_subscribed, mw, err, sizeof(err));
    if (!mw->subscriber) {
        pl_log_error("fanout: %s", err);
        return -1;
    }
    return 0;
}

void pl_fanout_worker_stop(pl_msg_worker_t *mw)
{
    pl_republish_stop(mw);
    pl_dispatch_stop(mw);
    if (mw->subscriber)
        pl_cache_sub_free(mw->subscriber);
    mw->subscriber = NULL;
}
