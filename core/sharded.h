/**
 * @file sharded.h
 * @brief Sharded services (one instance per shard) and foreign pointers
 * (objects that must die on the shard that made them).
 */
#ifndef SC_SHARDED_H
#define SC_SHARDED_H

#include <stddef.h>

#include "core/future.h"

/**
 * @brief What a sharded service is made of. Every function runs on the shard
 * that owns the instance it is given.
 * @ingroup ch04
 */
struct sc_sharded_ops {
    size_t size; /**< bytes of one instance (zeroed before start) */
    /** Start one instance (may be NULL); a failure fails sc_sharded_start(). */
    struct sc_future (*start)(void *inst, unsigned shard, void *arg);
    /** Stop one instance (may be NULL); runs after its in-flight calls ended. */
    struct sc_future (*stop)(void *inst);
};

/** @cond INTERNAL */
struct sc__sharded_slot;
/** @endcond */

/**
 * @brief A service with one instance on every shard. Fields are private.
 * @ingroup ch04
 */
struct sc_sharded {
    const struct sc_sharded_ops *ops; /**< private */
    void *arg;                        /**< private: passed to start */
    unsigned n;                       /**< private: shards when started */
    struct sc__sharded_slot *slots;   /**< private: one per shard, each touched by its shard */
};

/** @brief A call on one instance: runs on the instance's shard. @ingroup ch04 */
typedef struct sc_future (*sc_sharded_fn)(void *inst, void *cap);

/**
 * @brief Create and start an instance on every shard.
 * @ingroup ch04
 * @param s the container (caller-owned; must outlive sc_sharded_stop())
 * @param ops the service; @p ops must stay valid until stopped
 * @param arg passed to every ops->start
 * @return future of 0 when every instance started; the first error (then
 *         the instances that did start are stopped again); -ENOMEM
 */
struct sc_future sc_sharded_start(struct sc_sharded *s, const struct sc_sharded_ops *ops,
                                  void *arg);

/**
 * @brief This shard's instance, or NULL if the service is not running here.
 * @ingroup ch04
 */
void *sc_sharded_local(const struct sc_sharded *s);

/**
 * @brief Run @p fn(instance, copy of cap) on shard @p shard's instance.
 * @ingroup ch04
 * @return fn's outcome; -EINVAL for a bad shard; -ESHUTDOWN if the service is
 *         stopping or stopped there (fn never runs)
 */
struct sc_future sc_sharded_invoke_on(struct sc_sharded *s, unsigned shard, sc_sharded_fn fn,
                                      const void *cap, size_t cap_size);

/**
 * @brief Run @p fn on every shard's instance, concurrently.
 * @ingroup ch04
 * @return future of 0, or the first error
 */
struct sc_future sc_sharded_invoke_on_all(struct sc_sharded *s, sc_sharded_fn fn, const void *cap,
                                          size_t cap_size);

/**
 * @brief Stop the service: each shard refuses new calls, waits for its
 * in-flight calls, runs ops->stop and frees its instance.
 * @ingroup ch04
 * @return future of 0 (or the first stop error) once every shard is done
 */
struct sc_future sc_sharded_stop(struct sc_sharded *s);

/**
 * @brief A pointer to an object owned by one shard, which may travel to
 * others; releasing it anywhere destroys the object on its owner.
 * @ingroup ch04
 */
struct sc_foreign_ptr {
    void *ptr;                  /**< the object (read it only as the owner allows) */
    unsigned owner;             /**< the shard that made it */
    void (*destroy)(void *ptr); /**< runs on the owner */
};

/**
 * @brief Wrap @p ptr, owned by the calling shard, destroyed by @p destroy.
 * @ingroup ch04
 */
struct sc_foreign_ptr sc_foreign_ptr_make(void *ptr, void (*destroy)(void *ptr));

/**
 * @brief Release @p fp from any shard: @p fp->destroy runs on the owner (at
 * once if that is the calling shard). @p fp is emptied.
 * @ingroup ch04
 * @return future of 0 once destroyed; -EINVAL for an empty pointer; -ENOMEM
 */
struct sc_future sc_foreign_ptr_release(struct sc_foreign_ptr *fp);

#endif
