/*
 * sweep.c — see sweep.h.
 */
#include <inttypes.h>
#include <stdio.h>

#include "tests/sim/sweep.h"

static int run_seed(const struct sim_test *t, uint64_t seed, struct sc_config base,
                    struct sc_run_result *r)
{
    base.seed = seed;
    base.seed_given = true;
    if (!base.smp && t->smp_for_seed)
        base.smp = t->smp_for_seed(seed);
    if (t->before_run)
        t->before_run();
    int rc = sc_run_ex(&base, t->main, NULL, 0, NULL, r);
    if (rc == 0 && r->unhandled_errors)
        rc = 3; /* a failed future nobody handled is a failure too */
    if (rc == 0 && t->after_run && t->after_run() != 0)
        rc = 4; /* an invariant checked after the run failed */
    return rc;
}

int sim_test_main(const struct sim_test *t, int argc, char **argv)
{
    long sweep = 0;
    struct sc_app_opt opts[] = {
        {"sweep", SC_OPT_INT, &sweep, "N: run seeds 1..N (each twice) and report failures"},
        {0},
    };
    struct sc_config cfg;
    int r = sc_config_parse(&argc, argv, &cfg, opts, t->about);
    if (r == 1)
        return 0;
    if (r < 0)
        return 2;
    if (t->max_smp && cfg.smp > t->max_smp) {
        fprintf(stderr, "%s: at most %u shards\n", t->name, t->max_smp);
        return 2;
    }
    /* Simulation tests always run with the schedule perturbations on. */
    if (!cfg.sim_defer_ready_pct && !cfg.sim_shuffle_pct && !cfg.sim_preempt_pct)
        cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
    cfg.backend = SC_BACKEND_SIM;
    if (sweep <= 0) {
        struct sc_run_result res;
        int rc = run_seed(t, cfg.seed ? cfg.seed : 1, cfg, &res);
        if (t->report)
            t->report();
        printf("%s: seed=%" PRIu64 " trace=%016" PRIx64 " -> %s\n", t->name, res.seed,
               res.trace_hash, rc ? "FAIL" : "ok");
        return rc;
    }
    cfg.quiet = true;
    int failures = 0;
    for (long s = 1; s <= sweep; s++) {
        struct sc_run_result a, b;
        int rc = run_seed(t, (uint64_t)s, cfg, &a);
        int rc2 = run_seed(t, (uint64_t)s, cfg, &b);
        if (rc || rc2) {
            printf("FAIL seed %ld (exit %d); replay: make sim SIM=%s SEED=%ld\n", s, rc ? rc : rc2,
                   t->name, s);
            failures++;
        } else if (a.trace_hash != b.trace_hash) {
            printf("NONDETERMINISTIC seed %ld: trace %016" PRIx64 " then %016" PRIx64 "\n", s,
                   a.trace_hash, b.trace_hash);
            failures++;
        }
    }
    printf("%s: %ld seeds, %d failing\n", t->name, sweep, failures);
    return failures ? 1 : 0;
}
