/*
 * sim_smp.c — a simulation test of cross-shard traffic: a sharded counter,
 * ping-pong chains and map_reduce sums, on 2 to 4 shards (chosen by the
 * seed), under the simulator's perturbations.
 *
 * Invariants checked at the end of every run:
 *   - the sharded counter's total is exact (no message lost or run twice);
 *   - every ping-pong chain ends on the shard its length predicts;
 *   - a map_reduce over shards sums exactly what each shard holds;
 *   - no failed future is left unhandled.
 *
 *   build/bin/sim_smp --seed 17        one seed (`make sim SIM=sim_smp SEED=17`)
 *   build/bin/sim_smp --sweep 300      seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS 4
#define INCS       400 /* increments sent by each shard */
#define CHAINS     20  /* ping-pong chains started by shard 0 */

struct shard_state { /* one per shard, each touched only by its shard */
    _Alignas(64) uint64_t count;
    uint64_t chain_ends;
};

static struct shard_state state[MAX_SHARDS];
static int violations;

static struct sc_future incr_here(void *cap)
{
    state[sc_this_shard()].count += *(uint64_t *)cap;
    return sc_make_ready(0);
}

struct send {
    unsigned target;
    uint64_t by;
};

static struct sc_future send_incr(void *cap, intptr_t v)
{
    (void)v;
    struct send *sd = cap;
    return SC_SUBMIT_TO(sd->target, incr_here, sd->by);
}

static struct sc_future one_incr(void *cap, size_t i)
{
    (void)cap;
    struct send sd = {(unsigned)sc_random_below(sc_shard_count()), 1 + i % 3};
    /* now and then, wait a little before sending */
    struct sc_future f = i % 50 == 0 ? sc_sleep(SC_US(sc_random_below(20))) : sc_make_ready(0);
    return SC_THEN(f, send_incr, sd);
}

static struct sc_future incr_from_here(void *cap)
{
    (void)cap;
    return sc_parallel_for_each(INCS, one_incr, NULL, 0);
}

/* Expected total of one shard's increments: sum over i of 1 + i % 3. */
static uint64_t expected_per_shard(void)
{
    uint64_t t = 0;
    for (uint64_t i = 0; i < INCS; i++)
        t += 1 + i % 3;
    return t;
}

struct hop {
    unsigned left;
};

static struct sc_future bounce(void *cap)
{
    struct hop h = *(struct hop *)cap;
    if (h.left == 0) {
        state[sc_this_shard()].chain_ends++;
        return sc_make_ready((intptr_t)sc_this_shard());
    }
    h.left--;
    return SC_SUBMIT_TO((sc_this_shard() + 1) % sc_shard_count(), bounce, h);
}

struct chain_cap {
    unsigned len;
};

static struct sc_future chain_landed(void *cap, intptr_t where)
{
    unsigned len = ((struct chain_cap *)cap)->len;
    /* started on shard 1 % n, then len hops of +1 */
    unsigned want = (1 + len) % sc_shard_count();
    if ((unsigned)where != want) {
        fprintf(stderr, "INVARIANT: chain of %u hops ended on shard %ld, expected %u\n", len,
                (long)where, want);
        violations++;
    }
    return sc_make_ready(0);
}

static struct sc_future one_chain(void *cap, size_t i)
{
    (void)cap;
    struct hop h = {(unsigned)(i * 7 % 23)};
    struct chain_cap c = {h.left};
    return SC_THEN(SC_SUBMIT_TO(1 % sc_shard_count(), bounce, h), chain_landed, c);
}

static struct sc_future read_count(void *cap)
{
    (void)cap;
    return sc_make_ready((intptr_t)state[sc_this_shard()].count);
}

static intptr_t add(intptr_t a, intptr_t b)
{
    return a + b;
}

static struct sc_future verdict(void *cap, intptr_t total)
{
    (void)cap;
    intptr_t want = (intptr_t)(expected_per_shard() * sc_shard_count());
    if (total != want) {
        fprintf(stderr, "INVARIANT: counter total %" PRIdPTR ", expected %" PRIdPTR "\n", total,
                want);
        violations++;
    }
    return sc_make_ready(violations ? 1 : 0);
}

static struct sc_future audit(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_map_reduce(read_count, add, 0, NULL, 0), verdict, NULL, 0);
}

static struct sc_future smp_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    for (int i = 0; i < MAX_SHARDS; i++)
        state[i] = (struct shard_state){0};
    violations = 0;
    struct sc_future work[2] = {
        sc_smp_invoke_on_all(incr_from_here, NULL, 0),
        sc_parallel_for_each(CHAINS, one_chain, NULL, 0),
    };
    return sc_then(sc_when_all_succeed(work, 2), audit, NULL, 0);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 2 + (unsigned)(seed % 3); /* 2..4 shards, a function of the seed */
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_smp",
        .about = "Cross-shard traffic under the simulator.",
        .main = smp_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
    };
    return sim_test_main(&t, argc, argv);
}
