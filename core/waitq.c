/*
 * waitq.c — waiter records and the FIFO queues that hold them: the one piece
 * of machinery under the semaphore, the condition variable, the queue and
 * the pipe. Read coord_impl.h first.
 *
 * A waiter leaves its queue in one of three ways: the primitive takes it
 * (sc__waitq_pop, then resolves it), its timer fires, or its abort source
 * fires. Whichever comes first undoes the other two before resolving, so a
 * record is resolved exactly once and nothing points at it afterwards.
 */
#include "core/coord_impl.h"

void sc__waitq_init(struct sc_waitq *q, void (*on_leave)(struct sc_waitq *q))
{
    q->head = q->tail = NULL;
    q->len = 0;
    q->on_leave = on_leave;
}

static void enqueue(struct sc_waitq *q, struct sc__cwait *w)
{
    w->q = q;
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->len++;
}

static void unlink_waiter(struct sc__cwait *w)
{
    struct sc_waitq *q = w->q;
    if (!q)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    q->len--;
    w->q = NULL;
    w->prev = w->next = NULL;
}

static void cwait_timer_fired(void *arg);
static void cwait_aborted(void *arg);

struct sc__cwait *sc__cwait_new(uintptr_t arg)
{
    struct sc__cwait *w = sc__pool_alloc(sizeof *w);
    if (!w)
        return NULL;
    sc__fstate_init(&w->result, sizeof *w, 0);
    w->prev = w->next = NULL;
    w->q = NULL;
    w->arg = arg;
    w->timeout_err = 0;
    w->timed = false;
    sc_abort_sub_init(&w->sub);
    return w;
}

struct sc_future sc__cwait_start(struct sc_waitq *q, struct sc__cwait *w, uint64_t timeout_ns,
                                 int32_t timeout_err, struct sc_abort_source *as)
{
    if (timeout_ns != UINT64_MAX) {
        sc_timer_init(&w->timer, cwait_timer_fired, w);
        int err = sc_timer_arm_in(&w->timer, timeout_ns);
        if (err) {
            sc__pool_free(w, sizeof *w);
            return sc_make_error(err);
        }
        w->timed = true;
        w->timeout_err = timeout_err;
    }
    if (as) {
        int err = sc_abort_subscribe(as, &w->sub, cwait_aborted, w);
        SC_ASSERT(err == 0, "abortable wait on a source already requested (%d)", err);
    }
    if (q)
        enqueue(q, w);
    return sc__fstate_future(&w->result);
}

/* Undo the timer and the subscription: w is about to be resolved. */
static void disarm(struct sc__cwait *w)
{
    if (w->timed) {
        sc_timer_cancel(&w->timer);
        w->timed = false;
    }
    sc_abort_unsubscribe(&w->sub);
}

struct sc__cwait *sc__waitq_pop(struct sc_waitq *q)
{
    struct sc__cwait *w = q->head;
    if (!w)
        return NULL;
    unlink_waiter(w);
    disarm(w);
    return w;
}

void sc__cwait_done(struct sc__cwait *w, intptr_t value)
{
    sc__fstate_resolve(&w->result, value, 0);
}

void sc__cwait_fail(struct sc__cwait *w, int err, const char *file, int line)
{
    struct sc_future e = sc__make_error(err, file, line);
    sc__fstate_resolve(&w->result, (intptr_t)e.ledger, e.err);
}

void sc__waitq_fail_all(struct sc_waitq *q, int err, const char *file, int line)
{
    /* Resolving may run consumers that queue new waiters here (a broken
     * primitive fails those at once, so this loop ends); take them one at a
     * time, oldest first. */
    struct sc__cwait *w;
    while ((w = sc__waitq_pop(q)))
        sc__cwait_fail(w, err, file, line);
}

/* w leaves early with `err` (0: success). Its queue's owner hears about it
 * afterwards: the waiter that left may have been blocking the others. */
static void leave_early(struct sc__cwait *w, int err)
{
    struct sc_waitq *q = w->q;
    unlink_waiter(w);
    disarm(w);
    if (err)
        sc__cwait_fail(w, err, __FILE__, __LINE__);
    else
        sc__cwait_done(w, 0);
    if (q && q->on_leave)
        q->on_leave(q);
}

static void cwait_timer_fired(void *arg)
{
    struct sc__cwait *w = arg;
    w->timed = false; /* the reactor disarmed it before calling us */
    leave_early(w, w->timeout_err);
}

static void cwait_aborted(void *arg)
{
    leave_early(arg, -ECANCELED);
}
