/*
 * sim_sched.c — a simulation test of scheduling groups: random groups with
 * random shares, random task trees across them, then every group busy at
 * once, on 1 to 3 shards, under the simulator's perturbations.
 *
 * Every shard runs the same two phases on its own queues (the groups are
 * the run's, created once by shard 0):
 *
 *   1. Trees. Root tasks go into random groups; each task may start a child
 *      in its own group (sc_task_schedule: it inherits) or in another
 *      (sc_task_schedule_in). Invariants: every task runs exactly once, in
 *      the group it was queued in; FIFO order within a group holds up to the
 *      simulator's shuffle, which picks among the first SHUFFLE_WINDOW (8)
 *      queued tasks of the chosen group — so no task ever overtakes more
 *      than 7 older tasks of its group (with --sim-shuffle-tasks 0: none).
 *   2. Busy. Fresh groups, each with a few workers whose tasks burn a random
 *      1-20 us and re-queue themselves, all started in one task, run for
 *      20 ms. Invariant: their CPU time stays in proportion to their
 *      shares: for any two, |rt_i * 1000 / s_i - rt_j * 1000 / s_j| is at
 *      most one slice's worth for the group with the fewest shares (a slice
 *      is at most a quota plus one task), plus rounding.
 *
 *   build/bin/sim_sched --seed 17        one seed
 *   build/bin/sim_sched --sweep 300      seeds 1..300, each run twice
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS     3
#define MAX_TREE_GRPS  5
#define MAX_BUSY_GRPS  5
#define MAX_TASKS      400
#define WORKERS        3
#define MAX_BURN_NS    SC_US(20)
#define BUSY_NS        SC_MS(20)
#define OVERTAKE_LIMIT 7 /* sim/engine.c's SHUFFLE_WINDOW - 1 */

struct tnode {
    struct sc_task task;
    unsigned group_i; /* index into tree_grp */
    unsigned seq;     /* order of queueing within its group, on its shard */
    unsigned ran;
    unsigned depth;
};

struct worker {
    struct sc_task task;
    uint64_t burn_ns;
};

struct shard_state {
    struct tnode nodes[MAX_TASKS];
    unsigned n_nodes, n_ran;
    unsigned next_seq[MAX_TREE_GRPS];
    unsigned char done[MAX_TREE_GRPS][MAX_TASKS]; /* by seq: has it run? */
    struct sc_promise trees_done;
    struct worker workers[MAX_BUSY_GRPS][WORKERS];
    bool stop;
    struct sc_timer busy_end;
    struct sc_promise busy_done;
    uint64_t max_burn;
};

static struct shard_state state[MAX_SHARDS];
static struct sc_sched_group tree_grp[MAX_TREE_GRPS], busy_grp[MAX_BUSY_GRPS];
static unsigned n_tree, n_busy, busy_shares[MAX_BUSY_GRPS];
static unsigned violations;

#define VIOLATION(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "INVARIANT (shard %u): ", sc_this_shard());                                \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        violations++;                                                                              \
    } while (0)

/* ---- phase 1: trees ---- */

static void node_run(struct sc_task *t);

/* Queue a new node in group gi (inherit: through sc_task_schedule). */
static void queue_node(struct shard_state *st, unsigned gi, unsigned depth, bool inherit)
{
    if (st->n_nodes == MAX_TASKS)
        return;
    struct tnode *n = &st->nodes[st->n_nodes++];
    *n = (struct tnode){.task.run = node_run, .group_i = gi, .depth = depth};
    n->seq = st->next_seq[gi]++;
    if (inherit)
        sc_task_schedule(&n->task);
    else if (sc_task_schedule_in(&n->task, tree_grp[gi]) != 0)
        VIOLATION("sc_task_schedule_in refused a live group");
}

static void node_run(struct sc_task *t)
{
    struct tnode *n = SC_CONTAINER_OF(t, struct tnode, task);
    struct shard_state *st = &state[sc_this_shard()];
    if (n->ran++)
        VIOLATION("a task ran twice");
    if (sc_sched_group_current().id != tree_grp[n->group_i].id)
        VIOLATION("a task of group %u ran in group %u", tree_grp[n->group_i].id,
                  sc_sched_group_current().id);
    unsigned older_pending = 0;
    for (unsigned s = 0; s < n->seq; s++)
        older_pending += !st->done[n->group_i][s];
    if (older_pending > OVERTAKE_LIMIT)
        VIOLATION("a task overtook %u older tasks of its group", older_pending);
    st->done[n->group_i][n->seq] = 1;
    /* children: sometimes in our group (inherited), sometimes elsewhere */
    unsigned kids = n->depth < 6 ? (unsigned)sc_random_below(3) : 0;
    for (unsigned k = 0; k < kids; k++) {
        if (sc_random_below(2))
            queue_node(st, n->group_i, n->depth + 1, true);
        else
            queue_node(st, (unsigned)sc_random_below(n_tree), n->depth + 1, false);
    }
    if (++st->n_ran == st->n_nodes)
        sc_promise_set_value(&st->trees_done, 0);
}

/* ---- phase 2: every group busy ---- */

static void worker_run(struct sc_task *t)
{
    struct worker *w = SC_CONTAINER_OF(t, struct worker, task);
    if (state[sc_this_shard()].stop)
        return;
    sc_sched_burn(w->burn_ns);
    sc_task_schedule(t);
}

static void busy_stop(void *arg)
{
    struct shard_state *st = arg;
    st->stop = true;
    struct sc_sched_group_stats s[MAX_BUSY_GRPS];
    unsigned min_shares = SC_SCHED_MAX_SHARES;
    for (unsigned i = 0; i < n_busy; i++) {
        sc_sched_group_stats(busy_grp[i], &s[i]);
        min_shares = s[i].shares < min_shares ? s[i].shares : min_shares;
    }
    /* a slice: up to the quota, then the task that crossed it and one check */
    uint64_t slice_max = 500000 + st->max_burn + 100 + 10;
    for (unsigned i = 0; i < n_busy; i++)
        for (unsigned j = i + 1; j < n_busy; j++) {
            uint64_t vi = s[i].runtime_ns * 1000 / s[i].shares;
            uint64_t vj = s[j].runtime_ns * 1000 / s[j].shares;
            uint64_t d = vi > vj ? vi - vj : vj - vi;
            uint64_t bound = slice_max * 1000 / min_shares + s[i].slices + s[j].slices + 2;
            if (d > bound)
                VIOLATION("groups with %u and %u shares: %" PRIu64 " and %" PRIu64
                          " ns of CPU, apart by %" PRIu64 " > %" PRIu64 " in vruntime",
                          s[i].shares, s[j].shares, s[i].runtime_ns, s[j].runtime_ns, d, bound);
        }
    sc_promise_set_value(&st->busy_done, 0);
}

static struct sc_future busy_phase(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct shard_state *st = &state[sc_this_shard()];
    st->stop = false;
    st->max_burn = 0;
    for (unsigned i = 0; i < n_busy; i++)
        for (unsigned k = 0; k < WORKERS; k++) {
            struct worker *w = &st->workers[i][k];
            *w = (struct worker){.task.run = worker_run,
                                 .burn_ns = SC_US(1) + sc_random_below(MAX_BURN_NS - SC_US(1))};
            st->max_burn = w->burn_ns > st->max_burn ? w->burn_ns : st->max_burn;
            sc_task_schedule_in(&w->task, busy_grp[i]);
        }
    sc_promise_init(&st->busy_done);
    sc_timer_init(&st->busy_end, busy_stop, st);
    sc_timer_arm_in(&st->busy_end, BUSY_NS);
    return sc_promise_get_future(&st->busy_done);
}

/* ---- each shard ---- */

static struct sc_future check_trees(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct shard_state *st = &state[sc_this_shard()];
    for (unsigned i = 0; i < st->n_nodes; i++)
        if (st->nodes[i].ran != 1)
            VIOLATION("task %u ran %u times", i, st->nodes[i].ran);
    return sc_make_ready(0);
}

static struct sc_future on_shard(void *cap)
{
    (void)cap;
    struct shard_state *st = &state[sc_this_shard()];
    *st = (struct shard_state){0};
    sc_promise_init(&st->trees_done);
    struct sc_future trees = sc_promise_get_future(&st->trees_done);
    unsigned roots = 5 + (unsigned)sc_random_below(40);
    for (unsigned r = 0; r < roots; r++)
        queue_node(st, (unsigned)sc_random_below(n_tree), 0, false);
    return sc_then(sc_then(trees, check_trees, NULL, 0), busy_phase, NULL, 0);
}

static struct sc_future verdict(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(violations ? 1 : 0);
}

static struct sc_future sched_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    violations = 0;
    char name[16];
    n_tree = 1 + (unsigned)sc_random_below(MAX_TREE_GRPS);
    n_busy = 2 + (unsigned)sc_random_below(MAX_BUSY_GRPS - 1);
    for (unsigned i = 0; i < n_tree; i++) {
        snprintf(name, sizeof name, "tree%u", i);
        if (sc_sched_group_create(name, 1 + (unsigned)sc_random_below(1000), &tree_grp[i]))
            return sc_make_error(-EIO);
    }
    for (unsigned i = 0; i < n_busy; i++) {
        snprintf(name, sizeof name, "busy%u", i);
        /* shares from 10: at 1 share a group's slice is worth 1000x a slice
         * of vruntime, and the bound says little */
        busy_shares[i] = 10 + (unsigned)sc_random_below(991);
        if (sc_sched_group_create(name, busy_shares[i], &busy_grp[i]))
            return sc_make_error(-EIO);
    }
    return sc_then(sc_smp_invoke_on_all(on_shard, NULL, 0), verdict, NULL, 0);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_sched",
        .about = "Scheduling groups under the simulator: random groups, shares and task trees.",
        .main = sched_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
    };
    return sim_test_main(&t, argc, argv);
}
