/* config.c — the option table and the three sources (file, env, flags). */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum opt_type {
    OPT_INT,
    OPT_U32, /* uint32_t (the server's byte and count limits) */
    OPT_U16, /* uint16_t (the port) */
    OPT_STRING,
    OPT_LIST, /* repeatable; ';'-separated in env and flags */
} opt_type_t;

typedef struct option {
    const char *section;
    const char *key;
    const char *alias; /* short flag, or NULL */
    opt_type_t type;
    size_t offset;
    const char *def;
    long min, max;
    const char *help;
} option_t;

#define OFF(f) offsetof(pl_config_t, f)

static const option_t options[] = {
    {"server", "host", "host", OPT_STRING, OFF(server.host), "127.0.0.1", 0, 0, "listen address"},
    {"server", "port", "port", OPT_U16, OFF(server.port), "7443", 0, 65535, "listen port (0: pick a free one)"},
    {"server", "workers", "workers", OPT_INT, OFF(server.workers), "0", 0, 256, "worker threads (0: one per core)"},
    {"server", "node_id", "node-id", OPT_INT, OFF(node_id), "0", 0, 31,
     "this node's id, unique among the nodes of a cluster (it is part of every id the node makes)"},
    {"server", "tls_cert", "tls-cert", OPT_STRING, OFF(server.tls_cert_file), "", 0, 0,
     "PEM certificate chain; with tls_key enables TLS (ALPN h2)"},
    {"server", "tls_key", "tls-key", OPT_STRING, OFF(server.tls_key_file), "", 0, 0, "PEM private key"},
    {"server", "tls_client_ca", "tls-client-ca", OPT_STRING, OFF(server.tls_client_ca_file), "", 0, 0,
     "PEM CA bundle; when set, clients must present a certificate it signed (mTLS). "
     "SIGHUP reloads tls_cert, tls_key and this file"},
    {"server", "drain_grace_ms", "drain-grace-ms", OPT_INT, OFF(server.drain_grace_ms), "10000", 1, 3600000,
     "time in-flight calls get to finish on SIGTERM"},

    {"limits", "max_recv_bytes", NULL, OPT_U32, OFF(server.max_recv_message), "4194304", 1024, 1 << 30,
     "largest request message"},
    {"limits", "max_send_bytes", NULL, OPT_U32, OFF(server.max_send_message), "4194304", 1024, 1 << 30,
     "largest response message"},
    {"limits", "max_metadata_bytes", NULL, OPT_U32, OFF(server.max_metadata), "8192", 1024, 1 << 20,
     "request header list size (HTTP/2 accounting)"},
    {"limits", "max_concurrent_streams", NULL, OPT_U32, OFF(server.max_concurrent_streams), "100", 1, 100000,
     "concurrent calls per connection"},
    {"limits", "stream_window_bytes", NULL, OPT_U32, OFF(server.initial_window), "1048576", 65535, INT32_MAX,
     "HTTP/2 flow-control window per call"},
    {"limits", "call_outbound_bytes", NULL, OPT_U32, OFF(server.call_outbound_limit), "1048576", 4096, 1 << 30,
     "queued response bytes per call before the sender is told to wait"},
    {"limits", "connection_outbound_bytes", NULL, OPT_U32, OFF(server.conn_outbound_limit), "16777216", 65536, 1 << 30,
     "queued response bytes per connection; past it senders wait and replies get RESOURCE_EXHAUSTED"},
    {"limits", "inbound_buffer_bytes", NULL, OPT_U32, OFF(server.inbound_buffer), "4194304", 65536, 1 << 30,
     "incomplete request messages buffered per connection: past it only the oldest message's window reopens; "
     "past 4 times it the newest get RESOURCE_EXHAUSTED"},
    {"limits", "inbound_buffer_unauthenticated_bytes", NULL, OPT_U32, OFF(server.inbound_buffer_unauth), "1048576",
     65536, 1 << 30, "the same before any call on the connection presented a valid token"},
    {"limits", "message_timeout_ms", NULL, OPT_INT, OFF(server.message_timeout_ms), "60000", 1, INT_MAX,
     "time to receive a request message once it began; then its call ends with RESOURCE_EXHAUSTED"},
    {"limits", "keepalive_time_ms", NULL, OPT_INT, OFF(server.keepalive_time_ms), "120000", 1, INT_MAX,
     "ping a connection after this much silence"},
    {"limits", "keepalive_timeout_ms", NULL, OPT_INT, OFF(server.keepalive_timeout_ms), "20000", 1, INT_MAX,
     "close a connection whose ping is not answered in this time"},
    {"limits", "idle_timeout_ms", NULL, OPT_INT, OFF(server.idle_timeout_ms), "1800000", 1, INT_MAX,
     "close a connection without calls after this time"},
    {"limits", "handshake_timeout_ms", NULL, OPT_INT, OFF(server.handshake_timeout_ms), "10000", 1, INT_MAX,
     "time for the TLS handshake and the HTTP/2 preface"},
    {"limits", "header_timeout_ms", NULL, OPT_INT, OFF(server.header_timeout_ms), "10000", 1, INT_MAX,
     "time a client gets to finish a frame header, a control frame or a request header block it began"},
    {"limits", "send_timeout_ms", NULL, OPT_INT, OFF(server.send_timeout_ms), "60000", 1, INT_MAX,
     "close a connection that takes none of our output (socket full, or no flow-control credit) this long"},
    {"limits", "connections_per_address", NULL, OPT_U32, OFF(server.connections_per_address), "1000", 1, 10000000,
     "open connections per client address on this node (IPv6: per /64); more are reset at accept"},
    {"limits", "max_connections", NULL, OPT_U32, OFF(server.max_connections), "0", 0, INT_MAX,
     "open client connections on this node; more are reset at accept. 0, or more than the descriptor limit "
     "allows: the limit (soft RLIMIT_NOFILE, raised to the hard one at start) less a reserve for PostgreSQL, "
     "Redis, listeners and files"},
    {"limits", "stream_resets_burst", NULL, OPT_U32, OFF(server.reset_burst), "1000", 1, 10000000,
     "RST_STREAM frames a client may send in a burst (rapid reset); more: GOAWAY ENHANCE_YOUR_CALM"},
    {"limits", "stream_resets_per_second", NULL, OPT_U32, OFF(server.reset_rate), "33", 1, 10000000,
     "... and per second after the burst"},
    {"limits", "useless_frames_burst", NULL, OPT_U32, OFF(server.useless_burst), "1000", 1, 10000000,
     "frames without request progress (PING, SETTINGS, PRIORITY, empty DATA/HEADERS/CONTINUATION, "
     "invalid or refused) a client may send in a burst; more: GOAWAY ENHANCE_YOUR_CALM"},
    {"limits", "useless_frames_per_second", NULL, OPT_U32, OFF(server.useless_rate), "100", 1, 10000000,
     "... and per second after the burst"},
    {"limits", "max_payload_bytes", NULL, OPT_INT, OFF(max_payload_bytes), "65536", 1, 4 << 20,
     "largest message payload (each per-device payload, or the one for all)"},
    {"limits", "group_max_members", NULL, OPT_INT, OFF(group_max_members), "1024", 2, 1024, "members per group"},
    {"limits", "devices_per_account", NULL, OPT_INT, OFF(devices_per_account), "5", 1, 16,
     "devices per account (a phone and its linked devices)"},
    {"limits", "history_page_max", NULL, OPT_INT, OFF(history_page_max), "200", 1, 200, "messages per GetHistory page"},
    {"limits", "lookup_batch_max", NULL, OPT_INT, OFF(lookup_batch_max), "256", 1, 256,
     "phone numbers per LookupPhones call, accounts per GetDevices/AddContacts/presence request"},
    {"limits", "resume_max_per_chat", NULL, OPT_INT, OFF(resume_max_per_chat), "1000", 1, 1000000,
     "messages a resuming device is sent per chat; older ones are announced as a gap"},
    {"limits", "retention_days", NULL, OPT_INT, OFF(retention_days), "30", 1, 3650,
     "messages older than this are deleted; a device behind it gets a gap event"},
    {"limits", "chat_repair_interval_ms", NULL, OPT_INT, OFF(chat_repair_interval_ms), "300000", 0, 86400000,
     "a pass of the chat list repair (memberships missing from accounts' chat lists) starts this often "
     "on every node (0: never)"},

    {"rate", "sends_per_second", NULL, OPT_INT, OFF(sends_per_second), "50", 1, 1000000,
     "messages an account may send per second, sustained"},
    {"rate", "sends_burst", NULL, OPT_INT, OFF(sends_burst), "200", 1, 1000000, "... and in a burst"},
    {"rate", "group_ops_per_minute", NULL, OPT_INT, OFF(group_ops_per_minute), "60", 1, 1000000,
     "group creations and membership/settings changes per account per minute"},
    {"rate", "lookups_per_minute", NULL, OPT_INT, OFF(lookups_per_minute), "1000", 1, 1000000,
     "phone numbers looked up per account per minute (also bounds GetDevices)"},
    {"rate", "codes_per_phone_per_hour", NULL, OPT_INT, OFF(codes_per_phone_per_hour), "5", 1, 1000000,
     "verification codes sent to one phone number per hour"},
    {"rate", "codes_per_address_per_hour", NULL, OPT_INT, OFF(codes_per_address_per_hour), "20", 1, 1000000,
     "verification codes requested from one client address per hour"},
    {"rate", "typing_per_second", NULL, OPT_INT, OFF(typing_per_second), "5", 1, 1000,
     "typing updates a device may send per second"},

    {"sms", "provider", NULL, OPT_STRING, OFF(sms_provider), "file", 0, 0,
     "how verification codes are sent: file (appends \"<phone> <code>\" lines to [sms] file; for local use and tests)"},
    {"sms", "file", NULL, OPT_STRING, OFF(sms_file), ".parley/sms.log", 0, 0, "the file provider's output"},

    {"push", "apns_url", NULL, OPT_STRING, OFF(apns_url), "https://api.push.apple.com", 0, 0,
     "APNs production endpoint"},
    {"push", "apns_sandbox_url", NULL, OPT_STRING, OFF(apns_sandbox_url), "https://api.sandbox.push.apple.com", 0, 0,
     "APNs development endpoint (tokens registered with sandbox)"},
    {"push", "apns_key_file", NULL, OPT_STRING, OFF(apns_key_file), "", 0, 0,
     "APNs token-auth key (.p8, PEM); empty: no APNs pushes"},
    {"push", "apns_key_id", NULL, OPT_STRING, OFF(apns_key_id), "", 0, 0, "the key's id (the JWT's kid)"},
    {"push", "apns_team_id", NULL, OPT_STRING, OFF(apns_team_id), "", 0, 0, "the Apple team id (the JWT's iss)"},
    {"push", "apns_token_refresh_ms", NULL, OPT_INT, OFF(apns_token_refresh_ms), "2400000", 1000, 3300000,
     "a new APNs provider token after this long (Apple wants 20 to 60 minutes and refuses more frequent ones)"},
    {"push", "fcm_url", NULL, OPT_STRING, OFF(fcm_url), "https://fcm.googleapis.com", 0, 0, "FCM HTTP v1 endpoint"},
    {"push", "fcm_credentials", NULL, OPT_STRING, OFF(fcm_credentials), "", 0, 0,
     "FCM service-account key (JSON: project_id, client_email, private_key, token_uri); empty: no FCM pushes"},
    {"push", "ca_file", NULL, OPT_STRING, OFF(push_ca_file), "", 0, 0,
     "CA certificates that push endpoints are checked against (empty: the system's)"},
    {"push", "grace_ms", NULL, OPT_INT, OFF(push_grace_ms), "3000", 0, 600000,
     "a device that has not acknowledged a message this long after it was stored gets a push"},
    {"push", "alert_interval_ms", NULL, OPT_INT, OFF(push_alert_interval_ms), "5000", 0, 3600000,
     "at most one alert per device this often (later messages wait and share one)"},
    {"push", "background_interval_ms", NULL, OPT_INT, OFF(push_background_interval_ms), "1200000", 0, 86400000,
     "at most one background push (muted chats) per device this often"},
    {"push", "sweep_interval_ms", NULL, OPT_INT, OFF(push_sweep_interval_ms), "10000", 100, 3600000,
     "every shard's queue is read this often (jobs of other or restarted nodes, tokens to expire)"},
    {"push", "max_backoff_ms", NULL, OPT_INT, OFF(push_max_backoff_ms), "600000", 100, 86400000,
     "the longest wait between two attempts of a push the provider refused for now"},
    {"push", "token_days", NULL, OPT_INT, OFF(push_token_days), "270", 1, 3650,
     "tokens not registered again for this long are dropped (FCM expires them after 270 days)"},

    {"postgres", "shards", NULL, OPT_INT, OFF(shards), "256", 1, 1024,
     "logical shards; fixed when the cluster is created (recorded in the database)"},
    {"postgres", "server", NULL, OPT_LIST, OFF(pg_servers), "", 0, PL_CONFIG_MAX_PG_SERVERS,
     "a physical PostgreSQL server (libpq conninfo or URI); repeat for each, in shard-map order"},
    {"postgres", "shard_map", NULL, OPT_STRING, OFF(shard_map), "", 0, 0,
     "logical shards per server, e.g. 0-127=0,128-255=1 (empty: equal contiguous ranges)"},
    {"postgres", "connections_per_worker", NULL, OPT_INT, OFF(pg_connections_per_worker), "1", 1, 16,
     "connections each worker keeps to each server"},
    {"postgres", "statement_timeout_ms", NULL, OPT_INT, OFF(pg_statement_timeout_ms), "5000", 1, 600000,
     "server-side limit for one statement"},
    {"postgres", "batch_max", NULL, OPT_INT, OFF(pg_batch_max), "256", 1, 4096,
     "writes committed together while a commit is in flight (group commit)"},

    {"redis", "host", NULL, OPT_STRING, OFF(redis_host), "127.0.0.1", 0, 0, "Redis host"},
    {"redis", "port", NULL, OPT_INT, OFF(redis_port), "6379", 1, 65535, "Redis port"},
    {"redis", "password", NULL, OPT_STRING, OFF(redis_password), "", 0, 0, "Redis password (AUTH)"},
    {"redis", "timeout_ms", NULL, OPT_INT, OFF(redis_timeout_ms), "1000", 1, 600000,
     "Redis command timeout; past it calls fail with UNAVAILABLE"},
};
#define OPTION_COUNT (sizeof(options) / sizeof(options[0]))

static const option_t *find_option(const char *section, const char *key)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (strcmp(options[i].section, section) == 0 && strcmp(options[i].key, key) == 0)
            return &options[i];
    return NULL;
}

static const option_t *find_alias(const char *alias)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].alias && strcmp(options[i].alias, alias) == 0)
            return &options[i];
    return NULL;
}

/* Sets one option from text; where says where it came from (for errors). */
static int set_option(pl_config_t *cfg, const option_t *o, const char *value, const char *where, char *err,
                      size_t err_len)
{
    char *base = (char *)cfg;
    switch (o->type) {
    case OPT_INT:
    case OPT_U32:
    case OPT_U16: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        while (*end && isspace((unsigned char)*end))
            end++;
        if (!*value || *end || errno || v < o->min || v > o->max) {
            snprintf(err, err_len, "config: [%s] %s = '%s' (%s): expected an integer in %ld..%ld", o->section, o->key,
                     value, where, o->min, o->max);
            return -1;
        }
        if (o->type == OPT_U32)
            *(uint32_t *)(base + o->offset) = (uint32_t)v;
        else if (o->type == OPT_U16)
            *(uint16_t *)(base + o->offset) = (uint16_t)v;
        else
            *(int *)(base + o->offset) = (int)v;
        return 0;
    }
    case OPT_STRING: {
        char **slot = (char **)(base + o->offset);
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, err_len, "config: out of memory");
            return -1;
        }
        free(*slot);
        *slot = copy;
        return 0;
    }
    case OPT_LIST: {
        /* a new source replaces the list from weaker sources */
        char **list = (char **)(base + o->offset);
        int *count = &cfg->pg_server_count;
        (void)list;
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, err_len, "config: out of memory");
            return -1;
        }
        char *save = NULL;
        for (char *item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
            while (isspace((unsigned char)*item))
                item++;
            if (!*item)
                continue;
            if (*count >= (int)o->max) {
                snprintf(err, err_len, "config: [%s] %s (%s): more than %ld entries", o->section, o->key, where,
                         o->max);
                free(copy);
                return -1;
            }
            cfg->pg_servers[(*count)++] = strdup(item);
        }
        free(copy);
        return 0;
    }
    }
    return -1;
}

static void clear_list(pl_config_t *cfg)
{
    for (int i = 0; i < cfg->pg_server_count; i++)
        free(cfg->pg_servers[i]);
    cfg->pg_server_count = 0;
}

typedef struct file_ctx {
    pl_config_t *cfg;
    const char *path;
    char *err;
    size_t err_len;
    bool failed;
    bool list_seen;
} file_ctx_t;

/* Debian's inih is built without INI_HANDLER_LINENO: errors name the file
 * and the key, not the line. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    file_ctx_t *ctx = user;
    if (ctx->failed)
        return 0;
    char where[600];
    snprintf(where, sizeof(where), "%s", ctx->path);
    const option_t *o = find_option(section, name);
    if (!o) {
        snprintf(ctx->err, ctx->err_len, "config: unknown key [%s] %s (%s)", section, name, where);
        ctx->failed = true;
        return 0;
    }
    if (o->type == OPT_LIST && !ctx->list_seen) {
        clear_list(ctx->cfg);
        ctx->list_seen = true;
    }
    if (set_option(ctx->cfg, o, value, where, ctx->err, ctx->err_len) != 0) {
        ctx->failed = true;
        return 0;
    }
    return 1;
}

static int load_file(pl_config_t *cfg, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    file_ctx_t ctx = {cfg, path, err, err_len, false, false};
    int rc = ini_parse_file(f, on_ini, &ctx);
    fclose(f);
    if (ctx.failed)
        return -1;
    if (rc != 0) {
        snprintf(err, err_len, "config: %s:%d: syntax error (expected [section] or key = value)", path, rc);
        return -1;
    }
    return 0;
}

/* PARLEY_SERVER_PORT for [server] port. */
static void env_name(const option_t *o, char *out, size_t len)
{
    snprintf(out, len, "PARLEY_%s_%s", o->section, o->key);
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

static int load_env(pl_config_t *cfg, char *err, size_t err_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        char name[128];
        env_name(&options[i], name, sizeof(name));
        const char *v = getenv(name);
        if (!v)
            continue;
        if (options[i].type == OPT_LIST)
            clear_list(cfg);
        char where[160];
        snprintf(where, sizeof(where), "environment %s", name);
        if (set_option(cfg, &options[i], v, where, err, err_len) != 0)
            return -1;
    }
    return 0;
}

static int set_defaults(pl_config_t *cfg, char *err, size_t err_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].type != OPT_LIST && set_option(cfg, &options[i], options[i].def, "default", err, err_len))
            return -1;
    return 0;
}

void pl_config_print_help(FILE *out, const char *usage)
{
    fprintf(out, "%s\n", usage);
    fprintf(out, "Configuration (weakest first): defaults, INI file (--config FILE or $PARLEY_CONFIG),\n"
                 "environment PARLEY_<SECTION>_<KEY>, flags --<section>.<key>=VALUE. Lists take\n"
                 "';' between entries in the environment and in flags.\n\n"
                 "  --config FILE\n  --help\n");
    const char *section = "";
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option_t *o = &options[i];
        if (strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(out, "\n[%s]\n", section);
        }
        char flag[96];
        snprintf(flag, sizeof(flag), "--%s.%s%s%s", o->section, o->key, o->alias ? ", --" : "",
                 o->alias ? o->alias : "");
        fprintf(out, "  %-44s %s", flag, o->help);
        if (o->def[0])
            fprintf(out, " (default %s)", o->def);
        fputc('\n', out);
    }
}

/* Splits "--section.key=value" / "--alias value" forms. */
static int apply_flag(pl_config_t *cfg, const char *arg, const char *next, int *consumed, bool *list_reset, char *err,
                      size_t err_len)
{
    char name[128];
    const char *eq = strchr(arg + 2, '=');
    size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (n >= sizeof(name)) {
        snprintf(err, err_len, "config: flag %s is too long", arg);
        return -1;
    }
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    const option_t *o = NULL;
    char *dot = strchr(name, '.');
    if (dot) {
        *dot = '\0';
        o = find_option(name, dot + 1);
        *dot = '.';
    } else {
        o = find_alias(name);
    }
    if (!o) {
        snprintf(err, err_len, "config: unknown flag --%s (see --help)", name);
        return -1;
    }
    const char *value = eq ? eq + 1 : next;
    if (!value) {
        snprintf(err, err_len, "config: flag --%s needs a value", name);
        return -1;
    }
    *consumed = eq ? 1 : 2;
    if (o->type == OPT_LIST && !*list_reset) {
        clear_list(cfg);
        *list_reset = true;
    }
    char where[160];
    snprintf(where, sizeof(where), "flag --%s", name);
    return set_option(cfg, o, value, where, err, err_len);
}

int pl_config_load(pl_config_t *cfg, int argc, char **argv, const char *usage, char *err, size_t err_len)
{
    memset(cfg, 0, sizeof(*cfg));
    if (set_defaults(cfg, err, err_len) != 0)
        return -1;
    cfg->args = calloc((size_t)argc + 1, sizeof(char *));
    if (!cfg->args) {
        snprintf(err, err_len, "config: out of memory");
        return -1;
    }
    /* first pass: --help and --config, which decide what else to read */
    const char *file = getenv("PARLEY_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            pl_config_print_help(stdout, usage);
            return 1;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 >= argc) {
            snprintf(err, err_len, "config: flag --config needs a value");
            return -1;
        }
        if (strcmp(argv[i], "--config") == 0)
            file = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            file = argv[i] + 9;
        else if (strcmp(argv[i], "--") == 0)
            break;
    }
    if (file && *file) {
        cfg->config_file = strdup(file);
        if (load_file(cfg, file, err, err_len) != 0)
            return -1;
    }
    if (load_env(cfg, err, err_len) != 0)
        return -1;
    bool list_reset = false, rest_positional = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (rest_positional || a[0] != '-' || strcmp(a, "-") == 0) {
            cfg->args[cfg->arg_count++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            rest_positional = true;
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(a, "--config=", 9) == 0)
            continue;
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, err_len, "config: unknown flag %s (see --help)", a);
            return -1;
        }
        int consumed;
        if (apply_flag(cfg, a, i + 1 < argc ? argv[i + 1] : NULL, &consumed, &list_reset, err, err_len) != 0)
            return -1;
        i += consumed - 1;
    }
    if (!cfg->server.tls_cert_file[0] != !cfg->server.tls_key_file[0]) {
        snprintf(err, err_len, "config: [server] tls_cert and tls_key go together");
        return -1;
    }
    if (cfg->server.tls_client_ca_file[0] && !cfg->server.tls_cert_file[0]) {
        snprintf(err, err_len, "config: [server] tls_client_ca needs tls_cert and tls_key (mTLS is part of TLS)");
        return -1;
    }
    return 0;
}

void pl_config_free(pl_config_t *cfg)
{
    char *base = (char *)cfg;
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].type == OPT_STRING)
            free(*(char **)(base + options[i].offset));
    clear_list(cfg);
    free(cfg->args);
    free(cfg->config_file);
    memset(cfg, 0, sizeof(*cfg));
}

void pl_config_dump(const pl_config_t *cfg, FILE *out)
{
    const char *base = (const char *)cfg;
    const char *section = "";
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option_t *o = &options[i];
        if (strcmp(section, o->section) != 0) {
            section = o->section;
            fprintf(out, "%s[%s]\n", i ? "\n" : "", section);
        }
        switch (o->type) {
        case OPT_INT: fprintf(out, "%s = %d\n", o->key, *(const int *)(base + o->offset)); break;
        case OPT_U32: fprintf(out, "%s = %u\n", o->key, *(const uint32_t *)(base + o->offset)); break;
        case OPT_U16: fprintf(out, "%s = %u\n", o->key, (unsigned)*(const uint16_t *)(base + o->offset)); break;
        case OPT_STRING: {
            const char *v = *(char *const *)(base + o->offset);
            bool secret = strcmp(o->key, "password") == 0 && v[0];
            fprintf(out, "%s = %s\n", o->key, secret ? "********" : v);
            break;
        }
        case OPT_LIST:
            for (int k = 0; k < cfg->pg_server_count; k++) {
                const char *v = cfg->pg_servers[k];
                /* libpq conninfo "password=..." or a URI's "user:password@" */
                const char *scheme = strstr(v, "://"), *at = scheme ? strchr(scheme + 3, '@') : NULL;
                const char *colon = scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
                if (strstr(v, "password"))
                    fprintf(out, "%s = ******** (a connection string with a password)\n", o->key);
                else if (colon)
                    fprintf(out, "%s = %.*s:********%s\n", o->key, (int)(colon - v), v, at);
                else
                    fprintf(out, "%s = %s\n", o->key, v);
            }
            break;
        }
    }
}
