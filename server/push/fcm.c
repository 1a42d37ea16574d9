/* fcm.c — building an FCM v1 request, the OAuth token it needs, and
 * reading the answer (errors as documented under "FcmError"). Pushes are
 * data messages: the app decides what to show, after fetching over its
 * stream; HIGH priority for messages and calls, NORMAL for syncs. */
#include "push/fcm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/log.h"
#include "push/jwt.h"

#define TIMEOUT_MS 15000
#define TOKEN_MARGIN_S 60 /* renew this long before Google's expiry */
#define SCOPE "https://www.googleapis.com/auth/firebase.messaging"

typedef struct waiting {
    char *body;
    pl_push_done_fn fn;
    void *user;
    struct waiting *next;
} waiting_t;

struct pl_fcm {
    pl_http_t *http;
    pl_jwt_key_t *key;
    char *send_url, *token_uri, *client_email;
    char *access; /* "authorization: Bearer ..." */
    time_t access_expires;
    uint64_t access_gen; /* which access token; a 401 renews only the one it refused */
    bool is_fetching;
    waiting_t *waiting, **waiting_tail;
};

static char *dup_field(json_t *root, const char *name, const char *path, char *err, size_t err_len)
{
    const char *v = json_string_value(json_object_get(root, name));
    if (!v || !*v) {
        snprintf(err, err_len, "%s: no \"%s\"", path, name);
        return NULL;
    }
    char *copy = strdup(v);
    if (!copy)
        snprintf(err, err_len, "out of memory");
    return copy;
}

pl_fcm_t *pl_fcm_new(const pl_config_t *cfg, pl_http_t *http, char *err, size_t err_len)
{
    json_error_t jerr;
    json_t *root = json_load_file(cfg->fcm_credentials, 0, &jerr);
    if (!root) {
        snprintf(err, err_len, "%s: %s (line %d)", cfg->fcm_credentials, jerr.text, jerr.line);
        return NULL;
    }
    pl_fcm_t *f = calloc(1, sizeof(*f));
    char *project = NULL, *pem = NULL;
    if (!f) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    f->http = http;
    f->waiting_tail = &f->waiting;
    if (!(project = dup_field(root, "project_id", cfg->fcm_credentials, err, err_len)) ||
        !(f->client_email = dup_field(root, "client_email", cfg->fcm_credentials, err, err_len)) ||
        !(f->token_uri = dup_field(root, "token_uri", cfg->fcm_credentials, err, err_len)) ||
        !(pem = dup_field(root, "private_key", cfg->fcm_credentials, err, err_len)))
        goto fail;
    char inner[200];
    if (!(f->key = pl_jwt_key_from_pem(pem, strlen(pem), inner, sizeof(inner)))) {
        snprintf(err, err_len, "%s: private_key: %s", cfg->fcm_credentials, inner);
        goto fail;
    }
    size_t n = strlen(cfg->fcm_url) + strlen(project) + 40;
    if (!(f->send_url = malloc(n))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    snprintf(f->send_url, n, "%s/v1/projects/%s/messages:send", cfg->fcm_url, project);
    free(project);
    free(pem);
    json_decref(root);
    return f;
fail:
    free(project);
    free(pem);
    json_decref(root);
    pl_fcm_free(f);
    return NULL;
}

static void answer_waiting(pl_fcm_t *f, const char *why)
{
    waiting_t *w = f->waiting;
    f->waiting = NULL;
    f->waiting_tail = &f->waiting;
    while (w) {
        waiting_t *next = w->next;
        pl_push_answer_unsent(w->fn, w->user, PL_PUSH_RETRY, why);
        free(w->body);
        free(w);
        w = next;
    }
}

void pl_fcm_free(pl_fcm_t *f)
{
    if (!f)
        return;
    answer_waiting(f, "shutting down");
    pl_jwt_key_free(f->key);
    free(f->send_url);
    free(f->token_uri);
    free(f->client_email);
    free(f->access);
    free(f);
}

/* ---- sending ---- */

typedef struct request {
    pl_fcm_t *f;
    uint64_t access_gen;
    pl_push_done_fn fn;
    void *user;
} request_t;

/* errorCode from Google's error body, or "". */
static void error_code(const pl_http_response_t *res, char *out, size_t cap)
{
    out[0] = '\0';
    json_error_t jerr;
    json_t *root = json_loadb(res->body, res->body_len, 0, &jerr);
    json_t *error = json_object_get(root, "error");
    json_t *details = json_object_get(error, "details");
    for (size_t i = 0; i < json_array_size(details); i++) {
        const char *code = json_string_value(json_object_get(json_array_get(details, i), "errorCode"));
        if (code) {
            snprintf(out, cap, "%s", code);
            break;
        }
    }
    if (!out[0]) {
        const char *status = json_string_value(json_object_get(error, "status"));
        snprintf(out, cap, "%s", status ? status : "");
    }
    json_decref(root);
}

bool pl_fcm_read_answer(const pl_http_response_t *res, pl_push_result_t *out)
{
    *out = (pl_push_result_t){.http_status = (int)res->status,
                              .retry_after_ms = res->retry_after_s >= 0 ? res->retry_after_s * 1000 : -1,
                              .seconds = res->seconds};
    if (res->status == 0)
        snprintf(out->reason, sizeof(out->reason), "%s", res->error ? res->error : "no answer");
    else if (res->status != 200)
        error_code(res, out->reason, sizeof(out->reason));
    bool renew = false;
    if (res->status == 200) {
        out->outcome = PL_PUSH_SENT;
    } else if (res->status == 404 || strcmp(out->reason, "UNREGISTERED") == 0 ||
               strcmp(out->reason, "SENDER_ID_MISMATCH") == 0) {
        out->outcome = PL_PUSH_TOKEN_DEAD;
    } else if (res->status == 401) {
        renew = true;
        out->outcome = PL_PUSH_RETRY; /* after the usual backoff */
    } else if (res->status == 0 || res->status == 429 || res->status >= 500) {
        out->outcome = PL_PUSH_RETRY;
    } else {
        out->outcome = PL_PUSH_REFUSED;
    }
    return renew;
}

static void on_sent(const pl_http_response_t *res, void *user)
{
    request_t *r = user;
    pl_push_result_t out;
    if (pl_fcm_read_answer(res, &out) && r->access_gen == r->f->access_gen) {
        free(r->f->access); /* renewed before the next push */
        r->f->access = NULL;
    }
    r->fn(&out, r->user);
    free(r);
}

static void post(pl_fcm_t *f, const char *body, pl_push_done_fn fn, void *user)
{
    request_t *r = malloc(sizeof(*r));
    const char *headers[] = {f->access, "content-type: application/json; UTF-8", NULL};
    if (r)
        *r = (request_t){f, f->access_gen, fn, user};
    if (!r || pl_http_post(f->http, f->send_url, headers, body, strlen(body), TIMEOUT_MS, on_sent, r) != 0) {
        free(r);
        pl_push_answer_unsent(fn, user, PL_PUSH_RETRY, "cannot start the request");
    }
}

/* ---- the access token ---- */

static void on_token(const pl_http_response_t *res, void *user)
{
    pl_fcm_t *f = user;
    f->is_fetching = false;
    json_error_t jerr;
    json_t *root = res->status == 200 ? json_loadb(res->body, res->body_len, 0, &jerr) : NULL;
    const char *token = json_string_value(json_object_get(root, "access_token"));
    json_int_t expires_in = json_integer_value(json_object_get(root, "expires_in"));
    if (!token || expires_in <= 0) {
        pl_log_warn("push: fcm: no access token from %s: %s %.200s", f->token_uri,
                    res->status ? "HTTP" : (res->error ? res->error : "no answer"), res->status ? res->body : "");
        json_decref(root);
        answer_waiting(f, "no FCM access token");
        return;
    }
    size_t n = strlen(token) + 32;
    free(f->access);
    if ((f->access = malloc(n)))
        snprintf(f->access, n, "authorization: Bearer %s", token);
    f->access_expires = time(NULL) + (time_t)expires_in;
    f->access_gen++;
    json_decref(root);
    waiting_t *w = f->waiting;
    f->waiting = NULL;
    f->waiting_tail = &f->waiting;
    while (w) {
        waiting_t *next = w->next;
        if (f->access) {
            post(f, w->body, w->fn, w->user);
        } else {
            pl_push_answer_unsent(w->fn, w->user, PL_PUSH_RETRY, "out of memory");
        }
        free(w->body);
        free(w);
        w = next;
    }
}

/* Asks the token endpoint for an access token (one request at a time). */
static void fetch_token(pl_fcm_t *f)
{
    if (f->is_fetching)
        return;
    time_t now = time(NULL);
    char claims[1024];
    snprintf(claims, sizeof(claims),
             "{\"iss\":\"%s\",\"scope\":\"" SCOPE "\",\"aud\":\"%s\",\"iat\":%lld,\"exp\":%lld}", f->client_email,
             f->token_uri, (long long)now, (long long)now + 3600);
    char *jwt = pl_jwt_sign(f->key, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims);
    size_t n = jwt ? strlen(jwt) + 96 : 0;
    char *body = jwt ? malloc(n) : NULL;
    if (body)
        snprintf(body, n, "grant_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Agrant-type%%3Ajwt-bearer&assertion=%s", jwt);
    free(jwt);
    const char *headers[] = {"content-type: application/x-www-form-urlencoded", NULL};
    if (!body || pl_http_post(f->http, f->token_uri, headers, body, strlen(body), TIMEOUT_MS, on_token, f) != 0) {
        pl_log_error("push: fcm: cannot ask %s for an access token", f->token_uri);
        free(body);
        answer_waiting(f, "cannot ask for an FCM access token");
        return;
    }
    free(body);
    f->is_fetching = true;
}

static char *payload(const pl_push_t *p)
{
    json_t *data = json_object();
    json_object_set_new(data, "k",
                        json_string(p->kind == PL_PUSH_CALL         ? "call"
                                    : p->kind == PL_PUSH_BACKGROUND ? "sync"
                                                                    : "message"));
    if (p->preview && p->preview_len) {
        char b64[(PL_PUSH_PREVIEW_MAX + 2) / 3 * 4 + 1];
        if (pl_base64url(p->preview, p->preview_len, b64, sizeof(b64)))
            json_object_set_new(data, "p", json_string(b64));
    }
    json_t *android = json_object();
    json_object_set_new(android, "priority", json_string(p->kind == PL_PUSH_BACKGROUND ? "NORMAL" : "HIGH"));
    /* a call that cannot ring now must not ring later */
    json_object_set_new(android, "ttl", json_string(p->kind == PL_PUSH_CALL ? "0s" : "86400s"));
    if (p->kind != PL_PUSH_CALL)
        json_object_set_new(android, "collapse_key", json_string("parley-new"));
    json_t *message = json_object();
    json_object_set_new(message, "token", json_string(p->token));
    json_object_set_new(message, "data", data);
    json_object_set_new(message, "android", android);
    json_t *root = json_object();
    json_object_set_new(root, "message", message);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

void pl_fcm_send(pl_fcm_t *f, const pl_push_t *p, pl_push_done_fn fn, void *user)
{
    char *body = payload(p);
    if (!body) {
        pl_push_answer_unsent(fn, user, PL_PUSH_RETRY, "out of memory");
        return;
    }
    if (f->access && time(NULL) < f->access_expires - TOKEN_MARGIN_S) {
        post(f, body, fn, user);
        free(body);
        return;
    }
    waiting_t *w = malloc(sizeof(*w));
    if (!w) {
        free(body);
        pl_push_answer_unsent(fn, user, PL_PUSH_RETRY, "out of memory");
        return;
    }
    *w = (waiting_t){body, fn, user, NULL};
    *f->waiting_tail = w;
    f->waiting_tail = &w->next;
    fetch_token(f);
}
