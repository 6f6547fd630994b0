/*
 * ch07_groups.c — chapter 7: a latency-sensitive group beside a CPU-hungry one.
 *
 *   make build/bin/ch07_groups && build/bin/ch07_groups [--backend sim|real]
 *
 * The hungry group ("batch", 100 shares) keeps 32 tasks of 100 us of CPU
 * each in its queue, forever re-queued: it saturates the shard. The
 * latency-sensitive group ("ticks", 1000 shares) has a timer every 5 ms
 * whose task does 5 us of work. We measure how late each tick's task runs
 * after its deadline, twice:
 *
 *   1. in two groups: a tick waits at most for the slice in progress (one
 *      task quota, 0.5 ms, plus one hungry task);
 *   2. everything in "main": a tick's task queues behind every hungry task
 *      already waiting (32 x 100 us).
 *
 * Then it prints each group's counters. In the simulator the figures are
 * exact and the same on every run; on the real machine they depend on the
 * machine (and nothing is asserted about them: a busy host delays
 * everything).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/seacore.h"

#define HUNGRY    32
#define HUNGRY_NS SC_US(100)
#define TICK_NS   SC_MS(5)
#define TICKS     60

struct hungry {
    struct sc_task task;
};

static struct hungry hungry[HUNGRY];
static bool stop;
static unsigned live;             /* hungry tasks still queued */
static struct sc_promise drained; /* all of them have seen `stop` */

static void hungry_run(struct sc_task *t)
{
    if (stop) {
        if (--live == 0)
            sc_promise_set_value(&drained, 0);
        return; /* not re-queued: the task is free again */
    }
    sc_sched_burn(HUNGRY_NS); /* a stand-in for real work: spins, or moves virtual time */
    sc_task_schedule(t);      /* again, in the group it runs in */
}

static struct {
    struct sc_timer timer;
    struct sc_task task;
    uint64_t deadline;
    unsigned n;
    uint64_t late[TICKS];
    struct sc_promise done;
} tick;

static void tick_run(struct sc_task *t)
{
    (void)t;
    tick.late[tick.n++] = sc_now() - tick.deadline;
    sc_sched_burn(SC_US(5));
    if (tick.n < TICKS) {
        tick.deadline += TICK_NS;
        sc_timer_arm(&tick.timer, tick.deadline);
    } else {
        stop = true;
        sc_promise_set_value(&tick.done, 0);
    }
}

static void tick_fire(void *arg)
{
    (void)arg;
    sc_task_schedule(&tick.task); /* a timer's callback runs in the group that armed it */
}

static struct sc_future arm_first_tick(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    tick.deadline = sc_now() + TICK_NS;
    sc_timer_arm(&tick.timer, tick.deadline);
    return sc_make_ready(0);
}

/* One experiment: hungry tasks in `batch`, ticks in `ticks`. */
static struct sc_future experiment(struct sc_sched_group batch, struct sc_sched_group ticks)
{
    stop = false;
    live = HUNGRY;
    sc_promise_init(&drained);
    for (int i = 0; i < HUNGRY; i++) {
        hungry[i].task.run = hungry_run;
        sc_task_schedule_in(&hungry[i].task, batch);
    }
    tick.n = 0;
    sc_timer_init(&tick.timer, tick_fire, NULL);
    tick.task.run = tick_run;
    sc_promise_init(&tick.done);
    sc_future_discard(sc_sched_group_spawn(ticks, arm_first_tick, NULL, 0));
    return sc_promise_get_future(&tick.done);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *title)
{
    qsort(tick.late, TICKS, sizeof tick.late[0], cmp_u64);
    printf("%s: tick lateness median %.1f us, p99 %.1f us, max %.1f us\n", title,
           (double)tick.late[TICKS / 2] / 1e3, (double)tick.late[TICKS * 99 / 100] / 1e3,
           (double)tick.late[TICKS - 1] / 1e3);
}

static void print_group(struct sc_sched_group g)
{
    struct sc_sched_group_stats st;
    if (sc_sched_group_stats(g, &st) != 0)
        return;
    printf("  %-6s shares %4u  cpu %8.3f ms  tasks %6llu  slices %5llu  max wait %8.1f us\n",
           st.name, st.shares, (double)st.runtime_ns / 1e6, (unsigned long long)st.tasks_run,
           (unsigned long long)st.slices, (double)st.max_wait_ns / 1e3);
}

static struct sc_sched_group batch, ticks;

static struct sc_future second_report(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    printf("per-group counters on this shard (both experiments):\n");
    print_group(sc_sched_group_main());
    print_group(batch);
    print_group(ticks);
    return sc_make_ready(0);
}

static struct sc_future second_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    report("2. all in main");
    return sc_then(sc_promise_get_future(&drained), second_report, NULL, 0);
}

static struct sc_future second_start(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(experiment(sc_sched_group_main(), sc_sched_group_main()), second_done, NULL, 0);
}

static struct sc_future first_done(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    report("1. two groups ");
    /* the hungry tasks are still queued: reuse them once they are out */
    return sc_then(sc_promise_get_future(&drained), second_start, NULL, 0);
}

static struct sc_future groups_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    int err = sc_sched_group_create("batch", 100, &batch);
    if (!err)
        err = sc_sched_group_create("ticks", 1000, &ticks);
    if (err)
        return sc_make_error(err);
    printf("%d hungry tasks of %llu us in 'batch' (100 shares); a %llu ms tick in 'ticks' (1000)\n",
           HUNGRY, (unsigned long long)(HUNGRY_NS / 1000), (unsigned long long)(TICK_NS / 1000000));
    return sc_then(experiment(batch, ticks), first_done, NULL, 0);
}

int main(int argc, char **argv)
{
    return sc_app_run(argc, argv, groups_main);
}
