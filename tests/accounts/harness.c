/* harness.c — helpers of the accounts integration cases (harness.h). */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/shardmap.h"

static pl_channel_t *shared;

pl_channel_t *h_connect(void)
{
    const char *addr = getenv("PARLEY_ADDR");
    if (!addr || !strchr(addr, ':')) {
        printf("PARLEY_ADDR (host:port) is not set: run under tests/harness/with_parleyd.py\n");
        exit(2);
    }
    char host[128];
    const char *colon = strrchr(addr, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    pl_channel_opts_t o = {0};
    o.host = host;
    o.port = (uint16_t)atoi(colon + 1);
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    if (!ch) {
        printf("connect %s: %s\n", addr, err);
        exit(1);
    }
    return ch;
}

pl_channel_t *h_channel(void)
{
    if (!shared)
        shared = h_connect();
    return shared;
}

void h_close(void)
{
    if (shared)
        pl_channel_free(shared);
    shared = NULL;
}

pl_call_opts_t h_opts(const device_t *d)
{
    pl_call_opts_t o = {10000, d ? &d->md : NULL, false};
    return o;
}

void h_outcome(outcome_t *o, pl_code_t code, pl_status_t *st)
{
    o->code = code;
    snprintf(o->message, sizeof(o->message), "%s", st->message ? st->message : "");
    pl_status_reset(st);
}

outcome_t h_request_code(const char *phone, parley_v1_RequestCodeResponse *resp)
{
    parley_v1_RequestCodeRequest req = {0};
    parley_v1_RequestCodeResponse local = {0};
    snprintf(req.phone_number, sizeof(req.phone_number), "%s", phone);
    pl_call_opts_t o = h_opts(NULL);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_RequestCode(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

static char *read_sms_file(void)
{
    const char *path = getenv("PARLEY_SMS_FILE");
    if (!path)
        return NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *more = realloc(buf, cap * 2);
            if (!more) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = more;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

bool h_sms_code(const char *phone, char code[7])
{
    char *text = read_sms_file();
    if (!text)
        return false;
    bool found = false;
    size_t plen = strlen(phone);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, phone, plen) == 0 && line[plen] == ' ' && strlen(line + plen + 1) == 6) {
            memcpy(code, line + plen + 1, 7);
            found = true;
        }
    }
    free(text);
    return found;
}

int h_sms_lines(void)
{
    char *text = read_sms_file();
    if (!text)
        return 0;
    int n = 0;
    for (char *p = text; *p; p++)
        n += *p == '\n';
    free(text);
    return n;
}

outcome_t h_verify(const char *phone, const char *code, const char *name, parley_v1_VerifyResponse *resp)
{
    parley_v1_VerifyRequest req = {0};
    parley_v1_VerifyResponse local = {0};
    snprintf(req.phone_number, sizeof(req.phone_number), "%s", phone);
    snprintf(req.code, sizeof(req.code), "%s", code);
    snprintf(req.device_name, sizeof(req.device_name), "%s", name);
    pl_call_opts_t o = h_opts(NULL);
    pl_status_t st = {0};
    outcome_t out;
    h_outcome(&out, parley_v1_Accounts_Verify(h_channel(), &o, &req, resp ? resp : &local, &st), &st);
    return out;
}

int h_register(device_t *d, const char *phone, const char *name)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->phone, sizeof(d->phone), "%s", phone);
    outcome_t o = h_request_code(phone, NULL);
    if (o.code != PL_CODE_OK) {
        printf("register %s: RequestCode: %s: %s\n", phone, pl_code_name(o.code), o.message);
        return -1;
    }
    char code[7];
    if (!h_sms_code(phone, code)) {
        printf("register %s: no code in the SMS file\n", phone);
        return -1;
    }
    parley_v1_VerifyResponse resp = {0};
    o = h_verify(phone, code, name, &resp);
    if (o.code != PL_CODE_OK) {
        printf("register %s: Verify: %s: %s\n", phone, pl_code_name(o.code), o.message);
        return -1;
    }
    d->account_id = resp.account_id;
    d->device_id = resp.device_id;
    d->is_new_account = resp.new_account;
    snprintf(d->token, sizeof(d->token), "%s", resp.token);
    char bearer[96];
    snprintf(bearer, sizeof(bearer), "Bearer %s", d->token);
    pl_metadata_init(&d->md, 8192);
    if (pl_metadata_add(&d->md, "authorization", bearer, strlen(bearer)) != 0) {
        printf("register %s: cannot build metadata\n", phone);
        return -1;
    }
    return 0;
}

void h_device_dispose(device_t *d)
{
    pl_metadata_dispose(&d->md);
}

int h_shards(void)
{
    const char *s = getenv("PARLEY_POSTGRES_SHARDS");
    return s ? atoi(s) : 16;
}

int h_phone_shard(const char *phone)
{
    return pl_shard_for_key(phone, strlen(phone), h_shards());
}

/* The conninfo of physical server i of PARLEY_POSTGRES_SERVER ("a;b"), and how many there are. */
static int server_conninfo(int i, char *out, size_t len)
{
    const char *all = getenv("PARLEY_POSTGRES_SERVER");
    if (!all)
        return 0;
    int count = 0;
    const char *p = all;
    for (;;) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (count == i && out)
            snprintf(out, len, "%.*s", (int)n, p);
        count++;
        if (!end)
            break;
        p = end + 1;
    }
    return count;
}

PGresult *h_sql(int shard, const char *sql, int nparams, const char *const *params)
{
    int servers = server_conninfo(0, NULL, 0);
    if (servers < 1) {
        printf("PARLEY_POSTGRES_SERVER is not set\n");
        return NULL;
    }
    pl_shardmap_t map;
    char err[256];
    if (pl_shardmap_init(&map, h_shards(), servers, getenv("PARLEY_POSTGRES_SHARD_MAP"), err, sizeof(err)) != 0) {
        printf("shard map: %s\n", err);
        return NULL;
    }
    char conninfo[512];
    server_conninfo(pl_shardmap_server(&map, shard), conninfo, sizeof(conninfo));
    pl_shardmap_dispose(&map);

    char schema[PL_SHARD_SCHEMA_LEN], text[2048];
    pl_shard_schema(shard, schema);
    size_t n = 0;
    for (const char *p = sql; *p && n + 32 < sizeof(text); p++) {
        if (p[0] == '{' && p[1] == 's' && p[2] == '}') {
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", schema);
            p += 2;
        } else {
            text[n++] = *p;
        }
    }
    text[n] = '\0';

    PGconn *conn = PQconnectdb(conninfo);
    if (PQstatus(conn) != CONNECTION_OK) {
        printf("sql: connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    PGresult *res = PQexecParams(conn, text, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        printf("sql: %s: %s", text, PQresultErrorMessage(res));
        PQclear(res);
        res = NULL;
    }
    PQfinish(conn);
    return res;
}

long long h_retry_after(const char *message)
{
    const char *p = strstr(message, "retry after ");
    if (!p)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(p + strlen("retry after "), &end, 10);
    if (errno || end == p + strlen("retry after ") || strncmp(end, " ms", 3) != 0)
        return -1;
    return v;
}

int h_stack(const char *subcommand)
{
    const char *dir = getenv("PARLEY_STACK_DIR");
    if (!dir) {
        printf("PARLEY_STACK_DIR is not set: run under tests/harness/with_stack.sh\n");
        return -1;
    }
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/tools/stack' %s --dir '%s'", PARLEY_SOURCE_DIR, subcommand, dir);
    return system(cmd) == 0 ? 0 : -1;
}
