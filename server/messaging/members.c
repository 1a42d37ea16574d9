/* members.c — a worker's cache of chats' current members, for the fan-out
 * and the per-device check. Entries carry the chat's members_version: a
 * send learns the version it stored under, and a stale entry is reloaded;
 * membership changes also drop entries everywhere (ChatChanged). Bounded:
 * past MAX_ENTRIES the cache starts over. */
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"

#define MAX_ENTRIES 100000

typedef struct waiter {
    struct waiter *next;
    pl_members_fn fn;
    void *user;
} waiter_t;

typedef struct members_entry {
    int64_t chat_id;
    int64_t version;
    int64_t *accounts;
    size_t count;
    bool is_blocked;
    bool is_loaded;
    bool is_loading;
    bool is_stale; /* forgotten while loading: answer, then drop */
    waiter_t *waiters;
    pl_msg_worker_t *mw;
} members_entry_t;

static void entry_free(members_entry_t *e)
{
    free(e->accounts);
    free(e);
}

static void answer_all(members_entry_t *e, pl_code_t code)
{
    waiter_t *w = e->waiters;
    e->waiters = NULL;
    while (w) {
        waiter_t *next = w->next;
        w->fn(e->mw, e->chat_id, e->accounts, e->count, e->is_blocked, code, w->user);
        free(w);
        w = next;
    }
}

static void on_members(const pl_pg_result_t *r, void *user)
{
    members_entry_t *e = user;
    pl_msg_worker_t *mw = e->mw;
    e->is_loading = false;
    pl_code_t code = r->code;
    bool was_stale = e->is_stale;
    if (code == PL_CODE_OK) {
        int rows = PQntuples(r->res);
        free(e->accounts);
        e->accounts = rows ? malloc(sizeof(int64_t) * (size_t)rows) : NULL;
        e->count = 0;
        if (rows && !e->accounts) {
            code = PL_CODE_RESOURCE_EXHAUSTED;
        } else if (rows == 0) {
            code = PL_CODE_NOT_FOUND;
        } else {
            e->version = pl_pg_get_int64(r->res, 0, 0);
            e->is_blocked = pl_pg_get_bool(r->res, 0, 2);
            for (int i = 0; i < rows; i++)
                e->accounts[e->count++] = pl_pg_get_int64(r->res, i, 1);
            e->is_loaded = true;
        }
    } else if (code != PL_CODE_CANCELLED) {
        pl_log_warn("members of chat %lld: %s", (long long)e->chat_id, r->message);
    }
    bool drop = was_stale || e->is_stale || code != PL_CODE_OK;
    answer_all(e, code);
    if (drop) {
        /* a stale entry is out of the map already (and mw may be gone) */
        if (!e->is_stale && pl_idmap_get(&mw->members, e->chat_id) == e)
            pl_idmap_del(&mw->members, e->chat_id);
        entry_free(e);
    }
}

static void load(members_entry_t *e)
{
    pl_messaging_t *m = e->mw->m;
    uint8_t id[8];
    pl_pg_param_t p = pl_pg_int8(id, e->chat_id);
    e->is_loading = true;
    e->is_loaded = false;
    if (pl_store_exec(pl_app_store(m->app, e->mw->w), pl_msg_stmt(m, ST_MEMBERS), pl_id_shard(e->chat_id), &p, 1,
                      PL_PG_IDEMPOTENT, 0, on_members, e) != 0) {
        pl_pg_result_t fail = {PL_CODE_UNAVAILABLE, "", "queue full", NULL};
        on_members(&fail, e);
    }
}

void pl_members_get(pl_msg_worker_t *mw, int64_t chat_id, int64_t version, pl_members_fn fn, void *user)
{
    members_entry_t *e = pl_idmap_get(&mw->members, chat_id);
    if (e && e->is_loaded && !e->is_loading && (version == 0 || e->version >= version)) {
        fn(mw, chat_id, e->accounts, e->count, e->is_blocked, PL_CODE_OK, user);
        return;
    }
    if (!e) {
        if (mw->members.count >= MAX_ENTRIES)
            pl_members_dispose(mw);
        e = calloc(1, sizeof(*e));
        if (!e || pl_idmap_put(&mw->members, chat_id, e) != 0) {
            free(e);
            fn(mw, chat_id, NULL, 0, false, PL_CODE_RESOURCE_EXHAUSTED, user);
            return;
        }
        e->chat_id = chat_id;
        e->mw = mw;
    }
    waiter_t *w = malloc(sizeof(*w));
    if (!w) {
        fn(mw, chat_id, NULL, 0, false, PL_CODE_RESOURCE_EXHAUSTED, user);
        return;
    }
    *w = (waiter_t){e->waiters, fn, user};
    e->waiters = w;
    if (!e->is_loading)
        load(e);
}

void pl_members_forget(pl_msg_worker_t *mw, int64_t chat_id)
{
    members_entry_t *e = pl_idmap_get(&mw->members, chat_id);
    if (!e)
        return;
    if (e->is_loading) {
        e->is_stale = true; /* answered with what it reads, then dropped */
        pl_idmap_del(&mw->members, chat_id);
        return;
    }
    pl_idmap_del(&mw->members, chat_id);
    entry_free(e);
}

void pl_members_dispose(pl_msg_worker_t *mw)
{
    for (size_t i = 0; i < mw->members.cap; i++) {
        members_entry_t *e = mw->members.slots[i].value;
        if (!mw->members.slots[i].key)
            continue;
        if (e->is_loading)
            e->is_stale = true; /* freed when its query ends */
        else
            entry_free(e);
    }
    pl_idmap_dispose(&mw->members);
}
