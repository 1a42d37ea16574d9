/* batch.c — grouping a request's ids or phone numbers by logical shard, as
 * one PostgreSQL array literal per shard, so a batch costs one query per
 * shard it touches rather than one per item. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts/accounts_internal.h"
#include "runtime/errors.h"
#include "store/shardmap.h"

/* Longest element: a 19-digit id, or a quoted 16-character phone; plus a comma. */
#define ELEMENT_MAX 24

/* Builds b from n items whose shards are in shard_of[]; item i's text is
 * written by put(i, buf) (at most ELEMENT_MAX - 1 bytes). */
static int build(pl_acct_batch_t *b, const int *shard_of, size_t n, int shards,
                 int (*put)(const void *items, size_t i, char *buf), const void *items)
{
    memset(b, 0, sizeof(*b));
    int *count = calloc((size_t)shards, sizeof(int));
    int *slot = malloc((size_t)shards * sizeof(int));
    size_t *used = NULL;
    if (!count || !slot)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (count[shard_of[i]]++ == 0)
            b->count++;
    b->shard = calloc((size_t)b->count + 1, sizeof(int));
    b->array = calloc((size_t)b->count + 1, sizeof(char *));
    used = calloc((size_t)b->count + 1, sizeof(size_t));
    if (!b->shard || !b->array || !used)
        goto nomem;
    int k = 0;
    for (int s = 0; s < shards; s++) {
        if (!count[s])
            continue;
        slot[s] = k;
        b->shard[k] = s;
        /* "{", the elements with their commas, "}", NUL */
        b->array[k] = malloc((size_t)count[s] * ELEMENT_MAX + 3);
        if (!b->array[k])
            goto nomem;
        b->array[k][used[k]++] = '{';
        k++;
    }
    for (size_t i = 0; i < n; i++) {
        int j = slot[shard_of[i]];
        if (used[j] > 1)
            b->array[j][used[j]++] = ',';
        used[j] += (size_t)put(items, i, b->array[j] + used[j]);
    }
    for (int j = 0; j < b->count; j++) {
        b->array[j][used[j]++] = '}';
        b->array[j][used[j]] = '\0';
    }
    free(count);
    free(slot);
    free(used);
    return 0;
nomem:
    free(count);
    free(slot);
    free(used);
    pl_acct_batch_dispose(b);
    return PL_ERR_NOMEM;
}

static int put_id(const void *items, size_t i, char *buf)
{
    return snprintf(buf, ELEMENT_MAX, "%" PRId64, ((const int64_t *)items)[i]);
}

static int put_phone(const void *items, size_t i, char *buf)
{
    return snprintf(buf, ELEMENT_MAX, "\"%s\"", ((const char *const *)items)[i]);
}

int pl_acct_batch_ids(pl_acct_batch_t *b, const int64_t *ids, size_t n, int shards)
{
    int *shard_of = malloc((n ? n : 1) * sizeof(int));
    if (!shard_of) {
        memset(b, 0, sizeof(*b));
        return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        shard_of[i] = pl_id_shard(ids[i]);
    int rc = build(b, shard_of, n, shards, put_id, ids);
    free(shard_of);
    return rc;
}

int pl_acct_batch_phones(pl_acct_batch_t *b, const char *const *phones, size_t n, int shards)
{
    int *shard_of = malloc((n ? n : 1) * sizeof(int));
    if (!shard_of) {
        memset(b, 0, sizeof(*b));
        return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        shard_of[i] = pl_shard_for_key(phones[i], strlen(phones[i]), shards);
    int rc = build(b, shard_of, n, shards, put_phone, phones);
    free(shard_of);
    return rc;
}

void pl_acct_batch_dispose(pl_acct_batch_t *b)
{
    if (b->array)
        for (int i = 0; i < b->count; i++)
            free(b->array[i]);
    free(b->array);
    free(b->shard);
    memset(b, 0, sizeof(*b));
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

size_t pl_acct_unique_ids(int64_t *ids, size_t n)
{
    if (n < 2)
        return n;
    qsort(ids, n, sizeof(*ids), cmp_id);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[k - 1])
            ids[k++] = ids[i];
    return k;
}

char *pl_acct_id_array(const int64_t *ids, size_t n)
{
    char *a = malloc(n * ELEMENT_MAX + 3);
    if (!a)
        return NULL;
    size_t used = 0;
    a[used++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            a[used++] = ',';
        used += (size_t)put_id(ids, i, a + used);
    }
    a[used++] = '}';
    a[used] = '\0';
    return a;
}
