/* conn.h — one client connection: socket or TLS I/O, timers (handshake,
 * keepalive, idle), back-pressure, and the session on top (pl_session_ops_t
 * in server.h; HTTP/2 in parleyd).
 *
 * Memory for an idle connection is a budget: no I/O buffers are owned
 * (reads and writes go through the worker's scratch buffers); only bytes the
 * peer has not yet accepted are kept, and while any are, we stop reading. */
#ifndef PL_SERVER_TRANSPORT_CONN_H
#define PL_SERVER_TRANSPORT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "transport/worker.h"

/* Serves a new connection on fd. 0: fd is taken (closed with the
 * connection); PL_ERR_LIMIT (the peer's address has connections_per_address
 * open connections) or PL_ERR_NOMEM: fd is still the caller's. peer may be
 * NULL (not counted per address). */
int pl_conn_new(pl_worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* Closes at once: open calls are cancelled. Safe to call twice. */
void pl_conn_close(pl_conn_t *c);

/* Asks for a flush on the next loop turn (coalesces many sends into one write). */
void pl_conn_kick(pl_conn_t *c);
pl_worker_t *pl_conn_worker(const pl_conn_t *c);
/* The peer's IP address as text ("unknown" if not an IP socket). */
void pl_conn_peer(const pl_conn_t *c, char *buf, size_t len);

/* Session events the connection cares about. */
void pl_conn_on_frame(pl_conn_t *c);         /* any frame: the peer is alive and speaks h2 */
void pl_conn_on_ping_ack(pl_conn_t *c);      /* our keepalive ping was answered */
void pl_conn_on_calls_changed(pl_conn_t *c); /* a call started or ended: idle accounting */

/* Drain: shutdown notice now, final GOAWAY later, abort at the end of grace. */
void pl_conn_start_drain(pl_conn_t *c);
void pl_conn_final_goaway(pl_conn_t *c);
void pl_conn_abort(pl_conn_t *c);

/* Intrusive list links used by the worker. */
pl_conn_t *pl_conn_next(const pl_conn_t *c);
pl_conn_t *pl_conn_prev(const pl_conn_t *c);
void pl_conn_set_next(pl_conn_t *c, pl_conn_t *n);
void pl_conn_set_prev(pl_conn_t *c, pl_conn_t *p);

#endif
