/* script.h — internal to server/cache: Lua scripts run with EVALSHA.
 *
 * Only the 40-byte SHA1 crosses the wire per call. Redis forgets its script
 * cache on restart (or SCRIPT FLUSH); the NOSCRIPT reply that follows is
 * answered by SCRIPT LOAD pipelined with a second EVALSHA, transparently to
 * the caller, so there is no load step to remember after a reconnect. */
#ifndef PL_CACHE_SCRIPT_H
#define PL_CACHE_SCRIPT_H

#include <stdatomic.h>

#include "cache/redis.h"

typedef struct pl_redis_script {
    const char *source;
    _Atomic int state; /* 0: not hashed, 1: being hashed, 2: sha is ready */
    char sha[41];
} pl_redis_script_t;

/* A static script: `static pl_redis_script_t s = PL_REDIS_SCRIPT(SOURCE);`.
 * Shared by all workers (the SHA1 is computed once, lock-free). */
#define PL_REDIS_SCRIPT(src)                                                                                           \
    {                                                                                                                  \
        .source = (src)                                                                                                \
    }

/* Lua prologue: `now`, Unix ms on Redis's clock. Scripts read time from
 * Redis, never from the caller, so that nodes with skewed clocks agree. */
#define PL_REDIS_LUA_NOW_MS                                                                                            \
    "local t = redis.call('TIME')\n"                                                                                   \
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

/* Runs s. argv holds nkeys keys followed by nargs arguments (binary-safe,
 * copied); argvlen may be NULL for C strings. The contract is
 * pl_redis_command_argv()'s; a NOSCRIPT retry is invisible except in time. */
int pl_redis_script_run(pl_redis_t *r, pl_redis_script_t *s, int nkeys, int nargs, const char *const *argv,
                        const size_t *argvlen, pl_redis_cb cb, void *user);

/* Writes the script's SHA1 in hex, NUL-terminated (for SCRIPT EXISTS).
 * 0, or -1 if hashing failed. */
int pl_redis_script_sha(pl_redis_script_t *s, char out[41]);

#endif
