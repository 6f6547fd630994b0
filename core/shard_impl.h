/*
 * shard_impl.h — the private state of one shard, shared by the files of
 * core/ and by the engines (core/engine_real.c, sim/engine.c). Not a public
 * header: apps never see struct sc__shard.
 */
#ifndef SC_SHARD_IMPL_H
#define SC_SHARD_IMPL_H

#include <stdint.h>
#include <time.h>

#include <stdatomic.h>

#include "core/app.h"
#include "core/reactor.h"
#include "core/ring.h"
#include "core/sched_impl.h"
#include "core/smp.h"

/* ---- the continuation pool: per-shard size classes, no locks ---- */

#define SC__POOL_GRAIN   16u
#define SC__POOL_MAX     1024u /* larger requests go to malloc */
#define SC__POOL_CLASSES (SC__POOL_MAX / SC__POOL_GRAIN)
#define SC__POOL_CHUNK   (64u * 1024u)

struct sc__pool_big;
struct sc__pool {
    void *free[SC__POOL_CLASSES]; /* free list heads, one per size class */
    void *chunks;                 /* chunks taken from the system, linked */
    struct sc__pool_big *bigs;    /* allocations served by malloc, linked */
    char *bump, *bump_end;        /* the unused tail of the newest chunk */
    uint64_t bytes;               /* bytes of chunks held */
    uint64_t live;                /* allocations not yet freed */
    uint32_t fail_every;          /* test hook: fail every Nth allocation (0: never) */
    uint32_t fail_count;
};

void sc__pool_init(struct sc__pool *p);
void sc__pool_destroy(struct sc__pool *p);
void *sc__pool_alloc_slow(size_t size);
void sc__pool_free_slow(void *mem, size_t size);

/* ---- the error ledger: where every failed future was made ---- */

struct sc__ledger_entry {
    const char *file;
    int line;
    int err;
    uint32_t gen; /* matches the high half of a failed future's id */
    uint32_t next_free;
};

struct sc__ledger {
    struct sc__ledger_entry *e;
    uint32_t cap, used, free_head;
    uint32_t gen;
    uint64_t live;
};

uintptr_t sc__ledger_add(int err, const char *file, int line);
void sc__ledger_release(uintptr_t id);
/* Release an entry, keeping where it was made (for an error leaving the shard). */
void sc__ledger_take(uintptr_t id, const char **file, int *line);
void sc__ledger_report(uintptr_t id, const char *why); /* counts as unhandled */
void sc__ledger_log(uintptr_t id, int level, const char *why);
void sc__ledger_report_all(void);

/* ---- the timer heap (core/timer.c) ---- */

struct sc__timer_heap {
    struct sc_timer **h;
    uint32_t len, cap;
    uint32_t expiring;                        /* expired timers waiting to fire in this turn */
    struct sc_timer *batch_head, *batch_tail; /* ...in firing order */
    uint64_t next_seq;
};

int sc__timer_heap_push(struct sc__timer_heap *th, struct sc_timer *t);
void sc__timer_heap_remove(struct sc__timer_heap *th, struct sc_timer *t);
struct sc_timer *sc__timer_heap_top(const struct sc__timer_heap *th);

/* ---- limits and helpers of the app runner (core/app.c) ---- */

#define SC_MAX_SHARDS     256
#define CPU_SETSIZE_LIMIT 1024
#define SC_STR_(x)        #x
#define SC_STR(x)         SC_STR_(x)
/* Parse "0-3,6" into cpus[]; returns the count or -EINVAL. */
int sc__parse_cpuset(const char *v, int *cpus, int max);

/* ---- cross-shard messages (core/smp.c) ---- */

/* A message: runs on the receiving shard. Whoever sends it owns it; a request
 * that expects an answer travels back as the same object, so memory never
 * changes shard. */
struct sc__smp_msg {
    struct sc__smp_msg *next; /* the sender's overflow list, when a ring is full */
    void (*run)(struct sc__smp_msg *m);
};

/* Everything the shards of one run share: the rings (one per ordered pair)
 * and the stop flag. Set up by the engine before any shard starts. */
struct sc__world {
    unsigned n;
    struct sc__shard **shards;
    struct sc_ring *rings; /* rings[from * n + to]; the diagonal is unused */
    _Atomic bool stopping;
    _Atomic unsigned idle_forever;   /* shards asleep (or about to be) with no timer armed */
    _Atomic bool deadlocked;         /* every shard slept forever with every ring empty */
    struct sc__sched_registry sched; /* the run's scheduling groups (core/sched_group.c) */
    /* the allocator's part (core/memory.c): batches of freed objects going
     * home, one SPSC ring per ordered pair, and the slot each shard uses */
    struct sc_ring *free_rings; /* free_rings[from * n + to] */
    struct sc__heap **heaps;    /* heaps[i]: slot i's heap, NULL if this run has none */
    uint64_t mem_budget_pages;  /* per shard */
};

extern struct sc__world *sc__world;

int sc__world_init(struct sc__world *w, unsigned n);
void sc__world_destroy(struct sc__world *w);
int sc__smp_shard_init(struct sc__shard *s, unsigned n);
void sc__smp_shard_fini(struct sc__shard *s);
void sc__smp_send(struct sc__shard *from, unsigned to, struct sc__smp_msg *m);
bool sc__smp_poll(struct sc__shard *s);        /* flush out, run what came in */
bool sc__smp_pending_in(struct sc__shard *s);  /* something is waiting for s */
bool sc__smp_pending_out(struct sc__shard *s); /* s has messages not yet published */
void sc__world_stop(void);                     /* ask every shard to stop, wake them */
/* The sleep protocol: a shard about to sleep calls sc__smp_prepare_sleep()
 * (forever: no timer is armed); if it returns false, something arrived, or
 * the run is ending, and it must not sleep. */
bool sc__smp_prepare_sleep(struct sc__shard *s, bool forever);
void sc__smp_end_sleep(struct sc__shard *s);

/* ---- the shard ---- */

struct sc__poller {
    sc_poll_fn fn;
    void *arg;
};

struct sc__engine;
struct sc__fibers;
struct sc__heap;

struct sc__shard {
    unsigned id;
    const struct sc__engine *engine;
    /* the shard's allocator (core/memory.c): NULL when it has none; the
     * libc overrides use libc_heap, NULL with --malloc=system */
    struct sc__heap *heap, *libc_heap;
    struct sc_config cfg;

    /* the task queues, one FIFO per scheduling group (core/sched_impl.h);
     * between slices, sched.active != 0 exactly when some task is queued */
    struct sc__sched sched;
    uint64_t task_seq;
    volatile sig_atomic_t running_task; /* the stall detector reads these two */
    volatile uint64_t tasks_started;

    struct sc__timer_heap timers;
    struct sc__poller *pollers;
    uint32_t npollers, pollers_cap, active_pollers;

    struct sc__pool pool;
    struct sc__ledger ledger;
    uint32_t fstate_gen;
    struct sc__fibers *fibers; /* core/thread.c: made on the shard's first spawn */
    void *sim_net;             /* sim/net.c: the simulated network's state on this shard */

    uint64_t rng[4];       /* the app-visible stream (xoshiro256**) */
    uint64_t sched_rng[4]; /* the simulator's perturbation stream */
    uint64_t trace;

    /* the simulator's view of CPU time: when the current batch began */
    uint64_t batch_start;

    bool stopping;
    int exit_code;
    struct sc_reactor_stats stats;

    void *engine_data; /* the engine's per-shard state */
    void *kio;         /* core/kio.c: the reactor backend (real world only) */
    void *disk;        /* disk/io.c: the shard's I/O queue, made on first use */
    void *net;         /* net/: the stack's per-shard state */
    /* layers below core (disk/, net/, sim/) tidy their per-shard state at
     * shard end without core knowing them: sc__shard_on_fini() */
    struct {
        void (*fn)(struct sc__shard *s);
    } fini_hooks[8];
    unsigned nfini_hooks;

    /* cross-shard: per destination, messages waiting for room in its ring */
    struct sc__smp_msg **ovf_head, **ovf_tail;
    /* Set while the shard sleeps (or is about to). Other shards load it
     * after every publish (smp.c, maybe_wake): it gets a cache line of its
     * own, away from the counters this shard bumps for every message. */
    _Alignas(64) _Atomic int sleeping;
    _Alignas(64) struct sc_smp_stats smp_stats;
    uint64_t sim_budget; /* the simulator's task budget for this step */
};

extern __thread struct sc__shard *sc__cur __attribute__((tls_model("initial-exec")));

static inline struct sc__shard *sc__shard(void)
{
    return sc__cur;
}

/* The pool's fast paths, inline: a free-list pop or push. Refills, big
 * sizes, failure injection and sanitizer builds take the slow paths. */
static inline void *sc__pool_alloc(size_t size)
{
#ifndef SC_SAN
    struct sc__shard *s = sc__cur; /* NULL off a shard: the slow path says so */
    if (__builtin_expect(s && size <= SC__POOL_MAX && !s->pool.fail_every, 1)) {
        struct sc__pool *p = &s->pool;
        unsigned c = (unsigned)((size + SC__POOL_GRAIN - 1) / SC__POOL_GRAIN) - 1;
        void *m = p->free[c];
        if (__builtin_expect(m != NULL, 1)) {
            p->free[c] = *(void **)m;
            p->live++;
            return m;
        }
    }
#endif
    return sc__pool_alloc_slow(size);
}

static inline void sc__pool_free(void *mem, size_t size)
{
#ifndef SC_SAN
    if (__builtin_expect(size <= SC__POOL_MAX, 1)) {
        struct sc__pool *p = &sc__cur->pool;
        unsigned c = (unsigned)((size + SC__POOL_GRAIN - 1) / SC__POOL_GRAIN) - 1;
        *(void **)mem = p->free[c];
        p->free[c] = mem;
        p->live--;
        return;
    }
#endif
    sc__pool_free_slow(mem, size);
}

/* ---- what every engine provides ---- */

struct sc__disk_backend; /* disk/disk_impl.h */
struct sc__net_stack;    /* net/net_impl.h */

struct sc__engine {
    const char *name;
    bool simulated;
    /* the simulator's models of the disk and the network (sim/); NULL in
     * the real world, where disk/ and net/ use the kernel */
    const struct sc__disk_backend *disk_backend;
    const struct sc__net_stack *net_stack;
    uint64_t (*now)(struct sc__shard *s);
    /* called when sc__preempt is set: does the running code really have to yield? */
    bool (*need_preempt)(struct sc__shard *s);
    /* should a ready continuation go through the task queue anyway? (sim perturbation) */
    bool (*defer_ready)(struct sc__shard *s);
    /* which queued task of the chosen group runs next: an index into that
     * group's queue of `queued` tasks (0 = FIFO head) */
    uint64_t (*pick_task)(struct sc__shard *s, uint64_t queued);
    /* a task is about to run / a timer is about to fire: account virtual CPU time */
    void (*on_task)(struct sc__shard *s, uint64_t seq);
    /* the running task uses ns of CPU (sc_sched_burn) */
    void (*spend)(struct sc__shard *s, uint64_t ns);
    /* wake a sleeping shard (called from another shard's thread) */
    void (*wake)(struct sc__shard *target);
    /* run the whole app: returns its exit code */
    int (*run)(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
               struct sc_run_result *out);
};

extern const struct sc__engine sc__real_engine;
extern const struct sc__engine sc__sim_engine;

/* ---- reactor pieces the engines drive (core/reactor.c) ---- */

int sc__shard_init(struct sc__shard *s, unsigned id, const struct sc__engine *e,
                   const struct sc_config *cfg);
void sc__shard_fini(struct sc__shard *s);
/* Call fn(s) when shard s ends (before its memory goes); once per fn.
 * Returns 0, or -ENOSPC. */
int sc__shard_on_fini(struct sc__shard *s, void (*fn)(struct sc__shard *s));
void sc__shard_start_main(struct sc__shard *s, sc_main_fn fn, void *arg, int argc, char **argv);
bool sc__run_timers(struct sc__shard *s, uint64_t now);
bool sc__run_tasks(struct sc__shard *s);
/* Queue t in group t->group (already set and valid) of shard s. */
void sc__task_enqueue(struct sc__shard *s, struct sc_task *t);
bool sc__run_pollers(struct sc__shard *s);
uint64_t sc__next_deadline(struct sc__shard *s); /* UINT64_MAX when no timer is armed */
void sc__trace_mix(struct sc__shard *s, uint64_t v);
void sc__rng_seed(uint64_t state[4], uint64_t seed);
uint64_t sc__rng_next(uint64_t state[4]);
void sc__print_summary(struct sc__shard *s);
void sc__fill_result(struct sc__shard *s, struct sc_run_result *out);
/* Free the shard's fiber stacks, those of suspended fibers too (core/thread.c). */
void sc__thread_shard_fini(struct sc__shard *s);

#endif
