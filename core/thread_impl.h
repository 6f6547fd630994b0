/*
 * thread_impl.h — the private side of fibers, shared by core/thread.c (spawn,
 * stacks, counters, shutdown) and core/fiber_switch.c (the switch and await).
 * Not a public header.
 *
 * The switches are asymmetric: a fiber is only ever entered from a task
 * running on the shard's own stack (the "scheduler side"), and it only ever
 * switches back there. So at most one fiber runs per shard, and a fiber
 * never has to know about another one.
 */
#ifndef SC_THREAD_IMPL_H
#define SC_THREAD_IMPL_H

#include "core/future_impl.h"
#include "core/thread.h"

enum sc__fiber_state {
    SC__FIBER_NEW,       /* spawned; its task will enter it for the first time */
    SC__FIBER_RUNNING,   /* on the CPU */
    SC__FIBER_SUSPENDED, /* waiting (sc_await) or queued again (sc_thread_yield) */
    SC__FIBER_DONE,      /* its function returned; the stack goes back after the last switch */
};

/* One fiber. It lives at the top of its own stack. */
struct sc__fiber {
    struct sc_task task;       /* run(): switch into the fiber (fiber_switch.c) */
    struct sc__waiter w;       /* what sc_await() attaches to a pending future */
    void *sp;                  /* the saved stack pointer while it is not running */
    struct sc__fstate *result; /* the future sc_thread_spawn() returned */
    sc_thread_fn fn;
    void *cap;          /* the captured state, copied just below this struct */
    intptr_t in_value;  /* the awaited outcome, handed over by the waiter... */
    int32_t in_err;     /* ...(a ledger id in in_value when in_err != 0) */
    uint32_t state;     /* enum sc__fiber_state */
    char *lo;           /* lowest usable byte of the stack (the guard page is below) */
    size_t size;        /* usable bytes from lo up (this struct included) */
    struct sc__fiber *prev, *next; /* the shard's live fibers, for shutdown */
    void *asan_fake;    /* ASan's fake stack of this fiber while it is switched out */
    void *tsan;         /* TSan's context of this fiber */
};

#define SC__STACK_CACHE 16 /* freed stacks kept per shard */

struct sc__stack {
    char *lo;
    size_t size;
};

/* A shard's fibers: made on the shard's first spawn. */
struct sc__fibers {
    struct sc__fiber *current; /* the fiber on the CPU, or NULL */
    void *sched_sp;            /* the scheduler side's stack pointer while a fiber runs */
    struct sc__fiber *live;
    struct sc__stack cache[SC__STACK_CACHE];
    unsigned ncached;
    struct sc_thread_stats stats;
    /* the scheduler side as the sanitizers see it */
    const void *sched_lo;
    size_t sched_size;
    void *sched_fake;
    void *sched_tsan;
};

/* The context switch, in core/switch_<arch>.S. */
void sc__fiber_switch(void **save_sp, void *load_sp);
void *sc__fiber_make(void *top, void (*entry)(void *), void *arg);

/* fiber_switch.c: lay out f's first context below `top` and queue its first entry. */
void sc__fiber_start(struct sc__fiber *f, void *top);
/* thread.c: f has switched away for the last time; give its stack back. */
void sc__fiber_release(struct sc__fiber *f);

static inline struct sc__fibers *sc__fibers(void)
{
    struct sc__shard *s = sc__shard();
    return s ? s->fibers : NULL;
}

/* The sanitizers' view of contexts. ASan (with -fsanitize=address, GCC and
 * clang define __SANITIZE_ADDRESS__ or have the feature) must hear about
 * every switch to keep its stack bookkeeping right; TSan keeps a context per
 * fiber and must be told which one runs. */
#if defined(__SANITIZE_ADDRESS__)
#define SC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC__ASAN 1
#endif
#endif
#if defined(SC_TSAN) || defined(__SANITIZE_THREAD__)
#define SC__TSAN 1
#endif

#endif
