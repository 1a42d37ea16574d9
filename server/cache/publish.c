/* publish.c — PUBLISH to a node's channel (see pubsub.h). */
#include "cache/pubsub.h"

#include <string.h>

#include "cache/keys.h"
#include "cache/reply.h"
#include "runtime/errors.h"

int pl_cache_publish(pl_redis_t *r, int node_id, const void *data, size_t len, pl_cache_count_fn cb, void *user)
{
    if (node_id < 0 || (len && !data) || len > PL_CACHE_PUBLISH_MAX_BYTES)
        return PL_ERR_INVALID;
    char channel[PL_CACHE_KEY_MAX];
    size_t channel_len = pl_cache_key_id(channel, PL_CACHE_KEY_NODE, node_id);
    const char *argv[3] = {"PUBLISH", channel, len ? data : ""};
    size_t argvlen[3] = {7, channel_len, len};
    pl_cache_int_cb_t c = {.kind = PL_CACHE_INT_COUNT, .fn.count = cb};
    return pl_cache_int_run(r, NULL, 0, 3, argv, argvlen, &c, user);
}
