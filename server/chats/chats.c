/* chats.c — placeholder until the service lands (being written now). */
#include "chats/chats.h"

#include <stdlib.h>

struct pl_chats {
    pl_app_t *app;
};

pl_chats_t *pl_chats_register(pl_app_t *app, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    pl_chats_t *s = calloc(1, sizeof(*s));
    if (s)
        s->app = app;
    return s;
}

void pl_chats_free(pl_chats_t *s)
{
    free(s);
}
