/* account_chats.c — keeping each account's chat list (account_chats, on
 * the account's shard) in step with the chats' shards. Writes are upserts
 * that apply only when newer than what the row has (membership_seq: the
 * system message that made the change), so retries and writes arriving out
 * of order are harmless; that also makes them safe to resend
 * (PL_PG_IDEMPOTENT) when a connection drops. A row that is already as new
 * is not touched at all (not even locked), so writing what is there writes
 * nothing: the repair (repair.c) relies on that. */
#include <stdlib.h>
#include <string.h>

#include "app/log.h"
#include "chats/chats_internal.h"

static void on_put(pl_chats_op_t *op, const PGresult *res, void *arg)
{
    (void)op, (void)res, (void)arg;
}

int pl_chats_listing_order(const void *a, const void *b)
{
    const pl_chats_listing_t *x = a, *y = b;
    int sx = pl_id_shard(x->account_id), sy = pl_id_shard(y->account_id);
    if (sx != sy)
        return sx - sy;
    if (x->account_id != y->account_id)
        return x->account_id < y->account_id ? -1 : 1;
    return (x->chat_id > y->chat_id) - (x->chat_id < y->chat_id);
}

int pl_chats_listing_arrays(const pl_chats_listing_t *rows, size_t n, char *arr[CHATS_LISTING_COLUMNS])
{
    int64_t *col = malloc((n ? n : 1) * sizeof(*col));
    bool ok = col != NULL;
    for (int c = 0; c < CHATS_LISTING_COLUMNS; c++)
        arr[c] = NULL;
    for (int c = 0; c < CHATS_LISTING_COLUMNS && ok; c++) {
        for (size_t i = 0; i < n; i++) {
            const pl_chats_listing_t *r = &rows[i];
            int64_t v[] = {r->account_id, r->chat_id, r->kind, r->peer, r->joined, r->removed, r->membership_seq};
            col[i] = v[c];
        }
        ok = (arr[c] = pl_pg_int8_array(col, n)) != NULL;
    }
    free(col);
    if (!ok)
        pl_chats_listing_arrays_free(arr);
    return ok ? 0 : -1;
}

void pl_chats_listing_arrays_free(char *arr[CHATS_LISTING_COLUMNS])
{
    for (int c = 0; c < CHATS_LISTING_COLUMNS; c++) {
        free(arr[c]);
        arr[c] = NULL;
    }
}

/* Queues the write of rows[0..n) (all on one account shard). */
static void put_shard(pl_chats_op_t *op, const pl_chats_listing_t *rows, size_t n)
{
    char *arr[CHATS_LISTING_COLUMNS];
    if (pl_chats_listing_arrays(rows, n, arr) != 0) {
        pl_log_error("chats %s: out of memory updating chat lists of chat %lld", op->base->name,
                     (long long)rows[0].chat_id);
        return;
    }
    pl_pg_param_t p[CHATS_LISTING_COLUMNS];
    for (int c = 0; c < CHATS_LISTING_COLUMNS; c++)
        p[c] = pl_pg_text(arr[c]);
    pl_chats_query(op, ST_ACCOUNT_CHATS_PUT, pl_id_shard(rows[0].account_id), p, CHATS_LISTING_COLUMNS,
                   PL_PG_WRITE | PL_PG_IDEMPOTENT, PL_OP_SOFT, on_put, NULL, "update chat list");
    pl_chats_listing_arrays_free(arr);
}

void pl_chats_put_listings(pl_chats_op_t *op, const pl_chats_listing_t *rows, size_t n)
{
    if (n == 0)
        return;
    pl_chats_listing_t *sorted = malloc(n * sizeof(*sorted));
    if (!sorted) {
        pl_log_error("chats %s: out of memory updating chat lists", op->base->name);
        return;
    }
    memcpy(sorted, rows, n * sizeof(*rows));
    qsort(sorted, n, sizeof(*sorted), pl_chats_listing_order);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && pl_id_shard(sorted[j].account_id) == pl_id_shard(sorted[i].account_id))
            j++;
        put_shard(op, sorted + i, j - i);
        i = j;
    }
    free(sorted);
}
