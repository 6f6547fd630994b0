/*
 * grader.c — lab 07: share-proportional group selection (core/sched.c).
 *
 * The student writes the three functions of core/sched.c that the reactor
 * calls to share a shard's CPU between scheduling groups: sc__sched_pick
 * (which group runs next), sc__sched_charge (what a slice costs in virtual
 * runtime) and sc__sched_wake (no credit for idle time). The checks go from
 * the closest look to the widest:
 *
 *   1. the three functions alone, on hand-made scheduler states: no shard,
 *      no clock, so every expectation is exact (these do not depend on a
 *      world and run once);
 *   2. the functions inside the reactor, in both worlds: which group's task
 *      runs first, and the accounting identity between a group's CPU time
 *      and its virtual runtime, which holds on the real machine as exactly
 *      as in the simulator;
 *   3. what the policy is for, in the simulator, where a task's cost is
 *      exact: two busy groups with 100 and 300 shares get 1:3 of the CPU, a
 *      group back from idling gets its share and no more, and a
 *      latency-sensitive group beside a CPU-hungry one waits at most one
 *      slice. The bounds are derived in the comments from the simulator's
 *      cost model (chapter 3) and the task quota.
 *
 * Every check tells its story with tr_step; a failing T_CHECK prints it,
 * then says what was expected and what happened.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sched.h"
#include "core/sched_impl.h"
#include "tests/harness.h"

/* The simulator's cost model with the defaults (chapter 3, section 3.6). */
#define QUOTA   500000u /* the task quota, ns */
#define TASK_NS 100u    /* --sim-task-ns: each task */
#define POLL_NS 10u     /* each quota check */

/* Start the story of one check. */
static void begin(const char *name, int w)
{
    tr_reset();
    if (w < 0)
        tr_step("%s (the functions alone: no world)", name);
    else
        tr_step("%s, %s world", name, t_backend_names[w]);
}

/* One shard of either world; the simulator with its default costs. */
static struct sc_config one_shard(int w)
{
    struct sc_config cfg = t_config(t_backends[w]);
    cfg.smp = 1;
    return cfg;
}

static void run_story(struct sc_config *cfg, sc_main_fn fn)
{
    int code = sc_run(cfg, fn, NULL, 0, NULL);
    tr_step("the run ended with exit code %d", code);
    T_CHECK(code == 0, "the run should end with exit code 0, not %d (see the steps above)", code);
}

static void make_group(const char *name, unsigned shares, struct sc_sched_group *g)
{
    int r = sc_sched_group_create(name, shares, g);
    T_CHECK(r == 0, "sc_sched_group_create(\"%s\", %u) returned %d (this part is given)", name,
            shares, r);
}

static uint64_t vruntime_of(struct sc_sched_group g)
{
    struct sc_sched_group_stats st;
    return sc_sched_group_stats(g, &st) == 0 ? st.vruntime : 0;
}

/* ---- 1. the functions alone ------------------------------------------------ */

/* A fresh scheduler state: no group active, every vruntime 0. */
static void blank_state(struct sc__sched *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->running = SC__SCHED_NONE;
}

/* Make groups ids[0..n) active with the given vruntimes. */
static void activate(struct sc__sched *sc, unsigned n, const unsigned *ids, const uint64_t *vr)
{
    for (unsigned i = 0; i < n; i++) {
        sc->active |= 1u << ids[i];
        sc->acct[ids[i]].vruntime = vr[i];
    }
}

static void expect_pick(struct sc__sched *sc, unsigned want, const char *why)
{
    uint64_t before[SC_SCHED_MAX_GROUPS];
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
        before[g] = sc->acct[g].vruntime;
    uint32_t active = sc->active;
    unsigned got = sc__sched_pick(sc);
    tr_step("sc__sched_pick (active mask 0x%04x) -> %u", active, got);
    T_CHECK(got == want, "sc__sched_pick should choose group %u (%s), but chose %u", want, why,
            got);
    T_CHECK(sc->active == active,
            "sc__sched_pick changed sc->active (0x%04x -> 0x%04x); the "
            "reactor owns that mask",
            active, sc->active);
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
        T_CHECK(sc->acct[g].vruntime == before[g],
                "sc__sched_pick changed group %u's vruntime (%llu -> %llu); only "
                "sc__sched_charge and sc__sched_wake move vruntimes",
                g, (unsigned long long)before[g], (unsigned long long)sc->acct[g].vruntime);
}

START_TEST(pick_least_vruntime)
{
    begin("pick_least_vruntime", -1);
    struct sc__sched sc;

    blank_state(&sc);
    activate(&sc, 1, (unsigned[]){6}, (uint64_t[]){12345});
    tr_step("only group 6 is active (vruntime 12345)");
    expect_pick(&sc, 6, "the only active group");
    T_CHECK(sc.min_vruntime == 12345,
            "after picking group 6 (vruntime 12345), min_vruntime should be 12345, not %llu: "
            "min_vruntime is the vruntime of the last group picked (it never goes down)",
            (unsigned long long)sc.min_vruntime);

    blank_state(&sc);
    sc.min_vruntime = 100;
    activate(&sc, 3, (unsigned[]){1, 3, 5}, (uint64_t[]){500, 200, 900});
    sc.acct[0].vruntime = 7; /* idle, and behind everyone: not a candidate */
    sc.acct[2].vruntime = 0;
    tr_step("active: 1 (500), 3 (200), 5 (900); idle: 0 (7), 2 (0); min_vruntime 100");
    expect_pick(&sc, 3, "the active group with the least vruntime; idle groups are not looked at");
    T_CHECK(sc.min_vruntime == 200,
            "after picking group 3 (vruntime 200) with min_vruntime at 100, min_vruntime should "
            "be 200, not %llu",
            (unsigned long long)sc.min_vruntime);

    blank_state(&sc);
    activate(&sc, 2, (unsigned[]){1, 2}, (uint64_t[]){UINT64_C(1) << 32, 5});
    tr_step("active: 1 (2^32), 2 (5): vruntimes are 64-bit");
    expect_pick(&sc, 2, "5 < 2^32: compare all 64 bits of the vruntime");

    blank_state(&sc);
    activate(&sc, 2, (unsigned[]){4, 9}, (uint64_t[]){UINT64_C(1) << 61, (UINT64_C(1) << 61) - 1});
    tr_step("active: 4 (2^61), 9 (2^61 - 1)");
    expect_pick(&sc, 9, "2^61 - 1 < 2^61");

    tr_step("all 16 groups active, the least vruntime at group 0, then 15, then 7");
    static const unsigned where[3] = {0, 15, 7};
    for (int k = 0; k < 3; k++) {
        blank_state(&sc);
        for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
            activate(&sc, 1, &g, (uint64_t[]){1000 + 37 * ((g * 7 + 3) % SC_SCHED_MAX_GROUPS)});
        sc.acct[where[k]].vruntime = 999;
        expect_pick(&sc, where[k], "the least vruntime (999) of all 16");
    }
}
END_TEST

START_TEST(pick_tie_lowest_id)
{
    begin("pick_tie_lowest_id", -1);
    struct sc__sched sc;

    blank_state(&sc);
    activate(&sc, 3, (unsigned[]){9, 4, 2}, (uint64_t[]){700, 700, 700});
    tr_step("active: 2, 4, 9, all at vruntime 700");
    expect_pick(&sc, 2, "a tie goes to the lowest id");

    blank_state(&sc);
    activate(&sc, 3, (unsigned[]){15, 14, 3}, (uint64_t[]){5, 5, 6});
    tr_step("active: 3 (6), 14 (5), 15 (5)");
    expect_pick(&sc, 14, "14 and 15 tie for the least vruntime; 14 is the lower id");

    blank_state(&sc);
    for (unsigned g = 0; g < SC_SCHED_MAX_GROUPS; g++)
        activate(&sc, 1, &g, (uint64_t[]){42});
    tr_step("all 16 groups active at vruntime 42");
    expect_pick(&sc, 0, "a tie of all 16 goes to group 0");
}
END_TEST

static void expect_charge(struct sc__sched *sc, unsigned g, uint64_t delta, unsigned shares,
                          uint64_t want)
{
    uint64_t before = sc->acct[g].vruntime, min = sc->min_vruntime;
    sc__sched_charge(sc, g, delta, shares);
    uint64_t got = sc->acct[g].vruntime - before;
    tr_step("charge group %u: %llu ns at %u shares -> vruntime %llu -> %llu (+%llu)", g,
            (unsigned long long)delta, shares, (unsigned long long)before,
            (unsigned long long)sc->acct[g].vruntime, (unsigned long long)got);
    T_CHECK(sc->acct[g].vruntime == before + want,
            "%llu ns at %u shares should add %llu to the vruntime (ns * %u / shares, multiplied "
            "before dividing, in 64 bits), but the vruntime went from %llu to %llu",
            (unsigned long long)delta, shares, (unsigned long long)want, SC__SCHED_SCALE,
            (unsigned long long)before, (unsigned long long)sc->acct[g].vruntime);
    T_CHECK(sc->min_vruntime == min,
            "sc__sched_charge changed min_vruntime (%llu -> %llu); only sc__sched_pick moves it",
            (unsigned long long)min, (unsigned long long)sc->min_vruntime);
}

START_TEST(charge_scaled_by_shares)
{
    begin("charge_scaled_by_shares", -1);
    struct sc__sched sc;
    blank_state(&sc);
    expect_charge(&sc, 1, 1000, 1000, 1000);       /* the most shares: plain ns */
    expect_charge(&sc, 2, 1000, 100, 10000);       /* a tenth of the shares: 10x as fast */
    expect_charge(&sc, 3, 1000, 1, 1000000);       /* one share: 1000x */
    expect_charge(&sc, 4, 1000, 300, 3333);        /* 1000 * 1000 / 300, rounded down */
    expect_charge(&sc, 5, 1234567, 300, 4115223);  /* not 1234567 / 300 * 1000 = 4115000 */
    expect_charge(&sc, 6, SC_MS(5), 7, 714285714); /* 5e9 does not fit in 32 bits */
    expect_charge(&sc, 7, SC_SEC(10), 1, UINT64_C(10000000000000));
    tr_step("charges add up: group 2 again, 500 ns at 250 shares");
    expect_charge(&sc, 2, 500, 250, 2000);
    T_CHECK(sc.acct[2].vruntime == 12000,
            "group 2 was charged 10000 then 2000: its vruntime should be 12000, not %llu (a "
            "charge adds to the vruntime)",
            (unsigned long long)sc.acct[2].vruntime);
    for (unsigned g = 8; g < SC_SCHED_MAX_GROUPS; g++)
        T_CHECK(sc.acct[g].vruntime == 0,
                "group %u was never charged, yet its vruntime is %llu: charge only group g", g,
                (unsigned long long)sc.acct[g].vruntime);
    T_CHECK(sc.acct[0].vruntime == 0,
            "group 0 was never charged, yet its vruntime is %llu: charge only group g",
            (unsigned long long)sc.acct[0].vruntime);
}
END_TEST

static void expect_wake(struct sc__sched *sc, unsigned g, uint64_t want, const char *why)
{
    uint64_t other[SC_SCHED_MAX_GROUPS], before = sc->acct[g].vruntime, min = sc->min_vruntime;
    for (unsigned i = 0; i < SC_SCHED_MAX_GROUPS; i++)
        other[i] = sc->acct[i].vruntime;
    sc__sched_wake(sc, g);
    tr_step("wake group %u (vruntime %llu, min_vruntime %llu) -> vruntime %llu", g,
            (unsigned long long)before, (unsigned long long)min,
            (unsigned long long)sc->acct[g].vruntime);
    T_CHECK(sc->acct[g].vruntime == want,
            "group %u woke with vruntime %llu while min_vruntime was %llu: it should then have "
            "%llu (%s), not %llu",
            g, (unsigned long long)before, (unsigned long long)min, (unsigned long long)want, why,
            (unsigned long long)sc->acct[g].vruntime);
    T_CHECK(sc->min_vruntime == min,
            "sc__sched_wake changed min_vruntime (%llu -> %llu); only sc__sched_pick moves it",
            (unsigned long long)min, (unsigned long long)sc->min_vruntime);
    for (unsigned i = 0; i < SC_SCHED_MAX_GROUPS; i++)
        T_CHECK(i == g || sc->acct[i].vruntime == other[i],
                "waking group %u changed group %u's vruntime (%llu -> %llu)", g, i,
                (unsigned long long)other[i], (unsigned long long)sc->acct[i].vruntime);
}

START_TEST(wake_clamps_to_min_vruntime)
{
    begin("wake_clamps_to_min_vruntime", -1);
    struct sc__sched sc;
    blank_state(&sc);
    sc.min_vruntime = 5000000;
    sc.acct[1].vruntime = 5000000;
    sc.acct[2].vruntime = 120;
    sc.acct[3].vruntime = 9000000;
    sc.acct[4].vruntime = 0;
    sc.active = 1u << 1; /* group 1 kept running while the others idled */
    tr_step("group 1 kept running (vruntime 5000000); 2, 3 and 4 were idle");
    expect_wake(&sc, 2, 5000000,
                "an idle group earns no credit: it starts no lower than min_vruntime");
    expect_wake(&sc, 4, 5000000, "a brand-new group starts at min_vruntime, not at 0");
    expect_wake(&sc, 3, 9000000,
                "a group that was ahead keeps its vruntime: waking does not forgive its debt");
    expect_wake(&sc, 1, 5000000, "at min_vruntime already: nothing to do");
}
END_TEST

/* ---- 2. inside the reactor, both worlds ----------------------------------- */

/* Tasks that write down the order in which they ran, and in which group. */
struct mark {
    struct sc_task task;
    char name;
};

static char order[16];
static unsigned order_len, wrong_group;
static struct sc_sched_group mark_group[4];

static void mark_run(struct sc_task *t)
{
    struct mark *m = SC_CONTAINER_OF(t, struct mark, task);
    if (order_len < sizeof order - 1)
        order[order_len++] = m->name;
    unsigned k = (unsigned)(m->name - 'A');
    if (sc_sched_group_current().id != mark_group[k].id)
        wrong_group++;
}

/* A heavy task: 200 us of CPU at 1 share is worth 200 ms of vruntime. */
static void heavy_run(struct sc_task *t)
{
    (void)t;
    sc_sched_burn(SC_US(200));
}

static struct mark marks[4];
static struct sc_task heavy_task;

static struct sc_future least_step2(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    /* A first, then B: both wake now, A with its 200 ms of debt. */
    marks[0] = (struct mark){.task.run = mark_run, .name = 'A'};
    marks[1] = (struct mark){.task.run = mark_run, .name = 'B'};
    uint64_t va = vruntime_of(mark_group[0]);
    tr_step("A ran a 200 us task at 1 share: its vruntime is %llu", (unsigned long long)va);
    sc_task_schedule_in(&marks[0].task, mark_group[0]);
    sc_task_schedule_in(&marks[1].task, mark_group[1]);
    tr_step("queued one task in A, then one in B (vruntimes now A %llu, B %llu)",
            (unsigned long long)vruntime_of(mark_group[0]),
            (unsigned long long)vruntime_of(mark_group[1]));
    return sc_sleep(SC_MS(1));
}

static struct sc_future least_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    order_len = wrong_group = 0;
    memset(order, 0, sizeof order);
    make_group("A", 1, &mark_group[0]);
    make_group("B", SC_SCHED_MAX_SHARES, &mark_group[1]);
    tr_step("groups A (id %u, 1 share) and B (id %u, 1000 shares)", mark_group[0].id,
            mark_group[1].id);
    heavy_task.run = heavy_run;
    sc_task_schedule_in(&heavy_task, mark_group[0]);
    return sc_then(sc_sleep(SC_MS(1)), least_step2, NULL, 0);
}

/* A used 200 us of CPU at 1 share; B used none. When both have a task
 * queued, B's must run first, though A has the lower id and queued first. */
START_TEST(reactor_runs_least_vruntime_first)
{
    begin("reactor_runs_least_vruntime_first", _i);
    struct sc_config cfg = one_shard(_i);
    run_story(&cfg, least_main);
    tr_step("the tasks ran in the order \"%s\"", order);
    T_CHECK(order_len == 2, "both tasks should have run once each; the order was \"%s\"", order);
    T_CHECK(wrong_group == 0, "a task ran outside its group (this part is given)");
    T_CHECK(strcmp(order, "BA") == 0,
            "B's task should run before A's: A had used 200 us at 1 share (a large vruntime), "
            "B nothing; the order was \"%s\". Does sc__sched_pick compare vruntimes, does "
            "sc__sched_charge charge them, and does sc__sched_wake leave a vruntime above "
            "min_vruntime as it is?",
            order);
}
END_TEST

static struct sc_future tie_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    order_len = wrong_group = 0;
    memset(order, 0, sizeof order);
    make_group("A", 500, &mark_group[0]);
    make_group("B", 500, &mark_group[1]);
    make_group("C", 500, &mark_group[2]);
    tr_step("groups A (id %u), B (id %u), C (id %u), 500 shares each", mark_group[0].id,
            mark_group[1].id, mark_group[2].id);
    /* queued in the reverse order: C, B, A; all three wake at min_vruntime */
    for (int k = 2; k >= 0; k--) {
        marks[k] = (struct mark){.task.run = mark_run, .name = (char)('A' + k)};
        sc_task_schedule_in(&marks[k].task, mark_group[k]);
    }
    tr_step("queued one task in C, then B, then A, from one task");
    return sc_sleep(SC_MS(1));
}

/* Three new groups woken in one task have the same vruntime: the lowest id
 * goes first, whatever the order of queueing. After its task, A has been
 * charged, so B (the lower of the two left) goes next. */
START_TEST(reactor_ties_go_to_lowest_id)
{
    begin("reactor_ties_go_to_lowest_id", _i);
    struct sc_config cfg = one_shard(_i);
    run_story(&cfg, tie_main);
    tr_step("the tasks ran in the order \"%s\"", order);
    T_CHECK(wrong_group == 0, "a task ran outside its group (this part is given)");
    T_CHECK(strcmp(order, "ABC") == 0,
            "three groups woke together with equal vruntimes and were queued C, B, A: they "
            "should run A, B, C (a tie goes to the lowest id, and a group that ran is charged), "
            "but ran \"%s\"",
            order);
}
END_TEST

/* Busy workers: tasks of a fixed cost that re-queue themselves in their group. */
#define MAX_WORKERS 16

struct worker {
    struct sc_task task;
    unsigned group_i;
    uint64_t burn_ns;
};

static struct worker workers[MAX_WORKERS];
static bool stop_workers;
static struct sc_sched_group wgroup[MAX_WORKERS];
static bool wseen[MAX_WORKERS];
static uint64_t wfirst_vr[MAX_WORKERS]; /* a group's vruntime when its first task ran */
static uint64_t wlast_vr[MAX_WORKERS];  /* ... when its latest task ran */

static void worker_run(struct sc_task *t)
{
    struct worker *w = SC_CONTAINER_OF(t, struct worker, task);
    if (stop_workers)
        return;
    /* inside the group's slice: the vruntime it had when it was picked */
    uint64_t vr = vruntime_of(wgroup[w->group_i]);
    if (!wseen[w->group_i]) {
        wseen[w->group_i] = true;
        wfirst_vr[w->group_i] = vr;
    }
    wlast_vr[w->group_i] = vr;
    sc_sched_burn(w->burn_ns);
    sc_task_schedule(t); /* the current group: its own */
}

static void start_worker(unsigned i, unsigned group_i, uint64_t burn_ns)
{
    workers[i] = (struct worker){.task.run = worker_run, .group_i = group_i, .burn_ns = burn_ns};
    int r = sc_task_schedule_in(&workers[i].task, wgroup[group_i]);
    T_CHECK(r == 0, "sc_task_schedule_in returned %d (this part is given)", r);
}

/* A timer that stops the workers at a given time, after a hook. */
static struct {
    struct sc_timer timer;
    struct sc_promise done;
    void (*at_stop)(void);
} stopper;

static void stopper_fire(void *arg)
{
    (void)arg;
    if (stopper.at_stop)
        stopper.at_stop();
    stop_workers = true;
    sc_promise_set_value(&stopper.done, 0);
}

/* The future resolves when the workers are told to stop, and a little
 * later, so that their last tasks have drained out of the queues. */
static struct sc_future stop_in(uint64_t delay, void (*at_stop)(void))
{
    stop_workers = false;
    memset(wseen, 0, sizeof wseen);
    stopper.at_stop = at_stop;
    sc_timer_init(&stopper.timer, stopper_fire, NULL);
    sc_promise_init(&stopper.done);
    sc_timer_arm_in(&stopper.timer, delay);
    return sc_promise_get_future(&stopper.done);
}

static struct sc_future drained(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    return sc_sleep(SC_MS(1));
}

/* ---- the accounting identity ---- */

#define ID_GROUPS 5
static const unsigned id_shares[ID_GROUPS] = {1000, 250, 100, 300, 7};
static struct sc_sched_group_stats id_end[ID_GROUPS];

static struct sc_future id_read(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    for (unsigned k = 0; k < ID_GROUPS; k++)
        sc_sched_group_stats(wgroup[k], &id_end[k]);
    return sc_make_ready(0);
}

static struct sc_future identity_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    char name[8];
    for (unsigned k = 0; k < ID_GROUPS; k++) {
        snprintf(name, sizeof name, "s%u", id_shares[k]);
        make_group(name, id_shares[k], &wgroup[k]);
        start_worker(2 * k, k, SC_US(20));
        start_worker(2 * k + 1, k, SC_US(20));
    }
    tr_step("5 groups (1000, 250, 100, 300 and 7 shares), 2 workers each, 20 us a task, 30 ms");
    struct sc_future f = sc_then(stop_in(SC_MS(30), NULL), drained, NULL, 0);
    return sc_then(f, id_read, NULL, 0);
}

/*
 * The reactor charges every slice: runtime_ns grows by the slice's ns, and
 * the vruntime by ns * 1000 / shares, rounded down. A group that stays busy
 * is never woken again, so between its first task and its end the vruntime
 * grows by exactly the sum of its charges: runtime * 1000 / shares when the
 * shares divide 1000, and at most one nanosecond less per slice otherwise.
 * An identity of the accounting, not a measurement: it holds in both worlds.
 */
START_TEST(vruntime_follows_shares)
{
    begin("vruntime_follows_shares", _i);
    struct sc_config cfg = one_shard(_i);
    run_story(&cfg, identity_main);
    for (unsigned k = 0; k < ID_GROUPS; k++) {
        const struct sc_sched_group_stats *st = &id_end[k];
        uint64_t grew = st->vruntime - wfirst_vr[k];
        uint64_t hi = st->runtime_ns * SC__SCHED_SCALE / id_shares[k];
        uint64_t lo =
            SC__SCHED_SCALE % id_shares[k] ? hi - (hi < st->slices ? hi : st->slices) : hi;
        tr_step("%u shares: %llu ns of CPU in %llu slices; vruntime %llu at its first task, "
                "%llu at the end",
                id_shares[k], (unsigned long long)st->runtime_ns, (unsigned long long)st->slices,
                (unsigned long long)wfirst_vr[k], (unsigned long long)st->vruntime);
        T_CHECK(st->slices > 0 && st->runtime_ns > 0,
                "the group with %u shares never ran (%llu slices): every busy group must get "
                "some CPU",
                id_shares[k], (unsigned long long)st->slices);
        T_CHECK(st->vruntime >= wfirst_vr[k] && grew >= lo && grew <= hi,
                "the group with %u shares used %llu ns of CPU in %llu slices, so its vruntime "
                "should have grown by %s%llu (ns * %u / shares, summed over slices), but it grew "
                "by %lld",
                id_shares[k], (unsigned long long)st->runtime_ns, (unsigned long long)st->slices,
                lo == hi ? "exactly " : "at most ", (unsigned long long)hi, SC__SCHED_SCALE,
                (long long)(st->vruntime - wfirst_vr[k]));
    }
}
END_TEST

/* ---- an idle group earns no credit ---- */

static struct sc_sched_group_stats idle_a_mid, idle_a_end, idle_c_end;
static uint64_t idle_a_last_vr; /* a's vruntime at its last task before c woke */

static void idle_wake_c(void *arg)
{
    (void)arg;
    idle_a_last_vr = wlast_vr[0];
    sc_sched_group_stats(wgroup[0], &idle_a_mid);
    for (unsigned i = 0; i < 4; i++)
        start_worker(4 + i, 1, SC_US(10));
}

static void idle_read(void)
{
    sc_sched_group_stats(wgroup[0], &idle_a_end);
    sc_sched_group_stats(wgroup[1], &idle_c_end);
}

static struct sc_timer idle_timer;
static uint64_t idle_half; /* how long a runs alone, then both */

static struct sc_future idle_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    make_group("a", 100, &wgroup[0]);
    make_group("c", 1000, &wgroup[1]);
    for (unsigned i = 0; i < 4; i++)
        start_worker(i, 0, SC_US(10));
    struct sc_future f = stop_in(2 * idle_half, idle_read);
    sc_timer_init(&idle_timer, idle_wake_c, NULL);
    sc_timer_arm_in(&idle_timer, idle_half);
    tr_step("a (100 shares) busy alone for %llu ms; then c (1000 shares) wakes and both are busy "
            "for %llu ms",
            (unsigned long long)(idle_half / 1000000), (unsigned long long)(idle_half / 1000000));
    return sc_then(f, drained, NULL, 0);
}

/*
 * c was idle while a used the CPU alone. Had c kept credit for that time,
 * it would wake with vruntime 0 and run alone until it caught up with a:
 * ten times a's CPU time, since c has ten times the shares. With no credit
 * it wakes at min_vruntime, which is at least the vruntime a had when a was
 * last picked, and the two share the CPU 100:1000 from then on.
 *
 * Both worlds: c's vruntime at its first task is at least a's vruntime at
 * a's last task before c woke (a fact of the accounting). The simulator
 * also checks the share: a gets 100/1100 of the second half, give or take
 * two slices (one at the switch, one at the end).
 */
START_TEST(idle_group_earns_no_credit)
{
    begin("idle_group_earns_no_credit", _i);
    struct sc_config cfg = one_shard(_i);
    idle_half = _i == 0 ? SC_MS(100) : SC_MS(20);
    run_story(&cfg, idle_main);
    tr_step("a's vruntime at its last task before c woke: %llu; c's at its first task: %llu",
            (unsigned long long)idle_a_last_vr, (unsigned long long)wfirst_vr[1]);
    T_CHECK(wseen[0], "a (100 shares, busy from the start) never ran");
    T_CHECK(wseen[1],
            "c (1000 shares) never ran in the %llu ms after it woke: a, with a tenth of its "
            "shares, kept the CPU. Is the group picked the one with the least vruntime?",
            (unsigned long long)(idle_half / 1000000));
    T_CHECK(idle_a_last_vr > 0,
            "a used the CPU alone for %llu ms, yet its vruntime was 0: "
            "sc__sched_charge must charge it",
            (unsigned long long)(idle_half / 1000000));
    T_CHECK(wfirst_vr[1] >= idle_a_last_vr,
            "c woke after idling while a ran; it should start no lower than min_vruntime, which "
            "was at least %llu (a's vruntime when a was last picked), but c's first task saw "
            "vruntime %llu. Does sc__sched_pick advance min_vruntime, and does sc__sched_wake "
            "clamp to it?",
            (unsigned long long)idle_a_last_vr, (unsigned long long)wfirst_vr[1]);
    if (_i != 0)
        return;
    uint64_t a2 = idle_a_end.runtime_ns - idle_a_mid.runtime_ns;
    uint64_t fair = idle_half / 11;
    uint64_t slice_max = QUOTA + SC_US(10) + TASK_NS + POLL_NS;
    tr_step("second half: a ran %llu ns, c %llu ns; a's fair share is %llu +- %llu",
            (unsigned long long)a2, (unsigned long long)idle_c_end.runtime_ns,
            (unsigned long long)fair, (unsigned long long)(2 * slice_max));
    T_CHECK(a2 + 2 * slice_max >= fair && a2 <= fair + 2 * slice_max,
            "in the %llu ms after c woke, a (100 shares) should get 100/1100 of the CPU, %llu ns "
            "give or take %llu, but got %llu ns (c got %llu)",
            (unsigned long long)(idle_half / 1000000), (unsigned long long)fair,
            (unsigned long long)(2 * slice_max), (unsigned long long)a2,
            (unsigned long long)idle_c_end.runtime_ns);
}
END_TEST

/* ---- 3. the simulator: shares and isolation --------------------------------- */

static struct sc_sched_group_stats prop[2];

static void prop_read(void)
{
    sc_sched_group_stats(wgroup[0], &prop[0]);
    sc_sched_group_stats(wgroup[1], &prop[1]);
}

static struct sc_future prop_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    make_group("a100", 100, &wgroup[0]);
    make_group("b300", 300, &wgroup[1]);
    for (unsigned i = 0; i < 4; i++) {
        start_worker(i, 0, SC_US(10));
        start_worker(4 + i, 1, SC_US(10));
    }
    tr_step("a100 and b300 created, 4 workers each (10 us a task), started in one task; 300 ms");
    return stop_in(SC_MS(300), prop_read);
}

/*
 * The bound. Both groups wake in one task, at the same vruntime, and stay
 * busy. The reactor always runs the one with the least vruntime, and one
 * slice adds at most slice_max * 1000 / shares to it, so their vruntimes
 * never differ by more than the larger of those, a's: 10 slice_max. In CPU
 * time: |10 rt_a - 10 rt_b / 3| <= 10 slice_max, i.e. |3 rt_a - rt_b| <= 3
 * slice_max. A slice ends at the first quota check after the quota: at most
 * the quota plus one task (its burn, the task's cost and one check).
 */
START_TEST(busy_groups_share_1_to_3)
{
    begin("busy_groups_share_1_to_3", 0);
    struct sc_config cfg = one_shard(0);
    run_story(&cfg, prop_main);
    uint64_t slice_max = QUOTA + SC_US(10) + TASK_NS + POLL_NS;
    int64_t diff = 3 * (int64_t)prop[0].runtime_ns - (int64_t)prop[1].runtime_ns;
    tr_step("a100: %llu ns in %llu slices; b300: %llu ns in %llu slices; 3a - b = %lld",
            (unsigned long long)prop[0].runtime_ns, (unsigned long long)prop[0].slices,
            (unsigned long long)prop[1].runtime_ns, (unsigned long long)prop[1].slices,
            (long long)diff);
    T_CHECK(prop[0].runtime_ns + prop[1].runtime_ns > SC_MS(297),
            "the two busy groups should have had nearly all of the 300 ms, but had %llu ns",
            (unsigned long long)(prop[0].runtime_ns + prop[1].runtime_ns));
    T_CHECK(llabs(diff) <= (long long)(3 * slice_max),
            "with 100 and 300 shares, b should get 3 times a's CPU, within 3 slices (|3a - b| <= "
            "%llu ns); a got %llu ns and b %llu ns (b/a = %.3f)",
            (unsigned long long)(3 * slice_max), (unsigned long long)prop[0].runtime_ns,
            (unsigned long long)prop[1].runtime_ns,
            prop[0].runtime_ns ? (double)prop[1].runtime_ns / (double)prop[0].runtime_ns : 0.0);
}
END_TEST

/* A latency-sensitive group ("latency", 1000 shares: a timer every 5003 us
 * whose task does 5 us of work) beside a CPU-hungry one ("hungry", 100
 * shares: 12 tasks of 100 us, forever re-queued). */
#define TICKS          100
#define TICK_PERIOD_NS SC_US(5003) /* not a multiple of the quota: every phase */
#define HUNGRY_NS      SC_US(100)

static struct {
    struct sc_timer timer, give_up;
    struct sc_task task;
    uint64_t deadline;
    unsigned n;
    uint64_t delay[TICKS];
} ticker;

static void tick_done(void)
{
    if (!stop_workers) {
        stop_workers = true;
        sc_promise_set_value(&stopper.done, 0);
    }
}

static void tick_task(struct sc_task *t)
{
    (void)t;
    ticker.delay[ticker.n++] = sc_now() - ticker.deadline;
    sc_sched_burn(SC_US(5));
    if (ticker.n < TICKS) {
        ticker.deadline += TICK_PERIOD_NS;
        sc_timer_arm(&ticker.timer, ticker.deadline);
    } else {
        sc_timer_cancel(&ticker.give_up);
        tick_done();
    }
}

static void tick_fire(void *arg)
{
    (void)arg;
    sc_task_schedule(&ticker.task); /* the timer's group: the one that armed it */
}

/* A scheduler that starves the ticks must fail the check, not hang it. */
static void tick_give_up(void *arg)
{
    (void)arg;
    tick_done();
}

static struct sc_future arm_ticker(void *cap, intptr_t v)
{
    (void)cap, (void)v;
    ticker.deadline = sc_now() + TICK_PERIOD_NS;
    sc_timer_arm(&ticker.timer, ticker.deadline); /* armed in "latency" */
    return sc_make_ready(0);
}

static struct sc_future iso_main(void *arg, int argc, char **argv)
{
    (void)arg, (void)argc, (void)argv;
    make_group("hungry", 100, &wgroup[0]);
    make_group("latency", 1000, &wgroup[1]);
    stop_workers = false;
    memset(wseen, 0, sizeof wseen);
    for (unsigned i = 0; i < 12; i++)
        start_worker(i, 0, HUNGRY_NS);
    memset(&ticker, 0, sizeof ticker);
    sc_timer_init(&ticker.timer, tick_fire, NULL);
    ticker.task.run = tick_task;
    sc_promise_init(&stopper.done);
    sc_timer_init(&ticker.give_up, tick_give_up, NULL);
    sc_timer_arm_in(&ticker.give_up, 2 * TICKS * TICK_PERIOD_NS);
    sc_future_discard(sc_sched_group_spawn(wgroup[1], arm_ticker, NULL, 0));
    tr_step("hungry (id %u, 100 shares): 12 tasks of 100 us; latency (id %u, 1000 shares): %d "
            "ticks every 5003 us, 5 us each",
            wgroup[0].id, wgroup[1].id, TICKS);
    return sc_then(sc_promise_get_future(&stopper.done), drained, NULL, 0);
}

/*
 * The bound. A tick's deadline D passes during a reactor turn that started
 * at B <= D. The hungry group's slice ends at the first quota check after B
 * + quota: by then at most one hungry task (100 us and its cost) and one
 * check have run past the quota. The next turn fires the timer (one task's
 * cost in the simulator), which queues the tick's task in "latency"; that
 * group wakes with the least vruntime (it uses little CPU, and the hungry
 * group's vruntime grows 10x faster than the clock), so it is picked first
 * and its task starts one task's cost later:
 *     delay <= quota + 100 us + 3 TASK_NS + POLL_NS.
 * If the hungry group were picked instead, the tick would wait at least
 * another slice.
 */
START_TEST(isolation_latency_bounded)
{
    begin("isolation_latency_bounded", 0);
    struct sc_config cfg = one_shard(0);
    run_story(&cfg, iso_main);
    uint64_t bound = QUOTA + HUNGRY_NS + 3 * TASK_NS + POLL_NS;
    uint64_t max = 0;
    unsigned worst = 0;
    for (unsigned k = 0; k < ticker.n; k++)
        if (ticker.delay[k] > max) {
            max = ticker.delay[k];
            worst = k;
        }
    tr_step("%u of %d ticks ran; the latest was tick %u, %llu ns after its deadline (bound %llu)",
            ticker.n, TICKS, worst, (unsigned long long)max, (unsigned long long)bound);
    T_CHECK(ticker.n == TICKS,
            "only %u of %d ticks ran in %llu ms: the latency group was starved by the hungry one "
            "(a group with queued tasks and the least vruntime must be picked)",
            ticker.n, TICKS, (unsigned long long)(2 * TICKS * TICK_PERIOD_NS / 1000000));
    T_CHECK(max <= bound,
            "tick %u ran %llu ns after its deadline; with the latency group picked first when it "
            "wakes, no tick waits more than %llu ns (one slice of the hungry group)",
            worst, (unsigned long long)max, (unsigned long long)bound);
}
END_TEST

/* ---- the suite ---------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("lab 07: share-proportional group selection");
    TCase *alone = tcase_create("alone");
    tcase_set_timeout(alone, 10);
    tcase_add_test(alone, pick_least_vruntime);
    tcase_add_test(alone, pick_tie_lowest_id);
    tcase_add_test(alone, charge_scaled_by_shares);
    tcase_add_test(alone, wake_clamps_to_min_vruntime);
    suite_add_tcase(s, alone);

    TCase *reactor = tcase_create("reactor");
    tcase_set_timeout(reactor, 20);
    tcase_add_loop_test(reactor, reactor_runs_least_vruntime_first, 0, 2);
    tcase_add_loop_test(reactor, reactor_ties_go_to_lowest_id, 0, 2);
    tcase_add_loop_test(reactor, vruntime_follows_shares, 0, 2);
    tcase_add_loop_test(reactor, idle_group_earns_no_credit, 0, 2);
    suite_add_tcase(s, reactor);

    TCase *sim = tcase_create("sim");
    tcase_set_timeout(sim, 20);
    tcase_add_test(sim, busy_groups_share_1_to_3);
    tcase_add_test(sim, isolation_latency_bounded);
    suite_add_tcase(s, sim);
    return s;
}

int main(void)
{
    return t_main(suite());
}
