/**
 * @file ring.h
 * @brief A single-producer single-consumer ring of pointers, with batched
 * publication on both sides: the building block of cross-shard queues.
 *
 * One thread (the producer) pushes, one thread (the consumer) pops; no locks,
 * and each side writes only its own index. The producer stages items and
 * makes them visible with one release store when it publishes (a batch); the
 * consumer takes what it knows to be visible (it looks at the producer's index
 * again only when it believes the ring empty) and frees their slots with one
 * release store. Each side keeps a cached copy of the other's index, so in
 * the common case neither touches the other's cache line at all.
 */
#ifndef SC_RING_H
#define SC_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/**
 * @brief An SPSC ring. Initialise with sc_ring_init(); fields are private.
 * @ingroup ch04
 */
struct sc_ring {
    /* the consumer's line */
    _Alignas(64) _Atomic size_t head; /**< next slot to read; written by the consumer */
    size_t tail_seen;                 /**< consumer's cached copy of tail */
    /* the producer's line */
    _Alignas(64) _Atomic size_t tail; /**< end of the published items; written by the producer */
    size_t staged;                    /**< end of the staged items (>= tail), producer-private */
    size_t head_seen;                 /**< producer's cached copy of head */
    /* read-only after init */
    _Alignas(64) size_t mask; /**< capacity - 1 */
    void **slots;             /**< capacity entries */
};

/**
 * @brief Prepare @p r with room for @p capacity items (a power of two >= 2).
 * @ingroup ch04
 * @retval 0 ready
 * @retval -EINVAL capacity is not a power of two >= 2
 * @retval -ENOMEM the slots could not be allocated
 */
int sc_ring_init(struct sc_ring *r, size_t capacity);

/** @brief Free the slots of @p r (its items are the caller's). @ingroup ch04 */
void sc_ring_destroy(struct sc_ring *r);

/**
 * @brief Producer: stage @p item. It becomes visible at the next sc_ring_publish().
 * @ingroup ch04
 * @return false if the ring is full (nothing staged); the caller keeps the item
 */
bool sc_ring_push(struct sc_ring *r, void *item);

/**
 * @brief Producer: make every staged item visible to the consumer.
 * @ingroup ch04
 * @return true if anything new was published
 */
bool sc_ring_publish(struct sc_ring *r);

/** @brief Producer: items staged but not yet published. @ingroup ch04 */
size_t sc_ring_staged(const struct sc_ring *r);

/**
 * @brief Consumer: take up to @p max published items into @p out, oldest
 * first, and free their slots.
 * @ingroup ch04
 * @return how many items were taken (0 when none is visible)
 */
size_t sc_ring_pop(struct sc_ring *r, void **out, size_t max);

/**
 * @brief Either side: true if published items are waiting for the consumer.
 * A hint when called by the producer (the consumer may be taking them).
 * @ingroup ch04
 */
bool sc_ring_readable(const struct sc_ring *r);

/** @brief The ring's capacity. @ingroup ch04 */
static inline size_t sc_ring_capacity(const struct sc_ring *r)
{
    return r->mask + 1;
}

#endif
