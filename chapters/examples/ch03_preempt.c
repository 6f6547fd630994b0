/*
 * ch03_preempt.c — chapter 3: a busy loop cannot starve a timer.
 *
 *   make build/bin/ch03_preempt && build/bin/ch03_preempt [--backend sim|real]
 *   build/bin/ch03_preempt --backend real stall     (also shows the stall detector)
 *
 * Two loops whose bodies never wait, each racing a timer:
 *   1. sc_repeat() spins until a timer armed for 2 ms from now has fired;
 *   2. sc_keep_doing() spins until a 1 ms timer makes its body fail.
 * Neither body ever returns a pending future, so without the task quota the
 * reactor would never get back to its timers and both loops would spin
 * forever (this program gives up after one second of the shard's clock and
 * exits 1 if that happens). The quota makes each loop yield every 0.5 ms.
 *
 * With the argument `stall`, a third step runs one task that ignores the
 * quota for 60 ms, and the real world's stall detector reports it.
 * Exit status 0 if everything happened as described, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "core/seacore.h"

static int failures;

static void expect(bool ok, const char *what)
{
    printf("  [%s] %s\n", ok ? "ok" : "FAILED", what);
    if (!ok)
        failures++;
}

static struct sc_reactor_stats stats(void)
{
    struct sc_reactor_stats st;
    sc_reactor_stats(&st);
    return st;
}

/* ---- the race ----------------------------------------------------------------- */

/* Shared by the loop body and the timer callback; both run on this shard,
 * one at a time, so plain variables are enough. */
static struct {
    struct sc_timer timer;
    uint64_t deadline; /* when the timer should fire */
    uint64_t fired_at; /* when it did (0: not yet) */
    uint64_t give_up;  /* past this, the loop admits it starved the timer */
    uint64_t spins;    /* loop iterations so far */
    uint64_t spins_when_fired;
    uint64_t preemptions_before;
    bool gave_up;
    bool stall;
} race;

static void timer_fired(void *arg)
{
    (void)arg;
    race.fired_at = sc_now();
    race.spins_when_fired = race.spins;
}

static int start_race(uint64_t delay)
{
    race.fired_at = 0;
    race.spins = race.spins_when_fired = 0;
    race.gave_up = false;
    race.preemptions_before = stats().preemptions;
    race.deadline = sc_now() + delay;
    race.give_up = race.deadline + SC_SEC(1);
    sc_timer_init(&race.timer, timer_fired, NULL);
    return sc_timer_arm(&race.timer, race.deadline);
}

static void report_race(const char *loop)
{
    uint64_t yields = stats().preemptions - race.preemptions_before;
    if (race.fired_at) {
        printf("  the timer fired %.3f ms late, after %llu iterations of %s;\n"
               "  the loop gave way %llu times at the task quota\n",
               (double)(race.fired_at - race.deadline) / 1e6,
               (unsigned long long)race.spins_when_fired, loop, (unsigned long long)yields);
    } else {
        printf("  the timer never fired: %s spun %llu times and gave up\n", loop,
               (unsigned long long)race.spins);
    }
    expect(race.fired_at != 0 && !race.gave_up, "the timer fired while the loop was spinning");
    expect(race.spins_when_fired > 0, "the loop had been running before the timer got its turn");
    if (race.gave_up)
        sc_timer_cancel(&race.timer);
}

/* ---- 1. sc_repeat ------------------------------------------------------------- */

static struct sc_future spin_until_fired(void *cap)
{
    (void)cap;
    race.spins++;
    if (race.fired_at)
        return sc_make_ready(SC_STOP);
    if (sc_now() > race.give_up) {
        race.gave_up = true;
        return sc_make_ready(SC_STOP);
    }
    return sc_make_ready(SC_CONTINUE); /* ready: the loop goes on without waiting */
}

static struct sc_future repeat_race(void)
{
    printf("1. sc_repeat() spinning, racing a timer armed for 2 ms from now\n");
    int err = start_race(SC_MS(2));
    if (err)
        return sc_make_error(err);
    return sc_repeat(spin_until_fired, NULL, 0);
}

/* ---- 2. sc_keep_doing ----------------------------------------------------------- */

/* keep_doing ignores the body's value and stops only when the body fails:
 * failing is how you stop it. */
static struct sc_future spin_until_cancelled(void *cap)
{
    (void)cap;
    race.spins++;
    if (race.fired_at)
        return sc_make_error(-ECANCELED);
    if (sc_now() > race.give_up) {
        race.gave_up = true;
        return sc_make_error(-ETIMEDOUT);
    }
    return sc_make_ready(0);
}

static struct sc_future expected_stop(void *cap, int err)
{
    (void)cap;
    printf("  keep_doing ended with %d (%s)\n", err, sc_strerror(err));
    return sc_make_ready(err == -ECANCELED ? 0 : err);
}

static struct sc_future keep_doing_race(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    report_race("the sc_repeat() body");
    printf("2. sc_keep_doing() spinning until a 1 ms timer makes its body fail\n");
    int err = start_race(SC_MS(1));
    if (err)
        return sc_make_error(err);
    struct sc_future f = sc_keep_doing(spin_until_cancelled, NULL, 0);
    return sc_handle_error(f, expected_stop, NULL, 0);
}

/* ---- 3. (optional) a task that ignores the quota ------------------------------ */

static struct sc_future hog(void *cap, intptr_t value)
{
    (void)cap;
    /* Wrong on purpose: a long computation that never checks
     * sc_need_preempt(). Everything else on this shard waits for it. */
    uint64_t until = sc_now() + SC_MS(60);
    while (sc_now() < until) {
    }
    return sc_make_ready(value);
}

static struct sc_future stall_checked(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    uint64_t stalls = stats().stalls;
    printf("  stall reports: %llu\n", (unsigned long long)stalls);
    expect(stalls > 0, "the stall detector reported the task, with a backtrace on stderr");
    return sc_make_ready(0);
}

static struct sc_future stall_demo(void *cap, intptr_t value)
{
    (void)cap;
    if (value == 0)
        report_race("the sc_keep_doing() body");
    else
        expect(false, "keep_doing ended the way it should");
    if (!race.stall)
        return sc_make_ready(0);
    printf("3. a task that runs 60 ms without checking the quota\n");
    if (sc_is_simulated()) {
        /* Virtual time advances only between tasks and at quota checks, so
         * a task that never checks would spin here forever. */
        printf("  skipped: in the simulator a task costs --sim-task-ns whatever it does;\n"
               "  run with --backend real to see the stall detector\n");
        return sc_make_ready(0);
    }
    fflush(stdout);
    return sc_then(sc_spawn(hog, NULL, 0), stall_checked, NULL, 0);
}

static struct sc_future finish(void *cap, intptr_t value)
{
    (void)cap;
    (void)value;
    printf("ch03_preempt: %s\n", failures ? "SOMETHING WENT WRONG" : "all as described");
    return sc_make_ready(failures ? 1 : 0);
}

static struct sc_future preempt_main(void *arg, int argc, char **argv)
{
    (void)arg;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "stall") == 0) {
            race.stall = true;
        } else {
            fprintf(stderr, "ch03_preempt: unknown argument '%s' (only 'stall')\n", argv[i]);
            return sc_make_ready(2);
        }
    }
    struct sc_future f = repeat_race();
    f = sc_then(f, keep_doing_race, NULL, 0);
    f = sc_then(f, stall_demo, NULL, 0);
    return sc_then(f, finish, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, preempt_main);
}
