/* cluster_verify.c — drives pl_cluster_verify() for test_migrate.py.
 *
 *   cluster_verify [config flags] verify VERSION   prints "ok" or "fail: <message>"
 *   cluster_verify schema-version                  prints pl_cluster_schema_version()
 *
 * Configuration as parleyd reads it (PARLEY_POSTGRES_* from with_stack.sh,
 * flags such as --postgres.shards=32). Exit status: 0 verified, 1 refused,
 * 2 bad usage; the message is what an operator would see. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "store/cluster.h"
#include "store/shardmap.h"

static const char usage[] = "Usage: cluster_verify [config flags] verify VERSION | schema-version";

int main(int argc, char **argv)
{
    pl_config_t cfg;
    char err[2048];
    int rc = pl_config_load(&cfg, argc, argv, usage, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "cluster_verify: %s\n", err);
        pl_config_free(&cfg);
        return rc < 0 ? 2 : 0;
    }
    if (cfg.arg_count == 1 && strcmp(cfg.args[0], "schema-version") == 0) {
        printf("%d\n", pl_cluster_schema_version());
        pl_config_free(&cfg);
        return 0;
    }
    if (cfg.arg_count != 2 || strcmp(cfg.args[0], "verify") != 0) {
        fprintf(stderr, "%s\n", usage);
        pl_config_free(&cfg);
        return 2;
    }
    int version = atoi(cfg.args[1]);
    pl_shardmap_t map;
    if (pl_shardmap_init(&map, cfg.shards, cfg.pg_server_count, cfg.shard_map, err, sizeof(err)) != 0) {
        fprintf(stderr, "cluster_verify: %s\n", err);
        pl_config_free(&cfg);
        return 2;
    }
    memset(err, 'x', sizeof(err)); /* the message must be a proper string whatever happens */
    err[sizeof(err) - 1] = '\0';
    rc = pl_cluster_verify(&cfg, &map, version, err, sizeof(err));
    if (rc == 0)
        printf("ok\n");
    else if (rc == -1 && strlen(err) < sizeof(err) - 1)
        printf("fail: %s\n", err);
    else
        printf("bad return %d or message '%.80s'\n", rc, err);
    pl_shardmap_dispose(&map);
    pl_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}
