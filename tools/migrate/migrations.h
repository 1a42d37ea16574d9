/* migrations.h — the migration files: migrations/NNNN_description.sql.
 *
 * A directory holds the files parley-migrate applies to every logical shard
 * in version order. Loading checks the names (four digits from 0001, '_',
 * a description of letters, digits, '_' and '-', ".sql"), rejects duplicate
 * numbers, and reads each file with its SHA-256 checksum, the identity the
 * runner records per shard. */
#ifndef PL_TOOLS_MIGRATE_MIGRATIONS_H
#define PL_TOOLS_MIGRATE_MIGRATIONS_H

#include <stddef.h>

/* A migration file is read whole; larger ones are refused. */
#define PL_MIGRATION_MAX_BYTES (64u << 20)
#define PL_MIGRATION_CHECKSUM_LEN 65 /* SHA-256 in hex, and a NUL */

typedef struct pl_migration {
    int version; /* NNNN */
    char *file;  /* "0002_receipts.sql": recorded as schema_migrations.name */
    char *name;  /* "0002_receipts": for messages */
    char *sql;   /* the file's bytes, NUL-terminated */
    size_t len;
    char checksum[PL_MIGRATION_CHECKSUM_LEN];
} pl_migration_t;

/* The migrations of one directory, by version. */
typedef struct pl_migration_set {
    char *dir;
    pl_migration_t *items;
    int count;
} pl_migration_set_t;

/* Loads every migration in dir. Files that end in ".sql" or start with a
 * digit must be well-named migrations; other names (README, .gitkeep) are
 * skipped. 0, or -1 with a message naming the file in err (set is then
 * empty). */
int pl_migrations_load(pl_migration_set_t *set, const char *dir, char *err, size_t err_len);
void pl_migrations_free(pl_migration_set_t *set);

/* The migration with this version, or NULL (borrowed from set). */
const pl_migration_t *pl_migrations_find(const pl_migration_set_t *set, int version);

/* The newest, or NULL when there is none. */
const pl_migration_t *pl_migrations_latest(const pl_migration_set_t *set);

#endif
