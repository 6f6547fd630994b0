/*
 * timer.c — the timer heap: a binary min-heap of armed timers.
 *
 * Ordering is by (deadline, seq): seq is the arming order, so timers that
 * share a deadline fire in the order they were armed, and nothing depends on
 * where a timer happens to sit in memory. Each timer remembers its index in
 * the heap, which makes cancel O(log n): move the last element into the hole
 * and let it sift up or down.
 *
 * Lab 03 asks you to write this file's heap operations.
 */
#include <stdlib.h>

#include "core/shard_impl.h"

/* True if a must fire before b. */
static inline bool earlier(const struct sc_timer *a, const struct sc_timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(struct sc__timer_heap *th, uint32_t i, struct sc_timer *t)
{
    th->h[i] = t;
    t->index = i;
}

/* LAB 03 BEGIN: sift_up and sift_down keep the heap ordered by earlier() */
static void sift_up(struct sc__timer_heap *th, uint32_t i)
{
    struct sc_timer *t = th->h[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!earlier(t, th->h[parent]))
            break;
        place(th, i, th->h[parent]);
        i = parent;
    }
    place(th, i, t);
}

static void sift_down(struct sc__timer_heap *th, uint32_t i)
{
    struct sc_timer *t = th->h[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= th->len)
            break;
        if (child + 1 < th->len && earlier(th->h[child + 1], th->h[child]))
            child++;
        if (!earlier(th->h[child], t))
            break;
        place(th, i, th->h[child]);
        i = child;
    }
    place(th, i, t);
}
/* LAB 03 END */

int sc__timer_heap_push(struct sc__timer_heap *th, struct sc_timer *t)
{
    if (th->len == th->cap) {
        uint32_t ncap = th->cap ? th->cap * 2 : 64;
        struct sc_timer **nh = realloc(th->h, ncap * sizeof *nh);
        if (!nh)
            return -ENOMEM;
        th->h = nh;
        th->cap = ncap;
    }
    /* LAB 03 BEGIN: add t at the end and restore the heap order */
    place(th, th->len++, t);
    sift_up(th, t->index);
    /* LAB 03 END */
    return 0;
}

void sc__timer_heap_remove(struct sc__timer_heap *th, struct sc_timer *t)
{
    /* LAB 03 BEGIN: fill t's slot with the last timer, then re-sift it */
    uint32_t i = t->index;
    struct sc_timer *last = th->h[--th->len];
    if (last != t) {
        place(th, i, last);
        sift_up(th, i);
        sift_down(th, last->index);
    }
    /* LAB 03 END */
    t->index = SC_TIMER_IDLE;
}

struct sc_timer *sc__timer_heap_top(const struct sc__timer_heap *th)
{
    /* LAB 03 BEGIN: the earliest timer, or NULL */
    return th->len ? th->h[0] : NULL;
    /* LAB 03 END: return NULL; */
}
