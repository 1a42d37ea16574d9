/* harness.c — helpers of the accounts integration cases (harness.h). */
#include "harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "register.h"
#include "shards.h"
#include "sms.h"
#include "store/shardmap.h"

static pl_channel_t *shared;
static pl_test_db_t *db; /* opened by the first h_sql */

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
    pl_test_db_close(db);
    db = NULL;
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

bool h_sms_code(const char *phone, char code[7])
{
    return pl_test_sms_codes(NULL, phone, code, 7) > 0 && strlen(code) == 6;
}

int h_sms_lines(void)
{
    return pl_test_sms_lines(NULL);
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
    pl_test_reg_t reg;
    pl_code_t code = pl_test_register(h_channel(), phone, name, 10000, &reg);
    if (code != PL_CODE_OK) {
        printf("register %s: %s: %s: %s\n", phone, reg.failed_step, pl_code_name(code), reg.message);
        return -1;
    }
    d->account_id = reg.account_id;
    d->device_id = reg.device_id;
    d->is_new_account = reg.is_new_account;
    snprintf(d->token, sizeof(d->token), "%s", reg.token);
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

PGresult *h_sql(int shard, const char *sql, int nparams, const char *const *params)
{
    if (!db) {
        char err[512];
        db = pl_test_db_open(err, sizeof(err));
        if (!db) {
            printf("sql: %s\n", err);
            return NULL;
        }
    }
    return pl_test_sql(db, shard, sql, nparams, params);
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
