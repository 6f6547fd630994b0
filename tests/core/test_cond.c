/*
 * test_cond.c — condition variables, in both worlds: signal wakes the
 * oldest, broadcast wakes all, a signal with nobody waiting is lost, the
 * predicate helper, timeouts, aborts, breaking, the end of a run.
 */
#include "core/shard_impl.h"
#include "tests/core/coord_ev.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static struct sc_cond cond;
static struct sc_abort_source as;
static int level;

static bool level_at_least(void *cap)
{
    return level >= *(int *)cap;
}

static struct sc_future wait_until_level(int want)
{
    return sc_cond_wait_until(&cond, level_at_least, &want, sizeof want);
}

static struct sc_future signal_1(void)
{
    ev_reset();
    sc_cond_init(&cond);
    sc_cond_signal(&cond); /* nobody waits: lost */
    ev_watch(sc_cond_wait(&cond), "A");
    ev_watch(sc_cond_wait(&cond), "B");
    ev_watch(sc_cond_wait(&cond), "C");
    T_CHECK(sc_cond_waiters(&cond) == 3, "3 wait (the early signal was not kept)");
    sc_cond_signal(&cond);
    return sc_make_ready(0);
}

static struct sc_future signal_2(void)
{
    EV_EXPECT("A");
    sc_cond_broadcast(&cond);
    return sc_make_ready(0);
}

static struct sc_future signal_3(void)
{
    EV_EXPECT("A B C");
    T_CHECK(sc_cond_waiters(&cond) == 0, "nobody waits");
    return sc_make_ready(0);
}

static struct sc_future pred_1(void)
{
    ev_reset();
    level = 0;
    T_CHECK(!strcmp(ev_now(wait_until_level(0)), "=0"), "a true predicate: ready at once");
    ev_watch(wait_until_level(2), "two");
    ev_watch(wait_until_level(1), "one");
    level = 1;
    sc_cond_broadcast(&cond);
    return sc_make_ready(0);
}

static struct sc_future pred_2(void)
{
    EV_EXPECT("one"); /* "two" woke, found its predicate false, and waits again */
    T_CHECK(sc_cond_waiters(&cond) == 1, "two waits again");
    level = 2;
    sc_cond_signal(&cond);
    return sc_make_ready(0);
}

static struct sc_future pred_3(void)
{
    EV_EXPECT("one two");
    return sc_make_ready(0);
}

static struct sc_future timed_1(void)
{
    ev_reset();
    sc_abort_init(&as);
    ev_watch(sc_cond_wait_for(&cond, SC_MS(1)), "T");
    ev_watch(sc_cond_wait_abortable(&cond, &as), "X");
    ev_watch(sc_cond_wait(&cond), "P");
    sc_abort_request(&as);
    return sc_sleep(SC_MS(5));
}

static struct sc_future timed_2(void)
{
    EV_EXPECT("X!canceled T!timeout");
    T_CHECK(sc_cond_waiters(&cond) == 1, "P still waits");
    sc_cond_signal(&cond); /* the departed left no trace: P gets it */
    return sc_make_ready(0);
}

static struct sc_future timed_3(void)
{
    EV_EXPECT("X!canceled T!timeout P");
    T_CHECK(!strcmp(ev_now(sc_cond_wait_abortable(&cond, &as)), "!canceled"), "requested: at once");
    ev_watch(sc_cond_wait(&cond), "Q");
    ev_watch(wait_until_level(100), "R");
    sc_cond_break(&cond, 0);
    T_CHECK(!strcmp(ev_now(sc_cond_wait(&cond)), "!broken"), "later waits fail");
    return sc_make_ready(0);
}

static struct sc_future timed_4(void)
{
    EV_EXPECT("X!canceled T!timeout P Q!broken R!broken");
    return sc_make_ready(0);
}

static struct sc_future cond_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(signal_1, signal_2, signal_3, pred_1, pred_2, pred_3, timed_1, timed_2, timed_3,
                    timed_4);
}

START_TEST(cond_semantics)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, cond_main, NULL) == 0, "run failed");
}
END_TEST

static struct sc_future oom_and_shutdown_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_cond_init(&cond);
    sc__shard()->pool.fail_every = 1;
    T_CHECK(!strcmp(ev_now(sc_cond_wait(&cond)), "!enomem"), "out of memory");
    level = 0;
    T_CHECK(!strcmp(ev_now(wait_until_level(1)), "!enomem"), "wait_until out of memory");
    sc__shard()->pool.fail_every = 0;
    T_CHECK(sc_cond_waiters(&cond) == 0, "nothing queued");
    /* the run ends with these waiting: dropped silently */
    sc_future_discard(sc_cond_wait(&cond));
    sc_future_discard(sc_cond_wait_for(&cond, SC_SEC(3600)));
    sc_future_discard(wait_until_level(5));
    return sc_make_ready(0);
}

START_TEST(oom_and_run_end)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    T_CHECK(sc_run_ex(&cfg, oom_and_shutdown_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0, "dropped waiters are not errors");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cond");
    TCase *tc = tcase_create("cond");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, cond_semantics, 0, 2);
    tcase_add_loop_test(tc, oom_and_run_end, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
