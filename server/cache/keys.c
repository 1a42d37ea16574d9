/* keys.c — batches of per-account keys for the batch read scripts. */
#include "cache/keys.h"

#include <stdlib.h>

#include "cache/cache.h"
#include "runtime/errors.h"

int pl_cache_run_for_ids(pl_redis_t *r, pl_redis_script_t *s, const char *prefix, const int64_t *ids, size_t count,
                         pl_redis_cb cb, void *user)
{
    if (count > PL_CACHE_MAX_BATCH || (count && !ids))
        return PL_ERR_INVALID;
    /* argv, argvlen and the key bytes in one block */
    size_t n = count ? count : 1;
    const char **argv = malloc(n * (sizeof(const char *) + sizeof(size_t) + PL_CACHE_KEY_MAX));
    if (!argv)
        return PL_ERR_NOMEM;
    size_t *argvlen = (size_t *)(argv + n);
    char *keys = (char *)(argvlen + n);
    for (size_t i = 0; i < count; i++) {
        char *key = keys + i * PL_CACHE_KEY_MAX;
        argv[i] = key;
        argvlen[i] = pl_cache_key_id(key, prefix, ids[i]);
    }
    int rc = pl_redis_script_run(r, s, (int)count, 0, argv, argvlen, cb, user);
    free(argv);
    return rc;
}
