/* run.c — connections, the migration lock and reading each server's state. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

void mig_say(const mig_run_t *run, const char *fmt, ...)
{
    if (run->opts.is_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

void mig_error(const char *fmt, ...)
{
    fflush(stdout);
    fputs("parley-migrate: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Server messages: NOTICEs ("already exists, skipping") are noise for 256
 * shards; WARNINGs are shown with where they came from. */
static void on_notice(void *user_data, const PGresult *res)
{
    const mig_server_t *srv = user_data;
    const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (srv->is_quiet || !severity || strcmp(severity, "WARNING") != 0)
        return;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fflush(stdout);
    fprintf(stderr, "parley-migrate: %s: %s%s%s: WARNING: %s\n", srv->label, srv->doing_schema ? srv->doing_schema : "",
            srv->doing_file ? ": " : "", srv->doing_file ? srv->doing_file : "", msg ? msg : "");
}

int mig_exec(mig_server_t *srv, const char *what, const char *sql, int nparams, const char *const *params)
{
    PGresult *res =
        nparams ? PQexecParams(srv->conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQexec(srv->conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(res);
        return 0;
    }
    char msg[1024];
    pl_cluster_result_error(srv->conn, res, msg, sizeof(msg));
    PQclear(res);
    mig_error("%s: %s: %s", srv->label, what, msg);
    if (PQtransactionStatus(srv->conn) != PQTRANS_IDLE)
        PQclear(PQexec(srv->conn, "ROLLBACK"));
    return -1;
}

int mig_run_open(mig_run_t *run, bool keep_going)
{
    const pl_config_t *cfg = run->cfg;
    run->servers = calloc((size_t)cfg->pg_server_count, sizeof(*run->servers));
    if (!run->servers) {
        mig_error("out of memory");
        return MIG_EXIT_ERROR;
    }
    run->server_count = cfg->pg_server_count;
    for (int i = 0; i < run->server_count; i++) {
        mig_server_t *srv = &run->servers[i];
        srv->index = i;
        srv->is_quiet = run->opts.is_quiet;
        pl_cluster_server_label(cfg, i, srv->label, sizeof(srv->label));
        for (int s = 0; s < run->map->shards; s++)
            if (pl_shardmap_server(run->map, s) == i)
                srv->shard_count++;
        srv->shards = calloc((size_t)srv->shard_count ? (size_t)srv->shard_count : 1, sizeof(*srv->shards));
        if (!srv->shards) {
            mig_error("out of memory");
            return MIG_EXIT_ERROR;
        }
        int n = 0;
        for (int s = 0; s < run->map->shards; s++) {
            if (pl_shardmap_server(run->map, s) != i)
                continue;
            srv->shards[n].shard = s;
            pl_shard_schema(s, srv->shards[n].schema);
            n++;
        }
    }
    int rc = MIG_EXIT_OK;
    for (int i = 0; i < run->server_count; i++) {
        mig_server_t *srv = &run->servers[i];
        char err[1024];
        srv->conn = pl_cluster_connect(cfg, i, "parley-migrate", err, sizeof(err));
        if (!srv->conn) {
            mig_error("%s", err);
            rc = MIG_EXIT_ERROR;
            if (!keep_going)
                return rc;
            continue;
        }
        PQsetNoticeReceiver(srv->conn, on_notice, srv);
    }
    return rc;
}

void mig_run_close(mig_run_t *run)
{
    for (int i = 0; i < run->server_count; i++) {
        mig_server_t *srv = &run->servers[i];
        PQfinish(srv->conn);
        for (int k = 0; k < srv->shard_count; k++) {
            for (int a = 0; a < srv->shards[k].applied_count; a++)
                free(srv->shards[k].applied[a].file);
            free(srv->shards[k].applied);
        }
        free(srv->shards);
    }
    free(run->servers);
    run->servers = NULL;
    run->server_count = 0;
}

/* "pid 1234 (parley-migrate) from 10.0.0.5 since 12:00:01" for whoever
 * holds the lock on srv, or an empty string. */
static void describe_holder(mig_server_t *srv, char *buf, size_t len)
{
    char hi[16], lo[16];
    uint64_t key = (uint64_t)PL_CLUSTER_LOCK_KEY;
    snprintf(hi, sizeof(hi), "%" PRIu32, (uint32_t)(key >> 32));
    snprintf(lo, sizeof(lo), "%" PRIu32, (uint32_t)key);
    PGresult *res =
        PQexecParams(srv->conn,
                     "SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local socket'),"
                     " coalesce(to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ'), '?')"
                     " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid"
                     " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                     " AND l.classid = $1::oid AND l.objid = $2::oid"
                     " AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())",
                     2, NULL, (const char *[]){hi, lo}, NULL, NULL, 0);
    buf[0] = '\0';
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0)
        snprintf(buf, len, " (held by pid %s%s%s from %s since %s)", PQgetvalue(res, 0, 0),
                 *PQgetvalue(res, 0, 1) ? ", " : "", PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                 PQgetvalue(res, 0, 3));
    PQclear(res);
}

/* pg_try_advisory_lock / pg_advisory_lock: true, false, or -1 on error. */
static int lock_query(mig_server_t *srv, const char *sql)
{
    char key[24];
    snprintf(key, sizeof(key), "%" PRId64, PL_CLUSTER_LOCK_KEY);
    PGresult *res = PQexecParams(srv->conn, sql, 1, NULL, (const char *[]){key}, NULL, NULL, 0);
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        rc = strcmp(PQgetvalue(res, 0, 0), "f") != 0;
    else {
        char msg[1024];
        pl_cluster_result_error(srv->conn, res, msg, sizeof(msg));
        mig_error("%s: cannot take the migration lock: %s", srv->label, msg);
    }
    PQclear(res);
    return rc;
}

int mig_run_lock(mig_run_t *run)
{
    for (int i = 0; i < run->server_count; i++) {
        mig_server_t *srv = &run->servers[i];
        int got = lock_query(srv, "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)");
        if (got < 0)
            return MIG_EXIT_ERROR;
        if (got)
            continue;
        char holder[256];
        describe_holder(srv, holder, sizeof(holder));
        if (run->opts.is_no_wait) {
            mig_error("%s: another parley-migrate is running%s; not waiting (--no-wait)", srv->label, holder);
            return MIG_EXIT_BUSY;
        }
        mig_say(run, "%s: another parley-migrate is running%s; waiting for it to finish", srv->label, holder);
        /* "SELECT pg_advisory_lock()" returns void: ask for a boolean */
        if (lock_query(srv, "SELECT pg_catalog.pg_advisory_lock($1::bigint) IS NULL") < 0)
            return MIG_EXIT_ERROR;
    }
    return MIG_EXIT_OK;
}

typedef struct read_ctx {
    mig_server_t *srv;
    int *index_of; /* [cluster shards]: position in srv->shards, or -1 */
    int shards;
} read_ctx_t;

static int on_applied(void *user_data, const pl_cluster_applied_t *row)
{
    read_ctx_t *ctx = user_data;
    if (row->shard < 0 || row->shard >= ctx->shards || ctx->index_of[row->shard] < 0)
        return 0;
    mig_shard_t *sh = &ctx->srv->shards[ctx->index_of[row->shard]];
    if (sh->applied_count == sh->applied_cap) {
        int cap = sh->applied_cap ? sh->applied_cap * 2 : 8;
        mig_applied_t *n = realloc(sh->applied, (size_t)cap * sizeof(*n));
        if (!n)
            return 1;
        sh->applied = n;
        sh->applied_cap = cap;
    }
    mig_applied_t *a = &sh->applied[sh->applied_count];
    a->version = row->version;
    a->file = strdup(row->name);
    if (!a->file)
        return 1;
    snprintf(a->checksum, sizeof(a->checksum), "%s", row->checksum);
    sh->applied_count++;
    return 0;
}

static int read_server(mig_run_t *run, mig_server_t *srv, bool with_applied)
{
    char err[1024];
    if (pl_cluster_read_meta(srv->conn, &srv->meta, err, sizeof(err)) != 0) {
        mig_error("%s: cannot read " PL_CLUSTER_META_SCHEMA ": %s", srv->label, err);
        return MIG_EXIT_ERROR;
    }
    int shards = run->map->shards;
    bool *has = calloc((size_t)shards, sizeof(bool));
    int *index_of = malloc((size_t)shards * sizeof(int));
    int *present = malloc((size_t)(srv->shard_count ? srv->shard_count : 1) * sizeof(int));
    int rc = MIG_EXIT_ERROR;
    if (!has || !index_of || !present) {
        mig_error("out of memory");
        goto out;
    }
    if (pl_cluster_read_shards(srv->conn, shards, has, err, sizeof(err)) != 0) {
        mig_error("%s: cannot list the shard schemas: %s", srv->label, err);
        goto out;
    }
    for (int s = 0; s < shards; s++)
        index_of[s] = -1;
    srv->present_count = 0;
    for (int k = 0; k < srv->shard_count; k++) {
        mig_shard_t *sh = &srv->shards[k];
        sh->is_present = has[sh->shard];
        index_of[sh->shard] = k;
        if (sh->is_present)
            present[srv->present_count++] = sh->shard;
    }
    if (with_applied && srv->present_count) {
        read_ctx_t ctx = {srv, index_of, shards};
        int r = pl_cluster_read_applied(srv->conn, present, srv->present_count, on_applied, &ctx, err, sizeof(err));
        if (r != 0) {
            /* on_applied returns 1 when out of memory */
            mig_error("%s: cannot read schema_migrations: %s", srv->label, r < 0 ? err : "out of memory");
            goto out;
        }
    }
    rc = MIG_EXIT_OK;
out:
    free(has);
    free(index_of);
    free(present);
    return rc;
}

int mig_run_read(mig_run_t *run, bool with_applied)
{
    int rc = MIG_EXIT_OK;
    for (int i = 0; i < run->server_count; i++) {
        if (!run->servers[i].conn)
            continue;
        int r = read_server(run, &run->servers[i], with_applied);
        if (r != MIG_EXIT_OK)
            rc = r;
    }
    return rc;
}

bool mig_shard_has(const mig_shard_t *sh, int version)
{
    int lo = 0, hi = sh->applied_count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (sh->applied[mid].version == version)
            return true;
        if (sh->applied[mid].version < version)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

const mig_applied_t *mig_shard_latest(const mig_shard_t *sh)
{
    return sh->applied_count ? &sh->applied[sh->applied_count - 1] : NULL;
}
