/**
 * @file reactor.h
 * @brief The per-shard reactor: tasks, timers, pollers, preemption, and the
 * clock and randomness seams.
 *
 * A shard runs one loop: fire expired timers, run queued tasks until the
 * queue is empty or the task quota is spent, run pollers, and when there is
 * nothing to do, sleep until the next timer (virtual time jumps there in the
 * simulator). Everything in this header belongs to the calling shard; none of
 * it may be touched from another thread.
 */
#ifndef SC_REACTOR_H
#define SC_REACTOR_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * @brief A unit of work in a shard's task queues. Embed it in your own
 * struct and recover the struct in @p run (see ::SC_CONTAINER_OF).
 * @ingroup ch03
 *
 * Every task runs in a scheduling group (core/sched.h), recorded in @p group
 * when it is queued: sc_task_schedule() takes the group of the code running
 * now, sc_task_schedule_in() the one you name.
 */
struct sc_task {
    struct sc_task *next;              /**< private: queue link */
    void (*run)(struct sc_task *self); /**< called once per sc_task_schedule() */
    uint32_t seq;                      /**< private: scheduling order (wraps), for traces */
    uint32_t group; /**< read-only: its scheduling group's id, set when it is queued */
};

/** @brief The struct of type @p type whose member @p member is at @p ptr. @ingroup ch03 */
#define SC_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/**
 * @brief Queue @p t at the tail of this shard's task queue for the current
 * scheduling group. It runs after the tasks of its group queued before it
 * (unless the simulator shuffles the queue on purpose); groups share the CPU
 * by their shares (core/sched.h; with only "main", that is one FIFO queue).
 * @ingroup ch03
 */
void sc_task_schedule(struct sc_task *t);

/** @brief Timer callback. @ingroup ch03 */
typedef void (*sc_timer_fn)(void *arg);

/**
 * @brief A one-shot timer owned by the caller; the reactor keeps it in a
 * binary min-heap ordered by (deadline, arming order).
 * @ingroup ch03
 *
 * Arm and cancel cost O(log n) in the number of armed timers. Timers with the
 * same deadline fire in the order they were armed; a cancelled timer never
 * fires. The callback runs on the reactor (like a task) after the timer has
 * been disarmed, so it may re-arm its own timer.
 */
struct sc_timer {
    uint64_t deadline; /**< private: absolute ns on the shard clock */
    uint64_t seq;      /**< private: arming order, breaks deadline ties */
    uint32_t index;    /**< private: position in the heap, SC_TIMER_IDLE or SC_TIMER_EXPIRING */
    uint32_t group;    /**< private: the scheduling group that armed it; the callback runs in it */
    struct sc_timer *next; /**< private: links in the batch of expired timers */
    struct sc_timer *prev; /**< private */
    sc_timer_fn fn;        /**< private */
    void *arg;             /**< private */
};

/** @brief Heap position of a timer that is not armed. @ingroup ch03 */
#define SC_TIMER_IDLE UINT32_MAX
/** @brief Position of a timer that has expired and fires later in this reactor turn. @ingroup ch03
 */
#define SC_TIMER_EXPIRING (UINT32_MAX - 1)

/**
 * @brief Prepare @p t to call @p fn(@p arg) when it fires. Does not arm it.
 * @ingroup ch03
 */
void sc_timer_init(struct sc_timer *t, sc_timer_fn fn, void *arg);

/**
 * @brief Arm @p t to fire at the absolute time @p deadline (sc_now() clock).
 * A deadline in the past fires on the next reactor turn. The callback runs in
 * the scheduling group that was current here (what it schedules inherits it).
 * @ingroup ch03
 * @retval 0 armed
 * @retval -EBUSY already armed (cancel it first)
 * @retval -ENOMEM the timer heap could not grow; @p t stays unarmed and its
 *         callback never runs
 */
int sc_timer_arm(struct sc_timer *t, uint64_t deadline);

/**
 * @brief Arm @p t to fire @p delay ns from now.
 * @ingroup ch03
 * @retval 0 armed
 * @retval -EBUSY already armed
 * @retval -ENOMEM as for sc_timer_arm()
 */
int sc_timer_arm_in(struct sc_timer *t, uint64_t delay);

/**
 * @brief Disarm @p t. Its callback will not run.
 * @ingroup ch03
 * @return true if it was armed
 */
bool sc_timer_cancel(struct sc_timer *t);

/** @brief True while @p t is armed. @ingroup ch03 */
bool sc_timer_armed(const struct sc_timer *t);

/** @brief Number of timers armed on this shard. @ingroup ch03 */
size_t sc_timer_count(void);

/**
 * @brief A poller: called once per reactor turn; returns true if it found work.
 * @ingroup ch03
 */
typedef bool (*sc_poll_fn)(void *arg);

/**
 * @brief Register a poller on this shard.
 * @ingroup ch03
 * @return a handle >= 0 for sc_poller_remove(); -ENOMEM
 */
int sc_poller_add(sc_poll_fn fn, void *arg);

/**
 * @brief Remove a poller registered with sc_poller_add().
 * @ingroup ch03
 * @retval 0 removed
 * @retval -ENOENT no such poller
 */
int sc_poller_remove(int handle);

/** @cond INTERNAL */
extern __thread volatile sig_atomic_t sc__preempt __attribute__((tls_model("initial-exec")));
bool sc__need_preempt_slow(void);
void sc__tsan_poll_quota(void);
/** @endcond */

/**
 * @brief True when the running task should yield: its shard's task quota is
 * spent (or, in the simulator, the seed says to preempt early).
 * @ingroup ch03
 *
 * In the real world this reads one thread-local word that a timer signal
 * sets every quota period: no system call, no clock read.
 */
static inline bool sc_need_preempt(void)
{
#ifdef SC_TSAN
    /* TSan holds signals back while a thread runs code it does not
     * intercept, so a busy loop would never see the quota tick: TSan builds
     * read the clock here instead. */
    sc__tsan_poll_quota();
#endif
    return __builtin_expect(sc__preempt != 0, 0) && sc__need_preempt_slow();
}

/**
 * @brief Current time in ns on the shard's clock: CLOCK_MONOTONIC in the real
 * world, virtual time in the simulator (starts at 0).
 * @ingroup ch03
 */
uint64_t sc_now(void);

/**
 * @brief 64 random bits from the shard's stream: seeded from getrandom() in
 * the real world, derived from `--seed` in the simulator.
 * @ingroup ch03
 */
uint64_t sc_random(void);

/** @brief A uniformly random integer in [0, @p bound); 0 if @p bound is 0. @ingroup ch03 */
uint64_t sc_random_below(uint64_t bound);

/** @brief True if this shard runs in the simulator. @ingroup ch03 */
bool sc_is_simulated(void);

/** @brief The seed of this run (the simulator's, or the one drawn in the real world). @ingroup ch03
 */
uint64_t sc_seed(void);

/**
 * @brief Mix @p event into the run's trace hash. Two simulator runs with the
 * same seed make the same calls in the same order, hence the same hash.
 * @ingroup ch03
 */
void sc_trace(uint64_t event);

/** @brief The trace hash so far. @ingroup ch03 */
uint64_t sc_trace_hash(void);

/** @brief Counters of one shard's reactor. @ingroup ch03 */
struct sc_reactor_stats {
    uint64_t tasks_run;        /**< tasks run so far */
    uint64_t timers_fired;     /**< timer callbacks run */
    uint64_t polls;            /**< reactor turns */
    uint64_t sleeps;           /**< times the shard went idle */
    uint64_t preemptions;      /**< task batches cut short by the quota */
    uint64_t stalls;           /**< stall reports (task ran past the threshold) */
    uint64_t tasks_queued;     /**< tasks waiting now */
    uint64_t pool_bytes;       /**< bytes held by the continuation pool */
    uint64_t pool_allocs;      /**< live pool allocations */
    uint64_t unhandled_errors; /**< failed futures reported as never handled */
};

/** @brief Copy this shard's counters into @p out. @ingroup ch03 */
void sc_reactor_stats(struct sc_reactor_stats *out);

#endif
