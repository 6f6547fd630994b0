/**
 * @file waitq.h
 * @brief The FIFO of waiting futures that every coordination primitive
 * (semaphore, condition variable, queue, pipe) embeds.
 *
 * Applications never call into a wait queue directly; it is public only
 * because the primitives embed it by value, so that they can live anywhere
 * (a static, a struct of yours, the pool) without an allocation of their own.
 *
 * What all the primitives of chapter 6 share:
 *
 * - **Shard-local.** A primitive belongs to the shard that first used it and
 *   must only be used there; use from another shard is an assertion failure.
 *   Like everything on a shard, they take no locks and no atomics.
 * - **Waiters are futures.** A call that may wait returns a future; when it
 *   must wait, one record from the shard's continuation pool holds the
 *   waiter (and its timer or abort subscription, if any). A call that can be
 *   satisfied at once returns a ready future and allocates nothing. When the
 *   record cannot be allocated, the call returns a failed future (-ENOMEM)
 *   and has no other effect.
 * - **FIFO.** Waiters are served in the order they arrived. Waiters that
 *   leave early (a timeout, an abort) leave no trace.
 * - **Wake-ups are resolutions, not calls.** Waking a waiter resolves its
 *   future; the code waiting on it runs as a task afterwards, never inside
 *   the call that woke it.
 * - **When the run ends** with waiters still queued, their futures never
 *   resolve: their continuations do not run, no error is reported for them
 *   (nothing failed), and their records are released with the shard's pool.
 *   A primitive left with waiters at the end of a run must be initialised
 *   again before a later run uses it.
 */
#ifndef SC_WAITQ_H
#define SC_WAITQ_H

#include <stddef.h>
#include <stdint.h>

/**
 * @defgroup ch06 Chapter 6: fibers and coordination
 * @brief Fibers, semaphores, gates, pipes and queues, condition variables,
 * abort sources.
 *
 * The API of chapter 6.
 */

/** @cond INTERNAL */
struct sc__cwait;
/** @endcond */

/**
 * @brief A FIFO of waiters. Embedded in the primitives; fields are private.
 * @ingroup ch06
 */
struct sc_waitq {
    struct sc__cwait *head; /**< private: the oldest waiter */
    struct sc__cwait *tail; /**< private: the newest waiter */
    size_t len;             /**< private: how many wait */
    /** private: called after a waiter left early (timeout, abort) */
    void (*on_leave)(struct sc_waitq *q);
};

/** @brief The owner id of a primitive not bound to a shard yet. @ingroup ch06 */
#define SC_NO_SHARD UINT32_MAX

#endif
