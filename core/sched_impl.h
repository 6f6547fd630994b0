/*
 * sched_impl.h — scheduling groups inside: the per-shard queues and virtual
 * runtimes (struct sc__sched, part of every shard), the run-wide table of
 * groups (struct sc__sched_registry, part of the world), and the three
 * functions of core/sched.c that choose which group runs next. Not a public
 * header.
 */
#ifndef SC_SCHED_IMPL_H
#define SC_SCHED_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/reactor.h"
#include "core/sched.h"

/* The vruntime of a group with S shares grows by ns * SC__SCHED_SCALE / S,
 * so a group with the most shares (1000) counts plain nanoseconds. */
#define SC__SCHED_SCALE SC_SCHED_MAX_SHARES
#define SC__SCHED_NONE  UINT32_MAX

/* One group's task queue on one shard (the hot part: every task touches it). */
struct sc__sched_queue {
    struct sc_task *head, *tail; /* FIFO, intrusive (sc_task.next) */
    uint64_t len;
};

/* One group's accounts on one shard (touched once per slice). */
struct sc__sched_acct {
    uint64_t vruntime;    /* CPU ns * SC__SCHED_SCALE / shares, summed over its slices */
    uint64_t ready_since; /* shard clock when it last became runnable (or was cut short) */
    uint32_t gen;         /* the registry generation these counters belong to */
    uint64_t runtime_ns, tasks_run, slices, max_wait_ns;
};

/* A shard's scheduler. `active` holds one bit per group with queued tasks:
 * the choice looks at those groups only, so an idle group costs nothing. */
struct sc__sched {
    uint32_t current;      /* the group of the code running now (a group id) */
    uint32_t running;      /* the group whose slice runs now, or SC__SCHED_NONE */
    uint32_t active;       /* bit g: group g has queued tasks */
    uint64_t min_vruntime; /* never decreases: the vruntime of the last group picked */
    struct sc__sched_queue q[SC_SCHED_MAX_GROUPS];
    struct sc__sched_acct acct[SC_SCHED_MAX_GROUPS];
};

/* ---- core/sched.c: share-proportional group selection (lab 07) ---- */

/* Which active group runs next (sc->active is not 0): the one with the
 * least vruntime, the lowest id among equals. Advances sc->min_vruntime. */
unsigned sc__sched_pick(struct sc__sched *sc);
/* Group g ran for delta ns with `shares` shares: charge its vruntime. */
void sc__sched_charge(struct sc__sched *sc, unsigned g, uint64_t delta, unsigned shares);
/* Group g just became runnable after being idle: it gets no credit for the
 * time it did not use, so it cannot run in a burst and starve the others. */
void sc__sched_wake(struct sc__sched *sc, unsigned g);

/* ---- the run-wide table of groups (core/sched_group.c) ---- */

/* A slot's word: gen << 32 | alive << 31 | shares. Shards read it without
 * the lock (one relaxed load per slice); create, destroy and set_shares
 * write it under the lock. A destroyed slot keeps its last shares, so a
 * straggling task of a dead group never divides by zero. */
#define SC__SCHED_ALIVE (1u << 31)

struct sc__sched_registry {
    pthread_mutex_t lock;
    uint32_t gen;                                      /* under lock: last generation handed out */
    _Atomic uint64_t word[SC_SCHED_MAX_GROUPS];        /* see above */
    char name[SC_SCHED_MAX_GROUPS][SC_SCHED_NAME_MAX]; /* under lock */
};

void sc__sched_registry_init(struct sc__sched_registry *r);
void sc__sched_registry_destroy(struct sc__sched_registry *r);

/* The shares of group g now (SC_SCHED_MAIN_SHARES off a run). */
unsigned sc__sched_shares(unsigned g);
/* The generation of slot g now (0 off a run). */
uint32_t sc__sched_gen(unsigned g);

#endif
