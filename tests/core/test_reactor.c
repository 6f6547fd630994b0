/*
 * test_reactor.c — timers, virtual time, determinism, the stall detector,
 * pollers, randomness and the app runner's options.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

/* ---- timers: order, ties, cancel, count, -EBUSY, cost ---- */

#define NT 2000
static struct sc_timer timers[NT];
static int fired[NT], nfired;
static uint64_t deadlines[NT];

static void record(void *arg)
{
    fired[nfired++] = (int)(intptr_t)arg;
}

static struct sc_future timer_check(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    tr_step("%d timers fired", nfired);
    T_CHECK(nfired == NT / 2, "%d fired, expected %d (cancelled ones must not fire)", nfired,
            NT / 2);
    for (int k = 0; k < nfired; k++) {
        int i = fired[k];
        T_CHECK(i % 2 == 0, "cancelled timer %d fired", i);
        if (k) {
            int j = fired[k - 1];
            T_CHECK(deadlines[j] < deadlines[i] || (deadlines[j] == deadlines[i] && j < i),
                    "timer %d (deadline %llu) fired after %d (deadline %llu)", i,
                    (unsigned long long)deadlines[i], j, (unsigned long long)deadlines[j]);
        }
    }
    T_CHECK(sc_timer_count() == 0, "no timer may stay armed");
    return sc_make_ready(0);
}

static struct sc_future timers_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    uint64_t now = sc_now();
    for (int i = 0; i < NT; i++) {
        /* few distinct deadlines, so that many timers tie */
        deadlines[i] = now + SC_US(100) * (1 + sc_random_below(20));
        sc_timer_init(&timers[i], record, (void *)(intptr_t)i);
        T_CHECK(sc_timer_arm(&timers[i], deadlines[i]) == 0, "arm failed");
    }
    T_CHECK(sc_timer_arm(&timers[0], now) == -EBUSY, "arming an armed timer must fail");
    T_CHECK(sc_timer_count() == NT, "count %zu", sc_timer_count());
    for (int i = 1; i < NT; i += 2)
        T_CHECK(sc_timer_cancel(&timers[i]), "cancel of an armed timer returns true");
    T_CHECK(!sc_timer_cancel(&timers[1]), "cancel of an idle timer returns false");
    T_CHECK(sc_timer_count() == NT / 2, "count after cancel %zu", sc_timer_count());
    tr_step("armed %d timers over 20 deadlines, cancelled the odd ones", NT);
    return sc_then(sc_sleep(SC_MS(3)), timer_check, NULL, 0);
}

START_TEST(timer_order_ties_cancel)
{
    tr_reset();
    backend_i = _i;
    nfired = 0;
    T_CHECK(t_run(WORLD, timers_main, NULL) == 0, "run failed");
}
END_TEST

/* A timer that re-arms itself from its own callback. */
static struct sc_timer rearm_t;
static int rearm_count;
static struct sc_promise rearm_done;

static void rearm(void *arg)
{
    (void)arg;
    if (++rearm_count < 5)
        T_CHECK(sc_timer_arm_in(&rearm_t, SC_US(10)) == 0, "re-arm from callback failed");
    else
        sc_promise_set_value(&rearm_done, rearm_count);
}

static struct sc_future rearm_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_promise_init(&rearm_done);
    sc_timer_init(&rearm_t, rearm, NULL);
    sc_timer_arm(&rearm_t, 0); /* a deadline in the past fires on the next turn */
    return sc_promise_get_future(&rearm_done);
}

START_TEST(timer_rearm_from_callback)
{
    tr_reset();
    backend_i = _i;
    rearm_count = 0;
    T_CHECK(t_run(WORLD, rearm_main, NULL) == 5, "expected 5 firings");
}
END_TEST

/* A timer that keeps re-arming itself in the past must not starve tasks. */
static struct sc_timer eager_t;
static int eager_fires;
static bool eager_stop;

static void eager(void *arg)
{
    (void)arg;
    eager_fires++;
    if (!eager_stop)
        sc_timer_arm(&eager_t, 0);
}

static struct sc_future stop_eager(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    eager_stop = true;
    tr_step("the task ran after %d firings", eager_fires);
    return sc_make_ready(0);
}

static struct sc_future eager_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_timer_init(&eager_t, eager, NULL);
    sc_timer_arm(&eager_t, 0);
    /* another timer, due later, must fire too; then the task stops the eager one */
    return sc_then(sc_sleep(SC_US(200)), stop_eager, NULL, 0);
}

START_TEST(past_rearm_waits_a_turn)
{
    tr_reset();
    backend_i = _i;
    eager_fires = 0;
    eager_stop = false;
    T_CHECK(t_run(WORLD, eager_main, NULL) == 0, "run failed");
    T_CHECK(eager_fires >= 2, "the eager timer fired only %d times", eager_fires);
}
END_TEST

/* A callback cancels (and frees) a timer that expired in the same batch. */
static struct sc_timer *victim;
static int victim_fired;

static void victim_fn(void *arg)
{
    (void)arg;
    victim_fired++;
}

static void killer_fn(void *arg)
{
    (void)arg;
    T_CHECK(sc_timer_armed(victim), "the victim is still waiting to fire");
    T_CHECK(sc_timer_cancel(victim), "cancelling an expired, unfired timer returns true");
    free(victim); /* the reactor must not touch it again (ASan checks) */
    victim = NULL;
}

static struct sc_future batch_cancel_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    static struct sc_timer killer;
    victim = malloc(sizeof *victim);
    sc_timer_init(&killer, killer_fn, NULL);
    sc_timer_init(victim, victim_fn, NULL);
    uint64_t d = sc_now() + SC_US(20);
    sc_timer_arm(&killer, d); /* same deadline, armed first: fires first */
    sc_timer_arm(victim, d);
    return sc_sleep(SC_US(100));
}

START_TEST(cancel_within_a_batch)
{
    tr_reset();
    backend_i = _i;
    victim_fired = 0;
    T_CHECK(t_run(WORLD, batch_cancel_main, NULL) == 0, "run failed");
    T_CHECK(victim_fired == 0, "a timer cancelled by an earlier callback of its batch fired");
}
END_TEST

/* A timer left armed when a run ends can be armed again in the next run. */
static struct sc_timer leftover;

static struct sc_future leave_armed(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_timer_init(&leftover, victim_fn, NULL);
    sc_timer_arm_in(&leftover, SC_SEC(10));
    return sc_make_ready(0);
}

static struct sc_future reuse_leftover(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    T_CHECK(!sc_timer_armed(&leftover), "a timer from an ended run is not armed");
    T_CHECK(sc_timer_arm_in(&leftover, SC_MS(1)) == 0, "and may be armed again");
    T_CHECK(sc_timer_cancel(&leftover), "and cancelled");
    return sc_make_ready(0);
}

START_TEST(timer_outlives_its_run)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, leave_armed, NULL) == 0, "first run failed");
    T_CHECK(t_run(WORLD, reuse_leftover, NULL) == 0, "second run failed");
}
END_TEST

/* ---- virtual time: an hour of sleep costs no wall time ---- */

static uint64_t woke_at[3];

static struct sc_future note_wake(void *cap, intptr_t v)
{
    (void)v;
    woke_at[*(int *)cap] = sc_now();
    return sc_make_ready(0);
}

static struct sc_future hour_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    int a = 0, b = 1, c = 2;
    struct sc_future fs[3] = {
        SC_THEN(sc_sleep(SC_SEC(3600)), note_wake, a),
        SC_THEN(sc_sleep(SC_SEC(60)), note_wake, b),
        SC_THEN(sc_sleep(SC_SEC(7200)), note_wake, c),
    };
    return sc_when_all_succeed(fs, 3);
}

START_TEST(sim_sleeps_an_hour_instantly)
{
    tr_reset();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    T_CHECK(t_run(SC_BACKEND_SIM, hour_main, NULL) == 0, "run failed");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    tr_step("woke at %llu, %llu, %llu virtual ns; wall %.3f s", (unsigned long long)woke_at[0],
            (unsigned long long)woke_at[1], (unsigned long long)woke_at[2], wall);
    T_CHECK(woke_at[1] >= SC_SEC(60) && woke_at[1] < woke_at[0] && woke_at[0] < woke_at[2],
            "sleepers must wake in deadline order");
    T_CHECK(woke_at[0] >= SC_SEC(3600) && woke_at[0] < SC_SEC(3600) + SC_MS(1),
            "an hour's sleep must end at one virtual hour");
    T_CHECK(wall < 1.0, "virtual sleeps must not take wall time");
}
END_TEST

/* ---- determinism: same seed, same trace; perturbations change it ---- */

static struct sc_future jitter_item(void *cap, size_t i)
{
    (void)cap;
    sc_trace(i);
    return sc_sleep(sc_random_below(SC_US(50)));
}

static struct sc_future det_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_parallel_for_each(200, jitter_item, NULL, 0);
}

static uint64_t trace_of(uint64_t seed, bool chaos)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.seed = seed;
    if (chaos)
        cfg.sim_defer_ready_pct = cfg.sim_shuffle_pct = cfg.sim_preempt_pct = 10;
    struct sc_run_result r;
    T_CHECK(sc_run_ex(&cfg, det_main, NULL, 0, NULL, &r) == 0, "run failed");
    return r.trace_hash;
}

START_TEST(same_seed_same_trace)
{
    tr_reset();
    for (uint64_t seed = 1; seed <= 20; seed++) {
        uint64_t a = trace_of(seed, true), b = trace_of(seed, true);
        tr_step("seed %llu: %016llx vs %016llx", (unsigned long long)seed, (unsigned long long)a,
                (unsigned long long)b);
        T_CHECK(a == b, "seed %llu gave two traces", (unsigned long long)seed);
    }
    T_CHECK(trace_of(1, true) != trace_of(2, true), "different seeds should differ");
    T_CHECK(trace_of(1, true) != trace_of(1, false), "perturbation should change the schedule");
}
END_TEST

/* ---- the stall detector (real world only) ---- */

static struct sc_future stall_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* a task that hogs the shard for 80 ms: a bug the detector reports */
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 80000000L);
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return sc_make_ready((intptr_t)st.stalls);
}

START_TEST(stall_detector_reports)
{
    tr_reset();
    struct sc_config cfg = t_config(SC_BACKEND_REAL);
    cfg.stall_threshold_ns = SC_MS(20);
    int stalls = sc_run(&cfg, stall_main, NULL, 0, NULL);
    tr_step("an 80 ms task with a 20 ms threshold: %d stall report(s)", stalls);
    T_CHECK(stalls == 1, "expected exactly one stall report, got %d", stalls);
}
END_TEST

/* ---- pollers ---- */

static int polled;

static bool count_polls(void *arg)
{
    (void)arg;
    polled++;
    return false;
}

static struct sc_future after_polls(void *cap, intptr_t v)
{
    (void)v;
    int h = *(int *)cap;
    T_CHECK(polled > 0, "the poller never ran");
    T_CHECK(sc_poller_remove(h) == 0, "remove failed");
    T_CHECK(sc_poller_remove(h) == -ENOENT, "second remove must fail");
    return sc_make_ready(0);
}

static struct sc_future poll_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    int h = sc_poller_add(count_polls, NULL);
    T_CHECK(h >= 0, "poller_add failed");
    T_CHECK(sc_poller_remove(12345) == -ENOENT, "bogus handle must fail");
    return SC_THEN(sc_sleep(SC_US(10)), after_polls, h); /* pollers run between batches */
}

START_TEST(pollers_run)
{
    tr_reset();
    backend_i = _i;
    polled = 0;
    T_CHECK(t_run(WORLD, poll_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- randomness: the sim stream is a function of the seed ---- */

static struct sc_future rand_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    uint64_t *out = arg;
    for (int i = 0; i < 4; i++)
        out[i] = sc_random();
    T_CHECK(sc_random_below(0) == 0, "bound 0 gives 0");
    for (int i = 0; i < 1000; i++)
        T_CHECK(sc_random_below(7) < 7, "out of range");
    return sc_make_ready(0);
}

START_TEST(sim_random_is_seeded)
{
    tr_reset();
    uint64_t a[4], b[4], c[4];
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    sc_run(&cfg, rand_main, a, 0, NULL);
    sc_run(&cfg, rand_main, b, 0, NULL);
    cfg.seed = 2;
    sc_run(&cfg, rand_main, c, 0, NULL);
    T_CHECK(memcmp(a, b, sizeof a) == 0, "same seed, different numbers");
    T_CHECK(memcmp(a, c, sizeof a) != 0, "different seeds, same numbers");
}
END_TEST

/* ---- options ---- */

static int parse(const char *const *args, struct sc_config *cfg)
{
    char *argv[16];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    return sc_config_parse(&argc, argv, cfg, NULL, NULL);
}

START_TEST(options_parse)
{
    tr_reset();
    struct sc_config cfg;
    const char *good[] = {"prog", "--backend",   "real", "--seed=42", "--task-quota-ms",
                          "0.25", "--sim-chaos", "pos",  NULL};
    T_CHECK(parse(good, &cfg) == 0, "good options rejected");
    T_CHECK(cfg.backend == SC_BACKEND_REAL && cfg.seed == 42 && cfg.seed_given, "values lost");
    T_CHECK(cfg.task_quota_ns == 250000, "quota %llu", (unsigned long long)cfg.task_quota_ns);
    T_CHECK(cfg.sim_shuffle_pct == 10, "chaos not applied");
    const char *bad[][4] = {
        {"prog", "--bogus", NULL},
        {"prog", "--backend", "dpdk", NULL},
        {"prog", "--seed", "-3", NULL},
        {"prog", "--seed", NULL},
        {"prog", "--task-quota-ms", "0", NULL},
        {"prog", "--sim-chaos=1", NULL},
        {"prog", "--sim-shuffle-tasks", "101", NULL},
        {"prog", "-x", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_step("parse %s %s", bad[i][1], bad[i][2] ? bad[i][2] : "");
        T_CHECK(parse(bad[i], &cfg) == -EINVAL, "bad option %s accepted", bad[i][1]);
    }
    const char *dec[] = {"prog", "--seed", "010", NULL};
    T_CHECK(parse(dec, &cfg) == 0 && cfg.seed == 10, "seeds are decimal");
    /* argc == 0 (possible with execve): nothing is written past argv[0] */
    char *none[1] = {NULL};
    int argc0 = 0;
    T_CHECK(sc_config_parse(&argc0, none, &cfg, NULL, NULL) == 0 && argc0 == 0 && !none[0],
            "argc 0 must parse to nothing");
}
END_TEST

static struct sc_future exit_7(void *arg, int argc, char **argv)
{
    (void)arg;
    T_CHECK(argc == 1 && strcmp(argv[0], "pos") == 0, "positional args wrong");
    return sc_make_ready(7);
}

START_TEST(app_run_exit_codes)
{
    tr_reset();
    char *a1[] = {"prog", "--nope", NULL};
    T_CHECK(sc_app_run(2, a1, exit_7) == 2, "unknown option must give exit code 2");
    char *a2[] = {"prog", "--quiet", "pos", NULL};
    T_CHECK(sc_app_run(3, a2, exit_7) == 7, "the app's exit code must come back");
    char *a3[] = {"prog", "--backend", "real", "--quiet", "pos", NULL};
    T_CHECK(sc_app_run(5, a3, exit_7) == 7, "the app's exit code must come back (real)");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("reactor");
    TCase *tc = tcase_create("reactor");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, timer_order_ties_cancel, 0, 2);
    tcase_add_loop_test(tc, timer_rearm_from_callback, 0, 2);
    tcase_add_loop_test(tc, past_rearm_waits_a_turn, 0, 2);
    tcase_add_loop_test(tc, cancel_within_a_batch, 0, 2);
    tcase_add_loop_test(tc, timer_outlives_its_run, 0, 2);
    tcase_add_test(tc, sim_sleeps_an_hour_instantly);
    tcase_add_test(tc, same_seed_same_trace);
    tcase_add_test(tc, stall_detector_reports);
    tcase_add_loop_test(tc, pollers_run, 0, 2);
    tcase_add_test(tc, sim_random_is_seeded);
    tcase_add_test(tc, options_parse);
    tcase_add_test(tc, app_run_exit_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
