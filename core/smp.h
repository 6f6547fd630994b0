/**
 * @file smp.h
 * @brief Many shards: who am I, how many are we, and running work on another
 * shard with its result coming back.
 *
 * Shards share nothing; crossing to another shard is always an explicit
 * message. sc_smp_submit_to() copies the captured state into a message, the
 * target shard runs the function, and the outcome travels back to the
 * caller's shard, where the returned future resolves. Messages go through one
 * single-producer single-consumer ring per ordered pair of shards.
 */
#ifndef SC_SMP_H
#define SC_SMP_H

#include <stddef.h>

#include "core/future.h"

/**
 * @defgroup ch04 Chapter 4: shared-nothing SMP
 * @brief Shards, cross-shard queues, submit_to, sharded services, foreign pointers.
 *
 * The API of chapter 4 (see the page "4. Shared-nothing SMP").
 */

/** @brief The calling shard's id, in [0, sc_shard_count()). @ingroup ch04 */
unsigned sc_this_shard(void);

/** @brief How many shards this run has (`--smp`). @ingroup ch04 */
unsigned sc_shard_count(void);

/**
 * @brief Function run on another shard: returns a future whose outcome goes
 * back to the caller. @p cap is the message's copy of the captured state (the
 * caller's own, when the call stays on the calling shard).
 * @ingroup ch04
 */
typedef struct sc_future (*sc_smp_fn)(void *cap);

/**
 * @brief Run @p fn(cap) on shard @p shard; the returned future resolves on
 * the calling shard with @p fn's outcome.
 * @ingroup ch04
 *
 * The captured state is copied into the message (capture by value); it must
 * not point at the caller's shard-local objects unless the callee treats them
 * as read-only and the caller keeps them alive. An error made on the other
 * shard arrives with the file and line where it was made. Submitting to the
 * calling shard runs @p fn at once on the caller's @p cap (no copy), like
 * sc_then() on a ready future.
 * @return the outcome of @p fn; -EINVAL if @p shard is out of range (then
 *         @p fn never runs); -ENOMEM if the message could not be allocated
 */
struct sc_future sc_smp_submit_to(unsigned shard, sc_smp_fn fn, const void *cap, size_t cap_size);

/**
 * @brief Run @p fn(cap) on every shard (this one included), concurrently.
 * @ingroup ch04
 * @return future of 0 when all succeeded, else the first error
 */
struct sc_future sc_smp_invoke_on_all(sc_smp_fn fn, const void *cap, size_t cap_size);

/**
 * @brief Run @p fn(cap) on every shard but this one, concurrently.
 * @ingroup ch04
 * @return future of 0 when all succeeded, else the first error
 */
struct sc_future sc_smp_invoke_on_others(sc_smp_fn fn, const void *cap, size_t cap_size);

/**
 * @brief Fold one value from every shard: @p map(cap) runs on each shard,
 * @p reduce runs on the calling shard as values arrive.
 * @ingroup ch04
 * @return future of the final accumulator, or the first error
 */
struct sc_future sc_smp_map_reduce(sc_smp_fn map, intptr_t (*reduce)(intptr_t acc, intptr_t v),
                                   intptr_t init, const void *cap, size_t cap_size);

/** @brief sc_smp_submit_to() capturing @p capvar by value. @ingroup ch04 */
#define SC_SUBMIT_TO(shard, fn, capvar) sc_smp_submit_to((shard), (fn), &(capvar), sizeof(capvar))

/** @brief Cross-shard counters of the calling shard. @ingroup ch04 */
struct sc_smp_stats {
    unsigned long long sent;       /**< messages sent to other shards */
    unsigned long long received;   /**< messages received and run */
    unsigned long long batches;    /**< ring publications (each makes a batch visible) */
    unsigned long long overflowed; /**< messages queued locally because a ring was full */
    unsigned long long wakeups;    /**< times this shard had to wake a sleeping shard */
};

/** @brief Copy the calling shard's cross-shard counters into @p out. @ingroup ch04 */
void sc_smp_stats(struct sc_smp_stats *out);

#endif
