/* messaging.c — the Messaging service: its statements, its per-worker state,
 * registration, and the notify.h entry points other services use. */
#include "messaging/messaging.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "messaging/messaging_internal.h"
#include "messaging/notify.h"
#include "parley/v1/messaging.parley.h"
#include "transport/worker.h"

/* The columns ST_FETCH and the history statements return for a message
 * (catchup.c reads them by these positions). */
#define MESSAGE_COLUMNS                                                                                                \
    "m.seq, m.sender_account, m.sender_device, m.client_msg_id, "                                                      \
    "(extract(epoch FROM m.created_at) * 1000)::bigint, m.content_type, m.payload, m.device_payloads, "                \
    "m.reply_to_seq, COALESCE((extract(epoch FROM m.expires_at) * 1000)::bigint, 0), m.chat_event"

#define VISIBLE_TO_MEMBER                                                                                              \
    "m.seq >= mem.joined_seq AND (mem.removed_seq IS NULL OR m.seq <= mem.removed_seq) "                               \
    "AND (m.expires_at IS NULL OR m.expires_at > now())"

static const pl_pg_stmt_t statements[ST_COUNT] = {
    [ST_SEND] = {"send_message",
                 "SELECT status, seq, created_ms, duplicate, kind, members_version, account_a, account_b, "
                 "COALESCE(expires_ms, 0) FROM {s}.send_message($1::bigint, $2::bigint, $3::bigint, $4::text, "
                 "$5::text, $6::bytea, $7::bytea, $8::bigint, $9::bigint)",
                 true},
    [ST_LOAD_CHATS] = {"load_chats",
                       "SELECT ac.chat_id, ac.joined_seq, COALESCE(ac.removed_seq, 0), "
                       "COALESCE(dc.delivered_seq, -1) FROM {s}.account_chats ac "
                       "LEFT JOIN {s}.device_cursors dc ON dc.device_id = $2::bigint AND dc.chat_id = ac.chat_id "
                       "WHERE ac.account_id = $1::bigint "
                       "AND (ac.removed_seq IS NULL OR COALESCE(dc.delivered_seq, -1) < ac.removed_seq)",
                       true},
    [ST_LAST_SEQS] = {"last_seqs", "SELECT id, last_seq FROM {s}.chats WHERE id = ANY($1::bigint[])", true},
    /* A member's view of the log after $3: the effective start (joined, or
     * the resume cap when $5), then up to $4 messages. */
    [ST_FETCH] = {"fetch",
                  "SELECT x.eff, x.floor, x.last_seq, x.removed, " MESSAGE_COLUMNS " FROM ("
                  " SELECT mem.chat_id, mem.removed_seq, COALESCE(mem.removed_seq, 0) AS removed, c.last_seq,"
                  "  GREATEST($3::bigint, mem.joined_seq - 1) AS floor,"
                  "  GREATEST($3::bigint, mem.joined_seq - 1,"
                  "           CASE WHEN $5::bool THEN c.last_seq - $6::bigint ELSE -1 END) AS eff"
                  " FROM {s}.members mem JOIN {s}.chats c ON c.id = mem.chat_id"
                  " WHERE mem.chat_id = $1::bigint AND mem.account_id = $2::bigint) x "
                  "LEFT JOIN LATERAL (SELECT * FROM {s}.messages m WHERE m.chat_id = x.chat_id AND m.seq > x.eff"
                  " AND (x.removed_seq IS NULL OR m.seq <= x.removed_seq)"
                  " AND (m.expires_at IS NULL OR m.expires_at > now()) ORDER BY m.seq LIMIT $4::int) m ON true "
                  "ORDER BY m.seq",
                  true},
    [ST_MEMBERS] = {"members",
                    "SELECT c.members_version, m.account_id, (c.kind = 1 AND (c.a_blocks_b OR c.b_blocks_a)) "
                    "FROM {s}.chats c "
                    "JOIN {s}.members m ON m.chat_id = c.id AND m.removed_seq IS NULL WHERE c.id = $1::bigint",
                    true},
    [ST_DEVICES] = {"devices",
                    "SELECT account_id, id FROM {s}.devices WHERE account_id = ANY($1::bigint[]) "
                    "AND revoked_at IS NULL",
                    true},
    [ST_CURSOR] = {"move_cursor",
                   "SELECT mc.status, mc.delivered_seq, mc.read_seq, mc.delivered_to_all, mc.read_by_all, mc.changed, "
                   "mc.notify, COALESCE((SELECT c.last_seq FROM {s}.chats c WHERE c.id = $1::bigint), 0) "
                   "FROM {s}.move_cursor($1::bigint, $2::bigint, $3::bigint, $4::bigint) mc",
                   false},
    [ST_DEVICE_CURSOR] = {"device_cursor",
                          "INSERT INTO {s}.device_cursors (device_id, chat_id, delivered_seq) "
                          "VALUES ($1::bigint, $2::bigint, $3::bigint) ON CONFLICT (device_id, chat_id) DO UPDATE "
                          "SET delivered_seq = GREATEST({s}.device_cursors.delivered_seq, EXCLUDED.delivered_seq)",
                          false},
    [ST_HISTORY_BEFORE] = {"history_before",
                           "SELECT " MESSAGE_COLUMNS " FROM {s}.members mem JOIN {s}.messages m "
                           "ON m.chat_id = mem.chat_id WHERE mem.chat_id = $1::bigint AND mem.account_id = $2::bigint "
                           "AND " VISIBLE_TO_MEMBER " AND m.seq < $3::bigint ORDER BY m.seq DESC LIMIT $4::int",
                           true},
    [ST_HISTORY_AFTER] = {"history_after",
                          "SELECT " MESSAGE_COLUMNS " FROM {s}.members mem JOIN {s}.messages m "
                          "ON m.chat_id = mem.chat_id WHERE mem.chat_id = $1::bigint AND mem.account_id = $2::bigint "
                          "AND " VISIBLE_TO_MEMBER " AND m.seq > $3::bigint ORDER BY m.seq LIMIT $4::int",
                          true},
    [ST_IS_MEMBER] = {"is_member",
                      "SELECT joined_seq, COALESCE(removed_seq, 0) FROM {s}.members "
                      "WHERE chat_id = $1::bigint AND account_id = $2::bigint",
                      true},
    [ST_PRIVACY] = {"privacy",
                    "SELECT a.online_visibility, a.last_seen_visibility, "
                    "EXISTS (SELECT 1 FROM {s}.contacts c WHERE c.account_id = a.id AND c.contact_id = $2::bigint), "
                    "EXISTS (SELECT 1 FROM {s}.blocks b WHERE b.account_id = a.id AND b.blocked_id = $2::bigint) "
                    "FROM {s}.accounts a WHERE a.id = $1::bigint",
                    true},
    [ST_TOUCH_DEVICE] = {"touch_device", "UPDATE {s}.devices SET last_active_at = now() WHERE id = $1::bigint", false},
    [ST_FETCH_ONE] = {"fetch_one",
                      "SELECT " MESSAGE_COLUMNS
                      " FROM {s}.messages m WHERE m.chat_id = $1::bigint AND m.seq = $2::bigint",
                      true},
    [ST_SENDER_CURSOR] =
        {"sender_cursor",
         "SELECT 0::smallint, delivered_seq, read_seq, delivered_to_all, read_by_all, changed, notify, "
         "$1::bigint, $2::bigint FROM {s}.sender_cursor($1::bigint, $2::bigint, $3::bigint)",
         false},
    [ST_SWEEP] = {"sweep",
                  "WITH gone AS (DELETE FROM {s}.messages WHERE ctid IN (SELECT ctid FROM {s}.messages "
                  "WHERE created_at < now() - $1::int * interval '1 day' OR expires_at < now() LIMIT $2::int) "
                  "RETURNING 1) SELECT count(*) FROM gone",
                  false},
};

int pl_msg_stmt(const pl_messaging_t *m, int which)
{
    return m->stmt + which;
}

pl_msg_worker_t *pl_msg_worker(const pl_messaging_t *m, const pl_worker_t *w)
{
    return pl_worker_module(w, m->module);
}

static void *worker_start(pl_worker_t *w, void *arg)
{
    pl_messaging_t *m = arg;
    pl_msg_worker_t *mw = calloc(1, sizeof(*mw));
    if (!mw)
        return NULL;
    mw->m = m;
    mw->w = w;
    if (pl_fanout_worker_start(mw) != 0 || pl_presence_worker_start(mw) != 0 || pl_retention_worker_start(mw) != 0) {
        pl_retention_worker_stop(mw);
        pl_presence_worker_stop(mw);
        pl_fanout_worker_stop(mw);
        free(mw);
        return NULL;
    }
    m->workers[pl_worker_index(w)] = mw;
    return mw;
}

static void worker_stop(pl_worker_t *w, void *state, void *arg)
{
    pl_messaging_t *m = arg;
    pl_msg_worker_t *mw = state;
    pl_retention_worker_stop(mw);
    pl_presence_worker_stop(mw);
    pl_fanout_worker_stop(mw);
    pl_members_dispose(mw);
    pl_idmap_dispose(&mw->by_device);
    pl_idmap_dispose(&mw->by_account);
    pl_idmap_dispose(&mw->watchers);
    m->workers[pl_worker_index(w)] = NULL;
    free(mw);
}

/* Draining: device streams end now with UNAVAILABLE, so devices reconnect
 * to another node at once instead of waiting out the grace period (their
 * unanswered sends are retried there and deduplicated). */
static void on_drain(pl_worker_t *w, void *arg)
{
    pl_msg_worker_t *mw = pl_msg_worker(arg, w);
    if (!mw || !mw->stream_count)
        return;
    /* ending a stream removes it from the map: collect them first */
    pl_stream_t **all = malloc(sizeof(*all) * mw->by_device.count);
    size_t n = 0;
    for (size_t i = 0; all && i < mw->by_device.cap; i++)
        if (mw->by_device.slots[i].key)
            all[n++] = mw->by_device.slots[i].value;
    for (size_t i = 0; i < n; i++)
        if (!all[i]->is_closing)
            pl_stream_end(all[i], PL_CODE_UNAVAILABLE, "server shutting down; reconnect");
    free(all);
}

static const parley_v1_Messaging_handlers_t handlers = {
    .Connect_start = pl_stream_on_start,
    .Connect = pl_stream_on_event,
    .Connect_half_close = pl_stream_on_half_close,
    .Send = pl_send_unary,
    .GetHistory = pl_history_get,
};

pl_messaging_t *pl_messaging_register(pl_app_t *app, char *err, size_t err_len)
{
    pl_messaging_t *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    m->app = app;
    m->nworkers = pl_server_config(app->server)->workers;
    m->workers = calloc((size_t)m->nworkers, sizeof(*m->workers));
    m->stmt = pl_app_add_statements(app, statements, ST_COUNT);
    m->module = pl_server_add_module(app->server, worker_start, worker_stop, m);
    if (!m->workers || m->stmt < 0 || m->module < 0 || parley_v1_Messaging_register(app->server, &handlers, m) != 0 ||
        pl_server_on_drain(app->server, on_drain, m) != 0) {
        snprintf(err, err_len, "cannot register parley.v1.Messaging");
        pl_messaging_free(m);
        return NULL;
    }
    app->messaging = m;
    return m;
}

void pl_messaging_free(pl_messaging_t *m)
{
    if (!m)
        return;
    free(m->workers);
    free(m);
}

/* ---- notify.h ---- */

/* Fans ev out to the streams of accounts, here and on the nodes holding
 * their routes; nothing if this node runs no messaging. */
static void notify(const pl_app_t *app, pl_worker_t *w, parley_internal_v1_NodeEvent *ev, const int64_t *accounts,
                   size_t n)
{
    pl_msg_worker_t *mw = app->messaging ? pl_msg_worker(app->messaging, w) : NULL;
    if (mw)
        pl_fanout(mw, ev, accounts, n, true);
}

void pl_notify_chat_changed(const pl_app_t *app, pl_worker_t *w, int64_t chat_id, int64_t seq, const int64_t *accounts,
                            size_t naccounts)
{
    parley_internal_v1_NodeEvent ev = {.which_event = parley_internal_v1_NodeEvent_chat_changed_tag};
    ev.event.chat_changed.chat_id = chat_id;
    ev.event.chat_changed.seq = seq;
    notify(app, w, &ev, accounts, naccounts);
}

void pl_notify_device_removed(const pl_app_t *app, pl_worker_t *w, int64_t account_id, int64_t device_id)
{
    parley_internal_v1_NodeEvent ev = {.which_event = parley_internal_v1_NodeEvent_device_removed_tag};
    ev.event.device_removed.account_id = account_id;
    ev.event.device_removed.device_id = device_id;
    notify(app, w, &ev, &account_id, 1);
}

void pl_notify_devices_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id)
{
    parley_internal_v1_NodeEvent ev = {.which_event = parley_internal_v1_NodeEvent_devices_changed_tag};
    ev.event.devices_changed.account_id = account_id;
    notify(app, w, &ev, &account_id, 1);
}

void pl_notify_privacy_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id)
{
    parley_internal_v1_NodeEvent ev = {.which_event = parley_internal_v1_NodeEvent_privacy_changed_tag};
    ev.event.privacy_changed.account_id = account_id;
    /* to every node: watchers of this account may be anywhere */
    notify(app, w, &ev, &account_id, 1);
}
