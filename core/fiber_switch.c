/*
 * fiber_switch.c — the heart of fibers: entering and leaving a fiber's
 * stack, and sc_await() built on that.
 *
 * Read core/thread_impl.h first. The whole mechanism is four moves:
 *
 *   enter   a task of the shard (the fiber's own, f->task) switches from the
 *           shard's stack into the fiber's: switch_in();
 *   leave   the fiber switches back to the task that entered it, which then
 *           returns to the reactor like any task: switch_out();
 *   await   a pending future gets a waiter that queues f->task when the
 *           future resolves; then the fiber leaves. When the task runs, the
 *           fiber is entered again, right after its switch_out();
 *   finish  the function returned: the fiber resolves its own future and
 *           leaves for the last time; the task that entered it frees the
 *           stack (a fiber cannot free the stack it stands on).
 *
 * Because every entry is a task, fibers take turns through the task queue
 * with everything else: the task quota, the simulator's seeded shuffling and
 * the trace hash see them as ordinary tasks. The stack switch itself is
 * sc__fiber_switch in switch_<arch>.S; the rest here is bookkeeping around
 * it, mostly for the sanitizers, which must hear about every switch.
 */
#include "core/thread_impl.h"

#ifdef SC__ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef SC__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* ASan: before a switch, "start" names the stack about to run (and where to
 * keep the leaving stack's fake frames; NULL when it leaves for good); after
 * it, "finish" on the arriving side says where we came from. */
#ifdef SC__ASAN
#define ASAN_START(fake_save, lo, size) __sanitizer_start_switch_fiber((fake_save), (lo), (size))
#define ASAN_FINISH(fake, lo_out, size_out)                                                        \
    __sanitizer_finish_switch_fiber((fake), (lo_out), (size_out))
#else
#define ASAN_START(fake_save, lo, size)     ((void)(fake_save), (void)(lo), (void)(size))
#define ASAN_FINISH(fake, lo_out, size_out) ((void)(fake), (void)(lo_out), (void)(size_out))
#endif

/* The scheduler side enters fiber f. Returns when f leaves again. */
static void switch_in(struct sc__fibers *fs, struct sc__fiber *f)
{
    fs->current = f;
    fs->stats.switches++;
#ifdef SC__TSAN
    fs->sched_tsan = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(f->tsan, 0);
#endif
    ASAN_START(&fs->sched_fake, f->lo, f->size);
    sc__fiber_switch(&fs->sched_sp, f->sp);
    ASAN_FINISH(fs->sched_fake, NULL, NULL);
    fs->current = NULL;
}

/* Fiber f leaves for the scheduler side. Returns when f is entered again
 * (never, when f is done). */
static void switch_out(struct sc__fibers *fs, struct sc__fiber *f)
{
    fs->stats.switches++;
#ifdef SC__TSAN
    __tsan_switch_to_fiber(fs->sched_tsan, 0);
#endif
    ASAN_START(f->state == SC__FIBER_DONE ? NULL : &f->asan_fake, fs->sched_lo, fs->sched_size);
    sc__fiber_switch(&f->sp, fs->sched_sp);
    ASAN_FINISH(f->asan_fake, &fs->sched_lo, &fs->sched_size);
}

/* The bottom of every fiber's stack (sc__fiber_start in the .S calls it). */
static void fiber_entry(void *arg)
{
    struct sc__fiber *f = arg;
    struct sc__fibers *fs = sc__fibers();
    ASAN_FINISH(NULL, &fs->sched_lo, &fs->sched_size); /* first arrival: no fake frames yet */
    f->state = SC__FIBER_RUNNING;
    struct sc_future r = f->fn(f->cap);
    sc__future_forward(r, f->result);
    f->state = SC__FIBER_DONE;
    switch_out(fs, f);
    SC_ASSERT(0, "a finished fiber was entered again");
}

/* The fiber's task: enter it (the first time, or after a wait). */
static void fiber_task(struct sc_task *t)
{
    struct sc__fiber *f = SC_CONTAINER_OF(t, struct sc__fiber, task);
    struct sc__fibers *fs = sc__fibers();
    SC_ASSERT(fs->current == NULL, "a fiber's task ran inside another fiber");
    switch_in(fs, f);
    if (f->state == SC__FIBER_DONE)
        sc__fiber_release(f);
}

void sc__fiber_start(struct sc__fiber *f, void *top)
{
    f->sp = sc__fiber_make(top, fiber_entry, f);
    f->state = SC__FIBER_NEW;
    f->task.run = fiber_task;
    sc__task_enqueue(sc__shard(), &f->task); /* into f->task.group, set at spawn */
}

/* The running fiber; asserts when there is none. */
static struct sc__fiber *self(const char *who)
{
    struct sc__fibers *fs = sc__fibers();
    SC_ASSERT(fs && fs->current, "%s called outside a fiber (spawn one with sc_thread_spawn)", who);
    return fs->current;
}

static void suspend(struct sc__fiber *f)
{
    f->state = SC__FIBER_SUSPENDED;
    switch_out(sc__fibers(), f);
    f->state = SC__FIBER_RUNNING;
}

/* The awaited future resolved: keep its outcome, queue the fiber. */
static void await_wake(struct sc__waiter *w, intptr_t value, int err)
{
    struct sc__fiber *f = SC_CONTAINER_OF(w, struct sc__fiber, w);
    /* LAB 06 BEGIN: keep the outcome in the fiber; queue its task (in its own group) */
    f->in_value = value;
    f->in_err = err;
    sc__task_enqueue(sc__shard(), &f->task); /* its own group, not the waker's */
    /* LAB 06 END: (void)f, (void)value, (void)err; */
}

int sc_await(struct sc_future fut, intptr_t *value)
{
    struct sc__fiber *f = self("sc_await()");
    sc__future_settle(&fut);
    if (fut.gen != 0) { /* pending: wait for it off the CPU */
        /* LAB 06 BEGIN: attach the fiber's waiter, suspend, then rebuild fut from the outcome */
        f->w.wake = await_wake;
        sc__future_attach(fut, &f->w);
        suspend(f);
        fut =
            f->in_err ? sc__failed((uintptr_t)f->in_value, f->in_err) : sc_make_ready(f->in_value);
        /* LAB 06 END: (void)suspend, (void)await_wake; fut = sc_make_error(SC_ELAB_TODO); */
    }
    return sc_future_get(fut, value); /* an error counts as handled */
}

void sc_thread_yield(void)
{
    struct sc__fiber *f = self("sc_thread_yield()");
    if (!sc_need_preempt())
        return;
    sc__task_enqueue(sc__shard(), &f->task);
    suspend(f);
}
