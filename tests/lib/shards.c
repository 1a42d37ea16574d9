/* shards.c — connections to the test cluster and SQL on a shard (shards.h). */
#include "shards.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "store/shardmap.h"

#define MAX_SERVERS 16

struct pl_test_db {
    pl_shardmap_t map;
    int servers;
    PGconn *conn[MAX_SERVERS];
};

pl_test_db_t *pl_test_db_open(char *err, size_t err_len)
{
    const char *all = getenv("PARLEY_POSTGRES_SERVER");
    const char *shards = getenv("PARLEY_POSTGRES_SHARDS");
    if (!all || !shards) {
        snprintf(err, err_len,
                 "PARLEY_POSTGRES_SERVER / PARLEY_POSTGRES_SHARDS not set: run under "
                 "tests/harness/with_stack.sh");
        return NULL;
    }
    pl_test_db_t *db = calloc(1, sizeof(*db));
    char *list = strdup(all);
    if (!db || !list) {
        snprintf(err, err_len, "out of memory");
        free(db);
        free(list);
        return NULL;
    }
    char *save = NULL;
    for (char *ci = strtok_r(list, ";", &save); ci; ci = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*ci)) /* as parleyd's config reads the list */
            ci++;
        if (!*ci)
            continue;
        if (db->servers == MAX_SERVERS) {
            snprintf(err, err_len, "more than %d PostgreSQL servers", MAX_SERVERS);
            goto fail;
        }
        PGconn *c = PQconnectdb(ci);
        db->conn[db->servers++] = c;
        if (PQstatus(c) != CONNECTION_OK) {
            snprintf(err, err_len, "postgres '%s': %s", ci, PQerrorMessage(c));
            goto fail;
        }
    }
    if (pl_shardmap_init(&db->map, atoi(shards), db->servers, getenv("PARLEY_POSTGRES_SHARD_MAP"), err, err_len) != 0)
        goto fail;
    free(list);
    return db;
fail:
    free(list);
    for (int i = 0; i < db->servers; i++)
        PQfinish(db->conn[i]);
    free(db);
    return NULL;
}

void pl_test_db_close(pl_test_db_t *db)
{
    if (!db)
        return;
    for (int i = 0; i < db->servers; i++)
        PQfinish(db->conn[i]);
    pl_shardmap_dispose(&db->map);
    free(db);
}

int pl_test_db_shards(const pl_test_db_t *db)
{
    return db->map.shards;
}

int pl_test_db_servers(const pl_test_db_t *db)
{
    return db->servers;
}

PGconn *pl_test_db_conn(pl_test_db_t *db, int server)
{
    PGconn *c = db->conn[server];
    if (PQstatus(c) != CONNECTION_OK)
        PQreset(c);
    return c;
}

int pl_test_db_server_of(const pl_test_db_t *db, int shard)
{
    return pl_shardmap_server(&db->map, shard);
}

PGresult *pl_test_sql(pl_test_db_t *db, int shard, const char *sql, int nparams, const char *const *params)
{
    if (shard < 0 || shard >= db->map.shards) {
        printf("sql: shard %d out of range 0..%d\n", shard, db->map.shards - 1);
        return NULL;
    }
    char schema[PL_SHARD_SCHEMA_LEN], text[8192];
    pl_shard_schema(shard, schema);
    size_t n = 0;
    for (const char *p = sql; *p; p++) {
        if (n + sizeof(schema) >= sizeof(text)) {
            printf("sql: statement longer than %zu bytes: %.60s...\n", sizeof(text), sql);
            return NULL;
        }
        if (p[0] == '{' && p[1] == 's' && p[2] == '}') {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", schema);
            p += 2;
        } else {
            text[n++] = *p;
        }
    }
    text[n] = '\0';
    PGconn *c = pl_test_db_conn(db, pl_shardmap_server(&db->map, shard));
    PGresult *r = PQexecParams(c, text, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        printf("sql: %s: %s", text, PQresultErrorMessage(r));
        fflush(stdout);
        PQclear(r);
        return NULL;
    }
    return r;
}

int64_t pl_test_sql_int(pl_test_db_t *db, int shard, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = pl_test_sql(db, shard, sql, nparams, params);
    REQUIRE(r != NULL, "%s", sql);
    REQUIRE(PQntuples(r) == 1, "%s: %d rows, want 1", sql, PQntuples(r));
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}
