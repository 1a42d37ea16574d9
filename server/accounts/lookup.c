/* lookup.c — GetDevices and LookupPhones: batch reads across shards.
 *
 * Both take up to [limits] lookup_batch_max items, cost that many tokens
 * from the caller's lookup bucket ([rate] lookups_per_minute; over it:
 * RESOURCE_EXHAUSTED "... retry after N ms"; Redis unreachable: allowed,
 * with a warning — lookups are cheap reads, and messaging must not stop
 * with Redis), group the items by shard and send one query per shard, all
 * at once. The reply goes when the last shard has answered; any failed
 * shard fails the call. Unknown accounts and numbers are left out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts_internal.h"

/* ---- GetDevices ---- */

typedef struct get_devices {
    pl_acct_req_t base;
    int64_t ids[PL_ACCT_MAX_COUNT(parley_v1_GetDevicesRequest, account_ids)];
    size_t n;
    parley_v1_GetDevicesResponse resp;
} get_devices_t;

static int by_account(const void *a, const void *b)
{
    int64_t x = ((const parley_v1_AccountDevices *)a)->account_id,
            y = ((const parley_v1_AccountDevices *)b)->account_id;
    return (x > y) - (x < y);
}

static void on_devices(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    get_devices_t *g = op->state;
    parley_v1_GetDevicesResponse *resp = &g->resp;
    parley_v1_AccountDevices *cur = NULL;
    for (int i = 0; i < PQntuples(res->res); i++) {
        int64_t account = pl_pg_get_int64(res->res, i, 0);
        if (!cur || cur->account_id != account) {
            if (resp->accounts_count >= sizeof(resp->accounts) / sizeof(resp->accounts[0]))
                break;
            cur = &resp->accounts[resp->accounts_count++];
            cur->account_id = account;
        }
        if (!PQgetisnull(res->res, i, 1) && cur->device_ids_count < PL_ACCT_DEVICE_IDS_MAX)
            cur->device_ids[cur->device_ids_count++] = pl_pg_get_int64(res->res, i, 1);
    }
}

static void reply_devices(pl_op_t *op)
{
    get_devices_t *g = op->state;
    qsort(g->resp.accounts, g->resp.accounts_count, sizeof(g->resp.accounts[0]), by_account);
    parley_v1_Accounts_GetDevices_reply(op->call, &g->resp);
}

static void on_get_devices_rate(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    get_devices_t *g = op->state;
    if (pl_acct_lookup_allowed(op, code, message, rate) && g->n > 0)
        pl_acct_query_shards(op, ST_CURRENT_DEVICES, g->ids, NULL, g->n, on_devices, "get devices");
}

static void get_devices(pl_op_t *op)
{
    get_devices_t *g = op->state;
    const parley_v1_GetDevicesRequest *req = g->base.msg;
    for (pb_size_t i = 0; i < req->account_ids_count; i++)
        if (pl_acct_id_is_routable(g->base.svc, req->account_ids[i]))
            g->ids[g->n++] = req->account_ids[i];
    g->n = pl_ids_sort_unique(g->ids, g->n);
    pl_acct_take_lookups(op, req->account_ids_count, on_get_devices_rate);
    pl_op_then(op, reply_devices);
}

void pl_acct_get_devices(pl_call_t *call, const parley_v1_GetDevicesRequest *req, void *svc)
{
    if (pl_acct_refuse_ids(call, svc, req->account_ids, req->account_ids_count))
        return;
    pl_acct_authenticate(call, svc, req, sizeof(get_devices_t), get_devices);
}

/* ---- LookupPhones ---- */

typedef struct lookup_phones {
    pl_acct_req_t base;
    const char *phones[PL_ACCT_MAX_COUNT(parley_v1_LookupPhonesRequest, phone_numbers)]; /* into the request */
    size_t n;
    parley_v1_LookupPhonesResponse resp;
} lookup_phones_t;

static int by_phone(const void *a, const void *b)
{
    return strcmp(((const parley_v1_PhoneMatch *)a)->phone_number, ((const parley_v1_PhoneMatch *)b)->phone_number);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void on_phones(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    lookup_phones_t *l = op->state;
    parley_v1_LookupPhonesResponse *resp = &l->resp;
    int rows = PQntuples(res->res);
    for (int i = 0; i < rows && resp->matches_count < sizeof(resp->matches) / sizeof(resp->matches[0]); i++) {
        parley_v1_PhoneMatch *m = &resp->matches[resp->matches_count++];
        pl_acct_copy_text(m->phone_number, sizeof(m->phone_number), PQgetvalue(res->res, i, 0),
                          (size_t)PQgetlength(res->res, i, 0));
        m->account_id = pl_pg_get_int64(res->res, i, 1);
    }
}

static void reply_phones(pl_op_t *op)
{
    lookup_phones_t *l = op->state;
    qsort(l->resp.matches, l->resp.matches_count, sizeof(l->resp.matches[0]), by_phone);
    parley_v1_Accounts_LookupPhones_reply(op->call, &l->resp);
}

static void on_lookup_rate(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    lookup_phones_t *l = op->state;
    if (pl_acct_lookup_allowed(op, code, message, rate) && l->n > 0)
        pl_acct_query_shards(op, ST_LOOKUP_PHONES, NULL, l->phones, l->n, on_phones, "lookup phones");
}

static void lookup_phones(pl_op_t *op)
{
    lookup_phones_t *l = op->state;
    const parley_v1_LookupPhonesRequest *req = l->base.msg;
    for (pb_size_t i = 0; i < req->phone_numbers_count; i++)
        l->phones[l->n++] = req->phone_numbers[i];
    qsort(l->phones, l->n, sizeof(l->phones[0]), by_string);
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        if (k == 0 || strcmp(l->phones[i], l->phones[k - 1]) != 0)
            l->phones[k++] = l->phones[i];
    l->n = k;
    pl_acct_take_lookups(op, req->phone_numbers_count, on_lookup_rate);
    pl_op_then(op, reply_phones);
}

void pl_acct_lookup_phones(pl_call_t *call, const parley_v1_LookupPhonesRequest *req, void *svc)
{
    const pl_accounts_t *s = svc;
    if ((int)req->phone_numbers_count > s->app->cfg->lookup_batch_max) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "at most %d phone_numbers per call",
                      s->app->cfg->lookup_batch_max);
        return;
    }
    for (pb_size_t i = 0; i < req->phone_numbers_count; i++) {
        if (!pl_acct_phone_is_valid(req->phone_numbers[i])) {
            pl_call_failf(call, PL_CODE_INVALID_ARGUMENT,
                          "phone_numbers[%u] is not E.164 (\"+\" and 8 to 15 digits, the first not 0)", (unsigned)i);
            return;
        }
    }
    pl_acct_authenticate(call, svc, req, sizeof(lookup_phones_t), lookup_phones);
}
