/*
 * test_future.c — futures, promises and continuations, in both worlds.
 */
#include <signal.h>
#include <stdlib.h>

#include "core/shard_impl.h"
#include "tests/harness.h"

static int backend_i; /* loop tests set it: which world */
#define WORLD t_backends[backend_i]

/* ---- ready futures: no allocation, no task ---- */

static int ready_calls;
static const void *ready_cap_seen;

static struct sc_future add_one(void *cap, intptr_t v)
{
    ready_calls++;
    ready_cap_seen = cap;
    return sc_make_ready(v + 1);
}

static struct sc_future ready_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_reactor_stats before, after;
    int cap = 7;
    sc_reactor_stats(&before);
    struct sc_future f = sc_make_ready(40);
    f = sc_then(f, add_one, &cap, sizeof cap);
    tr_step("sc_then on ready 40: continuation ran %d time(s) before sc_then returned",
            ready_calls);
    T_CHECK(ready_calls == 1, "ready continuation must run inside sc_then");
    T_CHECK(ready_cap_seen == &cap, "ready path must use the caller's capture, not a copy");
    f = sc_then(f, add_one, &cap, sizeof cap);
    sc_reactor_stats(&after);
    tr_step("after two ready thens: pool allocations %llu -> %llu",
            (unsigned long long)before.pool_allocs, (unsigned long long)after.pool_allocs);
    T_CHECK(after.pool_allocs == before.pool_allocs, "ready path must not allocate");
    T_CHECK(after.tasks_queued == before.tasks_queued, "ready path must not queue a task");
    intptr_t v = 0;
    T_CHECK(sc_future_get(f, &v) == 0 && v == 42, "expected 42, got %ld", (long)v);
    return sc_make_ready(0);
}

START_TEST(ready_path_is_inline)
{
    tr_reset();
    backend_i = _i;
    ready_calls = 0;
    T_CHECK(t_run(WORLD, ready_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- errors skip then and reach the handlers ---- */

static int then_ran;

static struct sc_future never(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    then_ran++;
    return sc_make_ready(0);
}

static struct sc_future recover(void *cap, int err)
{
    (void)cap;
    tr_step("handle_error got %d", err);
    return sc_make_ready(err == -EIO ? 100 : -1);
}

static struct sc_future wrapped(void *cap, intptr_t v, int err)
{
    (void)cap;
    tr_step("then_wrapped got value %ld err %d", (long)v, err);
    return sc_make_ready(err == -ENOENT ? 7 : -1);
}

static int cleanups;

static struct sc_future cleanup(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(0);
}

static struct sc_future finally_fn(void *cap)
{
    (void)cap;
    cleanups++;
    return sc_then(sc_sleep(SC_US(10)), cleanup, NULL, 0);
}

static struct sc_future errors_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    /* ready error through then: skipped */
    struct sc_future f = sc_then(sc_make_error(-EIO), never, NULL, 0);
    T_CHECK(sc_future_failed(f), "an error must pass through sc_then");
    f = sc_handle_error(f, recover, NULL, 0);
    intptr_t v = 0;
    T_CHECK(sc_future_get(f, &v) == 0 && v == 100, "handle_error should recover to 100");
    /* pending error through then, then_wrapped */
    struct sc_promise p;
    sc_promise_init(&p);
    f = sc_then(sc_promise_get_future(&p), never, NULL, 0);
    f = sc_then_wrapped(f, wrapped, NULL, 0);
    f = sc_finally(f, finally_fn, NULL, 0);
    sc_promise_set_error(&p, -ENOENT);
    tr_step("promise failed with -ENOENT; chain then -> then_wrapped -> finally");
    return f;
}

START_TEST(errors_skip_then)
{
    tr_reset();
    backend_i = _i;
    then_ran = cleanups = 0;
    int rc = t_run(WORLD, errors_main, NULL);
    T_CHECK(then_ran == 0, "sc_then ran on an error");
    T_CHECK(cleanups == 1, "finally ran %d times", cleanups);
    T_CHECK(rc == 7, "exit code should be then_wrapped's 7, got %d", rc);
}
END_TEST

/* ---- pending chains, capture by value, forwarding ---- */

struct chain_cap {
    int step;
    int expect;
};

static int chain_order[8], chain_n;

static struct sc_future chain_step(void *cap, intptr_t v)
{
    struct chain_cap *c = cap;
    tr_step("step %d sees value %ld (captured expect=%d)", c->step, (long)v, c->expect);
    chain_order[chain_n++] = c->step;
    T_CHECK(v == c->expect, "step %d: value %ld, expected %d", c->step, (long)v, c->expect);
    return sc_make_ready(v * 2);
}

static struct sc_promise fwd_p;

static struct sc_future returns_pending(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_promise_init(&fwd_p);
    return sc_promise_get_future(&fwd_p);
}

static struct sc_future set_fwd(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    sc_promise_set_value(&fwd_p, 99);
    return sc_make_ready(0);
}

static struct sc_future check_fwd(void *cap, intptr_t v)
{
    (void)cap;
    tr_step("forwarded value %ld", (long)v);
    T_CHECK(v == 99, "forwarded value should be 99");
    return sc_make_ready(0);
}

static struct sc_future chain_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_promise p;
    sc_promise_init(&p);
    struct sc_future f = sc_promise_get_future(&p);
    struct chain_cap c = {1, 5};
    f = SC_THEN(f, chain_step, c);
    c.step = 2, c.expect = 10;
    f = SC_THEN(f, chain_step, c);
    c.step = 3, c.expect = 20;
    f = SC_THEN(f, chain_step, c);
    c.step = -1, c.expect = -1; /* the copies must not see this */
    T_CHECK(chain_n == 0, "nothing may run before the promise is set");
    sc_promise_set_value(&p, 5);
    T_CHECK(chain_n == 0, "setting a promise schedules, it does not run inline");
    sc_future_discard(f);

    struct sc_future g = sc_then(sc_sleep(SC_US(5)), returns_pending, NULL, 0);
    g = sc_then(g, check_fwd, NULL, 0);
    struct sc_future h = sc_then(sc_sleep(SC_US(50)), set_fwd, NULL, 0);
    struct sc_future both[2] = {g, h};
    return sc_when_all_succeed(both, 2);
}

START_TEST(pending_chain_and_forward)
{
    tr_reset();
    backend_i = _i;
    chain_n = 0;
    T_CHECK(t_run(WORLD, chain_main, NULL) == 0, "run failed");
    T_CHECK(chain_n == 3 && chain_order[0] == 1 && chain_order[1] == 2 && chain_order[2] == 3,
            "chain ran %d steps out of order", chain_n);
}
END_TEST

/* ---- promises: set before get, abandon ---- */

static struct sc_future promise_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_promise p;
    sc_promise_init(&p);
    sc_promise_set_value(&p, 3);
    struct sc_future f = sc_promise_get_future(&p);
    T_CHECK(sc_future_available(f), "a future taken after set is ready");
    intptr_t v;
    T_CHECK(sc_future_get(f, &v) == 0 && v == 3, "value lost");

    struct sc_promise q;
    sc_promise_init(&q);
    f = sc_promise_get_future(&q);
    sc_promise_abandon(&q);
    T_CHECK(sc_future_get(f, NULL) == SC_EBROKEN_PROMISE, "abandoned promise must break");
    return sc_make_ready(0);
}

START_TEST(promise_cases)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, promise_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- unhandled errors are reported with their origin ---- */

static struct sc_future drop_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_future lost = sc_make_error(-EPIPE); /* never consumed: reported at shutdown */
    (void)lost;
    sc_future_discard(sc_then(sc_sleep(10), never, NULL, 0)); /* succeeds: no report */
    struct sc_promise p;
    sc_promise_init(&p);
    sc_future_discard(sc_promise_get_future(&p)); /* fails later: reported then */
    sc_promise_set_error(&p, -EBADF);
    sc_future_ignore(sc_make_error(-EAGAIN)); /* ignored on purpose: not reported */
    return sc_make_ready(0);
}

START_TEST(unhandled_errors_reported)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    int rc = sc_run_ex(&cfg, drop_main, NULL, 0, NULL, &res);
    tr_step("run: rc=%d unhandled=%llu", rc, (unsigned long long)res.unhandled_errors);
    T_CHECK(rc == 0, "run failed");
    T_CHECK(res.unhandled_errors == 2, "expected 2 unhandled errors, got %llu",
            (unsigned long long)res.unhandled_errors);
}
END_TEST

/* ---- the app's failure becomes exit code 1 ---- */

static struct sc_future fail_later(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_error(-EIO);
}

static struct sc_future fail_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return sc_then(sc_sleep(SC_US(1)), fail_later, NULL, 0);
}

START_TEST(failed_main_exits_1)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, fail_main, NULL) == 1, "a failed main must give exit code 1");
}
END_TEST

/* ---- misuse: a future used twice aborts ---- */

static struct sc_future twice_pending_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_future f = sc_sleep(100);
    struct sc_future a = sc_then(f, never, NULL, 0);
    struct sc_future b = sc_then(f, never, NULL, 0); /* must abort here */
    (void)a, (void)b;
    return sc_make_ready(0);
}

START_TEST(pending_used_twice_aborts)
{
    t_run(SC_BACKEND_SIM, twice_pending_main, NULL);
}
END_TEST

static struct sc_future twice_failed_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_future f = sc_make_error(-EIO);
    sc_future_get(f, NULL);
    sc_future_get(f, NULL); /* must abort here */
    return sc_make_ready(0);
}

START_TEST(failed_used_twice_aborts)
{
    t_run(SC_BACKEND_SIM, twice_failed_main, NULL);
}
END_TEST

static struct sc_future consumed_then_used_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_promise p;
    sc_promise_init(&p);
    struct sc_future f = sc_promise_get_future(&p);
    sc_promise_set_value(&p, 1);
    intptr_t v;
    sc_future_get(f, &v); /* consumes and frees the state */
    sc_future_get(f, &v); /* must abort here */
    return sc_make_ready(0);
}

START_TEST(consumed_future_reused_aborts)
{
    t_run(SC_BACKEND_SIM, consumed_then_used_main, NULL);
}
END_TEST

/* ---- out of memory is an error future, not a crash ---- */

static struct sc_future oom_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc__shard()->pool.fail_every = 1; /* every allocation fails from now on */
    struct sc_future f = sc_then(sc_sleep(10), never, NULL, 0);
    int err = sc_future_get(f, NULL);
    tr_step("sleep + then with an exhausted pool: %d", err);
    T_CHECK(err == -ENOMEM, "expected -ENOMEM, got %d", err);
    struct sc_promise p;
    sc_promise_init(&p);
    f = sc_promise_get_future(&p);
    T_CHECK(sc_future_get(f, NULL) == -ENOMEM, "promise future must fail with -ENOMEM");
    sc_promise_set_value(&p, 1); /* harmless */
    /* when_all_succeed consumes every future even when it cannot allocate */
    struct sc_promise q;
    sc__shard()->pool.fail_every = 0;
    sc_promise_init(&q);
    struct sc_future fs[2] = {sc_promise_get_future(&q), sc_make_error(-EIO)};
    sc__shard()->pool.fail_every = 1;
    T_CHECK(sc_future_get(sc_when_all_succeed(fs, 2), NULL) == -ENOMEM, "expected -ENOMEM");
    sc__shard()->pool.fail_every = 0;
    sc_promise_set_value(&q, 1);
    return sc_make_ready(0);
}

START_TEST(out_of_memory_is_an_error)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    T_CHECK(sc_run_ex(&cfg, oom_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0, "out of memory lost track of %llu error(s)",
            (unsigned long long)res.unhandled_errors);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("future");
    TCase *tc = tcase_create("semantics");
    tcase_set_timeout(tc, 20);
    tcase_add_loop_test(tc, ready_path_is_inline, 0, 2);
    tcase_add_loop_test(tc, errors_skip_then, 0, 2);
    tcase_add_loop_test(tc, pending_chain_and_forward, 0, 2);
    tcase_add_loop_test(tc, promise_cases, 0, 2);
    tcase_add_loop_test(tc, unhandled_errors_reported, 0, 2);
    tcase_add_loop_test(tc, failed_main_exits_1, 0, 2);
    tcase_add_loop_test(tc, out_of_memory_is_an_error, 0, 2);
    suite_add_tcase(s, tc);
    TCase *misuse = tcase_create("misuse");
    tcase_add_test_raise_signal(misuse, pending_used_twice_aborts, SIGABRT);
    tcase_add_test_raise_signal(misuse, failed_used_twice_aborts, SIGABRT);
#ifndef SC_SAN
    /* Under ASan the freed state is poisoned, and ASan reports the reuse itself. */
    tcase_add_test_raise_signal(misuse, consumed_future_reused_aborts, SIGABRT);
#else
    (void)consumed_future_reused_aborts;
#endif
    suite_add_tcase(s, misuse);
    return s;
}

int main(void)
{
    return t_main(suite());
}
