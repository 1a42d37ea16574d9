/* test_limits.c — what the server refuses: sends over the rate, oversized
 * or malformed sends, unknown chats, bad history requests; a refusal never
 * ends the stream. */

#include "cases.h"
#include "checks.h"

/* ---- rate_limit ---- */

#define RATE 5  /* --rate.sends_per_second */
#define BURST 5 /* --rate.sends_burst */

int mt_case_rate_limit(void)
{
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 0, "C");
    int64_t d1 = mt_open_direct(a, b->account_id), d2 = mt_open_direct(c, b->account_id);
    mt_stream_t *sa = mt_connect(a, 0);
    ready(sa, "A");

    step("a burst of 20 sends on a stream: the first 5 pass, most others get RESOURCE_EXHAUSTED");
    uint64_t rids[20];
    int64_t start = mt_now_ms();
    for (int i = 0; i < 20; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "burst-%d", i);
        rids[i] = mt_send_text(sa, d1, cid, "burst", 5);
    }
    int ok = 0, limited = 0, other = 0;
    int64_t max_retry = 0;
    for (int i = 0; i < 20; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "burst-%d", i);
        mt_event_t *e = answer(sa, rids[i], cid);
        if (e->kind == ACCEPTED) {
            ok++;
            continue;
        }
        if (e->kind == ERROR && e->error->code == PL_CODE_RESOURCE_EXHAUSTED) {
            limited++;
            CHECK(e->error->retry_after_ms > 0 && e->error->retry_after_ms <= 60000, "%s: retry_after_ms %lld", cid,
                  (long long)e->error->retry_after_ms);
            CHECK(e->error->message[0], "%s: RESOURCE_EXHAUSTED without a message", cid);
            CHECK_EQ_STR(e->error->client_message_id, cid);
            if (e->error->retry_after_ms > max_retry)
                max_retry = e->error->retry_after_ms;
            if (limited == 1)
                printf("first refusal: \"%s\", retry after %lld ms\n", e->error->message,
                       (long long)e->error->retry_after_ms);
            continue;
        }
        other++;
        expect_error(e, PL_CODE_RESOURCE_EXHAUSTED, cid);
        if (i < BURST)
            CHECK(false, "%s, within the burst, was refused", cid);
    }
    int64_t took = mt_now_ms() - start;
    int most = BURST + (int)(took * RATE / 1000) + 1;
    printf("stream burst: %d accepted, %d refused in %lld ms (at most %d may pass)\n", ok, limited, (long long)took,
           most);
    CHECK(ok >= BURST && ok <= most, "%d of 20 accepted, want %d..%d", ok, BURST, most);
    CHECK(limited >= 1 && limited == 20 - ok - other, "%d refused", limited);
    CHECK_EQ_INT(other, 0);
    CHECK_EQ_INT(rows_in_chat(d1), ok);

    step("unary Send: RESOURCE_EXHAUSTED with a message as well");
    int uok = 0, ulimited = 0, uother = 0;
    start = mt_now_ms();
    for (int i = 0; i < 20; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "ubur-%d", i);
        parley_v1_SendResponse r;
        pl_code_t code = mt_unary_send(c, d2, cid, "burst", 5, &r);
        if (code == PL_CODE_OK) {
            uok++;
        } else if (code == PL_CODE_RESOURCE_EXHAUSTED) {
            if (!ulimited++)
                printf("first unary refusal: \"%s\"\n", mt_last_message());
            CHECK(mt_last_message()[0], "unary RESOURCE_EXHAUSTED without a message");
        } else {
            uother++;
            CHECK(false, "unary burst %d: %s (%s)", i, pl_code_name(code), mt_last_message());
        }
    }
    took = mt_now_ms() - start;
    most = BURST + (int)(took * RATE / 1000) + 1;
    printf("unary burst: %d accepted, %d refused in %lld ms (at most %d may pass)\n", uok, ulimited, (long long)took,
           most);
    CHECK(uok >= BURST && uok <= most, "%d of 20 unary sends accepted, want %d..%d", uok, BURST, most);
    CHECK(ulimited >= 1, "no unary send refused");
    CHECK_EQ_INT(uother, 0);
    CHECK_EQ_INT(rows_in_chat(d2), uok);

    step("after the advised wait, sends at the rate succeed");
    int64_t wait = max_retry + 300 > 1500 ? max_retry + 300 : 1500;
    mt_pump(sa, (int)(wait < 10000 ? wait : 10000));
    for (int i = 0; i < 3; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "after-%d", i);
        mt_event_t *e = answer(sa, mt_send_text(sa, d1, cid, "later", 5), cid);
        CHECK(e->kind == ACCEPTED, "%s refused after waiting: %s", cid, e->error ? e->error->message : "");
        char ucid[16];
        snprintf(ucid, sizeof(ucid), "uafter-%d", i);
        parley_v1_SendResponse r;
        pl_code_t code = mt_unary_send(c, d2, ucid, "later", 5, &r);
        CHECK(code == PL_CODE_OK, "%s refused after waiting: %s (%s)", ucid, pl_code_name(code), mt_last_message());
        mt_pump(sa, 1000 / RATE + 50);
    }
    mt_close(sa);
    mt_stream_free(sa);
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(c);
    return pl_test_report();
}

/* ---- limits ---- */

#define MAX_PAYLOAD 1024 /* --limits.max_payload_bytes */

/* A page must hold seqs from..to (descending if from > to) and has_more. */
static void check_page(const char *what, mt_dev_t *d, int64_t chat, int64_t before, int64_t after, int32_t limit,
                       int64_t from, int64_t to, bool more, char payloads[][1100])
{
    parley_v1_Message *msgs = calloc(256, sizeof(*msgs));
    REQUIRE(msgs != NULL, "out of memory");
    size_t n;
    bool has_more;
    pl_code_t code = get_history(d, chat, before, after, limit, msgs, 256, &n, &has_more);
    CHECK(code == PL_CODE_OK, "%s: %s (%s)", what, pl_code_name(code), mt_last_message());
    int64_t got[256], want[256];
    size_t nw = 0;
    for (int64_t q = from; from <= to ? q <= to : q >= to; q += from <= to ? 1 : -1)
        want[nw++] = q;
    for (size_t i = 0; i < n; i++) {
        got[i] = msgs[i].seq;
        if (msgs[i].seq >= 1 && msgs[i].seq < 64) {
            const char *p = payloads[msgs[i].seq];
            CHECK(msgs[i].payload.len == strlen(p) && memcmp(msgs[i].payload.data, p, strlen(p)) == 0,
                  "%s: seq %lld has the wrong payload", what, (long long)msgs[i].seq);
        }
        CHECK(msgs[i].chat_id == chat, "%s: seq %lld has chat_id %lld", what, (long long)msgs[i].seq,
              (long long)msgs[i].chat_id);
    }
    check_list(what, got, n, want, nw);
    CHECK(has_more == more, "%s: has_more %d, want %d", what, has_more, more);
    free(msgs);
}

int mt_case_limits(void)
{
    mt_dev_t *a = mt_register(NULL, 0, "A"), *b = mt_register(NULL, 0, "B"), *o = mt_register(NULL, 0, "O");
    int64_t d = mt_open_direct(a, b->account_id);
    int64_t others[] = {o->account_id};
    int64_t g = mt_create_group(b, "without A", others, 1);
    mt_stream_t *sa = mt_connect(a, 0);
    ready(sa, "A");
    static char big[MAX_PAYLOAD + 2], max[MAX_PAYLOAD + 1];
    memset(big, 'x', MAX_PAYLOAD + 1);
    memset(max, 'y', MAX_PAYLOAD);
    char(*payloads)[1100] = calloc(64, sizeof(*payloads)); /* by seq */
    REQUIRE(payloads != NULL, "out of memory");
    mt_event_t *e;

    step("a payload over the limit: RESOURCE_EXHAUSTED; exactly the limit passes");
    e = answer(sa, mt_send_text(sa, d, "too-big", big, MAX_PAYLOAD + 1), "too-big");
    const parley_v1_Error *err = expect_error(e, PL_CODE_RESOURCE_EXHAUSTED, "payload of 1025 bytes");
    if (err)
        CHECK_EQ_STR(err->client_message_id, "too-big");
    int64_t seq = send_ok(sa, d, "just-fits", max);
    CHECK_EQ_INT(seq, 1);
    snprintf(payloads[seq], sizeof(payloads[seq]), "%s", max);

    step("a per-device payload over the limit: RESOURCE_EXHAUSTED");
    dp_t big_dp[] = {{b->device_id, big}};
    e = answer(sa, send_pd(sa, d, "too-big-pd", big_dp, 1), "too-big-pd");
    expect_error(e, PL_CODE_RESOURCE_EXHAUSTED, "per-device payload of 1025 bytes");

    step("an empty client_message_id: INVALID_ARGUMENT");
    e = answer(sa, mt_send_text(sa, d, "", "x", 1), "empty id");
    expect_error(e, PL_CODE_INVALID_ARGUMENT, "empty client_message_id");

    step("both payload and device_payloads: INVALID_ARGUMENT");
    parley_v1_ClientEvent *ev = calloc(1, sizeof(*ev));
    REQUIRE(ev != NULL, "out of memory");
    dp_t one_dp[] = {{b->device_id, "for B"}};
    parley_v1_OutgoingMessage *om = pd_message(d, "both", one_dp, 1);
    om->payload = pl_bytes_of("for all", 7);
    ev->which_event = parley_v1_ClientEvent_send_tag;
    ev->event.send = *om;
    e = answer(sa, mt_send_event(sa, ev), "both");
    expect_error(e, PL_CODE_INVALID_ARGUMENT, "payload and device_payloads");

    step("an unknown chat and someone else's group: the same NOT_FOUND (ids cannot be probed)");
    int64_t unknown = mt_unused_id(mt_shard_of(d));
    e = answer(sa, mt_send_text(sa, unknown, "nowhere", "x", 1), "unknown chat");
    expect_error(e, PL_CODE_NOT_FOUND, "unknown chat");
    e = answer(sa, mt_send_text(sa, g, "not-mine", "x", 1), "not a member");
    expect_error(e, PL_CODE_NOT_FOUND, "send to a group A is not in");

    step("an empty client event: INVALID_ARGUMENT");
    parley_v1_ClientEvent empty = {0};
    e = answer(sa, mt_send_event(sa, &empty), "empty event");
    expect_error(e, PL_CODE_INVALID_ARGUMENT, "empty client event");

    step("after all that the stream lives on");
    CHECK(!sa->is_ended, "the stream ended: %s %s", pl_code_name(sa->code), sa->message);
    seq = send_ok(sa, d, "still-here", "fine");
    CHECK_EQ_INT(seq, 2);
    snprintf(payloads[seq], sizeof(payloads[seq]), "fine");
    CHECK_EQ_INT(rows_in_chat(d), 2);

    step("unary Send gives the same answers");
    parley_v1_SendResponse r;
    CHECK_EQ_INT(mt_unary_send(a, d, "u-too-big", big, MAX_PAYLOAD + 1, &r), PL_CODE_RESOURCE_EXHAUSTED);
    CHECK_EQ_INT(mt_unary_send(a, d, "", "x", 1, &r), PL_CODE_INVALID_ARGUMENT);
    CHECK_EQ_INT(mt_unary_send(a, unknown, "u-nowhere", "x", 1, &r), PL_CODE_NOT_FOUND);
    CHECK_EQ_INT(mt_unary_send(a, g, "u-not-mine", "x", 1, &r), PL_CODE_NOT_FOUND);
    {
        parley_v1_SendRequest *rq = calloc(1, sizeof(*rq));
        REQUIRE(rq != NULL, "out of memory");
        rq->has_message = true;
        rq->message = *om;
        snprintf(rq->message.client_message_id, sizeof(rq->message.client_message_id), "u-both");
        CHECK_EQ_INT(mt_call(a, &parley_v1_Messaging_Send_method, rq, &r), PL_CODE_INVALID_ARGUMENT);
        free(rq);
    }
    free(om);
    free(ev);
    CHECK_EQ_INT(rows_in_chat(d), 2);

    step("GetHistory pages forward and back with has_more");
    for (int i = 3; i <= 12; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "h-%d", i);
        snprintf(payloads[i], sizeof(payloads[i]), "history %d", i);
        CHECK_EQ_INT(unary_ok(i % 2 ? a : b, d, cid, payloads[i]), i);
    }
    check_page("after 0, 5", a, d, 0, 0, 5, 1, 5, true, payloads);
    check_page("after 5, 5", a, d, 0, 5, 5, 6, 10, true, payloads);
    check_page("after 10, 5", a, d, 0, 10, 5, 11, 12, false, payloads);
    check_page("after 7, 5", a, d, 0, 7, 5, 8, 12, false, payloads);
    check_page("before 13, 5", b, d, 13, 0, 5, 12, 8, true, payloads);
    check_page("before 8, 5", b, d, 8, 0, 5, 7, 3, true, payloads);
    check_page("before 3, 5", b, d, 3, 0, 5, 2, 1, false, payloads);
    check_page("limit 200", a, d, 0, 0, 200, 1, 12, false, payloads);

    step("GetHistory bounds");
    parley_v1_Message *msgs = calloc(256, sizeof(*msgs));
    REQUIRE(msgs != NULL, "out of memory");
    size_t n;
    bool more;
    pl_code_t code = get_history(a, d, 0, 0, 201, msgs, 256, &n, &more);
    CHECK(code == PL_CODE_INVALID_ARGUMENT, "limit 201: %s (%s)", pl_code_name(code), mt_last_message());
    code = get_history(a, d, 0, 0, -1, msgs, 256, &n, &more);
    CHECK(code == PL_CODE_INVALID_ARGUMENT, "limit -1: %s (%s)", pl_code_name(code), mt_last_message());
    code = get_history(o, d, 0, 0, 10, msgs, 256, &n, &more);
    CHECK(code == PL_CODE_NOT_FOUND, "a non-member's history: %s (%s)", pl_code_name(code), mt_last_message());
    code = get_history(a, unknown, 0, 0, 10, msgs, 256, &n, &more);
    CHECK(code == PL_CODE_NOT_FOUND, "an unknown chat's history: %s (%s)", pl_code_name(code), mt_last_message());
    free(msgs);
    free(payloads);

    mt_close(sa);
    mt_stream_free(sa);
    mt_dev_free(a);
    mt_dev_free(b);
    mt_dev_free(o);
    return pl_test_report();
}
