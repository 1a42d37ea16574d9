/* init.c — parley-migrate init: parley_meta and the shard schemas on every
 * server. Safe to repeat: it creates only what is missing, and refuses a
 * configuration whose shard count differs from the one the cluster was
 * created with. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

static const char meta_ddl[] =
    "BEGIN;"
    "CREATE SCHEMA IF NOT EXISTS " PL_CLUSTER_META_SCHEMA ";"
    "CREATE TABLE IF NOT EXISTS " PL_CLUSTER_META_SCHEMA ".cluster ("
    "  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),"
    "  cluster_id text NOT NULL,"
    "  shards integer NOT NULL CHECK (shards > 0),"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "COMMENT ON TABLE " PL_CLUSTER_META_SCHEMA ".cluster IS"
    "  'Parley: the cluster this server belongs to and its logical shard count (fixed at creation)';"
    "CREATE TABLE IF NOT EXISTS " PL_CLUSTER_META_SCHEMA ".shards ("
    "  shard integer PRIMARY KEY CHECK (shard >= 0),"
    "  created_at timestamptz NOT NULL DEFAULT now());"
    "COMMENT ON TABLE " PL_CLUSTER_META_SCHEMA ".shards IS"
    "  'Parley: the logical shards (schemas shard_NNNN) this server holds'";

/* %s: the quoted schema name, twice. */
static const char shard_ddl[] = "BEGIN;"
                                "CREATE SCHEMA IF NOT EXISTS %s;"
                                "CREATE TABLE IF NOT EXISTS %s.schema_migrations ("
                                "  version integer PRIMARY KEY CHECK (version > 0),"
                                "  name text NOT NULL,"
                                "  checksum text NOT NULL,"
                                "  applied_at timestamptz NOT NULL DEFAULT now())";

static const char record_shard[] = "INSERT INTO " PL_CLUSTER_META_SCHEMA ".shards (shard) VALUES ($1::integer)"
                                   " ON CONFLICT DO NOTHING";

static int create_meta(mig_run_t *run, mig_server_t *srv, const char *cluster_id)
{
    char shards[16];
    snprintf(shards, sizeof(shards), "%d", run->cfg->shards);
    if (mig_exec(srv, "creating " PL_CLUSTER_META_SCHEMA, meta_ddl, 0, NULL) != 0 ||
        mig_exec(srv, "creating " PL_CLUSTER_META_SCHEMA,
                 "INSERT INTO " PL_CLUSTER_META_SCHEMA ".cluster (cluster_id, shards) VALUES ($1, $2::integer)"
                 " ON CONFLICT DO NOTHING",
                 2, (const char *[]){cluster_id, shards}) != 0 ||
        mig_exec(srv, "creating " PL_CLUSTER_META_SCHEMA, "COMMIT", 0, NULL) != 0)
        return -1;
    /* read back what is there now: the row may have been made by hand */
    char err[1024];
    if (pl_cluster_read_meta(srv->conn, &srv->meta, err, sizeof(err)) != 0) {
        mig_error("%s: cannot read " PL_CLUSTER_META_SCHEMA ": %s", srv->label, err);
        return -1;
    }
    if (!srv->meta.is_initialised || srv->meta.shards != run->cfg->shards ||
        strcmp(srv->meta.cluster_id, cluster_id) != 0) {
        mig_error("%s: " PL_CLUSTER_META_SCHEMA ".cluster holds something else than what init wrote (%d shards, "
                  "cluster %s): inspect it by hand",
                  srv->label, srv->meta.shards, srv->meta.cluster_id);
        return -1;
    }
    return 0;
}

/* The schema, its schema_migrations and its parley_meta.shards row, in one
 * transaction. */
static int create_shard(mig_server_t *srv, const mig_shard_t *sh)
{
    char *quoted = PQescapeIdentifier(srv->conn, sh->schema, strlen(sh->schema));
    if (!quoted) {
        mig_error("%s: %s", srv->label, PQerrorMessage(srv->conn));
        return -1;
    }
    char sql[sizeof(shard_ddl) + 2 * PL_SHARD_SCHEMA_LEN + 8];
    snprintf(sql, sizeof(sql), shard_ddl, quoted, quoted);
    PQfreemem(quoted);
    char what[64], shard[16];
    snprintf(what, sizeof(what), "creating %s", sh->schema);
    snprintf(shard, sizeof(shard), "%d", sh->shard);
    if (mig_exec(srv, what, sql, 0, NULL) != 0 || mig_exec(srv, what, record_shard, 1, (const char *[]){shard}) != 0 ||
        mig_exec(srv, what, "COMMIT", 0, NULL) != 0)
        return -1;
    return 0;
}

/* Shards that exist but are not in parley_meta.shards (made by an older
 * init, or copied in while moving shards) get their row, all in one
 * statement. */
static int record_present(mig_server_t *srv)
{
    size_t cap = (size_t)srv->shard_count * 6 + 3;
    char *list = malloc(cap);
    if (!list) {
        mig_error("out of memory");
        return -1;
    }
    size_t n = (size_t)snprintf(list, cap, "{");
    for (int k = 0; k < srv->shard_count; k++)
        if (srv->shards[k].is_present)
            n += (size_t)snprintf(list + n, cap - n, "%s%d", n > 1 ? "," : "", srv->shards[k].shard);
    snprintf(list + n, cap - n, "}");
    int rc = mig_exec(srv, "recording its shards in " PL_CLUSTER_META_SCHEMA ".shards",
                      "INSERT INTO " PL_CLUSTER_META_SCHEMA ".shards (shard)"
                      " SELECT unnest($1::integer[]) ON CONFLICT DO NOTHING",
                      1, (const char *[]){list});
    free(list);
    return rc;
}

static int init_server(mig_run_t *run, mig_server_t *srv, const char *cluster_id, bool is_new_cluster)
{
    bool is_dry = run->opts.is_dry_run;
    if (!srv->meta.is_initialised) {
        if (is_dry) {
            mig_say(run, "%s: would create " PL_CLUSTER_META_SCHEMA " (%s %s, %d logical shards)", srv->label,
                    is_new_cluster ? "a new cluster" : "joining cluster", is_new_cluster ? "id" : cluster_id,
                    run->cfg->shards);
        } else {
            if (create_meta(run, srv, cluster_id) != 0)
                return -1;
            mig_say(run, "%s: created " PL_CLUSTER_META_SCHEMA " (cluster %s, %d logical shards)", srv->label,
                    cluster_id, run->cfg->shards);
        }
    }
    int missing = srv->shard_count - srv->present_count;
    if (!is_dry && srv->meta.is_initialised && srv->present_count && record_present(srv) != 0)
        return -1;
    if (missing == 0) {
        mig_say(run, "%s: all %d of its shards exist", srv->label, srv->shard_count);
        return 0;
    }
    if (is_dry) {
        bool *flag = calloc((size_t)srv->shard_count, sizeof(bool));
        if (!flag) {
            mig_error("out of memory");
            return -1;
        }
        for (int k = 0; k < srv->shard_count; k++)
            flag[k] = !srv->shards[k].is_present;
        char list[512];
        mig_format_shards(srv, flag, list, sizeof(list));
        free(flag);
        mig_say(run, "%s: would create %d of its %d shards: %s", srv->label, missing, srv->shard_count, list);
        return 0;
    }
    int done = 0;
    for (int k = 0; k < srv->shard_count; k++) {
        mig_shard_t *sh = &srv->shards[k];
        if (sh->is_present)
            continue;
        if (create_shard(srv, sh) != 0)
            return -1;
        sh->is_present = true;
        srv->present_count++;
        mig_say(run, "server %d: created %s (%d/%d shards)", srv->index, sh->schema, ++done, missing);
    }
    mig_say(run, "%s: created %d shards; all %d of its shards exist", srv->label, done, srv->shard_count);
    return 0;
}

int mig_init(mig_run_t *run)
{
    int rc = mig_run_open(run, false);
    if (rc == MIG_EXIT_OK)
        rc = mig_run_lock(run);
    if (rc == MIG_EXIT_OK)
        rc = mig_run_read(run, false);
    if (rc != MIG_EXIT_OK)
        return rc;
    mig_verdict_t v = {0};
    mig_check_cluster(run, MIG_CHECK_INIT, &v);
    if (v.broken) {
        mig_error("init refused: nothing was changed");
        return MIG_EXIT_ERROR;
    }
    /* a server added to an existing cluster joins it */
    char cluster_id[PL_CLUSTER_ID_LEN] = "";
    for (int i = 0; i < run->server_count && !cluster_id[0]; i++)
        if (run->servers[i].meta.is_initialised)
            memcpy(cluster_id, run->servers[i].meta.cluster_id, sizeof(cluster_id));
    bool is_new_cluster = !cluster_id[0];
    if (is_new_cluster) {
        unsigned char id[(PL_CLUSTER_ID_LEN - 1) / 2];
        randombytes_buf(id, sizeof(id));
        sodium_bin2hex(cluster_id, sizeof(cluster_id), id, sizeof(id));
    }
    for (int i = 0; i < run->server_count; i++)
        if (init_server(run, &run->servers[i], cluster_id, is_new_cluster) != 0)
            return MIG_EXIT_ERROR;
    if (run->opts.is_dry_run)
        mig_say(run, "dry run: nothing was changed");
    return MIG_EXIT_OK;
}
