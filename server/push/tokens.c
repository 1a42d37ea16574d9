/* tokens.c — RegisterPushToken, UnregisterPushToken, MuteChat,
 * SetPushSettings and TestPush: the calling device's and account's push
 * state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/v1/push.parley.h"
#include "push/push_internal.h"

#define APP_ID_MAX 255
#define UNTIL_MAX_MS 253402300799999LL /* 9999-12-31: PostgreSQL takes it */

typedef struct push_req {
    pl_push_service_t *svc;
    const void *msg;
    /* TestPush */
    pl_push_t push;
    char *token, *app_id;
    int64_t start_ms;
} push_req_t;

static void start(pl_call_t *call, void *svc, const void *msg, const char *name, pl_op_step_fn first)
{
    pl_op_t *op = pl_op_new(((pl_push_service_t *)svc)->app, call, name, sizeof(push_req_t));
    if (!op)
        return;
    *(push_req_t *)op->state = (push_req_t){.svc = svc, .msg = msg};
    pl_op_start(op, first);
}

static const void *msg_of(pl_op_t *op)
{
    return ((push_req_t *)op->state)->msg;
}

static int own_shard(const pl_op_t *op)
{
    return pl_id_shard(op->who.device_id);
}

static bool provider_is_valid(parley_v1_PushProvider p)
{
    return p >= parley_v1_PushProvider_PUSH_PROVIDER_APNS && p <= parley_v1_PushProvider_PUSH_PROVIDER_FCM;
}

/* What is wrong with the token for the provider, or NULL. APNs tokens are
 * hex (32 bytes today; Apple says not to rely on the length); FCM's are
 * URL-safe text. */
static const char *token_problem(parley_v1_PushProvider p, const char *token)
{
    size_t n = strlen(token);
    if (n == 0)
        return "token is empty";
    bool is_apns = p != parley_v1_PushProvider_PUSH_PROVIDER_FCM;
    for (size_t i = 0; i < n; i++) {
        char c = token[i];
        bool is_hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        bool is_fcm = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
                      c == '_' || c == ':' || c == '.';
        if (is_apns ? !is_hex : !is_fcm)
            return is_apns ? "an APNs token must be hex" : "an FCM token has only letters, digits and - _ : .";
    }
    if (is_apns && (n % 2 || n < 32 || n > 200))
        return "an APNs token is 16 to 100 bytes in hex";
    return NULL;
}

static bool app_id_is_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > APP_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '-'))
            return false;
    }
    return true;
}

/* ---- RegisterPushToken ---- */

static void on_token_put(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    parley_v1_PushTokenResponse resp = {.registered_at_ms = pl_pg_get_int64(r->res, 0, 0)};
    parley_v1_Push_RegisterPushToken_reply(op->call, &resp);
}

static void register_token(pl_op_t *op)
{
    const parley_v1_RegisterPushTokenRequest *req = msg_of(op);
    uint8_t d[8], p[8], a[8];
    pl_pg_param_t params[] = {pl_pg_int8(d, op->who.device_id),  pl_pg_int8(p, req->provider),
                              pl_pg_int8(a, op->who.account_id), pl_pg_text(req->token),
                              pl_pg_text(req->app_id),           pl_pg_text(req->sandbox ? "t" : "f")};
    pl_op_query(op, pl_push_stmt(((push_req_t *)op->state)->svc, ST_TOKEN_PUT), own_shard(op), params, 6,
                PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, 0, on_token_put, NULL, "register push token");
}

void pl_push_register_token(pl_call_t *call, const parley_v1_RegisterPushTokenRequest *req, void *svc)
{
    pl_push_service_t *s = svc;
    if (!provider_is_valid(req->provider)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "provider must be PUSH_PROVIDER_APNS, _APNS_VOIP or _FCM");
        return;
    }
    bool is_fcm = req->provider == parley_v1_PushProvider_PUSH_PROVIDER_FCM;
    if (is_fcm ? !s->has_fcm : !s->has_apns) {
        pl_call_failf(call, PL_CODE_FAILED_PRECONDITION, "this server has no %s credentials", is_fcm ? "FCM" : "APNs");
        return;
    }
    const char *why = token_problem(req->provider, req->token);
    if (why) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, why);
        return;
    }
    if (!is_fcm && !app_id_is_valid(req->app_id)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       "app_id must be the app's bundle id (letters, digits, '.' and '-'; at most 255)");
        return;
    }
    start(call, svc, req, "register push token", register_token);
}

/* ---- UnregisterPushToken ---- */

static void on_token_deleted(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    parley_v1_UnregisterPushTokenResponse resp = {.removed = pl_pg_get_int64(r->res, 0, 0) > 0};
    parley_v1_Push_UnregisterPushToken_reply(op->call, &resp);
}

static void unregister_token(pl_op_t *op)
{
    const parley_v1_UnregisterPushTokenRequest *req = msg_of(op);
    uint8_t d[8], p[8];
    pl_pg_param_t params[] = {pl_pg_int8(d, op->who.device_id), pl_pg_int8(p, req->provider)};
    pl_op_query(op, pl_push_stmt(((push_req_t *)op->state)->svc, ST_TOKEN_DELETE), own_shard(op), params, 2,
                PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, 0, on_token_deleted, NULL, "unregister push token");
}

void pl_push_unregister_token(pl_call_t *call, const parley_v1_UnregisterPushTokenRequest *req, void *svc)
{
    if (req->provider != parley_v1_PushProvider_PUSH_PROVIDER_UNSPECIFIED && !provider_is_valid(req->provider)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "unknown provider");
        return;
    }
    start(call, svc, req, "unregister push token", unregister_token);
}

/* ---- MuteChat ---- */

static void on_muted(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)r;
    (void)arg;
    parley_v1_MuteChatResponse resp = {0};
    parley_v1_Push_MuteChat_reply(op->call, &resp);
}

static void mute_chat(pl_op_t *op)
{
    const parley_v1_MuteChatRequest *req = msg_of(op);
    uint8_t a[8], c[8], u[8];
    pl_pg_param_t params[] = {pl_pg_int8(a, op->who.account_id), pl_pg_int8(c, req->chat_id),
                              pl_pg_int8(u, req->forever ? -1 : req->until_ms)};
    pl_op_query(op, pl_push_stmt(((push_req_t *)op->state)->svc, ST_MUTE), pl_id_shard(op->who.account_id), params, 3,
                PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, 0, on_muted, NULL, "mute chat");
}

void pl_push_mute_chat(pl_call_t *call, const parley_v1_MuteChatRequest *req, void *svc)
{
    pl_push_service_t *s = svc;
    if (req->chat_id <= 0 || pl_id_shard(req->chat_id) >= s->app->map.shards) {
        pl_call_finish(call, PL_CODE_NOT_FOUND, "no such chat");
        return;
    }
    if (req->until_ms < 0 || req->until_ms > UNTIL_MAX_MS || (req->forever && req->until_ms)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT,
                       "until_ms must be a time (epoch ms), or 0 with or without forever");
        return;
    }
    start(call, svc, req, "mute chat", mute_chat);
}

/* ---- SetPushSettings ---- */

static void on_settings(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    if (PQntuples(r->res) != 1) {
        pl_op_fail(op, PL_CODE_NOT_FOUND, "account not found");
        return;
    }
    parley_v1_PushSettings resp = {.no_previews = pl_pg_get_bool(r->res, 0, 0)};
    parley_v1_Push_SetPushSettings_reply(op->call, &resp);
}

static void set_settings(pl_op_t *op)
{
    const parley_v1_PushSettings *req = msg_of(op);
    uint8_t a[8];
    pl_pg_param_t params[] = {pl_pg_int8(a, op->who.account_id), pl_pg_text(req->no_previews ? "t" : "f")};
    pl_op_query(op, pl_push_stmt(((push_req_t *)op->state)->svc, ST_SETTINGS), pl_id_shard(op->who.account_id), params,
                2, PL_PG_WRITE | PL_PG_IDEMPOTENT, NULL, 0, on_settings, NULL, "push settings");
}

void pl_push_set_settings(pl_call_t *call, const parley_v1_PushSettings *req, void *svc)
{
    start(call, svc, req, "push settings", set_settings);
}

/* ---- TestPush ---- */

static void on_tested(const pl_push_result_t *res, void *user)
{
    pl_op_t *op = user;
    parley_v1_TestPushResponse resp = {.http_status = res->http_status, .latency_ms = (int64_t)(res->seconds * 1000)};
    snprintf(resp.reason, sizeof(resp.reason), "%s",
             res->reason[0]                 ? res->reason
             : res->outcome == PL_PUSH_SENT ? "sent"
                                            : "not sent");
    if (!op->is_failed)
        parley_v1_Push_TestPush_reply(op->call, &resp);
    pl_op_release(op);
}

static void on_token(pl_op_t *op, const pl_pg_result_t *r, void *arg)
{
    (void)arg;
    push_req_t *q = op->state;
    if (PQntuples(r->res) != 1) {
        pl_op_fail(op, PL_CODE_FAILED_PRECONDITION, "this device has no push token for that provider");
        return;
    }
    size_t tl = (size_t)PQgetlength(r->res, 0, 1), al = (size_t)PQgetlength(r->res, 0, 2);
    if (!(q->token = pl_op_alloc(op, tl + 1)) || !(q->app_id = pl_op_alloc(op, al + 1))) {
        pl_op_fail_nomem(op);
        return;
    }
    memcpy(q->token, PQgetvalue(r->res, 0, 1), tl);
    memcpy(q->app_id, PQgetvalue(r->res, 0, 2), al);
    q->push = (pl_push_t){.provider = (pl_push_provider_t)pl_pg_get_int64(r->res, 0, 0),
                          .kind = PL_PUSH_ALERT,
                          .token = q->token,
                          .app_id = q->app_id,
                          .sandbox = pl_pg_get_bool(r->res, 0, 3)};
    if (q->push.provider == PL_PROVIDER_APNS_VOIP)
        q->push.kind = PL_PUSH_CALL; /* PushKit takes calls only */
    pl_op_hold(op);
    if (pl_push_send_via_dispatcher(q->svc, pl_call_worker(op->call), &q->push, on_tested, op) != 0) {
        pl_op_fail(op, PL_CODE_UNAVAILABLE, "the push dispatcher is not running");
        pl_op_release(op);
    }
}

static void test_push(pl_op_t *op)
{
    const parley_v1_TestPushRequest *req = msg_of(op);
    uint8_t d[8], p[8];
    pl_pg_param_t params[] = {pl_pg_int8(d, op->who.device_id), pl_pg_int8(p, req->provider)};
    pl_op_query(op, pl_push_stmt(((push_req_t *)op->state)->svc, ST_TOKEN_GET), own_shard(op), params, 2,
                PL_PG_IDEMPOTENT, NULL, 0, on_token, NULL, "push token");
}

void pl_push_test(pl_call_t *call, const parley_v1_TestPushRequest *req, void *svc)
{
    if (req->provider != parley_v1_PushProvider_PUSH_PROVIDER_UNSPECIFIED && !provider_is_valid(req->provider)) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "unknown provider");
        return;
    }
    start(call, svc, req, "test push", test_push);
}
