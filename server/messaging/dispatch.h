/* dispatch.h — a node event's effect on one worker's streams (dispatch.c);
 * fanout.c is how the event got here. */
#ifndef PL_MESSAGING_DISPATCH_H
#define PL_MESSAGING_DISPATCH_H

#include "messaging/messaging_internal.h"

/* Hands e to the streams on mw it concerns (e stays the caller's). */
void pl_dispatch(pl_msg_worker_t *mw, pl_msg_event_t *e);
/* A pl_worker_post task (arg: the pl_messaging_t): the worker's streams make
 * their routes reachable again, then catch up on what was stored while
 * Redis was away. */
void pl_dispatch_resync_worker(pl_worker_t *w, void *arg);
/* Frees the worker's resync retry timer. */
void pl_dispatch_stop(pl_msg_worker_t *mw);

#endif
