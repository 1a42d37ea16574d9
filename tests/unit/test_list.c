/* test_list.c — runtime/list.h: the zero value is an empty list; push,
 * shift, removal from the head, the middle and the tail; splice; and
 * removal while iterating with pl_list_each_safe. */
#include "check.h"
#include "runtime/list.h"

typedef struct item {
    int value;
    pl_list_node_t link;
} item_t;

static int value_at(pl_list_node_t *n)
{
    return pl_list_entry(n, item_t, link)->value;
}

/* The values from head to tail, and the same backwards, agree with want. */
static int matches(const pl_list_t *l, const int *want, size_t n)
{
    size_t i = 0;
    for (pl_list_node_t *p = l->head; p; p = p->next, i++)
        if (i >= n || value_at(p) != want[i])
            return 0;
    if (i != n || l->count != n)
        return 0;
    for (pl_list_node_t *p = l->tail; p; p = p->prev)
        if (value_at(p) != want[--i])
            return 0;
    return 1;
}

int main(void)
{
    pl_list_t l = {0};
    CHECK(pl_list_shift(&l) == NULL);
    item_t it[6];
    for (int i = 0; i < 6; i++) {
        it[i].value = i;
        pl_list_push(&l, &it[i].link);
    }
    CHECK(matches(&l, (int[]){0, 1, 2, 3, 4, 5}, 6));
    pl_list_remove(&l, &it[0].link); /* head */
    pl_list_remove(&l, &it[3].link); /* middle */
    pl_list_remove(&l, &it[5].link); /* tail */
    CHECK(matches(&l, (int[]){1, 2, 4}, 3));
    CHECK_EQ_INT(value_at(pl_list_shift(&l)), 1);
    CHECK(matches(&l, (int[]){2, 4}, 2));

    pl_list_t other = {0};
    pl_list_push(&other, &it[0].link);
    pl_list_push(&other, &it[3].link);
    pl_list_splice(&l, &other);
    CHECK(matches(&l, (int[]){2, 4, 0, 3}, 4));
    CHECK(other.head == NULL && other.tail == NULL && other.count == 0);
    pl_list_splice(&other, &l); /* into an empty list */
    CHECK(matches(&other, (int[]){2, 4, 0, 3}, 4));

    pl_list_each_safe (&other, n, next) /* removing as it goes */
        if (value_at(n) % 2 == 0)
            pl_list_remove(&other, n);
    CHECK(matches(&other, (int[]){3}, 1));
    pl_list_remove(&other, &it[3].link);
    CHECK(matches(&other, NULL, 0) && other.head == NULL && other.tail == NULL);
    return pl_test_report();
}
