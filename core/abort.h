/**
 * @file abort.h
 * @brief Abort sources: one place to say "stop", delivered to every waiter
 * that subscribed to it.
 *
 * An abort source is a one-shot flag with a list of subscriptions. Code that
 * may wait a long time (a sleep, a semaphore wait, your own operation)
 * subscribes a callback; sc_abort_request() sets the flag and runs every
 * subscribed callback once, in subscription order, inside the call. The
 * waits built in (sc_sleep_abortable(), sc_sem_wait_abortable(),
 * sc_cond_wait_abortable()) then fail with -ECANCELED.
 *
 * Subscriptions are intrusive: the caller owns the struct sc_abort_sub (in
 * its own record, usually), so subscribing never allocates and never fails
 * for want of memory.
 *
 * Shard-local, like every primitive of chapter 6 (see waitq.h). When the run
 * ends, subscriptions still linked are simply forgotten with their owners'
 * memory; nothing is called.
 */
#ifndef SC_ABORT_H
#define SC_ABORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/future.h"
#include "core/waitq.h"

struct sc_abort_source;

/** @brief Called once when the abort is requested. @ingroup ch06 */
typedef void (*sc_abort_fn)(void *arg);

/**
 * @brief One subscription to an abort source. Owned by the subscriber; fields
 * are private.
 * @ingroup ch06
 */
struct sc_abort_sub {
    struct sc_abort_sub *prev;   /**< private: links in the source's list */
    struct sc_abort_sub *next;   /**< private */
    struct sc_abort_source *src; /**< private: NULL when not subscribed */
    sc_abort_fn fn;              /**< private */
    void *arg;                   /**< private */
};

/** @brief An abort source. Fields are private. @ingroup ch06 */
struct sc_abort_source {
    struct sc_abort_sub *head; /**< private: subscriptions, oldest first */
    struct sc_abort_sub *tail; /**< private */
    uint32_t owner;            /**< private: the owning shard, or ::SC_NO_SHARD */
    bool requested;            /**< private */
};

/**
 * @brief Prepare @p as: not requested, no subscriptions. May be called off a
 * shard; the source then belongs to the first shard that uses it.
 * @ingroup ch06
 */
void sc_abort_init(struct sc_abort_source *as);

/**
 * @brief Request the abort: set the flag, then run every subscription's
 * callback once, oldest first, each after it was unsubscribed. Callbacks may
 * unsubscribe others (those then do not run) and may not subscribe new ones
 * (sc_abort_subscribe() refuses once requested). A second request does
 * nothing.
 * @ingroup ch06
 */
void sc_abort_request(struct sc_abort_source *as);

/** @brief True once sc_abort_request() was called on @p as. @ingroup ch06 */
bool sc_abort_requested(const struct sc_abort_source *as);

/**
 * @brief Subscribe @p fn(@p arg) to @p as, through @p sub (owned by the
 * caller, which must keep it alive until it is unsubscribed or has fired).
 * @ingroup ch06
 * @retval 0 subscribed
 * @retval -ECANCELED the abort was already requested; @p fn never runs
 * @retval -EBUSY @p sub is subscribed already (to this or another source)
 */
int sc_abort_subscribe(struct sc_abort_source *as, struct sc_abort_sub *sub, sc_abort_fn fn,
                       void *arg);

/**
 * @brief Remove a subscription; its callback will not run. Safe on a
 * subscription that fired or was never made (sc_abort_sub_init()).
 * @ingroup ch06
 * @return true if it was subscribed
 */
bool sc_abort_unsubscribe(struct sc_abort_sub *sub);

/**
 * @brief Mark @p sub as not subscribed (so that sc_abort_unsubscribe() on it
 * is harmless).
 * @ingroup ch06
 */
void sc_abort_sub_init(struct sc_abort_sub *sub);

/**
 * @brief sc_sleep() that an abort cuts short.
 * @ingroup ch06
 * @param ns nanoseconds to sleep (the shard's clock; UINT64_MAX: until the abort)
 * @param as the abort source to listen to; NULL for a plain sleep
 * @return a future of 0 after @p ns; -ECANCELED if @p as was requested before
 *         (at once) or during the sleep (then the timer is cancelled);
 *         -ENOMEM
 */
struct sc_future sc_sleep_abortable(uint64_t ns, struct sc_abort_source *as);

#endif
