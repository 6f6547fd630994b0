/*
 * test_loop.c — loops and combinators, and the promise that no loop can
 * starve timers or other tasks.
 */
#include <stdlib.h>

#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

/* ---- repeat / do_until / keep_doing, with ready and pending bodies ---- */

struct counter {
    int n, limit;
    bool sleepy; /* body waits on a timer now and then */
};

static struct sc_future count_body(void *cap)
{
    struct counter *c = cap;
    c->n++;
    if (c->n >= c->limit)
        return sc_make_ready(SC_STOP);
    return sc_make_ready(SC_CONTINUE);
}

static struct sc_future sleep_then_continue(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(SC_CONTINUE);
}

static int until_n;

static struct sc_future until_body(void *cap)
{
    struct counter *c = cap;
    c->n++;
    until_n = c->n;
    if (c->sleepy && c->n % 4 == 0)
        return sc_then(sc_sleep(SC_US(2)), sleep_then_continue, NULL, 0);
    return sc_make_ready(0);
}

static bool until_stop(void *cap)
{
    return ((struct counter *)cap)->n >= ((struct counter *)cap)->limit;
}

static int forever_n;

static struct sc_future forever_body(void *cap)
{
    (void)cap;
    if (++forever_n == 1000)
        return sc_make_error(-ECANCELED);
    if (forever_n % 100 == 0)
        return sc_sleep(SC_US(1));
    return sc_make_ready(0);
}

static struct sc_future pending_repeat_body(void *cap)
{
    struct counter *c = cap;
    c->n++;
    until_n = c->n;
    if (c->n >= c->limit)
        return sc_make_ready(SC_STOP);
    return sc_then(sc_sleep(SC_US(1)), sleep_then_continue, NULL, 0);
}

static struct sc_future check_forever(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    tr_step("keep_doing ended with %d after %d iterations", err, forever_n);
    T_CHECK(err == -ECANCELED && forever_n == 1000, "keep_doing must stop at its error");
    return sc_make_ready(0);
}

/* The interesting checks, written as a chain so that they run in order. */
static struct sc_future step_until(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct counter c = {0, 50, true};
    until_n = 0;
    return sc_do_until(until_stop, until_body, &c, sizeof c);
}

static struct sc_future step_forever(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    tr_step("do_until ran %d iterations", until_n);
    T_CHECK(until_n == 50, "do_until ran %d iterations, expected 50", until_n);
    forever_n = 0;
    return sc_then_wrapped(sc_keep_doing(forever_body, NULL, 0), check_forever, NULL, 0);
}

static struct sc_future step_pending_repeat(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct counter c = {0, 20, false};
    until_n = 0;
    return sc_repeat(pending_repeat_body, &c, sizeof c);
}

static struct sc_future step_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    tr_step("pending repeat ran %d iterations", until_n);
    T_CHECK(until_n == 20, "repeat with pending bodies ran %d, expected 20", until_n);
    return sc_make_ready(0);
}

static struct sc_future loops_chain(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    /* 100000 ready iterations: the loop must yield at the quota on the way */
    struct counter c = {0, 100000, false};
    struct sc_future f = sc_repeat(count_body, &c, sizeof c);
    f = sc_then(f, step_until, NULL, 0);
    f = sc_then(f, step_forever, NULL, 0);
    f = sc_then(f, step_pending_repeat, NULL, 0);
    return sc_then(f, step_done, NULL, 0);
}

START_TEST(loops)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, loops_chain, NULL) == 0, "loops failed");
}
END_TEST

/* ---- parallel_for_each, map_reduce, when_all ---- */

static int pfe_done[64];

static struct sc_future pfe_item_done(void *cap, intptr_t v)
{
    (void)v;
    pfe_done[*(size_t *)cap]++;
    return sc_make_ready(0);
}

static struct sc_future pfe_item(void *cap, size_t i)
{
    (void)cap;
    if (i % 2)
        return sc_then(sc_sleep(SC_US(64 - i)), pfe_item_done, &i, sizeof i);
    pfe_done[i]++;
    return sc_make_ready(0);
}

static struct sc_future value_after(void *cap, intptr_t v)
{
    (void)v;
    return sc_make_ready(*(intptr_t *)cap);
}

static struct sc_future square_map(void *cap, size_t i)
{
    (void)cap;
    intptr_t sq = (intptr_t)(i * i);
    if (i % 3 == 0)
        return sc_then(sc_sleep(SC_US(100 - i)), value_after, &sq, sizeof sq);
    return sc_make_ready(sq);
}

static intptr_t add(void *cap, intptr_t acc, intptr_t v)
{
    (void)cap;
    return acc + v;
}

static struct sc_future fan_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_future f = sc_parallel_for_each(64, pfe_item, NULL, 0);
    return f;
}

static struct sc_future check_pfe(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    for (int i = 0; i < 64; i++)
        T_CHECK(pfe_done[i] == 1, "item %d ran %d times", i, pfe_done[i]);
    return sc_map_reduce(100, square_map, add, 0, NULL, 0);
}

static struct sc_future check_mr(void *cap, intptr_t v)
{
    (void)cap;
    tr_step("map_reduce sum of squares 0..99 = %ld", (long)v);
    T_CHECK(v == 328350, "sum of squares 0..99 is 328350, got %ld", (long)v);
    return sc_make_ready(0);
}

static struct sc_future fail_item(void *cap, size_t i)
{
    (void)cap;
    if (i == 7)
        return sc_make_error(-EINVAL); /* ready error: the first one seen */
    if (i == 3)
        return sc_then(sc_sleep(SC_US(5)), value_after, &(intptr_t){0}, sizeof(intptr_t));
    return sc_sleep(SC_US(i));
}

static struct sc_future check_pfe_error(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    tr_step("parallel_for_each with a failing item: %d", err);
    T_CHECK(err == -EINVAL, "expected the item's -EINVAL, got %d", err);
    return sc_make_ready(0);
}

static struct sc_future step_pfe_error(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then_wrapped(sc_parallel_for_each(10, fail_item, NULL, 0), check_pfe_error, NULL, 0);
}

static struct sc_future fs[4];

static struct sc_future check_when_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    intptr_t x = -1;
    T_CHECK(sc_future_get(fs[0], &x) == 0 && x == 0, "fs[0] should be a value");
    T_CHECK(sc_future_get(fs[1], &x) == -ETIMEDOUT, "fs[1] should hold its error");
    T_CHECK(sc_future_get(fs[2], &x) == 0 && x == 5, "fs[2] should be 5");
    T_CHECK(sc_future_get(fs[3], &x) == 0 && x == 0, "fs[3] should be a value");
    return sc_make_ready(0);
}

static struct sc_future fail_after(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_error(-ETIMEDOUT);
}

static struct sc_future step_when_all(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    fs[0] = sc_sleep(SC_US(30));
    fs[1] = sc_then(sc_sleep(SC_US(10)), fail_after, NULL, 0);
    fs[2] = sc_make_ready(5);
    fs[3] = sc_sleep(SC_US(20));
    return sc_then(sc_when_all(fs, 4), check_when_all, NULL, 0);
}

static struct sc_future fan_chain(void *arg, int argc, char **argv)
{
    struct sc_future f = fan_main(arg, argc, argv);
    f = sc_then(f, check_pfe, NULL, 0);
    f = sc_then(f, check_mr, NULL, 0);
    f = sc_then(f, step_pfe_error, NULL, 0);
    return sc_then(f, step_when_all, NULL, 0);
}

START_TEST(combinators)
{
    tr_reset();
    backend_i = _i;
    for (int i = 0; i < 64; i++)
        pfe_done[i] = 0;
    T_CHECK(t_run(WORLD, fan_chain, NULL) == 0, "combinators failed");
}
END_TEST

/* ---- with_timeout, yield, spawn ---- */

static struct sc_future check_timeout(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    tr_step("with_timeout(sleep 10ms, 1ms) -> %d", err);
    T_CHECK(err == SC_ETIMEDOUT, "expected SC_ETIMEDOUT, got %d", err);
    return sc_with_timeout(sc_sleep(SC_US(100)), SC_MS(50));
}

static struct sc_future check_in_time(void *cap, intptr_t v)
{
    (void)cap;
    tr_step("with_timeout(sleep 100us, 50ms) -> value %ld", (long)v);
    return sc_make_ready(0);
}

static struct sc_future timeout_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_future f = sc_with_timeout(sc_sleep(SC_MS(10)), SC_MS(1));
    f = sc_then_wrapped(f, check_timeout, NULL, 0);
    return sc_then(f, check_in_time, NULL, 0);
}

START_TEST(timeouts)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, timeout_main, NULL) == 0, "timeouts failed");
}
END_TEST

/* ---- nothing starves: a ready-only loop lets timers and tasks in ---- */

static volatile bool timer_fired;
static int spins_before_timer;
static int other_task_runs;

static struct sc_future spin_body(void *cap)
{
    (void)cap;
    if (timer_fired)
        return sc_make_error(-ECANCELED); /* the only way out */
    spins_before_timer++;
    return sc_make_ready(0);
}

static void on_timer(void *arg)
{
    (void)arg;
    timer_fired = true;
}

static struct sc_future other_task(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    other_task_runs++;
    return sc_make_ready(0);
}

static struct sc_timer starve_timer;

static struct sc_future starve_done(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v;
    tr_step("spin loop ended with %d after %d spins; other task ran %d time(s)", err,
            spins_before_timer, other_task_runs);
    T_CHECK(err == -ECANCELED && timer_fired, "the timer must end the loop");
    T_CHECK(other_task_runs == 1, "the spawned task must have run");
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    T_CHECK(st.preemptions > 0, "the spin loop must have been preempted");
    return sc_make_ready(0);
}

static struct sc_future starve_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_timer_init(&starve_timer, on_timer, NULL);
    sc_timer_arm_in(&starve_timer, SC_MS(5));
    sc_future_discard(sc_spawn(other_task, NULL, 0));
    return sc_then_wrapped(sc_keep_doing(spin_body, NULL, 0), starve_done, NULL, 0);
}

START_TEST(loops_cannot_starve_timers)
{
    tr_reset();
    backend_i = _i;
    timer_fired = false;
    spins_before_timer = other_task_runs = 0;
    T_CHECK(t_run(WORLD, starve_main, NULL) == 0, "starvation test failed");
}
END_TEST

/* ---- a fan-out that yields while launching, with items still pending ---- */

static struct sc_future yield_item(void *cap, size_t i)
{
    (void)cap, (void)i;
    return sc_yield();
}

static struct sc_future big_fan_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    /* enough items that starting them all spans several quotas */
    return sc_parallel_for_each(200000, yield_item, NULL, 0);
}

START_TEST(fan_out_yields_while_items_pending)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, big_fan_main, NULL) == 0, "parallel_for_each over 200000 yields failed");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("loops");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, loops, 0, 2);
    tcase_add_loop_test(tc, combinators, 0, 2);
    tcase_add_loop_test(tc, timeouts, 0, 2);
    tcase_add_loop_test(tc, loops_cannot_starve_timers, 0, 2);
    tcase_add_loop_test(tc, fan_out_yields_while_items_pending, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
