/* test_ephemeral.c — typing and presence: who sees them, when they end,
 * rate limits, privacy, contacts and blocking, and that nothing is stored. */

#include "cases.h"
#include "checks.h"

/* ---- typing ---- */

typedef struct want_typing {
    int64_t chat, account;
    bool typing;
} want_typing_t;

static bool match_typing(const mt_event_t *e, const void *arg)
{
    const want_typing_t *w = arg;
    return e->kind == TYPING && e->u.typing.chat_id == w->chat && e->u.typing.account_id == w->account &&
           e->u.typing.typing == w->typing;
}

static size_t typing_events_of(const mt_stream_t *s, int64_t account)
{
    size_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        n += s->events[i]->kind == TYPING && s->events[i]->u.typing.account_id == account;
    return n;
}

/* Lines of before that differ in after (row counts by table). */
static void report_row_changes(const char *before, const char *after)
{
    if (strcmp(before, after) == 0)
        return;
    fprintf(stderr, "    rows before:\n%s    rows after:\n%s", before, after);
}

int mt_case_typing(void)
{
    mt_dev_t *a1 = mt_register(NULL, 0, "A phone"), *a2 = mt_register(a1->phone, 0, "A laptop");
    mt_dev_t *b = mt_register(NULL, 0, "B"), *c = mt_register(NULL, 0, "C"), *d = mt_register(NULL, 0, "D outside");
    int64_t members[] = {b->account_id, c->account_id};
    int64_t g = mt_create_group(a1, "typing", members, 2);
    mt_stream_t *sa1 = mt_connect(a1, 0), *sa2 = mt_connect(a2, 0), *sb = mt_connect(b, 0), *sc = mt_connect(c, 0),
                *sd = mt_connect(d, 0);
    ready(sa1, "A1");
    ready(sa2, "A2");
    ready(sb, "B");
    ready(sc, "C");
    ready(sd, "D");
    int64_t B = b->account_id, C = c->account_id;
    char *rows_before = mt_row_counts();

    step("B types: A's devices and C see it, B's own device does not");
    mt_send_typing(sb, g, true);
    int64_t t0 = mt_now_ms();
    want_typing_t b_on = {g, B, true}, b_off = {g, B, false};
    CHECK(mt_take(sa1, MT_WAIT_MS, match_typing, &b_on) != NULL, "A1 did not see B typing");
    CHECK(mt_take(sa2, MT_WAIT_MS, match_typing, &b_on) != NULL, "A2 did not see B typing");
    CHECK(mt_take(sc, MT_WAIT_MS, match_typing, &b_on) != NULL, "C did not see B typing");
    mt_pump(sb, 500);
    CHECK(typing_events_of(sb, B) == 0, "B's own device got its typing back");

    step("B types again 2.5 s later: it stops 5 s after that, by itself");
    mt_pump(sa1, (int)(2500 - (mt_now_ms() - t0) > 0 ? 2500 - (mt_now_ms() - t0) : 0));
    mt_send_typing(sb, g, true);
    int64_t t1 = mt_now_ms();
    mt_event_t *e = mt_take(sa1, 10000, match_typing, &b_off);
    CHECK(e != NULL, "B's typing never stopped");
    if (e) {
        int64_t after = e->at_ms - t1;
        printf("typing stopped %lld ms after the last typing=true (%lld ms after the first)\n", (long long)after,
               (long long)(e->at_ms - t0));
        CHECK(after >= 4500 && after <= 7000, "stopped %lld ms after the last typing=true, want 4500..7000",
              (long long)after);
    }

    step("an explicit stop arrives at once");
    mt_send_typing(sb, g, true);
    CHECK(mt_take(sa1, MT_WAIT_MS, match_typing, &b_on) != NULL, "A1 did not see B typing again");
    mt_pump(sb, 600);
    mt_send_typing(sb, g, false);
    int64_t t2 = mt_now_ms();
    e = mt_take(sa1, MT_WAIT_MS, match_typing, &b_off);
    CHECK(e && e->at_ms - t2 < 2000, "the explicit stop took %lld ms", e ? (long long)(e->at_ms - t2) : -1LL);

    step("a burst of 10 typing updates at 2/s: RESOURCE_EXHAUSTED with a retry delay");
    uint64_t first = 0, lastid = 0;
    for (int i = 0; i < 10; i++) {
        uint64_t id = mt_send_typing(sc, g, true);
        if (!first)
            first = id;
        lastid = id;
    }
    mt_pump(sc, 1500);
    int limited = 0, other = 0;
    for (size_t i = 0; i < sc->count; i++) {
        const mt_event_t *ev = sc->events[i];
        if (ev->kind != ERROR || ev->request_id < first || ev->request_id > lastid)
            continue;
        if (ev->error->code == PL_CODE_RESOURCE_EXHAUSTED) {
            limited++;
            CHECK(ev->error->retry_after_ms > 0 && ev->error->retry_after_ms <= 5000, "retry_after_ms %lld for typing",
                  (long long)ev->error->retry_after_ms);
            CHECK(ev->error->message[0], "a rate-limit Error without a message");
        } else {
            other++;
        }
    }
    printf("typing burst: %d of 10 refused\n", limited);
    CHECK(limited >= 5 && limited <= 9, "%d of 10 typing updates refused at 2/s (burst 2)", limited);
    CHECK_EQ_INT(other, 0);
    want_typing_t c_on = {g, C, true};
    CHECK(mt_take(sa1, MT_WAIT_MS, match_typing, &c_on) != NULL, "none of C's burst got through");

    step("someone outside the group cannot type in it");
    uint64_t rid = mt_send_typing(sd, g, true);
    mt_event_t *err = mt_answer(sd, rid, MT_WAIT_MS);
    CHECK(err != NULL, "no Error for a non-member's typing");
    if (err)
        expect_error(err, PL_CODE_NOT_FOUND, "non-member typing");
    mt_pump(sa1, 1000);
    CHECK(typing_events_of(sa1, d->account_id) == 0, "A saw the outsider typing");

    step("typing is never stored");
    char *rows_after = mt_row_counts();
    CHECK(strcmp(rows_before, rows_after) == 0, "rows changed while only typing happened");
    report_row_changes(rows_before, rows_after);
    free(rows_before);
    free(rows_after);

    mt_stream_t *streams[] = {sa1, sa2, sb, sc, sd};
    mt_close_all(streams, 5);
    mt_dev_t *devs[] = {a1, a2, b, c, d};
    for (int i = 0; i < 5; i++)
        mt_dev_free(devs[i]);
    return pl_test_report();
}

/* ---- presence ---- */

enum { P_ANY, P_ONLINE, P_OFFLINE_SEEN };

typedef struct want_presence {
    int64_t account;
    int mode;
} want_presence_t;

static bool match_presence(const mt_event_t *e, const void *arg)
{
    const want_presence_t *w = arg;
    if (e->kind != PRESENCE || e->u.presence.account_id != w->account)
        return false;
    switch (w->mode) {
    case P_ONLINE: return e->u.presence.online;
    case P_OFFLINE_SEEN: return !e->u.presence.online && e->u.presence.last_seen_ms > 0;
    default: return true;
    }
}

static void take_all(mt_stream_t *s)
{
    for (size_t i = 0; i < s->count; i++)
        s->events[i]->is_taken = true;
}

static mt_event_t *expect_presence(mt_stream_t *s, const char *who, int64_t account, int mode, const char *what)
{
    want_presence_t w = {account, mode};
    mt_event_t *e = mt_take(s, MT_WAIT_MS, match_presence, &w);
    CHECK(e != NULL, "%s: %s", who, what);
    if (!e)
        dump_events(who, s);
    return e;
}

/* Reads for ms: every Presence of account not taken yet must show nothing
 * (offline, no last seen). */
static void expect_hidden(mt_stream_t *s, const char *who, int64_t account, int ms)
{
    mt_pump(s, ms);
    for (size_t i = 0; i < s->count; i++) {
        mt_event_t *e = s->events[i];
        if (e->is_taken || e->kind != PRESENCE || e->u.presence.account_id != account)
            continue;
        e->is_taken = true;
        CHECK(!e->u.presence.online && e->u.presence.last_seen_ms == 0,
              "%s: sees account %lld online=%d last_seen_ms=%lld, which should be hidden from it", who,
              (long long)account, e->u.presence.online, (long long)e->u.presence.last_seen_ms);
    }
}

/* A fresh subscription's first Presence; its state must be hidden or not as
 * want_visible says. */
static void resubscribe(mt_stream_t *s, const char *who, int64_t account, bool want_visible_last_seen)
{
    mt_send_presence(s, &account, 1, false);
    take_all(s);
    mt_send_presence(s, &account, 1, true);
    mt_event_t *e = expect_presence(s, who, account, P_ANY, "no Presence on subscribing");
    if (!e)
        return;
    CHECK(!e->u.presence.online, "%s: the target is offline but shows online", who);
    if (want_visible_last_seen)
        CHECK(e->u.presence.last_seen_ms > 0, "%s: the target's last seen is hidden from it", who);
    else
        CHECK(e->u.presence.last_seen_ms == 0, "%s: sees last_seen_ms=%lld, which should be hidden", who,
              (long long)e->u.presence.last_seen_ms);
}

static void update_privacy(mt_dev_t *d, parley_v1_Visibility v)
{
    parley_v1_UpdatePrivacyRequest rq = {v, v};
    parley_v1_PrivacySettings ps = {0};
    pl_code_t code = mt_call(d, &parley_v1_Accounts_UpdatePrivacy_method, &rq, &ps);
    REQUIRE(code == PL_CODE_OK, "UpdatePrivacy: %s (%s)", pl_code_name(code), mt_last_message());
    CHECK_EQ_INT(ps.last_seen, v);
    CHECK_EQ_INT(ps.online, v);
}

static void check_last_seen(const mt_event_t *e, int64_t left_at, const char *who)
{
    if (!e)
        return;
    int64_t now = mt_wall_ms();
    CHECK(e->u.presence.last_seen_ms >= left_at - 10000 && e->u.presence.last_seen_ms <= now + 2000,
          "%s: last_seen_ms %lld, the target left at %lld", who, (long long)e->u.presence.last_seen_ms,
          (long long)left_at);
}

/* T connects on node, the watcher sees it online; T leaves, offline with
 * a last seen. */
static void online_then_offline(mt_dev_t *t, int node, mt_stream_t *watcher, const char *who)
{
    mt_stream_t *st = mt_connect(t, node);
    ready(st, "T");
    expect_presence(watcher, who, t->account_id, P_ONLINE, "did not see T come online");
    int64_t left_at = mt_wall_ms();
    mt_close(st);
    mt_stream_free(st);
    check_last_seen(expect_presence(watcher, who, t->account_id, P_OFFLINE_SEEN, "did not see T go offline"), left_at,
                    who);
}

int mt_case_presence(void)
{
    REQUIRE(mt_nodes() >= 2, "needs two nodes (--nodes 2)");
    mt_dev_t *t = mt_register(NULL, 1, "T"), *v = mt_register(NULL, 0, "V"), *w = mt_register(NULL, 0, "W");
    mt_dev_t *x = mt_register(NULL, 1, "X");
    int64_t T = t->account_id;
    mt_stream_t *sv = mt_connect(v, 0), *sx = mt_connect(x, 1), *sw = mt_connect(w, 0);
    ready(sv, "V");
    ready(sx, "X");
    ready(sw, "W");

    step("subscribing gives the current state: never seen, offline");
    mt_send_presence(sv, &T, 1, true);
    mt_event_t *e = expect_presence(sv, "V", T, P_ANY, "no Presence on subscribing");
    if (e)
        CHECK(!e->u.presence.online && e->u.presence.last_seen_ms == 0,
              "V: a never-connected account shows "
              "online=%d last_seen=%lld",
              e->u.presence.online, (long long)e->u.presence.last_seen_ms);
    mt_send_presence(sx, &T, 1, true);
    expect_presence(sx, "X", T, P_ANY, "no Presence on subscribing");

    step("T comes and goes on the other node (V on node 0), then on the same node");
    online_then_offline(t, 1, sv, "V (T on node 1)");
    online_then_offline(t, 0, sv, "V (T on node 0)");

    step("T blocks X: X sees nothing any more, V still does");
    parley_v1_BlockRequest br = {x->account_id};
    parley_v1_BlockResponse brr = {0};
    REQUIRE(mt_call(t, &parley_v1_Accounts_Block_method, &br, &brr) == PL_CODE_OK, "Block: %s", mt_last_message());
    take_all(sx);
    take_all(sv);
    mt_pump(sx, 500);
    take_all(sx); /* what re-evaluation says is checked by the next events */
    mt_stream_t *st = mt_connect(t, 0);
    ready(st, "T");
    expect_presence(sv, "V", T, P_ONLINE, "did not see T come online");
    expect_hidden(sx, "X (blocked, subscribed before)", T, 1500);
    mt_close(st);
    mt_stream_free(st);
    expect_presence(sv, "V", T, P_OFFLINE_SEEN, "did not see T go offline");
    expect_hidden(sx, "X (blocked, subscribed before)", T, 1500);
    resubscribe(sx, "X (blocked, fresh subscription)", T, false);

    step("privacy nobody: V sees neither online nor last seen");
    update_privacy(t, parley_v1_Visibility_VISIBILITY_NOBODY);
    mt_pump(sv, 500);
    take_all(sv);
    st = mt_connect(t, 1);
    ready(st, "T");
    expect_hidden(sv, "V (nobody, subscribed before)", T, 2000);
    mt_close(st);
    mt_stream_free(st);
    expect_hidden(sv, "V (nobody, subscribed before)", T, 2000);
    resubscribe(sv, "V (nobody, fresh subscription)", T, false);

    step("privacy contacts: W, once T's contact, sees it; V does not");
    update_privacy(t, parley_v1_Visibility_VISIBILITY_CONTACTS);
    mt_send_presence(sw, &T, 1, true);
    e = expect_presence(sw, "W", T, P_ANY, "no Presence on subscribing");
    if (e)
        CHECK(!e->u.presence.online && e->u.presence.last_seen_ms == 0,
              "W (not yet a contact) sees online=%d last_seen=%lld", e->u.presence.online,
              (long long)e->u.presence.last_seen_ms);
    parley_v1_AddContactsRequest ac = {0};
    parley_v1_AddContactsResponse acr = {0};
    ac.account_ids[0] = w->account_id;
    ac.account_ids_count = 1;
    REQUIRE(mt_call(t, &parley_v1_Accounts_AddContacts_method, &ac, &acr) == PL_CODE_OK, "AddContacts: %s",
            mt_last_message());
    CHECK_EQ_INT(acr.added, 1);
    mt_pump(sw, 500);
    take_all(sw);
    take_all(sv);
    online_then_offline(t, 1, sw, "W (contact, subscribed before being added)");
    expect_hidden(sv, "V (not a contact)", T, 500);
    resubscribe(sw, "W (contact, fresh subscription)", T, true);
    take_all(sv);
    online_then_offline(t, 0, sw, "W (contact, fresh subscription)");
    expect_hidden(sv, "V (not a contact)", T, 1000);

    mt_stream_t *streams[] = {sv, sx, sw};
    mt_close_all(streams, 3);
    mt_dev_free(t);
    mt_dev_free(v);
    mt_dev_free(w);
    mt_dev_free(x);
    return pl_test_report();
}
