/* http.c — libcurl's multi interface driven by a libevent loop.
 *
 * curl tells us which sockets to watch (on_socket) and when to call it
 * back (on_timer); we tell it when a socket is ready (socket_ready) and
 * collect finished transfers (collect). Requests to one host wait for its
 * one connection and multiplex on it (PIPEWAIT, MAX_HOST_CONNECTIONS 1):
 * providers want long-lived connections, not one per push. */
#include "push/http.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BODY_MAX (64 * 1024)
#define RETRY_AFTER_MAX_S 86400L /* a longer wait is taken as a day (the caller caps it lower) */

typedef struct request {
    pl_http_t *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    char *answer;
    size_t answer_len, answer_cap;
    long retry_after_s;
    pl_http_done_fn fn;
    void *user;
    struct request *prev, *next;
} request_t;

struct pl_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    char *ca_file;
    request_t *requests;
    int pending;
};

/* One watched socket: the event curl asked for. */
typedef struct watch {
    pl_http_t *h;
    curl_socket_t fd;
    struct event *ev;
} watch_t;

static void collect(pl_http_t *h);

static void request_free(request_t *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->h->requests = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->h->pending--;
    curl_multi_remove_handle(r->h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->answer);
    free(r);
}

static void socket_ready(evutil_socket_t fd, short what, void *arg)
{
    pl_http_t *h = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    collect(h);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    pl_http_t *h = userp;
    watch_t *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            event_free(w->ev);
            free(w);
            curl_multi_assign(h->multi, fd, NULL);
        }
        return 0;
    }
    short events = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!w) {
        if (!(w = calloc(1, sizeof(*w))))
            return -1;
        w->h = h;
        w->fd = fd;
        curl_multi_assign(h->multi, fd, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(h->base, fd, events, socket_ready, h);
    if (!w->ev || event_add(w->ev, NULL) != 0)
        return -1;
    return 0;
}

static void timer_fired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_http_t *h = arg;
    int running = 0;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    collect(h);
}

/* curl forbids calling it back from here: only arm the timer. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    pl_http_t *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    request_t *r = arg;
    size_t len = size * n;
    size_t keep = r->answer_len + len > BODY_MAX ? BODY_MAX - r->answer_len : len;
    if (keep && r->answer_len + keep + 1 > r->answer_cap) {
        size_t cap = r->answer_cap ? r->answer_cap * 2 : 1024;
        while (cap < r->answer_len + keep + 1)
            cap *= 2;
        char *grown = realloc(r->answer, cap);
        if (!grown)
            return 0; /* curl fails the transfer */
        r->answer = grown;
        r->answer_cap = cap;
    }
    if (keep) {
        memcpy(r->answer + r->answer_len, data, keep);
        r->answer_len += keep;
        r->answer[r->answer_len] = '\0';
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    request_t *r = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        char value[32] = {0};
        size_t vlen = len - (sizeof(name) - 1);
        memcpy(value, data + sizeof(name) - 1, vlen < sizeof(value) - 1 ? vlen : sizeof(value) - 1);
        char *end = NULL;
        long s = strtol(value, &end, 10);
        /* an HTTP date instead of seconds: treat as "soon" rather than parse it */
        r->retry_after_s = end != value && s >= 0 ? (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s) : 1;
    }
    return len;
}

/* Finished transfers: answer and free each. */
static void collect(pl_http_t *h)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        request_t *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        pl_http_response_t res = {
            .retry_after_s = r->retry_after_s, .body = r->answer ? r->answer : "", .body_len = r->answer_len};
        if (msg->data.result == CURLE_OK)
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
        else
            res.error = curl_easy_strerror(msg->data.result);
        curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &res.seconds);
        r->fn(&res, r->user);
        request_free(r);
    }
}

pl_http_t *pl_http_new(struct event_base *base, const char *ca_file, char *err, size_t err_len)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        snprintf(err, err_len, "libcurl failed to initialise");
        return NULL;
    }
    pl_http_t *h = calloc(1, sizeof(*h));
    if (!h || !(h->multi = curl_multi_init()) || !(h->timer = evtimer_new(base, timer_fired, h)) ||
        (ca_file && *ca_file && !(h->ca_file = strdup(ca_file)))) {
        snprintf(err, err_len, "out of memory");
        pl_http_free(h);
        return NULL;
    }
    h->base = base;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 1L);
    return h;
}

void pl_http_free(pl_http_t *h)
{
    if (!h)
        return;
    while (h->requests) {
        request_t *r = h->requests;
        pl_http_response_t res = {.error = "cancelled", .body = "", .retry_after_s = -1};
        r->fn(&res, r->user);
        request_free(r);
    }
    if (h->multi)
        curl_multi_cleanup(h->multi);
    if (h->timer)
        event_free(h->timer);
    free(h->ca_file);
    free(h);
}

int pl_http_pending(const pl_http_t *h)
{
    return h->pending;
}

int pl_http_post(pl_http_t *h, const char *url, const char *const *headers, const char *body, size_t body_len,
                 long timeout_ms, pl_http_done_fn fn, void *user)
{
    request_t *r = calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->h = h;
    r->fn = fn;
    r->user = user;
    r->retry_after_s = -1;
    if (!(r->easy = curl_easy_init()) || !(r->body = malloc(body_len + 1)))
        goto fail;
    memcpy(r->body, body, body_len);
    r->body[body_len] = '\0';
    for (const char *const *hd = headers; hd && *hd; hd++) {
        struct curl_slist *l = curl_slist_append(r->headers, *hd);
        if (!l)
            goto fail;
        r->headers = l;
    }
    bool is_https = strncmp(url, "https://", 8) == 0;
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     is_https ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
        goto fail;
    r->next = h->requests;
    if (h->requests)
        h->requests->prev = r;
    h->requests = r;
    h->pending++;
    return 0;
fail:
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
    return -1;
}
