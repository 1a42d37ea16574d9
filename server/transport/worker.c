/* worker.c — a worker thread: accept loop (with its pause at the descriptor
 * limit), mailbox, drain sequence. */
#include "transport/worker.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/errors.h"
#include "transport/conn.h"
#include "transport/mailbox.h"

#define RX_BUF_SIZE (64 * 1024)
#define TX_BUF_SIZE (64 * 1024)
#define ACCEPTS_PER_WAKEUP 64
/* Between the shutdown notice and the final GOAWAY: long enough for a client
 * to see the notice and stop opening streams (gRPC servers use one RTT or 1 s). */
#define DRAIN_NOTICE_MS 1000
/* At the descriptor limit (or another error that a retry would only
 * repeat) the listener stays readable: accepting stops for this long. */
#define ACCEPT_PAUSE_MS 100
/* ... and says so in the log at most this often per worker. */
#define ACCEPT_PAUSE_LOG_MS 10000

typedef struct task {
    pl_mail_t mail; /* first: a task is its mail */
    pl_task_fn fn;
    void *arg;
} task_t;

struct pl_worker {
    pl_server_t *server;
    int index;
    pthread_t thread;
    bool started;
    struct event_base *base;

    int listen_fd;
    struct event *accept_ev;
    struct event *resume_ev;  /* ends a pause of accept_ev */
    int reserve_fd;           /* spent at the descriptor limit to refuse one connection; -1: none */
    uint64_t pauses_unlogged; /* pauses since the last log line */
    int64_t pause_logged_ms;  /* 0: never */

    pl_mailbox_t mailbox;
    struct event *mailbox_ev;

    uint8_t *rx_buf, *tx_buf;

    pl_conn_t *conns; /* intrusive list via pl_conn_next/prev */
    size_t conn_count;

    bool draining;
    struct event *goaway_ev, *grace_ev;

    void *modules[PL_WORKER_MAX_MODULES];
};

static void worker_maybe_exit(pl_worker_t *w)
{
    if (w->draining && w->conn_count == 0)
        event_base_loopbreak(w->base);
}

/* Closes a connection with a reset, so that neither side keeps any state
 * (no FIN handshake, no TIME_WAIT here). */
static void close_with_reset(int fd)
{
    struct linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(fd);
}

static void reserve_open(pl_worker_t *w)
{
    if (w->reserve_fd < 0)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of descriptors, the oldest waiting connection gets a reset rather
 * than no answer: the reserve descriptor is given up for the time of one
 * accept and close, then taken back (another thread may get it first:
 * then the accept fails too, and the reserve is retried after the pause). */
static void refuse_one_with_reserve(pl_worker_t *w)
{
    if (w->reserve_fd < 0)
        return;
    close(w->reserve_fd);
    w->reserve_fd = -1;
    int cfd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd >= 0)
        close_with_reset(cfd);
    reserve_open(w);
}

static void log_pause(pl_worker_t *w, int err, uint64_t node_pauses)
{
    int64_t now = pl_now_msec();
    w->pauses_unlogged++;
    if (w->pause_logged_ms && now - w->pause_logged_ms < ACCEPT_PAUSE_LOG_MS)
        return;
    char limit[32] = "unknown";
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        snprintf(limit, sizeof(limit), "%llu", (unsigned long long)rl.rlim_cur);
    if (err == EMFILE || err == ENFILE)
        fprintf(stderr,
                "parleyd: worker %d: accept: out of file descriptors%s (limit %s, %zu connections on this "
                "worker); pausing accepts for %d ms (%llu pauses here since the last report, %llu on the node)\n",
                w->index, err == ENFILE ? " system-wide" : "", limit, w->conn_count, ACCEPT_PAUSE_MS,
                (unsigned long long)w->pauses_unlogged, (unsigned long long)node_pauses);
    else
        fprintf(stderr,
                "parleyd: worker %d: accept: %s; pausing accepts for %d ms (%llu pauses here since the last "
                "report)\n",
                w->index, strerror(err), ACCEPT_PAUSE_MS, (unsigned long long)w->pauses_unlogged);
    w->pause_logged_ms = now ? now : 1;
    w->pauses_unlogged = 0;
}

/* accept() failed in a way that retrying at once would repeat: the
 * listener is level-triggered and stays readable, so the loop would spin.
 * Stop watching it for ACCEPT_PAUSE_MS (on_accept_resume). */
static void pause_accepts(pl_worker_t *w, int err)
{
    uint64_t node_pauses = 0;
    if (err == EMFILE || err == ENFILE) {
        refuse_one_with_reserve(w);
        node_pauses = pl_server_count_fd_pause(w->server);
    }
    log_pause(w, err, node_pauses);
    struct timeval pause = {0, ACCEPT_PAUSE_MS * 1000};
    if (w->resume_ev && evtimer_add(w->resume_ev, &pause) == 0)
        event_del(w->accept_ev);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_worker_t *w = arg;
    if (w->draining || w->listen_fd < 0)
        return;
    reserve_open(w);
    event_add(w->accept_ev, NULL);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    pl_worker_t *w = arg;
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && !w->draining; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int cfd = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            /* a connection that failed while it waited is not the listener's
             * failure: take the next one */
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                pause_accepts(w, errno);
            return;
        }
        int one = 1;
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int rc = pl_conn_new(w, cfd, (struct sockaddr *)&ss, sl);
        if (rc == PL_ERR_LIMIT) /* max_connections or connections_per_address */
            close_with_reset(cfd);
        else if (rc != 0)
            close(cfd);
    }
}

static void on_mailbox(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_worker_t *w = arg;
    pl_mailbox_woken(&w->mailbox);
    pl_mail_t *m;
    while ((m = pl_mailbox_pop(&w->mailbox))) {
        task_t *t = (task_t *)m;
        t->fn(w, t->arg);
        free(t);
    }
}

pl_worker_t *pl_worker_new(pl_server_t *srv, int index, int listen_fd)
{
    pl_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->server = srv;
    w->index = index;
    w->listen_fd = listen_fd;
    w->reserve_fd = -1;
    w->mailbox.fd = -1;
    struct event_config *ec = event_config_new();
    if (ec) {
        /* one thread per base: no internal locking needed */
        event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
        w->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    int mailbox_rc = pl_mailbox_init(&w->mailbox);
    w->rx_buf = malloc(RX_BUF_SIZE);
    w->tx_buf = malloc(TX_BUF_SIZE);
    if (!w->base || mailbox_rc != 0 || !w->rx_buf || !w->tx_buf)
        goto fail;
    if (listen_fd >= 0) {
        w->accept_ev = event_new(w->base, listen_fd, EV_READ | EV_PERSIST, on_accept, w);
        w->resume_ev = evtimer_new(w->base, on_accept_resume, w);
        if (!w->accept_ev || !w->resume_ev || event_add(w->accept_ev, NULL))
            goto fail;
        reserve_open(w); /* without it, the pause alone still holds */
    }
    w->mailbox_ev = event_new(w->base, w->mailbox.fd, EV_READ | EV_PERSIST, on_mailbox, w);
    if (!w->mailbox_ev || event_add(w->mailbox_ev, NULL))
        goto fail;
    return w;
fail:
    pl_worker_free(w);
    return NULL;
}

static void *worker_main(void *arg)
{
    pl_worker_t *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int pl_worker_start(pl_worker_t *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return PL_ERR_NOMEM;
    w->started = true;
    return 0;
}

void pl_worker_join(pl_worker_t *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void pl_worker_free(pl_worker_t *w)
{
    if (!w)
        return;
    /* connections left (a forced stop) are closed without ceremony */
    while (w->conns)
        pl_conn_close(w->conns);
    /* tasks that arrived after the loop ended still run (they own memory) */
    if (w->mailbox.fd >= 0)
        on_mailbox(w->mailbox.fd, EV_READ, w);
    pl_server_stop_modules(w->server, w);
    if (w->accept_ev)
        event_free(w->accept_ev);
    if (w->resume_ev)
        event_free(w->resume_ev);
    if (w->reserve_fd >= 0)
        close(w->reserve_fd);
    if (w->mailbox_ev)
        event_free(w->mailbox_ev);
    if (w->goaway_ev)
        event_free(w->goaway_ev);
    if (w->grace_ev)
        event_free(w->grace_ev);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    pl_mailbox_dispose(&w->mailbox);
    if (w->base)
        event_base_free(w->base);
    free(w->rx_buf);
    free(w->tx_buf);
    free(w);
}

int pl_worker_post(pl_worker_t *w, pl_task_fn fn, void *arg)
{
    task_t *t = malloc(sizeof(*t));
    if (!t)
        return PL_ERR_NOMEM;
    t->fn = fn;
    t->arg = arg;
    return pl_mailbox_push(&w->mailbox, &t->mail) == 0 ? 0 : PL_ERR_IO;
}

struct event_base *pl_worker_base(const pl_worker_t *w)
{
    return w->base;
}

void pl_worker_set_module(pl_worker_t *w, int id, void *state)
{
    if (id >= 0 && id < PL_WORKER_MAX_MODULES)
        w->modules[id] = state;
}

void *pl_worker_module(const pl_worker_t *w, int id)
{
    return id >= 0 && id < PL_WORKER_MAX_MODULES ? w->modules[id] : NULL;
}
pl_server_t *pl_worker_server(const pl_worker_t *w)
{
    return w->server;
}
int pl_worker_index(const pl_worker_t *w)
{
    return w->index;
}

uint8_t *pl_worker_rx_buf(pl_worker_t *w, size_t *cap)
{
    *cap = RX_BUF_SIZE;
    return w->rx_buf;
}

uint8_t *pl_worker_tx_buf(pl_worker_t *w, size_t *cap)
{
    *cap = TX_BUF_SIZE;
    return w->tx_buf;
}

void pl_worker_conn_added(pl_worker_t *w, pl_conn_t *c)
{
    pl_conn_set_next(c, w->conns);
    pl_conn_set_prev(c, NULL);
    if (w->conns)
        pl_conn_set_prev(w->conns, c);
    w->conns = c;
    w->conn_count++;
}

void pl_worker_conn_removed(pl_worker_t *w, pl_conn_t *c)
{
    pl_conn_t *prev = pl_conn_prev(c), *next = pl_conn_next(c);
    if (prev)
        pl_conn_set_next(prev, next);
    else
        w->conns = next;
    if (next)
        pl_conn_set_prev(next, prev);
    w->conn_count--;
    worker_maybe_exit(w);
}

size_t pl_worker_conn_count(const pl_worker_t *w)
{
    return w->conn_count;
}

void pl_worker_close_connections(pl_worker_t *w)
{
    while (w->conns)
        pl_conn_close(w->conns);
}

/* Each pass may close connections, so walk with the next pointer saved. */
static void for_each_conn(pl_worker_t *w, void (*fn)(pl_conn_t *))
{
    pl_conn_t *c = w->conns;
    while (c) {
        pl_conn_t *next = pl_conn_next(c);
        fn(c);
        c = next;
    }
}

static void on_goaway_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    for_each_conn(arg, pl_conn_final_goaway);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_worker_t *w = arg;
    for_each_conn(w, pl_conn_abort);
    worker_maybe_exit(w);
}

void pl_worker_drain(pl_worker_t *w, void *arg)
{
    (void)arg;
    if (w->draining)
        return;
    w->draining = true;
    if (w->accept_ev)
        event_del(w->accept_ev);
    if (w->resume_ev)
        event_del(w->resume_ev);
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    w->listen_fd = -1;
    pl_server_run_drain_hooks(w->server, w);
    for_each_conn(w, pl_conn_start_drain);

    const pl_server_config_t *cfg = pl_server_config(w->server);
    struct timeval notice = {DRAIN_NOTICE_MS / 1000, (DRAIN_NOTICE_MS % 1000) * 1000};
    struct timeval grace = {cfg->drain_grace_ms / 1000, (cfg->drain_grace_ms % 1000) * 1000};
    w->goaway_ev = evtimer_new(w->base, on_goaway_due, w);
    w->grace_ev = evtimer_new(w->base, on_grace_over, w);
    if (w->goaway_ev)
        evtimer_add(w->goaway_ev, &notice);
    if (w->grace_ev)
        evtimer_add(w->grace_ev, &grace);
    worker_maybe_exit(w);
}
