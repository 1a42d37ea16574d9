/* shardmap.h — logical shards onto physical PostgreSQL servers.
 *
 * A cluster has a fixed number of logical shards, each a PostgreSQL schema
 * (pl_shard_schema()), and N physical servers. The map says which server
 * holds each shard; by default equal contiguous ranges. Growing the cluster
 * moves shards between servers and edits the map; no id changes. */
#ifndef PL_STORE_SHARDMAP_H
#define PL_STORE_SHARDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct pl_shardmap {
    int shards;
    int servers;
    uint8_t *server_of; /* [shards] */
} pl_shardmap_t;

/* Parses spec ("0-127=0,128-255=1"; "" or NULL: equal ranges). Every shard
 * must be mapped exactly once to a server in 0..servers-1. 0, or -1 with a
 * message in err. */
int pl_shardmap_init(pl_shardmap_t *m, int shards, int servers, const char *spec, char *err, size_t err_len);
void pl_shardmap_dispose(pl_shardmap_t *m);

static inline int pl_shardmap_server(const pl_shardmap_t *m, int shard)
{
    return m->server_of[shard];
}

/* "shard_0042" into buf (at least PL_SHARD_SCHEMA_LEN bytes). */
#define PL_SHARD_SCHEMA_LEN 16
void pl_shard_schema(int shard, char *buf);

/* The logical shard for a key that is not an id (a phone number, say). */
int pl_shard_for_key(const void *key, size_t len, int shards);

#endif
