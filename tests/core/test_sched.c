/*
 * test_sched.c — scheduling groups: the table's limits and errors, shares
 * in proportion, idle groups, inheritance, statistics, and the isolation of
 * a latency-sensitive group from a CPU-hungry one.
 *
 * The share and isolation tests run in the simulator on one shard, where a
 * task's CPU cost is exact: --sim-task-ns (100 ns) per task, --sim-poll-ns
 * (10 ns) per quota check, plus whatever sc_sched_burn() declares. Their
 * bounds are derived from those costs and the task quota (comments below);
 * the figures they print are the same on every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "core/smp.h"
#include "tests/harness.h"

static int backend_i;
#define WORLD t_backends[backend_i]

#define QUOTA   500000u /* the default task quota, ns */
#define TASK_NS 100u    /* the default --sim-task-ns */
#define POLL_NS 10u     /* the default --sim-poll-ns */

static struct sc_config sim_one_shard(void)
{
    struct sc_config cfg = t_config(SC_BACKEND_SIM);
    cfg.smp = 1;
    return cfg;
}

/* ------------------------------------------------------------------ */
/* The table: limits and errors                                          */
/* ------------------------------------------------------------------ */

static struct sc_future never(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_make_ready(99);
}

static void noop_task(struct sc_task *t)
{
    (void)t;
}

static struct sc_task limits_task = {.run = noop_task};
static struct sc_future limits_after(void *cap, intptr_t v);

static struct sc_future limits_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_sched_group g, h, m;
    char name[64];
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        tr_step("%s -> %d (want %d)", #call, r_, (want));                                          \
        if (r_ != (want))                                                                          \
            return sc_make_ready(1);                                                               \
    } while (0)
    EXPECT(sc_sched_group_create("batch", 100, &g), 0);
    EXPECT(sc_sched_group_create("batch", 200, &h), -EEXIST);
    EXPECT(sc_sched_group_create("main", 200, &h), -EEXIST);
    EXPECT(sc_sched_group_create("x", 0, &h), -EINVAL);
    EXPECT(sc_sched_group_create("x", SC_SCHED_MAX_SHARES + 1, &h), -EINVAL);
    EXPECT(sc_sched_group_create(NULL, 10, &h), -EINVAL);
    EXPECT(sc_sched_group_create("", 10, &h), -EINVAL);
    EXPECT(sc_sched_group_create("x", 10, NULL), -EINVAL);
    memset(name, 'n', sizeof name);
    name[SC_SCHED_NAME_MAX] = '\0';
    EXPECT(sc_sched_group_create(name, 10, &h), -ENAMETOOLONG);
    name[SC_SCHED_NAME_MAX - 1] = '\0'; /* the longest name that fits */
    EXPECT(sc_sched_group_create(name, 10, &h), 0);
    EXPECT(sc_sched_group_find("batch", &m), 0);
    EXPECT((int)m.id, (int)g.id);
    EXPECT(sc_sched_group_find("nope", &m), -ENOENT);
    EXPECT(sc_sched_group_find("main", &m), 0);
    EXPECT((int)m.id, 0);
    /* fill the table: main + batch + the long name + 13 more */
    for (int i = 0; i < SC_SCHED_MAX_GROUPS - 3; i++) {
        snprintf(name, sizeof name, "g%d", i);
        EXPECT(sc_sched_group_create(name, 1 + (unsigned)i, &m), 0);
    }
    EXPECT(sc_sched_group_create("one-too-many", 10, &m), -ENOSPC);
    /* shares */
    EXPECT(sc_sched_group_set_shares(g, 0), -EINVAL);
    EXPECT(sc_sched_group_set_shares(g, 1001), -EINVAL);
    EXPECT(sc_sched_group_set_shares(g, 300), 0);
    struct sc_sched_group_stats st;
    EXPECT(sc_sched_group_stats(g, &st), 0);
    EXPECT((int)st.shares, 300);
    EXPECT(strcmp(st.name, "batch"), 0);
    EXPECT(sc_sched_group_stats(g, NULL), -EINVAL);
    struct sc_sched_group bad = {SC_SCHED_MAX_GROUPS};
    EXPECT(sc_sched_group_stats(bad, &st), -EINVAL);
    EXPECT(sc_sched_group_set_shares(bad, 10), -EINVAL);
    /* destroy: not main, not busy; the slot and the name come back */
    EXPECT(sc_sched_group_destroy(sc_sched_group_main()), -EINVAL);
    EXPECT(sc_sched_group_destroy(bad), -EINVAL);
    EXPECT(sc_task_schedule_in(&limits_task, g), 0);
    EXPECT(sc_sched_group_destroy(g), -EBUSY);                         /* a task is queued in it */
    EXPECT(sc_sched_group_destroy(sc_sched_group_current()), -EINVAL); /* main */
    /* not sc_yield(): that waits for main's queue only, and batch is another queue */
    return sc_then(sc_sleep(SC_MS(1)), limits_after, NULL, 0);
#undef EXPECT
}

/* After the queued task ran, destroy works; the handle is dead afterwards. */
static struct sc_future limits_after(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    struct sc_sched_group g, h;
    if (sc_sched_group_find("batch", &g) != 0)
        return sc_make_ready(2);
    int r = sc_sched_group_destroy(g);
    tr_step("destroy(batch) after its task ran -> %d", r);
    if (r != 0)
        return sc_make_ready(3);
    struct sc_sched_group_stats st;
    struct sc_task t = {.run = noop_task};
    if (sc_sched_group_stats(g, &st) != -EINVAL || sc_sched_group_destroy(g) != -EINVAL ||
        sc_task_schedule_in(&t, g) != -EINVAL || sc_sched_group_set_shares(g, 5) != -EINVAL)
        return sc_make_ready(4);
    struct sc_future f = sc_sched_group_spawn(g, never, NULL, 0);
    intptr_t out = 0;
    if (sc_future_get(f, &out) != -EINVAL)
        return sc_make_ready(5);
    f = sc_with_sched_group(g, never, NULL, 0);
    if (sc_future_get(f, &out) != -EINVAL)
        return sc_make_ready(6);
    if (sc_sched_group_create("batch2", 7, &h) != 0 || h.id != g.id)
        return sc_make_ready(7); /* the lowest free slot is reused */
    if (sc_sched_group_stats(h, &st) != 0 || st.tasks_run != 0 || st.runtime_ns != 0)
        return sc_make_ready(8); /* with fresh counters */
    tr_step("slot %u reused by batch2 with fresh counters", h.id);
    return sc_make_ready(0);
}

START_TEST(create_limits_errors)
{
    backend_i = _i;
    tr_reset();
    tr_step("limits, %s world", t_backend_names[_i]);
    T_CHECK(t_run(WORLD, limits_main, NULL) == 0, "the table's limits and errors");
}
END_TEST

START_TEST(off_a_shard)
{
    tr_reset();
    struct sc_sched_group g;
    T_CHECK(sc_sched_group_create("x", 10, &g) == -ENODEV, "no run: -ENODEV");
    T_CHECK(sc_sched_group_find("main", &g) == -ENODEV, "no run: -ENODEV");
    T_CHECK(sc_sched_group_current().id == 0, "off a shard, the current group is main");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Busy workers: tasks of a fixed cost that re-queue themselves          */
/* ------------------------------------------------------------------ */

#define MAX_WORKERS 64

struct worker {
    struct sc_task task;
    uint64_t burn_ns;
    uint64_t runs;
};

static struct worker workers[MAX_WORKERS];
static bool stop_workers;

static void worker_run(struct sc_task *t)
{
    struct worker *w = SC_CONTAINER_OF(t, struct worker, task);
    if (stop_workers)
        return;
    sc_sched_burn(w->burn_ns);
    w->runs++;
    sc_task_schedule(t); /* the current group: its own */
}

static void start_worker(int i, struct sc_sched_group g, uint64_t burn_ns)
{
    workers[i] = (struct worker){.task = {.run = worker_run}, .burn_ns = burn_ns};
    int r = sc_task_schedule_in(&workers[i].task, g);
    ck_assert_int_eq(r, 0);
}

/* A timer that ends the run at `at` ns after reading whatever it was told to. */
struct stopper {
    struct sc_timer timer;
    struct sc_promise done;
    void (*at_stop)(void);
};

static struct stopper stopper;

static void stopper_fire(void *arg)
{
    struct stopper *s = arg;
    if (s->at_stop)
        s->at_stop();
    stop_workers = true;
    sc_promise_set_value(&s->done, 0);
}

static struct sc_future stop_at(uint64_t at, void (*at_stop)(void))
{
    stop_workers = false;
    stopper.at_stop = at_stop;
    sc_timer_init(&stopper.timer, stopper_fire, &stopper);
    sc_promise_init(&stopper.done);
    sc_timer_arm(&stopper.timer, at);
    return sc_promise_get_future(&stopper.done);
}

/* ------------------------------------------------------------------ */
/* Shares in proportion                                                  */
/* ------------------------------------------------------------------ */

static struct sc_sched_group_stats prop_a, prop_b;
static struct sc_sched_group prop_ga, prop_gb;

static void prop_read(void)
{
    sc_sched_group_stats(prop_ga, &prop_a);
    sc_sched_group_stats(prop_gb, &prop_b);
}

static struct sc_future prop_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_sched_group_create("a100", 100, &prop_ga) ||
        sc_sched_group_create("b300", 300, &prop_gb))
        return sc_make_ready(1);
    /* Both start in the same task: they wake up with the same vruntime. */
    for (int i = 0; i < 4; i++) {
        start_worker(i, prop_ga, SC_US(10));
        start_worker(4 + i, prop_gb, SC_US(10));
    }
    return stop_at(SC_SEC(1), prop_read);
}

/*
 * The bound. The reactor always runs the group with the least vruntime, and
 * a slice adds at most slice_max * 1000 / shares to it, so two groups that
 * are busy from the same start never differ by more than the larger of
 * those: |rt_a * 1000/100 - rt_b * 1000/300| <= slice_max * 1000/100, i.e.
 * |3 rt_a - rt_b| <= 3 slice_max. A slice ends at the first quota check
 * after the quota, so slice_max = quota + one task (its burn, the task's
 * cost, one check).
 */
START_TEST(shares_proportional)
{
    tr_reset();
    struct sc_config cfg = sim_one_shard();
    T_CHECK(sc_run(&cfg, prop_main, NULL, 0, NULL) == 0, "run");
    uint64_t slice_max = QUOTA + SC_US(10) + TASK_NS + POLL_NS;
    int64_t diff = 3 * (int64_t)prop_a.runtime_ns - (int64_t)prop_b.runtime_ns;
    printf("shares_proportional: a100 %llu ns in %llu slices, b300 %llu ns in %llu slices, "
           "b/a = %.4f, |3a - b| = %lld ns (bound %llu)\n",
           (unsigned long long)prop_a.runtime_ns, (unsigned long long)prop_a.slices,
           (unsigned long long)prop_b.runtime_ns, (unsigned long long)prop_b.slices,
           (double)prop_b.runtime_ns / (double)prop_a.runtime_ns, (long long)diff,
           (unsigned long long)(3 * slice_max));
    tr_step("a: %llu ns, b: %llu ns", (unsigned long long)prop_a.runtime_ns,
            (unsigned long long)prop_b.runtime_ns);
    T_CHECK(prop_a.runtime_ns + prop_b.runtime_ns > SC_MS(990), "the two groups had the CPU");
    T_CHECK(llabs(diff) <= (long long)(3 * slice_max), "|3a - b| = %lld > %llu", (long long)diff,
            (unsigned long long)(3 * slice_max));
}
END_TEST

/* ------------------------------------------------------------------ */
/* An idle group costs nothing and earns no credit                       */
/* ------------------------------------------------------------------ */

static struct sc_sched_group idle_ga, idle_gc;
static bool idle_make_c;
static uint64_t idle_a_runtime, idle_a_tasks, idle_end;

static void idle_read(void)
{
    struct sc_sched_group_stats st;
    sc_sched_group_stats(idle_ga, &st);
    idle_a_runtime = st.runtime_ns;
    idle_a_tasks = st.tasks_run;
    idle_end = sc_now();
}

static struct sc_future idle_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_sched_group_create("a", 100, &idle_ga))
        return sc_make_ready(1);
    if (idle_make_c && sc_sched_group_create("c", 1000, &idle_gc))
        return sc_make_ready(1);
    for (int i = 0; i < 4; i++)
        start_worker(i, idle_ga, SC_US(10));
    return stop_at(SC_MS(200), idle_read);
}

/* A group that has existed all along, idle, changes nothing: not one
 * nanosecond, not one task (the simulator makes "nothing" exact). */
START_TEST(idle_group_costs_nothing)
{
    tr_reset();
    struct sc_config cfg = sim_one_shard();
    idle_make_c = false;
    T_CHECK(sc_run(&cfg, idle_main, NULL, 0, NULL) == 0, "run without c");
    uint64_t rt = idle_a_runtime, tasks = idle_a_tasks, end = idle_end;
    idle_make_c = true;
    T_CHECK(sc_run(&cfg, idle_main, NULL, 0, NULL) == 0, "run with an idle c");
    tr_step("a alone: %llu ns, %llu tasks; beside idle c: %llu ns, %llu tasks",
            (unsigned long long)rt, (unsigned long long)tasks, (unsigned long long)idle_a_runtime,
            (unsigned long long)idle_a_tasks);
    T_CHECK(rt == idle_a_runtime && tasks == idle_a_tasks && end == idle_end,
            "an idle group changed the busy one's run");
}
END_TEST

/* c (1000 shares) sleeps for 500 ms while a (100) runs, then both are busy
 * for 500 ms. Had c kept credit for its idle half, it would run alone to
 * the end (it would need 5 s of CPU to catch up with a's vruntime). With no
 * credit, a keeps its 100/1100 of the second half: 45.45 ms, give or take a
 * slice. */
static struct sc_sched_group_stats credit_a_mid, credit_a_end, credit_c_end;

static void credit_mid(void *arg)
{
    (void)arg;
    sc_sched_group_stats(idle_ga, &credit_a_mid);
    for (int i = 0; i < 4; i++)
        start_worker(8 + i, idle_gc, SC_US(10));
}

static void credit_read(void)
{
    sc_sched_group_stats(idle_ga, &credit_a_end);
    sc_sched_group_stats(idle_gc, &credit_c_end);
}

static struct sc_timer credit_timer;

static struct sc_future credit_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_sched_group_create("a", 100, &idle_ga) || sc_sched_group_create("c", 1000, &idle_gc))
        return sc_make_ready(1);
    for (int i = 0; i < 4; i++)
        start_worker(i, idle_ga, SC_US(10));
    sc_timer_init(&credit_timer, credit_mid, NULL);
    sc_timer_arm(&credit_timer, SC_MS(500));
    return stop_at(SC_SEC(1), credit_read);
}

START_TEST(idle_group_earns_no_credit)
{
    tr_reset();
    struct sc_config cfg = sim_one_shard();
    T_CHECK(sc_run(&cfg, credit_main, NULL, 0, NULL) == 0, "run");
    uint64_t a2 = credit_a_end.runtime_ns - credit_a_mid.runtime_ns;
    uint64_t slice_max = QUOTA + SC_US(10) + TASK_NS + POLL_NS;
    printf("idle_group_earns_no_credit: in the second half a100 ran %llu ns, c1000 %llu ns "
           "(fair: %llu)\n",
           (unsigned long long)a2, (unsigned long long)credit_c_end.runtime_ns,
           (unsigned long long)(SC_MS(500) / 11));
    tr_step("a in the second half: %llu ns; c: %llu ns", (unsigned long long)a2,
            (unsigned long long)credit_c_end.runtime_ns);
    T_CHECK(a2 + 2 * slice_max >= SC_MS(500) / 11 && a2 <= SC_MS(500) / 11 + 2 * slice_max,
            "a got %llu ns of the second half, not its 1/11", (unsigned long long)a2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Isolation: a latency-sensitive group beside a CPU-hungry one          */
/* ------------------------------------------------------------------ */

#define HUNGRY_WORKERS 32
#define HUNGRY_TASK_NS SC_US(100)
#define TICK_PERIOD_NS SC_US(5003) /* not a multiple of the quota: every phase */
#define TICKS          200

struct ticker {
    struct sc_timer timer;
    struct sc_task task;
    uint64_t deadline;
    unsigned n;
    uint64_t delay[TICKS];
};

static struct ticker ticker;
static bool iso_groups;

static void tick_task(struct sc_task *t)
{
    struct ticker *k = SC_CONTAINER_OF(t, struct ticker, task);
    k->delay[k->n++] = sc_now() - k->deadline;
    sc_sched_burn(SC_US(5)); /* the latency-sensitive work itself: short */
    if (k->n < TICKS) {
        k->deadline += TICK_PERIOD_NS;
        sc_timer_arm(&k->timer, k->deadline);
    } else if (!stop_workers) {
        stop_workers = true;
        sc_promise_set_value(&stopper.done, 0);
    }
}

/* A scheduler that starves the ticks must fail the test, not hang it. */
static void iso_give_up(void *arg)
{
    (void)arg;
    if (!stop_workers) {
        stop_workers = true;
        sc_promise_set_value(&stopper.done, 0);
    }
}

static void tick_fire(void *arg)
{
    struct ticker *k = arg;
    sc_task_schedule(&k->task); /* the timer's group: the one that armed it */
}

static struct sc_future arm_ticker(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    ticker.deadline = sc_now() + TICK_PERIOD_NS;
    sc_timer_arm(&ticker.timer, ticker.deadline); /* armed in the group this runs in */
    return sc_make_ready(0);
}

static struct sc_future iso_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    struct sc_sched_group hungry = sc_sched_group_main(), latency = sc_sched_group_main();
    if (iso_groups && (sc_sched_group_create("hungry", 100, &hungry) ||
                       sc_sched_group_create("latency", 1000, &latency)))
        return sc_make_ready(1);
    stop_workers = false;
    for (int i = 0; i < HUNGRY_WORKERS; i++)
        start_worker(i, hungry, HUNGRY_TASK_NS);
    memset(&ticker, 0, sizeof ticker);
    sc_timer_init(&ticker.timer, tick_fire, &ticker);
    ticker.task.run = tick_task;
    sc_promise_init(&stopper.done);
    sc_timer_init(&stopper.timer, iso_give_up, NULL);
    sc_timer_arm(&stopper.timer, 2 * TICKS * TICK_PERIOD_NS);
    sc_future_discard(sc_sched_group_spawn(latency, arm_ticker, NULL, 0));
    return sc_promise_get_future(&stopper.done);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void iso_measure(bool groups, uint64_t *max, uint64_t *p99)
{
    iso_groups = groups;
    struct sc_config cfg = sim_one_shard();
    T_CHECK(sc_run(&cfg, iso_main, NULL, 0, NULL) == 0, "isolation run (groups: %d)", groups);
    T_CHECK(ticker.n == TICKS, "only %u of %u ticks ran", ticker.n, TICKS);
    qsort(ticker.delay, TICKS, sizeof ticker.delay[0], cmp_u64);
    *max = ticker.delay[TICKS - 1];
    *p99 = ticker.delay[TICKS * 99 / 100 - 1];
}

/*
 * The bound. The tick's deadline D passes during some reactor turn that
 * started at B <= D. The turn's slice ends at the first quota check after
 * B + quota, so by B + quota + one hungry task (its 100 us burn and task
 * cost) + one check. The next turn fires the timer (one task cost), which
 * queues the tick's task; the latency group wakes with the least vruntime
 * (its tasks are short, the hungry group's vruntime grows 10x faster than
 * the wall), so it is picked first and its task starts one task cost later.
 * delay <= quota + 100 us + TASK_NS + POLL_NS + 2 TASK_NS.
 * With both in "main", the tick's task queues behind the 32 hungry tasks
 * already waiting: ~3.2 ms.
 */
START_TEST(isolation_latency_bounded)
{
    tr_reset();
    uint64_t g_max, g_p99, m_max, m_p99;
    iso_measure(true, &g_max, &g_p99);
    iso_measure(false, &m_max, &m_p99);
    uint64_t bound = QUOTA + HUNGRY_TASK_NS + 3 * TASK_NS + POLL_NS;
    printf("isolation: tick delay with groups max %llu ns p99 %llu ns (bound %llu); "
           "all in main max %llu ns p99 %llu ns\n",
           (unsigned long long)g_max, (unsigned long long)g_p99, (unsigned long long)bound,
           (unsigned long long)m_max, (unsigned long long)m_p99);
    tr_step("groups: max %llu p99 %llu; main only: max %llu p99 %llu", (unsigned long long)g_max,
            (unsigned long long)g_p99, (unsigned long long)m_max, (unsigned long long)m_p99);
    T_CHECK(g_max <= bound, "with groups the tick waited %llu ns > %llu", (unsigned long long)g_max,
            (unsigned long long)bound);
    T_CHECK(m_p99 > 4 * bound, "without groups the tick should wait far longer (p99 %llu ns)",
            (unsigned long long)m_p99);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Inheritance                                                           */
/* ------------------------------------------------------------------ */

static struct sc_sched_group inh_g, inh_h;
static struct sc_promise inh_p;
static unsigned inh_bad;
static unsigned inh_seen;

#define EXPECT_IN(grp, what)                                                                       \
    do {                                                                                           \
        inh_seen++;                                                                                \
        if (sc_sched_group_current().id != (grp).id) {                                             \
            tr_step("%s ran in group %u, expected %u", what, sc_sched_group_current().id,          \
                    (grp).id);                                                                     \
            inh_bad++;                                                                             \
        }                                                                                          \
    } while (0)

static struct sc_future inh_cont(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(inh_g, "a continuation made in g, resolved from h");
    return sc_make_ready(0);
}

static struct sc_future inh_spawned(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(inh_g, "sc_spawn from g");
    return sc_make_ready(0);
}

static void inh_timer_fn(void *arg)
{
    (void)arg;
    EXPECT_IN(inh_g, "a timer armed in g");
}

static struct sc_timer inh_timer;

static struct sc_future inh_in_g(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(inh_g, "sc_sched_group_spawn(g)");
    sc_timer_init(&inh_timer, inh_timer_fn, NULL);
    sc_timer_arm_in(&inh_timer, SC_US(10));
    sc_future_discard(sc_spawn(inh_spawned, NULL, 0));
    /* waits on a promise that h resolves */
    return sc_then(sc_promise_get_future(&inh_p), inh_cont, NULL, 0);
}

static struct sc_future inh_resolver(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(inh_h, "sc_sched_group_spawn(h)");
    sc_promise_set_value(&inh_p, 1);
    return sc_make_ready(0);
}

static struct sc_future inh_inline(void *cap, intptr_t v)
{
    (void)v;
    EXPECT_IN(inh_g, "sc_with_sched_group(g)");
    *(bool *)cap = true;
    return sc_make_ready(0);
}

static struct sc_future inh_with_from_g(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    /* From g itself it runs at once (unless the quota is spent: then as a
     * task of g); either way, in g. */
    bool ran = false;
    return sc_with_sched_group(inh_g, inh_inline, &ran, sizeof ran);
}

static struct sc_future inh_back_in_main(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(sc_sched_group_main(), "main's continuation after waiting on g and h");
    return sc_make_ready(0);
}

static struct sc_future inh_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    if (sc_sched_group_create("g", 200, &inh_g) || sc_sched_group_create("h", 300, &inh_h))
        return sc_make_ready(1);
    inh_bad = inh_seen = 0;
    EXPECT_IN(sc_sched_group_main(), "the app's main function");
    sc_promise_init(&inh_p);
    bool ran = false;
    struct sc_future fs[5];
    fs[0] = sc_sched_group_spawn(inh_g, inh_in_g, NULL, 0);
    fs[1] = sc_sched_group_spawn(inh_h, inh_resolver, NULL, 0);
    fs[2] = sc_with_sched_group(inh_g, inh_inline, &ran, sizeof ran); /* from main: a task */
    fs[3] = sc_sched_group_spawn(inh_g, inh_with_from_g, NULL, 0);
    fs[4] = sc_sleep(SC_US(50));
    if (ran)
        inh_bad++; /* sc_with_sched_group from another group must not run inline */
    return sc_then(sc_when_all_succeed(fs, 5), inh_back_in_main, NULL, 0);
}

START_TEST(inheritance)
{
    backend_i = _i;
    tr_reset();
    T_CHECK(t_run(WORLD, inh_main, NULL) == 0, "run");
    T_CHECK(inh_seen == 9, "every check ran (%u of 9)", inh_seen);
    T_CHECK(inh_bad == 0, "%u checks saw the wrong group", inh_bad);
}
END_TEST

/* Across shards: fn runs in the sender's group on the target; the answer's
 * continuation runs in the sender's group at home. */
static struct sc_future remote_fn(void *cap)
{
    (void)cap;
    EXPECT_IN(inh_g, "a submit_to function on the target");
    return sc_spawn(inh_spawned, NULL, 0); /* and what it starts there */
}

static struct sc_future remote_back(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    EXPECT_IN(inh_g, "the answer's continuation on the sender");
    return sc_make_ready(0);
}

static struct sc_future remote_send(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_then(sc_smp_submit_to(1, remote_fn, NULL, 0), remote_back, NULL, 0);
}

static struct sc_future remote_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    inh_bad = inh_seen = 0;
    if (sc_sched_group_create("g", 200, &inh_g))
        return sc_make_ready(1);
    return sc_sched_group_spawn(inh_g, remote_send, NULL, 0);
}

START_TEST(inheritance_across_shards)
{
    backend_i = _i;
    tr_reset();
    struct sc_config cfg = t_config(WORLD);
    cfg.smp = 2;
    T_CHECK(sc_run(&cfg, remote_main, NULL, 0, NULL) == 0, "run");
    T_CHECK(inh_seen == 3 && inh_bad == 0, "%u of 3 checks ran, %u saw the wrong group", inh_seen,
            inh_bad);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Statistics and FIFO order within a group                              */
/* ------------------------------------------------------------------ */

#define FIFO_TASKS 50

struct order_task {
    struct sc_task task;
    unsigned group_i, index;
};

static struct order_task order_tasks[2][FIFO_TASKS];
static unsigned order_next[2], order_bad;
static struct sc_sched_group order_g[2];
static struct sc_sched_group_stats order_before[2], order_after[2];

static void order_run(struct sc_task *t)
{
    struct order_task *o = SC_CONTAINER_OF(t, struct order_task, task);
    if (o->index != order_next[o->group_i]++)
        order_bad++;
    if (sc_sched_group_current().id != order_g[o->group_i].id)
        order_bad++;
}

static struct sc_future order_check(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    for (int k = 0; k < 2; k++)
        sc_sched_group_stats(order_g[k], &order_after[k]);
    return sc_make_ready(0);
}

static struct sc_future order_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    order_bad = order_next[0] = order_next[1] = 0;
    if (sc_sched_group_create("x", 100, &order_g[0]) ||
        sc_sched_group_create("y", 1000, &order_g[1]))
        return sc_make_ready(1);
    for (unsigned i = 0; i < FIFO_TASKS; i++)
        for (unsigned k = 0; k < 2; k++) {
            order_tasks[k][i] =
                (struct order_task){.task.run = order_run, .group_i = k, .index = i};
            sc_task_schedule_in(&order_tasks[k][i].task, order_g[k]);
        }
    for (int k = 0; k < 2; k++)
        sc_sched_group_stats(order_g[k], &order_before[k]);
    return sc_then(sc_sleep(SC_MS(1)), order_check, NULL, 0);
}

START_TEST(stats_and_fifo)
{
    backend_i = _i;
    tr_reset();
    struct sc_config cfg = t_config(WORLD);
    cfg.smp = 1; /* the simulator's steps would cut slices short on several shards */
    T_CHECK(sc_run(&cfg, order_main, NULL, 0, NULL) == 0, "run");
    T_CHECK(order_bad == 0, "%u tasks ran out of order or in the wrong group", order_bad);
    for (int k = 0; k < 2; k++) {
        tr_step("group %d: queued %llu before; after: run %llu, queued %llu, %llu ns, %llu slices",
                k, (unsigned long long)order_before[k].tasks_queued,
                (unsigned long long)order_after[k].tasks_run,
                (unsigned long long)order_after[k].tasks_queued,
                (unsigned long long)order_after[k].runtime_ns,
                (unsigned long long)order_after[k].slices);
        T_CHECK(order_before[k].tasks_queued == FIFO_TASKS && order_before[k].tasks_run == 0,
                "before: all queued, none run");
        T_CHECK(order_after[k].tasks_run == FIFO_TASKS && order_after[k].tasks_queued == 0,
                "after: all run, none queued");
        T_CHECK(order_after[k].slices >= 1, "picked at least once");
        /* Exact in the simulator: one slice of 50 tasks and 49 quota checks,
         * plus, for the group that runs second, the check made between the
         * two slices (a slice is measured from the end of the previous one). */
        uint64_t rt = order_after[k].runtime_ns,
                 min = FIFO_TASKS * TASK_NS + (FIFO_TASKS - 1) * POLL_NS;
        if (WORLD == SC_BACKEND_SIM)
            T_CHECK(order_after[k].slices == 1 && (rt == min || rt == min + POLL_NS),
                    "sim runtime %llu", (unsigned long long)rt);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("sched");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, create_limits_errors, 0, 2);
    tcase_add_test(tc, off_a_shard);
    tcase_add_test(tc, shares_proportional);
    tcase_add_test(tc, idle_group_costs_nothing);
    tcase_add_test(tc, idle_group_earns_no_credit);
    tcase_add_test(tc, isolation_latency_bounded);
    tcase_add_loop_test(tc, inheritance, 0, 2);
    tcase_add_loop_test(tc, inheritance_across_shards, 0, 2);
    tcase_add_loop_test(tc, stats_and_fifo, 0, 2);
    suite_add_tcase(s, tc);
    return t_main(s);
}
