/* chat.h — parley-chat's conversation logic over libparley: the chat on
 * screen, who is who, showing events (messages, receipts, typing,
 * presence, connection states), sending what is typed, and the /commands. */
#ifndef PARLEY_CHAT_CHAT_H
#define PARLEY_CHAT_CHAT_H

#include <stdbool.h>
#include <stdint.h>

#include "parley/parley.h"

#define CHAT_NAMES_MAX 1024
#define CHAT_SENDS_MAX 64
#define CHAT_NOTIFIED_MAX 256

typedef struct chat_name {
    int64_t account_id;
    char label[140];
} chat_name_t;

typedef struct chat_send {
    uint64_t local_id;
    int64_t chat_id;
    int64_t queued_ms;
    char text[48]; /* the start of it, to say which message a status is about */
} chat_send_t;

typedef struct chat_app {
    parley_client_t *c;
    int64_t me; /* account */
    int64_t me_device;
    /* the chat on screen */
    int64_t chat_id;
    int kind;
    int64_t peer; /* direct chats */
    char title[160];
    int64_t shown_upto; /* the highest seq shown (history or live) */
    int64_t my_last_seq;
    char my_last_text[48];
    int64_t delivered_shown, read_shown;
    /* who is typing in it, until when */
    char typing_who[140];
    int64_t typing_until_ms;
    int peer_online; /* -1 unknown */
    /* our own typing */
    bool is_typing_sent;
    int64_t typing_sent_ms, last_key_ms;
    /* sends awaiting their answer (to show "sent" after a wait, or why not) */
    chat_send_t sends[CHAT_SENDS_MAX];
    int nsends;
    chat_name_t names[CHAT_NAMES_MAX];
    int nnames;
    int64_t notified[CHAT_NOTIFIED_MAX]; /* chats we said have news */
    int nnotified;
    bool was_ready, quit, signed_out;
} chat_app_t;

void chat_init(chat_app_t *a, parley_client_t *c);
/* Remembers a label for an account (e.g. the phone number we looked up). */
void chat_name_set(chat_app_t *a, int64_t account_id, const char *label);
/* Opens a chat (by id, direct by phone, new group) and shows its recent history. */
int chat_open(chat_app_t *a, int64_t chat_id);
int chat_open_direct(chat_app_t *a, const char *phone);
int chat_create_group(chat_app_t *a, const char *name, char *const *phones, int count);
void chat_on_event(chat_app_t *a, const parley_event_t *ev);
void chat_on_line(chat_app_t *a, const char *line);
/* Keys were typed (the line so far has pending_len bytes). */
void chat_on_keys(chat_app_t *a, size_t pending_len);
/* Timers: typing indicators. */
void chat_tick(chat_app_t *a);
void chat_help(void);

#endif
