/**
 * @file cond.h
 * @brief Condition variables: wait until another task says something changed.
 *
 * On a shard no other thread can change your data between a check and a
 * wait, so a condition variable needs no mutex: check the condition, and if
 * it does not hold, wait. sc_cond_signal() wakes the oldest waiter,
 * sc_cond_broadcast() all of them; a signal with nobody waiting is lost (as
 * with pthreads), which is why the usual form is sc_cond_wait_until(), which
 * re-checks a predicate after every wake-up.
 *
 * sc_cond_break() fails every waiter, and every later wait, with an error.
 *
 * **When the run ends** with waiters queued, they are dropped silently (see
 * waitq.h): no continuation runs, nothing is reported.
 */
#ifndef SC_COND_H
#define SC_COND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/abort.h"
#include "core/future.h"
#include "core/waitq.h"

/** @brief A condition variable. Fields are private. @ingroup ch06 */
struct sc_cond {
    struct sc_waitq q;      /**< private: the waiters, FIFO */
    int32_t broken;         /**< private: 0, or the error every wait fails with */
    uint32_t owner;         /**< private: the owning shard, or ::SC_NO_SHARD */
    const char *break_file; /**< private: where sc_cond_break() was called */
    int break_line;         /**< private */
};

/** @brief A condition for sc_cond_wait_until(): true when the wait is over. @ingroup ch06 */
typedef bool (*sc_cond_pred_fn)(void *cap);

/**
 * @brief Prepare @p c. May be called off a shard.
 * @ingroup ch06
 */
void sc_cond_init(struct sc_cond *c);

/**
 * @brief Wait for the next sc_cond_signal() or sc_cond_broadcast().
 * @ingroup ch06
 * @return a pending future of 0, resolved by a signal; the break error if
 *         @p c is or gets broken; -ENOMEM
 */
struct sc_future sc_cond_wait(struct sc_cond *c);

/**
 * @brief sc_cond_wait() that gives up after @p timeout_ns (UINT64_MAX: never).
 * @ingroup ch06
 * @return as sc_cond_wait(), or ::SC_ETIMEDOUT (the waiter left the queue)
 */
struct sc_future sc_cond_wait_for(struct sc_cond *c, uint64_t timeout_ns);

/**
 * @brief sc_cond_wait() that an abort source cuts short.
 * @ingroup ch06
 * @return as sc_cond_wait(), or -ECANCELED (the waiter left the queue)
 */
struct sc_future sc_cond_wait_abortable(struct sc_cond *c, struct sc_abort_source *as);

/**
 * @brief Wait until @p pred(cap) is true: checked now, then after every
 * wake-up (a woken waiter whose predicate is still false waits again, at the
 * back of the queue).
 * @ingroup ch06
 *
 * @p pred first runs inside this call on the caller's @p cap; once the call
 * has to wait, @p cap is copied and @p pred sees the copy.
 * @return a future of 0 once @p pred held (ready when it held at once); the
 *         break error; -ENOMEM
 */
struct sc_future sc_cond_wait_until(struct sc_cond *c, sc_cond_pred_fn pred, const void *cap,
                                    size_t cap_size);

/** @brief Wake the oldest waiter, if any. @ingroup ch06 */
void sc_cond_signal(struct sc_cond *c);

/** @brief Wake every waiter queued now. @ingroup ch06 */
void sc_cond_broadcast(struct sc_cond *c);

/** @brief How many waiters are queued. @ingroup ch06 */
size_t sc_cond_waiters(const struct sc_cond *c);

/** @cond INTERNAL */
void sc__cond_break(struct sc_cond *c, int err, const char *file, int line);
/** @endcond */

/**
 * @brief Break @p c: every queued waiter fails with @p err, and so does
 * every later wait. Breaking again changes nothing.
 * @ingroup ch06
 * @param c the condition variable
 * @param err a negative error code; 0 means ::SC_EBROKEN
 */
#define sc_cond_break(c, err) sc__cond_break((c), (err), __FILE__, __LINE__)

#endif
