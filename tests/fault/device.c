/* device.c — one device's app thread in the fault driver (driver.h): it
 * sends at the run's rate while the run is sending, takes every event its
 * client delivers, and records both in the device's file, one
 * tab-separated line each (checker.py reads them):
 *
 *   Q  t local_id chat client_id expect   a send queued (expect: 0 accepted, 1 refused)
 *   X  t chat client_id code              parley_client_send itself said no
 *   A  t local_id chat seq client_id dup  SEND_ACCEPTED (dup: the server had it already)
 *   F  t local_id chat client_id code message                     SEND_FAILED
 *   M  t chat seq sender_account sender_device client_id system payload_ok   MESSAGE
 *   G  t chat from to                     GAP
 *   S  t state code reason                STATE
 *   E  t code request chat message        ERROR
 *
 * t is milliseconds since the run started. The counters the driver needs
 * for quiescence and progress are kept under the run's mutex. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

#define MAX_SEQ (1 << 24) /* seqs past this are not tracked for quiescence (recorded all the same) */
#define TURN_MS 50        /* the longest an app turn waits for events */

static void clean(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; in && *in && n + 1 < cap; in++)
        out[n++] = (*in == '\t' || *in == '\n' || *in == '\r') ? ' ' : *in;
    out[n] = '\0';
}

void fd_record(fd_device_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(d->log, fmt, ap);
    va_end(ap);
    fputc('\n', d->log);
}

bool fd_seen_has(const fd_seen_t *s, int64_t seq)
{
    if (seq < 0 || seq >= MAX_SEQ)
        return false;
    size_t byte = (size_t)seq / 8;
    return byte < s->cap && (s->bits[byte] & (1u << (seq % 8)));
}

bool fd_seen_mark(fd_seen_t *s, int64_t seq)
{
    if (seq < 0 || seq >= MAX_SEQ)
        return false;
    size_t byte = (size_t)seq / 8;
    if (byte >= s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap <= byte)
            cap *= 2;
        uint8_t *bits = realloc(s->bits, cap);
        if (!bits)
            abort(); /* a test program: no way to go on without the record */
        memset(bits + s->cap, 0, cap - s->cap);
        s->bits = bits;
        s->cap = cap;
    }
    bool had = s->bits[byte] & (1u << (seq % 8));
    s->bits[byte] |= (uint8_t)(1u << (seq % 8));
    return had;
}

size_t fd_payload(const char *cid, int64_t chat_id, char *buf, size_t cap)
{
    uint32_t h = 2166136261u; /* FNV-1a of the id: the filler's length and letters */
    for (const char *p = cid; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    int n = snprintf(buf, cap, "%s|%lld|", cid, (long long)chat_id);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    size_t len = (size_t)n, fill = h % 97;
    for (size_t i = 0; i < fill && len + 1 < cap; i++)
        buf[len++] = (char)('a' + (h >> (i % 24)) % 26);
    buf[len] = '\0';
    return len;
}

/* Picks the chat of the next send: now and then one the account is not in
 * (the server must refuse it), otherwise one of its own. */
static fd_chat_t *pick_chat(fd_device_t *d, bool *expect_refused)
{
    fd_run_t *run = d->run;
    fd_chat_t *mine[FD_MAX_CHATS], *others[FD_MAX_CHATS];
    int nmine = 0, nothers = 0;
    for (int i = 0; i < run->nchats; i++) {
        fd_chat_t *ch = &run->chats[i];
        if (ch->is_member[d->account])
            mine[nmine++] = ch;
        else
            others[nothers++] = ch;
    }
    double r = (double)(fd_random(&d->rng) % 1000000) / 1e6;
    if (nothers && (r < run->opt.refuse_ratio || !nmine)) {
        *expect_refused = true;
        return others[fd_random(&d->rng) % (uint64_t)nothers];
    }
    *expect_refused = false;
    return nmine ? mine[fd_random(&d->rng) % (uint64_t)nmine] : NULL;
}

static void send_one(fd_device_t *d)
{
    bool refuse = false;
    fd_chat_t *ch = pick_chat(d, &refuse);
    if (!ch)
        return;
    char cid[FD_CLIENT_ID_MAX + 1];
    snprintf(cid, sizeof(cid), "%s-d%d-%llu", d->run->run_tag, d->index, (unsigned long long)++d->next_number);
    char payload[256];
    size_t len = fd_payload(cid, ch->id, payload, sizeof(payload));
    parley_send_options_t so = {0};
    so.client_message_id = cid;
    uint64_t local_id = 0;
    int rc = parley_client_send(d->c, ch->id, payload, len, &so, &local_id);
    int64_t t = fd_run_ms(d->run);
    if (rc != PARLEY_OK) {
        fd_record(d, "X\t%lld\t%lld\t%s\t%s", (long long)t, (long long)ch->id, cid, parley_code_name(rc));
        return;
    }
    fd_record(d, "Q\t%lld\t%llu\t%lld\t%s\t%d", (long long)t, (unsigned long long)local_id, (long long)ch->id, cid,
              refuse ? 1 : 0);
    pthread_mutex_lock(&d->run->mu);
    d->queued++;
    pthread_mutex_unlock(&d->run->mu);
}

static void on_message(fd_device_t *d, const parley_message_t *m, int64_t t)
{
    fd_run_t *run = d->run;
    bool payload_ok = true;
    if (!m->is_system) {
        char want[256];
        size_t n = fd_payload(m->client_message_id ? m->client_message_id : "", m->chat_id, want, sizeof(want));
        payload_ok = !m->payload_missing && m->payload_len == n && (n == 0 || memcmp(m->payload, want, n) == 0);
    }
    char cid[FD_CLIENT_ID_MAX * 2 + 1];
    clean(m->client_message_id, cid, sizeof(cid));
    fd_record(d, "M\t%lld\t%lld\t%lld\t%lld\t%lld\t%s\t%d\t%d", (long long)t, (long long)m->chat_id, (long long)m->seq,
              (long long)m->sender_account_id, (long long)m->sender_device_id, cid[0] ? cid : "-", m->is_system ? 1 : 0,
              payload_ok ? 1 : 0);
    pthread_mutex_lock(&run->mu);
    fd_chat_t *ch = fd_chat_by_id(run, m->chat_id);
    if (ch && fd_seen_mark(&d->seen[ch->index], m->seq))
        d->repeats++;
    if (!m->is_system)
        d->delivered++;
    if (!payload_ok)
        d->bad_payloads++;
    pthread_mutex_unlock(&run->mu);
}

static void on_accepted(fd_device_t *d, const parley_event_t *ev, int64_t t)
{
    fd_run_t *run = d->run;
    fd_record(d, "A\t%lld\t%llu\t%lld\t%lld\t%s\t%d", (long long)t, (unsigned long long)ev->accepted.local_id,
              (long long)ev->accepted.chat_id, (long long)ev->accepted.seq, ev->accepted.client_message_id,
              ev->accepted.duplicate ? 1 : 0);
    pthread_mutex_lock(&run->mu);
    d->answered++;
    d->accepted++;
    if (ev->accepted.duplicate)
        d->duplicates++;
    fd_chat_t *ch = fd_chat_by_id(run, ev->accepted.chat_id);
    int64_t seq = ev->accepted.seq;
    if (ch && seq > 0 && seq < MAX_SEQ) {
        if ((size_t)seq >= ch->sender_cap) {
            size_t cap = ch->sender_cap ? ch->sender_cap : 256;
            while (cap <= (size_t)seq)
                cap *= 2;
            int *s = realloc(ch->sender_at, cap * sizeof(int));
            if (!s)
                abort();
            memset(s + ch->sender_cap, 0, (cap - ch->sender_cap) * sizeof(int));
            ch->sender_at = s;
            ch->sender_cap = cap;
        }
        ch->sender_at[seq] = d->index + 1;
        if (fd_seen_mark(&d->seen[ch->index], seq))
            d->repeats++;
    }
    pthread_mutex_unlock(&run->mu);
}

static void on_event(fd_device_t *d, const parley_event_t *ev)
{
    fd_run_t *run = d->run;
    int64_t t = fd_run_ms(run);
    char text[512];
    switch (ev->type) {
    case PARLEY_EVENT_STATE:
        clean(ev->state.reason, text, sizeof(text));
        fd_record(d, "S\t%lld\t%s\t%s\t%s", (long long)t, parley_state_name(ev->state.state),
                  parley_code_name(ev->state.code), text);
        pthread_mutex_lock(&run->mu);
        d->state = ev->state.state;
        if (ev->state.state == PARLEY_STATE_DISCONNECTED)
            d->disconnects++;
        pthread_mutex_unlock(&run->mu);
        break;
    case PARLEY_EVENT_MESSAGE: on_message(d, &ev->message, t); break;
    case PARLEY_EVENT_SEND_ACCEPTED: on_accepted(d, ev, t); break;
    case PARLEY_EVENT_SEND_FAILED:
        clean(ev->failed.message, text, sizeof(text));
        fd_record(d, "F\t%lld\t%llu\t%lld\t%s\t%s\t%s", (long long)t, (unsigned long long)ev->failed.local_id,
                  (long long)ev->failed.chat_id, ev->failed.client_message_id, parley_code_name(ev->failed.code), text);
        pthread_mutex_lock(&run->mu);
        d->answered++;
        d->failed++;
        pthread_mutex_unlock(&run->mu);
        break;
    case PARLEY_EVENT_GAP:
        fd_record(d, "G\t%lld\t%lld\t%lld\t%lld", (long long)t, (long long)ev->gap.chat_id, (long long)ev->gap.from_seq,
                  (long long)ev->gap.to_seq);
        break;
    case PARLEY_EVENT_ERROR:
        clean(ev->error.message, text, sizeof(text));
        fd_record(d, "E\t%lld\t%s\t%s\t%lld\t%s", (long long)t, parley_code_name(ev->error.code),
                  ev->error.request ? ev->error.request : "", (long long)ev->error.chat_id, text);
        break;
    default: break; /* receipts, typing, presence: not what this run checks */
    }
}

static void take_events(fd_device_t *d, int timeout_ms)
{
    parley_event_t *ev = parley_client_next_event(d->c, timeout_ms);
    while (ev) {
        on_event(d, ev);
        parley_event_free(ev);
        ev = parley_client_next_event(d->c, 0);
    }
}

static void *device_main(void *arg)
{
    fd_device_t *d = arg;
    fd_run_t *run = d->run;
    int64_t interval = (int64_t)(1000.0 / run->opt.rate);
    if (interval < 1)
        interval = 1;
    int64_t next_send = fd_now_ms() + (int64_t)(fd_random(&d->rng) % (uint64_t)interval);
    while (!atomic_load(&run->is_stopping)) {
        int64_t now = fd_now_ms();
        int timeout = TURN_MS;
        if (atomic_load(&run->is_sending)) {
            if (now >= next_send) {
                send_one(d);
                /* jittered: 50-150% of the interval, never a burst to catch up */
                next_send += interval / 2 + (int64_t)(fd_random(&d->rng) % (uint64_t)(interval + 1));
                if (next_send < now)
                    next_send = now;
            }
            if (next_send - now < timeout)
                timeout = next_send > now ? (int)(next_send - now) : 0;
        }
        take_events(d, timeout);
    }
    return NULL;
}

int fd_device_start(fd_device_t *d)
{
    if (pthread_create(&d->thread, NULL, device_main, d) != 0)
        return -1;
    d->has_thread = true;
    return 0;
}

void fd_device_drain(fd_device_t *d)
{
    take_events(d, 0);
}
