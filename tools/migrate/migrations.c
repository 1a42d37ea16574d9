/* migrations.c — finding, checking and reading the migration files. */
#include "migrations.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define VERSION_DIGITS 4

/* NNNN_description.sql with NNNN >= 1; the version, or -1. */
static int parse_name(const char *name)
{
    size_t len = strlen(name);
    static const char ext[] = ".sql";
    size_t ext_len = sizeof(ext) - 1;
    if (len < VERSION_DIGITS + 1 + 1 + ext_len || strcmp(name + len - ext_len, ext) != 0)
        return -1;
    int version = 0;
    for (int i = 0; i < VERSION_DIGITS; i++) {
        if (!isdigit((unsigned char)name[i]))
            return -1;
        version = version * 10 + (name[i] - '0');
    }
    if (name[VERSION_DIGITS] != '_')
        return -1;
    for (size_t i = VERSION_DIGITS + 1; i < len - ext_len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-')
            return -1;
    }
    return version >= 1 ? version : -1;
}

static bool looks_like_migration(const char *name)
{
    size_t len = strlen(name);
    return isdigit((unsigned char)name[0]) || (len >= 4 && strcasecmp(name + len - 4, ".sql") == 0);
}

/* Reads path whole into m->sql and computes its checksum. */
static int read_file(pl_migration_t *m, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "migrations: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "migrations: %s is not a regular file", path);
        fclose(f);
        return -1;
    }
    if ((unsigned long long)st.st_size > PL_MIGRATION_MAX_BYTES) {
        snprintf(err, err_len, "migrations: %s is larger than %u MiB", path, PL_MIGRATION_MAX_BYTES >> 20);
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    m->sql = malloc(size + 1);
    if (!m->sql) {
        snprintf(err, err_len, "migrations: out of memory reading %s", path);
        fclose(f);
        return -1;
    }
    size_t got = fread(m->sql, 1, size, f);
    bool failed = ferror(f) || got != size || fgetc(f) != EOF;
    fclose(f);
    if (failed) {
        snprintf(err, err_len, "migrations: %s changed size or could not be read while reading it", path);
        return -1;
    }
    m->sql[size] = '\0';
    m->len = size;
    if (memchr(m->sql, '\0', size)) {
        snprintf(err, err_len, "migrations: %s contains a NUL byte (SQL text expected)", path);
        return -1;
    }
    unsigned char hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)m->sql, size);
    sodium_bin2hex(m->checksum, sizeof(m->checksum), hash, sizeof(hash));
    return 0;
}

static int by_version(const void *a, const void *b)
{
    const pl_migration_t *x = a, *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file, y->file);
}

int pl_migrations_load(pl_migration_set_t *set, const char *dir, char *err, size_t err_len)
{
    memset(set, 0, sizeof(*set));
    set->dir = strdup(dir);
    if (!set->dir) {
        snprintf(err, err_len, "migrations: out of memory");
        return -1;
    }
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, err_len, "migrations: cannot open directory %s: %s (see --migrations)", dir, strerror(errno));
        goto fail;
    }
    int cap = 0;
    struct dirent *e;
    char path[4096];
    while ((errno = 0, e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !looks_like_migration(e->d_name))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int version = parse_name(e->d_name);
        if (version < 0) {
            snprintf(err, err_len,
                     "migrations: %s: bad file name (expected NNNN_description.sql: four digits from 0001, '_', "
                     "then letters, digits, '_' or '-')",
                     path);
            closedir(d);
            goto fail;
        }
        if (set->count == cap) {
            int ncap = cap ? cap * 2 : 16;
            pl_migration_t *n = realloc(set->items, (size_t)ncap * sizeof(*n));
            if (!n) {
                snprintf(err, err_len, "migrations: out of memory");
                closedir(d);
                goto fail;
            }
            set->items = n;
            cap = ncap;
        }
        pl_migration_t *m = &set->items[set->count++];
        memset(m, 0, sizeof(*m));
        m->version = version;
        m->file = strdup(e->d_name);
        m->name = strndup(e->d_name, strlen(e->d_name) - 4);
        if (!m->file || !m->name) {
            snprintf(err, err_len, "migrations: out of memory");
            closedir(d);
            goto fail;
        }
        if (read_file(m, path, err, err_len) != 0) {
            closedir(d);
            goto fail;
        }
    }
    if (errno) {
        snprintf(err, err_len, "migrations: reading directory %s: %s", dir, strerror(errno));
        closedir(d);
        goto fail;
    }
    closedir(d);
    if (set->count)
        qsort(set->items, (size_t)set->count, sizeof(*set->items), by_version);
    for (int i = 1; i < set->count; i++) {
        if (set->items[i].version == set->items[i - 1].version) {
            snprintf(err, err_len, "migrations: %s/%s and %s/%s have the same number %04d", dir, set->items[i - 1].file,
                     dir, set->items[i].file, set->items[i].version);
            goto fail;
        }
    }
    return 0;
fail:
    pl_migrations_free(set);
    return -1;
}

void pl_migrations_free(pl_migration_set_t *set)
{
    for (int i = 0; i < set->count; i++) {
        free(set->items[i].file);
        free(set->items[i].name);
        free(set->items[i].sql);
    }
    free(set->items);
    free(set->dir);
    memset(set, 0, sizeof(*set));
}

const pl_migration_t *pl_migrations_find(const pl_migration_set_t *set, int version)
{
    int lo = 0, hi = set->count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (set->items[mid].version == version)
            return &set->items[mid];
        if (set->items[mid].version < version)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return NULL;
}

const pl_migration_t *pl_migrations_latest(const pl_migration_set_t *set)
{
    return set->count ? &set->items[set->count - 1] : NULL;
}
