/* notify.h — how the other services tell the device streams that something
 * happened, on this node and on the others (through Redis).
 *
 * Safe to call from any handler on any worker; the work happens
 * asynchronously and never fails the caller: streams that miss a
 * notification still catch up from PostgreSQL on their next resume. */
#ifndef PL_MESSAGING_NOTIFY_H
#define PL_MESSAGING_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include "app/app.h"

/* A chat's log grew to seq through something other than a send (a system
 * message: membership or settings changed), or its membership changed.
 * accounts: everyone whose devices should look (the members after the
 * change, plus anyone removed by it, who still sees their removal).
 * Member caches of the chat are dropped everywhere. */
void pl_notify_chat_changed(const pl_app_t *app, pl_worker_t *w, int64_t chat_id, int64_t seq, const int64_t *accounts,
                            size_t naccounts);

/* A device was removed (its token is already revoked): its streams end
 * with UNAUTHENTICATED, on whichever node they are. */
void pl_notify_device_removed(const pl_app_t *app, pl_worker_t *w, int64_t account_id, int64_t device_id);

/* An account's devices changed (one added or removed): caches of the
 * account's device list are dropped everywhere. */
void pl_notify_devices_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id);

/* Blocking or privacy settings of account changed: presence shown to
 * others is re-evaluated. */
void pl_notify_privacy_changed(const pl_app_t *app, pl_worker_t *w, int64_t account_id);

#endif
