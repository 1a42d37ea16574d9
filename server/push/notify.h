/* notify.h — how the send path tells the push service that a message was
 * stored: the recipients' devices that have push tokens get a job each in
 * the durable queue, which the dispatcher (dispatch.c) sends once the
 * grace period passes without the device acknowledging the message.
 *
 * Safe from any worker; asynchronous; never fails the caller. A job that
 * cannot be recorded (the account's shard is down) is logged and counted:
 * the message itself is safe and the device gets it on its next resume. */
#ifndef PL_PUSH_NOTIFY_H
#define PL_PUSH_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "app/app.h"
#include "push/provider.h" /* PL_PUSH_PREVIEW_MAX */

typedef struct pl_push_message {
    int64_t chat_id, seq;
    int64_t sender_account;    /* not pushed to (its other devices are in step) */
    const int64_t *recipients; /* accounts (the sender may be among them) */
    size_t n;
    bool is_call;
    const uint8_t *preview; /* encrypted by the sender; NULL: none */
    size_t preview_len;
} pl_push_message_t;

void pl_push_message_stored(const pl_app_t *app, pl_worker_t *w, const pl_push_message_t *msg);

#endif
