/*
 * engine.c — the simulator's engine: virtual time, seeded scheduling, the
 * trace hash.
 *
 * Everything runs on the caller's thread. Time is a counter of virtual
 * nanoseconds that moves for two reasons only: CPU work (each task costs
 * --sim-task-ns, each quota check --sim-poll-ns; a model, not a measurement)
 * and idleness (when no task is queued the clock jumps to the next timer).
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

#include "core/shard_impl.h"

/* How many queued tasks a shuffle may pick from. Small, so that a shuffled
 * run still looks like a plausible schedule rather than random chaos. */
#define SHUFFLE_WINDOW 8

struct sim_world {
    uint64_t vclock;
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

static uint64_t sim_pick_task(struct sc__shard *s)
{
    if (s->tq_len < 2 || !chance(s, s->cfg.sim_shuffle_pct))
        return 0;
    uint64_t window = s->tq_len < SHUFFLE_WINDOW ? s->tq_len : SHUFFLE_WINDOW;
    return sc__rng_next(s->sched_rng) % window;
}

static void sim_on_task(struct sc__shard *s, uint64_t seq)
{
    struct sim_world *w = s->engine_data;
    w->vclock += s->cfg.sim_task_ns;
    sc__trace_mix(s, seq);
    sc__trace_mix(s, w->vclock);
}

static int sim_run(const struct sc_config *cfg, sc_main_fn fn, void *arg, int argc, char **argv,
                   struct sc_run_result *out)
{
    struct sc__shard *s = malloc(sizeof *s);
    struct sim_world *w = malloc(sizeof *w);
    if (!s || !w) {
        free(s);
        free(w);
        sc_log(SC_LOG_ERROR, "out of memory starting the simulator");
        return 1;
    }
    struct sc_config c = *cfg;
    if (c.seed == 0)
        c.seed = 1;
    w->vclock = 0;
    sc__shard_init(s, 0, &sc__sim_engine, &c);
    s->engine_data = w;
    sc__cur = s;
    sc__shard_start_main(s, fn, arg, argc, argv);

    while (!s->stopping) {
        /* In the simulator the quota word is always set, so every quota check
         * reaches sim_need_preempt(), which charges virtual CPU time. */
        sc__preempt = 1;
        s->batch_start = w->vclock;
        sc__run_timers(s, w->vclock);
        sc__run_tasks(s);
        bool busy = sc__run_pollers(s);
        if (s->tq_head || busy || s->stopping)
            continue;
        uint64_t deadline = sc__next_deadline(s);
        if (deadline == UINT64_MAX) {
            sc_log(SC_LOG_ERROR,
                   "sim: deadlock: the app has not finished, and no task or timer is left "
                   "(seed %llu)",
                   (unsigned long long)c.seed);
            s->exit_code = 1;
            break;
        }
        if (deadline > w->vclock)
            w->vclock = deadline;
    }

    sc__ledger_report_all();
    sc__print_summary(s);
    sc__fill_result(s, out);
    int code = s->exit_code;
    sc__shard_fini(s);
    sc__cur = NULL;
    sc__preempt = 0;
    free(s);
    free(w);
    return code;
}

const struct sc__engine sc__sim_engine = {
    .name = "sim",
    .simulated = true,
    .now = sim_now,
    .need_preempt = sim_need_preempt,
    .defer_ready = sim_defer_ready,
    .pick_task = sim_pick_task,
    .on_task = sim_on_task,
    .run = sim_run,
};
