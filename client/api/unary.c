/* unary.c — the connection pool and the one function every unary call of
 * the public API goes through (unary.h). */
#include "api/unary.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Holds SIGPIPE off the calling thread while it writes to a socket (a TLS
 * write to a closed connection would otherwise kill the app), and takes
 * back a SIGPIPE the call caused. */
typedef struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
} sigpipe_guard_t;

static void sigpipe_hold(sigpipe_guard_t *g)
{
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

static void sigpipe_release(sigpipe_guard_t *g)
{
    sigset_t pipe, pending;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigemptyset(&pending);
    if (!g->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

int pl_copy_field(char *dst, size_t cap, const char *s, const char *what, parley_error_t *err)
{
    if (!s) {
        pl_client_error(err, PARLEY_E_INVALID, "%s is missing", what);
        return PARLEY_E_INVALID;
    }
    if (strlen(s) >= cap) {
        pl_client_error(err, PARLEY_E_INVALID, "%s is longer than %zu bytes", what, cap - 1);
        return PARLEY_E_INVALID;
    }
    memcpy(dst, s, strlen(s) + 1);
    return PARLEY_OK;
}

/* An idle pooled connection that still looks alive, or NULL. */
static pl_channel_t *pool_take(parley_client_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->pool_mu);
        pl_channel_t *ch = c->idle_count ? c->idle[--c->idle_count] : NULL;
        pthread_mutex_unlock(&c->pool_mu);
        if (!ch)
            return NULL;
        /* reads a pending close or GOAWAY, so a dead one shows as such */
        if (pl_channel_pump(ch, 0) == 0 && pl_channel_is_alive(ch))
            return ch;
        pl_channel_free(ch);
    }
}

/* Closing writes too (a TLS close_notify). */
static void close_channel(pl_channel_t *ch)
{
    sigpipe_guard_t guard;
    sigpipe_hold(&guard);
    pl_channel_free(ch);
    sigpipe_release(&guard);
}

void pl_unary_release(parley_client_t *c, pl_channel_t *ch)
{
    if (!ch)
        return;
    if (pl_channel_is_alive(ch)) {
        pthread_mutex_lock(&c->pool_mu);
        if (c->idle_count < PL_POOL_MAX) {
            c->idle[c->idle_count++] = ch;
            ch = NULL;
        }
        pthread_mutex_unlock(&c->pool_mu);
    }
    if (ch)
        close_channel(ch);
}

void pl_unary_pool_clear(parley_client_t *c)
{
    pthread_mutex_lock(&c->pool_mu);
    while (c->idle_count)
        close_channel(c->idle[--c->idle_count]);
    pthread_mutex_unlock(&c->pool_mu);
}

static pl_channel_t *open_channel(parley_client_t *c, parley_error_t *err)
{
    pl_channel_opts_t o = {0};
    o.host = c->host;
    o.port = c->port;
    o.use_tls = c->use_tls;
    o.ca_file = c->ca_file;
    o.server_name = c->server_name;
    o.insecure = c->tls_insecure;
    o.connect_timeout_ms = c->connect_timeout_ms;
    o.user_agent = c->user_agent;
    char why[256];
    pl_channel_t *ch = pl_channel_connect(&o, why, sizeof(why));
    if (!ch)
        pl_client_error(err, PARLEY_UNAVAILABLE, "%s", why);
    return ch;
}

int pl_unary(parley_client_t *c, const pl_method_t *m, const void *req, void *resp, unsigned flags, pl_channel_t **held,
             parley_error_t *err)
{
    *held = NULL;
    pl_metadata_t md;
    pl_metadata_init(&md, 8192);
    if (flags & PL_UNARY_AUTH) {
        char bearer[PL_TOKEN_MAX + 8];
        pthread_mutex_lock(&c->mu);
        bool has_token = c->token[0] != '\0';
        snprintf(bearer, sizeof(bearer), "Bearer %s", c->token);
        pthread_mutex_unlock(&c->mu);
        int rc = has_token ? pl_metadata_add(&md, "authorization", bearer, strlen(bearer)) : 0;
        memset(bearer, 0, sizeof(bearer));
        if (!has_token || rc != 0) {
            pl_metadata_dispose(&md);
            pl_client_error(err, PARLEY_E_STATE, "%s",
                            has_token ? "the token is not valid metadata"
                                      : "this device is not registered yet (parley_verify)");
            return PARLEY_E_STATE;
        }
    }
    pl_call_opts_t opts = {c->call_timeout_ms, &md, false};
    sigpipe_guard_t guard;
    sigpipe_hold(&guard);
    int code = PARLEY_UNAVAILABLE;
    pl_channel_t *ch = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool pooled = true;
        ch = pool_take(c);
        if (!ch) {
            pooled = false;
            ch = open_channel(c, err);
            if (!ch)
                break;
        }
        pl_status_t st = {0};
        code = (int)pl_ccall_unary(ch, m, &opts, req, resp, &st);
        bool retry = code == PARLEY_UNAVAILABLE && pooled && (flags & PL_UNARY_IDEMPOTENT) && attempt == 0 &&
                     !pl_channel_is_alive(ch);
        if (code != PARLEY_OK && !retry)
            pl_client_error(err, code, "%s: %s", m->name, st.message ? st.message : pl_code_name(code));
        pl_status_reset(&st);
        if (code == PARLEY_OK)
            break;
        if (retry) {
            /* a connection that died while idle: the request may not have
             * left; this call is safe to repeat */
            pl_channel_free(ch);
            ch = NULL;
            continue; /* resp untouched: nothing was received */
        }
        pl_unary_release(c, ch);
        ch = NULL;
        break;
    }
    sigpipe_release(&guard);
    pl_metadata_dispose(&md);
    if (code == PARLEY_OK)
        *held = ch;
    return code;
}
