/* checks.h — what the messaging cases share on top of the test kit's
 * check.h (tests/lib): event kinds, and small steps every case takes (a
 * send that must be accepted, an Error of a given code, a stream's events
 * for a failure's context, the log as PostgreSQL has it). */
#ifndef PL_TESTS_MESSAGING_CHECKS_H
#define PL_TESTS_MESSAGING_CHECKS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "client_util.h"
#include "runtime/codec.h"

#define ACCEPTED parley_v1_ServerEvent_accepted_tag
#define MESSAGE parley_v1_ServerEvent_message_tag
#define RECEIPT parley_v1_ServerEvent_receipt_tag
#define TYPING parley_v1_ServerEvent_typing_tag
#define PRESENCE parley_v1_ServerEvent_presence_tag
#define ERROR parley_v1_ServerEvent_error_tag
#define GAP parley_v1_ServerEvent_gap_tag
#define READY parley_v1_ServerEvent_ready_tag

static inline void step(const char *what)
{
    pl_test_step("%s", what);
}

static inline const char *kind_name(pb_size_t kind)
{
    switch (kind) {
    case ACCEPTED: return "accepted";
    case MESSAGE: return "message";
    case RECEIPT: return "receipt";
    case TYPING: return "typing";
    case PRESENCE: return "presence";
    case ERROR: return "error";
    case GAP: return "gap";
    case READY: return "ready";
    case parley_v1_ServerEvent_heartbeat_ack_tag: return "heartbeat_ack";
    default: return "?";
    }
}

/* Prints a stream's events (for a failure's context). */
static inline void dump_events(const char *who, const mt_stream_t *s)
{
    fprintf(stderr, "    events on %s (%zu%s):\n", who, s->count, s->is_ended ? ", ended" : "");
    for (size_t i = 0; i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        fprintf(stderr, "      [%zu] %s rid=%llu", i, kind_name(e->kind), (unsigned long long)e->request_id);
        switch (e->kind) {
        case MESSAGE:
            fprintf(stderr, " chat=%lld seq=%lld from=%lld/%lld cid=%s len=%zu missing=%d",
                    (long long)e->u.message.chat_id, (long long)e->u.message.seq,
                    (long long)e->u.message.sender_account_id, (long long)e->u.message.sender_device_id,
                    e->u.message.client_message_id, e->u.message.payload.len, e->u.message.payload_missing);
            break;
        case ACCEPTED:
            fprintf(stderr, " chat=%lld seq=%lld dup=%d", (long long)e->u.accepted.chat_id,
                    (long long)e->u.accepted.seq, e->u.accepted.duplicate);
            break;
        case RECEIPT:
            fprintf(stderr, " chat=%lld account=%lld delivered=%lld read=%lld all_delivered=%lld all_read=%lld",
                    (long long)e->u.receipt.chat_id, (long long)e->u.receipt.account_id,
                    (long long)e->u.receipt.delivered_seq, (long long)e->u.receipt.read_seq,
                    (long long)e->u.receipt.delivered_to_all_seq, (long long)e->u.receipt.read_by_all_seq);
            break;
        case TYPING:
            fprintf(stderr, " chat=%lld account=%lld typing=%d", (long long)e->u.typing.chat_id,
                    (long long)e->u.typing.account_id, e->u.typing.typing);
            break;
        case PRESENCE:
            fprintf(stderr, " account=%lld online=%d last_seen=%lld", (long long)e->u.presence.account_id,
                    e->u.presence.online, (long long)e->u.presence.last_seen_ms);
            break;
        case GAP:
            fprintf(stderr, " chat=%lld from=%lld to=%lld", (long long)e->u.gap.chat_id, (long long)e->u.gap.from_seq,
                    (long long)e->u.gap.to_seq);
            break;
        case ERROR:
            fprintf(stderr, " code=%s message=\"%s\" retry_after=%lld", pl_code_name(e->error->code), e->error->message,
                    (long long)e->error->retry_after_ms);
            break;
        default: break;
        }
        fprintf(stderr, "\n");
    }
    if (s->is_ended)
        fprintf(stderr, "      status %s: %s\n", pl_code_name(s->code), s->message);
}

static inline void ready(mt_stream_t *s, const char *who)
{
    REQUIRE(mt_wait_ready(s, MT_WAIT_MS), "%s: no Ready (stream %s %s: %s)", who, s->is_ended ? "ended" : "open",
            pl_code_name(s->code), s->message);
}

/* The answer to request rid, which must come. */
static inline mt_event_t *answer(mt_stream_t *s, uint64_t rid, const char *what)
{
    REQUIRE(rid != 0, "%s: the stream ended before the request (%s: %s)", what, pl_code_name(s->code), s->message);
    mt_event_t *e = mt_answer(s, rid, MT_WAIT_MS);
    if (!e)
        dump_events("the stream", s);
    REQUIRE(e != NULL, "%s: no Accepted or Error for request %llu", what, (unsigned long long)rid);
    return e;
}

/* Sends and requires Accepted; its seq. */
static inline int64_t send_ok(mt_stream_t *s, int64_t chat, const char *cid, const char *payload)
{
    mt_event_t *e = answer(s, mt_send_text(s, chat, cid, payload, strlen(payload)), cid);
    REQUIRE(e->kind == ACCEPTED, "send %s refused: %s \"%s\"", cid, e->error ? pl_code_name(e->error->code) : "?",
            e->error ? e->error->message : "");
    CHECK_EQ_STR(e->u.accepted.client_message_id, cid);
    CHECK_EQ_INT(e->u.accepted.chat_id, chat);
    return e->u.accepted.seq;
}

/* Unary send that must succeed; its seq. */
static inline int64_t unary_ok(mt_dev_t *d, int64_t chat, const char *cid, const char *payload)
{
    parley_v1_SendResponse r;
    pl_code_t code = mt_unary_send(d, chat, cid, payload, strlen(payload), &r);
    REQUIRE(code == PL_CODE_OK, "unary send %s: %s (%s)", cid, pl_code_name(code), mt_last_message());
    CHECK_EQ_INT(r.chat_id, chat);
    return r.seq;
}

/* The event must be an Error with code want (and a message). */
static inline const parley_v1_Error *expect_error(const mt_event_t *e, pl_code_t want, const char *what)
{
    CHECK(e->kind == ERROR && e->error->code == (int32_t)want, "%s: got %s %s, want Error %s", what, kind_name(e->kind),
          e->error ? pl_code_name(e->error->code) : "", pl_code_name(want));
    if (e->kind != ERROR)
        return NULL;
    CHECK(e->error->message[0] != '\0', "%s: an Error without a message", what);
    return e->error;
}

static inline void to_hex(const void *p, size_t n, char *out)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

static inline void id_text(int64_t v, char out[24])
{
    snprintf(out, 24, "%lld", (long long)v);
}

/* Rows of chat's log with this sender device and client id. */
static inline int64_t rows_with_client_id(int64_t chat, int64_t device, const char *cid)
{
    char c[24], d[24];
    id_text(chat, c);
    id_text(device, d);
    const char *p[] = {c, d, cid};
    return mt_sql_int(mt_shard_of(chat),
                      "SELECT count(*) FROM {s}.messages WHERE chat_id = $1 AND sender_device = $2 "
                      "AND client_msg_id = $3",
                      3, p);
}

static inline int64_t rows_in_chat(int64_t chat)
{
    char c[24];
    id_text(chat, c);
    const char *p[] = {c};
    return mt_sql_int(mt_shard_of(chat), "SELECT count(*) FROM {s}.messages WHERE chat_id = $1", 1, p);
}

/* Waits until every seq of chat in [from, to] arrived on s. */
static inline void wait_range(mt_stream_t *s, const char *who, int64_t chat, int64_t from, int64_t to)
{
    bool ok = mt_wait_messages(s, chat, from, to, MT_WAIT_MS);
    if (!ok)
        dump_events(who, s);
    REQUIRE(ok, "%s: messages %lld..%lld of chat %lld did not all arrive", who, (long long)from, (long long)to,
            (long long)chat);
}

/* Up to 64 values as "[a b c]" (then "..."). */
static inline void list_text(const int64_t *v, size_t n, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "[");
    for (size_t i = 0; i < n && i < 64 && used < len; i++)
        used += (size_t)snprintf(out + used, len - used, "%s%lld", i ? " " : "", (long long)v[i]);
    if (used < len)
        snprintf(out + used, len - used, "%s]", n > 64 ? " ..." : "");
}

static inline void check_list(const char *what, const int64_t *got, size_t ngot, const int64_t *want, size_t nwant)
{
    bool same = ngot == nwant;
    for (size_t i = 0; same && i < ngot; i++)
        same = got[i] == want[i];
    char g[1600], w[1600];
    list_text(got, ngot, g, sizeof(g));
    list_text(want, nwant, w, sizeof(w));
    pl_test_check_at(same, __FILE__, __LINE__, what, "got  %s\n    want %s", g, w);
}

/* The seqs of chat's messages among events [0, end) (end < 0: all). */
static inline size_t seqs_before(const mt_stream_t *s, int64_t chat, long end, int64_t *out, size_t cap)
{
    size_t n = 0;
    size_t stop = end < 0 ? s->count : (size_t)end;
    for (size_t i = 0; i < stop && i < s->count; i++) {
        const mt_event_t *e = s->events[i];
        if (e->kind == MESSAGE && e->u.message.chat_id == chat && n < cap)
            out[n++] = e->u.message.seq;
    }
    return n;
}

static inline size_t count_kind_from(const mt_stream_t *s, pb_size_t kind, size_t start)
{
    size_t n = 0;
    for (size_t i = start; i < s->count; i++)
        n += s->events[i]->kind == kind;
    return n;
}

static inline void check_no_repeats(const char *who, const mt_stream_t *s)
{
    int64_t chat = 0, seq = 0;
    bool repeat = mt_find_repeat(s, &chat, &seq);
    CHECK(!repeat, "%s: message %lld/%lld arrived twice on one stream", who, (long long)chat, (long long)seq);
}

typedef struct dp {
    int64_t device;
    const char *payload;
} dp_t;

static inline parley_v1_OutgoingMessage *pd_message(int64_t chat, const char *cid, const dp_t *dps, size_t n)
{
    parley_v1_OutgoingMessage *om = calloc(1, sizeof(*om));
    REQUIRE(om != NULL, "out of memory");
    snprintf(om->client_message_id, sizeof(om->client_message_id), "%s", cid);
    om->chat_id = chat;
    snprintf(om->content_type, sizeof(om->content_type), "text");
    for (size_t i = 0; i < n; i++) {
        om->device_payloads[i].device_id = dps[i].device;
        om->device_payloads[i].payload = pl_bytes_of(dps[i].payload, strlen(dps[i].payload));
    }
    om->device_payloads_count = (pb_size_t)n;
    return om;
}

static inline uint64_t send_pd(mt_stream_t *s, int64_t chat, const char *cid, const dp_t *dps, size_t n)
{
    parley_v1_ClientEvent *ev = calloc(1, sizeof(*ev));
    parley_v1_OutgoingMessage *om = pd_message(chat, cid, dps, n);
    REQUIRE(ev != NULL, "out of memory");
    ev->which_event = parley_v1_ClientEvent_send_tag;
    ev->event.send = *om;
    uint64_t rid = mt_send_event(s, ev);
    free(om);
    free(ev);
    return rid;
}

/* Checks that, before Ready, chat's messages on s were exactly want (in
 * order), and that no Gap came for it. */
static inline void check_before_ready(const char *who, const mt_stream_t *s, int64_t chat, const int64_t *want,
                                      size_t n)
{
    long r = mt_index_of_kind(s, READY, 0);
    REQUIRE(r >= 0, "%s: no Ready", who);
    int64_t got[64];
    size_t ngot = seqs_before(s, chat, r, got, 64);
    char what[160];
    snprintf(what, sizeof(what), "%s: chat %lld before Ready", who, (long long)chat);
    check_list(what, got, ngot, want, n);
}

static inline pl_code_t get_history(mt_dev_t *d, int64_t chat, int64_t before, int64_t after, int32_t limit,
                                    parley_v1_Message *out, size_t cap, size_t *n, bool *has_more)
{
    parley_v1_GetHistoryRequest rq = {chat, before, after, limit};
    parley_v1_GetHistoryResponse resp = {0};
    pl_bytes_t items[256];
    resp.messages.items = items;
    resp.messages.capacity = 256;
    pl_code_t code = mt_call(d, &parley_v1_Messaging_GetHistory_method, &rq, &resp);
    *n = 0;
    *has_more = resp.has_more;
    if (code != PL_CODE_OK)
        return code;
    for (size_t i = 0; i < resp.messages.count && i < cap; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        const char *why = NULL;
        int rc = pl_pb_decode(parley_v1_Message_fields, items[i].data, items[i].len, &out[i], &why);
        CHECK(rc == 0, "history message %zu does not decode: %s", i, why ? why : "?");
        if (rc == 0)
            (*n)++;
    }
    return code;
}

#endif
