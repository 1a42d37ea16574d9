/* pg_internal.h — what pg.c (queues, batching, completion) and pg_conn.c
 * (one connection: connect, pipeline I/O) share. Not for other modules.
 *
 * An operation (pg_op_t) waits in the pool's read or write queue, then
 * travels in a segment (pg_segment_t): the statements sent between two
 * pipeline Syncs. A segment is one implicit transaction on the server, so
 * a write batch is simply a segment of many writes; an error skips the
 * rest of the segment and rolls it back at the Sync. */
#ifndef PL_STORE_PG_INTERNAL_H
#define PL_STORE_PG_INTERNAL_H

#include "store/pg.h"

struct event;

typedef struct pg_op {
    struct pg_op *next;
    int stmt;
    int shard;
    unsigned flags;
    pl_pg_lock_t lock; /* batch order (pl_pg_exec_keyed) */
    uint64_t arrival;  /* ties keep the order writes came in */
    int64_t deadline;
    int attempts;
    bool is_solo;      /* a write to send in a transaction of its own */
    bool is_completed; /* the callback already ran (deadline passed in flight) */
    pl_pg_done_fn cb;
    void *user;
    PGresult *held; /* a batched write's rows, delivered once the batch commits */
    int nparams;
    const char **values;
    int *lengths;
    int *formats;
} pg_op_t;

typedef struct pg_queue {
    pg_op_t *head, *tail;
    int count;
} pg_queue_t;

typedef enum pg_item_kind {
    ITEM_SETUP,   /* connection setup statement */
    ITEM_PREPARE, /* Parse of (stmt, shard) */
    ITEM_OP,      /* an operation's Execute */
    ITEM_SYNC,    /* end of the segment */
} pg_item_kind_t;

typedef struct pg_item {
    pg_item_kind_t kind;
    bool has_result;
    int stmt, shard; /* ITEM_PREPARE */
    pg_op_t *op;     /* ITEM_OP */
} pg_item_t;

typedef struct pg_segment {
    struct pg_segment *next;
    bool is_write;   /* holds the connection's write slot */
    int64_t sent_at; /* pl_now_usec */
    pg_op_t *ops;    /* the segment's operations, in order (linked by next) */
    int nops;
    /* the first error in the segment */
    bool has_failed;
    pg_op_t *failed_op; /* NULL: the error was not an operation's own */
    pl_code_t fail_code;
    char sqlstate[6];
    char message[200];
    int nitems, next_item;
    pg_item_t items[];
} pg_segment_t;

typedef enum pg_conn_state {
    CONN_BACKOFF,    /* waiting to (re)connect */
    CONN_CONNECTING, /* PQconnectPoll in progress */
    CONN_READY,      /* pipeline mode, accepting segments */
} pg_conn_state_t;

typedef struct pg_conn {
    pl_pg_t *pg;
    int index;
    PGconn *pc;
    pg_conn_state_t state;
    struct event *ev_read;  /* READY: persistent read interest */
    struct event *ev_write; /* READY: pending flush; CONNECTING: poll step */
    struct event *ev_timer; /* backoff, connect timeout */
    int backoff_ms;
    bool has_connected; /* at least once: later connects count as reconnects */
    pg_segment_t *seg_head, *seg_tail;
    int seg_count;
    int write_segments; /* write segments in flight (0 or the current round) */
    uint8_t *prepared;  /* bitset over (stmt, shard + 1) */
} pg_conn_t;

#define PG_MAX_SHARD_SLOTS 1025 /* shard -1 .. 1023 */
#define PG_CONN_MAX_SEGMENTS 512
#define PG_BATCH_SORT_MAX 4096 /* the largest batch (batch_max is capped here) */

struct pl_pg {
    struct event_base *base;
    pl_pg_opts_t opts;
    char *conninfo;
    char *label;
    const pl_pg_stmt_t *stmts;
    size_t nstmts;
    pg_conn_t *conns;
    int nconns;
    pg_queue_t reads, writes;
    int queued; /* operations not yet completed */
    uint64_t arrivals;
    struct event *kick;  /* schedule on the next loop turn */
    struct event *sweep; /* deadlines and the in-flight watchdog */
    pl_pg_stats_t stats;
    char last_error[200];
};

/* pg.c, called by pg_conn.c */
void pg_segment_done(pl_pg_t *pg, pg_conn_t *c, pg_segment_t *seg);
void pg_segments_lost(pl_pg_t *pg, pg_segment_t *segs, const char *why);
void pg_conn_became_ready(pl_pg_t *pg, pg_conn_t *c);
void pg_set_error(pl_pg_t *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pg_conn.c, called by pg.c */
int pg_conn_init(pl_pg_t *pg, pg_conn_t *c, int index);
void pg_conn_dispose(pg_conn_t *c);
void pg_conn_start(pg_conn_t *c);
/* Sends a segment of ops (linked by next; nops of them; none: the setup
 * segment). 0: the connection owns them. PL_ERR_NOMEM: nothing was sent,
 * the ops are still the caller's. -1: the connection failed and the ops
 * went through pg_segments_lost. */
int pg_conn_send(pg_conn_t *c, pg_op_t *ops, int nops, bool is_write);
/* Drops the connection: in-flight segments are handed to pg_segments_lost,
 * a reconnect is scheduled. */
void pg_conn_fail(pg_conn_t *c, const char *why);

void pg_queue_push(pg_queue_t *q, pg_op_t *op);
void pg_queue_push_front(pg_queue_t *q, pg_op_t *op);
pg_op_t *pg_queue_pop(pg_queue_t *q);

#endif
