/* shardmap.c — parsing and checking the shard map. */
#include "store/shardmap.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/ids.h"

static int parse_int(const char **p, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(*p, &end, 10);
    if (end == *p || errno)
        return -1;
    *p = end;
    *out = v;
    return 0;
}

int pl_shardmap_init(pl_shardmap_t *m, int shards, int servers, const char *spec, char *err, size_t err_len)
{
    memset(m, 0, sizeof(*m));
    if (shards < 1 || shards > PL_ID_MAX_SHARDS) {
        snprintf(err, err_len, "shard count %d out of range 1..%d", shards, PL_ID_MAX_SHARDS);
        return -1;
    }
    if (servers < 1 || servers > 255 || servers > shards) {
        snprintf(err, err_len, "%d PostgreSQL servers for %d shards: need 1..min(255, shards)", servers, shards);
        return -1;
    }
    m->server_of = malloc((size_t)shards);
    if (!m->server_of) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    m->shards = shards;
    m->servers = servers;
    if (!spec || !*spec) {
        for (int s = 0; s < shards; s++)
            m->server_of[s] = (uint8_t)((long)s * servers / shards);
        return 0;
    }
    memset(m->server_of, 0xff, (size_t)shards);
    const char *p = spec;
    while (*p) {
        long lo, hi, srv;
        if (parse_int(&p, &lo) != 0)
            goto syntax;
        hi = lo;
        if (*p == '-') {
            p++;
            if (parse_int(&p, &hi) != 0)
                goto syntax;
        }
        if (*p++ != '=' || parse_int(&p, &srv) != 0 || (*p && *p != ','))
            goto syntax;
        if (lo < 0 || hi < lo || hi >= shards) {
            snprintf(err, err_len, "shard map: range %ld-%ld outside 0..%d", lo, hi, shards - 1);
            goto fail;
        }
        if (srv < 0 || srv >= servers) {
            snprintf(err, err_len, "shard map: server %ld does not exist (%d configured)", srv, servers);
            goto fail;
        }
        for (long s = lo; s <= hi; s++) {
            if (m->server_of[s] != 0xff) {
                snprintf(err, err_len, "shard map: shard %ld mapped twice", s);
                goto fail;
            }
            m->server_of[s] = (uint8_t)srv;
        }
        if (*p == ',' && !*++p)
            goto syntax; /* a trailing comma */
    }
    for (int s = 0; s < shards; s++) {
        if (m->server_of[s] == 0xff) {
            snprintf(err, err_len, "shard map: shard %d is not mapped to any server", s);
            goto fail;
        }
    }
    return 0;
syntax:
    snprintf(err, err_len, "shard map: cannot parse '%s' (expected e.g. 0-127=0,128-255=1)", spec);
fail:
    pl_shardmap_dispose(m);
    return -1;
}

void pl_shardmap_dispose(pl_shardmap_t *m)
{
    free(m->server_of);
    memset(m, 0, sizeof(*m));
}

void pl_shard_schema(int shard, char *buf)
{
    snprintf(buf, PL_SHARD_SCHEMA_LEN, "shard_%04d", shard);
}

int pl_shard_for_key(const void *key, size_t len, int shards)
{
    if (shards <= 0)
        return 0;
    /* A fixed all-zero key: the mapping must be stable across nodes and releases. */
    static const unsigned char k[crypto_shorthash_KEYBYTES];
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, key, len, k);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | h[i];
    return (int)(v % (uint64_t)shards);
}
