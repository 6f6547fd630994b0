/*
 * sweep.h — the driver every simulation test shares: parse the standard
 * options plus --sweep, run one seed (a replay) or seeds 1..N each twice
 * (checking that both runs give the same trace hash), and print every
 * failing seed with the command that replays it.
 */
#ifndef SC_TEST_SWEEP_H
#define SC_TEST_SWEEP_H

#include "core/seacore.h"

struct sim_test {
    const char *name;  /* the program's name, as `make sim SIM=<name>` knows it */
    const char *about; /* one line for --help */
    sc_main_fn main;   /* the workload: its exit code is 0 when every invariant held */
    unsigned max_smp;  /* the most shards the workload supports */
    /* Shards for a seed when --smp is not given (may be NULL: the default). */
    unsigned (*smp_for_seed)(uint64_t seed);
    /* Print a one-line summary after a single-seed run (may be NULL). */
    void (*report)(void);
    /* Called before each run, and after it, outside the run (may be NULL):
     * after_run returns 0 when the invariants that only hold once the run
     * is over (everything drained) hold. */
    void (*before_run)(void);
    int (*after_run)(void);
};

/* The whole main() of a simulation test. */
int sim_test_main(const struct sim_test *t, int argc, char **argv);

#endif
