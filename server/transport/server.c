/* server.c — the server object: configuration defaults, the method
 * registry, listening sockets, the workers' lifecycle, TLS reload and
 * connection admission. */
#include "transport/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/errors.h"
#include "transport/tls.h"
#include "transport/worker.h"

#define LISTEN_BACKLOG 4096
#define MAX_SERVICES 128
#define MAX_DESCRIPTOR_SETS 16
#define MAX_DRAIN_HOOKS 16
#define MAX_MODULES 16
/* Per-address connection counters: two rows of keyed-hash slots (a
 * count-min sketch). An address's count is the smaller of its two slots, so
 * a collision can only make a limit stricter, and it takes a collision in
 * both rows (with a secret key) to do that. 2 x 16384 x 4 bytes. */
#define ADDR_ROWS 2
#define ADDR_SLOTS 16384
/* Descriptors kept out of max_connections when it is derived from the
 * descriptor limit: stdio, files opened on reloads, connections made
 * outside the workers, a sanitizer's own; each worker's are worker_fds. */
#define FD_RESERVE 64
#define DEFAULT_WORKER_FDS 16
/* Refusals at max_connections are logged at most this often. */
#define CAP_LOG_INTERVAL_MS 10000

typedef struct module {
    pl_module_start_fn start;
    pl_module_stop_fn stop;
    void *arg;
} module_t;

typedef struct drain_hook {
    pl_drain_hook_fn fn;
    void *arg;
} drain_hook_t;

struct pl_server {
    const pl_session_ops_t *session; /* what connections carry */
    pl_server_config_t cfg;
    pl_call_limits_t call_limits; /* from cfg, for the call layer */
    char *host;

    pl_method_entry_t *methods; /* sorted by path after start */
    size_t method_count, method_cap;
    const char *services[MAX_SERVICES];
    size_t service_count;
    const pl_descriptor_set_t *sets[MAX_DESCRIPTOR_SETS];
    size_t set_count;
    drain_hook_t hooks[MAX_DRAIN_HOOKS];
    size_t hook_count;
    module_t modules[MAX_MODULES];
    int module_count;

    _Atomic(SSL_CTX *) tls;
    char *tls_cert, *tls_key, *tls_client_ca; /* kept for reloads */
    pl_worker_t **workers;
    int worker_count;
    uint16_t port;
    bool started;
    volatile int draining;

    uint64_t addr_key[2]; /* SipHash key for the per-address table */
    EVP_MAC *siphash;
    _Atomic uint32_t addr_count[ADDR_ROWS][ADDR_SLOTS];

    uint64_t fd_limit;                           /* RLIMIT_NOFILE (soft) when the server was made */
    _Atomic uint32_t open_conns;                 /* against cfg.max_connections */
    _Atomic uint64_t cap_refusals;               /* connections reset at max_connections */
    _Atomic uint64_t fd_pauses;                  /* accept pauses at the descriptor limit, all workers */
    _Atomic uint64_t defences[PL_DEFENCE_COUNT]; /* per-connection defences fired */
    _Atomic int64_t cap_logged_ms;               /* last log line about max_connections; 0: none yet */
};

/* What the configuration leaves to the machine: the worker count and the
 * descriptors a worker holds. Every other value comes from the option table
 * (config/config.c), the one place defaults are written. */
static void derive(pl_server_config_t *cfg)
{
    if (cfg->workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (int)n : 1;
    }
    if (!cfg->worker_fds)
        cfg->worker_fds = DEFAULT_WORKER_FDS;
}

/* The soft descriptor limit (what accept() runs into), or UINT32_MAX when
 * there is none. */
static uint64_t fd_limit_now(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > UINT32_MAX)
        return UINT32_MAX;
    return (uint64_t)rl.rlim_cur;
}

/* max_connections below the descriptor limit, so that accepting clients
 * never takes the descriptors the node's own connections (databases,
 * cache, listeners) and files need: a configured value only lowers it.
 * With a limit too small for the reserve, half of it. */
static uint32_t effective_max_connections(const pl_server_config_t *cfg, uint64_t fd_limit)
{
    uint64_t reserve = FD_RESERVE + (uint64_t)cfg->workers * cfg->worker_fds;
    uint64_t room = fd_limit > 2 * reserve ? fd_limit - reserve : fd_limit / 2;
    if (room < 1)
        room = 1;
    if (cfg->max_connections && cfg->max_connections < room)
        room = cfg->max_connections;
    return room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
}

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

const pl_session_ops_t *pl_server_session(const pl_server_t *srv)
{
    return srv->session;
}

pl_server_t *pl_server_new(const pl_server_config_t *cfg, const pl_session_ops_t *session)
{
    pl_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return NULL;
    srv->session = session;
    srv->cfg = *cfg;
    derive(&srv->cfg);
    srv->fd_limit = fd_limit_now();
    srv->cfg.max_connections = effective_max_connections(&srv->cfg, srv->fd_limit);
    srv->host = strdup(srv->cfg.host);
    if (!srv->host) {
        free(srv);
        return NULL;
    }
    srv->cfg.host = srv->host;
    srv->call_limits = (pl_call_limits_t){srv->cfg.max_recv_message, srv->cfg.max_send_message, srv->cfg.max_metadata,
                                          srv->cfg.call_outbound_limit, srv->cfg.message_timeout_ms};
    srv->siphash = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
    if (!srv->siphash || RAND_bytes((unsigned char *)srv->addr_key, sizeof(srv->addr_key)) != 1) {
        EVP_MAC_free(srv->siphash);
        free(srv->host);
        free(srv);
        return NULL;
    }
    if (cfg->tls_cert_file && cfg->tls_cert_file[0] && cfg->tls_key_file && cfg->tls_key_file[0]) {
        srv->tls_cert = strdup(cfg->tls_cert_file);
        srv->tls_key = strdup(cfg->tls_key_file);
        srv->tls_client_ca = dup_or_null(cfg->tls_client_ca_file);
        char err[512];
        SSL_CTX *ctx = NULL;
        if (!srv->tls_cert || !srv->tls_key ||
            (cfg->tls_client_ca_file && cfg->tls_client_ca_file[0] && !srv->tls_client_ca))
            snprintf(err, sizeof(err), "out of memory");
        else
            ctx = pl_tls_server_ctx_new(srv->tls_cert, srv->tls_key, srv->tls_client_ca, err, sizeof(err));
        if (!ctx) {
            fprintf(stderr, "parleyd: %s\n", err);
            srv->cfg.host = NULL;
            pl_server_free(srv);
            return NULL;
        }
        atomic_init(&srv->tls, ctx);
    }
    /* the strings are the caller's: only the copies above are kept */
    srv->cfg.tls_cert_file = srv->tls_cert;
    srv->cfg.tls_key_file = srv->tls_key;
    srv->cfg.tls_client_ca_file = srv->tls_client_ca;
    return srv;
}

void pl_server_free(pl_server_t *srv)
{
    if (!srv)
        return;
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_free(srv->workers[i]);
    free(srv->workers);
    free(srv->methods);
    SSL_CTX *tls = atomic_load(&srv->tls);
    if (tls)
        SSL_CTX_free(tls);
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv->tls_client_ca);
    EVP_MAC_free(srv->siphash);
    free(srv->host);
    free(srv);
}

/* ---- TLS context and its reload ----
 *
 * Readers (workers, on accept) load the pointer and call SSL_new, which
 * takes its own reference, within one event callback. A reload swaps in
 * the new context, then sends every worker a "grace" task through its
 * mailbox: a worker runs tasks only between callbacks, so once all of them
 * ran it, no worker can still be between its load of the old pointer and
 * its SSL_new, and the server's reference to the old context is dropped.
 * Connections accepted earlier hold their own references through their SSL. */

typedef struct tls_grace {
    SSL_CTX *old;
    atomic_int pending; /* workers yet to pass, plus one for the reloader */
} tls_grace_t;

static void tls_grace_done(tls_grace_t *g)
{
    if (atomic_fetch_sub(&g->pending, 1) == 1) {
        SSL_CTX_free(g->old);
        free(g);
    }
}

static void on_tls_grace(pl_worker_t *w, void *arg)
{
    (void)w;
    tls_grace_done(arg);
}

SSL_CTX *pl_server_tls_ctx(const pl_server_t *srv)
{
    return atomic_load_explicit(&((pl_server_t *)srv)->tls, memory_order_acquire);
}

void pl_server_tls_describe(const pl_server_t *srv, char *out, size_t len)
{
    pl_tls_describe(pl_server_tls_ctx(srv), out, len);
}

int pl_server_reload_tls(pl_server_t *srv, char *err, size_t err_len)
{
    if (!atomic_load(&srv->tls)) {
        snprintf(err, err_len, "TLS is not enabled (no certificate configured)");
        return -1;
    }
    SSL_CTX *fresh = pl_tls_server_ctx_new(srv->tls_cert, srv->tls_key, srv->tls_client_ca, err, err_len);
    if (!fresh)
        return -1;
    SSL_CTX *old = atomic_exchange_explicit(&srv->tls, fresh, memory_order_acq_rel);
    if (!srv->started) { /* no worker thread can hold it */
        SSL_CTX_free(old);
        return 0;
    }
    tls_grace_t *g = malloc(sizeof(*g));
    if (!g)
        return 0; /* out of memory: the old context leaks rather than risk a use after free */
    g->old = old;
    atomic_init(&g->pending, srv->worker_count + 1);
    bool all_posted = true;
    for (int i = 0; i < srv->worker_count; i++) {
        /* PL_ERR_IO still queued the task (only the wake-up failed) */
        if (pl_worker_post(srv->workers[i], on_tls_grace, g) == PL_ERR_NOMEM)
            all_posted = false;
    }
    if (all_posted)
        tls_grace_done(g); /* else: leak g and old, for the same reason */
    return 0;
}

/* ---- connections on the node, and per address ---- */

/* SipHash (OpenSSL's) of a 16-byte address block under the server's
 * secret key, so a client cannot pick addresses that collide with
 * another's. false if OpenSSL fails (out of memory). */
static bool addr_hash(const pl_server_t *srv, const uint64_t m[2], uint64_t *h)
{
    uint64_t out[2];
    size_t len = 0;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(srv->siphash);
    bool ok = ctx && EVP_MAC_init(ctx, (const unsigned char *)srv->addr_key, sizeof(srv->addr_key), NULL) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)m, sizeof(out)) == 1 &&
              EVP_MAC_final(ctx, (unsigned char *)out, &len, sizeof(out)) == 1 && len == sizeof(out);
    EVP_MAC_CTX_free(ctx);
    if (ok)
        *h = out[0];
    return ok;
}

/* IPv4 by address; IPv6 by its /64 (what one subscriber usually gets);
 * IPv4-mapped IPv6 as IPv4. false for other families. */
static bool addr_block(const void *sa_ptr, unsigned len, uint64_t m[2])
{
    const struct sockaddr *sa = sa_ptr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    uint8_t b[16] = {0};
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        memcpy(b, &((const struct sockaddr_in *)sa_ptr)->sin_addr, 4);
        b[15] = 4;
    } else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa_ptr)->sin6_addr.s6_addr;
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(b, a + 12, 4);
            b[15] = 4;
        } else {
            memcpy(b, a, 8);
            b[15] = 6;
        }
    } else {
        return false;
    }
    memcpy(m, b, 16);
    return true;
}

/* One more refusal at max_connections; a line in the log when the last one
 * is CAP_LOG_INTERVAL_MS old (one worker wins the exchange and writes it). */
static void note_cap_refusal(pl_server_t *srv)
{
    uint64_t n = atomic_fetch_add(&srv->cap_refusals, 1) + 1;
    int64_t now = pl_now_msec();
    int64_t last = atomic_load(&srv->cap_logged_ms);
    if (last && now - last < CAP_LOG_INTERVAL_MS)
        return;
    if (!atomic_compare_exchange_strong(&srv->cap_logged_ms, &last, now ? now : 1))
        return;
    fprintf(stderr,
            "parleyd: at max_connections (%u open on this node, descriptor limit %llu): new connections are reset "
            "at accept (%llu so far; next report in %d s at the earliest)\n",
            srv->cfg.max_connections, (unsigned long long)srv->fd_limit, (unsigned long long)n,
            CAP_LOG_INTERVAL_MS / 1000);
}

/* Takes a place among the node's max_connections: false when they are all
 * taken (no lock: every admitted caller saw fewer than the maximum before
 * its own increment, so never more get in). */
static bool node_admit(pl_server_t *srv)
{
    if (atomic_fetch_add(&srv->open_conns, 1) < srv->cfg.max_connections)
        return true;
    atomic_fetch_sub(&srv->open_conns, 1);
    note_cap_refusal(srv);
    return false;
}

bool pl_server_conn_admit(pl_server_t *srv, const void *sockaddr, unsigned addr_len, pl_addr_slot_t *slot)
{
    slot->row[0] = slot->row[1] = 0;
    slot->is_counted = false;
    if (!node_admit(srv))
        return false;
    slot->is_counted = true;
    uint64_t m[2], h;
    if (!addr_block(sockaddr, addr_len, m) || !addr_hash(srv, m, &h))
        return true;
    /* slot 0 of each row is never used, so {0,0} can mean "not counted" */
    uint32_t idx[ADDR_ROWS] = {1 + (uint32_t)(h % (ADDR_SLOTS - 1)), 1 + (uint32_t)((h >> 32) % (ADDR_SLOTS - 1))};
    for (int r = 0; r < ADDR_ROWS; r++)
        atomic_fetch_add(&srv->addr_count[r][idx[r]], 1);
    /* Read back after both increments: of racing admissions for one
     * address, the last to finish incrementing sees all of them, so never
     * more than the limit get in (some may be refused near it). */
    uint32_t n = UINT32_MAX;
    for (int r = 0; r < ADDR_ROWS; r++) {
        uint32_t v = atomic_load(&srv->addr_count[r][idx[r]]);
        n = v < n ? v : n;
    }
    if (n > srv->cfg.connections_per_address) {
        for (int r = 0; r < ADDR_ROWS; r++)
            atomic_fetch_sub(&srv->addr_count[r][idx[r]], 1);
        pl_server_conn_release(srv, slot);
        return false;
    }
    slot->row[0] = idx[0];
    slot->row[1] = idx[1];
    return true;
}

void pl_server_conn_release(pl_server_t *srv, pl_addr_slot_t *slot)
{
    if (slot->is_counted)
        atomic_fetch_sub(&srv->open_conns, 1);
    slot->is_counted = false;
    if (!slot->row[0])
        return;
    for (int r = 0; r < ADDR_ROWS; r++)
        atomic_fetch_sub(&srv->addr_count[r][slot->row[r]], 1);
    slot->row[0] = slot->row[1] = 0;
}

void pl_server_conn_stats(const pl_server_t *srv, pl_server_conn_stats_t *out)
{
    pl_server_t *s = (pl_server_t *)srv; /* atomics are read, not changed */
    out->open = atomic_load(&s->open_conns);
    out->max = srv->cfg.max_connections;
    out->fd_limit = srv->fd_limit;
    out->cap_refusals = atomic_load(&s->cap_refusals);
    out->fd_pauses = atomic_load(&s->fd_pauses);
}

const char *pl_defence_name(pl_defence_t d)
{
    static const char *const names[PL_DEFENCE_COUNT] = {
        [PL_DEFENCE_RAPID_RESET] = "rapid_reset",       [PL_DEFENCE_FRAME_FLOOD] = "frame_flood",
        [PL_DEFENCE_HEADER_LIST] = "header_list",       [PL_DEFENCE_NO_CREDIT] = "no_credit",
        [PL_DEFENCE_SLOW_HEADERS] = "slow_headers",     [PL_DEFENCE_OUTBOUND_BUDGET] = "outbound_budget",
        [PL_DEFENCE_INBOUND_BUDGET] = "inbound_budget", [PL_DEFENCE_MESSAGE_TIMEOUT] = "message_timeout",
    };
    return d < PL_DEFENCE_COUNT ? names[d] : "?";
}

uint64_t pl_server_defence_fired(pl_server_t *srv, pl_defence_t d)
{
    return atomic_fetch_add_explicit(&srv->defences[d], 1, memory_order_relaxed) + 1;
}

uint64_t pl_server_defence_count(const pl_server_t *srv, pl_defence_t d)
{
    return atomic_load_explicit(&((pl_server_t *)srv)->defences[d], memory_order_relaxed);
}

uint64_t pl_server_count_fd_pause(pl_server_t *srv)
{
    return atomic_fetch_add(&srv->fd_pauses, 1) + 1;
}

const pl_server_config_t *pl_server_config(const pl_server_t *srv)
{
    return &srv->cfg;
}
const pl_call_limits_t *pl_server_call_limits(const pl_server_t *srv)
{
    return &srv->call_limits;
}
uint16_t pl_server_port(const pl_server_t *srv)
{
    return srv->port;
}
bool pl_server_is_draining(const pl_server_t *srv)
{
    return srv->draining != 0;
}
pl_worker_t *pl_server_worker(const pl_server_t *srv, int i)
{
    return srv->workers[i];
}
size_t pl_server_service_count(const pl_server_t *srv)
{
    return srv->service_count;
}
const char *pl_server_service_name(const pl_server_t *srv, size_t i)
{
    return srv->services[i];
}
size_t pl_server_descriptor_set_count(const pl_server_t *srv)
{
    return srv->set_count;
}
const pl_descriptor_set_t *pl_server_descriptor_set(const pl_server_t *srv, size_t i)
{
    return srv->sets[i];
}

bool pl_server_has_service(const pl_server_t *srv, const char *name)
{
    for (size_t i = 0; i < srv->service_count; i++)
        if (strcmp(srv->services[i], name) == 0)
            return true;
    return false;
}

int pl_server_add_service(pl_server_t *srv, const pl_service_desc_t *desc, const pl_method_impl_t *impls,
                          const void *handlers, void *svc)
{
    if (srv->started || srv->service_count == MAX_SERVICES || pl_server_has_service(srv, desc->name))
        return PL_ERR_INVALID;
    if (srv->method_count + desc->method_count > srv->method_cap) {
        size_t cap = srv->method_cap ? srv->method_cap * 2 : 32;
        while (cap < srv->method_count + desc->method_count)
            cap *= 2;
        pl_method_entry_t *m = realloc(srv->methods, cap * sizeof(*m));
        if (!m)
            return PL_ERR_NOMEM;
        srv->methods = m;
        srv->method_cap = cap;
    }
    for (size_t i = 0; i < desc->method_count; i++) {
        pl_method_entry_t *e = &srv->methods[srv->method_count++];
        e->impl = impls[i];
        e->handlers = handlers;
        e->svc = svc;
    }
    srv->services[srv->service_count++] = desc->name;
    return 0;
}

int pl_server_add_descriptors(pl_server_t *srv, const pl_descriptor_set_t *set)
{
    if (srv->started || srv->set_count == MAX_DESCRIPTOR_SETS)
        return PL_ERR_INVALID;
    for (size_t i = 0; i < srv->set_count; i++)
        if (srv->sets[i] == set)
            return 0;
    srv->sets[srv->set_count++] = set;
    return 0;
}

int pl_server_on_drain(pl_server_t *srv, pl_drain_hook_fn fn, void *arg)
{
    if (srv->started || srv->hook_count == MAX_DRAIN_HOOKS)
        return PL_ERR_INVALID;
    srv->hooks[srv->hook_count].fn = fn;
    srv->hooks[srv->hook_count].arg = arg;
    srv->hook_count++;
    return 0;
}

int pl_server_add_module(pl_server_t *srv, pl_module_start_fn start, pl_module_stop_fn stop, void *arg)
{
    if (srv->started || srv->module_count == MAX_MODULES || !start)
        return PL_ERR_INVALID;
    srv->modules[srv->module_count] = (module_t){start, stop, arg};
    return srv->module_count++;
}

static int start_modules(pl_server_t *srv, pl_worker_t *w)
{
    for (int i = 0; i < srv->module_count; i++) {
        void *state = srv->modules[i].start(w, srv->modules[i].arg);
        if (!state)
            return -1;
        pl_worker_set_module(w, i, state);
    }
    return 0;
}

void pl_server_stop_modules(pl_server_t *srv, pl_worker_t *w)
{
    for (int i = srv->module_count - 1; i >= 0; i--) {
        void *state = pl_worker_module(w, i);
        if (state && srv->modules[i].stop)
            srv->modules[i].stop(w, state, srv->modules[i].arg);
        pl_worker_set_module(w, i, NULL);
    }
}

void pl_server_run_drain_hooks(pl_server_t *srv, pl_worker_t *w)
{
    for (size_t i = 0; i < srv->hook_count; i++)
        srv->hooks[i].fn(w, srv->hooks[i].arg);
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const pl_method_entry_t *)a)->impl.method->path, ((const pl_method_entry_t *)b)->impl.method->path);
}

const pl_method_entry_t *pl_server_find_method(const pl_server_t *srv, const char *path, size_t len)
{
    size_t lo = 0, hi = srv->method_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *p = srv->methods[mid].impl.method->path;
        int c = strncmp(p, path, len);
        if (c == 0)
            c = p[len] == '\0' ? 0 : 1;
        if (c == 0)
            return &srv->methods[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* One SO_REUSEPORT socket per worker: the kernel spreads connections over
 * the workers without a shared accept lock. A probe (shared false, not
 * listening) binds without SO_REUSEPORT, which fails while any process
 * listens on the port: a second parleyd started by mistake on the same port
 * would otherwise share its connections silently. */
static int open_socket(const char *host, uint16_t port, bool shared, uint16_t *bound, char *err, size_t err_len)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", port);
    int rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_len, "cannot resolve listen address %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (shared)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || (shared && listen(fd, LISTEN_BACKLOG) != 0)) {
        snprintf(err, err_len, "cannot listen on %s:%u: %s%s", host, port, strerror(errno),
                 errno == EADDRINUSE ? " (another server, perhaps parleyd, listens there)" : "");
        close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* The probe of open_socket: -1 (with err) if another process listens on
 * the configured port. Port 0 picks a free one, so nothing to check. */
static int check_port_free(const pl_server_t *srv, char *err, size_t err_len)
{
    if (srv->cfg.port == 0)
        return 0;
    uint16_t ignored;
    int probe = open_socket(srv->cfg.host, srv->cfg.port, false, &ignored, err, err_len);
    if (probe < 0)
        return -1;
    close(probe);
    return 0;
}

int pl_server_start(pl_server_t *srv, char *err, size_t err_len)
{
    qsort(srv->methods, srv->method_count, sizeof(*srv->methods), entry_cmp);
    if (check_port_free(srv, err, err_len) != 0)
        return -1;
    srv->workers = calloc((size_t)srv->cfg.workers, sizeof(*srv->workers));
    if (!srv->workers) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uint16_t port = srv->cfg.port;
    for (int i = 0; i < srv->cfg.workers; i++) {
        uint16_t bound = 0;
        int fd = open_socket(srv->cfg.host, port, true, &bound, err, err_len);
        if (fd < 0)
            goto fail;
        port = bound; /* port 0: the first socket picks, the others share it */
        pl_worker_t *w = pl_worker_new(srv, i, fd);
        if (!w) {
            close(fd);
            snprintf(err, err_len, "cannot create worker %d", i);
            goto fail;
        }
        srv->workers[srv->worker_count++] = w;
        if (start_modules(srv, w) != 0) {
            snprintf(err, err_len, "worker %d: a module failed to start", i);
            goto fail;
        }
    }
    srv->port = port;
    srv->started = true;
    for (int i = 0; i < srv->worker_count; i++) {
        if (pl_worker_start(srv->workers[i]) != 0) {
            snprintf(err, err_len, "cannot start worker thread %d", i);
            for (int j = 0; j < i; j++)
                pl_worker_post(srv->workers[j], pl_worker_drain, NULL);
            for (int j = 0; j < i; j++)
                pl_worker_join(srv->workers[j]);
            return -1;
        }
    }
    return 0;
fail:
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_free(srv->workers[i]);
    srv->worker_count = 0;
    return -1;
}

int pl_server_start_inline(pl_server_t *srv, char *err, size_t err_len)
{
    qsort(srv->methods, srv->method_count, sizeof(*srv->methods), entry_cmp);
    if (check_port_free(srv, err, err_len) != 0)
        return -1;
    srv->workers = calloc(1, sizeof(*srv->workers));
    if (!srv->workers) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    pl_worker_t *w = pl_worker_new(srv, 0, -1);
    if (!w) {
        snprintf(err, err_len, "cannot create the worker");
        return -1;
    }
    srv->workers[srv->worker_count++] = w;
    if (start_modules(srv, w) != 0) {
        snprintf(err, err_len, "a module failed to start");
        return -1;
    }
    srv->cfg.workers = 1;
    srv->started = true;
    return 0;
}

void pl_server_drain(pl_server_t *srv)
{
    if (__atomic_exchange_n(&srv->draining, 1, __ATOMIC_SEQ_CST))
        return;
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_post(srv->workers[i], pl_worker_drain, NULL);
}

void pl_server_wait(pl_server_t *srv)
{
    for (int i = 0; i < srv->worker_count; i++)
        pl_worker_join(srv->workers[i]);
}
