/* fd_limit — connection floods at the descriptor limit, against a running
 * interop_server (started by tests/harness/with_server.py with its stderr
 * in the file --log names), one case per run:
 *
 *   fd_pause  the server's soft RLIMIT_NOFILE is lowered to --low while it
 *             runs (its max_connections was derived from a larger limit,
 *             so only the descriptor limit stops it) and 2 x --low
 *             connections arrive from two addresses: accept() fails with
 *             EMFILE, and accepting must pause rather than spin
 *   conn_cap  the server started with a cap below its descriptor limit
 *             (derived from a low limit, or --max_connections): connections
 *             past it are reset at accept, and the descriptor limit is never
 *             reached; --expect_max checks the cap the server reports
 *
 * Both measure the server over ATTACK_MS with the connections held: its CPU
 * time (/proc/PID/stat), the lines it logged, a client connected before the
 * flood calling throughout, then how soon a new client is served once the
 * flood's connections close. The figures are printed: ctest -L h2 -V.
 *
 * usage: fd_limit --port=N --pid=N --log=FILE --case=NAME [--low=N] [--expect_max=N] */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "cases.h"
#include "check.h"
#include "grpc/testing/test.parley.h"
#include "h2_wire.h"
#include "parley/channel.h"
#include "runtime/clock.h"

#define ATTACK_MS 5000
#define CALL_EVERY_MS 250
/* What a server that waits instead of spinning may spend while held at
 * its limit for ATTACK_MS (a spinning one burns a core per worker), and
 * may log (a spinning one wrote millions of lines). */
#define CPU_CEILING_S 1.0
#define LOG_LINE_CEILING 100
/* A new client must be served this soon after the flood's connections close. */
#define RECOVERY_MS 5000

static uint16_t port;
static pid_t server_pid;
static const char *log_path;
static const char *const attackers[] = {"127.0.0.2", "127.0.0.3"};

/* ---- the server, seen from outside ---- */

typedef struct log_figures {
    long lines;
    long bytes;
    long fd_pause_lines; /* "out of file descriptors" (or strerror(EMFILE), before the pause) */
    long cap_lines;      /* "at max_connections" */
    long cap;            /* the cap a cap line reports; -1: none */
} log_figures_t;

static log_figures_t read_log(void)
{
    log_figures_t lf = {0, 0, 0, 0, -1};
    FILE *f = fopen(log_path, "r");
    if (!f)
        return lf;
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        lf.bytes += (long)len;
        if (len && line[len - 1] == '\n')
            lf.lines++;
        if (strstr(line, "out of file descriptors") || strstr(line, "Too many open files"))
            lf.fd_pause_lines++;
        const char *cap = strstr(line, "at max_connections (");
        if (cap) {
            lf.cap_lines++;
            lf.cap = strtol(cap + strlen("at max_connections ("), NULL, 10);
        }
    }
    fclose(f);
    return lf;
}

static void print_log_head(void)
{
    FILE *f = fopen(log_path, "r");
    if (!f)
        return;
    char line[1024];
    for (int i = 0; i < 5 && fgets(line, sizeof(line), f); i++)
        printf("  server log: %s", line);
    fclose(f);
}

static int server_fds(void)
{
    int n = pl_test_fd_count(server_pid);
    return n < 0 ? n : n - 2; /* "." and ".." */
}

static bool set_server_fd_limit(rlim_t soft, rlim_t *old_soft)
{
    struct rlimit old, lim;
    if (prlimit(server_pid, RLIMIT_NOFILE, NULL, &old) != 0)
        return false;
    *old_soft = old.rlim_cur;
    lim.rlim_cur = soft;
    lim.rlim_max = old.rlim_max; /* the hard limit stays, so it can be restored */
    return prlimit(server_pid, RLIMIT_NOFILE, &lim, NULL) == 0;
}

/* ---- clients ---- */

static pl_channel_t *good_connect(int timeout_ms, char *err, size_t err_len)
{
    pl_channel_opts_t o = {0};
    o.host = "127.0.0.1";
    o.port = port;
    o.connect_timeout_ms = timeout_ms;
    return pl_channel_connect(&o, err, err_len);
}

/* One EmptyCall; its latency in ms, or -1 with the reason in err. */
static long good_call(pl_channel_t *ch, char *err, size_t err_len)
{
    grpc_testing_Empty req = {0}, resp = {0};
    pl_call_opts_t co = {2000, NULL, false};
    pl_status_t st = {0};
    int64_t t0 = pl_now_msec();
    pl_code_t code = grpc_testing_TestService_EmptyCall(ch, &co, &req, &resp, &st);
    long took = (long)(pl_now_msec() - t0);
    if (code != PL_CODE_OK)
        snprintf(err, err_len, "%s: %s", pl_code_name(code), st.message ? st.message : "");
    pl_status_reset(&st);
    return code == PL_CODE_OK ? took : -1;
}

/* A new client, retried until served: ms from the first attempt, or -1. */
static long new_client_served(int within_ms, char *err, size_t err_len)
{
    int64_t t0 = pl_now_msec();
    while (pl_now_msec() - t0 < within_ms) {
        pl_channel_t *ch = good_connect(1000, err, err_len);
        long took = ch ? good_call(ch, err, err_len) : -1;
        if (ch)
            pl_channel_free(ch);
        if (took >= 0)
            return (long)(pl_now_msec() - t0);
        usleep(50 * 1000);
    }
    return -1;
}

/* The flood: non-blocking connects from the attacker addresses, then the
 * client preface on each that connected (a queued connection keeps it
 * until the server accepts it). Connections not made within 3 s are
 * counted apart (the kernel may drop SYNs to a listener that waits). */
typedef struct flood {
    int *fds;
    bool *was_reset; /* reset before the connect was seen to complete */
    int count;
    int connected;
} flood_t;

static void flood_open(flood_t *fl, int count)
{
    fl->fds = calloc((size_t)count, sizeof(int));
    fl->was_reset = calloc((size_t)count, sizeof(bool));
    struct pollfd *pfd = calloc((size_t)count, sizeof(*pfd));
    if (!fl->fds || !fl->was_reset || !pfd) {
        fprintf(stderr, "fd_limit: out of memory\n");
        exit(1);
    }
    fl->count = count;
    fl->connected = 0;
    struct sockaddr_in to = {0};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in from = {0};
        from.sin_family = AF_INET;
        inet_pton(AF_INET, attackers[i % 2], &from.sin_addr);
        if (fd >= 0 && (bind(fd, (struct sockaddr *)&from, sizeof(from)) != 0 ||
                        (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 && errno != EINPROGRESS))) {
            close(fd);
            fd = -1;
        }
        fl->fds[i] = fd;
        pfd[i].fd = fd;
        pfd[i].events = POLLOUT;
    }
    int64_t deadline = pl_now_msec() + 3000;
    int pending = count;
    while (pending > 0 && pl_now_msec() < deadline) {
        if (poll(pfd, (nfds_t)count, 100) < 0)
            break;
        for (int i = 0; i < count; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            getsockopt(pfd[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
            fl->was_reset[i] = soerr == ECONNRESET;
            if (!soerr || soerr == ECONNRESET)
                fl->connected++;
            if (!soerr) {
                (void)!send(pfd[i].fd, H2W_PREFACE "\0\0\0\4\0\0\0\0\0", sizeof(H2W_PREFACE) - 1 + 9,
                            MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            pfd[i].fd = -1; /* answered: connected, refused or reset */
            pending--;
        }
    }
    free(pfd);
}

typedef struct flood_outcome {
    int served;  /* the server answered (its SETTINGS) */
    int reset;   /* reset at accept (or later) */
    int closed;  /* closed with a FIN */
    int waiting; /* no answer yet: queued, or not connected */
} flood_outcome_t;

static flood_outcome_t flood_outcome(const flood_t *fl)
{
    flood_outcome_t o = {0, 0, 0, 0};
    for (int i = 0; i < fl->count; i++) {
        char b;
        ssize_t n = fl->fds[i] < 0 ? -1 : recv(fl->fds[i], &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (fl->was_reset[i])
            o.reset++;
        else if (n > 0)
            o.served++;
        else if (n == 0)
            o.closed++;
        else if (errno == ECONNRESET || errno == EPIPE)
            o.reset++;
        else
            o.waiting++;
    }
    return o;
}

static void flood_close(flood_t *fl)
{
    for (int i = 0; i < fl->count; i++)
        if (fl->fds[i] >= 0)
            close(fl->fds[i]);
    free(fl->fds);
    free(fl->was_reset);
    fl->fds = NULL;
    fl->was_reset = NULL;
}

/* ---- the cases ---- */

typedef struct run {
    double cpu;   /* server CPU seconds over ATTACK_MS */
    int fds_peak; /* server descriptors, highest sample */
    int good_ok, good_failed;
    long good_slowest_ms;
    char good_error[200];
    flood_outcome_t outcome;
    int connected;
    long recovery_ms; /* a new client served after the flood closed; -1: not */
    char recovery_error[200];
    log_figures_t log;
} run_t;

/* Connects the well-behaved client, floods with count connections, holds
 * them for ATTACK_MS while measuring, closes them, waits for a new client
 * to be served. */
static int attack(int count, run_t *r)
{
    memset(r, 0, sizeof(*r));
    char err[200];
    pl_channel_t *good = good_connect(2000, err, sizeof(err));
    if (!CHECK(good && good_call(good, err, sizeof(err)) >= 0,
               "the well-behaved client was not served before the flood: %s", err)) {
        if (good)
            pl_channel_free(good);
        return -1;
    }
    flood_t fl;
    flood_open(&fl, count);
    r->connected = fl.connected;
    usleep(300 * 1000); /* the server takes what it can */

    double cpu0 = pl_test_cpu_seconds(server_pid);
    int64_t t0 = pl_now_msec();
    while (pl_now_msec() - t0 < ATTACK_MS) {
        int fds = server_fds();
        if (fds > r->fds_peak)
            r->fds_peak = fds;
        long took = good_call(good, err, sizeof(err));
        if (took < 0) {
            r->good_failed++;
            snprintf(r->good_error, sizeof(r->good_error), "%s", err);
        } else {
            r->good_ok++;
            if (took > r->good_slowest_ms)
                r->good_slowest_ms = took;
        }
        usleep(CALL_EVERY_MS * 1000);
    }
    r->cpu = pl_test_cpu_seconds(server_pid) - cpu0;
    r->outcome = flood_outcome(&fl);
    r->log = read_log();
    pl_channel_free(good);

    flood_close(&fl);
    r->recovery_ms = new_client_served(RECOVERY_MS, r->recovery_error, sizeof(r->recovery_error));
    return 0;
}

static void report(const run_t *r, int count)
{
    printf("flood: %d connections from %s and %s, %d connected; after %d ms held: %d served, %d reset, %d "
           "closed, %d without an answer\n",
           count, attackers[0], attackers[1], r->connected, ATTACK_MS, r->outcome.served, r->outcome.reset,
           r->outcome.closed, r->outcome.waiting);
    printf("server over %d ms: %.2f s CPU (ceiling %.1f s), %d descriptors at most; log: %ld lines, %ld bytes "
           "(%ld about the descriptor limit, %ld about max_connections)\n",
           ATTACK_MS, r->cpu, CPU_CEILING_S, r->fds_peak, r->log.lines, r->log.bytes, r->log.fd_pause_lines,
           r->log.cap_lines);
    printf("well-behaved client connected before the flood: %d calls OK, %d failed, slowest %ld ms%s%s\n", r->good_ok,
           r->good_failed, r->good_slowest_ms, r->good_failed ? "; last error: " : "",
           r->good_failed ? r->good_error : "");
    if (r->recovery_ms >= 0)
        printf("a new client was served %ld ms after the flood closed\n", r->recovery_ms);
    else
        printf("a new client was NOT served within %d ms after the flood closed: %s\n", RECOVERY_MS, r->recovery_error);
    print_log_head();
}

/* What every case requires of the server while flooded. */
static void check_common(const run_t *r)
{
    if (CHECK(r->cpu >= 0, "cannot read the server's CPU time"))
        CHECK(r->cpu < CPU_CEILING_S, "the server used %.2f s of CPU in %d ms while held at its limit (ceiling %.1f s)",
              r->cpu, ATTACK_MS, CPU_CEILING_S);
    CHECK(r->log.lines < LOG_LINE_CEILING, "the server logged %ld lines (%ld bytes) in %d ms (ceiling %d lines)",
          r->log.lines, r->log.bytes, ATTACK_MS, LOG_LINE_CEILING);
    CHECK(r->good_ok != 0 && !r->good_failed,
          "the client connected before the flood was not served throughout (%d failed)", r->good_failed);
    CHECK(r->recovery_ms >= 0, "no new client was served within %d ms of the flood closing", RECOVERY_MS);
}

static int fd_pause(int low)
{
    rlim_t old_soft = 0;
    if (!CHECK(set_server_fd_limit((rlim_t)low, &old_soft), "cannot lower the server's descriptor limit: %s",
               strerror(errno)))
        return 1;
    printf("server descriptor limit lowered from %llu to %d while running\n", (unsigned long long)old_soft, low);
    run_t r;
    int rc = attack(2 * low, &r);
    rlim_t ignored;
    set_server_fd_limit(old_soft, &ignored);
    if (rc != 0)
        return 1;
    report(&r, 2 * low);
    check_common(&r);
    CHECK(r.log.fd_pause_lines != 0,
          "the server never said it ran out of descriptors: the flood did not reach the limit (%d at most)",
          r.fds_peak);
    CHECK(r.fds_peak <= low, "the server held %d descriptors, over its limit of %d", r.fds_peak, low);
    return 0;
}

static int conn_cap(int count, long expect_max)
{
    run_t r;
    if (attack(count, &r) != 0)
        return 1;
    report(&r, count);
    check_common(&r);
    if (CHECK(r.log.cap_lines != 0 && r.log.cap >= 0, "the server never said it reached max_connections") &&
        CHECK(expect_max <= 0 || r.log.cap == expect_max, "the server's max_connections is %ld, expected %ld",
              r.log.cap, expect_max))
        CHECK(r.outcome.served + 1 <= r.log.cap, /* + the well-behaved client */
              "%d flood connections were served besides the client, over max_connections %ld", r.outcome.served,
              r.log.cap);
    CHECK(r.outcome.reset != 0, "no connection of the flood was reset at accept");
    CHECK(!r.log.fd_pause_lines, "the server ran out of descriptors despite its cap");
    return 0;
}

/* This process holds a flood's worth of sockets. */
static void raise_own_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* main's flags, for the cases pl_test_run runs */
static int case_low;
static long case_expect_max;

static int run_fd_pause(void)
{
    return fd_pause(case_low);
}

static int run_conn_cap(void)
{
    return conn_cap(2 * case_low, case_expect_max);
}

static int low = 256;

static bool fd_arg(const char *arg)
{
    if (strncmp(arg, "--log=", 6) == 0)
        log_path = arg + 6;
    else if (strncmp(arg, "--low=", 6) == 0)
        low = atoi(arg + 6);
    else if (strncmp(arg, "--expect_max=", 13) == 0)
        case_expect_max = atol(arg + 13);
    else
        return false;
    return true;
}

int main(int argc, char **argv)
{
    static const pl_test_case_t cases[] = {{"fd_pause", run_fd_pause}, {"conn_cap", run_conn_cap}};
    const char *which = NULL;
    int rc = pl_test_cases_parse(argc, argv, "fd_limit", fd_arg, &port, &server_pid, &which);
    if (rc == 0 && (!log_path || low < 16)) {
        fprintf(stderr, "usage: fd_limit --port=N --pid=N --log=FILE --case=fd_pause|conn_cap [--low=N] "
                        "[--expect_max=N]\n");
        rc = 2;
    }
    if (rc)
        return rc;
    raise_own_fd_limit();
    case_low = low;
    return pl_test_cases_run("fd_limit", cases, sizeof(cases) / sizeof(cases[0]), which);
}
