/*
 * sim_thread.c — a simulation test of fibers: on 1 to 4 shards (chosen by
 * the seed), every shard runs a crew of fibers that each do a random script
 * of sleeps, cross-shard calls, nested fibers, remote fibers, injected
 * failures and busy stretches with sc_thread_yield(), under the simulator's
 * perturbations.
 *
 * Invariants checked at the end of every run:
 *   - every cross-shard increment arrived exactly once (per-shard totals are exact);
 *   - every step of every script ran, and every injected error came back
 *     through sc_await() as the error that was made;
 *   - a fiber's clock never goes backwards, and a sleep lasts its time;
 *   - a nested or remote fiber's value is the one its script predicts;
 *   - the fiber counters add up (spawned = finished + live), and only the
 *     main fiber is left alive;
 *   - no failed future is left unhandled.
 *
 *   build/bin/sim_thread --seed 17        one seed (`make sim SIM=sim_thread SEED=17`)
 *   build/bin/sim_thread --sweep 300      seeds 1..300, each run twice: same trace hash
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define MAX_SHARDS 4
#define CREW       6  /* worker fibers per shard */
#define STEPS      16 /* steps in each worker's script */

struct shard_state { /* one per shard, touched only by its own shard */
    _Alignas(64) uint64_t received;    /* increments that arrived here */
    uint64_t sent[MAX_SHARDS];         /* increments this shard sent, per target */
    uint64_t steps, errors_made, errors_seen;
    uint64_t remote_fibers;            /* fibers started here on another shard's behalf */
    int violations;
};

static struct shard_state state[MAX_SHARDS];

static struct shard_state *here(void)
{
    return &state[sc_this_shard()];
}

static void violation(const char *what)
{
    fprintf(stderr, "INVARIANT (shard %u): %s\n", sc_this_shard(), what);
    here()->violations++;
}

/* ---- what the scripts call ---- */

static struct sc_future add_here(void *cap)
{
    here()->received += *(uint64_t *)cap;
    return sc_make_ready((intptr_t)sc_this_shard());
}

static struct sc_future fail_here(void *cap)
{
    (void)cap;
    return sc_make_error(-EREMOTEIO);
}

/* A fiber on another shard: sleeps, then answers with a value its caller can predict. */
static struct sc_future remote_worker(void *cap)
{
    intptr_t x = *(intptr_t *)cap;
    if (!sc_thread_running())
        violation("a remote fiber does not know it is a fiber");
    sc_await(sc_sleep(SC_US(sc_random_below(30))), NULL);
    return sc_make_ready(x * 7 + (intptr_t)sc_this_shard());
}

static struct sc_future spawn_remote(void *cap)
{
    here()->remote_fibers++;
    return sc_thread_spawn(remote_worker, cap, sizeof(intptr_t), NULL);
}

/* A nested fiber: yields a few times, sometimes fails. */
static struct sc_future child(void *cap)
{
    intptr_t x = *(intptr_t *)cap;
    for (intptr_t i = 0; i < x % 4; i++)
        sc_await(sc_yield(), NULL);
    if (x % 5 == 0)
        return sc_make_error(-ECHILD);
    return sc_make_ready(x * x);
}

static void expect_err(int got, int want, const char *what)
{
    if (got != want) {
        fprintf(stderr, "INVARIANT (shard %u): %s: error %d, expected %d\n", sc_this_shard(), what,
                got, want);
        here()->violations++;
    } else if (want) {
        here()->errors_seen++;
    }
}

/* One step of a script. */
static void step(uint64_t *last_now)
{
    struct shard_state *me = here();
    unsigned n = sc_shard_count();
    intptr_t v = 0;
    int err;
    switch (sc_random_below(7)) {
    case 0: { /* sleep */
        uint64_t d = SC_US(sc_random_below(100)), t0 = sc_now();
        err = sc_await(sc_sleep(d), NULL);
        expect_err(err, 0, "sleep");
        if (sc_now() < t0 + d)
            violation("a sleep ended early");
        break;
    }
    case 1: { /* increment a counter on a random shard */
        unsigned to = (unsigned)sc_random_below(n);
        uint64_t by = 1 + sc_random_below(9);
        me->sent[to] += by;
        err = sc_await(SC_SUBMIT_TO(to, add_here, by), &v);
        expect_err(err, 0, "submit_to");
        if (!err && v != (intptr_t)to)
            violation("submit_to answered from the wrong shard");
        break;
    }
    case 2: { /* a nested fiber */
        intptr_t x = (intptr_t)sc_random_below(1000);
        if (x % 5 == 0)
            me->errors_made++;
        err = sc_await(SC_THREAD_SPAWN(child, x, NULL), &v);
        expect_err(err, x % 5 == 0 ? -ECHILD : 0, "nested fiber");
        if (!err && v != x * x)
            violation("a nested fiber's value is wrong");
        break;
    }
    case 3: { /* a fiber on another shard */
        unsigned to = (unsigned)sc_random_below(n);
        intptr_t x = (intptr_t)sc_random_below(1000);
        err = sc_await(SC_SUBMIT_TO(to, spawn_remote, x), &v);
        expect_err(err, 0, "remote fiber");
        if (!err && v != x * 7 + (intptr_t)to)
            violation("a remote fiber's value is wrong");
        break;
    }
    case 4: { /* an injected failure: ready, or from another shard */
        me->errors_made++;
        if (sc_random_below(2)) {
            expect_err(sc_await(sc_make_error(-EIO), NULL), -EIO, "ready failure");
        } else {
            unsigned to = (unsigned)sc_random_below(n);
            expect_err(sc_await(sc_smp_submit_to(to, fail_here, NULL, 0), NULL), -EREMOTEIO,
                       "remote failure");
        }
        break;
    }
    case 5: { /* a busy stretch that yields at the quota */
        uint64_t spins = sc_random_below(3000);
        for (uint64_t i = 0; i < spins; i++)
            sc_thread_yield();
        break;
    }
    default: /* a ready await: no switch */
        err = sc_await(sc_make_ready(3), &v);
        if (err || v != 3)
            violation("a ready await lost its value");
        break;
    }
    if (sc_now() < *last_now)
        violation("a fiber's clock went backwards");
    *last_now = sc_now();
    me->steps++;
}

static struct sc_future worker(void *cap)
{
    (void)cap;
    uint64_t last_now = sc_now();
    for (int i = 0; i < STEPS; i++)
        step(&last_now);
    return sc_make_ready(1);
}

/* Every shard: spawn the crew, wait for all of it. */
static struct sc_future crew_boss(void *cap)
{
    (void)cap;
    struct sc_future fs[CREW];
    for (int i = 0; i < CREW; i++)
        fs[i] = sc_thread_spawn(worker, NULL, 0, NULL);
    intptr_t done = 0;
    for (int i = 0; i < CREW; i++) {
        intptr_t v = 0;
        if (sc_await(fs[i], &v) == 0)
            done += v;
    }
    if (done != CREW)
        violation("a worker did not finish");
    return sc_make_ready(0);
}

static struct sc_future start_crew(void *cap)
{
    (void)cap;
    return sc_thread_spawn(crew_boss, NULL, 0, NULL);
}

/* After the crews: every shard checks its fiber counters. */
static struct sc_future check_counters(void *cap)
{
    (void)cap;
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    uint64_t main_fiber = sc_this_shard() == 0; /* the fiber running main_fiber() */
    if (st.spawned != st.finished + st.live)
        violation("fiber counters do not add up");
    if (st.live != main_fiber)
        violation("fibers left alive after the crews finished");
    return sc_make_ready(0);
}

static struct sc_future main_fiber(void *cap)
{
    (void)cap;
    for (int i = 0; i < MAX_SHARDS; i++)
        state[i] = (struct shard_state){0};
    if (sc_await(sc_smp_invoke_on_all(start_crew, NULL, 0), NULL) != 0)
        violation("a crew failed");
    sc_await(sc_smp_invoke_on_all(check_counters, NULL, 0), NULL);

    unsigned n = sc_shard_count();
    int bad = 0;
    for (unsigned to = 0; to < n; to++) {
        uint64_t sent = 0;
        for (unsigned from = 0; from < n; from++)
            sent += state[from].sent[to];
        if (sent != state[to].received) {
            fprintf(stderr, "INVARIANT: shard %u received %" PRIu64 ", %" PRIu64 " were sent\n",
                    to, state[to].received, sent);
            bad = 1;
        }
    }
    uint64_t steps = 0, made = 0, seen = 0;
    for (unsigned i = 0; i < n; i++) {
        steps += state[i].steps;
        made += state[i].errors_made;
        seen += state[i].errors_seen;
        bad |= state[i].violations != 0;
    }
    if (steps != (uint64_t)n * CREW * STEPS) {
        fprintf(stderr, "INVARIANT: %" PRIu64 " steps ran, expected %u\n", steps,
                n * CREW * STEPS);
        bad = 1;
    }
    if (made != seen) {
        fprintf(stderr, "INVARIANT: %" PRIu64 " errors made, %" PRIu64 " came back\n", made,
                seen);
        bad = 1;
    }
    return sc_make_ready(bad);
}

static struct sc_future thread_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_thread_spawn(main_fiber, NULL, 0, NULL);
}

static unsigned smp_for_seed(uint64_t seed)
{
    return 1 + (unsigned)(seed % MAX_SHARDS);
}

static void report(void)
{
    uint64_t steps = 0, errors = 0, remote = 0;
    for (unsigned i = 0; i < MAX_SHARDS; i++) {
        steps += state[i].steps;
        errors += state[i].errors_seen;
        remote += state[i].remote_fibers;
    }
    printf("sim_thread: steps=%" PRIu64 " errors=%" PRIu64 " remote_fibers=%" PRIu64 "\n", steps,
           errors, remote);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_thread",
        .about = "Crews of fibers: sleeps, cross-shard calls, nested and remote fibers.",
        .main = thread_main,
        .max_smp = MAX_SHARDS,
        .smp_for_seed = smp_for_seed,
        .report = report,
    };
    return sim_test_main(&t, argc, argv);
}
