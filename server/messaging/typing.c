/* typing.c — typing indicators: never stored, rate-limited per device, sent
 * to the chat's members, and ended by the server 5 s after the last
 * "typing" (or when the stream ends) so a vanished client never types
 * forever. */
#include <event2/event.h>
#include <stdlib.h>
#include <time.h>

#include "messaging/messaging_internal.h"
#include "runtime/clock.h"

typedef struct typing_job {
    pl_stream_t *s; /* NULL once the stream is gone (stop_all) */
    int64_t account_id, device_id;
    uint64_t request_id;
    bool typing;
} typing_job_t;

static int64_t now_ms(void)
{
    return pl_now_usec() / 1000;
}

static void on_members(pl_msg_worker_t *mw, int64_t chat_id, const int64_t *accounts, size_t n, bool is_blocked,
                       pl_code_t code, void *user)
{
    typing_job_t *j = user;
    bool member = false;
    for (size_t i = 0; code == PL_CODE_OK && i < n; i++)
        member |= accounts[i] == j->account_id;
    if (!member || is_blocked) {
        if (j->s && !j->s->is_closing && j->typing)
            /* a non-member hears what it would of a chat that does not
             * exist, so chat ids cannot be probed */
            pl_stream_error(j->s, j->request_id,
                            code != PL_CODE_OK && code != PL_CODE_NOT_FOUND ? PL_CODE_UNAVAILABLE
                            : is_blocked                                    ? PL_CODE_PERMISSION_DENIED
                                                                            : PL_CODE_NOT_FOUND,
                            is_blocked ? "blocked" : "no such chat", NULL, 0, NULL);
    } else {
        parley_internal_v1_NodeEvent ev = {0};
        ev.which_event = parley_internal_v1_NodeEvent_typing_tag;
        ev.event.typing.has_typing = true;
        ev.event.typing.typing.chat_id = chat_id;
        ev.event.typing.typing.account_id = j->account_id;
        ev.event.typing.typing.typing = j->typing;
        ev.event.typing.device_id = j->device_id;
        pl_fanout(mw, &ev, accounts, n, true);
    }
    if (j->s)
        pl_call_unref(j->s->call);
    free(j);
}

static void announce(pl_stream_t *s, int64_t chat_id, bool typing, uint64_t request_id, bool keep_stream)
{
    typing_job_t *j = malloc(sizeof(*j));
    if (!j)
        return;
    *j = (typing_job_t){keep_stream ? s : NULL, s->account_id, s->device_id, request_id, typing};
    if (keep_stream)
        pl_call_ref(s->call);
    pl_members_get(s->mw, chat_id, 0, on_members, j);
}

static void on_expiry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pl_stream_t *s = arg;
    int64_t now = now_ms(), next = 0;
    for (size_t i = 0; i < s->chats.cap; i++) {
        chat_state_t *cs = s->chats.slots[i].value;
        if (!s->chats.slots[i].key || !cs->typing_until_ms)
            continue;
        if (cs->typing_until_ms <= now) {
            cs->typing_until_ms = 0;
            announce(s, cs->chat_id, false, 0, true);
        } else if (!next || cs->typing_until_ms < next) {
            next = cs->typing_until_ms;
        }
    }
    if (next) {
        struct timeval tv = {(next - now) / 1000, ((next - now) % 1000) * 1000};
        evtimer_add(s->typing_ev, &tv);
    }
}

void pl_typing_update(pl_stream_t *s, uint64_t request_id, const parley_v1_TypingUpdate *t)
{
    const pl_config_t *cfg = s->mw->m->app->cfg;
    if (t->chat_id <= 0 || pl_id_shard(t->chat_id) >= s->mw->m->app->map.shards) {
        pl_stream_error(s, request_id, PL_CODE_INVALID_ARGUMENT, "bad chat_id", NULL, 0, NULL);
        return;
    }
    int64_t now = pl_now_usec();
    s->typing_tokens += (double)(now - s->typing_refill_usec) * cfg->typing_per_second / 1e6;
    if (s->typing_tokens > cfg->typing_per_second)
        s->typing_tokens = cfg->typing_per_second;
    s->typing_refill_usec = now;
    if (s->typing_tokens < 1) {
        pl_stream_error(s, request_id, PL_CODE_RESOURCE_EXHAUSTED, "typing updates too fast", NULL,
                        (int64_t)((1 - s->typing_tokens) * 1000 / cfg->typing_per_second) + 1, NULL);
        return;
    }
    s->typing_tokens -= 1;
    chat_state_t *cs = pl_deliver_chat(s, t->chat_id, true);
    if (!cs)
        return;
    if (t->typing) {
        bool was = cs->typing_until_ms != 0;
        cs->typing_until_ms = now / 1000 + PL_TYPING_EXPIRY_MS;
        if (!s->typing_ev)
            s->typing_ev = evtimer_new(pl_worker_base(s->mw->w), on_expiry, s);
        if (s->typing_ev && !evtimer_pending(s->typing_ev, NULL)) {
            struct timeval tv = {PL_TYPING_EXPIRY_MS / 1000, (PL_TYPING_EXPIRY_MS % 1000) * 1000};
            evtimer_add(s->typing_ev, &tv);
        }
        (void)was; /* a refresh is announced too: late joiners learn it */
    } else {
        cs->typing_until_ms = 0;
    }
    announce(s, t->chat_id, t->typing, request_id, true);
}

void pl_typing_deliver(pl_stream_t *s, const parley_internal_v1_TypingEvent *t)
{
    parley_v1_ServerEvent ev = {0};
    ev.which_event = parley_v1_ServerEvent_typing_tag;
    ev.event.typing = t->typing;
    pl_stream_emit(s, &ev); /* ephemeral: dropped when the client lags */
}

void pl_typing_stop_all(pl_stream_t *s)
{
    for (size_t i = 0; i < s->chats.cap; i++) {
        chat_state_t *cs = s->chats.slots[i].value;
        if (s->chats.slots[i].key && cs->typing_until_ms) {
            cs->typing_until_ms = 0;
            announce(s, cs->chat_id, false, 0, false);
        }
    }
    if (s->typing_ev) {
        event_free(s->typing_ev);
        s->typing_ev = NULL;
    }
}
