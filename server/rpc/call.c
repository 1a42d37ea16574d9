/* call.c — a server call's lifecycle: creation, references, cancellation,
 * deadline, deferred work. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/call_state.h"
#include "runtime/clock.h"
#include "runtime/errors.h"

pl_call_t *pl_call_new(pl_call_conn_t *conn, const pl_call_conn_ops_t *ops, int32_t stream_id,
                       const pl_call_limits_t *limits, pl_worker_t *worker, struct event_base *base)
{
    pl_call_t *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    const pl_call_limits_t *cfg = limits;
    call->conn = conn;
    call->ops = ops;
    call->stream_id = stream_id;
    call->refs = 1; /* the stream's */
    call->limits = cfg;
    call->worker = worker;
    call->base = base;
    call->status = PL_CODE_OK;
    pl_metadata_init(&call->md, cfg->max_metadata);
    pl_metadata_init(&call->initial_md, cfg->max_metadata);
    pl_metadata_init(&call->trailing_md, cfg->max_metadata);
    pl_deframer_init(&call->deframer, cfg->max_recv_message);
    return call;
}

static void call_free(pl_call_t *call)
{
    if (call->user_free)
        call->user_free(call->user);
    pl_call_clear_deadline(call);
    pl_metadata_dispose(&call->md);
    pl_metadata_dispose(&call->initial_md);
    pl_metadata_dispose(&call->trailing_md);
    pl_deframer_dispose(&call->deframer);
    pl_call_free_response(call);
    free(call->path);
    free(call->req_payload);
    free(call->req);
    free(call->held);
    free(call->status_message);
    free(call);
}

void pl_call_ref(pl_call_t *call)
{
    call->refs++;
}

void pl_call_unref(pl_call_t *call)
{
    if (--call->refs == 0)
        call_free(call);
}

void pl_call_set_user(pl_call_t *call, void *user, void (*free_fn)(void *user))
{
    call->user = user;
    call->user_free = free_fn;
}

void *pl_call_user(const pl_call_t *call)
{
    return call->user;
}
void pl_call_on_cancel(pl_call_t *call, pl_call_event_fn fn)
{
    call->on_cancel = fn;
}
void pl_call_on_writable(pl_call_t *call, pl_call_event_fn fn)
{
    call->on_writable = fn;
}
void pl_call_on_invalid_message(pl_call_t *call, pl_call_invalid_fn fn)
{
    call->on_invalid = fn;
}
bool pl_call_is_finished(const pl_call_t *call)
{
    return call->finished || call->cancelled;
}
const pl_metadata_t *pl_call_metadata(const pl_call_t *call)
{
    return &call->md;
}
int64_t pl_call_deadline(const pl_call_t *call)
{
    return call->deadline_usec;
}
bool pl_call_request_was_compressed(const pl_call_t *call)
{
    return call->last_in_compressed;
}
pl_worker_t *pl_call_worker(const pl_call_t *call)
{
    return call->worker;
}

void pl_call_mark_authenticated(pl_call_t *call)
{
    if (call->conn)
        call->ops->mark_authenticated(call->conn);
}

void pl_call_peer(const pl_call_t *call, char *buf, size_t len)
{
    if (call->conn)
        call->ops->peer(call->conn, buf, len);
    else
        snprintf(buf, len, "unknown");
}
const void *pl_call_handlers(const pl_call_t *call)
{
    return call->entry ? call->entry->handlers : NULL;
}

const pl_method_t *pl_call_method(const pl_call_t *call)
{
    return call->entry ? call->entry->impl.method : NULL;
}

/* The call ends without the handler's say: tell it once. */
void pl_call_cancel_internal(pl_call_t *call)
{
    if (call->cancelled)
        return;
    call->cancelled = true;
    pl_call_clear_deadline(call);
    pl_call_ref(call);
    if (call->dispatched && !call->finished && call->on_cancel)
        call->on_cancel(call, call->user);
    pl_call_drop_deferred(call);
    pl_call_unref(call);
}

void pl_call_on_stream_close(pl_call_t *call, uint32_t error_code)
{
    (void)error_code;
    call->stream_closed = true;
    call->conn = NULL;
    /* A stream that closes before our trailers went out was cut short:
     * reset by the client, lost with the connection, or aborted. */
    if (!call->trailers_sent)
        pl_call_cancel_internal(call);
    pl_call_clear_deadline(call);
    pl_call_drop_deferred(call);
    pl_call_unref(call);
}

/* ---- deadline ---- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_call_t *call = arg;
    pl_call_ref(call);
    pl_call_finish(call, PL_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
    /* the handler's work is moot now */
    bool was_dispatched = call->dispatched;
    call->cancelled = true;
    if (was_dispatched && call->on_cancel)
        call->on_cancel(call, call->user);
    pl_call_drop_deferred(call);
    pl_call_unref(call);
}

int pl_call_arm_deadline(pl_call_t *call)
{
    int64_t left = call->deadline_usec - pl_now_usec();
    if (left < 0)
        left = 0;
    call->deadline_ev = evtimer_new(call->base, on_deadline, call);
    if (!call->deadline_ev)
        return PL_ERR_NOMEM;
    struct timeval tv = {(time_t)(left / 1000000), (suseconds_t)(left % 1000000)};
    return evtimer_add(call->deadline_ev, &tv) == 0 ? 0 : PL_ERR_NOMEM;
}

void pl_call_clear_deadline(pl_call_t *call)
{
    if (call->deadline_ev) {
        event_free(call->deadline_ev);
        call->deadline_ev = NULL;
    }
}

/* ---- deferred work: timers owned by the call ---- */

typedef struct pl_deferred {
    struct pl_deferred *next, *prev;
    pl_call_t *call;
    pl_call_event_fn fn;
    struct event *ev;
} deferred_t;

static void deferred_unlink(deferred_t *d)
{
    pl_call_t *call = d->call;
    if (d->prev)
        d->prev->next = d->next;
    else
        call->deferred = d->next;
    if (d->next)
        d->next->prev = d->prev;
}

static void on_deferred(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deferred_t *d = arg;
    pl_call_t *call = d->call;
    pl_call_event_fn fn = d->fn;
    deferred_unlink(d);
    event_free(d->ev);
    free(d);
    if (!pl_call_is_finished(call))
        fn(call, call->user);
    pl_call_unref(call);
}

int pl_call_defer(pl_call_t *call, int64_t delay_usec, pl_call_event_fn fn)
{
    deferred_t *d = calloc(1, sizeof(*d));
    if (!d)
        return PL_ERR_NOMEM;
    d->call = call;
    d->fn = fn;
    d->ev = evtimer_new(call->base, on_deferred, d);
    if (!d->ev) {
        free(d);
        return PL_ERR_NOMEM;
    }
    if (delay_usec < 0)
        delay_usec = 0;
    struct timeval tv = {(time_t)(delay_usec / 1000000), (suseconds_t)(delay_usec % 1000000)};
    evtimer_add(d->ev, &tv);
    d->next = call->deferred;
    if (d->next)
        d->next->prev = d;
    call->deferred = d;
    pl_call_ref(call);
    return 0;
}

void pl_call_drop_deferred(pl_call_t *call)
{
    pl_call_ref(call); /* the last unref below must not free call mid-loop */
    while (call->deferred) {
        deferred_t *d = call->deferred;
        deferred_unlink(d);
        event_free(d->ev);
        free(d);
        pl_call_unref(call);
    }
    pl_call_unref(call);
}

/* ---- writable notification, outside nghttp2's callbacks ---- */

static void on_writable_due(pl_call_t *call, void *user)
{
    (void)user;
    call->writable_scheduled = false;
    if (call->writable_wanted && call->on_writable) {
        call->writable_wanted = false;
        call->on_writable(call, call->user);
    }
}

void pl_call_schedule_writable(pl_call_t *call)
{
    if (call->writable_scheduled || !call->writable_wanted)
        return;
    if (pl_call_defer(call, 0, on_writable_due) == 0)
        call->writable_scheduled = true;
}

/* ---- session list ---- */

static pl_call_t *next_in_session(const pl_call_t *call)
{
    return call->next;
}

static void link_call(pl_call_t **head, pl_call_t *call)
{
    call->prev = NULL;
    call->next = *head;
    if (*head)
        (*head)->prev = call;
    *head = call;
}

static void unlink_call(pl_call_t **head, pl_call_t *call)
{
    if (call->prev)
        call->prev->next = call->next;
    else
        *head = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->next = call->prev = NULL;
}

/* What a session does with its calls (rpc/call_conn.h). */
const pl_call_ops_t pl_call_ops = {.open = pl_call_new,
                                   .on_header = pl_call_on_header,
                                   .on_headers_end = pl_call_on_headers_end,
                                   .on_data = pl_call_on_data,
                                   .on_remote_end = pl_call_on_remote_end,
                                   .on_stream_close = pl_call_on_stream_close,
                                   .read_body = pl_call_read_body,
                                   .finish = pl_call_finish,
                                   .stream_id = pl_call_stream_id,
                                   .queued_bytes = pl_call_queued_bytes,
                                   .partial_bytes = pl_call_partial_bytes,
                                   .partial_since = pl_call_partial_since,
                                   .on_connection_writable = pl_call_on_connection_writable,
                                   .consume_held_back = pl_call_consume_held_back,
                                   .expire_partial = pl_call_expire_partial,
                                   .next = next_in_session,
                                   .link = link_call,
                                   .unlink = unlink_call};
