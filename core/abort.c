/*
 * abort.c — abort sources, and the abortable sleep.
 *
 * The source is a flag and an intrusive doubly linked list of subscriptions,
 * oldest first. A request drains the list from the head, unlinking each
 * subscription before calling it, so a callback may unsubscribe any other
 * (or free the record holding its own) without the loop holding a pointer
 * into freed memory.
 */
#include "core/coord_impl.h"

void sc_abort_init(struct sc_abort_source *as)
{
    as->head = as->tail = NULL;
    as->owner = sc__coord_owner_now();
    as->requested = false;
}

void sc_abort_sub_init(struct sc_abort_sub *sub)
{
    sub->prev = sub->next = NULL;
    sub->src = NULL;
    sub->fn = NULL;
    sub->arg = NULL;
}

bool sc_abort_requested(const struct sc_abort_source *as)
{
    return as->requested;
}

int sc_abort_subscribe(struct sc_abort_source *as, struct sc_abort_sub *sub, sc_abort_fn fn,
                       void *arg)
{
    sc__coord_bind(&as->owner);
    if (as->requested)
        return -ECANCELED;
    if (sub->src)
        return -EBUSY;
    sub->src = as;
    sub->fn = fn;
    sub->arg = arg;
    sub->next = NULL;
    sub->prev = as->tail;
    if (as->tail)
        as->tail->next = sub;
    else
        as->head = sub;
    as->tail = sub;
    return 0;
}

bool sc_abort_unsubscribe(struct sc_abort_sub *sub)
{
    struct sc_abort_source *as = sub->src;
    if (!as)
        return false;
    sc__coord_bind(&as->owner);
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        as->head = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    else
        as->tail = sub->prev;
    sub->prev = sub->next = NULL;
    sub->src = NULL;
    return true;
}

void sc_abort_request(struct sc_abort_source *as)
{
    sc__coord_bind(&as->owner);
    if (as->requested)
        return;
    as->requested = true;
    struct sc_abort_sub *sub;
    while ((sub = as->head)) {
        sc_abort_fn fn = sub->fn;
        void *arg = sub->arg;
        sc_abort_unsubscribe(sub);
        fn(arg);
    }
}

/* ---- the abortable sleep: a waiter in no queue, whose timer means success ---- */

struct sc_future sc_sleep_abortable(uint64_t ns, struct sc_abort_source *as)
{
    if (!as)
        return sc_sleep(ns);
    sc__coord_bind(&as->owner);
    if (as->requested)
        return sc_make_error(-ECANCELED);
    struct sc__cwait *w = sc__cwait_new(0);
    if (!w)
        return sc_make_error(-ENOMEM);
    return sc__cwait_start(NULL, w, ns, 0, as);
}
