/* test_device_payloads.c — per-device payloads: the coverage check (missing
 * and stale devices, on the stream and in unary Send's trailers), each
 * device's own payload, payload_missing for a device linked later. */

#include "cases.h"
#include "checks.h"

/* ---- device_payloads ---- */

typedef struct want_missing {
    int64_t account;
    int64_t devices[4];
    size_t n;
} want_missing_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool same_set(const int64_t *a, size_t na, const int64_t *b, size_t nb)
{
    if (na != nb || na > 64)
        return false;
    if (na == 0)
        return true;
    int64_t x[64], y[64];
    memcpy(x, a, na * sizeof(*a));
    memcpy(y, b, nb * sizeof(*b));
    qsort(x, na, sizeof(*x), cmp_i64);
    qsort(y, nb, sizeof(*y), cmp_i64);
    return memcmp(x, y, na * sizeof(*x)) == 0;
}

static void print_mismatch(const parley_v1_DeviceMismatch *mm)
{
    fprintf(stderr, "    mismatch: missing");
    for (pb_size_t i = 0; i < mm->missing_count; i++) {
        fprintf(stderr, " %lld:[", (long long)mm->missing[i].account_id);
        for (pb_size_t k = 0; k < mm->missing[i].device_ids_count; k++)
            fprintf(stderr, "%s%lld", k ? " " : "", (long long)mm->missing[i].device_ids[k]);
        fprintf(stderr, "]");
    }
    fprintf(stderr, "; stale [");
    for (pb_size_t i = 0; i < mm->stale_device_ids_count; i++)
        fprintf(stderr, "%s%lld", i ? " " : "", (long long)mm->stale_device_ids[i]);
    fprintf(stderr, "]\n");
}

static void check_mismatch(const char *what, const parley_v1_DeviceMismatch *mm, const want_missing_t *wm, size_t nwm,
                           const int64_t *stale, size_t nstale)
{
    bool ok = mm->missing_count == nwm;
    for (size_t i = 0; ok && i < nwm; i++) {
        const parley_v1_AccountDevices *ad = NULL;
        for (pb_size_t k = 0; k < mm->missing_count; k++)
            if (mm->missing[k].account_id == wm[i].account)
                ad = &mm->missing[k];
        ok = ad && same_set(ad->device_ids, ad->device_ids_count, wm[i].devices, wm[i].n);
    }
    ok = ok && same_set(mm->stale_device_ids, mm->stale_device_ids_count, stale, nstale);
    CHECK(ok, "%s: the DeviceMismatch is not what was expected", what);
    if (!ok) {
        print_mismatch(mm);
        fprintf(stderr, "    want missing");
        for (size_t i = 0; i < nwm; i++) {
            fprintf(stderr, " %lld:[", (long long)wm[i].account);
            for (size_t k = 0; k < wm[i].n; k++)
                fprintf(stderr, "%s%lld", k ? " " : "", (long long)wm[i].devices[k]);
            fprintf(stderr, "]");
        }
        fprintf(stderr, "; stale [");
        for (size_t i = 0; i < nstale; i++)
            fprintf(stderr, "%s%lld", i ? " " : "", (long long)stale[i]);
        fprintf(stderr, "]\n");
    }
}

/* A stream send that must fail with FAILED_PRECONDITION and this mismatch. */
static void expect_mismatch(mt_stream_t *s, int64_t chat, const char *cid, const dp_t *dps, size_t n,
                            const want_missing_t *wm, size_t nwm, const int64_t *stale, size_t nstale)
{
    mt_event_t *e = answer(s, send_pd(s, chat, cid, dps, n), cid);
    const parley_v1_Error *err = expect_error(e, PL_CODE_FAILED_PRECONDITION, cid);
    if (!err)
        return;
    CHECK_EQ_STR(err->client_message_id, cid);
    CHECK(err->device_mismatch.len > 0, "%s: FAILED_PRECONDITION without a DeviceMismatch", cid);
    if (err->device_mismatch.len > 0) {
        parley_v1_DeviceMismatch *mm = calloc(1, sizeof(*mm));
        REQUIRE(mm != NULL, "out of memory");
        const char *why = NULL;
        int rc = pl_pb_decode(parley_v1_DeviceMismatch_fields, err->device_mismatch.data, err->device_mismatch.len, mm,
                              &why);
        CHECK(rc == 0, "%s: the DeviceMismatch does not decode: %s", cid, why ? why : "?");
        if (rc == 0)
            check_mismatch(cid, mm, wm, nwm, stale, nstale);
        free(mm);
    }
}

int mt_case_device_payloads(void)
{
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone"), *a2 = mt_register(a1->phone, 0, "A laptop");
    mt_dev_t *b1 = mt_register(NULL, 0, "B phone"), *b2 = mt_register(b1->phone, 0, "B tablet");
    mt_dev_t *c1 = mt_register(NULL, 0, "C (not in the chat)");
    int64_t chat = mt_open_direct(a1, b1->account_id);
    mt_stream_t *sa1 = mt_connect(a1, 0), *sa2 = mt_connect(a2, 0), *sb1 = mt_connect(b1, 0), *sb2 = mt_connect(b2, 0);
    ready(sa1, "A1");
    ready(sa2, "A2");
    ready(sb1, "B1");
    ready(sb2, "B2");

    step("missing devices: grouped by account, the sender's other device included");
    dp_t only_b1[] = {{b1->device_id, "for B1"}};
    want_missing_t miss_both[] = {{b1->account_id, {b2->device_id}, 1}, {a1->account_id, {a2->device_id}, 1}};
    expect_mismatch(sa1, chat, "pd-missing", only_b1, 1, miss_both, 2, NULL, 0);

    step("stale: a device of someone outside the chat");
    dp_t with_c[] = {{b1->device_id, "1"}, {b2->device_id, "2"}, {a2->device_id, "3"}, {c1->device_id, "4"}};
    int64_t stale_c[] = {c1->device_id};
    expect_mismatch(sa1, chat, "pd-stale-outsider", with_c, 4, NULL, 0, stale_c, 1);

    step("a newly linked device must be covered; once removed it is stale");
    mt_dev_t *b3 = mt_register(b1->phone, 0, "B watch");
    dp_t three[] = {{b1->device_id, "1"}, {b2->device_id, "2"}, {a2->device_id, "3"}};
    want_missing_t miss_b3[] = {{b1->account_id, {b3->device_id}, 1}};
    expect_mismatch(sa1, chat, "pd-new-device", three, 3, miss_b3, 1, NULL, 0);
    parley_v1_RemoveDeviceRequest rd = {0};
    parley_v1_RemoveDeviceResponse rdr = {0};
    rd.device_id = b3->device_id;
    REQUIRE(mt_call(b1, &parley_v1_Accounts_RemoveDevice_method, &rd, &rdr) == PL_CODE_OK, "RemoveDevice: %s",
            mt_last_message());
    dp_t with_b3[] = {{b1->device_id, "1"}, {b2->device_id, "2"}, {a2->device_id, "3"}, {b3->device_id, "4"}};
    int64_t stale_b3[] = {b3->device_id};
    expect_mismatch(sa1, chat, "pd-removed-device", with_b3, 4, NULL, 0, stale_b3, 1);

    step("unary Send: FAILED_PRECONDITION with parley-device-mismatch-bin");
    {
        parley_v1_SendRequest *rq = calloc(1, sizeof(*rq));
        parley_v1_OutgoingMessage *om = pd_message(chat, "pd-unary-missing", only_b1, 1);
        REQUIRE(rq != NULL, "out of memory");
        rq->has_message = true;
        rq->message = *om;
        parley_v1_SendResponse resp = {0};
        pl_metadata_t trailing;
        pl_code_t code = mt_call_md(a1->ch, &a1->md, &parley_v1_Messaging_Send_method, rq, &resp, &trailing);
        CHECK(code == PL_CODE_FAILED_PRECONDITION, "unary mismatch: %s (%s)", pl_code_name(code), mt_last_message());
        size_t len = 0;
        const uint8_t *bin = pl_metadata_get(&trailing, "parley-device-mismatch-bin", &len);
        CHECK(bin != NULL, "no parley-device-mismatch-bin in the trailers");
        if (bin) {
            parley_v1_DeviceMismatch *mm = calloc(1, sizeof(*mm));
            REQUIRE(mm != NULL, "out of memory");
            CHECK(pl_pb_decode(parley_v1_DeviceMismatch_fields, bin, len, mm, NULL) == 0);
            check_mismatch("unary", mm, miss_both, 2, NULL, 0);
            free(mm);
        }
        pl_metadata_dispose(&trailing);
        free(om);
        free(rq);
    }
    CHECK_EQ_INT(rows_in_chat(chat), 0);

    step("exact coverage: accepted, and each device gets its own payload");
    dp_t exact[] = {{b1->device_id, "for B1"}, {b2->device_id, "for B2"}, {a2->device_id, "for A2"}};
    mt_event_t *e = answer(sa1, send_pd(sa1, chat, "pd-exact", exact, 3), "pd-exact");
    REQUIRE(e->kind == ACCEPTED, "exact coverage refused: %s", e->error ? e->error->message : "");
    int64_t pd_seq = e->u.accepted.seq;
    struct {
        mt_stream_t *s;
        const char *who, *payload;
    } want[] = {{sb1, "B1", "for B1"}, {sb2, "B2", "for B2"}, {sa2, "A2", "for A2"}};
    for (int i = 0; i < 3; i++) {
        const parley_v1_Message *m = mt_wait_message(want[i].s, chat, pd_seq, MT_WAIT_MS);
        CHECK(m != NULL, "%s did not get the per-device message", want[i].who);
        if (m) {
            CHECK_EQ_MEM(m->payload.data, m->payload.len, want[i].payload, strlen(want[i].payload));
            CHECK(!m->payload_missing);
        }
    }
    {
        parley_v1_SendRequest *rq = calloc(1, sizeof(*rq));
        parley_v1_OutgoingMessage *om = pd_message(chat, "pd-unary-exact", exact, 3);
        REQUIRE(rq != NULL, "out of memory");
        rq->has_message = true;
        rq->message = *om;
        parley_v1_SendResponse resp = {0};
        pl_code_t code = mt_call(a1, &parley_v1_Messaging_Send_method, rq, &resp);
        CHECK(code == PL_CODE_OK, "unary exact coverage: %s (%s)", pl_code_name(code), mt_last_message());
        const parley_v1_Message *m = mt_wait_message(sb2, chat, resp.seq, MT_WAIT_MS);
        CHECK(m && m->payload.len == 6 && memcmp(m->payload.data, "for B2", 6) == 0,
              "B2 did not get its payload of the unary per-device send");
        free(om);
        free(rq);
    }
    int64_t plain_seq = send_ok(sa1, chat, "pd-plain", "one payload for all");

    step("a device linked later: older per-device messages arrive with payload_missing");
    mt_dev_t *a3 = mt_register(a1->phone, 0, "A desktop");
    mt_stream_t *sa3 = mt_connect(a3, 0);
    ready(sa3, "A3");
    const parley_v1_Message *m = mt_wait_message(sa3, chat, pd_seq, MT_WAIT_MS);
    CHECK(m != NULL, "A3 did not get seq %lld at all", (long long)pd_seq);
    if (m) {
        CHECK(m->payload_missing);
        CHECK_EQ_INT(m->payload.len, 0);
        CHECK_EQ_INT(m->sender_device_id, a1->device_id);
    }
    m = mt_wait_message(sa3, chat, plain_seq, MT_WAIT_MS);
    CHECK(m != NULL, "A3 did not get seq %lld", (long long)plain_seq);
    if (m) {
        CHECK(!m->payload_missing);
        CHECK_EQ_MEM(m->payload.data, m->payload.len, "one payload for all", 19);
    }
    mt_close(sa3);
    mt_stream_free(sa3);
    parley_v1_Cursor from = {chat, pd_seq - 1};
    sa3 = mt_connect_resume(a3, 0, &from, 1);
    ready(sa3, "A3 resumed");
    m = mt_wait_message(sa3, chat, pd_seq, MT_WAIT_MS);
    CHECK(m && m->payload_missing && m->payload.len == 0, "A3's resume: seq %lld without payload_missing",
          (long long)pd_seq);

    step("and from now on it must be covered");
    want_missing_t miss_a3[] = {{a1->account_id, {a3->device_id}, 1}};
    expect_mismatch(sa1, chat, "pd-after-link", exact, 3, miss_a3, 1, NULL, 0);
    dp_t four[] = {
        {b1->device_id, "for B1"}, {b2->device_id, "for B2"}, {a2->device_id, "for A2"}, {a3->device_id, "for A3"}};
    e = answer(sa1, send_pd(sa1, chat, "pd-four", four, 4), "pd-four");
    REQUIRE(e->kind == ACCEPTED, "coverage with A3 refused: %s", e->error ? e->error->message : "");
    m = mt_wait_message(sa3, chat, e->u.accepted.seq, MT_WAIT_MS);
    CHECK(m && !m->payload_missing && m->payload.len == 6 && memcmp(m->payload.data, "for A3", 6) == 0,
          "A3 did not get its own payload");

    mt_stream_t *streams[] = {sa1, sa2, sb1, sb2, sa3};
    mt_close_all(streams, 5);
    mt_dev_t *devs[] = {a1, a2, a3, b1, b2, b3, c1};
    for (int i = 0; i < 7; i++)
        mt_dev_free(devs[i]);
    return pl_test_report();
}
