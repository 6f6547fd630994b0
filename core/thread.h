/**
 * @file thread.h
 * @brief Fibers (sc_thread): straight-line code over futures. A fiber has a
 * stack of its own, and sc_await() suspends only that fiber until a future
 * is available.
 *
 * A continuation chain splits a function at every wait: each step is a
 * function of its own, and state crosses from step to step in captures. A
 * fiber keeps the function whole: its locals live on its own stack, and
 * `sc_await(f, &v)` parks the fiber (not the shard) until @p f resolves,
 * while the shard runs other tasks. It costs a stack (128 KiB by default,
 * mostly untouched, so mostly never backed by memory) and a switch per wait.
 *
 * Fibers are cooperative and belong to the shard that spawned them; they
 * never move. A fiber is resumed by a task in the shard's queue, so it takes
 * its turn like any continuation, under the same task quota (and, in the
 * simulator, the same seeded shuffling). Between two waits a fiber runs
 * without interruption: a long computation must call sc_thread_yield() now
 * and then, as a loop calls sc_need_preempt().
 *
 * The stack. Each fiber's stack has a guard page below it: running off the
 * end (too deep a recursion) is a SIGSEGV at that page, never a silent
 * write over other memory. One page of guard stops frames smaller than a
 * page; a single frame bigger than that (a large local array) could step
 * over it, unless the compiler probes big frames (-fstack-clash-protection).
 * The fiber's control block
 * and its captured state sit at the top of its stack, so they count against
 * its size; the real world's quota and stall signals may also land on a
 * fiber's stack, so leave a few KiB spare.
 *
 * Shutdown. When the run ends while a fiber is still suspended, its stack
 * is freed without running the rest of its function (no cleanup code in it
 * runs), its own future never resolves, and a failed future it still held
 * unconsumed is reported as never handled, like any other at shutdown.
 */
#ifndef SC_THREAD_H
#define SC_THREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/future.h"
#include "core/sched.h"

/* Fibers (stackful threads on a shard) and await: straight-line code over
 * futures. sc_thread_spawn() starts a fiber, sc_await() waits inside it.
 * The Doxygen group ch06 is defined in core/waitq.h. */

/** @brief Stack size of a fiber when none is asked for: 128 KiB. @ingroup ch06 */
#define SC_THREAD_STACK_DEFAULT (128u * 1024u)
/** @brief Smallest stack size sc_thread_spawn() accepts: 16 KiB. @ingroup ch06 */
#define SC_THREAD_STACK_MIN (16u * 1024u)
/** @brief Largest stack size sc_thread_spawn() accepts: 1 GiB. @ingroup ch06 */
#define SC_THREAD_STACK_MAX (1024u * 1024u * 1024u)

/** @brief Options of a new fiber; a zeroed struct (or NULL) means the defaults. @ingroup ch06 */
struct sc_thread_attr {
    size_t
        stack_size; /**< bytes of stack, rounded up to whole pages; 0: ::SC_THREAD_STACK_DEFAULT */
    /** the scheduling group the fiber runs in (every slice of it, after
     * every await); NULL: the group of the code that spawns it */
    const struct sc_sched_group *group;
};

/**
 * @brief A fiber's function: runs on the fiber's stack, with its captured
 * state. Its future (ready, failed, or even pending) becomes the fiber's.
 * @ingroup ch06
 *
 * To fail the fiber, return sc_make_error(err).
 */
typedef struct sc_future (*sc_thread_fn)(void *cap);

/**
 * @brief Start a fiber running @p fn(cap) on a stack of its own, on this shard.
 * @ingroup ch06
 *
 * The fiber starts as a task (later, not inside this call). The captured
 * state is copied onto the fiber's stack (capture by value), so @p cap need
 * not outlive this call. If this call returns an error, @p fn never runs.
 * The fiber belongs to one scheduling group for its whole life (chapter 7):
 * the spawner's, or the one @p attr names; a future that wakes it from
 * sc_await() does not move it to the waker's group.
 *
 * @param fn the fiber's function
 * @param cap captured state, copied; may be NULL when @p cap_size is 0
 * @param cap_size bytes of captured state (at most half the stack)
 * @param attr options, or NULL for the defaults
 * @return a future of @p fn's outcome; it fails with
 *         -EINVAL if @p fn is NULL, the stack size is outside
 *         [::SC_THREAD_STACK_MIN, ::SC_THREAD_STACK_MAX], @p cap_size is too big
 *         or the attr's group does not exist;
 *         -ENOMEM if no stack or no shared state could be had
 */
struct sc_future sc_thread_spawn(sc_thread_fn fn, const void *cap, size_t cap_size,
                                 const struct sc_thread_attr *attr);

/** @brief sc_thread_spawn() capturing the variable @p capvar by value. @ingroup ch06 */
#define SC_THREAD_SPAWN(fn, capvar, attr) sc_thread_spawn((fn), &(capvar), sizeof(capvar), (attr))

/**
 * @brief Wait, inside a fiber, for @p f; return its outcome.
 * @ingroup ch06
 *
 * If @p f is available now, this returns at once, without a switch (and
 * without yielding: see sc_thread_yield()). Otherwise the fiber is suspended
 * and the shard runs other work until @p f resolves; then the fiber is
 * queued as a task and continues from here. @p f is consumed either way, and
 * an error returned here counts as handled.
 *
 * Calling it outside a fiber is a programming error: it asserts (a
 * continuation or an app's main function cannot be suspended; spawn a fiber).
 *
 * @param f the future to wait for (consumed)
 * @param value where the value goes on success; may be NULL
 * @return 0, or @p f's negative error code
 */
int sc_await(struct sc_future f, intptr_t *value);

/** @brief True when the caller runs inside a fiber (where sc_await() may be used). @ingroup ch06 */
bool sc_thread_running(void);

/**
 * @brief Let the shard run other work if this fiber has used up the task
 * quota (sc_need_preempt()); otherwise return at once.
 * @ingroup ch06
 *
 * A fiber that computes for long without waiting calls this in its loop,
 * as a continuation loop checks sc_need_preempt(). It asserts outside a fiber.
 */
void sc_thread_yield(void);

/**
 * @brief Bytes of stack left below the caller's frame before the guard
 * page; 0 outside a fiber.
 * @ingroup ch06
 */
size_t sc_thread_stack_left(void);

/** @brief Fiber counters of one shard. @ingroup ch06 */
struct sc_thread_stats {
    uint64_t spawned;       /**< fibers started so far */
    uint64_t finished;      /**< fibers whose function returned */
    uint64_t live;          /**< fibers that exist now (spawned, not finished) */
    uint64_t switches;      /**< stack switches, both directions */
    uint64_t stacks_mapped; /**< stacks taken from the system (the rest came from the cache) */
    uint64_t stacks_cached; /**< freed stacks kept for the next spawn, now */
};

/** @brief Copy this shard's fiber counters into @p out. @ingroup ch06 */
void sc_thread_stats(struct sc_thread_stats *out);

#endif
