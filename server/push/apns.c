/* apns.c — building an APNs request and reading its answer.
 *
 * What a push says: nothing of the message. An alert is a localisable key
 * the app's strings turn into "New message" (mutable-content lets its
 * notification extension fetch or decrypt a preview); a background push
 * only asks the app to sync; a call wakes PushKit. Answers and reasons
 * follow Apple's "Handling notification responses from APNs". */
#include "push/apns.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/log.h"
#include "push/jwt.h"

#define TIMEOUT_MS 15000
#define EXPIRY_S 86400 /* an alert APNs could not deliver yet is kept a day */

struct pl_apns {
    pl_http_t *http;
    pl_jwt_key_t *key;
    char *url, *sandbox_url, *key_id, *team_id;
    char *jwt; /* the current provider token */
    time_t jwt_iat;
    time_t jwt_lifetime_s; /* [push] apns_token_refresh_ms */
};

typedef struct request {
    pl_apns_t *a;
    time_t jwt_iat; /* which provider token it carried */
    pl_push_done_fn fn;
    void *user;
} request_t;

pl_apns_t *pl_apns_new(const pl_config_t *cfg, pl_http_t *http, char *err, size_t err_len)
{
    if (!cfg->apns_key_id[0] || !cfg->apns_team_id[0]) {
        snprintf(err, err_len, "[push] apns_key_file needs apns_key_id and apns_team_id");
        return NULL;
    }
    pl_apns_t *a = calloc(1, sizeof(*a));
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    a->http = http;
    a->jwt_lifetime_s = cfg->apns_token_refresh_ms / 1000;
    a->url = strdup(cfg->apns_url);
    a->sandbox_url = strdup(cfg->apns_sandbox_url);
    a->key_id = strdup(cfg->apns_key_id);
    a->team_id = strdup(cfg->apns_team_id);
    if (!a->url || !a->sandbox_url || !a->key_id || !a->team_id) {
        snprintf(err, err_len, "out of memory");
        pl_apns_free(a);
        return NULL;
    }
    if (!(a->key = pl_jwt_key_load(cfg->apns_key_file, err, err_len))) {
        pl_apns_free(a);
        return NULL;
    }
    return a;
}

void pl_apns_free(pl_apns_t *a)
{
    if (!a)
        return;
    pl_jwt_key_free(a->key);
    free(a->url);
    free(a->sandbox_url);
    free(a->key_id);
    free(a->team_id);
    free(a->jwt);
    free(a);
}

/* The provider token, made anew when it is jwt_lifetime_s old or was
 * refused. NULL when signing failed. */
static const char *provider_token(pl_apns_t *a)
{
    time_t now = time(NULL);
    if (a->jwt && now - a->jwt_iat < a->jwt_lifetime_s && now >= a->jwt_iat)
        return a->jwt;
    char header[160], claims[160];
    snprintf(header, sizeof(header), "{\"alg\":\"ES256\",\"kid\":\"%s\"}", a->key_id);
    snprintf(claims, sizeof(claims), "{\"iss\":\"%s\",\"iat\":%lld}", a->team_id, (long long)now);
    char *jwt = pl_jwt_sign(a->key, header, claims);
    if (!jwt)
        return NULL;
    free(a->jwt);
    a->jwt = jwt;
    a->jwt_iat = now;
    return a->jwt;
}

/* The JSON body; malloc'd. */
static char *payload(const pl_push_t *p)
{
    json_t *aps = json_object();
    json_t *parley = json_object();
    json_t *root = json_object();
    const char *kind = "message";
    if (p->kind == PL_PUSH_BACKGROUND) {
        json_object_set_new(aps, "content-available", json_integer(1));
        kind = "sync";
    } else if (p->kind == PL_PUSH_CALL && p->provider == PL_PROVIDER_APNS_VOIP) {
        kind = "call"; /* PushKit hands the payload to the app as it is */
    } else {
        json_t *alert = json_object();
        json_object_set_new(alert, "loc-key",
                            json_string(p->kind == PL_PUSH_CALL ? "PARLEY_INCOMING_CALL" : "PARLEY_NEW_MESSAGE"));
        json_object_set_new(aps, "alert", alert);
        json_object_set_new(aps, "sound", json_string("default"));
        json_object_set_new(aps, "mutable-content", json_integer(1));
        if (p->kind == PL_PUSH_CALL)
            kind = "call";
    }
    json_object_set_new(parley, "k", json_string(kind));
    if (p->preview && p->preview_len) {
        char b64[(PL_PUSH_PREVIEW_MAX + 2) / 3 * 4 + 1];
        if (pl_base64url(p->preview, p->preview_len, b64, sizeof(b64)))
            json_object_set_new(parley, "p", json_string(b64));
    }
    json_object_set_new(root, "aps", aps);
    json_object_set_new(root, "parley", parley);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

bool pl_apns_read_answer(const pl_http_response_t *res, pl_push_result_t *out)
{
    *out = (pl_push_result_t){.http_status = (int)res->status,
                              .retry_after_ms = res->retry_after_s >= 0 ? res->retry_after_s * 1000 : -1,
                              .seconds = res->seconds};
    if (res->status == 200) {
        out->outcome = PL_PUSH_SENT;
        return false;
    }
    if (res->status == 0) {
        out->outcome = PL_PUSH_RETRY;
        snprintf(out->reason, sizeof(out->reason), "%s", res->error ? res->error : "no answer");
        return false;
    }
    json_error_t jerr;
    json_t *root = json_loadb(res->body, res->body_len, 0, &jerr);
    const char *reason = json_string_value(json_object_get(root, "reason"));
    snprintf(out->reason, sizeof(out->reason), "%s", reason ? reason : "");
    json_t *ts = json_object_get(root, "timestamp");
    if (json_is_integer(ts) && json_integer_value(ts) > 0)
        out->dead_since_ms = json_integer_value(ts);
    json_decref(root);
    bool renew = false;
    if (res->status == 410 || (res->status == 400 && (strcmp(out->reason, "BadDeviceToken") == 0 ||
                                                      strcmp(out->reason, "DeviceTokenNotForTopic") == 0))) {
        out->outcome = PL_PUSH_TOKEN_DEAD;
    } else if (res->status == 403 &&
               (strcmp(out->reason, "ExpiredProviderToken") == 0 || strcmp(out->reason, "InvalidProviderToken") == 0)) {
        renew = true;
        out->outcome = PL_PUSH_RETRY; /* after the usual backoff: a key Apple never takes must not spin */
    } else if (res->status == 429 || res->status >= 500) {
        out->outcome = PL_PUSH_RETRY;
    } else {
        out->outcome = PL_PUSH_REFUSED;
    }
    return renew;
}

static void on_answer(const pl_http_response_t *res, void *user)
{
    request_t *r = user;
    pl_push_result_t out;
    /* the next push signs a new one, unless an answer before this one
     * made that happen already (a burst of refusals is one renewal:
     * Apple refuses tokens renewed too often) */
    if (pl_apns_read_answer(res, &out) && r->a->jwt && r->a->jwt_iat == r->jwt_iat) {
        free(r->a->jwt);
        r->a->jwt = NULL;
    }
    r->fn(&out, r->user);
    free(r);
}

void pl_apns_send(pl_apns_t *a, const pl_push_t *p, pl_push_done_fn fn, void *user)
{
    const char *jwt = provider_token(a);
    char *body = payload(p);
    request_t *r = malloc(sizeof(*r));
    bool is_voip = p->provider == PL_PROVIDER_APNS_VOIP;
    bool is_background = p->kind == PL_PUSH_BACKGROUND;
    bool is_call = p->kind == PL_PUSH_CALL;
    char url[4300], auth[1200], topic[300], type[40], priority[24], expiration[48];
    snprintf(url, sizeof(url), "%s/3/device/%s", p->sandbox ? a->sandbox_url : a->url, p->token);
    snprintf(auth, sizeof(auth), "authorization: bearer %s", jwt ? jwt : "");
    snprintf(topic, sizeof(topic), "apns-topic: %s%s", p->app_id, is_voip ? ".voip" : "");
    snprintf(type, sizeof(type), "apns-push-type: %s", is_voip ? "voip" : is_background ? "background" : "alert");
    snprintf(priority, sizeof(priority), "apns-priority: %d", is_background ? 5 : 10);
    /* a call that cannot ring now must not ring later */
    snprintf(expiration, sizeof(expiration), "apns-expiration: %lld", is_call ? 0LL : (long long)time(NULL) + EXPIRY_S);
    /* one notification on screen for any number of messages */
    const char *collapse = is_call || is_voip ? NULL : "apns-collapse-id: parley-new";
    const char *headers[] = {auth, topic, type, priority, expiration, "content-type: application/json", collapse, NULL};
    if (!jwt || !body || !r) {
        if (!jwt)
            pl_log_error("push: apns: cannot sign the provider token with [push] apns_key_file");
        free(body);
        free(r);
        pl_push_answer_unsent(fn, user, PL_PUSH_RETRY, !jwt ? "cannot sign the provider token" : "out of memory");
        return;
    }
    *r = (request_t){a, a->jwt_iat, fn, user};
    if (pl_http_post(a->http, url, headers, body, strlen(body), TIMEOUT_MS, on_answer, r) != 0) {
        free(r);
        pl_push_answer_unsent(fn, user, PL_PUSH_RETRY, "cannot start the request");
    }
    free(body);
}
