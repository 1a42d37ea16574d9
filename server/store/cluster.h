/* cluster.h — the database side of a Parley cluster as a whole.
 *
 * Every physical PostgreSQL server holds a parley_meta schema (the cluster's
 * id, its fixed logical shard count, the shards the server holds) and one
 * schema per logical shard it holds, each with a schema_migrations table.
 * parley-migrate creates and migrates them; parleyd calls pl_cluster_verify()
 * at start and refuses to run on a cluster that does not match its
 * configuration or is behind the migrations it was built with.
 *
 * Everything here is synchronous libpq: for start-up and tools, never for a
 * request path. */
#ifndef PL_STORE_CLUSTER_H
#define PL_STORE_CLUSTER_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "store/shardmap.h"

#define PL_CLUSTER_META_SCHEMA "parley_meta"
/* The session advisory lock parley-migrate holds on each server while it
 * works ("PRLYMIGR"). */
#define PL_CLUSTER_LOCK_KEY INT64_C(0x50524C594D494752)
/* "server 12 (host=… port=…)" fits. */
#define PL_CLUSTER_LABEL_LEN 320
/* Seconds to wait for a connection unless the conninfo says connect_timeout. */
#define PL_CLUSTER_CONNECT_TIMEOUT_S 10
#define PL_CLUSTER_ID_LEN 33 /* 32 hex digits and a NUL */

/* The number of the newest file in migrations/ when this program was built
 * (0: none): the version every shard must have reached for this build. */
int pl_cluster_schema_version(void);

/* "server 1 (host=127.0.0.1 port=5433)" for physical server `server` of cfg:
 * host, port and database from its conninfo, never the password. */
void pl_cluster_server_label(const pl_config_t *cfg, int server, char *buf, size_t len);

/* Connects to physical server `server` (application is the
 * application_name unless the conninfo sets one). Returns an owned
 * connection (PQfinish it), or NULL with "server 1 (…): cannot connect: …"
 * in err. */
PGconn *pl_cluster_connect(const pl_config_t *cfg, int server, const char *application, char *err, size_t err_len);

/* The error of a failed result (or of conn when res is NULL or has none),
 * on one line, into err. */
void pl_cluster_result_error(PGconn *conn, const PGresult *res, char *err, size_t err_len);

/* What parley_meta on one server says. */
typedef struct pl_cluster_meta {
    bool is_initialised; /* parley_meta.cluster exists and has its row */
    int shards;          /* the cluster's logical shard count */
    char cluster_id[PL_CLUSTER_ID_LEN];
} pl_cluster_meta_t;

/* Reads parley_meta on conn. A database without it is not an error
 * (is_initialised false). 0, or -1 with the server's message in err. */
int pl_cluster_read_meta(PGconn *conn, pl_cluster_meta_t *meta, char *err, size_t err_len);

/* Marks in has_shard[0..shards-1] the shard schemas that exist on conn with
 * their schema_migrations table. 0, or -1 with a message in err. */
int pl_cluster_read_shards(PGconn *conn, int shards, bool *has_shard, char *err, size_t err_len);

/* One row of a shard's schema_migrations (strings borrowed for the call). */
typedef struct pl_cluster_applied {
    int shard;
    int version;
    const char *name;
    const char *checksum;
} pl_cluster_applied_t;
typedef int (*pl_cluster_applied_cb)(void *user_data, const pl_cluster_applied_t *row);

/* Calls cb for every row of schema_migrations in the given shards (which
 * must exist: pl_cluster_read_shards()), by shard then version. A non-zero
 * return from cb stops the walk and is returned. 0, or -1 with a message in
 * err. */
int pl_cluster_read_applied(PGconn *conn, const int *shards, int count, pl_cluster_applied_cb cb, void *user_data,
                            char *err, size_t err_len);

/* The start-up check: every configured server reachable and initialised
 * for a cluster of cfg->shards logical shards (the same cluster on all),
 * every shard that map assigns to a server present there, and every such
 * shard migrated to at least expected_version (pass
 * pl_cluster_schema_version()). 0, or -1 with a message an operator can act
 * on in err ("shard 17 missing on server 1 (host=… port=…): run
 * parley-migrate init"). map must come from cfg's servers and shards. */
int pl_cluster_verify(const pl_config_t *cfg, const pl_shardmap_t *map, int expected_version, char *err,
                      size_t err_len);

#endif
