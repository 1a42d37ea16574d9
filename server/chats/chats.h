/* chats.h — parley.v1.Chats: direct chats, groups and membership, and each
 * account's chat list. */
#ifndef PL_CHATS_CHATS_H
#define PL_CHATS_CHATS_H

#include <stddef.h>

#include "app/app.h"

typedef struct pl_chats pl_chats_t;

/* Registers the service (statements, handlers). NULL with a message in err. */
pl_chats_t *pl_chats_register(pl_app_t *app, char *err, size_t err_len);
void pl_chats_free(pl_chats_t *c);

#endif
