/* test_client.c — libparley against real parleyd (tests/client/CMakeLists.txt
 * runs one case per test), through the public API only:
 *
 *   restart_resume  A and B chat; parleyd is killed (SIGKILL) mid-conversation,
 *                   both keep sending while it is down, it comes back on the
 *                   same port: both clients reconnect and resume by
 *                   themselves; every message arrives exactly once, in order,
 *                   and the chat's log holds each send once. Then the same
 *                   through a graceful restart (SIGTERM, drain).
 *   send_queue      sends queued while the client cannot connect are sent
 *                   once it can, exactly once and in order; a send whose
 *                   answer is lost (the proxy swallows what the server says)
 *                   is sent again after the reconnect with the same client id
 *                   and the server's deduplication keeps one copy.
 *   exactly_once    B's connection is cut over and over (sometimes after the
 *                   server's messages were swallowed) while A sends 300
 *                   messages; then B's client is freed with events untaken
 *                   and a new one starts from the cursors B saved: B's app
 *                   sees every message once, in order, with nothing missing.
 *   refusals        refused sends (not a member; per-device payloads missing
 *                   a device) come back as SEND_FAILED with the details, are
 *                   not retried, and do not hold up the sends queued after them;
 *                   also the event fd (readable exactly while events wait) and
 *                   the notify callback (on the I/O thread, stop refused there).
 *   auth_failure    a refused token, a removed device and a replaced stream
 *                   stop the client: one connection, no retries.
 *   backpressure    an app that stops taking events: the queue stays at
 *                   max_queued_events (the stream waits), and once the app
 *                   takes events again everything arrives, in order.
 *   tls             against parleyd with TLS: a certificate from an unknown CA
 *                   is refused with a reason; with the CA file, registration,
 *                   the stream and a message work.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proxy.h"

static void sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000);
}

/* Pumps the peers for ms. */
static void pump_for(peer_t **peers, size_t n, int ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        for (size_t i = 0; i < n; i++)
            h_pump(peers[i], 10);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static int send_text(peer_t *p, int64_t chat, const char *text, uint64_t *local_id)
{
    int rc = parley_client_send(p->c, chat, text, strlen(text), NULL, local_id);
    if (rc != PARLEY_OK)
        printf("%s: send %s: %s\n", p->name, text, parley_code_name(rc));
    return rc;
}

/* The direct chat of a and b (opened by a). */
static int64_t open_direct(peer_t *a, peer_t *b)
{
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    int rc = parley_open_direct_chat(a->c, b->account_id, &chat, &err);
    if (rc != PARLEY_OK) {
        printf("open direct chat: %s: %s\n", parley_code_name(rc), err.message);
        return -1;
    }
    int64_t id = chat->chat_id;
    parley_chat_free(chat);
    return id;
}

/* ---- conditions ---- */

typedef struct want {
    peer_t *p;
    int64_t chat;
    size_t msgs;  /* messages of chat */
    size_t sends; /* answers */
} want_t;

static bool has_all(void *arg)
{
    for (want_t *w = arg; w->p; w++) {
        if (h_chat_seqs(w->p, w->chat, NULL, 0) < w->msgs || w->p->nsends < w->sends)
            return false;
    }
    return true;
}

/* Texts of p's messages in chat with prefix, in arrival order, joined by
 * spaces, into out. */
static void texts(const peer_t *p, int64_t chat, const char *prefix, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->nmsgs; i++) {
        const seen_msg_t *m = &p->msgs[i];
        if (m->chat_id != chat || strncmp(m->text, prefix, strlen(prefix)) != 0)
            continue;
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? " " : "", m->text);
    }
}

static void expected(const char *prefix, int from, int to, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = from; i < to; i++)
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s%d", n ? " " : "", prefix, i);
}

/* Every seq of chat that p knows (its messages and its accepted sends)
 * occurs once and together they are 1..n. */
static int check_log_view(const peer_t *p, int64_t chat, int64_t n)
{
    char *seen = calloc((size_t)n + 2, 1);
    REQUIRE(seen, "out of memory");
    for (size_t i = 0; i < p->nmsgs; i++) {
        const seen_msg_t *m = &p->msgs[i];
        if (m->chat_id != chat)
            continue;
        if (m->seq < 1 || m->seq > n || seen[m->seq]) {
            free(seen);
            FAIL("%s: message seq %lld repeated or out of 1..%lld", p->name, (long long)m->seq, (long long)n);
        }
        seen[m->seq] = 1;
    }
    for (size_t i = 0; i < p->nsends; i++) {
        const seen_send_t *s = &p->sends[i];
        if (s->chat_id != chat || s->failed)
            continue;
        if (s->seq < 1 || s->seq > n || seen[s->seq]) {
            free(seen);
            FAIL("%s: accepted seq %lld repeated or out of 1..%lld", p->name, (long long)s->seq, (long long)n);
        }
        seen[s->seq] = 1;
    }
    for (int64_t s = 1; s <= n; s++)
        if (!seen[s]) {
            free(seen);
            FAIL("%s: seq %lld of 1..%lld never reached the app", p->name, (long long)s, (long long)n);
        }
    free(seen);
    return 0;
}

/* p's messages of chat arrive in strictly increasing seq order. */
static int check_order(const peer_t *p, int64_t chat)
{
    int64_t last = 0;
    for (size_t i = 0; i < p->nmsgs; i++) {
        if (p->msgs[i].chat_id != chat)
            continue;
        REQUIRE(p->msgs[i].seq > last, "%s: seq %lld after %lld", p->name, (long long)p->msgs[i].seq, (long long)last);
        last = p->msgs[i].seq;
    }
    return 0;
}

/* p's accepted sends of chat have increasing seqs in the order they were
 * queued (local ids). */
static int check_send_order(const peer_t *p, int64_t chat)
{
    uint64_t last_id = 0;
    int64_t last_seq = 0;
    for (uint64_t id = 1; id <= 100000; id++) {
        const seen_send_t *s = h_send_result(p, id);
        if (!s)
            continue;
        if (s->chat_id != chat || s->failed)
            continue;
        REQUIRE(s->seq > last_seq, "%s: send %llu got seq %lld, send %llu before it got %lld", p->name,
                (unsigned long long)id, (long long)s->seq, (unsigned long long)last_id, (long long)last_seq);
        last_id = id;
        last_seq = s->seq;
    }
    return 0;
}

/* The chat's log as the server has it: exactly n messages, client ids
 * unique (the server stored no send twice). */
static int check_history(peer_t *p, int64_t chat, int64_t n)
{
    int64_t count = 0, after = 0;
    char(*ids)[65] = calloc((size_t)n + 1, 65);
    REQUIRE(ids, "out of memory");
    for (;;) {
        parley_history_t *h = NULL;
        parley_error_t err = {0};
        int rc = parley_get_history(p->c, chat, 0, after, 200, &h, &err);
        if (rc != PARLEY_OK) {
            free(ids);
            FAIL("history: %s: %s", parley_code_name(rc), err.message);
        }
        for (size_t i = 0; i < h->count; i++) {
            const parley_message_t *m = &h->messages[i];
            if (count >= n) {
                parley_history_free(h);
                free(ids);
                FAIL("the chat holds more than %lld messages", (long long)n);
            }
            for (int64_t j = 0; j < count; j++)
                if (strcmp(ids[j], m->client_message_id) == 0) {
                    parley_history_free(h);
                    free(ids);
                    FAIL("client id %s stored twice", m->client_message_id);
                }
            snprintf(ids[count++], 65, "%s", m->client_message_id);
            after = m->seq;
        }
        bool more = h->has_more && h->count;
        parley_history_free(h);
        if (!more)
            break;
    }
    free(ids);
    REQUIRE(count == n, "the chat holds %lld messages, want %lld", (long long)count, (long long)n);
    return 0;
}

/* ---- restart_resume ---- */

static int case_restart_resume(const char *parleyd)
{
    char sms[128];
    if (!getenv("PARLEY_SMS_FILE")) {
        snprintf(sms, sizeof(sms), "/tmp/parley-client-sms-%d.log", (int)getpid());
        setenv("PARLEY_SMS_FILE", sms, 1);
    }
    server_t srv = {0};
    uint16_t port = h_free_port();
    REQUIRE(port && server_start(&srv, parleyd, port) == 0, "cannot start parleyd");
    char addr[32];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);

    pl_test_step("register A and B; their direct chat; both streams ready");
    peer_t a, b;
    char pa[24], pb[24];
    h_phone(pa);
    h_phone(pb);
    REQUIRE(h_register(&a, "A", addr, pa, NULL) == 0 && h_register(&b, "B", addr, pb, NULL) == 0, "registration");
    int64_t chat = open_direct(&a, &b);
    REQUIRE(chat > 0, "no chat");
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&a, PARLEY_STATE_READY, 30000) && h_wait_state(&b, PARLEY_STATE_READY, 30000), "not ready");
    peer_t *both[] = {&a, &b};

    pl_test_step("a conversation: 10 messages each way, parleyd killed while they travel");
    char text[32];
    for (int i = 0; i < 10; i++) {
        snprintf(text, sizeof(text), "a%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
        snprintf(text, sizeof(text), "b%d", i);
        REQUIRE(send_text(&b, chat, text, NULL) == PARLEY_OK, "send");
        h_pump(&a, 0);
        h_pump(&b, 0);
    }
    want_t some[] = {{&a, chat, 0, 4}, {&b, chat, 0, 4}, {0}};
    REQUIRE(h_wait(both, 2, has_all, some, 15000), "no answers before the kill");
    size_t a_states = a.nstates, b_states = b.nstates;
    server_kill9(&srv);

    pl_test_step("both keep sending while parleyd is down");
    for (int i = 10; i < 20; i++) {
        snprintf(text, sizeof(text), "a%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send while down");
        snprintf(text, sizeof(text), "b%d", i);
        REQUIRE(send_text(&b, chat, text, NULL) == PARLEY_OK, "send while down");
    }
    pump_for(both, 2, 1500);
    REQUIRE(h_saw_state(&a, PARLEY_STATE_DISCONNECTED, a_states) &&
                h_saw_state(&b, PARLEY_STATE_DISCONNECTED, b_states),
            "the clients did not notice the server went away");
    REQUIRE(parley_client_pending_sends(a.c) >= 10 && parley_client_pending_sends(b.c) >= 10,
            "sends made while down are not pending (A %zu, B %zu)", parley_client_pending_sends(a.c),
            parley_client_pending_sends(b.c));

    pl_test_step("parleyd back on the same port: the clients resume by themselves");
    REQUIRE(server_start(&srv, parleyd, port) == 0, "cannot restart parleyd");
    want_t all[] = {{&a, chat, 20, 20}, {&b, chat, 20, 20}, {0}};
    REQUIRE(h_wait(both, 2, has_all, all, 60000),
            "not everything arrived after the restart (A: %zu msgs %zu answers; "
            "B: %zu msgs %zu answers)",
            h_chat_seqs(&a, chat, NULL, 0), a.nsends, h_chat_seqs(&b, chat, NULL, 0), b.nsends);
    pump_for(both, 2, 500); /* repeats, if any, would come now */
    REQUIRE(a.nstates && a.states[a.nstates - 1] == PARLEY_STATE_READY, "A is not ready again");
    REQUIRE(b.nstates && b.states[b.nstates - 1] == PARLEY_STATE_READY, "B is not ready again");

    pl_test_step("exactly once, in order, nothing failed");
    char got[512], want[512];
    texts(&a, chat, "b", got, sizeof(got));
    expected("b", 0, 20, want, sizeof(want));
    REQUIRE(strcmp(got, want) == 0, "A got [%s], want [%s]", got, want);
    texts(&b, chat, "a", got, sizeof(got));
    expected("a", 0, 20, want, sizeof(want));
    REQUIRE(strcmp(got, want) == 0, "B got [%s], want [%s]", got, want);
    for (size_t i = 0; i < a.nsends; i++)
        REQUIRE(!a.sends[i].failed, "A's send failed: %s", a.sends[i].message);
    for (size_t i = 0; i < b.nsends; i++)
        REQUIRE(!b.sends[i].failed, "B's send failed: %s", b.sends[i].message);
    if (check_order(&a, chat) || check_order(&b, chat) || check_send_order(&a, chat) || check_send_order(&b, chat) ||
        check_log_view(&a, chat, 40) || check_log_view(&b, chat, 40) || check_history(&a, chat, 40))
        return 1;
    parley_cursor_t cur[4];
    size_t nc = parley_client_cursors(b.c, cur, 4);
    REQUIRE(nc == 1 && cur[0].chat_id == chat && cur[0].seq == 40, "B's cursor: %zu chats, seq %lld", nc,
            nc ? (long long)cur[0].seq : 0LL);

    pl_test_step("a graceful restart too (SIGTERM: parleyd drains), with A sending through it");
    a_states = a.nstates;
    for (int i = 20; i < 25; i++) {
        snprintf(text, sizeof(text), "a%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
    }
    REQUIRE(server_stop(&srv) == 0, "parleyd did not drain and stop cleanly (log: %s)", srv.log);
    for (int i = 25; i < 30; i++) {
        snprintf(text, sizeof(text), "a%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send while stopped");
    }
    pump_for(both, 2, 500);
    REQUIRE(h_saw_state(&a, PARLEY_STATE_DISCONNECTED, a_states), "A did not notice the drain");
    REQUIRE(server_start(&srv, parleyd, port) == 0, "cannot start parleyd again");
    want_t more[] = {{&a, chat, 20, 30}, {&b, chat, 30, 20}, {0}};
    REQUIRE(h_wait(both, 2, has_all, more, 60000),
            "not everything arrived after the graceful restart (A %zu answers, "
            "B %zu messages)",
            a.nsends, h_chat_seqs(&b, chat, NULL, 0));
    pump_for(both, 2, 500);
    texts(&b, chat, "a", got, sizeof(got));
    expected("a", 0, 30, want, sizeof(want));
    REQUIRE(strcmp(got, want) == 0, "B got [%s], want [%s]", got, want);
    if (check_order(&b, chat) || check_send_order(&a, chat) || check_log_view(&a, chat, 50) ||
        check_log_view(&b, chat, 50) || check_history(&b, chat, 50))
        return 1;

    h_peer_dispose(&a);
    h_peer_dispose(&b);
    REQUIRE(server_stop(&srv) == 0, "parleyd did not stop cleanly (log: %s)", srv.log);
    unlink(srv.log);
    return 0;
}

/* ---- send_queue ---- */

static int case_send_queue(void)
{
    char host[64];
    uint16_t port;
    REQUIRE(h_split(h_addr(), host, sizeof(host), &port) == 0, "bad PARLEY_ADDR");
    proxy_t *px = proxy_start(host, port);
    REQUIRE(px, "proxy");
    char via[32];
    snprintf(via, sizeof(via), "127.0.0.1:%u", proxy_port(px));

    pl_test_step("A (through a proxy) and B; their direct chat");
    peer_t a, b;
    char pa[24], pb[24];
    h_phone(pa);
    h_phone(pb);
    REQUIRE(h_register(&a, "A", via, pa, NULL) == 0 && h_register(&b, "B", h_addr(), pb, NULL) == 0, "registration");
    int64_t chat = open_direct(&a, &b);
    REQUIRE(chat > 0, "no chat");
    peer_t *both[] = {&a, &b};

    pl_test_step("A cannot connect: 30 sends queue up");
    proxy_set_mode(px, PROXY_REFUSE);
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&b, PARLEY_STATE_READY, 10000), "B not ready");
    char text[32];
    for (int i = 0; i < 30; i++) {
        snprintf(text, sizeof(text), "q%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "queue");
    }
    pump_for(both, 2, 1000);
    REQUIRE(a.nsends == 0 && parley_client_pending_sends(a.c) == 30, "sent without a connection? %zu answers",
            a.nsends);
    REQUIRE(!h_saw_state(&a, PARLEY_STATE_READY, 0), "A was ready through a refusing proxy");
    REQUIRE(h_saw_state(&a, PARLEY_STATE_DISCONNECTED, 0), "A never reported the failed connections");

    pl_test_step("the proxy lets A through: all 30 go, once each, in order");
    proxy_set_mode(px, PROXY_PASS);
    want_t q[] = {{&a, chat, 0, 30}, {&b, chat, 30, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, q, 30000), "queued sends did not all arrive (A %zu answers, B %zu messages)",
            a.nsends, h_chat_seqs(&b, chat, NULL, 0));
    pump_for(both, 2, 300);
    char got[1024], want[1024];
    texts(&b, chat, "q", got, sizeof(got));
    expected("q", 0, 30, want, sizeof(want));
    REQUIRE(strcmp(got, want) == 0, "B got [%s], want [%s]", got, want);
    REQUIRE(parley_client_pending_sends(a.c) == 0, "sends still pending");
    if (check_send_order(&a, chat) || check_order(&b, chat))
        return 1;

    pl_test_step("the server's answers are lost: the send goes again after the reconnect, stored once");
    proxy_set_mode(px, PROXY_DROP_DOWN);
    uint64_t first;
    REQUIRE(send_text(&a, chat, "d0", &first) == PARLEY_OK, "send");
    for (int i = 1; i < 5; i++) {
        snprintf(text, sizeof(text), "d%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
    }
    want_t d0[] = {{&b, chat, 31, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, d0, 10000), "d0 never reached B: the server did not store it");
    REQUIRE(!h_send_result(&a, first), "A got an answer through a proxy that swallows them");
    proxy_set_mode(px, PROXY_PASS);
    proxy_cut(px);
    want_t d[] = {{&a, chat, 0, 35}, {&b, chat, 35, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, d, 30000), "not all answered after the reconnect (A %zu answers, B %zu messages)",
            a.nsends, h_chat_seqs(&b, chat, NULL, 0));
    pump_for(both, 2, 500);
    texts(&b, chat, "d", got, sizeof(got));
    REQUIRE(strcmp(got, "d0 d1 d2 d3 d4") == 0, "B got [%s]", got);
    const seen_send_t *s0 = h_send_result(&a, first);
    REQUIRE(s0 && !s0->failed && s0->duplicate, "the repeated send was not answered as a duplicate");
    /* after the reconnect the server sent A's own messages back (A never
     * acknowledged the chat): the library knew them, the app saw none */
    REQUIRE(h_chat_seqs(&a, chat, NULL, 0) == 0, "A's app saw %zu of its own messages come back",
            h_chat_seqs(&a, chat, NULL, 0));
    if (check_send_order(&a, chat) || check_order(&b, chat) || check_log_view(&b, chat, 35) ||
        check_history(&b, chat, 35))
        return 1;

    h_peer_dispose(&a);
    h_peer_dispose(&b);
    proxy_stop(px);
    return 0;
}

/* ---- exactly_once ---- */

static int case_exactly_once(void)
{
    char host[64];
    uint16_t port;
    REQUIRE(h_split(h_addr(), host, sizeof(host), &port) == 0, "bad PARLEY_ADDR");
    proxy_t *px = proxy_start(host, port);
    REQUIRE(px, "proxy");
    char via[32];
    snprintf(via, sizeof(via), "127.0.0.1:%u", proxy_port(px));

    pl_test_step("A, and B through a proxy; their direct chat; a first message");
    peer_t a, b;
    char pa[24], pb[24];
    h_phone(pa);
    h_phone(pb);
    REQUIRE(h_register(&a, "A", h_addr(), pa, NULL) == 0 && h_register(&b, "B", via, pb, NULL) == 0, "registration");
    int64_t chat = open_direct(&a, &b);
    REQUIRE(chat > 0, "no chat");
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&a, PARLEY_STATE_READY, 30000) && h_wait_state(&b, PARLEY_STATE_READY, 30000), "not ready");
    peer_t *both[] = {&a, &b};

    enum { TOTAL = 300 };
    pl_test_step("A sends %d messages while B's connection is cut again and again", TOTAL);
    char text[32];
    int sent = 0, cuts = 0;
    unsigned seed = (unsigned)time(NULL);
    while (sent < TOTAL / 2 - 30) {
        for (int k = 0; k < 15 && sent < TOTAL / 2 - 30; k++, sent++) {
            snprintf(text, sizeof(text), "m%d", sent);
            REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
        }
        if (rand_r(&seed) % 3 == 0) {
            /* the server thinks it delivered what B never got */
            proxy_set_mode(px, PROXY_DROP_DOWN);
            pump_for(both, 2, 100 + rand_r(&seed) % 200);
            proxy_set_mode(px, PROXY_PASS);
        } else {
            pump_for(both, 2, 50 + rand_r(&seed) % 150);
        }
        proxy_cut(px);
        cuts++;
    }
    size_t b_states = b.nstates;
    pl_test_step(
        "B's app stops taking events for a while, stops with them untaken, starts again from its saved cursors");
    peer_t *only_a[] = {&a};
    for (; sent < TOTAL / 2; sent++) {
        snprintf(text, sizeof(text), "m%d", sent);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
    }
    pump_for(only_a, 1, 2000); /* B's library receives; B's app takes nothing */
    REQUIRE(parley_client_stop(b.c) == PARLEY_OK, "stop");
    /* whatever B's library received but B's app did not take yet is not in
     * the cursors; a new client picks up from there */
    parley_cursor_t saved[8];
    size_t nsaved = parley_client_cursors(b.c, saved, 8);
    REQUIRE(nsaved <= 1, "B has cursors for %zu chats", nsaved);
    parley_event_t *ev = parley_client_next_event(b.c, 0);
    int untaken = 0;
    while (ev) {
        untaken += ev->type == PARLEY_EVENT_MESSAGE;
        parley_event_free(ev); /* dropped on the floor: never seen by the app */
        ev = parley_client_next_event(b.c, 0);
    }
    REQUIRE(untaken > 0, "no message was left untaken: the restart from cursors proves nothing");
    /* the dropped events were "taken" by the loop above: read the cursors
     * as the app had them before it (saved), and forget what came after */
    size_t b_msgs_before = b.nmsgs;
    REQUIRE(h_reopen(&b, NULL) == 0, "reopen");
    REQUIRE(parley_client_set_cursors(b.c, saved, nsaved) == PARLEY_OK, "set cursors");
    REQUIRE(parley_client_start(b.c) == PARLEY_OK, "restart");
    printf("   (B: %d cuts so far, %d messages untaken when it stopped, %zu seen)\n", cuts, untaken, b_msgs_before);

    while (sent < TOTAL) {
        for (int k = 0; k < 15 && sent < TOTAL; k++, sent++) {
            snprintf(text, sizeof(text), "m%d", sent);
            REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
        }
        pump_for(both, 2, 50 + rand_r(&seed) % 150);
        proxy_cut(px);
        cuts++;
    }
    want_t all[] = {{&a, chat, 0, TOTAL}, {&b, chat, TOTAL, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, all, 90000), "not everything arrived (A %zu answers, B %zu messages)", a.nsends,
            h_chat_seqs(&b, chat, NULL, 0));
    pump_for(both, 2, 500);
    REQUIRE(h_saw_state(&b, PARLEY_STATE_DISCONNECTED, b_states) || cuts > 0, "B never reconnected");
    printf("   (B: %d cuts, %d gaps, %zu messages)\n", cuts, b.gaps, b.nmsgs);

    pl_test_step("B's app saw every message once, in order");
    REQUIRE(b.gaps == 0, "B saw %d gaps", b.gaps);
    REQUIRE(b.nmsgs == TOTAL, "B's app saw %zu messages, want %d", b.nmsgs, TOTAL);
    for (int i = 0; i < TOTAL; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        REQUIRE(strcmp(b.msgs[i].text, text) == 0, "B's message %d is %s, want %s", i, b.msgs[i].text, text);
    }
    for (size_t i = 0; i < a.nsends; i++)
        REQUIRE(!a.sends[i].failed, "A's send failed: %s", a.sends[i].message);
    if (check_order(&b, chat) || check_send_order(&a, chat) || check_log_view(&b, chat, TOTAL))
        return 1;

    pl_test_step("an app that saves no cursors: the server resumes from the acks of what B's app took, nothing lost");
    enum { MORE = 40 };
    for (int i = 0; i < MORE; i++) {
        snprintf(text, sizeof(text), "n%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
    }
    /* B's app takes the first half, then its library gets the rest */
    want_t half[] = {{&b, chat, TOTAL + MORE / 2, 0}, {0}};
    while (!has_all(half)) {
        parley_event_t *one = parley_client_next_event(b.c, 2000);
        REQUIRE(one, "B got nothing more (%zu messages)", b.nmsgs);
        record_event(&b, one);
        parley_event_free(one);
        h_pump(&a, 0);
    }
    pump_for(only_a, 1, 1000);
    REQUIRE(parley_client_stop(b.c) == PARLEY_OK, "stop");
    size_t took = b.nmsgs;
    REQUIRE(h_reopen(&b, NULL) == 0 && parley_client_start(b.c) == PARLEY_OK, "restart without cursors");
    want_t rest[] = {{&a, chat, 0, TOTAL + MORE}, {&b, chat, TOTAL + MORE, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, rest, 30000), "B lost messages across a restart without cursors (%zu of %d)",
            b.nmsgs, TOTAL + MORE);
    pump_for(both, 2, 500);
    /* at least once: the acks of the last moments before the stop may not
     * be stored yet when the new stream loads them; anything repeated is
     * from just before the stop */
    printf("   (B took %zu before the stop; %zu repeated after it)\n", took, b.nmsgs - (TOTAL + MORE));
    for (int i = 0; i < MORE; i++) {
        snprintf(text, sizeof(text), "n%d", i);
        bool found = false;
        for (size_t k = TOTAL; k < b.nmsgs && !found; k++)
            found = strcmp(b.msgs[k].text, text) == 0;
        REQUIRE(found, "B never got %s", text);
    }

    h_peer_dispose(&a);
    h_peer_dispose(&b);
    proxy_stop(px);
    return 0;
}

/* ---- refusals ---- */

typedef struct notified {
    atomic_int calls;
    atomic_int stop_rc;
    atomic_bool wrong_thread;
    pthread_t app_thread;
} notified_t;

static void on_notify(parley_client_t *c, void *user)
{
    notified_t *n = user;
    if (atomic_fetch_add(&n->calls, 1) == 0)
        atomic_store(&n->stop_rc, parley_client_stop(c)); /* must refuse: it would wait for itself */
    if (pthread_equal(pthread_self(), n->app_thread))
        atomic_store(&n->wrong_thread, true);
}

static int case_refusals(void)
{
    pl_test_step("A (two devices), B and C; A and B's chat; B and C's chat (A is not in it)");
    peer_t a, a2, b, c;
    char pa[24], pb[24], pc[24];
    h_phone(pa);
    h_phone(pb);
    h_phone(pc);
    REQUIRE(h_register(&a, "A", h_addr(), pa, NULL) == 0 && h_register(&a2, "A2", h_addr(), pa, NULL) == 0 &&
                h_register(&b, "B", h_addr(), pb, NULL) == 0 && h_register(&c, "C", h_addr(), pc, NULL) == 0,
            "registration");
    int64_t ab = open_direct(&a, &b), bc = open_direct(&b, &c);
    REQUIRE(ab > 0 && bc > 0, "no chats");

    pl_test_step("the event fd and the notify callback (run on the I/O thread, where stop is refused)");
    notified_t note = {0};
    note.app_thread = pthread_self();
    parley_client_set_notify(a.c, on_notify, &note);
    struct pollfd pfd = {parley_client_event_fd(a.c), POLLIN, 0};
    REQUIRE(poll(&pfd, 1, 0) == 0, "the event fd is readable before anything happened");
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(poll(&pfd, 1, 5000) == 1 && (pfd.revents & POLLIN), "the event fd did not become readable");
    REQUIRE(h_wait_state(&a, PARLEY_STATE_READY, 30000) && h_wait_state(&b, PARLEY_STATE_READY, 30000), "not ready");
    h_pump(&a, 0);
    REQUIRE(poll(&pfd, 1, 0) == 0, "the event fd stays readable with the queue empty");
    REQUIRE(atomic_load(&note.calls) > 0, "the notify callback never ran");
    REQUIRE(atomic_load(&note.stop_rc) == PARLEY_E_STATE, "stop from the callback: %s",
            parley_code_name(atomic_load(&note.stop_rc)));
    REQUIRE(!atomic_load(&note.wrong_thread), "the callback ran on the app's thread");
    parley_client_set_notify(a.c, NULL, NULL);
    peer_t *both[] = {&a, &b};

    pl_test_step("a send to a chat A is not in fails at once; the send queued after it goes");
    uint64_t intruder, after;
    REQUIRE(send_text(&a, bc, "intruder", &intruder) == PARLEY_OK, "queue");
    REQUIRE(send_text(&a, bc, "intruder again", NULL) == PARLEY_OK, "queue");
    REQUIRE(send_text(&a, ab, "hello B", &after) == PARLEY_OK, "queue");
    want_t w[] = {{&a, 0, 0, 3}, {0}};
    REQUIRE(h_wait(both, 2, has_all, w, 10000), "no answers (%zu)", a.nsends);
    const seen_send_t *s = h_send_result(&a, intruder);
    REQUIRE(s && s->failed && s->code == PARLEY_NOT_FOUND && s->chat_id == bc, "intruder: %s",
            s ? (s->failed ? parley_code_name(s->code) : "accepted") : "no answer");
    s = h_send_result(&a, after);
    REQUIRE(s && !s->failed && s->seq > 0, "the next send did not go");

    pl_test_step("per-device payloads that miss A's other device: the mismatch comes back, not retried");
    parley_device_list_t *devs = NULL;
    parley_error_t err = {0};
    int64_t accounts[] = {b.account_id};
    REQUIRE(parley_get_devices(a.c, accounts, 1, &devs, &err) == PARLEY_OK && devs->count == 1 &&
                devs->accounts[0].count == 1 && devs->accounts[0].device_ids[0] == b.device_id,
            "devices of B: %s", err.message);
    parley_device_list_free(devs);
    parley_device_payload_t only_b[] = {{b.device_id, "for B", 5}};
    uint64_t partial, full;
    REQUIRE(parley_client_send_per_device(a.c, ab, only_b, 1, NULL, &partial) == PARLEY_OK, "queue");
    parley_device_payload_t every[] = {{b.device_id, "for B", 5}, {a2.device_id, "for A2", 6}};
    REQUIRE(parley_client_send_per_device(a.c, ab, every, 2, NULL, &full) == PARLEY_OK, "queue");
    want_t w2[] = {{&a, 0, 0, 5}, {&b, ab, 2, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, w2, 10000), "no answers (%zu)", a.nsends);
    s = h_send_result(&a, partial);
    REQUIRE(s && s->failed && s->code == PARLEY_FAILED_PRECONDITION && s->missing_count == 1 &&
                s->missing_device == a2.device_id,
            "partial: %s (%zu missing)", s ? parley_code_name(s->code) : "no answer", s ? s->missing_count : 0);
    s = h_send_result(&a, full);
    REQUIRE(s && !s->failed, "the complete per-device send failed");
    pump_for(both, 2, 300);
    REQUIRE(a.nsends == 5 && parley_client_pending_sends(a.c) == 0, "refused sends were retried (%zu answers)",
            a.nsends);
    char got[256];
    texts(&b, ab, "", got, sizeof(got));
    REQUIRE(strcmp(got, "hello B for B") == 0, "B got [%s]", got);

    pl_test_step("bad arguments are refused up front");
    REQUIRE(parley_client_send(a.c, 0, "x", 1, NULL, NULL) == PARLEY_E_INVALID, "chat 0 accepted");
    parley_send_options_t long_id = {0};
    long_id.client_message_id = "0123456789012345678901234567890123456789012345678901234567890123456789";
    REQUIRE(parley_client_send(a.c, ab, "x", 1, &long_id, NULL) == PARLEY_E_INVALID, "a 70-byte client id accepted");

    h_peer_dispose(&a);
    h_peer_dispose(&a2);
    h_peer_dispose(&b);
    h_peer_dispose(&c);
    return 0;
}

/* ---- auth_failure ---- */

static int case_auth_failure(void)
{
    char host[64];
    uint16_t port;
    REQUIRE(h_split(h_addr(), host, sizeof(host), &port) == 0, "bad PARLEY_ADDR");
    proxy_t *px = proxy_start(host, port);
    REQUIRE(px, "proxy");
    char via[32];
    snprintf(via, sizeof(via), "127.0.0.1:%u", proxy_port(px));

    pl_test_step("a token the server does not know: AUTH_FAILED, and no retries");
    peer_t bogus = {0};
    bogus.name = "bogus";
    parley_options_t o = h_options(via);
    o.token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    parley_error_t err = {0};
    bogus.c = parley_client_new(&o, &err);
    REQUIRE(bogus.c, "client: %s", err.message);
    int before = proxy_accepted(px);
    REQUIRE(parley_client_start(bogus.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&bogus, PARLEY_STATE_AUTH_FAILED, 10000), "no AUTH_FAILED");
    REQUIRE(bogus.state_codes[bogus.nstates - 1] == PARLEY_UNAUTHENTICATED, "AUTH_FAILED with %s",
            parley_code_name(bogus.state_codes[bogus.nstates - 1]));
    sleep_ms(2500); /* backoff would have retried several times by now */
    h_pump(&bogus, 0);
    REQUIRE(proxy_accepted(px) - before == 1, "%d connections after an auth failure", proxy_accepted(px) - before);
    REQUIRE(parley_client_state(bogus.c) == PARLEY_STATE_AUTH_FAILED, "state %s",
            parley_state_name(parley_client_state(bogus.c)));
    REQUIRE(parley_client_send(bogus.c, 1, "x", 1, NULL, NULL) == PARLEY_E_STATE, "send queued after auth failure");
    h_peer_dispose(&bogus);

    pl_test_step("a device removed while connected: its stream ends, AUTH_FAILED, no retries");
    peer_t a1, a2;
    char pa[24];
    h_phone(pa);
    REQUIRE(h_register(&a1, "A1", h_addr(), pa, NULL) == 0 && h_register(&a2, "A2", via, pa, NULL) == 0,
            "registration");
    REQUIRE(parley_client_start(a2.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&a2, PARLEY_STATE_READY, 10000), "A2 not ready");
    before = proxy_accepted(px);
    REQUIRE(parley_remove_device(a1.c, a2.device_id, &err) == PARLEY_OK, "remove device: %s", err.message);
    REQUIRE(h_wait_state(&a2, PARLEY_STATE_AUTH_FAILED, 10000), "A2 did not stop after its removal (state %s)",
            parley_state_name(parley_client_state(a2.c)));
    sleep_ms(2500);
    h_pump(&a2, 0);
    REQUIRE(proxy_accepted(px) == before, "%d reconnections after the removal", proxy_accepted(px) - before);

    pl_test_step("a second connection of a device replaces the first, which stops");
    peer_t r1 = {0}, r2 = {0};
    r1.name = "R1";
    r2.name = "R2";
    o = h_options(via);
    o.token = a1.token;
    REQUIRE((r1.c = parley_client_new(&o, &err)) != NULL, "client");
    o.server = h_addr();
    REQUIRE((r2.c = parley_client_new(&o, &err)) != NULL, "client");
    REQUIRE(parley_client_start(r1.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&r1, PARLEY_STATE_READY, 10000), "R1 not ready");
    before = proxy_accepted(px);
    REQUIRE(parley_client_start(r2.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&r2, PARLEY_STATE_READY, 10000), "R2 not ready");
    REQUIRE(h_wait_state(&r1, PARLEY_STATE_REPLACED, 10000), "R1 was not replaced (state %s)",
            parley_state_name(parley_client_state(r1.c)));
    sleep_ms(1500);
    h_pump(&r1, 0);
    h_pump(&r2, 0);
    REQUIRE(proxy_accepted(px) == before, "R1 reconnected after being replaced");
    REQUIRE(parley_client_state(r2.c) == PARLEY_STATE_READY, "R2 lost its stream");

    h_peer_dispose(&r1);
    h_peer_dispose(&r2);
    h_peer_dispose(&a1);
    h_peer_dispose(&a2);
    proxy_stop(px);
    return 0;
}

/* ---- backpressure ---- */

static int case_backpressure(void)
{
    pl_test_step("B's app takes nothing while A sends 120: B's queue stays at its bound, nothing is lost");
    peer_t a, b;
    char pa[24], pb[24];
    h_phone(pa);
    h_phone(pb);
    parley_options_t small = h_options(h_addr());
    small.max_queued_events = 10;
    REQUIRE(h_register(&a, "A", h_addr(), pa, NULL) == 0 && h_register(&b, "B", h_addr(), pb, &small) == 0,
            "registration");
    int64_t chat = open_direct(&a, &b);
    REQUIRE(chat > 0, "no chat");
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&a, PARLEY_STATE_READY, 30000) && h_wait_state(&b, PARLEY_STATE_READY, 30000), "not ready");
    char text[32];
    for (int i = 0; i < 120; i++) {
        snprintf(text, sizeof(text), "p%d", i);
        REQUIRE(send_text(&a, chat, text, NULL) == PARLEY_OK, "send");
    }
    peer_t *only_a[] = {&a};
    want_t sent[] = {{&a, chat, 0, 120}, {0}};
    REQUIRE(h_wait(only_a, 1, has_all, sent, 30000), "A's sends were not all answered (%zu)", a.nsends);
    pump_for(only_a, 1, 1000);
    /* B's I/O thread stops, so what waits for B's app can be counted
     * without the thread refilling the queue as it drains: at most the
     * bound, plus the state change the stop adds */
    REQUIRE(parley_client_stop(b.c) == PARLEY_OK, "stop B");
    int waiting = 0;
    parley_event_t *evs[64];
    while (waiting < 64 && (evs[waiting] = parley_client_next_event(b.c, 0)))
        waiting++;
    REQUIRE(waiting <= 11, "%d events queued with max_queued_events 10", waiting);
    for (int i = 0; i < waiting; i++) {
        record_event(&b, evs[i]);
        parley_event_free(evs[i]);
    }
    REQUIRE(parley_client_start(b.c) == PARLEY_OK, "start B again");
    peer_t *only_b[] = {&b};
    want_t got[] = {{&b, chat, 120, 0}, {0}};
    REQUIRE(h_wait(only_b, 1, has_all, got, 30000), "B got %zu of 120 after taking its events again",
            h_chat_seqs(&b, chat, NULL, 0));
    for (int i = 0; i < 120; i++) {
        snprintf(text, sizeof(text), "p%d", i);
        REQUIRE(strcmp(b.msgs[i].text, text) == 0, "B's message %d is %s, want %s", i, b.msgs[i].text, text);
    }
    if (check_order(&b, chat))
        return 1;
    h_peer_dispose(&a);
    h_peer_dispose(&b);
    return 0;
}

/* ---- tls ---- */

static int case_tls(const char *ca_file)
{
    char host[64], addr[96];
    uint16_t port;
    REQUIRE(h_split(h_addr(), host, sizeof(host), &port) == 0, "bad PARLEY_ADDR");
    snprintf(addr, sizeof(addr), "localhost:%u", port); /* the name the test certificate carries */

    pl_test_step("a server certificate from an unknown CA is refused, with the reason");
    parley_options_t o = h_options(addr);
    o.use_tls = true; /* the system's roots: they do not know the test CA */
    peer_t stranger = {0};
    stranger.name = "stranger";
    parley_error_t err = {0};
    REQUIRE((stranger.c = parley_client_new(&o, &err)) != NULL, "client: %s", err.message);
    int rc = parley_request_code(stranger.c, "+15550000000", NULL, &err);
    REQUIRE(rc == PARLEY_UNAVAILABLE && strstr(err.message, "certificate"), "untrusted server: %s: %s",
            parley_code_name(rc), err.message);
    h_peer_dispose(&stranger);

    pl_test_step("with the CA: registration, the stream and a message over TLS");
    o.ca_file = ca_file;
    peer_t a, b;
    char pa[24], pb[24];
    h_phone(pa);
    h_phone(pb);
    REQUIRE(h_register(&a, "A", addr, pa, &o) == 0 && h_register(&b, "B", addr, pb, &o) == 0, "registration");
    int64_t chat = open_direct(&a, &b);
    REQUIRE(chat > 0, "no chat");
    REQUIRE(parley_client_start(a.c) == PARLEY_OK && parley_client_start(b.c) == PARLEY_OK, "start");
    REQUIRE(h_wait_state(&a, PARLEY_STATE_READY, 30000) && h_wait_state(&b, PARLEY_STATE_READY, 30000), "not ready");
    REQUIRE(send_text(&a, chat, "over tls", NULL) == PARLEY_OK, "send");
    peer_t *both[] = {&a, &b};
    want_t w[] = {{&a, chat, 0, 1}, {&b, chat, 1, 0}, {0}};
    REQUIRE(h_wait(both, 2, has_all, w, 30000), "the message did not arrive");
    REQUIRE(strcmp(b.msgs[0].text, "over tls") == 0, "B got %s", b.msgs[0].text);
    h_peer_dispose(&a);
    h_peer_dispose(&b);
    return 0;
}

/* The cases' argument (the parleyd binary, the CA file), for pl_test_run. */
static const char *case_arg;

static int run_restart_resume(void)
{
    return case_restart_resume(case_arg);
}

static int run_tls(void)
{
    return case_tls(case_arg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_client CASE [ARG]\n  cases: restart_resume PARLEYD, send_queue, "
                        "exactly_once, refusals, auth_failure, backpressure, tls CA_FILE\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    static const struct {
        const char *name;
        int (*fn)(void);
        const char *arg; /* what the case's argument is, if it needs one */
    } cases[] = {
        {"restart_resume", run_restart_resume, "the parleyd binary"},
        {"send_queue", case_send_queue, NULL},
        {"exactly_once", case_exactly_once, NULL},
        {"refusals", case_refusals, NULL},
        {"auth_failure", case_auth_failure, NULL},
        {"backpressure", case_backpressure, NULL},
        {"tls", run_tls, "the CA file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (strcmp(argv[1], cases[i].name) != 0)
            continue;
        if (cases[i].arg && argc < 3) {
            fprintf(stderr, "%s needs %s\n", cases[i].name, cases[i].arg);
            return 2;
        }
        case_arg = argc > 2 ? argv[2] : NULL;
        return pl_test_run(cases[i].name, cases[i].fn);
    }
    fprintf(stderr, "unknown case %s\n", argv[1]);
    return 2;
}
