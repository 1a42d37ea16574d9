/* client_util.c — devices, unary calls, streams read with a timeout, and
 * shard queries for the messaging tests (see client_util.h). */
#include "client_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "register.h"
#include "runtime/clock.h"
#include "shards.h"

#define MAX_NODES 32
/* Longest a wait blocks in the network before it looks at the clock. */
#define SLICE_MS 50
/* A stream's deadline: past the ctest timeout, so only a hung server hits it. */
#define STREAM_DEADLINE_MS 170000

static struct {
    char host[64];
    uint16_t port;
} nodes[MAX_NODES];
static int node_count;
static pl_test_db_t *db; /* the shards (tests/lib/shards.h) */
static atomic_uint phone_counter;
static atomic_uint id_counter;
static _Thread_local char last_message[512];

/* ---- basics ---- */

void mt_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "SET-UP FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stdout);
    exit(1);
}

int64_t mt_now_ms(void)
{
    return pl_now_msec();
}

int64_t mt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void mt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void parse_addr(const char *addr, int i)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(nodes[i].host))
        mt_die("bad node address '%s'", addr);
    memcpy(nodes[i].host, addr, (size_t)(colon - addr));
    nodes[i].host[colon - addr] = '\0';
    nodes[i].port = (uint16_t)atoi(colon + 1);
}

void mt_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < MAX_NODES; i++) {
        char name[32];
        snprintf(name, sizeof(name), "PARLEY_ADDR_%d", i);
        const char *a = getenv(name);
        if (!a)
            break;
        parse_addr(a, node_count++);
    }
    if (!node_count) {
        const char *a = getenv("PARLEY_ADDR");
        if (!a)
            mt_die("PARLEY_ADDR not set (run under tests/harness/with_parleyd.py)");
        parse_addr(a, node_count++);
    }
    char err[512];
    db = pl_test_db_open(err, sizeof(err));
    if (!db)
        mt_die("%s", err);
    if (pl_test_db_shards(db) < pl_test_db_servers(db))
        mt_die("%d PostgreSQL servers for %d shards", pl_test_db_servers(db), pl_test_db_shards(db));
    atomic_store(&phone_counter, (unsigned)((getpid() * 7919u + (unsigned)time(NULL)) % 9000000u));
}

void mt_fini(void)
{
    pl_test_db_close(db);
    db = NULL;
}

int mt_nodes(void)
{
    return node_count;
}

const char *mt_last_message(void)
{
    return last_message;
}

pl_channel_t *mt_channel(int node)
{
    if (node < 0 || node >= node_count)
        mt_die("no node %d (the harness started %d)", node, node_count);
    pl_channel_opts_t o = {0};
    o.host = nodes[node].host;
    o.port = nodes[node].port;
    char err[256];
    pl_channel_t *ch = pl_channel_connect(&o, err, sizeof(err));
    if (!ch)
        mt_die("connect to node %d: %s", node, err);
    return ch;
}

/* ---- unary calls ---- */

static void copy_metadata(pl_metadata_t *to, const pl_metadata_t *from)
{
    pl_metadata_init(to, 64u << 10);
    for (uint32_t i = 0; i < from->count; i++) {
        const char *key;
        size_t key_len, value_len;
        const uint8_t *value;
        pl_metadata_at(from, i, &key, &key_len, &value, &value_len);
        char k[128];
        if (key_len >= sizeof(k))
            continue;
        memcpy(k, key, key_len);
        k[key_len] = '\0';
        pl_metadata_add(to, k, value, value_len);
    }
}

pl_code_t mt_call_md(pl_channel_t *ch, const pl_metadata_t *md, const pl_method_t *m, const void *req, void *resp,
                     pl_metadata_t *trailing)
{
    pl_call_opts_t o = {MT_WAIT_MS, md, false};
    pl_status_t st = {0};
    pl_code_t code;
    if (!trailing) {
        /* the response's views stay valid until the channel's next unary call */
        code = pl_ccall_unary(ch, m, &o, req, resp, &st);
    } else {
        pl_ccall_t *c = pl_ccall_start(ch, m, &o);
        if (!c)
            mt_die("out of memory");
        if (pl_ccall_send(c, req) == 0)
            pl_ccall_close_send(c);
        int got = pl_ccall_recv(c, resp);
        code = pl_ccall_finish(c, &st);
        if (code == PL_CODE_OK && got != 1)
            code = PL_CODE_INTERNAL;
        copy_metadata(trailing, pl_ccall_trailing_metadata(c));
        pl_ccall_free(c);
    }
    snprintf(last_message, sizeof(last_message), "%s", st.message ? st.message : "");
    pl_status_reset(&st);
    return code;
}

pl_code_t mt_call(mt_dev_t *d, const pl_method_t *m, const void *req, void *resp)
{
    return mt_call_md(d->ch, &d->md, m, req, resp, NULL);
}

/* ---- devices ---- */

void mt_new_phone(char out[24])
{
    unsigned n = atomic_fetch_add(&phone_counter, 1) % 10000000u;
    snprintf(out, 24, "+1555%07u", n);
}

mt_dev_t *mt_register(const char *phone, int node, const char *device_name)
{
    mt_dev_t *d = calloc(1, sizeof(*d));
    if (!d)
        mt_die("out of memory");
    if (phone)
        snprintf(d->phone, sizeof(d->phone), "%s", phone);
    else
        mt_new_phone(d->phone);
    d->node = node;
    d->ch = mt_channel(node);
    pl_test_reg_t reg;
    pl_code_t code = pl_test_register(d->ch, d->phone, device_name ? device_name : "test device", MT_WAIT_MS, &reg);
    if (code != PL_CODE_OK)
        mt_die("register %s: %s: %s (%s)", d->phone, reg.failed_step, pl_code_name(code), reg.message);
    d->account_id = reg.account_id;
    d->device_id = reg.device_id;
    snprintf(d->token, sizeof(d->token), "%s", reg.token);
    pl_metadata_init(&d->md, 8192);
    char value[128];
    snprintf(value, sizeof(value), "Bearer %s", d->token);
    if (pl_metadata_add(&d->md, "authorization", value, strlen(value)) != 0)
        mt_die("metadata");
    return d;
}

mt_dev_t *mt_dev_with_header(int node, const char *authorization)
{
    mt_dev_t *d = calloc(1, sizeof(*d));
    if (!d)
        mt_die("out of memory");
    d->node = node;
    d->ch = mt_channel(node);
    pl_metadata_init(&d->md, 8192);
    if (authorization && pl_metadata_add(&d->md, "authorization", authorization, strlen(authorization)) != 0)
        mt_die("metadata '%s'", authorization);
    return d;
}

void mt_dev_free(mt_dev_t *d)
{
    if (!d)
        return;
    pl_metadata_dispose(&d->md);
    pl_channel_free(d->ch);
    free(d);
}

/* ---- chats ---- */

int64_t mt_open_direct(mt_dev_t *d, int64_t other)
{
    parley_v1_OpenDirectChatRequest rq = {0};
    parley_v1_Chat *c = calloc(1, sizeof(*c));
    if (!c)
        mt_die("out of memory");
    rq.account_id = other;
    pl_code_t code = mt_call(d, &parley_v1_Chats_OpenDirectChat_method, &rq, c);
    if (code != PL_CODE_OK)
        mt_die("OpenDirectChat: %s (%s)", pl_code_name(code), last_message);
    int64_t id = c->chat_id;
    free(c);
    return id;
}

int64_t mt_create_group(mt_dev_t *d, const char *name, const int64_t *members, size_t n)
{
    parley_v1_CreateGroupRequest *rq = calloc(1, sizeof(*rq));
    parley_v1_Chat *c = calloc(1, sizeof(*c));
    if (!rq || !c)
        mt_die("out of memory");
    snprintf(rq->name, sizeof(rq->name), "%s", name);
    memcpy(rq->member_ids, members, n * sizeof(*members));
    rq->member_ids_count = (pb_size_t)n;
    pl_code_t code = mt_call(d, &parley_v1_Chats_CreateGroup_method, rq, c);
    if (code != PL_CODE_OK)
        mt_die("CreateGroup: %s (%s)", pl_code_name(code), last_message);
    int64_t id = c->chat_id;
    free(rq);
    free(c);
    return id;
}

pl_code_t mt_get_chat(mt_dev_t *d, int64_t chat, parley_v1_Chat **out)
{
    parley_v1_GetChatRequest rq = {0};
    rq.chat_id = chat;
    *out = calloc(1, sizeof(**out));
    if (!*out)
        mt_die("out of memory");
    return mt_call(d, &parley_v1_Chats_GetChat_method, &rq, *out);
}

const parley_v1_Member *mt_member(const parley_v1_Chat *c, int64_t account)
{
    for (pb_size_t i = 0; i < c->members_count; i++)
        if (c->members[i].account_id == account)
            return &c->members[i];
    return NULL;
}

pl_code_t mt_unary_send(mt_dev_t *d, int64_t chat, const char *client_id, const void *payload, size_t len,
                        parley_v1_SendResponse *resp)
{
    parley_v1_SendRequest *rq = calloc(1, sizeof(*rq));
    if (!rq)
        mt_die("out of memory");
    rq->has_message = true;
    snprintf(rq->message.client_message_id, sizeof(rq->message.client_message_id), "%s", client_id);
    rq->message.chat_id = chat;
    rq->message.payload = pl_bytes_of(payload, len);
    snprintf(rq->message.content_type, sizeof(rq->message.content_type), "text");
    memset(resp, 0, sizeof(*resp));
    pl_code_t code = mt_call(d, &parley_v1_Messaging_Send_method, rq, resp);
    free(rq);
    return code;
}

/* ---- streams ---- */

static void record(mt_stream_t *s, const parley_v1_ServerEvent *ev)
{
    mt_event_t *e = calloc(1, sizeof(*e));
    if (!e)
        mt_die("out of memory");
    e->kind = ev->which_event;
    e->request_id = ev->request_id;
    e->at_ms = mt_now_ms();
    switch (ev->which_event) {
    case parley_v1_ServerEvent_accepted_tag: e->u.accepted = ev->event.accepted; break;
    case parley_v1_ServerEvent_message_tag: {
        const parley_v1_Message *m = &ev->event.message;
        e->u.message = *m;
        size_t n = m->payload.len + m->chat_event.len;
        e->owned = malloc(n ? n : 1);
        if (!e->owned)
            mt_die("out of memory");
        if (m->payload.len)
            memcpy(e->owned, m->payload.data, m->payload.len);
        if (m->chat_event.len)
            memcpy(e->owned + m->payload.len, m->chat_event.data, m->chat_event.len);
        e->u.message.payload = pl_bytes_of(m->payload.len ? e->owned : NULL, m->payload.len);
        e->u.message.chat_event = pl_bytes_of(m->chat_event.len ? e->owned + m->payload.len : NULL, m->chat_event.len);
        break;
    }
    case parley_v1_ServerEvent_receipt_tag: e->u.receipt = ev->event.receipt; break;
    case parley_v1_ServerEvent_typing_tag: e->u.typing = ev->event.typing; break;
    case parley_v1_ServerEvent_presence_tag: e->u.presence = ev->event.presence; break;
    case parley_v1_ServerEvent_gap_tag: e->u.gap = ev->event.gap; break;
    case parley_v1_ServerEvent_heartbeat_ack_tag: e->u.heartbeat_ack = ev->event.heartbeat_ack; break;
    case parley_v1_ServerEvent_error_tag: {
        const pl_bytes_t *mm = &ev->event.error.device_mismatch;
        e->error = malloc(sizeof(*e->error));
        e->owned = malloc(mm->len ? mm->len : 1);
        if (!e->error || !e->owned)
            mt_die("out of memory");
        *e->error = ev->event.error;
        if (mm->len)
            memcpy(e->owned, mm->data, mm->len);
        e->error->device_mismatch = pl_bytes_of(mm->len ? e->owned : NULL, mm->len);
        break;
    }
    default: break;
    }
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        mt_event_t **grown = realloc(s->events, cap * sizeof(*grown));
        if (!grown)
            mt_die("out of memory");
        s->events = grown;
        s->cap = cap;
    }
    s->events[s->count++] = e;
}

/* The stream's receive buffer, cleared. */
static parley_v1_ServerEvent *rx_buffer(mt_stream_t *s)
{
    memset(s->rx, 0, sizeof(*s->rx));
    return s->rx;
}

/* Records what the client has queued for the call, without waiting; at
 * the end of the call, its status. */
static void take_queued(mt_stream_t *s)
{
    while (!s->is_ended) {
        parley_v1_ServerEvent *rx = rx_buffer(s);
        int r = pl_ccall_try_recv(s->call, rx);
        if (r == 1) {
            record(s, rx);
            continue;
        }
        if (r == PL_CCALL_PENDING)
            return;
        pl_status_t st = {0};
        s->code = pl_ccall_finish(s->call, &st);
        snprintf(s->message, sizeof(s->message), "%s", st.message ? st.message : "");
        pl_status_reset(&st);
        s->is_ended = true;
    }
}

/* One turn: whatever is queued, else wait up to ms for the network. */
static void turn(mt_stream_t *s, int64_t ms)
{
    take_queued(s);
    if (s->is_ended)
        return;
    pl_channel_pump(s->ch, ms < SLICE_MS ? (int)(ms > 0 ? ms : 0) : SLICE_MS);
    take_queued(s);
}

void mt_pump(mt_stream_t *s, int ms)
{
    int64_t until = mt_now_ms() + ms;
    do
        turn(s, until - mt_now_ms());
    while (!s->is_ended && mt_now_ms() < until);
}

mt_stream_t *mt_connect_resume(mt_dev_t *d, int node, const parley_v1_Cursor *cursors, size_t n)
{
    mt_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        mt_die("out of memory");
    s->dev = d;
    s->node = node;
    s->ch = mt_channel(node);
    s->next_request_id = 1;
    s->rx = malloc(sizeof(*s->rx));
    if (!s->rx)
        mt_die("out of memory");
    pl_call_opts_t o = {STREAM_DEADLINE_MS, &d->md, false};
    s->call = parley_v1_Messaging_Connect_start(s->ch, &o);
    if (!s->call)
        mt_die("out of memory");
    if (cursors) {
        parley_v1_ClientEvent *ev = calloc(1, sizeof(*ev));
        if (!ev || n > sizeof(ev->event.resume.cursors) / sizeof(ev->event.resume.cursors[0]))
            mt_die("resume of %zu cursors", n);
        ev->which_event = parley_v1_ClientEvent_resume_tag;
        memcpy(ev->event.resume.cursors, cursors, n * sizeof(*cursors));
        ev->event.resume.cursors_count = (pb_size_t)n;
        mt_send_event(s, ev);
        free(ev);
    }
    return s;
}

mt_stream_t *mt_connect(mt_dev_t *d, int node)
{
    return mt_connect_resume(d, node, NULL, 0);
}

static void release(mt_stream_t *s)
{
    if (s->call)
        pl_ccall_free(s->call);
    s->call = NULL;
    if (s->ch)
        pl_channel_free(s->ch);
    s->ch = NULL;
}

void mt_close(mt_stream_t *s)
{
    if (!s->is_ended && s->call) {
        pl_ccall_close_send(s->call);
        mt_wait_end(s, MT_WAIT_MS);
        if (!s->is_ended)
            fprintf(stderr, "warning: a stream did not end within %d ms of its half-close\n", MT_WAIT_MS);
    }
    release(s);
}

void mt_drop(mt_stream_t *s)
{
    if (!s->is_ended && s->call) {
        pl_ccall_cancel(s->call);
        s->is_ended = true;
        s->code = PL_CODE_CANCELLED;
    }
    release(s);
}

void mt_stream_free(mt_stream_t *s)
{
    if (!s)
        return;
    if (!s->is_ended)
        mt_drop(s);
    release(s);
    for (size_t i = 0; i < s->count; i++) {
        free(s->events[i]->owned);
        free(s->events[i]->error);
        free(s->events[i]);
    }
    free(s->events);
    free(s->rx);
    free(s);
}

void mt_close_all(mt_stream_t **streams, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        mt_close(streams[i]);
        mt_stream_free(streams[i]);
    }
}

uint64_t mt_send_event(mt_stream_t *s, parley_v1_ClientEvent *ev)
{
    if (!ev->request_id)
        ev->request_id = s->next_request_id++;
    if (s->is_ended || pl_ccall_send(s->call, ev) != 0)
        return 0;
    return ev->request_id;
}

uint64_t mt_send_text(mt_stream_t *s, int64_t chat, const char *client_id, const void *payload, size_t len)
{
    parley_v1_ClientEvent *ev = calloc(1, sizeof(*ev));
    if (!ev)
        mt_die("out of memory");
    ev->which_event = parley_v1_ClientEvent_send_tag;
    snprintf(ev->event.send.client_message_id, sizeof(ev->event.send.client_message_id), "%s", client_id);
    ev->event.send.chat_id = chat;
    ev->event.send.payload = pl_bytes_of(payload, len);
    snprintf(ev->event.send.content_type, sizeof(ev->event.send.content_type), "text");
    uint64_t id = mt_send_event(s, ev);
    free(ev);
    return id;
}

uint64_t mt_send_cursor(mt_stream_t *s, int64_t chat, int64_t seq, bool is_read)
{
    parley_v1_ClientEvent ev = {0};
    if (is_read) {
        ev.which_event = parley_v1_ClientEvent_read_tag;
        ev.event.read.chat_id = chat;
        ev.event.read.seq = seq;
    } else {
        ev.which_event = parley_v1_ClientEvent_delivered_tag;
        ev.event.delivered.chat_id = chat;
        ev.event.delivered.seq = seq;
    }
    return mt_send_event(s, &ev);
}

uint64_t mt_send_typing(mt_stream_t *s, int64_t chat, bool typing)
{
    parley_v1_ClientEvent ev = {0};
    ev.which_event = parley_v1_ClientEvent_typing_tag;
    ev.event.typing.chat_id = chat;
    ev.event.typing.typing = typing;
    return mt_send_event(s, &ev);
}

uint64_t mt_send_presence(mt_stream_t *s, const int64_t *accounts, size_t n, bool subscribe)
{
    parley_v1_ClientEvent *ev = calloc(1, sizeof(*ev));
    if (!ev)
        mt_die("out of memory");
    parley_v1_AccountList *l;
    if (subscribe) {
        ev->which_event = parley_v1_ClientEvent_presence_subscribe_tag;
        l = &ev->event.presence_subscribe;
    } else {
        ev->which_event = parley_v1_ClientEvent_presence_unsubscribe_tag;
        l = &ev->event.presence_unsubscribe;
    }
    memcpy(l->account_ids, accounts, n * sizeof(*accounts));
    l->account_ids_count = (pb_size_t)n;
    uint64_t id = mt_send_event(s, ev);
    free(ev);
    return id;
}

mt_event_t *mt_take(mt_stream_t *s, int timeout_ms, mt_match_fn match, const void *arg)
{
    int64_t until = mt_now_ms() + timeout_ms;
    size_t from = 0;
    for (;;) {
        /* events before the first not taken are all taken: skip them */
        while (from < s->count && s->events[from]->is_taken)
            from++;
        for (size_t i = from; i < s->count; i++) {
            mt_event_t *e = s->events[i];
            if (!e->is_taken && match(e, arg)) {
                e->is_taken = true;
                return e;
            }
        }
        if (s->is_ended)
            return NULL;
        int64_t left = until - mt_now_ms();
        if (left <= 0)
            return NULL;
        turn(s, left);
    }
}

static bool match_kind(const mt_event_t *e, const void *arg)
{
    return e->kind == *(const pb_size_t *)arg;
}

mt_event_t *mt_take_kind(mt_stream_t *s, pb_size_t kind, int timeout_ms)
{
    return mt_take(s, timeout_ms, match_kind, &kind);
}

static bool match_answer(const mt_event_t *e, const void *arg)
{
    return e->request_id == *(const uint64_t *)arg &&
           (e->kind == parley_v1_ServerEvent_accepted_tag || e->kind == parley_v1_ServerEvent_error_tag);
}

mt_event_t *mt_answer(mt_stream_t *s, uint64_t request_id, int timeout_ms)
{
    return mt_take(s, timeout_ms, match_answer, &request_id);
}

bool mt_wait_ready(mt_stream_t *s, int timeout_ms)
{
    return mt_take_kind(s, parley_v1_ServerEvent_ready_tag, timeout_ms) != NULL;
}

static const parley_v1_Message *find_message(const mt_stream_t *s, int64_t chat, int64_t seq)
{
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        if (e->kind == parley_v1_ServerEvent_message_tag && e->u.message.chat_id == chat && e->u.message.seq == seq)
            return &e->u.message;
    }
    return NULL;
}

const parley_v1_Message *mt_wait_message(mt_stream_t *s, int64_t chat, int64_t seq, int timeout_ms)
{
    int64_t until = mt_now_ms() + timeout_ms;
    for (;;) {
        const parley_v1_Message *m = find_message(s, chat, seq);
        if (m || s->is_ended)
            return m;
        int64_t left = until - mt_now_ms();
        if (left <= 0)
            return NULL;
        turn(s, left);
    }
}

bool mt_wait_messages(mt_stream_t *s, int64_t chat, int64_t from, int64_t to, int timeout_ms)
{
    int64_t until = mt_now_ms() + timeout_ms;
    int64_t next = from; /* every seq before next has arrived */
    for (;;) {
        while (next <= to && find_message(s, chat, next))
            next++;
        if (next > to)
            return true;
        if (s->is_ended)
            return false;
        int64_t left = until - mt_now_ms();
        if (left <= 0)
            return false;
        turn(s, left);
    }
}

bool mt_wait_end(mt_stream_t *s, int timeout_ms)
{
    int64_t until = mt_now_ms() + timeout_ms;
    for (;;) {
        take_queued(s);
        if (s->is_ended)
            return true;
        int64_t left = until - mt_now_ms();
        if (left <= 0)
            return false;
        turn(s, left);
    }
}

int mt_count_message(const mt_stream_t *s, int64_t chat, int64_t seq)
{
    int n = 0;
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        n += e->kind == parley_v1_ServerEvent_message_tag && e->u.message.chat_id == chat && e->u.message.seq == seq;
    }
    return n;
}

int64_t *mt_message_seqs(const mt_stream_t *s, int64_t chat, size_t *n)
{
    int64_t *out = malloc((s->count + 1) * sizeof(*out));
    if (!out)
        mt_die("out of memory");
    *n = 0;
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        if (e->kind == parley_v1_ServerEvent_message_tag && e->u.message.chat_id == chat)
            out[(*n)++] = e->u.message.seq;
    }
    return out;
}

long mt_index_of_kind(const mt_stream_t *s, pb_size_t kind, size_t start)
{
    for (size_t i = start; i < s->count; i++)
        if (s->events[i]->kind == kind)
            return (long)i;
    return -1;
}

bool mt_find_repeat(const mt_stream_t *s, int64_t *chat, int64_t *seq)
{
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *a = s->events[i];
        if (a->kind != parley_v1_ServerEvent_message_tag)
            continue;
        for (size_t j = i + 1; j < s->count; j++) {
            const mt_event_t *b = s->events[j];
            if (b->kind == parley_v1_ServerEvent_message_tag && b->u.message.chat_id == a->u.message.chat_id &&
                b->u.message.seq == a->u.message.seq) {
                *chat = a->u.message.chat_id;
                *seq = a->u.message.seq;
                return true;
            }
        }
    }
    return false;
}

/* ---- the shards ---- */

int mt_shards(void)
{
    return pl_test_db_shards(db);
}

PGresult *mt_sql(int shard, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = pl_test_sql(db, shard, sql, nparams, params);
    if (!r)
        mt_die("the query above failed on shard %d", shard);
    return r;
}

int64_t mt_sql_int(int shard, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = mt_sql(shard, sql, nparams, params);
    if (PQntuples(r) != 1)
        mt_die("%s: %d rows, want 1", sql, PQntuples(r));
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t c = (*cap ? *cap : 4096);
        while (*len + n + 1 > c)
            c *= 2;
        char *grown = realloc(*buf, c);
        if (!grown)
            mt_die("out of memory");
        *buf = grown;
        *cap = c;
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *mt_row_counts(void)
{
    char *out = NULL;
    size_t len = 0, cap = 0;
    append(&out, &len, &cap, "");
    for (int i = 0; i < pl_test_db_servers(db); i++) {
        PGconn *pg = pl_test_db_conn(db, i);
        PGresult *t = PQexec(pg, "SELECT table_schema, table_name FROM information_schema.tables "
                                 "WHERE table_type = 'BASE TABLE' "
                                 "AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2");
        if (PQresultStatus(t) != PGRES_TUPLES_OK)
            mt_die("listing tables: %s", PQerrorMessage(pg));
        char *q = NULL;
        size_t qlen = 0, qcap = 0;
        append(&q, &qlen, &qcap, "");
        for (int r = 0; r < PQntuples(t); r++) {
            const char *schema = PQgetvalue(t, r, 0), *table = PQgetvalue(t, r, 1);
            char *qs = PQescapeIdentifier(pg, schema, strlen(schema));
            char *qt = PQescapeIdentifier(pg, table, strlen(table));
            char *label = PQescapeLiteral(pg, table, strlen(table));
            char *slabel = PQescapeLiteral(pg, schema, strlen(schema));
            if (!qs || !qt || !label || !slabel)
                mt_die("escaping: %s", PQerrorMessage(pg));
            char part[1024];
            snprintf(part, sizeof(part), "%sSELECT %s || '.' || %s, count(*) FROM %s.%s", r ? " UNION ALL " : "",
                     slabel, label, qs, qt);
            append(&q, &qlen, &qcap, part);
            PQfreemem(qs);
            PQfreemem(qt);
            PQfreemem(label);
            PQfreemem(slabel);
        }
        if (PQntuples(t) > 0) {
            append(&q, &qlen, &qcap, " ORDER BY 1");
            PGresult *c = PQexec(pg, q);
            if (PQresultStatus(c) != PGRES_TUPLES_OK)
                mt_die("counting rows: %s", PQerrorMessage(pg));
            for (int r = 0; r < PQntuples(c); r++) {
                char line[512];
                snprintf(line, sizeof(line), "%d/%s=%s\n", i, PQgetvalue(c, r, 0), PQgetvalue(c, r, 1));
                append(&out, &len, &cap, line);
            }
            PQclear(c);
        }
        free(q);
        PQclear(t);
    }
    return out;
}

int64_t mt_unused_id(int shard)
{
    /* ids: ms since 2025-01-01 (bits 22..62), shard (12..21), node (7..11), seq (0..6) */
    int64_t ms = mt_wall_ms() - 1735689600000LL;
    unsigned seq = atomic_fetch_add(&id_counter, 1) & 127u;
    return (int64_t)((uint64_t)ms << 22 | (uint64_t)shard << 12 | 31u << 7 | seq);
}

int mt_stack(const char *args)
{
    const char *dir = getenv("PARLEY_STACK_DIR");
    if (!dir)
        mt_die("PARLEY_STACK_DIR not set (run under tests/harness/with_stack.sh)");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/tools/stack' %s --dir '%s'", PARLEY_SOURCE_DIR, args, dir);
    int rc = system(cmd);
    return rc;
}
