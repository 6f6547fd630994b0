/*
 * sem.c — the semaphore and sc_with_semaphore.
 *
 * The semaphore is a signed count and a FIFO of waiters (core/waitq.c), each
 * waiter's record remembering how many units it wants. Every path that may
 * let the head through — a signal, a waiter leaving early — ends in
 * wake_from_head(), which serves waiters in order while the units last.
 */
#include <string.h>

#include "core/coord_impl.h"
#include "core/sem.h"

static void wake_from_head(struct sc_sem *s)
{
    /* Take each waiter out and pay for it before resolving it: resolving
     * may run code that signals or waits on this semaphore again, and that
     * code must find the count and the queue consistent. */
    struct sc__cwait *w;
    while ((w = sc__waitq_head(&s->q)) && s->count >= 0 && (uint64_t)s->count >= w->arg) {
        s->count -= (int64_t)w->arg;
        sc__waitq_pop(&s->q);
        sc__cwait_done(w, 0);
    }
}

static void sem_on_leave(struct sc_waitq *q)
{
    struct sc_sem *s = SC_CONTAINER_OF(q, struct sc_sem, q);
    if (!s->broken)
        wake_from_head(s);
}

int sc_sem_init(struct sc_sem *s, uint64_t units)
{
    sc__waitq_init(&s->q, sem_on_leave);
    s->broken = 0;
    s->owner = sc__coord_owner_now();
    s->break_file = NULL;
    s->break_line = 0;
    if (units > SC_SEM_MAX_UNITS) {
        s->count = 0;
        return -EINVAL;
    }
    s->count = (int64_t)units;
    return 0;
}

/* Can n units be taken now without jumping the queue? */
static inline bool can_take(const struct sc_sem *s, uint64_t n)
{
    return s->q.len == 0 && s->count >= 0 && (uint64_t)s->count >= n;
}

static struct sc_future broken_error(const struct sc_sem *s)
{
    return sc__make_error(s->broken, s->break_file, s->break_line);
}

static struct sc_future sem_wait(struct sc_sem *s, uint64_t n, uint64_t timeout_ns,
                                 struct sc_abort_source *as)
{
    sc__coord_bind(&s->owner);
    if (s->broken)
        return broken_error(s);
    if (n > SC_SEM_MAX_UNITS)
        return sc_make_error(-EINVAL);
    if (as) {
        sc__coord_bind(&as->owner);
        if (as->requested)
            return sc_make_error(-ECANCELED);
    }
    if (can_take(s, n)) {
        s->count -= (int64_t)n;
        return sc_make_ready(0);
    }
    struct sc__cwait *w = sc__cwait_new((uintptr_t)n);
    if (!w)
        return sc_make_error(-ENOMEM);
    return sc__cwait_start(&s->q, w, timeout_ns, SC_ETIMEDOUT, as);
}

struct sc_future sc_sem_wait(struct sc_sem *s, uint64_t n)
{
    /* The common case inline: units there, nobody waiting. */
    struct sc__shard *sh = sc__shard();
    if (__builtin_expect(sh && s->owner == sh->id && !s->broken && can_take(s, n), 1)) {
        s->count -= (int64_t)n;
        return sc_make_ready(0);
    }
    return sem_wait(s, n, UINT64_MAX, NULL);
}

struct sc_future sc_sem_wait_for(struct sc_sem *s, uint64_t n, uint64_t timeout_ns)
{
    return sem_wait(s, n, timeout_ns, NULL);
}

struct sc_future sc_sem_wait_abortable(struct sc_sem *s, uint64_t n, struct sc_abort_source *as)
{
    return sem_wait(s, n, UINT64_MAX, as);
}

bool sc_sem_try_wait(struct sc_sem *s, uint64_t n)
{
    sc__coord_bind(&s->owner);
    if (s->broken || !can_take(s, n))
        return false;
    s->count -= (int64_t)n;
    return true;
}

int sc_sem_signal(struct sc_sem *s, uint64_t n)
{
    sc__coord_bind(&s->owner);
    if (s->broken)
        return 0;
    if (n > SC_SEM_MAX_UNITS || s->count > (int64_t)(SC_SEM_MAX_UNITS - n))
        return -EOVERFLOW;
    s->count += (int64_t)n;
    wake_from_head(s);
    return 0;
}

int sc_sem_consume(struct sc_sem *s, uint64_t n)
{
    sc__coord_bind(&s->owner);
    if (n > SC_SEM_MAX_UNITS || s->count < -(int64_t)(SC_SEM_MAX_UNITS - n))
        return -EOVERFLOW;
    s->count -= (int64_t)n;
    return 0;
}

int64_t sc_sem_available(const struct sc_sem *s)
{
    return s->count;
}

size_t sc_sem_waiters(const struct sc_sem *s)
{
    return s->q.len;
}

void sc__sem_break(struct sc_sem *s, int err, const char *file, int line)
{
    sc__coord_bind(&s->owner);
    if (s->broken)
        return;
    if (err > 0)
        err = -err;
    s->broken = err ? err : SC_EBROKEN;
    s->break_file = file;
    s->break_line = line;
    sc__waitq_fail_all(&s->q, s->broken, file, line);
}

/* ------------------------------------------------------------------ */
/* sc_with_semaphore                                                    */
/* ------------------------------------------------------------------ */

/*
 * One record per call that cannot finish inline. It is allocated *before*
 * fn runs, so that once fn's operation is in flight nothing can fail for
 * want of memory: the units are given back exactly when that operation
 * resolves. Two phases share the waiter:
 *   WAIT  the record waits for the units (the semaphore's own future); the
 *         wake-up schedules the task, which runs fn on the copied capture;
 *   HOLD  the record waits for fn's future; its wake-up signals the units
 *         back and resolves the result.
 */
struct with_sem {
    struct sc__fstate result; /* the future sc_with_semaphore returned */
    struct sc__waiter w;
    struct sc_task task;
    struct sc_sem *sem;
    uint64_t n;
    sc_then_fn fn;
    intptr_t in_value;
    int32_t in_err;
    _Alignas(16) unsigned char cap[];
};

static void with_hold_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct with_sem *r = SC_CONTAINER_OF(w, struct with_sem, w);
    sc_sem_signal(r->sem, r->n);                /* cannot overflow: these units were taken */
    sc__fstate_resolve(&r->result, value, err); /* frees r */
}

/* fn's future r is in flight: hold the units until it resolves. */
static void with_hold(struct with_sem *rec, struct sc_future r)
{
    rec->w.wake = with_hold_done;
    sc__future_attach(r, &rec->w);
}

static void with_task(struct sc_task *t)
{
    struct with_sem *rec = SC_CONTAINER_OF(t, struct with_sem, task);
    if (rec->in_err) { /* no units were taken: pass the error on */
        sc__fstate_resolve(&rec->result, rec->in_value, rec->in_err);
        return;
    }
    with_hold(rec, rec->fn(rec->cap, 0));
}

static void with_wait_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct with_sem *rec = SC_CONTAINER_OF(w, struct with_sem, w);
    rec->in_value = value;
    rec->in_err = err;
    sc_task_schedule(&rec->task); /* not inline: we may be deep inside a signal */
}

static struct with_sem *with_new(struct sc_sem *s, uint64_t n, sc_then_fn fn, const void *cap,
                                 size_t cap_size)
{
    size_t size = sizeof(struct with_sem) + cap_size;
    struct with_sem *rec = sc__pool_alloc(size);
    if (!rec)
        return NULL;
    sc__fstate_init(&rec->result, size, 0);
    rec->task.run = with_task;
    rec->sem = s;
    rec->n = n;
    rec->fn = fn;
    rec->in_value = 0;
    rec->in_err = 0;
    if (cap_size)
        memcpy(rec->cap, cap, cap_size);
    return rec;
}

struct sc_future sc_with_semaphore(struct sc_sem *s, uint64_t n, sc_then_fn fn, const void *cap,
                                   size_t cap_size)
{
    sc__coord_bind(&s->owner);
    if (s->broken)
        return broken_error(s);
    if (n > SC_SEM_MAX_UNITS)
        return sc_make_error(-EINVAL);
    if (can_take(s, n) && !sc__defer_ready()) {
        /* The units are there: take them and run fn inline on the caller's
         * capture. The record comes first, so that nothing can fail once
         * fn has started. */
        struct with_sem *rec = with_new(s, n, fn, NULL, 0);
        if (!rec)
            return sc_make_error(-ENOMEM);
        s->count -= (int64_t)n;
        struct sc_future r = fn((void *)cap, 0);
        sc__future_settle(&r);
        if (r.gen == 0) { /* finished inline: no record needed after all */
            sc__pool_free(rec, sizeof *rec);
            sc_sem_signal(s, n);
            return r;
        }
        struct sc_future out = sc__fstate_future(&rec->result);
        with_hold(rec, r);
        return out;
    }
    /* Wait for the units (or, when the simulator defers ready work, take
     * them now and run fn later as a task). */
    struct with_sem *rec = with_new(s, n, fn, cap, cap_size);
    if (!rec)
        return sc_make_error(-ENOMEM);
    struct sc_future out = sc__fstate_future(&rec->result);
    rec->w.wake = with_wait_done;
    sc__future_attach(sc_sem_wait(s, n), &rec->w);
    return out;
}
