/*
 * test_sem.c — semaphores and sc_with_semaphore, in both worlds: units,
 * FIFO fairness, timeouts, aborts, breaking, release on error, bad input,
 * out of memory, the end of a run with waiters queued, the wrong shard.
 */
#include <signal.h>

#include "core/shard_impl.h"
#include "tests/core/coord_ev.h"

static int backend_i;
#define WORLD t_backends[backend_i]

static struct sc_sem sem;
static struct sc_abort_source as;

/* ---- units and FIFO fairness ---- */

static struct sc_future fifo_1(void)
{
    ev_reset();
    T_CHECK(sc_sem_init(&sem, 3) == 0, "init");
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, 2)), "=0"), "2 of 3 units are there: ready");
    T_CHECK(sc_sem_available(&sem) == 1, "1 unit left, got %ld", (long)sc_sem_available(&sem));
    ev_watch(sc_sem_wait(&sem, 2), "A"); /* queues: only 1 unit */
    struct sc_future b = sc_sem_wait(&sem, 1);
    tr_step("B wants 1 unit, 1 is there, A waits at the head");
    T_CHECK(!sc_future_available(b), "B must queue behind A (FIFO), not jump it");
    ev_watch(b, "B");
    T_CHECK(!sc_sem_try_wait(&sem, 1), "try_wait must not jump the queue either");
    T_CHECK(sc_sem_waiters(&sem) == 2, "2 waiters, got %zu", sc_sem_waiters(&sem));
    T_CHECK(sc_sem_signal(&sem, 1) == 0, "signal");
    return sc_make_ready(0);
}

static struct sc_future fifo_2(void)
{
    EV_EXPECT("A"); /* 2 units: A went, B still waits for its one */
    T_CHECK(sc_sem_available(&sem) == 0, "A took both units");
    sc_sem_signal(&sem, 1);
    return sc_make_ready(0);
}

static struct sc_future fifo_3(void)
{
    EV_EXPECT("A B");
    T_CHECK(sc_sem_waiters(&sem) == 0, "nobody waits");
    /* consume takes units without waiting, even below zero */
    sc_sem_signal(&sem, 3);
    T_CHECK(sc_sem_consume(&sem, 5) == 0 && sc_sem_available(&sem) == -2, "consume to -2");
    ev_watch(sc_sem_wait(&sem, 1), "C");
    sc_sem_signal(&sem, 2); /* back to 0: C still waits */
    return sc_make_ready(0);
}

static struct sc_future fifo_4(void)
{
    EV_EXPECT("A B");
    sc_sem_signal(&sem, 1);
    return sc_make_ready(0);
}

static struct sc_future fifo_5(void)
{
    EV_EXPECT("A B C");
    T_CHECK(sc_sem_try_wait(&sem, 0) && !sc_sem_try_wait(&sem, 1), "try_wait with 0 units left");
    /* one signal wakes several waiters, from the head, while units last */
    ev_watch(sc_sem_wait(&sem, 1), "D");
    ev_watch(sc_sem_wait(&sem, 2), "E");
    ev_watch(sc_sem_wait(&sem, 1), "F");
    sc_sem_signal(&sem, 3); /* D and E fit; F does not */
    return sc_make_ready(0);
}

static struct sc_future fifo_6(void)
{
    EV_EXPECT("A B C D E");
    T_CHECK(sc_sem_waiters(&sem) == 1, "F waits");
    sc_sem_signal(&sem, 1);
    return sc_make_ready(0);
}

static struct sc_future fifo_7(void)
{
    EV_EXPECT("A B C D E F");
    return sc_make_ready(0);
}

static struct sc_future fifo_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(fifo_1, fifo_2, fifo_3, fifo_4, fifo_5, fifo_6, fifo_7);
}

START_TEST(units_and_fifo)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, fifo_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- timeouts: the waiter leaves, and the one behind it gets its turn ---- */

static struct sc_future timeout_1(void)
{
    ev_reset();
    sc_sem_init(&sem, 1);
    ev_watch(sc_sem_wait_for(&sem, 2, SC_MS(2)), "A");     /* a big waiter at the head */
    ev_watch(sc_sem_wait(&sem, 1), "B");                   /* blocked behind it */
    ev_watch(sc_sem_wait_for(&sem, 1, SC_SEC(3600)), "C"); /* blocked too, far deadline */
    return sc_make_ready(0);
}

static struct sc_future timeout_2(void)
{
    EV_EXPECT("");
    T_CHECK(sc_timer_count() == 2, "A's and C's timers armed, got %zu", sc_timer_count());
    return sc_sleep(SC_MS(10)); /* past A's deadline only */
}

static struct sc_future timeout_3(void)
{
    /* A timed out and left; B, now at the head, took the unit; C waits on. */
    EV_EXPECT("A!timeout B");
    T_CHECK(sc_sem_waiters(&sem) == 1 && sc_sem_available(&sem) == 0, "C waits, 0 units");
    sc_sem_signal(&sem, 1);
    return sc_make_ready(0);
}

static struct sc_future timeout_4(void)
{
    EV_EXPECT("A!timeout B C");
    T_CHECK(sc_timer_count() == 0, "C's timer must be cancelled when it got its unit");
    return sc_make_ready(0);
}

static struct sc_future timeout_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(timeout_1, timeout_2, timeout_3, timeout_4);
}

START_TEST(timeouts)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, timeout_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- aborts ---- */

static struct sc_future abort_1(void)
{
    ev_reset();
    sc_sem_init(&sem, 1);
    sc_abort_init(&as);
    ev_watch(sc_sem_wait_abortable(&sem, 2, &as), "A"); /* big, at the head */
    ev_watch(sc_sem_wait(&sem, 1), "B");
    sc_abort_request(&as);
    return sc_make_ready(0);
}

static struct sc_future abort_2(void)
{
    EV_EXPECT("A!canceled B");
    /* a source already requested fails the wait at once, units or not */
    sc_sem_signal(&sem, 5);
    T_CHECK(!strcmp(ev_now(sc_sem_wait_abortable(&sem, 1, &as)), "!canceled"),
            "a requested source must fail the wait at once");
    T_CHECK(sc_sem_available(&sem) == 5, "and take nothing");
    /* a NULL source is a plain wait */
    T_CHECK(!strcmp(ev_now(sc_sem_wait_abortable(&sem, 1, NULL)), "=0"), "NULL source");
    return sc_make_ready(0);
}

static struct sc_future abort_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(abort_1, abort_2);
}

START_TEST(aborts)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, abort_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- breaking ---- */

static struct sc_future broken_1(void)
{
    ev_reset();
    sc_sem_init(&sem, 0);
    sc_abort_init(&as);
    ev_watch(sc_sem_wait(&sem, 1), "A");
    ev_watch(sc_sem_wait_for(&sem, 1, SC_SEC(100)), "B");
    ev_watch(sc_sem_wait_abortable(&sem, 1, &as), "C");
    sc_sem_break(&sem, 0);
    T_CHECK(sc_timer_count() == 0, "B's timer must go with the break");
    T_CHECK(sc_sem_waiters(&sem) == 0, "nobody waits on a broken semaphore");
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, 0)), "!broken"), "later waits fail");
    T_CHECK(!sc_sem_try_wait(&sem, 0), "try_wait fails");
    T_CHECK(sc_sem_signal(&sem, 1) == 0, "signal is harmless");
    sc_sem_break(&sem, -EIO); /* the first break stays */
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, 1)), "!broken"), "the first error stays");
    sc_abort_request(&as); /* C unsubscribed: nothing happens */
    return sc_make_ready(0);
}

static struct sc_future broken_2(void)
{
    EV_EXPECT("A!broken B!broken C!broken");
    sc_sem_init(&sem, 0);
    ev_watch(sc_sem_wait(&sem, 1), "D");
    sc_sem_break(&sem, -EIO);
    return sc_make_ready(0);
}

static struct sc_future broken_3(void)
{
    EV_EXPECT("A!broken B!broken C!broken D!eio");
    return sc_make_ready(0);
}

static struct sc_future broken_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(broken_1, broken_2, broken_3);
}

START_TEST(broken)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    T_CHECK(sc_run_ex(&cfg, broken_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0, "%llu unhandled errors",
            (unsigned long long)res.unhandled_errors);
}
END_TEST

/* ---- with_semaphore: the units go back on success and on error ---- */

static int inflight, max_inflight, ran;

static struct sc_future job_end(void *cap, intptr_t v)
{
    (void)v;
    inflight--;
    intptr_t outcome = *(intptr_t *)cap;
    if (outcome < 0)
        return sc_make_error((int)outcome);
    return sc_make_ready(outcome);
}

/* cap: the outcome; < 0 an error. Pending (a sleep) when |outcome| >= 100. */
static struct sc_future job(void *cap, intptr_t v)
{
    (void)v;
    intptr_t outcome = *(intptr_t *)cap;
    ran++;
    if (++inflight > max_inflight)
        max_inflight = inflight;
    tr_step("job %ld runs with %ld units left", (long)outcome, (long)sc_sem_available(&sem));
    if (outcome >= 100 || outcome <= -100)
        return sc_then(sc_sleep(SC_US(100)), job_end, &outcome, sizeof outcome);
    inflight--;
    if (outcome < 0)
        return sc_make_error((int)outcome);
    return sc_make_ready(outcome);
}

static struct sc_future with_1(void)
{
    ev_reset();
    sc_sem_init(&sem, 2);
    struct sc_reactor_stats before, after;
    sc_reactor_stats(&before);
    intptr_t out = 7;
    struct sc_future f = SC_WITH_SEMAPHORE(&sem, 2, job, out);
    sc_reactor_stats(&after);
    T_CHECK(!strcmp(ev_now(f), "=7"), "inline job: its value");
    T_CHECK(after.pool_allocs == before.pool_allocs, "an inline job keeps no record");
    T_CHECK(sc_sem_available(&sem) == 2, "units back after an inline job");
    out = -EIO;
    T_CHECK(!strcmp(ev_now(SC_WITH_SEMAPHORE(&sem, 1, job, out)), "!eio"), "inline error");
    T_CHECK(sc_sem_available(&sem) == 2, "units back after an inline error");
    /* pending jobs: one succeeds, one fails; both hold their unit meanwhile */
    struct sc_future fs[3];
    out = 100;
    fs[0] = ev_watched(SC_WITH_SEMAPHORE(&sem, 1, job, out), "ok");
    out = -100;
    fs[1] = ev_watched(SC_WITH_SEMAPHORE(&sem, 1, job, out), "bad");
    T_CHECK(sc_sem_available(&sem) == 0, "both jobs hold a unit while in flight");
    out = 5;
    ran = 0;
    fs[2] = ev_watched(SC_WITH_SEMAPHORE(&sem, 1, job, out), "queued");
    T_CHECK(ran == 0, "a job without units must not run yet");
    return sc_when_all_succeed(fs, 3);
}

static struct sc_future start_job(void *cap, size_t i)
{
    (void)cap;
    intptr_t out = 100 + (intptr_t)i;
    return SC_WITH_SEMAPHORE(&sem, 1, job, out);
}

static struct sc_future with_2(void)
{
    /* ok and bad end at about the same time: their order is free */
    EV_HAS("ok=100");
    EV_HAS("bad!-100");
    EV_HAS("queued=5");
    T_CHECK(sc_sem_available(&sem) == 2, "every unit back, got %ld", (long)sc_sem_available(&sem));
    /* concurrency limit: 10 jobs, 3 units */
    sc_sem_init(&sem, 3);
    inflight = max_inflight = 0;
    ev_reset();
    return sc_parallel_for_each(10, start_job, NULL, 0);
}

static struct sc_future with_3(void)
{
    tr_step("max in flight %d", max_inflight);
    T_CHECK(max_inflight == 3, "3 units: at most 3 jobs at once, saw %d", max_inflight);
    T_CHECK(sc_sem_available(&sem) == 3, "every unit back");
    /* a queued job on a semaphore that breaks never runs */
    sc_sem_init(&sem, 0);
    ran = 0;
    intptr_t out = 1;
    ev_watch(SC_WITH_SEMAPHORE(&sem, 1, job, out), "never");
    sc_sem_break(&sem, 0);
    return sc_make_ready(0);
}

static struct sc_future with_4(void)
{
    EV_EXPECT("never!broken");
    T_CHECK(ran == 0, "the job of a broken wait must not run");
    intptr_t out = 1;
    T_CHECK(!strcmp(ev_now(SC_WITH_SEMAPHORE(&sem, 1, job, out)), "!broken"), "broken at once");
    return sc_make_ready(0);
}

static struct sc_future with_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    return EV_STEPS(with_1, with_2, with_3, with_4);
}

START_TEST(with_semaphore)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, with_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- bad input and out of memory: errors, not crashes ---- */

static struct sc_future bad_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    T_CHECK(sc_sem_init(&sem, SC_SEM_MAX_UNITS + 1) == -EINVAL, "init too big");
    T_CHECK(sc_sem_init(&sem, SC_SEM_MAX_UNITS) == 0, "init at the max");
    T_CHECK(sc_sem_signal(&sem, 1) == -EOVERFLOW, "signal past the max");
    T_CHECK(sc_sem_available(&sem) == (int64_t)SC_SEM_MAX_UNITS, "count unchanged");
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, SC_SEM_MAX_UNITS + 1)), "!einval"), "wait too big");
    T_CHECK(!sc_sem_try_wait(&sem, UINT64_MAX), "try_wait too big");
    sc_sem_init(&sem, 0);
    T_CHECK(sc_sem_consume(&sem, SC_SEM_MAX_UNITS) == 0, "consume to -max");
    T_CHECK(sc_sem_consume(&sem, 1) == -EOVERFLOW, "consume past -max");
    T_CHECK(sc_sem_consume(&sem, UINT64_MAX) == -EOVERFLOW, "consume too big");
    /* out of memory */
    sc_sem_init(&sem, 1);
    sc__shard()->pool.fail_every = 1;
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, 1)), "=0"), "a ready wait needs no memory");
    T_CHECK(!strcmp(ev_now(sc_sem_wait(&sem, 1)), "!enomem"), "a queued wait needs a record");
    T_CHECK(!strcmp(ev_now(sc_sem_wait_for(&sem, 1, 10)), "!enomem"), "timed wait");
    T_CHECK(sc_sem_waiters(&sem) == 0 && sc_timer_count() == 0, "nothing left behind");
    sc_sem_signal(&sem, 1);
    ran = 0;
    intptr_t out = 1;
    T_CHECK(!strcmp(ev_now(SC_WITH_SEMAPHORE(&sem, 1, job, out)), "!enomem"), "with_semaphore");
    T_CHECK(ran == 0 && sc_sem_available(&sem) == 1, "no job ran, no unit held");
    sc__shard()->pool.fail_every = 0;
    return sc_make_ready(0);
}

START_TEST(bad_input_and_oom)
{
    tr_reset();
    backend_i = _i;
    T_CHECK(t_run(WORLD, bad_main, NULL) == 0, "run failed");
}
END_TEST

/* ---- the end of a run with waiters queued ---- */

static bool shutdown_cont_ran;

static struct sc_future shutdown_cont(void *cap, intptr_t v, int err)
{
    (void)cap, (void)v, (void)err;
    shutdown_cont_ran = true;
    return sc_make_ready(0);
}

static struct sc_future shutdown_main(void *arg, int argc, char **argv)
{
    (void)argc, (void)argv;
    sc_sem_init(&sem, 0);
    sc_abort_init(&as);
    /* Only without the break: a broken semaphore would run this
     * continuation, and whether it runs before the run ends depends on the
     * task quota (a loaded machine defers it), which would make the count of
     * unhandled errors below depend on timing. */
    if (!arg)
        sc_future_ignore(sc_then_wrapped(sc_sem_wait(&sem, 1), shutdown_cont, NULL, 0));
    sc_future_discard(sc_sem_wait_for(&sem, 1, SC_SEC(3600)));
    sc_future_discard(sc_sem_wait_abortable(&sem, 1, &as));
    intptr_t out = 1;
    sc_future_discard(SC_WITH_SEMAPHORE(&sem, 1, job, out));
    if (arg) { /* the variant that breaks first: discarded failures are reported */
        sc_future_discard(sc_sem_wait(&sem, 1));
        sc_sem_break(&sem, -EIO);
    }
    return sc_make_ready(0);
}

START_TEST(run_ends_with_waiters)
{
    tr_reset();
    backend_i = _i;
    struct sc_config cfg = t_config(WORLD);
    struct sc_run_result res;
    shutdown_cont_ran = false;
    ran = 0;
    tr_step("run ends with 4 waiters queued");
    T_CHECK(sc_run_ex(&cfg, shutdown_main, NULL, 0, NULL, &res) == 0, "run failed");
    T_CHECK(res.unhandled_errors == 0, "dropped waiters are not errors, got %llu",
            (unsigned long long)res.unhandled_errors);
    T_CHECK(!shutdown_cont_ran && ran == 0, "no continuation of a dropped waiter runs");
    tr_step("the same, but the semaphore breaks before the end");
    T_CHECK(sc_run_ex(&cfg, shutdown_main, (void *)1, 0, NULL, &res) == 0, "run failed");
    tr_step("unhandled errors: %llu", (unsigned long long)res.unhandled_errors);
    T_CHECK(res.unhandled_errors == 4, "the 4 discarded waits fail and are reported, got %llu",
            (unsigned long long)res.unhandled_errors);
}
END_TEST

/* ---- the wrong shard ---- */

static struct sc_future wrong_shard_use(void *cap)
{
    (void)cap;
    sc_sem_signal(&sem, 1); /* must abort: the semaphore is shard 0's */
    return sc_make_ready(0);
}

static struct sc_future wrong_shard_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    sc_sem_init(&sem, 1);
    return sc_smp_submit_to(1, wrong_shard_use, NULL, 0);
}

START_TEST(wrong_shard_aborts)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.smp = 2;
    sc_run(&cfg, wrong_shard_main, NULL, 0, NULL);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sem");
    TCase *tc = tcase_create("semaphore");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, units_and_fifo, 0, 2);
    tcase_add_loop_test(tc, timeouts, 0, 2);
    tcase_add_loop_test(tc, aborts, 0, 2);
    tcase_add_loop_test(tc, broken, 0, 2);
    tcase_add_loop_test(tc, with_semaphore, 0, 2);
    tcase_add_loop_test(tc, bad_input_and_oom, 0, 2);
    tcase_add_loop_test(tc, run_ends_with_waiters, 0, 2);
    suite_add_tcase(s, tc);
    TCase *misuse = tcase_create("misuse");
    tcase_add_test_raise_signal(misuse, wrong_shard_aborts, SIGABRT);
    suite_add_tcase(s, misuse);
    return s;
}

int main(void)
{
    return t_main(suite());
}
