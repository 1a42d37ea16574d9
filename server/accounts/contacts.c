/* contacts.c — AddContacts, RemoveContact, ListContacts.
 *
 * An account's contacts live on its shard; the contacts themselves may
 * live anywhere, so AddContacts first asks each of their shards which of
 * them exist (one query per shard, at once) and then stores those in one
 * statement (idempotent: "added" counts only new ones; unknown accounts and
 * the caller are skipped). Because the answer reveals which ids exist, it
 * costs like a lookup (pl_acct_take_lookups). ListContacts pages by account id and fetches the
 * page's display names the same way, one query per shard. */
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts_internal.h"
#include "messaging/notify.h"

/* ---- AddContacts ---- */

typedef struct add_contacts {
    pl_acct_req_t base;
    int64_t ids[PL_ACCT_MAX_COUNT(parley_v1_AddContactsRequest, account_ids)]; /* candidates, sorted */
    size_t n;
    int64_t found[PL_ACCT_MAX_COUNT(parley_v1_AddContactsRequest, account_ids)]; /* those that exist */
    size_t nfound;
    int64_t added;
} add_contacts_t;

static void on_added(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    add_contacts_t *a = op->state;
    a->added = PQntuples(res->res) == 1 ? pl_pg_get_int64(res->res, 0, 0) : 0;
    /* contacts-only presence: existing subscriptions look again */
    pl_notify_privacy_changed(op->app, pl_call_worker(op->call), op->who.account_id);
}

static void on_existing(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    add_contacts_t *a = op->state;
    for (int i = 0; i < PQntuples(res->res) && a->nfound < a->n; i++)
        a->found[a->nfound++] = pl_pg_get_int64(res->res, i, 0);
}

static void reply_added(pl_op_t *op)
{
    add_contacts_t *a = op->state;
    parley_v1_AddContactsResponse resp = {0};
    resp.added = (int32_t)a->added;
    parley_v1_Accounts_AddContacts_reply(op->call, &resp);
}

static void add_found(pl_op_t *op)
{
    add_contacts_t *a = op->state;
    pl_op_then(op, reply_added);
    if (a->nfound == 0)
        return;
    char *array = pl_pg_int8_array(a->found, a->nfound); /* the store copies parameters */
    if (!array) {
        pl_op_fail_nomem(op);
        return;
    }
    uint8_t b[8];
    pl_pg_param_t p[] = {pl_pg_int8(b, op->who.account_id), pl_pg_text(array)};
    pl_acct_query(op, ST_ADD_CONTACTS, pl_acct_own_shard(op), p, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_added,
                  "add contacts");
    free(array);
}

static void on_add_rate(pl_op_t *op, pl_code_t code, const char *message, const pl_cache_rate_t *rate)
{
    add_contacts_t *a = op->state;
    const parley_v1_AddContactsRequest *req = a->base.msg;
    if (!pl_acct_lookup_allowed(op, code, message, rate))
        return;
    for (pb_size_t i = 0; i < req->account_ids_count; i++) {
        int64_t id = req->account_ids[i];
        if (id != op->who.account_id && pl_acct_id_is_routable(a->base.svc, id))
            a->ids[a->n++] = id;
    }
    a->n = pl_ids_sort_unique(a->ids, a->n);
    if (a->n > 0)
        pl_acct_query_shards(op, ST_EXISTING_ACCOUNTS, a->ids, NULL, a->n, on_existing, "add contacts (existence)");
}

static void add_contacts(pl_op_t *op)
{
    const parley_v1_AddContactsRequest *req = pl_acct_msg(op);
    pl_acct_take_lookups(op, req->account_ids_count, on_add_rate);
    pl_op_then(op, add_found);
}

void pl_acct_add_contacts(pl_call_t *call, const parley_v1_AddContactsRequest *req, void *svc)
{
    if (pl_acct_refuse_ids(call, svc, req->account_ids, req->account_ids_count))
        return;
    pl_acct_authenticate(call, svc, req, sizeof(add_contacts_t), add_contacts);
}

/* ---- RemoveContact ---- */

static void on_removed(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)res;
    (void)arg;
    pl_notify_privacy_changed(op->app, pl_call_worker(op->call), op->who.account_id);
    parley_v1_RemoveContactResponse resp = {0};
    parley_v1_Accounts_RemoveContact_reply(op->call, &resp);
}

static void remove_contact(pl_op_t *op)
{
    const parley_v1_RemoveContactRequest *req = pl_acct_msg(op);
    uint8_t b[2][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], op->who.account_id), pl_pg_int8(b[1], req->account_id)};
    pl_acct_query(op, ST_REMOVE_CONTACT, pl_acct_own_shard(op), p, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT, on_removed,
                  "remove contact");
}

void pl_acct_remove_contact(pl_call_t *call, const parley_v1_RemoveContactRequest *req, void *svc)
{
    if (req->account_id <= 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "account_id must be positive");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(pl_acct_req_t), remove_contact);
}

/* ---- ListContacts ---- */

typedef struct list_contacts {
    pl_acct_req_t base;
    int limit;
    int64_t ids[PL_ACCT_CONTACTS_PAGE_MAX];
    parley_v1_ListContactsResponse resp;
} list_contacts_t;

static void on_names(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    parley_v1_ListContactsResponse *resp = &((list_contacts_t *)op->state)->resp;
    for (int i = 0; i < PQntuples(res->res); i++) {
        int64_t id = pl_pg_get_int64(res->res, i, 0);
        /* the page is sorted by account id */
        size_t lo = 0, hi = resp->contacts_count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (resp->contacts[mid].account_id < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < resp->contacts_count && resp->contacts[lo].account_id == id)
            pl_acct_copy_text(resp->contacts[lo].display_name, sizeof(resp->contacts[lo].display_name),
                              PQgetvalue(res->res, i, 1), (size_t)PQgetlength(res->res, i, 1));
    }
}

static void reply_contacts(pl_op_t *op)
{
    parley_v1_Accounts_ListContacts_reply(op->call, &((list_contacts_t *)op->state)->resp);
}

static void on_page(pl_op_t *op, const pl_pg_result_t *res, void *arg)
{
    (void)arg;
    list_contacts_t *l = op->state;
    parley_v1_ListContactsResponse *resp = &l->resp;
    int rows = PQntuples(res->res);
    resp->has_more = rows > l->limit;
    for (int i = 0; i < rows && i < l->limit; i++) {
        l->ids[i] = pl_pg_get_int64(res->res, i, 0);
        resp->contacts[resp->contacts_count++].account_id = l->ids[i];
    }
    if (resp->contacts_count > 0)
        pl_acct_query_shards(op, ST_DISPLAY_NAMES, l->ids, NULL, resp->contacts_count, on_names, "contact names");
}

static void list_contacts(pl_op_t *op)
{
    list_contacts_t *l = op->state;
    const parley_v1_ListContactsRequest *req = l->base.msg;
    l->limit = pl_acct_page_limit(req->limit, PL_ACCT_CONTACTS_PAGE_MAX);
    uint8_t b[3][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], op->who.account_id), pl_pg_int8(b[1], req->after_account_id),
                         pl_pg_int8(b[2], l->limit + 1)};
    pl_acct_query(op, ST_LIST_CONTACTS, pl_acct_own_shard(op), p, 3, PL_PG_IDEMPOTENT, on_page, "list contacts");
    pl_op_then(op, reply_contacts);
}

void pl_acct_list_contacts(pl_call_t *call, const parley_v1_ListContactsRequest *req, void *svc)
{
    if (req->limit < 0 || req->after_account_id < 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "limit and after_account_id must not be negative");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(list_contacts_t), list_contacts);
}
