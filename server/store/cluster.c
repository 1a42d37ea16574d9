/* cluster.c — parley_meta, shard schemas and the start-up check, over
 * synchronous libpq. */
#include "store/cluster.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/ids.h"

#ifndef PL_CLUSTER_SCHEMA_VERSION
#error "PL_CLUSTER_SCHEMA_VERSION must be defined by the build (newest migrations/NNNN_*.sql)"
#endif

/* Shards per catalog query in pl_cluster_read_applied(): bounds the query
 * text (about 100 bytes a shard). */
#define APPLIED_SHARDS_PER_QUERY 128
/* Shards named one by one in a message before "and N more". */
#define MESSAGE_SHARDS 8

int pl_cluster_schema_version(void)
{
    return PL_CLUSTER_SCHEMA_VERSION;
}

/* libpq messages end in a newline and may carry a tab-indented hint line:
 * one line for ours. */
static void flatten(const char *in, char *out, size_t len)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = in ? in : ""; *p && n + 1 < len; p++) {
        if (isspace((unsigned char)*p)) {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < len)
            out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    if (len)
        out[n < len ? n : len - 1] = '\0';
}

void pl_cluster_server_label(const pl_config_t *cfg, int server, char *buf, size_t len)
{
    const char *host = NULL, *hostaddr = NULL, *port = NULL;
    char *perr = NULL;
    /* a bare word is a database name to libpq, not a conninfo */
    const char *conninfo =
        strchr(cfg->pg_servers[server], '=') || strstr(cfg->pg_servers[server], "://") ? cfg->pg_servers[server] : "";
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    PQconninfoOption *defs = PQconndefaults();
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    /* what libpq itself would use: PGHOST/PGPORT, else the local socket and 5432 */
    for (PQconninfoOption *o = defs; o && o->keyword; o++) {
        if (!o->val || !*o->val)
            continue;
        if (!host && !hostaddr && strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (!port && strcmp(o->keyword, "port") == 0)
            port = o->val;
    }
    if (!opts) {
        char why[200];
        flatten(perr ? perr : "out of memory", why, sizeof(why));
        snprintf(buf, len, "server %d (unparsable conninfo: %s)", server, why);
    } else {
        snprintf(buf, len, "server %d (host=%s port=%s)", server,
                 host       ? host
                 : hostaddr ? hostaddr
                            : "local socket",
                 port ? port : "5432");
    }
    PQconninfoFree(opts);
    PQconninfoFree(defs);
    PQfreemem(perr);
}

PGconn *pl_cluster_connect(const pl_config_t *cfg, int server, const char *application, char *err, size_t err_len)
{
    char label[PL_CLUSTER_LABEL_LEN];
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", PL_CLUSTER_CONNECT_TIMEOUT_S);
    /* dbname last: its conninfo overrides our fallbacks (libpq processes
     * the keywords in order) */
    const char *keys[] = {"connect_timeout", "fallback_application_name", "client_encoding", "dbname", NULL};
    const char *vals[] = {timeout, application, "UTF8", cfg->pg_servers[server], NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    char msg[512];
    flatten(conn ? PQerrorMessage(conn) : "out of memory", msg, sizeof(msg));
    pl_cluster_server_label(cfg, server, label, sizeof(label));
    snprintf(err, err_len, "%s: cannot connect: %s", label, msg);
    PQfinish(conn);
    return NULL;
}

void pl_cluster_result_error(PGconn *conn, const PGresult *res, char *err, size_t err_len)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(conn);
    flatten(m, err, err_len);
}

int pl_cluster_read_meta(PGconn *conn, pl_cluster_meta_t *meta, char *err, size_t err_len)
{
    memset(meta, 0, sizeof(*meta));
    PGresult *res = PQexecParams(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", 1, NULL,
                                 (const char *[]){PL_CLUSTER_META_SCHEMA ".cluster"}, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pl_cluster_result_error(conn, res, err, err_len);
        PQclear(res);
        return -1;
    }
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists)
        return 0;
    res = PQexec(conn, "SELECT shards, cluster_id FROM " PL_CLUSTER_META_SCHEMA ".cluster");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pl_cluster_result_error(conn, res, err, err_len);
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        meta->is_initialised = true;
        meta->shards = atoi(PQgetvalue(res, 0, 0));
        snprintf(meta->cluster_id, sizeof(meta->cluster_id), "%s", PQgetvalue(res, 0, 1));
    }
    PQclear(res);
    return 0;
}

/* The shard number of "shard_0042", or -1. */
static int shard_of_schema(const char *name, int shards)
{
    if (strncmp(name, "shard_", 6) != 0)
        return -1;
    char *end;
    long v = strtol(name + 6, &end, 10);
    if (*end || v < 0 || v >= shards)
        return -1;
    char canonical[PL_SHARD_SCHEMA_LEN];
    pl_shard_schema((int)v, canonical);
    return strcmp(canonical, name) == 0 ? (int)v : -1;
}

int pl_cluster_read_shards(PGconn *conn, int shards, bool *has_shard, char *err, size_t err_len)
{
    memset(has_shard, 0, (size_t)shards * sizeof(*has_shard));
    PGresult *res = PQexec(conn, "SELECT n.nspname FROM pg_catalog.pg_namespace n"
                                 " JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid"
                                 " WHERE c.relname = 'schema_migrations' AND c.relkind IN ('r', 'p')"
                                 " AND n.nspname ~ '^shard_[0-9]+$'");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pl_cluster_result_error(conn, res, err, err_len);
        PQclear(res);
        return -1;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        int s = shard_of_schema(PQgetvalue(res, i, 0), shards);
        if (s >= 0)
            has_shard[s] = true;
    }
    PQclear(res);
    return 0;
}

/* One query over up to APPLIED_SHARDS_PER_QUERY shards: a UNION of their
 * schema_migrations tables, each row named by the schema of the table it
 * came from (tableoid), so no value is spliced into the text. */
static int read_applied_chunk(PGconn *conn, const int *shards, int count, pl_cluster_applied_cb cb, void *user_data,
                              char *err, size_t err_len)
{
    static const char head[] = "SELECT n.nspname, m.version, m.name, m.checksum FROM (";
    static const char part[] = "SELECT tableoid AS t, version, name, checksum FROM %s.schema_migrations";
    static const char tail[] = ") m JOIN pg_catalog.pg_class c ON c.oid = m.t"
                               " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                               " ORDER BY n.nspname, m.version";
    size_t cap = sizeof(head) + sizeof(tail) + (size_t)count * (sizeof(part) + 2 * PL_SHARD_SCHEMA_LEN + 16);
    char *sql = malloc(cap);
    if (!sql) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    size_t n = (size_t)snprintf(sql, cap, "%s", head);
    for (int i = 0; i < count; i++) {
        char schema[PL_SHARD_SCHEMA_LEN];
        pl_shard_schema(shards[i], schema);
        char *quoted = PQescapeIdentifier(conn, schema, strlen(schema));
        if (!quoted) {
            flatten(PQerrorMessage(conn), err, err_len);
            free(sql);
            return -1;
        }
        if (i > 0)
            n += (size_t)snprintf(sql + n, cap - n, " UNION ALL ");
        n += (size_t)snprintf(sql + n, cap - n, part, quoted);
        PQfreemem(quoted);
    }
    snprintf(sql + n, cap - n, "%s", tail);
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pl_cluster_result_error(conn, res, err, err_len);
        PQclear(res);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
        pl_cluster_applied_t row = {
            .shard = shard_of_schema(PQgetvalue(res, i, 0), PL_ID_MAX_SHARDS),
            .version = atoi(PQgetvalue(res, i, 1)),
            .name = PQgetvalue(res, i, 2),
            .checksum = PQgetvalue(res, i, 3),
        };
        rc = cb(user_data, &row);
    }
    PQclear(res);
    return rc;
}

int pl_cluster_read_applied(PGconn *conn, const int *shards, int count, pl_cluster_applied_cb cb, void *user_data,
                            char *err, size_t err_len)
{
    for (int at = 0; at < count; at += APPLIED_SHARDS_PER_QUERY) {
        int n = count - at < APPLIED_SHARDS_PER_QUERY ? count - at : APPLIED_SHARDS_PER_QUERY;
        int rc = read_applied_chunk(conn, shards + at, n, cb, user_data, err, err_len);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Appends "17, 18, 19 and 4 more" for the shards flagged in which[]. */
static void list_shards(const bool *which, int shards, char *buf, size_t len)
{
    size_t n = 0;
    int listed = 0, total = 0;
    buf[0] = '\0';
    for (int s = 0; s < shards; s++) {
        if (!which[s])
            continue;
        total++;
        if (listed < MESSAGE_SHARDS && n < len) {
            n += (size_t)snprintf(buf + n, len - n, "%s%d", listed ? ", " : "", s);
            listed++;
        }
    }
    if (total > listed && n < len)
        snprintf(buf + n, len - n, " and %d more", total - listed);
}

typedef struct verify_ctx {
    int shards;
    int *version; /* [shards]: newest applied */
} verify_ctx_t;

static int on_verify_row(void *user_data, const pl_cluster_applied_t *row)
{
    verify_ctx_t *v = user_data;
    if (row->shard >= 0 && row->shard < v->shards && row->version > v->version[row->shard])
        v->version[row->shard] = row->version;
    return 0;
}

/* Checks one server; conn is open. */
static int verify_server(const pl_config_t *cfg, const pl_shardmap_t *map, int server, PGconn *conn,
                         int expected_version, char *first_cluster_id, char *err, size_t err_len)
{
    char label[PL_CLUSTER_LABEL_LEN], msg[512];
    pl_cluster_server_label(cfg, server, label, sizeof(label));
    pl_cluster_meta_t meta;
    if (pl_cluster_read_meta(conn, &meta, msg, sizeof(msg)) != 0) {
        snprintf(err, err_len, "%s: cannot read " PL_CLUSTER_META_SCHEMA ": %s", label, msg);
        return -1;
    }
    if (!meta.is_initialised) {
        snprintf(err, err_len,
                 "%s: no " PL_CLUSTER_META_SCHEMA " schema (the database is not part of a Parley cluster yet): "
                 "run parley-migrate init",
                 label);
        return -1;
    }
    if (meta.shards != cfg->shards) {
        snprintf(err, err_len,
                 "%s: the cluster was created with %d logical shards but [postgres] shards is %d; the shard count "
                 "cannot change after creation: configure shards = %d",
                 label, meta.shards, cfg->shards, meta.shards);
        return -1;
    }
    if (!first_cluster_id[0]) {
        memcpy(first_cluster_id, meta.cluster_id, PL_CLUSTER_ID_LEN);
    } else if (strcmp(first_cluster_id, meta.cluster_id) != 0) {
        snprintf(err, err_len,
                 "%s belongs to another Parley cluster (id %s) than server 0 (id %s): check the order and "
                 "addresses of [postgres] server",
                 label, meta.cluster_id, first_cluster_id);
        return -1;
    }

    int rc = -1;
    bool *present = calloc((size_t)map->shards, sizeof(bool));
    bool *flagged = calloc((size_t)map->shards, sizeof(bool));
    int *mine = malloc((size_t)map->shards * sizeof(int));
    int *version = calloc((size_t)map->shards, sizeof(int));
    char list[160];
    if (!present || !flagged || !mine || !version) {
        snprintf(err, err_len, "out of memory");
        goto out;
    }
    if (pl_cluster_read_shards(conn, map->shards, present, msg, sizeof(msg)) != 0) {
        snprintf(err, err_len, "%s: cannot list shard schemas: %s", label, msg);
        goto out;
    }
    int count = 0, missing = 0, first_missing = -1;
    for (int s = 0; s < map->shards; s++) {
        if (pl_shardmap_server(map, s) != server)
            continue;
        if (present[s]) {
            mine[count++] = s;
        } else {
            flagged[s] = true;
            if (missing++ == 0)
                first_missing = s;
        }
    }
    if (missing) {
        list_shards(flagged, map->shards, list, sizeof(list));
        if (missing == 1)
            snprintf(err, err_len, "shard %d missing on %s: run parley-migrate init", first_missing, label);
        else
            snprintf(err, err_len, "shard %d missing on %s (%d shards missing there: %s): run parley-migrate init",
                     first_missing, label, missing, list);
        goto out;
    }
    verify_ctx_t v = {map->shards, version};
    int r = pl_cluster_read_applied(conn, mine, count, on_verify_row, &v, msg, sizeof(msg));
    if (r != 0) {
        snprintf(err, err_len, "%s: cannot read the shards' schema_migrations: %s", label, msg);
        goto out;
    }
    int behind = 0, first_behind = -1;
    for (int i = 0; i < count; i++) {
        int s = mine[i];
        if (version[s] >= expected_version)
            continue;
        flagged[s] = true;
        if (behind++ == 0)
            first_behind = s;
    }
    if (behind) {
        list_shards(flagged, map->shards, list, sizeof(list));
        snprintf(err, err_len,
                 "shard %d on %s is at migration %d but this build needs %d (%d shard%s behind there: %s): run "
                 "parley-migrate up",
                 first_behind, label, version[first_behind], expected_version, behind, behind == 1 ? " is" : "s are",
                 list);
        goto out;
    }
    rc = 0;
out:
    free(present);
    free(flagged);
    free(mine);
    free(version);
    return rc;
}

int pl_cluster_verify(const pl_config_t *cfg, const pl_shardmap_t *map, int expected_version, char *err, size_t err_len)
{
    if (cfg->pg_server_count < 1) {
        snprintf(err, err_len, "no PostgreSQL server configured: set [postgres] server");
        return -1;
    }
    if (map->servers != cfg->pg_server_count || map->shards != cfg->shards) {
        snprintf(err, err_len, "the shard map (%d shards on %d servers) does not match the configuration (%d on %d)",
                 map->shards, map->servers, cfg->shards, cfg->pg_server_count);
        return -1;
    }
    char cluster_id[PL_CLUSTER_ID_LEN] = "";
    for (int i = 0; i < cfg->pg_server_count; i++) {
        PGconn *conn = pl_cluster_connect(cfg, i, "parleyd", err, err_len);
        if (!conn)
            return -1;
        int rc = verify_server(cfg, map, i, conn, expected_version, cluster_id, err, err_len);
        PQfinish(conn);
        if (rc != 0)
            return -1;
    }
    return 0;
}
