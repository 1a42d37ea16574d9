/* state.h — what parley-chat keeps between runs, in its state directory
 * (mode 0700): the device's credentials ("device", mode 0600: the token is a
 * password) and, per chat, how far the app has shown messages ("cursors"),
 * so a restart shows what came while it was away, once.
 *
 * The directory belongs to one server's data, so that a wiped stack, or two
 * stacks on one machine, never see each other's tokens: for a server on this
 * machine run beside tools/run's stack (.parley/ in the current directory)
 * it is .parley/chat/<phone>, deleted with the stack by tools/run --reset;
 * otherwise ~/.parley-chat/<host:port>/<phone>. */
#ifndef PARLEY_CHAT_STATE_H
#define PARLEY_CHAT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parley/parley.h"

typedef struct chat_state {
    char dir[512];
    char server[128]; /* the server the credentials are for */
    int64_t account_id, device_id;
    char token[96];
    int64_t last_chat; /* the chat open when the program ended */
} chat_state_t;

/* What marks the local stack's directory (tools/stack's port list), and
 * where parley-chat keeps its state in it. */
#define STATE_STACK_MARK ".parley/ports"
#define STATE_STACK_DIR ".parley/chat"

/* dir: --state-dir, or NULL for the default for phone on server (above). */
int state_init(chat_state_t *st, const char *dir, const char *phone, const char *server, char *err, size_t err_len);
/* Loads the credentials; false when there are none (or for another server). */
bool state_load(chat_state_t *st, const char *server);
int state_save(const chat_state_t *st, char *err, size_t err_len);
/* Forgets the credentials (the server refused them). */
void state_forget(chat_state_t *st);
/* Cursors: read into a malloc'ed array (*count), or written. */
parley_cursor_t *state_load_cursors(const chat_state_t *st, size_t *count);
int state_save_cursors(const chat_state_t *st, const parley_cursor_t *cursors, size_t count);

#endif
