/* registry.c — a worker's streams, by device and by account. A device has
 * at most one stream per worker (a newer one replaces it, stream.c); an
 * account's streams on this worker are linked through next_of_account. */
#include "messaging/messaging_internal.h"
#include "runtime/errors.h"

int pl_registry_add(pl_msg_worker_t *mw, pl_stream_t *s)
{
    pl_stream_t *first = pl_idmap_get(&mw->by_account, s->account_id);
    if (pl_idmap_put(&mw->by_device, s->device_id, s) != 0)
        return PL_ERR_NOMEM;
    if (pl_idmap_put(&mw->by_account, s->account_id, s) != 0) {
        pl_idmap_del(&mw->by_device, s->device_id);
        return PL_ERR_NOMEM;
    }
    s->next_of_account = first;
    s->is_registered = true;
    mw->stream_count++;
    return 0;
}

void pl_registry_remove(pl_msg_worker_t *mw, pl_stream_t *s)
{
    if (!s->is_registered)
        return;
    s->is_registered = false;
    mw->stream_count--;
    if (pl_idmap_get(&mw->by_device, s->device_id) == s)
        pl_idmap_del(&mw->by_device, s->device_id);
    pl_stream_t *first = pl_idmap_get(&mw->by_account, s->account_id);
    if (first == s) {
        if (s->next_of_account)
            pl_idmap_put(&mw->by_account, s->account_id, s->next_of_account); /* replaces: no allocation */
        else
            pl_idmap_del(&mw->by_account, s->account_id);
    } else {
        for (pl_stream_t *p = first; p; p = p->next_of_account)
            if (p->next_of_account == s) {
                p->next_of_account = s->next_of_account;
                break;
            }
    }
    s->next_of_account = NULL;
}

pl_stream_t *pl_registry_first(const pl_msg_worker_t *mw, int64_t account_id)
{
    return pl_idmap_get(&mw->by_account, account_id);
}
