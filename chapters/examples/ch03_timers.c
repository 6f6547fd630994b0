/*
 * ch03_timers.c — chapter 3: timers, sleeps and timeouts on the reactor.
 *
 *   make build/bin/ch03_timers && build/bin/ch03_timers [--backend sim|real]
 *
 * Four short demonstrations, run one after the other:
 *   1. raw timers: fired in deadline order, ties in arming order, and a
 *      cancelled timer never fires;
 *   2. sleeps started in one order finish in deadline order;
 *   3. sc_with_timeout(): a slow operation gives up with SC_ETIMEDOUT, a
 *      fast one passes through;
 *   4. a long sleep: an hour of virtual time in the simulator, which takes
 *      no wall time at all (a short sleep in the real world).
 * Exit status 0 if everything happened as described, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/seacore.h"

static int failures;
static uint64_t t_start; /* sc_now() at the start of the current demonstration */

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static double ms_since(uint64_t t)
{
    return (double)(sc_now() - t) / 1e6;
}

/* ---- 1. raw timers -------------------------------------------------------- */

/* The timers and what they record live here, kept by the caller for as long
 * as the reactor may touch them: a timer is owned by whoever armed it. */
static struct {
    struct sc_timer t[5];
    char fired[8];
    int nfired;
    struct sc_promise all_fired;
} raw;

static const char *const timer_name[5] = {"A", "B", "C", "D", "E"};

static void on_timer(void *arg)
{
    int i = (int)(intptr_t)arg;
    printf("  timer %s fired at t=%.3f ms\n", timer_name[i], ms_since(t_start));
    raw.fired[raw.nfired++] = timer_name[i][0];
    if (raw.nfired == 4)
        sc_promise_set_value(&raw.all_fired, 0);
}

static struct sc_future raw_timers(void)
{
    printf("1. raw timers: A at 30 ms, B and C both at 20 ms (B armed first), D at 10 ms,\n"
           "   E at 15 ms but cancelled\n");
    t_start = sc_now();
    const unsigned at_ms[5] = {30, 20, 20, 10, 15};
    sc_promise_init(&raw.all_fired);
    for (int i = 0; i < 5; i++) {
        sc_timer_init(&raw.t[i], on_timer, (void *)(intptr_t)i);
        /* Absolute deadlines from one reading of the clock, so that B and C
         * really share a deadline in the real world too. */
        if (sc_timer_arm(&raw.t[i], t_start + SC_MS(at_ms[i])) != 0)
            return sc_make_error(-ENOMEM);
    }
    printf("  armed: %zu timers\n", sc_timer_count());
    bool was_armed = sc_timer_cancel(&raw.t[4]);
    printf("  cancelled E (%s); %zu timers armed\n", was_armed ? "it was armed" : "??",
           sc_timer_count());
    return sc_promise_get_future(&raw.all_fired);
}

/* ---- 2. sleeps ----------------------------------------------------------- */

static char woke[4];
static int nwoke;

static struct sc_future wake(void *cap, intptr_t value)
{
    const char *name = *(const char *const *)cap;
    printf("  sleep %s finished at t=%.3f ms\n", name, ms_since(t_start));
    woke[nwoke++] = name[0];
    return sc_make_ready(value);
}

static struct sc_future sleeps(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    raw.fired[raw.nfired] = 0;
    expect(strcmp(raw.fired, "DBCA") == 0, "order D, B, C, A: by deadline, ties by arming order");
    expect(!sc_timer_armed(&raw.t[4]) && sc_timer_count() == 0,
           "the cancelled timer E never fired");

    printf("2. sleeps started in the order 3 ms, 1 ms, 2 ms\n");
    t_start = sc_now();
    const char *three = "3", *one = "1", *two = "2";
    static struct sc_future fs[3];
    fs[0] = SC_THEN(sc_sleep(SC_MS(3)), wake, three);
    fs[1] = SC_THEN(sc_sleep(SC_MS(1)), wake, one);
    fs[2] = SC_THEN(sc_sleep(SC_MS(2)), wake, two);
    return sc_when_all_succeed(fs, 3);
}

/* ---- 3. with_timeout ----------------------------------------------------- */

/* sc_when_all() fills this in when it resolves: it must outlive the wait. */
static struct sc_future timed[2];

/* Turns either outcome into a value (the error, or 0) after printing it. */
static struct sc_future outcome_of(void *cap, intptr_t value, int err)
{
    const char *name = *(const char *const *)cap;
    if (err)
        printf("  %s: failed after %.3f ms with %d (%s)\n", name, ms_since(t_start), err,
               sc_strerror(err));
    else
        printf("  %s: finished after %.3f ms\n", name, ms_since(t_start));
    (void)value;
    return sc_make_ready(err);
}

static struct sc_future timeouts(void *cap, intptr_t value)
{
    (void)cap;
    woke[nwoke] = 0;
    expect(value == 0 && strcmp(woke, "123") == 0, "they finished in deadline order: 1, 2, 3");

    printf("3. sc_with_timeout(): a 1-hour operation with a 5 ms timeout, and a 1 ms one\n");
    t_start = sc_now();
    const char *slow = "the 1-hour operation", *fast = "the 1 ms operation";
    timed[0] = SC_THEN_WRAPPED(sc_with_timeout(sc_sleep(SC_SEC(3600)), SC_MS(5)), outcome_of, slow);
    timed[1] = SC_THEN_WRAPPED(sc_with_timeout(sc_sleep(SC_MS(1)), SC_MS(5)), outcome_of, fast);
    return sc_when_all(timed, 2);
}

/* ---- 4. a long sleep ------------------------------------------------------- */

/* The wall clock, read directly ON PURPOSE to compare it with the shard's
 * clock. App code never does this: it reads time through sc_now(), so that
 * the simulator can replace it. */
static uint64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_start, long_ns;

static struct sc_future woke_up(void *cap, intptr_t value)
{
    (void)cap;
    double shard_s = (double)(sc_now() - t_start) / 1e9;
    double wall_s = (double)(wall_ns() - wall_start) / 1e9;
    printf("  woke up: %.6f s on the shard's clock, %.6f s on the wall clock\n", shard_s, wall_s);
    expect(value == 0 && sc_now() - t_start >= long_ns, "the sleep lasted its full length");
    if (sc_is_simulated())
        expect(wall_s < 1.0, "an hour of virtual time took (almost) no wall time");
    printf("ch03_timers: %s\n", failures ? "SOMETHING WENT WRONG" : "all as described");
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future long_sleep(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    intptr_t slow = 0, fast = 0;
    sc_future_get(timed[0], &slow);
    sc_future_get(timed[1], &fast);
    expect(slow == SC_ETIMEDOUT, "the slow one gave up with SC_ETIMEDOUT after 5 ms");
    expect(fast == 0, "the fast one finished before its timeout");

    /* An hour in the simulator; the real world gets 50 ms (the test suite
     * runs this example in both worlds and wants it done in seconds). */
    long_ns = sc_is_simulated() ? SC_SEC(3600) : SC_MS(50);
    printf("4. a sleep of %s\n", sc_is_simulated() ? "one hour (virtual)" : "50 ms (real)");
    t_start = sc_now();
    wall_start = wall_ns();
    return sc_then(sc_sleep(long_ns), woke_up, NULL, 0);
}

static struct sc_future timers_main(void *arg, int argc, char **argv)
{
    (void)arg;
    (void)argc;
    (void)argv;
    struct sc_future f = raw_timers();
    f = sc_then(f, sleeps, NULL, 0);
    f = sc_then(f, timeouts, NULL, 0);
    f = sc_then(f, long_sleep, NULL, 0);
    return f;
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, timers_main);
}
