/* mailbox.c — see mailbox.h. The queue keeps a stub node so that push never
 * needs to know whether the queue is empty. */
#include "transport/mailbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int pl_mailbox_init(pl_mailbox_t *mb)
{
    atomic_init(&mb->stub.next, NULL);
    atomic_init(&mb->head, &mb->stub);
    mb->tail = &mb->stub;
    atomic_init(&mb->wake_pending, false);
    mb->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return mb->fd < 0 ? -1 : 0;
}

void pl_mailbox_dispose(pl_mailbox_t *mb)
{
    if (mb->fd >= 0)
        close(mb->fd);
    mb->fd = -1;
}

static void enqueue(pl_mailbox_t *mb, pl_mail_t *m)
{
    atomic_store_explicit(&m->next, NULL, memory_order_relaxed);
    pl_mail_t *prev = atomic_exchange_explicit(&mb->head, m, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, m, memory_order_release);
}

int pl_mailbox_push(pl_mailbox_t *mb, pl_mail_t *m)
{
    enqueue(mb, m);
    /* the consumer clears wake_pending before it drains: whoever sets it
     * again owes it a wake-up */
    if (!atomic_exchange_explicit(&mb->wake_pending, true, memory_order_acq_rel)) {
        uint64_t one = 1;
        if (write(mb->fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            return -1;
    }
    return 0;
}

void pl_mailbox_woken(pl_mailbox_t *mb)
{
    uint64_t n;
    while (read(mb->fd, &n, sizeof(n)) < 0 && errno == EINTR)
        ;
    atomic_store_explicit(&mb->wake_pending, false, memory_order_seq_cst);
}

pl_mail_t *pl_mailbox_pop(pl_mailbox_t *mb)
{
    pl_mail_t *tail = mb->tail;
    pl_mail_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &mb->stub) {
        if (!next)
            return NULL;
        mb->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next) {
        mb->tail = next;
        return tail;
    }
    if (tail != atomic_load_explicit(&mb->head, memory_order_acquire))
        return NULL; /* a producer is between its exchange and its link */
    enqueue(mb, &mb->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next) {
        mb->tail = next;
        return tail;
    }
    return NULL;
}
