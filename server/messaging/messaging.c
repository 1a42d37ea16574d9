/* messaging.c — placeholder until the service lands (being written now). */
#include "messaging/messaging.h"

#include <stdlib.h>

#include "messaging/notify.h"

struct pl_messaging {
    pl_app_t *app;
};

pl_messaging_t *pl_messaging_register(pl_app_t *app, char *err, size_t err_len)
{
    (void)err;
    (void)err_len;
    pl_messaging_t *m = calloc(1, sizeof(*m));
    if (m) {
        m->app = app;
        app->messaging = m;
    }
    return m;
}

void pl_messaging_free(pl_messaging_t *m)
{
    free(m);
}

void pl_notify_chat_changed(const pl_app_t *app, pl_worker_t *w, int64_t chat_id, int64_t seq,
                            const int64_t *accounts, size_t naccounts)
{
    (void)app, (void)w, (void)chat_id, (void)seq, (void)accounts, (void)naccounts;
}

void pl_notify_device_removed(const pl_app_t *app, pl_worker_t *w, int64_t account_id, int64_t device_id)
{
    (void)app, (void)w, (void)account_id, (void)device_id;
}

void pl_notify_devices_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id)
{
    (void)app, (void)w, (void)account_id;
}

void pl_notify_privacy_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id)
{
    (void)app, (void)w, (void)account_id;
}
