/* main.c — parley-migrate: the command line. Reads the same configuration as
 * parleyd (pl_config_load) after taking out the tool's own flags, then runs
 * init, up or status (init.c, up.c, status.c). */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"

#ifndef PARLEY_MIGRATIONS_DIR
#error "PARLEY_MIGRATIONS_DIR must be defined by the build"
#endif

static const char usage[] = "Usage: parley-migrate [OPTIONS] init|up|status\n"
                            "\n"
                            "Creates and migrates the PostgreSQL side of a Parley cluster. Each physical\n"
                            "server ([postgres] server, in shard-map order) gets a parley_meta schema\n"
                            "(cluster id, logical shard count, the shards it holds) and a schema\n"
                            "shard_NNNN for each logical shard the shard map assigns to it. Migrations\n"
                            "are files NNNN_description.sql (four digits from 0001; letters, digits,\n"
                            "'_', '-'); each is applied once to every shard, in number order, each file\n"
                            "on each shard in its own transaction after SET LOCAL search_path TO\n"
                            "shard_NNNN (so use unqualified names, and SET search_path FROM CURRENT in\n"
                            "functions), and recorded with its SHA-256 in shard_NNNN.schema_migrations.\n"
                            "Files must not contain COMMIT/ROLLBACK, COPY FROM STDIN or statements that\n"
                            "cannot run in a transaction.\n"
                            "\n"
                            "Commands:\n"
                            "  init    create parley_meta and the missing shard schemas on every server;\n"
                            "          records the shard count the first time and refuses a different one\n"
                            "          later; creates only what is missing, so it can be run again\n"
                            "  up      apply the pending migrations to every shard; does nothing when all\n"
                            "          are applied. Before changing anything it checks every shard of every\n"
                            "          server and refuses (naming file, shard and server) when an applied\n"
                            "          file was changed, renamed or removed, or a pending file is numbered\n"
                            "          below one a shard has applied. Stops at the first failing file; that\n"
                            "          shard keeps its previous version\n"
                            "  status  per server, the version of its shards; the problems up would refuse\n"
                            "\n"
                            "Options:\n"
                            "  --migrations DIR  the migration files (default " PARLEY_MIGRATIONS_DIR ")\n"
                            "  --dry-run         init and up: print what would be done, change nothing\n"
                            "  --no-wait         init and up take a lock on every server (a PostgreSQL\n"
                            "                    advisory lock) and wait for another runner to finish;\n"
                            "                    with --no-wait they fail instead (exit status 4)\n"
                            "  --quiet, -q       print errors only\n"
                            "\n"
                            "Exit status:\n"
                            "  0  done; for status: every shard has every migration\n"
                            "  1  error: a server unreachable, a migration failed, an applied file changed\n"
                            "     or missing, a bad file name, a shard count or cluster mismatch\n"
                            "  2  bad command line or configuration\n"
                            "  3  status: something to do (shards or servers to init, migrations to apply)\n"
                            "  4  --no-wait and another parley-migrate holds the lock\n";

/* Takes the tool's flags out of argv (in place) so pl_config_load sees only
 * its own. 0, or -1 after printing the problem. */
static int take_flags(int *argc, char **argv, mig_options_t *opts)
{
    int out = 1;
    bool is_rest = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (is_rest || strcmp(a, "--") == 0) {
            is_rest = true;
            argv[out++] = argv[i];
        } else if (strcmp(a, "--dry-run") == 0) {
            opts->is_dry_run = true;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opts->is_quiet = true;
        } else if (strcmp(a, "--no-wait") == 0) {
            opts->is_no_wait = true;
        } else if (strcmp(a, "--migrations") == 0) {
            if (i + 1 >= *argc) {
                mig_error("--migrations needs a directory (see --help)");
                return -1;
            }
            opts->migrations_dir = argv[++i];
        } else if (strncmp(a, "--migrations=", 13) == 0) {
            opts->migrations_dir = a + 13;
        } else {
            argv[out++] = argv[i];
        }
    }
    argv[out] = NULL;
    *argc = out;
    if (opts->migrations_dir && !*opts->migrations_dir) {
        mig_error("--migrations needs a directory (see --help)");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    mig_options_t opts = {.migrations_dir = PARLEY_MIGRATIONS_DIR};
    if (take_flags(&argc, argv, &opts) != 0)
        return MIG_EXIT_USAGE;
    if (sodium_init() < 0) {
        mig_error("libsodium failed to initialise");
        return MIG_EXIT_ERROR;
    }
    pl_config_t cfg;
    char err[1024];
    int rc = pl_config_load(&cfg, argc, argv, usage, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            mig_error("%s", err);
        pl_config_free(&cfg);
        return rc > 0 ? MIG_EXIT_OK : MIG_EXIT_USAGE;
    }
    const char *command = cfg.arg_count == 1 ? cfg.args[0] : NULL;
    int (*run_command)(mig_run_t *) = NULL;
    if (command && strcmp(command, "init") == 0)
        run_command = mig_init;
    else if (command && strcmp(command, "up") == 0)
        run_command = mig_up;
    else if (command && strcmp(command, "status") == 0)
        run_command = mig_status;
    if (!run_command) {
        if (cfg.arg_count == 0)
            mig_error("no command: init, up or status (see --help)");
        else if (cfg.arg_count > 1)
            mig_error("one command expected, got %d: %s %s… (see --help)", cfg.arg_count, cfg.args[0], cfg.args[1]);
        else
            mig_error("unknown command '%s': init, up or status (see --help)", command);
        pl_config_free(&cfg);
        return MIG_EXIT_USAGE;
    }
    if (opts.is_dry_run && run_command == mig_status) {
        mig_error("--dry-run is for init and up (status changes nothing anyway)");
        pl_config_free(&cfg);
        return MIG_EXIT_USAGE;
    }
    if (cfg.pg_server_count < 1) {
        mig_error("no PostgreSQL server configured: set [postgres] server in the configuration file, "
                  "PARLEY_POSTGRES_SERVER or --postgres.server (see --help)");
        pl_config_free(&cfg);
        return MIG_EXIT_USAGE;
    }
    pl_shardmap_t map;
    if (pl_shardmap_init(&map, cfg.shards, cfg.pg_server_count, cfg.shard_map, err, sizeof(err)) != 0) {
        mig_error("config: [postgres] shard_map: %s", err);
        pl_config_free(&cfg);
        return MIG_EXIT_USAGE;
    }
    mig_run_t run = {.cfg = &cfg, .map = &map, .opts = opts};
    rc = MIG_EXIT_OK;
    /* the files first: a bad one stops every command but init before any connection */
    if (run_command != mig_init && pl_migrations_load(&run.migrations, opts.migrations_dir, err, sizeof(err)) != 0) {
        mig_error("%s", err);
        rc = MIG_EXIT_ERROR;
    }
    if (rc == MIG_EXIT_OK)
        rc = run_command(&run);
    mig_run_close(&run);
    pl_migrations_free(&run.migrations);
    pl_shardmap_dispose(&map);
    pl_config_free(&cfg);
    return rc;
}
