/* up.c — parley-migrate up: apply the pending migrations to every shard.
 *
 * Everything is checked on every shard of every server first; then each file
 * in turn goes to each server's shards that lack it, every (file, shard) in
 * its own transaction with search_path set to the shard's schema, recorded
 * in the shard's schema_migrations in the same transaction. The first
 * failure stops the run: that shard keeps its previous version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "migrate.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Shards anywhere that have applied m (for the advice after a failure). */
static int shards_with(const mig_run_t *run, const pl_migration_t *m)
{
    int n = 0;
    for (int i = 0; i < run->server_count; i++)
        for (int k = 0; k < run->servers[i].shard_count; k++)
            n += mig_shard_has(&run->servers[i].shards[k], m->version);
    return n;
}

/* "  ERROR: …\n  LINE 3: …" : libpq's message, indented, without the final
 * newline. */
static void indent(const char *in, char *out, size_t len)
{
    size_t n = 0;
    bool at_start = true;
    for (const char *p = in; *p && n + 3 < len; p++) {
        if (at_start) {
            out[n++] = ' ';
            out[n++] = ' ';
            at_start = false;
        }
        if (*p == '\n') {
            if (!p[1])
                break;
            at_start = true;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

static void report_failure(const mig_run_t *run, const mig_server_t *srv, const mig_shard_t *sh,
                           const pl_migration_t *m, const char *why)
{
    char msg[4096];
    indent(why, msg, sizeof(msg));
    const mig_applied_t *at = mig_shard_latest(sh);
    int others = shards_with(run, m);
    mig_error("%s: %s: %s failed; the shard stays at %s:\n%s", srv->label, sh->schema, m->file,
              at ? at->file : "no migration", msg);
    if (others == 0)
        mig_error("no shard has applied %s yet: fix the file (or what it depends on) and run up again", m->file);
    else
        mig_error("%d shard%s applied %s already, so do not edit it: fix what makes it fail on %s (or add a new "
                  "migration) and run up again",
                  others, others == 1 ? " has" : "s have", m->file, sh->schema);
}

/* Reads and drops what a COPY in a migration started: COPY needs data the
 * runner does not have. */
static void abandon_copy(PGconn *conn, ExecStatusType st)
{
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(conn, "COPY FROM STDIN cannot be used in a migration");
    } else if (st == PGRES_COPY_OUT) {
        char *buf;
        while (PQgetCopyData(conn, &buf, 0) > 0)
            PQfreemem(buf);
    }
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL)
        PQclear(r);
}

/* Applies m to one shard. 0, or -1 after reporting. */
static int apply(mig_run_t *run, mig_server_t *srv, mig_shard_t *sh, const pl_migration_t *m)
{
    PGconn *conn = srv->conn;
    char *quoted = PQescapeIdentifier(conn, sh->schema, strlen(sh->schema));
    if (!quoted) {
        report_failure(run, srv, sh, m, PQerrorMessage(conn));
        return -1;
    }
    char begin[64 + PL_SHARD_SCHEMA_LEN * 2], record[128 + PL_SHARD_SCHEMA_LEN * 2];
    snprintf(begin, sizeof(begin), "BEGIN; SET LOCAL search_path TO %s", quoted);
    snprintf(record, sizeof(record),
             "INSERT INTO %s.schema_migrations (version, name, checksum) VALUES ($1::integer, $2, $3)", quoted);
    PQfreemem(quoted);
    char what[128], version[16];
    snprintf(what, sizeof(what), "%s: starting %s", sh->schema, m->file);
    snprintf(version, sizeof(version), "%d", m->version);
    if (mig_exec(srv, what, begin, 0, NULL) != 0)
        return -1;

    srv->doing_schema = sh->schema;
    srv->doing_file = m->file;
    PGresult *res = PQexec(conn, m->sql);
    srv->doing_schema = srv->doing_file = NULL;
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        char why[4096];
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            snprintf(why, sizeof(why), "ERROR:  COPY FROM STDIN / TO STDOUT cannot be used in a migration");
            abandon_copy(conn, st);
        } else {
            const char *e = res ? PQresultErrorMessage(res) : "";
            snprintf(why, sizeof(why), "%s", *e ? e : PQerrorMessage(conn));
        }
        PQclear(res);
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            PQclear(PQexec(conn, "ROLLBACK"));
        report_failure(run, srv, sh, m, why);
        return -1;
    }
    PQclear(res);
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        report_failure(run, srv, sh, m,
                       "the file ended the runner's transaction (COMMIT, ROLLBACK or END in a migration), so it is "
                       "not recorded, but some of what it did may have been committed: check the shard by hand and "
                       "remove transaction control from the file");
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            PQclear(PQexec(conn, "ROLLBACK"));
        return -1;
    }
    snprintf(what, sizeof(what), "%s: recording %s", sh->schema, m->file);
    if (mig_exec(srv, what, record, 3, (const char *[]){version, m->file, m->checksum}) != 0)
        return -1;
    res = PQexec(conn, "COMMIT");
    bool is_committed = PQresultStatus(res) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(res), "COMMIT") == 0;
    if (!is_committed) {
        char msg[1024];
        pl_cluster_result_error(conn, res, msg, sizeof(msg));
        PQclear(res);
        report_failure(run, srv, sh, m, *msg ? msg : "COMMIT did not commit");
        return -1;
    }
    PQclear(res);

    /* keep the in-memory state true: later files and messages rely on it */
    if (sh->applied_count == sh->applied_cap) {
        int cap = sh->applied_cap ? sh->applied_cap * 2 : 8;
        mig_applied_t *n = realloc(sh->applied, (size_t)cap * sizeof(*n));
        if (!n) {
            mig_error("out of memory");
            return -1;
        }
        sh->applied = n;
        sh->applied_cap = cap;
    }
    mig_applied_t *a = &sh->applied[sh->applied_count];
    a->file = strdup(m->file);
    if (!a->file) {
        mig_error("out of memory");
        return -1;
    }
    a->version = m->version;
    memcpy(a->checksum, m->checksum, sizeof(a->checksum));
    sh->applied_count++;
    return 0;
}

/* Flags srv's shards that lack m; returns how many. */
static int pending_on(const mig_server_t *srv, const pl_migration_t *m, bool *flag)
{
    int n = 0;
    for (int k = 0; k < srv->shard_count; k++) {
        flag[k] = !mig_shard_has(&srv->shards[k], m->version);
        n += flag[k];
    }
    return n;
}

static int total_shards(const mig_run_t *run)
{
    int n = 0;
    for (int i = 0; i < run->server_count; i++)
        n += run->servers[i].shard_count;
    return n;
}

static int run_plan(mig_run_t *run, bool *flag)
{
    const pl_migration_set_t *set = &run->migrations;
    int pending = 0, files = 0;
    for (int f = 0; f < set->count; f++) {
        bool is_needed = false;
        for (int i = 0; i < run->server_count; i++) {
            int n = pending_on(&run->servers[i], &set->items[f], flag);
            pending += n;
            is_needed |= n > 0;
        }
        files += is_needed;
    }
    const pl_migration_t *latest = pl_migrations_latest(set);
    if (pending == 0) {
        if (latest)
            mig_say(run, "up to date: %d shards on %d servers at %s", total_shards(run), run->server_count,
                    latest->name);
        else
            mig_say(run, "up to date: no migrations in %s", set->dir);
        return MIG_EXIT_OK;
    }
    mig_say(run, "%d migration%s to apply (%d shard transactions) from %s", files, files == 1 ? "" : "s", pending,
            set->dir);
    double start = now_ms();
    for (int f = 0; f < set->count; f++) {
        const pl_migration_t *m = &set->items[f];
        for (int i = 0; i < run->server_count; i++) {
            mig_server_t *srv = &run->servers[i];
            int n = pending_on(srv, m, flag);
            if (n == 0)
                continue;
            if (run->opts.is_dry_run) {
                char list[512];
                mig_format_shards(srv, flag, list, sizeof(list));
                mig_say(run, "would apply %s to %d shard%s on %s: %s", m->name, n, n == 1 ? "" : "s", srv->label, list);
                continue;
            }
            int done = 0;
            for (int k = 0; k < srv->shard_count; k++) {
                if (!flag[k])
                    continue;
                double t0 = now_ms();
                if (apply(run, srv, &srv->shards[k], m) != 0)
                    return MIG_EXIT_ERROR;
                mig_say(run, "server %d: %s: applied %s (%d/%d shards, %.0f ms)", srv->index, srv->shards[k].schema,
                        m->name, ++done, n, now_ms() - t0);
            }
        }
    }
    if (run->opts.is_dry_run)
        mig_say(run, "dry run: nothing was changed");
    else
        mig_say(run, "applied %d migration%s in %d shard transactions in %.2f s; all %d shards at %s", files,
                files == 1 ? "" : "s", pending, (now_ms() - start) / 1e3, total_shards(run), latest->name);
    return MIG_EXIT_OK;
}

int mig_up(mig_run_t *run)
{
    int rc = mig_run_open(run, false);
    if (rc == MIG_EXIT_OK)
        rc = mig_run_lock(run);
    if (rc == MIG_EXIT_OK)
        rc = mig_run_read(run, true);
    if (rc != MIG_EXIT_OK)
        return rc;
    mig_verdict_t v = {0};
    mig_check_cluster(run, MIG_CHECK_UP, &v);
    mig_check_applied(run, &v);
    if (v.broken || v.needs_init) {
        mig_error("up refused: nothing was changed");
        return MIG_EXIT_ERROR;
    }
    int most = 1;
    for (int i = 0; i < run->server_count; i++)
        if (run->servers[i].shard_count > most)
            most = run->servers[i].shard_count;
    bool *flag = calloc((size_t)most, sizeof(bool));
    if (!flag) {
        mig_error("out of memory");
        return MIG_EXIT_ERROR;
    }
    rc = run_plan(run, flag);
    free(flag);
    return rc;
}
