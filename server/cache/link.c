/* link.c — one self-healing hiredis connection on a libevent loop (see
 * link.h): connect, handshake, and reconnect with jittered backoff.
 *
 * hiredis 0.14 facts this file is built around: the context is freed by
 * hiredis itself after a failed connect (onConnect with REDIS_ERR) and after
 * an error disconnect (onDisconnect), so those paths only forget it;
 * redisAsyncFree() from inside a reply callback is deferred by hiredis until
 * the callback returns, but from inside onConnect it is not (so the connect
 * callback never frees; it lets the timer do it); and every callback finds
 * its link through ac->data, which is cleared whenever the link lets go of a
 * context, so a late callback can never reach a freed link. */
#include "cache/link.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "runtime/clock.h"

typedef enum link_state {
    LINK_IDLE,       /* waiting for the next attempt (timer armed) */
    LINK_CONNECTING, /* TCP connect in progress (timer: handshake deadline) */
    LINK_HELLO,      /* AUTH / CLIENT SETNAME sent (timer: handshake deadline) */
    LINK_UP,
} link_state_t;

struct pl_redis_link {
    struct event_base *base;
    redisAsyncContext *ac; /* NULL while idle */
    link_state_t state;
    struct event *timer;
    char addr[INET6_ADDRSTRLEN];
    int port;
    char *password; /* NULL: no AUTH */
    char name[64];
    int timeout_ms;
    int backoff_ms; /* ceiling of the next delay */
    int hello_pending;
    bool is_doomed;  /* the handshake could not even be queued: fail at the timer */
    bool is_failing; /* a failure was logged and nothing succeeded since */
    bool has_been_up;
    uint64_t ups;
    uint64_t rng;
    char error[160];
    pl_redis_link_hooks_t hooks;
    void *owner;
};

static void link_connect(pl_redis_link_t *l);

static void set_err(char *err, size_t err_len, const char *what, const char *detail)
{
    if (err && err_len)
        snprintf(err, err_len, "%s%s", what, detail ? detail : "");
}

static void link_log(const pl_redis_link_t *l, const char *what, const char *detail)
{
    fprintf(stderr, "parleyd: redis %s:%d (%s): %s%s\n", l->addr, l->port, l->name, what, detail);
}

/* xorshift64*: jitter only, so any seed will do. */
static uint64_t next_random(pl_redis_link_t *l)
{
    l->rng ^= l->rng >> 12;
    l->rng ^= l->rng << 25;
    l->rng ^= l->rng >> 27;
    return l->rng * 2685821657736338717ULL;
}

/* Equal jitter: half the ceiling plus a random half, so that a thousand
 * workers that lost Redis together do not come back in lockstep. */
static int next_delay_ms(pl_redis_link_t *l)
{
    int cap = l->backoff_ms;
    l->backoff_ms = cap >= PL_REDIS_BACKOFF_MAX_MS / 2 ? PL_REDIS_BACKOFF_MAX_MS : cap * 2;
    return cap / 2 + (int)(next_random(l) % (uint64_t)(cap / 2 + 1));
}

static void arm_timer(pl_redis_link_t *l, int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
}

/* Enters IDLE after a failure: records why, schedules the next attempt and,
 * if the link was up, tells the owner. The context is already gone or being
 * freed. Callers return right after. */
static void link_went_down(pl_redis_link_t *l, const char *why, bool was_up)
{
    l->state = LINK_IDLE;
    l->ac = NULL;
    l->hello_pending = 0;
    l->is_doomed = false;
    if (why != l->error)
        snprintf(l->error, sizeof l->error, "%s", why);
    if (was_up || !l->is_failing) {
        link_log(l, was_up ? "connection lost: " : "cannot connect: ", l->error);
        l->is_failing = true;
    }
    arm_timer(l, next_delay_ms(l));
    if (was_up && l->hooks.on_down)
        l->hooks.on_down(l->owner);
}

static void on_hello(redisAsyncContext *ac, void *reply_, void *privdata)
{
    (void)privdata;
    pl_redis_link_t *l = ac->data;
    const redisReply *reply = reply_;
    if (!l || !reply || l->state != LINK_HELLO)
        return; /* the link let go of this context, or it is going down */
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof why, "handshake refused: %s", reply->str);
        pl_redis_link_drop(l, why); /* inside a reply callback: hiredis frees the context afterwards */
        return;
    }
    if (--l->hello_pending > 0)
        return;
    l->state = LINK_UP;
    evtimer_del(l->timer);
    l->backoff_ms = PL_REDIS_BACKOFF_MIN_MS;
    if (l->is_failing) {
        link_log(l, l->has_been_up ? "reconnected" : "connected", "");
        l->is_failing = false;
    }
    l->has_been_up = true;
    l->ups++;
    if (l->hooks.on_up)
        l->hooks.on_up(l->owner);
}

static int send_hello(pl_redis_link_t *l, redisAsyncContext *ac)
{
    l->hello_pending = 0;
    if (l->password) {
        const char *auth[2] = {"AUTH", l->password};
        if (redisAsyncCommandArgv(ac, on_hello, NULL, 2, auth, NULL) != REDIS_OK)
            return -1;
        l->hello_pending++;
    }
    const char *setname[3] = {"CLIENT", "SETNAME", l->name};
    if (redisAsyncCommandArgv(ac, on_hello, NULL, 3, setname, NULL) != REDIS_OK)
        return -1;
    l->hello_pending++;
    return 0;
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    pl_redis_link_t *l = cac->data;
    redisAsyncContext *ac = (redisAsyncContext *)cac; /* hiredis hands us const; we own it */
    if (!l)
        return;
    if (status != REDIS_OK) {
        char why[160];
        snprintf(why, sizeof why, "%s", cac->c.errstr[0] ? cac->c.errstr : "connect failed");
        ac->data = NULL; /* hiredis frees the context when we return */
        link_went_down(l, why, false);
        return;
    }
    l->state = LINK_HELLO;
    if (send_hello(l, ac) != 0) {
        /* Freeing the context here would pull it from under hiredis's
         * connect handler, so the timer does it on the next turn. */
        l->is_doomed = true;
        snprintf(l->error, sizeof l->error, "cannot queue the handshake (out of memory)");
        arm_timer(l, 0);
    }
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    pl_redis_link_t *l = cac->data;
    if (!l)
        return; /* we freed it ourselves */
    ((redisAsyncContext *)cac)->data = NULL;
    char why[160];
    snprintf(why, sizeof why, "%s", status == REDIS_OK || !cac->c.errstr[0] ? "connection closed" : cac->c.errstr);
    link_went_down(l, why, l->state == LINK_UP);
}

static void link_connect(pl_redis_link_t *l)
{
    char why[160];
    redisAsyncContext *ac = redisAsyncConnect(l->addr, l->port);
    if (!ac) {
        link_went_down(l, "out of memory", false);
        return;
    }
    if (ac->err) {
        snprintf(why, sizeof why, "%s", ac->c.errstr);
        redisAsyncFree(ac);
        link_went_down(l, why, false);
        return;
    }
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        link_went_down(l, "cannot attach to the event loop", false);
        return;
    }
    ac->data = l;
    l->ac = ac;
    l->state = LINK_CONNECTING;
    l->is_doomed = false;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    arm_timer(l, l->timeout_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_redis_link_t *l = arg;
    char why[160];
    switch (l->state) {
    case LINK_IDLE: link_connect(l); return;
    case LINK_CONNECTING:
    case LINK_HELLO:
        if (l->is_doomed)
            snprintf(why, sizeof why, "%s", l->error);
        else
            snprintf(why, sizeof why, "no connection and handshake within %d ms", l->timeout_ms);
        pl_redis_link_drop(l, why);
        return;
    case LINK_UP: return;
    }
}

/* An IP literal is used as is; a name is resolved now, once, so that no
 * reconnect ever waits on DNS inside the loop. */
static int resolve(const char *host, char *out, size_t out_len, char *err, size_t err_len)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        snprintf(out, out_len, "%s", host);
        return 0;
    }
    /* IPv4 first: "localhost" often lists ::1 first, and a Redis bound to
     * 127.0.0.1 (the default) would refuse it forever. */
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        hints.ai_family = AF_INET6;
        rc = getaddrinfo(host, NULL, &hints, &res);
    }
    if (rc != 0 || !res) {
        if (err && err_len)
            snprintf(err, err_len, "redis: cannot resolve host '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    const void *addr;
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    if (res->ai_family == AF_INET6) {
        memcpy(&sin6, res->ai_addr, sizeof sin6);
        addr = &sin6.sin6_addr;
    } else {
        memcpy(&sin, res->ai_addr, sizeof sin);
        addr = &sin.sin_addr;
    }
    const char *ok = inet_ntop(res->ai_family, addr, out, (socklen_t)out_len);
    freeaddrinfo(res);
    if (!ok) {
        set_err(err, err_len, "redis: cannot format the address of ", host);
        return -1;
    }
    return 0;
}

pl_redis_link_t *pl_redis_link_new(struct event_base *base, const pl_redis_config_t *cfg, const char *role,
                                   const pl_redis_link_hooks_t *hooks, void *owner, char *err, size_t err_len)
{
    if (!base || !cfg || !cfg->host || !cfg->host[0] || cfg->port <= 0 || cfg->port > 65535 || !role) {
        set_err(err, err_len, "redis: a host and a port (1-65535) are required", NULL);
        return NULL;
    }
    pl_redis_link_t *l = calloc(1, sizeof *l);
    if (!l) {
        set_err(err, err_len, "redis: out of memory", NULL);
        return NULL;
    }
    l->base = base;
    l->port = cfg->port;
    l->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : PL_REDIS_DEFAULT_TIMEOUT_MS;
    l->backoff_ms = PL_REDIS_BACKOFF_MIN_MS;
    l->rng = ((uint64_t)(uintptr_t)l ^ (uint64_t)pl_now_usec() ^ ((uint64_t)getpid() << 32)) | 1;
    snprintf(l->name, sizeof l->name, "parley:node:%d:%s", cfg->node_id, role);
    if (hooks)
        l->hooks = *hooks;
    l->owner = owner;
    if (resolve(cfg->host, l->addr, sizeof l->addr, err, err_len) != 0) {
        free(l);
        return NULL;
    }
    if (cfg->password && cfg->password[0] && !(l->password = strdup(cfg->password))) {
        free(l);
        set_err(err, err_len, "redis: out of memory", NULL);
        return NULL;
    }
    if (!(l->timer = evtimer_new(base, on_timer, l))) {
        free(l->password);
        free(l);
        set_err(err, err_len, "redis: cannot create a timer", NULL);
        return NULL;
    }
    link_connect(l);
    return l;
}

void pl_redis_link_free(pl_redis_link_t *l)
{
    if (!l)
        return;
    redisAsyncContext *ac = l->ac;
    l->ac = NULL;
    l->state = LINK_IDLE;
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    event_free(l->timer);
    if (l->password) {
        explicit_bzero(l->password, strlen(l->password));
        free(l->password);
    }
    free(l);
}

redisAsyncContext *pl_redis_link_context(const pl_redis_link_t *l)
{
    if (!l || l->state != LINK_UP || !l->ac || (l->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)))
        return NULL;
    return l->ac;
}

bool pl_redis_link_is_up(const pl_redis_link_t *l)
{
    return pl_redis_link_context(l) != NULL;
}

void pl_redis_link_drop(pl_redis_link_t *l, const char *why)
{
    if (!l || l->state == LINK_IDLE)
        return;
    char reason[160];
    snprintf(reason, sizeof reason, "%s", why ? why : "dropped");
    bool was_up = l->state == LINK_UP;
    redisAsyncContext *ac = l->ac;
    /* Down before hiredis runs the pending callbacks, so that commands they
     * issue fail fast instead of joining the dying connection. */
    l->state = LINK_IDLE;
    l->ac = NULL;
    snprintf(l->error, sizeof l->error, "%s", reason);
    if (ac) {
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    link_went_down(l, reason, was_up);
}

uint64_t pl_redis_link_ups(const pl_redis_link_t *l)
{
    return l->ups;
}

const char *pl_redis_link_error(const pl_redis_link_t *l)
{
    return l->error;
}

void *pl_redis_link_owner(const redisAsyncContext *ac)
{
    const pl_redis_link_t *l = ac ? ac->data : NULL;
    return l ? l->owner : NULL;
}
