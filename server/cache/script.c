/* script.c — EVALSHA with reload on NOSCRIPT (see script.h). */
#include "cache/script.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "runtime/errors.h"

/* Scripts take a handful of keys and arguments; a batch takes up to
 * PL_CACHE_MAX_BATCH keys. This bounds one call's copy of them. */
#define SCRIPT_MAX_ARGS 4096

typedef struct script_call {
    pl_redis_t *r;
    const char *source;
    pl_redis_cb cb;
    void *user;
    int argc; /* EVALSHA sha numkeys keys... args... */
    const char **argv;
    size_t *argvlen;
    int refs; /* replies still to come */
    bool is_retry;
    bool is_done; /* cb has run */
    char sha[41];
    char numkeys[16];
} script_call_t;

static int hash_source(const char *source, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(source, strlen(source), md, &n, EVP_sha1(), NULL) != 1 || n != 20)
        return -1;
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    return 0;
}

/* Copies the SHA1 into out, hashing on first use. Concurrent first users
 * hash into their own buffer rather than wait for the winner. */
static int script_sha(pl_redis_script_t *s, char out[41])
{
    if (atomic_load_explicit(&s->state, memory_order_acquire) == 2) {
        memcpy(out, s->sha, 41);
        return 0;
    }
    if (hash_source(s->source, out) != 0)
        return -1;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&s->state, &expected, 1, memory_order_acq_rel, memory_order_acquire)) {
        memcpy(s->sha, out, 41);
        atomic_store_explicit(&s->state, 2, memory_order_release);
    }
    return 0;
}

int pl_redis_script_sha(pl_redis_script_t *s, char out[41])
{
    return script_sha(s, out);
}

static void call_release(script_call_t *c)
{
    if (--c->refs == 0 && c->is_done)
        free(c);
}

static void call_finish(script_call_t *c, const pl_redis_result_t *res)
{
    if (!c->is_done) {
        c->is_done = true;
        c->cb(res, c->user);
    }
}

static void on_load(const pl_redis_result_t *res, void *user)
{
    (void)res; /* a failed load shows up as the retry's own failure */
    call_release(user);
}

static void on_eval(const pl_redis_result_t *res, void *user)
{
    script_call_t *c = user;
    if (res->code == PL_CODE_INTERNAL && !c->is_retry && strncmp(res->message, "NOSCRIPT", 8) == 0) {
        /* Redis restarted or flushed its scripts: load, then run again. The
         * two are pipelined, so the retry costs one round trip. */
        c->is_retry = true;
        const char *load[3] = {"SCRIPT", "LOAD", c->source};
        if (pl_redis_command_argv(c->r, 3, load, NULL, on_load, c) == 0) {
            c->refs++;
            if (pl_redis_command_argv(c->r, c->argc, c->argv, c->argvlen, on_eval, c) == 0)
                return; /* this reply's ref passes to the retry */
        }
    }
    call_finish(c, res);
    call_release(c);
}

int pl_redis_script_run(pl_redis_t *r, pl_redis_script_t *s, int nkeys, int nargs, const char *const *argv,
                        const size_t *argvlen, pl_redis_cb cb, void *user)
{
    if (!r || !s || !cb || nkeys < 0 || nargs < 0 || nkeys + nargs > SCRIPT_MAX_ARGS || (nkeys + nargs && !argv))
        return PL_ERR_INVALID;
    int n = nkeys + nargs;
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += (argvlen ? argvlen[i] : strlen(argv[i])) + 1;
    int argc = 3 + n;
    size_t size = sizeof(script_call_t) + (size_t)argc * (sizeof(char *) + sizeof(size_t)) + bytes;
    script_call_t *c = malloc(size);
    if (!c)
        return PL_ERR_NOMEM;
    memset(c, 0, sizeof *c);
    if (script_sha(s, c->sha) != 0) {
        free(c);
        return PL_ERR_NOMEM; /* only an exhausted OpenSSL fails to hash */
    }
    c->r = r;
    c->source = s->source;
    c->cb = cb;
    c->user = user;
    c->argc = argc;
    c->argvlen = (size_t *)(c + 1);
    c->argv = (const char **)(c->argvlen + argc);
    char *blob = (char *)(c->argv + argc);
    snprintf(c->numkeys, sizeof c->numkeys, "%d", nkeys);
    c->argv[0] = "EVALSHA";
    c->argv[1] = c->sha;
    c->argv[2] = c->numkeys;
    c->argvlen[0] = 7;
    c->argvlen[1] = 40;
    c->argvlen[2] = strlen(c->numkeys);
    for (int i = 0; i < n; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        memcpy(blob, argv[i], len);
        blob[len] = '\0';
        c->argv[3 + i] = blob;
        c->argvlen[3 + i] = len;
        blob += len + 1;
    }
    c->refs = 1;
    int rc = pl_redis_command_argv(r, c->argc, c->argv, c->argvlen, on_eval, c);
    if (rc != 0)
        free(c);
    return rc;
}
