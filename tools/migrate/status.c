/* status.c — parley-migrate status: one line per server saying where its
 * shards are, the problems up would refuse, and an exit status scripts can
 * test (0 up to date, 3 something to init or apply, 1 problems). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

/* "0002_receipts" for "0002_receipts.sql"; "none" for no migration. */
static void display(const mig_applied_t *a, char *buf, size_t len)
{
    if (!a) {
        snprintf(buf, len, "none");
        return;
    }
    size_t n = strlen(a->file);
    if (n > 4 && strcmp(a->file + n - 4, ".sql") == 0)
        n -= 4;
    snprintf(buf, len, "%.*s", (int)n, a->file);
}

static int latest_version(const mig_shard_t *sh)
{
    const mig_applied_t *a = mig_shard_latest(sh);
    return a ? a->version : 0;
}

/* Shards of srv lacking some migration file. */
static int count_pending(const mig_run_t *run, const mig_server_t *srv)
{
    int n = 0;
    for (int k = 0; k < srv->shard_count; k++) {
        const mig_shard_t *sh = &srv->shards[k];
        if (!sh->is_present)
            continue;
        for (int f = 0; f < run->migrations.count; f++) {
            if (!mig_shard_has(sh, run->migrations.items[f].version)) {
                n++;
                break;
            }
        }
    }
    return n;
}

/* "8 shards, all at 0003_x" or "8 shards: 6 at 0003_x, shard_0008-0009 at
 * 0001_a, shard_0015 missing": the newest version with a count, the older
 * ones with the shards at them. */
static void describe_server(const mig_server_t *srv, bool *flag, char *out, size_t len)
{
    size_t n = (size_t)snprintf(out, len, "%d shards", srv->shard_count);
    char name[256], list[512];
    int above = INT_MAX, groups = 0;
    for (;;) {
        int v = -1, count = 0;
        const mig_applied_t *which = NULL;
        for (int k = 0; k < srv->shard_count; k++) {
            const mig_shard_t *sh = &srv->shards[k];
            int sv = latest_version(sh);
            if (sh->is_present && sv < above && sv > v) {
                v = sv;
                which = mig_shard_latest(sh);
            }
        }
        if (v < 0)
            break;
        for (int k = 0; k < srv->shard_count; k++) {
            flag[k] = srv->shards[k].is_present && latest_version(&srv->shards[k]) == v;
            count += flag[k];
        }
        display(which, name, sizeof(name));
        if (groups == 0 && count == srv->shard_count) {
            snprintf(out + n, len - n, ", all at %s", name);
            return;
        }
        if (n < len) {
            if (groups == 0) {
                n += (size_t)snprintf(out + n, len - n, ": %d at %s", count, name);
            } else {
                mig_format_shards(srv, flag, list, sizeof(list));
                n += (size_t)snprintf(out + n, len - n, ", %s at %s", list, name);
            }
        }
        groups++;
        above = v;
    }
    if (srv->present_count < srv->shard_count && n < len) {
        for (int k = 0; k < srv->shard_count; k++)
            flag[k] = !srv->shards[k].is_present;
        mig_format_shards(srv, flag, list, sizeof(list));
        snprintf(out + n, len - n, "%s%s missing (run parley-migrate init)", groups ? ", " : ": ", list);
    }
}

int mig_status(mig_run_t *run)
{
    int rc_open = mig_run_open(run, true);
    int rc = mig_run_read(run, true);
    if (rc_open == MIG_EXIT_OK && rc != MIG_EXIT_OK)
        rc_open = rc;
    mig_verdict_t v = {0};
    mig_check_cluster(run, MIG_CHECK_STATUS, &v);
    mig_check_applied(run, &v);

    const pl_migration_t *latest = pl_migrations_latest(&run->migrations);
    mig_say(run, "migrations: %d in %s%s%s", run->migrations.count, run->migrations.dir, latest ? ", latest " : "",
            latest ? latest->name : "");
    int most = 1, pending = 0, shards = 0;
    for (int i = 0; i < run->server_count; i++)
        if (run->servers[i].shard_count > most)
            most = run->servers[i].shard_count;
    bool *flag = calloc((size_t)most, sizeof(bool));
    if (!flag) {
        mig_error("out of memory");
        return MIG_EXIT_ERROR;
    }
    char line[2048];
    for (int i = 0; i < run->server_count; i++) {
        const mig_server_t *srv = &run->servers[i];
        shards += srv->shard_count;
        if (!srv->conn) {
            mig_say(run, "%s: unreachable", srv->label);
            continue;
        }
        if (!srv->meta.is_initialised) {
            mig_say(run, "%s: not initialised (run parley-migrate init)", srv->label);
            continue;
        }
        if (srv->meta.shards != run->cfg->shards) {
            mig_say(run, "%s: created for %d shards, not %d", srv->label, srv->meta.shards, run->cfg->shards);
            continue;
        }
        pending += count_pending(run, srv);
        describe_server(srv, flag, line, sizeof(line));
        mig_say(run, "%s: %s", srv->label, line);
    }
    free(flag);
    if (rc_open != MIG_EXIT_OK || v.broken) {
        mig_error("status: problems found (see above)");
        return MIG_EXIT_ERROR;
    }
    if (v.needs_init || pending) {
        if (v.needs_init)
            mig_say(run, "not initialised everywhere: run parley-migrate init%s",
                    run->migrations.count ? ", then up" : "");
        else
            mig_say(run, "pending: %d shard%s behind %s: run parley-migrate up", pending,
                    pending == 1 ? " is" : "s are", latest ? latest->name : "none");
        return MIG_EXIT_PENDING;
    }
    if (latest)
        mig_say(run, "up to date: %d shards on %d servers at %s", shards, run->server_count, latest->name);
    else
        mig_say(run, "up to date: %d shards on %d servers, no migrations", shards, run->server_count);
    return MIG_EXIT_OK;
}
