/* mailbox.h — how other threads hand work to a worker without a lock: an
 * intrusive multi-producer single-consumer queue (Vyukov's: one atomic
 * exchange per push, none per pop) and an eventfd that wakes the worker's
 * loop only when it may be asleep. */
#ifndef PL_TRANSPORT_MAILBOX_H
#define PL_TRANSPORT_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct pl_mail {
    _Atomic(struct pl_mail *) next;
} pl_mail_t;

typedef struct pl_mailbox {
    _Atomic(pl_mail_t *) head; /* producers push here */
    pl_mail_t *tail;           /* the consumer pops here */
    pl_mail_t stub;
    _Atomic bool wake_pending; /* an eventfd write is on its way */
    int fd;                    /* eventfd, readable when there may be mail */
} pl_mailbox_t;

/* 0, or -1 (errno) if the eventfd cannot be made. */
int pl_mailbox_init(pl_mailbox_t *mb);
void pl_mailbox_dispose(pl_mailbox_t *mb);

/* Any thread. 0, or -1 if the wake-up could not be written. */
int pl_mailbox_push(pl_mailbox_t *mb, pl_mail_t *m);

/* The consumer, when fd is readable: clears the wake-up; then pop until NULL. */
void pl_mailbox_woken(pl_mailbox_t *mb);
/* The next mail, or NULL (empty, or a push still half-way: its wake-up
 * follows). Consumer thread only. */
pl_mail_t *pl_mailbox_pop(pl_mailbox_t *mb);

#endif
