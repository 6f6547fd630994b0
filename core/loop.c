/*
 * loop.c — loops and combinators built on shared states and waiters.
 *
 * Each combinator first works inline on the caller's captured state; only
 * when it must wait (a pending future) or yield (the quota is spent) does it
 * take one pool allocation holding a copy of the captured state, the result
 * state, and whatever waiters it needs.
 */
#include <stdlib.h>
#include <string.h>

#include "core/future_impl.h"
#include "core/loop.h"

/* Round up to a multiple of 16 so that a captured state placed there is
 * aligned for anything a C struct may hold. */
static inline size_t align16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* ------------------------------------------------------------------ */
/* repeat, do_until, keep_doing                                         */
/* ------------------------------------------------------------------ */

enum loop_kind { LOOP_REPEAT, LOOP_UNTIL, LOOP_FOREVER };
enum loop_end { END_DONE, END_WAIT, END_YIELD };

struct loop {
    struct sc__fstate result;
    struct sc__waiter w;
    struct sc_task task;
    sc_repeat_fn body;
    sc_stop_fn stop;
    uint8_t kind;
    _Alignas(16) unsigned char cap[];
};

/* Does the body's outcome end the loop? */
static bool loop_ends(enum loop_kind kind, intptr_t value, int err)
{
    return err || (kind == LOOP_REPEAT && value == SC_STOP);
}

/* Run iterations on `cap` until the loop ends (*out is its outcome), a body
 * returns a pending future (*out is that future), or the quota is spent. */
static enum loop_end iterate(enum loop_kind kind, sc_repeat_fn body, sc_stop_fn stop, void *cap,
                             struct sc_future *out)
{
    for (;;) {
        if (kind == LOOP_UNTIL && stop(cap)) {
            *out = sc_make_ready(0);
            return END_DONE;
        }
        struct sc_future r = body(cap);
        sc__future_settle(&r);
        if (r.gen) {
            *out = r;
            return END_WAIT;
        }
        if (loop_ends(kind, r.value, r.err)) {
            *out = r.err ? r : sc_make_ready(0);
            return END_DONE;
        }
        if (sc_need_preempt())
            return END_YIELD;
    }
}

static void loop_task(struct sc_task *t);

static void loop_wake(struct sc__waiter *w, intptr_t value, int err)
{
    struct loop *l = SC_CONTAINER_OF(w, struct loop, w);
    if (loop_ends(l->kind, value, err))
        sc__fstate_resolve(&l->result, err ? value : 0, err);
    else
        sc__task_enqueue(sc__shard(), &l->task); /* not inline: we may be deep inside a
                                                  * resolve, maybe of another group's code */
}

/* Continue the loop: the end of an iteration told us what to do next. */
static void loop_continue(struct loop *l, enum loop_end end, struct sc_future f)
{
    if (end == END_DONE)
        sc__future_forward(f, &l->result);
    else if (end == END_WAIT)
        sc__future_attach(f, &l->w);
    else
        sc__task_enqueue(sc__shard(), &l->task);
}

static void loop_task(struct sc_task *t)
{
    struct loop *l = SC_CONTAINER_OF(t, struct loop, task);
    struct sc_future f = {0};
    enum loop_end end = iterate(l->kind, l->body, l->stop, l->cap, &f);
    loop_continue(l, end, f);
}

static struct sc_future loop_start(enum loop_kind kind, sc_repeat_fn body, sc_stop_fn stop,
                                   const void *cap, size_t cap_size)
{
    struct sc_future f = {0};
    enum loop_end end = iterate(kind, body, stop, (void *)cap, &f);
    if (end == END_DONE)
        return f;
    size_t size = sizeof(struct loop) + cap_size;
    struct loop *l = sc__pool_alloc(size);
    if (!l) {
        if (end == END_WAIT)
            sc_future_ignore(f);
        return sc_make_error(-ENOMEM);
    }
    sc__fstate_init(&l->result, size, 0);
    l->w.wake = loop_wake;
    l->task.run = loop_task;
    l->task.group = sc__shard()->sched.current; /* the loop stays in its group */
    l->body = body;
    l->stop = stop;
    l->kind = (uint8_t)kind;
    if (cap_size)
        memcpy(l->cap, cap, cap_size);
    struct sc_future out = sc__fstate_future(&l->result);
    loop_continue(l, end, f);
    return out;
}

struct sc_future sc_repeat(sc_repeat_fn body, const void *cap, size_t cap_size)
{
    return loop_start(LOOP_REPEAT, body, NULL, cap, cap_size);
}

struct sc_future sc_do_until(sc_stop_fn stop, sc_repeat_fn body, const void *cap, size_t cap_size)
{
    return loop_start(LOOP_UNTIL, body, stop, cap, cap_size);
}

struct sc_future sc_keep_doing(sc_repeat_fn body, const void *cap, size_t cap_size)
{
    return loop_start(LOOP_FOREVER, body, NULL, cap, cap_size);
}

/* ------------------------------------------------------------------ */
/* parallel_for_each, map_reduce, when_all_succeed                      */
/* ------------------------------------------------------------------ */

/*
 * One engine serves all three: start map(i) for every i, fold each value
 * with reduce (if any) as it arrives, keep the first error. The record is
 * taken at the first pending future (or yield) and has one small waiter per
 * item, so any number of items may be pending at once.
 */
struct fan;

struct fan_sub {
    struct sc__waiter w;
    struct fan *fan;
};

struct fan {
    struct sc__fstate result;
    struct sc_task task; /* resumes launching after a yield */
    sc_index_fn map;
    sc_reduce_fn reduce;
    intptr_t acc;
    uintptr_t err_ledger;
    int err;
    bool launching;
    bool may_yield;
    size_t n, next, pending;
    struct fan_sub *subs;
    unsigned char *cap;
};

/* What the caller's inline launch has gathered before the record exists. */
struct fan_progress {
    intptr_t acc;
    uintptr_t err_ledger;
    int err;
    size_t next;
};

static void fan_collect(sc_reduce_fn reduce, void *cap, intptr_t *acc, uintptr_t *ledger,
                        int *first_err, intptr_t value, int err)
{
    if (err) {
        if (*first_err)
            sc__ledger_release((uintptr_t)value); /* only the first error is kept */
        else {
            *first_err = err;
            *ledger = (uintptr_t)value;
        }
    } else if (reduce && !*first_err) {
        *acc = reduce(cap, *acc, value);
    }
}

static void fan_finish(struct fan *fa)
{
    if (fa->err)
        sc__fstate_resolve(&fa->result, (intptr_t)fa->err_ledger, fa->err);
    else
        sc__fstate_resolve(&fa->result, fa->reduce ? fa->acc : 0, 0);
}

static void fan_sub_wake(struct sc__waiter *w, intptr_t value, int err)
{
    struct fan *fa = SC_CONTAINER_OF(w, struct fan_sub, w)->fan;
    fan_collect(fa->reduce, fa->cap, &fa->acc, &fa->err_ledger, &fa->err, value, err);
    /* Finish only when every item has been started: launching may have
     * yielded at the quota with items still to start. */
    if (--fa->pending == 0 && !fa->launching && fa->next == fa->n)
        fan_finish(fa);
}

/* Launch items from fa->next on; yields at the quota if allowed. */
static void fan_launch(struct fan *fa)
{
    fa->launching = true;
    while (fa->next < fa->n) {
        size_t i = fa->next++;
        struct sc_future f = fa->map(fa->cap, i);
        fa->pending++;
        fa->subs[i].fan = fa;
        fa->subs[i].w.wake = fan_sub_wake;
        sc__future_attach(f, &fa->subs[i].w);
        if (fa->may_yield && fa->next < fa->n && sc_need_preempt()) {
            fa->launching = false;
            sc__task_enqueue(sc__shard(), &fa->task);
            return;
        }
    }
    fa->launching = false;
    if (fa->pending == 0)
        fan_finish(fa);
}

static void fan_task(struct sc_task *t)
{
    fan_launch(SC_CONTAINER_OF(t, struct fan, task));
}

static struct sc_future take_future(void *cap, size_t i);

static struct sc_future fan_start(size_t n, sc_index_fn map, sc_reduce_fn reduce, intptr_t init,
                                  bool may_yield, const void *cap, size_t cap_size)
{
    intptr_t acc = init;
    uintptr_t ledger = 0;
    int err = 0;
    size_t i = 0;
    struct sc_future f = {0};
    bool have_pending = false, yielded = false;
    /* The inline part: as long as every future is ready, no record. */
    while (i < n) {
        f = map((void *)cap, i++);
        sc__future_settle(&f);
        if (f.gen) {
            have_pending = true;
            break;
        }
        fan_collect(reduce, (void *)cap, &acc, &ledger, &err, f.err ? (intptr_t)f.ledger : f.value,
                    f.err);
        if (may_yield && i < n && sc_need_preempt()) {
            yielded = true;
            break;
        }
    }
    if (i == n && !have_pending)
        return err ? sc__failed(ledger, err) : sc_make_ready(reduce ? acc : 0);

    size_t subs_off = align16(sizeof(struct fan));
    size_t cap_off = align16(subs_off + n * sizeof(struct fan_sub));
    size_t size = cap_off + cap_size;
    struct fan *fa = sc__pool_alloc(size);
    if (!fa) {
        if (have_pending)
            sc_future_ignore(f);
        if (err)
            sc__ledger_release(ledger);
        if (map == take_future) /* when_all_succeed consumes every future, even now */
            while (i < n)
                sc_future_ignore(map((void *)cap, i++));
        return sc_make_error(-ENOMEM);
    }
    sc__fstate_init(&fa->result, size, 0);
    fa->task.run = fan_task;
    fa->task.group = sc__shard()->sched.current;
    fa->map = map;
    fa->reduce = reduce;
    fa->acc = acc;
    fa->err_ledger = ledger;
    fa->err = err;
    fa->launching = false;
    fa->may_yield = may_yield;
    fa->n = n;
    fa->next = i;
    fa->pending = 0;
    fa->subs = (struct fan_sub *)((char *)fa + subs_off);
    fa->cap = (unsigned char *)fa + cap_off;
    if (cap_size)
        memcpy(fa->cap, cap, cap_size);
    struct sc_future out = sc__fstate_future(&fa->result);
    fa->launching = true;
    if (have_pending) {
        fa->pending++;
        fa->subs[i - 1].fan = fa;
        fa->subs[i - 1].w.wake = fan_sub_wake;
        sc__future_attach(f, &fa->subs[i - 1].w);
    }
    if (yielded) {
        fa->launching = false;
        sc__task_enqueue(sc__shard(), &fa->task);
    } else {
        fan_launch(fa);
    }
    return out;
}

struct sc_future sc_parallel_for_each(size_t n, sc_index_fn fn, const void *cap, size_t cap_size)
{
    return fan_start(n, fn, NULL, 0, true, cap, cap_size);
}

struct sc_future sc_map_reduce(size_t n, sc_index_fn map, sc_reduce_fn reduce, intptr_t init,
                               const void *cap, size_t cap_size)
{
    return fan_start(n, map, reduce, init, true, cap, cap_size);
}

struct sc_future sc__fan_now(size_t n, sc_index_fn map, sc_reduce_fn reduce, intptr_t init,
                             const void *cap, size_t cap_size)
{
    return fan_start(n, map, reduce, init, false, cap, cap_size);
}

static struct sc_future take_future(void *cap, size_t i)
{
    struct sc_future *fs = *(struct sc_future **)cap;
    return fs[i];
}

struct sc_future sc_when_all_succeed(struct sc_future *fs, size_t n)
{
    /* Launching only attaches waiters, so it never yields: fs need not
     * outlive this call. */
    return fan_start(n, take_future, NULL, 0, false, &fs, sizeof fs);
}

/* ------------------------------------------------------------------ */
/* when_all                                                             */
/* ------------------------------------------------------------------ */

struct all;

struct all_sub {
    struct sc__waiter w;
    struct all *all;
    size_t index;
};

struct all {
    struct sc__fstate result;
    struct sc_future *fs;
    size_t pending;
    bool attaching;
    struct all_sub subs[];
};

static void all_sub_wake(struct sc__waiter *w, intptr_t value, int err)
{
    struct all_sub *sub = SC_CONTAINER_OF(w, struct all_sub, w);
    struct all *a = sub->all;
    struct sc_future r = {.value = value, .err = err, .gen = 0};
    a->fs[sub->index] = r;
    if (--a->pending == 0 && !a->attaching)
        sc__fstate_resolve(&a->result, 0, 0);
}

struct sc_future sc_when_all(struct sc_future *fs, size_t n)
{
    size_t pending = 0;
    for (size_t i = 0; i < n; i++) {
        sc__future_settle(&fs[i]);
        if (fs[i].gen)
            pending++;
    }
    if (pending == 0)
        return sc_make_ready(0);
    size_t size = sizeof(struct all) + pending * sizeof(struct all_sub);
    struct all *a = sc__pool_alloc(size);
    if (!a)
        return sc_make_error(-ENOMEM);
    sc__fstate_init(&a->result, size, 0);
    a->fs = fs;
    a->pending = pending;
    a->attaching = true;
    struct sc_future out = sc__fstate_future(&a->result);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!fs[i].gen)
            continue;
        a->subs[k] = (struct all_sub){.w = {all_sub_wake}, .all = a, .index = i};
        sc__future_attach(fs[i], &a->subs[k].w);
        k++;
    }
    a->attaching = false;
    if (a->pending == 0)
        sc__fstate_resolve(&a->result, 0, 0);
    return out;
}

/* ------------------------------------------------------------------ */
/* sleep and with_timeout                                               */
/* ------------------------------------------------------------------ */

struct sleeper {
    struct sc__fstate result;
    struct sc_timer timer;
};

static void sleeper_fire(void *arg)
{
    struct sleeper *sl = arg;
    sc__fstate_resolve(&sl->result, 0, 0);
}

struct sc_future sc_sleep(uint64_t ns)
{
    struct sleeper *sl = sc__pool_alloc(sizeof *sl);
    if (!sl)
        return sc_make_error(-ENOMEM);
    sc__fstate_init(&sl->result, sizeof *sl, 0);
    sc_timer_init(&sl->timer, sleeper_fire, sl);
    int err = sc_timer_arm_in(&sl->timer, ns);
    if (err) {
        sc__pool_free(sl, sizeof *sl);
        return sc_make_error(err);
    }
    return sc__fstate_future(&sl->result);
}

/*
 * with_timeout: the result state is allocated apart from the record, because
 * the two live differently. The result goes away once consumed; the record
 * lives until the watched future resolves, which may be long after the
 * timeout has fired.
 */
struct timeout {
    struct sc__waiter w; /* on the watched future */
    struct sc_timer timer;
    struct sc__fstate *result; /* NULL once resolved */
};

static void timeout_watched_done(struct sc__waiter *w, intptr_t value, int err)
{
    struct timeout *to = SC_CONTAINER_OF(w, struct timeout, w);
    if (to->result) {
        sc_timer_cancel(&to->timer);
        sc__fstate_resolve(to->result, value, err);
    } else if (err) {
        sc__ledger_release((uintptr_t)value); /* too late: nobody is listening */
    }
    sc__pool_free(to, sizeof *to);
}

static void timeout_fire(void *arg)
{
    struct timeout *to = arg;
    struct sc__fstate *r = to->result;
    to->result = NULL;
    struct sc_future e = sc_make_error(SC_ETIMEDOUT);
    sc__fstate_resolve(r, (intptr_t)e.ledger, e.err);
}

struct sc_future sc_with_timeout(struct sc_future f, uint64_t ns)
{
    sc__future_settle(&f);
    if (f.gen == 0)
        return f;
    struct timeout *to = sc__pool_alloc(sizeof *to);
    struct sc__fstate *r = sc__fstate_new();
    if (!to || !r) {
        if (to)
            sc__pool_free(to, sizeof *to);
        if (r)
            sc__pool_free(r, sizeof *r);
        sc_future_ignore(f);
        return sc_make_error(-ENOMEM);
    }
    to->w.wake = timeout_watched_done;
    to->result = r;
    sc_timer_init(&to->timer, timeout_fire, to);
    int err = sc_timer_arm_in(&to->timer, ns);
    if (err) {
        sc__pool_free(to, sizeof *to);
        sc__pool_free(r, sizeof *r);
        sc_future_ignore(f);
        return sc_make_error(err);
    }
    struct sc_future out = sc__fstate_future(r);
    sc__future_attach(f, &to->w);
    return out;
}
