/* driver.c — fault_driver: many devices on libparley chatting through
 * whatever faults the scenario injects (driver.h; tests/fault/README.md).
 *
 *   fault_driver --server HOST:PORT [--server ...] --out DIR [options]
 *
 * 1. Registers the accounts (codes from $PARLEY_SMS_FILE), a second device
 *    for the first --multi of them, and opens direct chats (a ring, plus a
 *    chord) and three groups; writes DIR/setup.tsv.
 * 2. Starts every device (device i on server i % count) and waits until all
 *    are READY; prints "SENDING" (the scenario's clock starts there).
 * 3. The devices send for --duration seconds (--rate per second each, a
 *    share --refuse-ratio to chats their account is not in), then stop
 *    sending; prints "SENT".
 * 4. Waits (at most --quiesce seconds) until every send was answered and
 *    every accepted message reached every recipient device (the other
 *    members' devices and the sender's other devices); prints "QUIESCENT";
 *    lingers --linger seconds for late repeats; stops every client and
 *    records what was still queued.
 *
 * Each device's events are in DIR/dev<i>.tsv (device.c). Exit status: 0
 * quiescent, 3 not quiescent in time (the checker says what is missing),
 * 2 setup failed, 1 bad usage. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"
#include "sms.h"

#define READY_TIMEOUT_MS 60000
#define PROGRESS_MS 2000
#define SMS_WAIT_MS 10000

static fd_run_t run_state; /* the one run; static for its size */

int64_t fd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fd_run_ms(const fd_run_t *run)
{
    return fd_now_ms() - run->t0_ms;
}

uint64_t fd_random(uint64_t *state)
{
    /* splitmix64: reproducible from --seed */
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

fd_chat_t *fd_chat_by_id(fd_run_t *run, int64_t chat_id)
{
    for (int i = 0; i < run->nchats; i++)
        if (run->chats[i].id == chat_id)
            return &run->chats[i];
    return NULL;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%7.1fs] ", (double)fd_run_ms(&run_state) / 1000.0);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: fault_driver --server HOST:PORT [--server ...] --out DIR [options]\n"
            "\n"
            "Devices on libparley chat through faults and record every send the server\n"
            "accepted and every message each app saw (DIR/setup.tsv, DIR/dev<i>.tsv) for\n"
            "tests/fault/checker.py. Codes come from $PARLEY_SMS_FILE (or --sms-file).\n"
            "\n"
            "  --server HOST:PORT   a server; device i uses server i %% count (repeat, up to %d)\n"
            "  --out DIR            where the records go (created)\n"
            "  --sms-file FILE      the server's SMS file ($PARLEY_SMS_FILE)\n"
            "  --accounts N         accounts (default 6, 3..%d)\n"
            "  --multi N            the first N accounts get a second device (default 3)\n"
            "  --rate R             sends per second per device (default 2)\n"
            "  --duration S         seconds of sending (default 20)\n"
            "  --quiesce S          at most this long afterwards for everything to arrive (default 90)\n"
            "  --linger S           then this long for late repeats (default 2)\n"
            "  --refuse-ratio F     share of sends to chats the sender is not in (default 0.03)\n"
            "  --keepalive-ms N     libparley keepalive_timeout_ms (default 3000)\n"
            "  --heartbeat-ms N     libparley heartbeat_ms (default 1000)\n"
            "  --backoff-max-ms N   libparley backoff_max_ms (default 1000)\n"
            "  --send-timeout-ms N  libparley send_timeout_ms (default 5000)\n"
            "  --seed N             random seed (default: random)\n"
            "\n"
            "Prints SENDING when every device is ready and sending starts, SENT when it\n"
            "stops, QUIESCENT when everything arrived. Exit status: 0 quiescent, 3 not\n"
            "quiescent in time, 2 setup failed, 1 usage.\n",
            FD_MAX_SERVERS, FD_MAX_ACCOUNTS);
}

static int parse_options(int argc, char **argv, fd_options_t *o)
{
    static const struct option longs[] = {
        {"server", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},
        {"sms-file", required_argument, 0, 'S'},
        {"accounts", required_argument, 0, 'a'},
        {"multi", required_argument, 0, 'm'},
        {"rate", required_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'},
        {"quiesce", required_argument, 0, 'q'},
        {"linger", required_argument, 0, 'l'},
        {"refuse-ratio", required_argument, 0, 'R'},
        {"keepalive-ms", required_argument, 0, 'k'},
        {"heartbeat-ms", required_argument, 0, 'H'},
        {"backoff-max-ms", required_argument, 0, 'b'},
        {"send-timeout-ms", required_argument, 0, 't'},
        {"seed", required_argument, 0, 'x'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (fd_options_t){.accounts = 6,
                        .multi = 3,
                        .rate = 2,
                        .duration_s = 20,
                        .quiesce_s = 90,
                        .linger_s = 2,
                        .refuse_ratio = 0.03,
                        .keepalive_ms = 3000,
                        .heartbeat_ms = 1000,
                        .backoff_max_ms = 1000,
                        .send_timeout_ms = 5000};
    o->sms_file = getenv("PARLEY_SMS_FILE");
    if (getrandom(&o->seed, sizeof(o->seed), 0) != sizeof(o->seed))
        o->seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
    int ch;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 's':
            if (o->nservers == FD_MAX_SERVERS) {
                fprintf(stderr, "fault_driver: at most %d servers\n", FD_MAX_SERVERS);
                return -1;
            }
            o->servers[o->nservers++] = optarg;
            break;
        case 'o': o->out_dir = optarg; break;
        case 'S': o->sms_file = optarg; break;
        case 'a': o->accounts = atoi(optarg); break;
        case 'm': o->multi = atoi(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'd': o->duration_s = atof(optarg); break;
        case 'q': o->quiesce_s = atof(optarg); break;
        case 'l': o->linger_s = atof(optarg); break;
        case 'R': o->refuse_ratio = atof(optarg); break;
        case 'k': o->keepalive_ms = atoi(optarg); break;
        case 'H': o->heartbeat_ms = atoi(optarg); break;
        case 'b': o->backoff_max_ms = atoi(optarg); break;
        case 't': o->send_timeout_ms = atoi(optarg); break;
        case 'x': o->seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (optind != argc || !o->nservers || !o->out_dir) {
        fprintf(stderr, "fault_driver: --server and --out are required\n");
        return -1;
    }
    if (!o->sms_file) {
        fprintf(stderr, "fault_driver: no SMS file: set PARLEY_SMS_FILE or pass --sms-file\n");
        return -1;
    }
    if (o->accounts < 3 || o->accounts > FD_MAX_ACCOUNTS || o->multi < 0 || o->multi > o->accounts || o->rate <= 0 ||
        o->rate > 1000 || o->duration_s <= 0 || o->quiesce_s <= 0 || o->linger_s < 0 || o->refuse_ratio < 0 ||
        o->refuse_ratio > 1 || o->keepalive_ms <= 0 || o->heartbeat_ms <= 0 || o->backoff_max_ms <= 0 ||
        o->send_timeout_ms <= 0) {
        fprintf(stderr, "fault_driver: an option is out of range (see --help)\n");
        return -1;
    }
    return 0;
}

/* ---- setup ---- */

static parley_options_t client_options(const fd_run_t *run, const char *server)
{
    parley_options_t o = {0};
    o.server = server;
    o.connect_timeout_ms = 2000;
    o.call_timeout_ms = 10000;
    o.heartbeat_ms = run->opt.heartbeat_ms;
    o.keepalive_timeout_ms = run->opt.keepalive_ms;
    o.backoff_initial_ms = 100;
    o.backoff_max_ms = run->opt.backoff_max_ms;
    o.send_timeout_ms = run->opt.send_timeout_ms;
    return o;
}

/* Registers device d of its account (a new code each time: the file then
 * holds one more line for the phone). */
static int register_device(fd_run_t *run, fd_device_t *d)
{
    fd_account_t *a = &run->accounts[d->account];
    parley_options_t o = client_options(run, d->server);
    parley_error_t err = {0};
    d->c = parley_client_new(&o, &err);
    if (!d->c) {
        say("device %d: parley_client_new: %s", d->index, err.message);
        return -1;
    }
    char code[16] = "";
    int before = pl_test_sms_codes(run->opt.sms_file, a->phone, NULL, 0);
    int rc = parley_request_code(d->c, a->phone, NULL, &err);
    if (rc != PARLEY_OK) {
        say("device %d: request code for %s: %s: %s", d->index, a->phone, parley_code_name(rc), err.message);
        return -1;
    }
    if (pl_test_sms_wait(run->opt.sms_file, a->phone, before, code, sizeof(code), SMS_WAIT_MS) != 0) {
        say("device %d: no new code for %s in %s", d->index, a->phone, run->opt.sms_file);
        return -1;
    }
    char name[32];
    snprintf(name, sizeof(name), "fault-dev%d", d->index);
    parley_registration_t reg;
    rc = parley_verify(d->c, a->phone, code, name, &reg, &err);
    if (rc != PARLEY_OK) {
        say("device %d: verify %s: %s: %s", d->index, a->phone, parley_code_name(rc), err.message);
        return -1;
    }
    if (a->id && a->id != reg.account_id) {
        say("device %d: verify gave account %lld, the phone's account is %lld", d->index, (long long)reg.account_id,
            (long long)a->id);
        return -1;
    }
    a->id = reg.account_id;
    d->device_id = reg.device_id;
    snprintf(d->token, sizeof(d->token), "%s", reg.token);
    return 0;
}

/* Records the chat (members as the server says). */
static int add_chat(fd_run_t *run, const parley_chat_t *pc)
{
    if (run->nchats == FD_MAX_CHATS)
        return -1;
    fd_chat_t *ch = &run->chats[run->nchats];
    memset(ch, 0, sizeof(*ch));
    ch->index = run->nchats;
    ch->id = pc->chat_id;
    ch->kind = pc->kind;
    for (size_t i = 0; i < pc->member_count; i++) {
        for (int a = 0; a < run->naccounts; a++) {
            if (run->accounts[a].id == pc->members[i].account_id && !ch->is_member[a]) {
                ch->is_member[a] = true;
                ch->members[ch->nmembers++] = a;
            }
        }
    }
    run->nchats++;
    return 0;
}

static int open_direct(fd_run_t *run, int a, int b)
{
    fd_device_t *d = &run->devices[run->accounts[a].devices[0]];
    parley_chat_t *pc = NULL;
    parley_error_t err = {0};
    int rc = parley_open_direct_chat(d->c, run->accounts[b].id, &pc, &err);
    if (rc != PARLEY_OK) {
        say("direct chat %d-%d: %s: %s", a, b, parley_code_name(rc), err.message);
        return -1;
    }
    int r = fd_chat_by_id(run, pc->chat_id) ? 0 : add_chat(run, pc);
    parley_chat_free(pc);
    return r;
}

static int create_group(fd_run_t *run, const char *name, int creator, const bool *want)
{
    int64_t ids[FD_MAX_ACCOUNTS];
    size_t n = 0;
    for (int a = 0; a < run->naccounts; a++)
        if (want[a] && a != creator)
            ids[n++] = run->accounts[a].id;
    fd_device_t *d = &run->devices[run->accounts[creator].devices[0]];
    parley_chat_t *pc = NULL;
    parley_error_t err = {0};
    int rc = parley_create_group(d->c, name, ids, n, &pc, &err);
    if (rc != PARLEY_OK) {
        say("group %s: %s: %s", name, parley_code_name(rc), err.message);
        return -1;
    }
    int r = add_chat(run, pc);
    parley_chat_free(pc);
    return r;
}

/* Direct chats: a ring over the accounts and a chord (0, n/2); groups:
 * everyone, the even accounts, the second half plus account 1. With an
 * account in some chats and not in others, every device has chats to
 * send refused messages to. */
static int make_chats(fd_run_t *run)
{
    int n = run->naccounts;
    for (int a = 0; a < n; a++)
        if (open_direct(run, a, (a + 1) % n) != 0)
            return -1;
    if (n >= 5 && open_direct(run, 0, n / 2) != 0)
        return -1;
    bool want[FD_MAX_ACCOUNTS] = {0};
    for (int a = 0; a < n; a++)
        want[a] = true;
    if (create_group(run, "fault-all", 0, want) != 0)
        return -1;
    for (int a = 0; a < n; a++)
        want[a] = a % 2 == 0;
    if (create_group(run, "fault-even", 0, want) != 0)
        return -1;
    for (int a = 0; a < n; a++)
        want[a] = a >= n / 2 || a == 1;
    return create_group(run, "fault-half", n / 2, want);
}

static int write_setup(fd_run_t *run)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/setup.tsv", run->opt.out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        say("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f, "run\t%s\t%llu\n", run->run_tag, (unsigned long long)run->opt.seed);
    fprintf(f, "param\trate\t%g\nparam\tduration\t%g\nparam\trefuse_ratio\t%g\nparam\tkeepalive_ms\t%d\n",
            run->opt.rate, run->opt.duration_s, run->opt.refuse_ratio, run->opt.keepalive_ms);
    for (int a = 0; a < run->naccounts; a++)
        fprintf(f, "account\t%d\t%lld\t%s\n", a, (long long)run->accounts[a].id, run->accounts[a].phone);
    for (int i = 0; i < run->ndevices; i++) {
        fd_device_t *d = &run->devices[i];
        fprintf(f, "device\t%d\t%d\t%lld\t%lld\t%s\n", i, d->account, (long long)run->accounts[d->account].id,
                (long long)d->device_id, d->server);
    }
    for (int i = 0; i < run->nchats; i++) {
        fd_chat_t *ch = &run->chats[i];
        fprintf(f, "chat\t%d\t%lld\t%d\t", i, (long long)ch->id, ch->kind);
        for (int m = 0; m < ch->nmembers; m++)
            fprintf(f, "%s%lld", m ? "," : "", (long long)run->accounts[ch->members[m]].id);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        say("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int setup(fd_run_t *run)
{
    const fd_options_t *o = &run->opt;
    uint64_t rng = o->seed;
    snprintf(run->run_tag, sizeof(run->run_tag), "f%08llx", (unsigned long long)(fd_random(&rng) & 0xffffffffu));
    uint32_t base = (uint32_t)(fd_random(&rng) % 9000000u);
    run->naccounts = o->accounts;
    for (int a = 0; a < o->accounts; a++) {
        fd_account_t *acc = &run->accounts[a];
        acc->index = a;
        snprintf(acc->phone, sizeof(acc->phone), "+1555%07u", base + (uint32_t)a);
        acc->ndevices = a < o->multi ? 2 : 1;
        for (int k = 0; k < acc->ndevices; k++) {
            fd_device_t *d = &run->devices[run->ndevices];
            d->run = run;
            d->index = run->ndevices;
            d->account = a;
            d->server = o->servers[d->index % o->nservers];
            d->rng = o->seed ^ (0x1000193ull * (uint64_t)(d->index + 1));
            acc->devices[k] = d->index;
            run->ndevices++;
        }
    }
    /* in index order: an account's first device creates the account; with
     * two servers, the two devices of an account are on different ones */
    for (int i = 0; i < run->ndevices; i++)
        if (register_device(run, &run->devices[i]) != 0)
            return -1;
    say("registered %d accounts, %d devices", run->naccounts, run->ndevices);
    if (make_chats(run) != 0)
        return -1;
    say("opened %d chats", run->nchats);
    return write_setup(run);
}

/* ---- running ---- */

static int open_logs(fd_run_t *run)
{
    for (int i = 0; i < run->ndevices; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/dev%d.tsv", run->opt.out_dir, i);
        run->devices[i].log = fopen(path, "w");
        if (!run->devices[i].log) {
            say("cannot write %s: %s", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int start_devices(fd_run_t *run)
{
    for (int i = 0; i < run->ndevices; i++) {
        fd_device_t *d = &run->devices[i];
        int rc = parley_client_start(d->c);
        if (rc != PARLEY_OK) {
            say("device %d: start: %s", i, parley_code_name(rc));
            return -1;
        }
        if (fd_device_start(d) != 0) {
            say("device %d: no app thread", i);
            return -1;
        }
    }
    int64_t deadline = fd_now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        int ready = 0;
        pthread_mutex_lock(&run->mu);
        for (int i = 0; i < run->ndevices; i++)
            ready += run->devices[i].state == PARLEY_STATE_READY;
        pthread_mutex_unlock(&run->mu);
        if (ready == run->ndevices)
            return 0;
        if (fd_now_ms() > deadline) {
            say("only %d of %d devices became ready", ready, run->ndevices);
            return -1;
        }
        sleep_ms(50);
    }
}

typedef struct totals {
    uint64_t queued, answered, accepted, failed, duplicates, delivered, repeats, disconnects, bad_payloads;
    int ready, pending;
} totals_t;

/* (mu held) */
static totals_t sum(const fd_run_t *run)
{
    totals_t t = {0};
    for (int i = 0; i < run->ndevices; i++) {
        const fd_device_t *d = &run->devices[i];
        t.queued += d->queued;
        t.answered += d->answered;
        t.accepted += d->accepted;
        t.failed += d->failed;
        t.duplicates += d->duplicates;
        t.delivered += d->delivered;
        t.repeats += d->repeats;
        t.disconnects += d->disconnects;
        t.bad_payloads += d->bad_payloads;
        t.ready += d->state == PARLEY_STATE_READY;
    }
    return t;
}

static void progress(fd_run_t *run, const char *phase)
{
    pthread_mutex_lock(&run->mu);
    totals_t t = sum(run);
    pthread_mutex_unlock(&run->mu);
    say("%s: queued %llu answered %llu (accepted %llu, refused %llu, dup %llu) delivered %llu; "
        "%d/%d ready, %llu disconnects",
        phase, (unsigned long long)t.queued, (unsigned long long)t.answered, (unsigned long long)t.accepted,
        (unsigned long long)t.failed, (unsigned long long)t.duplicates, (unsigned long long)t.delivered, t.ready,
        run->ndevices, (unsigned long long)t.disconnects);
}

/* (mu held) Deliveries still missing: up to max of them described in why. */
static uint64_t missing(fd_run_t *run, char *why, size_t cap, int max)
{
    uint64_t n = 0;
    size_t len = 0;
    why[0] = '\0';
    for (int k = 0; k < run->nchats; k++) {
        fd_chat_t *ch = &run->chats[k];
        for (size_t seq = 1; seq < ch->sender_cap; seq++) {
            int sender = ch->sender_at[seq] - 1;
            if (sender < 0)
                continue;
            for (int m = 0; m < ch->nmembers; m++) {
                fd_account_t *a = &run->accounts[ch->members[m]];
                for (int j = 0; j < a->ndevices; j++) {
                    fd_device_t *d = &run->devices[a->devices[j]];
                    if (d->index == sender || fd_seen_has(&d->seen[k], (int64_t)seq))
                        continue;
                    if (n++ < (uint64_t)max && len < cap)
                        len += (size_t)snprintf(why + len, cap - len, " dev%d:chat%d#%zu", d->index, k, seq);
                }
            }
        }
    }
    return n;
}

/* Every send answered and every accepted message everywhere it belongs. */
static bool is_quiescent(fd_run_t *run, char *why, size_t cap)
{
    size_t pending = 0;
    for (int i = 0; i < run->ndevices; i++)
        pending += parley_client_pending_sends(run->devices[i].c);
    pthread_mutex_lock(&run->mu);
    totals_t t = sum(run);
    uint64_t miss = missing(run, why, cap, 8);
    pthread_mutex_unlock(&run->mu);
    if (pending || t.answered < t.queued || miss) {
        char head[160];
        snprintf(head, sizeof(head), "%zu pending, %llu unanswered, %llu deliveries missing:", pending,
                 (unsigned long long)(t.queued - t.answered), (unsigned long long)miss);
        size_t hl = strlen(head);
        if (hl + strlen(why) + 1 < cap) {
            memmove(why + hl, why, strlen(why) + 1);
            memcpy(why, head, hl);
        }
        return false;
    }
    return true;
}

static bool send_and_quiesce(fd_run_t *run)
{
    say("SENDING");
    atomic_store(&run->is_sending, true);
    int64_t start = fd_now_ms(), next = start + PROGRESS_MS;
    int64_t stop = start + (int64_t)(run->opt.duration_s * 1000);
    while (fd_now_ms() < stop) {
        sleep_ms(100);
        if (fd_now_ms() >= next) {
            progress(run, "sending");
            next += PROGRESS_MS;
        }
    }
    atomic_store(&run->is_sending, false);
    say("SENT");
    progress(run, "sent");
    int64_t deadline = fd_now_ms() + (int64_t)(run->opt.quiesce_s * 1000);
    char why[1024];
    next = fd_now_ms() + PROGRESS_MS;
    for (;;) {
        if (is_quiescent(run, why, sizeof(why))) {
            say("QUIESCENT");
            return true;
        }
        if (fd_now_ms() > deadline) {
            say("NOT QUIESCENT after %.0f s: %s", run->opt.quiesce_s, why);
            return false;
        }
        if (fd_now_ms() >= next) {
            progress(run, "waiting");
            say("  %s", why);
            next += PROGRESS_MS;
        }
        sleep_ms(100);
    }
}

static void stop_all(fd_run_t *run)
{
    atomic_store(&run->is_stopping, true);
    for (int i = 0; i < run->ndevices; i++) {
        fd_device_t *d = &run->devices[i];
        if (d->has_thread)
            pthread_join(d->thread, NULL);
        d->has_thread = false;
    }
    for (int i = 0; i < run->ndevices; i++) {
        fd_device_t *d = &run->devices[i];
        if (!d->c)
            continue;
        parley_client_stop(d->c);
        if (d->log) {
            fd_device_drain(d);
            size_t pending = parley_client_pending_sends(d->c);
            if (pending)
                fd_record(d, "P\t%lld\t%zu", (long long)fd_run_ms(run), pending);
        }
    }
}

static void dispose(fd_run_t *run)
{
    for (int i = 0; i < run->ndevices; i++) {
        fd_device_t *d = &run->devices[i];
        parley_client_free(d->c);
        d->c = NULL;
        if (d->log)
            fclose(d->log);
        d->log = NULL;
        for (int k = 0; k < FD_MAX_CHATS; k++)
            free(d->seen[k].bits);
    }
    for (int k = 0; k < run->nchats; k++)
        free(run->chats[k].sender_at);
    pthread_mutex_destroy(&run->mu);
}

int main(int argc, char **argv)
{
    fd_run_t *run = &run_state;
    pthread_mutex_init(&run->mu, NULL);
    run->t0_ms = fd_now_ms();
    if (parse_options(argc, argv, &run->opt) != 0) {
        usage(stderr);
        return 1;
    }
    if (mkdir(run->opt.out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fault_driver: cannot create %s: %s\n", run->opt.out_dir, strerror(errno));
        return 1;
    }
    say("seed %llu; %d servers", (unsigned long long)run->opt.seed, run->opt.nservers);
    int rc = 2;
    if (setup(run) == 0 && open_logs(run) == 0 && start_devices(run) == 0) {
        bool quiet = send_and_quiesce(run);
        if (quiet && run->opt.linger_s > 0)
            sleep_ms((int)(run->opt.linger_s * 1000));
        rc = quiet ? 0 : 3;
    }
    stop_all(run);
    progress(run, "stopped");
    dispose(run);
    return rc;
}
