/* worker.h — one thread, one event loop, its listening socket and its
 * connections. Nothing a worker owns is touched by another thread; other
 * threads reach it through pl_worker_post() (a lock-free queue + eventfd,
 * transport/mailbox.h). */
#ifndef PL_SERVER_TRANSPORT_WORKER_H
#define PL_SERVER_TRANSPORT_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/server.h"

struct event_base;
typedef struct pl_conn pl_conn_t;

typedef void (*pl_task_fn)(pl_worker_t *w, void *arg);

/* Takes ownership of listen_fd; -1: no listening socket (connections come
 * from pl_conn_new only, as in an in-process harness). */
pl_worker_t *pl_worker_new(pl_server_t *srv, int index, int listen_fd);
int pl_worker_start(pl_worker_t *w);
void pl_worker_join(pl_worker_t *w);
void pl_worker_free(pl_worker_t *w);

/* Runs fn(w, arg) on w's thread soon. Safe from any thread. 0 or PL_ERR_NOMEM. */
int pl_worker_post(pl_worker_t *w, pl_task_fn fn, void *arg);

struct event_base *pl_worker_base(const pl_worker_t *w);
pl_server_t *pl_worker_server(const pl_worker_t *w);
int pl_worker_index(const pl_worker_t *w);

/* Scratch buffers shared by all connections of the worker (one read and one
 * write at a time per thread), so an idle connection owns no I/O buffer. */
uint8_t *pl_worker_rx_buf(pl_worker_t *w, size_t *cap);
uint8_t *pl_worker_tx_buf(pl_worker_t *w, size_t *cap);

/* Connection registry, for drain and shutdown. */
void pl_worker_conn_added(pl_worker_t *w, pl_conn_t *c);
void pl_worker_conn_removed(pl_worker_t *w, pl_conn_t *c);
size_t pl_worker_conn_count(const pl_worker_t *w);
/* Closes every connection at once, without GOAWAY (in-process harnesses). */
void pl_worker_close_connections(pl_worker_t *w);

/* Module state slots (see pl_server_add_module). */
#define PL_WORKER_MAX_MODULES 16
void pl_worker_set_module(pl_worker_t *w, int id, void *state);

/* Starts this worker's part of a graceful shutdown (runs on w's thread). */
void pl_worker_drain(pl_worker_t *w, void *arg);

#endif
