/* accounts_check.c — do these accounts exist, and has any of them blocked
 * the caller? Accounts and their blocks live on each account's shard: one
 * query per shard with the shard's ids as an array. */
#include <stdlib.h>
#include <string.h>

#include "chats/chats_internal.h"

static size_t find(const pl_chats_check_t *c, int64_t id)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n && c->ids[lo] == id ? lo : c->n;
}

static void on_rows(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)arg;
    pl_chats_check_t *c = &op->check;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t k = find(c, pl_pg_get_int64(res, i, 0));
        if (k < c->n) {
            c->exists[k] = true;
            c->blocks[k] = pl_pg_get_bool(res, i, 1);
        }
    }
}

static void on_checked(pl_chats_op_t *op)
{
    pl_chats_check_t *c = &op->check;
    pl_chats_step_fn next = op->check_next;
    for (size_t i = 0; i < c->n; i++)
        if (!c->exists[i]) {
            pl_chats_fail(op, PL_CODE_NOT_FOUND, "account %lld does not exist", (long long)c->ids[i]);
            return;
        }
    for (size_t i = 0; i < c->n; i++)
        if (c->blocks[i]) {
            pl_chats_fail(op, PL_CODE_PERMISSION_DENIED, "an account you asked for does not accept this from you");
            return;
        }
    next(op);
}

void pl_chats_check_accounts(pl_chats_op_t *op, const int64_t *ids, size_t n, int64_t who, pl_chats_step_fn next)
{
    pl_chats_check_t *c = &op->check;
    free(c->ids);
    free(c->exists);
    free(c->blocks);
    memset(c, 0, sizeof(*c));
    if (n == 0) {
        next(op);
        return;
    }
    c->ids = malloc(n * sizeof(*c->ids));
    c->exists = calloc(n, sizeof(*c->exists));
    c->blocks = calloc(n, sizeof(*c->blocks));
    if (!c->ids || !c->exists || !c->blocks) {
        pl_chats_fail(op, PL_CODE_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    memcpy(c->ids, ids, n * sizeof(*ids));
    c->n = pl_ids_sort_unique(c->ids, n);
    uint8_t who_buf[8];
    pl_pg_param_t p = pl_pg_int8(who_buf, who);
    pl_scatter_t sc = {
        .stmt = ST_ACCOUNTS_CHECK, .params = &p, .nparams = 1, .flags = PL_PG_IDEMPOTENT, .ids = c->ids, .n = c->n};
    pl_chats_scatter(op, &sc, on_rows, "account check");
    op->check_next = next;
    pl_chats_then(op, on_checked);
}
