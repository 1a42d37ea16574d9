/* order.c — see order.h. */
#include "messaging/order.h"

#include <string.h>

pl_order_verdict_t pl_order_live(int64_t upto, int64_t seq, bool is_live)
{
    if (seq <= upto)
        return PL_ORDER_HAVE;
    if (!is_live)
        return PL_ORDER_CATCH_UP;
    if (seq == upto + 1)
        return PL_ORDER_SEND;
    /* further ahead than the window: waiting would only delay the fetch */
    return seq - upto <= PL_ORDER_HOLD_MAX ? PL_ORDER_HOLD : PL_ORDER_CATCH_UP;
}

int pl_order_hold(pl_order_held_t *held, uint8_t *count, int64_t seq, void *item)
{
    int i = *count;
    while (i > 0 && held[i - 1].seq > seq)
        i--;
    if (i > 0 && held[i - 1].seq == seq)
        return 0;
    if (*count == PL_ORDER_HOLD_MAX)
        return -1;
    memmove(&held[i + 1], &held[i], sizeof(*held) * (size_t)(*count - i));
    held[i] = (pl_order_held_t){seq, item};
    (*count)++;
    return 1;
}

void pl_order_shift(pl_order_held_t *held, uint8_t *count, uint8_t n)
{
    memmove(held, held + n, sizeof(*held) * (size_t)(*count - n));
    *count = (uint8_t)(*count - n);
}
