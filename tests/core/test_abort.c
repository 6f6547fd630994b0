/*
 * test_abort.c — abort sources, in both worlds: subscriptions fire once, in
 * order, unsubscribed ones never; the abortable sleep; one abort delivered
 * to waiters of every kind at once.
 */
#include "tests/core/coord_ev.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static struct sc_abort_source as;
static struct sc_abort_sub subs[4];

static void on_abort(void *arg)
{
    int i = (int)(intptr_t)arg;
    ev_add("cb%d", i);
    if (i == 0) /* the first callback unsubscribes the third: it must not run */
        T_CHECK(sc_abort_unsubscribe(&subs[2]), "subs[2] was subscribed");
}

static struct sc_future subs_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    ev_reset();
    sc_abort_init(&as);
    for (int i = 0; i < 4; i++) {
        sc_abort_sub_init(&subs[i]);
        T_CHECK(sc_abort_subscribe(&as, &subs[i], on_abort, (void *)(intptr_t)i) == 0, "sub");
    }
    T_CHECK(sc_abort_subscribe(&as, &subs[0], on_abort, NULL) == -EBUSY, "subscribed twice");
    T_CHECK(sc_abort_unsubscribe(&subs[1]), "unsubscribe 1");
    T_CHECK(!sc_abort_unsubscribe(&subs[1]), "unsubscribe 1 again: nothing to do");
    T_CHECK(!sc_abort_requested(&as), "not requested yet");
    sc_abort_request(&as);
    EV_EXPECT("cb0 cb3");
    T_CHECK(sc_abort_requested(&as), "requested");
    sc_abort_request(&as); /* twice: nothing runs again */
    EV_EXPECT("cb0 cb3");
    T_CHECK(sc_abort_subscribe(&as, &subs[1], on_abort, NULL) == -ECANCELED,
            "subscribing after the request is refused");
    T_CHECK(!sc_abort_unsubscribe(&subs[0]), "a fired subscription is gone");
    return sc_make_ready(0);
}

START_TEST(subscriptions)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, subs_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- one abort, waiters of every kind ---- */

static struct sc_sem sem;
static struct sc_cond cond;

static struct sc_future every_1(void)
{
    ev_reset();
    sc_abort_init(&as);
    sc_sem_init(&sem, 0);
    sc_cond_init(&cond);
    ev_watch(sc_sleep_abortable(SC_SEC(3600), &as), "sleep");
    ev_watch(sc_sem_wait_abortable(&sem, 1, &as), "sem");
    ev_watch(sc_cond_wait_abortable(&cond, &as), "cond");
    ev_watch(sc_sleep_abortable(SC_US(10), &as), "short"); /* ends before the abort */
    ev_watch(sc_sleep_abortable(SC_US(10), NULL), "plain");
    return sc_sleep(SC_MS(1));
}

static struct sc_future every_2(void)
{
    EV_EXPECT("short plain");
    T_CHECK(sc_timer_count() == 1, "the long sleep's timer is armed");
    sc_abort_request(&as);
    T_CHECK(sc_timer_count() == 0, "an aborted sleep cancels its timer");
    T_CHECK(sc_sem_waiters(&sem) == 0 && sc_cond_waiters(&cond) == 0, "the waiters left");
    return sc_make_ready(0);
}

static struct sc_future every_3(void)
{
    EV_EXPECT("short plain sleep!canceled sem!canceled cond!canceled");
    T_CHECK(!strcmp(ev_now(sc_sleep_abortable(SC_SEC(1), &as)), "!canceled"), "requested: at once");
    return sc_make_ready(0);
}

static struct sc_future every_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(every_1, every_2, every_3);
}

START_TEST(abort_reaches_every_waiter)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, every_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- the end of a run with subscriptions still linked ---- */

static bool cb_ran;

static void never_called(void *arg)
{
    (void)arg;
    cb_ran = true;
}

static struct sc_future shutdown_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_abort_init(&as);
    sc_abort_sub_init(&subs[0]);
    sc_abort_subscribe(&as, &subs[0], never_called, NULL);
    sc_future_discard(sc_sleep_abortable(SC_SEC(3600), &as));
    sc_future_discard(sc_sem_wait_abortable(&sem, 1, &as));
    return sc_make_ready(0);
}

START_TEST(run_ends_with_subscriptions)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    cb_ran = false;
    sc_sem_init(&sem, 0);
    T_CHECK(sc_run_ex(&cfg, shutdown_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0 && !cb_ran, "nothing fires, nothing is reported");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("abort");
    TCase *tc = tcase_create("abort");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, subscriptions, 0, 2);
    tcase_add_loop_test(tc, abort_reaches_every_waiter, 0, 2);
    tcase_add_loop_test(tc, run_ends_with_subscriptions, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_main(suite());
}
