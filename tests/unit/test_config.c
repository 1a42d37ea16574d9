/* test_config.c — server/config/config.c: defaults, the INI file, the
 * environment and flags in that order of strength, lists, every kind of
 * error naming its key, --help, positional arguments, the TLS pair and
 * pl_config_dump. The test clears PARLEY_* from its own environment first. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"

static char tmpdir[256];
static char err[1024];

/* ---- helpers ---- */

static void clear_parley_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "PARLEY_", 7) == 0) {
                size_t n = strcspn(*e, "=");
                if (n < sizeof(name)) {
                    memcpy(name, *e, n);
                    name[n] = '\0';
                }
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

/* Writes text into tmpdir/name; returns the path (static per name slot). */
static const char *write_file(const char *name, const char *text)
{
    static char paths[8][512];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* Loads with argv = {"parleyd", args..., NULL}. */
static int load(pl_config_t *cfg, const char *const *args)
{
    static char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"parleyd";
    for (; args && *args && argc < 63; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    err[0] = '\0';
    return pl_config_load(cfg, argc, argv, "usage: parleyd [options]", err, sizeof(err));
}
#define LOAD(cfg, ...) load(cfg, (const char *const[]){__VA_ARGS__, NULL})
#define LOAD0(cfg) load(cfg, NULL)

/* Expects -1 and every needle in err. */
#define CHECK_ERR(rc, ...) check_err(__LINE__, rc, (const char *const[]){__VA_ARGS__, NULL})
static void check_err(int line, int rc, const char *const *needles)
{
    bool ok = rc == -1;
    char want[512] = "";
    size_t used = 0;
    for (const char *const *n = needles; *n; n++) {
        if (!strstr(err, *n))
            ok = false;
        if (used < sizeof(want))
            used += (size_t)snprintf(want + used, sizeof(want) - used, " \"%s\"", *n);
    }
    pl_test_check_at(ok, __FILE__, line, "load fails with a message naming the problem",
                     "rc %d, err \"%s\"; expected -1 and:%s", rc, err, want);
}

/* The dump as a string (caller frees). */
static char *dump(const pl_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    pl_config_dump(cfg, f);
    fclose(f);
    return buf;
}

/* Runs a load with stdout redirected to a file; returns the output. */
static char *load_capturing_stdout(pl_config_t *cfg, const char *const *args, int *rc)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/stdout", tmpdir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    FILE *f = fopen(path, "w+");
    if (saved < 0 || !f) {
        *rc = -2;
        return NULL;
    }
    dup2(fileno(f), STDOUT_FILENO);
    *rc = load(cfg, args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *out = malloc((size_t)n + 1);
    if (out) {
        size_t got = fread(out, 1, (size_t)n, f);
        out[got] = '\0';
    }
    fclose(f);
    unlink(path);
    return out;
}

static const char *const MAIN_INI = "; a comment\n"
                                    "# another\n"
                                    "[server]\n"
                                    "host = 0.0.0.0\n"
                                    "port = 8000\n"
                                    "workers = 2\n"
                                    "node_id = 31\n"
                                    "\n"
                                    "[postgres]\n"
                                    "shards = 16\n"
                                    "server = host=pg1 port=5432 dbname=parley\n"
                                    "server = postgresql://u@pg2:5433/parley\n"
                                    "shard_map = 0-7=0,8-15=1\n"
                                    "\n"
                                    "[redis]\n"
                                    "password = hunter2\n"
                                    "port = 6380\n"
                                    "[limits]\n"
                                    "max_payload_bytes = 1024\n"
                                    "[sms]\n"
                                    "file = /var/log/sms.log\n";

/* ---- tests ---- */

static void test_defaults(void)
{
    pl_config_t c;
    CHECK_EQ_INT(LOAD0(&c), 0);
    CHECK_EQ_STR(c.server.host, "127.0.0.1");
    CHECK_EQ_INT(c.server.port, 7443);
    CHECK_EQ_INT(c.server.workers, 0);
    CHECK_EQ_INT(c.node_id, 0);
    CHECK_EQ_STR(c.server.tls_cert_file, "");
    CHECK_EQ_STR(c.server.tls_key_file, "");
    CHECK_EQ_INT(c.server.drain_grace_ms, 10000);
    CHECK_EQ_INT(c.server.max_recv_message, 4194304);
    CHECK_EQ_INT(c.server.max_send_message, 4194304);
    CHECK_EQ_INT(c.server.max_metadata, 8192);
    CHECK_EQ_INT(c.server.max_concurrent_streams, 100);
    CHECK_EQ_INT(c.server.initial_window, 1048576);
    CHECK_EQ_INT(c.server.keepalive_time_ms, 120000);
    CHECK_EQ_INT(c.server.keepalive_timeout_ms, 20000);
    CHECK_EQ_INT(c.server.idle_timeout_ms, 1800000);
    CHECK_EQ_INT(c.max_payload_bytes, 65536);
    CHECK_EQ_INT(c.group_max_members, 1024);
    CHECK_EQ_INT(c.devices_per_account, 5);
    CHECK_EQ_INT(c.history_page_max, 200);
    CHECK_EQ_INT(c.retention_days, 30);
    CHECK_EQ_INT(c.sends_per_second, 50);
    CHECK_EQ_INT(c.sends_burst, 200);
    CHECK_EQ_INT(c.typing_per_second, 5);
    CHECK_EQ_STR(c.sms_provider, "file");
    CHECK_EQ_STR(c.sms_file, ".parley/sms.log");
    CHECK_EQ_INT(c.shards, 256);
    CHECK_EQ_INT(c.pg_server_count, 0);
    CHECK_EQ_STR(c.shard_map, "");
    CHECK_EQ_INT(c.pg_connections_per_worker, 1);
    CHECK_EQ_INT(c.pg_statement_timeout_ms, 5000);
    CHECK_EQ_INT(c.pg_batch_max, 256);
    CHECK_EQ_STR(c.redis_host, "127.0.0.1");
    CHECK_EQ_INT(c.redis_port, 6379);
    CHECK_EQ_STR(c.redis_password, "");
    CHECK_EQ_INT(c.redis_timeout_ms, 1000);
    CHECK_EQ_INT(c.arg_count, 0);
    CHECK(c.args != NULL);
    CHECK(c.config_file == NULL);
    pl_config_free(&c);
    CHECK(c.server.host == NULL);
    CHECK(c.args == NULL);
}

static void test_file(void)
{
    const char *path = write_file("main.ini", MAIN_INI);
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_STR(c.server.host, "0.0.0.0");
    CHECK_EQ_INT(c.server.port, 8000);
    CHECK_EQ_INT(c.server.workers, 2);
    CHECK_EQ_INT(c.node_id, 31);
    CHECK_EQ_INT(c.shards, 16);
    CHECK_EQ_INT(c.pg_server_count, 2);
    CHECK_EQ_STR(c.pg_servers[0], "host=pg1 port=5432 dbname=parley");
    CHECK_EQ_STR(c.pg_servers[1], "postgresql://u@pg2:5433/parley");
    CHECK_EQ_STR(c.shard_map, "0-7=0,8-15=1");
    CHECK_EQ_STR(c.redis_password, "hunter2");
    CHECK_EQ_INT(c.redis_port, 6380);
    CHECK_EQ_INT(c.max_payload_bytes, 1024);
    CHECK_EQ_STR(c.sms_file, "/var/log/sms.log");
    /* untouched by the file: defaults */
    CHECK_EQ_STR(c.redis_host, "127.0.0.1");
    CHECK_EQ_INT(c.server.drain_grace_ms, 10000);
    CHECK_EQ_STR(c.config_file, path);
    /* --config and its value are not positional */
    CHECK_EQ_INT(c.arg_count, 0);
    pl_config_free(&c);

    /* --config=FILE */
    char flag[600];
    snprintf(flag, sizeof(flag), "--config=%s", path);
    CHECK_EQ_INT(LOAD(&c, flag), 0);
    CHECK_EQ_INT(c.server.port, 8000);
    CHECK_EQ_STR(c.config_file, path);
    pl_config_free(&c);

    /* $PARLEY_CONFIG, and --config beating it */
    const char *other = write_file("other.ini", "[server]\nport = 8100\n");
    setenv("PARLEY_CONFIG", path, 1);
    CHECK_EQ_INT(LOAD0(&c), 0);
    CHECK_EQ_INT(c.server.port, 8000);
    CHECK_EQ_STR(c.config_file, path);
    pl_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--config", other), 0);
    CHECK_EQ_INT(c.server.port, 8100);
    CHECK_EQ_STR(c.server.host, "127.0.0.1"); /* only one file is read */
    CHECK_EQ_STR(c.config_file, other);
    pl_config_free(&c);
    unsetenv("PARLEY_CONFIG");

    /* an empty file is fine */
    const char *empty = write_file("empty.ini", "");
    CHECK_EQ_INT(LOAD(&c, "--config", empty), 0);
    CHECK_EQ_INT(c.server.port, 7443);
    pl_config_free(&c);
}

/* Lines from one [postgres] section and a later one add to the same list. */
static void test_file_list_across_sections(void)
{
    const char *path = write_file("list.ini", "[postgres]\nserver = a\n[server]\nport = 1\n[postgres]\nserver = b\n"
                                              "server = c;d\n");
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.pg_server_count, 4);
    CHECK_EQ_STR(c.pg_servers[0], "a");
    CHECK_EQ_STR(c.pg_servers[1], "b");
    CHECK_EQ_STR(c.pg_servers[2], "c");
    CHECK_EQ_STR(c.pg_servers[3], "d");
    CHECK_EQ_INT(c.server.port, 1);
    pl_config_free(&c);
}

static void test_env_overrides_file(void)
{
    const char *path = write_file("main.ini", MAIN_INI);
    setenv("PARLEY_SERVER_PORT", "9000", 1);
    setenv("PARLEY_REDIS_PASSWORD", "fromenv", 1);
    setenv("PARLEY_POSTGRES_SERVER", "host=c; host=d", 1);
    setenv("PARLEY_LIMITS_MAX_PAYLOAD_BYTES", "2048", 1);
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.server.port, 9000);
    CHECK_EQ_STR(c.redis_password, "fromenv");
    CHECK_EQ_INT(c.max_payload_bytes, 2048);
    /* the environment's list replaces the file's */
    CHECK_EQ_INT(c.pg_server_count, 2);
    CHECK_EQ_STR(c.pg_servers[0], "host=c");
    CHECK_EQ_STR(c.pg_servers[1], "host=d");
    /* what the environment does not set comes from the file */
    CHECK_EQ_STR(c.server.host, "0.0.0.0");
    CHECK_EQ_INT(c.server.workers, 2);
    CHECK_EQ_INT(c.shards, 16);
    pl_config_free(&c);
    /* environment alone over defaults */
    CHECK_EQ_INT(LOAD0(&c), 0);
    CHECK_EQ_INT(c.server.port, 9000);
    CHECK_EQ_STR(c.server.host, "127.0.0.1");
    CHECK_EQ_INT(c.pg_server_count, 2);
    pl_config_free(&c);
    /* an empty list in the environment empties the file's */
    setenv("PARLEY_POSTGRES_SERVER", "", 1);
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.pg_server_count, 0);
    pl_config_free(&c);
    clear_parley_env();
}

static void test_flags_override_env(void)
{
    const char *path = write_file("main.ini", MAIN_INI);
    setenv("PARLEY_SERVER_PORT", "9000", 1);
    setenv("PARLEY_SERVER_WORKERS", "5", 1);
    setenv("PARLEY_POSTGRES_SERVER", "host=c;host=d", 1);
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--port", "1234", "--workers=3", "--server.host=10.0.0.1",
                      "--server.node_id", "7", "--postgres.server=x", "--redis.port=7000", "--node-id=9"),
                 0);
    CHECK_EQ_INT(c.server.port, 1234);
    CHECK_EQ_INT(c.server.workers, 3);
    CHECK_EQ_STR(c.server.host, "10.0.0.1");
    CHECK_EQ_INT(c.node_id, 9); /* the later flag wins */
    CHECK_EQ_INT(c.redis_port, 7000);
    CHECK_EQ_INT(c.pg_server_count, 1);
    CHECK_EQ_STR(c.pg_servers[0], "x");
    CHECK_EQ_INT(c.shards, 16); /* from the file */
    CHECK_EQ_INT(c.arg_count, 0);
    pl_config_free(&c);

    /* repeated list flags accumulate; ';' separates within one */
    CHECK_EQ_INT(LOAD(&c, "--postgres.server=x", "--postgres.server", "y;z"), 0);
    CHECK_EQ_INT(c.pg_server_count, 3);
    CHECK_EQ_STR(c.pg_servers[0], "x");
    CHECK_EQ_STR(c.pg_servers[1], "y");
    CHECK_EQ_STR(c.pg_servers[2], "z");
    CHECK_EQ_INT(c.server.port, 9000); /* from the environment */
    CHECK_EQ_INT(c.server.workers, 5);
    pl_config_free(&c);

    /* scalar flags: the last one wins; aliases and long names are the same option */
    CHECK_EQ_INT(LOAD(&c, "--port=1", "--server.port", "2", "--port", "3"), 0);
    CHECK_EQ_INT(c.server.port, 3);
    pl_config_free(&c);
    clear_parley_env();

    /* bounds are inclusive */
    CHECK_EQ_INT(LOAD(&c, "--port=0", "--server.node_id=31", "--redis.port=65535"), 0);
    CHECK_EQ_INT(c.server.port, 0);
    CHECK_EQ_INT(c.node_id, 31);
    CHECK_EQ_INT(c.redis_port, 65535);
    pl_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--port=65535", "--limits.stream_window_bytes=2147483647"), 0);
    CHECK_EQ_INT(c.server.port, 65535);
    CHECK_EQ_INT(c.server.initial_window, 2147483647);
    pl_config_free(&c);
}

static void test_list_limit(void)
{
    char many[65 * 4 + 1] = "";
    for (int i = 0; i < 65; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "s%d;", i % 10);
    pl_config_t c;
    /* exactly 64 are fine */
    char sixty_four[64 * 3 + 1] = "";
    for (int i = 0; i < 64; i++)
        strcat(sixty_four, "s;");
    setenv("PARLEY_POSTGRES_SERVER", sixty_four, 1);
    CHECK_EQ_INT(LOAD0(&c), 0);
    CHECK_EQ_INT(c.pg_server_count, 64);
    pl_config_free(&c);
    setenv("PARLEY_POSTGRES_SERVER", many, 1);
    CHECK_ERR(LOAD0(&c), "[postgres] server", "PARLEY_POSTGRES_SERVER", "more than 64");
    pl_config_free(&c);
    clear_parley_env();
    /* empty items are skipped */
    CHECK_EQ_INT(LOAD(&c, "--postgres.server=;;a;; ;b;"), 0);
    CHECK_EQ_INT(c.pg_server_count, 2);
    CHECK_EQ_STR(c.pg_servers[0], "a");
    CHECK_EQ_STR(c.pg_servers[1], "b");
    pl_config_free(&c);
}

static void test_unknown_keys(void)
{
    pl_config_t c;
    const char *path = write_file("typo.ini", "[server]\nport = 8000\nprot = 1\n");
    CHECK_ERR(LOAD(&c, "--config", path), "unknown key", "[server] prot", path);
    pl_config_free(&c);
    path = write_file("section.ini", "[bogus]\nx = 1\n");
    CHECK_ERR(LOAD(&c, "--config", path), "unknown key", "[bogus] x", path);
    pl_config_free(&c);
    /* a key before any section */
    path = write_file("nosection.ini", "port = 1\n");
    CHECK_ERR(LOAD(&c, "--config", path), "unknown key", "port", path);
    pl_config_free(&c);
    /* a syntax error names the file and line */
    path = write_file("syntax.ini", "[server]\nport = 1\n[server\n");
    CHECK_ERR(LOAD(&c, "--config", path), path, ":3:", "syntax");
    pl_config_free(&c);
    /* a missing file */
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.ini", tmpdir);
    CHECK_ERR(LOAD(&c, "--config", missing), "cannot open", missing);
    pl_config_free(&c);
}

static void test_bad_values(void)
{
    pl_config_t c;
    const char *path = write_file("bad.ini", "[server]\nport = abc\n");
    CHECK_ERR(LOAD(&c, "--config", path), "[server] port", "'abc'", path, "0..65535");
    pl_config_free(&c);
    path = write_file("range.ini", "[server]\nport = 70000\n");
    CHECK_ERR(LOAD(&c, "--config", path), "[server] port", "70000", path);
    pl_config_free(&c);
    path = write_file("empty_int.ini", "[postgres]\nshards =\n");
    CHECK_ERR(LOAD(&c, "--config", path), "[postgres] shards", path);
    pl_config_free(&c);

    setenv("PARLEY_SERVER_WORKERS", "-1", 1);
    CHECK_ERR(LOAD0(&c), "[server] workers", "'-1'", "environment PARLEY_SERVER_WORKERS");
    pl_config_free(&c);
    clear_parley_env();
    setenv("PARLEY_REDIS_PORT", "0", 1);
    CHECK_ERR(LOAD0(&c), "[redis] port", "PARLEY_REDIS_PORT", "1..65535");
    pl_config_free(&c);
    clear_parley_env();

    CHECK_ERR(LOAD(&c, "--port=1x"), "[server] port", "'1x'", "flag --port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--port="), "[server] port", "flag --port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--port=0x10"), "[server] port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--port=1.5"), "[server] port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--port=-1"), "[server] port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--server.node_id=32"), "[server] node_id", "0..31");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--limits.keepalive_time_ms=99999999999999999999"), "[limits] keepalive_time_ms");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--limits.keepalive_time_ms=2147483648"), "[limits] keepalive_time_ms");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--limits.group_max_members=1"), "[limits] group_max_members", "2..1024");
    pl_config_free(&c);
    /* a bad value in a weaker source fails even if a stronger one would set it */
    setenv("PARLEY_SERVER_PORT", "nope", 1);
    CHECK_ERR(LOAD(&c, "--port=1"), "[server] port", "PARLEY_SERVER_PORT");
    pl_config_free(&c);
    clear_parley_env();
}

static void test_unknown_flags(void)
{
    pl_config_t c;
    CHECK_ERR(LOAD(&c, "--bogus"), "unknown flag --bogus");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--bogus=1"), "unknown flag --bogus");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--server.bogus=1"), "unknown flag --server.bogus");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--bogus.port=1"), "unknown flag --bogus.port");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "-x"), "unknown flag -x");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "-p", "1"), "unknown flag -p");
    pl_config_free(&c);
    /* aliases are not section keys: --server.node-id is not a flag */
    CHECK_ERR(LOAD(&c, "--server.node-id=1"), "unknown flag");
    pl_config_free(&c);
    /* a flag at the end without its value */
    CHECK_ERR(LOAD(&c, "--port"), "--port", "needs a value");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--server.host"), "--server.host", "needs a value");
    pl_config_free(&c);
    /* --config without its file is a mistake too, not "no file" */
    CHECK_ERR(LOAD(&c, "--config"), "--config");
    pl_config_free(&c);
}

static void test_help(void)
{
    pl_config_t c;
    int rc;
    char *out = load_capturing_stdout(&c, (const char *const[]){"--help", NULL}, &rc);
    CHECK_EQ_INT(rc, 1);
    CHECK(out != NULL);
    if (out) {
        CHECK(strncmp(out, "usage: parleyd [options]\n", 25) == 0);
        CHECK(strstr(out, "--server.port, --port") != NULL);
        CHECK(strstr(out, "--server.node_id, --node-id") != NULL);
        CHECK(strstr(out, "--postgres.server ") != NULL);
        CHECK(strstr(out, "[limits]\n") != NULL);
        CHECK(strstr(out, "(default 7443)") != NULL);
        CHECK(strstr(out, "--redis.timeout_ms") != NULL);
    }
    free(out);
    pl_config_free(&c);

    /* -h; --help wins over a bad flag and a bad file anywhere on the line */
    out = load_capturing_stdout(&c, (const char *const[]){"-h", NULL}, &rc);
    CHECK_EQ_INT(rc, 1);
    free(out);
    pl_config_free(&c);
    out = load_capturing_stdout(&c, (const char *const[]){"--bogus", "--config", "/nonexistent", "--help", NULL}, &rc);
    CHECK_EQ_INT(rc, 1);
    CHECK(out && strstr(out, "usage: parleyd") != NULL);
    free(out);
    pl_config_free(&c);

    /* after "--" it is just an argument */
    out = load_capturing_stdout(&c, (const char *const[]){"--", "--help", NULL}, &rc);
    CHECK_EQ_INT(rc, 0);
    CHECK(out && out[0] == '\0');
    CHECK_EQ_INT(c.arg_count, 1);
    if (c.arg_count == 1)
        CHECK_EQ_STR(c.args[0], "--help");
    free(out);
    pl_config_free(&c);

    /* pl_config_print_help itself */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(f != NULL);
    if (f) {
        pl_config_print_help(f, "U");
        fclose(f);
        CHECK(strncmp(buf, "U\n", 2) == 0);
        CHECK(strstr(buf, "--workers") != NULL);
        free(buf);
    }
}

static void test_positional(void)
{
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "serve", "-", "--port", "1234", "extra", "--", "--workers=3", "-x", "--port"), 0);
    CHECK_EQ_INT(c.server.port, 1234);
    CHECK_EQ_INT(c.server.workers, 0);
    CHECK_EQ_INT(c.arg_count, 6);
    if (c.arg_count == 6) {
        CHECK_EQ_STR(c.args[0], "serve");
        CHECK_EQ_STR(c.args[1], "-");
        CHECK_EQ_STR(c.args[2], "extra");
        CHECK_EQ_STR(c.args[3], "--workers=3");
        CHECK_EQ_STR(c.args[4], "-x");
        CHECK_EQ_STR(c.args[5], "--port");
    }
    CHECK(c.args[c.arg_count] == NULL);
    pl_config_free(&c);
    /* a flag's value is never positional, even when it looks like one */
    CHECK_EQ_INT(LOAD(&c, "--server.host", "example", "status"), 0);
    CHECK_EQ_STR(c.server.host, "example");
    CHECK_EQ_INT(c.arg_count, 1);
    if (c.arg_count == 1)
        CHECK_EQ_STR(c.args[0], "status");
    pl_config_free(&c);
}

static void test_tls_pair(void)
{
    pl_config_t c;
    CHECK_ERR(LOAD(&c, "--tls-cert=cert.pem"), "tls_cert", "tls_key");
    pl_config_free(&c);
    CHECK_ERR(LOAD(&c, "--server.tls_key=key.pem"), "tls_cert", "tls_key");
    pl_config_free(&c);
    setenv("PARLEY_SERVER_TLS_CERT", "cert.pem", 1);
    CHECK_ERR(LOAD0(&c), "tls_cert", "tls_key");
    pl_config_free(&c);
    CHECK_EQ_INT(LOAD(&c, "--tls-key", "key.pem"), 0);
    CHECK_EQ_STR(c.server.tls_cert_file, "cert.pem");
    CHECK_EQ_STR(c.server.tls_key_file, "key.pem");
    pl_config_free(&c);
    clear_parley_env();
    /* a stronger source can also clear both */
    const char *path = write_file("tls.ini", "[server]\ntls_cert = a\ntls_key = b\n");
    CHECK_EQ_INT(LOAD(&c, "--config", path, "--tls-cert=", "--tls-key="), 0);
    CHECK_EQ_STR(c.server.tls_cert_file, "");
    CHECK_EQ_STR(c.server.tls_key_file, "");
    pl_config_free(&c);
}

static void test_dump(void)
{
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--port=1234", "--redis.password=hunter2", "--postgres.server=host=a;host=b"), 0);
    char *d = dump(&c);
    CHECK(d != NULL);
    if (d) {
        static const char head[] = "[server]\nhost = 127.0.0.1\nport = 1234\nworkers = 0\n";
        CHECK(strncmp(d, head, sizeof(head) - 1) == 0);
        CHECK(strstr(d, "\n[redis]\n") != NULL);
        CHECK(strstr(d, "\npassword = ********\n") != NULL);
        CHECK(strstr(d, "hunter2") == NULL);
        CHECK(strstr(d, "\nserver = host=a\nserver = host=b\n") != NULL);
        CHECK(strstr(d, "\nshards = 256\n") != NULL);
        CHECK(strstr(d, "\n[limits]\nmax_recv_bytes = 4194304\n") != NULL);
    }
    free(d);
    pl_config_free(&c);

    /* an empty password is shown as empty, not as a mask */
    CHECK_EQ_INT(LOAD0(&c), 0);
    d = dump(&c);
    CHECK(d && strstr(d, "\npassword = \n") != NULL);
    free(d);
    pl_config_free(&c);

    /* A PostgreSQL password inside a server's conninfo or URI is as secret
     * as the Redis one. */
    CHECK_EQ_INT(LOAD(&c, "--postgres.server=host=a password=s3cret-kv;postgresql://u:s3cret-uri@h/db;host=b"), 0);
    CHECK_EQ_INT(c.pg_server_count, 3);
    d = dump(&c);
    CHECK(d != NULL);
    if (d) {
        CHECK(strstr(d, "s3cret-kv") == NULL);
        CHECK(strstr(d, "s3cret-uri") == NULL);
        CHECK(strstr(d, "\nserver = host=b\n") != NULL); /* no secret: shown as is */
    }
    free(d);
    pl_config_free(&c);
}

/* The dump reads back as a configuration file with the same values. */
static void test_dump_round_trip(void)
{
    pl_config_t c;
    CHECK_EQ_INT(LOAD(&c, "--port=1234", "--workers=4", "--server.host=::1", "--postgres.shards=64",
                      "--postgres.server=host=a dbname=x;host=b", "--postgres.shard_map=0-31=0,32-63=1",
                      "--sms.file=/tmp/x.log", "--limits.retention_days=7"),
                 0);
    char *d1 = dump(&c);
    pl_config_free(&c);
    CHECK(d1 != NULL);
    if (!d1)
        return;
    const char *path = write_file("dumped.ini", d1);
    CHECK_EQ_INT(LOAD(&c, "--config", path), 0);
    CHECK_EQ_INT(c.server.port, 1234);
    CHECK_EQ_INT(c.pg_server_count, 2);
    char *d2 = dump(&c);
    CHECK(d2 && strcmp(d1, d2) == 0);
    free(d1);
    free(d2);
    pl_config_free(&c);
}

int main(void)
{
    clear_parley_env();
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/parley_test_config_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_file();
    test_file_list_across_sections();
    test_env_overrides_file();
    test_flags_override_env();
    test_list_limit();
    test_unknown_keys();
    test_bad_values();
    test_unknown_flags();
    test_help();
    test_positional();
    test_tls_pair();
    test_dump();
    test_dump_round_trip();
    /* clean up the files written */
    static const char *const names[] = {"main.ini",      "other.ini",     "empty.ini",  "list.ini", "typo.ini",
                                        "section.ini",   "nosection.ini", "syntax.ini", "bad.ini",  "range.ini",
                                        "empty_int.ini", "tls.ini",       "dumped.ini"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return pl_test_report();
}
