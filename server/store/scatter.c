/* scatter.c — the keys are grouped by shard with a counting sort, and each
 * shard's array literal is written in turn into one scratch buffer
 * (pl_pg_exec copies parameters). One allocation per scatter: the record
 * that counts the answers, which also holds the scratch when the keys are
 * too many for the stack's. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/errors.h"
#include "store/ids.h"
#include "store/scatter.h"

#define ID_TEXT_MAX 22     /* "-9223372036854775808", a comma, a NUL */
#define STACK_SCRATCH 4096 /* bytes: the scratch of ~140 ids, on the stack */

typedef struct gather {
    pl_pg_done_fn fn;
    void *user;
    int pending;   /* shards yet to answer */
    bool is_short; /* a shard could not be queued */
    bool is_told;  /* the end was told: user is not touched again */
} gather_t;

static void on_shard(const pl_pg_result_t *r, void *arg)
{
    static const pl_pg_result_t end = {PL_CODE_OK, "", "", NULL},
                                not_queued = {PL_CODE_UNAVAILABLE, "", "a shard's query could not be queued", NULL};
    gather_t *g = arg;
    const pl_pg_result_t *failed = r->code != PL_CODE_OK ? r : g->is_short ? &not_queued : NULL;
    if (!g->is_told && !failed)
        g->fn(r, g->user);
    if (!g->is_told && (failed || g->pending == 1)) {
        g->is_told = true;
        g->fn(failed ? failed : &end, g->user);
    }
    if (--g->pending == 0)
        free(g);
}

static int key_shard(const pl_scatter_t *sc, size_t i, int shards)
{
    return sc->ids ? pl_id_shard(sc->ids[i]) : pl_shard_for_key(sc->texts[i], strlen(sc->texts[i]), shards);
}

/* Writes key i as an array element at out; returns its length. */
static size_t put_key(const pl_scatter_t *sc, size_t i, char *out)
{
    if (sc->ids)
        return (size_t)snprintf(out, ID_TEXT_MAX, "%" PRId64, sc->ids[i]);
    char *o = out;
    *o++ = '"';
    for (const char *c = sc->texts[i]; *c; *o++ = *c++)
        if (*c == '"' || *c == '\\')
            *o++ = '\\';
    *o++ = '"';
    return (size_t)(o - out);
}

int pl_store_scatter(pl_store_t *st, const pl_scatter_t *sc, int64_t deadline_usec, pl_pg_done_fn fn, void *user)
{
    int shards = pl_store_map(st)->shards;
    if (sc->n == 0 || sc->n > INT_MAX || !sc->ids == !sc->texts || sc->nparams < 0 ||
        sc->nparams >= PL_SCATTER_MAX_PARAMS || sc->array_at < 0 || sc->array_at > sc->nparams)
        return PL_ERR_INVALID;
    /* order[], each key's shard, then the text of all keys */
    size_t room = sc->n * (sizeof(uint32_t) + sizeof(uint16_t)) + 3;
    for (size_t i = 0; i < sc->n; i++)
        room += sc->ids ? ID_TEXT_MAX : 2 * strlen(sc->texts[i]) + 4; /* quotes, escapes, comma */
    uint32_t stack[STACK_SCRATCH / sizeof(uint32_t)];
    bool is_small = room <= sizeof(stack);
    gather_t *g = malloc(sizeof(*g) + (is_small ? 0 : room)); /* many keys: the scratch after it */
    if (!g)
        return PL_ERR_NOMEM;
    *g = (gather_t){.fn = fn, .user = user};
    uint32_t *order = is_small ? stack : (uint32_t *)(g + 1);
    uint16_t *shard_of = (uint16_t *)(order + sc->n);
    char *text = (char *)(shard_of + sc->n);
    /* end[s + 1]: how many keys shard s has; then where they end in order[] */
    int end[PL_ID_MAX_SHARDS + 1] = {0};
    for (size_t i = 0; i < sc->n; i++) {
        int s = key_shard(sc, i, shards);
        if (s >= shards) {
            free(g);
            return PL_ERR_INVALID;
        }
        shard_of[i] = (uint16_t)s;
        end[s + 1]++;
    }
    for (int s = 0; s < shards; s++)
        end[s + 1] += end[s];
    for (size_t i = 0; i < sc->n; i++)
        order[end[shard_of[i]]++] = (uint32_t)i; /* end[s]: from s's start to its end */

    pl_pg_param_t p[PL_SCATTER_MAX_PARAMS];
    for (int i = 0, k = 0; i <= sc->nparams; i++)
        if (i != sc->array_at)
            p[i] = sc->params[k++];
    int rc = 0;
    for (int s = 0, from = 0; s < shards && rc == 0; from = end[s++]) {
        if (from == end[s])
            continue;
        size_t len = 0;
        text[len++] = '{';
        for (int k = from; k < end[s]; k++) {
            if (k > from)
                text[len++] = ',';
            len += put_key(sc, order[k], text + len);
        }
        text[len++] = '}';
        text[len] = '\0';
        p[sc->array_at] = pl_pg_text(text);
        if ((rc = pl_store_exec(st, sc->stmt, s, p, sc->nparams + 1, sc->flags, deadline_usec, on_shard, g)) == 0)
            g->pending++;
    }
    g->is_short = rc != 0;
    if (g->pending > 0)
        return 0;
    free(g);
    return rc;
}
