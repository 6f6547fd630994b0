/**
 * @file sem.h
 * @brief Counting semaphores with units, FIFO waiters, timeouts, aborts and
 * breaking; sc_with_semaphore() to hold units around an operation.
 *
 * A semaphore holds a count of units. sc_sem_wait(n) takes n units, waiting
 * until they are there; sc_sem_signal(n) gives n back. The usual use is a
 * limit on concurrency ("at most 8 requests in the disk queue": a semaphore
 * of 8, each request holds 1) or on resources ("at most 64 MiB of buffers":
 * a semaphore of 64 Mi, each request holds its size).
 *
 * **Fairness is FIFO.** A wait is satisfied at once only when the units are
 * there *and nobody is waiting*; otherwise it queues behind the others. A
 * signal wakes waiters from the head for as long as the units last, and stops
 * at the first that does not fit: a big waiter at the head blocks smaller
 * ones behind it, so it cannot starve. When a waiter leaves early (timeout,
 * abort), the new head gets its chance at once.
 *
 * **The count may go negative** through sc_sem_consume() (take units without
 * waiting, e.g. for work already admitted); waits then queue until signals
 * bring it back up.
 *
 * **Breaking.** sc_sem_break(s, err) fails every waiter with @p err and every
 * later wait too; sc_sem_try_wait() then fails and signals are ignored. Use it
 * to shut a service down: whoever waits learns why.
 *
 * **When the run ends** with waiters queued, they are dropped silently (see
 * waitq.h): no continuation runs, nothing is reported. Break the semaphore
 * first if the waiters must hear about it.
 */
#ifndef SC_SEM_H
#define SC_SEM_H

#include <stdbool.h>
#include <stdint.h>

#include "core/abort.h"
#include "core/future.h"
#include "core/waitq.h"

/** @brief A semaphore. Fields are private. @ingroup ch06 */
struct sc_sem {
    int64_t count;          /**< private: units available (negative after a consume) */
    struct sc_waitq q;      /**< private: the waiters, FIFO */
    int32_t broken;         /**< private: 0, or the error every wait fails with */
    uint32_t owner;         /**< private: the owning shard, or ::SC_NO_SHARD */
    const char *break_file; /**< private: where sc_sem_break() was called */
    int break_line;         /**< private */
};

/** @brief The most units one call may take or give (and the largest count). @ingroup ch06 */
#define SC_SEM_MAX_UNITS ((uint64_t)INT64_MAX)

/**
 * @brief Prepare @p s with @p units available. May be called off a shard;
 * the semaphore then belongs to the first shard that uses it.
 * @ingroup ch06
 * @retval 0 ready
 * @retval -EINVAL @p units exceeds ::SC_SEM_MAX_UNITS (@p s is then empty)
 */
int sc_sem_init(struct sc_sem *s, uint64_t units);

/**
 * @brief Take @p n units, waiting (FIFO) until they are there.
 * @ingroup ch06
 * @return a ready future of 0 when the units are there and nobody waits
 *         (no allocation); otherwise a pending future of 0 once they were
 *         taken. Fails with the break error if @p s is or gets broken;
 *         -EINVAL if @p n exceeds ::SC_SEM_MAX_UNITS; -ENOMEM
 */
struct sc_future sc_sem_wait(struct sc_sem *s, uint64_t n);

/**
 * @brief sc_sem_wait() that gives up after @p timeout_ns (UINT64_MAX: never).
 * @ingroup ch06
 * @return as sc_sem_wait(), or ::SC_ETIMEDOUT when the units did not come in
 *         time: the waiter then left the queue and took nothing
 */
struct sc_future sc_sem_wait_for(struct sc_sem *s, uint64_t n, uint64_t timeout_ns);

/**
 * @brief sc_sem_wait() that an abort source cuts short.
 * @ingroup ch06
 * @param s the semaphore
 * @param n units to take
 * @param as the abort source (NULL: a plain wait)
 * @return as sc_sem_wait(), or -ECANCELED if @p as is requested before the
 *         units came (a source already requested fails at once, even with
 *         units available); the waiter then left the queue and took nothing
 */
struct sc_future sc_sem_wait_abortable(struct sc_sem *s, uint64_t n, struct sc_abort_source *as);

/**
 * @brief Take @p n units only if that is possible now without jumping the
 * queue (units there, nobody waiting).
 * @ingroup ch06
 * @return true if taken; false otherwise (also when broken or @p n is too big)
 */
bool sc_sem_try_wait(struct sc_sem *s, uint64_t n);

/**
 * @brief Give back @p n units and wake waiters from the head while the units
 * last. The woken waiters' continuations run later, as tasks.
 * @ingroup ch06
 * @retval 0 done (also on a broken semaphore, where it does nothing)
 * @retval -EOVERFLOW the count would exceed ::SC_SEM_MAX_UNITS (nothing changed)
 */
int sc_sem_signal(struct sc_sem *s, uint64_t n);

/**
 * @brief Take @p n units at once, without waiting, even if the count goes
 * negative. Later waits queue until signals bring it back.
 * @ingroup ch06
 * @retval 0 taken
 * @retval -EOVERFLOW the count would fall below -::SC_SEM_MAX_UNITS (nothing changed)
 */
int sc_sem_consume(struct sc_sem *s, uint64_t n);

/** @brief Units available now (negative after sc_sem_consume()). @ingroup ch06 */
int64_t sc_sem_available(const struct sc_sem *s);

/** @brief How many waiters are queued. @ingroup ch06 */
size_t sc_sem_waiters(const struct sc_sem *s);

/** @cond INTERNAL */
void sc__sem_break(struct sc_sem *s, int err, const char *file, int line);
/** @endcond */

/**
 * @brief Break @p s: every queued waiter fails with @p err (each one's error
 * recorded at the caller's file and line), and so does every later wait.
 * Breaking again changes nothing.
 * @ingroup ch06
 * @param s the semaphore
 * @param err a negative error code; 0 means ::SC_EBROKEN
 */
#define sc_sem_break(s, err) sc__sem_break((s), (err), __FILE__, __LINE__)

/**
 * @brief Wait for @p n units of @p s, run @p fn(cap, 0), and give the units
 * back when @p fn's future resolves — whether it succeeds or fails.
 * @ingroup ch06
 *
 * When the units are there at once, @p fn runs inside this call on the
 * caller's @p cap (as with sc_then() on a ready future); otherwise @p cap is
 * copied and @p fn runs later as a task. The units are held exactly while
 * @p fn's operation is in flight.
 *
 * @return @p fn's outcome; the wait's error (then @p fn never runs and no
 *         units are taken); -ENOMEM (then @p fn never runs and no units are
 *         held)
 */
struct sc_future sc_with_semaphore(struct sc_sem *s, uint64_t n, sc_then_fn fn, const void *cap,
                                   size_t cap_size);

/** @brief sc_with_semaphore() capturing @p capvar by value. @ingroup ch06 */
#define SC_WITH_SEMAPHORE(s, n, fn, capvar)                                                        \
    sc_with_semaphore((s), (n), (fn), &(capvar), sizeof(capvar))

#endif
