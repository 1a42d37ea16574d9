/* checks.c — what every command checks before it changes anything: the
 * servers against the configuration and each other, and each shard's applied
 * migrations against the files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

/* Ranges named in a shard list before "and N more". */
#define FORMAT_RANGES 6

void mig_format_shards(const mig_server_t *srv, const bool *flagged, char *buf, size_t len)
{
    size_t n = 0;
    int ranges = 0, rest = 0;
    buf[0] = '\0';
    for (int k = 0; k < srv->shard_count; k++) {
        if (!flagged[k])
            continue;
        int end = k;
        while (end + 1 < srv->shard_count && flagged[end + 1] &&
               srv->shards[end + 1].shard == srv->shards[end].shard + 1)
            end++;
        if (ranges < FORMAT_RANGES) {
            if (end > k)
                n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s-%04d", ranges ? ", " : "",
                                      srv->shards[k].schema, srv->shards[end].shard);
            else
                n +=
                    (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", ranges ? ", " : "", srv->shards[k].schema);
            ranges++;
        } else {
            rest += end - k + 1;
        }
        k = end;
    }
    if (rest && n < len)
        snprintf(buf + n, len - n, " and %d more shard%s", rest, rest == 1 ? "" : "s");
}

void mig_check_cluster(const mig_run_t *run, mig_check_mode_t mode, mig_verdict_t *v)
{
    const mig_server_t *first = NULL;
    for (int i = 0; i < run->server_count; i++) {
        const mig_server_t *srv = &run->servers[i];
        if (!srv->conn)
            continue;
        if (!srv->meta.is_initialised) {
            v->needs_init++;
            if (mode == MIG_CHECK_UP)
                mig_error("%s: not initialised (no " PL_CLUSTER_META_SCHEMA " schema): run parley-migrate init",
                          srv->label);
            continue;
        }
        if (srv->meta.shards != run->cfg->shards) {
            v->broken++;
            mig_error("%s: the cluster was created with %d logical shards but [postgres] shards is %d; the shard "
                      "count cannot change after creation: configure shards = %d",
                      srv->label, srv->meta.shards, run->cfg->shards, srv->meta.shards);
            continue;
        }
        if (!first) {
            first = srv;
        } else if (strcmp(first->meta.cluster_id, srv->meta.cluster_id) != 0) {
            v->broken++;
            mig_error("%s belongs to another Parley cluster (id %s) than %s (id %s): check the order and "
                      "addresses of [postgres] server",
                      srv->label, srv->meta.cluster_id, first->label, first->meta.cluster_id);
            continue;
        }
        if (srv->present_count == srv->shard_count)
            continue;
        v->needs_init++;
        if (mode != MIG_CHECK_UP)
            continue;
        bool *missing = calloc((size_t)srv->shard_count, sizeof(bool));
        if (!missing) {
            mig_error("out of memory");
            v->broken++;
            return;
        }
        for (int k = 0; k < srv->shard_count; k++)
            missing[k] = !srv->shards[k].is_present;
        char list[512];
        mig_format_shards(srv, missing, list, sizeof(list));
        free(missing);
        mig_error("%s: %d of its %d shards missing (%s): run parley-migrate init", srv->label,
                  srv->shard_count - srv->present_count, srv->shard_count, list);
    }
}

typedef enum problem_kind {
    PROBLEM_CHANGED,      /* applied file's bytes differ */
    PROBLEM_MISSING,      /* applied version has no file */
    PROBLEM_RENAMED,      /* same number and bytes, another name */
    PROBLEM_OUT_OF_ORDER, /* pending file numbered below an applied one */
} problem_kind_t;

/* One kind of problem with one version, reported once with where it was
 * seen first and how many shards have it. */
typedef struct problem {
    problem_kind_t kind;
    int version;
    const mig_server_t *srv;
    const mig_shard_t *sh;
    const mig_applied_t *applied; /* the row concerned, or the shard's latest */
    const pl_migration_t *file;
    int count;
} problem_t;

typedef struct problems {
    problem_t *items;
    int count, cap;
    bool is_out_of_memory;
} problems_t;

static void add_problem(problems_t *p, problem_kind_t kind, int version, const mig_server_t *srv, const mig_shard_t *sh,
                        const mig_applied_t *applied, const pl_migration_t *file)
{
    for (int i = 0; i < p->count; i++) {
        if (p->items[i].kind == kind && p->items[i].version == version) {
            p->items[i].count++;
            return;
        }
    }
    if (p->count == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        problem_t *n = realloc(p->items, (size_t)cap * sizeof(*n));
        if (!n) {
            p->is_out_of_memory = true;
            return;
        }
        p->items = n;
        p->cap = cap;
    }
    p->items[p->count++] = (problem_t){kind, version, srv, sh, applied, file, 1};
}

static void report_problem(const mig_run_t *run, const problem_t *p)
{
    char where[PL_CLUSTER_LABEL_LEN + 96];
    char more[48] = "";
    if (p->count > 1)
        snprintf(more, sizeof(more), " and %d more shard%s", p->count - 1, p->count == 2 ? "" : "s");
    snprintf(where, sizeof(where), "%s of %s%s", p->sh->schema, p->srv->label, more);
    const char *dir = run->migrations.dir;
    switch (p->kind) {
    case PROBLEM_CHANGED:
        if (strcmp(p->applied->file, p->file->file) != 0) {
            mig_error("migration %04d was applied as %s (on %s) but %s/%s is another file with that number: use the "
                      "migrations this cluster was built with",
                      p->version, p->applied->file, where, dir, p->file->file);
            break;
        }
        mig_error("%s/%s was changed after it was applied (on %s): checksum recorded %.16s…, the file's is now "
                  "%.16s…; restore the applied version and put the change in a new migration",
                  dir, p->file->file, where, p->applied->checksum, p->file->checksum);
        break;
    case PROBLEM_MISSING:
        mig_error("%s was applied (on %s) but %s/%s is missing: restore the file", p->applied->file, where, dir,
                  p->applied->file);
        break;
    case PROBLEM_RENAMED:
        mig_error("migration %04d was applied as %s (on %s) but the file is now %s/%s: rename it back", p->version,
                  p->applied->file, where, dir, p->file->file);
        break;
    case PROBLEM_OUT_OF_ORDER:
        mig_error("%s/%s is not applied on %s, which already has the later %s: migrations apply in order; "
                  "renumber it after %04d",
                  dir, p->file->file, where, p->applied->file, p->applied->version);
        break;
    }
}

void mig_check_applied(const mig_run_t *run, mig_verdict_t *v)
{
    problems_t p = {0};
    const pl_migration_set_t *set = &run->migrations;
    for (int i = 0; i < run->server_count; i++) {
        const mig_server_t *srv = &run->servers[i];
        if (!srv->conn)
            continue;
        for (int k = 0; k < srv->shard_count; k++) {
            const mig_shard_t *sh = &srv->shards[k];
            for (int a = 0; a < sh->applied_count; a++) {
                const mig_applied_t *row = &sh->applied[a];
                const pl_migration_t *m = pl_migrations_find(set, row->version);
                if (!m)
                    add_problem(&p, PROBLEM_MISSING, row->version, srv, sh, row, NULL);
                else if (strcmp(m->checksum, row->checksum) != 0)
                    add_problem(&p, PROBLEM_CHANGED, row->version, srv, sh, row, m);
                else if (strcmp(m->file, row->file) != 0)
                    add_problem(&p, PROBLEM_RENAMED, row->version, srv, sh, row, m);
            }
            const mig_applied_t *latest = mig_shard_latest(sh);
            for (int f = 0; latest && f < set->count && set->items[f].version < latest->version; f++)
                if (!mig_shard_has(sh, set->items[f].version))
                    add_problem(&p, PROBLEM_OUT_OF_ORDER, set->items[f].version, srv, sh, latest, &set->items[f]);
        }
    }
    for (int i = 0; i < p.count; i++)
        report_problem(run, &p.items[i]);
    v->broken += p.count;
    if (p.is_out_of_memory) {
        mig_error("out of memory while checking the applied migrations");
        v->broken++;
    }
    free(p.items);
}
