/*
 * ch06_fibers.c — chapter 6: the same logic twice, once as straight-line
 * code in a fiber with sc_await, once as a chain of continuations.
 *
 *   make && build/bin/ch06_fibers [--backend sim|real] [--smp N]
 *
 * The job: ask every shard in turn for its number, add them up. The fetch
 * is flaky: on odd shards the first attempt fails with -EAGAIN, and the
 * caller waits 1 ms and tries again, at most 3 attempts per shard.
 *
 * In a fiber that is two loops and an if, with the state in local
 * variables. As a chain, the loops become functions that schedule each
 * other, and the state (which shard, which attempt, the total so far) rides
 * along in captures, copied from step to step. Both must find the same total.
 * Exit status 0 if they do, 1 otherwise.
 */
#include <stdio.h>

#include "core/seacore.h"

#define ATTEMPTS 3

/* Runs on the shard being asked: its number, unless it is in a bad mood. */
static struct sc_future fetch(void *cap)
{
    int attempt = *(int *)cap;
    unsigned me = sc_this_shard();
    if (me % 2 == 1 && attempt == 1)
        return sc_make_error(-EAGAIN);
    return sc_make_ready((intptr_t)(me + 1) * 10);
}

/* ---- 1. straight-line, in a fiber ---------------------------------------------- */

static struct sc_future total_in_a_fiber(void *cap)
{
    (void)cap;
    intptr_t total = 0;
    for (unsigned shard = 0; shard < sc_shard_count(); shard++) {
        intptr_t v = 0;
        int err;
        for (int attempt = 1;; attempt++) {
            err = sc_await(SC_SUBMIT_TO(shard, fetch, attempt), &v);
            if (err != -EAGAIN || attempt == ATTEMPTS)
                break;
            printf("  fiber: shard %u said try again; waiting 1 ms\n", shard);
            sc_await(sc_sleep(SC_MS(1)), NULL);
        }
        if (err)
            return sc_make_error(err);
        total += v;
    }
    return sc_make_ready(total);
}

/* ---- 2. the same, as a continuation chain ---------------------------------------- */

struct job {
    unsigned shard;
    int attempt;
    intptr_t total;
};

static struct sc_future ask(struct job j);

static struct sc_future after_wait(void *cap, intptr_t v)
{
    (void)v;
    return ask(*(struct job *)cap);
}

static struct sc_future got_answer(void *cap, intptr_t v, int err)
{
    struct job j = *(struct job *)cap;
    if (err == -EAGAIN && j.attempt < ATTEMPTS) {
        printf("  chain: shard %u said try again; waiting 1 ms\n", j.shard);
        j.attempt++;
        return SC_THEN(sc_sleep(SC_MS(1)), after_wait, j);
    }
    if (err)
        return sc_make_error(err);
    j.total += v;
    j.shard++;
    j.attempt = 1;
    return ask(j);
}

static struct sc_future ask(struct job j)
{
    if (j.shard == sc_shard_count())
        return sc_make_ready(j.total);
    return SC_THEN_WRAPPED(SC_SUBMIT_TO(j.shard, fetch, j.attempt), got_answer, j);
}

/* ---- both, compared --------------------------------------------------------------- */

static struct sc_future compare(void *cap, intptr_t chain_total)
{
    intptr_t fiber_total = *(intptr_t *)cap;
    struct sc_thread_stats st;
    sc_thread_stats(&st);
    printf("fiber total %ld, chain total %ld: %s\n", (long)fiber_total, (long)chain_total,
           fiber_total == chain_total ? "the same" : "DIFFERENT");
    printf("(fibers spawned %llu, stack switches %llu)\n", (unsigned long long)st.spawned,
           (unsigned long long)st.switches);
    return sc_make_ready(fiber_total == chain_total ? 0 : 1);
}

static struct sc_future run_chain(void *cap, intptr_t fiber_total)
{
    (void)cap;
    printf("2. the same as a continuation chain\n");
    struct job j = {.shard = 0, .attempt = 1, .total = 0};
    return SC_THEN(ask(j), compare, fiber_total);
}

static struct sc_future fibers_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    printf("%s world, %u shards\n", sc_is_simulated() ? "sim" : "real", sc_shard_count());
    printf("1. straight-line code in a fiber\n");
    return sc_then(sc_thread_spawn(total_in_a_fiber, NULL, 0, NULL), run_chain, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, fibers_main);
}
