/*
 * future_impl.h — shared states and waiters: the machinery under futures,
 * used by future.c and by the combinators in loop.c. Not a public header.
 *
 * A pending future points at a shared state (struct sc__fstate). Exactly one
 * producer resolves the state (a promise, a timer, a continuation's result)
 * and exactly one consumer attaches a waiter to it (a continuation, a
 * combinator, a forward into another state, or a discard). Whichever of the
 * two comes second hands the outcome over and frees the state: no reference
 * count is needed because each side acts once.
 */
#ifndef SC_FUTURE_IMPL_H
#define SC_FUTURE_IMPL_H

#include "core/future.h"
#include "core/loop.h"
#include "core/reactor.h"
#include "core/shard_impl.h"

struct sc__waiter;
typedef void (*sc__wake_fn)(struct sc__waiter *w, intptr_t value, int err);

/* Whoever waits on a state: called once with the outcome. When err != 0,
 * value is the error's ledger id and the waiter now owns that entry. */
struct sc__waiter {
    sc__wake_fn wake;
};

struct sc__fstate {
    struct sc__waiter fwd;     /* a handle for forwarding another state into this one */
    struct sc__waiter *waiter; /* the consumer, once attached */
    intptr_t value;            /* the outcome, once resolved without a waiter */
    int32_t err;
    uint32_t gen;      /* nonzero while alive; matches the future's gen */
    uint32_t mem_size; /* the pool allocation that holds this state... */
    uint16_t offset;   /* ...and where in it the state sits */
    uint8_t resolved;
};

/* Prepare a state that lives at `offset` inside an allocation of `mem_size`. */
void sc__fstate_init(struct sc__fstate *st, size_t mem_size, size_t offset);
/* A state in an allocation of its own (NULL when the pool is exhausted). */
struct sc__fstate *sc__fstate_new(void);
/* The future that consumes `st`. */
struct sc_future sc__fstate_future(struct sc__fstate *st);
/* Producer side: hand over the outcome (ledger id in value when err != 0). */
void sc__fstate_resolve(struct sc__fstate *st, intptr_t value, int err);
/* Consumer side: `w` gets the outcome of `f` — at once if it is available. */
void sc__future_attach(struct sc_future f, struct sc__waiter *w);
/* Resolve `target` with the outcome of `f`, now or when `f` resolves. */
void sc__future_forward(struct sc_future f, struct sc__fstate *target);
/* If `f` is pending on a resolved state, turn it into a ready future. */
void sc__future_settle(struct sc_future *f);
/* A failed ready future from an existing ledger entry. */
static inline struct sc_future sc__failed(uintptr_t ledger, int err)
{
    struct sc_future f = {.ledger = ledger, .err = err, .gen = 0};
    return f;
}

/* sc_spawn() into scheduling group `group` (a valid id). */
struct sc_future sc__spawn_in(uint32_t group, sc_then_fn fn, const void *cap, size_t cap_size);

/* A fan-out (parallel_for_each / map_reduce) whose launch never yields:
 * `cap` is read only during this call. */
struct sc_future sc__fan_now(size_t n, sc_index_fn map, sc_reduce_fn reduce, intptr_t init,
                             const void *cap, size_t cap_size);

/* Should a ready continuation be queued instead of run at once? */
static inline bool sc__defer_ready(void)
{
    if (__builtin_expect(sc__preempt == 0, 1))
        return false;
    struct sc__shard *s = sc__shard();
    return s->engine->defer_ready(s);
}

#endif
