/* list.h — the one list of the code base: an intrusive doubly linked list
 * (a node inside each element; no allocation) whose zero value is an empty
 * list, so structures made with calloc need no init. Pushing at the tail
 * and shifting from the head makes it a FIFO queue; removal from anywhere
 * is O(1). Not thread-safe. */
#ifndef PL_RUNTIME_LIST_H
#define PL_RUNTIME_LIST_H

#include <stddef.h>

typedef struct pl_list_node {
    struct pl_list_node *prev, *next;
} pl_list_node_t;

typedef struct pl_list {
    pl_list_node_t *head, *tail;
    size_t count;
} pl_list_t;

/* The element that holds node: pl_list_entry(n, pl_redis_cmd_t, link). */
#define pl_list_entry(node, type, member) ((type *)(void *)((char *)(node)-offsetof(type, member)))

/* for (pl_list_node_t *n = l.head, *next; n && (next = n->next, 1); n = next):
 * the body may remove n. */
#define pl_list_each_safe(l, n, nx) for (pl_list_node_t *n = (l)->head, *nx; n && ((nx = n->next), 1); n = nx)

static inline void pl_list_push(pl_list_t *l, pl_list_node_t *n)
{
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
    l->count++;
}

static inline void pl_list_remove(pl_list_t *l, pl_list_node_t *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    l->count--;
}

/* The first node, removed; NULL if the list is empty. */
static inline pl_list_node_t *pl_list_shift(pl_list_t *l)
{
    pl_list_node_t *n = l->head;
    if (n)
        pl_list_remove(l, n);
    return n;
}

/* Takes every node of from (which becomes empty) onto the end of to. */
static inline void pl_list_splice(pl_list_t *to, pl_list_t *from)
{
    if (!from->head)
        return;
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->count += from->count;
    *from = (pl_list_t){0};
}

#endif
