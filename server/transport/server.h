/* server.h — the gRPC server: configuration, service registry, lifecycle,
 * TLS reload and connection admission.
 *
 * A server owns N workers (server/transport/worker.h), each with its own
 * event loop, listening socket (SO_REUSEPORT) and connections. Services are
 * registered before pl_server_start(); the registry is read-only afterwards,
 * so workers read it without locks. */
#ifndef PL_SERVER_TRANSPORT_SERVER_H
#define PL_SERVER_TRANSPORT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/descriptors.h"
#include "runtime/rpc.h"

/* Filled from the option table (config/config.c: pl_config_load), whose
 * defaults are the ones named below; workers 0 and worker_fds 0 are
 * derived from the machine at pl_server_new. */
typedef struct pl_server_config {
    const char *host;          /* listen address; default "127.0.0.1" */
    uint16_t port;             /* 0: pick a free port (see pl_server_port) */
    int workers;               /* 0: one per core */
    const char *tls_cert_file; /* both set: TLS with ALPN h2; else h2c */
    const char *tls_key_file;
    const char *tls_client_ca_file;  /* set: clients must present a certificate it signed (mTLS) */
    uint32_t max_recv_message;       /* bytes; default 4 MiB */
    uint32_t max_send_message;       /* bytes; default 4 MiB */
    uint32_t max_metadata;           /* request header list bytes; default 8 KiB */
    uint32_t max_concurrent_streams; /* per connection; default 100 */
    uint32_t initial_window;         /* HTTP/2 stream window; default 1 MiB */
    uint32_t call_outbound_limit;    /* queued response bytes per call; default 1 MiB */
    uint32_t conn_outbound_limit;    /* queued response bytes per connection; default 16 MiB */
    uint32_t inbound_buffer;         /* partial request messages buffered per connection; default 4 MiB */
    uint32_t inbound_buffer_unauth;  /* ... before a call on it authenticated; default 1 MiB */
    int message_timeout_ms;          /* time to receive one request message once begun; default 60 s */
    int keepalive_time_ms;           /* ping an idle connection after; default 120 s */
    int keepalive_timeout_ms;        /* close if the ping is not answered; default 20 s */
    int idle_timeout_ms;             /* close a connection without calls after; default 30 min */
    int handshake_timeout_ms;        /* TLS handshake + client preface; default 10 s */
    int drain_grace_ms;              /* in-flight calls' time to finish on drain; default 10 s */
    /* Flood and abuse limits (see http2/session.c and transport/conn.c). */
    uint32_t connections_per_address; /* open connections per client IP (IPv6: /64); default 1000 */
    uint32_t max_connections;         /* open connections on the node; 0, or more than the descriptor
                                       * limit allows: RLIMIT_NOFILE (soft, at pl_server_new) less
                                       * 64 and worker_fds per worker */
    uint32_t worker_fds;              /* descriptors a worker holds besides its client connections (event
                                       * loop, listener, mailbox, its modules' database and cache
                                       * connections); default 16 */
    uint32_t reset_burst;             /* RST_STREAM frames a client may send at once; default 1000 */
    uint32_t reset_rate;              /* ... and per second after that; default 33 */
    uint32_t useless_burst;           /* frames without request progress at once; default 1000 */
    uint32_t useless_rate;            /* ... and per second after that; default 100 */
    int send_timeout_ms;              /* drop a peer that takes none of our output for; default 60 s */
    int header_timeout_ms;            /* time to finish a frame header or request header block; default 10 s */
} pl_server_config_t;

/* A server whose connections carry session (which outlives it; below). */
typedef struct pl_session_ops pl_session_ops_t;
pl_server_t *pl_server_new(const pl_server_config_t *cfg, const pl_session_ops_t *session);
void pl_server_free(pl_server_t *srv);

/* Makes a descriptor set available to reflection. */
int pl_server_add_descriptors(pl_server_t *srv, const pl_descriptor_set_t *set);

/* Binds and starts the workers. 0, or -1 with a message in err. */
int pl_server_start(pl_server_t *srv, char *err, size_t err_len);
/* The bound port (after start). */
uint16_t pl_server_port(const pl_server_t *srv);
/* Reloads the TLS certificate, key and client CA from the files the server
 * was configured with, for connections accepted from now on; open
 * connections keep the context they were accepted with. On failure the old
 * context stays and err says why. Call from one thread at a time (the
 * signal-handling thread). */
int pl_server_reload_tls(pl_server_t *srv, char *err, size_t err_len);
/* The TLS context new connections use (NULL: h2c). Workers read it without
 * a lock; a context replaced by a reload is freed only after every worker
 * has passed through its event loop (an RCU-style grace period through the
 * worker mailboxes), so a pointer loaded during one event callback stays
 * valid until that callback returns. */
struct ssl_ctx_st *pl_server_tls_ctx(const pl_server_t *srv);
/* One line about the current certificate (subject, serial, expiry), for logs. */
void pl_server_tls_describe(const pl_server_t *srv, char *out, size_t len);

/* Connection accounting, shared by every worker of the node, in atomics (no
 * lock): the node's open connections against max_connections, and per
 * address, a counting table against connections_per_address. admit returns
 * false when either is reached (the caller resets the connection); a true
 * return fills *slot, which release takes back. Addresses other than
 * IPv4/IPv6 count only against max_connections. Refusals at the node's cap
 * are counted and logged at most every 10 s. */
typedef struct pl_addr_slot {
    uint32_t row[2]; /* 0,0: not counted per address */
    bool is_counted; /* counted in the node's open connections */
} pl_addr_slot_t;
bool pl_server_conn_admit(pl_server_t *srv, const void *sockaddr, unsigned addr_len, pl_addr_slot_t *slot);
void pl_server_conn_release(pl_server_t *srv, pl_addr_slot_t *slot);

/* What the node-wide connection defences did, for logs and metrics. Safe
 * from any thread; each figure is read on its own (not a snapshot). */
typedef struct pl_server_conn_stats {
    uint64_t open;         /* connections open now */
    uint64_t max;          /* the effective max_connections */
    uint64_t fd_limit;     /* the descriptor limit it was derived from */
    uint64_t cap_refusals; /* connections reset at accept at max_connections */
    uint64_t fd_pauses;    /* times a worker paused accepting for want of descriptors */
} pl_server_conn_stats_t;
void pl_server_conn_stats(const pl_server_t *srv, pl_server_conn_stats_t *out);
/* Counts one pause of a worker's accepts at the descriptor limit; returns
 * the node's total so far. */
uint64_t pl_server_count_fd_pause(pl_server_t *srv);

/* The per-connection defences (http2/session.c, transport/conn.c, the
 * call's budgets), counted node-wide for logs and metrics. */
typedef enum pl_defence {
    PL_DEFENCE_RAPID_RESET,     /* RST_STREAM over its budget */
    PL_DEFENCE_FRAME_FLOOD,     /* frames without progress, invalid frames, frames on closed streams */
    PL_DEFENCE_HEADER_LIST,     /* header blocks over max_metadata (decoding stopped) */
    PL_DEFENCE_NO_CREDIT,       /* output stalled for want of flow-control credit */
    PL_DEFENCE_SLOW_HEADERS,    /* a frame or header block trickled in too slowly */
    PL_DEFENCE_OUTBOUND_BUDGET, /* a response refused or held: the connection's queue was full */
    PL_DEFENCE_INBOUND_BUDGET,  /* incomplete request messages over the connection's cap */
    PL_DEFENCE_MESSAGE_TIMEOUT, /* a request message not complete within message_timeout_ms */
    PL_DEFENCE_COUNT
} pl_defence_t;

/* ---- the protocol a connection carries ----
 *
 * A connection (conn.c) moves bytes and keeps time; what the bytes mean is
 * up to its session, which the server is given: HTTP/2 (http2/session.h)
 * is the one Parley serves. The session is also what calls see as their
 * connection (rpc/call_conn.h). Times are pl_now_msec, 0 for "not". */
typedef struct pl_conn pl_conn_t;
typedef struct pl_call_conn pl_session_t;
struct pl_session_ops {
    /* A session for a new connection, its preface queued; NULL: no memory. */
    pl_session_t *(*open)(pl_conn_t *conn, pl_server_t *srv);
    /* Cancels every open call, then frees the session. */
    void (*close)(pl_session_t *s);
    /* Received bytes: 0, or -1 when the connection must close at once
     * (floods and limits instead queue a GOAWAY and return 0). */
    int (*recv)(pl_session_t *s, const uint8_t *data, size_t len);
    /* The next chunk of output, valid until the next call: its length, 0
     * when there is nothing to send, -1 on a fatal error. */
    long (*send)(pl_session_t *s, const uint8_t **data);
    /* False once both sides are done, or once an error GOAWAY went out. */
    bool (*wants_io)(const pl_session_t *s);
    bool (*has_calls)(const pl_session_t *s);
    /* Since when a frame header, control frame or request header block has
     * been arriving without completing; the oldest incomplete request
     * message began; calls have waited without flow-control credit. */
    int64_t (*incomplete_since)(const pl_session_t *s);
    int64_t (*partial_since)(const pl_session_t *s);
    int64_t (*stalled_since)(const pl_session_t *s);
    /* Ends the calls whose request message began at or before a time. */
    void (*expire_partials)(pl_session_t *s, int64_t begun_before_ms);
    /* A defence of the connection's fired (counted, logged once per kind
     * with detail): the session ends with GOAWAY ENHANCE_YOUR_CALM, reason. */
    void (*defend)(pl_session_t *s, pl_defence_t kind, const char *detail, const char *reason);
    void (*ping)(pl_session_t *s);
    /* Draining: a shutdown notice, later the final GOAWAY, and at the end
     * of the grace every open call ended with UNAVAILABLE. */
    void (*shutdown_notice)(pl_session_t *s);
    void (*goaway)(pl_session_t *s);
    void (*abort_calls)(pl_session_t *s);
};

const pl_session_ops_t *pl_server_session(const pl_server_t *srv);
const char *pl_defence_name(pl_defence_t d);
/* Counts one firing (any thread); the node's total so far. */
uint64_t pl_server_defence_fired(pl_server_t *srv, pl_defence_t d);
uint64_t pl_server_defence_count(const pl_server_t *srv, pl_defence_t d);

/* For in-process harnesses (fuzzing): prepares the registry and one worker
 * without a listening socket or a thread; the caller drives the worker's
 * event base (pl_worker_base) itself and feeds it connections with
 * pl_conn_new. Stop with pl_server_free. */
int pl_server_start_inline(pl_server_t *srv, char *err, size_t err_len);

/* Begins a graceful shutdown: stop accepting, GOAWAY, let calls finish for
 * drain_grace_ms, then cancel the rest. Safe from any thread. */
void pl_server_drain(pl_server_t *srv);
/* Waits until every worker has stopped. */
void pl_server_wait(pl_server_t *srv);

const pl_server_config_t *pl_server_config(const pl_server_t *srv);
/* The part of the configuration a call keeps (the call layer sees no more). */
const pl_call_limits_t *pl_server_call_limits(const pl_server_t *srv);
const pl_method_entry_t *pl_server_find_method(const pl_server_t *srv, const char *path, size_t len);
bool pl_server_is_draining(const pl_server_t *srv);

/* Registered service names and descriptor sets, for reflection and health. */
size_t pl_server_service_count(const pl_server_t *srv);
const char *pl_server_service_name(const pl_server_t *srv, size_t i);
bool pl_server_has_service(const pl_server_t *srv, const char *name);
size_t pl_server_descriptor_set_count(const pl_server_t *srv);
const pl_descriptor_set_t *pl_server_descriptor_set(const pl_server_t *srv, size_t i);

/* Workers, for code that needs to reach every loop (e.g. health Watch). */
typedef struct pl_worker pl_worker_t;
pl_worker_t *pl_server_worker(const pl_server_t *srv, int i);

/* Per-worker state of a module (a database pool, a cache connection). start
 * runs for each worker before its thread starts (on the caller's thread,
 * with the worker's event base ready) and returns the worker's state, NULL
 * to fail the server's start; stop runs after the worker's thread ended and
 * its connections closed. Both before pl_server_start / from pl_server_free.
 * Returns the module's id for pl_worker_module(), or a negative error. */
typedef void *(*pl_module_start_fn)(pl_worker_t *w, void *arg);
typedef void (*pl_module_stop_fn)(pl_worker_t *w, void *state, void *arg);
int pl_server_add_module(pl_server_t *srv, pl_module_start_fn start, pl_module_stop_fn stop, void *arg);
void *pl_worker_module(const pl_worker_t *w, int id);
/* Runs every module's stop for w (called by the worker as it is freed). */
void pl_server_stop_modules(pl_server_t *srv, pl_worker_t *w);

/* A hook run on every worker's thread when the server starts draining. */
typedef void (*pl_drain_hook_fn)(pl_worker_t *w, void *arg);
int pl_server_on_drain(pl_server_t *srv, pl_drain_hook_fn fn, void *arg);
void pl_server_run_drain_hooks(pl_server_t *srv, pl_worker_t *w);

#endif
