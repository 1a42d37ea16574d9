/* chat.c — parley-chat's conversation logic (chat.h). */
#include "chat.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "term.h"

#define TYPING_SHOWN_MS 6000  /* the server ends typing after 5 s without news */
#define TYPING_RESEND_MS 3000 /* "still typing", while keys come */
#define TYPING_IDLE_MS 4000   /* no key for this long: stopped typing */
#define SLOW_SEND_MS 1500     /* a send answered later than this gets a "sent" line */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "14:03" for a Unix time in ms (local time). */
static const char *clock_of(int64_t unix_ms, char out[16])
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(out, 16, "%H:%M", &tm);
    return out;
}

void chat_init(chat_app_t *a, parley_client_t *c)
{
    memset(a, 0, sizeof(*a));
    a->c = c;
    a->me = parley_client_account_id(c);
    a->me_device = parley_client_device_id(c);
    a->peer_online = -1;
}

static void update_prompt(chat_app_t *a)
{
    char p[400];
    const char *title = a->chat_id ? a->title : "no chat: /to NUMBER, /chats, /help";
    if (a->typing_who[0] && now_ms() < a->typing_until_ms)
        snprintf(p, sizeof(p), "[%s is typing...] %s> ", a->typing_who, title);
    else
        snprintf(p, sizeof(p), "%s> ", title);
    term_set_prompt(p);
}

/* ---- names ---- */

void chat_name_set(chat_app_t *a, int64_t account_id, const char *label)
{
    for (int i = 0; i < a->nnames; i++)
        if (a->names[i].account_id == account_id) {
            snprintf(a->names[i].label, sizeof(a->names[i].label), "%s", label);
            return;
        }
    int i = a->nnames < CHAT_NAMES_MAX ? a->nnames++ : (int)(account_id % CHAT_NAMES_MAX);
    a->names[i].account_id = account_id;
    snprintf(a->names[i].label, sizeof(a->names[i].label), "%s", label);
}

/* How to call an account: a known phone number or its display name,
 * fetched once. */
static const char *name_of(chat_app_t *a, int64_t account_id)
{
    if (account_id == a->me)
        return "you";
    for (int i = 0; i < a->nnames; i++)
        if (a->names[i].account_id == account_id)
            return a->names[i].label;
    parley_profile_t p;
    char label[140];
    if (parley_get_profile(a->c, account_id, &p, NULL) == PARLEY_OK && p.display_name[0])
        snprintf(label, sizeof(label), "%s", p.display_name);
    else
        snprintf(label, sizeof(label), "#%" PRId64, account_id);
    chat_name_set(a, account_id, label);
    return name_of(a, account_id);
}

/* ---- showing messages ---- */

static void show_system(chat_app_t *a, const parley_message_t *m)
{
    const parley_system_event_t *s = &m->system;
    char who[400] = "";
    size_t n = 0;
    for (size_t i = 0; i < s->account_count && n < sizeof(who) - 1; i++)
        n += (size_t)snprintf(who + n, sizeof(who) - n, "%s%s", i ? ", " : "", name_of(a, s->account_ids[i]));
    const char *actor = name_of(a, s->actor_account_id);
    switch (s->type) {
    case PARLEY_SYSTEM_CREATED: term_print("* %s created the group \"%s\"", actor, s->name); break;
    case PARLEY_SYSTEM_MEMBERS_ADDED: term_print("* %s added %s", actor, who); break;
    case PARLEY_SYSTEM_MEMBER_REMOVED: term_print("* %s removed %s", actor, who); break;
    case PARLEY_SYSTEM_MEMBER_LEFT: term_print("* %s left", actor); break;
    case PARLEY_SYSTEM_ROLE_CHANGED: term_print("* %s changed the role of %s", actor, who); break;
    case PARLEY_SYSTEM_SETTINGS_CHANGED: term_print("* %s changed the group settings", actor); break;
    default: term_print("* (a change to the chat)"); break;
    }
}

static void show_message(chat_app_t *a, const parley_message_t *m)
{
    if (m->is_system) {
        show_system(a, m);
        return;
    }
    char hhmm[16];
    clock_of(m->server_time_ms, hhmm);
    const char *who = name_of(a, m->sender_account_id);
    if (m->payload_missing)
        term_print("[%s] %s: (a message this device cannot read)", hhmm, who);
    else if (strcmp(m->content_type, "text") != 0)
        term_print("[%s] %s: (%s, %zu bytes)", hhmm, who, m->content_type, m->payload_len);
    else
        term_print("[%s] %s: %.*s", hhmm, who, (int)m->payload_len, (const char *)m->payload);
}

/* ---- opening chats ---- */

static void set_chat(chat_app_t *a, const parley_chat_t *chat)
{
    a->chat_id = chat->chat_id;
    a->kind = chat->kind;
    a->peer = 0;
    a->shown_upto = 0;
    a->my_last_seq = a->delivered_shown = a->read_shown = 0;
    a->typing_who[0] = '\0';
    a->peer_online = -1;
    if (chat->kind == PARLEY_CHAT_DIRECT) {
        for (size_t i = 0; i < chat->member_count; i++)
            if (chat->members[i].account_id != a->me)
                a->peer = chat->members[i].account_id;
        snprintf(a->title, sizeof(a->title), "%s", a->peer ? name_of(a, a->peer) : "yourself");
    } else {
        snprintf(a->title, sizeof(a->title), "%s", chat->name[0] ? chat->name : "group");
    }
    for (int i = 0; i < a->nnotified; i++)
        if (a->notified[i] == chat->chat_id)
            a->notified[i] = a->notified[--a->nnotified];
}

/* Shows the chat's last messages and marks them read. */
static void show_recent(chat_app_t *a, int64_t last_seq, int count)
{
    if (last_seq <= 0)
        return;
    parley_history_t *h = NULL;
    parley_error_t err = {0};
    int rc = parley_get_history(a->c, a->chat_id, last_seq + 1, 0, count, &h, &err);
    if (rc != PARLEY_OK) {
        term_print("* cannot load the history: %s", err.message);
        return;
    }
    if (h->has_more)
        term_print("* ... (earlier messages: /history 100)");
    for (size_t i = h->count; i-- > 0;) {
        show_message(a, &h->messages[i]);
        if (h->messages[i].seq > a->shown_upto)
            a->shown_upto = h->messages[i].seq;
        if (h->messages[i].sender_account_id == a->me && !h->messages[i].is_system) {
            a->my_last_seq = h->messages[i].seq;
            snprintf(a->my_last_text, sizeof(a->my_last_text), "%.*s", (int)h->messages[i].payload_len,
                     (const char *)h->messages[i].payload);
        }
    }
    parley_history_free(h);
    parley_client_mark_read(a->c, a->chat_id, a->shown_upto);
}

static void after_open(chat_app_t *a, const parley_chat_t *chat)
{
    set_chat(a, chat);
    term_print("* chat %" PRId64 ": %s (%s)", chat->chat_id, a->title,
               chat->kind == PARLEY_CHAT_GROUP ? "group" : "direct");
    show_recent(a, chat->last_seq, 20);
    /* receipts so far: where the others are */
    a->delivered_shown = a->read_shown = a->my_last_seq;
    if (a->peer)
        parley_client_subscribe_presence(a->c, &a->peer, 1);
    update_prompt(a);
}

int chat_open(chat_app_t *a, int64_t chat_id)
{
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    int rc = parley_get_chat(a->c, chat_id, &chat, &err);
    if (rc != PARLEY_OK) {
        term_print("* cannot open chat %" PRId64 ": %s", chat_id,
                   rc == PARLEY_NOT_FOUND ? "no such chat (or you are not in it)" : err.message);
        return rc;
    }
    after_open(a, chat);
    parley_chat_free(chat);
    return PARLEY_OK;
}

/* Account ids of phone numbers; says which have no account. */
static int lookup(chat_app_t *a, char *const *phones, int count, int64_t *ids)
{
    parley_phone_match_t *m = calloc((size_t)count, sizeof(*m));
    if (!m)
        return PARLEY_E_NOMEM;
    size_t found = 0;
    parley_error_t err = {0};
    int rc = parley_lookup_phones(a->c, (const char *const *)phones, (size_t)count, m, &found, &err);
    if (rc != PARLEY_OK) {
        term_print("* cannot look the numbers up: %s", err.message);
        free(m);
        return rc;
    }
    for (int i = 0; i < count; i++) {
        ids[i] = 0;
        for (size_t j = 0; j < found; j++)
            if (strcmp(m[j].phone_number, phones[i]) == 0)
                ids[i] = m[j].account_id;
        if (!ids[i]) {
            term_print("* %s has no account yet: they register by running parley-chat --phone %s", phones[i],
                       phones[i]);
            rc = PARLEY_NOT_FOUND;
        } else {
            /* "Bob (+15551234567)" when they have a display name */
            parley_profile_t p;
            char label[140];
            if (parley_get_profile(a->c, ids[i], &p, NULL) == PARLEY_OK && p.display_name[0])
                snprintf(label, sizeof(label), "%.100s (%s)", p.display_name, phones[i]);
            else
                snprintf(label, sizeof(label), "%s", phones[i]);
            chat_name_set(a, ids[i], label);
        }
    }
    free(m);
    return rc;
}

int chat_open_direct(chat_app_t *a, const char *phone)
{
    int64_t id;
    char *phones[1] = {(char *)phone};
    int rc = lookup(a, phones, 1, &id);
    if (rc != PARLEY_OK)
        return rc;
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    rc = parley_open_direct_chat(a->c, id, &chat, &err);
    if (rc != PARLEY_OK) {
        term_print("* cannot open the chat with %s: %s", phone,
                   rc == PARLEY_PERMISSION_DENIED ? "one of you blocked the other" : err.message);
        return rc;
    }
    after_open(a, chat);
    parley_chat_free(chat);
    return PARLEY_OK;
}

int chat_create_group(chat_app_t *a, const char *name, char *const *phones, int count)
{
    int64_t *ids = calloc((size_t)(count ? count : 1), sizeof(*ids));
    if (!ids)
        return PARLEY_E_NOMEM;
    int rc = count ? lookup(a, phones, count, ids) : PARLEY_OK;
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    if (rc == PARLEY_OK)
        rc = parley_create_group(a->c, name, ids, (size_t)count, &chat, &err);
    if (rc == PARLEY_OK) {
        after_open(a, chat);
        parley_chat_free(chat);
    } else if (rc != PARLEY_NOT_FOUND) {
        term_print("* cannot create the group: %s", err.message);
    }
    free(ids);
    return rc;
}

/* ---- events ---- */

static chat_send_t *find_send(chat_app_t *a, uint64_t local_id)
{
    for (int i = 0; i < a->nsends; i++)
        if (a->sends[i].local_id == local_id)
            return &a->sends[i];
    return NULL;
}

static void drop_send(chat_app_t *a, chat_send_t *s)
{
    *s = a->sends[--a->nsends];
}

static void on_message(chat_app_t *a, const parley_message_t *m)
{
    if (!a->chat_id && m->sender_account_id != a->me && chat_open(a, m->chat_id) == PARLEY_OK)
        return; /* nothing was on screen: the chat with news opens, this message in its history */
    if (m->chat_id != a->chat_id) {
        if (m->sender_account_id == a->me)
            return;
        for (int i = 0; i < a->nnotified; i++)
            if (a->notified[i] == m->chat_id)
                return; /* said once until it is opened */
        if (a->nnotified < CHAT_NOTIFIED_MAX)
            a->notified[a->nnotified++] = m->chat_id;
        term_print("* new message from %s in chat %" PRId64 " (/open %" PRId64 ")", name_of(a, m->sender_account_id),
                   m->chat_id, m->chat_id);
        return;
    }
    if (m->seq <= a->shown_upto)
        return; /* already on screen from the history */
    show_message(a, m);
    a->shown_upto = m->seq;
    if (m->sender_account_id == a->me && !m->is_system) {
        /* from another device of ours */
        a->my_last_seq = m->seq;
        snprintf(a->my_last_text, sizeof(a->my_last_text), "%.*s", (int)m->payload_len, (const char *)m->payload);
    } else {
        parley_client_mark_read(a->c, a->chat_id, m->seq);
    }
    if (m->sender_account_id != a->me && a->typing_who[0] &&
        strcmp(a->typing_who, name_of(a, m->sender_account_id)) == 0) {
        a->typing_who[0] = '\0';
        update_prompt(a);
    }
}

static void on_receipt(chat_app_t *a, const parley_event_t *ev)
{
    if (ev->receipt.chat_id != a->chat_id || !a->my_last_seq)
        return;
    int64_t delivered, read;
    if (a->kind == PARLEY_CHAT_DIRECT) {
        if (ev->receipt.account_id == a->me)
            return; /* our own other devices */
        delivered = ev->receipt.delivered_seq;
        read = ev->receipt.read_seq;
    } else {
        delivered = ev->receipt.delivered_to_all_seq;
        read = ev->receipt.read_by_all_seq;
    }
    const char *by = a->kind == PARLEY_CHAT_DIRECT ? "" : " by everyone";
    if (read >= a->my_last_seq && a->read_shown < a->my_last_seq) {
        term_print("   \xe2\x9c\x93\xe2\x9c\x93 read%s: \"%s\"", by, a->my_last_text);
        a->read_shown = a->delivered_shown = a->my_last_seq;
    } else if (delivered >= a->my_last_seq && a->delivered_shown < a->my_last_seq) {
        term_print("   \xe2\x9c\x93\xe2\x9c\x93 delivered%s: \"%s\"", by, a->my_last_text);
        a->delivered_shown = a->my_last_seq;
    }
}

static void on_state(chat_app_t *a, const parley_event_t *ev)
{
    switch (ev->state.state) {
    case PARLEY_STATE_READY:
        term_print(a->was_ready ? "* back online" : "* connected");
        a->was_ready = true;
        break;
    case PARLEY_STATE_DISCONNECTED:
        term_print("* disconnected (%s); trying again in %.1f s%s", ev->state.reason, ev->state.retry_in_ms / 1000.0,
                   parley_client_pending_sends(a->c) ? "; your messages wait and go when it is back" : "");
        break;
    case PARLEY_STATE_AUTH_FAILED:
        term_print("* the server no longer accepts this device (%s): it was removed, or the server's data was "
                   "reset. Run parley-chat again to register anew.",
                   ev->state.reason);
        a->signed_out = a->quit = true;
        break;
    case PARLEY_STATE_REPLACED:
        term_print("* this device connected from another parley-chat (same --state-dir); this one stops");
        a->quit = true;
        break;
    default: break;
    }
}

void chat_on_event(chat_app_t *a, const parley_event_t *ev)
{
    switch (ev->type) {
    case PARLEY_EVENT_STATE: on_state(a, ev); break;
    case PARLEY_EVENT_MESSAGE: on_message(a, &ev->message); break;
    case PARLEY_EVENT_SEND_ACCEPTED: {
        chat_send_t *s = find_send(a, ev->accepted.local_id);
        if (ev->accepted.chat_id == a->chat_id && ev->accepted.seq > a->my_last_seq) {
            a->my_last_seq = ev->accepted.seq;
            if (s)
                snprintf(a->my_last_text, sizeof(a->my_last_text), "%s", s->text);
            if (ev->accepted.seq > a->shown_upto)
                a->shown_upto = ev->accepted.seq;
        }
        if (s) {
            if (now_ms() - s->queued_ms > SLOW_SEND_MS)
                term_print("   \xe2\x9c\x93 sent: \"%s\"", s->text);
            drop_send(a, s);
        }
        break;
    }
    case PARLEY_EVENT_SEND_FAILED: {
        chat_send_t *s = find_send(a, ev->failed.local_id);
        term_print("   \xe2\x9c\x97 not sent (%s: %s): \"%s\"", parley_code_name(ev->failed.code), ev->failed.message,
                   s ? s->text : "?");
        if (s)
            drop_send(a, s);
        break;
    }
    case PARLEY_EVENT_RECEIPT: on_receipt(a, ev); break;
    case PARLEY_EVENT_TYPING:
        if (ev->typing.chat_id != a->chat_id || ev->typing.account_id == a->me)
            break;
        if (ev->typing.is_typing) {
            snprintf(a->typing_who, sizeof(a->typing_who), "%s", name_of(a, ev->typing.account_id));
            a->typing_until_ms = now_ms() + TYPING_SHOWN_MS;
        } else {
            a->typing_who[0] = '\0';
        }
        update_prompt(a);
        if (!term_is_interactive() && ev->typing.is_typing)
            term_print("* %s is typing...", a->typing_who);
        break;
    case PARLEY_EVENT_PRESENCE:
        if (ev->presence.account_id != a->peer || (int)ev->presence.online == a->peer_online)
            break;
        a->peer_online = ev->presence.online;
        if (ev->presence.online) {
            term_print("* %s is online", name_of(a, a->peer));
        } else if (ev->presence.last_seen_ms) {
            char hhmm[16];
            term_print("* %s was last seen at %s", name_of(a, a->peer), clock_of(ev->presence.last_seen_ms, hhmm));
        }
        break;
    case PARLEY_EVENT_GAP:
        if (ev->gap.chat_id == a->chat_id)
            term_print("* messages %" PRId64 "-%" PRId64 " are no longer available", ev->gap.from_seq, ev->gap.to_seq);
        break;
    case PARLEY_EVENT_ERROR:
        if (strcmp(ev->error.request, "typing") != 0) /* a typing rate limit is nothing to tell */
            term_print("* the server refused a %s update: %s", ev->error.request, ev->error.message);
        break;
    }
}

/* ---- typing ---- */

static void typing(chat_app_t *a, bool on)
{
    if (!a->chat_id)
        return;
    if (parley_client_set_typing(a->c, a->chat_id, on) == PARLEY_OK) {
        a->is_typing_sent = on;
        a->typing_sent_ms = now_ms();
    }
}

void chat_on_keys(chat_app_t *a, size_t pending_len)
{
    a->last_key_ms = now_ms();
    if (pending_len && (!a->is_typing_sent || now_ms() - a->typing_sent_ms > TYPING_RESEND_MS))
        typing(a, true);
    else if (!pending_len && a->is_typing_sent)
        typing(a, false);
}

void chat_tick(chat_app_t *a)
{
    if (a->is_typing_sent && now_ms() - a->last_key_ms > TYPING_IDLE_MS)
        typing(a, false);
    if (a->typing_who[0] && now_ms() >= a->typing_until_ms) {
        a->typing_who[0] = '\0';
        update_prompt(a);
    }
}

/* ---- commands ---- */

void chat_help(void)
{
    term_print("  text + Enter          send it to the chat on screen");
    term_print("  /to NUMBER            the direct chat with NUMBER (+15551234567)");
    term_print("  /group NAME N1 N2...  a new group with these numbers; you are its admin");
    term_print("  /chats                your chats");
    term_print("  /open ID              the chat with this id (see /chats)");
    term_print("  /history [N]          the last N messages (default 20)");
    term_print("  /who                  the chat's members and how far each has read");
    term_print("  /quit                 leave (also Ctrl-D or Ctrl-C)");
}

static void list_chats(chat_app_t *a)
{
    int64_t after = 0;
    int shown = 0;
    for (int page = 0; page < 8; page++) {
        parley_chat_list_t *l = NULL;
        parley_error_t err = {0};
        if (parley_list_chats(a->c, after, 0, &l, &err) != PARLEY_OK) {
            term_print("* cannot list the chats: %s", err.message);
            return;
        }
        for (size_t i = 0; i < l->count; i++) {
            const parley_chat_summary_t *s = &l->chats[i];
            const char *name = s->kind == PARLEY_CHAT_GROUP ? s->name : name_of(a, s->peer_account_id);
            term_print("  %-20" PRId64 " %-6s %-30s %" PRId64 " messages%s%" PRId64 "%s", s->chat_id,
                       s->kind == PARLEY_CHAT_GROUP ? "group" : "direct", name, s->last_seq,
                       s->unread_count ? ", " : "", s->unread_count, s->unread_count ? " unread" : "");
            after = s->chat_id;
            shown++;
        }
        bool more = l->has_more;
        parley_chat_list_free(l);
        if (!more)
            break;
    }
    if (!shown)
        term_print("* no chats yet: /to NUMBER starts one");
}

static void who(chat_app_t *a)
{
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    if (parley_get_chat(a->c, a->chat_id, &chat, &err) != PARLEY_OK) {
        term_print("* %s", err.message);
        return;
    }
    for (size_t i = 0; i < chat->member_count; i++) {
        const parley_member_t *m = &chat->members[i];
        term_print("  %-30s %-6s delivered up to %" PRId64 ", read up to %" PRId64, name_of(a, m->account_id),
                   m->role == PARLEY_ROLE_ADMIN ? "admin" : "", m->delivered_seq, m->read_seq);
    }
    parley_chat_free(chat);
}

static void history(chat_app_t *a, int count)
{
    parley_chat_t *chat = NULL;
    parley_error_t err = {0};
    if (parley_get_chat(a->c, a->chat_id, &chat, &err) != PARLEY_OK) {
        term_print("* %s", err.message);
        return;
    }
    int64_t last = chat->last_seq;
    parley_chat_free(chat);
    show_recent(a, last, count);
}

static void send_line(chat_app_t *a, const char *text)
{
    if (!a->chat_id) {
        term_print("* no chat open: /to NUMBER or /open ID first (/help)");
        return;
    }
    uint64_t id = 0;
    int rc = parley_client_send(a->c, a->chat_id, text, strlen(text), NULL, &id);
    if (rc != PARLEY_OK) {
        term_print("* cannot send: %s", rc == PARLEY_E_FULL ? "too many messages waiting" : parley_code_name(rc));
        return;
    }
    if (a->is_typing_sent)
        typing(a, false);
    char hhmm[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    term_print("[%s] you: %s", clock_of((int64_t)ts.tv_sec * 1000, hhmm), text);
    if (a->nsends == CHAT_SENDS_MAX)
        drop_send(a, &a->sends[0]);
    chat_send_t *s = &a->sends[a->nsends++];
    s->local_id = id;
    s->chat_id = a->chat_id;
    s->queued_ms = now_ms();
    snprintf(s->text, sizeof(s->text), "%s", text);
}

void chat_on_line(chat_app_t *a, const char *line)
{
    while (*line == ' ')
        line++;
    if (!*line)
        return;
    if (line[0] != '/' || line[1] == '/') {
        send_line(a, line[0] == '/' ? line + 1 : line); /* "//text" sends "/text" */
        return;
    }
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", line + 1);
    char *save = NULL, *cmd = strtok_r(buf, " ", &save);
    char *args[64];
    int n = 0;
    for (char *t = strtok_r(NULL, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save))
        args[n++] = t;
    if (!cmd || strcmp(cmd, "help") == 0) {
        chat_help();
    } else if (strcmp(cmd, "quit") == 0 || strcmp(cmd, "exit") == 0) {
        a->quit = true;
    } else if (strcmp(cmd, "to") == 0 && n == 1) {
        chat_open_direct(a, args[0]);
    } else if (strcmp(cmd, "group") == 0 && n >= 1) {
        chat_create_group(a, args[0], args + 1, n - 1);
    } else if (strcmp(cmd, "chats") == 0) {
        list_chats(a);
    } else if (strcmp(cmd, "open") == 0 && n == 1) {
        chat_open(a, strtoll(args[0], NULL, 10));
    } else if (strcmp(cmd, "history") == 0 && a->chat_id) {
        int count = n ? atoi(args[0]) : 20;
        history(a, count > 0 && count <= 200 ? count : 20);
    } else if (strcmp(cmd, "who") == 0 && a->chat_id) {
        who(a);
    } else {
        term_print("* unknown or incomplete command: /%s (/help lists them; //text sends \"/text\")", cmd);
    }
}
