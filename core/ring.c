/*
 * ring.c — the SPSC ring (see ring.h).
 *
 * Indices grow forever (size_t does not wrap in practice) and are reduced
 * with the mask only to address a slot, so "full" is tail - head == capacity
 * and "empty" is tail == head, with no wasted slot.
 *
 * Memory ordering, the whole argument:
 *   - the producer writes slots, then stores tail with release;
 *     the consumer loads tail with acquire, then reads those slots;
 *   - the consumer reads slots, then stores head with release;
 *     the producer loads head with acquire, then overwrites those slots.
 * Each index has one writer, so plain loads of one's own index are fine.
 *
 * Lab 04 asks you to write push, publish and pop.
 */
#include <errno.h>
#include <stdlib.h>

#include "core/ring.h"

int sc_ring_init(struct sc_ring *r, size_t capacity)
{
    if (capacity < 2 || (capacity & (capacity - 1)))
        return -EINVAL;
    r->slots = calloc(capacity, sizeof *r->slots);
    if (!r->slots)
        return -ENOMEM;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_seen = r->staged = r->head_seen = 0;
    r->mask = capacity - 1;
    return 0;
}

void sc_ring_destroy(struct sc_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

bool sc_ring_push(struct sc_ring *r, void *item)
{
    /* LAB 04 BEGIN: stage item; refresh head_seen only when the ring looks full */
    if (r->staged - r->head_seen > r->mask) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (r->staged - r->head_seen > r->mask)
            return false;
    }
    r->slots[r->staged & r->mask] = item;
    r->staged++;
    return true;
    /* LAB 04 END: return false; */
}

bool sc_ring_publish(struct sc_ring *r)
{
    /* LAB 04 BEGIN: one release store makes the whole batch visible */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (r->staged == tail)
        return false;
    atomic_store_explicit(&r->tail, r->staged, memory_order_release);
    return true;
    /* LAB 04 END: return false; */
}

size_t sc_ring_staged(const struct sc_ring *r)
{
    return r->staged - atomic_load_explicit(&r->tail, memory_order_relaxed);
}

size_t sc_ring_pop(struct sc_ring *r, void **out, size_t max)
{
    /* LAB 04 BEGIN: take what is visible (refresh tail_seen when it looks empty) */
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (head == r->tail_seen) {
        r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (head == r->tail_seen)
            return 0;
    }
    size_t n = r->tail_seen - head;
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++)
        out[i] = r->slots[(head + i) & r->mask];
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
    /* LAB 04 END: return 0; */
}

bool sc_ring_readable(const struct sc_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) !=
           atomic_load_explicit(&r->head, memory_order_relaxed);
}
