/*
 * sim_futures.c — a simulation test: a small bank whose transfers are chains
 * of continuations with random delays, timeouts and injected failures, run
 * under the simulator's schedule perturbations.
 *
 * Invariants checked at the end of every run:
 *   - money is conserved (a transfer that fails or times out moves nothing);
 *   - every transfer is accounted for exactly once (done + failed + timed out);
 *   - the clock never goes backwards as continuations observe it;
 *   - no failed future is left unhandled.
 *
 *   build/bin/sim_futures --seed 17         one seed (what `make sim SEED=17` runs)
 *   build/bin/sim_futures --sweep 300       seeds 1..300, each run twice: the
 *                                           two trace hashes must match
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/seacore.h"
#include "tests/sim/sweep.h"

#define ACCOUNTS      16
#define TRANSFERS     200
#define START_BALANCE 1000

struct bank {
    intptr_t balance[ACCOUNTS];
    int done, failed, timed_out;
    uint64_t last_now;
    bool clock_went_back;
};

static struct bank bank;

struct transfer {
    size_t id;
    int from, to;
    intptr_t amount;
};

static void observe_clock(void)
{
    uint64_t now = sc_now();
    if (now < bank.last_now)
        bank.clock_went_back = true;
    bank.last_now = now;
}

/* Step 2: the "remote" side answers; maybe with an injected failure. */
static struct sc_future apply(void *cap, intptr_t v)
{
    (void)v;
    struct transfer *t = cap;
    observe_clock();
    if (sc_random_below(10) == 0)
        return sc_make_error(-EIO); /* injected fault: nothing moved */
    if (bank.balance[t->from] < t->amount)
        return sc_make_error(-EAGAIN); /* insufficient funds */
    bank.balance[t->from] -= t->amount;
    bank.balance[t->to] += t->amount;
    return sc_make_ready(t->amount);
}

static struct sc_future settle(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    observe_clock();
    if (err == SC_ETIMEDOUT)
        bank.timed_out++;
    else if (err)
        bank.failed++;
    else
        bank.done++;
    return sc_make_ready(0);
}

/*
 * One transfer: a random "network" delay under a timeout, then apply. The
 * timeout watches the delay only, so a transfer that timed out never reaches
 * apply: no money moves after the verdict.
 */
static struct sc_future one_transfer(void *cap, size_t i)
{
    (void)cap;
    struct transfer t = {
        .id = i,
        .from = (int)sc_random_below(ACCOUNTS),
        .to = (int)sc_random_below(ACCOUNTS),
        .amount = (intptr_t)(1 + sc_random_below(300)),
    };
    struct sc_future f = sc_sleep(SC_US(1 + sc_random_below(500)));
    f = sc_with_timeout(f, SC_US(450));
    f = SC_THEN(f, apply, t);
    return sc_then_wrapped(f, settle, NULL, 0);
}

static intptr_t sum(void *cap, intptr_t acc, intptr_t v)
{
    (void)cap;
    return acc + v;
}

static struct sc_future balance_of(void *cap, size_t i)
{
    (void)cap;
    return sc_make_ready(bank.balance[i]);
}

static struct sc_future audit(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_map_reduce(ACCOUNTS, balance_of, sum, 0, NULL, 0);
}

static struct sc_future verdict(void *cap, intptr_t total)
{
    (void)cap;
    int bad = 0;
    if (total != ACCOUNTS * START_BALANCE) {
        fprintf(stderr, "INVARIANT: money not conserved: %" PRIdPTR "\n", total);
        bad = 1;
    }
    if (bank.done + bank.failed + bank.timed_out != TRANSFERS) {
        fprintf(stderr, "INVARIANT: %d transfers accounted for, expected %d\n",
                bank.done + bank.failed + bank.timed_out, TRANSFERS);
        bad = 1;
    }
    if (bank.clock_went_back) {
        fprintf(stderr, "INVARIANT: the clock went backwards\n");
        bad = 1;
    }
    return sc_make_ready(bad);
}

static struct sc_future bank_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    bank = (struct bank){0};
    for (int i = 0; i < ACCOUNTS; i++)
        bank.balance[i] = START_BALANCE;
    struct sc_future f = sc_parallel_for_each(TRANSFERS, one_transfer, NULL, 0);
    f = sc_then(f, audit, NULL, 0);
    return sc_then(f, verdict, NULL, 0);
}

static void report(void)
{
    printf("sim_futures: done=%d failed=%d timed_out=%d\n", bank.done, bank.failed, bank.timed_out);
}

int main(int argc, char **argv)
{
    static const struct sim_test t = {
        .name = "sim_futures",
        .about = "A simulated bank: transfers as continuation chains.",
        .main = bank_main,
        .report = report,
    };
    return sim_test_main(&t, argc, argv);
}
