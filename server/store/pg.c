/* pg.c — the pool side of the asynchronous PostgreSQL layer: operation
 * queues, scheduling onto connections, group commit, retries, deadlines
 * and the one place callbacks run (complete()). See pg.h for the contract
 * and pg_internal.h for how a statement travels. */
#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/errors.h"
#include "store/pg_internal.h"

#define SWEEP_INTERVAL_MS 50
#define MAX_ATTEMPTS 5         /* serialization failures and lost connections */
#define WATCHDOG_SLACK_MS 5000 /* past statement_timeout, an unanswered segment means a dead link */

void pg_queue_push(pg_queue_t *q, pg_op_t *op)
{
    op->next = NULL;
    if (q->tail)
        q->tail->next = op;
    else
        q->head = op;
    q->tail = op;
    q->count++;
}

void pg_queue_push_front(pg_queue_t *q, pg_op_t *op)
{
    op->next = q->head;
    q->head = op;
    if (!q->tail)
        q->tail = op;
    q->count++;
}

pg_op_t *pg_queue_pop(pg_queue_t *q)
{
    pg_op_t *op = q->head;
    if (!op)
        return NULL;
    q->head = op->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    op->next = NULL;
    return op;
}

/* Puts a list of ops back at the front of a queue, keeping their order. */
static void requeue_front(pg_queue_t *q, pg_op_t *list)
{
    pg_op_t *rev = NULL;
    while (list) {
        pg_op_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        pg_op_t *next = rev->next;
        pg_queue_push_front(q, rev);
        rev = next;
    }
}

void pg_set_error(pl_pg_t *pg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pg->last_error, sizeof(pg->last_error), fmt, ap);
    va_end(ap);
}

static void free_op(pg_op_t *op)
{
    if (op->held)
        PQclear(op->held);
    free(op);
}

/* Runs the callback (unless it already ran) and frees the op. */
static void complete(pl_pg_t *pg, pg_op_t *op, pl_code_t code, const char *sqlstate, const char *message)
{
    if (!op->is_completed) {
        op->is_completed = true;
        pg->queued--;
        pg->stats.ops++;
        if (code != PL_CODE_OK)
            pg->stats.failed++;
        pl_pg_result_t r = {code, sqlstate ? sqlstate : "", message ? message : "",
                            code == PL_CODE_OK ? op->held : NULL};
        if (op->cb)
            op->cb(&r, op->user);
    }
    free_op(op);
}

static bool is_retryable_sqlstate(const char *s)
{
    /* serialization_failure, deadlock_detected; and invalid_sql_statement_name:
     * the statement's Parse was lost with an aborted segment (it is prepared
     * again on the retry) */
    return strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0 || strcmp(s, "26000") == 0;
}

/* SQLSTATEs that mean the server, not the statement, is the problem. */
static bool is_server_gone(const char *s)
{
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
           strncmp(s, "53", 2) == 0;
}

static pl_code_t code_for_sqlstate(const char *s)
{
    if (strcmp(s, "57014") == 0) /* query_canceled: statement_timeout */
        return PL_CODE_DEADLINE_EXCEEDED;
    if (is_retryable_sqlstate(s))
        return PL_CODE_ABORTED;
    if (is_server_gone(s))
        return PL_CODE_UNAVAILABLE;
    return PL_CODE_INTERNAL;
}

/* Sends the op again if it may be and has time and attempts left;
 * otherwise completes it with the given failure. */
static void retry_or_fail(pl_pg_t *pg, pg_op_t *op, bool may_retry, pl_code_t code, const char *sqlstate,
                          const char *message)
{
    if (op->held) {
        PQclear(op->held);
        op->held = NULL;
    }
    if (!op->is_completed && may_retry && op->attempts < MAX_ATTEMPTS && pl_now_usec() < op->deadline) {
        op->attempts++;
        pg->stats.retries++;
        pg_queue_push(op->flags & PL_PG_WRITE ? &pg->writes : &pg->reads, op);
        return;
    }
    complete(pg, op, code, sqlstate, message);
}

static void schedule(pl_pg_t *pg);

void pg_segment_done(pl_pg_t *pg, pg_conn_t *c, pg_segment_t *seg)
{
    (void)c;
    pg_op_t *op = seg->ops;
    if (seg->is_write && seg->nops > 0 && !seg->has_failed) {
        pg->stats.batches++;
        pg->stats.batched_writes += (uint64_t)seg->nops;
    }
    if (!seg->has_failed) {
        while (op) {
            pg_op_t *next = op->next;
            complete(pg, op, PL_CODE_OK, NULL, NULL);
            op = next;
        }
    } else if (seg->nops == 1 || !seg->failed_op) {
        /* One op, or an error that was not an op's own (a Parse): the
         * error stands for every op of the segment. */
        bool gone = is_server_gone(seg->sqlstate);
        bool retry = is_retryable_sqlstate(seg->sqlstate) || gone;
        while (op) {
            pg_op_t *next = op->next;
            /* a server going away may have run it: only idempotent ops go again */
            bool may = retry && (!gone || (op->flags & PL_PG_IDEMPOTENT));
            retry_or_fail(pg, op, may, code_for_sqlstate(seg->sqlstate), seg->sqlstate, seg->message);
            op = next;
        }
    } else {
        /* A batch where one write failed: the server rolled back all of
         * them. The failed write goes again alone, so its error is its own;
         * the writes before it (which ran fine) and after it (which never
         * ran) go again as batches around it, all at the head of the queue
         * in their order. */
        pg_op_t *list = NULL, **tail = &list;
        while (op) {
            pg_op_t *next = op->next;
            if (op->held) {
                PQclear(op->held);
                op->held = NULL;
            }
            if (op->is_completed) {
                free_op(op);
            } else {
                op->is_solo = op == seg->failed_op;
                op->next = NULL;
                *tail = op;
                tail = &op->next;
            }
            op = next;
        }
        requeue_front(&pg->writes, list);
    }
    free(seg);
    schedule(pg);
}

void pg_segments_lost(pl_pg_t *pg, pg_segment_t *segs, const char *why)
{
    char message[240];
    snprintf(message, sizeof(message), "%s: %s", pg->label, why);
    /* Requeue in order: reads and writes each keep their relative order. */
    pg_op_t *reads = NULL, **rtail = &reads, *writes = NULL, **wtail = &writes;
    while (segs) {
        pg_segment_t *next_seg = segs->next;
        for (pg_op_t *op = segs->ops; op;) {
            pg_op_t *next = op->next;
            op->next = NULL;
            if (op->held) {
                PQclear(op->held);
                op->held = NULL;
            }
            /* The outcome is unknown: only idempotent ops may go again. */
            if (!op->is_completed && (op->flags & PL_PG_IDEMPOTENT) && op->attempts < MAX_ATTEMPTS &&
                pl_now_usec() < op->deadline) {
                op->attempts++;
                pg->stats.retries++;
                pg_op_t ***tail = op->flags & PL_PG_WRITE ? &wtail : &rtail;
                **tail = op;
                *tail = &op->next;
            } else {
                complete(pg, op, PL_CODE_UNAVAILABLE, "", message);
            }
            op = next;
        }
        free(segs);
        segs = next_seg;
    }
    requeue_front(&pg->reads, reads);
    requeue_front(&pg->writes, writes);
}

void pg_conn_became_ready(pl_pg_t *pg, pg_conn_t *c)
{
    (void)c;
    schedule(pg);
}

static pg_conn_t *least_loaded(pl_pg_t *pg)
{
    pg_conn_t *best = NULL;
    for (int i = 0; i < pg->nconns; i++) {
        pg_conn_t *c = &pg->conns[i];
        if (c->state == CONN_READY && c->seg_count < PG_CONN_MAX_SEGMENTS && (!best || c->seg_count < best->seg_count))
            best = c;
    }
    return best;
}

static int by_lock_order(const void *a, const void *b)
{
    const pg_op_t *x = *(const pg_op_t *const *)a, *y = *(const pg_op_t *const *)b;
    if (x->shard != y->shard)
        return x->shard < y->shard ? -1 : 1;
    if (x->lock.key != y->lock.key)
        return x->lock.key < y->lock.key ? -1 : 1;
    if (x->lock.key2 != y->lock.key2)
        return x->lock.key2 < y->lock.key2 ? -1 : 1;
    return x->arrival < y->arrival ? -1 : x->arrival > y->arrival;
}

/* Sends one write round on c: consecutive solo writes each in a segment of
 * their own, or else one batch of up to batch_max writes. */
static void send_writes(pl_pg_t *pg, pg_conn_t *c)
{
    if (pg->writes.head && pg->writes.head->is_solo) {
        while (c->state == CONN_READY && pg->writes.head && pg->writes.head->is_solo) {
            pg_op_t *op = pg_queue_pop(&pg->writes);
            if (pg_conn_send(c, op, 1, true) == PL_ERR_NOMEM) {
                pg_queue_push_front(&pg->writes, op);
                return;
            }
        }
        return;
    }
    pg_op_t *batch[PG_BATCH_SORT_MAX];
    int n = 0;
    while (n < pg->opts.batch_max && n < PG_BATCH_SORT_MAX && pg->writes.head && !pg->writes.head->is_solo)
        batch[n++] = pg_queue_pop(&pg->writes);
    if (!n)
        return;
    /* lock order: concurrent batches must not take rows in opposite orders */
    qsort(batch, (size_t)n, sizeof(batch[0]), by_lock_order);
    pg_op_t *list = NULL, **tail = &list;
    for (int i = 0; i < n; i++) {
        *tail = batch[i];
        tail = &batch[i]->next;
    }
    *tail = NULL;
    if (pg_conn_send(c, list, n, true) == PL_ERR_NOMEM)
        requeue_front(&pg->writes, list);
}

static void schedule(pl_pg_t *pg)
{
    /* writes: every ready connection without a write round in flight */
    for (int i = 0; i < pg->nconns && pg->writes.head; i++) {
        pg_conn_t *c = &pg->conns[i];
        if (c->state == CONN_READY && c->write_segments == 0)
            send_writes(pg, c);
    }
    /* reads: each to the least loaded connection */
    while (pg->reads.head) {
        pg_conn_t *c = least_loaded(pg);
        if (!c)
            break;
        pg_op_t *op = pg_queue_pop(&pg->reads);
        if (pg_conn_send(c, op, 1, false) == PL_ERR_NOMEM) {
            pg_queue_push_front(&pg->reads, op);
            break;
        }
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    schedule(arg);
}

/* Completes queued ops whose deadline passed, and in-flight ones too (their
 * late results are dropped); drops connections that stopped answering. */
static void expire_queue(pl_pg_t *pg, pg_queue_t *q, int64_t now)
{
    pg_queue_t keep = {0};
    pg_op_t *op;
    while ((op = pg_queue_pop(q))) {
        if (op->deadline > now) {
            pg_queue_push(&keep, op);
            continue;
        }
        bool up = pl_pg_is_up(pg);
        char message[240];
        snprintf(message, sizeof(message), "%s: %s", pg->label,
                 up ? "operation deadline passed while queued" : pg->last_error);
        complete(pg, op, up ? PL_CODE_DEADLINE_EXCEEDED : PL_CODE_UNAVAILABLE, "", message);
    }
    *q = keep;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_pg_t *pg = arg;
    int64_t now = pl_now_usec();
    expire_queue(pg, &pg->reads, now);
    expire_queue(pg, &pg->writes, now);
    int64_t watchdog = (int64_t)(pg->opts.statement_timeout_ms + WATCHDOG_SLACK_MS) * 1000;
    for (int i = 0; i < pg->nconns; i++) {
        pg_conn_t *c = &pg->conns[i];
        for (pg_segment_t *seg = c->seg_head; seg; seg = seg->next)
            for (pg_op_t *op = seg->ops; op; op = op->next)
                if (!op->is_completed && op->deadline <= now) {
                    op->is_completed = true; /* its late result is dropped */
                    pg->queued--;
                    pg->stats.ops++;
                    pg->stats.failed++;
                    char message[240];
                    snprintf(message, sizeof(message), "%s: no answer before the operation deadline", pg->label);
                    pl_pg_result_t r = {PL_CODE_DEADLINE_EXCEEDED, "", message, NULL};
                    if (op->cb)
                        op->cb(&r, op->user);
                }
        if (c->state == CONN_READY && c->seg_head && now - c->seg_head->sent_at > watchdog)
            pg_conn_fail(c, "server stopped answering");
    }
}

pl_pg_t *pl_pg_new(struct event_base *base, const pl_pg_opts_t *opts, const pl_pg_stmt_t *stmts, size_t nstmts)
{
    pl_pg_t *pg = calloc(1, sizeof(*pg));
    if (!pg)
        return NULL;
    pg->base = base;
    pg->opts = *opts;
    if (pg->opts.connections <= 0)
        pg->opts.connections = 1;
    if (pg->opts.statement_timeout_ms <= 0)
        pg->opts.statement_timeout_ms = 5000;
    if (pg->opts.connect_timeout_ms <= 0)
        pg->opts.connect_timeout_ms = 5000;
    if (pg->opts.op_timeout_ms <= 0)
        pg->opts.op_timeout_ms = 10000;
    if (pg->opts.batch_max <= 0)
        pg->opts.batch_max = 256;
    if (pg->opts.queue_max <= 0)
        pg->opts.queue_max = 100000;
    pg->conninfo = strdup(opts->conninfo ? opts->conninfo : "");
    pg->label = strdup(opts->label ? opts->label : "postgres");
    pg->stmts = stmts;
    pg->nstmts = nstmts;
    pg->nconns = pg->opts.connections;
    pg->conns = calloc((size_t)pg->nconns, sizeof(pg_conn_t));
    pg->kick = event_new(base, -1, 0, on_kick, pg);
    pg->sweep = event_new(base, -1, EV_PERSIST, on_sweep, pg);
    snprintf(pg->last_error, sizeof(pg->last_error), "%s: not connected yet", pg->label);
    if (!pg->conninfo || !pg->label || !pg->conns || !pg->kick || !pg->sweep)
        goto fail;
    for (int i = 0; i < pg->nconns; i++)
        if (pg_conn_init(pg, &pg->conns[i], i) != 0)
            goto fail;
    struct timeval tv = {0, SWEEP_INTERVAL_MS * 1000};
    event_add(pg->sweep, &tv);
    for (int i = 0; i < pg->nconns; i++)
        pg_conn_start(&pg->conns[i]);
    return pg;
fail:
    pl_pg_free(pg);
    return NULL;
}

static void cancel_queue(pl_pg_t *pg, pg_queue_t *q)
{
    pg_op_t *op;
    while ((op = pg_queue_pop(q)))
        complete(pg, op, PL_CODE_CANCELLED, "", "shutting down");
}

void pl_pg_free(pl_pg_t *pg)
{
    if (!pg)
        return;
    for (int i = 0; pg->conns && i < pg->nconns; i++) {
        pg_conn_t *c = &pg->conns[i];
        pg_segment_t *seg = c->seg_head;
        c->seg_head = c->seg_tail = NULL;
        while (seg) {
            pg_segment_t *next = seg->next;
            for (pg_op_t *op = seg->ops; op;) {
                pg_op_t *n = op->next;
                complete(pg, op, PL_CODE_CANCELLED, "", "shutting down");
                op = n;
            }
            free(seg);
            seg = next;
        }
        pg_conn_dispose(c);
    }
    cancel_queue(pg, &pg->reads);
    cancel_queue(pg, &pg->writes);
    if (pg->kick)
        event_free(pg->kick);
    if (pg->sweep)
        event_free(pg->sweep);
    free(pg->conns);
    free(pg->conninfo);
    free(pg->label);
    free(pg);
}

int pl_pg_exec(pl_pg_t *pg, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
               int64_t deadline_usec, pl_pg_done_fn cb, void *user)
{
    return pl_pg_exec_keyed(pg, stmt, shard, params, nparams, flags, NULL, deadline_usec, cb, user);
}

int pl_pg_exec_keyed(pl_pg_t *pg, int stmt, int shard, const pl_pg_param_t *params, int nparams, unsigned flags,
                     const pl_pg_lock_t *lock, int64_t deadline_usec, pl_pg_done_fn cb, void *user)
{
    if (stmt < 0 || (size_t)stmt >= pg->nstmts || shard < -1 || shard >= PG_MAX_SHARD_SLOTS - 1 || nparams < 0)
        return PL_ERR_INVALID;
    if (pg->queued >= pg->opts.queue_max)
        return PL_ERR_FULL;
    /* one allocation: the op, its parameter arrays and the parameter bytes */
    size_t bytes = 0;
    for (int i = 0; i < nparams; i++)
        if (params[i].data)
            bytes += (size_t)(params[i].len < 0 ? (int)strlen(params[i].data) + 1 : params[i].len + 1);
    size_t arrays = (size_t)nparams * (sizeof(char *) + 2 * sizeof(int));
    pg_op_t *op = calloc(1, sizeof(*op) + arrays + bytes);
    if (!op)
        return PL_ERR_NOMEM;
    op->values = (const char **)(op + 1);
    op->lengths = (int *)(op->values + nparams);
    op->formats = op->lengths + nparams;
    char *data = (char *)(op->formats + nparams);
    for (int i = 0; i < nparams; i++) {
        if (!params[i].data) {
            op->values[i] = NULL;
            continue;
        }
        size_t len = params[i].len < 0 ? strlen(params[i].data) : (size_t)params[i].len;
        memcpy(data, params[i].data, len);
        data[len] = '\0';
        op->values[i] = data;
        op->lengths[i] = (int)len;
        op->formats[i] = params[i].binary ? 1 : 0;
        data += len + 1;
    }
    op->nparams = nparams;
    op->stmt = stmt;
    op->shard = shard;
    op->flags = flags;
    if (lock)
        op->lock = *lock;
    op->arrival = pg->arrivals++;
    op->deadline = deadline_usec ? deadline_usec : pl_now_usec() + (int64_t)pg->opts.op_timeout_ms * 1000;
    op->cb = cb;
    op->user = user;
    pg->queued++;
    pg_queue_push(flags & PL_PG_WRITE ? &pg->writes : &pg->reads, op);
    /* Send on the next loop turn: callbacks never run inside this call, and
     * writes arriving in the same turn share a batch. */
    event_active(pg->kick, 0, 0);
    return 0;
}

bool pl_pg_is_up(const pl_pg_t *pg)
{
    for (int i = 0; i < pg->nconns; i++)
        if (pg->conns[i].state == CONN_READY)
            return true;
    return false;
}

void pl_pg_stats(const pl_pg_t *pg, pl_pg_stats_t *out)
{
    *out = pg->stats;
    out->queued = pg->queued;
}

int64_t pl_pg_get_int64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    const char *v = PQgetvalue(res, row, col);
    if (PQfformat(res, col) == 0)
        return strtoll(v, NULL, 10);
    int len = PQgetlength(res, row, col);
    uint64_t x = 0;
    for (int i = 0; i < len && i < 8; i++)
        x = x << 8 | (uint8_t)v[i];
    /* sign-extend int4 and int2 */
    if (len == 4)
        return (int32_t)(uint32_t)x;
    if (len == 2)
        return (int16_t)(uint16_t)x;
    return (int64_t)x;
}

bool pl_pg_get_bool(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return false;
    const char *v = PQgetvalue(res, row, col);
    return PQfformat(res, col) == 0 ? v[0] == 't' : v[0] != 0;
}

const uint8_t *pl_pg_get_bytes(const PGresult *res, int row, int col, size_t *len)
{
    *len = (size_t)PQgetlength(res, row, col);
    return (const uint8_t *)PQgetvalue(res, row, col);
}

char *pl_pg_int8_array(const int64_t *ids, size_t n)
{
    enum { ELEMENT_MAX = 21 }; /* "-9223372036854775808" and a comma */
    char *s = malloc(3 + n * ELEMENT_MAX);
    if (!s)
        return NULL;
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, ELEMENT_MAX + 1, i ? ",%" PRId64 : "%" PRId64, ids[i]);
    s[len++] = '}';
    s[len] = '\0';
    return s;
}
