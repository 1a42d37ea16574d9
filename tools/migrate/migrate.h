/* migrate.h — parley-migrate's view of a cluster while it runs: one
 * connection per physical server, what each server's parley_meta and shard
 * schemas say, and the checks every command makes before it changes
 * anything. The commands (init.c, up.c, status.c) build on it. */
#ifndef PL_TOOLS_MIGRATE_MIGRATE_H
#define PL_TOOLS_MIGRATE_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config/config.h"
#include "migrations.h"
#include "store/cluster.h"
#include "store/shardmap.h"

/* Exit statuses (documented in --help). */
enum {
    MIG_EXIT_OK = 0,
    MIG_EXIT_ERROR = 1,
    MIG_EXIT_USAGE = 2,
    MIG_EXIT_PENDING = 3, /* status: something to init or apply */
    MIG_EXIT_BUSY = 4,    /* --no-wait and the lock is taken */
};

typedef struct mig_options {
    bool is_dry_run;
    bool is_quiet;
    bool is_no_wait;
    const char *migrations_dir;
} mig_options_t;

/* One schema_migrations row. */
typedef struct mig_applied {
    int version;
    char *file;
    char checksum[PL_MIGRATION_CHECKSUM_LEN];
} mig_applied_t;

/* A logical shard the shard map assigns to a server. */
typedef struct mig_shard {
    int shard;
    char schema[PL_SHARD_SCHEMA_LEN];
    bool is_present;        /* its schema and schema_migrations exist */
    mig_applied_t *applied; /* by version */
    int applied_count;
    int applied_cap;
} mig_shard_t;

typedef struct mig_server {
    int index;
    char label[PL_CLUSTER_LABEL_LEN]; /* "server 1 (host=… port=…)" */
    PGconn *conn;                     /* NULL: could not connect (status only) */
    pl_cluster_meta_t meta;
    mig_shard_t *shards; /* the ones the map assigns here, ascending */
    int shard_count;
    int present_count;
    /* what runs now, for server messages (NOTICE, WARNING) */
    const char *doing_schema;
    const char *doing_file;
    bool is_quiet;
} mig_server_t;

typedef struct mig_run {
    const pl_config_t *cfg;
    const pl_shardmap_t *map;
    mig_options_t opts;
    pl_migration_set_t migrations; /* loaded by up and status */
    mig_server_t *servers;
    int server_count;
} mig_run_t;

/* Printing: mig_say() goes to stdout unless --quiet; mig_error() to stderr,
 * prefixed "parley-migrate: ". */
void mig_say(const mig_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mig_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs sql (with params, or as a possibly multi-statement text when
 * nparams is 0) on srv. On failure prints "<server>: <what>: <error>", rolls
 * back an open transaction and returns -1. */
int mig_exec(mig_server_t *srv, const char *what, const char *sql, int nparams, const char *const *params);

/* Sets up run->servers and connects to each. With keep_going, a server that
 * cannot be reached is reported and left with conn NULL; otherwise the first
 * failure ends it. 0, or an exit status. */
int mig_run_open(mig_run_t *run, bool keep_going);
void mig_run_close(mig_run_t *run);

/* Takes the migration lock on every server, in server order (so runners
 * never deadlock), waiting for another runner unless --no-wait. The locks
 * live as long as the connections. 0, or an exit status. */
int mig_run_lock(mig_run_t *run);

/* Reads parley_meta, which shard schemas exist and (with_applied) their
 * schema_migrations on every connected server. 0, or an exit status. */
int mig_run_read(mig_run_t *run, bool with_applied);

/* Problems the checks find, by how they are fixed. */
typedef struct mig_verdict {
    int needs_init; /* servers or shards to create: parley-migrate init */
    int broken;     /* mismatches and changed files: someone must look */
} mig_verdict_t;

typedef enum mig_check_mode {
    MIG_CHECK_INIT,   /* only mismatches: init creates what is missing */
    MIG_CHECK_UP,     /* everything, as errors */
    MIG_CHECK_STATUS, /* mismatches as errors; what init would create only counted */
} mig_check_mode_t;

/* Checks parley_meta on every connected server against the configuration
 * and each other (shard count, cluster id) and that every shard the map
 * assigns to an initialised server is there. Prints the problems the mode
 * reports and adds them up in v. */
void mig_check_cluster(const mig_run_t *run, mig_check_mode_t mode, mig_verdict_t *v);

/* Checks what every shard has applied against the migration files: every
 * applied file still there, unchanged and under the same name, and nothing
 * pending numbered below what a shard has applied. Prints each kind of
 * problem once, naming file, shard and server, with how many shards it
 * affects. */
void mig_check_applied(const mig_run_t *run, mig_verdict_t *v);

/* Has shard applied version? */
bool mig_shard_has(const mig_shard_t *sh, int version);
/* The newest version a shard has applied, or NULL. */
const mig_applied_t *mig_shard_latest(const mig_shard_t *sh);

/* "shard_0003-0005, shard_0009" for the flagged entries of a server's
 * shards (at most a few ranges, then "and N more"). */
void mig_format_shards(const mig_server_t *srv, const bool *flagged, char *buf, size_t len);

/* The commands. Each returns the exit status. */
int mig_init(mig_run_t *run);
int mig_up(mig_run_t *run);
int mig_status(mig_run_t *run);

#endif
