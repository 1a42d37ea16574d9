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

enum { EXISTING, ADD, REMOVE, LIST, NAMES };

static const pl_pg_stmt_t statements[] = {
    [EXISTING] = {"acct_existing_accounts", "SELECT id FROM {s}.accounts WHERE id = ANY($1::bigint[])", true},
    [ADD] = {"acct_add_contacts",
             "WITH ins AS (INSERT INTO {s}.contacts (account_id, contact_id) "
             "SELECT $1::bigint, c FROM unnest($2::bigint[]) AS c ON CONFLICT DO NOTHING RETURNING 1) "
             "SELECT count(*) FROM ins",
             true},
    [REMOVE] = {"acct_remove_contact",
                "DELETE FROM {s}.contacts WHERE account_id = $1::bigint AND contact_id = $2::bigint", true},
    [LIST] = {"acct_list_contacts",
              "SELECT contact_id FROM {s}.contacts WHERE account_id = $1::bigint AND contact_id > $2::bigint "
              "ORDER BY contact_id LIMIT $3::bigint",
              true},
    [NAMES] = {"acct_display_names", "SELECT id, display_name FROM {s}.accounts WHERE id = ANY($1::bigint[])", true},
};

int pl_acct_contacts_init(pl_accounts_t *s)
{
    s->stmt_contacts = pl_app_add_statements(s->app, statements, sizeof(statements) / sizeof(statements[0]));
    return s->stmt_contacts < 0 ? -1 : 0;
}

/* ---- AddContacts ---- */

typedef struct add_contacts {
    pl_acct_req_t base;
    int64_t ids[PL_ACCT_MAX_COUNT(parley_v1_AddContactsRequest, account_ids)]; /* candidates, sorted */
    size_t n;
    int64_t found[PL_ACCT_MAX_COUNT(parley_v1_AddContactsRequest, account_ids)]; /* those that exist */
    size_t nfound;
    char *array; /* found, as one literal */
} add_contacts_t;

static void add_contacts_dispose(pl_acct_req_t *r)
{
    free(((add_contacts_t *)r)->array);
}

static void reply_added(pl_call_t *call, int64_t added)
{
    parley_v1_AddContactsResponse resp = {0};
    resp.added = (int32_t)added;
    parley_v1_Accounts_AddContacts_reply(call, &resp);
}

static void on_added(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    pl_acct_req_t *r = user;
    if (!pl_acct_query_ok(call, res, "accounts: add contacts"))
        return;
    /* contacts-only presence: existing subscriptions look again */
    pl_notify_privacy_changed(r->svc->app, pl_call_worker(call), r->who.account_id);
    reply_added(call, PQntuples(res->res) == 1 ? pl_pg_get_int64(res->res, 0, 0) : 0);
}

static void on_existing(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    add_contacts_t *a = user;
    if (!pl_acct_query_ok(call, res, "accounts: add contacts (existence)"))
        return;
    int rows = res->res ? PQntuples(res->res) : 0;
    for (int i = 0; i < rows && a->nfound < a->n; i++)
        a->found[a->nfound++] = pl_pg_get_int64(res->res, i, 0);
    if (res->res) /* more to come */
        return;
    if (a->nfound == 0) {
        reply_added(call, 0);
        return;
    }
    if (!(a->array = pl_pg_int8_array(a->found, a->nfound))) {
        pl_call_finish(call, PL_CODE_RESOURCE_EXHAUSTED, "server out of memory; retry");
        return;
    }
    uint8_t b[8];
    pl_pg_param_t p[] = {pl_pg_int8(b, a->base.who.account_id), pl_pg_text(a->array)};
    pl_acct_query(call, &a->base, a->base.svc->stmt_contacts + ADD, pl_acct_own_shard(&a->base), p, 2,
                  PL_PG_WRITE | PL_PG_IDEMPOTENT, on_added);
}

static void on_add_rate(pl_call_t *call, pl_acct_req_t *r, pl_code_t code, const pl_cache_rate_t *rate)
{
    add_contacts_t *a = (add_contacts_t *)r;
    const parley_v1_AddContactsRequest *req = r->msg;
    if (!pl_acct_lookup_allowed(call, code, rate))
        return;
    for (pb_size_t i = 0; i < req->account_ids_count; i++) {
        int64_t id = req->account_ids[i];
        if (id != r->who.account_id && pl_acct_id_is_routable(r->svc, id))
            a->ids[a->n++] = id;
    }
    a->n = pl_acct_unique_ids(a->ids, a->n);
    if (a->n == 0) {
        reply_added(call, 0);
        return;
    }
    pl_acct_query_shards(call, r, r->svc->stmt_contacts + EXISTING, a->ids, NULL, a->n, on_existing);
}

static void add_contacts(pl_call_t *call, pl_acct_req_t *r)
{
    const parley_v1_AddContactsRequest *req = r->msg;
    r->dispose = add_contacts_dispose;
    pl_acct_take_lookups(call, r, req->account_ids_count, on_add_rate);
}

void pl_acct_add_contacts(pl_call_t *call, const parley_v1_AddContactsRequest *req, void *svc)
{
    const pl_accounts_t *s = svc;
    if ((int)req->account_ids_count > s->app->cfg->lookup_batch_max) {
        pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "at most %d account_ids per call", s->app->cfg->lookup_batch_max);
        return;
    }
    for (pb_size_t i = 0; i < req->account_ids_count; i++) {
        if (req->account_ids[i] <= 0) {
            pl_call_failf(call, PL_CODE_INVALID_ARGUMENT, "account_ids[%u] must be positive", (unsigned)i);
            return;
        }
    }
    pl_acct_authenticate(call, svc, req, sizeof(add_contacts_t), add_contacts);
}

/* ---- RemoveContact ---- */

static void on_removed(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    pl_acct_req_t *r = user;
    if (!pl_acct_query_ok(call, res, "accounts: remove contact"))
        return;
    pl_notify_privacy_changed(r->svc->app, pl_call_worker(call), r->who.account_id);
    parley_v1_RemoveContactResponse resp = {0};
    parley_v1_Accounts_RemoveContact_reply(call, &resp);
}

static void remove_contact(pl_call_t *call, pl_acct_req_t *r)
{
    const parley_v1_RemoveContactRequest *req = r->msg;
    uint8_t b[2][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], r->who.account_id), pl_pg_int8(b[1], req->account_id)};
    pl_acct_query(call, r, r->svc->stmt_contacts + REMOVE, pl_acct_own_shard(r), p, 2, PL_PG_WRITE | PL_PG_IDEMPOTENT,
                  on_removed);
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

static void on_names(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    list_contacts_t *l = user;
    if (!pl_acct_query_ok(call, res, "accounts: contact names"))
        return;
    parley_v1_ListContactsResponse *resp = &l->resp;
    int rows = res->res ? PQntuples(res->res) : 0;
    for (int i = 0; i < rows; i++) {
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
    if (res->res) /* more to come */
        return;
    parley_v1_Accounts_ListContacts_reply(call, resp);
}

static void on_page(pl_call_t *call, const pl_pg_result_t *res, void *user)
{
    list_contacts_t *l = user;
    if (!pl_acct_query_ok(call, res, "accounts: list contacts"))
        return;
    parley_v1_ListContactsResponse *resp = &l->resp;
    int rows = PQntuples(res->res);
    resp->has_more = rows > l->limit;
    for (int i = 0; i < rows && i < l->limit; i++) {
        l->ids[i] = pl_pg_get_int64(res->res, i, 0);
        resp->contacts[resp->contacts_count++].account_id = l->ids[i];
    }
    if (resp->contacts_count == 0) {
        parley_v1_Accounts_ListContacts_reply(call, resp);
        return;
    }
    pl_acct_query_shards(call, &l->base, l->base.svc->stmt_contacts + NAMES, l->ids, NULL, resp->contacts_count,
                         on_names);
}

static void list_contacts(pl_call_t *call, pl_acct_req_t *r)
{
    list_contacts_t *l = (list_contacts_t *)r;
    const parley_v1_ListContactsRequest *req = r->msg;
    l->limit = pl_acct_page_limit(req->limit, PL_ACCT_CONTACTS_PAGE_MAX);
    uint8_t b[3][8];
    pl_pg_param_t p[] = {pl_pg_int8(b[0], r->who.account_id), pl_pg_int8(b[1], req->after_account_id),
                         pl_pg_int8(b[2], l->limit + 1)};
    pl_acct_query(call, r, r->svc->stmt_contacts + LIST, pl_acct_own_shard(r), p, 3, PL_PG_IDEMPOTENT, on_page);
}

void pl_acct_list_contacts(pl_call_t *call, const parley_v1_ListContactsRequest *req, void *svc)
{
    if (req->limit < 0 || req->after_account_id < 0) {
        pl_call_finish(call, PL_CODE_INVALID_ARGUMENT, "limit and after_account_id must not be negative");
        return;
    }
    pl_acct_authenticate(call, svc, req, sizeof(list_contacts_t), list_contacts);
}
