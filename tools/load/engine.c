/* engine.c — see engine.h. One thread, one libevent loop; every device is
 * its own connection (as phones are), driven through the client runtime's
 * event-loop mode. */
#include "engine.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/v1/messaging.parley.h"
#include "runtime/clock.h"

#define RING 1024 /* send times by request id; windows stay below this */

typedef struct engine engine_t;

typedef struct dev {
    engine_t *e;
    pl_load_device_t *info;
    int index;
    pl_channel_t *ch;
    pl_ccall_t *stream;
    struct event *rev, *wev;
    pl_metadata_t md;
    bool is_ready, is_dead;
    int inflight;
    uint64_t next_request;
    uint64_t sends;
    int64_t last_direct, last_group; /* highest seq received per chat: dedup */
    /* by request id % RING; allocated only for sending, so an idle stream
     * costs the generator little more than its connection */
    int64_t *sent_at;
    bool *to_group;
} load_dev_t;

struct engine {
    const pl_load_opts_t *o;
    struct event_base *base;
    load_dev_t *devs;
    int n;
    int next_connect, next_sender;
    double tokens;
    int64_t last_tick_usec;
    bool sending, measuring;
    int64_t measure_start;
    pl_load_result_t *r;
    struct event *tick_ev, *progress_ev;
    uint64_t last_progress_delivered;
    FILE *trace;      /* PARLEY_LOAD_TRACE: every message and gap received */
    int64_t *sent_at; /* the devices' rings, one block (none when idle) */
    bool *to_group;
    unsigned run_id;
};

static long server_rss_kb(int pid)
{
    if (pid <= 0)
        return 0;
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void dev_kill(load_dev_t *d, const char *why)
{
    if (d->is_dead)
        return;
    d->is_dead = true;
    if (d->is_ready)
        d->e->r->streams_lost++;
    if (!d->e->o->quiet)
        fprintf(stderr, "parley-load: device %d: %s\n", d->index, why);
    if (d->rev)
        event_del(d->rev);
    if (d->wev)
        event_del(d->wev);
}

static void send_one(load_dev_t *d)
{
    engine_t *e = d->e;
    const pl_load_opts_t *o = e->o;
    bool group = d->info->group_chat && o->group_ratio > 0 && (double)(d->sends % 1000) < o->group_ratio * 1000.0;
    int64_t chat = group ? d->info->group_chat : d->info->direct_chat;
    if (!chat)
        return;
    uint8_t payload[4096];
    size_t plen = (size_t)o->payload_bytes;
    if (plen < 16)
        plen = 16;
    if (plen > sizeof(payload))
        plen = sizeof(payload);
    int64_t now = pl_now_usec();
    memset(payload, 'p', plen);
    for (int i = 0; i < 8; i++)
        payload[i] = (uint8_t)((uint64_t)now >> (56 - 8 * i));
    parley_v1_ClientEvent ev = {0};
    ev.request_id = ++d->next_request;
    ev.which_event = parley_v1_ClientEvent_send_tag;
    /* unique across runs too: a reused device set must not look like retries */
    snprintf(ev.event.send.client_message_id, sizeof(ev.event.send.client_message_id), "L%08x-%d-%llu", e->run_id,
             d->index, (unsigned long long)d->next_request);
    ev.event.send.chat_id = chat;
    ev.event.send.payload = pl_bytes_of(payload, plen);
    snprintf(ev.event.send.content_type, sizeof(ev.event.send.content_type), "load");
    d->sent_at[ev.request_id % RING] = now;
    d->to_group[ev.request_id % RING] = group;
    if (pl_ccall_send(d->stream, &ev) != 0) {
        dev_kill(d, "stream ended while sending");
        return;
    }
    d->sends++;
    d->inflight++;
    e->r->sent++;
}

static void watch_write(load_dev_t *d)
{
    if (!d->is_dead && pl_channel_wants_write(d->ch))
        event_add(d->wev, NULL);
}

static void on_event(load_dev_t *d, const parley_v1_ServerEvent *ev)
{
    engine_t *e = d->e;
    pl_load_result_t *r = e->r;
    int64_t now = pl_now_usec();
    switch (ev->which_event) {
    case parley_v1_ServerEvent_ready_tag:
        if (!d->is_ready) {
            d->is_ready = true;
            r->ready++;
        }
        break;
    case parley_v1_ServerEvent_accepted_tag: {
        d->inflight--;
        if (ev->event.accepted.duplicate)
            r->duplicate_acks++;
        bool group = d->to_group[ev->request_id % RING];
        if (e->measuring && d->sent_at[ev->request_id % RING] >= e->measure_start) {
            r->accepted++;
            r->expected += group ? (uint64_t)(e->o->group_size - 1) : 1;
            pl_hist_add(&r->ack, now - d->sent_at[ev->request_id % RING]);
        }
        if (e->sending && e->o->rate == 0)
            send_one(d);
        break;
    }
    case parley_v1_ServerEvent_error_tag: {
        d->inflight--;
        int code = ev->event.error.code;
        if (code >= 0 && code <= PL_CODE_MAX)
            r->errors[code]++;
        if (e->sending && e->o->rate == 0)
            send_one(d);
        break;
    }
    case parley_v1_ServerEvent_gap_tag:
        if (e->trace)
            fprintf(e->trace, "gap %lld %lld %lld %lld\n", (long long)d->info->device_id,
                    (long long)ev->event.gap.chat_id, (long long)ev->event.gap.from_seq,
                    (long long)ev->event.gap.to_seq);
        break;
    case parley_v1_ServerEvent_message_tag: {
        const parley_v1_Message *m = &ev->event.message;
        if (m->sender_device_id == d->info->device_id)
            break;
        if (e->trace)
            fprintf(e->trace, "%lld %lld %lld %lld\n", (long long)d->info->device_id, (long long)m->chat_id,
                    (long long)m->seq, (long long)m->sender_device_id);
        int64_t *last = m->chat_id == d->info->group_chat ? &d->last_group : &d->last_direct;
        if (m->seq <= *last) {
            r->duplicates++;
            break;
        }
        *last = m->seq;
        if (m->payload.len >= 8 && strcmp(m->content_type, "load") == 0) {
            uint64_t sent = 0;
            for (int i = 0; i < 8; i++)
                sent = sent << 8 | m->payload.data[i];
            if (e->measuring && e->sending)
                r->window_deliveries++;
            /* only messages sent during the measured window count */
            if (e->measuring && (int64_t)sent >= e->measure_start) {
                r->delivered++;
                pl_hist_add(&r->deliver, now - (int64_t)sent);
            }
        }
        break;
    }
    default: break;
    }
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    load_dev_t *d = arg;
    if (d->is_dead)
        return;
    if (pl_channel_pump(d->ch, 0) != 0) {
        dev_kill(d, pl_channel_error(d->ch));
        return;
    }
    parley_v1_ServerEvent ev;
    for (;;) {
        memset(&ev, 0, sizeof(ev));
        int rc = pl_ccall_try_recv(d->stream, &ev);
        if (rc == 1) {
            on_event(d, &ev);
            continue;
        }
        if (rc != PL_CCALL_PENDING) {
            pl_status_t st = {0};
            pl_ccall_finish(d->stream, &st);
            char why[200];
            snprintf(why, sizeof(why), "stream ended: %s %s", pl_code_name(st.code), st.message ? st.message : "");
            pl_status_reset(&st);
            dev_kill(d, why);
            return;
        }
        break;
    }
    watch_write(d);
}

static int dev_connect(load_dev_t *d)
{
    engine_t *e = d->e;
    const pl_load_target_t *t = &e->o->targets[d->index % e->o->ntargets];
    pl_channel_opts_t co = {.host = t->host,
                            .port = t->port,
                            .use_tls = t->use_tls,
                            .ca_file = t->ca_file,
                            .server_name = t->server_name,
                            .connect_timeout_ms = 10000};
    char err[256];
    d->ch = pl_channel_connect(&co, err, sizeof(err));
    if (!d->ch) {
        e->r->connect_failures++;
        if (!e->o->quiet && e->r->connect_failures <= 5)
            fprintf(stderr, "parley-load: connect: %s\n", err);
        return -1;
    }
    char bearer[128];
    snprintf(bearer, sizeof(bearer), "Bearer %s", d->info->token);
    pl_metadata_init(&d->md, 8192);
    pl_metadata_add(&d->md, "authorization", bearer, strlen(bearer));
    pl_call_opts_t opts = {.metadata = &d->md};
    d->stream = parley_v1_Messaging_Connect_start(d->ch, &opts);
    int fd = pl_channel_fd(d->ch);
    d->rev = event_new(e->base, fd, EV_READ | EV_PERSIST, on_io, d);
    d->wev = event_new(e->base, fd, EV_WRITE, on_io, d);
    if (!d->stream || !d->rev || !d->wev || event_add(d->rev, NULL) != 0) {
        e->r->connect_failures++;
        return -1;
    }
    e->r->connected++;
    watch_write(d);
    return 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_t *e = arg;
    const pl_load_opts_t *o = e->o;
    int64_t now = pl_now_usec();
    double dt = (double)(now - e->last_tick_usec) / 1e6;
    e->last_tick_usec = now;
    /* connect at the ramp rate */
    if (e->next_connect < e->n) {
        int quota = (int)(o->ramp * dt + 0.5);
        if (quota < 1)
            quota = 1;
        for (int i = 0; i < quota && e->next_connect < e->n; i++)
            dev_connect(&e->devs[e->next_connect++]);
    }
    if (!e->sending || o->rate == 0)
        return;
    e->tokens += o->rate * dt;
    if (e->tokens > o->rate) /* never more than a second of backlog */
        e->tokens = o->rate;
    int tries = 0;
    while (e->tokens >= 1 && tries < e->n) {
        load_dev_t *d = &e->devs[e->next_sender];
        e->next_sender = (e->next_sender + 1) % e->n;
        if (!d->is_ready || d->is_dead || d->inflight >= o->window) {
            tries++;
            continue;
        }
        tries = 0;
        send_one(d);
        watch_write(d);
        e->tokens -= 1;
    }
}

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    engine_t *e = arg;
    pl_load_result_t *r = e->r;
    if (e->o->quiet)
        return;
    uint64_t d = r->delivered - e->last_progress_delivered;
    e->last_progress_delivered = r->delivered;
    uint64_t errors = 0;
    for (int i = 1; i <= PL_CODE_MAX; i++)
        errors += r->errors[i];
    fprintf(stderr,
            "\rparley-load: conns %d ready %d | sent %llu accepted %llu delivered %llu (%llu/s) | p50 %.2f p99 %.2f ms "
            "| errors %llu   ",
            r->connected, r->ready, (unsigned long long)r->sent, (unsigned long long)r->accepted,
            (unsigned long long)r->delivered, (unsigned long long)d,
            (double)pl_hist_percentile(&r->deliver, 50) / 1000.0, (double)pl_hist_percentile(&r->deliver, 99) / 1000.0,
            (unsigned long long)errors);
}

/* Runs the loop for ms milliseconds, or until done() says so. */
static void run_for(engine_t *e, int64_t ms, bool (*done)(engine_t *))
{
    int64_t end = pl_now_usec() + ms * 1000;
    while (pl_now_usec() < end && !(done && done(e)))
        event_base_loop(e->base, EVLOOP_ONCE);
}

static bool all_ready(engine_t *e)
{
    return e->next_connect >= e->n && e->r->ready + (e->n - e->r->connected) + e->r->streams_lost >= e->n;
}

static bool drained(engine_t *e)
{
    for (int i = 0; i < e->n; i++)
        if (!e->devs[i].is_dead && e->devs[i].inflight > 0)
            return false;
    return e->r->delivered >= e->r->expected;
}

/* What pl_load_run allocated for itself (the devices' own resources are
 * freed one by one before). */
static void engine_release(engine_t *e)
{
    if (e->base)
        event_base_free(e->base);
    free(e->devs);
    free(e->sent_at);
    free(e->to_group);
    if (e->trace)
        fclose(e->trace);
}

int pl_load_run(const pl_load_opts_t *o, pl_load_device_t *infos, int n, pl_load_result_t *r, char *err, size_t err_len)
{
    engine_t e = {.o = o, .n = n, .r = r};
    memset(r, 0, sizeof(*r));
    r->devices = n;
    e.base = event_base_new();
    e.run_id = (unsigned)pl_now_usec() ^ ((unsigned)getpid() << 16);
    if (getenv("PARLEY_LOAD_TRACE"))
        e.trace = fopen(getenv("PARLEY_LOAD_TRACE"), "w");
    e.devs = calloc((size_t)n, sizeof(load_dev_t));
    if (!o->idle) {
        e.sent_at = calloc((size_t)n * RING, sizeof(int64_t));
        e.to_group = calloc((size_t)n * RING, sizeof(bool));
    }
    if (!e.base || !e.devs || (!o->idle && (!e.sent_at || !e.to_group))) {
        engine_release(&e);
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        e.devs[i] = (load_dev_t){.e = &e, .info = &infos[i], .index = i};
        if (e.sent_at) {
            e.devs[i].sent_at = e.sent_at + (size_t)i * RING;
            e.devs[i].to_group = e.to_group + (size_t)i * RING;
        }
    }
    r->rss_before_kb = server_rss_kb(o->server_pid);
    e.last_tick_usec = pl_now_usec();
    e.tick_ev = event_new(e.base, -1, EV_PERSIST, on_tick, &e);
    e.progress_ev = event_new(e.base, -1, EV_PERSIST, on_progress, &e);
    struct timeval tick = {0, 1000}, second = {1, 0};
    event_add(e.tick_ev, &tick);
    event_add(e.progress_ev, &second);

    /* connect everything, each stream to Ready */
    int64_t budget_ms = (int64_t)(n / (o->ramp > 0 ? o->ramp : 1000) * 1000) + 60000;
    run_for(&e, budget_ms, all_ready);
    if (o->idle) {
        run_for(&e, 2000, NULL); /* let the server settle */
        r->rss_after_kb = server_rss_kb(o->server_pid);
        int64_t start = pl_now_usec();
        run_for(&e, (int64_t)o->duration_s * 1000, NULL);
        r->seconds = (double)(pl_now_usec() - start) / 1e6;
    } else {
        e.sending = true;
        for (int i = 0; o->rate == 0 && i < n; i++)
            for (int k = 0; e.devs[i].is_ready && !e.devs[i].is_dead && k < o->window; k++) {
                send_one(&e.devs[i]);
                watch_write(&e.devs[i]);
            }
        run_for(&e, (int64_t)o->warmup_s * 1000, NULL);
        memset(&r->deliver, 0, sizeof(r->deliver));
        memset(&r->ack, 0, sizeof(r->ack));
        e.measuring = true;
        e.measure_start = pl_now_usec();
        run_for(&e, (int64_t)o->duration_s * 1000, NULL);
        r->seconds = (double)(pl_now_usec() - e.measure_start) / 1e6;
        e.sending = false;
        r->rss_after_kb = server_rss_kb(o->server_pid);
        /* let everything sent arrive */
        /* a backlog (sends accepted faster than they fan out) keeps
         * arriving: wait while deliveries progress, up to 2 minutes; only
         * what has not come after 5 s without progress counts as lost */
        uint64_t seen = r->delivered;
        int64_t last_progress = pl_now_usec(), give_up = last_progress + 120 * 1000000LL;
        while (!drained(&e) && pl_now_usec() - last_progress < 5000000LL && pl_now_usec() < give_up) {
            run_for(&e, 500, drained);
            if (r->delivered != seen) {
                seen = r->delivered;
                last_progress = pl_now_usec();
            }
        }
        e.measuring = false;
        r->lost = r->expected > r->delivered ? r->expected - r->delivered : 0;
    }
    if (!o->quiet)
        fprintf(stderr, "\n");
    for (int i = 0; i < n; i++) {
        load_dev_t *d = &e.devs[i];
        if (d->rev)
            event_free(d->rev);
        if (d->wev)
            event_free(d->wev);
        if (d->stream)
            pl_ccall_free(d->stream);
        if (d->ch)
            pl_channel_free(d->ch);
        if (d->ch)
            pl_metadata_dispose(&d->md);
    }
    event_free(e.tick_ev);
    event_free(e.progress_ev);
    engine_release(&e);
    return 0;
}
