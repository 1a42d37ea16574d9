/* push.c — parley.v1.Push: the statements, the handler table, and what
 * the dispatcher and the send path share (the per-shard due times).
 *
 * Where things live: tokens, mutes, the no-previews switch and the queue
 * are on the account's shard (migrations/0011_push.sql), beside the
 * device cursors that say whether a push is still needed. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "app/log.h"
#include "parley/v1/push.parley.h"
#include "push/fcm.h"
#include "push/jwt.h"
#include "push/push_internal.h"

static const pl_pg_stmt_t statements[ST_COUNT] = {
    /* $1 device, $2 provider, $3 account, $4 token, $5 app id, $6
     * sandbox. A token another device held (the app reinstalled, the
     * phone registered anew) is now this one's only. */
    [ST_TOKEN_PUT] = {"push_token_put",
                      "WITH moved AS (DELETE FROM {s}.push_tokens WHERE token = $4::text AND provider = $2::bigint"
                      "                  AND device_id <> $1::bigint)"
                      " INSERT INTO {s}.push_tokens AS t (device_id, provider, account_id, token, app_id, sandbox)"
                      " VALUES ($1::bigint, $2::bigint, $3::bigint, $4::text, $5::text, $6::boolean)"
                      " ON CONFLICT (device_id, provider) DO UPDATE"
                      "   SET account_id = EXCLUDED.account_id, token = EXCLUDED.token, app_id = EXCLUDED.app_id,"
                      "       sandbox = EXCLUDED.sandbox, registered_at = now()"
                      " RETURNING (extract(epoch FROM t.registered_at) * 1000)::bigint",
                      false},
    /* $1 device, $2 provider (0: all); its queued pushes go too */
    [ST_TOKEN_DELETE] = {"push_token_delete",
                         "WITH d AS (DELETE FROM {s}.push_tokens"
                         "            WHERE device_id = $1::bigint AND ($2::bigint = 0 OR provider = $2::bigint)"
                         "            RETURNING provider),"
                         " j AS (DELETE FROM {s}.push_jobs WHERE device_id = $1::bigint"
                         "          AND provider IN (SELECT provider FROM d))"
                         " SELECT count(*) FROM d",
                         false},
    [ST_TOKEN_GET] = {"push_token_get",
                      "SELECT provider, token, app_id, sandbox FROM {s}.push_tokens"
                      " WHERE device_id = $1::bigint AND ($2::bigint = 0 OR provider = $2::bigint)"
                      " ORDER BY provider LIMIT 1",
                      false},
    /* $1 account, $2 chat, $3 until (epoch ms; -1 for ever; 0 unmutes) */
    [ST_MUTE] = {"push_mute",
                 "WITH d AS (DELETE FROM {s}.chat_mutes"
                 "            WHERE account_id = $1::bigint AND chat_id = $2::bigint AND $3::bigint = 0)"
                 " INSERT INTO {s}.chat_mutes AS m (account_id, chat_id, until)"
                 " SELECT $1::bigint, $2::bigint, CASE WHEN $3::bigint < 0 THEN 'infinity'::timestamptz"
                 "                                     ELSE to_timestamp($3::bigint / 1000.0) END"
                 "  WHERE $3::bigint <> 0"
                 " ON CONFLICT (account_id, chat_id) DO UPDATE SET until = EXCLUDED.until",
                 false},
    [ST_SETTINGS] = {"push_settings",
                     "UPDATE {s}.accounts SET push_no_previews = $2::boolean WHERE id = $1::bigint"
                     " RETURNING push_no_previews",
                     false},
    /* $1 recipient accounts, $2 chat, $3 seq, $4 a call, $5 preview, $6
     * grace ms. A call goes to the PushKit token where the device has one;
     * PushKit tokens get nothing else (iOS ends apps that take VoIP
     * pushes without ringing). A muted chat's message is a background
     * push. Only inserts (a retried send's rows exist already): no row
     * lock to wait for, in any batch. */
    [ST_ENQUEUE] = {"push_enqueue",
                    "INSERT INTO {s}.push_jobs (device_id, provider, kind, chat_id, account_id, seq, preview, due_at)"
                    " SELECT t.device_id, t.provider,"
                    "        CASE WHEN $4::boolean THEN 3 WHEN m.until > now() THEN 2 ELSE 1 END,"
                    "        $2::bigint, t.account_id, $3::bigint, $5::bytea,"
                    "        now() + $6::bigint * interval '1 millisecond'"
                    "   FROM {s}.push_tokens t"
                    "   LEFT JOIN {s}.chat_mutes m ON m.account_id = t.account_id AND m.chat_id = $2::bigint"
                    "  WHERE t.account_id = ANY ($1::bigint[])"
                    "    AND CASE WHEN $4::boolean"
                    "        THEN t.provider = 2 OR NOT EXISTS (SELECT 1 FROM {s}.push_tokens v"
                    "                                            WHERE v.device_id = t.device_id AND v.provider = 2)"
                    "        ELSE t.provider <> 2 END"
                    " ON CONFLICT DO NOTHING",
                    false},
    /* $1 rows at most, $2 lease ms. Due jobs, leased (a node that dies
     * with them leaves them to the next sweep), with whether the device
     * has the message already and the token to use. */
    [ST_CLAIM] = {"push_claim",
                  "WITH due AS (SELECT device_id, provider, kind, chat_id, seq FROM {s}.push_jobs"
                  "              WHERE due_at <= now() ORDER BY due_at LIMIT $1::bigint FOR UPDATE SKIP LOCKED),"
                  " c AS (UPDATE {s}.push_jobs j"
                  "          SET due_at = now() + $2::bigint * interval '1 millisecond', attempts = j.attempts + 1"
                  "         FROM due WHERE j.device_id = due.device_id AND j.provider = due.provider"
                  "                    AND j.kind = due.kind AND j.chat_id = due.chat_id AND j.seq = due.seq"
                  "       RETURNING j.device_id, j.provider, j.kind, j.chat_id, j.account_id, j.seq, j.preview,"
                  "                 j.attempts)"
                  " SELECT c.device_id, c.provider::bigint, c.kind::bigint, c.chat_id, c.seq, c.attempts::bigint,"
                  "        COALESCE(dc.delivered_seq, 0) >= c.seq, t.token, COALESCE(t.app_id, ''),"
                  "        COALESCE(t.sandbox, false),"
                  "        COALESCE((extract(epoch FROM t.last_alert_at) * 1000)::bigint, 0),"
                  "        COALESCE((extract(epoch FROM t.last_background_at) * 1000)::bigint, 0),"
                  "        COALESCE(a.push_no_previews, false), c.preview,"
                  "        (extract(epoch FROM now()) * 1000)::bigint"
                  "   FROM c"
                  "   LEFT JOIN {s}.device_cursors dc ON dc.device_id = c.device_id AND dc.chat_id = c.chat_id"
                  "   LEFT JOIN {s}.push_tokens t ON t.device_id = c.device_id AND t.provider = c.provider"
                  "   LEFT JOIN {s}.accounts a ON a.id = c.account_id"
                  "  ORDER BY c.device_id, c.provider, c.kind, c.chat_id, c.seq",
                  true},
    /* in how many ms the shard's next job is due (NULL: none), by the
     * database's clock: read after a claim, so that jobs other nodes
     * recorded are not left to the sweep */
    [ST_NEXT_DUE] = {"push_next_due",
                     "SELECT (extract(epoch FROM min(due_at) - now()) * 1000)::bigint FROM {s}.push_jobs", false},
    /* jobs waiting in the shard (counted once a sweep) */
    [ST_QUEUE_DEPTH] = {"push_queue_depth", "SELECT count(*) FROM (SELECT 1 FROM {s}.push_jobs LIMIT 100000) x", false},
    /* $1 device, $2 provider, $3 kind, $4 chats, $5 seqs (bigint[]):
     * those jobs are gone (delivered, or their token) */
    [ST_JOBS_DROP] = {"push_jobs_drop",
                      "DELETE FROM {s}.push_jobs j USING unnest($4::bigint[], $5::bigint[]) AS u(c, s)"
                      " WHERE j.device_id = $1::bigint AND j.provider = $2::bigint AND j.kind = $3::bigint"
                      "   AND j.chat_id = u.c AND j.seq = u.s",
                      false},
    /* $1 device, $2 provider, $3 kind, $4 when the claim was made (epoch
     * ms, the database's clock): a push went out, and it covers every
     * message stored for the device before it, claimed or not yet due */
    [ST_JOBS_DONE] = {"push_jobs_done",
                      "DELETE FROM {s}.push_jobs"
                      " WHERE device_id = $1::bigint AND provider = $2::bigint AND kind = $3::bigint"
                      "   AND created_at <= to_timestamp($4::bigint / 1000.0)",
                      false},
    /* $1 device, $2 provider, $3 kind, $4 chats, $5 seqs: those jobs run
     * again in $6 ms; $7 why; $8 attempts to give back (a wait that was not
     * a failure) */
    [ST_JOBS_LATER] = {"push_jobs_later",
                       "UPDATE {s}.push_jobs j SET due_at = now() + $6::bigint * interval '1 millisecond',"
                       "       last_error = NULLIF($7::text, ''), attempts = greatest(j.attempts - $8::int, 0)"
                       "  FROM unnest($4::bigint[], $5::bigint[]) AS u(c, s)"
                       " WHERE j.device_id = $1::bigint AND j.provider = $2::bigint AND j.kind = $3::bigint"
                       "   AND j.chat_id = u.c AND j.seq = u.s",
                       false},
    /* $1 device, $2 provider, $3 kind: the interval starts now */
    [ST_TOKEN_USED] = {"push_token_used",
                       "UPDATE {s}.push_tokens"
                       "   SET last_alert_at = CASE WHEN $3::bigint = 1 THEN now() ELSE last_alert_at END,"
                       "       last_background_at = CASE WHEN $3::bigint = 2 THEN now() ELSE last_background_at END"
                       " WHERE device_id = $1::bigint AND provider = $2::bigint",
                       false},
    /* $1 device, $2 provider, $3 the token it was sent to, $4 invalid
     * since (epoch ms; 0: now): a token registered again after that, or
     * replaced meanwhile, stays. Returns 1 if it went. */
    [ST_TOKEN_DEAD] = {"push_token_dead",
                       "WITH d AS (DELETE FROM {s}.push_tokens"
                       "            WHERE device_id = $1::bigint AND provider = $2::bigint AND token = $3::text"
                       "              AND ($4::bigint = 0 OR registered_at <= to_timestamp($4::bigint / 1000.0))"
                       "            RETURNING 1),"
                       " j AS (DELETE FROM {s}.push_jobs WHERE device_id = $1::bigint AND provider = $2::bigint"
                       "          AND EXISTS (SELECT 1 FROM d))"
                       " SELECT count(*) FROM d",
                       false},
    /* $1 days, $2 rows at most */
    [ST_TOKENS_EXPIRE] = {"push_tokens_expire",
                          "WITH d AS (DELETE FROM {s}.push_tokens t WHERE (t.device_id, t.provider) IN"
                          "            (SELECT device_id, provider FROM {s}.push_tokens"
                          "              WHERE registered_at < now() - $1::bigint * interval '1 day'"
                          "              LIMIT $2::bigint FOR UPDATE SKIP LOCKED)"
                          "            RETURNING t.device_id, t.provider),"
                          " j AS (DELETE FROM {s}.push_jobs x USING d"
                          "        WHERE x.device_id = d.device_id AND x.provider = d.provider)"
                          " SELECT count(*) FROM d",
                          false},
};

static const parley_v1_Push_handlers_t handlers = {
    .RegisterPushToken = pl_push_register_token,
    .UnregisterPushToken = pl_push_unregister_token,
    .MuteChat = pl_push_mute_chat,
    .SetPushSettings = pl_push_set_settings,
    .TestPush = pl_push_test,
};

int64_t pl_push_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pl_push_due(pl_push_service_t *svc, int shard, int64_t ms)
{
    if (shard < 0 || shard >= svc->app->map.shards)
        return;
    pl_push_lower(&svc->due_ms[shard], ms);
    pl_push_lower(&svc->next_due_ms, ms); /* after the shard's: the tick reads them in the other order */
}

void pl_push_lower(_Atomic int64_t *slot, int64_t ms)
{
    int64_t cur = atomic_load_explicit(slot, memory_order_relaxed);
    while (ms < cur &&
           !atomic_compare_exchange_weak_explicit(slot, &cur, ms, memory_order_release, memory_order_relaxed)) {
    }
}

/* A key or credentials file that cannot be used stops the start: finding
 * out at the first push would be too late. */
static int check_credentials(pl_push_service_t *svc, char *err, size_t err_len)
{
    const pl_config_t *cfg = svc->app->cfg;
    svc->has_apns = cfg->apns_key_file[0] != '\0';
    svc->has_fcm = cfg->fcm_credentials[0] != '\0';
    char why[256];
    if (svc->has_apns) {
        if (!cfg->apns_key_id[0] || !cfg->apns_team_id[0]) {
            snprintf(err, err_len, "push: [push] apns_key_file needs apns_key_id and apns_team_id");
            return -1;
        }
        pl_jwt_key_t *k = pl_jwt_key_load(cfg->apns_key_file, why, sizeof(why));
        if (!k) {
            snprintf(err, err_len, "push: [push] apns_key_file: %s", why);
            return -1;
        }
        pl_jwt_key_free(k);
    }
    if (svc->has_fcm) {
        pl_fcm_t *f = pl_fcm_new(cfg, NULL, why, sizeof(why));
        if (!f) {
            snprintf(err, err_len, "push: [push] fcm_credentials: %s", why);
            return -1;
        }
        pl_fcm_free(f);
    }
    return 0;
}

pl_push_service_t *pl_push_register(pl_app_t *app, char *err, size_t err_len)
{
    pl_push_service_t *svc = calloc(1, sizeof(*svc));
    if (!svc || !(svc->due_ms = calloc((size_t)app->map.shards, sizeof(*svc->due_ms)))) {
        snprintf(err, err_len, "push: out of memory");
        pl_push_free(svc);
        return NULL;
    }
    svc->app = app;
    for (int i = 0; i < app->map.shards; i++)
        atomic_init(&svc->due_ms[i], INT64_MAX);
    atomic_init(&svc->next_due_ms, INT64_MAX);
    if (check_credentials(svc, err, err_len) != 0) {
        pl_push_free(svc);
        return NULL;
    }
    svc->stmt = pl_app_add_statements(app, statements, ST_COUNT);
    if (svc->stmt < 0 || pl_push_dispatch_register(svc) != 0 ||
        parley_v1_Push_register(app->server, &handlers, svc) != 0) {
        snprintf(err, err_len, "push: cannot register parley.v1.Push");
        pl_push_free(svc);
        return NULL;
    }
    if (!svc->has_apns && !svc->has_fcm)
        pl_log_info("push: no [push] credentials: tokens cannot be registered and no pushes are sent");
    app->push = svc;
    return svc;
}

void pl_push_free(pl_push_service_t *svc)
{
    if (!svc)
        return;
    free((void *)svc->due_ms);
    free(svc);
}
