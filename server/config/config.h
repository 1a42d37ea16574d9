/* config.h — one configuration for parleyd and the tools.
 *
 * Sources, weakest first: built-in defaults, an INI file (--config FILE or
 * $PARLEY_CONFIG), environment variables PARLEY_<SECTION>_<KEY>, then
 * command-line flags --<section>.<key>=VALUE (or --<section>.<key> VALUE;
 * common ones have short aliases such as --port). Every option is declared
 * once in config.c's table, which also produces --help, so the help text
 * cannot drift from what is parsed. Unknown keys and bad values fail with a
 * message that names the key and where it came from. */
#ifndef PL_SERVER_CONFIG_CONFIG_H
#define PL_SERVER_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "transport/server.h"

#define PL_CONFIG_MAX_PG_SERVERS 64

typedef struct pl_config {
    /* [server] and [limits] that the transport reads: filled by the option
     * table, whose defaults are the only ones (transport/server.h) */
    pl_server_config_t server;
    int node_id;
    /* [limits] of the services */
    int max_payload_bytes;
    int group_max_members;
    int devices_per_account;
    int history_page_max;
    int lookup_batch_max;
    int resume_max_per_chat;
    int retention_days;
    int chat_repair_interval_ms;
    /* [rate] token buckets: per second (or per hour) and burst */
    int sends_per_second;
    int sends_burst;
    int group_ops_per_minute;
    int lookups_per_minute;
    int codes_per_phone_per_hour;
    int codes_per_address_per_hour;
    int typing_per_second;
    /* [sms] */
    char *sms_provider;
    char *sms_file;
    /* [push] */
    char *apns_url;         /* production endpoint */
    char *apns_sandbox_url; /* development endpoint */
    char *apns_key_file;    /* the .p8 key (PEM, P-256) */
    char *apns_key_id;
    char *apns_team_id;
    int apns_token_refresh_ms;
    char *fcm_url;
    char *fcm_credentials; /* the service account's JSON key file */
    char *push_ca_file;    /* trust these instead of the system's CAs (tests) */
    int push_grace_ms;
    int push_alert_interval_ms;
    int push_background_interval_ms;
    int push_sweep_interval_ms;
    int push_max_backoff_ms;
    int push_token_days;
    /* [postgres] */
    int shards;
    char *pg_servers[PL_CONFIG_MAX_PG_SERVERS]; /* libpq conninfo strings or URIs */
    int pg_server_count;
    char *shard_map; /* "0-127=0,128-255=1"; empty: even ranges */
    int pg_connections_per_worker;
    int pg_statement_timeout_ms;
    int pg_batch_max; /* writes per group commit */
    /* [redis] */
    char *redis_host;
    int redis_port;
    char *redis_password;
    int redis_timeout_ms;

    /* positional arguments left for the program (not owned) */
    char **args;
    int arg_count;
    /* where the file came from, for messages */
    char *config_file;
} pl_config_t;

/* Loads defaults, file, environment and flags into cfg. Returns 0, 1 when
 * --help was printed (the program should exit 0), or -1 with a message in
 * err naming the bad key. usage is printed at the top of --help. */
int pl_config_load(pl_config_t *cfg, int argc, char **argv, const char *usage, char *err, size_t err_len);
void pl_config_free(pl_config_t *cfg);

void pl_config_print_help(FILE *out, const char *usage);
/* Writes the effective configuration as INI (secrets masked). */
void pl_config_dump(const pl_config_t *cfg, FILE *out);

#endif
