/* order.h — the per-chat ordering decision of one stream, without sockets,
 * timers or PostgreSQL: a live message is out at once if it is the next
 * seq, held a few milliseconds if it runs a little ahead (events from other
 * workers and nodes race), and otherwise left to a catch-up from PostgreSQL,
 * which sends every missed message in order. Pure functions, unit-tested in
 * tests/unit/test_order.c; deliver.c carries the decisions out. */
#ifndef PL_MESSAGING_ORDER_H
#define PL_MESSAGING_ORDER_H

#include <stdbool.h>
#include <stdint.h>

#define PL_ORDER_HOLD_MAX 16 /* out-of-order messages held per chat */

typedef enum pl_order_verdict {
    PL_ORDER_HAVE,     /* at or below upto: the device has it already */
    PL_ORDER_SEND,     /* upto + 1: out now */
    PL_ORDER_HOLD,     /* a little ahead: wait for the ones before it */
    PL_ORDER_CATCH_UP, /* too far ahead, or the chat is not live: fetch it */
} pl_order_verdict_t;

/* A held message: item is the caller's (NULL for the device's own send,
 * which needs only its place in the order). */
typedef struct pl_order_held {
    int64_t seq;
    void *item;
} pl_order_held_t;

/* Where seq goes on a stream that has sent up to upto. is_live: no
 * catch-up under way and the client reads (else only PL_ORDER_HAVE or
 * PL_ORDER_CATCH_UP). Also what to do with the first held message. */
pl_order_verdict_t pl_order_live(int64_t upto, int64_t seq, bool is_live);

/* Keeps seq in held[PL_ORDER_HOLD_MAX] (ascending, *count of them):
 * 1 held, 0 held already (item not kept), -1 full. */
int pl_order_hold(pl_order_held_t *held, uint8_t *count, int64_t seq, void *item);

/* Drops the first n held entries. */
void pl_order_shift(pl_order_held_t *held, uint8_t *count, uint8_t n);

#endif
