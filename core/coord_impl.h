/*
 * coord_impl.h — the waiter record that every coordination primitive of
 * chapter 6 queues (core/waitq.c), and the shard-ownership check. Not a
 * public header.
 *
 * A waiter is one pool allocation that *is* the shared state of the future
 * handed to the waiting code (the state sits at offset 0, so resolving it
 * frees the whole record once the consumer has the outcome, exactly as
 * sc_sleep's record does). Besides the state it holds the links of its
 * queue, a timer for timed waits and an abort subscription for abortable
 * ones. Before a record is resolved it is always taken out of its queue, its
 * timer cancelled and its subscription removed: nothing points at a record
 * whose memory may be gone.
 */
#ifndef SC_COORD_IMPL_H
#define SC_COORD_IMPL_H

#include "core/abort.h"
#include "core/future_impl.h"
#include "core/waitq.h"

struct sc__cwait {
    struct sc__fstate result; /* first: see above */
    struct sc__cwait *prev, *next;
    struct sc_waitq *q;  /* the queue it waits in; NULL when in none */
    uintptr_t arg;       /* what the primitive needs: units, an item */
    int32_t timeout_err; /* what the timer resolves with: an error, or 0 for success */
    bool timed;          /* the timer was armed */
    struct sc_timer timer;
    struct sc_abort_sub sub;
};

/* A waiter record holding `arg`; NULL when the pool is exhausted. */
struct sc__cwait *sc__cwait_new(uintptr_t arg);

/*
 * Start waiting: append w to q (may be NULL: a waiter in no queue, e.g. an
 * abortable sleep), arm its timer if timeout_ns != UINT64_MAX (it resolves
 * with timeout_err, or with 0 when timeout_err is 0), subscribe it to as (may
 * be NULL). Returns the waiter's future — or, if the timer could not be
 * armed, a failed future (-ENOMEM) with w freed and queued nowhere. The
 * caller has checked that `as` was not requested yet.
 */
struct sc_future sc__cwait_start(struct sc_waitq *q, struct sc__cwait *w, uint64_t timeout_ns,
                                 int32_t timeout_err, struct sc_abort_source *as);

/* The oldest waiter of q, taken out (timer cancelled, unsubscribed); NULL if none. */
struct sc__cwait *sc__waitq_pop(struct sc_waitq *q);

/* Resolve a waiter that is out of its queue. It may be freed inside. */
void sc__cwait_done(struct sc__cwait *w, intptr_t value);
void sc__cwait_fail(struct sc__cwait *w, int err, const char *file, int line);

/* Fail every waiter of q, oldest first. */
void sc__waitq_fail_all(struct sc_waitq *q, int err, const char *file, int line);

/* Prepare an empty queue; on_leave (may be NULL) runs after a waiter left it early. */
void sc__waitq_init(struct sc_waitq *q, void (*on_leave)(struct sc_waitq *q));

static inline struct sc__cwait *sc__waitq_head(const struct sc_waitq *q)
{
    return q->head;
}

/*
 * A primitive belongs to one shard: the first that used it (or the one that
 * initialised it). Cheap enough to check on every call: one TLS load and a
 * compare.
 */
static inline void sc__coord_bind(uint32_t *owner)
{
    struct sc__shard *s = sc__shard();
    SC_ASSERT(s != NULL, "coordination primitives are used on a shard");
    if (__builtin_expect(*owner == s->id, 1))
        return;
    SC_ASSERT(*owner == SC_NO_SHARD, "a primitive of shard %u used from shard %u", (unsigned)*owner,
              s->id);
    *owner = s->id;
}

/* The owner id for a primitive initialised now: this shard, or none yet. */
static inline uint32_t sc__coord_owner_now(void)
{
    struct sc__shard *s = sc__shard();
    return s ? s->id : SC_NO_SHARD;
}

/* A ready failed future recorded at (file, line). */
static inline struct sc_future sc__coord_error(int err, const char *file, int line)
{
    return sc__make_error(err, file, line);
}

#endif
