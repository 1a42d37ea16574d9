/* pg_conn.c — one non-blocking libpq connection on the worker's loop:
 * asynchronous connect, reconnect with backoff, and the pipeline: segments
 * go out as Parse/Bind/Execute... + Sync, results come back in order and
 * are matched to the items that asked for them. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/errors.h"
#include "store/pg_internal.h"
#include "store/shardmap.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_writable(evutil_socket_t fd, short what, void *arg);
static void on_connect_step(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);

int pg_conn_init(pl_pg_t *pg, pg_conn_t *c, int index)
{
    memset(c, 0, sizeof(*c));
    c->pg = pg;
    c->index = index;
    c->state = CONN_BACKOFF;
    size_t bits = pg->nstmts * PG_MAX_SHARD_SLOTS;
    c->prepared = calloc((bits + 7) / 8 + 1, 1);
    c->ev_timer = evtimer_new(pg->base, on_timer, c);
    if (!c->prepared || !c->ev_timer)
        return PL_ERR_NOMEM;
    return 0;
}

static void close_socket_events(pg_conn_t *c)
{
    if (c->ev_read) {
        event_free(c->ev_read);
        c->ev_read = NULL;
    }
    if (c->ev_write) {
        event_free(c->ev_write);
        c->ev_write = NULL;
    }
}

/* Detaches the in-flight segments (the caller decides their fate). */
static pg_segment_t *take_segments(pg_conn_t *c)
{
    pg_segment_t *segs = c->seg_head;
    c->seg_head = c->seg_tail = NULL;
    c->seg_count = 0;
    c->write_segments = 0;
    return segs;
}

static void close_pq(pg_conn_t *c)
{
    close_socket_events(c);
    if (c->pc) {
        PQfinish(c->pc);
        c->pc = NULL;
    }
    memset(c->prepared, 0, (c->pg->nstmts * PG_MAX_SHARD_SLOTS + 7) / 8 + 1);
}

void pg_conn_dispose(pg_conn_t *c)
{
    close_pq(c);
    if (c->ev_timer)
        event_free(c->ev_timer);
    free(c->prepared);
    c->ev_timer = NULL;
    c->prepared = NULL;
}

static void arm_timer(pg_conn_t *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->ev_timer, &tv);
}

void pg_conn_fail(pg_conn_t *c, const char *why)
{
    pl_pg_t *pg = c->pg;
    pg_set_error(pg, "%s: %s", pg->label, why);
    close_pq(c);
    c->state = CONN_BACKOFF;
    /* jittered exponential backoff, so workers do not reconnect in lockstep */
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS)
        c->backoff_ms = BACKOFF_MAX_MS;
    arm_timer(c, c->backoff_ms / 2 + rand() % (c->backoff_ms / 2 + 1));
    pg_segment_t *segs = take_segments(c);
    if (segs)
        pg_segments_lost(pg, segs, why);
}

/* PQconnectPoll wants the socket readable or writable next. */
static void wait_connect(pg_conn_t *c, PostgresPollingStatusType st)
{
    close_socket_events(c);
    short what = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
    c->ev_write = event_new(c->pg->base, PQsocket(c->pc), what, on_connect_step, c);
    if (!c->ev_write || event_add(c->ev_write, NULL) != 0)
        pg_conn_fail(c, "out of memory");
}

static void connected(pg_conn_t *c)
{
    pl_pg_t *pg = c->pg;
    evtimer_del(c->ev_timer);
    close_socket_events(c);
    if (PQsetnonblocking(c->pc, 1) != 0 || PQenterPipelineMode(c->pc) != 1) {
        pg_conn_fail(c, PQerrorMessage(c->pc));
        return;
    }
    int fd = PQsocket(c->pc);
    c->ev_read = event_new(pg->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->ev_write = event_new(pg->base, fd, EV_WRITE, on_writable, c);
    if (!c->ev_read || !c->ev_write || event_add(c->ev_read, NULL) != 0) {
        pg_conn_fail(c, "out of memory");
        return;
    }
    c->state = CONN_READY;
    c->backoff_ms = 0;
    if (c->has_connected)
        pg->stats.reconnects++;
    c->has_connected = true;
    /* The setup goes first in the pipeline; nothing waits for it. */
    if (pg_conn_send(c, NULL, 0, false) != 0)
        return;
    pg_conn_became_ready(pg, c);
}

static void connect_step(pg_conn_t *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pc);
    switch (st) {
    case PGRES_POLLING_OK: connected(c); return;
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING: wait_connect(c, st); return;
    default: {
        char why[200];
        snprintf(why, sizeof(why), "cannot connect: %s", PQerrorMessage(c->pc));
        why[strcspn(why, "\n")] = '\0';
        pg_conn_fail(c, why);
    }
    }
}

void pg_conn_start(pg_conn_t *c)
{
    c->pc = PQconnectStart(c->pg->conninfo);
    if (!c->pc || PQstatus(c->pc) == CONNECTION_BAD) {
        pg_conn_fail(c, c->pc ? PQerrorMessage(c->pc) : "out of memory");
        return;
    }
    c->state = CONN_CONNECTING;
    arm_timer(c, c->pg->opts.connect_timeout_ms);
    connect_step(c);
}

static void on_connect_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    connect_step(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_conn_t *c = arg;
    if (c->state == CONN_BACKOFF)
        pg_conn_start(c);
    else if (c->state == CONN_CONNECTING)
        pg_conn_fail(c, "connect timed out");
}

static void flush(pg_conn_t *c)
{
    int rc = PQflush(c->pc);
    if (rc < 0)
        pg_conn_fail(c, "write failed");
    else if (rc > 0)
        event_add(c->ev_write, NULL);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

static bool is_prepared(const pg_conn_t *c, int stmt, int shard)
{
    size_t bit = (size_t)stmt * PG_MAX_SHARD_SLOTS + (size_t)(shard + 1);
    return c->prepared[bit / 8] & (1u << (bit % 8));
}

static void set_prepared(pg_conn_t *c, int stmt, int shard, bool on)
{
    size_t bit = (size_t)stmt * PG_MAX_SHARD_SLOTS + (size_t)(shard + 1);
    if (on)
        c->prepared[bit / 8] |= (uint8_t)(1u << (bit % 8));
    else
        c->prepared[bit / 8] &= (uint8_t) ~(1u << (bit % 8));
}

static void stmt_name(char *buf, size_t len, int stmt, int shard)
{
    snprintf(buf, len, "p%d_%d", stmt, shard + 1);
}

/* The statement's SQL with every "{s}" replaced by the shard's schema. */
static char *expand_sql(const char *sql, int shard)
{
    char schema[PL_SHARD_SCHEMA_LEN];
    pl_shard_schema(shard < 0 ? 0 : shard, schema);
    size_t n = 0, slen = strlen(schema);
    for (const char *p = sql; (p = strstr(p, "{s}")); p += 3)
        n++;
    char *out = malloc(strlen(sql) + n * slen + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = sql; *p;) {
        if (p[0] == '{' && p[1] == 's' && p[2] == '}') {
            memcpy(o, schema, slen);
            o += slen;
            p += 3;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

int pg_conn_send(pg_conn_t *c, pg_op_t *ops, int nops, bool is_write)
{
    pl_pg_t *pg = c->pg;
    /* worst case per op: a Parse and an Execute; plus setup and Sync */
    pg_segment_t *seg = calloc(1, sizeof(*seg) + sizeof(pg_item_t) * (size_t)(2 * nops + 2));
    if (!seg)
        return PL_ERR_NOMEM; /* the ops are still the caller's */
    seg->is_write = is_write;
    seg->sent_at = pl_now_usec();
    seg->ops = ops;
    seg->nops = nops;
    /* link it first, so a failure below hands it to pg_segments_lost */
    if (c->seg_tail)
        c->seg_tail->next = seg;
    else
        c->seg_head = seg;
    c->seg_tail = seg;
    c->seg_count++;
    if (is_write)
        c->write_segments++;

    const char *fail = NULL;
    if (nops == 0) {
        /* the setup segment of a new connection */
        char sql[64];
        snprintf(sql, sizeof(sql), "SET statement_timeout = %d", pg->opts.statement_timeout_ms);
        seg->items[seg->nitems++] = (pg_item_t){.kind = ITEM_SETUP};
        if (!PQsendQueryParams(c->pc, sql, 0, NULL, NULL, NULL, NULL, 0))
            fail = PQerrorMessage(c->pc);
    }
    for (pg_op_t *op = ops; op && !fail; op = op->next) {
        char name[32];
        stmt_name(name, sizeof(name), op->stmt, op->shard);
        if (!is_prepared(c, op->stmt, op->shard)) {
            char *sql = expand_sql(pg->stmts[op->stmt].sql, op->shard);
            if (!sql) {
                fail = "out of memory";
                break;
            }
            int ok = PQsendPrepare(c->pc, name, sql, 0, NULL);
            free(sql);
            if (!ok) {
                fail = PQerrorMessage(c->pc);
                break;
            }
            set_prepared(c, op->stmt, op->shard, true);
            seg->items[seg->nitems++] = (pg_item_t){.kind = ITEM_PREPARE, .stmt = op->stmt, .shard = op->shard};
        }
        if (!PQsendQueryPrepared(c->pc, name, op->nparams, op->values, op->lengths, op->formats,
                                 pg->stmts[op->stmt].binary_results ? 1 : 0)) {
            fail = PQerrorMessage(c->pc);
            break;
        }
        seg->items[seg->nitems++] = (pg_item_t){.kind = ITEM_OP, .op = op};
    }
    if (!fail) {
        seg->items[seg->nitems++] = (pg_item_t){.kind = ITEM_SYNC};
        if (PQpipelineSync(c->pc) != 1)
            fail = PQerrorMessage(c->pc);
    }
    if (fail) {
        char why[200];
        snprintf(why, sizeof(why), "send failed: %s", fail);
        why[strcspn(why, "\n")] = '\0';
        pg_conn_fail(c, why);
        return -1;
    }
    flush(c);
    return c->state == CONN_READY ? 0 : -1;
}

static void note_error(pg_segment_t *seg, pg_op_t *op, PGresult *r)
{
    if (seg->has_failed)
        return;
    seg->has_failed = true;
    seg->failed_op = op;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(seg->sqlstate, sizeof(seg->sqlstate), "%s", state ? state : "");
    snprintf(seg->message, sizeof(seg->message), "%s", PQresultErrorMessage(r));
    seg->message[strcspn(seg->message, "\n")] = '\0';
}

/* One result for the segment's current item. Returns false when the
 * connection failed and the caller must stop reading. */
static bool take_result(pg_conn_t *c, pg_segment_t *seg, PGresult *r)
{
    pg_item_t *it = &seg->items[seg->next_item];
    ExecStatusType st = PQresultStatus(r);
    if (it->kind == ITEM_SYNC) {
        PQclear(r);
        if (st != PGRES_PIPELINE_SYNC) {
            pg_conn_fail(c, "protocol out of step (expected a sync)");
            return false;
        }
        c->seg_head = seg->next;
        if (!c->seg_head)
            c->seg_tail = NULL;
        c->seg_count--;
        if (seg->is_write)
            c->write_segments--;
        seg->next = NULL;
        pg_segment_done(c->pg, c, seg);
        return c->state == CONN_READY;
    }
    if (st == PGRES_PIPELINE_SYNC || it->has_result) {
        /* a sync where a statement's result belongs, or a second result for
         * one statement: never hand out a result that is not this op's */
        PQclear(r);
        pg_conn_fail(c, "protocol out of step (unexpected result); reconnecting");
        return false;
    }
    it->has_result = true;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    switch (it->kind) {
    case ITEM_OP:
        if (ok && !it->op->held) {
            it->op->held = r;
            return true;
        }
        if (st == PGRES_FATAL_ERROR) {
            /* its Parse went in a segment that was aborted before it ran:
             * prepare again next time */
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (state && strcmp(state, "26000") == 0)
                set_prepared(c, it->op->stmt, it->op->shard, false);
            note_error(seg, it->op, r);
        }
        break;
    case ITEM_PREPARE:
        if (!ok) {
            set_prepared(c, it->stmt, it->shard, false);
            if (st == PGRES_FATAL_ERROR)
                note_error(seg, NULL, r);
        }
        break;
    case ITEM_SETUP:
        if (st == PGRES_FATAL_ERROR)
            note_error(seg, NULL, r);
        break;
    case ITEM_SYNC: break;
    }
    PQclear(r);
    return true;
}

static void read_results(pg_conn_t *c)
{
    while (c->state == CONN_READY && c->seg_head) {
        if (PQisBusy(c->pc))
            return;
        pg_segment_t *seg = c->seg_head;
        pg_item_t *it = &seg->items[seg->next_item];
        PGresult *r = PQgetResult(c->pc);
        if (!r) {
            /* the end of one statement's results */
            if (it->kind != ITEM_SYNC && it->has_result) {
                seg->next_item++;
                continue;
            }
            return;
        }
        if (!take_result(c, seg, r))
            return;
    }
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_conn_t *c = arg;
    if (!PQconsumeInput(c->pc)) {
        char why[200];
        snprintf(why, sizeof(why), "connection lost: %s", PQerrorMessage(c->pc));
        why[strcspn(why, "\n")] = '\0';
        pg_conn_fail(c, why);
        return;
    }
    read_results(c);
    if (c->state == CONN_READY && PQstatus(c->pc) == CONNECTION_BAD)
        pg_conn_fail(c, "connection lost");
}
