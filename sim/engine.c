/*
 * engine.c — the simulator's engine: virtual time, seeded scheduling, the
 * trace hash.
 *
 * Every shard runs on the caller's thread. At each step the simulator picks
 * one runnable shard with its seeded PRNG and lets it run one reactor turn
 * of at most a random number of tasks (--sim-step-tasks), so cross-shard
 * messages interleave differently for every seed and identically for one.
 * Time is one global counter of virtual
 * nanoseconds that moves for two reasons only: CPU work (each task costs
 * --sim-task-ns, each quota check --sim-poll-ns; a model, not a measurement)
 * and idleness (when no task is queued the clock jumps to the next timer);
 * a task may also declare work of its own (sc_sched_burn(ns) costs ns).
 * So sleeping an hour takes no wall time, and a busy loop still reaches its
 * quota and lets timers in, exactly as in the real world but repeatably.
 *
 * Perturbations, all drawn from the shard's scheduling PRNG stream (never
 * the app's), make ordering bugs show up across seeds:
 *   --sim-defer-ready P    a ready continuation goes through the task queue
 *   --sim-shuffle-tasks P  the next task is picked from the first few queued
 *   --sim-preempt-early P  a quota check says "yield" before the quota is spent
 * The same seed makes the same choices, hence the same trace hash.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/mem_impl.h"
#include "core/shard_impl.h"
#include "disk/disk_impl.h"
#include "net/net_impl.h"
#include "sim/sim_impl.h"

/* How many queued tasks a shuffle may pick from. Small, so that a shuffled
 * run still looks like a plausible schedule rather than random chaos. */
#define SHUFFLE_WINDOW 8

struct sim_world {
    uint64_t vclock; /* one virtual clock for every shard */
    uint64_t rng[4]; /* which shard steps next, and for how many tasks */
    unsigned n;
};

static uint64_t sim_now(struct sc__shard *s)
{
    return ((struct sim_world *)s->engine_data)->vclock;
}

static bool chance(struct sc__shard *s, unsigned pct)
{
    return pct && sc__rng_next(s->sched_rng) % 100 < pct;
}

static bool sim_need_preempt(struct sc__shard *s)
{
    struct sim_world *w = s->engine_data;
    w->vclock += s->cfg.sim_poll_ns;
    if (w->n > 1 && s->sim_budget == 0)
        return true; /* this step's task budget is spent: another shard's turn */
    if (chance(s, s->cfg.sim_preempt_pct))
        return true;
    return w->vclock - s->batch_start >= s->cfg.task_quota_ns;
}

static bool sim_defer_ready(struct sc__shard *s)
{
    if (chance(s, s->cfg.sim_defer_ready_pct))
        return true;
    return sim_need_preempt(s);
}

/* The shuffle stays inside the queue of the group the reactor chose: groups
 * keep their shares under perturbation, only the order within one changes. */
static uint64_t sim_pick_task(struct sc__shard *s, uint64_t queued)
{
    if (queued < 2 || !chance(s, s->cfg.sim_shuffle_pct))
        return 0;
    uint64_t window = queued < SHUFFLE_WINDOW ? queued : SHUFFLE_WINDOW;
    return sc__rng_next(s->sched_rng) % window;
}

static void sim_on_task(struct sc__shard *s, uint64_t seq)
{
    struct sim_world *w = s->engine_data;
    w->vclock += s->cfg.sim_task_ns;
    if (s->sim_budget)
        s->sim_budget--;
    sc__trace_mix(s, seq);
    sc__trace_mix(s, w->vclock);
}

/* A modelled long computation: the clock moves, nothing else happens. */
static void sim_spend(struct sc__shard *s, uint64_t ns)
{
    struct sim_world *w = s->engine_data;
    w->vclock += ns;
    sc__trace_mix(s, w->vclock);
}

static void sim_wake(struct sc__shard *t)
{
    (void)t; /* nobody sleeps in the simulator: a shard with mail is runnable */
}

/* Can this shard do something right now? */
static bool runnable(struct sc__shard *s, uint64_t now)
{
    return s->sched.active || sc__next_deadline(s) <= now || sc__smp_pending_in(s) ||
           sc__smp_pending_out(s);
}

/* One step of one shard: a reactor turn with a seeded task budget. */
static void step(struct sc__shard *s, struct sim_world *w)
{
    sc__cur = s;
    /* the quota word stays set: every quota check reaches sim_need_preempt() */
    sc__preempt = 1;
    s->batch_start = w->vclock;
    s->sim_budget = w->n > 1 ? 1 + sc__rng_next(w->rng) % s->cfg.sim_step_tasks : 0;
    sc__run_timers(s, w->vclock);
    sc__run_tasks(s);
    sc__run_pollers(s);
    sc__smp_poll(s);
}

static int sim_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
                   struct sc_run_result *out)
{
    struct sc_config c = *cfg;
    if (c.seed == 0)
        c.seed = 1;
    unsigned n = c.smp ? c.smp : 2;
    struct sc__world world;
    struct sim_world w = {.vclock = 0, .n = n};
    /* 64-aligned type; sc__shard_init() zeroes each shard */
    struct sc__shard *shards = aligned_alloc(64, n * sizeof *shards);
    if (!shards || sc__world_init(&world, n) != 0) {
        free(shards);
        sc_log(SC_LOG_ERROR, "out of memory starting the simulator");
        return 1;
    }
    if (sc__mem_world_init(&world, &c) != 0) {
        sc_log(SC_LOG_ERROR, "sim: cannot set up the shards' memory");
        sc__world_destroy(&world);
        free(shards);
        return 1;
    }
    sc__world = &world;
    sc__rng_seed(w.rng, c.seed ^ 0x73696d776f726c64ull /* "simworld" */);
    for (unsigned i = 0; i < n; i++) {
        world.shards[i] = &shards[i];
        sc__shard_init(&shards[i], i, &sc__sim_engine, &c);
        shards[i].engine_data = &w;
        sc__cur = &shards[i];
        sc__mem_shard_start(&shards[i], -1);
    }
    sc__cur = &shards[0];
    sc__shard_start_main(&shards[0], fn, arg, argc, argv);

    struct sc__shard **ready = calloc(n, sizeof *ready);
    if (!ready) {
        /* calloc here is the shard's (sc__cur is set), so an injected
         * allocation failure can land on it: the run must say it failed */
        sc_log(SC_LOG_ERROR, "sim: out of memory starting the simulator");
        shards[0].exit_code = 1;
    }
    while (ready && !shards[0].stopping) {
        unsigned nready = 0;
        for (unsigned i = 0; i < n; i++)
            if (runnable(&shards[i], w.vclock))
                ready[nready++] = &shards[i];
        if (nready == 0) {
            /* Before time jumps, every shard's pollers get a look: they may
             * find work (they return true when they did). */
            bool polled = false;
            for (unsigned i = 0; i < n; i++) {
                sc__cur = &shards[i];
                polled |= shards[i].active_pollers && sc__run_pollers(&shards[i]);
            }
            if (polled)
                continue;
            uint64_t next = UINT64_MAX;
            for (unsigned i = 0; i < n; i++) {
                uint64_t d = sc__next_deadline(&shards[i]);
                next = d < next ? d : next;
            }
            if (next == UINT64_MAX) {
                sc__cur = &shards[0];
                sc_log(SC_LOG_ERROR,
                       "sim: deadlock: the app has not finished, and no shard has a task, a "
                       "timer or a message left (seed %llu)",
                       (unsigned long long)c.seed);
                shards[0].exit_code = 1;
                break;
            }
            w.vclock = next > w.vclock ? next : w.vclock;
            continue;
        }
        /* the seeded choice: which shard runs next */
        step(ready[n > 1 ? sc__rng_next(w.rng) % nready : 0], &w);
    }
    free(ready);

    for (unsigned i = 0; i < n; i++) {
        sc__cur = &shards[i];
        sc__ledger_report_all();
    }
    sc__cur = &shards[0];
    sc__print_summary(&shards[0]);
    sc__fill_result(&shards[0], out);
    int code = shards[0].exit_code;
    for (unsigned i = 0; i < n; i++) {
        sc__cur = &shards[i];
        sc__sim_net_shard_fini(&shards[i]); /* its memory is the shard's: before the shard goes */
        sc__shard_fini(&shards[i]);
    }
    sc__cur = NULL;
    sc__preempt = 0;
    sc__mem_world_fini(&world); /* frees still on their way go home */
    sc__world_destroy(&world);
    sc__world = NULL;
    free(shards);
    return code;
}

const struct sc__engine sc__sim_engine = {
    .name = "sim",
    .simulated = true,
    .disk_backend = &sc__sim_disk,
    .net_stack = &sc__sim_stack,
    .now = sim_now,
    .need_preempt = sim_need_preempt,
    .defer_ready = sim_defer_ready,
    .pick_task = sim_pick_task,
    .on_task = sim_on_task,
    .spend = sim_spend,
    .wake = sim_wake,
    .run = sim_run,
};
